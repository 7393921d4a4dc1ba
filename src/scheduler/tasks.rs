//! The periodic tasks as the admin console edits them: the table, read and changed through
//! the store (the scheduler picks changes up with `Scheduler::sync`).

use crate::store::{PeriodicTask, SharedStorage, StoreError};

pub struct Tasks {
    store: SharedStorage,
}

impl Tasks {
    pub fn new(store: SharedStorage) -> Self {
        Self { store }
    }

    /// Every task, by name.
    pub async fn all(&self) -> Result<Vec<PeriodicTask>, StoreError> {
        self.store.periodic_tasks().await
    }

    pub async fn get(&self, name: &str) -> Result<Option<PeriodicTask>, StoreError> {
        self.store.periodic_task(name).await
    }

    /// Adds a task; false when its name is taken.
    pub async fn add(&self, task: PeriodicTask) -> Result<bool, StoreError> {
        self.store.add_periodic_task(task).await
    }

    pub async fn save(&self, task: PeriodicTask) -> Result<(), StoreError> {
        self.store.save_periodic_task(task).await
    }

    /// Whether there was one.
    pub async fn delete(&self, name: &str) -> Result<bool, StoreError> {
        self.store.delete_periodic_task(name).await
    }
}
