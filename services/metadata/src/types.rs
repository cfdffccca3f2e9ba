use magnetar_core::{Policies, TopicName};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Pulsar's `ClusterData` (the fields Magnetar uses; camelCase on the wire).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterData {
    #[serde(skip)]
    pub name: String,
    #[serde(default)]
    pub service_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_url_tls: Option<String>,
    #[serde(default)]
    pub broker_service_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker_service_url_tls: Option<String>,
    #[serde(default)]
    pub peer_cluster_names: Vec<String>,
}

/// Pulsar's `TenantInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantInfo {
    /// Roles that administer the tenant.
    #[serde(default)]
    pub admin_roles: Vec<String>,
    /// Clusters the tenant may use (the broker's own when empty at creation).
    #[serde(default)]
    pub allowed_clusters: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NamespaceRecord {
    pub policies: Policies,
    /// Incremented by every policy update (optimistic concurrency).
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewTopic {
    /// The topic's base name (never a `-partition-N` name).
    pub name: TopicName,
    /// 0 = non-partitioned.
    pub partitions: u32,
    pub properties: BTreeMap<String, String>,
}

/// One partition of a topic: the unit of storage, ownership and cursors. `log_id` is a surrogate
/// key unique for the lifetime of the store (never reused), so a topic deleted and created again
/// never sees the old topic's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PartitionRecord {
    pub log_id: i64,
    /// -1 for a non-partitioned topic.
    pub index: i32,
    /// Where a terminated partition ends for good (the offset its next record would have had);
    /// `None` while it accepts messages.
    pub terminated_end: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TopicRecord {
    pub id: i64,
    pub name: TopicName,
    /// 0 = non-partitioned.
    pub partitions: u32,
    pub properties: BTreeMap<String, String>,
    /// Sorted by index.
    pub partition_records: Vec<PartitionRecord>,
    pub policies: Option<serde_json::Value>,
    pub created_at: i64,
}

/// The changed cursors of one partition, written under its owner's epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorCheckpoint {
    pub log_id: i64,
    pub epoch: i64,
    pub cursors: Vec<(String, CursorState)>,
}

/// A durable cursor: every offset below `mark_delete` is acknowledged, plus the half-open
/// `[start, end)` ranges in `acked_ranges` (sorted, disjoint, all above `mark_delete`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CursorState {
    pub mark_delete: u64,
    pub acked_ranges: Vec<(u64, u64)>,
}

/// A partition's deduplication state as of `position`: for each producer name, the highest
/// sequence id among the partition's records below that offset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DedupSnapshot {
    pub position: u64,
    pub producers: BTreeMap<String, ProducerSequence>,
    /// Milliseconds since the epoch.
    pub taken_at: i64,
}

/// A producer's highest stored sequence id, and when it last published (producers inactive for
/// long are forgotten, as Pulsar does, so that generated producer names do not pile up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProducerSequence {
    pub sequence_id: i64,
    /// Publish time of its latest message, ms since the epoch.
    pub last_publish_time: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionRecord {
    pub log_id: i64,
    pub name: String,
    pub cursor: CursorState,
    pub created_at: i64,
    /// Pulsar's subscription properties.
    pub properties: BTreeMap<String, String>,
}

/// A sealed segment uploaded to the object store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentRecord {
    pub log_id: i64,
    pub base_offset: i64,
    /// Exclusive.
    pub end_offset: i64,
    pub size_bytes: i64,
    pub min_publish_time: i64,
    pub max_publish_time: i64,
    pub object_key: String,
    pub created_at: i64,
}

/// One partition's records in a log object: offsets `start_offset..end_offset`, written under `epoch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogObjectRange {
    pub log_id: i64,
    pub start_offset: i64,
    /// Exclusive.
    pub end_offset: i64,
    pub epoch: i64,
}

/// The brokers holding copies of a partition's tail under replicated durability, as its owner
/// recorded them when it loaded the partition.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReplicaSet {
    /// The owner (it holds a copy in its own WAL).
    pub owner: String,
    /// The other brokers its log stream is sent to (`write_quorum - 1` of them).
    pub peers: Vec<String>,
    pub write_quorum: u32,
    pub ack_quorum: u32,
    /// While the owner moves the stream off a dead peer: the set before, which holds what was
    /// acknowledged until the new set has been sent it (recovery then needs both).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous_peers: Vec<String>,
}

/// A committed range and the object holding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogObjectRecord {
    pub log_id: i64,
    pub start_offset: i64,
    /// Exclusive.
    pub end_offset: i64,
    pub object_key: String,
    /// Milliseconds since the epoch.
    pub committed_at: i64,
}

/// A partition's compacted view (Pulsar's compacted ledger): the object holding, for every key,
/// the latest message below `horizon`, tombstoned keys left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactedViewRecord {
    pub log_id: i64,
    /// Exclusive: the view covers every message of the partition below this offset.
    pub horizon: i64,
    pub object_key: String,
    /// Messages the view holds.
    pub messages: i64,
    pub size_bytes: i64,
    pub created_at: i64,
}

/// A service account: an identity a tenant admin manages in its own tenant. Its role is
/// `{name}@{tenant}` (tenant names cannot contain `@`, so roles of different tenants never
/// collide).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    pub tenant: magnetar_core::TenantName,
    pub name: String,
    pub description: String,
    pub created_at: i64,
}

/// A token minted for a service account. Only its id (the JWT `jti`) is stored, never the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccountToken {
    pub id: String,
    pub tenant: magnetar_core::TenantName,
    pub account: String,
    pub created_at: i64,
    /// Epoch ms; `None` = never expires.
    pub expires_at: Option<i64>,
}

/// A revoked token id, in revocation order (`seq` grows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedToken {
    pub seq: i64,
    pub token_id: String,
    /// Epoch ms; `None` = never expires.
    pub expires_at: Option<i64>,
}

/// Pulsar's `FailureDomain`: a named group of a cluster's brokers (`host:port`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub struct FailureDomain {
    #[serde(default)]
    pub brokers: Vec<String>,
}

/// Pulsar's `NamespaceIsolationData`: namespaces (regular expressions) served by primary
/// brokers, with secondary ones as fallback (broker names are regular expressions too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub struct NamespaceIsolationData {
    /// Regular expressions of `tenant/namespace` names.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Regular expressions of broker names (`host:port`) that serve these namespaces.
    #[serde(default)]
    pub primary: Vec<String>,
    /// Brokers used when too few primary ones are available.
    #[serde(default)]
    pub secondary: Vec<String>,
    #[serde(default)]
    pub auto_failover_policy: AutoFailoverPolicyData,
}

/// When to use the secondary brokers: `min_available` with parameters `min_limit` (primary
/// brokers needed) and `usage_threshold` (percent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub struct AutoFailoverPolicyData {
    #[serde(default)]
    #[schema(example = "min_available")]
    pub policy_type: String,
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
}

/// One version of a topic's schema; `schema` is `None` for a deletion marker (versions keep
/// counting after a deletion, as Pulsar's do).
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaVersion {
    pub version: i64,
    /// Pulsar's `SchemaInfo` as JSON: `{"type", "schema", "properties"}`.
    pub schema: Option<serde_json::Value>,
    pub created_at: i64,
}

/// What a broker process says of itself when it joins the tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerRegistration {
    /// Stable name of the broker (survives restarts; e.g. the pod name).
    pub broker_id: String,
    /// Random per process start.
    pub session_id: String,
    pub cluster: String,
    /// `host:port` other brokers reach it at.
    pub internal_address: String,
    /// `host:port` clients reach it at.
    pub advertised_address: String,
    /// `pulsar://host:port` of its binary-protocol listener for the other brokers (they proxy
    /// binary connections there); empty without a binary listener.
    pub binary_internal_url: String,
    /// `pulsar://host:port` of its binary-protocol listener for clients; empty without one.
    pub binary_advertised_url: String,
    /// `pulsar+ssl://host:port` of its TLS listener for clients; empty without one.
    pub binary_advertised_tls_url: String,
    pub version: String,
}

/// A broker's own view of how it is doing, renewed with its lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BrokerState {
    #[default]
    Active,
    /// Shutting down: handing its partitions over, taking no new ones.
    Draining,
}

/// The load a broker reports with every renewal (Pulsar's load-report figures).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BrokerLoad {
    pub msg_rate_in: f64,
    pub msg_rate_out: f64,
    pub msg_throughput_in: f64,
    pub msg_throughput_out: f64,
    pub topics: u64,
    /// The busiest bundles it serves, by `tenant/namespace/range` (Pulsar's `bundleStats`):
    /// what the leader weighs bundles by and splits hot ones on. Bounded by the reporter, so
    /// the row stays small whatever the number of partitions.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub bundle_stats: BTreeMap<String, BundleStats>,
}

/// The traffic of one bundle on its owner, summed over its loaded partitions.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BundleStats {
    pub msg_rate_in: f64,
    pub msg_rate_out: f64,
    pub msg_throughput_in: f64,
    pub msg_throughput_out: f64,
    pub topics: u64,
}

/// A row of the membership table, as the database sees it now.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerRecord {
    pub registration: BrokerRegistration,
    pub state: BrokerState,
    pub load: BrokerLoad,
    pub registered_at_ms: i64,
    pub lease_expires_at_ms: i64,
    /// Whether the lease is unexpired on the database's clock at the time of the read.
    pub alive: bool,
}

/// A granted or renewed lease, in the database's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseGrant {
    pub expires_at_ms: i64,
    pub db_now_ms: i64,
}

/// Where a bundle is in its ownership cycle (Pulsar's PIP-192 states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BundleState {
    /// Nobody owns it; the leader assigns it.
    Free,
    /// The leader chose an owner, which has not taken it yet.
    Assigning,
    /// Its owner serves it.
    Owned,
    /// Its owner is letting it go (stops accepting, flushes, then frees it).
    Releasing,
}

impl BundleState {
    pub fn as_str(self) -> &'static str {
        match self {
            BundleState::Free => "free",
            BundleState::Assigning => "assigning",
            BundleState::Owned => "owned",
            BundleState::Releasing => "releasing",
        }
    }

    pub fn parse(text: &str) -> Option<BundleState> {
        Some(match text {
            "free" => BundleState::Free,
            "assigning" => BundleState::Assigning,
            "owned" => BundleState::Owned,
            "releasing" => BundleState::Releasing,
            _ => return None,
        })
    }
}

/// A row of the bundle ownership table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleOwnership {
    pub namespace: magnetar_core::NamespaceName,
    /// The range text, `0x00000000_0x40000000`.
    pub bundle: String,
    pub state: BundleState,
    /// The owner's broker id (`None` while free).
    pub owner: Option<String>,
    /// The owner's session (the process that owns it).
    pub owner_session: Option<String>,
    /// Bumped by every change.
    pub epoch: i64,
    pub updated_at_ms: i64,
}

/// The state a conditional bundle transition moves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleTransition {
    pub state: BundleState,
    /// Broker id and session of the owner (both `None` for `Free`).
    pub owner: Option<(String, String)>,
}
