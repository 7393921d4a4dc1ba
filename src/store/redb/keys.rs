//! Signing keys on redb, with the key ring's version in the meta table.

use async_trait::async_trait;

use super::Store;
use crate::store::{KeyStorage, SigningKey, StoreError};

pub(super) const KEY_RING_VERSION: &str = "key_ring_version";

#[async_trait]
impl KeyStorage for Store {
    async fn signing_keys(&self) -> Result<Vec<SigningKey>, StoreError> {
        self.read(|tx| tx.signing_keys())
    }

    async fn save_signing_keys(&self, keys: Vec<SigningKey>) -> Result<(), StoreError> {
        self.write(move |tx| {
            for key in &keys {
                tx.put_signing_key(key)?;
            }
            let version = tx.id_mark(KEY_RING_VERSION)?;
            tx.raise_id_mark(KEY_RING_VERSION, version + 1)
        })
        .await
    }

    async fn key_ring_version(&self) -> Result<u64, StoreError> {
        self.read(|tx| tx.meta_number(KEY_RING_VERSION))
    }
}
