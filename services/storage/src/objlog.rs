//! Object-store durability (docs/durability.md, "Object store"): a record of a log in this mode
//! is acknowledged only once it is in an object in the bucket and that object's ranges are
//! committed by the caller's [`LogObjectCommitter`] (the metadata store, under each partition's
//! epoch).
//!
//! After its WAL group commit, a record of such a log is written to its segment and queued here
//! instead of being made visible. One task gathers the queued records of every such log for a
//! window into one object `{prefix}/{seq:020}` (so the PUTs follow the window, not the number of
//! partitions), PUTs it, commits it, and only then makes the records visible and completes their
//! appenders. Objects are committed one at a time, in WAL order, so a log's committed ranges are
//! contiguous: a failed PUT or commit is retried, never skipped. An appender still waiting when
//! its log's `max_wait` has passed gets `Unavailable` (it may still be committed later, as a
//! Pulsar send that timed out may have been stored); the backlog is bounded
//! (`max_backlog_bytes`): appends are refused beyond it rather than queued without end.
//!
//! An object is `MAGIC` followed by the records' WAL data frames as they were written to the WAL
//! (the codec's checksummed frames); [`decode_log_object`] reads them back for recovery.

use crate::codec::{self, FrameParse, WalEntry};
use crate::partition::PartitionLog;
use crate::record::Record;
use crate::tier::ObjectTier;
use crate::{Result, StorageError};
use bytes::{Bytes, BytesMut};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// First bytes of every log object (format version 1).
pub const MAGIC: &[u8; 8] = b"MGLOGOB1";

/// One log's records in an object: offsets `start..end`, written under `epoch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectRange {
    pub log_id: u64,
    pub start: u64,
    pub end: u64,
    pub epoch: i64,
}

/// Commits the ranges of an object that is in the bucket (the metadata store's log-object
/// index). Each range is conditional on its log's epoch: the logs whose range was refused
/// (fenced: another broker owns the partition now) are returned with the reason, the others
/// are committed.
#[async_trait::async_trait]
pub trait LogObjectCommitter: Send + Sync {
    async fn commit(&self, key: &str, ranges: &[ObjectRange]) -> Result<Vec<(u64, String)>>;
}

/// Tuning of the object-store durability writer.
#[derive(Debug, Clone)]
pub struct ObjectLogConfig {
    /// Key prefix of this broker process's objects (`wal-objects/{broker}/{session}`).
    pub prefix: String,
    /// How long records are gathered before their object is written.
    pub window: Duration,
    /// An object is written at once when it reaches this size.
    pub max_object_bytes: usize,
    /// Appends to logs in this mode are refused while this many bytes wait for their object.
    pub max_backlog_bytes: usize,
}

impl Default for ObjectLogConfig {
    fn default() -> Self {
        ObjectLogConfig {
            prefix: "wal-objects/standalone".into(),
            window: Duration::from_millis(25),
            max_object_bytes: 8 << 20,
            max_backlog_bytes: 256 << 20,
        }
    }
}

/// A log's object-store durability settings, as its owner set them at load.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ObjectMode {
    pub epoch: i64,
    pub max_wait: Duration,
}

/// Records of one WAL data frame waiting for their object.
pub(crate) struct Waiting {
    pub part: Arc<PartitionLog>,
    pub mode: ObjectMode,
    pub start: u64,
    pub end: u64,
    pub frame: Vec<u8>,
    pub queued: Instant,
    /// `None` once the appender was told the wait expired.
    pub done: Option<oneshot::Sender<Result<()>>>,
}

/// The writer's handle, shared by the logs (see the module docs).
pub struct ObjectLog {
    tx: mpsc::UnboundedSender<Waiting>,
    tier: Arc<ObjectTier>,
    config: ObjectLogConfig,
    backlog: Arc<AtomicUsize>,
    /// Objects committed so far (metrics and tests).
    pub committed_objects: Arc<AtomicU64>,
}

impl ObjectLog {
    /// Starts the writer task on the current runtime.
    pub fn start(tier: Arc<ObjectTier>, committer: Arc<dyn LogObjectCommitter>, config: ObjectLogConfig) -> Arc<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let backlog = Arc::new(AtomicUsize::new(0));
        let committed_objects = Arc::new(AtomicU64::new(0));
        let tier_handle = tier.clone();
        let writer = Writer {
            tier,
            committer,
            config: config.clone(),
            backlog: backlog.clone(),
            committed: committed_objects.clone(),
            seq: 0,
        };
        tokio::spawn(writer.run(rx));
        Arc::new(ObjectLog { tx, tier: tier_handle, config, backlog, committed_objects })
    }

    pub fn config(&self) -> &ObjectLogConfig {
        &self.config
    }

    /// Bytes waiting for their object now.
    pub fn backlog_bytes(&self) -> usize {
        self.backlog.load(Ordering::Relaxed)
    }

    /// `Unavailable` while the backlog is over its bound (checked before an append).
    pub(crate) fn check_room(&self, log_id: u64) -> Result<()> {
        let (now, max) = (self.backlog_bytes(), self.config.max_backlog_bytes);
        if now > max {
            return Err(StorageError::Unavailable(format!(
                "log {log_id}: {now} bytes wait for the object store (the bound is {max} bytes); it is slow or \
                 unreachable"
            )));
        }
        Ok(())
    }

    /// Queues durable records for their object (from the applier thread).
    pub(crate) fn queue(&self, w: Waiting) {
        let now = self.backlog.fetch_add(w.frame.len(), Ordering::Relaxed) + w.frame.len();
        self.tier.metrics().object_log_backlog.set(now as i64);
        if let Err(mpsc::error::SendError(w)) = self.tx.send(w) {
            self.backlog.fetch_sub(w.frame.len(), Ordering::Relaxed);
            if let Some(done) = w.done {
                let _ = done.send(Err(StorageError::ShuttingDown));
            }
        }
    }
}

struct Writer {
    tier: Arc<ObjectTier>,
    committer: Arc<dyn LogObjectCommitter>,
    config: ObjectLogConfig,
    backlog: Arc<AtomicUsize>,
    committed: Arc<AtomicU64>,
    seq: u64,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Waiting>) {
        // A process's objects are numbered from its start time: keys never repeat across
        // restarts of one session prefix, and sort in writing order.
        self.seq = crate::now_ms().max(0) as u64 * 1000;
        let mut carry: Vec<Waiting> = Vec::new();
        loop {
            if carry.is_empty() {
                match rx.recv().await {
                    Some(w) => carry.push(w),
                    None => return,
                }
            }
            let window_end = tokio::time::Instant::from_std(carry[0].queued) + self.config.window;
            let mut bytes: usize = carry.iter().map(|w| w.frame.len()).sum();
            while bytes < self.config.max_object_bytes {
                if tokio::time::Instant::now() >= window_end {
                    // The window is over (records queued while the previous object was written
                    // start with an expired one): take what is queued now, then write. Without
                    // this, a writer that fell behind would close objects of a frame or two
                    // and never catch up.
                    while bytes < self.config.max_object_bytes {
                        let Ok(w) = rx.try_recv() else { break };
                        bytes += w.frame.len();
                        carry.push(w);
                    }
                    break;
                }
                tokio::select! {
                    biased;
                    w = rx.recv() => match w {
                        Some(w) => { bytes += w.frame.len(); carry.push(w); }
                        None => break,
                    },
                    _ = tokio::time::sleep_until(window_end) => {}
                }
            }
            // Cut at the size bound; the rest starts the next object.
            let mut size = MAGIC.len();
            let cut = carry
                .iter()
                .position(|w| {
                    size += w.frame.len();
                    size > self.config.max_object_bytes
                })
                .map_or(carry.len(), |i| i.max(1));
            let rest = carry.split_off(cut);
            let batch = std::mem::replace(&mut carry, rest);
            self.write(batch, &mut rx, &mut carry).await;
        }
    }

    /// Writes and commits one object, retrying until it is committed; meanwhile new records
    /// queue in `carry`, and appenders whose wait expired are told so.
    async fn write(
        &mut self,
        mut batch: Vec<Waiting>,
        rx: &mut mpsc::UnboundedReceiver<Waiting>,
        carry: &mut Vec<Waiting>,
    ) {
        self.seq += 1;
        let key = format!("{}/{:020}", self.config.prefix, self.seq);
        let mut body = BytesMut::with_capacity(MAGIC.len() + batch.iter().map(|w| w.frame.len()).sum::<usize>());
        body.extend_from_slice(MAGIC);
        let mut ranges: BTreeMap<u64, ObjectRange> = BTreeMap::new();
        for w in &batch {
            body.extend_from_slice(&w.frame);
            let r = ranges.entry(w.part.log_id()).or_insert(ObjectRange {
                log_id: w.part.log_id(),
                start: w.start,
                end: w.end,
                epoch: w.mode.epoch,
            });
            r.end = w.end;
        }
        let body = body.freeze();
        let ranges: Vec<ObjectRange> = ranges.into_values().collect();
        let mut backoff = Duration::from_millis(50);
        let fenced = loop {
            match self.attempt(&key, body.clone(), &ranges).await {
                Ok(fenced) => break fenced,
                Err(e) => {
                    tracing::warn!(object = %key, error = %e, retry_in_ms = backoff.as_millis() as u64,
                        "log object not committed; retrying (its records are not acknowledged meanwhile)");
                    self.tier.metrics().object_log_failures.inc();
                    expire(&mut batch, Instant::now());
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    while let Ok(w) = rx.try_recv() {
                        carry.push(w);
                    }
                    expire(carry, Instant::now());
                }
            }
        };
        self.committed.fetch_add(1, Ordering::Relaxed);
        let m = self.tier.metrics();
        m.object_log_objects.inc();
        m.object_log_bytes.inc_by(body.len() as u64);
        let left = self.backlog.fetch_sub(batch.iter().map(|w| w.frame.len()).sum(), Ordering::Relaxed);
        m.object_log_backlog.set(left.saturating_sub(body.len() - MAGIC.len()) as i64);
        for w in batch {
            let log_id = w.part.log_id();
            let res = match fenced.iter().find(|(id, _)| *id == log_id) {
                Some((_, why)) => Err(StorageError::Unavailable(format!(
                    "log {log_id}: its records were not committed to the object store: {why}"
                ))),
                None => {
                    w.part.publish_committed(w.end);
                    Ok(())
                }
            };
            if let Some(done) = w.done {
                let _ = done.send(res);
            }
        }
    }

    async fn attempt(&self, key: &str, body: Bytes, ranges: &[ObjectRange]) -> Result<Vec<(u64, String)>> {
        let started = Instant::now();
        self.tier.put_object(key, body).await?;
        self.tier.metrics().object_log_put_seconds.observe(started.elapsed().as_secs_f64());
        self.committer.commit(key, ranges).await
    }
}

/// Tells the appenders whose wait has expired that their records are not acknowledged.
fn expire(waiting: &mut [Waiting], now: Instant) {
    for w in waiting.iter_mut() {
        if now.duration_since(w.queued) >= w.mode.max_wait
            && let Some(done) = w.done.take()
        {
            let _ = done.send(Err(StorageError::Unavailable(format!(
                "log {}: not acknowledged by the object store within {} ms",
                w.part.log_id(),
                w.mode.max_wait.as_millis()
            ))));
        }
    }
}

/// The records of each log in a log object, in the order they were written.
pub fn decode_log_object(object: &Bytes) -> Result<Vec<(u64, Vec<Record>)>> {
    let corrupt = |position: usize, detail: String| StorageError::Corrupt {
        file: "log object".into(),
        position: position as u64,
        detail,
    };
    if object.len() < MAGIC.len() || &object[..MAGIC.len()] != MAGIC {
        return Err(corrupt(0, "not a log object (bad magic)".into()));
    }
    let mut pos = MAGIC.len();
    let mut out = Vec::new();
    while pos < object.len() {
        let total = match codec::parse_frame(&object[pos..]) {
            FrameParse::Complete { total } => total,
            FrameParse::Incomplete { need } => return Err(corrupt(pos, format!("truncated frame ({need} bytes)"))),
            FrameParse::Corrupt(e) => return Err(corrupt(pos, e)),
        };
        let body = object.slice(pos + codec::FRAME_HEADER..pos + total);
        let WalEntry::Data { log_id, segment_base, records, .. } =
            codec::decode_wal_body(&body).map_err(|e| corrupt(pos, e))?
        else {
            return Err(corrupt(pos, "a log object holds data frames only".into()));
        };
        let records_at = body.len() - records.len();
        let mut decoded = Vec::new();
        for (at, len) in codec::split_records(records).map_err(|e| corrupt(pos, e))? {
            let inner = body.slice(records_at + at + codec::FRAME_HEADER..records_at + at + len);
            decoded.push(codec::decode_record(&inner, segment_base).map_err(|e| corrupt(pos, e))?);
        }
        out.push((log_id, decoded));
        pos += total;
    }
    Ok(out)
}
