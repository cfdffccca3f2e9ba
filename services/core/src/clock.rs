//! The one source of wall-clock time. Publish times, message TTL, retention ages, delayed
//! delivery and offload thresholds all read it, so a test can move time forward instead of
//! sleeping: the broker takes an `Arc<dyn Clock>` at start.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Wall-clock time in milliseconds since the Unix epoch, the unit stored and sent on the wire.
pub trait Clock: Send + Sync + 'static {
    fn now_millis(&self) -> i64;
}

pub type SharedClock = Arc<dyn Clock>;

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> i64 {
        crate::now_millis()
    }
}

impl SystemClock {
    pub fn shared() -> SharedClock {
        Arc::new(SystemClock)
    }
}

/// A clock that moves only when told (tests).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(now_ms: i64) -> Arc<ManualClock> {
        Arc::new(ManualClock(AtomicI64::new(now_ms)))
    }

    pub fn advance_millis(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }

    pub fn set_millis(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(1_000);
        assert_eq!(c.now_millis(), 1_000);
        c.advance_millis(250);
        assert_eq!(c.now_millis(), 1_250);
        let shared: SharedClock = c.clone();
        c.set_millis(5);
        assert_eq!(shared.now_millis(), 5);
    }

    #[test]
    fn system_clock_is_epoch_millis() {
        // 2020-01-01 in epoch ms: any machine running this is past it.
        assert!(SystemClock.now_millis() > 1_577_836_800_000);
    }
}
