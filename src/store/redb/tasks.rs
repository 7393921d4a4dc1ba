//! Periodic tasks, the scheduler's lease and the cleanup's batches on redb. One process owns
//! the file, so the lease is its own at once (it is kept in memory: there is nobody to hand it
//! to).

use async_trait::async_trait;

use super::Store;
use crate::store::{
    CleanupStorage, ExpiringKind, PeriodicTask, StoreError, TaskOutcome, TaskStorage, Timestamp,
    after_run, configured_task,
};

/// Longest a cleanup batch holds the writer (so token issuance is never stuck behind it).
const BATCH_BUDGET: std::time::Duration = std::time::Duration::from_millis(10);

#[async_trait]
impl TaskStorage for Store {
    async fn periodic_tasks(&self) -> Result<Vec<PeriodicTask>, StoreError> {
        self.read(|tx| tx.periodic_tasks())
    }

    async fn periodic_task(&self, name: &str) -> Result<Option<PeriodicTask>, StoreError> {
        self.read(|tx| tx.periodic_task(name))
    }

    async fn add_periodic_task(&self, task: PeriodicTask) -> Result<bool, StoreError> {
        self.write(move |tx| {
            if tx.periodic_task(&task.name)?.is_some() {
                return Ok(false);
            }
            tx.put_periodic_task(&task)?;
            Ok(true)
        })
        .await
    }

    async fn save_periodic_task(&self, task: PeriodicTask) -> Result<(), StoreError> {
        self.write(move |tx| tx.put_periodic_task(&task)).await
    }

    async fn delete_periodic_task(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_owned();
        self.write(move |tx| tx.delete_periodic_task(&name)).await
    }

    async fn record_task_run(&self, name: &str, outcome: TaskOutcome) -> Result<(), StoreError> {
        let name = name.to_owned();
        self.write(move |tx| {
            if let Some(task) = tx.periodic_task(&name)? {
                tx.put_periodic_task(&after_run(task, outcome.clone()))?;
            }
            Ok(())
        })
        .await
    }

    async fn disable_periodic_task(&self, name: &str) -> Result<(), StoreError> {
        let name = name.to_owned();
        self.write(move |tx| {
            if let Some(mut task) = tx.periodic_task(&name)? {
                task.enabled = false;
                tx.put_periodic_task(&task)?;
            }
            Ok(())
        })
        .await
    }

    async fn sync_configured_tasks(&self, declared: Vec<PeriodicTask>) -> Result<(), StoreError> {
        self.write(move |tx| {
            for name in tx.periodic_task_names()? {
                let undeclared = !declared.iter().any(|task| task.name == name);
                if undeclared
                    && tx
                        .periodic_task(&name)?
                        .is_some_and(|task| task.from_config)
                {
                    tx.delete_periodic_task(&name)?;
                }
            }
            for task in &declared {
                let previous = tx.periodic_task(&task.name)?;
                tx.put_periodic_task(&configured_task(task.clone(), previous.as_ref()))?;
            }
            Ok(())
        })
        .await
    }

    async fn claim_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut leases = self
            .inner
            .leases
            .lock()
            .map_err(|_| StoreError::Storage("the leases were poisoned".to_owned()))?;
        let free = leases
            .get(name)
            .is_none_or(|(current, expires)| current == holder || *expires <= now);
        if free {
            leases.insert(name.to_owned(), (holder.to_owned(), until));
        }
        Ok(free)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let mut leases = self
            .inner
            .leases
            .lock()
            .map_err(|_| StoreError::Storage("the leases were poisoned".to_owned()))?;
        if leases
            .get(name)
            .is_some_and(|(current, _)| current == holder)
        {
            leases.remove(name);
        }
        Ok(())
    }
}

#[async_trait]
impl CleanupStorage for Store {
    async fn clear_expired_batch(
        &self,
        kind: ExpiringKind,
        cutoff: Timestamp,
        limit: usize,
    ) -> Result<(u64, bool), StoreError> {
        // Deferred: a crash would only make the next cleanup redo it (the cleanup ends with
        // durable commits).
        self.write_deferred(move |tx| tx.clear_expired_batch(kind, cutoff, limit, BATCH_BUDGET))
            .await
    }

    async fn finish_cleanup(&self) -> Result<(), StoreError> {
        // The batches committed without an fsync: two durable commits put them on disk and
        // let redb hand the pages they freed to later writes (it does so two commits on).
        for _ in 0..2 {
            self.write(|_| Ok(())).await?;
        }
        Ok(())
    }
}
