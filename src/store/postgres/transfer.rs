//! Every row, page by page in key order, and records stored under their own keys (a copy
//! from another store), each batch one transaction.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;

use super::{PgStore, json, pg_id, record};
use crate::store::{
    Cursor, Family, FamilyId, IdMarks, OidcSession, Record, SecretKey, Section, StoreError,
    Transfer,
};

/// A page's query: rows after the cursor (`$1`, and `$2` for a pair), at most `$n` of them.
fn page_sql(section: Section) -> &'static str {
    match section {
        Section::ContentTypes => {
            "SELECT pk, record FROM oxidot_content_types WHERE pk > $1 ORDER BY pk LIMIT $2"
        }
        Section::Permissions => {
            "SELECT pk, record FROM oxidot_permissions WHERE pk > $1 ORDER BY pk LIMIT $2"
        }
        Section::Groups => {
            "SELECT id, record FROM oxidot_groups WHERE id > $1 ORDER BY id LIMIT $2"
        }
        Section::Users => "SELECT id, record FROM oxidot_users WHERE id > $1 ORDER BY id LIMIT $2",
        Section::Applications => {
            "SELECT id, record FROM oxidot_applications WHERE id > $1 ORDER BY id LIMIT $2"
        }
        Section::Sessions => {
            "SELECT key, record FROM oxidot_sessions WHERE key > $1 ORDER BY key LIMIT $2"
        }
        Section::Families => {
            "SELECT id, application, user_id, session FROM oxidot_families WHERE id > $1
             ORDER BY id LIMIT $2"
        }
        Section::AccessTokens => {
            "SELECT key, record FROM oxidot_access_tokens WHERE key > $1 ORDER BY key LIMIT $2"
        }
        Section::RefreshTokens => {
            "SELECT key, record FROM oxidot_refresh_tokens WHERE key > $1 ORDER BY key LIMIT $2"
        }
        Section::IdTokens => {
            "SELECT key, record FROM oxidot_id_tokens WHERE key > $1 ORDER BY key LIMIT $2"
        }
        Section::Grants => {
            "SELECT key, record FROM oxidot_grants WHERE key > $1 ORDER BY key LIMIT $2"
        }
        Section::Consents => {
            "SELECT user_id, application, record FROM oxidot_consents
             WHERE (user_id, application) > ($1, $2) ORDER BY user_id, application LIMIT $3"
        }
        Section::DeviceGrants => {
            "SELECT key, record FROM oxidot_device_grants WHERE key > $1 ORDER BY key LIMIT $2"
        }
        Section::PeriodicTasks => {
            "SELECT name, record FROM oxidot_periodic_tasks WHERE name > $1 ORDER BY name \
             LIMIT $2"
        }
        Section::SigningKeys => {
            "SELECT kid, record FROM oxidot_signing_keys WHERE kid > $1 ORDER BY kid LIMIT $2"
        }
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("a stored {what} cannot be read"))
}

fn key_of(row: &tokio_postgres::Row) -> Result<SecretKey, StoreError> {
    let bytes: Vec<u8> = row.try_get(0).map_err(|_| corrupt("key"))?;
    Ok(SecretKey(bytes.try_into().map_err(|_| corrupt("key"))?))
}

fn id_of(row: &tokio_postgres::Row, index: usize) -> Result<u64, StoreError> {
    let id: i64 = row.try_get(index).map_err(|_| corrupt("id"))?;
    u64::try_from(id).map_err(|_| corrupt("id"))
}

/// The record in column `index`, which a page's query never leaves NULL.
fn required<T: serde::de::DeserializeOwned>(
    row: &tokio_postgres::Row,
    index: usize,
) -> Result<T, StoreError> {
    record(row, index)?.ok_or_else(|| corrupt("record"))
}

fn wrong_cursor(section: Section) -> StoreError {
    StoreError::Storage(format!(
        "a page of {} cannot follow that cursor",
        section.label()
    ))
}

fn to_record(section: Section, row: &tokio_postgres::Row) -> Result<Record, StoreError> {
    Ok(match section {
        Section::ContentTypes => Record::ContentType(id_of(row, 0)?, required(row, 1)?),
        Section::Permissions => Record::Permission(id_of(row, 0)?, required(row, 1)?),
        Section::Groups => Record::Group(required(row, 1)?),
        Section::Users => Record::User(required(row, 1)?),
        Section::Applications => Record::Application(required(row, 1)?),
        Section::Sessions => Record::Session(key_of(row)?, required(row, 1)?),
        Section::Families => {
            let id: Vec<u8> = row.try_get(0).map_err(|_| corrupt("family"))?;
            let user: Option<i64> = row.try_get(2).map_err(|_| corrupt("family"))?;
            Record::Family(
                FamilyId(id.try_into().map_err(|_| corrupt("family"))?),
                Family {
                    application: id_of(row, 1)?,
                    user: user.map(i64::unsigned_abs),
                    session: record::<OidcSession>(row, 3)?,
                },
            )
        }
        Section::AccessTokens => Record::Access(key_of(row)?, required(row, 1)?),
        Section::RefreshTokens => Record::Refresh(key_of(row)?, required(row, 1)?),
        Section::IdTokens => Record::Id(key_of(row)?, required(row, 1)?),
        Section::Grants => Record::Grant(key_of(row)?, required(row, 1)?),
        Section::Consents => Record::Consent {
            user: id_of(row, 0)?,
            application: id_of(row, 1)?,
            consent: required(row, 2)?,
        },
        Section::DeviceGrants => Record::Device(key_of(row)?, required(row, 1)?),
        Section::PeriodicTasks => Record::Task(required(row, 1)?),
        Section::SigningKeys => Record::Key(required(row, 1)?),
    })
}

/// Stores a record under its own key or id, raising its kind's id mark to the id (a copy keeps
/// ids; a new record then goes above them).
async fn import_one(client: &impl GenericClient, record: &Record) -> Result<(), StoreError> {
    if let Some((kind, id)) = id_of_record(record) {
        super::accounts::raise_id_mark(client, kind, id).await?;
    }
    put_record(client, record).await
}

/// The id mark a record's id counts against, if its kind has one.
pub(super) fn id_of_record(record: &Record) -> Option<(&'static str, u64)> {
    match record {
        Record::Group(group) => Some(("group", group.id)),
        Record::User(user) => Some(("user", user.id)),
        Record::Application(application) => Some(("application", application.id)),
        _ => None,
    }
}

/// Stores a record under its own key or id, replacing what holds it, with every index it has
/// (a copy's, or a load's record), its id mark left as it is.
pub(super) async fn put_record(
    client: &impl GenericClient,
    record: &Record,
) -> Result<(), StoreError> {
    match record {
        Record::ContentType(pk, record) => {
            client
                .execute(
                    "INSERT INTO oxidot_content_types (pk, record) VALUES ($1, $2)
                     ON CONFLICT (pk) DO UPDATE SET record = $2",
                    &[&pg_id(*pk)?, &json(record)],
                )
                .await?;
        }
        Record::Permission(pk, record) => {
            super::accounts::put_permission(client, *pk, record).await?;
        }
        Record::Group(group) => super::directory::put_group(client, group).await?,
        Record::User(user) => super::accounts::put_user(client, user).await?,
        Record::Application(application) => {
            super::applications::put_application(client, application).await?;
        }
        Record::Session(key, session) => {
            super::accounts::put_session(client, key, session).await?;
        }
        Record::Family(family, record) => {
            client
                .execute(
                    "INSERT INTO oxidot_families (id, application, user_id, session)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (id) DO UPDATE SET application = $2, user_id = $3,
                         session = $4",
                    &[
                        &family.0.as_slice(),
                        &pg_id(record.application)?,
                        &record.user.map(pg_id).transpose()?,
                        &record.session.as_ref().map(json),
                    ],
                )
                .await?;
        }
        Record::Access(key, token) => super::tokens::put_access_token(client, key, token).await?,
        Record::Refresh(key, token) => {
            super::tokens::ensure_family(client, token.family, token.application, token.user)
                .await?;
            super::tokens::put_refresh_token(client, key, token).await?;
        }
        Record::Id(key, token) => super::tokens::put_id_token(client, key, token).await?,
        Record::Grant(key, grant) => super::codes::put_grant(client, key, grant).await?,
        Record::Consent {
            user,
            application,
            consent,
        } => {
            client
                .execute(
                    super::codes::PUT_CONSENT,
                    &[&pg_id(*user)?, &pg_id(*application)?, &json(consent)],
                )
                .await?;
        }
        Record::Device(key, grant) => {
            client
                .execute(
                    "INSERT INTO oxidot_device_grants
                         (key, application, user_code, expires, record)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (key) DO UPDATE SET application = $2, user_code = $3,
                         expires = $4, record = $5",
                    &[
                        &key.0.as_slice(),
                        &pg_id(grant.application)?,
                        &grant.user_code,
                        &grant.expires.0,
                        &json(grant),
                    ],
                )
                .await
                .map_err(|error| super::duplicate_as(error, "user code", &grant.user_code))?;
        }
        Record::Task(task) => super::tasks::put_task(client, task).await?,
        Record::Key(key) => {
            super::keys::put_signing_key(client, key).await?;
            super::keys::raise_key_ring_version(client).await?;
        }
    }
    Ok(())
}

#[async_trait]
impl Transfer for PgStore {
    async fn export_page(
        &self,
        section: Section,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let client = self.client().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = page_sql(section);
        let rows = match (section, after) {
            (Section::Consents, None) => client.query(sql, &[&-1i64, &-1i64, &limit]).await?,
            (Section::Consents, Some(Cursor::Pair(user, application))) => {
                client
                    .query(sql, &[&pg_id(user)?, &pg_id(application)?, &limit])
                    .await?
            }
            (Section::Consents, Some(_)) => return Err(wrong_cursor(section)),
            (_, after) => {
                // The cursor as the key column's type; before the first page, below every key.
                let after: Box<dyn ToSql + Sync + Send> = match after {
                    None => match section {
                        Section::ContentTypes
                        | Section::Permissions
                        | Section::Groups
                        | Section::Users
                        | Section::Applications => Box::new(-1i64),
                        Section::PeriodicTasks | Section::SigningKeys => Box::new(String::new()),
                        _ => Box::new(Vec::<u8>::new()),
                    },
                    Some(Cursor::Id(id)) => Box::new(pg_id(id)?),
                    Some(Cursor::Key(key)) => Box::new(key.to_vec()),
                    Some(Cursor::Family(family)) => Box::new(family.to_vec()),
                    Some(Cursor::Name(name)) => Box::new(name),
                    Some(Cursor::Pair(..)) => return Err(wrong_cursor(section)),
                };
                client.query(sql, &[&*after, &limit]).await?
            }
        };
        rows.iter().map(|row| to_record(section, row)).collect()
    }

    async fn import(&self, records: Vec<Record>) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        for record in &records {
            import_one(&transaction, record).await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    async fn id_marks(&self) -> Result<IdMarks, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT
                    GREATEST((SELECT mark FROM oxidot_id_marks WHERE kind = 'user'),
                             (SELECT COALESCE(MAX(id), 0) FROM oxidot_users)),
                    GREATEST((SELECT mark FROM oxidot_id_marks WHERE kind = 'group'),
                             (SELECT COALESCE(MAX(id), 0) FROM oxidot_groups)),
                    GREATEST((SELECT mark FROM oxidot_id_marks WHERE kind = 'application'),
                             (SELECT COALESCE(MAX(id), 0) FROM oxidot_applications))",
                &[],
            )
            .await?;
        Ok(IdMarks {
            users: id_of(&row, 0)?,
            groups: id_of(&row, 1)?,
            applications: id_of(&row, 2)?,
        })
    }

    async fn raise_id_marks(&self, marks: IdMarks) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        super::accounts::raise_id_mark(&transaction, "user", marks.users).await?;
        super::accounts::raise_id_mark(&transaction, "group", marks.groups).await?;
        super::accounts::raise_id_mark(&transaction, "application", marks.applications).await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn is_empty(&self) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT NOT EXISTS (SELECT 1 FROM oxidot_users)
                    AND NOT EXISTS (SELECT 1 FROM oxidot_applications)
                    AND NOT EXISTS (SELECT 1 FROM oxidot_access_tokens)
                    AND NOT EXISTS (SELECT 1 FROM oxidot_refresh_tokens)",
                &[],
            )
            .await?;
        Ok(row.get(0))
    }
}
