//! Topic compaction, as Pulsar has it: for each partition, a compacted view holding the latest
//! message of every key below a horizon (see [`view`] for the rules), stored as one object in
//! the object tier next to the partition's segments and recorded in the metadata store
//! (`compacted_views`). Consumers and readers that ask for `readCompacted` read the view below
//! the horizon, then the live log.
//!
//! A run (manual: `PUT .../compaction`; automatic: [`due`] once more than the policy's
//! `compactionThreshold` bytes are stored after the horizon) folds the messages after the
//! previous horizon into the previous view, uploads the new view under a new key, commits its
//! row (atomically replacing the previous one, conditional on the partition's epoch and on the
//! previous horizon), and only then deletes the previous object. A crash before the commit
//! leaves an object without a row, which the offloader's orphan collection deletes after its
//! grace period; a crash after it leaves the previous object, deleted the same way. The view is
//! independent of the segments: retention deleting them does not touch it. Deleting the topic
//! deletes it with the partition's other objects.
//!
//! Object key: `{partition prefix}/compacted-{horizon:020}.cv` (the partition prefix of
//! `controllers::offload`).

pub mod view;

use crate::context::Context;
use crate::partition::Partition;
use crate::registry::TopicRegistry;
use crate::{BrokerError, Result, Service};
use magnetar_core::TopicName;
use magnetar_metadata::{CompactedViewRecord, MetadataError};
use magnetar_storage::SegmentInfo;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;
pub use view::{CompactedView, Compaction};

/// Records read from the log per batch while compacting.
const READ_BATCH: usize = 1_000;
const READ_BATCH_BYTES: usize = 8 << 20;

/// Pulsar's `LongRunningProcessStatus` of `GET .../compaction`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompactionStatus {
    pub status: CompactionRun,
    /// Why the last compaction failed (empty unless `status` is `ERROR`).
    pub last_error: String,
}

/// State of the last compaction of a partition (manual or automatic) since it was loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CompactionRun {
    NotRun,
    Running,
    Success,
    Error,
}

/// Pulsar's `CompactionStats` of topic stats (`compaction`), of the partition's last runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompactionStats {
    pub last_compaction_removed_event_count: u64,
    /// Epoch ms; 0 before the first success.
    pub last_compaction_succeed_timestamp: i64,
    /// Epoch ms; 0 before the first failure.
    pub last_compaction_failed_timestamp: i64,
    pub last_compaction_duration_time_in_mills: u64,
}

impl CompactionStats {
    /// Two partitions' stats as one topic's: the latest of each time, removed counts summed,
    /// the longest duration.
    pub fn merge(&mut self, o: &CompactionStats) {
        self.last_compaction_removed_event_count += o.last_compaction_removed_event_count;
        self.last_compaction_succeed_timestamp =
            self.last_compaction_succeed_timestamp.max(o.last_compaction_succeed_timestamp);
        self.last_compaction_failed_timestamp =
            self.last_compaction_failed_timestamp.max(o.last_compaction_failed_timestamp);
        self.last_compaction_duration_time_in_mills =
            self.last_compaction_duration_time_in_mills.max(o.last_compaction_duration_time_in_mills);
    }
}

/// Counters of a partition's compactions since it was loaded (metrics).
#[derive(Debug, Clone, Copy, Default)]
pub struct CompactionTotals {
    pub succeeded: u64,
    pub failed: u64,
    pub removed_events: u64,
    /// Messages and payload bytes of the view in force.
    pub compacted_entries: u64,
    pub compacted_bytes: u64,
    /// Duration of the last run.
    pub duration_ms: u64,
}

#[derive(Debug)]
struct RunState {
    status: CompactionRun,
    last_error: String,
    stats: CompactionStats,
    totals: CompactionTotals,
    /// The committed horizon as last read or written (`Some(None)`: known to have no view).
    committed: Option<Option<CompactedViewRecord>>,
}

/// A partition's compaction state: its view (loaded on first use), its last run, the lock that
/// serializes runs.
pub struct PartitionCompaction {
    view: RwLock<Option<Arc<CompactedView>>>,
    loaded: AtomicBool,
    state: Mutex<RunState>,
    run: tokio::sync::Mutex<()>,
}

impl Default for PartitionCompaction {
    fn default() -> Self {
        PartitionCompaction {
            view: RwLock::new(None),
            loaded: AtomicBool::new(false),
            state: Mutex::new(RunState {
                status: CompactionRun::NotRun,
                last_error: String::new(),
                stats: CompactionStats::default(),
                totals: CompactionTotals::default(),
                committed: None,
            }),
            run: tokio::sync::Mutex::new(()),
        }
    }
}

impl PartitionCompaction {
    /// The view compacted readers see (none before the first compaction, or not loaded yet).
    pub fn view(&self) -> Option<Arc<CompactedView>> {
        self.view.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_view(&self, v: Option<Arc<CompactedView>>) {
        *self.view.write().unwrap_or_else(|e| e.into_inner()) = v;
        self.loaded.store(true, Ordering::Release);
    }

    fn with<T>(&self, f: impl FnOnce(&mut RunState) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn status(&self) -> CompactionStatus {
        self.with(|s| CompactionStatus { status: s.status, last_error: s.last_error.clone() })
    }

    pub fn stats(&self) -> CompactionStats {
        self.with(|s| s.stats)
    }

    pub fn totals(&self) -> CompactionTotals {
        self.with(|s| s.totals)
    }

    /// Marks a run as started; false when one is running already.
    fn start(&self) -> bool {
        self.with(|s| {
            if s.status == CompactionRun::Running {
                return false;
            }
            s.status = CompactionRun::Running;
            s.last_error.clear();
            true
        })
    }
}

/// Bytes stored at or after `horizon`, estimated from segment sizes (as Pulsar estimates the
/// backlog of its compaction cursor from ledger sizes).
pub fn bytes_after(segments: &[SegmentInfo], horizon: u64) -> u64 {
    segments
        .iter()
        .filter(|s| s.end_offset > horizon && s.end_offset > s.base_offset)
        .map(|s| {
            let entries = s.end_offset - s.base_offset;
            s.size_bytes * (s.end_offset - horizon.max(s.base_offset)) / entries
        })
        .sum()
}

/// Whether the automatic compaction of a partition is due: a threshold is set (more than 0)
/// and more bytes than it are stored after the horizon.
pub fn due(threshold: i64, stored_after_horizon: u64) -> bool {
    threshold > 0 && stored_after_horizon > threshold as u64
}

/// The object key of a view.
pub fn view_key(partition_prefix: &str, horizon: u64) -> String {
    format!("{partition_prefix}/compacted-{horizon:020}.cv")
}

/// The committed view's row, read once per load of the partition then kept up to date.
async fn committed(ctx: &Context, p: &Partition) -> Result<Option<CompactedViewRecord>> {
    if let Some(known) = p.compaction.with(|s| s.committed.clone()) {
        return Ok(known);
    }
    let row = ctx.metadata.get_compacted_view(p.log_id).await?;
    p.compaction.with(|s| s.committed = Some(row.clone()));
    Ok(row)
}

/// The partition's view, loaded from the object store on first use; `None` before its first
/// compaction.
pub(crate) async fn load_view(ctx: &Context, p: &Partition) -> Result<Option<Arc<CompactedView>>> {
    if p.compaction.loaded.load(Ordering::Acquire) {
        return Ok(p.compaction.view());
    }
    let Some(row) = committed(ctx, p).await? else {
        p.compaction.set_view(None);
        return Ok(None);
    };
    let tier = ctx.storage.tier().ok_or(BrokerError::NoObjectStore)?;
    let data = tier.get_object(&row.object_key).await?;
    let view = tokio::task::spawn_blocking(move || CompactedView::decode(data))
        .await
        .map_err(BrokerError::internal)?
        .map_err(|e| BrokerError::Internal(format!("compacted view {} of {}: {e}", row.object_key, p.name)))?;
    let view = Arc::new(view);
    // A compaction may have committed a newer view meanwhile: it wins.
    if !p.compaction.loaded.load(Ordering::Acquire) {
        p.compaction.set_view(Some(Arc::clone(&view)));
    }
    Ok(p.compaction.view())
}

/// Runs compactions: manual ones on request, automatic ones from the monitor loop.
pub struct Compactor {
    ctx: Arc<Context>,
    registry: Arc<TopicRegistry>,
}

impl Compactor {
    pub(crate) fn new(ctx: Arc<Context>, registry: Arc<TopicRegistry>) -> Self {
        Compactor { ctx, registry }
    }

    /// `PUT .../compaction`: compacts the topic in the background; on a partitioned topic every
    /// partition (as Pulsar does). `CompactionRunning` when one is running on any of them.
    pub async fn trigger(self: &Arc<Self>, name: &TopicName) -> Result<()> {
        let (_, parts) = self.registry.partitions_of(name).await?;
        if self.ctx.storage.tier().is_none() {
            return Err(BrokerError::NoObjectStore);
        }
        // Partitions are compacted independently, as Pulsar triggers each: those not running
        // start, and the answer is 409 if any was running already.
        let mut running = false;
        for p in parts {
            if p.compaction.start() {
                self.spawn_run(p);
            } else {
                running = true;
            }
        }
        if running {
            return Err(BrokerError::CompactionRunning(name.clone()));
        }
        Ok(())
    }

    /// `GET .../compaction` of a non-partitioned topic or one partition.
    pub async fn status(&self, name: &TopicName) -> Result<CompactionStatus> {
        let p = self.registry.single_partition(name, "compaction status").await?;
        Ok(p.compaction.status())
    }

    fn spawn_run(self: &Arc<Self>, p: Arc<Partition>) {
        let this = Arc::clone(self);
        self.ctx.spawn(async move {
            this.run_partition(&p).await;
        });
    }

    /// One pass of the monitor: starts the compaction of every loaded partition whose
    /// threshold is exceeded (Pulsar's `checkCompaction`).
    pub async fn run_once(self: &Arc<Self>) {
        if self.ctx.storage.tier().is_none() {
            return;
        }
        for topic in self.registry.loaded_topics() {
            let threshold = match crate::policies::current(&self.ctx, &topic).await {
                Ok(e) => e.compaction_threshold.value,
                Err(e) => {
                    tracing::debug!(topic = %topic.name(), error = %e, "skipping the compaction check");
                    continue;
                }
            };
            if threshold <= 0 {
                continue;
            }
            for p in &topic.partitions {
                let horizon = match committed(&self.ctx, p).await {
                    Ok(r) => r.map_or(0, |r| r.horizon as u64),
                    Err(e) => {
                        tracing::debug!(topic = %p.name, error = %e, "skipping the compaction check");
                        continue;
                    }
                };
                if due(threshold, bytes_after(&p.log.segments(), horizon)) && p.compaction.start() {
                    tracing::info!(topic = %p.name, threshold, "compaction threshold exceeded: compacting");
                    self.spawn_run(Arc::clone(p));
                }
            }
        }
    }

    /// Runs one compaction of a partition already marked running, and records its outcome.
    async fn run_partition(&self, p: &Arc<Partition>) {
        let _guard = p.compaction.run.lock().await;
        let started = Instant::now();
        let res = self.compact(p).await;
        let elapsed = started.elapsed();
        let now = self.ctx.now_ms();
        p.compaction.with(|s| match &res {
            Ok(outcome) => {
                s.status = CompactionRun::Success;
                s.totals.duration_ms = elapsed.as_millis() as u64;
                s.stats.last_compaction_removed_event_count = outcome.removed;
                s.stats.last_compaction_succeed_timestamp = now;
                s.stats.last_compaction_duration_time_in_mills = elapsed.as_millis() as u64;
                s.totals.succeeded += 1;
                s.totals.removed_events += outcome.removed;
                s.totals.compacted_entries = outcome.entries;
                s.totals.compacted_bytes = outcome.bytes;
            }
            Err(e) => {
                s.status = CompactionRun::Error;
                s.totals.duration_ms = elapsed.as_millis() as u64;
                s.last_error = e.to_string();
                s.stats.last_compaction_failed_timestamp = now;
                s.stats.last_compaction_duration_time_in_mills = elapsed.as_millis() as u64;
                s.totals.failed += 1;
            }
        });
        match res {
            Ok(o) => {
                tracing::info!(topic = %p.name, removed = o.removed, kept = o.entries, ms = elapsed.as_millis() as u64, "compacted");
            }
            Err(e) => {
                tracing::warn!(topic = %p.name, error = %e, "compaction failed");
            }
        }
    }

    async fn compact(&self, p: &Arc<Partition>) -> Result<Outcome> {
        let tier = self.ctx.storage.tier().ok_or(BrokerError::NoObjectStore)?.clone();
        // The row in force now: another broker may have compacted while this one did not own
        // the partition, so it is read again rather than trusted from the cache.
        let row = self.ctx.metadata.get_compacted_view(p.log_id).await?;
        p.compaction.with(|s| s.committed = Some(row.clone()));
        let cached = p.compaction.view().filter(|v| row.as_ref().is_some_and(|r| r.horizon as u64 == v.horizon()));
        let previous = match (&row, cached) {
            (None, _) => Arc::new(CompactedView::default()),
            (Some(_), Some(v)) => v,
            (Some(r), None) => {
                let data = tier.get_object(&r.object_key).await?;
                let view = tokio::task::spawn_blocking(move || CompactedView::decode(data))
                    .await
                    .map_err(BrokerError::internal)?
                    .map_err(|e| {
                        BrokerError::Internal(format!("compacted view {} of {}: {e}", r.object_key, p.name))
                    })?;
                Arc::new(view)
            }
        };
        // Messages accepted up to now; what comes later is for the next run.
        let horizon = p.log.end_offset();
        if horizon <= previous.horizon() {
            p.compaction.set_view(row.as_ref().map(|_| Arc::clone(&previous)));
            return Ok(Outcome { removed: 0, entries: previous.len() as u64, bytes: previous.payload_bytes() });
        }
        let retain_null_key = self.ctx.config.compaction_retain_null_key;
        let log = Arc::clone(&p.log);
        let prev = Arc::clone(&previous);
        let (view, removed, encoded) = tokio::task::spawn_blocking(move || -> magnetar_storage::Result<_> {
            let mut c = Compaction::new(&prev, retain_null_key);
            // Messages deleted by retention before they were compacted are gone: start at the log.
            let mut pos = prev.horizon().max(log.start_offset());
            while pos < horizon {
                let batch = log.read(pos, READ_BATCH, READ_BATCH_BYTES)?;
                let Some(last) = batch.last().map(|r| r.offset) else { break };
                for r in batch.into_iter().filter(|r| r.offset < horizon) {
                    c.push(r);
                }
                pos = last + 1;
            }
            let (view, removed) = c.finish(horizon);
            let encoded = view.encode();
            Ok((view, removed, encoded))
        })
        .await
        .map_err(BrokerError::internal)??;
        let prefix =
            crate::controllers::offload::partition_prefix(&self.ctx.config.cluster, &p.name, p.index, p.log_id);
        let key = view_key(&prefix, view.horizon());
        let size = encoded.len() as i64;
        tier.put_object(&key, encoded).await?;
        let record = CompactedViewRecord {
            log_id: p.log_id,
            horizon: view.horizon() as i64,
            object_key: key.clone(),
            messages: view.len() as i64,
            size_bytes: size,
            created_at: self.ctx.now_ms(),
        };
        let replaced =
            match self.ctx.metadata.commit_compacted_view(p.epoch, &record, row.as_ref().map(|r| r.horizon)).await {
                Ok(replaced) => replaced,
                Err(e) => {
                    // Not deleted here: a commit whose answer was lost may have happened. Without
                    // a row the object is an orphan, which the orphan collection deletes.
                    p.compaction.with(|s| s.committed = None);
                    return Err(match e {
                        MetadataError::Conflict(_) => BrokerError::Unavailable {
                            service: Service::Metadata,
                            detail: Some(format!("another compaction of {} committed meanwhile", p.name)),
                            cause: e.to_string(),
                        },
                        other => other.into(),
                    });
                }
            };
        let (entries, bytes) = (view.len() as u64, view.payload_bytes());
        p.compaction.set_view(Some(Arc::new(view)));
        p.compaction.with(|s| s.committed = Some(Some(record)));
        // Compacted readers waiting at the old horizon may go on.
        for s in p.all_subscriptions() {
            s.bump();
        }
        if let Some(old) = replaced.filter(|old| old.object_key != key)
            && let Err(e) = tier.delete_objects(&[old.object_key]).await
        {
            // Its row is gone: the orphan collection deletes it later.
            tracing::warn!(topic = %p.name, error = %e, "deleting the previous compacted view failed");
        }
        Ok(Outcome { removed, entries, bytes })
    }
}

struct Outcome {
    removed: u64,
    entries: u64,
    bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(base: u64, end: u64, size: u64) -> SegmentInfo {
        SegmentInfo {
            base_offset: base,
            end_offset: end,
            size_bytes: size,
            first_publish_time: 0,
            last_publish_time: 0,
            created_at_ms: 0,
            sealed: true,
            local: true,
            offloaded: false,
            offloaded_at_ms: 0,
        }
    }

    #[test]
    fn automatic_compaction_is_due_past_the_threshold_only() {
        let segs = [seg(0, 10, 1000), seg(10, 20, 1000)];
        assert_eq!(bytes_after(&segs, 0), 2000);
        assert_eq!(bytes_after(&segs, 15), 500);
        assert_eq!(bytes_after(&segs, 20), 0);
        assert!(due(1500, bytes_after(&segs, 0)));
        assert!(!due(1500, bytes_after(&segs, 10)), "1000 bytes after the horizon");
        assert!(!due(0, u64::MAX), "0 turns it off");
        assert!(!due(-1, u64::MAX));
    }

    #[test]
    fn a_second_start_is_refused_while_running() {
        let c = PartitionCompaction::default();
        assert_eq!(c.status().status, CompactionRun::NotRun);
        assert!(c.start());
        assert!(!c.start(), "already in progress");
        c.with(|s| s.status = CompactionRun::Success);
        assert!(c.start());
    }

    #[test]
    fn view_keys_sort_by_horizon() {
        assert_eq!(view_key("c/t/ns/x/-1/7", 42), "c/t/ns/x/-1/7/compacted-00000000000000000042.cv");
    }
}
