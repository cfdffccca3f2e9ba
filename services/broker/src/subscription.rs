//! One subscription on one partition: the cursor (acknowledged offsets), the messages in flight
//! with their ack deadlines, redeliveries and redelivery counts.
//!
//! Every surface (HTTP pull today, WebSocket consumers later) takes messages through `take`, so
//! a message is in flight to at most one consumer at a time. Acknowledgements are applied in
//! memory first (so no other consumer is handed the message) and made durable through the WAL
//! before the caller is answered.

use crate::ranges::AckSet;
use magnetar_metadata::CursorState;
use magnetar_storage::{PartitionLog, Record};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::Mutex;
use tokio::sync::watch;
use tokio::time::Instant;

/// A message handed to a consumer.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub record: Record,
    pub partition_index: i32,
    pub redelivery_count: u32,
}

/// Cursor changes, written to the WAL as aux records and replayed after a crash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CursorOp {
    Ack { sub: String, ranges: Vec<(u64, u64)> },
    Reset { sub: String, mark_delete: u64 },
}

#[derive(Debug)]
struct InFlight {
    deadline: Instant,
}

#[derive(Debug, Default)]
struct State {
    acks: AckSet,
    /// Next offset never delivered yet.
    read_pos: u64,
    in_flight: BTreeMap<u64, InFlight>,
    /// Offsets whose delivery failed (deadline passed, negative ack) and may be taken again.
    redeliver: BTreeSet<u64>,
    redelivery_counts: HashMap<u64, u32>,
    /// Cursor changed since the last checkpoint.
    dirty: bool,
    msg_out: u64,
    bytes_out: u64,
    msg_redelivered: u64,
    last_consumed: i64,
    last_acked: i64,
}

pub struct Subscription {
    name: String,
    partition_index: i32,
    log: Arc<PartitionLog>,
    max_in_flight: usize,
    state: Mutex<State>,
    /// Bumped whenever messages may have become available without the log growing
    /// (negative ack, cursor reset), so waiting pullers look again.
    changes: watch::Sender<u64>,
}

/// What a waiting puller compares against to know something changed.
#[derive(Debug, Clone, Copy)]
pub struct WaitToken {
    version: u64,
    read_pos: u64,
    next_deadline: Option<Instant>,
}

impl Subscription {
    pub fn new(
        name: String,
        partition_index: i32,
        log: Arc<PartitionLog>,
        cursor: &CursorState,
        max_in_flight: usize,
    ) -> Self {
        let acks = AckSet::from_state(cursor);
        let read_pos = acks.mark_delete();
        let state = State { acks, read_pos, ..State::default() };
        Subscription {
            name,
            partition_index,
            log,
            max_in_flight: max_in_flight.max(1),
            state: Mutex::new(state),
            changes: watch::channel(0).0,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bump(&self) {
        self.changes.send_modify(|v| *v += 1);
    }

    /// Takes up to `max` messages (redeliveries first, oldest first) without waiting, marking
    /// them in flight until `ack_timeout` passes. Reads may touch the disk: call from async code
    /// only through `take` below.
    fn take_blocking(
        &self,
        max: usize,
        max_bytes: usize,
        ack_timeout: std::time::Duration,
    ) -> magnetar_storage::Result<Vec<Delivery>> {
        let now = Instant::now();
        let deadline = now + ack_timeout;
        let start = self.log.start_offset();
        let (redeliver, read_pos, room) = {
            let mut st = self.lock();
            Self::expire(&mut st, now);
            // Records below the log start were deleted by retention: they count as consumed.
            if st.acks.mark_delete() < start {
                st.acks.insert_range(0, start);
                st.dirty = true;
            }
            st.read_pos = st.read_pos.max(start);
            let mut taken = Vec::new();
            while taken.len() < max {
                let Some(off) = st.redeliver.pop_first() else { break };
                if off < start || st.acks.contains(off) {
                    st.redelivery_counts.remove(&off);
                    continue;
                }
                st.in_flight.insert(off, InFlight { deadline });
                taken.push(off);
            }
            let room = (max - taken.len()).min(self.max_in_flight.saturating_sub(st.in_flight.len()));
            (taken, st.read_pos, room)
        };

        let mut out = Vec::with_capacity(redeliver.len());
        let mut bytes = 0usize;
        for off in redeliver {
            match self.log.read(off, 1, max_bytes)?.into_iter().next() {
                Some(rec) if rec.offset == off => {
                    bytes += rec.payload.len();
                    out.push(rec);
                }
                _ => {
                    // Gone (retention); forget it.
                    let mut st = self.lock();
                    st.in_flight.remove(&off);
                    st.redelivery_counts.remove(&off);
                }
            }
        }

        if room > 0 && read_pos < self.log.end_offset() && bytes < max_bytes {
            let fresh = self.log.read(read_pos, room, max_bytes - bytes)?;
            let mut st = self.lock();
            // Another puller may have taken the same range meanwhile; only the one that still
            // sees the read position it read from claims the records.
            if st.read_pos == read_pos {
                if let Some(last) = fresh.last() {
                    st.read_pos = last.offset + 1;
                }
                for rec in fresh {
                    if st.acks.contains(rec.offset) || st.in_flight.contains_key(&rec.offset) {
                        continue;
                    }
                    st.in_flight.insert(rec.offset, InFlight { deadline });
                    out.push(rec);
                }
            }
        }

        let mut st = self.lock();
        let deliveries: Vec<Delivery> = out
            .into_iter()
            .map(|record| {
                let redelivery_count = st.redelivery_counts.get(&record.offset).copied().unwrap_or(0);
                Delivery { record, partition_index: self.partition_index, redelivery_count }
            })
            .collect();
        if !deliveries.is_empty() {
            st.msg_out += deliveries.len() as u64;
            st.bytes_out += deliveries.iter().map(|d| d.record.payload.len() as u64).sum::<u64>();
            st.last_consumed = magnetar_core::now_millis();
        }
        Ok(deliveries)
    }

    pub async fn take(
        self: &Arc<Self>,
        max: usize,
        max_bytes: usize,
        ack_timeout: std::time::Duration,
    ) -> crate::Result<Vec<Delivery>> {
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || this.take_blocking(max, max_bytes, ack_timeout))
            .await
            .map_err(|e| crate::BrokerError::Internal(format!("read task failed: {e}")))?
            .map_err(Into::into)
    }

    /// Moves in-flight messages whose deadline passed to the redelivery set.
    fn expire(st: &mut State, now: Instant) {
        let expired: Vec<u64> = st.in_flight.iter().filter(|(_, f)| f.deadline <= now).map(|(&o, _)| o).collect();
        for off in expired {
            st.in_flight.remove(&off);
            st.redeliver.insert(off);
            *st.redelivery_counts.entry(off).or_insert(0) += 1;
            st.msg_redelivered += 1;
        }
    }

    pub fn wait_token(&self) -> WaitToken {
        let st = self.lock();
        // With the in-flight window full, new data does not help: wait for an ack (which bumps
        // the version) or a deadline instead of spinning on the log.
        let full = st.in_flight.len() >= self.max_in_flight;
        WaitToken {
            version: *self.changes.borrow(),
            read_pos: if full { u64::MAX } else { st.read_pos },
            next_deadline: st.in_flight.values().map(|f| f.deadline).min(),
        }
    }

    /// Resolves when taking again may yield something: new data in the log, a change (negative
    /// ack, reset) or an in-flight deadline passing.
    pub async fn changed(&self, token: WaitToken) {
        let mut rx = self.changes.subscribe();
        let version_changed = async {
            while *rx.borrow_and_update() == token.version {
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        let deadline = async {
            match token.next_deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = self.log.wait_for_data(token.read_pos) => {}
            _ = version_changed => {}
            _ = deadline => {}
        }
    }

    /// Acknowledges offsets in memory; returns the op to make durable (None if nothing new).
    pub fn ack(&self, offsets: &[u64]) -> Option<CursorOp> {
        let mut st = self.lock();
        let mut sorted: Vec<u64> = offsets.iter().copied().filter(|&o| !st.acks.contains(o)).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_unstable();
        sorted.dedup();
        let was_full = st.in_flight.len() >= self.max_in_flight;
        for &off in &sorted {
            st.in_flight.remove(&off);
            st.redeliver.remove(&off);
            st.redelivery_counts.remove(&off);
            st.acks.insert(off);
        }
        st.dirty = true;
        st.last_acked = magnetar_core::now_millis();
        drop(st);
        if was_full {
            self.bump();
        }
        Some(CursorOp::Ack { sub: self.name.clone(), ranges: to_ranges(&sorted) })
    }

    /// Negative acknowledgement: the messages become available again after `delay`.
    pub fn nack(&self, offsets: &[u64], delay: std::time::Duration) {
        let mut st = self.lock();
        let deadline = Instant::now() + delay;
        for &off in offsets {
            if st.in_flight.contains_key(&off) {
                // Stays "in flight" (unavailable) until the delay passes, then expires into the
                // redelivery set with its count incremented.
                st.in_flight.insert(off, InFlight { deadline });
            }
        }
        drop(st);
        self.bump();
    }

    /// Acknowledges the next `n` unacknowledged messages (Pulsar's skip).
    pub fn skip(&self, n: u64) -> Option<CursorOp> {
        let end = self.log.end_offset();
        let mut offsets = Vec::new();
        {
            let st = self.lock();
            let mut at = st.acks.next_unacked(self.log.start_offset());
            while (offsets.len() as u64) < n && at < end {
                offsets.push(at);
                at = st.acks.next_unacked(at + 1);
            }
        }
        self.ack(&offsets)
    }

    /// Moves the cursor: everything below `offset` acknowledged, everything from it on pending.
    /// Messages in flight are forgotten (their later acks still count, as in Pulsar).
    pub fn reset(&self, offset: u64) -> CursorOp {
        let mut st = self.lock();
        let offset = offset.min(self.log.end_offset());
        st.acks.reset(offset);
        st.read_pos = offset;
        st.in_flight.clear();
        st.redeliver.clear();
        st.redelivery_counts.clear();
        st.dirty = true;
        drop(st);
        self.bump();
        CursorOp::Reset { sub: self.name.clone(), mark_delete: offset }
    }

    /// Replays a cursor op from the WAL during recovery.
    pub fn apply(&self, op: &CursorOp) {
        match op {
            CursorOp::Ack { ranges, .. } => {
                let mut st = self.lock();
                for &(s, e) in ranges {
                    st.acks.insert_range(s, e);
                }
                st.read_pos = st.read_pos.max(st.acks.mark_delete());
                st.dirty = true;
            }
            CursorOp::Reset { mark_delete, .. } => {
                let mut st = self.lock();
                st.acks.reset(*mark_delete);
                st.read_pos = *mark_delete;
                st.dirty = true;
            }
        }
    }

    /// The cursor to checkpoint, if it changed since the last call.
    pub fn take_dirty_cursor(&self) -> Option<CursorState> {
        let mut st = self.lock();
        if !st.dirty {
            return None;
        }
        st.dirty = false;
        Some(st.acks.to_state())
    }

    pub fn mark_dirty(&self) {
        self.lock().dirty = true;
    }

    pub fn cursor(&self) -> CursorState {
        self.lock().acks.to_state()
    }

    pub fn snapshot(&self) -> SubscriptionSnapshot {
        let st = self.lock();
        let end = self.log.end_offset();
        let start = self.log.start_offset();
        let md = st.acks.mark_delete().max(start);
        let backlog = end.saturating_sub(md) - st.acks.count_acked_in(md, end);
        SubscriptionSnapshot {
            mark_delete: st.acks.mark_delete(),
            read_pos: st.read_pos,
            acked_ranges: st.acks.ranges().collect(),
            backlog,
            unacked: st.in_flight.len() as u64,
            msg_out: st.msg_out,
            bytes_out: st.bytes_out,
            msg_redelivered: st.msg_redelivered,
            last_consumed: st.last_consumed,
            last_acked: st.last_acked,
        }
    }

    /// The `n`-th (1-based) unacknowledged offset, for peeking.
    pub fn nth_unacked(&self, n: u64) -> Option<u64> {
        let end = self.log.end_offset();
        let st = self.lock();
        let mut at = st.acks.next_unacked(self.log.start_offset());
        for _ in 1..n {
            at = st.acks.next_unacked(at + 1);
        }
        (at < end).then_some(at)
    }
}

#[derive(Debug, Clone)]
pub struct SubscriptionSnapshot {
    pub mark_delete: u64,
    pub read_pos: u64,
    pub acked_ranges: Vec<(u64, u64)>,
    pub backlog: u64,
    pub unacked: u64,
    pub msg_out: u64,
    pub bytes_out: u64,
    pub msg_redelivered: u64,
    pub last_consumed: i64,
    pub last_acked: i64,
}

/// Sorted, deduplicated offsets → half-open ranges.
fn to_ranges(sorted: &[u64]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &o in sorted {
        match out.last_mut() {
            Some((_, e)) if *e == o => *e = o + 1,
            _ => out.push((o, o + 1)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::to_ranges;

    #[test]
    fn offsets_compress_to_ranges() {
        assert_eq!(to_ranges(&[1, 2, 3, 7, 9, 10]), vec![(1, 4), (7, 8), (9, 11)]);
        assert!(to_ranges(&[]).is_empty());
    }
}
