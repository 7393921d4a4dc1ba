//! Units of work on the ID token signing keys, with the key ring's version: every change
//! raises it, and each instance polls it to reload the keys another instance changed.

use async_trait::async_trait;

use super::{SigningKey, StoreError};

#[async_trait]
pub trait KeyStorage: Send + Sync {
    /// Every signing key ever stored (retired ones too: they verify our old ID tokens).
    async fn signing_keys(&self) -> Result<Vec<SigningKey>, StoreError>;

    /// Stores keys (new or changed, by kid) in one transaction and raises the key ring's
    /// version.
    async fn save_signing_keys(&self, keys: Vec<SigningKey>) -> Result<(), StoreError>;

    /// The key ring's version: it changes whenever a key does.
    async fn key_ring_version(&self) -> Result<u64, StoreError>;
}
