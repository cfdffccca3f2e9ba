use crate::config::BrokerConfig;
use crate::metrics::BrokerMetrics;
use crate::partition::Partition;
use crate::subscription::{CursorOp, Subscription};
use crate::{BrokerError, Result};
use magnetar_core::TopicName;
use magnetar_metadata::{ClusterData, MetadataStore, TopicRecord};
use magnetar_storage::Storage;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, Weak};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A loaded topic: its metadata and one runtime per partition (one for a non-partitioned topic).
pub struct Topic {
    pub record: TopicRecord,
    pub partitions: Vec<Arc<Partition>>,
    round_robin: AtomicUsize,
}

impl Topic {
    pub fn is_partitioned(&self) -> bool {
        self.record.partitions > 0
    }

    /// Next partition for a message without key (round robin).
    pub(crate) fn next_partition(&self) -> usize {
        self.round_robin.fetch_add(1, Ordering::Relaxed) % self.partitions.len()
    }

    pub fn partition_by_index(&self, index: i32) -> Option<&Arc<Partition>> {
        if self.is_partitioned() { self.partitions.get(usize::try_from(index).ok()?) } else { self.partitions.first() }
    }
}

pub struct Broker {
    pub config: BrokerConfig,
    pub metadata: Arc<dyn MetadataStore>,
    pub storage: Arc<Storage>,
    pub metrics: BrokerMetrics,
    broker_id: String,
    topics: RwLock<HashMap<TopicName, Arc<Topic>>>,
    load_lock: tokio::sync::Mutex<()>,
    /// Serializes checkpoints: a WAL trim must not return while another checkpoint still holds
    /// cursors it took as dirty but has not written yet.
    checkpoint_lock: tokio::sync::Mutex<()>,
    pub(crate) policy_cache: crate::policy::PolicyCache,
    pub(crate) offloader: crate::offload::Offloader,
    ready: AtomicBool,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl Broker {
    /// Builds the broker over recovered storage: replays cursor ops found in the WAL into the
    /// metadata store, removes data of partitions that no longer exist, starts the background
    /// loops (cursor checkpoints, retention, stats).
    pub async fn start(
        config: BrokerConfig,
        metadata: Arc<dyn MetadataStore>,
        storage: Arc<Storage>,
        recovered_ops: Vec<(u64, bytes::Bytes)>,
        registry: prometheus::Registry,
    ) -> Result<Arc<Broker>> {
        let cluster = ClusterData {
            name: config.cluster.clone(),
            service_url: format!("http://{}", config.advertised_address),
            broker_service_url: format!("http://{}", config.advertised_address),
            ..ClusterData::default()
        };
        if metadata.get_cluster(&config.cluster).await?.is_none() {
            metadata.upsert_cluster(&cluster).await?;
        }
        let broker = Arc::new(Broker {
            broker_id: config.advertised_address.clone(),
            config,
            metadata,
            storage,
            metrics: BrokerMetrics::new(registry),
            topics: RwLock::new(HashMap::new()),
            load_lock: tokio::sync::Mutex::new(()),
            checkpoint_lock: tokio::sync::Mutex::new(()),
            policy_cache: crate::policy::PolicyCache::default(),
            offloader: crate::offload::Offloader::default(),
            ready: AtomicBool::new(false),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        });
        broker.replay_cursor_ops(recovered_ops).await?;
        broker.collect_orphan_logs().await?;
        broker.storage.set_checkpointer(Arc::new(BrokerCheckpointer(Arc::downgrade(&broker))));
        broker.spawn_loops();
        broker.ready.store(true, Ordering::SeqCst);
        Ok(broker)
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// Readiness off (first step of a graceful shutdown).
    pub fn mark_unready(&self) {
        self.ready.store(false, Ordering::SeqCst);
    }

    pub fn cluster(&self) -> &str {
        &self.config.cluster
    }

    pub fn broker_id(&self) -> &str {
        &self.broker_id
    }

    /// Applies cursor ops that reached the WAL after the last checkpoint, then checkpoints them,
    /// so the WAL can be trimmed without losing acknowledgements.
    async fn replay_cursor_ops(&self, ops: Vec<(u64, bytes::Bytes)>) -> Result<()> {
        let mut by_log: HashMap<u64, Vec<CursorOp>> = HashMap::new();
        for (log_id, data) in ops {
            match serde_json::from_slice::<CursorOp>(&data) {
                Ok(op) => by_log.entry(log_id).or_default().push(op),
                Err(e) => tracing::warn!(log_id, error = %e, "skipping undecodable cursor record"),
            }
        }
        for (log_id, ops) in by_log {
            let log_id = log_id as i64;
            if !self.partition_exists(log_id).await? {
                continue; // partition deleted since
            }
            let epoch = self.metadata.acquire_partition(log_id, &self.broker_id).await?;
            let log = self.storage.log(log_id as u64)?;
            let mut cursors = Vec::new();
            for rec in self.metadata.list_subscriptions(log_id).await? {
                let sub = Subscription::new(rec.name.clone(), -1, Arc::clone(&log), &rec.cursor, 1, true);
                for op in ops.iter().filter(|op| op_sub(op) == rec.name) {
                    sub.apply(op);
                }
                cursors.push((rec.name, sub.cursor()));
            }
            self.metadata.checkpoint_cursors(log_id, epoch, &cursors).await?;
            tracing::info!(log_id, ops = ops.len(), "replayed cursor updates from the write-ahead log");
        }
        Ok(())
    }

    /// Deletes local data of partitions whose topic no longer exists (a crash between the
    /// metadata delete and the data delete).
    async fn collect_orphan_logs(&self) -> Result<()> {
        for log_id in self.storage.log_ids() {
            if !self.partition_exists(log_id as i64).await? {
                tracing::info!(log_id, "deleting data of a partition that no longer exists");
                self.storage.delete_log(log_id).await?;
            }
        }
        Ok(())
    }

    async fn partition_exists(&self, log_id: i64) -> Result<bool> {
        match self.metadata.get_partition_owner(log_id).await {
            Ok(_) => Ok(true),
            Err(magnetar_metadata::MetadataError::NotFound(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn spawn_loops(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let token = self.shutdown.clone();
        let every = self.config.checkpoint_interval();
        self.tasks.spawn(periodic(weak.clone(), token.clone(), every, |b| async move {
            if let Err(e) = b.checkpoint_all().await {
                tracing::warn!(error = %e, "cursor checkpoint failed");
            }
        }));
        let every = self.config.retention_interval();
        self.tasks.spawn(periodic(weak.clone(), token.clone(), every, |b| async move {
            b.apply_retention_all().await;
        }));
        let every = self.config.offload_interval();
        self.tasks.spawn(periodic(weak.clone(), token.clone(), every, |b| async move {
            b.offload_all().await;
        }));
        self.tasks.spawn(periodic(weak.clone(), token.clone(), std::time::Duration::from_secs(1), |b| async move {
            b.enforce_policies().await;
        }));
        // Apart from the offload pass, which may spend many seconds uploading a backlog.
        self.tasks.spawn(periodic(weak.clone(), token.clone(), std::time::Duration::from_secs(1), |b| async move {
            b.storage.update_upload_pace();
        }));
        self.tasks.spawn(periodic(weak, token, std::time::Duration::from_secs(5), |b| async move {
            for p in b.loaded_partitions() {
                p.update_rates();
            }
        }));
    }

    /// Every loaded partition.
    pub fn loaded_partitions(&self) -> Vec<Arc<Partition>> {
        let topics = self.topics.read().unwrap_or_else(|e| e.into_inner());
        topics.values().flat_map(|t| t.partitions.iter().cloned()).collect()
    }

    pub fn loaded_topics(&self) -> Vec<Arc<Topic>> {
        self.topics.read().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }

    /// Persists every changed cursor to the metadata store.
    pub async fn checkpoint_all(&self) -> Result<()> {
        let _guard = self.checkpoint_lock.lock().await;
        for p in self.loaded_partitions() {
            let cursors: Vec<(String, magnetar_metadata::CursorState)> = p
                .subscriptions()
                .iter()
                .filter_map(|s| s.take_dirty_cursor().map(|c| (s.name().to_string(), c)))
                .collect();
            if cursors.is_empty() {
                continue;
            }
            if let Err(e) = self.metadata.checkpoint_cursors(p.log_id, p.epoch, &cursors).await {
                // Try again next time.
                for (name, _) in &cursors {
                    if let Some(s) = p.subscription(name) {
                        s.mark_dirty();
                    }
                }
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// Loads (or returns the loaded) topic with this base name.
    pub async fn topic(&self, name: &TopicName) -> Result<Arc<Topic>> {
        if let Some(t) = self.topics.read().unwrap_or_else(|e| e.into_inner()).get(name) {
            return Ok(Arc::clone(t));
        }
        let _guard = self.load_lock.lock().await;
        if let Some(t) = self.topics.read().unwrap_or_else(|e| e.into_inner()).get(name) {
            return Ok(Arc::clone(t));
        }
        let record =
            self.metadata.get_topic(name).await?.ok_or_else(|| BrokerError::NotFound(format!("topic {name}")))?;
        let topic = Arc::new(self.load_topic(record).await?);
        self.topics.write().unwrap_or_else(|e| e.into_inner()).insert(name.clone(), Arc::clone(&topic));
        self.metrics.topics_count.add(topic.partitions.len() as i64);
        Ok(topic)
    }

    async fn load_topic(&self, record: TopicRecord) -> Result<Topic> {
        let mut partitions = Vec::with_capacity(record.partition_records.len());
        for pr in &record.partition_records {
            let name = if record.partitions > 0 { record.name.partition(pr.index as u32) } else { record.name.clone() };
            let epoch = self.metadata.acquire_partition(pr.log_id, &self.broker_id).await?;
            let log = self.storage.log(pr.log_id as u64)?;
            self.attach_offloaded(pr.log_id, &log).await?;
            let partition = Partition::new(
                name,
                *pr,
                epoch,
                log,
                &self.metrics,
                &self.config.cluster,
                self.config.max_unacked_per_subscription,
            );
            for sub in self.metadata.list_subscriptions(pr.log_id).await? {
                partition.add_subscription(&sub.name, &sub.cursor);
            }
            partitions.push(Arc::new(partition));
        }
        Ok(Topic { record, partitions, round_robin: AtomicUsize::new(0) })
    }

    /// Resolves a name that may designate a partition (`x-partition-2`) to its topic and the
    /// partition index (None = the whole topic).
    pub async fn resolve(&self, name: &TopicName) -> Result<(Arc<Topic>, Option<usize>)> {
        if let Some(index) = name.partition_index() {
            match self.topic(&name.base()).await {
                Ok(t) if t.is_partitioned() && (index as usize) < t.partitions.len() => {
                    return Ok((t, Some(index as usize)));
                }
                Ok(_) | Err(BrokerError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let topic = self.topic(name).await?;
        Ok((topic, None))
    }

    /// Forgets a loaded topic (after delete or partition update) so the next use reloads it.
    pub(crate) fn unload(&self, name: &TopicName) -> Option<Arc<Topic>> {
        let removed = self.topics.write().unwrap_or_else(|e| e.into_inner()).remove(name);
        if let Some(t) = &removed {
            self.metrics.topics_count.sub(t.partitions.len() as i64);
            for p in &t.partitions {
                let ns = p.name.namespace().to_string();
                let topic = p.name.to_string();
                self.metrics.remove_topic(&[self.config.cluster.as_str(), ns.as_str(), topic.as_str()]);
            }
        }
        removed
    }

    /// Graceful stop: readiness off, background loops stopped, cursors checkpointed, the WAL
    /// flushed and fsynced.
    pub async fn shutdown(&self) {
        self.ready.store(false, Ordering::SeqCst);
        self.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        if let Err(e) = self.checkpoint_all().await {
            tracing::error!(error = %e, "final cursor checkpoint failed; cursor updates remain in the write-ahead log");
        }
        self.storage.shutdown().await;
    }

    /// Writes a cursor op to the WAL; returns once it is durable.
    pub(crate) async fn persist_op(&self, partition: &Partition, op: &CursorOp) -> Result<()> {
        let data = serde_json::to_vec(op).map_err(|e| BrokerError::Internal(e.to_string()))?;
        self.storage.append_aux(partition.log_id as u64, data.into()).await?;
        Ok(())
    }
}

fn op_sub(op: &CursorOp) -> &str {
    match op {
        CursorOp::Ack { sub, .. } | CursorOp::Reset { sub, .. } => sub,
    }
}

/// Runs `f` every `every` until cancelled or the broker is gone.
async fn periodic<F, Fut>(broker: Weak<Broker>, token: CancellationToken, every: std::time::Duration, f: F)
where
    F: Fn(Arc<Broker>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
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
}

/// Lets storage checkpoint cursors before it trims WAL files holding cursor ops.
struct BrokerCheckpointer(Weak<Broker>);

#[async_trait::async_trait]
impl magnetar_storage::Checkpointer for BrokerCheckpointer {
    async fn checkpoint(&self) -> std::result::Result<(), String> {
        match self.0.upgrade() {
            Some(b) => b.checkpoint_all().await.map_err(|e| e.to_string()),
            None => Err("broker stopped".into()),
        }
    }
}
