//! Throttling of failed attempts to prove who one is: passwords (login page, password grant),
//! client secrets, device user codes. Failures count in memory in three ways within a window:
//!
//! - per *source*, a principal (username, client id) from one IP: locked after
//!   `max_failures_per_source`, so one attacker cannot keep guessing one account;
//! - per IP, whatever the principal: locked after `max_failures_per_ip`, so one attacker
//!   cannot spread guesses over many accounts;
//! - per principal, from every IP: beyond `slow_down_after`, every attempt for it waits a
//!   delay that doubles with each further failure up to `max_delay_seconds`. It slows a
//!   distributed attack down and never refuses, so strangers' failures cannot lock the real
//!   user or client out: from a source that has not failed, the right password or secret
//!   always works.
//!
//! A success clears its own source's failures only: clearing the principal's would let an
//! attacker's count restart whenever the real user logs in. The failures are kept by the store
//! (`store::FailureLog`): in memory for a redb file, in a table shared by every instance on
//! PostgreSQL, so that N instances give an attacker no more guesses than one.

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::LoginThrottle;
use crate::store::{FailureKey, FailureLog, StoreError, Timestamp};

/// The first delay once a principal is slowed down; each further failure doubles it.
const FIRST_DELAY: std::time::Duration = std::time::Duration::from_millis(250);

const MICROS: i64 = 1_000_000;

/// What to do with an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Go,
    /// Go after this delay (the principal is under attack).
    Wait(std::time::Duration),
    /// Refuse (429): this source or this IP failed too often.
    Refuse {
        retry_after: u64,
    },
}

/// An attempt not let through.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("too many failed attempts; try again in {retry_after} seconds")]
    TooMany { retry_after: u64 },
    /// The failures could not be read (the database is unavailable).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An attempt about to be judged: the keys its failures are counted under, and the window.
pub struct Attempt {
    pub keys: [FailureKey; 3],
    /// Failures at or before this have left the window.
    pub since: Timestamp,
    now: Timestamp,
}

/// An attempt let through; whether its source had failed recently (only then does a success
/// have failures to clear: a clean source costs no write).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Admitted {
    source_failed: bool,
}

/// One kind of attempt (`scope`: logins, client secrets, device user codes) and its limits.
pub struct Throttle {
    scope: &'static str,
    limits: LoginThrottle,
    clock: Clock,
    log: Arc<dyn FailureLog>,
}

fn ip_of(ip: Option<&str>) -> &str {
    ip.unwrap_or("unknown")
}

/// The failure key of one principal (lowercased) from one IP.
fn source_name(principal: &str, ip: Option<&str>) -> String {
    format!("source {} {principal}", ip_of(ip))
}

/// The counting window in microseconds.
fn window_micros(limits: &LoginThrottle) -> i64 {
    i64::try_from(limits.window_seconds)
        .unwrap_or(i64::MAX / MICROS)
        .saturating_mul(MICROS)
}

impl Throttle {
    pub fn new(
        scope: &'static str,
        limits: LoginThrottle,
        clock: Clock,
        log: Arc<dyn FailureLog>,
    ) -> Self {
        Self {
            scope,
            limits,
            clock,
            log,
        }
    }

    fn window(&self) -> i64 {
        window_micros(&self.limits)
    }

    fn now(&self) -> Timestamp {
        Timestamp::from_datetime(self.clock.now())
    }

    /// The three keys of an attempt (source, IP, principal), each with the failures it needs
    /// to remember. An IP has no spaces, so the names cannot be confused.
    fn keys(&self, principal: &str, ip: Option<&str>) -> [FailureKey; 3] {
        let principal = principal.to_lowercase();
        let cap = |limit: u32| usize::try_from(limit).unwrap_or(usize::MAX).max(1);
        [
            FailureKey {
                name: source_name(&principal, ip),
                keep: cap(self.limits.max_failures_per_source),
            },
            FailureKey {
                name: format!("ip {}", ip_of(ip)),
                keep: cap(self.limits.max_failures_per_ip),
            },
            // Enough past the slow-down point to reach the longest delay.
            FailureKey {
                name: format!("principal {principal}"),
                keep: cap(self.limits.slow_down_after).saturating_add(32),
            },
        ]
    }

    /// The scope its failures are kept under in the store.
    pub fn scope(&self) -> &'static str {
        self.scope
    }

    /// An attempt for `principal` from `ip`, now.
    pub fn attempt(&self, principal: &str, ip: Option<&str>) -> Attempt {
        let now = self.now();
        Attempt {
            keys: self.keys(principal, ip),
            since: Timestamp(now.0.saturating_sub(self.window())),
            now,
        }
    }

    /// The verdict on an attempt for `principal` from `ip` now, without applying it.
    pub async fn check(&self, principal: &str, ip: Option<&str>) -> Result<Verdict, StoreError> {
        let attempt = self.attempt(principal, ip);
        let recent = self
            .log
            .recent_failures(self.scope, &attempt.keys, attempt.since)
            .await?;
        Ok(verdict(&self.limits, &recent, attempt.now))
    }

    /// Reads the attempt's recent failures and judges it (`judge`).
    pub async fn admit(&self, principal: &str, ip: Option<&str>) -> Result<Admitted, Refused> {
        let attempt = self.attempt(principal, ip);
        let recent = self
            .log
            .recent_failures(self.scope, &attempt.keys, attempt.since)
            .await?;
        self.judge(&attempt, &recent).await
    }

    /// Applies the verdict on an attempt given its recent failures (read with whatever else
    /// the caller needed from the store): waits when the principal is slowed down; refuses
    /// when the source or the IP failed too often.
    pub async fn judge(
        &self,
        attempt: &Attempt,
        recent: &[Vec<Timestamp>],
    ) -> Result<Admitted, Refused> {
        let admitted = Admitted {
            source_failed: recent.first().is_some_and(|times| !times.is_empty()),
        };
        match verdict(&self.limits, recent, attempt.now) {
            Verdict::Go => Ok(admitted),
            Verdict::Wait(delay) => {
                tracing::info!(
                    source = attempt.keys[0].name.as_str(),
                    delay_ms = delay.as_millis() as u64,
                    "attempt slowed down: many recent failures for this principal"
                );
                tokio::time::sleep(delay).await;
                Ok(admitted)
            }
            Verdict::Refuse { retry_after } => Err(Refused::TooMany { retry_after }),
        }
    }

    pub async fn record_failure(
        &self,
        principal: &str,
        ip: Option<&str>,
    ) -> Result<(), StoreError> {
        let now = self.now();
        let expired_before = Timestamp(now.0.saturating_sub(self.window()));
        self.log
            .record_failure(self.scope, &self.keys(principal, ip), now, expired_before)
            .await
    }

    /// A success clears the failures of its own source (principal and IP), nothing else; a
    /// source that had not failed has nothing to clear (no store write).
    pub async fn record_success(
        &self,
        principal: &str,
        ip: Option<&str>,
        admitted: Admitted,
    ) -> Result<(), StoreError> {
        if !admitted.source_failed {
            return Ok(());
        }
        // Only the source's name: the other two keys are not built.
        let source = source_name(&principal.to_lowercase(), ip);
        self.log.forget_failures(self.scope, &source).await
    }
}

/// The verdict on an attempt at `now`, given the recent failures (inside the window, oldest
/// first) of its source, its IP and its principal, in that order.
pub fn verdict(limits: &LoginThrottle, recent: &[Vec<Timestamp>], now: Timestamp) -> Verdict {
    let window = window_micros(limits);
    let empty = Vec::new();
    let of = |n: usize| recent.get(n).unwrap_or(&empty);
    let mut retry_after = None;
    for (times, limit) in [
        (of(0), limits.max_failures_per_source),
        (of(1), limits.max_failures_per_ip),
    ] {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        if limit == 0 || times.len() < limit {
            continue;
        }
        // Unlocks when enough of the recent failures have left the window.
        let unlocking = times[times.len() - limit];
        let wait = (unlocking.0.saturating_add(window) - now.0) / MICROS;
        let wait = u64::try_from(wait.max(1)).unwrap_or(1);
        retry_after = Some(retry_after.map_or(wait, |other: u64| other.max(wait)));
    }
    if let Some(retry_after) = retry_after {
        return Verdict::Refuse { retry_after };
    }
    let over = of(2)
        .len()
        .checked_sub(usize::try_from(limits.slow_down_after).unwrap_or(usize::MAX));
    match over {
        Some(over) if limits.slow_down_after > 0 => Verdict::Wait(delay(limits, over)),
        _ => Verdict::Go,
    }
}

/// The delay after `over` failures beyond the slow-down point: doubling, capped.
fn delay(limits: &LoginThrottle, over: usize) -> std::time::Duration {
    let cap = std::time::Duration::from_secs(limits.max_delay_seconds);
    let doublings = u32::try_from(over).unwrap_or(u32::MAX).min(16);
    FIRST_DELAY.saturating_mul(1 << doublings).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A clean source's success writes nothing; a failed source's success clears it.
    #[tokio::test]
    async fn only_a_source_that_failed_has_failures_to_clear() {
        let (throttle, _) = throttle();
        let clean = throttle.admit("carol", Some("3.3.3.3")).await.unwrap();
        assert_eq!(
            clean,
            Admitted {
                source_failed: false
            }
        );
        throttle
            .record_failure("carol", Some("4.4.4.4"))
            .await
            .unwrap();
        let failed = throttle.admit("carol", Some("4.4.4.4")).await.unwrap();
        assert_eq!(
            failed,
            Admitted {
                source_failed: true
            }
        );
        throttle
            .record_success("carol", Some("4.4.4.4"), failed)
            .await
            .unwrap();
        assert_eq!(
            throttle.admit("carol", Some("4.4.4.4")).await.unwrap(),
            Admitted {
                source_failed: false
            }
        );
    }

    fn throttle() -> (Throttle, Clock) {
        let clock = Clock::manual(time::macros::datetime!(2026-01-01 00:00 UTC));
        let limits = LoginThrottle {
            max_failures_per_source: 3,
            max_failures_per_ip: 5,
            slow_down_after: 4,
            max_delay_seconds: 2,
            window_seconds: 60,
        };
        let log = Arc::new(crate::store::MemoryFailures::default());
        (Throttle::new("login", limits, clock.clone(), log), clock)
    }

    #[tokio::test]
    async fn a_source_is_locked_after_its_failures_until_the_window_passes() {
        let (throttle, clock) = throttle();
        for _ in 0..3 {
            assert_eq!(
                throttle.check("alice", Some("1.2.3.4")).await.unwrap(),
                Verdict::Go
            );
            throttle
                .record_failure("alice", Some("1.2.3.4"))
                .await
                .unwrap();
        }
        assert_eq!(
            throttle.check("Alice", Some("1.2.3.4")).await.unwrap(),
            Verdict::Refuse { retry_after: 60 }
        );
        // Another source is not locked out by them.
        assert_eq!(
            throttle.check("alice", Some("5.6.7.8")).await.unwrap(),
            Verdict::Go
        );
        clock.advance(time::Duration::seconds(59));
        assert_eq!(
            throttle.check("alice", Some("1.2.3.4")).await.unwrap(),
            Verdict::Refuse { retry_after: 1 }
        );
        clock.advance(time::Duration::seconds(1));
        assert_eq!(
            throttle.check("alice", Some("1.2.3.4")).await.unwrap(),
            Verdict::Go
        );
    }

    #[tokio::test]
    async fn an_ip_is_locked_across_principals() {
        let (throttle, _) = throttle();
        for name in ["a", "b", "c", "d", "e"] {
            throttle
                .record_failure(name, Some("9.9.9.9"))
                .await
                .unwrap();
        }
        assert!(matches!(
            throttle.check("z", Some("9.9.9.9")).await.unwrap(),
            Verdict::Refuse { .. }
        ));
        assert_eq!(
            throttle.check("z", Some("8.8.8.8")).await.unwrap(),
            Verdict::Go
        );
    }

    #[tokio::test]
    async fn failures_from_many_ips_slow_a_principal_down_and_never_lock_it() {
        let (throttle, _) = throttle();
        for n in 0..4 {
            throttle
                .record_failure("bob", Some(&format!("10.0.0.{n}")))
                .await
                .unwrap();
        }
        let fresh = Some("192.0.2.1");
        assert_eq!(
            throttle.check("bob", fresh).await.unwrap(),
            Verdict::Wait(std::time::Duration::from_millis(250))
        );
        for n in 4..40 {
            throttle
                .record_failure("bob", Some(&format!("10.0.0.{n}")))
                .await
                .unwrap();
        }
        assert_eq!(
            throttle.check("bob", fresh).await.unwrap(),
            Verdict::Wait(std::time::Duration::from_secs(2)),
            "capped"
        );
        assert_eq!(throttle.check("carol", fresh).await.unwrap(), Verdict::Go);
    }

    #[tokio::test]
    async fn success_clears_only_its_own_source() {
        let (throttle, _) = throttle();
        throttle
            .record_failure("bob", Some("1.1.1.1"))
            .await
            .unwrap();
        throttle
            .record_failure("bob", Some("1.1.1.1"))
            .await
            .unwrap();
        throttle
            .record_failure("bob", Some("2.2.2.2"))
            .await
            .unwrap();
        throttle
            .record_failure("bob", Some("2.2.2.2"))
            .await
            .unwrap();
        let admitted = throttle.admit("bob", Some("1.1.1.1")).await.unwrap();
        throttle
            .record_success("bob", Some("1.1.1.1"), admitted)
            .await
            .unwrap();
        throttle
            .record_failure("bob", Some("1.1.1.1"))
            .await
            .unwrap();
        // Slowed down (bob has failed five times in all), not refused.
        assert!(matches!(
            throttle.check("bob", Some("1.1.1.1")).await.unwrap(),
            Verdict::Wait(_)
        ));
        throttle
            .record_failure("bob", Some("2.2.2.2"))
            .await
            .unwrap();
        assert!(matches!(
            throttle.check("bob", Some("2.2.2.2")).await.unwrap(),
            Verdict::Refuse { .. }
        ));
    }
}
