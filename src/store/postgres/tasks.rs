//! Periodic tasks, leases and the cleanup's batches in SQL. A lease is a row taken with one
//! conditional upsert, so of instances claiming it at once exactly one holds it.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;

use super::{PgStore, json, record};
use crate::store::{
    CleanupStorage, ExpiringKind, PeriodicTask, StoreError, TaskOutcome, TaskStorage, Timestamp,
    after_run, configured_task,
};

const PUT_TASK: &str = "INSERT INTO oxidot_periodic_tasks (name, record) VALUES ($1, $2)
    ON CONFLICT (name) DO UPDATE SET record = $2";

/// Taken when free, expired or already the holder's; a row comes back only then.
const CLAIM_LEASE: &str = "INSERT INTO oxidot_leases (name, holder, expires) VALUES ($1, $2, $4)
    ON CONFLICT (name) DO UPDATE SET holder = $2, expires = $4
        WHERE oxidot_leases.holder = $2 OR oxidot_leases.expires <= $3
    RETURNING holder";

pub(super) async fn put_task(
    client: &impl GenericClient,
    task: &PeriodicTask,
) -> Result<(), StoreError> {
    let statement = client.prepare_cached(PUT_TASK).await?;
    client
        .execute(&statement, &[&task.name, &json(task)])
        .await?;
    Ok(())
}

async fn task(
    client: &impl GenericClient,
    name: &str,
    lock: bool,
) -> Result<Option<PeriodicTask>, StoreError> {
    let sql = if lock {
        "SELECT record FROM oxidot_periodic_tasks WHERE name = $1 FOR UPDATE"
    } else {
        "SELECT record FROM oxidot_periodic_tasks WHERE name = $1"
    };
    match client.query_opt(sql, &[&name]).await? {
        Some(row) => record(&row, 0),
        None => Ok(None),
    }
}

/// Where the cleanup finds each kind: its table, the column its due time is in, and whether
/// its rows belong to token families (whose last member takes the family with it).
fn filed(kind: ExpiringKind) -> (&'static str, &'static str, bool) {
    match kind {
        ExpiringKind::AccessToken => ("oxidot_access_tokens", "expires", true),
        ExpiringKind::RefreshToken => ("oxidot_refresh_tokens", "created", true),
        ExpiringKind::RevokedRefreshToken => ("oxidot_refresh_tokens", "revoked", true),
        ExpiringKind::IdToken => ("oxidot_id_tokens", "expires", false),
        ExpiringKind::Grant => ("oxidot_grants", "expires", true),
        ExpiringKind::DeviceGrant => ("oxidot_device_grants", "expires", false),
        ExpiringKind::Session => ("oxidot_sessions", "expires", false),
    }
}

#[async_trait]
impl TaskStorage for PgStore {
    async fn periodic_tasks(&self) -> Result<Vec<PeriodicTask>, StoreError> {
        let client = self.client().await?;
        let mut tasks = Vec::new();
        for row in client
            .query(
                "SELECT record FROM oxidot_periodic_tasks ORDER BY name",
                &[],
            )
            .await?
        {
            tasks.extend(record::<PeriodicTask>(&row, 0)?);
        }
        Ok(tasks)
    }

    async fn periodic_task(&self, name: &str) -> Result<Option<PeriodicTask>, StoreError> {
        let client = self.client().await?;
        task(&client, name, false).await
    }

    async fn add_periodic_task(&self, task: PeriodicTask) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let added = client
            .execute(
                "INSERT INTO oxidot_periodic_tasks (name, record) VALUES ($1, $2)
                 ON CONFLICT (name) DO NOTHING",
                &[&task.name, &json(&task)],
            )
            .await?;
        Ok(added > 0)
    }

    async fn save_periodic_task(&self, task: PeriodicTask) -> Result<(), StoreError> {
        let client = self.client().await?;
        put_task(&client, &task).await
    }

    async fn delete_periodic_task(&self, name: &str) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let deleted = client
            .execute(
                "DELETE FROM oxidot_periodic_tasks WHERE name = $1",
                &[&name],
            )
            .await?;
        Ok(deleted > 0)
    }

    async fn record_task_run(&self, name: &str, outcome: TaskOutcome) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        if let Some(stored) = task(&transaction, name, true).await? {
            put_task(&transaction, &after_run(stored, outcome)).await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    async fn disable_periodic_task(&self, name: &str) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        if let Some(mut stored) = task(&transaction, name, true).await? {
            stored.enabled = false;
            put_task(&transaction, &stored).await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    async fn sync_configured_tasks(&self, declared: Vec<PeriodicTask>) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        let names: Vec<&str> = declared.iter().map(|task| task.name.as_str()).collect();
        transaction
            .execute(
                "DELETE FROM oxidot_periodic_tasks
                 WHERE (record->>'from_config')::BOOLEAN AND NOT (name = ANY($1))",
                &[&names],
            )
            .await?;
        for declared in declared {
            let previous = task(&transaction, &declared.name, true).await?;
            put_task(&transaction, &configured_task(declared, previous.as_ref())).await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    async fn claim_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(CLAIM_LEASE).await?;
        let held = client
            .query_opt(&statement, &[&name, &holder, &now.0, &until.0])
            .await?;
        Ok(held.is_some())
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM oxidot_leases WHERE name = $1 AND holder = $2",
                &[&name, &holder],
            )
            .await?;
        Ok(())
    }
}

#[async_trait]
impl CleanupStorage for PgStore {
    async fn clear_expired_batch(
        &self,
        kind: ExpiringKind,
        cutoff: Timestamp,
        limit: usize,
    ) -> Result<(u64, bool), StoreError> {
        let (table, column, in_families) = filed(kind);
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        // The table and column names are this module's constants, never input.
        let returning = if in_families { "family" } else { "NULL::BYTEA" };
        let sql = format!(
            "DELETE FROM {table} WHERE key IN (
                 SELECT key FROM {table} WHERE {column} < $1 ORDER BY {column} LIMIT $2
             ) RETURNING {returning}"
        );
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        let statement = transaction.prepare_cached(&sql).await?;
        let rows = transaction.query(&statement, &[&cutoff.0, &limit]).await?;
        let mut families: Vec<Vec<u8>> = rows
            .iter()
            .filter_map(|row| row.get::<_, Option<Vec<u8>>>(0))
            .collect();
        families.sort_unstable();
        families.dedup();
        if !families.is_empty() {
            // A family whose last token or code went goes too (as on redb).
            transaction
                .execute(
                    "DELETE FROM oxidot_families f WHERE f.id = ANY($1)
                       AND NOT EXISTS (SELECT 1 FROM oxidot_refresh_tokens t WHERE t.family = f.id)
                       AND NOT EXISTS (SELECT 1 FROM oxidot_access_tokens t WHERE t.family = f.id)
                       AND NOT EXISTS (SELECT 1 FROM oxidot_grants t WHERE t.family = f.id)",
                    &[&families],
                )
                .await?;
        }
        transaction.commit().await?;
        let deleted = rows.len() as u64;
        Ok((deleted, i64::try_from(deleted).unwrap_or(i64::MAX) >= limit))
    }

    async fn finish_cleanup(&self) -> Result<(), StoreError> {
        // Each batch committed durably; PostgreSQL's autovacuum reclaims the space.
        Ok(())
    }
}
