//! Offload: sealed segments go to the object store, their rows to the segment index, and local
//! copies become a cache that goes after the deletion lag. Pulsar's semantics (namespace
//! `offloadThreshold`, `offloadThresholdInSeconds`, `offloadDeletionLagMs`, `offloadPolicies`;
//! topic `PUT/GET .../offload`). [`plan`] is the pure decision; [`Offloader::run_once`] the thin
//! loop that applies it.
//!
//! Object key of a segment (documented in docs/architecture.md):
//! `{cluster}/{tenant}/{namespace}/{topic}/{partition-index}/{log_id}/{base:020}-{end:020}.seg`
//! (`partition-index` is -1 for a non-partitioned topic). The row is committed only after the
//! upload completed, conditional on the partition's ownership epoch; an object without a row
//! (a crash between upload and commit) is deleted by [`Offloader::collect_orphan_objects`] once
//! older than the grace period. Objects of deleted partitions go with the partition
//! ([`Offloader::delete_partition_objects`]), else with [`Offloader::collect_deleted_partition_objects`],
//! which finds keys whose `log_id` is no longer in the metadata store.

use crate::context::Context;
use crate::partition::Partition;
use crate::registry::{Removed, TopicRegistry};
use crate::{BrokerError, Result};
use magnetar_core::{MessageId, Policies, TopicName};
use magnetar_metadata::SegmentRecord;
use magnetar_storage::{RemoteSegment, SegmentInfo};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The offload policy in force for a partition (-1 = off for each knob), under the names of
/// Pulsar's `OffloadPolicies`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct OffloadPolicy {
    /// Offload oldest sealed segments while the non-offloaded size exceeds this; 0 = at once.
    #[serde(rename = "managedLedgerOffloadThresholdInBytes")]
    pub threshold_bytes: i64,
    /// Offload sealed segments whose newest message is older than this.
    #[serde(rename = "managedLedgerOffloadThresholdInSeconds")]
    pub threshold_seconds: i64,
    /// Delete the local copy this long after the upload (-1 = keep it).
    #[serde(rename = "managedLedgerOffloadDeletionLagInMillis")]
    pub deletion_lag_ms: i64,
}

const THRESHOLD_BYTES: &str = "managedLedgerOffloadThresholdInBytes";
const THRESHOLD_SECONDS: &str = "managedLedgerOffloadThresholdInSeconds";
const DELETION_LAG: &str = "managedLedgerOffloadDeletionLagInMillis";

/// What one pass does to a partition.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OffloadPlan {
    /// Base offsets of sealed segments to upload, oldest first.
    pub upload: Vec<u64>,
    /// Base offsets of offloaded segments whose local copy goes.
    pub drop_local: Vec<u64>,
}

/// Pure decision over a partition's segments (in offset order, the active one last).
/// `manual_before`: a `PUT .../offload` asked for every sealed segment based before it.
pub fn plan(segments: &[SegmentInfo], policy: &OffloadPolicy, now_ms: i64, manual_before: Option<u64>) -> OffloadPlan {
    let mut upload = HashSet::new();
    if policy.threshold_bytes >= 0 {
        // Newest to oldest: once the newer, not offloaded data exceeds the threshold, every
        // older sealed segment goes (Pulsar's size trigger).
        let mut kept: u64 = 0;
        for s in segments.iter().rev().filter(|s| !s.offloaded) {
            if s.sealed && kept + s.size_bytes > policy.threshold_bytes as u64 {
                upload.insert(s.base_offset);
            }
            kept += s.size_bytes;
        }
    }
    for s in segments.iter().filter(|s| s.sealed && !s.offloaded && s.local) {
        let old = policy.threshold_seconds >= 0
            && now_ms.saturating_sub(s.last_publish_time) >= policy.threshold_seconds.saturating_mul(1000);
        if old || manual_before.is_some_and(|b| s.base_offset < b) {
            upload.insert(s.base_offset);
        }
    }
    let mut upload: Vec<u64> = upload.into_iter().collect();
    upload.sort_unstable();
    let drop_local = if policy.deletion_lag_ms >= 0 {
        segments
            .iter()
            .filter(|s| s.sealed && s.local && s.offloaded)
            .filter(|s| now_ms.saturating_sub(s.offloaded_at_ms) >= policy.deletion_lag_ms)
            .map(|s| s.base_offset)
            .collect()
    } else {
        Vec::new()
    };
    OffloadPlan { upload, drop_local }
}

/// The policy from a namespace's `Policies`: `offloadPolicies` fields first, then the legacy
/// fields, then the broker defaults.
pub fn effective_policy(p: &Policies, defaults: &OffloadPolicy) -> OffloadPolicy {
    let field = |name: &str| p.offload_policies.as_ref().and_then(|o| o.get(name)).and_then(|v| v.as_i64());
    OffloadPolicy {
        threshold_bytes: field(THRESHOLD_BYTES)
            .or((p.offload_threshold != -1).then_some(p.offload_threshold))
            .unwrap_or(defaults.threshold_bytes),
        threshold_seconds: field(THRESHOLD_SECONDS)
            .or(p.offload_threshold_in_seconds)
            .unwrap_or(defaults.threshold_seconds),
        deletion_lag_ms: field(DELETION_LAG).or(p.offload_deletion_lag_ms).unwrap_or(defaults.deletion_lag_ms),
    }
}

/// Whether a namespace sets any offload knob itself.
pub fn namespace_sets_offload(p: &Policies) -> bool {
    p.offload_policies.is_some()
        || p.offload_threshold != -1
        || p.offload_threshold_in_seconds.is_some()
        || p.offload_deletion_lag_ms.is_some()
}

/// A topic's `offloadPolicies` over its namespace's policy in force, field by field as Pulsar
/// merges them: each field the topic sets wins; `None` when it sets none of Magnetar's.
pub fn topic_policy(topic: Option<&serde_json::Value>, namespace: &OffloadPolicy) -> Option<OffloadPolicy> {
    let field = |name: &str| topic.and_then(|o| o.get(name)).and_then(|v| v.as_i64());
    let (bytes, seconds, lag) = (field(THRESHOLD_BYTES), field(THRESHOLD_SECONDS), field(DELETION_LAG));
    if bytes.is_none() && seconds.is_none() && lag.is_none() {
        return None;
    }
    Some(OffloadPolicy {
        threshold_bytes: bytes.unwrap_or(namespace.threshold_bytes),
        threshold_seconds: seconds.unwrap_or(namespace.threshold_seconds),
        deletion_lag_ms: lag.unwrap_or(namespace.deletion_lag_ms),
    })
}

/// The object key prefix of a partition (no trailing slash); `name` is the partition's name.
pub fn partition_prefix(cluster: &str, name: &TopicName, index: i32, log_id: i64) -> String {
    let base = name.base();
    let ns = base.namespace();
    format!("{cluster}/{}/{}/{}/{index}/{log_id}", ns.tenant(), ns.local(), base.local())
}

fn prefix_of(cluster: &str, p: &Partition) -> String {
    partition_prefix(cluster, &p.name, p.index, p.log_id)
}

pub fn segment_key(prefix: &str, base: u64, end: u64) -> String {
    format!("{prefix}/{base:020}-{end:020}.seg")
}

/// The `log_id` of a segment key of `cluster` (`None` for any other key: only keys of the
/// documented layout are ever deleted by the sweeps).
pub fn key_log_id(cluster: &str, key: &str) -> Option<i64> {
    let rest = key.strip_prefix(cluster)?.strip_prefix('/')?;
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        // Segments and compacted views (`crate::compaction`).
        [_tenant, _ns, _topic, _index, log_id, file] if file.ends_with(".seg") || file.ends_with(".cv") => {
            log_id.parse().ok()
        }
        _ => None,
    }
}

/// `GET .../offload` in Pulsar's shape.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OffloadStatus {
    pub status: OffloadRun,
    /// Why the last manual offload failed (empty unless `status` is `ERROR`).
    pub last_error: String,
    /// The first message still in the broker's local tier.
    pub first_unoffloaded_message: MessageId,
}

/// State of the last manual offload of a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OffloadRun {
    NotRun,
    Running,
    Success,
    Error,
}

#[derive(Default)]
struct PartitionOffload {
    /// Held while uploading, collecting garbage or applying retention to the partition.
    run: Arc<tokio::sync::Mutex<()>>,
    /// `NOT_RUN | RUNNING | SUCCESS | ERROR` of the last manual offload, and its error.
    manual: Option<(OffloadRun, String)>,
    failures: u32,
    retry_at: Option<Instant>,
    last_gc: Option<Instant>,
}

/// Offload state of the loaded partitions, by log id.
#[derive(Default)]
struct OffloadState {
    parts: Mutex<HashMap<i64, PartitionOffload>>,
    /// Last sweep of the cluster's keys for objects of deleted partitions.
    last_sweep: Mutex<Option<Instant>>,
}

impl OffloadState {
    fn forget(&self, log_id: i64) {
        self.parts.lock().unwrap_or_else(|e| e.into_inner()).remove(&log_id);
    }

    /// True (and the clock restarted) when the last sweep is at least `every` old.
    fn sweep_due(&self, every: Duration) -> bool {
        let mut last = self.last_sweep.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| t.elapsed() < every) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    fn with<T>(&self, log_id: i64, f: impl FnOnce(&mut PartitionOffload) -> T) -> T {
        f(self.parts.lock().unwrap_or_else(|e| e.into_inner()).entry(log_id).or_default())
    }

    /// The lock that serializes uploads, GC and retention of one partition.
    pub(crate) fn run_lock(&self, log_id: i64) -> Arc<tokio::sync::Mutex<()>> {
        self.with(log_id, |s| s.run.clone())
    }
}

/// The offload controller: uploads sealed segments as the policies say, keeps the local disk
/// within its budget, collects garbage objects, and runs manual offloads.
pub struct Offloader {
    ctx: Arc<Context>,
    registry: Arc<TopicRegistry>,
    state: OffloadState,
}

impl Offloader {
    pub(crate) fn new(ctx: Arc<Context>, registry: Arc<TopicRegistry>) -> Self {
        Offloader { ctx, registry, state: OffloadState::default() }
    }

    fn offload_defaults(&self) -> OffloadPolicy {
        OffloadPolicy {
            threshold_bytes: self.ctx.config.offload_threshold_bytes,
            threshold_seconds: self.ctx.config.offload_threshold_seconds,
            deletion_lag_ms: self.ctx.config.offload_deletion_lag_ms,
        }
    }

    /// The offload policy in force for a partition: its topic's `offloadPolicies` field by field,
    /// else its namespace's, else the broker's.
    async fn effective_offload(&self, p: &Partition) -> Result<OffloadPolicy> {
        match self.registry.loaded(&p.name.base()) {
            Some(topic) => Ok(crate::policies::current(&self.ctx, &topic).await?.offload_policies.value),
            None => {
                Ok(effective_policy(&self.ctx.cached_policies(p.name.namespace()).await?, &self.offload_defaults()))
            }
        }
    }

    /// One offload pass over every loaded partition: uploads what the policy says (retrying
    /// failed partitions with exponential backoff), drops local copies past the deletion lag,
    /// collects orphan objects now and then.
    pub async fn run_once(&self) {
        if self.ctx.storage.tier().is_none() {
            return;
        }
        let mut work: Vec<(Arc<Partition>, OffloadPolicy)> = Vec::new();
        for topic in self.registry.loaded_topics() {
            match crate::policies::current(&self.ctx, &topic).await {
                Ok(e) => work.extend(topic.partitions.iter().map(|p| (Arc::clone(p), e.offload_policies.value))),
                Err(e) => tracing::debug!(topic = %topic.name(), error = %e, "skipping offload"),
            }
        }
        // What this pass has to upload: a backlog (after an object-store outage, say) lifts the
        // upload pace so it drains in seconds (`magnetar_storage::object::UploadPace`).
        let now = self.ctx.now_ms();
        let backlog: u64 = work
            .iter()
            .map(|(p, policy)| {
                let segments = p.log.segments();
                let planned = plan(&segments, policy, now, None).upload;
                segments
                    .iter()
                    .filter(|s| planned.binary_search(&s.base_offset).is_ok())
                    .map(|s| s.size_bytes)
                    .sum::<u64>()
            })
            .sum();
        self.ctx.storage.set_upload_backlog(backlog);
        for (p, policy) in &work {
            let due = self.state.with(p.log_id, |s| s.retry_at.is_none_or(|t| Instant::now() >= t));
            if !due {
                continue;
            }
            let lock = self.state.run_lock(p.log_id);
            let Ok(_guard) = lock.try_lock() else { continue };
            if let Err(e) = self.offload_partition(p, policy, None).await {
                self.note_failure(p, &e);
                continue;
            }
            self.state.with(p.log_id, |s| {
                s.failures = 0;
                s.retry_at = None;
            });
            let gc_due = self.state.with(p.log_id, |s| {
                s.last_gc.is_none_or(|t| t.elapsed() >= Duration::from_millis(self.ctx.config.offload_gc_interval_ms))
            });
            if gc_due {
                match self.collect_orphan_objects(p).await {
                    Ok(n) if n > 0 => tracing::info!(topic = %p.name, deleted = n, "deleted orphan objects"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(topic = %p.name, error = %e, "orphan object collection failed"),
                }
                self.state.with(p.log_id, |s| s.last_gc = Some(Instant::now()));
            }
        }
        self.ctx.storage.set_upload_backlog(0);
        if self.state.sweep_due(Duration::from_millis(self.ctx.config.offload_gc_interval_ms)) {
            match self.collect_deleted_partition_objects().await {
                Ok(n) if n > 0 => tracing::info!(deleted = n, "deleted objects of deleted partitions"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "collecting objects of deleted partitions failed"),
            }
            match crate::durability::collect_log_objects(&self.ctx, self.ctx.config.offload_gc_grace_ms as i64).await {
                Ok(n) if n > 0 => tracing::info!(deleted = n, "deleted log objects no range references"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "collecting unreferenced log objects failed"),
            }
        }
        self.evict_for_budget().await;
    }

    /// Removes local copies of offloaded segments, least recently read first, while the local
    /// segment files exceed the local disk budget.
    async fn evict_for_budget(&self) {
        let storage = Arc::clone(&self.ctx.storage);
        match tokio::task::spawn_blocking(move || storage.evict_local_copies()).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::debug!(freed = n, "local copies evicted to stay within the local disk budget"),
            Ok(Err(e)) => tracing::warn!(error = %e, "evicting local copies failed"),
            Err(e) => tracing::warn!(error = %e, "local copy eviction task failed"),
        }
    }

    /// Drops the local copies of this partition's offloaded segments that the deletion lag no
    /// longer keeps.
    async fn drop_due_copies(&self, p: &Partition, policy: &OffloadPolicy) -> Result<()> {
        for base in plan(&p.log.segments(), policy, self.ctx.now_ms(), None).drop_local {
            let log = Arc::clone(&p.log);
            tokio::task::spawn_blocking(move || log.drop_local_copy(base)).await.map_err(BrokerError::internal)??;
        }
        Ok(())
    }

    fn note_failure(&self, p: &Partition, e: &BrokerError) {
        let (failures, delay) = self.state.with(p.log_id, |s| {
            s.failures = s.failures.saturating_add(1);
            let delay = backoff(s.failures, self.ctx.config.offload_max_backoff_ms);
            s.retry_at = Some(Instant::now() + delay);
            (s.failures, delay)
        });
        tracing::warn!(topic = %p.name, error = %e, failures, retry_in_ms = delay.as_millis() as u64, "offload failed");
    }

    /// Applies one plan to a partition; the caller holds its run lock. Local copies go as soon
    /// as their deletion lag allows, and the disk budget is enforced, after every upload: a pass
    /// that drains a backlog may take minutes, and its uploaded segments must not stay on the
    /// local disk until it ends.
    async fn offload_partition(&self, p: &Partition, policy: &OffloadPolicy, manual_before: Option<u64>) -> Result<()> {
        let tier = self.ctx.storage.tier().ok_or(BrokerError::NoObjectStore)?.clone();
        if manual_before.is_some() {
            // Records acknowledged before the request may still be on their way to their segment
            // (the acknowledgement precedes the segment write), and the segment they roll over
            // is sealed only then; segments rolled before may still be sealing (on the sealer
            // thread). A manual offload covers them all. (On a busy machine it left the last
            // segment rolled by the producer's records behind, sealed after the pass began.)
            p.log.settled().await;
            let log = Arc::clone(&p.log);
            tokio::task::spawn_blocking(move || log.wait_for_seals()).await.map_err(BrokerError::internal)??;
        }
        let plan = plan(&p.log.segments(), policy, self.ctx.now_ms(), manual_before);
        let prefix = prefix_of(&self.ctx.config.cluster, p);
        let retrying = self.state.with(p.log_id, |s| s.failures > 0);
        for (i, base) in plan.upload.iter().copied().enumerate() {
            let Some(info) = p.log.segments().into_iter().find(|s| s.base_offset == base && s.local && !s.offloaded)
            else {
                continue; // deleted by retention or offloaded meanwhile
            };
            if retrying && i == 0 {
                self.ctx.storage.metrics().offload_retries.inc();
            }
            let key = segment_key(&prefix, info.base_offset, info.end_offset);
            let remote = tier.upload(&p.log, base, &key).await?;
            let row = row_of(p.log_id, &remote);
            match self.ctx.metadata.commit_segment(p.epoch, &row).await {
                Ok(()) | Err(magnetar_metadata::MetadataError::AlreadyExists(_)) => {}
                Err(e) => {
                    self.ctx.note_fenced(&e);
                    return Err(e.into());
                }
            }
            p.log.mark_offloaded(remote);
            crate::durability::trim_log_objects(&self.ctx, p, info.end_offset).await;
            self.ctx.storage.note_uploaded(info.size_bytes);
            tracing::debug!(topic = %p.name, key, "segment offloaded");
            self.drop_due_copies(p, policy).await?;
            self.evict_for_budget().await;
        }
        self.drop_due_copies(p, policy).await
    }

    /// Makes the object store hold the whole partition (a handover to another broker): seals
    /// the active segment — which waits until every record appended before is durable — and
    /// uploads every sealed segment not uploaded yet, committing each under the partition's
    /// epoch. The caller has closed the log to appends.
    pub(crate) async fn upload_tail(&self, p: &Partition) -> Result<()> {
        let log = Arc::clone(&p.log);
        tokio::task::spawn_blocking(move || log.seal_active().and_then(|()| log.wait_for_seals()))
            .await
            .map_err(BrokerError::internal)??;
        let lock = self.state.run_lock(p.log_id);
        let _guard = lock.lock().await;
        let policy = self.offload_defaults();
        self.offload_partition(p, &policy, Some(u64::MAX)).await
    }

    /// Deletes objects under the partition's prefix that have no row in the segment index and
    /// are older than the grace period (uploads whose commit never happened). The caller holds
    /// the partition's run lock, so no upload of this broker is between upload and commit.
    pub async fn collect_orphan_objects(&self, p: &Partition) -> Result<usize> {
        let Some(tier) = self.ctx.storage.tier() else { return Ok(0) };
        let prefix = prefix_of(&self.ctx.config.cluster, p);
        let mut rows: HashSet<String> =
            self.ctx.metadata.list_segments(p.log_id).await?.into_iter().map(|r| r.object_key).collect();
        // The compacted view in force is referenced by its own row; a view without a row (a
        // compaction that crashed before its commit, or one replaced) goes like any orphan.
        if let Some(view) = self.ctx.metadata.get_compacted_view(p.log_id).await? {
            rows.insert(view.object_key);
        }
        let now = self.ctx.now_ms();
        let grace = self.ctx.config.offload_gc_grace_ms as i64;
        let orphans: Vec<String> = tier
            .list_objects(&prefix)
            .await?
            .into_iter()
            .filter(|o| !rows.contains(&o.key) && now.saturating_sub(o.last_modified_ms) >= grace)
            .map(|o| o.key)
            .collect();
        tier.delete_objects(&orphans).await?;
        Ok(orphans.len())
    }

    /// Deletes the objects of partitions just removed from the metadata store (with their
    /// topic, namespace or tenant; their index rows went with them). The key prefix of those
    /// that were loaded derives from their name; the others are found by listing the cluster's
    /// keys. Waits for a running offload pass of each to end first. What fails (store down)
    /// stays for [`Offloader::collect_deleted_partition_objects`]; returns the number of objects
    /// deleted.
    pub(crate) async fn delete_partition_objects(&self, removed: &[Removed]) -> usize {
        let cluster = self.ctx.config.cluster.clone();
        let prefixes: HashMap<i64, String> = removed
            .iter()
            .filter_map(|r| {
                let name = r.name.as_ref()?;
                Some((r.record.log_id, partition_prefix(&cluster, name, r.record.index, r.record.log_id)))
            })
            .collect();
        let removed: Vec<i64> = removed.iter().map(|r| r.record.log_id).collect();
        for &log_id in &removed {
            let lock = self.state.run_lock(log_id);
            drop(lock.lock().await);
            self.state.forget(log_id);
        }
        let Some(tier) = self.ctx.storage.tier() else { return 0 };
        let res: Result<usize> = async {
            let mut keys = Vec::new();
            for prefix in removed.iter().filter_map(|id| prefixes.get(id)) {
                keys.extend(tier.list_objects(prefix).await?.into_iter().map(|o| o.key));
            }
            let unknown: HashSet<i64> = removed.iter().filter(|id| !prefixes.contains_key(id)).copied().collect();
            if !unknown.is_empty() {
                let cluster = &self.ctx.config.cluster;
                keys.extend(
                    tier.list_objects(cluster)
                        .await?
                        .into_iter()
                        .filter(|o| key_log_id(cluster, &o.key).is_some_and(|id| unknown.contains(&id)))
                        .map(|o| o.key),
                );
            }
            tier.delete_objects(&keys).await?;
            Ok(keys.len())
        }
        .await;
        match res {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "deleting objects of deleted partitions failed; the sweep retries");
                0
            }
        }
    }

    /// Deletes every object of the cluster whose partition no longer exists in the metadata
    /// store: a topic, namespace or tenant deleted while the object store was down, or an
    /// upload that completed after its partition was deleted. Lists all the cluster's keys, so
    /// it runs every `offload_gc_interval_ms` only. Returns the number of objects deleted.
    pub async fn collect_deleted_partition_objects(&self) -> Result<usize> {
        let Some(tier) = self.ctx.storage.tier() else { return Ok(0) };
        let cluster = &self.ctx.config.cluster;
        let loaded: HashSet<i64> = self.registry.loaded_partitions().iter().map(|p| p.log_id).collect();
        let mut by_log: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for o in tier.list_objects(cluster).await? {
            if let Some(id) = key_log_id(cluster, &o.key).filter(|id| !loaded.contains(id)) {
                by_log.entry(id).or_default().push(o.key);
            }
        }
        let mut deleted = 0;
        for (log_id, keys) in by_log {
            match self.ctx.metadata.get_partition_owner(log_id).await {
                Err(magnetar_metadata::MetadataError::NotFound(_)) => {
                    tier.delete_objects(&keys).await?;
                    deleted += keys.len();
                }
                Ok(_) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(deleted)
    }

    /// `PUT .../offload`: offloads every sealed segment based before `id`, in the background.
    pub async fn trigger(self: &Arc<Self>, name: &TopicName, id: &MessageId) -> Result<()> {
        let p = self.registry.single_partition(name, "offload").await?;
        if self.ctx.storage.tier().is_none() {
            return Err(BrokerError::NoObjectStore);
        }
        let before = u64::try_from(id.ledger_id)
            .map_err(|_| BrokerError::InvalidArgument(format!("invalid message id {}", id.to_text())))?;
        let running = self.state.with(p.log_id, |s| {
            if matches!(s.manual, Some((OffloadRun::Running, _))) {
                return true;
            }
            s.manual = Some((OffloadRun::Running, String::new()));
            false
        });
        if running {
            return Err(BrokerError::OffloadRunning(name.clone()));
        }
        let mut policy = self.effective_offload(&p).await.unwrap_or_else(|_| self.offload_defaults());
        // Only what was asked for, whatever the automatic thresholds say.
        policy.threshold_bytes = -1;
        policy.threshold_seconds = -1;
        let this = Arc::clone(self);
        self.ctx.spawn(async move {
            let lock = this.state.run_lock(p.log_id);
            let _guard = lock.lock().await;
            let res = this.offload_partition(&p, &policy, Some(before)).await;
            this.state.with(p.log_id, |s| {
                s.manual = Some(match &res {
                    Ok(()) => (OffloadRun::Success, String::new()),
                    Err(e) => (OffloadRun::Error, e.to_string()),
                })
            });
        });
        Ok(())
    }

    /// `GET .../offload`.
    pub async fn status(&self, name: &TopicName) -> Result<OffloadStatus> {
        let p = self.registry.single_partition(name, "offload").await?;
        let (status, last_error) =
            self.state.with(p.log_id, |s| s.manual.clone()).unwrap_or((OffloadRun::NotRun, String::new()));
        let first = p.log.segments().into_iter().find(|s| !s.offloaded).map_or(p.log.end_offset(), |s| s.base_offset);
        Ok(OffloadStatus { status, last_error, first_unoffloaded_message: crate::stats::message_id_at(&p, first) })
    }

    /// Retention of offloaded segments: index rows first (nothing may point at a deleted
    /// object), then local files, then objects. Holds the partition's run lock so no upload
    /// commits a segment retention is deleting.
    pub(crate) async fn delete_segments_all_tiers(&self, p: &Partition, before: u64) -> Result<u64> {
        let lock = self.state.run_lock(p.log_id);
        let _guard = lock.lock().await;
        let offloaded: Vec<i64> = p
            .log
            .segments()
            .iter()
            .filter(|s| s.offloaded && s.end_offset <= before)
            .map(|s| s.base_offset as i64)
            .collect();
        if !offloaded.is_empty() {
            self.ctx.metadata.delete_segments(p.log_id, p.epoch, &offloaded).await?;
        }
        let log = Arc::clone(&p.log);
        let deleted = tokio::task::spawn_blocking(move || log.delete_segments_before(before))
            .await
            .map_err(BrokerError::internal)??;
        if let Some(tier) = self.ctx.storage.tier() {
            let keys: Vec<String> = deleted.remote.iter().map(|r| r.key.clone()).collect();
            if let Err(e) = tier.delete_objects(&keys).await {
                // Their rows are gone: the orphan collection deletes them later.
                tracing::warn!(topic = %p.name, error = %e, "deleting offloaded objects failed");
            }
        }
        Ok(deleted.freed_local + deleted.remote.iter().map(|r| r.size_bytes).sum::<u64>())
    }
}

/// The segment index row of an uploaded segment, and back (at load).
fn row_of(log_id: i64, remote: &RemoteSegment) -> SegmentRecord {
    SegmentRecord {
        log_id,
        base_offset: remote.base_offset as i64,
        end_offset: remote.end_offset as i64,
        size_bytes: remote.size_bytes as i64,
        min_publish_time: remote.first_publish_time,
        max_publish_time: remote.last_publish_time,
        object_key: remote.key.clone(),
        created_at: remote.uploaded_at_ms,
    }
}

pub(crate) fn remote_of(r: SegmentRecord) -> RemoteSegment {
    RemoteSegment {
        key: r.object_key,
        base_offset: r.base_offset as u64,
        end_offset: r.end_offset as u64,
        size_bytes: r.size_bytes as u64,
        first_publish_time: r.min_publish_time,
        last_publish_time: r.max_publish_time,
        uploaded_at_ms: r.created_at,
    }
}

/// 1 s, 2 s, 4 s, ... capped.
fn backoff(failures: u32, max_ms: u64) -> Duration {
    let ms = 1000u64.saturating_mul(1 << failures.saturating_sub(1).min(16));
    Duration::from_millis(ms.min(max_ms.max(100)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(base: u64, end: u64, size: u64, sealed: bool, offloaded_at: Option<i64>) -> SegmentInfo {
        SegmentInfo {
            base_offset: base,
            end_offset: end,
            size_bytes: size,
            first_publish_time: 0,
            last_publish_time: base as i64,
            created_at_ms: 0,
            sealed,
            local: true,
            offloaded: offloaded_at.is_some(),
            offloaded_at_ms: offloaded_at.unwrap_or(0),
        }
    }

    const OFF: OffloadPolicy = OffloadPolicy { threshold_bytes: -1, threshold_seconds: -1, deletion_lag_ms: -1 };

    #[test]
    fn threshold_zero_offloads_every_sealed_segment_never_the_active_one() {
        let segs = [seg(0, 10, 100, true, None), seg(10, 20, 100, true, None), seg(20, 25, 50, false, None)];
        let p = plan(&segs, &OffloadPolicy { threshold_bytes: 0, ..OFF }, 0, None);
        assert_eq!(p.upload, vec![0, 10]);
    }

    #[test]
    fn size_threshold_offloads_the_oldest_until_under_it() {
        let segs = [seg(0, 10, 100, true, None), seg(10, 20, 100, true, None), seg(20, 25, 50, false, None)];
        // 150 bytes may stay local: active (50) + newest sealed (100); the oldest goes.
        assert_eq!(plan(&segs, &OffloadPolicy { threshold_bytes: 150, ..OFF }, 0, None).upload, vec![0]);
        assert!(plan(&segs, &OffloadPolicy { threshold_bytes: 1000, ..OFF }, 0, None).upload.is_empty());
        assert!(plan(&segs, &OFF, 0, None).upload.is_empty(), "-1 disables");
    }

    #[test]
    fn time_threshold_and_manual_requests() {
        let segs = [seg(0, 10, 100, true, None), seg(10, 20, 100, true, None), seg(20, 25, 50, false, None)];
        // Newest message of segment 0 at t=0, of segment 10 at t=10 ms.
        assert_eq!(plan(&segs, &OffloadPolicy { threshold_seconds: 1, ..OFF }, 1005, None).upload, vec![0]);
        assert_eq!(plan(&segs, &OFF, 0, Some(10)).upload, vec![0]);
        assert_eq!(plan(&segs, &OFF, 0, Some(u64::MAX)).upload, vec![0, 10]);
    }

    #[test]
    fn local_copies_go_after_the_deletion_lag() {
        let segs =
            [seg(0, 10, 100, true, Some(1_000)), seg(10, 20, 100, true, Some(5_000)), seg(20, 25, 50, false, None)];
        let p = plan(&segs, &OffloadPolicy { deletion_lag_ms: 2_000, ..OFF }, 4_000, None);
        assert_eq!(p.drop_local, vec![0]);
        assert!(plan(&segs, &OFF, 1 << 40, None).drop_local.is_empty(), "-1 keeps local copies");
    }

    #[test]
    fn namespace_policies_override_broker_defaults() {
        let defaults = OffloadPolicy { threshold_bytes: 0, threshold_seconds: -1, deletion_lag_ms: 600_000 };
        let mut p = Policies::default();
        assert_eq!(effective_policy(&p, &defaults), defaults);
        p.offload_deletion_lag_ms = Some(5);
        p.offload_policies = Some(serde_json::json!({"managedLedgerOffloadThresholdInBytes": -1}));
        let e = effective_policy(&p, &defaults);
        assert_eq!((e.threshold_bytes, e.deletion_lag_ms), (-1, 5));
    }

    #[test]
    fn log_id_is_read_only_from_segment_keys_of_the_cluster() {
        assert_eq!(key_log_id("c1", "c1/t/ns/topic/-1/42/00000000000000000000-00000000000000000010.seg"), Some(42));
        assert_eq!(key_log_id("c1", "c10/t/ns/topic/-1/42/0-1.seg"), None, "another cluster");
        assert_eq!(key_log_id("c1", "c1/t/ns/topic/-1/42/notes.txt"), None, "not a segment");
        assert_eq!(key_log_id("c1", "c1/t/ns/topic/-1/42/compacted-00000000000000000010.cv"), Some(42), "a view");
        assert_eq!(key_log_id("c1", "c1/t/ns/-1/42/0-1.seg"), None, "not the documented layout");
        assert_eq!(key_log_id("c1", "c1/t/ns/topic/-1/x/0-1.seg"), None);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff(1, 30_000), Duration::from_secs(1));
        assert_eq!(backoff(3, 30_000), Duration::from_secs(4));
        assert_eq!(backoff(30, 30_000), Duration::from_secs(30));
    }
}
