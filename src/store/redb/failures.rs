//! Failed attempts on redb: one process owns the file, so its own memory sees every attempt
//! (see `store::failures`).

use async_trait::async_trait;

use super::Store;
use crate::store::{FailureKey, FailureLog, StoreError, Timestamp};

#[async_trait]
impl FailureLog for Store {
    async fn recent_failures(
        &self,
        scope: &str,
        keys: &[FailureKey],
        since: Timestamp,
    ) -> Result<Vec<Vec<Timestamp>>, StoreError> {
        self.inner
            .failures
            .recent_failures(scope, keys, since)
            .await
    }

    async fn record_failure(
        &self,
        scope: &str,
        keys: &[FailureKey],
        at: Timestamp,
        expired_before: Timestamp,
    ) -> Result<(), StoreError> {
        self.inner
            .failures
            .record_failure(scope, keys, at, expired_before)
            .await
    }

    async fn forget_failures(&self, scope: &str, key: &str) -> Result<(), StoreError> {
        self.inner.failures.forget_failures(scope, key).await
    }
}
