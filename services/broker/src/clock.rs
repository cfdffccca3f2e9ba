//! A wall clock that follows tokio's clock: under paused time (`#[tokio::test(start_paused)]`,
//! `tokio::time::advance`) the broker's notion of "now" — publish times, TTL, retention ages,
//! delayed delivery, offload thresholds — moves with the test, while sleeps and deadlines do too.

use magnetar_core::Clock;

#[derive(Debug)]
pub struct TokioClock {
    origin_ms: i64,
    origin: tokio::time::Instant,
}

impl TokioClock {
    /// Starts at the system's current wall time.
    pub fn new() -> std::sync::Arc<TokioClock> {
        Self::starting_at(magnetar_core::now_millis())
    }

    pub fn starting_at(origin_ms: i64) -> std::sync::Arc<TokioClock> {
        std::sync::Arc::new(TokioClock { origin_ms, origin: tokio::time::Instant::now() })
    }
}

impl Clock for TokioClock {
    fn now_millis(&self) -> i64 {
        self.origin_ms + self.origin.elapsed().as_millis() as i64
    }
}
