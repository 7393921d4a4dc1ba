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
//! attacker's count restart whenever the real user logs in. State is bounded: each key keeps
//! at most the failures that matter to it, and expired keys are swept as the map grows.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use time::{Duration, OffsetDateTime};

use crate::clock::Clock;
use crate::config::LoginThrottle;

/// Entries beyond which a sweep of expired keys runs on the next failure.
const SWEEP_THRESHOLD: usize = 10_000;
/// The first delay once a principal is slowed down; each further failure doubles it.
const FIRST_DELAY: std::time::Duration = std::time::Duration::from_millis(250);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Source { principal: String, ip: String },
    Ip(String),
    Principal(String),
}

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

pub struct Throttle {
    limits: LoginThrottle,
    clock: Clock,
    failures: Mutex<HashMap<Key, VecDeque<OffsetDateTime>>>,
}

fn ip_of(ip: Option<&str>) -> String {
    ip.unwrap_or("unknown").to_owned()
}

impl Throttle {
    pub fn new(limits: LoginThrottle, clock: Clock) -> Self {
        Self {
            limits,
            clock,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn window(&self) -> Duration {
        Duration::seconds(i64::try_from(self.limits.window_seconds).unwrap_or(i64::MAX))
    }

    /// The three keys of an attempt, each with the failures it needs to remember.
    fn keys(&self, principal: &str, ip: Option<&str>) -> [(Key, usize); 3] {
        let principal = principal.to_lowercase();
        let cap = |limit: u32| usize::try_from(limit).unwrap_or(usize::MAX).max(1);
        [
            (
                Key::Source {
                    principal: principal.clone(),
                    ip: ip_of(ip),
                },
                cap(self.limits.max_failures_per_source),
            ),
            (Key::Ip(ip_of(ip)), cap(self.limits.max_failures_per_ip)),
            // Enough past the slow-down point to reach the longest delay.
            (
                Key::Principal(principal),
                cap(self.limits.slow_down_after).saturating_add(32),
            ),
        ]
    }

    /// What to do with an attempt for `principal` from `ip`.
    pub fn check(&self, principal: &str, ip: Option<&str>) -> Verdict {
        let now = self.clock.now();
        let window = self.window();
        let Ok(failures) = self.failures.lock() else {
            return Verdict::Go;
        };
        let recent = |key: &Key| -> Vec<OffsetDateTime> {
            failures.get(key).map_or_else(Vec::new, |times| {
                times
                    .iter()
                    .copied()
                    .filter(|at| *at + window > now)
                    .collect()
            })
        };
        let [(source, _), (by_ip, _), (by_principal, _)] = self.keys(principal, ip);
        let mut retry_after = None;
        for (key, limit) in [
            (&source, self.limits.max_failures_per_source),
            (&by_ip, self.limits.max_failures_per_ip),
        ] {
            let limit = usize::try_from(limit).unwrap_or(usize::MAX);
            let times = recent(key);
            if limit == 0 || times.len() < limit {
                continue;
            }
            // Unlocks when enough of the recent failures have left the window.
            let unlocking = times[times.len() - limit];
            let wait =
                u64::try_from((unlocking + window - now).whole_seconds().max(1)).unwrap_or(1);
            retry_after = Some(retry_after.map_or(wait, |other: u64| other.max(wait)));
        }
        if let Some(retry_after) = retry_after {
            return Verdict::Refuse { retry_after };
        }
        let over = recent(&by_principal)
            .len()
            .checked_sub(usize::try_from(self.limits.slow_down_after).unwrap_or(usize::MAX));
        match over {
            Some(over) if self.limits.slow_down_after > 0 => Verdict::Wait(self.delay(over)),
            _ => Verdict::Go,
        }
    }

    /// The delay after `over` failures beyond the slow-down point: doubling, capped.
    fn delay(&self, over: usize) -> std::time::Duration {
        let cap = std::time::Duration::from_secs(self.limits.max_delay_seconds);
        let doublings = u32::try_from(over).unwrap_or(u32::MAX).min(16);
        FIRST_DELAY.saturating_mul(1 << doublings).min(cap)
    }

    /// Applies the verdict: waits when the principal is slowed down; the seconds to wait when
    /// the attempt is refused.
    pub async fn admit(&self, principal: &str, ip: Option<&str>) -> Result<(), u64> {
        match self.check(principal, ip) {
            Verdict::Go => Ok(()),
            Verdict::Wait(delay) => {
                tracing::info!(
                    principal,
                    ip = ip.unwrap_or("unknown"),
                    delay_ms = delay.as_millis() as u64,
                    "attempt slowed down: many recent failures for this principal"
                );
                tokio::time::sleep(delay).await;
                Ok(())
            }
            Verdict::Refuse { retry_after } => Err(retry_after),
        }
    }

    pub fn record_failure(&self, principal: &str, ip: Option<&str>) {
        let now = self.clock.now();
        let window = self.window();
        let keys = self.keys(principal, ip);
        let Ok(mut failures) = self.failures.lock() else {
            return;
        };
        if failures.len() > SWEEP_THRESHOLD {
            failures.retain(|_, times| times.back().is_some_and(|at| *at + window > now));
        }
        for (key, cap) in keys {
            let times = failures.entry(key).or_default();
            while times.front().is_some_and(|at| *at + window <= now) || times.len() >= cap {
                times.pop_front();
            }
            times.push_back(now);
        }
    }

    /// A success clears the failures of its own source (principal and IP), nothing else.
    pub fn record_success(&self, principal: &str, ip: Option<&str>) {
        let [(source, _), _, _] = self.keys(principal, ip);
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(&source);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> (Throttle, Clock) {
        let clock = Clock::manual(time::macros::datetime!(2026-01-01 00:00 UTC));
        let limits = LoginThrottle {
            max_failures_per_source: 3,
            max_failures_per_ip: 5,
            slow_down_after: 4,
            max_delay_seconds: 2,
            window_seconds: 60,
        };
        (Throttle::new(limits, clock.clone()), clock)
    }

    #[test]
    fn a_source_is_locked_after_its_failures_until_the_window_passes() {
        let (throttle, clock) = throttle();
        for _ in 0..3 {
            assert_eq!(throttle.check("alice", Some("1.2.3.4")), Verdict::Go);
            throttle.record_failure("alice", Some("1.2.3.4"));
        }
        assert_eq!(
            throttle.check("Alice", Some("1.2.3.4")),
            Verdict::Refuse { retry_after: 60 }
        );
        // Another source is not locked out by them.
        assert_eq!(throttle.check("alice", Some("5.6.7.8")), Verdict::Go);
        clock.advance(Duration::seconds(59));
        assert_eq!(
            throttle.check("alice", Some("1.2.3.4")),
            Verdict::Refuse { retry_after: 1 }
        );
        clock.advance(Duration::seconds(1));
        assert_eq!(throttle.check("alice", Some("1.2.3.4")), Verdict::Go);
    }

    #[test]
    fn an_ip_is_locked_across_principals() {
        let (throttle, _) = throttle();
        for name in ["a", "b", "c", "d", "e"] {
            throttle.record_failure(name, Some("9.9.9.9"));
        }
        assert!(matches!(
            throttle.check("z", Some("9.9.9.9")),
            Verdict::Refuse { .. }
        ));
        assert_eq!(throttle.check("z", Some("8.8.8.8")), Verdict::Go);
    }

    #[test]
    fn failures_from_many_ips_slow_a_principal_down_and_never_lock_it() {
        let (throttle, _) = throttle();
        for n in 0..4 {
            throttle.record_failure("bob", Some(&format!("10.0.0.{n}")));
        }
        let fresh = Some("192.0.2.1");
        assert_eq!(
            throttle.check("bob", fresh),
            Verdict::Wait(std::time::Duration::from_millis(250))
        );
        for n in 4..40 {
            throttle.record_failure("bob", Some(&format!("10.0.0.{n}")));
        }
        assert_eq!(
            throttle.check("bob", fresh),
            Verdict::Wait(std::time::Duration::from_secs(2)),
            "capped"
        );
        assert_eq!(throttle.check("carol", fresh), Verdict::Go);
    }

    #[test]
    fn success_clears_only_its_own_source() {
        let (throttle, _) = throttle();
        throttle.record_failure("bob", Some("1.1.1.1"));
        throttle.record_failure("bob", Some("1.1.1.1"));
        throttle.record_failure("bob", Some("2.2.2.2"));
        throttle.record_failure("bob", Some("2.2.2.2"));
        throttle.record_success("bob", Some("1.1.1.1"));
        throttle.record_failure("bob", Some("1.1.1.1"));
        // Slowed down (bob has failed five times in all), not refused.
        assert!(matches!(
            throttle.check("bob", Some("1.1.1.1")),
            Verdict::Wait(_)
        ));
        throttle.record_failure("bob", Some("2.2.2.2"));
        assert!(matches!(
            throttle.check("bob", Some("2.2.2.2")),
            Verdict::Refuse { .. }
        ));
    }
}
