use magnetar_core::{InactiveTopicDeleteMode, RetentionPolicies, SubscriptionTypeName};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Broker behaviour settings (the `[broker]` section of the configuration file).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerConfig {
    /// Cluster this broker belongs to (`standalone` in standalone mode).
    pub cluster: String,
    /// Address clients use to reach this broker's HTTP port (`host:port`).
    pub advertised_address: String,
    /// Pulsar's `defaultRetentionTimeInMinutes` (0 = acknowledged messages may be deleted).
    pub default_retention_time_minutes: i32,
    /// Pulsar's `defaultRetentionSizeInMB`.
    pub default_retention_size_mb: i64,
    /// Pulsar's `maxMessageSize` (5 MiB).
    pub max_message_bytes: usize,
    /// Largest message a producer may send in chunks (binary protocol producers with chunking
    /// on): what the broker joins in memory for WebSocket consumers and readers.
    pub max_chunked_message_bytes: usize,
    /// Most partitions one partitioned topic may have (Pulsar's `maxNumPartitionsPerPartitionedTopic`, 0 = no limit).
    pub max_partitions_per_topic: u32,
    /// Pulsar's `allowAutoTopicCreation`.
    pub allow_auto_topic_creation: bool,
    /// Pulsar's `defaultNumberOfNamespaceBundles`: the bundles a new namespace is cut into.
    pub default_namespace_bundles: u32,
    /// How often cursors are checkpointed to the metadata store, in milliseconds.
    pub cursor_checkpoint_interval_ms: u64,
    /// How often retention is evaluated, in milliseconds.
    pub retention_check_interval_ms: u64,
    /// Ack deadline of HTTP pulls that do not give one, in milliseconds.
    pub default_ack_timeout_ms: u64,
    /// Most messages in flight (delivered, unacknowledged) per subscription; pulls beyond it
    /// wait, so a consumer that never acks cannot make the broker grow without bound.
    pub max_unacked_per_subscription: usize,
    /// Most messages a subscription holds for delayed delivery; past it, reading newer messages
    /// pauses until held ones come due (nothing is dropped or delivered early).
    pub max_delayed_messages_per_subscription: usize,
    /// Most acknowledged ranges beyond the mark-delete position a cursor checkpoint stores
    /// (Pulsar's `managedLedgerMaxUnackedRangesToPersist`); acknowledgements in the ranges past
    /// it may be redelivered after a restart.
    pub max_acked_ranges_to_persist: usize,
    /// Broker default of `offloadThreshold` (bytes of not offloaded data a topic keeps before
    /// its oldest sealed segments are offloaded): 0 = as soon as a segment seals, -1 = off.
    pub offload_threshold_bytes: i64,
    /// Broker default of `offloadThresholdInSeconds` (-1 = off).
    pub offload_threshold_seconds: i64,
    /// Broker default of `offloadDeletionLagMs`: how long the local copy of an offloaded segment
    /// stays as a cache (-1 = forever).
    pub offload_deletion_lag_ms: i64,
    /// How often the offloader runs, in milliseconds.
    pub offload_check_interval_ms: u64,
    /// Upper bound of the retry backoff of failing uploads, in milliseconds.
    pub offload_max_backoff_ms: u64,
    /// How often objects without an index row are looked for, per partition, in milliseconds.
    pub offload_gc_interval_ms: u64,
    /// Age an object without an index row must reach before it is deleted, in milliseconds.
    pub offload_gc_grace_ms: u64,
    /// Broker default of `compactionThreshold` (Pulsar's `brokerServiceCompactionThresholdInBytes`):
    /// a topic partition is compacted automatically once more than this many bytes are stored
    /// after its compacted horizon; 0 = no automatic compaction.
    pub compaction_threshold_bytes: i64,
    /// How often partitions are checked against their compaction threshold, in seconds
    /// (Pulsar's `brokerServiceCompactionMonitorIntervalInSeconds`); milliseconds below.
    pub compaction_monitor_interval_seconds: u64,
    /// The same interval in milliseconds when not 0 (tests use short intervals); wins over
    /// `compaction_monitor_interval_seconds`.
    pub compaction_monitor_interval_ms: u64,
    /// Pulsar's `topicCompactionRetainNullKey`: whether messages without a key stay in the
    /// compacted view (false, Pulsar's default since 3.2: they are left out).
    pub compaction_retain_null_key: bool,

    // ---- Broker defaults of namespace and topic policies (topic → namespace → these) ----
    /// Pulsar's `maxProducersPerTopic`: producer sessions per topic partition (0 = no limit).
    pub max_producers_per_topic: u32,
    /// Pulsar's `maxConsumersPerTopic` (0 = no limit).
    pub max_consumers_per_topic: u32,
    /// Pulsar's `maxConsumersPerSubscription` (0 = no limit).
    pub max_consumers_per_subscription: u32,
    /// Pulsar's `maxSubscriptionsPerTopic` (0 = no limit).
    pub max_subscriptions_per_topic: u32,
    /// Pulsar's `maxTopicsPerNamespace`; partitions count one each (0 = no limit).
    pub max_topics_per_namespace: u32,
    /// Pulsar's `maxUnackedMessagesPerConsumer`: deliveries a consumer may hold unacknowledged
    /// (0 = only the consumer's receiver queue bounds it).
    pub max_unacked_per_consumer: u32,
    /// Pulsar's `maxPublishRatePerTopicInMessages` (0 = no limit).
    pub publish_rate_per_topic_msg: u32,
    /// Pulsar's `maxPublishRatePerTopicInBytes` (0 = no limit).
    pub publish_rate_per_topic_bytes: u64,
    /// Magnetar: messages per second all topics of one namespace may publish together on this
    /// broker (0 = no limit). Tenants cannot change it: it bounds what one namespace takes from
    /// the others.
    pub publish_rate_per_namespace_msg: u32,
    /// Magnetar: payload bytes per second per namespace (0 = no limit).
    pub publish_rate_per_namespace_bytes: u64,
    /// Longest a REST produce request waits for its publish rate before it is refused with 503,
    /// in milliseconds (WebSocket producers wait as long as needed: their frames are not read).
    pub publish_throttle_max_wait_ms: u64,
    /// Pulsar's `dispatchThrottlingRatePerTopicInMsg` (0 = no limit).
    pub dispatch_rate_per_topic_msg: u32,
    /// Pulsar's `dispatchThrottlingRatePerTopicInByte` (0 = no limit).
    pub dispatch_rate_per_topic_bytes: u64,
    /// Pulsar's `dispatchThrottlingRatePerSubscriptionInMsg` (0 = no limit).
    pub dispatch_rate_per_subscription_msg: u32,
    /// Pulsar's `dispatchThrottlingRatePerSubscriptionInByte` (0 = no limit).
    pub dispatch_rate_per_subscription_bytes: u64,
    /// Pulsar's `subscribeThrottlingRatePerConsumer` (0 = no limit).
    pub subscribe_rate_per_consumer: u32,
    /// Pulsar's `subscribeRatePeriodPerConsumerInSecond`.
    pub subscribe_rate_period_seconds: u32,
    /// Pulsar's `allowAutoSubscriptionCreation`.
    pub allow_auto_subscription_creation: bool,
    /// Pulsar's `subscriptionTypesEnabled`.
    pub subscription_types_enabled: Vec<SubscriptionTypeName>,
    /// Pulsar's `delayedDeliveryEnabled`.
    pub delayed_delivery_enabled: bool,
    /// Pulsar's `delayedDeliveryTickTimeMillis` (kept for tools; delivery is at the due time).
    pub delayed_delivery_tick_ms: i64,
    /// Pulsar's `brokerDeleteInactiveTopicsEnabled` (Pulsar's default is on; Magnetar's is off).
    pub delete_inactive_topics: bool,
    /// Pulsar's `brokerDeleteInactiveTopicsMode`.
    pub inactive_topic_delete_mode: InactiveTopicDeleteMode,
    /// Pulsar's `brokerDeleteInactiveTopicsMaxInactiveDurationSeconds`.
    pub inactive_topic_max_seconds: i32,
    /// How often inactive topics are looked for (Pulsar's `brokerDeleteInactiveTopicsFrequencySeconds`), in ms.
    pub inactive_topic_check_interval_ms: u64,
    /// Pulsar's `subscriptionExpirationTimeMinutes` (0 = subscriptions never expire).
    pub subscription_expiration_minutes: i32,
    /// How often expired subscriptions are looked for (Pulsar's `subscriptionExpiryCheckIntervalInMinutes`), in ms.
    pub subscription_expiry_check_interval_ms: u64,
    /// How often loaded topics re-read their topic-level policies from the metadata store (changes
    /// made through another broker), in ms. Changes through this broker apply at once.
    pub topic_policies_refresh_ms: u64,
    /// What `/metrics` exposes (`[broker.metrics]`).
    pub metrics: crate::metrics::MetricsConfig,
    /// The lease that makes this process a member of the tier (`[broker.membership]`).
    pub membership: crate::membership::MembershipConfig,
    /// Message deduplication (`[broker.deduplication]`).
    pub deduplication: crate::dedup::DedupConfig,
    /// Durability modes (`[broker.durability]`).
    pub durability: crate::durability::DurabilityConfig,
    /// Bundle ownership and forwarding between the brokers of a tier (`[broker.tier]`).
    pub tier: crate::tier::TierConfig,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            cluster: "standalone".into(),
            advertised_address: "127.0.0.1:8080".into(),
            default_retention_time_minutes: 0,
            default_retention_size_mb: 0,
            max_message_bytes: 5 * 1024 * 1024,
            max_chunked_message_bytes: 100 * 1024 * 1024,
            max_partitions_per_topic: 0,
            allow_auto_topic_creation: true,
            default_namespace_bundles: 4,
            cursor_checkpoint_interval_ms: 5_000,
            retention_check_interval_ms: 60_000,
            default_ack_timeout_ms: 30_000,
            max_unacked_per_subscription: 50_000,
            max_delayed_messages_per_subscription: 1_000_000,
            max_acked_ranges_to_persist: 10_000,
            offload_threshold_bytes: 0,
            offload_threshold_seconds: -1,
            offload_deletion_lag_ms: 600_000,
            offload_check_interval_ms: 1_000,
            offload_max_backoff_ms: 10_000,
            offload_gc_interval_ms: 600_000,
            offload_gc_grace_ms: 3_600_000,
            compaction_threshold_bytes: 0,
            compaction_monitor_interval_seconds: 60,
            compaction_monitor_interval_ms: 0,
            compaction_retain_null_key: false,
            max_producers_per_topic: 0,
            max_consumers_per_topic: 0,
            max_consumers_per_subscription: 0,
            max_subscriptions_per_topic: 0,
            max_topics_per_namespace: 0,
            max_unacked_per_consumer: 50_000,
            publish_rate_per_topic_msg: 0,
            publish_rate_per_topic_bytes: 0,
            publish_rate_per_namespace_msg: 0,
            publish_rate_per_namespace_bytes: 0,
            publish_throttle_max_wait_ms: 30_000,
            dispatch_rate_per_topic_msg: 0,
            dispatch_rate_per_topic_bytes: 0,
            dispatch_rate_per_subscription_msg: 0,
            dispatch_rate_per_subscription_bytes: 0,
            subscribe_rate_per_consumer: 0,
            subscribe_rate_period_seconds: 30,
            allow_auto_subscription_creation: true,
            subscription_types_enabled: vec![
                SubscriptionTypeName::Exclusive,
                SubscriptionTypeName::Shared,
                SubscriptionTypeName::Failover,
                SubscriptionTypeName::KeyShared,
            ],
            delayed_delivery_enabled: true,
            delayed_delivery_tick_ms: 1000,
            delete_inactive_topics: false,
            inactive_topic_delete_mode: InactiveTopicDeleteMode::DeleteWhenNoSubscriptions,
            inactive_topic_max_seconds: 60,
            inactive_topic_check_interval_ms: 60_000,
            subscription_expiration_minutes: 0,
            subscription_expiry_check_interval_ms: 300_000,
            topic_policies_refresh_ms: 30_000,
            metrics: Default::default(),
            membership: Default::default(),
            deduplication: Default::default(),
            durability: Default::default(),
            tier: Default::default(),
        }
    }
}

impl BrokerConfig {
    pub fn default_retention(&self) -> RetentionPolicies {
        RetentionPolicies {
            retention_time_in_minutes: self.default_retention_time_minutes,
            retention_size_in_mb: self.default_retention_size_mb,
        }
    }
    pub fn checkpoint_interval(&self) -> Duration {
        Duration::from_millis(self.cursor_checkpoint_interval_ms.max(100))
    }
    pub fn offload_interval(&self) -> Duration {
        Duration::from_millis(self.offload_check_interval_ms.max(50))
    }
    pub fn compaction_interval(&self) -> Duration {
        match self.compaction_monitor_interval_ms {
            0 => Duration::from_secs(self.compaction_monitor_interval_seconds.max(1)),
            ms => Duration::from_millis(ms.max(50)),
        }
    }
    pub fn retention_interval(&self) -> Duration {
        Duration::from_millis(self.retention_check_interval_ms.max(100))
    }
}
