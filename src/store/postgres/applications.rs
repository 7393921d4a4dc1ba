//! The application units of work in SQL. An edit locks the application's row and compares it
//! with what the form was read from; a new application's id comes from the locked id mark.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;

use super::accounts::next_id;
use super::failures::AlsoRead;
use super::{PgStore, duplicate_as, json, pg_id, record};
use crate::store::{
    Application, ApplicationStorage, ClientRead, FailureQuery, Replaced, SecretKey, StoreError,
    Timestamp,
};

const APPLICATION: &str = "SELECT record FROM oxidot_applications WHERE id = $1";

const APPLICATION_BY_CLIENT_ID: &str =
    "SELECT record FROM oxidot_applications WHERE client_id = $1";

const PUT_APPLICATION: &str = "INSERT INTO oxidot_applications (id, client_id, record)
    VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET client_id = $2, record = $3";

/// Everything issued to an application goes with it (`$1` its id).
const DELETE_ISSUED: [&str; 7] = [
    "DELETE FROM oxidot_access_tokens WHERE application = $1",
    "DELETE FROM oxidot_refresh_tokens WHERE application = $1",
    "DELETE FROM oxidot_id_tokens WHERE application = $1",
    "DELETE FROM oxidot_grants WHERE application = $1",
    "DELETE FROM oxidot_device_grants WHERE application = $1",
    "DELETE FROM oxidot_families WHERE application = $1",
    "DELETE FROM oxidot_consents WHERE application = $1",
];

pub(super) async fn put_application(
    client: &impl GenericClient,
    application: &Application,
) -> Result<(), StoreError> {
    let statement = client.prepare_cached(PUT_APPLICATION).await?;
    client
        .execute(
            &statement,
            &[
                &pg_id(application.id)?,
                &application.client_id,
                &json(application),
            ],
        )
        .await
        .map_err(|error| {
            duplicate_as(
                error,
                "an application with client_id",
                &application.client_id,
            )
        })?;
    Ok(())
}

/// Deletes an application and everything issued to it, in the caller's transaction.
pub(super) async fn delete_application(
    client: &impl GenericClient,
    id: u64,
) -> Result<bool, StoreError> {
    let id = pg_id(id)?;
    let deleted = client
        .execute("DELETE FROM oxidot_applications WHERE id = $1", &[&id])
        .await?;
    if deleted == 0 {
        return Ok(false);
    }
    for sql in DELETE_ISSUED {
        client.execute(sql, &[&id]).await?;
    }
    Ok(true)
}

async fn one_application(
    client: &impl GenericClient,
    sql: &str,
    param: &(dyn tokio_postgres::types::ToSql + Sync),
) -> Result<Option<Application>, StoreError> {
    let statement = client.prepare_cached(sql).await?;
    match client.query_opt(&statement, &[param]).await? {
        Some(row) => record(&row, 0),
        None => Ok(None),
    }
}

#[async_trait]
impl ApplicationStorage for PgStore {
    async fn application(&self, id: u64) -> Result<Option<Application>, StoreError> {
        let client = self.client().await?;
        one_application(&client, APPLICATION, &pg_id(id)?).await
    }

    async fn application_by_client_id(
        &self,
        client_id: &str,
    ) -> Result<Option<Application>, StoreError> {
        let client = self.client().await?;
        one_application(&client, APPLICATION_BY_CLIENT_ID, &client_id).await
    }

    async fn client_for_authentication(
        &self,
        client_id: &str,
        failures: FailureQuery<'_>,
    ) -> Result<(Option<Application>, Vec<Vec<Timestamp>>), StoreError> {
        let client = self.client().await?;
        read_client(&client, client_id, failures).await
    }

    async fn applications(&self) -> Result<Vec<Application>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT record FROM oxidot_applications ORDER BY id", &[])
            .await?;
        let mut applications = Vec::with_capacity(rows.len());
        for row in &rows {
            applications.extend(record::<Application>(row, 0)?);
        }
        Ok(applications)
    }

    async fn register_application(
        &self,
        application: Application,
    ) -> Result<Application, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        let registered = Application {
            id: next_id(&transaction, "application", "oxidot_applications").await?,
            ..application
        };
        put_application(&transaction, &registered).await?;
        transaction.commit().await?;
        Ok(registered)
    }

    async fn replace_application(
        &self,
        expected: &Application,
        new: &Application,
    ) -> Result<Replaced, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        let current = one_application(
            &transaction,
            "SELECT record FROM oxidot_applications WHERE id = $1 FOR UPDATE",
            &pg_id(expected.id)?,
        )
        .await?;
        let Some(current) = current else {
            return Ok(Replaced::Gone);
        };
        if current != *expected {
            return Ok(Replaced::Changed);
        }
        put_application(&transaction, new).await?;
        transaction.commit().await?;
        Ok(Replaced::Done)
    }

    async fn delete_application(&self, id: u64) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        let deleted = delete_application(&transaction, id).await?;
        transaction.commit().await?;
        Ok(deleted)
    }
}

/// A client and its throttle's recent failures, in one statement
/// (`ApplicationStorage::client_for_authentication`).
pub(super) async fn read_client(
    client: &impl GenericClient,
    client_id: &str,
    failures: FailureQuery<'_>,
) -> Result<ClientRead, StoreError> {
    let (read, _) = read_client_and(client, client_id, failures, None).await?;
    Ok(read)
}

/// A client, its throttle's recent failures and, when `token` names one, a token's rows (see
/// `AlsoRead`), in one statement.
pub(super) async fn read_client_and(
    client: &impl GenericClient,
    client_id: &str,
    failures: FailureQuery<'_>,
    token: Option<&SecretKey>,
) -> Result<(ClientRead, Vec<tokio_postgres::Row>), StoreError> {
    let keys = failures.keys;
    let also = match token {
        Some(_) => AlsoRead::ApplicationAndToken,
        None => AlsoRead::Application,
    };
    let sql = super::failures::recent_failures_sql(keys.len(), also);
    let keeps: Vec<i64> = keys
        .iter()
        .map(|key| i64::try_from(key.keep).unwrap_or(i64::MAX))
        .collect();
    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
        vec![&failures.scope, &failures.since.0];
    for (key, keep) in keys.iter().zip(&keeps) {
        params.push(&key.name);
        params.push(keep);
    }
    params.push(&client_id);
    let token_key = token.map(|key| key.0.as_slice());
    if let Some(key) = &token_key {
        params.push(key);
    }
    let statement = client.prepare_cached(&sql).await?;
    let rows = client.query(&statement, &params).await?;
    let (recent, application) = super::failures::failures_from_rows(&rows, keys.len())?;
    Ok(((application, recent), rows))
}
