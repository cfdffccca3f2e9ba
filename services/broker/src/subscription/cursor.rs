//! The cursor of a subscription: acknowledgements (individual, cumulative, by expiry or skip),
//! negative acknowledgements, resets, replay from the WAL, what to checkpoint, and snapshots for
//! stats.

use super::{ConsumerId, CursorOp, SubType, Subscription, SubscriptionId, SubscriptionSnapshot};
use crate::{BrokerError, Result};
use magnetar_metadata::CursorState;
use std::time::Duration;
use tokio::time::Instant;

/// An acknowledgement of an offset the log does not have yet. Accepting it would silently skip
/// that message once it is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BeyondEnd {
    pub offset: u64,
    pub end: u64,
}

impl Subscription {
    fn op_name(&self) -> String {
        match &self.id {
            SubscriptionId::Durable(name) => name.to_string(),
            SubscriptionId::Reader(_) => self.id.to_string(),
        }
    }

    /// Acknowledges offsets in memory; returns the op to make durable (None if nothing new).
    /// Refuses, acknowledging nothing, when an offset is past the end of the log.
    pub fn ack(&self, offsets: &[u64]) -> Result<Option<CursorOp>, BeyondEnd> {
        let end = self.log.end_offset();
        if let Some(&offset) = offsets.iter().find(|&&o| o >= end) {
            return Err(BeyondEnd { offset, end });
        }
        let mut st = self.lock();
        let mut sorted: Vec<u64> = offsets.iter().copied().filter(|&o| !st.acks.contains(o)).collect();
        if sorted.is_empty() {
            return Ok(None);
        }
        sorted.sort_unstable();
        sorted.dedup();
        for &off in &sorted {
            st.acked_in_flight(off);
            st.available.remove(&off);
            st.redelivery_counts.remove(&off);
            st.acks.insert(off);
        }
        st.msg_acked += sorted.len() as u64;
        st.dirty = true;
        st.last_acked = self.now_ms();
        drop(st);
        // Acks free in-flight room and Key_Shared slots: consumers waiting on them look again.
        self.bump();
        Ok(Some(CursorOp::Ack { sub: self.op_name(), ranges: to_ranges(&sorted) }))
    }

    /// Acknowledges every message up to and including `offset` (Exclusive and Failover only).
    pub fn ack_cumulative(&self, offset: u64) -> Result<Option<CursorOp>, CumulativeError> {
        let end = self.log.end_offset();
        if offset >= end {
            return Err(CumulativeError::BeyondEnd(BeyondEnd { offset, end }));
        }
        let mut st = self.lock();
        if let Some(kind) = st.kind.filter(|k| matches!(k, SubType::Shared | SubType::KeyShared)) {
            return Err(CumulativeError::NotAllowed(BrokerError::NotAllowed(format!(
                "cumulative acknowledgement is not allowed on {} subscription {}",
                kind.as_str(),
                self.id
            ))));
        }
        if st.acks.contains(offset) {
            return Ok(None);
        }
        let upto = offset + 1;
        let in_flight: Vec<u64> = st.in_flight.range(..upto).map(|(&o, _)| o).collect();
        for off in in_flight {
            st.acked_in_flight(off);
            st.redelivery_counts.remove(&off);
        }
        let avail: Vec<u64> = st.available.range(..upto).map(|(&o, _)| o).collect();
        for off in avail {
            st.available.remove(&off);
        }
        st.delayed.retain(|&(_, o), _| o >= upto);
        let from = st.acks.mark_delete();
        st.msg_acked += (upto - from.min(upto)) - st.acks.count_acked_in(from, upto);
        st.acks.insert_range(from, upto);
        st.dirty = true;
        st.last_acked = self.now_ms();
        drop(st);
        self.bump();
        Ok(Some(CursorOp::Ack { sub: self.op_name(), ranges: vec![(from, upto)] }))
    }

    /// Negative acknowledgement: the messages become available again after `delay`.
    pub fn nack(&self, offsets: &[u64], delay: Duration) {
        let mut st = self.lock();
        let deadline = Instant::now() + delay;
        for &off in offsets {
            if let Some(f) = st.in_flight.get_mut(&off) {
                // Stays in flight (unavailable) until the delay passes, then expires into the
                // available set with its redelivery count incremented.
                f.deadline = Some(deadline);
            }
        }
        drop(st);
        self.bump();
    }

    /// Negative acknowledgement of everything delivered to `consumer` and not acknowledged
    /// (Pulsar's REDELIVER_UNACKNOWLEDGED_MESSAGES without ids); returns how many.
    pub fn nack_all_of(&self, consumer: ConsumerId, delay: Duration) -> usize {
        let offsets: Vec<u64> =
            self.lock().in_flight.iter().filter(|(_, f)| f.consumer == Some(consumer)).map(|(&o, _)| o).collect();
        self.nack(&offsets, delay);
        offsets.len()
    }

    /// Acknowledges the next `n` unacknowledged messages (Pulsar's skip); returns the op and how
    /// many were skipped.
    pub fn skip(&self, n: u64) -> Option<(CursorOp, u64)> {
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
        let count = offsets.len() as u64;
        // Every offset is below the end read above.
        self.ack(&offsets).ok().flatten().map(|op| (op, count))
    }

    /// Acknowledges everything published before `before_ms` (TTL and `expireMessages`);
    /// returns the op and how many messages expired.
    pub fn expire_before(&self, before_ms: i64) -> Option<(CursorOp, u64)> {
        self.expire_below(self.log.offset_for_publish_time(before_ms))
    }

    /// Acknowledges every message below `upto` as expired (Pulsar's `expireMessages` to a
    /// message id); returns the op and how many messages expired.
    pub fn expire_below(&self, upto: u64) -> Option<(CursorOp, u64)> {
        let upto = upto.min(self.log.end_offset());
        let st = self.lock();
        let md = st.acks.mark_delete();
        if upto <= md {
            return None;
        }
        let count = (upto - md) - st.acks.count_acked_in(md, upto);
        drop(st);
        let op = self.ack_range(md, upto);
        let now = self.now_ms();
        let mut st = self.lock();
        st.msg_expired += count;
        st.last_expired = now;
        drop(st);
        Some((op, count))
    }

    fn ack_range(&self, from: u64, to: u64) -> CursorOp {
        let mut st = self.lock();
        let in_flight: Vec<u64> = st.in_flight.range(from..to).map(|(&o, _)| o).collect();
        for off in in_flight {
            st.remove_in_flight(off);
        }
        let avail: Vec<u64> = st.available.range(from..to).map(|(&o, _)| o).collect();
        for off in avail {
            st.available.remove(&off);
            st.redelivery_counts.remove(&off);
        }
        st.delayed.retain(|&(_, o), _| o < from || o >= to);
        st.acks.insert_range(from, to);
        st.dirty = true;
        drop(st);
        self.bump();
        CursorOp::Ack { sub: self.op_name(), ranges: vec![(from, to)] }
    }

    /// Moves the cursor: everything below `offset` acknowledged, everything from it on pending.
    /// Messages in flight are forgotten; connected consumers continue from the new position.
    pub fn reset(&self, offset: u64) -> CursorOp {
        let mut st = self.lock();
        let offset = offset.min(self.log.end_offset());
        st.acks.reset(offset);
        st.read_pos = offset;
        let offs: Vec<u64> = st.in_flight.keys().copied().collect();
        for off in offs {
            st.remove_in_flight(off);
        }
        st.available.clear();
        st.delayed.clear();
        st.redelivery_counts.clear();
        st.dirty = true;
        drop(st);
        self.bump();
        CursorOp::Reset { sub: self.op_name(), mark_delete: offset }
    }

    /// Replays a cursor op from the WAL during recovery.
    pub fn apply(&self, op: &CursorOp) {
        let mut st = self.lock();
        match op {
            CursorOp::Ack { ranges, .. } => {
                for &(s, e) in ranges {
                    st.acks.insert_range(s, e);
                }
                st.read_pos = st.read_pos.max(st.acks.mark_delete());
            }
            CursorOp::Reset { mark_delete, .. } => {
                st.acks.reset(*mark_delete);
                st.read_pos = *mark_delete;
            }
        }
        st.dirty = true;
    }

    /// The cursor to checkpoint, if it changed since the last call: at most
    /// `max_ranges_to_persist` acknowledged ranges, the lowest ones (Pulsar's
    /// `managedLedgerMaxUnackedRangesToPersist`). Messages acknowledged in the ranges left out
    /// may be delivered again after a restart; nothing unacknowledged is ever lost.
    pub fn take_dirty_cursor(&self) -> Option<CursorState> {
        if !self.is_durable() {
            return None;
        }
        let mut st = self.lock();
        if !st.dirty {
            return None;
        }
        st.dirty = false;
        let mut state = st.acks.to_state();
        drop(st);
        if state.acked_ranges.len() > self.limits.max_ranges_to_persist {
            tracing::debug!(
                subscription = %self.id,
                ranges = state.acked_ranges.len(),
                kept = self.limits.max_ranges_to_persist,
                "acknowledged ranges beyond the persisted maximum are not checkpointed"
            );
            state.acked_ranges.truncate(self.limits.max_ranges_to_persist);
        }
        Some(state)
    }

    /// The whole cursor as one acknowledgement (mark-delete position and ranges): written to the
    /// WAL when a checkpoint fails, it carries the cursor forward so older WAL files can go. An
    /// acknowledgement is a union, so replaying it in any order with other ops loses no ack.
    pub fn cursor_as_op(&self) -> Option<CursorOp> {
        let SubscriptionId::Durable(name) = &self.id else { return None };
        let st = self.lock();
        let mut ranges = Vec::with_capacity(1 + st.acks.ranges().count());
        if st.acks.mark_delete() > 0 {
            ranges.push((0, st.acks.mark_delete()));
        }
        ranges.extend(st.acks.ranges());
        Some(CursorOp::Ack { sub: name.to_string(), ranges })
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
            delayed: st.delayed.len() as u64,
            unacked: st.in_flight.len() as u64,
            msg_out: st.msg_out,
            bytes_out: st.bytes_out,
            msg_redelivered: st.msg_redelivered,
            msg_expired: st.msg_expired,
            msg_acked: st.msg_acked,
            last_expired: st.last_expired,
            last_consumed: st.last_consumed,
            last_acked: st.last_acked,
            kind: st.kind,
            consumers: st.consumers.values().cloned().collect(),
            key_ranges: st.key_ranges(),
        }
    }

    /// Whether nothing is left to deliver below `end`: every message there is acknowledged or
    /// in flight, none waits for redelivery or for its delivery time (Pulsar's end of topic,
    /// once the log is terminated at `end`).
    pub fn delivered_all(&self, end: u64) -> bool {
        let start = self.log.start_offset();
        let st = self.lock();
        st.available.is_empty() && st.delayed.is_empty() && st.acks.next_unacked(st.read_pos.max(start)) >= end
    }

    /// Unacknowledged messages in `[from, to)`: how many, the first and the last.
    pub fn unacked_in(&self, from: u64, to: u64) -> (u64, Option<u64>, Option<u64>) {
        let st = self.lock();
        let from = from.max(st.acks.mark_delete());
        if from >= to {
            return (0, None, None);
        }
        let count = (to - from) - st.acks.count_acked_in(from, to);
        if count == 0 {
            return (0, None, None);
        }
        let first = st.acks.next_unacked(from);
        // The last: step down over acknowledged ranges from the end.
        let mut last = to - 1;
        while st.acks.contains(last) {
            match st.acks.ranges().find(|&(s, e)| s <= last && last < e) {
                Some((s, _)) if s > from => last = s - 1,
                _ => break,
            }
        }
        (count, Some(first), Some(last))
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

/// Why a cumulative acknowledgement was refused.
#[derive(Debug)]
pub enum CumulativeError {
    BeyondEnd(BeyondEnd),
    NotAllowed(BrokerError),
}

/// Sorted, deduplicated offsets → half-open ranges.
pub(super) fn to_ranges(sorted: &[u64]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &o in sorted {
        match out.last_mut() {
            Some((_, e)) if *e == o => *e = o + 1,
            _ => out.push((o, o + 1)),
        }
    }
    out
}
