//! One subscription on one partition: the cursor (acknowledged offsets), the consumers attached
//! with the subscription type, messages in flight with their ack deadlines, messages waiting for
//! (re)delivery, delayed messages, and redelivery counts.
//!
//! Every surface (HTTP pull, WebSocket consumers and readers) takes messages through `take`, so
//! a message is in flight to at most one consumer at a time. Acknowledgements are applied in
//! memory first (so no other consumer is handed the message) and made durable through the WAL
//! before the caller is answered (see `Broker::persist_op`).

use crate::ranges::AckSet;
use crate::{BrokerError, Result};
use magnetar_core::hash::key_slot;
use magnetar_metadata::CursorState;
use magnetar_storage::{PartitionLog, Record};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Property under which a publish's `deliverAt` travels with the record (hidden from consumers).
pub const DELIVER_AT_PROPERTY: &str = "__magnetar_deliver_at";
/// Most messages kept waiting for a particular consumer (Key_Shared) before reading stops.
const AVAILABLE_CAP: usize = 20_000;

pub type ConsumerId = u64;

/// Pulsar's subscription types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SubType {
    Exclusive,
    Shared,
    Failover,
    #[serde(rename = "Key_Shared")]
    KeyShared,
}

impl SubType {
    pub fn parse(s: &str) -> Option<SubType> {
        match s {
            "Exclusive" => Some(SubType::Exclusive),
            "Shared" => Some(SubType::Shared),
            "Failover" => Some(SubType::Failover),
            "Key_Shared" => Some(SubType::KeyShared),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            SubType::Exclusive => "Exclusive",
            SubType::Shared => "Shared",
            SubType::Failover => "Failover",
            SubType::KeyShared => "Key_Shared",
        }
    }
    /// Delayed delivery is honoured for Shared and Key_Shared only, as in Pulsar.
    fn delays(self) -> bool {
        matches!(self, SubType::Shared | SubType::KeyShared)
    }
}

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

#[derive(Debug, Clone)]
pub struct ConsumerInfo {
    pub id: ConsumerId,
    pub name: String,
    pub priority: i32,
    pub address: String,
    pub connected_since: i64,
    pub unacked: u64,
    pub msg_out: u64,
    pub bytes_out: u64,
}

#[derive(Debug, Clone, Copy)]
struct InFlight {
    deadline: Option<Instant>,
    consumer: Option<ConsumerId>,
    slot: u16,
}

#[derive(Debug, Default)]
struct State {
    acks: AckSet,
    /// Next offset never read for delivery yet.
    read_pos: u64,
    in_flight: BTreeMap<u64, InFlight>,
    /// Messages ready to be (re)delivered, with their key slot.
    available: BTreeMap<u64, u16>,
    /// Delayed messages: (deliver at ms, offset) → key slot.
    delayed: BTreeMap<(i64, u64), u16>,
    redelivery_counts: HashMap<u64, u32>,
    kind: Option<SubType>,
    consumers: BTreeMap<ConsumerId, ConsumerInfo>,
    /// Key_Shared: slot → (consumer holding in-flight messages of that slot, how many).
    slot_holders: HashMap<u16, (ConsumerId, u32)>,
    /// Key_Shared hash ring: (point, consumer), sorted.
    ring: Vec<(u32, ConsumerId)>,
    dirty: bool,
    msg_out: u64,
    bytes_out: u64,
    msg_redelivered: u64,
    msg_expired: u64,
    last_consumed: i64,
    last_acked: i64,
}

impl State {
    fn add_in_flight(&mut self, off: u64, f: InFlight) {
        if let Some(c) = f.consumer {
            if let Some(info) = self.consumers.get_mut(&c) {
                info.unacked += 1;
            }
            if self.kind == Some(SubType::KeyShared) {
                let e = self.slot_holders.entry(f.slot).or_insert((c, 0));
                e.1 += 1;
            }
        }
        if let Some(old) = self.in_flight.insert(off, f) {
            self.forget_holder(&old);
        }
    }

    fn remove_in_flight(&mut self, off: u64) -> Option<InFlight> {
        let f = self.in_flight.remove(&off)?;
        self.forget_holder(&f);
        Some(f)
    }

    fn forget_holder(&mut self, f: &InFlight) {
        if let Some(c) = f.consumer {
            if let Some(info) = self.consumers.get_mut(&c) {
                info.unacked = info.unacked.saturating_sub(1);
            }
            if let Some(e) = self.slot_holders.get_mut(&f.slot) {
                e.1 = e.1.saturating_sub(1);
                if e.1 == 0 {
                    self.slot_holders.remove(&f.slot);
                }
            }
        }
    }

    /// The Failover active consumer for partition `index`: consumers sorted by priority, then
    /// name; partition i goes to consumer i mod n (Pulsar's assignment).
    fn active(&self, index: i32) -> Option<ConsumerId> {
        let mut list: Vec<&ConsumerInfo> = self.consumers.values().collect();
        if list.is_empty() {
            return None;
        }
        list.sort_by(|a, b| (a.priority, &a.name, a.id).cmp(&(b.priority, &b.name, b.id)));
        Some(list[index.max(0) as usize % list.len()].id)
    }

    fn slot_owner(&self, slot: u16) -> Option<ConsumerId> {
        if self.ring.is_empty() {
            return None;
        }
        let point = spread(slot as u64);
        let i = self.ring.partition_point(|(p, _)| *p < point);
        Some(self.ring[i % self.ring.len()].1)
    }

    fn rebuild_ring(&mut self) {
        self.ring = self
            .consumers
            .values()
            .flat_map(|c| (0..64u64).map(move |v| (spread(c.id.wrapping_mul(1_000_003).wrapping_add(v)), c.id)))
            .collect();
        self.ring.sort_unstable();
    }

    /// May `consumer` (None = an HTTP puller) be handed a message of `slot` now?
    fn eligible(&self, consumer: Option<ConsumerId>, slot: u16, index: i32) -> bool {
        let Some(c) = consumer else { return true };
        match self.kind {
            None | Some(SubType::Shared) | Some(SubType::Exclusive) => true,
            Some(SubType::Failover) => self.active(index) == Some(c),
            Some(SubType::KeyShared) => {
                // A slot with messages in flight to another consumer waits for them, so one key is
                // never processed by two consumers at once (and its order holds).
                self.slot_owner(slot) == Some(c) && self.slot_holders.get(&slot).is_none_or(|(h, _)| *h == c)
            }
        }
    }

    /// Returns messages in flight to consumers that may no longer have them (after a Failover
    /// switch or a consumer leaving) to the available set.
    fn release(&mut self, keep: impl Fn(&State, ConsumerId) -> bool) {
        let moved: Vec<u64> = self
            .in_flight
            .iter()
            .filter(|(_, f)| f.consumer.is_some_and(|c| !keep(self, c)))
            .map(|(&o, _)| o)
            .collect();
        for off in moved {
            if let Some(f) = self.remove_in_flight(off) {
                self.available.insert(off, f.slot);
            }
        }
    }
}

/// A cheap integer mix so ring points spread evenly.
fn spread(x: u64) -> u32 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) as u32
}

fn slot_of(rec: &Record) -> u16 {
    key_slot(rec.key.as_deref().unwrap_or("").as_bytes())
}

fn deliver_at(rec: &Record) -> Option<i64> {
    rec.properties.iter().find(|(k, _)| k == DELIVER_AT_PROPERTY).and_then(|(_, v)| v.parse().ok())
}

/// Per-second rates of a subscription, recomputed by the broker's stats ticker.
#[derive(Debug, Clone, Copy, Default)]
pub struct SubRates {
    pub msg_out: f64,
    pub bytes_out: f64,
    pub redelivered: f64,
    pub expired: f64,
}

/// Counters (out, bytes out, redelivered, expired) at the previous rate computation.
type RateSample = Option<(Instant, [u64; 4])>;

pub struct Subscription {
    name: String,
    rates: Mutex<(SubRates, RateSample)>,
    partition_index: i32,
    log: Arc<PartitionLog>,
    max_in_flight: usize,
    /// Durable subscriptions persist their cursor; readers' do not.
    durable: bool,
    state: Mutex<State>,
    /// Bumped whenever messages may have become available without the log growing.
    changes: watch::Sender<u64>,
}

/// What a waiting consumer compares against to know something changed.
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
        durable: bool,
    ) -> Self {
        let acks = AckSet::from_state(cursor);
        let read_pos = acks.mark_delete();
        let state = State { acks, read_pos, ..State::default() };
        Subscription {
            name,
            rates: Mutex::new((SubRates::default(), None)),
            partition_index,
            log,
            max_in_flight: max_in_flight.max(1),
            durable,
            state: Mutex::new(state),
            changes: watch::channel(0).0,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn is_durable(&self) -> bool {
        self.durable
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bump(&self) {
        self.changes.send_modify(|v| *v += 1);
    }

    /// Attaches a consumer. Pulsar's rules: the type is fixed while consumers are attached; an
    /// Exclusive subscription takes one consumer.
    pub fn attach(&self, info: ConsumerInfo, kind: SubType) -> Result<()> {
        let mut st = self.lock();
        if let Some(existing) = st.kind.filter(|_| !st.consumers.is_empty()) {
            if existing != kind {
                return Err(BrokerError::Conflict(format!(
                    "subscription {} is {} with connected consumers; cannot attach a {} consumer",
                    self.name,
                    existing.as_str(),
                    kind.as_str()
                )));
            }
            if kind == SubType::Exclusive {
                return Err(BrokerError::Conflict(format!(
                    "exclusive subscription {} already has a consumer",
                    self.name
                )));
            }
        }
        st.kind = Some(kind);
        st.consumers.insert(info.id, info);
        st.rebuild_ring();
        if kind == SubType::Failover {
            let index = self.partition_index;
            st.release(|s, c| s.active(index) == Some(c));
        }
        drop(st);
        self.bump();
        Ok(())
    }

    /// Detaches a consumer; its unacknowledged messages go to the others.
    pub fn detach(&self, id: ConsumerId) {
        let mut st = self.lock();
        if st.consumers.remove(&id).is_none() {
            return;
        }
        st.release(|_, c| c != id);
        st.rebuild_ring();
        if st.kind == Some(SubType::Failover) {
            let index = self.partition_index;
            st.release(|s, c| s.active(index) == Some(c));
        }
        if st.consumers.is_empty() {
            st.kind = None;
        }
        drop(st);
        self.bump();
    }

    /// Recomputes the rates from the counters since the previous call.
    pub fn update_rates(&self) {
        let now = Instant::now();
        let counters = {
            let st = self.lock();
            [st.msg_out, st.bytes_out, st.msg_redelivered, st.msg_expired]
        };
        let mut r = self.rates.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, prev)) = r.1 {
            let secs = now.duration_since(at).as_secs_f64().max(0.001);
            let rate = |i: usize| counters[i].saturating_sub(prev[i]) as f64 / secs;
            r.0 = SubRates { msg_out: rate(0), bytes_out: rate(1), redelivered: rate(2), expired: rate(3) };
        }
        r.1 = Some((now, counters));
    }

    pub fn rates(&self) -> SubRates {
        self.rates.lock().unwrap_or_else(|e| e.into_inner()).0
    }

    /// Consumers attached or messages in flight (Pulsar refuses deletes then, unless forced).
    pub fn is_busy(&self) -> bool {
        let st = self.lock();
        !st.consumers.is_empty() || !st.in_flight.is_empty()
    }

    pub fn kind(&self) -> Option<SubType> {
        self.lock().kind
    }

    pub fn consumers(&self) -> Vec<ConsumerInfo> {
        self.lock().consumers.values().cloned().collect()
    }

    pub fn unacked_of(&self, id: ConsumerId) -> u64 {
        self.lock().consumers.get(&id).map(|c| c.unacked).unwrap_or(0)
    }

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
        let now = Instant::now();
        let deadline = ack_timeout.map(|t| now + t);
        let idx = self.partition_index;
        let start = self.log.start_offset();
        let (from_available, read_pos, room) = {
            let mut st = self.lock();
            Self::expire(&mut st, now);
            let now_ms = magnetar_core::now_millis();
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
            let room = if st.available.len() >= AVAILABLE_CAP {
                0
            } else {
                (max - taken.len()).min(self.max_in_flight.saturating_sub(st.in_flight.len()))
            };
            (taken, st.read_pos, room)
        };

        let mut out = Vec::with_capacity(from_available.len());
        let mut bytes = 0usize;
        for off in from_available {
            match self.log.read(off, 1, usize::MAX)?.into_iter().next() {
                Some(rec) if rec.offset == off => {
                    bytes += rec.payload.len();
                    out.push(rec);
                }
                _ => {
                    let mut st = self.lock();
                    st.remove_in_flight(off);
                    st.redelivery_counts.remove(&off);
                }
            }
        }

        if room > 0 && read_pos < self.log.end_offset() && bytes < max_bytes {
            let fresh = self.log.read(read_pos, room, max_bytes - bytes)?;
            let mut st = self.lock();
            // Another taker may have read the same range meanwhile; only the one that still
            // sees the read position it read from claims the records.
            if st.read_pos == read_pos {
                if let Some(last) = fresh.last() {
                    st.read_pos = last.offset + 1;
                }
                let now_ms = magnetar_core::now_millis();
                let delays = st.kind.is_none_or(SubType::delays);
                for rec in fresh {
                    if st.acks.contains(rec.offset) || st.in_flight.contains_key(&rec.offset) {
                        continue;
                    }
                    let slot = slot_of(&rec);
                    if delays && let Some(at) = deliver_at(&rec).filter(|&at| at > now_ms) {
                        st.delayed.insert((at, rec.offset), slot);
                        continue;
                    }
                    if out.len() < max && st.eligible(consumer, slot, idx) {
                        st.add_in_flight(rec.offset, InFlight { deadline, consumer, slot });
                        out.push(rec);
                    } else {
                        st.available.insert(rec.offset, slot);
                    }
                }
            }
        }

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
            st.last_consumed = magnetar_core::now_millis();
            if let Some(info) = consumer.and_then(|c| st.consumers.get_mut(&c)) {
                info.msg_out += deliveries.len() as u64;
                info.bytes_out += total;
            }
        }
        Ok(deliveries)
    }

    pub async fn take(
        self: &Arc<Self>,
        consumer: Option<ConsumerId>,
        max: usize,
        max_bytes: usize,
        ack_timeout: Option<Duration>,
    ) -> Result<Vec<Delivery>> {
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || this.take_blocking(consumer, max, max_bytes, ack_timeout))
            .await
            .map_err(|e| BrokerError::Internal(format!("read task failed: {e}")))?
            .map_err(Into::into)
    }

    /// Moves in-flight messages whose deadline passed to the available set.
    fn expire(st: &mut State, now: Instant) {
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

    pub fn wait_token(&self) -> WaitToken {
        let st = self.lock();
        // With the in-flight window full, new data does not help: wait for an ack (which bumps
        // the version) or a deadline instead of spinning on the log.
        let full = st.in_flight.len() >= self.max_in_flight || st.available.len() >= AVAILABLE_CAP;
        let delayed_due = st.delayed.keys().next().map(|&(at, _)| {
            let wait = (at - magnetar_core::now_millis()).max(0) as u64;
            Instant::now() + Duration::from_millis(wait)
        });
        let next_deadline = st.in_flight.values().filter_map(|f| f.deadline).min();
        WaitToken {
            version: *self.changes.borrow(),
            read_pos: if full { u64::MAX } else { st.read_pos },
            next_deadline: match (next_deadline, delayed_due) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
        }
    }

    /// Resolves when taking again may yield something: new data in the log, a change (ack,
    /// negative ack, reset, consumers joining or leaving) or a deadline passing.
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
        for &off in &sorted {
            st.remove_in_flight(off);
            st.available.remove(&off);
            st.redelivery_counts.remove(&off);
            st.acks.insert(off);
        }
        st.dirty = true;
        st.last_acked = magnetar_core::now_millis();
        drop(st);
        // Acks free in-flight room and Key_Shared slots: consumers waiting on them look again.
        self.bump();
        Some(CursorOp::Ack { sub: self.name.clone(), ranges: to_ranges(&sorted) })
    }

    /// Acknowledges every message up to and including `offset` (Exclusive and Failover only).
    pub fn ack_cumulative(&self, offset: u64) -> Result<Option<CursorOp>> {
        let mut st = self.lock();
        if matches!(st.kind, Some(SubType::Shared | SubType::KeyShared)) {
            return Err(BrokerError::BadRequest(format!(
                "cumulative acknowledgement is not allowed on {} subscription {}",
                st.kind.map(SubType::as_str).unwrap_or(""),
                self.name
            )));
        }
        if st.acks.contains(offset) {
            return Ok(None);
        }
        let upto = offset + 1;
        let in_flight: Vec<u64> = st.in_flight.range(..upto).map(|(&o, _)| o).collect();
        for off in in_flight {
            st.remove_in_flight(off);
            st.redelivery_counts.remove(&off);
        }
        let avail: Vec<u64> = st.available.range(..upto).map(|(&o, _)| o).collect();
        for off in avail {
            st.available.remove(&off);
        }
        let from = st.acks.mark_delete();
        st.acks.insert_range(from, upto);
        st.dirty = true;
        st.last_acked = magnetar_core::now_millis();
        drop(st);
        self.bump();
        Ok(Some(CursorOp::Ack { sub: self.name.clone(), ranges: vec![(from, upto)] }))
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

    /// Acknowledges everything published before `before_ms` (TTL and `expireMessages`);
    /// returns the op and how many messages expired.
    pub fn expire_before(&self, before_ms: i64) -> Option<(CursorOp, u64)> {
        let upto = self.log.offset_for_publish_time(before_ms);
        let st = self.lock();
        let md = st.acks.mark_delete();
        if upto <= md {
            return None;
        }
        let count = (upto - md) - st.acks.count_acked_in(md, upto);
        drop(st);
        let op = self.ack_range(md, upto)?;
        self.lock().msg_expired += count;
        Some((op, count))
    }

    fn ack_range(&self, from: u64, to: u64) -> Option<CursorOp> {
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
        Some(CursorOp::Ack { sub: self.name.clone(), ranges: vec![(from, to)] })
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
        CursorOp::Reset { sub: self.name.clone(), mark_delete: offset }
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

    /// The cursor to checkpoint, if it changed since the last call.
    pub fn take_dirty_cursor(&self) -> Option<CursorState> {
        let mut st = self.lock();
        if !st.dirty || !self.durable {
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
            delayed: st.delayed.len() as u64,
            unacked: st.in_flight.len() as u64,
            msg_out: st.msg_out,
            bytes_out: st.bytes_out,
            msg_redelivered: st.msg_redelivered,
            msg_expired: st.msg_expired,
            last_consumed: st.last_consumed,
            last_acked: st.last_acked,
            kind: st.kind,
            consumers: st.consumers.values().cloned().collect(),
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
    pub delayed: u64,
    pub unacked: u64,
    pub msg_out: u64,
    pub bytes_out: u64,
    pub msg_redelivered: u64,
    pub msg_expired: u64,
    pub last_consumed: i64,
    pub last_acked: i64,
    pub kind: Option<SubType>,
    pub consumers: Vec<ConsumerInfo>,
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
    use super::*;

    #[test]
    fn offsets_compress_to_ranges() {
        assert_eq!(to_ranges(&[1, 2, 3, 7, 9, 10]), vec![(1, 4), (7, 8), (9, 11)]);
        assert!(to_ranges(&[]).is_empty());
    }

    #[test]
    fn ring_gives_every_slot_an_owner_and_spreads_them() {
        let mut st = State::default();
        for id in 1..=3 {
            st.consumers.insert(
                id,
                ConsumerInfo {
                    id,
                    name: format!("c{id}"),
                    priority: 0,
                    address: String::new(),
                    connected_since: 0,
                    unacked: 0,
                    msg_out: 0,
                    bytes_out: 0,
                },
            );
        }
        st.rebuild_ring();
        let mut counts = HashMap::new();
        for slot in 0..=u16::MAX {
            *counts.entry(st.slot_owner(slot).unwrap()).or_insert(0u32) += 1;
        }
        assert_eq!(counts.len(), 3);
        assert!(counts.values().all(|&n| n > 65_536 / 10), "{counts:?}");
    }
}
