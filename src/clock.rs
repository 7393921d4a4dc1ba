//! The one source of "now". Production uses the system clock; tests share a manual clock
//! they can move forward, so expiry and throttling are tested without sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use time::OffsetDateTime;

#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// Microseconds added to the system time; only a manual clock changes it (to the
    /// microsecond, so expiry boundaries can be tested exactly).
    offset: Arc<AtomicI64>,
    frozen_at: Option<Arc<AtomicI64>>,
}

impl Clock {
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock that stands still at `start` until `advance` moves it.
    pub fn manual(start: OffsetDateTime) -> Self {
        Self {
            offset: Arc::new(AtomicI64::new(0)),
            frozen_at: Some(Arc::new(AtomicI64::new(unix_micros(start)))),
        }
    }

    pub fn now(&self) -> OffsetDateTime {
        let base = match &self.frozen_at {
            Some(frozen) => from_unix_micros(frozen.load(Ordering::Relaxed)),
            None => OffsetDateTime::now_utc(),
        };
        base + time::Duration::microseconds(self.offset.load(Ordering::Relaxed))
    }

    pub fn advance(&self, by: time::Duration) {
        let micros = i64::try_from(by.whole_microseconds()).unwrap_or(i64::MAX);
        self.offset.fetch_add(micros, Ordering::Relaxed);
    }
}

pub fn unix_micros(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

pub fn from_unix_micros(micros: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let start = time::macros::datetime!(2026-01-01 00:00 UTC);
        let clock = Clock::manual(start);
        assert_eq!(clock.now(), start);
        clock.advance(time::Duration::seconds(90));
        assert_eq!(clock.now(), start + time::Duration::seconds(90));
    }
}
