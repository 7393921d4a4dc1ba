//! What the admin dashboard, `/readyz`, `/metrics` and `oxidot status` read about the store as
//! a whole: a probe write, the tokens counted by what is live, expired (by the cleanup's own
//! cutoffs) and spent, the totals, and what the backend says about itself — each read at the
//! clock's time.

use crate::clock::Clock;
use crate::config::OAuth2Provider;
use crate::store::{Described, SharedStorage, StoreError, TableCount, Timestamp, Totals};

#[derive(Clone)]
pub struct StoreStatus {
    store: SharedStorage,
    provider: OAuth2Provider,
    clock: Clock,
}

impl StoreStatus {
    pub fn new(store: SharedStorage, provider: OAuth2Provider, clock: Clock) -> Self {
        Self {
            store,
            provider,
            clock,
        }
    }

    fn now(&self) -> Timestamp {
        Timestamp::from_datetime(self.clock.now())
    }

    /// A real, tiny write: fails when the store cannot take writes now.
    pub async fn probe(&self) -> Result<(), StoreError> {
        self.store.probe(self.now()).await
    }

    /// Each token table's rows; expired ones (counted up to `cap`) by the cutoffs the cleanup
    /// deletes at.
    pub async fn token_counts(&self, cap: u64) -> Result<Vec<TableCount>, StoreError> {
        let now = self.now();
        let cutoffs = crate::cleanup::cutoffs(&self.provider, now);
        self.store.token_counts(cutoffs, now, cap).await
    }

    pub async fn totals(&self) -> Result<Totals, StoreError> {
        self.store.totals().await
    }

    pub async fn describe(&self) -> Result<Described, StoreError> {
        self.store.describe().await
    }
}
