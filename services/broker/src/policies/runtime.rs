//! The policies in force on a loaded topic, where the hot path reads them: the resolved
//! `EffectivePolicies` on the `Topic` (session start, stats, controllers) and, per partition,
//! atomics and token buckets (`PartitionPolicy`) that publishing and dispatching read without a
//! lock. `refresh` recomputes both from the topic's own policies and its namespace's (through
//! the policy cache); it runs when the topic loads, after a change made through this broker and
//! every second for every loaded topic.

use super::limiter::{FlowLimiter, RateLimiter};
use super::resolve::{EffectivePolicies, limit};
use crate::config::BrokerConfig;
use crate::subscription::SubscriptionId;
use magnetar_core::{NamespaceName, Policies, SharedClock, TopicName, TopicPolicies};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// Per-partition limits and counters read on the publish and dispatch paths.
pub struct PartitionPolicy {
    /// Producer sessions attached (WebSocket producers; a REST request is not a session).
    producers: AtomicU32,
    /// Consumers attached over all subscriptions (readers included).
    consumers: AtomicU32,
    max_producers: AtomicU32,
    max_consumers: AtomicU32,
    pub(crate) max_consumers_per_subscription: AtomicU32,
    pub(crate) max_unacked_per_consumer: AtomicU32,
    /// 0: the broker's bound.
    pub(crate) max_unacked_per_subscription: AtomicUsize,
    pub(crate) delayed_delivery: AtomicBool,
    /// 0: no limit.
    pub(crate) max_delivery_delay_ms: AtomicI64,
    pub(crate) encryption_required: AtomicBool,
    deduplication: AtomicBool,
    deduplication_snapshot_interval_seconds: AtomicU32,
    /// Bytes of the `destination_storage` backlog quota in force (-1: none), for `/metrics`.
    pub(crate) backlog_quota_limit_bytes: AtomicI64,
    /// The largest payload in force (the topic's, else the broker's); 0 until first applied.
    pub(crate) max_message_bytes: AtomicUsize,
    /// The topic's publish rate, applied to this partition (Pulsar applies it per partition).
    pub(crate) publish: FlowLimiter,
    /// The namespace's aggregate publish rate on this broker, shared by its partitions.
    pub(crate) namespace_publish: Arc<FlowLimiter>,
    /// The topic's dispatch rate, shared by the partition's subscriptions.
    pub(crate) dispatch: FlowLimiter,
    /// Each subscription's own dispatch rate: messages, bytes, period in ms.
    subscription_dispatch: [AtomicI64; 3],
    /// The subscriptions with a dispatch rate of their own, by name, in the same units. Read on
    /// the dispatch path only while `has_subscription_overrides` (a rare policy), so the
    /// deliveries of other topics take no lock.
    subscription_overrides: RwLock<HashMap<String, [i64; 3]>>,
    has_subscription_overrides: AtomicBool,
    /// Wall-clock ms of the last publish, attach or detach (inactive-topic deletion).
    pub(crate) last_active_ms: AtomicI64,
    pub(crate) metrics: PolicyMetrics,
    clock: SharedClock,
}

/// The partition's throttling counters, written to `/metrics` at scrape time (the exposition's
/// table), so the hot path only bumps an atomic.
#[derive(Default)]
pub(crate) struct PolicyMetrics {
    /// Publishes that found a publish rate reached (Pulsar's `pulsar_publish_rate_limit_times`).
    pub rate_limit_times: AtomicU64,
    /// Time publishes waited for their publish rate, in microseconds.
    pub throttled_micros: AtomicU64,
    /// Delivery attempts held back by a dispatch rate.
    pub dispatch_throttled: AtomicU64,
    /// Subscribes refused by the topic's subscribe rate.
    pub subscribe_throttled: AtomicU64,
    /// Producers, consumers and subscriptions refused by a limit policy.
    pub refused: AtomicU64,
}

impl PolicyMetrics {
    pub fn bump(counter: &AtomicU64, by: u64) {
        counter.fetch_add(by, Ordering::Relaxed);
    }

    pub fn read(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Releases a producer or consumer slot of a partition when dropped.
pub struct SlotGuard {
    policy: Arc<PartitionPolicy>,
    producer: bool,
}

impl std::fmt::Debug for SlotGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotGuard").field("producer", &self.producer).finish()
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let counter = if self.producer { &self.policy.producers } else { &self.policy.consumers };
        counter.fetch_sub(1, Ordering::AcqRel);
        self.policy.touch(self.policy.clock.now_millis());
    }
}

/// Takes a slot unless `max` (0 = none) are taken; lock-free, so two sessions racing for the
/// last slot cannot both get it.
fn take_slot(counter: &AtomicU32, max: u32) -> bool {
    counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (max == 0 || n < max).then_some(n + 1)).is_ok()
}

impl PartitionPolicy {
    pub(crate) fn new(namespace_publish: Arc<FlowLimiter>, clock: SharedClock) -> Self {
        PartitionPolicy {
            producers: AtomicU32::new(0),
            consumers: AtomicU32::new(0),
            max_producers: AtomicU32::new(0),
            max_consumers: AtomicU32::new(0),
            max_consumers_per_subscription: AtomicU32::new(0),
            max_unacked_per_consumer: AtomicU32::new(0),
            max_unacked_per_subscription: AtomicUsize::new(0),
            delayed_delivery: AtomicBool::new(true),
            max_delivery_delay_ms: AtomicI64::new(0),
            encryption_required: AtomicBool::new(false),
            deduplication: AtomicBool::new(false),
            backlog_quota_limit_bytes: AtomicI64::new(-1),
            deduplication_snapshot_interval_seconds: AtomicU32::new(120),
            max_message_bytes: AtomicUsize::new(0),
            publish: FlowLimiter::default(),
            namespace_publish,
            dispatch: FlowLimiter::default(),
            subscription_dispatch: [AtomicI64::new(0), AtomicI64::new(0), AtomicI64::new(1000)],
            subscription_overrides: RwLock::new(HashMap::new()),
            has_subscription_overrides: AtomicBool::new(false),
            last_active_ms: AtomicI64::new(clock.now_millis()),
            metrics: PolicyMetrics::default(),
            clock,
        }
    }

    /// A producer slot, or `None` at the topic's limit (Pulsar's `ProducerBusy`).
    pub(crate) fn take_producer(self: &Arc<Self>) -> Option<SlotGuard> {
        take_slot(&self.producers, self.max_producers.load(Ordering::Acquire))
            .then(|| SlotGuard { policy: Arc::clone(self), producer: true })
    }

    /// A consumer slot, or `None` at the topic's limit.
    pub(crate) fn take_consumer(self: &Arc<Self>) -> Option<SlotGuard> {
        take_slot(&self.consumers, self.max_consumers.load(Ordering::Acquire))
            .then(|| SlotGuard { policy: Arc::clone(self), producer: false })
    }

    pub(crate) fn max_producers(&self) -> u32 {
        self.max_producers.load(Ordering::Relaxed)
    }

    pub(crate) fn max_consumers(&self) -> u32 {
        self.max_consumers.load(Ordering::Relaxed)
    }

    pub fn producers(&self) -> u32 {
        self.producers.load(Ordering::Relaxed)
    }

    pub fn consumers(&self) -> u32 {
        self.consumers.load(Ordering::Relaxed)
    }

    /// Records activity (inactive-topic deletion counts from the last one).
    pub(crate) fn touch(&self, now_ms: i64) {
        self.last_active_ms.fetch_max(now_ms, Ordering::Relaxed);
    }

    /// Sets a subscription's own dispatch limiter to the rate in force (no-op when unchanged):
    /// the subscription's own rate, else the topic's per-subscription rate.
    pub(crate) fn configure_subscription_dispatch(&self, id: &SubscriptionId, limiter: &FlowLimiter) {
        if self.has_subscription_overrides.load(Ordering::Acquire)
            && let SubscriptionId::Durable(name) = id
            && let Some([m, b, p]) =
                self.subscription_overrides.read().unwrap_or_else(|e| e.into_inner()).get(name.as_str()).copied()
        {
            limiter.set(m, b, Duration::from_millis(p.max(1) as u64));
            return;
        }
        let [m, b, p] = &self.subscription_dispatch;
        let period = Duration::from_millis(p.load(Ordering::Relaxed).max(1) as u64);
        limiter.set(m.load(Ordering::Relaxed), b.load(Ordering::Relaxed), period);
    }

    pub(crate) fn deduplication_enabled(&self) -> bool {
        self.deduplication.load(Ordering::Acquire)
    }

    pub(crate) fn deduplication_snapshot_interval_seconds(&self) -> u32 {
        self.deduplication_snapshot_interval_seconds.load(Ordering::Acquire)
    }

    /// Applies the resolved policies (and the partition's current publish rate, for dispatch
    /// rates relative to it).
    pub(crate) fn apply(&self, e: &EffectivePolicies, msg_rate_in: f64, bytes_rate_in: f64) {
        let bound = |v: i32| limit(v).unwrap_or(0);
        self.max_producers.store(bound(e.max_producers_per_topic.value), Ordering::Release);
        self.max_consumers.store(bound(e.max_consumers_per_topic.value), Ordering::Release);
        self.max_consumers_per_subscription.store(bound(e.max_consumers_per_subscription.value), Ordering::Release);
        self.max_unacked_per_consumer.store(bound(e.max_unacked_messages_per_consumer.value), Ordering::Release);
        self.max_unacked_per_subscription
            .store(bound(e.max_unacked_messages_per_subscription.value) as usize, Ordering::Release);
        let delayed = &e.delayed_delivery.value;
        self.delayed_delivery.store(delayed.active, Ordering::Release);
        self.max_delivery_delay_ms.store(delayed.max_delivery_delay_in_millis.unwrap_or(0).max(0), Ordering::Release);
        self.encryption_required.store(e.encryption_required.value, Ordering::Release);
        self.deduplication.store(e.deduplication_enabled.value, Ordering::Release);
        let quota = e.backlog_quota_map.value.get("destination_storage").map_or(-1, |q| q.limit_size);
        self.backlog_quota_limit_bytes.store(quota, Ordering::Relaxed);
        let interval = e.deduplication_snapshot_interval_seconds.value.max(0) as u32;
        self.deduplication_snapshot_interval_seconds.store(interval, Ordering::Release);
        self.max_message_bytes.store(e.max_message_size.value.max(0) as usize, Ordering::Release);
        let p = &e.publish_rate.value;
        self.publish.set(
            i64::from(p.publish_throttling_rate_in_msg),
            p.publish_throttling_rate_in_byte,
            Duration::from_secs(1),
        );
        let d = &e.dispatch_rate.value;
        let (extra_msgs, extra_bytes) =
            if d.relative_to_publish_rate { (msg_rate_in as i64, bytes_rate_in as i64) } else { (0, 0) };
        let relative = |v: i64, extra: i64| if v > 0 { v + extra } else { v };
        self.dispatch.set(
            relative(i64::from(d.dispatch_throttling_rate_in_msg), extra_msgs),
            relative(d.dispatch_throttling_rate_in_byte, extra_bytes),
            Duration::from_secs(d.rate_period_in_second.max(1) as u64),
        );
        let s = &e.subscription_dispatch_rate.value;
        let [m, b, period] = &self.subscription_dispatch;
        m.store(relative(i64::from(s.dispatch_throttling_rate_in_msg), extra_msgs), Ordering::Relaxed);
        b.store(relative(s.dispatch_throttling_rate_in_byte, extra_bytes), Ordering::Relaxed);
        period.store(i64::from(s.rate_period_in_second.max(1)) * 1000, Ordering::Relaxed);
        let overrides: HashMap<String, [i64; 3]> = e
            .subscription_dispatch_rates
            .iter()
            .map(|(name, r)| {
                let msgs = relative(i64::from(r.dispatch_throttling_rate_in_msg), extra_msgs);
                let bytes = relative(r.dispatch_throttling_rate_in_byte, extra_bytes);
                (name.clone(), [msgs, bytes, i64::from(r.rate_period_in_second.max(1)) * 1000])
            })
            .collect();
        let any = !overrides.is_empty();
        *self.subscription_overrides.write().unwrap_or_else(|e| e.into_inner()) = overrides;
        self.has_subscription_overrides.store(any, Ordering::Release);
    }
}

/// What a loaded topic knows of its policies.
pub struct TopicPolicyState {
    own: RwLock<TopicPolicies>,
    effective: RwLock<Arc<EffectivePolicies>>,
    /// Subscribe-rate buckets per consumer (`host/consumer name`), as Pulsar keys them.
    subscribe: Mutex<HashMap<String, Arc<RateLimiter>>>,
}

impl TopicPolicyState {
    /// The state of a topic loaded with `own` policies; its namespace's are applied by the first
    /// `refresh`.
    pub fn new(own: TopicPolicies, config: &BrokerConfig) -> Self {
        let effective = EffectivePolicies::resolve(&own, &Policies::default(), config);
        TopicPolicyState {
            own: RwLock::new(own),
            effective: RwLock::new(Arc::new(effective)),
            subscribe: Mutex::new(HashMap::new()),
        }
    }

    /// The topic-level policies as stored.
    pub fn own(&self) -> TopicPolicies {
        self.own.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn set_own(&self, own: TopicPolicies) {
        *self.own.write().unwrap_or_else(|e| e.into_inner()) = own;
    }

    /// The policies in force.
    pub fn effective(&self) -> Arc<EffectivePolicies> {
        Arc::clone(&self.effective.read().unwrap_or_else(|e| e.into_inner()))
    }

    pub(crate) fn set_effective(&self, e: EffectivePolicies) {
        *self.effective.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(e);
    }

    /// Takes one subscribe of `consumer` from the topic's subscribe rate; false when it has none
    /// left (Pulsar's "too many subscribe requests").
    pub(crate) fn try_subscribe(&self, consumer: &str) -> bool {
        let rate = self.effective().subscribe_rate.value;
        let mut buckets = self.subscribe.lock().unwrap_or_else(|e| e.into_inner());
        if !rate.is_limited() {
            buckets.clear();
            return true;
        }
        let period = Duration::from_secs(rate.rate_period_in_second as u64);
        let per_consumer = rate.subscribe_throttling_rate_per_consumer as u64;
        // Buckets of consumers that stayed away a whole period are full again: forget them.
        if buckets.len() > 10_000 {
            buckets.retain(|_, b| b.available() < b.rate() as i64);
        }
        let bucket = buckets.entry(consumer.to_string()).or_insert_with(|| Arc::new(RateLimiter::default()));
        bucket.set(per_consumer, period);
        if bucket.available() <= 0 {
            return false;
        }
        bucket.acquire(1);
        true
    }
}

/// The namespace publish buckets of this broker (one per namespace, shared by its partitions).
#[derive(Default)]
pub struct NamespaceLimiters(Mutex<HashMap<NamespaceName, Arc<FlowLimiter>>>);

impl NamespaceLimiters {
    /// The namespace's bucket at the broker's configured rate (read when a partition loads).
    pub fn of(&self, ns: &NamespaceName, config: &BrokerConfig) -> Arc<FlowLimiter> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let limiter = map.entry(ns.clone()).or_default();
        limiter.set(
            i64::from(config.publish_rate_per_namespace_msg),
            config.publish_rate_per_namespace_bytes.min(i64::MAX as u64) as i64,
            Duration::from_secs(1),
        );
        Arc::clone(limiter)
    }
}

/// Reads the topic-level policies stored with a topic (absent or unreadable: none, logged).
pub fn parse_topic_policies(name: &TopicName, stored: Option<&serde_json::Value>) -> TopicPolicies {
    match stored {
        None | Some(serde_json::Value::Null) => TopicPolicies::default(),
        Some(v) => serde_json::from_value(v.clone()).unwrap_or_else(|e| {
            tracing::warn!(topic = %name, error = %e, "unreadable topic policies ignored");
            TopicPolicies::default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Arc<PartitionPolicy> {
        Arc::new(PartitionPolicy::new(Arc::default(), magnetar_core::SystemClock::shared()))
    }

    #[test]
    fn slots_are_refused_at_the_limit_and_freed_on_drop() {
        let p = policy();
        p.max_producers.store(2, Ordering::Release);
        let a = p.take_producer().expect("first");
        let _b = p.take_producer().expect("second");
        assert!(p.take_producer().is_none(), "the third is refused");
        drop(a);
        assert!(p.take_producer().is_some(), "a freed slot can be taken again");
        p.max_consumers.store(0, Ordering::Release);
        let many: Vec<_> = (0..100).map(|_| p.take_consumer()).collect();
        assert!(many.iter().all(Option::is_some), "0 is no limit");
    }

    #[tokio::test(start_paused = true)]
    async fn subscribes_are_counted_per_consumer() {
        let config = BrokerConfig { subscribe_rate_per_consumer: 2, ..BrokerConfig::default() };
        let state = TopicPolicyState::new(TopicPolicies::default(), &config);
        assert!(state.try_subscribe("h/a"));
        assert!(state.try_subscribe("h/a"));
        assert!(!state.try_subscribe("h/a"), "the third within the period is refused");
        assert!(state.try_subscribe("h/b"), "another consumer has its own bucket");
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(state.try_subscribe("h/a"), "a new period");
    }
}
