//! Signing keys in SQL. Saving keys raises the key ring's version in the same transaction;
//! every instance polls it and reloads.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;

use super::{PgStore, json, record};
use crate::store::{KeyStorage, SigningKey, StoreError};

pub(super) async fn put_signing_key(
    client: &impl GenericClient,
    key: &SigningKey,
) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO oxidot_signing_keys (kid, record) VALUES ($1, $2)
             ON CONFLICT (kid) DO UPDATE SET record = $2",
            &[&key.kid, &json(key)],
        )
        .await?;
    Ok(())
}

/// Raises the version every instance polls (`KeyRing::follow`) to reload the keys.
pub(super) async fn raise_key_ring_version(client: &impl GenericClient) -> Result<(), StoreError> {
    client
        .execute(
            "UPDATE oxidot_versions SET version = version + 1 WHERE name = 'key_ring'",
            &[],
        )
        .await?;
    Ok(())
}

#[async_trait]
impl KeyStorage for PgStore {
    async fn signing_keys(&self) -> Result<Vec<SigningKey>, StoreError> {
        let client = self.client().await?;
        let mut keys = Vec::new();
        for row in client
            .query("SELECT record FROM oxidot_signing_keys ORDER BY kid", &[])
            .await?
        {
            keys.extend(record::<SigningKey>(&row, 0)?);
        }
        Ok(keys)
    }

    async fn save_signing_keys(&self, keys: Vec<SigningKey>) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        for key in &keys {
            put_signing_key(&transaction, key).await?;
        }
        raise_key_ring_version(&transaction).await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn key_ring_version(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached("SELECT version FROM oxidot_versions WHERE name = 'key_ring'")
            .await?;
        let version: i64 = client
            .query_opt(&statement, &[])
            .await?
            .map_or(0, |row| row.get(0));
        Ok(version.unsigned_abs())
    }
}
