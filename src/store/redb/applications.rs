//! The application units of work on redb.

use async_trait::async_trait;

use super::Store;
use crate::store::{
    Application, ApplicationStorage, FailureLog, FailureQuery, Replaced, StoreError, Timestamp,
};

#[async_trait]
impl ApplicationStorage for Store {
    async fn application(&self, id: u64) -> Result<Option<Application>, StoreError> {
        self.read(|tx| tx.application(id))
    }

    async fn application_by_client_id(
        &self,
        client_id: &str,
    ) -> Result<Option<Application>, StoreError> {
        self.read(|tx| tx.application_by_client_id(client_id))
    }

    async fn client_for_authentication(
        &self,
        client_id: &str,
        failures: FailureQuery<'_>,
    ) -> Result<(Option<Application>, Vec<Vec<Timestamp>>), StoreError> {
        // Both in this process: the file, and the failures in memory.
        let application = self.read(|tx| tx.application_by_client_id(client_id))?;
        let recent = self
            .recent_failures(failures.scope, failures.keys, failures.since)
            .await?;
        Ok((application, recent))
    }

    async fn applications(&self) -> Result<Vec<Application>, StoreError> {
        self.read(|tx| tx.applications())
    }

    async fn register_application(
        &self,
        application: Application,
    ) -> Result<Application, StoreError> {
        self.write(move |tx| {
            let registered = Application {
                id: tx.fresh_application_id()?,
                ..application.clone()
            };
            // A taken client id is `Duplicate`; the job then commits nothing.
            tx.put_application(&registered)?;
            Ok(registered)
        })
        .await
    }

    async fn replace_application(
        &self,
        expected: &Application,
        new: &Application,
    ) -> Result<Replaced, StoreError> {
        let (expected, new) = (expected.clone(), new.clone());
        self.write(move |tx| {
            let Some(current) = tx.application(expected.id)? else {
                return Ok(Replaced::Gone);
            };
            if current != expected {
                return Ok(Replaced::Changed);
            }
            tx.put_application(&new)?;
            Ok(Replaced::Done)
        })
        .await
    }

    async fn delete_application(&self, id: u64) -> Result<bool, StoreError> {
        self.write(move |tx| tx.delete_application(id)).await
    }
}
