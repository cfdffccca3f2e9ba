//! The owner's side of a replica set: one stream per peer, in order, and the sink the writer
//! commits batches through — a batch is committed once `ReplicationQuorum::ack_peers` peers
//! fsynced it (the owner's own WAL fsync runs alongside but does not count: the owner may be
//! the broker that dies).
//!
//! Each peer has its own bounded queue and connection (`stream.rs`) with at most
//! `IN_FLIGHT_PER_PEER` batches unanswered, so a slow one neither delays the quorum nor grows
//! memory without bound: a batch its queue has no room for is not sent to it (it will hold a
//! gap, which recovery tolerates: an acknowledged record is on a quorum of the others). Batches
//! in flight together may be stored in any order; the peer's store keeps frames by offset.

use super::Replication;
use magnetar_storage::{DurableSink, ObjectRange, StorageError};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// Batches queued per peer before it counts as too far behind.
const PEER_QUEUE: usize = 64;

/// Requests sent to one peer at once (and batches the writer has in flight).
pub(crate) const IN_FLIGHT_PER_PEER: usize = 2;

pub(super) type PeerResult = Result<super::AppendAnswer, String>;

/// A batch for one peer: its body is `head` (`wire::encode_head`) then `object`, kept apart so
/// that neither is copied on its way to the socket.
pub(super) struct PeerBatch {
    pub head: bytes::Bytes,
    pub object: bytes::Bytes,
    pub done: oneshot::Sender<PeerResult>,
}

impl PeerBatch {
    /// The whole body in one buffer, for one request per batch (a copy of the object: a rolling
    /// upgrade's passing state).
    pub fn body(&self) -> bytes::Bytes {
        super::wire::join(&self.head, &self.object)
    }
}

#[derive(Clone)]
struct PeerStream {
    broker_id: String,
    tx: mpsc::Sender<PeerBatch>,
    /// The store identity the peer answered from so far (`AppendAnswer::store`).
    store: Arc<Mutex<Option<String>>>,
}

impl PeerStream {
    fn start(replication: &Arc<Replication>, id: &str) -> PeerStream {
        let (tx, rx) = mpsc::channel(PEER_QUEUE);
        let (r, peer) = (Arc::clone(replication), id.to_string());
        // Not in the broker's task tracker: it ends with the process (or when the peer is
        // replaced and its queue dropped), like the writer.
        tokio::spawn(async move { super::stream::run_peer(r, peer, rx).await });
        PeerStream { broker_id: id.to_string(), tx, store: Arc::default() }
    }
}

pub(crate) struct ReplicaSink {
    peers: Mutex<Vec<PeerStream>>,
    /// Peers that must confirm a batch.
    needed: usize,
    /// Logs uploaded below an offset: sent with the next batch so peers may drop them.
    trims: Mutex<Vec<(u64, u64)>>,
    ack_seconds: prometheus::Histogram,
    /// Answers from a peer's new store seen (each a peer that lost its copies), and how many of
    /// them every partition's tail was sent again after.
    losses: AtomicU64,
    resent: AtomicU64,
    /// Told of each loss (`Replication::copies_lost`).
    lost: Arc<tokio::sync::Notify>,
}

impl ReplicaSink {
    /// `needed`: how many of `peers` must confirm a batch.
    pub(crate) fn start(
        replication: &Arc<Replication>,
        peers: &[String],
        needed: usize,
        lost: Arc<tokio::sync::Notify>,
    ) -> Arc<Self> {
        let peers = peers.iter().map(|id| PeerStream::start(replication, id)).collect();
        Arc::new(ReplicaSink {
            peers: Mutex::new(peers),
            needed,
            trims: Mutex::new(Vec::new()),
            ack_seconds: replication.metrics.replication_ack_seconds.clone(),
            losses: AtomicU64::new(0),
            resent: AtomicU64::new(0),
            lost,
        })
    }

    /// Losses of copies seen so far.
    pub(crate) fn losses(&self) -> u64 {
        self.losses.load(Ordering::SeqCst)
    }

    /// The losses seen so far when the tails have not been sent again since the last of them.
    pub(crate) fn unsent_losses(&self) -> Option<u64> {
        let losses = self.losses();
        (losses > self.resent.load(Ordering::SeqCst)).then_some(losses)
    }

    /// Every tail was sent again after the first `losses` losses.
    pub(crate) fn resent_after(&self, losses: u64) {
        self.resent.fetch_max(losses, Ordering::SeqCst);
    }

    /// Remembers the store `peer` answered from. Another one than before means the peer lost
    /// what it held (its data directory is new: a replaced disk), which is counted before the
    /// batch counts towards its quorum, so that its partitions are reported under-replicated and
    /// their tails sent again (`durability::resend_lost_copies`) from then on.
    fn note_store(&self, peer: &PeerStream, store: &str) {
        if store.is_empty() {
            return;
        }
        let mut known = peer.store.lock();
        match known.as_deref() {
            Some(k) if k == store => {}
            Some(_) => {
                tracing::warn!(
                    peer = %peer.broker_id,
                    "replica peer answers from a new store: the copies it held are gone (a replaced disk?); \
                     the tails of its partitions are sent again"
                );
                self.losses.fetch_add(1, Ordering::SeqCst);
                *known = Some(store.to_string());
                self.lost.notify_one();
            }
            None => *known = Some(store.to_string()),
        }
    }

    pub(crate) fn trim(&self, log_id: u64, below: u64) {
        self.trims.lock().push((log_id, below));
    }

    /// The brokers the stream goes to now.
    pub(crate) fn peers(&self) -> Vec<String> {
        self.peers.lock().iter().map(|p| p.broker_id.clone()).collect()
    }

    /// Sends the stream to `new` instead of `old` from the next batch on (the batch being
    /// retried included). The caller re-sends what `old` held that is not uploaded yet.
    pub(crate) fn replace(&self, replication: &Arc<Replication>, old: &str, new: &str) {
        let mut peers = self.peers.lock();
        if let Some(p) = peers.iter_mut().find(|p| p.broker_id == old) {
            *p = PeerStream::start(replication, new);
        }
    }
}

#[async_trait::async_trait]
impl DurableSink for ReplicaSink {
    async fn commit(
        &self,
        _seq: u64,
        object: bytes::Bytes,
        ranges: &[ObjectRange],
    ) -> magnetar_storage::Result<Vec<(u64, String)>> {
        let trims = std::mem::take(&mut *self.trims.lock());
        let head = super::wire::encode_head(ranges, &trims);
        let started = Instant::now();
        let peers = self.peers.lock().clone();
        let mut pending = futures::stream::FuturesUnordered::new();
        let mut errors = Vec::new();
        for p in &peers {
            let (done, rx) = oneshot::channel();
            match p.tx.try_send(PeerBatch { head: head.clone(), object: object.clone(), done }) {
                Ok(()) => pending.push(async move { (p, rx.await) }),
                Err(_) => errors.push(format!("{}: too far behind", p.broker_id)),
            }
        }
        let (mut acked, mut fenced) = (0, BTreeMap::new());
        while acked < self.needed {
            use futures::StreamExt;
            match pending.next().await {
                Some((p, Ok(Ok(stored)))) => {
                    self.note_store(p, &stored.store);
                    acked += 1;
                    fenced.extend(stored.fenced);
                }
                Some((p, Ok(Err(e)))) => errors.push(format!("{}: {e}", p.broker_id)),
                Some((p, Err(_))) => errors.push(format!("{}: stream stopped", p.broker_id)),
                None => break,
            }
        }
        if acked < self.needed {
            self.trims.lock().extend(trims);
            return Err(StorageError::Unavailable(format!(
                "ack quorum not reached: {acked} of the {} replicas needed confirmed ({})",
                self.needed,
                errors.join("; ")
            )));
        }
        self.ack_seconds.observe(started.elapsed().as_secs_f64());
        Ok(fenced.into_iter().collect())
    }
}
