//! Taking messages for a consumer: redeliveries first, then new messages read from the log, with
//! delayed messages held back until they are due. A read that fails (an object-store outage, a
//! disk error) hands back every message it had claimed, so nothing stays in flight to a consumer
//! that never received it.

use super::ahead::{AHEAD_BYTES, AHEAD_RECORDS, ReadAhead};
use super::state::{InFlight, State, deliver_at, slot_of};
use super::{AVAILABLE_CAP, ConsumerId, DELIVER_AT_PROPERTY, Delivery, SubType, Subscription};
use crate::{BrokerError, Result};
use magnetar_storage::Record;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Who new messages are claimed for, how many, until when, and whether batches stay whole.
#[derive(Clone, Copy)]
struct Claim {
    consumer: Option<ConsumerId>,
    max: usize,
    deadline: Option<Instant>,
    whole_batches: bool,
}

/// How a take reads.
#[derive(Default, Clone)]
pub struct Taking {
    /// New messages of a batch are not cut at `max` nor at the end of a read, so that they go
    /// to the consumer together (a binary consumer receives them as one frame; permits count
    /// messages and may be overdrawn by the rest of a batch, as with Pulsar). Other takers get
    /// at most `max`.
    pub whole_batches: bool,
    /// The consumer's read-ahead window, used where the take starts reading.
    pub ahead: Option<Arc<ReadAhead>>,
}

impl Subscription {
    /// Takes up to `max` messages for `consumer` (None = an HTTP puller) without waiting:
    /// redeliveries first, oldest first, then new messages. They stay in flight until acked or
    /// until `ack_timeout` passes. Reads may touch the disk: async callers use `take`.
    pub fn take_blocking(
        &self,
        consumer: Option<ConsumerId>,
        max: usize,
        max_bytes: usize,
        ack_timeout: Option<Duration>,
    ) -> magnetar_storage::Result<Vec<Delivery>> {
        self.take_blocking_with(consumer, max, max_bytes, ack_timeout, &Taking::default())
    }

    /// [`Self::take_blocking`], as `how` says ([`Taking`]).
    pub fn take_blocking_with(
        &self,
        consumer: Option<ConsumerId>,
        max: usize,
        max_bytes: usize,
        ack_timeout: Option<Duration>,
        how: &Taking,
    ) -> magnetar_storage::Result<Vec<Delivery>> {
        let whole_batches = how.whole_batches;
        let now = Instant::now();
        let deadline = ack_timeout.map(|t| now + t);
        let view = self.compacted_view();
        let (claimed, read_pos, room) = self.claim_available(consumer, max, deadline, now, view.as_deref());
        let out = match self.read_claimed(&claimed, view.as_deref()) {
            Ok(out) => out,
            Err(e) => {
                self.release_claimed(&claimed);
                return Err(e);
            }
        };
        let bytes: usize = out.iter().map(|r| r.payload.len()).sum();
        let mut out = out;
        if let Some(v) = view.as_deref()
            && room > 0
            && read_pos < v.horizon()
        {
            // Below the horizon a compacted reader reads the view; the offsets it lacks count as
            // consumed, and once it is exhausted reading goes on at the horizon.
            let (fresh, last) = v.read_from(read_pos, room, max_bytes.saturating_sub(bytes).max(1));
            let skip_to = last.then(|| v.horizon());
            let claim = Claim { consumer, max, deadline, whole_batches };
            self.claim_fresh(fresh, read_pos, claim, &mut out, Some(skip_to));
            return Ok(self.deliver(out, consumer));
        }
        if room > 0 && read_pos < self.log.end_offset() && bytes < max_bytes {
            // A compacted reader past the horizon: messages retention deleted count as consumed.
            let from = if view.is_some() { read_pos.max(self.log.start_offset()) } else { read_pos };
            let gaps = view.is_some().then_some(None);
            let read = self.read_new(from, room, max_bytes - bytes, how);
            match read {
                Ok(fresh) => {
                    let claim = Claim { consumer, max, deadline, whole_batches };
                    self.claim_fresh(fresh, read_pos, claim, &mut out, gaps)
                }
                Err(e) if out.is_empty() => return Err(e),
                // What was already read is delivered; the fresh read is retried next time.
                Err(e) => tracing::debug!(error = %e, "reading new messages failed; delivering redeliveries only"),
            }
        }
        Ok(self.deliver(out, consumer))
    }

    pub async fn take(
        self: &Arc<Self>,
        consumer: Option<ConsumerId>,
        max: usize,
        max_bytes: usize,
        ack_timeout: Option<Duration>,
    ) -> Result<Vec<Delivery>> {
        self.take_with(consumer, max, max_bytes, ack_timeout, Taking::default()).await
    }

    /// [`Self::take`], as `how` says ([`Taking`]).
    pub async fn take_with(
        self: &Arc<Self>,
        consumer: Option<ConsumerId>,
        max: usize,
        max_bytes: usize,
        ack_timeout: Option<Duration>,
        how: Taking,
    ) -> Result<Vec<Delivery>> {
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || this.take_blocking_with(consumer, max, max_bytes, ack_timeout, &how))
            .await
            .map_err(|e| BrokerError::Internal(format!("read task failed: {e}")))?
            .map_err(Into::into)
    }

    /// Reads up to `max` records from `from` and, with `whole_batches`, the rest of a batch the
    /// read stops inside, so that a batch's messages go to one consumer together (a binary
    /// consumer then receives the batch as one frame, under the ids its producer was told).
    fn read_new(&self, from: u64, max: usize, max_bytes: usize, how: &Taking) -> magnetar_storage::Result<Vec<Record>> {
        let ahead = how.ahead.as_deref();
        let mut fresh = self.read_fresh(from, max, max_bytes, ahead)?;
        let cut = fresh.last().and_then(|last| last.batch.filter(|b| b.index + 1 < b.size).map(|b| (last.offset, b)));
        if let Some((last, b)) = cut.filter(|_| how.whole_batches) {
            let tail = self.read_fresh(last + 1, (b.size - b.index - 1) as usize, usize::MAX, ahead)?;
            // Only the batch's own records: the next one may start another batch.
            fresh.extend(tail.into_iter().take_while(|r| {
                r.batch
                    .is_some_and(|t| t.size == b.size && u64::from(t.index) == u64::from(b.index) + (r.offset - last))
            }));
        }
        Ok(fresh)
    }

    /// What `log.read(from, max, max_bytes)` returns, taken from the consumer's read-ahead
    /// window as far as it goes and from the log after it.
    fn read_fresh(
        &self,
        from: u64,
        max: usize,
        max_bytes: usize,
        ahead: Option<&ReadAhead>,
    ) -> magnetar_storage::Result<Vec<Record>> {
        let (mut out, bytes) = ahead.map(|a| a.take(from, max, max_bytes)).unwrap_or_default();
        let Some(last) = out.last().map(|r| r.offset) else { return self.log.read(from, max, max_bytes) };
        if out.len() < max && bytes < max_bytes && last + 1 < self.log.end_offset() {
            match self.log.read(last + 1, max - out.len(), max_bytes - bytes) {
                Ok(more) => out.extend(more),
                // What the window held is delivered; the rest is read again next time.
                Err(e) => tracing::debug!(error = %e, "reading past the read-ahead window failed"),
            }
        }
        Ok(out)
    }

    /// Reads the records a consumer's next take will start with into `ahead`, unless it holds
    /// them already (see `ahead.rs`). A compacted reader reads its view instead: nothing to do.
    pub fn read_ahead_blocking(&self, ahead: &ReadAhead) {
        if self.compacted_view().is_some() {
            return;
        }
        let from = self.lock().read_pos.max(self.log.start_offset());
        if from >= self.log.end_offset() || ahead.holds(from) {
            return;
        }
        match self.log.read(from, AHEAD_RECORDS, AHEAD_BYTES) {
            Ok(records) => ahead.fill(from, records),
            // The take reads the log itself and reports what fails.
            Err(e) => tracing::debug!(error = %e, "reading ahead failed"),
        }
    }

    /// Under the lock: expires deadlines, releases due delayed messages, and claims available
    /// (redelivered) messages this consumer may have. Returns them with the read position and
    /// how many new messages may be read.
    fn claim_available(
        &self,
        consumer: Option<ConsumerId>,
        max: usize,
        deadline: Option<Instant>,
        now: Instant,
        view: Option<&crate::compaction::CompactedView>,
    ) -> (Vec<u64>, u64, usize) {
        let idx = self.partition_index;
        // A compacted reader still reads below the log's start: the view outlives retention.
        let start = if view.is_some() { 0 } else { self.log.start_offset() };
        let mut st = self.lock();
        Self::expire(&mut st, now);
        let now_ms = self.now_ms();
        while let Some((&(at, off), &slot)) = st.delayed.first_key_value() {
            if at > now_ms {
                break;
            }
            st.delayed.remove(&(at, off));
            st.available.insert(off, slot);
        }
        // Records below the log start were deleted by retention: they count as consumed.
        if st.acks.mark_delete() < start {
            st.acks.insert_range(0, start);
            st.dirty = true;
        }
        st.read_pos = st.read_pos.max(start);
        let mut taken = Vec::new();
        let candidates: Vec<(u64, u16)> = st.available.iter().take(AVAILABLE_CAP).map(|(&o, &s)| (o, s)).collect();
        for (off, slot) in candidates {
            if taken.len() >= max {
                break;
            }
            if off < start || st.acks.contains(off) {
                st.available.remove(&off);
                st.redelivery_counts.remove(&off);
                continue;
            }
            if st.eligible(consumer, slot, idx) {
                st.available.remove(&off);
                st.add_in_flight(off, InFlight { deadline, consumer, slot });
                taken.push(off);
            }
        }
        let room = if st.available.len() >= AVAILABLE_CAP || st.delayed.len() >= self.limits.max_delayed {
            0
        } else {
            (max - taken.len()).min(self.max_in_flight().saturating_sub(st.in_flight.len()))
        };
        (taken, st.read_pos, room)
    }

    /// Reads the claimed offsets; one that no longer exists (deleted by retention) is dropped
    /// from flight.
    fn read_claimed(
        &self,
        claimed: &[u64],
        view: Option<&crate::compaction::CompactedView>,
    ) -> magnetar_storage::Result<Vec<Record>> {
        let mut out = Vec::with_capacity(claimed.len());
        for &off in claimed {
            let kept = view.filter(|v| off < v.horizon()).map(|v| v.get(off).cloned());
            let found = match kept {
                Some(rec) => rec,
                None if off < self.log.start_offset() => None,
                None => self.log.read(off, 1, usize::MAX)?.into_iter().next(),
            };
            match found {
                Some(rec) if rec.offset == off => out.push(rec),
                _ => {
                    let mut st = self.lock();
                    st.remove_in_flight(off);
                    st.redelivery_counts.remove(&off);
                }
            }
        }
        Ok(out)
    }

    /// Hands claimed offsets back after a failed read: available again, with their redelivery
    /// counts unchanged (the consumer never saw them).
    fn release_claimed(&self, claimed: &[u64]) {
        let mut st = self.lock();
        for &off in claimed {
            if let Some(f) = st.remove_in_flight(off) {
                st.available.insert(off, f.slot);
            }
        }
        drop(st);
        self.bump();
    }

    /// Claims records read from `read_pos` on. `gaps` (compacted readers): offsets skipped
    /// between records count as consumed, and with `Some(end)` so does everything up to `end`
    /// once every record is claimed.
    fn claim_fresh(
        &self,
        fresh: Vec<Record>,
        read_pos: u64,
        claim: Claim,
        out: &mut Vec<Record>,
        gaps: Option<Option<u64>>,
    ) {
        let Claim { consumer, max, deadline, whole_batches } = claim;
        let idx = self.partition_index;
        let now_ms = self.now_ms();
        let mut st = self.lock();
        // Another taker may have read the same range meanwhile; only the one that still sees the
        // read position it read from claims the records.
        if st.read_pos != read_pos {
            return;
        }
        let delays = st.kind.is_none_or(SubType::delays) && self.delayed_delivery();
        let mut complete = true;
        for rec in fresh {
            if st.delayed.len() >= self.limits.max_delayed {
                // The delayed index is full: stop here; the rest is read again once delayed
                // messages are delivered (documented bound, `max_delayed_messages_per_subscription`).
                complete = false;
                break;
            }
            if gaps.is_some() && rec.offset > st.read_pos {
                let from = st.read_pos;
                st.acks.insert_range(from, rec.offset);
                st.dirty = true;
            }
            st.read_pos = rec.offset + 1;
            if st.acks.contains(rec.offset) || st.in_flight.contains_key(&rec.offset) {
                continue;
            }
            let slot = slot_of(&rec);
            if delays && let Some(at) = deliver_at(&rec).filter(|&at| at > now_ms) {
                st.delayed.insert((at, rec.offset), slot);
                continue;
            }
            // A batch is not cut at `max`: its rest goes with its start (permits count
            // messages, and a consumer may receive a few more than it asked for, as in Pulsar).
            let continues_batch = whole_batches
                && rec.batch.is_some_and(|b| b.index > 0)
                && out.last().is_some_and(|l| l.offset + 1 == rec.offset && l.batch.is_some());
            if (out.len() < max || continues_batch) && st.eligible(consumer, slot, idx) {
                st.add_in_flight(rec.offset, InFlight { deadline, consumer, slot });
                out.push(rec);
            } else {
                st.available.insert(rec.offset, slot);
            }
        }
        if let Some(Some(end)) = gaps
            && complete
            && st.read_pos < end
        {
            let from = st.read_pos;
            st.acks.insert_range(from, end);
            st.read_pos = end;
            st.dirty = true;
        }
    }

    /// Counts what is handed out and strips internal properties.
    fn deliver(&self, out: Vec<Record>, consumer: Option<ConsumerId>) -> Vec<Delivery> {
        let mut st = self.lock();
        let mut deliveries = Vec::with_capacity(out.len());
        let mut total = 0u64;
        for mut record in out {
            let redelivery_count = st.redelivery_counts.get(&record.offset).copied().unwrap_or(0);
            record.properties.retain(|(k, _)| k != DELIVER_AT_PROPERTY);
            total += record.payload.len() as u64;
            deliveries.push(Delivery { record, partition_index: self.partition_index, redelivery_count });
        }
        if !deliveries.is_empty() {
            st.msg_out += deliveries.len() as u64;
            st.bytes_out += total;
            st.last_consumed = self.now_ms();
            if let Some(info) = consumer.and_then(|c| st.consumers.get_mut(&c)) {
                info.msg_out += deliveries.len() as u64;
                info.bytes_out += total;
            }
        }
        deliveries
    }

    /// Moves in-flight messages whose deadline passed to the available set.
    pub(super) fn expire(st: &mut State, now: Instant) {
        let expired: Vec<u64> =
            st.in_flight.iter().filter(|(_, f)| f.deadline.is_some_and(|d| d <= now)).map(|(&o, _)| o).collect();
        for off in expired {
            if let Some(f) = st.remove_in_flight(off) {
                st.available.insert(off, f.slot);
                *st.redelivery_counts.entry(off).or_insert(0) += 1;
                st.msg_redelivered += 1;
            }
        }
    }
}
