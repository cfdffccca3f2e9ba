use magnetar_core::RetentionPolicies;
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
    /// Most partitions one partitioned topic may have (Pulsar's `maxNumPartitionsPerPartitionedTopic`, 0 = no limit).
    pub max_partitions_per_topic: u32,
    /// Pulsar's `allowAutoTopicCreation`.
    pub allow_auto_topic_creation: bool,
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
    /// What `/metrics` exposes (`[broker.metrics]`).
    pub metrics: crate::metrics::MetricsConfig,
    /// The lease that makes this process a member of the tier (`[broker.membership]`).
    pub membership: crate::membership::MembershipConfig,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            cluster: "standalone".into(),
            advertised_address: "127.0.0.1:8080".into(),
            default_retention_time_minutes: 0,
            default_retention_size_mb: 0,
            max_message_bytes: 5 * 1024 * 1024,
            max_partitions_per_topic: 0,
            allow_auto_topic_creation: true,
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
            metrics: Default::default(),
            membership: Default::default(),
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
    pub fn retention_interval(&self) -> Duration {
        Duration::from_millis(self.retention_check_interval_ms.max(100))
    }
}
