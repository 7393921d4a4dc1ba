//! Counts and facts about the PostgreSQL database. Counts of expired or spent rows stop at the
//! cap (`LIMIT` inside the count), as on redb.

use std::path::PathBuf;

use async_trait::async_trait;
use deadpool_postgres::GenericClient;

use super::PgStore;
use crate::store::{
    BackupReport, Described, ExpiryCutoffs, Overview, StoreError, TOKEN_TABLES, TableCount,
    Timestamp, TokenTable, Totals,
};

const NO_FILE_BACKUPS: &str = "backups of a PostgreSQL database are made with its own tools: \
    pg_dump (or pg_basebackup and WAL archiving); `oxidot backup` copies a redb file";

/// A table's name, the column its expiry is judged on, and what makes an unexpired row spent.
fn filed(table: TokenTable) -> (&'static str, &'static str, Option<&'static str>) {
    match table {
        TokenTable::AccessTokens => ("oxidot_access_tokens", "expires", None),
        TokenTable::RefreshTokens => (
            "oxidot_refresh_tokens",
            "created",
            Some("revoked IS NOT NULL"),
        ),
        TokenTable::Grants => (
            "oxidot_grants",
            "expires",
            Some("expires > $1 AND COALESCE(record->'used', 'null'::jsonb) <> 'null'::jsonb"),
        ),
        TokenTable::IdTokens => ("oxidot_id_tokens", "expires", None),
        TokenTable::DeviceGrants => (
            "oxidot_device_grants",
            "expires",
            Some("expires > $1 AND record->'decision' = '\"Denied\"'::jsonb"),
        ),
    }
}

async fn count(
    client: &impl GenericClient,
    sql: &str,
    at: i64,
    cap: i64,
) -> Result<u64, StoreError> {
    let row = client.query_one(sql, &[&at, &cap]).await?;
    let count: i64 = row.get(0);
    Ok(count.unsigned_abs())
}

#[async_trait]
impl Overview for PgStore {
    async fn totals(&self) -> Result<Totals, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT (SELECT count(*) FROM oxidot_users),
                        (SELECT count(*) FROM oxidot_applications),
                        (SELECT count(*) FROM oxidot_sessions)",
                &[],
            )
            .await?;
        let number = |index: usize| row.get::<_, i64>(index).unsigned_abs();
        Ok(Totals {
            users: number(0),
            applications: number(1),
            sessions: number(2),
        })
    }

    async fn token_counts(
        &self,
        cutoffs: ExpiryCutoffs,
        now: Timestamp,
        cap: u64,
    ) -> Result<Vec<TableCount>, StoreError> {
        let client = self.client().await?;
        let cap = i64::try_from(cap).unwrap_or(i64::MAX);
        let mut counts = Vec::with_capacity(TOKEN_TABLES.len());
        for table in TOKEN_TABLES {
            let (name, column, spent_when) = filed(table);
            let stored: i64 = client
                .query_one(&format!("SELECT count(*) FROM {name}"), &[])
                .await?
                .get(0);
            let expired = match cutoffs.of(table) {
                Some(before) => {
                    let sql = format!(
                        "SELECT count(*) FROM (SELECT 1 FROM {name} WHERE {column} < $1 \
                         LIMIT $2) AS due"
                    );
                    count(&client, &sql, before.0, cap).await?
                }
                None => 0,
            };
            let spent = match spent_when {
                Some(condition) => {
                    // `$1` is now where the condition uses it; the revoked refresh tokens'
                    // condition ignores it (PostgreSQL needs every parameter typed: it is cast).
                    let sql = format!(
                        "SELECT count(*) FROM (SELECT 1 FROM {name} WHERE {condition} \
                         AND $1::BIGINT IS NOT NULL LIMIT $2) AS spent"
                    );
                    count(&client, &sql, now.0, cap).await?
                }
                None => 0,
            };
            counts.push(TableCount {
                table,
                stored: stored.unsigned_abs(),
                expired,
                spent,
            });
        }
        Ok(counts)
    }

    async fn probe(&self, now: Timestamp) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO oxidot_versions (name, version) VALUES ('readiness_probe', $1)
                 ON CONFLICT (name) DO UPDATE SET version = $1",
                &[&now.0],
            )
            .await?;
        Ok(())
    }

    async fn describe(&self) -> Result<Described, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT COALESCE((SELECT MAX(version) FROM oxidot_schema_migrations), 0)::BIGINT,
                        pg_database_size(current_database())",
                &[],
            )
            .await?;
        let status = self.pool.status();
        Ok(Described {
            location: self.location.to_string(),
            schema_version: row.get::<_, i64>(0).unsigned_abs(),
            bytes: row.get::<_, i64>(1).unsigned_abs(),
            write_transactions: None,
            connections: Some((
                u64::try_from(status.size).unwrap_or(0),
                u64::try_from(status.available).unwrap_or(0),
            )),
        })
    }

    fn backs_up_to_files(&self) -> Result<(), StoreError> {
        Err(StoreError::Unsupported(NO_FILE_BACKUPS))
    }

    async fn back_up(&self, _destination: PathBuf) -> Result<BackupReport, StoreError> {
        Err(StoreError::Unsupported(NO_FILE_BACKUPS))
    }
}
