//! The topic registry: the one owner of the table of loaded topics. Loading a topic, unloading
//! it and deleting it (alone, with its namespace or with its tenant) all go through here, under
//! the lock of the topic's namespace, so a load can never install a topic that a concurrent
//! delete removed (a stale topic would answer errors until a restart), and a delete never misses
//! a topic being loaded. Topics of different namespaces load in parallel.

use crate::context::Context;
use crate::error::{Entity, OrEntity};
use crate::partition::Partition;
use crate::subscription::SubscriptionLimits;
use crate::{BrokerError, Result};
use magnetar_core::{NamespaceName, SubscriptionName, TenantName, TopicName};
use magnetar_metadata::{CursorState, NewTopic, PartitionRecord, TopicRecord};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// A loaded topic: its metadata and one runtime per partition (one for a non-partitioned topic).
pub struct Topic {
    pub record: TopicRecord,
    pub partitions: Vec<Arc<Partition>>,
    round_robin: AtomicUsize,
    /// Its own policies and the policies in force (`policies::runtime`).
    pub policy: crate::policies::runtime::TopicPolicyState,
}

impl Topic {
    pub fn name(&self) -> &TopicName {
        &self.record.name
    }

    pub fn is_partitioned(&self) -> bool {
        self.record.partitions > 0
    }

    /// Next partition for a message without key (round robin).
    pub(crate) fn next_partition(&self) -> usize {
        self.round_robin.fetch_add(1, Ordering::Relaxed) % self.partitions.len()
    }

    pub fn partition_by_index(&self, index: i32) -> Option<&Arc<Partition>> {
        if self.is_partitioned() {
            self.slot(u32::try_from(index).ok()?).map(|i| &self.partitions[i])
        } else {
            self.partitions.first()
        }
    }

    /// Where partition `index` is in `partitions`: at its index for a whole topic, at 0 for the
    /// one-partition view a broker tier loads (`TopicRegistry::resolve`).
    pub fn slot(&self, index: u32) -> Option<usize> {
        let index = i32::try_from(index).ok()?;
        if self.partitions.get(index as usize).is_some_and(|p| p.index == index) {
            return Some(index as usize);
        }
        self.partitions.iter().position(|p| p.index == index)
    }
}

/// A partition removed from the metadata store, with its name when it was loaded (the key
/// prefix of its objects derives from it).
#[derive(Debug, Clone)]
pub(crate) struct Removed {
    pub record: PartitionRecord,
    pub name: Option<TopicName>,
}

pub(crate) struct TopicRegistry {
    ctx: Arc<Context>,
    topics: RwLock<HashMap<TopicName, Arc<Topic>>>,
    locks: Mutex<HashMap<NamespaceName, Arc<tokio::sync::Mutex<()>>>>,
}

impl TopicRegistry {
    pub fn new(ctx: Arc<Context>) -> Self {
        TopicRegistry { ctx, topics: RwLock::new(HashMap::new()), locks: Mutex::new(HashMap::new()) }
    }

    fn namespace_lock(&self, ns: &NamespaceName) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(locks.entry(ns.clone()).or_default())
    }

    fn table(&self) -> std::sync::RwLockReadGuard<'_, HashMap<TopicName, Arc<Topic>>> {
        self.topics.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn loaded_topics(&self) -> Vec<Arc<Topic>> {
        self.table().values().cloned().collect()
    }

    pub fn loaded_partitions(&self) -> Vec<Arc<Partition>> {
        self.table().values().flat_map(|t| t.partitions.iter().cloned()).collect()
    }

    /// The loaded topic with this base name, if it is loaded.
    pub fn loaded(&self, name: &TopicName) -> Option<Arc<Topic>> {
        self.table().get(name).cloned()
    }

    /// The loaded topic with this base name, loading it first if needed.
    pub async fn topic(&self, name: &TopicName) -> Result<Arc<Topic>> {
        self.load_once(name, || async {
            let record = self.record(name).await?;
            if record.partitions > 0 && self.ctx.tier.enabled() {
                // Its partitions are spread over the brokers of the tier: each is loaded alone.
                return Err(BrokerError::WholePartitionedTopic {
                    topic: name.clone(),
                    operation: "an operation on every partition at once (a broker tier serves partitions one by one)",
                });
            }
            Ok(record)
        })
        .await
    }

    /// The topic loaded under `name`, or loaded now from the record `record` reads, under the
    /// namespace's lock (see the module docs), with its namespace policies applied.
    async fn load_once<F, Fut>(&self, name: &TopicName, record: F) -> Result<Arc<Topic>>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<TopicRecord>>,
    {
        if let Some(t) = self.loaded(name) {
            return Ok(t);
        }
        let lock = self.namespace_lock(name.namespace());
        let _guard = lock.lock().await;
        if let Some(t) = self.loaded(name) {
            return Ok(t);
        }
        let topic = Arc::new(self.load(record().await?).await?);
        if let Err(e) = crate::policies::refresh_topic(&self.ctx, &topic).await {
            tracing::warn!(topic = %name, error = %e, "namespace policies not applied at load; the next refresh applies them");
        }
        self.topics.write().unwrap_or_else(|e| e.into_inner()).insert(name.clone(), Arc::clone(&topic));
        Ok(topic)
    }

    async fn record(&self, name: &TopicName) -> Result<TopicRecord> {
        self.ctx.metadata.get_topic(name).await?.ok_or_else(|| BrokerError::NotFound(Entity::Topic(name.clone())))
    }

    async fn load(&self, record: TopicRecord) -> Result<Topic> {
        let ctx = &self.ctx;
        let limits = SubscriptionLimits {
            max_in_flight: ctx.config.max_unacked_per_subscription,
            max_delayed: ctx.config.max_delayed_messages_per_subscription,
            max_ranges_to_persist: ctx.config.max_acked_ranges_to_persist,
        };
        let mut partitions = Vec::with_capacity(record.partition_records.len());
        let durability = crate::durability::policy_of(ctx, record.name.namespace()).await?;
        let mut subscriptions = Vec::with_capacity(record.partition_records.len());
        for pr in &record.partition_records {
            let name = if record.partitions > 0 { record.name.partition(pr.index as u32) } else { record.name.clone() };
            // In a tier, only the owner of the partition's bundle may take it (and fence others).
            ctx.tier.check_owned(&name).await?;
            drop_stale_copy(ctx, pr.log_id).await?;
            let epoch = ctx.metadata.acquire_partition(pr.log_id, &ctx.broker_id).await?;
            let log = ctx.storage.log(pr.log_id as u64)?;
            let remote = ctx.metadata.list_segments(pr.log_id).await?;
            let uploaded_end = remote.iter().map(|s| s.end_offset).max().unwrap_or(0);
            log.attach_remote(remote.into_iter().map(crate::controllers::offload::remote_of).collect());
            let loading = crate::durability::Loading { log: &log, log_id: pr.log_id, epoch, uploaded_end };
            crate::durability::apply(ctx, loading, durability).await?;
            if pr.terminated_end.is_some() {
                // Terminated for good: the log refuses appends again after a restart or reload.
                log.terminate();
            }
            let partition = Partition::new(name, *pr, epoch, log, ctx, limits);
            subscriptions.push(ctx.metadata.list_subscriptions(pr.log_id).await?);
            partitions.push(Arc::new(partition));
        }
        self.repair_subscriptions(&record, &mut subscriptions).await?;
        for (p, subs) in partitions.iter().zip(subscriptions) {
            for sub in subs {
                match SubscriptionName::new(sub.name.clone()) {
                    Ok(name) => {
                        p.add_subscription(&name, &sub.cursor).set_properties(sub.properties);
                    }
                    Err(e) => {
                        tracing::error!(topic = %p.name, error = %e, "skipping a subscription with an invalid name")
                    }
                }
            }
        }
        let own = crate::policies::runtime::parse_topic_policies(&record.name, record.policies.as_ref());
        let policy = crate::policies::runtime::TopicPolicyState::new(own, &ctx.config);
        Ok(Topic { record, partitions, round_robin: AtomicUsize::new(0), policy })
    }

    /// Every partition of a topic has the same subscriptions. Where some lack one the others
    /// have (partitions added by an older version, whose subscriptions were created in a second
    /// step that failed), it is created there at the partition's start, as growing the topic
    /// would have.
    async fn repair_subscriptions(
        &self,
        record: &TopicRecord,
        subscriptions: &mut [Vec<magnetar_metadata::SubscriptionRecord>],
    ) -> Result<()> {
        let all: BTreeSet<String> = subscriptions.iter().flatten().map(|s| s.name.clone()).collect();
        for (pr, subs) in record.partition_records.iter().zip(subscriptions.iter_mut()) {
            let missing: Vec<&String> = all.iter().filter(|n| !subs.iter().any(|s| &s.name == *n)).collect();
            for name in missing {
                tracing::warn!(topic = %record.name, partition = pr.index, subscription = %name,
                    "partition lacks a subscription its topic has; creating it at the partition's start");
                let cursor = CursorState::default();
                match self.ctx.metadata.create_subscription(name, &[(pr.log_id, cursor.clone())]).await {
                    Ok(()) | Err(magnetar_metadata::MetadataError::AlreadyExists(_)) => {}
                    Err(e) => return Err(e.into()),
                }
                subs.push(magnetar_metadata::SubscriptionRecord {
                    log_id: pr.log_id,
                    name: name.clone(),
                    cursor,
                    created_at: self.ctx.now_ms(),
                    properties: Default::default(),
                });
            }
        }
        Ok(())
    }

    /// Resolves a name that may designate a partition (`x-partition-2`) to its topic and the
    /// partition index (None = the whole topic).
    pub async fn resolve(&self, name: &TopicName) -> Result<(Arc<Topic>, Option<usize>)> {
        if let (Some(index), true) = (name.partition_index(), self.ctx.tier.enabled()) {
            match self.partition_view(name, index).await {
                Ok(view) => return Ok((view, Some(0))),
                Err(BrokerError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        if let Some(index) = name.partition_index() {
            match self.topic(&name.base()).await {
                Ok(t) if t.is_partitioned() && t.slot(index).is_some() => {
                    return Ok((Arc::clone(&t), t.slot(index)));
                }
                Ok(_) | Err(BrokerError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let topic = self.topic(name).await?;
        Ok((topic, None))
    }

    /// One partition of a partitioned topic loaded alone, under its own name (a broker tier,
    /// where the partitions of one topic are owned by different brokers). `NotFound` when the
    /// topic is missing, not partitioned, or has no such partition.
    async fn partition_view(&self, name: &TopicName, index: u32) -> Result<Arc<Topic>> {
        self.load_once(name, || async {
            let mut record = self.record(&name.base()).await?;
            if record.partitions == 0 || index >= record.partitions {
                return Err(BrokerError::NotFound(Entity::Topic(name.clone())));
            }
            record.partition_records.retain(|p| p.index == index as i32);
            Ok(record)
        })
        .await
    }

    /// The partitions a name designates: one partition, or every partition of the topic.
    pub async fn partitions_of(&self, name: &TopicName) -> Result<(Arc<Topic>, Vec<Arc<Partition>>)> {
        let (topic, index) = self.resolve(name).await?;
        let parts = match index {
            Some(i) => vec![Arc::clone(&topic.partitions[i])],
            None => topic.partitions.clone(),
        };
        Ok((topic, parts))
    }

    /// [`Self::partitions_of`], once every visible record of each partition is in its
    /// segments (`PartitionLog::settled`): for answers computed from the segments (sizes,
    /// ledgers), which an append is acknowledged just before.
    pub async fn settled_partitions_of(&self, name: &TopicName) -> Result<(Arc<Topic>, Vec<Arc<Partition>>)> {
        let (topic, parts) = self.partitions_of(name).await?;
        futures::future::join_all(parts.iter().map(|p| p.log.settled())).await;
        Ok((topic, parts))
    }

    /// A single partition (a non-partitioned topic or one partition); refused for a whole
    /// partitioned topic.
    pub async fn single_partition(&self, name: &TopicName, operation: &'static str) -> Result<Arc<Partition>> {
        let (topic, parts) = self.partitions_of(name).await?;
        if parts.len() != 1 || (topic.is_partitioned() && name.partition_index().is_none()) {
            return Err(BrokerError::WholePartitionedTopic { topic: name.clone(), operation });
        }
        Ok(Arc::clone(&parts[0]))
    }

    /// Creates a topic in the metadata store (loaded on first use).
    pub async fn create(&self, spec: &NewTopic) -> Result<TopicRecord> {
        let lock = self.namespace_lock(spec.name.namespace());
        let _guard = lock.lock().await;
        crate::policies::enforce::check_topic_count(&self.ctx, spec.name.namespace(), spec.partitions.max(1)).await?;
        let entity = || {
            if spec.partitions > 0 {
                Entity::PartitionedTopic(spec.name.clone())
            } else {
                Entity::Topic(spec.name.clone())
            }
        };
        match self.ctx.metadata.create_topic(spec).await {
            // A missing namespace is what `NotFound` means here.
            Err(magnetar_metadata::MetadataError::NotFound(_)) => {
                Err(BrokerError::NotFound(Entity::Namespace(spec.name.namespace().clone())))
            }
            other => other.or_entity(entity),
        }
    }

    /// Grows a partitioned topic (the new partitions get the topic's subscriptions in the same
    /// transaction) and unloads it, so the next use loads every partition.
    pub async fn grow(&self, name: &TopicName, partitions: u32) -> Result<()> {
        let lock = self.namespace_lock(name.namespace());
        let _guard = lock.lock().await;
        self.ctx
            .metadata
            .update_partitions(name, partitions)
            .await
            .or_entity(|| Entity::PartitionedTopic(name.clone()))?;
        self.unload_locked(name);
        Ok(())
    }

    /// Deletes a topic: `check` sees the loaded topic (if loaded) and may refuse; then the
    /// metadata goes, the topic is unloaded and its local data deleted, all under the
    /// namespace's lock.
    pub async fn delete_topic(
        &self,
        name: &TopicName,
        check: impl FnOnce(&TopicRecord, Option<&Topic>) -> Result<()>,
    ) -> Result<Vec<Removed>> {
        let lock = self.namespace_lock(name.namespace());
        let _guard = lock.lock().await;
        let record = self.record(name).await?;
        let loaded = self.table().get(name).cloned();
        check(&record, loaded.as_deref())?;
        let removed = self.ctx.metadata.delete_topic(name).await.or_entity(|| Entity::Topic(name.clone()))?;
        Ok(self.forget(&removed.partition_records).await)
    }

    /// Deletes a namespace and everything in it.
    pub async fn delete_namespace(&self, ns: &NamespaceName, force: bool) -> Result<Vec<Removed>> {
        let lock = self.namespace_lock(ns);
        let _guard = lock.lock().await;
        let removed =
            self.ctx.metadata.delete_namespace(ns, force).await.or_entity(|| Entity::Namespace(ns.clone()))?;
        Ok(self.forget(&removed).await)
    }

    /// Deletes a tenant and everything in it, holding the lock of each of its namespaces.
    pub async fn delete_tenant(&self, tenant: &TenantName, force: bool) -> Result<Vec<Removed>> {
        let mut namespaces = match self.ctx.metadata.list_namespaces(tenant).await {
            Ok(n) => n,
            Err(magnetar_metadata::MetadataError::NotFound(_)) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        // A fixed order, so two deletes never wait on each other.
        namespaces.sort();
        let locks: Vec<_> = namespaces.iter().map(|n| self.namespace_lock(n)).collect();
        let mut guards = Vec::with_capacity(locks.len());
        for l in &locks {
            guards.push(l.lock().await);
        }
        let removed =
            self.ctx.metadata.delete_tenant(tenant, force).await.or_entity(|| Entity::Tenant(tenant.clone()))?;
        Ok(self.forget(&removed).await)
    }

    /// Forgets a loaded topic so the next use loads it again (after a partition change, or to
    /// hand it to another broker).
    pub async fn unload(&self, name: &TopicName) -> Option<Arc<Topic>> {
        let lock = self.namespace_lock(name.namespace());
        let _guard = lock.lock().await;
        self.unload_locked(name)
    }

    /// Unloads every loaded topic of `ns` with a partition `pick` selects (a handover's), under
    /// the namespace's lock: a load already past its ownership check finishes first and is
    /// unloaded with the others, instead of staying loaded, and serving, behind the handover.
    pub async fn unload_matching(
        &self,
        ns: &NamespaceName,
        pick: impl Fn(&Partition) -> bool,
        moved_to: Option<&magnetar_metadata::BrokerRegistration>,
    ) -> Vec<Arc<Topic>> {
        let lock = self.namespace_lock(ns);
        let _guard = lock.lock().await;
        let picked: Vec<(TopicName, Arc<Topic>)> = self
            .table()
            .iter()
            .filter(|(_, t)| t.partitions.iter().any(|p| p.name.namespace() == ns && pick(p)))
            .map(|(name, t)| (name.clone(), Arc::clone(t)))
            .collect();
        // Set before the sessions are told, so that each reads where to go when it closes.
        if let Some(to) = moved_to {
            for p in picked.iter().flat_map(|(_, t)| t.partitions.iter()) {
                let _ = p.moved_to.set(to.clone());
            }
        }
        picked.iter().filter_map(|(name, _)| self.unload_locked(name)).collect()
    }

    /// Drops a loaded topic (or partition) whose topic no longer exists in the metadata store
    /// (deleted through another broker of a tier), with its local data; whether one was loaded.
    /// The record is read under the namespace's lock, which every load here takes: a topic
    /// created again under the same name meanwhile cannot have been loaded into this view.
    pub async fn drop_deleted(&self, name: &TopicName) -> bool {
        let lock = self.namespace_lock(name.namespace());
        let _guard = lock.lock().await;
        if !matches!(self.ctx.metadata.get_topic(&name.base()).await, Ok(None)) {
            return false;
        }
        let Some(topic) = self.unload_locked(name) else { return false };
        for p in &topic.partitions {
            self.forget_replicas(p.log_id);
            if let Err(e) = self.ctx.storage.delete_log(p.log_id as u64).await {
                tracing::warn!(log_id = p.log_id, error = %e, "could not delete data of a deleted partition");
            }
        }
        tracing::info!(topic = %name, "dropped a partition of a topic deleted through another broker");
        true
    }

    fn unload_locked(&self, name: &TopicName) -> Option<Arc<Topic>> {
        let removed = self.topics.write().unwrap_or_else(|e| e.into_inner()).remove(name);
        // A replicated partition stays registered with its stream (`Replication::served_on`)
        // while this broker owns it, loaded or not: a stream moving off a dead peer then moves
        // its record too, and loading it here again (after a handover that failed, say) reads
        // peers that are alive. Its next load, another broker's load (fenced) or its deletion
        // ends that.
        for p in removed.iter().flat_map(|t| t.partitions.iter()) {
            p.mark_unloaded();
        }
        removed
    }

    /// Forgets the replicated durability of a partition whose log goes (its topic deleted).
    fn forget_replicas(&self, log_id: i64) {
        if let Some(r) = &self.ctx.replication {
            r.forget_before(log_id as u64, i64::MAX);
        }
    }

    /// Unloads the topics of partitions removed from the metadata store and deletes their local
    /// data (the caller holds the namespace locks). What fails here is collected at the next
    /// start (orphan logs).
    async fn forget(&self, removed: &[PartitionRecord]) -> Vec<Removed> {
        let ids: std::collections::HashSet<i64> = removed.iter().map(|p| p.log_id).collect();
        // By the table's key: a partition a tier loads alone is there under its own name, not
        // under its topic's.
        let topics: Vec<TopicName> = self
            .table()
            .iter()
            .filter(|(_, t)| t.partitions.iter().any(|p| ids.contains(&p.log_id)))
            .map(|(name, _)| name.clone())
            .collect();
        let mut names: HashMap<i64, TopicName> = HashMap::new();
        for t in &topics {
            if let Some(topic) = self.unload_locked(t) {
                names.extend(topic.partitions.iter().map(|p| (p.log_id, p.name.clone())));
            }
        }
        for p in removed {
            self.forget_replicas(p.log_id);
            if let Err(e) = self.ctx.storage.delete_log(p.log_id as u64).await {
                tracing::warn!(log_id = p.log_id, error = %e, "could not delete partition data");
            }
        }
        removed.iter().map(|r| Removed { record: *r, name: names.get(&r.log_id).cloned() }).collect()
    }
}

/// Deletes this broker's copy of a partition another broker served after it (before loading
/// it here again). Start-up collects such copies (`collect_orphan_logs`), but a broker restarted
/// before the new owner loaded the partition still counts as its last holder then and keeps
/// its copy: loading it after the other broker continued would fork the log, putting records
/// that were never acknowledged where acknowledged ones are.
async fn drop_stale_copy(ctx: &crate::context::Context, log_id: i64) -> Result<()> {
    if !ctx.tier.enabled() || !ctx.storage.has_log(log_id as u64) || ctx.last_held_here(log_id).await? {
        return Ok(());
    }
    tracing::info!(log_id, "deleting the local copy of a partition another broker served since");
    ctx.storage.delete_log(log_id as u64).await?;
    Ok(())
}
