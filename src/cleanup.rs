//! `clear_expired`: DOT 3.4.1's `cleartokens`, in DOT's order and with its log lines, plus what
//! DOT leaves behind (expired device grants and login sessions).
//!
//! Its cost follows what has expired, not the size of the tables: each category is a walk of
//! its own rows in the expiry index, in batches of `clear_expired_tokens_batch_size`, each batch
//! one short write transaction (bounded in time too, so token issuance is never stuck behind a
//! cleanup), with `clear_expired_tokens_batch_interval` seconds between batches.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::clock::Clock;
use crate::config::OAuth2Provider;
use crate::store::{CleanupStorage, ExpiringKind, ExpiryCutoffs, StoreError, Timestamp};

/// How many records each category lost.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CleanupReport {
    pub revoked_refresh_tokens: u64,
    pub orphaned_refresh_tokens: u64,
    /// None when refresh tokens do not expire (`refresh_token_expire_seconds` unset).
    pub expired_refresh_tokens: Option<u64>,
    pub access_tokens: u64,
    pub id_tokens: u64,
    pub grants: u64,
    pub device_grants: u64,
    pub sessions: u64,
    /// Set when the cleanup was stopped at a batch boundary (a shutdown, or its run's lease
    /// taken by another run: see `scheduler::TaskLease`).
    pub interrupted: bool,
    pub elapsed_millis: u64,
}

impl CleanupReport {
    /// DOT's log lines, then oxidot's own.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![
            format!(
                "{} Revoked refresh tokens deleted",
                self.revoked_refresh_tokens
            ),
            format!(
                "{} Orphaned refresh tokens deleted",
                self.orphaned_refresh_tokens
            ),
            match self.expired_refresh_tokens {
                Some(count) => format!("{count} Expired refresh tokens deleted"),
                None => "refresh_expire_at is None. No expired refresh tokens deleted.".to_owned(),
            },
            format!("{} Expired access tokens deleted", self.access_tokens),
            format!("{} Expired ID tokens deleted", self.id_tokens),
            format!("{} Expired grant tokens deleted", self.grants),
            format!("{} Expired device grants deleted", self.device_grants),
            format!("{} Expired sessions deleted", self.sessions),
        ];
        if self.interrupted {
            lines.push(
                "Stopped early: the server is shutting down, or another run took this task's \
                 lease."
                    .to_owned(),
            );
        }
        lines
    }

    pub fn total(&self) -> u64 {
        self.revoked_refresh_tokens
            + self.orphaned_refresh_tokens
            + self.expired_refresh_tokens.unwrap_or(0)
            + self.access_tokens
            + self.id_tokens
            + self.grants
            + self.device_grants
            + self.sessions
    }
}

/// The time before which rows of `kind` in the expiry index are due at `now`: records filed by
/// expiry are due before `now`; refresh tokens are filed by creation and due by today's
/// lifetime (never, without one); revoked refresh tokens by how long reuse detection or the
/// grace period needs them. The cleanup deletes what is due and the counts call it expired.
pub fn due_before(
    kind: ExpiringKind,
    provider: &OAuth2Provider,
    now: Timestamp,
) -> Option<Timestamp> {
    match kind {
        ExpiringKind::RefreshToken => {
            crate::rules::refresh_tokens_created_before_have_expired(provider, now)
        }
        ExpiringKind::RevokedRefreshToken => {
            // A revoked refresh token matters during its grace period, and — while reuse
            // protection is on — for as long as a refresh token lives, so that its reuse
            // still revokes its family.
            let keep = if provider.refresh_token_reuse_protection {
                provider.refresh_token_expire_seconds
            } else {
                Some(provider.refresh_token_grace_period_seconds)
            };
            keep.map(|seconds| Timestamp(now.0.saturating_sub(seconds_micros(seconds))))
        }
        ExpiringKind::AccessToken
        | ExpiringKind::IdToken
        | ExpiringKind::Grant
        | ExpiringKind::DeviceGrant
        | ExpiringKind::Session => Some(now),
    }
}

/// Which stored tokens count as expired now (the dashboard's and `/metrics`' counts).
pub fn cutoffs(provider: &OAuth2Provider, now: Timestamp) -> ExpiryCutoffs {
    ExpiryCutoffs {
        access_tokens: due_before(ExpiringKind::AccessToken, provider, now),
        refresh_tokens: due_before(ExpiringKind::RefreshToken, provider, now),
        grants: due_before(ExpiringKind::Grant, provider, now),
        id_tokens: due_before(ExpiringKind::IdToken, provider, now),
        device_grants: due_before(ExpiringKind::DeviceGrant, provider, now),
    }
}

/// Whether a long job may go on to its next batch: asked before each one.
#[async_trait]
pub trait Proceed: Send + Sync {
    async fn proceed(&self) -> bool;
}

/// A stop flag (a shutdown): go on until it is set.
#[async_trait]
impl Proceed for AtomicBool {
    async fn proceed(&self) -> bool {
        !self.load(Ordering::Relaxed)
    }
}

/// Runs the cleanup, asking `proceed` before each batch (a no ends it there).
pub async fn clear_expired(
    store: &(impl CleanupStorage + ?Sized),
    provider: &OAuth2Provider,
    clock: &Clock,
    proceed: &dyn Proceed,
) -> Result<CleanupReport, StoreError> {
    let started = Instant::now();
    let now = Timestamp::from_datetime(clock.now());
    let mut report = CleanupReport::default();
    let passes = [
        ExpiringKind::RevokedRefreshToken,
        ExpiringKind::RefreshToken,
        ExpiringKind::AccessToken,
        ExpiringKind::IdToken,
        ExpiringKind::Grant,
        ExpiringKind::DeviceGrant,
        ExpiringKind::Session,
    ]
    .map(|kind| (kind, due_before(kind, provider, now)));
    let limit = usize::try_from(provider.clear_expired_tokens_batch_size.max(1)).unwrap_or(1);
    let pause = Duration::from_secs_f64(provider.clear_expired_tokens_batch_interval.max(0.0));
    for (kind, cutoff) in passes {
        let deleted = match cutoff {
            Some(cutoff) if !report.interrupted => {
                let (deleted, interrupted) =
                    delete_before(store, kind, cutoff, limit, pause, proceed).await?;
                report.interrupted = interrupted;
                deleted
            }
            _ => 0,
        };
        match kind {
            ExpiringKind::RevokedRefreshToken => report.revoked_refresh_tokens = deleted,
            ExpiringKind::RefreshToken => {
                report.expired_refresh_tokens = cutoff.map(|_| deleted);
            }
            ExpiringKind::AccessToken => report.access_tokens = deleted,
            ExpiringKind::IdToken => report.id_tokens = deleted,
            ExpiringKind::Grant => report.grants = deleted,
            ExpiringKind::DeviceGrant => report.device_grants = deleted,
            ExpiringKind::Session => report.sessions = deleted,
        }
    }
    store.finish_cleanup().await?;
    report.elapsed_millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    crate::metrics::global().record_cleanup(&report);
    // An idle cleanup (the demo runs one every 10 s) is one quiet line; one that deleted
    // something gives DOT's report.
    if report.total() == 0 && !report.interrupted {
        tracing::debug!(
            target: "oxidot::cleanup",
            elapsed_millis = report.elapsed_millis,
            "cleanup: nothing to delete"
        );
    } else {
        for line in report.lines() {
            tracing::info!(target: "oxidot::cleanup", "{line}");
        }
    }
    Ok(report)
}

fn seconds_micros(seconds: u64) -> i64 {
    i64::try_from(seconds)
        .unwrap_or(i64::MAX)
        .saturating_mul(1_000_000)
}

/// Deletes every record of `kind` filed before `cutoff`, batch by batch. Returns the count and
/// whether `proceed` cut it short.
async fn delete_before(
    store: &(impl CleanupStorage + ?Sized),
    kind: ExpiringKind,
    cutoff: Timestamp,
    limit: usize,
    pause: Duration,
    proceed: &dyn Proceed,
) -> Result<(u64, bool), StoreError> {
    let mut total = 0;
    loop {
        if !proceed.proceed().await {
            return Ok((total, true));
        }
        let (deleted, more) = store.clear_expired_batch(kind, cutoff, limit).await?;
        total += deleted;
        if !more {
            return Ok((total, false));
        }
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        } else {
            tokio::task::yield_now().await;
        }
    }
}
