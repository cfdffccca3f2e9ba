//! The metadata store: clusters with their failure domains and namespace isolation policies,
//! tenants, namespaces with their policies, topics and their partitions (with ownership epochs
//! and termination), schema versions, subscriptions with durable cursors and properties, the
//! segment index and the index of log objects (object-store durability).
//!
//! `MetadataStore` is the boundary trait. `SqlMetadataStore` implements it over sqlx for both
//! PostgreSQL (cluster mode) and SQLite (standalone); the shared conformance suite in
//! `conformance` runs against both. Every multi-row change is one transaction.

pub mod cache;
#[cfg(feature = "conformance")]
pub mod conformance;
mod error;
mod sql;
mod types;

pub use cache::{Freshness, PolicyCache};
pub use error::MetadataError;
pub use sql::{Dialect, SqlMetadataStore, StoreOptions};
pub use types::*;

use async_trait::async_trait;
use magnetar_core::{NamespaceName, Policies, TenantName, TopicName};
use std::collections::BTreeMap;

pub type Result<T, E = MetadataError> = std::result::Result<T, E>;

/// Contracts every implementation keeps:
/// - Creating something that exists fails with `AlreadyExists`; touching something missing fails
///   with `NotFound` naming it; deleting a non-empty parent without `force` fails with `NotEmpty`.
/// - Each method is atomic: on error nothing it would have written is visible.
/// - Writes made "as owner" of a partition (`commit_segment`, `checkpoint_cursors`, ...) take the
///   owner's epoch and fail with `Fenced` when another broker has acquired the partition since.
#[async_trait]
pub trait MetadataStore: Send + Sync + 'static {
    // ---- broker membership (one lease row per broker process) ----
    /// Joins the tier: writes the broker's row with a lease of `lease_ms` from the database's
    /// clock. Fails with `Conflict` naming the broker while another session holds an unexpired
    /// lease on the same broker id (two processes configured with one name); a row whose lease
    /// has expired, of the same session, or of the session `replaces` (this broker's previous
    /// process, known dead to the caller) is taken over.
    async fn register_broker(
        &self,
        registration: &BrokerRegistration,
        lease_ms: u64,
        replaces: Option<&str>,
    ) -> Result<LeaseGrant>;
    /// Extends the lease of `session_id` and records its state and load. `None` when the lease
    /// had already expired or another session took the row: the caller has lost its membership
    /// and must stop acting as a member.
    async fn renew_broker_lease(
        &self,
        broker_id: &str,
        session_id: &str,
        lease_ms: u64,
        state: BrokerState,
        load: &BrokerLoad,
    ) -> Result<Option<LeaseGrant>>;
    /// Every broker row of the cluster, alive or not, sorted by id.
    async fn list_brokers(&self, cluster: &str) -> Result<Vec<BrokerRecord>>;
    /// Leaves the tier (graceful shutdown): deletes the row if it is still this session's.
    async fn deregister_broker(&self, broker_id: &str, session_id: &str) -> Result<()>;

    // ---- bundle ownership (one row per bundle in use) ----
    /// The bundle's ownership row, created `Free` with epoch 0 if it has none. `NotFound` if the
    /// namespace is missing.
    async fn ensure_bundle(&self, namespace: &NamespaceName, bundle: &str) -> Result<BundleOwnership>;
    async fn get_bundle(&self, namespace: &NamespaceName, bundle: &str) -> Result<Option<BundleOwnership>>;
    /// Every ownership row, sorted by namespace and bundle.
    async fn list_bundles(&self) -> Result<Vec<BundleOwnership>>;
    /// Moves the bundle to `to`, conditional on its row being at `expected_epoch` in
    /// `expected_state` (compare-and-set), else `Conflict` naming the bundle (the caller acted on
    /// a stale view). Bumps the epoch; when the owner changes, also bumps the epochs of
    /// `partitions` (the bundle's partitions, which the caller computes from their names) in the
    /// same transaction, so a write of the previous owner is refused from this commit on.
    /// `NotFound` when the bundle has no row. Returns the new row.
    async fn transition_bundle(
        &self,
        namespace: &NamespaceName,
        bundle: &str,
        expected_epoch: i64,
        expected_state: BundleState,
        to: &BundleTransition,
        partitions: &[i64],
    ) -> Result<BundleOwnership>;
    /// Deletes the row of a bundle that no longer exists (split), conditional on it being
    /// `free` at `expected_epoch`, else `Conflict`. `NotFound` when it has no row.
    async fn retire_bundle(&self, namespace: &NamespaceName, bundle: &str, expected_epoch: i64) -> Result<()>;

    // ---- clusters ----
    async fn upsert_cluster(&self, cluster: &ClusterData) -> Result<()>;
    async fn get_cluster(&self, name: &str) -> Result<Option<ClusterData>>;
    async fn list_clusters(&self) -> Result<Vec<String>>;
    /// `AlreadyExists` if the cluster exists.
    async fn create_cluster(&self, cluster: &ClusterData) -> Result<()>;
    /// `NotFound` if the cluster is missing.
    async fn update_cluster(&self, cluster: &ClusterData) -> Result<()>;
    /// Deletes the cluster with its failure domains and isolation policies. `NotFound` if missing.
    async fn delete_cluster(&self, name: &str) -> Result<()>;
    /// Creates or replaces a failure domain. `NotFound` if the cluster is missing, `Conflict` if
    /// one of its brokers is in another domain of the cluster.
    async fn set_failure_domain(&self, cluster: &str, name: &str, domain: &FailureDomain) -> Result<()>;
    /// By name. `NotFound` if the cluster is missing.
    async fn list_failure_domains(&self, cluster: &str) -> Result<BTreeMap<String, FailureDomain>>;
    /// `NotFound` if the domain (or its cluster) is missing.
    async fn delete_failure_domain(&self, cluster: &str, name: &str) -> Result<()>;
    /// Creates or replaces a namespace isolation policy. `NotFound` if the cluster is missing.
    async fn set_isolation_policy(&self, cluster: &str, name: &str, policy: &NamespaceIsolationData) -> Result<()>;
    /// By name. `NotFound` if the cluster is missing.
    async fn list_isolation_policies(&self, cluster: &str) -> Result<BTreeMap<String, NamespaceIsolationData>>;
    /// `NotFound` if the policy (or its cluster) is missing.
    async fn delete_isolation_policy(&self, cluster: &str, name: &str) -> Result<()>;

    // ---- tenants ----
    async fn create_tenant(&self, name: &TenantName, info: &TenantInfo) -> Result<()>;
    async fn update_tenant(&self, name: &TenantName, info: &TenantInfo) -> Result<()>;
    async fn get_tenant(&self, name: &TenantName) -> Result<Option<TenantInfo>>;
    async fn list_tenants(&self) -> Result<Vec<TenantName>>;
    /// Without `force`, fails with `NotEmpty` while the tenant has namespaces. With `force`,
    /// deletes the tenant and everything under it in one transaction and returns the partitions
    /// that were removed, so the caller can delete their data.
    async fn delete_tenant(&self, name: &TenantName, force: bool) -> Result<Vec<PartitionRecord>>;

    // ---- namespaces ----
    async fn create_namespace(&self, name: &NamespaceName, policies: &Policies) -> Result<()>;
    async fn get_namespace(&self, name: &NamespaceName) -> Result<Option<NamespaceRecord>>;
    /// `NotFound` when the tenant does not exist.
    async fn list_namespaces(&self, tenant: &TenantName) -> Result<Vec<NamespaceName>>;
    /// Optimistic concurrency: succeeds only if the stored version is `expected_version`, else
    /// `Conflict`. Returns the new version.
    async fn update_namespace_policies(
        &self,
        name: &NamespaceName,
        policies: &Policies,
        expected_version: i64,
    ) -> Result<i64>;
    /// Without `force`, `NotEmpty` while topics exist. Returns removed partitions (see tenants).
    async fn delete_namespace(&self, name: &NamespaceName, force: bool) -> Result<Vec<PartitionRecord>>;

    // ---- topics ----
    /// Creates the topic and its partition rows (one with index -1 when `partitions == 0`) in one
    /// transaction. `NotFound` if the namespace is missing, `AlreadyExists` if the topic exists.
    async fn create_topic(&self, spec: &NewTopic) -> Result<TopicRecord>;
    async fn get_topic(&self, name: &TopicName) -> Result<Option<TopicRecord>>;
    async fn list_topics(&self, namespace: &NamespaceName) -> Result<Vec<TopicRecord>>;
    /// Grows a partitioned topic to `partitions` (adding partition rows, each with every
    /// subscription of the existing partitions, positioned at its start), in one transaction.
    /// `Conflict` if the topic is not partitioned or `partitions` is not larger than the count.
    async fn update_partitions(&self, name: &TopicName, partitions: u32) -> Result<TopicRecord>;
    /// Deletes the topic, its partitions, subscriptions and segment index rows in one transaction.
    async fn delete_topic(&self, name: &TopicName) -> Result<TopicRecord>;
    /// Topic-level policy overrides (Pulsar's topic policies), stored as JSON.
    async fn set_topic_policies(&self, name: &TopicName, policies: &serde_json::Value) -> Result<()>;
    /// Replaces the properties of a topic. `NotFound` if it is missing.
    async fn set_topic_properties(&self, name: &TopicName, properties: &BTreeMap<String, String>) -> Result<()>;
    /// Records that a partition is terminated at `end` (the offset its next record would have
    /// had). Terminating again keeps the first end. Returns the end in force; `NotFound` if the
    /// partition is missing.
    async fn terminate_partition(&self, log_id: i64, end: i64) -> Result<i64>;
    /// Appends a version to the topic's schema (`None`: a deletion marker) and returns its
    /// number, one more than the last (0 for the first). `NotFound` if the topic is missing.
    async fn add_schema_version(&self, topic: &TopicName, schema: Option<&serde_json::Value>) -> Result<i64>;
    /// Every version of the topic's schema, deletion markers included, oldest first; empty for a
    /// missing topic.
    async fn list_schema_versions(&self, topic: &TopicName) -> Result<Vec<SchemaVersion>>;

    // ---- partition ownership ----
    /// Makes `broker` the owner of the partition and returns the new, strictly larger epoch.
    async fn acquire_partition(&self, log_id: i64, broker: &str) -> Result<i64>;
    async fn get_partition_owner(&self, log_id: i64) -> Result<Option<(String, i64)>>;

    // ---- subscriptions and cursors ----
    /// Creates subscription `name` on each listed partition, all or none. `AlreadyExists` if it
    /// exists on any of them.
    async fn create_subscription(&self, name: &str, cursors: &[(i64, CursorState)]) -> Result<()>;
    async fn list_subscriptions(&self, log_id: i64) -> Result<Vec<SubscriptionRecord>>;
    /// Deletes subscription `name` from each listed partition. `NotFound` if it exists on none.
    async fn delete_subscription(&self, name: &str, log_ids: &[i64]) -> Result<()>;
    /// Replaces the properties of subscription `name` on each listed partition. `NotFound` if it
    /// exists on none.
    async fn set_subscription_properties(
        &self,
        name: &str,
        log_ids: &[i64],
        properties: &BTreeMap<String, String>,
    ) -> Result<()>;
    /// Persists cursors of one partition in one transaction, conditional on `epoch`.
    /// Cursors of subscriptions deleted meanwhile are ignored.
    async fn checkpoint_cursors(&self, log_id: i64, epoch: i64, cursors: &[(String, CursorState)]) -> Result<()>;
    /// Persists the cursors of many partitions in one transaction (a broker's checkpoint round:
    /// one commit instead of one per partition), each conditional on its own epoch: a partition
    /// fenced or deleted meanwhile is skipped and returned with its error, the others commit.
    async fn checkpoint_cursors_many(&self, batch: &[CursorCheckpoint]) -> Result<Vec<(i64, MetadataError)>>;

    // ---- deduplication ----
    /// Replaces the partition's deduplication snapshot, conditional on `epoch`.
    async fn save_dedup_snapshot(&self, log_id: i64, epoch: i64, snapshot: &DedupSnapshot) -> Result<()>;
    /// The partition's deduplication snapshot, if one was saved. `NotFound` for an unknown partition.
    async fn get_dedup_snapshot(&self, log_id: i64) -> Result<Option<DedupSnapshot>>;
    /// Removes the partition's deduplication snapshot (none is fine), conditional on `epoch`.
    async fn delete_dedup_snapshot(&self, log_id: i64, epoch: i64) -> Result<()>;

    // ---- segment index ----
    /// Records an uploaded segment, conditional on `epoch`. `AlreadyExists` for a duplicate.
    async fn commit_segment(&self, epoch: i64, segment: &SegmentRecord) -> Result<()>;
    async fn list_segments(&self, log_id: i64) -> Result<Vec<SegmentRecord>>;
    /// Removes index rows of the given segments (by base offset), conditional on `epoch`.
    async fn delete_segments(&self, log_id: i64, epoch: i64, base_offsets: &[i64]) -> Result<()>;

    // ---- log objects (object-store durability) ----
    /// Commits several log objects `(key, ranges)` in one transaction, each object's ranges
    /// conditional on their partitions' epochs: ranges of a fenced partition (`Fenced`) or an
    /// unknown one (`NotFound`) are left out and returned with their error, per object in the
    /// objects' order; the others are committed together, atomically. Committing a range already
    /// committed with the same object key is accepted (a retry after a lost answer); the same
    /// partition and start offset under another key is `Conflict` in the returned list. A range
    /// that is empty or starts below 0 fails the whole call with `Conflict`, nothing committed.
    async fn commit_log_objects(
        &self,
        committed_at: i64,
        objects: &[(String, Vec<LogObjectRange>)],
    ) -> Result<Vec<Vec<(i64, MetadataError)>>>;
    /// The committed ranges of the partition that end after `from_offset`, in offset order.
    /// `NotFound` for an unknown partition.
    async fn list_log_objects(&self, log_id: i64, from_offset: i64) -> Result<Vec<LogObjectRecord>>;
    /// Removes the partition's ranges that end at or before `below` (uploaded segments hold them),
    /// conditional on `epoch`; returns the keys of the objects no range of any partition references
    /// any more, which the caller deletes from the bucket (sorted, each once).
    async fn trim_log_objects(&self, log_id: i64, epoch: i64, below: i64) -> Result<Vec<String>>;
    /// Which of `keys` a committed range of any partition still references (sorted, each once).
    /// The others are garbage once no commit of them can still come: objects of deleted
    /// partitions (their ranges went with them) and objects PUT by a writer that died before
    /// committing them.
    async fn referenced_log_objects(&self, keys: &[String]) -> Result<Vec<String>>;
    /// Records that the owner of `epoch` serves the partition with local durability: its tail
    /// not yet uploaded is on that broker's disk only, so the partition must not be failed over
    /// while `epoch` is current. Conditional on `epoch` (`Fenced` otherwise, `NotFound` for an
    /// unknown partition).
    async fn mark_local_durability(&self, log_id: i64, epoch: i64) -> Result<()>;
    /// Whether the partition may be failed over when its owner dies: its current epoch was not
    /// marked local (`mark_local_durability`). `NotFound` for an unknown partition.
    async fn may_fail_over(&self, log_id: i64) -> Result<bool>;
    /// Records the replica set the owner of `epoch` loaded the partition with (replicated
    /// durability), or with `None` that no replica holds anything the partition lacks. Conditional on `epoch` (`Fenced` otherwise, `NotFound` for an unknown
    /// partition).
    async fn set_partition_replicas(&self, log_id: i64, epoch: i64, replicas: Option<&ReplicaSet>) -> Result<()>;
    /// The replica set last recorded for the partition and the epoch it was recorded under.
    /// `NotFound` for an unknown partition.
    async fn partition_replicas(&self, log_id: i64) -> Result<Option<(i64, ReplicaSet)>>;

    // ---- compacted views (topic compaction) ----
    /// Replaces the partition's compacted view by `view`, conditional on `epoch` and on the view
    /// in force having horizon `previous_horizon` (`None`: no view yet), else `Conflict` (another
    /// compaction committed meanwhile). Atomic: readers see the old view or the new one. Returns
    /// the view replaced, whose object the caller deletes once this returned.
    async fn commit_compacted_view(
        &self,
        epoch: i64,
        view: &CompactedViewRecord,
        previous_horizon: Option<i64>,
    ) -> Result<Option<CompactedViewRecord>>;
    /// The partition's compacted view, `None` before its first compaction. `NotFound` if the
    /// partition is missing.
    async fn get_compacted_view(&self, log_id: i64) -> Result<Option<CompactedViewRecord>>;

    // ---- service accounts and their tokens ----
    /// `NotFound` if the tenant is missing, `AlreadyExists` if the account exists.
    async fn create_service_account(&self, account: &ServiceAccount) -> Result<()>;
    async fn get_service_account(&self, tenant: &TenantName, name: &str) -> Result<Option<ServiceAccount>>;
    /// Sorted by name; empty for a missing tenant.
    async fn list_service_accounts(&self, tenant: &TenantName) -> Result<Vec<ServiceAccount>>;
    /// Deletes the account and its tokens; every token id is recorded as revoked (as it is when
    /// the tenant is deleted). `NotFound` if the account is missing.
    async fn delete_service_account(&self, tenant: &TenantName, name: &str) -> Result<()>;
    /// Records a minted token. `NotFound` if the account is missing.
    async fn create_service_account_token(&self, token: &ServiceAccountToken) -> Result<()>;
    /// Live (not revoked) tokens of the account, oldest first. `NotFound` if it is missing.
    async fn list_service_account_tokens(&self, tenant: &TenantName, account: &str)
    -> Result<Vec<ServiceAccountToken>>;
    /// Deletes the token and records its id as revoked. `NotFound` if the account has no such
    /// token.
    async fn revoke_service_account_token(&self, tenant: &TenantName, account: &str, id: &str) -> Result<()>;
    /// Revocations with `seq > after_seq`, in `seq` order, at most `limit`.
    async fn list_revoked_tokens(&self, after_seq: i64, limit: u32) -> Result<Vec<RevokedToken>>;
    /// Deletes the revocations of tokens that expired before `expired_before` (epoch ms): an
    /// expired token is refused for its expiry, so its row is no longer needed. Rows of tokens
    /// that never expire stay. Sequence numbers of deleted rows are never reused, so pollers
    /// reading by `seq` miss nothing. Returns how many rows were deleted.
    async fn prune_revoked_tokens(&self, expired_before: i64) -> Result<u64>;
}

/// Opens the store for a URL (`sqlite://path` or `postgres://...`) and applies migrations.
pub async fn connect(url: &str) -> Result<std::sync::Arc<dyn MetadataStore>> {
    Ok(std::sync::Arc::new(SqlMetadataStore::connect(url).await?))
}
