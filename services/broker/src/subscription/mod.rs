//! One subscription on one partition: the cursor (acknowledged offsets), the consumers attached
//! with the subscription type, messages in flight with their ack deadlines, messages waiting for
//! (re)delivery, delayed messages, and redelivery counts.
//!
//! Every surface (HTTP pull, WebSocket consumers and readers) takes messages through `take`
//! (`dispatch.rs`), so a message is in flight to at most one consumer at a time.
//! Acknowledgements (`cursor.rs`) are applied in memory first (so no other consumer is handed
//! the message) and made durable through the WAL before the caller is answered.
//!
//! Bounds: at most `max_in_flight` messages in flight, `AVAILABLE_CAP` waiting for a particular
//! consumer and `max_delayed` held for delayed delivery; past each, reading new messages pauses
//! until room frees up. Acknowledged ranges beyond the mark-delete position exist only around
//! those messages, so they are bounded too; of them, the first `max_ranges_to_persist` are
//! checkpointed (Pulsar's `managedLedgerMaxUnackedRangesToPersist`).

mod ahead;
pub(crate) mod cursor;
mod dispatch;
mod state;

use crate::policies::limiter::FlowLimiter;
use crate::policies::runtime::PartitionPolicy;
use crate::ranges::AckSet;
use crate::{BrokerError, Result};
use magnetar_core::{SharedClock, SubscriptionName};
use magnetar_metadata::CursorState;
use magnetar_storage::{PartitionLog, Record};
use serde::{Deserialize, Serialize};
use state::{State, StickyConflict};
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

pub use ahead::{AHEAD_RECORDS, ReadAhead};
pub use cursor::BeyondEnd;
pub use dispatch::Taking;

/// Property under which a publish's `deliverAt` travels with the record (hidden from consumers).
pub const DELIVER_AT_PROPERTY: &str = "__magnetar_deliver_at";
/// Most messages kept waiting for a particular consumer (Key_Shared) before reading stops.
const AVAILABLE_CAP: usize = 20_000;

pub type ConsumerId = u64;

/// Pulsar's subscription types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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

/// A durable subscription by name, or a reader's subscription by reader id: two name spaces, so
/// a durable subscription can never be mistaken for a reader.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SubscriptionId {
    Durable(SubscriptionName),
    Reader(u64),
}

impl std::fmt::Display for SubscriptionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubscriptionId::Durable(name) => f.write_str(name.as_str()),
            // How stats show a reader (Pulsar shows `reader-<id>` subscriptions too).
            SubscriptionId::Reader(id) => write!(f, "reader-{id:x}"),
        }
    }
}

/// Bounds of one subscription (from the broker configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriptionLimits {
    pub max_in_flight: usize,
    pub max_delayed: usize,
    pub max_ranges_to_persist: usize,
}

impl Default for SubscriptionLimits {
    fn default() -> Self {
        SubscriptionLimits { max_in_flight: 50_000, max_delayed: 1_000_000, max_ranges_to_persist: 10_000 }
    }
}

/// A message handed to a consumer.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub record: Record,
    pub partition_index: i32,
    pub redelivery_count: u32,
}

/// Cursor changes, written to the WAL as aux records and replayed after a crash. An `Ack` of a
/// subscription's whole cursor also carries a cursor forward when its checkpoint fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CursorOp {
    Ack { sub: String, ranges: Vec<(u64, u64)> },
    Reset { sub: String, mark_delete: u64 },
}

impl CursorOp {
    pub fn subscription(&self) -> &str {
        match self {
            CursorOp::Ack { sub, .. } | CursorOp::Reset { sub, .. } => sub,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ConsumerInfo {
    pub id: ConsumerId,
    pub name: String,
    pub priority: i32,
    pub address: String,
    pub connected_since: i64,
    pub unacked: u64,
    pub msg_out: u64,
    pub bytes_out: u64,
    /// Messages this consumer acknowledged (individually or as part of a cumulative ack).
    pub acked: u64,
    /// A Key_Shared consumer in Pulsar's Sticky mode: the key hash slots it claims (inclusive
    /// ranges of 0..=65535); `None` for auto-split.
    pub sticky: Option<Vec<(u16, u16)>>,
    /// The consumer's properties (Pulsar's consumer `metadata`, shown in its stats).
    pub metadata: Vec<(String, String)>,
    /// The client library and version the consumer's connection announced (binary protocol).
    pub client_version: String,
    /// The permits its FLOW commands granted and deliveries have not used (binary consumers;
    /// negative while a batch overdrew them).
    pub permits: Option<std::sync::Arc<std::sync::atomic::AtomicI64>>,
}

/// Per-second rates of one consumer.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConsumerRates {
    pub msg_out: f64,
    pub bytes_out: f64,
    pub acked: f64,
}

/// Per-second rates of a subscription, recomputed by the broker's stats ticker.
#[derive(Debug, Clone, Copy, Default)]
pub struct SubRates {
    pub msg_out: f64,
    pub bytes_out: f64,
    pub redelivered: f64,
    pub expired: f64,
    pub acked: f64,
}

/// Counters (out, bytes out, redelivered, expired, acked) at the previous rate computation,
/// and each consumer's (out, bytes out, acked).
type RateSample = Option<(Instant, [u64; 5], HashMap<ConsumerId, [u64; 3]>)>;

/// The rates last computed and the counters they were computed from.
#[derive(Default)]
struct RateState {
    subscription: SubRates,
    consumers: HashMap<ConsumerId, ConsumerRates>,
    sample: RateSample,
}

pub struct Subscription {
    id: SubscriptionId,
    rates: Mutex<RateState>,
    partition_index: i32,
    log: Arc<PartitionLog>,
    limits: SubscriptionLimits,
    clock: SharedClock,
    state: Mutex<State>,
    /// Bumped whenever messages may have become available without the log growing.
    changes: watch::Sender<u64>,
    /// Bumped when consumers attach or detach: Failover's active consumer may have changed.
    members: watch::Sender<u64>,
    /// The partition's policies in force (none for subscriptions built outside a partition).
    policy: Option<Arc<PartitionPolicy>>,
    /// This subscription's own dispatch rate (`subscriptionDispatchRate`).
    pub(crate) dispatch: FlowLimiter,
    /// Wall-clock ms of the last consumer attach or detach (subscription expiration).
    last_attach_change: AtomicI64,
    /// The partition's compacted view (none for subscriptions built outside a partition).
    compaction: Option<Arc<crate::compaction::PartitionCompaction>>,
    /// Pulsar's `readCompacted`: below the compacted horizon, messages come from the view.
    read_compacted: AtomicBool,
    /// Pulsar's subscription properties (PIP-105), as the metadata store holds them, for stats.
    properties: Mutex<BTreeMap<String, String>>,
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
        id: SubscriptionId,
        partition_index: i32,
        log: Arc<PartitionLog>,
        cursor: &CursorState,
        limits: SubscriptionLimits,
        clock: SharedClock,
    ) -> Self {
        let acks = AckSet::from_state(cursor);
        let read_pos = acks.mark_delete();
        let state = State { acks, read_pos, ..State::default() };
        let limits = SubscriptionLimits { max_in_flight: limits.max_in_flight.max(1), ..limits };
        let now = clock.now_millis();
        Subscription {
            id,
            // Counted from creation: traffic before the first stats tick shows in the first rate.
            rates: Mutex::new(RateState {
                sample: Some((Instant::now(), [0; 5], HashMap::new())),
                ..Default::default()
            }),
            partition_index,
            log,
            limits,
            clock,
            state: Mutex::new(state),
            changes: watch::channel(0).0,
            members: watch::channel(0).0,
            policy: None,
            dispatch: FlowLimiter::default(),
            last_attach_change: AtomicI64::new(now),
            compaction: None,
            read_compacted: AtomicBool::new(false),
            properties: Mutex::new(BTreeMap::new()),
        }
    }

    /// The subscription's properties as last stored (shown in its stats).
    pub fn properties(&self) -> BTreeMap<String, String> {
        self.properties.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Records the properties the metadata store now holds for this subscription.
    pub(crate) fn set_properties(&self, properties: BTreeMap<String, String>) {
        *self.properties.lock().unwrap_or_else(|e| e.into_inner()) = properties;
    }

    pub(crate) fn with_compaction(mut self, c: Arc<crate::compaction::PartitionCompaction>) -> Self {
        self.compaction = Some(c);
        self
    }

    /// Whether the compacted view is read below its horizon from now on (Pulsar's
    /// `readCompacted`; the caller checked the subscription type). The consumer attached last
    /// decides.
    pub(crate) fn set_read_compacted(&self, on: bool) {
        if self.read_compacted.swap(on, Ordering::AcqRel) != on {
            self.bump();
        }
    }

    /// The view this subscription reads below its horizon, if it reads compacted and one exists.
    pub(crate) fn compacted_view(&self) -> Option<Arc<crate::compaction::CompactedView>> {
        if !self.read_compacted.load(Ordering::Acquire) {
            return None;
        }
        self.compaction.as_ref()?.view()
    }

    /// Reads limits from the partition's policies in force (unacknowledged messages, delayed
    /// delivery, consumers per subscription).
    pub(crate) fn with_policy(mut self, policy: Arc<PartitionPolicy>) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Most messages in flight: the policy's `maxUnackedMessagesPerSubscription`, within the
    /// broker's bound (`max_unacked_per_subscription`, which also applies when the policy is 0).
    pub(crate) fn max_in_flight(&self) -> usize {
        let bound = self.limits.max_in_flight;
        match self.policy.as_ref().map(|p| p.max_unacked_per_subscription.load(Ordering::Relaxed)) {
            Some(n) if n > 0 => n.min(bound),
            _ => bound,
        }
    }

    /// Whether `deliverAt` is honoured (the topic's delayed-delivery policy).
    pub(crate) fn delayed_delivery(&self) -> bool {
        self.policy.as_ref().is_none_or(|p| p.delayed_delivery.load(Ordering::Relaxed))
    }

    /// When the subscription was last used: a consumer attached or left, a message was
    /// delivered or acknowledged (subscription expiration counts from it). After a restart the
    /// load counts as a use, as Pulsar's cursors count their opening.
    pub fn last_active_ms(&self) -> i64 {
        let st = self.lock();
        self.last_attach_change.load(Ordering::Relaxed).max(st.last_consumed).max(st.last_acked)
    }

    /// Consumers attached now.
    pub fn consumer_count(&self) -> usize {
        self.lock().consumers.len()
    }

    pub fn id(&self) -> &SubscriptionId {
        &self.id
    }

    /// The name stats show (a durable subscription's name, `reader-<id>` for a reader).
    pub fn name(&self) -> String {
        self.id.to_string()
    }

    /// Durable subscriptions persist their cursor; readers' do not.
    pub fn is_durable(&self) -> bool {
        matches!(self.id, SubscriptionId::Durable(_))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes whoever waits on this subscription: something may have changed for them.
    pub(crate) fn bump(&self) {
        self.changes.send_modify(|v| *v += 1);
    }

    fn now_ms(&self) -> i64 {
        self.clock.now_millis()
    }

    /// Attaches a consumer. Pulsar's rules: the type is fixed while consumers are attached; an
    /// Exclusive subscription takes one consumer.
    pub fn attach(&self, info: ConsumerInfo, kind: SubType) -> Result<()> {
        let mut st = self.lock();
        let max = self.policy.as_ref().map_or(0, |p| p.max_consumers_per_subscription.load(Ordering::Relaxed));
        if max > 0 && st.consumers.len() >= max as usize {
            if let Some(p) = &self.policy {
                crate::policies::runtime::PolicyMetrics::bump(&p.metrics.refused, 1);
            }
            return Err(BrokerError::TooManyConsumers {
                entity: Box::new(crate::error::Entity::Message(format!("subscription {}", self.id))),
                max,
            });
        }
        if let Some(existing) = st.kind.filter(|_| !st.consumers.is_empty()) {
            if existing != kind {
                return Err(BrokerError::ConsumerBusy(format!(
                    "subscription {} is {} with connected consumers; cannot attach a {} consumer",
                    self.id,
                    existing.as_str(),
                    kind.as_str()
                )));
            }
            if kind == SubType::Exclusive {
                return Err(BrokerError::ConsumerBusy(format!(
                    "exclusive subscription {} already has a consumer",
                    self.id
                )));
            }
        }
        if kind == SubType::KeyShared {
            st.check_sticky(&info).map_err(|why| match why {
                StickyConflict::Mode(why) => BrokerError::ConsumerBusy(format!("subscription {}: {why}", self.id)),
                StickyConflict::Range(why) => BrokerError::ConsumerAssign(format!("subscription {}: {why}", self.id)),
            })?;
        }
        st.kind = Some(kind);
        st.consumers.insert(info.id, info);
        self.last_attach_change.store(self.now_ms(), Ordering::Relaxed);
        st.rebuild_ring();
        if kind == SubType::Failover {
            let index = self.partition_index;
            st.release(|s, c| s.active(index) == Some(c));
        }
        drop(st);
        self.bump();
        self.members.send_modify(|v| *v += 1);
        Ok(())
    }

    /// Detaches a consumer; its unacknowledged messages go to the others.
    pub fn detach(&self, id: ConsumerId) {
        let mut st = self.lock();
        if st.consumers.remove(&id).is_none() {
            return;
        }
        self.last_attach_change.store(self.now_ms(), Ordering::Relaxed);
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
        self.members.send_modify(|v| *v += 1);
    }

    /// Recomputes the rates from the counters since the previous call.
    pub fn update_rates(&self) {
        let now = Instant::now();
        let (counters, consumers) = {
            let st = self.lock();
            let consumers: HashMap<ConsumerId, [u64; 3]> =
                st.consumers.iter().map(|(&id, c)| (id, [c.msg_out, c.bytes_out, c.acked])).collect();
            ([st.msg_out, st.bytes_out, st.msg_redelivered, st.msg_expired, st.msg_acked], consumers)
        };
        let mut r = self.rates.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, prev, prev_consumers)) = &r.sample {
            let secs = now.duration_since(*at).as_secs_f64().max(0.001);
            let per_sec = |now: u64, before: u64| now.saturating_sub(before) as f64 / secs;
            let rate = |i: usize| per_sec(counters[i], prev[i]);
            let subscription = SubRates {
                msg_out: rate(0),
                bytes_out: rate(1),
                redelivered: rate(2),
                expired: rate(3),
                acked: rate(4),
            };
            // A consumer that joined since the previous sample is measured from zero.
            let consumer_rates = consumers
                .iter()
                .map(|(id, c)| {
                    let p = prev_consumers.get(id).copied().unwrap_or_default();
                    let rates = ConsumerRates {
                        msg_out: per_sec(c[0], p[0]),
                        bytes_out: per_sec(c[1], p[1]),
                        acked: per_sec(c[2], p[2]),
                    };
                    (*id, rates)
                })
                .collect();
            r.subscription = subscription;
            r.consumers = consumer_rates;
        }
        r.sample = Some((now, counters, consumers));
    }

    pub fn rates(&self) -> SubRates {
        self.rates.lock().unwrap_or_else(|e| e.into_inner()).subscription
    }

    /// The last computed rates of a consumer (zero until the stats ticker has seen it twice).
    pub fn consumer_rates(&self, id: ConsumerId) -> ConsumerRates {
        self.rates.lock().unwrap_or_else(|e| e.into_inner()).consumers.get(&id).copied().unwrap_or_default()
    }

    /// Consumers attached or messages in flight (Pulsar refuses deletes then, unless forced).
    pub fn is_busy(&self) -> bool {
        let st = self.lock();
        !st.consumers.is_empty() || !st.in_flight.is_empty()
    }

    pub fn kind(&self) -> Option<SubType> {
        self.lock().kind
    }

    /// Whether consumer `id` is this partition's active consumer, for a Failover subscription
    /// (`None` for the other types).
    pub fn failover_active(&self, id: ConsumerId) -> Option<bool> {
        let st = self.lock();
        (st.kind == Some(SubType::Failover)).then(|| st.active(self.partition_index) == Some(id))
    }

    /// Changes when consumers attach or detach.
    pub fn watch_members(&self) -> watch::Receiver<u64> {
        self.members.subscribe()
    }

    pub fn consumers(&self) -> Vec<ConsumerInfo> {
        self.lock().consumers.values().cloned().collect()
    }

    pub fn unacked_of(&self, id: ConsumerId) -> u64 {
        self.lock().consumers.get(&id).map(|c| c.unacked).unwrap_or(0)
    }

    pub fn wait_token(&self) -> WaitToken {
        let st = self.lock();
        // With a window full, new data does not help: wait for an ack (which bumps the version)
        // or a deadline instead of spinning on the log.
        let full = st.in_flight.len() >= self.max_in_flight()
            || st.available.len() >= AVAILABLE_CAP
            || st.delayed.len() >= self.limits.max_delayed;
        let delayed_due = st.delayed.keys().next().map(|&(at, _)| {
            let wait = (at - self.now_ms()).max(0) as u64;
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
    pub msg_acked: u64,
    pub last_expired: i64,
    pub last_consumed: i64,
    pub last_acked: i64,
    pub kind: Option<SubType>,
    pub consumers: Vec<ConsumerInfo>,
    /// Sticky Key_Shared: the key hash slots each consumer claims (inclusive ranges).
    pub key_ranges: BTreeMap<ConsumerId, Vec<(u16, u16)>>,
}

#[cfg(test)]
mod tests;
