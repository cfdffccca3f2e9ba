//! Reading ahead of a consumer's permits. A binary consumer that has used up its permits waits
//! for its client's next FLOW (a round trip, and the client working through half its receiver
//! queue first); the records it will be sent next are read from the log meanwhile, so that the
//! take the FLOW triggers only claims and frames them. Pulsar's brokers get the same from their
//! entry cache.
//!
//! A window belongs to one consumer (it goes when the consumer goes) and holds what
//! `PartitionLog::read` returned from one position: the log's records are immutable once
//! durable, so they stay valid for as long as the subscription's read position is inside the
//! window. A take from anywhere else (another consumer of a Shared subscription moved the read
//! position, a seek) drops it. Bounded by [`AHEAD_RECORDS`] and [`AHEAD_BYTES`] per consumer.

use magnetar_storage::Record;
use std::collections::VecDeque;
use std::sync::Mutex;

/// Most records read ahead for one consumer: the most one take of a binary consumer asks for.
pub const AHEAD_RECORDS: usize = 1000;
/// Most payload bytes read ahead for one consumer (a take of larger messages reads the rest of
/// its window from the log itself).
pub const AHEAD_BYTES: usize = 2 << 20;

/// One consumer's records read ahead of its subscription's read position.
#[derive(Default)]
pub struct ReadAhead(Mutex<Option<Window>>);

/// Records from the log at `from` on, consecutive as the log returned them.
struct Window {
    from: u64,
    records: VecDeque<Record>,
}

impl ReadAhead {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Window>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether records from `from` on are already held.
    pub(super) fn holds(&self, from: u64) -> bool {
        self.lock().as_ref().is_some_and(|w| w.from == from && !w.records.is_empty())
    }

    /// Keeps `records`, read from the log at `from`.
    pub(super) fn fill(&self, from: u64, records: Vec<Record>) {
        *self.lock() = (!records.is_empty()).then(|| Window { from, records: records.into() });
    }

    /// The first of the records a log read at `from` of at most `max` records and about
    /// `max_bytes` would return, as far as the window holds them, with their payload bytes (the
    /// caller reads the rest from the log). A window elsewhere is dropped.
    pub(super) fn take(&self, from: u64, max: usize, max_bytes: usize) -> (Vec<Record>, usize) {
        let mut slot = self.lock();
        let Some(w) = slot.as_mut() else { return (Vec::new(), 0) };
        let end = w.records.back().map_or(w.from, |r| r.offset + 1);
        if from < w.from || from >= end {
            *slot = None;
            return (Vec::new(), 0);
        }
        while w.records.front().is_some_and(|r| r.offset < from) {
            w.records.pop_front();
        }
        let (mut out, mut bytes) = (Vec::new(), 0);
        while let Some(r) = w.records.front() {
            if out.len() >= max || (!out.is_empty() && bytes + r.payload.len() > max_bytes) {
                break;
            }
            bytes += r.payload.len();
            out.extend(w.records.pop_front());
        }
        if w.records.is_empty() {
            *slot = None;
        } else if let Some(last) = out.last() {
            w.from = last.offset + 1;
        }
        (out, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(from: u64, n: u64, size: usize) -> Vec<Record> {
        (from..from + n).map(|offset| Record { offset, payload: vec![0; size].into(), ..Record::default() }).collect()
    }

    fn offsets(v: &[Record]) -> Vec<u64> {
        v.iter().map(|r| r.offset).collect()
    }

    #[test]
    fn a_take_at_the_window_gets_its_records_in_order_up_to_the_limits() {
        let a = ReadAhead::default();
        a.fill(10, records(10, 5, 100));
        assert!(a.holds(10) && !a.holds(11));
        let (got, bytes) = a.take(10, 2, usize::MAX);
        assert_eq!((offsets(&got), bytes), (vec![10, 11], 200));
        assert!(a.holds(12), "the rest stays, from where the take ended");
        let (got, _) = a.take(12, 10, 150);
        assert_eq!(offsets(&got), vec![12], "a byte limit stops after at least one record");
        let (got, _) = a.take(13, 10, usize::MAX);
        assert_eq!(offsets(&got), vec![13, 14]);
        assert!(!a.holds(15), "emptied");
    }

    #[test]
    fn a_take_inside_the_window_skips_what_others_took_and_one_outside_drops_it() {
        let a = ReadAhead::default();
        a.fill(10, records(10, 5, 1));
        assert_eq!(offsets(&a.take(13, 10, usize::MAX).0), vec![13, 14]);
        a.fill(10, records(10, 5, 1));
        assert!(a.take(9, 10, usize::MAX).0.is_empty(), "before the window (a seek back)");
        assert!(!a.holds(10), "dropped");
        a.fill(10, records(10, 5, 1));
        assert!(a.take(15, 10, usize::MAX).0.is_empty(), "past its end");
        assert!(!a.holds(10));
    }
}
