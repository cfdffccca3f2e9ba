//! The broker: wires its components over one shared context and runs their background loops.
//! The outside uses narrow handles — [`Broker::topics`], [`Broker::publisher`],
//! [`Broker::subscriptions`], [`Broker::admin`], [`Broker::offloader`] — never the metadata
//! store or storage directly.

use crate::BrokerError;
use crate::Result;
use crate::admin::Admin;
use crate::config::BrokerConfig;
use crate::context::Context;
use crate::controllers::checkpoint::{Checkpoints, WalCheckpointer};
use crate::controllers::enforcement::Enforcement;
use crate::controllers::offload::Offloader;
use crate::controllers::retention::Retention;
use crate::membership::{Membership, new_session_id};
use crate::metrics::BrokerMetrics;
use crate::policies::admin::TopicPolicyAdmin;
use crate::publish::Publisher;
use crate::registry::TopicRegistry;
use crate::subscriptions::Subscriptions;
use crate::topics::Topics;
use magnetar_auth::Authorizer;
use magnetar_core::SharedClock;
use magnetar_metadata::{BrokerLoad, BrokerRecord, BrokerRegistration, ClusterData, MetadataStore, PolicyCache};
use magnetar_storage::Storage;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What the broker is built on.
pub struct BrokerDeps {
    pub metadata: Arc<dyn MetadataStore>,
    /// The cache of tenants and policies, shared with the authorizer.
    pub policies: Arc<PolicyCache>,
    pub authorizer: Arc<Authorizer>,
    pub storage: Arc<Storage>,
    /// Cursor ops found in the WAL at open (`Storage::open`).
    pub recovered_ops: Vec<(u64, bytes::Bytes)>,
    pub registry: prometheus::Registry,
    pub clock: SharedClock,
    /// Where this broker's `pulsar://` listener is reached, registered with its membership in a
    /// tier (lookups and proxies of the other brokers use it); empty without a listener.
    pub binary_urls: BinaryUrls,
}

/// The `pulsar://host:port` URLs of a broker's binary-protocol listener.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BinaryUrls {
    /// For the other brokers of the tier (they proxy binary connections there).
    pub internal: String,
    /// For clients.
    pub advertised: String,
    /// For clients of the TLS listener (`pulsar+ssl://`); empty without one.
    pub advertised_tls: String,
}

pub struct Broker {
    pub(crate) ctx: Arc<Context>,
    pub(crate) registry: Arc<TopicRegistry>,
    topics: Topics,
    publisher: Publisher,
    subscriptions: Subscriptions,
    admin: Admin,
    pub(crate) offloader: Arc<Offloader>,
    compactor: Arc<crate::compaction::Compactor>,
    pub(crate) checkpoints: Arc<Checkpoints>,
    retention: Arc<Retention>,
    enforcement: Arc<Enforcement>,
    topic_policies: TopicPolicyAdmin,
    ready: AtomicBool,
    /// Cancelled by an administrator's shutdown request; the process stops as on SIGTERM.
    stop_requested: CancellationToken,
    /// The load reported with each lease renewal, as last measured (`load_balance`).
    pub(crate) load_report: std::sync::Mutex<BrokerLoad>,
    /// A hot bundle's split is running.
    pub(crate) splitting: AtomicBool,
}

impl Broker {
    /// Builds the broker over recovered storage: replays cursor ops found in the WAL into the
    /// metadata store, removes data of partitions that no longer exist, starts the background
    /// loops (cursor checkpoints, retention, TTL and quotas, offload, stats).
    pub async fn start(config: BrokerConfig, deps: BrokerDeps) -> Result<Arc<Broker>> {
        let cluster = ClusterData {
            name: config.cluster.clone(),
            service_url: format!("http://{}", config.advertised_address),
            broker_service_url: format!("http://{}", config.advertised_address),
            ..ClusterData::default()
        };
        if deps.metadata.get_cluster(&config.cluster).await?.is_none() {
            deps.metadata.upsert_cluster(&cluster).await?;
        }
        let membership = join_tier(&config, &deps).await?;
        let metrics = BrokerMetrics::new(deps.registry, &config.cluster, &config.advertised_address);
        let tier = crate::tier::Tier::new(
            config.tier.clone(),
            Arc::clone(&deps.metadata),
            Arc::clone(&deps.policies),
            Arc::clone(&membership),
            metrics.tier.clone(),
        );
        let (cursor_sync, cursor_sync_rx) = tokio::sync::mpsc::unbounded_channel();
        // Replicated durability needs peers: only in a tier.
        let replication = if config.tier.enabled {
            let store = magnetar_storage::replica::ReplicaStoreConfig {
                drop_synced: deps.storage.config().page_cache_window_bytes > 0,
                direct_writes: deps.storage.config().direct_segment_writes,
                ..magnetar_storage::replica::ReplicaStoreConfig::new(deps.storage.config().data_dir.join("replicas"))
            };
            let metrics = deps.storage.metrics().clone();
            Some(
                crate::replication::Replication::open(Arc::clone(&membership), store, &config.durability, metrics)
                    .await?,
            )
        } else {
            None
        };
        let ctx = Arc::new(Context {
            broker_id: config.advertised_address.clone(),
            config,
            metadata: deps.metadata,
            policies: deps.policies,
            storage: deps.storage,
            metrics,
            clock: deps.clock,
            authorizer: deps.authorizer,
            membership,
            tier,
            tasks: TaskTracker::new(),
            namespace_limiters: Default::default(),
            shutdown: CancellationToken::new(),
            cursor_sync,
            replication,
            recovered_objects: Default::default(),
        });
        crate::durability::attach_object_log(&ctx);
        let registry = Arc::new(TopicRegistry::new(Arc::clone(&ctx)));
        let offloader = Arc::new(Offloader::new(Arc::clone(&ctx), Arc::clone(&registry)));
        let publisher = Publisher::new(Arc::clone(&ctx), Arc::clone(&registry));
        let checkpoints = Arc::new(Checkpoints::new(Arc::clone(&ctx), Arc::clone(&registry)));
        ctx.spawn(Arc::clone(&checkpoints).run_sync(cursor_sync_rx));
        let broker = Arc::new(Broker {
            topics: Topics::new(Arc::clone(&ctx), Arc::clone(&registry), Arc::clone(&offloader)),
            subscriptions: Subscriptions::new(Arc::clone(&ctx), Arc::clone(&registry), publisher.clone()),
            admin: Admin::new(Arc::clone(&ctx), Arc::clone(&registry), Arc::clone(&offloader)),
            retention: Arc::new(Retention::new(Arc::clone(&ctx), Arc::clone(&registry), Arc::clone(&offloader))),
            enforcement: Arc::new(Enforcement::new(Arc::clone(&ctx), Arc::clone(&registry))),
            topic_policies: TopicPolicyAdmin::new(Arc::clone(&ctx), Arc::clone(&registry)),
            compactor: Arc::new(crate::compaction::Compactor::new(Arc::clone(&ctx), Arc::clone(&registry))),
            publisher,
            offloader,
            checkpoints,
            registry,
            ctx,
            ready: AtomicBool::new(false),
            stop_requested: CancellationToken::new(),
            load_report: std::sync::Mutex::default(),
            splitting: AtomicBool::new(false),
        });
        broker.checkpoints.replay(deps.recovered_ops).await?;
        broker.collect_orphan_logs().await?;
        broker.ctx.storage.set_checkpointer(Arc::new(WalCheckpointer(Arc::downgrade(&broker.checkpoints))));
        broker.spawn_loops();
        broker.ready.store(true, Ordering::SeqCst);
        Ok(broker)
    }

    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    pub fn publisher(&self) -> &Publisher {
        &self.publisher
    }

    pub fn subscriptions(&self) -> &Subscriptions {
        &self.subscriptions
    }

    pub fn admin(&self) -> &Admin {
        &self.admin
    }

    /// Bundle ownership and routing between the brokers of the tier.
    pub fn tier(&self) -> &Arc<crate::tier::Tier> {
        &self.ctx.tier
    }

    /// Topic-level policies and the policies in force.
    pub fn topic_policies(&self) -> &TopicPolicyAdmin {
        &self.topic_policies
    }

    pub fn offloader(&self) -> &Arc<Offloader> {
        &self.offloader
    }

    /// Topic compaction (`PUT/GET .../compaction`).
    pub fn compactor(&self) -> &Arc<crate::compaction::Compactor> {
        &self.compactor
    }

    /// The broker's settings, read-only.
    pub fn config(&self) -> &BrokerConfig {
        &self.ctx.config
    }

    pub fn cluster(&self) -> &str {
        &self.ctx.config.cluster
    }

    pub fn broker_id(&self) -> &str {
        &self.ctx.broker_id
    }

    /// The registry `/metrics` renders.
    pub fn metrics_registry(&self) -> &prometheus::Registry {
        &self.ctx.metrics.registry
    }

    /// The Prometheus text of `/metrics`: the registry's families, then Pulsar's broker,
    /// namespace, topic and subscription families from the loaded partitions. Takes a while with
    /// many topics: call it off the async runtime.
    pub fn render_metrics(&self) -> String {
        use prometheus::Encoder;
        let mut buf = Vec::new();
        if let Err(e) = prometheus::TextEncoder::new().encode(&self.ctx.metrics.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        let mut out = String::from_utf8(buf).unwrap_or_default();
        let partitions = self.registry.loaded_partitions();
        crate::metrics::exposition::write(&mut out, &partitions, &self.ctx.config.cluster, &self.ctx.config.metrics);
        out
    }

    /// Counts a request forwarded to the owner of its topic's bundle.
    pub fn count_forwarded(&self) {
        self.ctx.metrics.forwarded_requests.inc();
    }

    /// Counts a topic lookup, answered or refused.
    pub fn count_lookup(&self, answered: bool) {
        let m = &self.ctx.metrics;
        if answered { m.lookup_answers.inc() } else { m.lookup_failures.inc() }
    }

    /// Counts a `pulsar+ssl://` connection whose handshake completed.
    pub fn count_tls_connection(&self) {
        self.ctx.metrics.binary_tls_connections.inc();
    }

    /// Connection metrics, for the surfaces that hold connections.
    pub fn connection_metrics(&self) -> &crate::metrics::ConnectionMetrics {
        &self.ctx.metrics.connections
    }

    pub fn is_ready(&self) -> bool {
        // A broker that may not acknowledge (its lease may have lapsed) takes no traffic.
        self.ready.load(Ordering::SeqCst) && self.ctx.membership.may_acknowledge()
    }

    /// Asks the process to stop gracefully, as SIGTERM does (Pulsar's `brokers/shutdown`).
    pub fn request_stop(&self) {
        tracing::info!("shutdown requested through the admin API");
        self.stop_requested.cancel();
    }

    /// Resolves once a stop was requested through [`Broker::request_stop`].
    pub async fn stop_requested(&self) {
        self.stop_requested.cancelled().await
    }

    /// Readiness off (first step of a graceful shutdown).
    pub fn mark_unready(&self) {
        self.ready.store(false, Ordering::SeqCst);
    }

    /// Cancelled when the broker shuts down: long-lived sessions end on it.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.ctx.shutdown.clone()
    }

    /// Spawns a task the broker's shutdown waits for (sessions and their helpers).
    pub fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.ctx.spawn(task)
    }

    /// Deletes local data of partitions whose topic no longer exists (a crash between the
    /// metadata delete and the data delete), and in a tier the copies of partitions another
    /// broker has continued since.
    async fn collect_orphan_logs(&self) -> Result<()> {
        for log_id in self.ctx.storage.log_ids() {
            match self.ctx.metadata.get_partition_owner(log_id as i64).await {
                Ok(_) if self.ctx.tier.enabled() && !self.ctx.last_held_here(log_id as i64).await? => {
                    // Another broker continued the partition (handover or forced takeover): this
                    // copy is stale, and loading it later would fork the log.
                    tracing::info!(log_id, "deleting the local copy of a partition another broker serves now");
                    self.ctx.storage.delete_log(log_id).await?;
                }
                Ok(_) => {}
                Err(magnetar_metadata::MetadataError::NotFound(_)) => {
                    tracing::info!(log_id, "deleting data of a partition that no longer exists");
                    self.ctx.storage.delete_log(log_id).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn spawn_loops(self: &Arc<Self>) {
        let every = self.ctx.config.checkpoint_interval();
        self.periodic(every, |b| async move {
            b.checkpoints.checkpoint_all().await;
        });
        self.periodic(self.ctx.config.retention_interval(), |b| async move { b.retention.run_once().await });
        self.periodic(self.ctx.config.offload_interval(), |b| async move { b.offloader.run_once().await });
        self.periodic(self.ctx.config.compaction_interval(), |b| async move { b.compactor.run_once().await });
        self.periodic(Duration::from_secs(1), |b| async move { b.enforcement.run_once().await });
        self.periodic(
            Duration::from_secs(1),
            |b| async move { crate::dedup::take_snapshots(&b.ctx, &b.registry).await },
        );
        // Policies in force on loaded topics: namespace changes through the cache each second,
        // topic-level ones from the store every `topic_policies_refresh_ms`.
        let reload_every = (self.ctx.config.topic_policies_refresh_ms / 1000).max(1);
        let ticks = Arc::new(std::sync::atomic::AtomicU64::new(0));
        self.periodic(Duration::from_secs(1), move |b| {
            let tick = ticks.fetch_add(1, Ordering::Relaxed) + 1;
            async move { crate::policies::refresh_all(&b.ctx, &b.registry, tick.is_multiple_of(reload_every)).await }
        });
        use crate::controllers::lifecycle;
        let every = Duration::from_millis(self.ctx.config.inactive_topic_check_interval_ms.max(100));
        self.periodic(every, |b| async move {
            let now = b.ctx.clock.now_millis();
            lifecycle::delete_inactive_topics(&b.topics, b.registry.loaded_topics(), now).await;
        });
        let every = Duration::from_millis(self.ctx.config.subscription_expiry_check_interval_ms.max(100));
        self.periodic(every, |b| async move {
            let now = b.ctx.clock.now_millis();
            lifecycle::expire_subscriptions(&b.subscriptions, b.registry.loaded_topics(), now).await;
        });
        // Apart from the offload pass, which may spend many seconds uploading a backlog.
        self.periodic(Duration::from_secs(1), |b| async move { b.ctx.storage.update_upload_pace() });
        self.periodic(Duration::from_secs(5), |b| async move { b.measure_load().await });
        self.periodic(self.ctx.config.membership.renew_interval(), |b| async move {
            b.ctx.membership.renew(&b.load()).await;
        });
        if self.ctx.replication.is_some() {
            // Copies held for others: those their partitions' records stopped naming are given
            // up after the retention, then the sweep deletes what nothing reads.
            let retention = Duration::from_millis(self.ctx.config.durability.replica_unrecorded_retention_ms);
            self.periodic(Duration::from_secs(30).min(retention / 2), move |b| async move {
                if let Some(r) = &b.ctx.replication {
                    r.discard_unrecorded(&*b.ctx.metadata, retention).await;
                    r.sweep().await;
                }
            });
            self.periodic(crate::durability::TEND_INTERVAL, |b| async move { b.tend_replication().await });
            // And at once when a peer lost its copies: the tails it held are one copy short
            // until they are sent again.
            let broker = Arc::downgrade(self);
            let token = self.ctx.shutdown.clone();
            self.ctx.spawn(async move {
                loop {
                    let Some(r) = broker.upgrade().and_then(|b| b.ctx.replication.clone()) else { return };
                    tokio::select! {
                        _ = token.cancelled() => return,
                        _ = r.copies_lost() => {}
                    }
                    let Some(b) = broker.upgrade() else { return };
                    b.tend_replication().await;
                }
            });
        }
        if self.ctx.tier.enabled() {
            self.periodic(self.ctx.config.tier.refresh_interval(), |b| async move {
                if let Err(e) = b.ctx.tier.refresh().await {
                    tracing::warn!(error = %e.cause(), "bundle ownership pass failed");
                }
                if let Err(e) = b.fail_over_object_store_bundles().await {
                    tracing::warn!(error = %e.cause(), "failover pass failed");
                }
                b.serve_release_requests().await;
                b.split_hot_bundle();
            });
        }
        let window = Duration::from_secs(self.ctx.config.metrics.bucket_window_seconds.max(1));
        self.periodic(window, |b| async move {
            for p in b.registry.loaded_partitions() {
                p.roll_distributions();
            }
        });
    }

    /// Runs `f` every `every` until shutdown or the broker is gone.
    fn periodic<F, Fut>(self: &Arc<Self>, every: Duration, f: F)
    where
        F: Fn(Arc<Broker>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let broker: Weak<Broker> = Arc::downgrade(self);
        let token = self.ctx.shutdown.clone();
        self.ctx.spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let Some(b) = broker.upgrade() else { return };
                f(b).await;
            }
        });
    }

    /// Graceful stop: readiness off, sessions and background loops told to stop and waited for,
    /// cursors checkpointed, the WAL flushed and fsynced.
    pub async fn shutdown(&self) {
        self.mark_unready();
        self.ctx.membership.set_draining();
        self.ctx.shutdown.cancel();
        self.ctx.tasks.close();
        self.ctx.tasks.wait().await;
        let failed = self.checkpoints.checkpoint_all().await;
        if !failed.is_empty() {
            tracing::error!(
                partitions = failed.len(),
                "final cursor checkpoint failed; cursor updates remain in the write-ahead log"
            );
        }
        self.ctx.storage.shutdown().await;
        if let Some(r) = &self.ctx.replication {
            r.close().await;
        }
        self.ctx.membership.leave().await;
    }

    /// Sets the under-replication gauge from the partitions served here with replicated
    /// durability, and moves the streams whose peers died to live brokers
    /// (`durability::re_replicate`).
    async fn tend_replication(&self) {
        let Some(r) = &self.ctx.replication else { return };
        let replicated: Vec<Arc<crate::partition::Partition>> = self
            .registry
            .loaded_topics()
            .iter()
            .flat_map(|t| t.partitions.iter())
            .filter(|p| p.log.replicated_epoch().is_some())
            .cloned()
            .collect();
        let ids: Vec<u64> = replicated.iter().map(|p| p.log_id as u64).collect();
        match r.under_replicated(&ids).await {
            Ok(n) => self.ctx.metrics.tier.under_replicated.set(n as i64),
            Err(e) => tracing::debug!(error = %e, "under-replication not measured"),
        }
        crate::durability::re_replicate(&self.ctx, r).await;
    }

    /// The brokers of this broker's cluster with a live lease, as the metadata store sees them.
    pub async fn live_brokers(&self) -> Result<Vec<BrokerRecord>> {
        let mut brokers = self.ctx.membership.brokers().await?;
        brokers.retain(|b| b.alive);
        Ok(brokers)
    }

    /// Whether this broker's lease is certainly unexpired (it may acknowledge).
    pub fn is_member(&self) -> bool {
        self.ctx.membership.may_acknowledge()
    }

    /// Hooks for tests of this and other crates: single passes of the background loops and
    /// read access to what they work on.
    #[doc(hidden)]
    /// Applies the backlog quotas of every loaded topic now (Pulsar's `backlog-quota-check`).
    pub async fn check_backlog_quotas(&self) {
        self.enforcement.check_quotas().await
    }

    pub fn testing(&self) -> Testing<'_> {
        Testing(self)
    }
}

#[doc(hidden)]
pub struct Testing<'a>(&'a Broker);

impl Testing<'_> {
    /// One lease renewal; whether the lease is held.
    pub async fn renew_membership(&self) -> bool {
        self.0.ctx.membership.renew(&self.0.load()).await
    }

    pub async fn run_retention(&self) {
        self.0.retention.run_once().await
    }
    pub async fn run_enforcement(&self) {
        self.0.enforcement.run_once().await
    }
    pub async fn run_offload(&self) {
        self.0.offloader.run_once().await
    }
    /// One pass of the compaction monitor.
    pub async fn run_compaction_check(&self) {
        self.0.compactor.run_once().await
    }
    /// Partitions whose checkpoint failed, with the reason.
    pub async fn checkpoint(&self) -> Vec<(String, String)> {
        self.0
            .checkpoints
            .checkpoint_all()
            .await
            .into_iter()
            .map(|f| (f.partition.name.to_string(), f.error.cause()))
            .collect()
    }
    pub fn storage(&self) -> &Arc<Storage> {
        &self.0.ctx.storage
    }
    pub fn metadata(&self) -> &Arc<dyn MetadataStore> {
        &self.0.ctx.metadata
    }
    pub async fn log_ids(&self, name: &magnetar_core::TopicName) -> Result<Vec<i64>> {
        let (_, parts) = self.0.registry.partitions_of(name).await?;
        Ok(parts.iter().map(|p| p.log_id).collect())
    }
    pub fn loaded_topics(&self) -> usize {
        self.0.registry.loaded_topics().len()
    }
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker").field("id", &self.ctx.broker_id).finish()
    }
}

/// Registers this process in the membership table. Its session id is kept in the data
/// directory (`SESSION`), which the storage holds locked: a session found there belonged to this
/// broker's previous process, certainly dead, so its row is taken over without waiting out its
/// lease (a restart after a crash is not delayed).
async fn join_tier(config: &BrokerConfig, deps: &BrokerDeps) -> Result<Arc<Membership>> {
    config.membership.validate().map_err(BrokerError::InvalidArgument)?;
    let file = deps.storage.config().data_dir.join("SESSION");
    let previous = tokio::fs::read_to_string(&file).await.ok().map(|s| s.trim().to_string());
    let registration = BrokerRegistration {
        broker_id: config.advertised_address.clone(),
        session_id: new_session_id(),
        cluster: config.cluster.clone(),
        internal_address: if config.tier.internal_address.is_empty() {
            config.advertised_address.clone()
        } else {
            config.tier.internal_address.clone()
        },
        advertised_address: config.advertised_address.clone(),
        binary_internal_url: deps.binary_urls.internal.clone(),
        binary_advertised_url: deps.binary_urls.advertised.clone(),
        binary_advertised_tls_url: deps.binary_urls.advertised_tls.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let session = registration.session_id.clone();
    // Without a session in the data directory (a first start, or a blank volume in place of a
    // lost one) a row held by another session may be this broker's previous process, dead, or
    // a duplicate that is alive: it waits for that lease to run out, two leases at most (a live
    // duplicate renews it all along and is refused then), instead of exiting at once and
    // leaving a replaced volume's broker to its orchestrator's restart back-off.
    let lease = Duration::from_millis(config.membership.lease_ms);
    let deadline = Instant::now() + 2 * lease + Duration::from_secs(1);
    let mut told = false;
    let membership = loop {
        let joined = Membership::join(
            Arc::clone(&deps.metadata),
            registration.clone(),
            config.membership.clone(),
            previous.as_deref(),
        )
        .await;
        match joined {
            Err(BrokerError::ModifiedConcurrently(e)) if previous.is_none() && Instant::now() < deadline => {
                if !told {
                    tracing::warn!(broker = %registration.broker_id, detail = %e,
                        "the data directory holds no session of this broker: waiting for the lease of the process \
                         registered under its name to expire");
                    told = true;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            other => break other?,
        }
    };
    tokio::fs::write(&file, session)
        .await
        .map_err(|e| BrokerError::Internal(format!("cannot record the broker session in {}: {e}", file.display())))?;
    Ok(membership)
}
