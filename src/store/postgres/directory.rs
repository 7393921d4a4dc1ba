//! The directory units of work (users and groups) in SQL. Each edit locks the row it changes;
//! a deletion takes what goes with the record in the same transaction.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;

use super::accounts::{ListColumns, lock_user, next_id, put_user, raise_id_mark};
use super::applications::delete_application;
use super::tokens::revoke_tokens_of_user;
use super::{PgStore, duplicate_as, json, pg_id, record};
use crate::rules;
use crate::store::{
    DirectoryStorage, Group, PermissionRecord, StoreError, Timestamp, User, UserOrder, UserPage,
    UserQuery, UserSaved,
};

const PUT_GROUP: &str = "INSERT INTO oxidot_groups (id, name, record) VALUES ($1, $2, $3)
    ON CONFLICT (id) DO UPDATE SET name = $2, record = $3";

pub(super) async fn put_group(
    client: &impl GenericClient,
    group: &Group,
) -> Result<(), StoreError> {
    let statement = client.prepare_cached(PUT_GROUP).await?;
    client
        .execute(&statement, &[&pg_id(group.id)?, &group.name, &json(group)])
        .await
        .map_err(|error| duplicate_as(error, "a group named", &group.name))?;
    Ok(())
}

/// Every row's record of a `SELECT record …` query.
async fn records<T: serde::de::DeserializeOwned>(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<T>, StoreError> {
    let mut found = Vec::new();
    for row in client.query(sql, params).await? {
        found.extend(record::<T>(&row, 0)?);
    }
    Ok(found)
}

async fn end_sessions_of_user(client: &impl GenericClient, user: u64) -> Result<u64, StoreError> {
    Ok(client
        .execute(
            "DELETE FROM oxidot_sessions WHERE user_id = $1",
            &[&pg_id(user)?],
        )
        .await?)
}

/// Every user, and those whose search text holds every pattern (`LIKE ALL` of none is true).
const USER_COUNTS: &str = "SELECT count(*), count(*) FILTER (WHERE search_text LIKE ALL($1))
    FROM oxidot_users";

/// The statement reading one page of the user list in `query`'s order (ties by id in the same
/// direction, so the order's index is read forwards or backwards).
fn user_page_sql(query: &UserQuery) -> String {
    // Column names are this function's constants, never input.
    let column = match query.order {
        UserOrder::Id => None,
        UserOrder::Username => Some("sort_username"),
        UserOrder::Email => Some("sort_email"),
        UserOrder::Name => Some("sort_name"),
        UserOrder::Joined => Some("joined"),
        UserOrder::LastLogin => Some("last_login"),
    };
    let direction = if query.descending { "DESC" } else { "ASC" };
    let order = match column {
        Some(column) => format!("{column} {direction}, id {direction}"),
        None => format!("id {direction}"),
    };
    format!(
        "SELECT record FROM oxidot_users WHERE search_text LIKE ALL($1) ORDER BY {order} \
         LIMIT $2 OFFSET $3"
    )
}

/// A `LIKE` pattern matching text that holds `word` anywhere (its `%`, `_` and `\\` taken
/// literally).
fn contains_pattern(word: &str) -> String {
    let mut pattern = String::with_capacity(word.len() + 2);
    pattern.push('%');
    for character in word.chars() {
        if matches!(character, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(character);
    }
    pattern.push('%');
    pattern
}

/// List columns of many users, column by column (`UNNEST`'s arrays).
#[derive(Default)]
struct ColumnBatch {
    ids: Vec<i64>,
    search_text: Vec<String>,
    username: Vec<String>,
    email: Vec<String>,
    name: Vec<String>,
    joined: Vec<i64>,
    last_login: Vec<i64>,
}

impl ColumnBatch {
    fn push(&mut self, id: i64, columns: ListColumns) {
        self.ids.push(id);
        self.search_text.push(columns.search_text);
        self.username.push(columns.username);
        self.email.push(columns.email);
        self.name.push(columns.name);
        self.joined.push(columns.joined);
        self.last_login.push(columns.last_login);
    }
}

/// Gives the users inserted without the columns the admin's list reads — stored before
/// migration 3, or inserted by an older oxidot still running during an upgrade — those columns,
/// 500 users a statement. (A user an older oxidot *edits* keeps the columns it had until it is
/// saved again: its columns are not empty, so nothing here can tell.) A record that cannot be
/// read is left unlisted and named in the log; start-up goes on.
pub(super) async fn list_unlisted_users(client: &impl GenericClient) -> Result<u64, StoreError> {
    let mut listed = 0;
    let mut after = i64::MIN;
    loop {
        let rows = client
            .query(
                "SELECT id, record FROM oxidot_users WHERE search_text IS NULL AND id > $1 \
                 ORDER BY id LIMIT 500",
                &[&after],
            )
            .await?;
        let Some(last) = rows.last() else {
            return Ok(listed);
        };
        after = last.get(0);
        let mut batch = ColumnBatch::default();
        for row in &rows {
            let id: i64 = row.get(0);
            match record::<User>(row, 1) {
                Ok(Some(user)) => batch.push(id, ListColumns::of(&user)),
                Ok(None) => {}
                Err(error) => tracing::warn!(user = id, "a stored user cannot be read: {error}"),
            }
        }
        listed += client
            .execute(
                "UPDATE oxidot_users u SET search_text = c.search_text, \
                 sort_username = c.sort_username, sort_email = c.sort_email, \
                 sort_name = c.sort_name, joined = c.joined, last_login = c.last_login \
                 FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], \
                 $6::BIGINT[], $7::BIGINT[]) \
                 AS c(id, search_text, sort_username, sort_email, sort_name, joined, last_login) \
                 WHERE u.id = c.id AND u.search_text IS NULL",
                &[
                    &batch.ids,
                    &batch.search_text,
                    &batch.username,
                    &batch.email,
                    &batch.name,
                    &batch.joined,
                    &batch.last_login,
                ],
            )
            .await?;
    }
}

#[async_trait]
impl DirectoryStorage for PgStore {
    async fn users(&self) -> Result<Vec<User>, StoreError> {
        let client = self.client().await?;
        records(&client, "SELECT record FROM oxidot_users ORDER BY id", &[]).await
    }

    async fn user_page(&self, query: &UserQuery) -> Result<UserPage, StoreError> {
        let client = self.client().await?;
        let patterns: Vec<String> = query
            .words
            .iter()
            .map(|word| contains_pattern(word))
            .collect();
        let counts = client.prepare_cached(USER_COUNTS).await?;
        let page = client.prepare_cached(&user_page_sql(query)).await?;
        let limit = i64::try_from(query.per_page).unwrap_or(i64::MAX);
        let offset_of = |matching| i64::try_from(query.offset(matching)).unwrap_or(i64::MAX);
        // The page asked for is read with the counts (one round trip); only a page past the
        // end, now known to be, is read again as the last one.
        let asked = offset_of(u64::MAX);
        let (counts, rows) = futures_util::future::try_join(
            client.query_one(&counts, &[&patterns]),
            client.query(&page, &[&patterns, &limit, &asked]),
        )
        .await?;
        let total = counts.get::<_, i64>(0).unsigned_abs();
        let matching = counts.get::<_, i64>(1).unsigned_abs();
        let shown = offset_of(matching);
        let rows = if shown == asked {
            rows
        } else {
            client.query(&page, &[&patterns, &limit, &shown]).await?
        };
        let mut users = Vec::with_capacity(rows.len());
        for row in &rows {
            users.extend(record::<User>(row, 0)?);
        }
        Ok(UserPage {
            users,
            page: query.shown_page(matching),
            matching,
            total,
        })
    }

    async fn usernames(
        &self,
        ids: &[u64],
    ) -> Result<std::collections::HashMap<u64, String>, StoreError> {
        let ids = ids
            .iter()
            .map(|id| pg_id(*id))
            .collect::<Result<Vec<i64>, _>>()?;
        let client = self.client().await?;
        let statement = client
            .prepare_cached("SELECT id, username FROM oxidot_users WHERE id = ANY($1)")
            .await?;
        let rows = client.query(&statement, &[&ids]).await?;
        Ok(rows
            .iter()
            .map(|row| (row.get::<_, i64>(0).unsigned_abs(), row.get(1)))
            .collect())
    }

    async fn save_user(&self, user: User, now: Timestamp) -> Result<Option<UserSaved>, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        let Some(previous) = lock_user(&transaction, user.id).await? else {
            return Ok(None);
        };
        put_user(&transaction, &user).await?;
        let mut saved = UserSaved::default();
        if rules::deactivated(Some(&previous), &user) {
            saved.revoked = revoke_tokens_of_user(&transaction, user.id, None, now).await?;
            saved.sessions_ended = end_sessions_of_user(&transaction, user.id).await?;
        }
        transaction.commit().await?;
        Ok(Some(saved))
    }

    async fn delete_user(&self, id: u64, now: Timestamp) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        if lock_user(&transaction, id).await?.is_none() {
            return Ok(false);
        }
        end_sessions_of_user(&transaction, id).await?;
        revoke_tokens_of_user(&transaction, id, None, now).await?;
        let user = pg_id(id)?;
        transaction
            .execute("DELETE FROM oxidot_consents WHERE user_id = $1", &[&user])
            .await?;
        // The applications the user owns (the owner lives in the record).
        let owned = transaction
            .query(
                "SELECT id FROM oxidot_applications WHERE (record->>'user')::BIGINT = $1",
                &[&user],
            )
            .await?;
        for row in owned {
            let application: i64 = row.get(0);
            delete_application(&transaction, application.unsigned_abs()).await?;
        }
        transaction
            .execute("DELETE FROM oxidot_users WHERE id = $1", &[&user])
            .await?;
        raise_id_mark(&transaction, "user", id).await?;
        transaction.commit().await?;
        Ok(true)
    }

    async fn groups(&self) -> Result<Vec<Group>, StoreError> {
        let client = self.client().await?;
        records(&client, "SELECT record FROM oxidot_groups ORDER BY id", &[]).await
    }

    async fn group(&self, id: u64) -> Result<Option<Group>, StoreError> {
        let client = self.client().await?;
        let found = records(
            &client,
            "SELECT record FROM oxidot_groups WHERE id = $1",
            &[&pg_id(id)?],
        )
        .await?;
        Ok(found.into_iter().next())
    }

    async fn create_group(&self, group: Group) -> Result<Group, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        let created = Group {
            id: next_id(&transaction, "group", "oxidot_groups").await?,
            ..group
        };
        put_group(&transaction, &created).await?;
        transaction.commit().await?;
        Ok(created)
    }

    async fn save_group(&self, group: Group) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        let exists = transaction
            .query_opt(
                "SELECT id FROM oxidot_groups WHERE id = $1 FOR UPDATE",
                &[&pg_id(group.id)?],
            )
            .await?
            .is_some();
        if !exists {
            return Ok(false);
        }
        put_group(&transaction, &group).await?;
        transaction.commit().await?;
        Ok(true)
    }

    async fn delete_group(&self, id: u64) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        let group = pg_id(id)?;
        let deleted = transaction
            .execute("DELETE FROM oxidot_groups WHERE id = $1", &[&group])
            .await?;
        if deleted == 0 {
            return Ok(false);
        }
        let members: Vec<User> = records(
            &transaction,
            "SELECT record FROM oxidot_users
             WHERE record->'groups' @> jsonb_build_array($1::BIGINT) FOR UPDATE",
            &[&group],
        )
        .await?;
        for mut member in members {
            member.groups.retain(|kept| *kept != id);
            put_user(&transaction, &member).await?;
        }
        raise_id_mark(&transaction, "group", id).await?;
        transaction.commit().await?;
        Ok(true)
    }

    async fn permissions(&self) -> Result<Vec<(u64, PermissionRecord)>, StoreError> {
        let client = self.client().await?;
        let mut permissions = Vec::new();
        for row in client
            .query("SELECT pk, record FROM oxidot_permissions ORDER BY pk", &[])
            .await?
        {
            let pk: i64 = row.get(0);
            permissions
                .extend(record::<PermissionRecord>(&row, 1)?.map(|p| (pk.unsigned_abs(), p)));
        }
        Ok(permissions)
    }
}
