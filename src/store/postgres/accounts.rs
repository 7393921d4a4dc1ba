//! The account units of work in SQL. Changes to a user lock its row first, so a login's
//! password upgrade and a password change made through another instance never undo each
//! other; a new user's id comes from the locked `oxidot_id_marks` row.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;

use super::{PgStore, duplicate_as, json, pg_id, record};
use crate::rules;
use crate::store::{
    AccountStorage, Group, PermissionRecord, PermissionSources, SecretKey, Session, StoreError,
    Timestamp, User, permission_pks, user_list,
};

const USER_BY_USERNAME: &str = "SELECT record FROM oxidot_users WHERE username = $1";

/// A user with the columns the admin's list searches and sorts by (`user_list_columns`).
const PUT_USER: &str = "INSERT INTO oxidot_users
        (id, username, record, search_text, sort_username, sort_email, sort_name, joined, last_login)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    ON CONFLICT (id) DO UPDATE SET username = $2, record = $3, search_text = $4,
        sort_username = $5, sort_email = $6, sort_name = $7, joined = $8, last_login = $9";

/// The session and its user, in one round trip.
const LIVE_SESSION: &str = "SELECT s.record, u.record FROM oxidot_sessions s
    LEFT JOIN oxidot_users u ON u.id = s.user_id WHERE s.key = $1";

const PUT_SESSION: &str = "INSERT INTO oxidot_sessions (key, user_id, expires, record)
    VALUES ($1, $2, $3, $4)
    ON CONFLICT (key) DO UPDATE SET user_id = $2, expires = $3, record = $4";

/// Raises a kind's id mark to at least `$2` (a record stored with its own id: a load).
const RAISE_ID_MARK: &str = "UPDATE oxidot_id_marks SET mark = GREATEST(mark, $2) WHERE kind = $1";

pub(super) async fn put_session(
    client: &impl GenericClient,
    key: &SecretKey,
    session: &Session,
) -> Result<(), StoreError> {
    let statement = client.prepare_cached(PUT_SESSION).await?;
    client
        .execute(
            &statement,
            &[
                &key.0.as_slice(),
                &pg_id(session.user_id)?,
                &session.expires_at.0,
                &json(session),
            ],
        )
        .await?;
    Ok(())
}

/// Stores a Django permission row under its pk (as loaded from a dump).
pub(super) async fn put_permission(
    client: &impl GenericClient,
    pk: u64,
    permission: &PermissionRecord,
) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO oxidot_permissions (pk, record) VALUES ($1, $2)
             ON CONFLICT (pk) DO UPDATE SET record = $2",
            &[&pg_id(pk)?, &json(permission)],
        )
        .await?;
    Ok(())
}

pub(super) async fn put_user(client: &impl GenericClient, user: &User) -> Result<(), StoreError> {
    let id = pg_id(user.id)?;
    let statement = client.prepare_cached(PUT_USER).await?;
    let listed = ListColumns::of(user);
    client
        .execute(
            &statement,
            &[
                &id,
                &user.username,
                &json(user),
                &listed.search_text,
                &listed.username,
                &listed.email,
                &listed.name,
                &listed.joined,
                &listed.last_login,
            ],
        )
        .await
        .map_err(|error| duplicate_as(error, "a user named", &user.username))?;
    Ok(())
}

/// What the admin's user list searches and sorts a user by, as `store::user_list` computes it.
pub(super) struct ListColumns {
    pub search_text: String,
    pub username: String,
    pub email: String,
    pub name: String,
    pub joined: i64,
    pub last_login: i64,
}

impl ListColumns {
    pub fn of(user: &User) -> Self {
        Self {
            search_text: user_list::search_text(user),
            username: user_list::username_key(user),
            email: user_list::email_key(user),
            name: user_list::full_name_key(user),
            joined: user.date_joined.0,
            last_login: user_list::last_login_key(user),
        }
    }
}

/// The next id of `kind` (`user`, `group`, `application`): above its mark and above every
/// stored id, the mark raised to it. The mark's row stays locked until the transaction ends,
/// so concurrent creators (on any instance) take turns.
pub(super) async fn next_id(
    client: &impl GenericClient,
    kind: &str,
    table: &str,
) -> Result<u64, StoreError> {
    // `table` is one of this module's constants, never input.
    let sql = format!(
        "UPDATE oxidot_id_marks SET mark = GREATEST(mark, (SELECT COALESCE(MAX(id), 0) FROM \
         {table})) + 1 WHERE kind = $1 RETURNING mark"
    );
    let row = client.query_one(&sql, &[&kind]).await?;
    let mark: i64 = row.get(0);
    u64::try_from(mark).map_err(|_| StoreError::Corrupt(format!("the {kind} id mark is {mark}")))
}

pub(super) async fn raise_id_mark(
    client: &impl GenericClient,
    kind: &str,
    id: u64,
) -> Result<(), StoreError> {
    let statement = client.prepare_cached(RAISE_ID_MARK).await?;
    client.execute(&statement, &[&kind, &pg_id(id)?]).await?;
    Ok(())
}

/// The groups with these ids that exist, by id.
async fn groups_by_id(client: &impl GenericClient, ids: &[u64]) -> Result<Vec<Group>, StoreError> {
    let ids = ids
        .iter()
        .map(|id| pg_id(*id))
        .collect::<Result<Vec<i64>, _>>()?;
    let statement = client
        .prepare_cached("SELECT record FROM oxidot_groups WHERE id = ANY($1) ORDER BY id")
        .await?;
    let mut groups = Vec::with_capacity(ids.len());
    for row in client.query(&statement, &[&ids]).await? {
        groups.extend(record::<Group>(&row, 0)?);
    }
    Ok(groups)
}

pub(super) async fn lock_user(
    client: &impl GenericClient,
    id: u64,
) -> Result<Option<User>, StoreError> {
    let row = client
        .query_opt(
            "SELECT record FROM oxidot_users WHERE id = $1 FOR UPDATE",
            &[&pg_id(id)?],
        )
        .await?;
    match row {
        Some(row) => record(&row, 0),
        None => Ok(None),
    }
}

#[async_trait]
impl AccountStorage for PgStore {
    async fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(USER_BY_USERNAME).await?;
        match client.query_opt(&statement, &[&username]).await? {
            Some(row) => record(&row, 0),
            None => Ok(None),
        }
    }

    async fn user_by_id(&self, id: u64) -> Result<Option<User>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached("SELECT record FROM oxidot_users WHERE id = $1")
            .await?;
        match client.query_opt(&statement, &[&pg_id(id)?]).await? {
            Some(row) => record(&row, 0),
            None => Ok(None),
        }
    }

    async fn groups_of(&self, user: &User) -> Result<Vec<Group>, StoreError> {
        let client = self.client().await?;
        groups_by_id(&client, &user.groups).await
    }

    async fn create_user(&self, user: User) -> Result<User, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        let created = User {
            id: next_id(&transaction, "user", "oxidot_users").await?,
            ..user
        };
        put_user(&transaction, &created).await?;
        transaction.commit().await?;
        Ok(created)
    }

    async fn upgrade_password(
        &self,
        user: u64,
        old_hash: String,
        new_hash: String,
    ) -> Result<Option<User>, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        let Some(mut stored) = lock_user(&transaction, user).await? else {
            return Ok(None);
        };
        if stored.password == old_hash {
            stored.password = new_hash;
            put_user(&transaction, &stored).await?;
        }
        transaction.commit().await?;
        Ok(Some(stored))
    }

    async fn set_password(
        &self,
        username: &str,
        hash: String,
        keep: Option<SecretKey>,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        let Some(row) = transaction
            .query_opt(
                "SELECT record FROM oxidot_users WHERE username = $1 FOR UPDATE",
                &[&username],
            )
            .await?
        else {
            return Ok(false);
        };
        let Some(mut user) = record::<User>(&row, 0)? else {
            return Ok(false);
        };
        user.password = hash;
        put_user(&transaction, &user).await?;
        transaction
            .execute(
                "DELETE FROM oxidot_sessions WHERE user_id = $1 AND key IS DISTINCT FROM $2",
                &[
                    &pg_id(user.id)?,
                    &keep.as_ref().map(|keep| keep.0.as_slice()),
                ],
            )
            .await?;
        transaction.commit().await?;
        Ok(true)
    }

    async fn open_session(
        &self,
        key: SecretKey,
        session: Session,
    ) -> Result<Option<User>, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        let Some(mut user) = lock_user(&transaction, session.user_id).await? else {
            return Ok(None);
        };
        user.last_login = Some(session.created);
        put_user(&transaction, &user).await?;
        put_session(&transaction, &key, &session).await?;
        transaction.commit().await?;
        Ok(Some(user))
    }

    async fn live_session(
        &self,
        key: &SecretKey,
        now: Timestamp,
    ) -> Result<Option<(Session, User)>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(LIVE_SESSION).await?;
        let Some(row) = client.query_opt(&statement, &[&key.0.as_slice()]).await? else {
            return Ok(None);
        };
        let (Some(session), user) = (record::<Session>(&row, 0)?, record::<User>(&row, 1)?) else {
            return Ok(None);
        };
        Ok(user
            .filter(|user| rules::session_user_live(&session, Some(user), now))
            .map(|user| (session, user)))
    }

    async fn end_session(&self, key: &SecretKey) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let ended = client
            .execute(
                "DELETE FROM oxidot_sessions WHERE key = $1",
                &[&key.0.as_slice()],
            )
            .await?;
        Ok(ended > 0)
    }

    async fn permission_sources(&self, user: &User) -> Result<PermissionSources, StoreError> {
        let client = self.client().await?;
        let groups = groups_by_id(&client, &user.groups).await?;
        let pks = permission_pks(user, &groups)
            .into_iter()
            .map(pg_id)
            .collect::<Result<Vec<i64>, _>>()?;
        let mut permissions = Vec::with_capacity(pks.len());
        for row in client
            .query(
                "SELECT pk, record FROM oxidot_permissions WHERE pk = ANY($1) ORDER BY pk",
                &[&pks],
            )
            .await?
        {
            let pk: i64 = row.get(0);
            if let Some(permission) = record::<PermissionRecord>(&row, 1)? {
                permissions.push((pk.unsigned_abs(), permission));
            }
        }
        Ok(PermissionSources {
            groups,
            permissions,
        })
    }
}
