//! Units of work for the background: the periodic tasks (django-celery-beat's table), the
//! lease that elects the one instance running them, and the cleanup's batches.

use async_trait::async_trait;

use super::{ExpiringKind, PeriodicTask, StoreError, TaskOutcome, Timestamp};

/// A task declared in the configuration, as stored: the declaration, with the run history of
/// the task it replaces (a restart keeps when it last ran and what it said).
pub fn configured_task(declared: PeriodicTask, previous: Option<&PeriodicTask>) -> PeriodicTask {
    PeriodicTask {
        last_run_at: previous.and_then(|task| task.last_run_at),
        total_run_count: previous.map_or(0, |task| task.total_run_count),
        last_result: previous.and_then(|task| task.last_result.clone()),
        from_config: true,
        ..declared
    }
}

/// A task after a run that ended with `outcome`: its history advanced; a one-off task
/// disabled.
pub fn after_run(task: PeriodicTask, outcome: TaskOutcome) -> PeriodicTask {
    PeriodicTask {
        last_run_at: Some(outcome.started),
        total_run_count: task.total_run_count + 1,
        enabled: task.enabled && !task.one_off,
        last_result: Some(outcome),
        ..task
    }
}

#[async_trait]
pub trait TaskStorage: Send + Sync {
    /// Every periodic task, by name.
    async fn periodic_tasks(&self) -> Result<Vec<PeriodicTask>, StoreError>;

    async fn periodic_task(&self, name: &str) -> Result<Option<PeriodicTask>, StoreError>;

    /// Adds a task under a new name; false (nothing stored) when the name is taken.
    async fn add_periodic_task(&self, task: PeriodicTask) -> Result<bool, StoreError>;

    /// Stores a task under its name, new or replacing.
    async fn save_periodic_task(&self, task: PeriodicTask) -> Result<(), StoreError>;

    /// Whether there was one.
    async fn delete_periodic_task(&self, name: &str) -> Result<bool, StoreError>;

    /// Records a run's outcome on the task as stored now (it may have been edited while it
    /// ran; see `after_run`). Nothing when it was deleted meanwhile.
    async fn record_task_run(&self, name: &str, outcome: TaskOutcome) -> Result<(), StoreError>;

    /// Disables a task (it expired).
    async fn disable_periodic_task(&self, name: &str) -> Result<(), StoreError>;

    /// Brings the configuration's tasks into the table in one transaction: each declared task
    /// replaces its stored version (`configured_task`), and tasks that came from the
    /// configuration and are no longer declared go.
    async fn sync_configured_tasks(&self, declared: Vec<PeriodicTask>) -> Result<(), StoreError>;

    /// Takes or renews the lease `name` for `holder` until `until`, when it is free, expired
    /// at `now`, or already `holder`'s. Whether `holder` holds it now. Instances running one
    /// job (the scheduler) call this; only the holder runs it.
    async fn claim_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Gives the lease up (a clean shutdown), when `holder` holds it.
    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError>;
}

#[async_trait]
pub trait CleanupStorage: Send + Sync {
    /// Deletes up to `limit` records of `kind` due before `cutoff` (`cleanup::due_before`),
    /// oldest first, in one short transaction. How many went, and whether more may be due.
    async fn clear_expired_batch(
        &self,
        kind: ExpiringKind,
        cutoff: Timestamp,
        limit: usize,
    ) -> Result<(u64, bool), StoreError>;

    /// After a cleanup's batches: whatever makes them durable and their space reusable.
    async fn finish_cleanup(&self) -> Result<(), StoreError>;
}
