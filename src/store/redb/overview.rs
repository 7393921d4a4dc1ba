//! Counts and facts about the redb file.

use std::path::PathBuf;

use async_trait::async_trait;

use super::Store;
use crate::store::{
    BackupReport, Described, DeviceDecision, DeviceGrant, ExpiringKind, ExpiryCutoffs, Grant,
    Overview, StoreError, TOKEN_TABLES, TableCount, Timestamp, TokenTable, Totals,
};

/// The expiry index's kind for each table.
fn expiring(table: TokenTable) -> ExpiringKind {
    match table {
        TokenTable::AccessTokens => ExpiringKind::AccessToken,
        TokenTable::RefreshTokens => ExpiringKind::RefreshToken,
        TokenTable::Grants => ExpiringKind::Grant,
        TokenTable::IdTokens => ExpiringKind::IdToken,
        TokenTable::DeviceGrants => ExpiringKind::DeviceGrant,
    }
}

#[async_trait]
impl Overview for Store {
    async fn totals(&self) -> Result<Totals, StoreError> {
        self.read(|tx| {
            Ok(Totals {
                users: tx.user_count()?,
                applications: tx.application_count()?,
                sessions: tx.session_count()?,
            })
        })
    }

    async fn token_counts(
        &self,
        cutoffs: ExpiryCutoffs,
        now: Timestamp,
        cap: u64,
    ) -> Result<Vec<TableCount>, StoreError> {
        self.read(|tx| {
            let mut counts = Vec::with_capacity(TOKEN_TABLES.len());
            for table in TOKEN_TABLES {
                let expired = match cutoffs.of(table) {
                    Some(before) => tx.expired_count(expiring(table), before, cap)?,
                    None => 0,
                };
                let spent = match table {
                    TokenTable::RefreshTokens => tx.expired_count(
                        ExpiringKind::RevokedRefreshToken,
                        Timestamp(i64::MAX),
                        cap,
                    )?,
                    TokenTable::Grants => tx.count_matching(table, cap, |grant: &Grant| {
                        grant.used.is_some() && grant.expires > now
                    })?,
                    TokenTable::DeviceGrants => {
                        tx.count_matching(table, cap, |grant: &DeviceGrant| {
                            grant.decision == DeviceDecision::Denied && grant.expires > now
                        })?
                    }
                    TokenTable::AccessTokens | TokenTable::IdTokens => 0,
                };
                counts.push(TableCount {
                    table,
                    stored: tx.token_count(table)?,
                    expired,
                    spent,
                });
            }
            Ok(counts)
        })
    }

    async fn probe(&self, now: Timestamp) -> Result<(), StoreError> {
        self.write_deferred(move |tx| tx.record_probe(now)).await
    }

    async fn describe(&self) -> Result<Described, StoreError> {
        let schema_version = self.read(|tx| tx.schema_version())?;
        Ok(Described {
            location: self.path().display().to_string(),
            schema_version,
            bytes: self.file_size(),
            write_transactions: Some(self.write_transactions()),
            connections: None,
        })
    }

    fn backs_up_to_files(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn back_up(&self, destination: PathBuf) -> Result<BackupReport, StoreError> {
        let store = self.clone();
        // A copy reads every row: off the async executor.
        tokio::task::spawn_blocking(move || store.backup_to(&destination))
            .await
            .map_err(|error| StoreError::Storage(error.to_string()))?
    }
}
