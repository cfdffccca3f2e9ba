//! Pulsar's bucketed distributions of a topic: the storage write latency
//! (`pulsar_storage_write_latency_le_0_5` ... `_overflow`) and the entry size
//! (`pulsar_entry_size_le_128` ... `_le_overflow`). Pulsar reports each bucket as a gauge of the
//! observations in the last stats window, not as a cumulative histogram, and its dashboards
//! divide them by the window (`sum(pulsar_storage_write_latency_le_1) / 60`); we keep that
//! shape so those dashboards read the same numbers.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The buckets of one distribution: upper bounds (inclusive) and the suffix of each bucket's
/// metric name, the last one for values above every bound.
pub struct Layout {
    pub name: &'static str,
    pub help: &'static str,
    pub bounds: &'static [u64],
    pub suffixes: &'static [&'static str],
}

/// Storage write latency in microseconds: the time from queueing a message for the WAL until
/// it is durable.
pub const WRITE_LATENCY: Layout = Layout {
    name: "pulsar_storage_write_latency",
    help: "messages made durable in the last stats window, by WAL write latency (milliseconds)",
    bounds: &[500, 1_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 1_000_000],
    suffixes: &["le_0_5", "le_1", "le_5", "le_10", "le_20", "le_50", "le_100", "le_200", "le_1000", "overflow"],
};

/// Entry (stored message) size in bytes.
pub const ENTRY_SIZE: Layout = Layout {
    name: "pulsar_entry_size",
    help: "messages stored in the last stats window, by size (bytes)",
    bounds: &[128, 512, 1024, 2048, 4096, 16 * 1024, 100 * 1024, 1024 * 1024],
    suffixes: &["le_128", "le_512", "le_1_kb", "le_2_kb", "le_4_kb", "le_16_kb", "le_100_kb", "le_1_mb", "le_overflow"],
};

/// Most buckets any layout has (counts are fixed-size arrays, so recording never allocates).
pub const MAX_BUCKETS: usize = 10;

/// Counts observed in one window: per bucket, their number and their sum.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Window {
    pub buckets: [u64; MAX_BUCKETS],
    pub count: u64,
    pub sum: u64,
}

impl Window {
    pub fn add(&mut self, other: &Window) {
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a += b;
        }
        self.count += other.count;
        self.sum += other.sum;
    }
}

/// A distribution recorded lock-free on the hot path; [`Buckets::roll`] closes a window.
pub struct Buckets {
    layout: &'static Layout,
    counts: [AtomicU64; MAX_BUCKETS],
    count: AtomicU64,
    sum: AtomicU64,
    /// Totals at the last roll, and the window that roll closed.
    windows: Mutex<(Window, Window)>,
}

impl Buckets {
    pub fn new(layout: &'static Layout) -> Self {
        debug_assert!(layout.bounds.len() < MAX_BUCKETS && layout.suffixes.len() == layout.bounds.len() + 1);
        Buckets {
            layout,
            counts: Default::default(),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
            windows: Mutex::new((Window::default(), Window::default())),
        }
    }

    /// The bucket index of `value`: the first bound it does not exceed.
    pub fn bucket_of(layout: &Layout, value: u64) -> usize {
        layout.bounds.iter().position(|&b| value <= b).unwrap_or(layout.bounds.len())
    }

    pub fn record(&self, value: u64) {
        self.record_n(Buckets::bucket_of(self.layout, value), 1, value);
    }

    /// Records `n` observations already sorted into bucket `index`, summing to `sum`.
    pub fn record_n(&self, index: usize, n: u64, sum: u64) {
        self.counts[index].fetch_add(n, Ordering::Relaxed);
        self.count.fetch_add(n, Ordering::Relaxed);
        self.sum.fetch_add(sum, Ordering::Relaxed);
    }

    fn totals(&self) -> Window {
        let mut w = Window {
            count: self.count.load(Ordering::Relaxed),
            sum: self.sum.load(Ordering::Relaxed),
            ..Window::default()
        };
        for (b, c) in w.buckets.iter_mut().zip(&self.counts) {
            *b = c.load(Ordering::Relaxed);
        }
        w
    }

    /// Closes the current window: what was observed since the previous roll becomes the
    /// window [`Buckets::last_window`] reports.
    pub fn roll(&self) {
        let now = self.totals();
        let mut w = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let prev = w.0;
        let mut closed = Window { count: now.count - prev.count, sum: now.sum - prev.sum, ..Window::default() };
        for i in 0..MAX_BUCKETS {
            closed.buckets[i] = now.buckets[i] - prev.buckets[i];
        }
        *w = (now, closed);
    }

    pub fn last_window(&self) -> Window {
        self.windows.lock().unwrap_or_else(|e| e.into_inner()).1
    }
}

/// A batch's sizes sorted into [`ENTRY_SIZE`] buckets before it is known to be durable, so
/// only the sizes of messages actually stored are recorded.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tally {
    pub window: Window,
}

impl Tally {
    pub fn add(&mut self, layout: &Layout, value: u64) {
        self.window.buckets[Buckets::bucket_of(layout, value)] += 1;
        self.window.count += 1;
        self.window.sum += value;
    }

    pub fn record_into(&self, buckets: &Buckets) {
        for (i, &n) in self.window.buckets.iter().enumerate().filter(|(_, n)| **n > 0) {
            buckets.counts[i].fetch_add(n, Ordering::Relaxed);
        }
        buckets.count.fetch_add(self.window.count, Ordering::Relaxed);
        buckets.sum.fetch_add(self.window.sum, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_land_in_the_first_bucket_whose_bound_they_do_not_exceed() {
        assert_eq!(Buckets::bucket_of(&WRITE_LATENCY, 0), 0);
        assert_eq!(Buckets::bucket_of(&WRITE_LATENCY, 500), 0);
        assert_eq!(Buckets::bucket_of(&WRITE_LATENCY, 501), 1);
        assert_eq!(Buckets::bucket_of(&WRITE_LATENCY, 1_000_000), 8);
        assert_eq!(Buckets::bucket_of(&WRITE_LATENCY, 1_000_001), 9);
        assert_eq!(Buckets::bucket_of(&ENTRY_SIZE, 1024), 2);
        assert_eq!(Buckets::bucket_of(&ENTRY_SIZE, 2 * 1024 * 1024), 8);
    }

    #[test]
    fn a_window_holds_what_was_observed_between_two_rolls() {
        let b = Buckets::new(&WRITE_LATENCY);
        b.record(100);
        b.record(700);
        assert_eq!(b.last_window(), Window::default(), "nothing closed yet");
        b.roll();
        let w = b.last_window();
        assert_eq!((w.buckets[0], w.buckets[1], w.count, w.sum), (1, 1, 2, 800));
        b.record(2_000_000);
        b.roll();
        let w = b.last_window();
        assert_eq!((w.buckets[0], w.buckets[9], w.count, w.sum), (0, 1, 1, 2_000_000));
        b.roll();
        assert_eq!(b.last_window().count, 0, "an idle window reports zeros");
    }

    #[test]
    fn a_tally_records_its_counts_at_once() {
        let b = Buckets::new(&ENTRY_SIZE);
        let mut t = Tally::default();
        for size in [10, 200, 200, 5000] {
            t.add(&ENTRY_SIZE, size);
        }
        t.record_into(&b);
        b.roll();
        let w = b.last_window();
        assert_eq!((w.buckets[0], w.buckets[1], w.buckets[5], w.count, w.sum), (1, 2, 1, 4, 5410));
    }
}
