//! Token buckets shared by concurrent callers without a lock: the publish, dispatch and
//! subscribe rates. Tokens refill lazily from the elapsed (tokio, monotonic) time; a caller takes
//! what it needs at once and may leave the bucket in debt, then waits until the debt is repaid
//! (Pulsar's `AsyncTokenBucket` does the same). The bucket holds at most one period's tokens, so
//! an idle topic may burst that much.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

pub struct RateLimiter {
    /// Tokens per period; 0 = no limit.
    rate: AtomicU64,
    period_ns: AtomicU64,
    tokens: AtomicI64,
    /// Nanoseconds since `origin` up to which tokens were added.
    filled_to: AtomicU64,
    origin: Instant,
}

impl Default for RateLimiter {
    fn default() -> Self {
        RateLimiter {
            rate: AtomicU64::new(0),
            period_ns: AtomicU64::new(1_000_000_000),
            tokens: AtomicI64::new(0),
            filled_to: AtomicU64::new(0),
            origin: Instant::now(),
        }
    }
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter").field("rate", &self.rate()).field("tokens", &self.available()).finish()
    }
}

impl RateLimiter {
    /// `rate` tokens per `period`; `rate` 0 = no limit.
    pub fn with_rate(rate: u64, period: Duration) -> Self {
        let l = RateLimiter::default();
        l.set(rate, period);
        l
    }

    fn now_ns(&self) -> u64 {
        Instant::now().saturating_duration_since(self.origin).as_nanos() as u64
    }

    pub fn rate(&self) -> u64 {
        self.rate.load(Ordering::Relaxed)
    }

    pub fn is_limited(&self) -> bool {
        self.rate() > 0
    }

    /// Changes the rate; a new rate starts with a full bucket. Setting the current rate again
    /// changes nothing (the periodic policy refresh calls this).
    pub fn set(&self, rate: u64, period: Duration) {
        let period_ns = (period.as_nanos() as u64).max(1);
        if self.rate.load(Ordering::Relaxed) == rate && self.period_ns.load(Ordering::Relaxed) == period_ns {
            return;
        }
        self.period_ns.store(period_ns, Ordering::Relaxed);
        self.filled_to.store(self.now_ns(), Ordering::Relaxed);
        self.tokens.store(rate.min(i64::MAX as u64) as i64, Ordering::Relaxed);
        self.rate.store(rate, Ordering::Release);
    }

    /// Adds the tokens earned since the last refill, up to one period's worth.
    fn refill(&self) {
        let rate = self.rate.load(Ordering::Acquire);
        if rate == 0 {
            return;
        }
        let period = self.period_ns.load(Ordering::Relaxed);
        let now = self.now_ns();
        let filled = self.filled_to.load(Ordering::Relaxed);
        if now <= filled {
            return;
        }
        let earned = (u128::from(now - filled) * u128::from(rate) / u128::from(period)) as u64;
        if earned == 0 {
            return;
        }
        let capacity = rate.min(i64::MAX as u64) as i64;
        let room = (capacity - self.tokens.load(Ordering::Relaxed)).max(0) as u64;
        // A full bucket lets time pass without keeping it; otherwise only the time that earned
        // whole tokens is consumed, so fractions are not lost.
        let (add, to) = if earned >= room {
            (room, now)
        } else {
            (earned, filled + (u128::from(earned) * u128::from(period) / u128::from(rate)) as u64)
        };
        if self.filled_to.compare_exchange(filled, to, Ordering::AcqRel, Ordering::Relaxed).is_ok() && add > 0 {
            let after = self.tokens.fetch_add(add as i64, Ordering::AcqRel) + add as i64;
            if after > capacity {
                self.tokens.fetch_min(capacity, Ordering::AcqRel);
            }
        }
    }

    /// Tokens available now (negative: debt to repay first). `i64::MAX` without a limit.
    pub fn available(&self) -> i64 {
        if !self.is_limited() {
            return i64::MAX;
        }
        self.refill();
        self.tokens.load(Ordering::Acquire)
    }

    /// Takes `n` tokens, possibly into debt; returns how long the caller waits for the debt to be
    /// repaid (zero when the bucket had them).
    pub fn acquire(&self, n: u64) -> Duration {
        let rate = self.rate();
        if rate == 0 || n == 0 {
            return Duration::ZERO;
        }
        self.refill();
        let after = self.tokens.fetch_sub(n.min(i64::MAX as u64) as i64, Ordering::AcqRel) - n as i64;
        self.debt_wait(after, rate)
    }

    /// Gives back tokens taken by a caller that then gave up.
    pub fn release(&self, n: u64) {
        if self.is_limited() && n > 0 {
            self.tokens.fetch_add(n.min(i64::MAX as u64) as i64, Ordering::AcqRel);
        }
    }

    /// How long until at least one token is available (zero if one is).
    pub fn until_available(&self) -> Duration {
        let rate = self.rate();
        if rate == 0 {
            return Duration::ZERO;
        }
        let tokens = self.available();
        if tokens > 0 { Duration::ZERO } else { self.debt_wait(tokens - 1, rate) }
    }

    fn debt_wait(&self, tokens: i64, rate: u64) -> Duration {
        if tokens >= 0 {
            return Duration::ZERO;
        }
        let period = self.period_ns.load(Ordering::Relaxed);
        Duration::from_nanos((u128::from(tokens.unsigned_abs()) * u128::from(period) / u128::from(rate)) as u64)
    }
}

/// A message rate and a byte rate limiting the same flow.
#[derive(Debug, Default)]
pub struct FlowLimiter {
    pub messages: RateLimiter,
    pub bytes: RateLimiter,
}

impl FlowLimiter {
    /// Rates of 0 or less mean no limit.
    pub fn set(&self, messages: i64, bytes: i64, period: Duration) {
        self.messages.set(messages.max(0) as u64, period);
        self.bytes.set(bytes.max(0) as u64, period);
    }

    pub fn is_limited(&self) -> bool {
        self.messages.is_limited() || self.bytes.is_limited()
    }

    /// Takes `messages` and `bytes` tokens; the wait is the longer of the two.
    pub fn acquire(&self, messages: u64, bytes: u64) -> Duration {
        self.messages.acquire(messages).max(self.bytes.acquire(bytes))
    }

    pub fn release(&self, messages: u64, bytes: u64) {
        self.messages.release(messages);
        self.bytes.release(bytes);
    }

    /// How many messages may go now: 0 while either dimension is in debt.
    pub fn messages_allowed(&self) -> u64 {
        let bytes = self.bytes.available();
        if bytes <= 0 {
            return 0;
        }
        self.messages.available().max(0) as u64
    }

    pub fn until_available(&self) -> Duration {
        self.messages.until_available().max(self.bytes.until_available())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_full_bucket_serves_at_once_then_paces() {
        let l = RateLimiter::with_rate(10, Duration::from_secs(1));
        assert_eq!(l.acquire(10), Duration::ZERO, "one period's burst");
        assert_eq!(l.acquire(5), Duration::from_millis(500), "debt of 5 at 10/s");
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(l.available(), 0);
        tokio::time::advance(Duration::from_millis(300)).await;
        assert_eq!(l.available(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_time_fills_the_bucket_only_to_its_capacity() {
        let l = RateLimiter::with_rate(100, Duration::from_secs(1));
        l.acquire(100);
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(l.available(), 100);
        assert!(l.acquire(150) > Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn fractions_of_a_token_are_not_lost() {
        let l = RateLimiter::with_rate(3, Duration::from_secs(1));
        l.acquire(3);
        for _ in 0..10 {
            tokio::time::advance(Duration::from_millis(100)).await;
            l.available();
        }
        assert_eq!(l.available(), 3, "ten refills of 0.3 tokens make 3");
    }

    #[tokio::test(start_paused = true)]
    async fn no_rate_means_no_wait_and_a_new_rate_starts_full() {
        let l = RateLimiter::default();
        assert_eq!(l.acquire(1_000_000), Duration::ZERO);
        l.set(5, Duration::from_secs(2));
        assert_eq!(l.available(), 5);
        assert_eq!(l.acquire(6), Duration::from_millis(400));
        l.release(6);
        assert_eq!(l.available(), 5);
        assert_eq!(l.until_available(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_flow_waits_for_the_tighter_dimension() {
        let f = FlowLimiter::default();
        f.set(1000, 100, Duration::from_secs(1));
        assert_eq!(f.acquire(1, 300), Duration::from_secs(2));
        assert_eq!(f.messages_allowed(), 0, "bytes in debt stop dispatch");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(f.messages_allowed(), 0, "the debt is repaid, no byte is available yet");
        tokio::time::advance(Duration::from_millis(10)).await;
        assert!(f.messages_allowed() > 0);
    }

    #[test]
    fn concurrent_takers_share_the_bucket_without_losing_tokens() {
        let l = std::sync::Arc::new(RateLimiter::with_rate(1_000_000, Duration::from_secs(3600)));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let l = std::sync::Arc::clone(&l);
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        l.acquire(10);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let left = l.available();
        assert!((960_000..=960_010).contains(&left), "40,000 of 1,000,000 taken, {left} left");
    }
}
