//! Durability modes in the broker (docs/durability.md): the namespace policy and how it takes
//! effect, the committer of log objects (the metadata store's index, each range under its
//! partition's epoch), and what a broker does when it loads a partition with object-store
//! durability: recover the committed records its copy lacks, and commit the records its copy
//! has that the bucket lacks, before the first append.

use crate::context::Context;
use crate::{Broker, BrokerError, Result};
use magnetar_core::{DurabilityMode, DurabilityPolicy, NamespaceName, ReplicationQuorum};
use magnetar_metadata::{LogObjectRange, MetadataError, MetadataStore, ReplicaSet};
use magnetar_storage::{LogObjectCommitter, ObjectLog, ObjectLogConfig, ObjectRange, PartitionLog, StorageError};
use std::sync::Arc;

/// A log object's records, per log, as `decode_log_object` returns them.
use crate::recovered_objects::DecodedObject;

/// Most records re-appended in one request while recovering (one WAL frame each).
const RECOVERY_CHUNK: usize = 1024;

/// Commits log objects in the metadata store.
struct MetadataCommitter {
    metadata: Arc<dyn MetadataStore>,
    clock: magnetar_core::SharedClock,
    fenced: prometheus::IntCounter,
}

#[async_trait::async_trait]
impl LogObjectCommitter for MetadataCommitter {
    async fn commit(
        &self,
        objects: &[(String, Vec<ObjectRange>)],
    ) -> magnetar_storage::Result<Vec<Vec<(u64, String)>>> {
        let rows: Vec<(String, Vec<LogObjectRange>)> = objects
            .iter()
            .map(|(key, ranges)| {
                let rows = ranges
                    .iter()
                    .map(|r| LogObjectRange {
                        log_id: r.log_id as i64,
                        start_offset: r.start as i64,
                        end_offset: r.end as i64,
                        epoch: r.epoch,
                    })
                    .collect();
                (key.clone(), rows)
            })
            .collect();
        let answers = self.metadata.commit_log_objects(self.clock.now_millis(), &rows).await.map_err(|e| {
            let first = objects.first().map_or("", |(key, _)| key.as_str());
            StorageError::Unavailable(format!(
                "log objects from {first} ({} objects) not committed: {e}",
                objects.len()
            ))
        })?;
        Ok(answers
            .into_iter()
            .map(|refused| {
                for (_, e) in &refused {
                    if matches!(e, MetadataError::Fenced { .. }) {
                        self.fenced.inc();
                    }
                }
                refused.into_iter().map(|(id, e)| (id as u64, e.to_string())).collect()
            })
            .collect())
    }
}

/// Starts the object-store durability writer of this broker process, when it has an object
/// store: its objects go under `{cluster}/wal-objects/{broker}/{session}`.
pub(crate) fn attach_object_log(ctx: &Context) {
    let Some(tier) = ctx.storage.tier() else { return };
    let session = &ctx.membership.registration().session_id;
    let config = ObjectLogConfig {
        prefix: object_prefix(&ctx.config.cluster, &ctx.broker_id, session),
        window: std::time::Duration::from_millis(ctx.config.durability.object_store_window_ms),
        max_object_bytes: ctx.config.durability.object_store_max_object_bytes,
        max_backlog_bytes: ctx.config.durability.object_store_max_backlog_bytes,
        // PUTs side by side (their ranges still commit in order): a slow PUT no longer holds the
        // next window's object back.
        max_in_flight: OBJECTS_IN_FLIGHT,
    };
    let committer = MetadataCommitter {
        metadata: Arc::clone(&ctx.metadata),
        clock: ctx.clock.clone(),
        fenced: ctx.metrics.tier.fenced_writes.clone(),
    };
    ctx.storage.attach_object_log(ObjectLog::start(Arc::clone(tier), Arc::new(committer), config));
}

/// Log objects a broker PUTs at once.
const OBJECTS_IN_FLIGHT: usize = 4;

/// Under the cluster's prefix, where the log objects of its broker processes go.
const OBJECT_ROOT: &str = "wal-objects";

/// The key prefix of one broker process's log objects: `{cluster}/wal-objects/{broker}/{session}`
/// (under the cluster, like its segments, so clusters sharing a bucket never collect each
/// other's objects).
fn object_prefix(cluster: &str, broker_id: &str, session: &str) -> String {
    let broker: String =
        broker_id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' }).collect();
    format!("{cluster}/{OBJECT_ROOT}/{broker}/{session}")
}

/// The prefix and sequence number of a log object key of `cluster`; `None` for any other key
/// (a segment of a tenant named like the root has more parts): only keys of this exact layout
/// are ever collected.
fn parse_object_key<'k>(cluster: &str, key: &'k str) -> Option<(&'k str, u64)> {
    let rest = key.strip_prefix(cluster)?.strip_prefix('/')?.strip_prefix(OBJECT_ROOT)?.strip_prefix('/')?;
    let parts: Vec<&str> = rest.split('/').collect();
    let [_broker, _session, seq] = parts.as_slice() else { return None };
    if seq.len() != 20 || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((&key[..key.len() - seq.len() - 1], seq.parse().ok()?))
}

/// Deletes the log objects no committed range references any more: those of deleted partitions
/// (their ranges went with them) and those a broker PUT but died before committing. Only where
/// no commit of them can still come: this process's objects up to its writer's last commit,
/// and objects of sessions no longer live, once older than `grace_ms`. Other live brokers
/// collect their own. Returns the number of objects deleted.
pub(crate) async fn collect_log_objects(ctx: &Context, grace_ms: i64) -> Result<usize> {
    let Some(tier) = ctx.storage.tier() else { return Ok(0) };
    let cluster = &ctx.config.cluster;
    let live: std::collections::HashSet<String> = ctx
        .membership
        .brokers()
        .await?
        .into_iter()
        .filter(|b| b.alive)
        .map(|b| object_prefix(cluster, &b.registration.broker_id, &b.registration.session_id))
        .collect();
    let own = ctx.storage.object_log().map(|w| (w.config().prefix.clone(), w.committed_through()));
    let now = ctx.now_ms();
    let mut settled = Vec::new();
    for o in tier.list_objects(&format!("{cluster}/{OBJECT_ROOT}/")).await? {
        let Some((prefix, seq)) = parse_object_key(cluster, &o.key) else { continue };
        let done = match &own {
            Some((mine, through)) if prefix == mine => seq <= *through,
            _ => !live.contains(prefix) && now.saturating_sub(o.last_modified_ms) >= grace_ms,
        };
        if done {
            settled.push(o.key);
        }
    }
    let referenced: std::collections::HashSet<String> =
        ctx.metadata.referenced_log_objects(&settled).await?.into_iter().collect();
    let garbage: Vec<String> = settled.into_iter().filter(|k| !referenced.contains(k)).collect();
    tier.delete_objects(&garbage).await?;
    Ok(garbage.len())
}

/// Broker settings of durability (`[broker.durability]`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DurabilityConfig {
    /// Object-store durability: how long records are gathered into one object (the ack waits
    /// for it; PUTs per second are bounded by it whatever the number of partitions).
    pub object_store_window_ms: u64,
    /// An object is written at once when it reaches this size.
    pub object_store_max_object_bytes: usize,
    /// Appends are refused while this many bytes wait for the object store (or, with
    /// replicated durability, for their ack quorum).
    pub object_store_max_backlog_bytes: usize,
    /// Replicated durability: how long one batch sent to a peer may take before that peer
    /// counts as failed for it.
    pub replication_timeout_ms: u64,
    /// Replicated durability: batches go to each peer over one long-lived, pipelined stream
    /// (an HTTP/1.1 upgrade). `false`: one HTTP request per batch, slower, for networks whose
    /// proxies pass no custom upgrade (a service mesh's sidecar, say).
    pub replication_stream: bool,
    /// Replicated durability, on a peer: copies of a partition whose recorded replica set has
    /// stopped naming this broker (it was replaced while away) are deleted once that stayed so,
    /// with no frame of the partition coming in, for this long.
    pub replica_unrecorded_retention_ms: u64,
}

impl Default for DurabilityConfig {
    fn default() -> Self {
        DurabilityConfig {
            object_store_window_ms: 25,
            object_store_max_object_bytes: 8 << 20,
            object_store_max_backlog_bytes: 256 << 20,
            replication_timeout_ms: 2_000,
            replication_stream: true,
            replica_unrecorded_retention_ms: 600_000,
        }
    }
}

impl DurabilityConfig {
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.object_store_window_ms == 0 || self.object_store_window_ms > 10_000 {
            return Err(format!(
                "broker.durability.object_store_window_ms must be between 1 and 10000, got {}",
                self.object_store_window_ms
            ));
        }
        if self.object_store_max_object_bytes < 64 << 10 {
            return Err("broker.durability.object_store_max_object_bytes must be at least 65536".into());
        }
        if self.object_store_max_backlog_bytes < self.object_store_max_object_bytes {
            return Err(
                "broker.durability.object_store_max_backlog_bytes must be at least object_store_max_object_bytes"
                    .into(),
            );
        }
        if self.replication_timeout_ms == 0 {
            return Err("broker.durability.replication_timeout_ms must be at least 1".into());
        }
        if self.replica_unrecorded_retention_ms < 1_000 {
            return Err(format!(
                "broker.durability.replica_unrecorded_retention_ms must be at least 1000, got {}",
                self.replica_unrecorded_retention_ms
            ));
        }
        Ok(())
    }
}

/// The durability a namespace's partitions loaded now get: the policy, and for `replicated`
/// the quorum of its persistence policy.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Durability {
    pub policy: DurabilityPolicy,
    pub quorum: ReplicationQuorum,
}

pub(crate) async fn policy_of(ctx: &Context, ns: &NamespaceName) -> Result<Durability> {
    let policies = ctx.fresh_policies(ns).await?;
    let policy = policies.durability.unwrap_or(DurabilityPolicy::LOCAL);
    let quorum = if policy.mode == DurabilityMode::Replicated {
        ReplicationQuorum::of(policies.persistence.as_ref()).map_err(BrokerError::InvalidPolicy)?
    } else {
        ReplicationQuorum::DEFAULT
    };
    Ok(Durability { policy, quorum })
}

/// A partition's log being loaded: `acquire_partition` gave it `epoch`; the segment index says
/// the bucket holds it below `uploaded_end`.
#[derive(Clone, Copy)]
pub(crate) struct Loading<'a> {
    pub log: &'a Arc<PartitionLog>,
    pub log_id: i64,
    pub epoch: i64,
    pub uploaded_end: i64,
}

/// Gives a log being loaded (after `acquire_partition` gave it `epoch`, before any append) the
/// durability of `policy`, after recovering what an earlier owner left beyond the log's end:
/// on the replicas of its last replicated load (whatever the mode now), and in committed log
/// objects. With object-store durability, records the log has past what the bucket holds are
/// committed; with replicated durability, the tail past the uploaded segments is sent to the
/// new replica set — so that from the first append on, every record is where the mode says.
pub(crate) async fn apply(ctx: &Context, loading: Loading<'_>, durability: Durability) -> Result<()> {
    let Loading { log, log_id, epoch, .. } = loading;
    let policy = durability.policy;
    // A log keeps its handle across unloads: whatever an earlier load set, the records
    // recovered below are appended with local durability (they are committed already).
    log.set_local_durability();
    if let Some(replication) = &ctx.replication {
        // Registered under an earlier epoch (unloaded, still owned): that epoch's record can no
        // longer change, and this load registers its own.
        replication.forget_before(log_id as u64, epoch);
    }
    adopt_accepted(log, log_id, epoch).await?;
    let replicas = if ctx.tier.enabled() { ctx.metadata.partition_replicas(log_id).await? } else { None };
    if let Some((previous, set)) = &replicas
        && *previous < epoch
    {
        recover_from_replicas(ctx, log, log_id, epoch, *previous, set).await?;
    }
    match policy.mode {
        DurabilityMode::Local => {
            // The tail will be on this broker's disk only: no automatic failover under this epoch.
            if ctx.tier.enabled() {
                ctx.metadata.mark_local_durability(log_id, epoch).await?;
            }
        }
        DurabilityMode::ObjectStore => apply_object_store(ctx, loading, policy).await?,
        DurabilityMode::Replicated => return replicate(ctx, loading, durability).await,
    }
    if replicas.is_some() {
        // What the replicas held is here now (and in the bucket, for object-store): the next
        // owner has nothing to recover from them.
        ctx.metadata.set_partition_replicas(log_id, epoch, None).await?;
    }
    Ok(())
}

async fn apply_object_store(ctx: &Context, loading: Loading<'_>, policy: DurabilityPolicy) -> Result<()> {
    let Loading { log, log_id, epoch, uploaded_end } = loading;
    // Every committed range, read once: recovery takes those past the log's end, and the
    // bucket's end (with the uploaded segments') says what this copy holds beyond it.
    let ranges = ctx.metadata.list_log_objects(log_id, 0).await?;
    let objects_end = ranges.last().map_or(0, |r| r.end_offset).max(uploaded_end).max(0) as u64;
    let recovered = recover(ctx, log, log_id, ranges).await?;
    log.set_object_store_durability(epoch, policy.max_wait())?;
    let committed = if log.end_offset() > objects_end { log.commit_local_tail(objects_end).await? } else { 0 };
    if recovered > 0 || committed > 0 {
        tracing::info!(
            log_id,
            epoch,
            recovered,
            committed,
            end = log.end_offset(),
            "partition with object-store durability brought in line with the bucket"
        );
    }
    Ok(())
}

/// Replicated durability from this load on: a replica set among the live brokers, the local
/// tail past the uploaded segments sent to it, then the set recorded under `epoch` (recorded
/// last: an owner that dies before leaves the previous set, which still holds everything, as
/// the one to recover from). A stream that moved off a dead peer while the tail was sent
/// (`re_replicate`) makes the load start over with live peers: a partition is never recorded
/// with peers its stream no longer goes to.
async fn replicate(ctx: &Context, loading: Loading<'_>, durability: Durability) -> Result<()> {
    let Loading { log, log_id, epoch, uploaded_end } = loading;
    let Some(replication) = &ctx.replication else {
        return Err(BrokerError::InvalidPolicy(
            "durability mode replicated needs a broker tier; this broker runs standalone".into(),
        ));
    };
    let quorum = durability.quorum;
    let from = uploaded_end.max(0) as u64;
    for _ in 0..MAX_LOAD_ATTEMPTS {
        let peers = replication.choose_peers(quorum).await?;
        let writer = replication.writer(&peers, quorum);
        log.set_replicated_durability(epoch, durability.policy.max_wait(), Arc::clone(&writer));
        let losses = replication.losses(&writer);
        let sent = if log.end_offset() > from { log.commit_local_tail(from).await? } else { 0 };
        let _moves = replication.moves().await;
        if replication.stream_peers(&writer).as_deref() != Some(peers.as_slice()) {
            tracing::info!(log_id, epoch, peers = ?peers, "replica stream moved while the partition loaded; sending its tail again");
            continue;
        }
        // A peer lost its copy while the tail went out (`resend_lost_copies` runs for the
        // partitions registered as served, which this one is not yet).
        if replication.losses(&writer) != losses {
            tracing::info!(log_id, epoch, peers = ?peers, "a replica lost its copy while the partition loaded; sending its tail again");
            continue;
        }
        let set = ReplicaSet {
            owner: ctx.broker_id.clone(),
            peers,
            write_quorum: quorum.write_quorum,
            ack_quorum: quorum.ack_quorum,
            previous_peers: Vec::new(),
        };
        ctx.metadata.set_partition_replicas(log_id, epoch, Some(&set)).await?;
        let served = crate::replication::Served { epoch, log: Arc::clone(log), writer, set };
        tracing::debug!(log_id, epoch, sent, peers = ?served.set.peers, "partition replicated");
        replication.loaded(log_id as u64, served);
        return Ok(());
    }
    Err(unavailable(format!(
        "partition {log_id}: its replica stream kept moving while it loaded ({MAX_LOAD_ATTEMPTS} attempts); retried later"
    )))
}

/// Loads of a replicated partition in a row that found its stream moved (peers dying one after
/// another) before the load gives up and is retried later.
const MAX_LOAD_ATTEMPTS: usize = 5;

/// Moves the streams whose peers are no longer live members to live brokers outside their set,
/// without losing what the dead peers held: each partition's recorded set first names both the
/// new and the previous peers (a recovery then needs both), then the stream goes to the new
/// peers, then everything past the uploaded segments is sent again, and only then is the
/// previous set dropped from the record. Without a spare broker nothing moves (the partitions
/// stay under-replicated, acknowledging only while their ack quorum is met).
///
/// Every partition registered as served (`Replication::loaded`) with the stream's peers moves,
/// those still loading included; a stream moves only once every one of them names both sets,
/// so none acknowledges through peers its record does not name.
pub(crate) async fn re_replicate(ctx: &Context, replication: &Arc<crate::replication::Replication>) {
    let _moves = replication.moves().await;
    let changes = match replication.replacements().await {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(error = %e, "replica sets not checked");
            return;
        }
    };
    'streams: for (writer, old, new) in changes {
        let on_stream = replication.served_on(Some(&writer));
        for (log_id, served) in &on_stream {
            let both = ReplicaSet { peers: new.clone(), previous_peers: old.clone(), ..served.set.clone() };
            match ctx.metadata.set_partition_replicas(*log_id as i64, served.epoch, Some(&both)).await {
                Ok(()) => replication.loaded(*log_id, crate::replication::Served { set: both, ..served.clone() }),
                // Another broker owns it since: not this stream's any more.
                Err(e @ MetadataError::Fenced { .. }) => {
                    ctx.note_fenced(&e);
                    let _ = replication.forget(*log_id, served.epoch);
                }
                Err(e) => {
                    // The stream stays where it is (its acknowledgements wait for the dead peer):
                    // moving it now would leave this partition's record without the new peers.
                    // Those recorded already name both sets, the actual one among them.
                    tracing::warn!(log_id, error = %e, "replica set not moved; the stream moves at a later try");
                    continue 'streams;
                }
            }
        }
        tracing::warn!(from = ?old, to = ?new, partitions = on_stream.len(), "replica peer gone: stream moved");
        replication.replace(&writer, &old, &new);
    }
    finish_moves(ctx, replication).await;
    resend_lost_copies(replication).await;
}

/// Sends again, past the uploaded segments, the tail of every partition whose stream has a
/// peer that answered from a new store: its disk was lost and replaced, so the copies it had
/// acknowledged are gone and a failover recovering from it would find a hole. The stream's
/// later batches reach it as before; until the tails are in, its partitions count as
/// under-replicated. What fails is retried at the next tend.
async fn resend_lost_copies(replication: &Arc<crate::replication::Replication>) {
    for (writer, losses) in replication.lost_copies() {
        let mut all = true;
        for (log_id, served) in replication.served_on(Some(&writer)) {
            match resend_tail(replication, log_id, &served).await {
                Ok(sent) => {
                    replication.count_tail_resent();
                    tracing::info!(log_id, sent, "partition tail sent again to a replica that had lost its copy");
                }
                Err(e) => {
                    all = false;
                    tracing::warn!(log_id, error = %e, "tail not sent again to a replica that lost its copy; retried later");
                }
            }
        }
        if all {
            replication.tails_resent(&writer, losses);
        }
    }
}

/// Sends a registered partition's tail past its uploaded segments to its stream's peers. One
/// whose log was deleted meanwhile (its topic with it) is forgotten: `Ok(0)`.
async fn resend_tail(
    replication: &crate::replication::Replication,
    log_id: u64,
    served: &crate::replication::Served,
) -> magnetar_storage::Result<u64> {
    match served.log.commit_local_tail(served.log.uploaded_end()).await {
        Err(magnetar_storage::StorageError::LogDeleted(_)) => {
            let _ = replication.forget(log_id, served.epoch);
            Ok(0)
        }
        other => other,
    }
}

/// Completes the moves of streams off dead peers: every partition whose record still names a
/// previous set next to the peers its stream goes to now gets its tail past the uploaded
/// segments sent to them, then a record naming them alone. What fails is retried at the next
/// tend (the record names both sets meanwhile: a recovery reads both, nothing is lost).
async fn finish_moves(ctx: &Context, replication: &Arc<crate::replication::Replication>) {
    for (log_id, served) in replication.served_on(None) {
        if served.set.previous_peers.is_empty()
            || replication.stream_peers(&served.writer).as_deref() != Some(served.set.peers.as_slice())
        {
            continue;
        }
        if let Err(e) = resend_tail(replication, log_id, &served).await {
            tracing::warn!(log_id, error = %e, "tail not re-sent to the new replicas; retried later");
            continue;
        }
        let done = ReplicaSet { previous_peers: Vec::new(), ..served.set.clone() };
        match ctx.metadata.set_partition_replicas(log_id as i64, served.epoch, Some(&done)).await {
            Ok(()) => replication.loaded(log_id, crate::replication::Served { set: done, ..served.clone() }),
            Err(e @ MetadataError::Fenced { .. }) => {
                ctx.note_fenced(&e);
                let _ = replication.forget(log_id, served.epoch);
            }
            Err(e) => tracing::warn!(log_id, error = %e, "replica set not recorded after the move; retried later"),
        }
    }
}

/// Appends what the replicas of the partition's previous replicated load hold past the log's
/// end, after fencing it there at `epoch`. Frames of epochs before that load are left out: its
/// owner re-sent everything past the uploaded segments under its own epoch before serving.
async fn recover_from_replicas(
    ctx: &Context,
    log: &Arc<PartitionLog>,
    log_id: i64,
    epoch: i64,
    previous: i64,
    set: &ReplicaSet,
) -> Result<()> {
    let Some(replication) = &ctx.replication else {
        return Err(unavailable(format!(
            "partition {log_id} has records on the replicas {:?} but this broker is not in a tier",
            set.peers
        )));
    };
    let from = log.end_offset();
    let frames: Vec<_> =
        replication.recover(set, log_id, epoch, from).await?.into_iter().filter(|f| f.epoch >= previous).collect();
    let records = magnetar_storage::replica::merge_recovered(from, frames)?;
    let mut next = from;
    let count = append_at(log, log_id, &mut next, records, "its replicas").await?;
    if count > 0 {
        tracing::info!(log_id, epoch, recovered = count, end = next, previous_owner = %set.owner,
            "partition tail recovered from its replicas");
    }
    Ok(())
}

/// How long a load waits for the WAL to apply records the log accepted before (`adopt_accepted`).
const ADOPT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Makes part of the log, before anything is recovered after its end, the records it accepted
/// under an earlier load here whose commit beyond the WAL never came (a failed handover
/// unloaded the partition while they waited for their replicas, say): a restart would replay
/// them from the WAL all the same. The recovery then starts after them. Without this it started
/// at the visible end, and the replicas' copy of those same records went in after them: the
/// records twice (CI, stop 38).
async fn adopt_accepted(log: &Arc<PartitionLog>, log_id: i64, epoch: i64) -> Result<()> {
    let end = log.end_offset();
    let now = log.adopt_accepted(ADOPT_WAIT).await?;
    if now > end {
        tracing::info!(log_id, epoch, from = end, to = now, "records accepted before the partition was unloaded kept");
    }
    Ok(())
}

/// Appends `records` (consecutive, the first at `next`) at exactly their offsets.
async fn append_at(
    log: &Arc<PartitionLog>,
    log_id: i64,
    next: &mut u64,
    records: Vec<magnetar_storage::Record>,
    source: &str,
) -> Result<u64> {
    let mut count = 0;
    for chunk in records.chunks(RECOVERY_CHUNK) {
        let first = chunk[0].offset;
        if first != *next {
            return Err(unavailable(format!(
                "partition {log_id}: {source}: offset {first} found where {} was expected",
                *next
            )));
        }
        // At exactly their offsets, or not at all: records the log holds past `next` would put
        // them elsewhere, and a copy appended there is a duplicate for good.
        log.append_at(first, chunk.iter().cloned().map(magnetar_storage::Record::into_input).collect())
            .await
            .map_err(|e| unavailable(format!("partition {log_id}: {source}: {e}")))?;
        *next += chunk.len() as u64;
        count += chunk.len() as u64;
    }
    Ok(count)
}

/// How often a broker tends its replica streams (moves them off dead peers, sends lost tails).
pub(crate) const TEND_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// Waits until every record accepted by a closed log with object-store durability is
/// committed (visible), so that a handover answers its producers before the segments go: a
/// record the next owner serves was acknowledged here, never refused as fenced. Records that
/// waited the policy's wait on a stream whose batch failed (a peer that died during the
/// handover) wait up to `stream_move` more: the tier moves the stream off a dead peer once its
/// lease ran out, and the batch then commits. Failing instead would leave the partitions to load
/// again from a replica set naming the dead peer, and wait for it.
pub(crate) async fn wait_committed(p: &crate::partition::Partition, stream_move: std::time::Duration) -> Result<()> {
    if p.log.commit_epoch().is_none() {
        return Ok(());
    }
    let end = p.log.close();
    if end == 0 || p.log.end_offset() >= end {
        return Ok(());
    }
    let wait = p.log.commit_max_wait().unwrap_or_default();
    let committed = p.log.wait_for_data(end - 1);
    tokio::pin!(committed);
    if tokio::time::timeout(wait, &mut committed).await.is_ok() {
        return Ok(());
    }
    if p.log.commits_retrying() {
        tracing::info!(
            log_id = p.log_id,
            wait_ms = stream_move.as_millis() as u64,
            "handover: records wait for a stream whose batch failed; waiting for it to move off the failed peer"
        );
        if tokio::time::timeout(stream_move, &mut committed).await.is_ok() {
            return Ok(());
        }
    }
    Err(unavailable(format!(
        "partition {}: records wait for the object store or their replicas longer than {} ms; the handover is retried later",
        p.log_id,
        wait.as_millis()
    )))
}

/// After a handover uploaded the whole tail: the replicas hold nothing the bucket lacks, so the
/// next owner need not reach them (a rolling restart does not wait for the peer that is down).
pub(crate) async fn release_replicas(ctx: &Context, p: &crate::partition::Partition) -> Result<()> {
    let (Some(_), Some(replication)) = (p.log.replicated_epoch(), &ctx.replication) else { return Ok(()) };
    if p.log.uploaded_end() < p.log.end_offset() {
        return Ok(());
    }
    // Out of its stream's partitions first, under the moves' lock: a stream moving now would
    // record the set again (`re_replicate`).
    let _moves = replication.moves().await;
    let served = replication.forget(p.log_id as u64, p.epoch);
    if let Err(e) = ctx.metadata.set_partition_replicas(p.log_id, p.epoch, None).await {
        // The handover fails and the partition stays here: its record moves with the stream.
        if let Some(served) = served {
            replication.loaded(p.log_id as u64, served);
        }
        return Err(e.into());
    }
    Ok(())
}

/// The segment index now holds the partition below `end`: its log-object ranges below it are
/// dropped, and objects no range references any more are deleted from the bucket. A failure
/// is logged and left to the next upload (the ranges stay valid, only redundant).
pub(crate) async fn trim_log_objects(ctx: &Context, p: &crate::partition::Partition, end: u64) {
    if let (Some(_), Some(replication)) = (p.log.replicated_epoch(), &ctx.replication) {
        replication.trim(p.log_id as u64, end);
    }
    if p.log.object_store_epoch().is_none() {
        return;
    }
    let keys = match ctx.metadata.trim_log_objects(p.log_id, p.epoch, end as i64).await {
        Ok(keys) => keys,
        Err(e) => {
            ctx.note_fenced(&e);
            tracing::warn!(topic = %p.name, error = %e, "log objects not trimmed; retried after the next upload");
            return;
        }
    };
    if let (false, Some(tier)) = (keys.is_empty(), ctx.storage.tier())
        && let Err(e) = tier.delete_objects(&keys).await
    {
        // Unreferenced: nothing reads them again; an object-store lifecycle rule or a later
        // sweep removes them.
        tracing::warn!(topic = %p.name, error = %e, objects = keys.len(), "unreferenced log objects not deleted");
    }
}

/// Appends the committed records past the log's end (another broker's, which died or was
/// fenced) at exactly their offsets. Returns how many.
async fn recover(
    ctx: &Context,
    log: &Arc<PartitionLog>,
    log_id: i64,
    ranges: Vec<magnetar_metadata::LogObjectRecord>,
) -> Result<u64> {
    let mut next = log.end_offset();
    let ranges: Vec<_> = ranges.into_iter().filter(|r| r.end_offset as u64 > next).collect();
    if ranges.is_empty() {
        return Ok(0);
    }
    let Some(tier) = ctx.storage.tier() else {
        return Err(unavailable(format!(
            "partition {log_id} has records in log objects but this broker has no object store"
        )));
    };
    let mut count = 0;
    // The object last fetched: consecutive ranges often share one.
    let mut object: Option<(String, Arc<DecodedObject>)> = None;
    for range in ranges {
        let (start, end) = (range.start_offset as u64, range.end_offset as u64);
        if start > next {
            return Err(unavailable(format!(
                "partition {log_id}: the committed log objects leave offsets {next}..{start} uncovered; refusing to serve \
                 it rather than renumbering"
            )));
        }
        if object.as_ref().is_none_or(|(k, _)| *k != range.object_key) {
            // Shared with the other partitions' loads: the object holds their records too.
            let fetched = ctx
                .recovered_objects
                .get(&range.object_key, || async {
                    ctx.metrics.tier.log_object_gets.inc();
                    let bytes = tier.get_object(&range.object_key).await?;
                    Ok((magnetar_storage::decode_log_object(&bytes)?, bytes.len()))
                })
                .await?;
            object = Some((range.object_key.clone(), fetched));
        }
        let (_, frames) = object.as_ref().expect("fetched above");
        let records: Vec<magnetar_storage::Record> = frames
            .iter()
            .filter(|(id, _)| *id == log_id as u64)
            .flat_map(|(_, recs)| recs.iter())
            .filter(|r| r.offset >= next && r.offset < end)
            .cloned()
            .collect();
        let source = format!("log object {}", range.object_key);
        count += append_at(log, log_id, &mut next, records, &source).await?;
        if next < end {
            return Err(unavailable(format!(
                "partition {log_id}: log object {} lacks offsets {next}..{end} it was committed with",
                range.object_key
            )));
        }
    }
    Ok(count)
}

impl Broker {
    /// Sets (or with `None` removes) a namespace's durability policy. It takes effect when each
    /// bundle next changes owner, so the bundles are unloaded (handed over, in a tier) at once:
    /// history is never rewritten, a partition's records from then on follow the new mode.
    pub async fn set_durability(&self, ns: &NamespaceName, policy: Option<DurabilityPolicy>) -> Result<()> {
        if policy.is_some_and(|p| p.mode == DurabilityMode::ObjectStore) && self.ctx.storage.object_log().is_none() {
            return Err(BrokerError::InvalidArgument(
                "durability mode object-store needs an object store, and this broker has none configured".into(),
            ));
        }
        if policy.is_some_and(|p| p.mode == DurabilityMode::Replicated) {
            self.check_replicable(ns).await?;
        }
        self.admin()
            .update_policies(ns, |p| {
                p.durability = policy;
                Ok(())
            })
            .await?;
        self.unload_bundles(ns, None).await?;
        Ok(())
    }

    /// Replicated durability for `ns` needs a tier with as many live brokers as its write quorum.
    async fn check_replicable(&self, ns: &NamespaceName) -> Result<()> {
        if self.ctx.replication.is_none() {
            return Err(BrokerError::InvalidArgument(
                "durability mode replicated needs a broker tier; this broker runs standalone".into(),
            ));
        }
        let persistence = self.admin().get_policies(ns).await?.persistence;
        let quorum = ReplicationQuorum::of(persistence.as_ref()).map_err(BrokerError::InvalidArgument)?;
        let live = self.live_brokers().await?.len();
        if live < quorum.write_quorum as usize {
            return Err(BrokerError::InvalidArgument(format!(
                "durability mode replicated with write quorum {} needs {} live brokers; {live} are live",
                quorum.write_quorum, quorum.write_quorum
            )));
        }
        Ok(())
    }

    /// Peer side of replicated durability: stores a batch of `broker`'s log stream (`session`
    /// must be its live session). Answers with the partitions refused because they are fenced
    /// and this broker's replica store identity.
    pub async fn replica_append(
        &self,
        broker: &str,
        session: &str,
        body: bytes::Bytes,
    ) -> Result<crate::replication::AppendAnswer> {
        self.replication()?.accept_append(broker, session, body).await
    }

    /// Peer side of the replication stream, before it is opened: whether `broker`/`session`
    /// is a live member of the tier (the only sources a stream is opened for).
    pub async fn replica_stream_check(&self, broker: &str, session: &str) -> Result<()> {
        self.replication()?.check_source(broker, session).await
    }

    /// Peer side of the replication stream (`replication::stream`) on an opened connection:
    /// stores `broker`'s batches and answers them, as a task of this broker (shutdown stops
    /// taking batches, answers those being stored, and waits for it).
    pub fn serve_replica_stream<IO>(&self, broker: String, session: String, io: IO) -> Result<()>
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let replication = Arc::clone(self.replication()?);
        let shutdown = self.shutdown_token();
        self.spawn(crate::replication::stream::serve(replication, broker, session, io, shutdown));
        Ok(())
    }

    /// Peer side of a recovery (`ReplicaRecover`): fences the partition here and returns the
    /// frames held of it (`replica::encode_frames`).
    pub async fn replica_recover(&self, ask: &ReplicaRecover) -> Result<bytes::Bytes> {
        self.replication()?.accept_recover(ask).await
    }

    fn replication(&self) -> Result<&Arc<crate::replication::Replication>> {
        self.ctx.replication.as_ref().ok_or_else(|| BrokerError::NotAllowed("this broker is not in a tier".into()))
    }

    /// A namespace's own durability policy (`None`: it sets none, `local` applies).
    pub async fn durability(&self, ns: &NamespaceName) -> Result<Option<DurabilityPolicy>> {
        Ok(self.admin().get_policies(ns).await?.durability)
    }
}

/// A recovering owner's request to a peer (the query of `/internal/v1/replicas/recover`):
/// fence partition `log_id` at `epoch` and return what is held of it from offset `from` on.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ReplicaRecover {
    pub broker: String,
    pub session: String,
    pub log_id: u64,
    pub epoch: i64,
    pub from: u64,
}

/// A partition that cannot be served as it stands (the caller's request fails with 503).
fn unavailable(detail: String) -> BrokerError {
    StorageError::Unavailable(detail).into()
}

#[cfg(test)]
mod tests {
    use super::{DurabilityConfig, object_prefix, parse_object_key};

    #[test]
    fn a_retention_of_unrecorded_copies_under_a_second_is_refused_naming_it() {
        assert!(DurabilityConfig::default().validate().is_ok());
        let short = DurabilityConfig { replica_unrecorded_retention_ms: 999, ..DurabilityConfig::default() };
        let e = short.validate().unwrap_err();
        assert!(e.contains("replica_unrecorded_retention_ms") && e.contains("999"), "{e}");
    }

    #[test]
    fn only_log_object_keys_of_the_cluster_are_parsed() {
        let prefix = object_prefix("c1", "broker:1", "s-9");
        assert_eq!(prefix, "c1/wal-objects/broker_1/s-9");
        let key = format!("{prefix}/{:020}", 42);
        assert_eq!(parse_object_key("c1", &key), Some((prefix.as_str(), 42)));
        for other in [
            format!("c2/wal-objects/broker_1/s-9/{:020}", 42),
            format!("c1/wal-objects/broker_1/{:020}", 42),
            "c1/wal-objects/broker_1/s-9/42".to_string(),
            // A segment of a tenant named like the root.
            format!("c1/wal-objects/ns/topic/0/7/{:020}-{:020}.seg", 0, 10),
            format!("c1/wal-objects/b/s/{:019}x", 0),
        ] {
            assert_eq!(parse_object_key("c1", &other), None, "{other}");
        }
    }
}
