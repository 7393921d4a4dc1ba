//! Units of work on device authorizations (RFC 8628): starting one, the user's decision on
//! the verification page, and the device's poll at the token endpoint.

use async_trait::async_trait;

use super::{Application, DeviceGrant, FamilyId, SecretKey, StoreError, Timestamp};
use crate::config::OAuth2Provider;
use crate::rules::DevicePoll;

/// A device's poll, the tokens it would get minted in advance.
#[derive(Debug, Clone)]
pub struct DevicePollRequest {
    pub device_code: SecretKey,
    /// The authenticated client's application id.
    pub client: u64,
    pub now: Timestamp,
    pub access: (SecretKey, String),
    pub refresh: (SecretKey, String),
    /// The family of the tokens issued on approval.
    pub family: FamilyId,
}

/// A pending request found by its user code.
#[derive(Debug, Clone)]
pub struct PendingDevice {
    pub key: SecretKey,
    pub grant: DeviceGrant,
    pub application: Application,
}

#[async_trait]
pub trait DeviceStorage: Send + Sync {
    /// Stores a new device authorization; `StoreError::Duplicate` when another request
    /// holds its user code (the caller draws another).
    async fn start_device_authorization(
        &self,
        key: SecretKey,
        grant: DeviceGrant,
    ) -> Result<(), StoreError>;

    /// The pending, unexpired request a (normalised) user code names, with its application.
    async fn pending_device(
        &self,
        user_code: &str,
        now: Timestamp,
    ) -> Result<Option<PendingDevice>, StoreError>;

    /// Records the user's decision (approved for `user`, or denied); false when the request is
    /// no longer pending.
    async fn decide_device(
        &self,
        key: SecretKey,
        approved_by: Option<(u64, Timestamp)>,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// The poll (`rules::judge_device_poll`) in one transaction: a pending request records the
    /// poll, a denied or dead one is answered and deleted, an approved one becomes an access
    /// and a refresh token and is deleted, so it is exchanged once. Gives the judgement and,
    /// when approved, the scope.
    async fn poll_device(
        &self,
        poll: DevicePollRequest,
        provider: &OAuth2Provider,
    ) -> Result<(DevicePoll, Option<String>), StoreError>;
}
