//! Namespace policies in Pulsar's JSON shape (`Policies` is snake_case on the wire,
//! its nested types camelCase, exactly as Pulsar's admin API returns them). Fields Magnetar does
//! not act on yet are still stored and returned so tools that round-trip policies keep them.

use crate::limits::{
    AutoSubscriptionCreationOverride, DelayedDeliveryPolicies, DispatchRate, InactiveTopicPolicies, PublishRate,
    SubscribeRate, SubscriptionTypeName,
};
use crate::schema_policies::{SchemaAutoUpdateCompatibilityStrategy, SchemaCompatibilityStrategy};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Retention of *acknowledged* messages. `-1` = infinite, `0` = none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetentionPolicies {
    /// Minutes acknowledged messages are kept (-1 infinite, 0 none).
    #[schema(minimum = -1)]
    pub retention_time_in_minutes: i32,
    /// Megabytes of acknowledged messages kept per topic (-1 infinite, 0 none).
    #[serde(rename = "retentionSizeInMB")]
    #[schema(minimum = -1)]
    pub retention_size_in_mb: i64,
}

/// Pulsar's `PersistencePolicies`: how many copies of each entry are written (ensemble, write
/// quorum) and how many must confirm it before it is acknowledged (ack quorum). Magnetar keeps
/// the names; the copies are brokers (docs/durability.md).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PersistencePolicies {
    #[serde(default)]
    pub bookkeeper_ensemble: i32,
    #[serde(default)]
    pub bookkeeper_write_quorum: i32,
    #[serde(default)]
    pub bookkeeper_ack_quorum: i32,
    /// Pulsar's limit on cursor position updates per second. Accepted and kept; Magnetar's cursor
    /// updates are group-committed with the WAL whatever their rate.
    #[serde(default)]
    pub managed_ledger_max_mark_delete_rate: f64,
}

impl PersistencePolicies {
    /// What a broker applies when no level sets any: one copy (`local` durability).
    pub const LOCAL: PersistencePolicies = PersistencePolicies {
        bookkeeper_ensemble: 1,
        bookkeeper_write_quorum: 1,
        bookkeeper_ack_quorum: 1,
        managed_ledger_max_mark_delete_rate: 0.0,
    };
}

/// How a namespace's partitions make a record durable before acknowledging it
/// (docs/durability.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DurabilityMode {
    /// The owning broker's group-committed WAL (one copy until the segment is uploaded).
    Local,
    /// The owner and peer brokers' WALs (Pulsar's write and ack quorums). Not available yet.
    Replicated,
    /// An object in the bucket, committed in the metadata store under the owner's epoch: a
    /// crash of the owner loses nothing and another broker takes its partitions over.
    ObjectStore,
}

impl DurabilityMode {
    pub fn as_str(self) -> &'static str {
        match self {
            DurabilityMode::Local => "local",
            DurabilityMode::Replicated => "replicated",
            DurabilityMode::ObjectStore => "object-store",
        }
    }
}

/// Magnetar's durability policy of a namespace (`/durability`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DurabilityPolicy {
    pub mode: DurabilityMode,
    /// `object-store` and `replicated`: how long a producer waits for the object (or for its ack
    /// quorum of replicas) before its send fails (the record may still be stored later, as with
    /// any send that timed out). Default 30000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_store_max_wait_ms: Option<u64>,
}

impl DurabilityPolicy {
    pub const DEFAULT_MAX_WAIT_MS: u64 = 30_000;
    /// What a namespace without the policy gets.
    pub const LOCAL: DurabilityPolicy =
        DurabilityPolicy { mode: DurabilityMode::Local, object_store_max_wait_ms: None };

    pub fn max_wait(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.object_store_max_wait_ms.unwrap_or(Self::DEFAULT_MAX_WAIT_MS))
    }
}

/// Copies of each record under replicated durability, from Pulsar's persistence policy: the
/// owner and `write_quorum - 1` peer brokers get it, and it is acknowledged once
/// `min(ack_quorum, write_quorum - 1)` peers fsynced it (`ack_peers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicationQuorum {
    pub write_quorum: u32,
    pub ack_quorum: u32,
}

impl ReplicationQuorum {
    /// Pulsar's broker defaults (`managedLedgerDefaultWriteQuorum` and `AckQuorum`: 2 and 2).
    pub const DEFAULT: ReplicationQuorum = ReplicationQuorum { write_quorum: 2, ack_quorum: 2 };

    /// The quorum a namespace's persistence policy asks for; an error says why it cannot be
    /// replicated durability (one acknowledging copy is local durability; a write quorum below
    /// the ack quorum can never acknowledge).
    pub fn of(persistence: Option<&PersistencePolicies>) -> Result<ReplicationQuorum, String> {
        let Some(p) = persistence else { return Ok(Self::DEFAULT) };
        let (wq, aq) = (p.bookkeeper_write_quorum, p.bookkeeper_ack_quorum);
        if aq < 2 {
            return Err(format!(
                "durability mode replicated acknowledges after at least 2 copies, but the persistence policy's \
                 bookkeeperAckQuorum is {aq}: set it to 2 or more, or choose mode local"
            ));
        }
        if wq < aq {
            return Err(format!("bookkeeperWriteQuorum ({wq}) must be at least bookkeeperAckQuorum ({aq})"));
        }
        Ok(ReplicationQuorum { write_quorum: wq as u32, ack_quorum: aq as u32 })
    }

    /// Peers that must fsync a record before it is acknowledged. The owner's own copy does not
    /// count (it may be the broker that dies): 2/2 waits for its one peer, 3/2 for both, so
    /// that killing the owner and one replica still leaves every acknowledged record on a live
    /// broker.
    pub fn ack_peers(&self) -> usize {
        self.ack_quorum.min(self.write_quorum - 1) as usize
    }

    /// Peers that must answer a recovery: every set of `ack_peers` peers (which an acknowledged
    /// record reached) meets every set of this many, and as many fenced leave the old owner too
    /// few unfenced peers to acknowledge with.
    pub fn recovery_peers(&self) -> usize {
        (self.write_quorum as usize - 1) - self.ack_peers() + 1
    }
}

/// A limit on a subscription's backlog and what happens when it is reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BacklogQuota {
    /// Bytes of backlog allowed (-1 no limit).
    #[serde(default = "minus_one_i64")]
    #[schema(default = -1)]
    pub limit_size: i64,
    /// Age in seconds of the oldest unacknowledged message allowed (-1 no limit).
    #[serde(default = "minus_one_i32")]
    #[schema(default = -1)]
    pub limit_time: i32,
    pub policy: BacklogQuotaPolicy,
}

/// What a topic over its backlog quota does, in Pulsar's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BacklogQuotaPolicy {
    /// Producers wait until the backlog shrinks.
    ProducerRequestHold,
    /// Producers are refused.
    ProducerException,
    /// The oldest unacknowledged messages of the slowest subscription are skipped.
    ConsumerBacklogEviction,
}

fn minus_one_i64() -> i64 {
    -1
}
fn minus_one_i32() -> i32 {
    -1
}

/// Grants of a namespace: `{role: [actions]}` on the namespace, per topic, and the roles
/// allowed to use each restricted subscription.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuthPolicies {
    #[serde(default)]
    pub namespace_auth: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub destination_auth: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    #[serde(default)]
    pub subscription_auth_roles: BTreeMap<String, Vec<String>>,
}

/// Pulsar's `BundlesData`: the boundaries of a namespace's bundles (see `crate::bundles`).
/// Empty with `numBundles` 0 means "not given": a new namespace gets the broker's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BundlesData {
    #[serde(default)]
    pub boundaries: Vec<String>,
    #[serde(default)]
    pub num_bundles: u32,
}

/// Pulsar's namespace `Policies` (snake_case fields); other Pulsar policy fields are kept as
/// they are sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Policies {
    #[serde(default)]
    pub auth_policies: AuthPolicies,
    #[serde(default)]
    pub replication_clusters: Vec<String>,
    #[serde(default)]
    pub bundles: BundlesData,
    #[serde(default)]
    pub backlog_quota_map: BTreeMap<String, BacklogQuota>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_ttl_in_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_policies: Option<RetentionPolicies>,
    /// Copies and acknowledgement quorum (`/persistence`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistence: Option<PersistencePolicies>,
    /// Magnetar's durability mode (`/durability`); absent: `local`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durability: Option<DurabilityPolicy>,
    #[serde(default, rename = "deduplicationEnabled", skip_serializing_if = "Option::is_none")]
    pub deduplication_enabled: Option<bool>,
    /// Seconds between deduplication snapshots while messages arrive.
    #[serde(default, rename = "deduplicationSnapshotIntervalSeconds", skip_serializing_if = "Option::is_none")]
    pub deduplication_snapshot_interval_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_producers_per_topic: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_consumers_per_topic: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_consumers_per_subscription: Option<i32>,
    #[serde(default = "minus_one_i64")]
    pub offload_threshold: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offload_threshold_in_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offload_deletion_lag_ms: Option<i64>,
    /// Bytes after the compacted horizon that start an automatic compaction (0: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compaction_threshold: Option<i64>,
    /// Pulsar's `OffloadPolicies`, kept as sent (see `/offloadPolicies`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offload_policies: Option<serde_json::Value>,
    #[serde(default = "default_sub_auth_mode")]
    pub subscription_auth_mode: String,
    /// Publish rate of each topic, by cluster (`/publishRate`).
    #[serde(default, rename = "publishMaxMessageRate")]
    pub publish_max_message_rate: BTreeMap<String, PublishRate>,
    /// Dispatch rate of each topic, by cluster (`/dispatchRate`).
    #[serde(default, rename = "topicDispatchRate")]
    pub topic_dispatch_rate: BTreeMap<String, DispatchRate>,
    /// Dispatch rate of each subscription, by cluster (`/subscriptionDispatchRate`).
    #[serde(default, rename = "subscriptionDispatchRate")]
    pub subscription_dispatch_rate: BTreeMap<String, DispatchRate>,
    /// Subscribe rate per consumer, by cluster (`/subscribeRate`).
    #[serde(default, rename = "clusterSubscribeRate")]
    pub cluster_subscribe_rate: BTreeMap<String, SubscribeRate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_subscriptions_per_topic: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_topics_per_namespace: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unacked_messages_per_consumer: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unacked_messages_per_subscription: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inactive_topic_policies: Option<InactiveTopicPolicies>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_expiration_time_minutes: Option<i32>,
    #[serde(default, rename = "autoSubscriptionCreationOverride", skip_serializing_if = "Option::is_none")]
    pub auto_subscription_creation_override: Option<AutoSubscriptionCreationOverride>,
    /// Subscription types consumers may use; empty = the broker's setting.
    #[serde(default)]
    pub subscription_types_enabled: Vec<SubscriptionTypeName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delayed_delivery_policies: Option<DelayedDeliveryPolicies>,
    /// Messages must be encrypted by their producer.
    #[serde(default)]
    pub encryption_required: bool,
    /// Free key/value pairs of the namespace (`/properties`).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    #[serde(default)]
    pub deleted: bool,
    /// Pulsar's anti-affinity group (`/antiAffinity`): namespaces of one group are to be owned by
    /// different brokers; stored for the broker tier's placement.
    #[serde(default, rename = "namespaceAntiAffinityGroup", skip_serializing_if = "Option::is_none")]
    pub namespace_anti_affinity_group: Option<String>,
    /// Dispatch rate of each replicator, by cluster (`/replicatorDispatchRate`): stored, no effect
    /// until geo-replication exists.
    #[serde(default, rename = "replicatorDispatchRate")]
    pub replicator_dispatch_rate: BTreeMap<String, DispatchRate>,
    /// Absent: `UNDEFINED` (see `schema_policies`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_compatibility_strategy: Option<SchemaCompatibilityStrategy>,
    /// Pulsar's deprecated strategy, in force when the one above is `UNDEFINED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_auto_update_compatibility_strategy: Option<SchemaAutoUpdateCompatibilityStrategy>,
    /// Whether producers may register schema versions implicitly (absent: the broker's, `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_allow_auto_update_schema: Option<bool>,
    /// Producers without a schema are refused on topics that have one.
    #[serde(default)]
    pub schema_validation_enforced: bool,
    /// Every other Pulsar policy field, kept verbatim.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

fn default_sub_auth_mode() -> String {
    "None".into()
}

impl Default for Policies {
    fn default() -> Self {
        serde_json::from_str("{}").expect("all fields have defaults")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_round_trip() {
        let p: Policies =
            serde_json::from_str(r#"{"offload_threshold_in_bytes":7,"message_ttl_in_seconds":30}"#).unwrap();
        assert_eq!(p.message_ttl_in_seconds, Some(30));
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["offload_threshold_in_bytes"], 7);
        // Not given: the broker cuts a namespace created with these into its default bundles.
        assert_eq!(v["bundles"]["numBundles"], 0);
    }

    #[test]
    fn retention_uses_pulsar_field_names() {
        let r: RetentionPolicies =
            serde_json::from_str(r#"{"retentionTimeInMinutes":60,"retentionSizeInMB":-1}"#).unwrap();
        assert_eq!(r.retention_size_in_mb, -1);
        assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"retentionTimeInMinutes":60,"retentionSizeInMB":-1}"#);
    }
}
