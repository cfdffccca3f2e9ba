//! Test support: real storage in a temporary directory (optionally with an object tier on the
//! local filesystem), for the unit tests of the subscription engine and the controllers.

use bytes::Bytes;
use magnetar_storage::object::{LocalConfig, ObjectStoreConfig, build_object_store};
use magnetar_storage::{ObjectTier, PartitionLog, RecordInput, StorageConfig, StorageMetrics, TierConfig};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub struct Storage {
    pub dir: tempfile::TempDir,
    pub storage: Arc<magnetar_storage::Storage>,
    tier: Option<Arc<ObjectTier>>,
}

pub fn input(i: u64) -> RecordInput {
    RecordInput {
        publish_time: 1_000 + i as i64,
        event_time: None,
        key: Some(format!("key-{i}")),
        key_base64: false,
        ordering_key: None,
        properties: vec![],
        payload: Bytes::from(format!("payload-{i}")),
        producer: None,
        batch: None,
        chunk: None,
        encrypted: None,
    }
}

/// A message to deliver at `at` (epoch ms), as a publish with `deliverAt` stores it.
pub fn delayed_input(i: u64, at: i64) -> RecordInput {
    RecordInput { properties: vec![(crate::subscription::DELIVER_AT_PROPERTY.into(), at.to_string())], ..input(i) }
}

impl Storage {
    /// Without an in-memory tail, so reads go to the segments.
    fn config(dir: &std::path::Path) -> StorageConfig {
        StorageConfig {
            data_dir: dir.to_path_buf(),
            segment_max_bytes: 4 << 10,
            segment_max_age: Duration::from_secs(3600),
            read_cache_bytes: 0,
            ..StorageConfig::default()
        }
    }

    pub fn open() -> Storage {
        let dir = tempfile::tempdir().expect("temp dir");
        let (storage, _) = magnetar_storage::Storage::open(Self::config(dir.path())).expect("open storage");
        Storage { dir, storage, tier: None }
    }

    /// With an object tier on the local filesystem under `objects/`.
    pub fn with_object_tier() -> Storage {
        let mut kit = Self::open();
        let store = build_object_store(&ObjectStoreConfig::Local(LocalConfig { root: kit.objects_dir() }))
            .expect("local object store");
        let cfg = TierConfig { block_bytes: 4096, cache_bytes: 0, read_ahead_blocks: 0, ..TierConfig::default() };
        let tier = ObjectTier::new(store, cfg, StorageMetrics::new()).expect("tier");
        kit.storage.attach_tier(Arc::clone(&tier));
        kit.tier = Some(tier);
        kit
    }

    fn objects_dir(&self) -> PathBuf {
        self.dir.path().join("objects")
    }

    /// Log `log_id` with `n` records.
    pub async fn log_with(&self, log_id: u64, n: u64) -> Arc<PartitionLog> {
        let log = self.storage.log(log_id).expect("log");
        self.append(&log, n).await;
        log
    }

    pub async fn append(&self, log: &PartitionLog, n: u64) {
        let from = log.end_offset();
        log.append((from..from + n).map(input).collect()).await.expect("append");
    }

    /// Seals the active segment, uploads every sealed one and drops the local copies, so reads
    /// go to the object store.
    pub async fn offload_everything(&self, log: &Arc<PartitionLog>) {
        let tier = self.tier.as_ref().expect("an object tier");
        let l = Arc::clone(log);
        tokio::task::spawn_blocking(move || l.seal_active()).await.expect("seal task").expect("seal");
        for seg in log.segments().into_iter().filter(|s| s.sealed && !s.offloaded) {
            let key = format!("test/{}/{:020}.seg", log.log_id(), seg.base_offset);
            let remote = tier.upload(log, seg.base_offset, &key).await.expect("upload");
            log.mark_offloaded(remote);
            log.drop_local_copy(seg.base_offset).expect("drop local copy");
        }
    }

    /// Makes every object unreadable (as during an outage); returns where they went.
    pub fn break_object_store(&self) -> PathBuf {
        let aside = self.dir.path().join("objects-away");
        std::fs::rename(self.objects_dir(), &aside).expect("move objects away");
        aside
    }

    pub fn repair_object_store(&self, aside: PathBuf) {
        std::fs::rename(aside, self.objects_dir()).expect("move objects back");
    }
}

/// A metadata store whose `list_subscriptions` answer can be held at a gate (read, then held,
/// as a slow reply), to put a topic load in the middle of other operations. Everything else
/// goes straight to the inner store.
pub struct GatedStore {
    inner: Arc<dyn magnetar_metadata::MetadataStore>,
    armed: std::sync::atomic::AtomicBool,
    pub reached: tokio::sync::Notify,
    pub release: tokio::sync::Notify,
}

impl GatedStore {
    pub fn new(inner: Arc<dyn magnetar_metadata::MetadataStore>) -> Arc<GatedStore> {
        Arc::new(GatedStore {
            inner,
            armed: false.into(),
            reached: tokio::sync::Notify::new(),
            release: tokio::sync::Notify::new(),
        })
    }

    /// The next `list_subscriptions` reads, then waits for `release` (after notifying `reached`)
    /// before it answers.
    pub fn arm(&self) {
        self.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

mod gated {
    use super::GatedStore;
    use magnetar_core::{NamespaceName, Policies, TenantName, TopicName};
    use magnetar_metadata::*;
    use std::collections::BTreeMap;

    #[async_trait::async_trait]
    impl MetadataStore for GatedStore {
        async fn list_subscriptions(&self, log_id: i64) -> Result<Vec<SubscriptionRecord>> {
            let answer = self.inner.list_subscriptions(log_id).await;
            if self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
                self.reached.notify_one();
                self.release.notified().await;
            }
            answer
        }
        async fn commit_compacted_view(
            &self,
            epoch: i64,
            view: &CompactedViewRecord,
            previous: Option<i64>,
        ) -> Result<Option<CompactedViewRecord>> {
            self.inner.commit_compacted_view(epoch, view, previous).await
        }
        async fn get_compacted_view(&self, log_id: i64) -> Result<Option<CompactedViewRecord>> {
            self.inner.get_compacted_view(log_id).await
        }
        async fn upsert_cluster(&self, c: &ClusterData) -> Result<()> {
            self.inner.upsert_cluster(c).await
        }
        async fn save_dedup_snapshot(&self, l: i64, e: i64, s: &DedupSnapshot) -> Result<()> {
            self.inner.save_dedup_snapshot(l, e, s).await
        }
        async fn get_dedup_snapshot(&self, l: i64) -> Result<Option<DedupSnapshot>> {
            self.inner.get_dedup_snapshot(l).await
        }
        async fn delete_dedup_snapshot(&self, l: i64, e: i64) -> Result<()> {
            self.inner.delete_dedup_snapshot(l, e).await
        }
        async fn register_broker(
            &self,
            r: &BrokerRegistration,
            lease_ms: u64,
            prev: Option<&str>,
        ) -> Result<LeaseGrant> {
            self.inner.register_broker(r, lease_ms, prev).await
        }
        async fn renew_broker_lease(
            &self,
            id: &str,
            session: &str,
            lease_ms: u64,
            state: BrokerState,
            load: &BrokerLoad,
        ) -> Result<Option<LeaseGrant>> {
            self.inner.renew_broker_lease(id, session, lease_ms, state, load).await
        }
        async fn list_brokers(&self, cluster: &str) -> Result<Vec<BrokerRecord>> {
            self.inner.list_brokers(cluster).await
        }
        async fn deregister_broker(&self, id: &str, session: &str) -> Result<()> {
            self.inner.deregister_broker(id, session).await
        }
        async fn ensure_bundle(&self, ns: &NamespaceName, b: &str) -> Result<BundleOwnership> {
            self.inner.ensure_bundle(ns, b).await
        }
        async fn get_bundle(&self, ns: &NamespaceName, b: &str) -> Result<Option<BundleOwnership>> {
            self.inner.get_bundle(ns, b).await
        }
        async fn list_bundles(&self) -> Result<Vec<BundleOwnership>> {
            self.inner.list_bundles().await
        }
        async fn transition_bundle(
            &self,
            ns: &NamespaceName,
            b: &str,
            epoch: i64,
            state: BundleState,
            to: &BundleTransition,
            partitions: &[i64],
        ) -> Result<BundleOwnership> {
            self.inner.transition_bundle(ns, b, epoch, state, to, partitions).await
        }
        async fn retire_bundle(&self, ns: &NamespaceName, b: &str, epoch: i64) -> Result<()> {
            self.inner.retire_bundle(ns, b, epoch).await
        }
        async fn get_cluster(&self, n: &str) -> Result<Option<ClusterData>> {
            self.inner.get_cluster(n).await
        }
        async fn list_clusters(&self) -> Result<Vec<String>> {
            self.inner.list_clusters().await
        }
        async fn create_cluster(&self, c: &ClusterData) -> Result<()> {
            self.inner.create_cluster(c).await
        }
        async fn update_cluster(&self, c: &ClusterData) -> Result<()> {
            self.inner.update_cluster(c).await
        }
        async fn delete_cluster(&self, n: &str) -> Result<()> {
            self.inner.delete_cluster(n).await
        }
        async fn set_failure_domain(&self, c: &str, n: &str, d: &FailureDomain) -> Result<()> {
            self.inner.set_failure_domain(c, n, d).await
        }
        async fn list_failure_domains(&self, c: &str) -> Result<BTreeMap<String, FailureDomain>> {
            self.inner.list_failure_domains(c).await
        }
        async fn delete_failure_domain(&self, c: &str, n: &str) -> Result<()> {
            self.inner.delete_failure_domain(c, n).await
        }
        async fn set_isolation_policy(&self, c: &str, n: &str, p: &NamespaceIsolationData) -> Result<()> {
            self.inner.set_isolation_policy(c, n, p).await
        }
        async fn list_isolation_policies(&self, c: &str) -> Result<BTreeMap<String, NamespaceIsolationData>> {
            self.inner.list_isolation_policies(c).await
        }
        async fn delete_isolation_policy(&self, c: &str, n: &str) -> Result<()> {
            self.inner.delete_isolation_policy(c, n).await
        }
        async fn create_tenant(&self, n: &TenantName, i: &TenantInfo) -> Result<()> {
            self.inner.create_tenant(n, i).await
        }
        async fn update_tenant(&self, n: &TenantName, i: &TenantInfo) -> Result<()> {
            self.inner.update_tenant(n, i).await
        }
        async fn get_tenant(&self, n: &TenantName) -> Result<Option<TenantInfo>> {
            self.inner.get_tenant(n).await
        }
        async fn list_tenants(&self) -> Result<Vec<TenantName>> {
            self.inner.list_tenants().await
        }
        async fn delete_tenant(&self, n: &TenantName, f: bool) -> Result<Vec<PartitionRecord>> {
            self.inner.delete_tenant(n, f).await
        }
        async fn create_namespace(&self, n: &NamespaceName, p: &Policies) -> Result<()> {
            self.inner.create_namespace(n, p).await
        }
        async fn get_namespace(&self, n: &NamespaceName) -> Result<Option<NamespaceRecord>> {
            self.inner.get_namespace(n).await
        }
        async fn list_namespaces(&self, t: &TenantName) -> Result<Vec<NamespaceName>> {
            self.inner.list_namespaces(t).await
        }
        async fn update_namespace_policies(&self, n: &NamespaceName, p: &Policies, v: i64) -> Result<i64> {
            self.inner.update_namespace_policies(n, p, v).await
        }
        async fn delete_namespace(&self, n: &NamespaceName, f: bool) -> Result<Vec<PartitionRecord>> {
            self.inner.delete_namespace(n, f).await
        }
        async fn create_topic(&self, s: &NewTopic) -> Result<TopicRecord> {
            self.inner.create_topic(s).await
        }
        async fn get_topic(&self, n: &TopicName) -> Result<Option<TopicRecord>> {
            self.inner.get_topic(n).await
        }
        async fn list_topics(&self, n: &NamespaceName) -> Result<Vec<TopicRecord>> {
            self.inner.list_topics(n).await
        }
        async fn update_partitions(&self, n: &TopicName, p: u32) -> Result<TopicRecord> {
            self.inner.update_partitions(n, p).await
        }
        async fn delete_topic(&self, n: &TopicName) -> Result<TopicRecord> {
            self.inner.delete_topic(n).await
        }
        async fn set_topic_policies(&self, n: &TopicName, p: &serde_json::Value) -> Result<()> {
            self.inner.set_topic_policies(n, p).await
        }
        async fn set_topic_properties(&self, n: &TopicName, p: &BTreeMap<String, String>) -> Result<()> {
            self.inner.set_topic_properties(n, p).await
        }
        async fn terminate_partition(&self, l: i64, e: i64) -> Result<i64> {
            self.inner.terminate_partition(l, e).await
        }
        async fn add_schema_version(&self, t: &TopicName, s: Option<&serde_json::Value>) -> Result<i64> {
            self.inner.add_schema_version(t, s).await
        }
        async fn list_schema_versions(&self, t: &TopicName) -> Result<Vec<SchemaVersion>> {
            self.inner.list_schema_versions(t).await
        }
        async fn acquire_partition(&self, l: i64, b: &str) -> Result<i64> {
            self.inner.acquire_partition(l, b).await
        }
        async fn get_partition_owner(&self, l: i64) -> Result<Option<(String, i64)>> {
            self.inner.get_partition_owner(l).await
        }
        async fn create_subscription(&self, n: &str, c: &[(i64, CursorState)]) -> Result<()> {
            self.inner.create_subscription(n, c).await
        }
        async fn delete_subscription(&self, n: &str, l: &[i64]) -> Result<()> {
            self.inner.delete_subscription(n, l).await
        }
        async fn set_subscription_properties(&self, n: &str, l: &[i64], p: &BTreeMap<String, String>) -> Result<()> {
            self.inner.set_subscription_properties(n, l, p).await
        }
        async fn checkpoint_cursors(&self, l: i64, e: i64, c: &[(String, CursorState)]) -> Result<()> {
            self.inner.checkpoint_cursors(l, e, c).await
        }
        async fn checkpoint_cursors_many(
            &self,
            b: &[magnetar_metadata::CursorCheckpoint],
        ) -> Result<Vec<(i64, magnetar_metadata::MetadataError)>> {
            self.inner.checkpoint_cursors_many(b).await
        }
        async fn commit_segment(&self, e: i64, s: &SegmentRecord) -> Result<()> {
            self.inner.commit_segment(e, s).await
        }
        async fn list_segments(&self, l: i64) -> Result<Vec<SegmentRecord>> {
            self.inner.list_segments(l).await
        }
        async fn delete_segments(&self, l: i64, e: i64, b: &[i64]) -> Result<()> {
            self.inner.delete_segments(l, e, b).await
        }
        async fn commit_log_objects(
            &self,
            at: i64,
            objects: &[(String, Vec<LogObjectRange>)],
        ) -> Result<Vec<Vec<(i64, MetadataError)>>> {
            self.inner.commit_log_objects(at, objects).await
        }
        async fn list_log_objects(&self, l: i64, from: i64) -> Result<Vec<LogObjectRecord>> {
            self.inner.list_log_objects(l, from).await
        }
        async fn trim_log_objects(&self, l: i64, e: i64, below: i64) -> Result<Vec<String>> {
            self.inner.trim_log_objects(l, e, below).await
        }
        async fn referenced_log_objects(&self, keys: &[String]) -> Result<Vec<String>> {
            self.inner.referenced_log_objects(keys).await
        }
        async fn mark_local_durability(&self, l: i64, e: i64) -> Result<()> {
            self.inner.mark_local_durability(l, e).await
        }
        async fn may_fail_over(&self, l: i64) -> Result<bool> {
            self.inner.may_fail_over(l).await
        }
        async fn set_partition_replicas(&self, l: i64, e: i64, r: Option<&ReplicaSet>) -> Result<()> {
            self.inner.set_partition_replicas(l, e, r).await
        }
        async fn partition_replicas(&self, l: i64) -> Result<Option<(i64, ReplicaSet)>> {
            self.inner.partition_replicas(l).await
        }
        async fn create_service_account(&self, a: &ServiceAccount) -> Result<()> {
            self.inner.create_service_account(a).await
        }
        async fn get_service_account(&self, t: &TenantName, n: &str) -> Result<Option<ServiceAccount>> {
            self.inner.get_service_account(t, n).await
        }
        async fn list_service_accounts(&self, t: &TenantName) -> Result<Vec<ServiceAccount>> {
            self.inner.list_service_accounts(t).await
        }
        async fn delete_service_account(&self, t: &TenantName, n: &str) -> Result<()> {
            self.inner.delete_service_account(t, n).await
        }
        async fn create_service_account_token(&self, t: &ServiceAccountToken) -> Result<()> {
            self.inner.create_service_account_token(t).await
        }
        async fn list_service_account_tokens(&self, t: &TenantName, a: &str) -> Result<Vec<ServiceAccountToken>> {
            self.inner.list_service_account_tokens(t, a).await
        }
        async fn revoke_service_account_token(&self, t: &TenantName, a: &str, i: &str) -> Result<()> {
            self.inner.revoke_service_account_token(t, a, i).await
        }
        async fn list_revoked_tokens(&self, a: i64, l: u32) -> Result<Vec<RevokedToken>> {
            self.inner.list_revoked_tokens(a, l).await
        }
        async fn prune_revoked_tokens(&self, b: i64) -> Result<u64> {
            self.inner.prune_revoked_tokens(b).await
        }
    }
}

/// A broker over SQLite metadata (wrapped in a [`GatedStore`]) and storage in a temporary
/// directory, authentication off, with tenant `public` and namespace `public/default`.
pub struct TestBroker {
    pub broker: Arc<crate::Broker>,
    pub store: Arc<GatedStore>,
    _storage: Storage,
}

impl TestBroker {
    pub async fn start() -> TestBroker {
        let kit = Storage::open();
        let url = format!("sqlite://{}", kit.dir.path().join("metadata.db").display());
        let inner = magnetar_metadata::connect(&url).await.expect("sqlite metadata");
        let store = GatedStore::new(inner);
        let metadata: Arc<dyn magnetar_metadata::MetadataStore> = store.clone();
        let policies = magnetar_metadata::PolicyCache::new(Arc::clone(&metadata), Duration::from_secs(1));
        let authorizer = magnetar_auth::Auth::authorizer(Arc::clone(&metadata), Arc::clone(&policies));
        let deps = crate::BrokerDeps {
            metadata,
            policies,
            authorizer,
            storage: Arc::clone(&kit.storage),
            recovered_ops: Vec::new(),
            registry: prometheus::Registry::new(),
            clock: magnetar_core::SystemClock::shared(),
            binary_urls: Default::default(),
        };
        let broker = crate::Broker::start(crate::BrokerConfig::default(), deps).await.expect("broker starts");
        broker.admin().ensure_defaults().await.expect("defaults");
        TestBroker { broker, store, _storage: kit }
    }
}
