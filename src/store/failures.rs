//! Failed attempts to prove who one is (passwords, client secrets, device user codes), kept
//! where every instance sees them, so that N instances do not give an attacker N times the
//! guesses. What the counts mean is `crate::throttle`'s business; storage keeps times.
//!
//! A redb deployment is one process: its failures live in memory (`MemoryFailures`), not on
//! disk, so a failed login costs no fsync. PostgreSQL keeps them in a table.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{StoreError, Timestamp};

/// A key failures are counted under, and how many of its recent failures matter (older ones
/// beyond that count may be forgotten).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FailureKey {
    pub name: String,
    pub keep: usize,
}

#[async_trait]
pub trait FailureLog: Send + Sync {
    /// For each key, its failures in `scope` after `since`: the newest `keep` of them,
    /// oldest first.
    async fn recent_failures(
        &self,
        scope: &str,
        keys: &[FailureKey],
        since: Timestamp,
    ) -> Result<Vec<Vec<Timestamp>>, StoreError>;

    /// Records a failure at `at` under every key; failures of `scope` at or before
    /// `expired_before` may go.
    async fn record_failure(
        &self,
        scope: &str,
        keys: &[FailureKey],
        at: Timestamp,
        expired_before: Timestamp,
    ) -> Result<(), StoreError>;

    /// Forgets a key's failures (a success clears its own source).
    async fn forget_failures(&self, scope: &str, key: &str) -> Result<(), StoreError>;
}

/// Keys beyond which a record sweeps out expired ones.
const SWEEP_THRESHOLD: usize = 10_000;

/// Failures in this process's memory, bounded: each key keeps at most the failures that
/// matter to it, and expired keys are swept as the map grows.
#[derive(Default)]
pub struct MemoryFailures {
    failures: Mutex<FailureTimes>,
}

/// Failure times by scope, then key name, oldest first (nested, so that a lookup by `&str`
/// allocates nothing: a check runs on every client authentication).
type FailureTimes = HashMap<String, HashMap<String, VecDeque<Timestamp>>>;

impl std::fmt::Debug for MemoryFailures {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("MemoryFailures")
            .finish_non_exhaustive()
    }
}

impl MemoryFailures {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, FailureTimes>, StoreError> {
        self.failures
            .lock()
            .map_err(|_| StoreError::Storage("the failure counts were poisoned".to_owned()))
    }
}

#[async_trait]
impl FailureLog for MemoryFailures {
    async fn recent_failures(
        &self,
        scope: &str,
        keys: &[FailureKey],
        since: Timestamp,
    ) -> Result<Vec<Vec<Timestamp>>, StoreError> {
        let failures = self.lock()?;
        let of_scope = failures.get(scope);
        Ok(keys
            .iter()
            .map(|key| {
                let Some(times) = of_scope.and_then(|keys| keys.get(key.name.as_str())) else {
                    return Vec::new();
                };
                let mut recent: Vec<Timestamp> =
                    times.iter().copied().filter(|at| *at > since).collect();
                let skip = recent.len().saturating_sub(key.keep);
                recent.drain(..skip);
                recent
            })
            .collect())
    }

    async fn record_failure(
        &self,
        scope: &str,
        keys: &[FailureKey],
        at: Timestamp,
        expired_before: Timestamp,
    ) -> Result<(), StoreError> {
        let mut failures = self.lock()?;
        let of_scope = failures.entry(scope.to_owned()).or_default();
        if of_scope.len() > SWEEP_THRESHOLD {
            of_scope.retain(|_, times| times.back().is_some_and(|last| *last > expired_before));
        }
        for key in keys {
            let times = of_scope.entry(key.name.clone()).or_default();
            while times.front().is_some_and(|first| *first <= expired_before)
                || times.len() >= key.keep.max(1)
            {
                times.pop_front();
            }
            times.push_back(at);
        }
        Ok(())
    }

    async fn forget_failures(&self, scope: &str, key: &str) -> Result<(), StoreError> {
        if let Some(of_scope) = self.lock()?.get_mut(scope) {
            of_scope.remove(key);
        }
        Ok(())
    }
}
