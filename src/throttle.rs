//! Failed-login throttling, per username and per client IP, in memory.
//!
//! A key is locked once it has `max` failures inside the window; it unlocks when its oldest
//! failure leaves the window. State is bounded: expired entries are swept as the map grows.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use time::{Duration, OffsetDateTime};

use crate::clock::Clock;
use crate::config::LoginThrottle;

/// Entries beyond which a sweep of expired keys runs on the next failure.
const SWEEP_THRESHOLD: usize = 10_000;

pub struct Throttle {
    settings: LoginThrottle,
    clock: Clock,
    failures: Mutex<HashMap<String, VecDeque<OffsetDateTime>>>,
}

impl Throttle {
    pub fn new(settings: LoginThrottle, clock: Clock) -> Self {
        Self {
            settings,
            clock,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn window(&self) -> Duration {
        Duration::seconds(i64::try_from(self.settings.window_seconds).unwrap_or(i64::MAX))
    }

    fn keys(username: &str, ip: Option<&str>) -> [(String, u32); 2] {
        [
            (format!("user:{}", username.to_lowercase()), 0),
            (format!("ip:{}", ip.unwrap_or("unknown")), 1),
        ]
    }

    fn limit(&self, kind: u32) -> u32 {
        if kind == 0 {
            self.settings.max_failures_per_username
        } else {
            self.settings.max_failures_per_ip
        }
    }

    /// Seconds until another attempt is allowed, when `username` or `ip` is locked.
    pub fn retry_after(&self, username: &str, ip: Option<&str>) -> Option<u64> {
        let now = self.clock.now();
        let window = self.window();
        let failures = self.failures.lock().ok()?;
        Self::keys(username, ip)
            .into_iter()
            .filter_map(|(key, kind)| {
                let limit = usize::try_from(self.limit(kind)).unwrap_or(usize::MAX);
                let times = failures.get(&key)?;
                let recent: Vec<_> = times.iter().filter(|at| **at + window > now).collect();
                if limit == 0 || recent.len() < limit {
                    return None;
                }
                // Unlocks when enough of the recent failures have left the window.
                let unlocking = recent[recent.len() - limit];
                let wait = (*unlocking + window - now).whole_seconds().max(1);
                u64::try_from(wait).ok()
            })
            .max()
    }

    pub fn record_failure(&self, username: &str, ip: Option<&str>) {
        let now = self.clock.now();
        let window = self.window();
        let Ok(mut failures) = self.failures.lock() else {
            return;
        };
        if failures.len() > SWEEP_THRESHOLD {
            failures.retain(|_, times| times.back().is_some_and(|at| *at + window > now));
        }
        for (key, kind) in Self::keys(username, ip) {
            let cap = usize::try_from(self.limit(kind))
                .unwrap_or(usize::MAX)
                .max(1);
            let times = failures.entry(key).or_default();
            while times.front().is_some_and(|at| *at + window <= now) || times.len() >= cap {
                times.pop_front();
            }
            times.push_back(now);
        }
    }

    /// A successful login clears the username's failures (not the IP's).
    pub fn record_success(&self, username: &str) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(&format!("user:{}", username.to_lowercase()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> (Throttle, Clock) {
        let clock = Clock::manual(time::macros::datetime!(2026-01-01 00:00 UTC));
        let settings = LoginThrottle {
            max_failures_per_username: 3,
            max_failures_per_ip: 5,
            window_seconds: 60,
        };
        (Throttle::new(settings, clock.clone()), clock)
    }

    #[test]
    fn locks_a_username_after_max_failures_until_the_window_passes() {
        let (throttle, clock) = throttle();
        for _ in 0..3 {
            assert_eq!(throttle.retry_after("alice", Some("1.2.3.4")), None);
            throttle.record_failure("alice", Some("1.2.3.4"));
        }
        assert_eq!(throttle.retry_after("Alice", Some("5.6.7.8")), Some(60));
        clock.advance(Duration::seconds(59));
        assert_eq!(throttle.retry_after("alice", None), Some(1));
        clock.advance(Duration::seconds(1));
        assert_eq!(throttle.retry_after("alice", None), None);
    }

    #[test]
    fn locks_an_ip_across_usernames() {
        let (throttle, _) = throttle();
        for name in ["a", "b", "c", "d", "e"] {
            throttle.record_failure(name, Some("9.9.9.9"));
        }
        assert!(throttle.retry_after("z", Some("9.9.9.9")).is_some());
        assert_eq!(throttle.retry_after("z", Some("8.8.8.8")), None);
    }

    #[test]
    fn success_clears_the_username() {
        let (throttle, _) = throttle();
        throttle.record_failure("bob", None);
        throttle.record_failure("bob", None);
        throttle.record_success("bob");
        throttle.record_failure("bob", None);
        assert_eq!(throttle.retry_after("bob", Some("1.1.1.1")), None);
    }
}
