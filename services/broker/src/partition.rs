//! A loaded partition (or a non-partitioned topic): its log, its subscriptions, its counters.

use crate::metrics::buckets::{Buckets, ENTRY_SIZE, Tally, WRITE_LATENCY};
use crate::subscription::{Subscription, SubscriptionId, SubscriptionLimits};
use magnetar_core::{SharedClock, SubscriptionName, TopicName};
use magnetar_metadata::CursorState;
use magnetar_storage::PartitionLog;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Counters of one partition, kept as atomics on the hot path.
#[derive(Default)]
pub struct Counters {
    pub msg_in: AtomicU64,
    pub bytes_in: AtomicU64,
    /// Deliveries to consumers and readers (redeliveries included), as Pulsar counts
    /// `msgOutCounter`; unlike the subscriptions' own counters they survive a deleted subscription.
    pub msg_out: AtomicU64,
    pub bytes_out: AtomicU64,
}

/// Per-second rates computed by the broker's stats ticker.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rates {
    pub msg_in: f64,
    pub bytes_in: f64,
    pub msg_out: f64,
    pub bytes_out: f64,
}

pub(crate) struct RateSample {
    pub at: std::time::Instant,
    pub msg_in: u64,
    pub bytes_in: u64,
}

/// Pulsar's bucketed distributions of the partition (see [`crate::metrics::buckets`]).
pub(crate) struct Distributions {
    pub write_latency: Buckets,
    pub entry_size: Buckets,
}

pub struct Partition {
    /// The partition's own name (`...-partition-N`), or the topic's name if not partitioned.
    pub name: TopicName,
    pub index: i32,
    pub log_id: i64,
    /// Ownership epoch acquired when the partition was loaded (DESIGN.md §6).
    pub epoch: i64,
    pub log: Arc<PartitionLog>,
    pub counters: Counters,
    /// Durable subscriptions, by name.
    subscriptions: RwLock<BTreeMap<SubscriptionName, Arc<Subscription>>>,
    /// Readers' non-durable subscriptions, by reader id: a name space of their own, so no
    /// durable subscription can be mistaken for a reader or taken over by one.
    readers: RwLock<HashMap<u64, Arc<Subscription>>>,
    pub(crate) rates: std::sync::Mutex<(Rates, Option<RateSample>)>,
    pub(crate) distributions: Distributions,
    limits: SubscriptionLimits,
    clock: SharedClock,
    /// Cancelled when the partition is unloaded or deleted: sessions attached to it end, and
    /// their clients reconnect to what is loaded then.
    pub(crate) unloaded: tokio_util::sync::CancellationToken,
    /// Producer sessions that answer each send themselves (binary protocol) hold a token of it
    /// while attached: a handover closes it and waits (bounded) until they have answered what
    /// they accepted and let go, before the log closes (`ProducerSlots::detach_on_unload`).
    pub(crate) producers: tokio_util::task::TaskTracker,
    /// Producer access modes: the exclusive producer, the waiting ones, the topic epoch.
    pub(crate) access: crate::exclusive::ProducerAccess,
    /// The broker a handover gave the partition's bundle to, set before the partition is
    /// unloaded: binary producers and consumers are closed naming it (PIP-307), so their
    /// clients reconnect there without a lookup.
    pub(crate) moved_to: std::sync::OnceLock<magnetar_metadata::BrokerRegistration>,
    quota: std::sync::Mutex<crate::controllers::enforcement::QuotaState>,
    /// Limits and rates in force (`policies::runtime`), read without a lock.
    pub(crate) policy: Arc<crate::policies::runtime::PartitionPolicy>,
    /// Producer sequence ids stored, when deduplication is on.
    pub(crate) dedup: crate::dedup::PartitionDedup,
    /// The compacted view and the state of its compactions.
    pub compaction: Arc<crate::compaction::PartitionCompaction>,
    /// This broker's replication (in a tier), which knows the replica set of a partition served
    /// with replicated durability.
    replication: Option<Arc<crate::replication::Replication>>,
}

impl Partition {
    pub(crate) fn new(
        name: TopicName,
        record: magnetar_metadata::PartitionRecord,
        epoch: i64,
        log: Arc<PartitionLog>,
        ctx: &crate::context::Context,
        limits: SubscriptionLimits,
    ) -> Self {
        let clock = Arc::clone(&ctx.clock);
        let policy = Arc::new(crate::policies::runtime::PartitionPolicy::new(
            ctx.namespace_limiters.of(name.namespace(), &ctx.config),
            Arc::clone(&clock),
        ));
        Partition {
            name,
            index: record.index,
            log_id: record.log_id,
            epoch,
            log,
            counters: Counters::default(),
            subscriptions: RwLock::new(BTreeMap::new()),
            readers: RwLock::new(HashMap::new()),
            // Counted from load: traffic before the first stats tick shows in the first rate.
            rates: std::sync::Mutex::new((
                Rates::default(),
                Some(RateSample { at: std::time::Instant::now(), msg_in: 0, bytes_in: 0 }),
            )),
            distributions: Distributions {
                write_latency: Buckets::new(&WRITE_LATENCY),
                entry_size: Buckets::new(&ENTRY_SIZE),
            },
            limits,
            clock,
            unloaded: tokio_util::sync::CancellationToken::new(),
            producers: tokio_util::task::TaskTracker::new(),
            access: Default::default(),
            moved_to: std::sync::OnceLock::new(),
            quota: std::sync::Mutex::new(Default::default()),
            policy,
            dedup: Default::default(),
            compaction: Arc::default(),
            replication: ctx.replication.clone(),
        }
    }

    /// The replica set the partition's records go to, when it is served with replicated
    /// durability (it changes when a dead peer is replaced).
    pub fn replicas(&self) -> Option<magnetar_metadata::ReplicaSet> {
        self.log.replicated_epoch()?;
        self.replication.as_ref()?.set_of(self.log_id as u64, self.epoch)
    }

    /// A durable subscription.
    pub fn subscription(&self, name: &SubscriptionName) -> Option<Arc<Subscription>> {
        self.subscriptions.read().unwrap_or_else(|e| e.into_inner()).get(name).cloned()
    }

    /// The durable subscriptions.
    pub fn subscriptions(&self) -> Vec<Arc<Subscription>> {
        self.subscriptions.read().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }

    /// Readers' subscriptions (for stats).
    pub fn readers(&self) -> Vec<Arc<Subscription>> {
        self.readers.read().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }

    /// Durable subscriptions and readers: everything that consumes from this partition.
    pub fn all_subscriptions(&self) -> Vec<Arc<Subscription>> {
        let mut all = self.subscriptions();
        all.extend(self.readers());
        all
    }

    /// Registers a durable subscription already persisted in the metadata store.
    pub(crate) fn add_subscription(&self, name: &SubscriptionName, cursor: &CursorState) -> Arc<Subscription> {
        let mut subs = self.subscriptions.write().unwrap_or_else(|e| e.into_inner());
        subs.entry(name.clone())
            .or_insert_with(|| Arc::new(self.new_subscription(SubscriptionId::Durable(name.clone()), cursor)))
            .clone()
    }

    /// Registers a reader's subscription: never persisted, gone when the reader closes.
    pub(crate) fn add_reader(&self, reader: u64, start: u64) -> Arc<Subscription> {
        let cursor = CursorState { mark_delete: start, acked_ranges: vec![] };
        let sub = Arc::new(self.new_subscription(SubscriptionId::Reader(reader), &cursor));
        self.readers.write().unwrap_or_else(|e| e.into_inner()).insert(reader, Arc::clone(&sub));
        sub
    }

    fn new_subscription(&self, id: SubscriptionId, cursor: &CursorState) -> Subscription {
        Subscription::new(id, self.index, Arc::clone(&self.log), cursor, self.limits, Arc::clone(&self.clock))
            .with_policy(Arc::clone(&self.policy))
            .with_compaction(Arc::clone(&self.compaction))
    }

    pub(crate) fn remove_subscription(&self, name: &SubscriptionName) -> Option<Arc<Subscription>> {
        self.subscriptions.write().unwrap_or_else(|e| e.into_inner()).remove(name)
    }

    pub(crate) fn remove_reader(&self, reader: u64) {
        self.readers.write().unwrap_or_else(|e| e.into_inner()).remove(&reader);
    }

    /// Resolves once the partition is unloaded (or deleted).
    pub async fn unloaded(&self) {
        self.unloaded.cancelled().await
    }

    /// Where the partition's bundle went, once it was handed over (see `moved_to`).
    pub fn moved_to(&self) -> Option<&magnetar_metadata::BrokerRegistration> {
        self.moved_to.get()
    }

    pub(crate) fn mark_unloaded(&self) {
        self.unloaded.cancel();
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.now_millis()
    }

    pub(crate) fn set_quota(&self, q: crate::controllers::enforcement::QuotaState) {
        *self.quota.lock().unwrap_or_else(|e| e.into_inner()) = q;
    }

    pub(crate) fn quota(&self) -> crate::controllers::enforcement::QuotaState {
        *self.quota.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts messages made durable: their sizes, and the time the WAL took for them.
    pub(crate) fn record_publish(&self, sizes: &Tally, latency: std::time::Duration) {
        let (messages, bytes) = (sizes.window.count, sizes.window.sum);
        self.counters.msg_in.fetch_add(messages, Ordering::Relaxed);
        self.counters.bytes_in.fetch_add(bytes, Ordering::Relaxed);
        self.policy.touch(self.clock.now_millis());
        sizes.record_into(&self.distributions.entry_size);
        // Every message of one append waited the same time.
        let micros = latency.as_micros().min(u128::from(u64::MAX / messages.max(1))) as u64;
        let bucket = Buckets::bucket_of(&WRITE_LATENCY, micros);
        self.distributions.write_latency.record_n(bucket, messages, micros * messages);
    }

    pub fn record_delivery(&self, messages: u64, bytes: u64) {
        self.counters.msg_out.fetch_add(messages, Ordering::Relaxed);
        self.counters.bytes_out.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Closes the window of the bucket gauges.
    pub(crate) fn roll_distributions(&self) {
        self.distributions.write_latency.roll();
        self.distributions.entry_size.roll();
    }

    pub fn rates(&self) -> Rates {
        self.rates.lock().unwrap_or_else(|e| e.into_inner()).0
    }

    /// Recomputes the rates from counters since the previous sample.
    pub(crate) fn update_rates(&self) {
        // Out rates are the sum of the subscriptions' own rates.
        let (mut msg_out, mut bytes_out) = (0.0, 0.0);
        for s in self.all_subscriptions() {
            s.update_rates();
            let r = s.rates();
            msg_out += r.msg_out;
            bytes_out += r.bytes_out;
        }
        let now = RateSample {
            at: std::time::Instant::now(),
            msg_in: self.counters.msg_in.load(Ordering::Relaxed),
            bytes_in: self.counters.bytes_in.load(Ordering::Relaxed),
        };
        let mut guard = self.rates.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(prev) = &guard.1 {
            let secs = now.at.duration_since(prev.at).as_secs_f64().max(0.001);
            let rate = |a: u64, b: u64| a.saturating_sub(b) as f64 / secs;
            guard.0 = Rates {
                msg_in: rate(now.msg_in, prev.msg_in),
                bytes_in: rate(now.bytes_in, prev.bytes_in),
                msg_out,
                bytes_out,
            };
        }
        guard.1 = Some(now);
    }
}
