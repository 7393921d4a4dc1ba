//! Units of work on OAuth applications (clients): looked up by the token endpoint and the
//! authorization endpoint, registered and edited from forms, deleted with everything issued
//! to them.

use async_trait::async_trait;

use super::{Application, FailureKey, StoreError, Timestamp};

/// What became of a replacement made on the condition that nobody changed the record since it
/// was read.
#[derive(Debug, Clone, PartialEq)]
pub enum Replaced {
    Done,
    /// Someone else saved it meanwhile: nothing changed; read it again.
    Changed,
    /// It was deleted meanwhile.
    Gone,
}

/// The failures a throttle check reads: of these keys in this scope after `since`.
#[derive(Debug, Clone, Copy)]
pub struct FailureQuery<'a> {
    pub scope: &'a str,
    pub keys: &'a [FailureKey],
    pub since: Timestamp,
}

#[async_trait]
pub trait ApplicationStorage: Send + Sync {
    async fn application(&self, id: u64) -> Result<Option<Application>, StoreError>;

    async fn application_by_client_id(
        &self,
        client_id: &str,
    ) -> Result<Option<Application>, StoreError>;

    /// The application a client authenticates as, read with the recent failures of the
    /// attempt's throttle keys (`FailureLog::recent_failures`): one round trip where the
    /// backend is remote, since every client authentication needs both.
    async fn client_for_authentication(
        &self,
        client_id: &str,
        failures: FailureQuery<'_>,
    ) -> Result<(Option<Application>, Vec<Vec<Timestamp>>), StoreError>;

    /// Every application, by id.
    async fn applications(&self) -> Result<Vec<Application>, StoreError>;

    /// Stores a new application with an id the database gives (above every id ever used, so
    /// a deleted application's leftovers never meet it); `application.id` is ignored.
    /// `StoreError::Duplicate` when its client id is taken.
    async fn register_application(
        &self,
        application: Application,
    ) -> Result<Application, StoreError>;

    /// Replaces `expected` (as read earlier) by `new` (same id), unless it changed or went
    /// meanwhile. `StoreError::Duplicate` when `new` takes a client id another holds.
    async fn replace_application(
        &self,
        expected: &Application,
        new: &Application,
    ) -> Result<Replaced, StoreError>;

    /// Deletes an application with every token, code, device request and consent it has;
    /// whether there was one.
    async fn delete_application(&self, id: u64) -> Result<bool, StoreError>;
}
