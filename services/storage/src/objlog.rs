//! Object-store durability (docs/durability.md, "Object store"): a record of a log in this mode
//! is acknowledged only once it is in an object in the bucket and that object's ranges are
//! committed by the caller's [`LogObjectCommitter`] (the metadata store, under each partition's
//! epoch).
//!
//! After its WAL group commit, a record of such a log is written to its segment and queued here
//! instead of being made visible. One task gathers the queued records of every such log into
//! one object `{prefix}/{seq:020}` at most once per window (so the PUTs follow the window, not
//! the number of partitions: an object goes a window after the one before, or at once when none
//! went in the last window), PUTs it, commits it, and only then makes the records visible and
//! completes their appenders. Several objects may be PUT at once, but their ranges are
//! committed one after another in WAL order, so a log's committed ranges are contiguous: a
//! failed PUT or commit is retried, never skipped, and later objects wait for it. (The same
//! writer sends batches to the replicas of replicated durability, with no window.) An appender
//! still waiting when its log's `max_wait` has passed gets `Unavailable` (it may still be
//! committed later, as a Pulsar send that timed out may have been stored); the backlog is
//! bounded (`max_backlog_bytes`): appends are refused beyond it rather than queued without end.
//!
//! An object is `MAGIC` followed by the records' WAL data frames as they were written to the WAL
//! (the codec's checksummed frames); [`decode_log_object`] reads them back for recovery.

use crate::codec::{self, FrameParse, WalEntry};
use crate::partition::PartitionLog;
use crate::record::Record;
use crate::tier::ObjectTier;
use crate::{Result, StorageError};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};

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

/// Commits the ranges of objects that are in the bucket (the metadata store's log-object
/// index), several at once and in order: `(key, ranges)` each. Each range is conditional on its
/// log's epoch: the logs whose range was refused (fenced: another broker owns the partition
/// now) are returned with the reason, per object; the others are committed.
#[async_trait::async_trait]
pub trait LogObjectCommitter: Send + Sync {
    async fn commit(&self, objects: &[(String, Vec<ObjectRange>)]) -> Result<Vec<Vec<(u64, String)>>>;
}

/// Makes one batch of records durable beyond this broker's disk: the object store (a PUT, then
/// the committer's commit) or the peer brokers of replicated durability. Called one batch at a
/// time, in WAL order; an error is retried with the same batch.
#[async_trait::async_trait]
pub trait DurableSink: Send + Sync {
    /// The writer's first batch will be numbered `seq`; later ones follow one by one.
    fn begin(&self, _seq: u64) {}
    /// Makes `object` (number `seq` of this writer) durable with its `ranges`; returns the logs
    /// whose range was refused (fenced), with the reason.
    async fn commit(&self, seq: u64, object: Bytes, ranges: &[ObjectRange]) -> Result<Vec<(u64, String)>>;
}

/// The object-store sink: PUT under `{prefix}/{seq:020}`, then commit the ranges. PUTs of
/// several objects run side by side; their commits go in sequence order: a later range
/// committed before an earlier one would leave a gap in a partition's ranges if the broker
/// died between them, and a new owner refuses to serve across a gap. The object whose turn it
/// is commits, in one call, every object after it whose PUT is done too (a group commit of the
/// metadata: with slow commits, objects would otherwise queue behind one transaction each).
struct ObjectStoreSink {
    tier: Arc<ObjectTier>,
    committer: Arc<dyn LogObjectCommitter>,
    prefix: String,
    /// The object whose ranges are committed next.
    turn: watch::Sender<u64>,
    /// Objects in the bucket waiting for their commit, by number.
    ready: parking_lot::Mutex<BTreeMap<u64, ReadyObject>>,
}

/// An object PUT and waiting for its ranges' commit; `done` gets the commit's answer.
struct ReadyObject {
    key: String,
    ranges: Vec<ObjectRange>,
    done: oneshot::Sender<Result<Vec<(u64, String)>>>,
}

#[async_trait::async_trait]
impl DurableSink for ObjectStoreSink {
    fn begin(&self, seq: u64) {
        self.turn.send_replace(seq);
    }

    async fn commit(&self, seq: u64, object: Bytes, ranges: &[ObjectRange]) -> Result<Vec<(u64, String)>> {
        let key = format!("{}/{seq:020}", self.prefix);
        let started = Instant::now();
        let size = object.len();
        self.tier.put_urgent_object(&key, object).await?;
        self.tier.metrics().object_log_put_seconds.observe(started.elapsed().as_secs_f64());
        tracing::debug!(seq, bytes = size, put_ms = started.elapsed().as_millis() as u64, "log object put");
        let (done, mut answer) = oneshot::channel();
        self.ready.lock().insert(seq, ReadyObject { key, ranges: ranges.to_vec(), done });
        let mut turn = self.turn.subscribe();
        loop {
            tokio::select! {
                // The answer first: after a failed group commit both branches are ready (the
                // turn stays on us), and taking the turn again would commit an empty group.
                biased;
                // Committed by the object whose turn it was, with its group.
                res = &mut answer => return res.unwrap_or(Err(StorageError::ShuttingDown)),
                // Our turn: nobody else commits until the turn moves, so our entry is still
                // there. (The sender lives in `self`: waiting cannot fail.)
                ours = turn.wait_for(|next| *next == seq) => drop(ours),
            }
            self.commit_group(seq).await;
        }
    }
}

impl ObjectStoreSink {
    /// Commits the ready objects from `first` on, as long as they are consecutive, and answers
    /// each; the turn moves past them once committed (and stays on `first` if the commit failed:
    /// each is retried by the writer, in order).
    async fn commit_group(&self, first: u64) {
        let group: Vec<ReadyObject> = {
            let mut ready = self.ready.lock();
            (first..).map_while(|s| ready.remove(&s)).collect()
        };
        if group.is_empty() {
            return;
        }
        let objects: Vec<(String, Vec<ObjectRange>)> =
            group.iter().map(|o| (o.key.clone(), o.ranges.clone())).collect();
        match self.committer.commit(&objects).await {
            Ok(answers) => {
                self.turn.send_replace(first + group.len() as u64);
                for (o, fenced) in group.into_iter().zip(answers) {
                    let _ = o.done.send(Ok(fenced));
                }
            }
            Err(e) => {
                let why = e.to_string();
                for o in group {
                    let _ = o.done.send(Err(StorageError::Unavailable(why.clone())));
                }
            }
        }
    }
}

/// What a writer counts (object-store durability and replication have their own series).
#[derive(Clone)]
pub struct WriterMetrics {
    pub batches: prometheus::IntCounter,
    pub bytes: prometheus::IntCounter,
    pub failures: prometheus::IntCounter,
    pub backlog: prometheus::IntGauge,
}

impl WriterMetrics {
    fn object_store(m: &crate::StorageMetrics) -> Self {
        WriterMetrics {
            batches: m.object_log_objects.clone(),
            bytes: m.object_log_bytes.clone(),
            failures: m.object_log_failures.clone(),
            backlog: m.object_log_backlog.clone(),
        }
    }

    pub fn replication(m: &crate::StorageMetrics) -> Self {
        WriterMetrics {
            batches: m.replication_batches.clone(),
            bytes: m.replication_bytes.clone(),
            failures: m.replication_failures.clone(),
            backlog: m.replication_backlog.clone(),
        }
    }
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
    /// Batches in flight at once (their results are taken in order whatever order the sink
    /// confirms them in; the object-store sink PUTs them side by side and commits them in order).
    pub max_in_flight: usize,
}

impl Default for ObjectLogConfig {
    fn default() -> Self {
        ObjectLogConfig {
            prefix: "wal-objects/standalone".into(),
            window: Duration::from_millis(25),
            max_object_bytes: 8 << 20,
            max_backlog_bytes: 256 << 20,
            max_in_flight: 1,
        }
    }
}

/// Where a log's records go before they are acknowledged, besides the WAL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitKind {
    ObjectStore,
    Replicated,
}

/// A log's durability beyond the WAL, as its owner set it at load: the writer its records wait
/// for, the epoch they are committed under, how long an appender waits.
#[derive(Clone)]
pub(crate) struct ObjectMode {
    pub epoch: i64,
    pub max_wait: Duration,
    pub kind: CommitKind,
    pub writer: Arc<ObjectLog>,
}

/// Records of one WAL data frame waiting for their object.
pub(crate) struct Waiting {
    pub part: Arc<PartitionLog>,
    pub mode: ObjectMode,
    pub start: u64,
    pub end: u64,
    pub frame: Bytes,
    pub queued: Instant,
    /// `None` once the appender was told the wait expired.
    pub done: Option<oneshot::Sender<Result<()>>>,
}

/// The writer's handle, shared by the logs (see the module docs).
pub struct ObjectLog {
    tx: mpsc::UnboundedSender<Waiting>,
    metrics: WriterMetrics,
    config: ObjectLogConfig,
    backlog: Arc<AtomicUsize>,
    /// Objects committed so far (metrics and tests).
    pub committed_objects: Arc<AtomicU64>,
    /// The sequence number of the last object committed: this writer never commits an object
    /// numbered at or below it again.
    committed_through: Arc<AtomicU64>,
    /// Whether the oldest batch failed to commit and waits for its retry (`retrying`).
    retrying: Arc<AtomicBool>,
}

impl ObjectLog {
    /// Starts the object-store writer task on the current runtime.
    pub fn start(tier: Arc<ObjectTier>, committer: Arc<dyn LogObjectCommitter>, config: ObjectLogConfig) -> Arc<Self> {
        let metrics = WriterMetrics::object_store(tier.metrics());
        let sink = ObjectStoreSink {
            tier,
            committer,
            prefix: config.prefix.clone(),
            turn: watch::channel(0).0,
            ready: parking_lot::Mutex::new(BTreeMap::new()),
        };
        Self::start_with(Arc::new(sink), metrics, config)
    }

    /// Starts a writer of batches into `sink` (object store or replicas) on the current runtime.
    pub fn start_with(sink: Arc<dyn DurableSink>, metrics: WriterMetrics, config: ObjectLogConfig) -> Arc<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let backlog = Arc::new(AtomicUsize::new(0));
        let committed_objects = Arc::new(AtomicU64::new(0));
        let committed_through = Arc::new(AtomicU64::new(0));
        let retrying = Arc::new(AtomicBool::new(false));
        let writer = Writer {
            sink,
            metrics: metrics.clone(),
            config: config.clone(),
            backlog: backlog.clone(),
            committed: committed_objects.clone(),
            committed_through: committed_through.clone(),
            retrying: retrying.clone(),
            seq: 0,
            last_launch: None,
        };
        tokio::spawn(writer.run(rx));
        Arc::new(ObjectLog { tx, metrics, config, backlog, committed_objects, committed_through, retrying })
    }

    /// Whether the oldest batch failed to commit (a replica down, the bucket unreachable) and
    /// has not been committed since: records queued now wait until it is.
    pub fn retrying(&self) -> bool {
        self.retrying.load(Ordering::Acquire)
    }

    /// The sequence number of the last object committed (0 before the first): objects of this
    /// writer numbered at or below it that no range references are garbage.
    pub fn committed_through(&self) -> u64 {
        self.committed_through.load(Ordering::Acquire)
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
        // The gauge may be shared by several writers (one per replica set): changes, not levels.
        self.backlog.fetch_add(w.frame.len(), Ordering::Relaxed);
        self.metrics.backlog.add(w.frame.len() as i64);
        if let Err(mpsc::error::SendError(w)) = self.tx.send(w) {
            self.backlog.fetch_sub(w.frame.len(), Ordering::Relaxed);
            self.metrics.backlog.sub(w.frame.len() as i64);
            if let Some(done) = w.done {
                let _ = done.send(Err(StorageError::ShuttingDown));
            }
        }
    }
}

struct Writer {
    sink: Arc<dyn DurableSink>,
    metrics: WriterMetrics,
    config: ObjectLogConfig,
    backlog: Arc<AtomicUsize>,
    committed: Arc<AtomicU64>,
    committed_through: Arc<AtomicU64>,
    retrying: Arc<AtomicBool>,
    seq: u64,
    /// When the last new batch went out: the next one goes a window later at the earliest.
    last_launch: Option<Instant>,
}

/// A batch being committed: what a retry sends again, and the appenders it completes.
struct Flight {
    seq: u64,
    body: Bytes,
    ranges: Arc<Vec<ObjectRange>>,
    waiting: Vec<Waiting>,
    /// The delay before the next attempt, after a failure.
    backoff: Duration,
}

type Commit = Pin<Box<dyn Future<Output = Result<Vec<(u64, String)>>> + Send>>;

impl Writer {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Waiting>) {
        // A process's objects are numbered from its start time: keys never repeat across
        // restarts of one session prefix, and sort in writing order.
        self.seq = crate::now_ms().max(0) as u64 * 1000;
        self.sink.begin(self.seq + 1);
        let mut carry: Vec<Waiting> = Vec::new();
        // Batches in flight, oldest first, and their commits: results are taken in the same
        // order, so records become visible in WAL order whatever order the sink confirms in.
        let mut flights: VecDeque<Flight> = VecDeque::new();
        let mut commits: FuturesOrdered<Commit> = FuturesOrdered::new();
        let mut open = true;
        let mut tick = tokio::time::interval(EXPIRY_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            let room = flights.len() < self.config.max_in_flight.max(1);
            if room && !carry.is_empty() {
                let due = self.due(&carry);
                let mut bytes: usize = carry.iter().map(|w| w.frame.len()).sum();
                if !open || bytes >= self.config.max_object_bytes || Instant::now() >= due {
                    // The window is over (records queued while earlier batches were in flight
                    // start with an expired one): take what is queued now too. Without this,
                    // a writer that fell behind would close batches of a frame or two and never
                    // catch up.
                    while bytes < self.config.max_object_bytes {
                        let Ok(w) = rx.try_recv() else { break };
                        bytes += w.frame.len();
                        carry.push(w);
                    }
                    // Cut at the size bound; the rest starts the next batch.
                    let mut size = MAGIC.len();
                    let cut = carry
                        .iter()
                        .position(|w| {
                            size += w.frame.len();
                            size > self.config.max_object_bytes
                        })
                        .map_or(carry.len(), |i| i.max(1));
                    let rest = carry.split_off(cut);
                    let flight = self.build(std::mem::replace(&mut carry, rest));
                    tracing::debug!(
                        seq = flight.seq,
                        frames = flight.waiting.len(),
                        bytes = flight.body.len(),
                        in_flight = flights.len(),
                        queued_ms = flight.waiting.first().map_or(0, |w| w.queued.elapsed().as_millis() as u64),
                        "log batch sent"
                    );
                    commits.push_back(self.launch(&flight, Duration::ZERO));
                    flights.push_back(flight);
                    self.last_launch = Some(Instant::now());
                    continue;
                }
            }
            if !open && carry.is_empty() && flights.is_empty() {
                return;
            }
            let window_end = (room && !carry.is_empty()).then(|| tokio::time::Instant::from_std(self.due(&carry)));
            tokio::select! {
                biased;
                Some(res) = commits.next(), if !flights.is_empty() => {
                    let mut flight = flights.pop_front().expect("one flight per commit");
                    match res {
                        Ok(fenced) => self.finish(flight, fenced),
                        Err(e) => {
                            tracing::warn!(seq = flight.seq, error = %e, retry_in_ms = flight.backoff.as_millis() as u64,
                                "log batch not committed; retrying (its records are not acknowledged meanwhile)");
                            self.metrics.failures.inc();
                            self.retrying.store(true, Ordering::Release);
                            expire(&mut flight.waiting, Instant::now());
                            // Retried before any later batch is taken: commits stay in order.
                            commits.push_front(self.launch(&flight, flight.backoff));
                            flight.backoff = (flight.backoff * 2).min(Duration::from_secs(2));
                            flights.push_front(flight);
                        }
                    }
                }
                w = rx.recv(), if open => match w {
                    Some(w) => carry.push(w),
                    None => open = false,
                },
                _ = sleep_until_some(window_end), if window_end.is_some() => {}
                // Appenders are told their wait expired while a commit hangs (a peer or the
                // store not answering) or is retried.
                _ = tick.tick() => {
                    let now = Instant::now();
                    for f in flights.iter_mut() {
                        expire(&mut f.waiting, now);
                    }
                    expire(&mut carry, now);
                }
            }
        }
    }

    /// When the queued records (`carry`, not empty) go out as a batch: a window after the last
    /// batch went, or as soon as they came when that is already past. The window spaces the
    /// batches (the PUTs of object-store durability: at most one per window, whatever the
    /// number of partitions) without holding records that find none sent in the last window: a
    /// producer whose next messages wait for its acknowledgements (a client's pending-message
    /// bound) sends them right after an object is committed, and they go a window after that
    /// object went, not a window after they came.
    fn due(&self, carry: &[Waiting]) -> Instant {
        // A due time already past means "now" either way: the records came before it.
        self.last_launch.map_or(carry[0].queued, |at| at + self.config.window)
    }

    /// Numbers a batch and lays out its body and per-log ranges.
    fn build(&mut self, waiting: Vec<Waiting>) -> Flight {
        self.seq += 1;
        let mut body = BytesMut::with_capacity(MAGIC.len() + waiting.iter().map(|w| w.frame.len()).sum::<usize>());
        body.extend_from_slice(MAGIC);
        let mut ranges: BTreeMap<u64, ObjectRange> = BTreeMap::new();
        for w in &waiting {
            body.extend_from_slice(&w.frame);
            let r = ranges.entry(w.part.log_id()).or_insert(ObjectRange {
                log_id: w.part.log_id(),
                start: w.start,
                end: w.end,
                epoch: w.mode.epoch,
            });
            // A log's frames are not always queued in offset order: a replicated log moving
            // off a dead peer sends its tail again while new appends go out, so one batch may
            // hold a new frame before an older one. The range spans them all (with
            // object-store durability frames come in order and the range is contiguous).
            r.start = r.start.min(w.start);
            r.end = r.end.max(w.end);
        }
        Flight {
            seq: self.seq,
            body: body.freeze(),
            ranges: Arc::new(ranges.into_values().collect()),
            waiting,
            backoff: Duration::from_millis(50),
        }
    }

    /// One attempt at committing `flight`, after `delay`.
    fn launch(&self, flight: &Flight, delay: Duration) -> Commit {
        let (sink, seq, body, ranges) = (self.sink.clone(), flight.seq, flight.body.clone(), flight.ranges.clone());
        Box::pin(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            sink.commit(seq, body, &ranges).await
        })
    }

    /// A batch is committed: its records become visible (but those of fenced logs) and their
    /// appenders are answered.
    fn finish(&self, flight: Flight, fenced: Vec<(u64, String)>) {
        tracing::debug!(
            seq = flight.seq,
            since_first_queued_ms = flight.waiting.first().map_or(0, |w| w.queued.elapsed().as_millis() as u64),
            "log batch committed"
        );
        self.committed.fetch_add(1, Ordering::Relaxed);
        self.committed_through.store(flight.seq, Ordering::Release);
        self.retrying.store(false, Ordering::Release);
        let m = &self.metrics;
        m.batches.inc();
        m.bytes.inc_by(flight.body.len() as u64);
        let done: usize = flight.waiting.iter().map(|w| w.frame.len()).sum();
        self.backlog.fetch_sub(done, Ordering::Relaxed);
        m.backlog.sub(done as i64);
        for w in flight.waiting {
            let log_id = w.part.log_id();
            let res = match fenced.iter().find(|(id, _)| *id == log_id) {
                Some((_, why)) => {
                    Err(StorageError::Unavailable(format!("log {log_id}: its records were not committed: {why}")))
                }
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
}

async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// How often appenders waiting on a commit in progress are checked against their wait.
const EXPIRY_TICK: Duration = Duration::from_millis(50);

/// Tells the appenders whose wait has expired that their records are not acknowledged.
fn expire(waiting: &mut [Waiting], now: Instant) {
    for w in waiting.iter_mut() {
        if now.duration_since(w.queued) >= w.mode.max_wait
            && let Some(done) = w.done.take()
        {
            let by = match w.mode.kind {
                CommitKind::ObjectStore => "the object store",
                CommitKind::Replicated => "its ack quorum of replicas",
            };
            let _ = done.send(Err(StorageError::NotYetDurable(format!(
                "log {}: not acknowledged by {by} within {} ms",
                w.part.log_id(),
                w.mode.max_wait.as_millis()
            ))));
        }
    }
}

/// The records of each log in a log object, in the order they were written.
pub fn decode_log_object(object: &Bytes) -> Result<Vec<(u64, Vec<Record>)>> {
    if object.len() < MAGIC.len() || &object[..MAGIC.len()] != MAGIC {
        return Err(corrupt("log object", 0, "not a log object (bad magic)".into()));
    }
    let mut pos = MAGIC.len();
    let mut out = Vec::new();
    while pos < object.len() {
        let total = frame_len(&object[pos..]).map_err(|e| corrupt("log object", pos, e))?;
        out.push(decode_data_frame(&object.slice(pos..pos + total)).map_err(|e| match e {
            StorageError::Corrupt { detail, position, .. } => corrupt("log object", pos + position as usize, detail),
            e => e,
        })?);
        pos += total;
    }
    Ok(out)
}

/// The length of the checksummed frame at the start of `buf`.
pub(crate) fn frame_len(buf: &[u8]) -> std::result::Result<usize, String> {
    match codec::parse_frame(buf) {
        FrameParse::Complete { total } => Ok(total),
        FrameParse::Incomplete { need } => Err(format!("truncated frame ({need} bytes)")),
        FrameParse::Corrupt(e) => Err(e),
    }
}

/// The log and records of one WAL data frame (header included, checksum verified).
pub fn decode_data_frame(frame: &Bytes) -> Result<(u64, Vec<Record>)> {
    let total = frame_len(frame).map_err(|e| corrupt("data frame", 0, e))?;
    let body = frame.slice(codec::FRAME_HEADER..total);
    let WalEntry::Data { log_id, segment_base, records, .. } =
        codec::decode_wal_body(&body).map_err(|e| corrupt("data frame", 0, e))?
    else {
        return Err(corrupt("data frame", 0, "a log object holds data frames only".into()));
    };
    let records_at = body.len() - records.len();
    let mut decoded = Vec::new();
    for (at, len) in codec::split_records(records).map_err(|e| corrupt("data frame", 0, e))? {
        let inner = body.slice(records_at + at + codec::FRAME_HEADER..records_at + at + len);
        decoded.push(codec::decode_record(&inner, segment_base).map_err(|e| corrupt("data frame", 0, e))?);
    }
    Ok((log_id, decoded))
}

fn corrupt(file: &str, position: usize, detail: String) -> StorageError {
    StorageError::Corrupt { file: file.into(), position: position as u64, detail }
}
