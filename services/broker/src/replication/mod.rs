//! Replicated durability (docs/durability.md, "Replicated"): this broker's log stream goes to
//! the peers of each replica set it uses, and it keeps copies of the other brokers' streams.
//!
//! Owner side: a partition loaded in this mode gets the writer of its replica set (`writer`):
//! after the WAL group commit its records wait, invisible and unacknowledged, until
//! `min(ack_quorum, write_quorum - 1)` peers fsynced the batch holding them (`sink`). The set is recorded in the metadata
//! store under the partition's epoch; the next owner reads it to find the copies.
//!
//! Peer side: `accept_append` stores a batch from a live broker session in the `ReplicaStore`;
//! `accept_recover` fences a partition at the recovering owner's epoch (the old owner's later
//! batches of it are refused) and returns what this broker holds of it.
//!
//! Brokers call each other on `/internal/v1/replicas/*` at their internal addresses. A caller is
//! accepted only with the broker id and session of a live member of the tier: the session is a
//! random value only the metadata store and the broker itself know.

mod sink;
pub mod stream;
mod unrecorded;
pub(crate) mod wire;

use crate::membership::Membership;
use crate::{BrokerError, Result};
use bytes::Bytes;
use magnetar_core::ReplicationQuorum;
use magnetar_metadata::{BrokerRecord, ReplicaSet};
use magnetar_storage::replica::{ReplicaStore, ReplicaStoreConfig, StoredFrame};
use magnetar_storage::{ObjectLog, ObjectLogConfig, StorageError, StorageMetrics, WriterMetrics};
use parking_lot::Mutex;
use sink::ReplicaSink;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the view of live brokers is reused.
const LIVE_VIEW_TTL: Duration = Duration::from_millis(500);

/// A replica set's stream: how many peers must confirm a batch, the writer, the sink it commits
/// through (which knows the peers: they change when a dead one is replaced).
type SetStream = (usize, Arc<ObjectLog>, Arc<ReplicaSink>);

pub(crate) struct Replication {
    broker_id: String,
    session: String,
    membership: Arc<Membership>,
    client: reqwest::Client,
    timeout: Duration,
    /// Batches go over `stream` connections (else one request each).
    stream: bool,
    max_backlog_bytes: usize,
    live: Mutex<(Option<Instant>, Arc<Vec<BrokerRecord>>)>,
    store: Arc<ReplicaStore>,
    writers: Mutex<Vec<SetStream>>,
    /// The partitions served here with replicated durability, by log id: each with the set its
    /// record in the metadata store names (see `Served`).
    served: Mutex<HashMap<u64, Served>>,
    /// Held while a stream moves off a dead peer, and while a loading partition checks its
    /// stream and records its set: a partition is either recorded before a move (and moved with
    /// the others) or after it (with the peers the stream has then), never with peers its
    /// stream left while it loaded.
    moves: tokio::sync::Mutex<()>,
    metrics: StorageMetrics,
    /// Woken when a peer answers from a new store, so that the tails are sent again at once
    /// rather than at the next periodic tend.
    copies_lost: Arc<tokio::sync::Notify>,
    /// Copies held here that their partition's record stopped naming, since when
    /// (`unrecorded`).
    unrecorded: Mutex<HashMap<u64, unrecorded::Unrecorded>>,
}

/// A partition served here with replicated durability: what moving its stream needs.
#[derive(Clone)]
pub(crate) struct Served {
    pub epoch: i64,
    pub log: Arc<magnetar_storage::PartitionLog>,
    /// The writer of the stream its records go out on.
    pub writer: Arc<ObjectLog>,
    /// The set its record in the metadata store names.
    pub set: ReplicaSet,
}

impl Replication {
    /// Opens this broker's store of other brokers' streams (blocking file IO on the blocking
    /// pool).
    pub(crate) async fn open(
        membership: Arc<Membership>,
        store_config: ReplicaStoreConfig,
        config: &crate::durability::DurabilityConfig,
        metrics: StorageMetrics,
    ) -> Result<Arc<Self>> {
        let store = tokio::task::spawn_blocking(move || ReplicaStore::open(store_config))
            .await
            .map_err(BrokerError::internal)??;
        metrics.replica_stored_bytes.set(store.stored_bytes() as i64);
        let registration = membership.registration().clone();
        Ok(Arc::new(Replication {
            broker_id: registration.broker_id,
            session: registration.session_id,
            membership,
            client: reqwest::Client::builder()
                .connect_timeout(Duration::from_millis(1000))
                .tcp_nodelay(true)
                .build()
                .map_err(BrokerError::internal)?,
            timeout: Duration::from_millis(config.replication_timeout_ms),
            stream: config.replication_stream,
            max_backlog_bytes: config.object_store_max_backlog_bytes,
            live: Mutex::new((None, Arc::new(Vec::new()))),
            store,
            writers: Mutex::new(Vec::new()),
            served: Mutex::new(HashMap::new()),
            moves: tokio::sync::Mutex::new(()),
            metrics,
            copies_lost: Arc::new(tokio::sync::Notify::new()),
            unrecorded: Mutex::new(HashMap::new()),
        }))
    }

    /// The brokers with a live lease (a view at most `LIVE_VIEW_TTL` old unless `fresh`).
    async fn live(&self, fresh: bool) -> Result<Arc<Vec<BrokerRecord>>> {
        {
            let cached = self.live.lock();
            if let (false, Some(at)) = (fresh, cached.0)
                && at.elapsed() < LIVE_VIEW_TTL
            {
                return Ok(Arc::clone(&cached.1));
            }
        }
        let mut brokers = self.membership.brokers().await?;
        brokers.retain(|b| b.alive);
        let brokers = Arc::new(brokers);
        *self.live.lock() = (Some(Instant::now()), Arc::clone(&brokers));
        Ok(brokers)
    }

    /// The live brokers other than this one, in id order starting after this one (so that a
    /// broker's partitions share one set and one stream).
    async fn candidates(&self, fresh: bool) -> Result<Vec<String>> {
        let mut ids: Vec<String> = self
            .live(fresh)
            .await?
            .iter()
            .map(|b| b.registration.broker_id.clone())
            .filter(|id| *id != self.broker_id)
            .collect();
        ids.sort();
        let start = ids.iter().position(|id| *id > self.broker_id).unwrap_or(0);
        ids.rotate_left(start);
        Ok(ids)
    }

    /// The peers a partition loaded now replicates to: the first `write_quorum - 1` candidates.
    pub(crate) async fn choose_peers(&self, quorum: ReplicationQuorum) -> Result<Vec<String>> {
        let mut ids = self.candidates(true).await?;
        let want = quorum.write_quorum as usize - 1;
        if ids.len() < want {
            return Err(unavailable(format!(
                "replicated durability with write quorum {} needs {want} other live brokers; {} are live",
                quorum.write_quorum,
                ids.len()
            )));
        }
        ids.truncate(want);
        Ok(ids)
    }

    /// The writer of the stream to `peers` (started on first use, shared by every partition
    /// with that set and quorum).
    pub(crate) fn writer(self: &Arc<Self>, peers: &[String], quorum: ReplicationQuorum) -> Arc<ObjectLog> {
        let needed = quorum.ack_peers();
        let mut writers = self.writers.lock();
        if let Some((_, log, _)) = writers.iter().find(|(n, _, sink)| *n == needed && sink.peers() == peers) {
            return Arc::clone(log);
        }
        let sink = ReplicaSink::start(self, peers, needed, Arc::clone(&self.copies_lost));
        let config = ObjectLogConfig {
            prefix: String::new(),
            // No gathering window: a batch goes as soon as there is room for it, so batches
            // grow with the load like the WAL's group commits.
            window: Duration::ZERO,
            max_object_bytes: 4 << 20,
            max_backlog_bytes: self.max_backlog_bytes,
            // Peers store frames in any order (recovery sorts them by offset and stops at a
            // gap), so batches need not wait for the one before: a record waits for one round
            // trip to its peers, not for the batch ahead of it too.
            max_in_flight: sink::IN_FLIGHT_PER_PEER,
        };
        let log = ObjectLog::start_with(sink.clone(), WriterMetrics::replication(&self.metrics), config);
        writers.push((needed, Arc::clone(&log), sink));
        log
    }

    /// The streams whose peers include a broker that is not live any more, each (its writer)
    /// with the peers it would have with the dead ones replaced by live brokers outside the set
    /// (as many as there are). Nothing changes until `replace` is called.
    pub(crate) async fn replacements(&self) -> Result<Vec<(Arc<ObjectLog>, Vec<String>, Vec<String>)>> {
        let candidates = self.candidates(true).await?;
        let mut out = Vec::new();
        for (_, writer, sink) in self.writers.lock().iter() {
            let old = sink.peers();
            let mut spare = candidates.iter().filter(|c| !old.contains(c));
            let new: Vec<String> = old
                .iter()
                .map(|p| if candidates.contains(p) { p.clone() } else { spare.next().unwrap_or(p).clone() })
                .collect();
            if new != old {
                out.push((Arc::clone(writer), old, new));
            }
        }
        Ok(out)
    }

    /// Sends `writer`'s stream, which goes to `old`, to `new` from the next batch on.
    pub(crate) fn replace(self: &Arc<Self>, writer: &Arc<ObjectLog>, old: &[String], new: &[String]) {
        for (_, log, sink) in self.writers.lock().iter() {
            if Arc::ptr_eq(log, writer) && sink.peers() == old {
                for (o, n) in old.iter().zip(new).filter(|(o, n)| o != n) {
                    sink.replace(self, o, n);
                }
            }
        }
    }

    /// Excludes stream moves (`durability::re_replicate`) while held.
    pub(crate) async fn moves(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.moves.lock().await
    }

    /// The sink of `writer`'s stream, if it is one of this broker's.
    fn sink_of(&self, writer: &Arc<ObjectLog>) -> Option<Arc<ReplicaSink>> {
        self.writers.lock().iter().find(|(_, log, _)| Arc::ptr_eq(log, writer)).map(|(_, _, sink)| Arc::clone(sink))
    }

    /// The peers `writer`'s stream goes to now (they change when a dead one is replaced).
    pub(crate) fn stream_peers(&self, writer: &Arc<ObjectLog>) -> Option<Vec<String>> {
        self.sink_of(writer).map(|sink| sink.peers())
    }

    /// The partitions served here whose records go out on `writer`'s stream, or all of them.
    pub(crate) fn served_on(&self, writer: Option<&Arc<ObjectLog>>) -> Vec<(u64, Served)> {
        let served = self.served.lock();
        let on = |s: &Served| writer.is_none_or(|w| Arc::ptr_eq(&s.writer, w));
        served.iter().filter(|(_, s)| on(s)).map(|(id, s)| (*id, s.clone())).collect()
    }

    /// Records that partition `log_id`, loaded here under `epoch` with its records going out on
    /// `writer`, is served with `set` (the set its record in the metadata store names now).
    pub(crate) fn loaded(&self, log_id: u64, served: Served) {
        self.served.lock().insert(log_id, served);
    }

    /// The replica set of partition `log_id` as loaded here under `epoch`.
    pub(crate) fn set_of(&self, log_id: u64, epoch: i64) -> Option<ReplicaSet> {
        self.served.lock().get(&log_id).filter(|s| s.epoch == epoch).map(|s| s.set.clone())
    }

    /// Forgets partition `log_id` as loaded under `epoch` (another broker took it since, or its
    /// record no longer names replicas); what it was.
    pub(crate) fn forget(&self, log_id: u64, epoch: i64) -> Option<Served> {
        let mut served = self.served.lock();
        if served.get(&log_id).is_some_and(|s| s.epoch == epoch) { served.remove(&log_id) } else { None }
    }

    /// Forgets partition `log_id` as loaded under any epoch before `epoch` (it is being loaded
    /// under `epoch`, or deleted: `i64::MAX`).
    pub(crate) fn forget_before(&self, log_id: u64, epoch: i64) {
        let mut served = self.served.lock();
        if served.get(&log_id).is_some_and(|s| s.epoch < epoch) {
            served.remove(&log_id);
        }
    }

    /// How many of `log_ids` (partitions served here with replicated durability) have a peer
    /// that is not a live member now, or one that lost its copy and has not been sent it again.
    pub(crate) async fn under_replicated(&self, log_ids: &[u64]) -> Result<usize> {
        let live = self.live(false).await?;
        let is_live = |id: &String| live.iter().any(|b| b.registration.broker_id == *id);
        let losing: Vec<Arc<ObjectLog>> = self.lost_copies().into_iter().map(|(w, _)| w).collect();
        let served = self.served.lock();
        let under = |s: &Served| !s.set.peers.iter().all(is_live) || losing.iter().any(|w| Arc::ptr_eq(w, &s.writer));
        Ok(log_ids.iter().filter(|id| served.get(id).is_some_and(under)).count())
    }

    /// The streams with a peer that answered from a new store (it lost what it held) since
    /// their tails were last sent again, each with the count of such losses seen so far.
    pub(crate) fn lost_copies(&self) -> Vec<(Arc<ObjectLog>, u64)> {
        let writers = self.writers.lock();
        writers.iter().filter_map(|(_, log, sink)| sink.unsent_losses().map(|n| (Arc::clone(log), n))).collect()
    }

    /// The losses of copies `writer`'s peers have had so far (0 for a stream not found).
    pub(crate) fn losses(&self, writer: &Arc<ObjectLog>) -> u64 {
        self.sink_of(writer).map_or(0, |sink| sink.losses())
    }

    /// Every partition on `writer`'s stream had its tail sent again after its first `losses`
    /// losses of copies.
    pub(crate) fn tails_resent(&self, writer: &Arc<ObjectLog>, losses: u64) {
        if let Some(sink) = self.sink_of(writer) {
            sink.resent_after(losses);
        }
    }

    /// Resolves once a peer answered from a new store since the last call returned (a wake-up
    /// given while nobody waits is kept for the next one).
    pub(crate) async fn copies_lost(&self) {
        self.copies_lost.notified().await;
    }

    /// Counts one partition's tail sent again to a peer that had lost its copy.
    pub(crate) fn count_tail_resent(&self) {
        self.metrics.replica_tails_resent.inc();
    }

    /// The log was uploaded below `below`: its replicas may drop what lies below.
    pub(crate) fn trim(&self, log_id: u64, below: u64) {
        for (_, _, sink) in self.writers.lock().iter() {
            sink.trim(log_id, below);
        }
    }

    /// Owner side of one batch to one peer.
    async fn send_append(&self, peer: &str, body: Bytes) -> std::result::Result<AppendAnswer, String> {
        let url = self.url(peer, "append", "").await?;
        let answer = self.post(&url, body).await?;
        serde_json::from_slice(&answer).map_err(|e| format!("bad answer: {e}"))
    }

    async fn url(&self, peer: &str, action: &str, query: &str) -> std::result::Result<String, String> {
        let mut address = None;
        for fresh in [false, true] {
            let live = self.live(fresh).await.map_err(|e| e.to_string())?;
            address =
                live.iter().find(|b| b.registration.broker_id == peer).map(|b| b.registration.internal_address.clone());
            if address.is_some() {
                break;
            }
        }
        let address = address.ok_or_else(|| "not a live broker".to_string())?;
        Ok(format!(
            "http://{address}/internal/v1/replicas/{action}?broker={}&session={}{query}",
            encode(&self.broker_id),
            self.session
        ))
    }

    async fn post(&self, url: &str, body: Bytes) -> std::result::Result<Bytes, String> {
        let res = self.client.post(url).timeout(self.timeout).body(body).send().await.map_err(|e| e.to_string())?;
        let status = res.status();
        let bytes = res.bytes().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("{status}: {}", String::from_utf8_lossy(&bytes)));
        }
        Ok(bytes)
    }

    /// Fences partition `log_id` at `epoch` on the peers of `set` and reads back what they hold
    /// of it from `from` on. Needs `ReplicationQuorum::recovery_peers` of them to answer: that
    /// many meet every set of peers that acknowledged a record, so together they hold every
    /// acknowledged record.
    pub(crate) async fn recover(
        &self,
        set: &ReplicaSet,
        log_id: i64,
        epoch: i64,
        from: u64,
    ) -> Result<Vec<StoredFrame>> {
        let quorum = ReplicationQuorum { write_quorum: set.write_quorum, ack_quorum: set.ack_quorum };
        let mut asked: Vec<&String> = set.peers.iter().chain(&set.previous_peers).collect();
        asked.sort();
        asked.dedup();
        let query = format!("&log_id={log_id}&epoch={epoch}&from={from}");
        let asks = asked.into_iter().map(|peer| {
            let query = query.clone();
            async move {
                if *peer == self.broker_id {
                    let frames = self.store.fence_and_read(log_id as u64, epoch, from).await.map_err(|e| e.to_string());
                    return (peer, frames);
                }
                let res = async {
                    let url = self.url(peer, "recover", &query).await?;
                    let body = self.post(&url, Bytes::new()).await?;
                    magnetar_storage::replica::decode_frames(body).map_err(|e| e.to_string())
                }
                .await;
                (peer, res)
            }
        });
        let (mut frames, mut answered, mut errors) = (Vec::new(), Vec::new(), Vec::new());
        for (peer, res) in futures::future::join_all(asks).await {
            match res {
                Ok(f) => {
                    answered.push(peer.clone());
                    frames.extend(f);
                }
                Err(e) => errors.push(format!("{peer}: {e}")),
            }
        }
        // Both sets while the owner was moving off a dead peer: each holds part of what was
        // acknowledged.
        for group in [&set.peers, &set.previous_peers] {
            let needed = quorum.recovery_peers().min(group.len());
            let got = group.iter().filter(|p| answered.contains(p)).count();
            if got < needed {
                return Err(unavailable(format!(
                    "partition {log_id}: recovering its tail needs {needed} of its replicas {group:?} and {got} answered \
                     ({}); it is served once enough of them are back",
                    errors.join("; ")
                )));
            }
        }
        Ok(frames)
    }

    /// Peer side: whether `broker`/`session` is a live member (the only callers accepted).
    pub(crate) async fn check_source(&self, broker: &str, session: &str) -> Result<()> {
        for fresh in [false, true] {
            let live = self.live(fresh).await?;
            if live.iter().any(|b| b.registration.broker_id == broker && b.registration.session_id == session) {
                return Ok(());
            }
        }
        Err(BrokerError::Forbidden(format!(
            "broker {broker} with this session is not a live member of the tier: its replica requests are refused"
        )))
    }

    /// Peer side of an append: stores the batch; answers with the logs refused as fenced and
    /// this store's identity.
    pub(crate) async fn accept_append(&self, broker: &str, session: &str, body: Bytes) -> Result<AppendAnswer> {
        self.check_source(broker, session).await?;
        let body = wire::decode(body).map_err(BrokerError::InvalidArgument)?;
        for (log_id, below) in &body.trims {
            self.store.trim(*log_id, *below);
        }
        let started = std::time::Instant::now();
        let refused = self.store.append(&format!("{broker}/{session}"), body.object, &body.ranges).await?;
        self.metrics.replica_append_seconds.observe(started.elapsed().as_secs_f64());
        self.metrics.replica_stored_bytes.set(self.store.stored_bytes() as i64);
        Ok(AppendAnswer { fenced: refused, store: self.store.id().to_string() })
    }

    /// Peer side of a recovery: fences the partition at its epoch, returns its frames.
    pub(crate) async fn accept_recover(&self, ask: &crate::durability::ReplicaRecover) -> Result<Bytes> {
        self.check_source(&ask.broker, &ask.session).await?;
        let frames = self.store.fence_and_read(ask.log_id, ask.epoch, ask.from).await?;
        Ok(magnetar_storage::replica::encode_frames(&frames))
    }

    /// At shutdown: the replica chunks keep their entries only (see `ReplicaStore::close`).
    pub(crate) async fn close(&self) {
        self.store.close().await;
    }

    /// Drops the copies no recovery can need any more; run periodically.
    pub(crate) async fn sweep(&self) {
        match self.store.sweep().await {
            Ok(freed) if freed > 0 => tracing::debug!(freed, "replica chunks removed"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "replica sweep failed; retried later"),
        }
        self.metrics.replica_stored_bytes.set(self.store.stored_bytes() as i64);
    }
}

/// A peer's answer to a batch it stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AppendAnswer {
    /// The logs refused because they are fenced at a newer epoch, with the reason.
    pub fenced: Vec<(u64, String)>,
    /// The identity of the peer's store (`ReplicaStore::id`): a new one means the copies it
    /// acknowledged before are gone. Empty from a peer of an earlier version.
    #[serde(default)]
    pub store: String,
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn unavailable(detail: String) -> BrokerError {
    StorageError::Unavailable(detail).into()
}
