//! One run of a registered task at a time, across every instance and the CLI.
//!
//! The `scheduler` lease says which instance starts the scheduled runs; it cannot stop two
//! runs of one task overlapping on its own: a "Run now" clicked on another instance, a
//! `oxidot cleartokens` beside a scheduled cleanup, or a leader paused (a stopped VM, SIGSTOP)
//! past its lease whose successor starts the cleanup before the old one resumes. So each run
//! also holds the lease `task:<registered task>` (a row with an expiry, as the scheduler's):
//! claimed before the run (a run finding it held by someone else is skipped), renewed every
//! third of its length while the run lasts (`hold`: batched or not, sleeping between batches
//! or not), and before a batch when that renewal is overdue (a process resumed after a pause
//! finds out there, before it writes), given up at the end. A run that cannot renew it — it
//! was paused past the expiry and someone else holds it now — stops at its next batch
//! boundary. What is not covered: one batch (a single short transaction) already sent when the
//! process was paused, and work that has no batches to stop between (a backup copying a file
//! goes on to its end, though the lease cannot be lost while its process runs). A run dropped
//! without `release` (its process killed) leaves the lease to expire.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use crate::cleanup::Proceed;
use crate::clock::Clock;
use crate::store::{Storage, StoreError, Timestamp};

/// A run's hold on its task's lease.
pub struct TaskLease<'a> {
    store: &'a dyn Storage,
    clock: &'a Clock,
    holder: &'a str,
    name: String,
    lease_seconds: u64,
    /// When the lease is next renewed (microseconds): a third of the way through it, so a
    /// run renews it at most every `lease_seconds / 3` and never lets it lapse while alive.
    renew_at: AtomicI64,
    /// A shutdown: the run stops at its next batch boundary.
    stop: Option<&'a AtomicBool>,
    /// Set when a renewal found the lease held by someone else, or could not be made.
    lost: AtomicBool,
}

/// The lease a run of the registered task `task` holds.
pub fn lease_name(task: &str) -> String {
    format!("task:{task}")
}

impl<'a> TaskLease<'a> {
    /// Takes the lease of `task` for `holder`; None when another holder's run has it.
    pub async fn claim(
        store: &'a dyn Storage,
        clock: &'a Clock,
        holder: &'a str,
        task: &str,
        lease_seconds: u64,
        stop: Option<&'a AtomicBool>,
    ) -> Result<Option<Self>, StoreError> {
        let lease = Self {
            store,
            clock,
            holder,
            name: lease_name(task),
            lease_seconds: lease_seconds.max(1),
            renew_at: AtomicI64::new(i64::MIN),
            stop,
            lost: AtomicBool::new(false),
        };
        Ok(lease.renew().await?.then_some(lease))
    }

    fn now(&self) -> Timestamp {
        Timestamp::from_datetime(self.clock.now())
    }

    /// Claims or extends the lease; whether this run holds it now.
    async fn renew(&self) -> Result<bool, StoreError> {
        let now = self.now();
        let held = self
            .store
            .claim_lease(
                &self.name,
                self.holder,
                now,
                now.plus_seconds(self.lease_seconds),
            )
            .await?;
        if held {
            let third =
                i64::try_from(self.lease_seconds.saturating_mul(1_000_000) / 3).unwrap_or(i64::MAX);
            self.renew_at
                .store(now.0.saturating_add(third), Ordering::Relaxed);
        }
        Ok(held)
    }

    /// Runs `work` while renewing the lease every third of its length.
    pub async fn hold<T>(&self, work: impl Future<Output = T>) -> T {
        let every = Duration::from_secs((self.lease_seconds / 3).max(1));
        let mut work = std::pin::pin!(work);
        loop {
            tokio::select! {
                done = &mut work => return done,
                () = tokio::time::sleep(every) => {
                    if !self.lost.load(Ordering::Relaxed) {
                        self.renew_or_give_way().await;
                    }
                }
            }
        }
    }

    /// Renews the lease; whether this run still holds it (a no is kept: the run is over).
    async fn renew_or_give_way(&self) -> bool {
        let held = match self.renew().await {
            Ok(true) => true,
            Ok(false) => {
                tracing::warn!(
                    lease = self.name,
                    "another run holds this task's lease now (this one was paused past it): \
                     stopping at the next batch boundary"
                );
                false
            }
            Err(error) => {
                // Unsure whether another run took over: stop rather than risk two.
                tracing::warn!(lease = self.name, "could not renew the lease: {error}");
                false
            }
        };
        if !held {
            self.lost.store(true, Ordering::Relaxed);
        }
        held
    }

    /// Gives the lease up: the next run (anywhere) may start at once.
    pub async fn release(self) {
        if let Err(error) = self.store.release_lease(&self.name, self.holder).await {
            tracing::warn!(lease = self.name, "could not give the lease up: {error}");
        }
    }
}

#[async_trait]
impl Proceed for TaskLease<'_> {
    async fn proceed(&self) -> bool {
        if self.stop.is_some_and(|stop| stop.load(Ordering::Relaxed))
            || self.lost.load(Ordering::Relaxed)
        {
            return false;
        }
        // Renewed in time by `hold`, unless the process was paused: then find out now.
        self.now().0 < self.renew_at.load(Ordering::Relaxed) || self.renew_or_give_way().await
    }
}
