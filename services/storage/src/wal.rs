//! The write-ahead log and its group commit.
//!
//! One OS thread (the flusher) owns the active WAL file. Appenders queue encoded frames (bounded
//! by bytes through a semaphore: appenders wait when `wal_buffer_bytes` are queued); the flusher
//! takes everything queued (up to `wal_max_batch_bytes`), writes it with one vectored write,
//! calls `fdatasync` once, then publishes the records of logs with local durability (the
//! in-memory tail serves them until their segment write) and answers their appenders
//! (`publish_durable`), and has the data records written to their partitions' segments — by the
//! applier thread, or itself when nothing else is left to do. Logs with replicated or
//! object-store durability are completed once committed beyond this broker (`apply_batch`).
//! A partition whose records fill a large part of a commit has them written straight to its
//! segment instead (`Flusher::write_in_place`). WAL files are `wal/{seq:020}.wal`, plain runs
//! of frames (see `codec`).
//!
//! When the queue is empty the flusher writes a little space ahead of the active file's end
//! (`fill`), so that the next group commits overwrite allocated blocks and their `fdatasync`
//! commits no journal. The active file may thus end in fill: a clean stop and a roll cut it off,
//! and recovery takes fill where frames should be for the end of the log (`recovery`).
//!
//! Trimmed files are kept (up to `wal_recycle_files`) and overwritten as later ones
//! ([`next_file`]): their group commits then need no block allocation either, under any load.
//! Frames are salted per file (`codec::wal_salt`) so that what a reused file held before never
//! passes for new frames, and over that earlier content each group commit fills whole pages, so
//! that recovery can tell a page a crash left unwritten (`pages`).

use crate::codec::DataFrame;
use crate::config::StorageConfig;
use crate::error::IoContext;
use crate::metrics::StorageMetrics;
use crate::partition::PartitionLog;
use crate::record::Record;
use crate::{Result, StorageError};
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{IoSlice, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Instant;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

mod apply;
pub(crate) use apply::{Applier, ApplyJob};
use apply::{JobContext, Queued, publish_durable};

pub fn wal_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.wal"))
}

/// Where the trimmed WAL file `path` waits to be reused.
pub fn free_path(path: &Path) -> PathBuf {
    path.with_extension("free")
}

pub fn parse_wal_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".wal")?;
    if stem.len() != 20 {
        return None;
    }
    stem.parse().ok()
}

/// What one WAL file holds, as far as trimming cares.
#[derive(Debug, Clone)]
pub struct WalFileMeta {
    pub seq: u64,
    pub path: PathBuf,
    pub size: u64,
    /// Logs with data records in the file: their segments must be fsynced before it goes.
    pub logs: HashSet<u64>,
    /// Aux records need a checkpoint before the file goes.
    pub has_aux: bool,
    /// Its frames are salted (`codec::wal_salt`): the file may be reused once trimmable.
    pub salted: bool,
    /// The checksums of its whole pages as the flusher wrote them (`pages::PageSums`), when it
    /// was written by this process: trimming it for reuse then reads none of it back.
    pub page_sums: Vec<u32>,
}

impl WalFileMeta {
    pub fn new(seq: u64, path: PathBuf) -> Self {
        WalFileMeta { seq, path, size: 0, logs: HashSet::new(), has_aux: false, salted: true, page_sums: Vec::new() }
    }
}

/// Complete (rolled) WAL files, oldest first, plus the size of the one being written.
#[derive(Default)]
pub struct WalFiles {
    pub complete: VecDeque<WalFileMeta>,
    pub current_size: u64,
    /// Bytes of rolled files the applier has not reached yet.
    pub rolling: u64,
    /// Trimmed files kept to become later ones (`{seq}.free`, [`free_path`]), oldest first.
    pub free: VecDeque<PathBuf>,
}

pub(crate) enum WalItem {
    Data {
        part: Arc<PartitionLog>,
        base: u64,
        frame: DataFrame,
        /// Where each record lies in `frame` (`partition::positions`).
        pos: Vec<crate::segment::RecordPos>,
        /// Taken (to the in-memory tail) when the records are published before they are
        /// written to the segment (`Flusher::publish_durable`).
        records: Vec<Record>,
        /// Taken when the appender has been answered.
        done: Option<oneshot::Sender<Result<()>>>,
        /// The frame went to the log's replicas when it was queued (replicated durability):
        /// the records are published once both copies are in, not queued for them again.
        replicated: bool,
        /// Set by the flusher when the records went straight to their segment instead of the
        /// WAL (`Flusher::write_in_place`), with how that ended.
        in_segment: Option<std::result::Result<(), String>>,
        _permit: OwnedSemaphorePermit,
    },
    Aux {
        frame: Vec<u8>,
        done: oneshot::Sender<Result<()>>,
        _permit: OwnedSemaphorePermit,
    },
    Drop {
        part: Option<Arc<PartitionLog>>,
        frame: Vec<u8>,
        done: oneshot::Sender<Result<()>>,
    },
    /// Not written to the WAL: ordered behind the log's earlier frames (see `seal_active`).
    Seal {
        part: Arc<PartitionLog>,
        new_base: u64,
        done: mpsc::SyncSender<Result<()>>,
    },
    Shutdown,
}

impl WalItem {
    fn bytes(&self) -> &[u8] {
        match self {
            WalItem::Data { in_segment: Some(_), .. } => &[],
            WalItem::Data { frame, .. } => &frame.bytes,
            WalItem::Aux { frame, .. } | WalItem::Drop { frame, .. } => frame,
            WalItem::Seal { .. } | WalItem::Shutdown => &[],
        }
    }
}

/// The appenders' side of the WAL.
pub(crate) struct WalHandle {
    tx: mpsc::Sender<WalItem>,
    permits: Arc<Semaphore>,
    total_permits: usize,
    closed: AtomicBool,
}

impl WalHandle {
    pub fn new(buffer_bytes: usize) -> (Self, mpsc::Receiver<WalItem>) {
        let (tx, rx) = mpsc::channel();
        let total_permits = buffer_bytes.min(Semaphore::MAX_PERMITS).min(u32::MAX as usize);
        (
            WalHandle {
                tx,
                permits: Arc::new(Semaphore::new(total_permits)),
                total_permits,
                closed: AtomicBool::new(false),
            },
            rx,
        )
    }

    /// Waits until `bytes` fit in the WAL buffer (backpressure).
    pub async fn reserve(&self, bytes: usize) -> Result<OwnedSemaphorePermit> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StorageError::ShuttingDown);
        }
        let n = bytes.clamp(1, self.total_permits) as u32;
        self.permits.clone().acquire_many_owned(n).await.map_err(|_| StorageError::ShuttingDown)
    }

    pub fn send(&self, item: WalItem) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StorageError::ShuttingDown);
        }
        self.tx.send(item).map_err(|_| StorageError::ShuttingDown)
    }

    /// Refuses new items and tells the flusher to finish what is queued.
    pub fn close(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            let _ = self.tx.send(WalItem::Shutdown);
            self.permits.close();
        }
    }
}

/// State shared by the storage, its partitions and its threads.
pub(crate) struct Shared {
    pub config: StorageConfig,
    pub metrics: StorageMetrics,
    pub wal: WalHandle,
    tail_bytes: AtomicUsize,
    /// The object tier, once attached (reads of offloaded segments go through it).
    pub tier: std::sync::OnceLock<Arc<crate::tier::ObjectTier>>,
    /// The writer of object-store durability, once attached.
    pub object_log: std::sync::OnceLock<Arc<crate::objlog::ObjectLog>>,
    /// Local segment bytes not yet in the object store (the local disk budget's measure): the
    /// sum of every log's `Segments::pending`, each log moving it by the change of its own
    /// figure (see `PartitionLog::publish_pending`).
    local_pending: std::sync::atomic::AtomicU64,
    /// Clock of segment use across partitions: the order in which local copies of offloaded
    /// segments were last read (least recently read goes first when the disk needs room).
    pub use_tick: std::sync::atomic::AtomicU64,
    /// Queue of the sealer thread (see `partition::seal`).
    pub sealer: mpsc::Sender<crate::partition::SealMsg>,
    /// False once the sealer thread has ended: nobody waits for a seal any more.
    pub sealer_running: AtomicBool,
    /// Lets a test hold seals where their fsync would be.
    #[cfg(test)]
    pub seal_gate: Gate,
    /// Lets a test hold the applier's writes of records already answered.
    #[cfg(test)]
    pub write_gate: Gate,
    /// Lets a test hold a segment write where the disk takes it (under the segments' lock).
    #[cfg(test)]
    pub disk_gate: Gate,
}

/// Test hook: while held, a thread passing it waits there (as a slow disk makes it wait).
#[cfg(test)]
#[derive(Default)]
pub struct Gate {
    held: parking_lot::Mutex<bool>,
    released: parking_lot::Condvar,
    pub waiting: AtomicUsize,
    /// While set, the gated step fails instead (as a failing disk makes it).
    pub fail: AtomicBool,
}

#[cfg(test)]
impl Gate {
    pub fn hold(&self) {
        *self.held.lock() = true;
    }
    pub fn release(&self) {
        *self.held.lock() = false;
        self.released.notify_all();
    }
    pub fn pass(&self) {
        let mut held = self.held.lock();
        if *held {
            self.waiting.fetch_add(1, Ordering::SeqCst);
            while *held {
                self.released.wait(&mut held);
            }
            self.waiting.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Shared {
    pub fn new(
        config: StorageConfig,
        metrics: StorageMetrics,
        wal: WalHandle,
        sealer: mpsc::Sender<crate::partition::SealMsg>,
    ) -> Self {
        Shared {
            config,
            metrics,
            wal,
            tail_bytes: AtomicUsize::new(0),
            tier: std::sync::OnceLock::new(),
            object_log: std::sync::OnceLock::new(),
            local_pending: std::sync::atomic::AtomicU64::new(0),
            use_tick: std::sync::atomic::AtomicU64::new(0),
            sealer,
            sealer_running: AtomicBool::new(true),
            #[cfg(test)]
            seal_gate: Gate::default(),
            #[cfg(test)]
            write_gate: Gate::default(),
            #[cfg(test)]
            disk_gate: Gate::default(),
        }
    }
    pub fn add_tail(&self, n: usize) {
        self.tail_bytes.fetch_add(n, Ordering::Relaxed);
    }
    pub fn release_tail(&self, n: usize) {
        self.tail_bytes.fetch_sub(n, Ordering::Relaxed);
    }
    pub fn next_use_tick(&self) -> u64 {
        self.use_tick.fetch_add(1, Ordering::Relaxed) + 1
    }
    pub fn local_pending(&self) -> u64 {
        self.local_pending.load(Ordering::Relaxed)
    }
    /// One log's pending bytes went from `old` to `new`.
    pub fn adjust_local_pending(&self, old: u64, new: u64) {
        if new >= old {
            self.local_pending.fetch_add(new - old, Ordering::Relaxed);
        } else {
            self.local_pending.fetch_sub(old - new, Ordering::Relaxed);
        }
    }
    pub fn tail_over_budget(&self) -> bool {
        self.tail_bytes.load(Ordering::Relaxed) > self.config.read_cache_bytes
    }
}

/// Most durable batches waiting for the applier before the flusher waits too.
const APPLY_QUEUE: usize = 4;

/// The flusher thread's state.
pub(crate) struct Flusher {
    pub dir: PathBuf,
    pub file: File,
    pub seq: u64,
    pub current: WalFileMeta,
    pub shared: Arc<Shared>,
    apply: mpsc::SyncSender<ApplyJob>,
    /// Jobs handed to the applier and not finished yet.
    queued: Arc<Queued>,
    jobs: JobContext,
    pub failed: Option<String>,
    /// Space written ahead of the active file's end.
    ahead: crate::fill::Ahead,
    /// How far the active file's earlier content reaches, when it is a reused file.
    reused: u64,
    /// The page checksums of what the active file holds so far.
    sums: crate::pages::PageSums,
}

/// The frames a group commit writes to the WAL file, in order (before any padding frame): one
/// definition for the write and for the page checksums taken from it.
fn written_frames(batch: &[WalItem]) -> impl Iterator<Item = &[u8]> {
    batch.iter().map(WalItem::bytes).filter(|b| !b.is_empty())
}

/// What a group commit wrote to the WAL file: the salted headers of its frames
/// ([`written_frames`]) in order, then the padding frame if one ended the commit at a page
/// boundary.
#[derive(Default)]
struct Written {
    total: usize,
    heads: Vec<[u8; crate::codec::FRAME_HEADER]>,
    padding: Option<Vec<u8>>,
}

impl Flusher {
    /// Creates the WAL file `seq` and returns a flusher writing to it with the applier that
    /// follows it.
    pub fn create(
        dir: &Path,
        seq: u64,
        files: Arc<Mutex<WalFiles>>,
        shared: Arc<Shared>,
        on_roll: mpsc::Sender<crate::trim::TrimMsg>,
    ) -> Result<(Self, Applier)> {
        let path = wal_path(dir, seq);
        let (file, old) = next_file(dir, seq, &files)?;
        let (apply, rx) = mpsc::sync_channel(APPLY_QUEUE);
        let ctx = JobContext { files, on_roll };
        let queued = Arc::new(Queued::default());
        let applier = Applier { ctx: ctx.clone(), queued: queued.clone(), rx };
        let flusher = Flusher {
            dir: dir.to_path_buf(),
            file,
            seq,
            current: WalFileMeta::new(seq, path),
            shared,
            apply,
            queued,
            jobs: ctx,
            failed: None,
            ahead: crate::fill::Ahead::reused(old),
            reused: old,
            sums: Default::default(),
        };
        Ok((flusher, applier))
    }

    pub fn run(mut self, rx: mpsc::Receiver<WalItem>) {
        let max_batch = self.shared.config.wal_max_batch_bytes;
        let mut stopping = false;
        // An item taken to learn whether more work waits: it starts the next batch.
        let mut carry: Option<WalItem> = None;
        while !stopping {
            let first = match carry.take() {
                Some(item) => item,
                None => match self.wait_filling(&rx) {
                    Some(item) => item,
                    None => break,
                },
            };
            let mut bytes = first.bytes().len();
            let mut batch = vec![first];
            while bytes < max_batch {
                match rx.try_recv() {
                    Ok(item) => {
                        bytes += item.bytes().len();
                        batch.push(item);
                    }
                    Err(_) => break,
                }
            }
            stopping = batch.iter().any(|i| matches!(i, WalItem::Shutdown));
            self.commit(batch, &rx, &mut carry);
            if stopping {
                // Items that raced with `close`: complete them too (they were accepted).
                let rest: Vec<WalItem> = carry.take().into_iter().chain(rx.try_iter()).collect();
                if !rest.is_empty() {
                    self.commit(rest, &rx, &mut carry);
                }
            }
        }
        // A clean stop leaves the last file a plain run of frames, without fill.
        let cut = if self.failed.is_none() { self.cut_fill() } else { Ok(()) };
        if let Err(e) = cut.and_then(|()| self.file.sync_all()) {
            tracing::error!(error = %e, "final wal fsync failed");
        }
    }

    /// Waits for the next item (`None`: the queue is closed), topping up the space ahead of the
    /// active file's end meanwhile, a step at a time and no more often than `fill` allows. A
    /// step takes a few hundred microseconds at most, so an item arriving during one waits
    /// little.
    fn wait_filling(&mut self, rx: &mpsc::Receiver<WalItem>) -> Option<WalItem> {
        let limit = self.shared.config.wal_file_bytes;
        loop {
            // Not before the file's first frames: a storage that is opened and never written to
            // (most of them in tests, an idle broker) writes nothing ahead.
            let wanted = self.failed.is_none() && self.current.size > 0 && self.ahead.wanted(self.current.size, limit);
            if !wanted {
                return rx.recv().ok();
            }
            let due_in = self.ahead.due_in();
            if !due_in.is_zero() {
                match rx.recv_timeout(due_in) {
                    Ok(item) => return Some(item),
                    Err(mpsc::RecvTimeoutError::Timeout) => continue,
                    Err(mpsc::RecvTimeoutError::Disconnected) => return None,
                }
            }
            match rx.try_recv() {
                Ok(item) => return Some(item),
                Err(mpsc::TryRecvError::Disconnected) => return None,
                Err(mpsc::TryRecvError::Empty) => {}
            }
            let started = Instant::now();
            let stepped = self.ahead.top_up(&self.file, false, self.current.size, limit);
            self.shared.metrics.wal_space_ahead_seconds.observe(started.elapsed().as_secs_f64());
            if let Err(e) = stepped {
                // Not fatal: the file is appended to as before, and what part of the step was
                // written is cut at the stop like the rest.
                tracing::warn!(error = %e, path = %self.current.path.display(), "writing wal space ahead failed; none more for this file");
                self.ahead.give_up(limit);
            }
        }
    }

    /// Cuts the active file back to its frames if fill follows them, durably: a file that later
    /// files follow must end with its frames (recovery takes anything else for corruption).
    fn cut_fill(&mut self) -> std::io::Result<()> {
        if self.ahead.past(self.current.size) {
            self.file.set_len(self.current.size)?;
            self.file.sync_all()?;
            self.ahead = crate::fill::Ahead::default();
        }
        Ok(())
    }

    /// One group commit: write and fsync, then apply (here, or on the applier when the next
    /// group commit is waiting).
    fn commit(&mut self, mut batch: Vec<WalItem>, rx: &mpsc::Receiver<WalItem>, carry: &mut Option<WalItem>) {
        self.write_in_place(&mut batch);
        let out = match self.write_batch(&batch) {
            Ok(out) => out,
            Err(e) => {
                let msg = e.to_string();
                tracing::error!(error = %msg, "wal write failed; storage stops accepting writes");
                self.failed = Some(msg);
                Written::default()
            }
        };
        let written = out.total;
        let records: u64 = batch
            .iter()
            .map(|i| match i {
                WalItem::Data { in_segment: Some(_), .. } => 0,
                WalItem::Data { records, .. } => records.len() as u64,
                WalItem::Aux { .. } | WalItem::Drop { .. } => 1,
                WalItem::Seal { .. } | WalItem::Shutdown => 0,
            })
            .sum();
        if written > 0 {
            // Counted before the waiters are completed, so whoever they tell sees them counted.
            let m = &self.shared.metrics;
            m.wal_batch_records.observe(records as f64);
            m.wal_batch_bytes.observe(written as f64);
            m.wal_records.inc_by(records);
        }
        if carry.is_none() {
            *carry = rx.try_recv().ok();
        }
        let more = carry.is_some();
        let failed = self.failed.clone();
        // The next file is in place before the batch's waiters are told: once an append
        // returns, the file it filled is rolled (and registered right after, `Rolled`).
        let mut rolled = None;
        if written > 0 && self.current.size >= self.shared.config.wal_file_bytes {
            match self.roll() {
                Ok(done) => rolled = Some(done),
                Err(e) => {
                    tracing::error!(error = %e, "wal roll failed; storage stops accepting writes");
                    self.failed = Some(e.to_string());
                }
            }
        }
        // Answered now, the segment writes left to the applier: they need not delay the next
        // group commit.
        let writes_left = failed.is_none() && publish_durable(&mut batch);
        // After the answers: what this commit wrote (to the file it rolled, if it did).
        if written > 0 {
            for (frame, head) in written_frames(&batch).chain(out.padding.as_deref()).zip(&out.heads) {
                self.sums.feed(head);
                self.sums.feed(&frame[crate::codec::FRAME_HEADER..]);
            }
        }
        if let Some(done) = &mut rolled {
            done.page_sums = std::mem::take(&mut self.sums).into_whole();
        }
        self.dispatch(ApplyJob::Batch { items: batch, failed }, more || writes_left);
        if let Some(done) = rolled {
            self.dispatch(ApplyJob::Rolled(done), more);
        }
    }

    /// Writes the records of every log that fills at least `wal_bypass_bytes` of this group
    /// commit straight to its active segment and fsyncs it there, instead of through the WAL
    /// and into the segment after: large messages reach the disk once instead of twice (a
    /// 64 KB produce is bound by the disk's bandwidth, docs/benchmarks.md). The segment is then
    /// the records' only copy, and as safe: recovery reads the segments first and cuts only a
    /// torn tail, past every acknowledged record (the fsync returns before any acknowledgement),
    /// and earlier segments finish their seals first (`PartitionLog::make_durable`), so no gap
    /// can open below records the WAL no longer holds. Logs with replicated or object-store
    /// durability stay on the WAL, whose frames their replicas and objects take; so do logs with
    /// a seal or a drop in the same commit, which the applier orders.
    fn write_in_place(&mut self, batch: &mut [WalItem]) {
        let min = self.shared.config.wal_bypass_bytes;
        if min == 0 || self.failed.is_some() {
            return;
        }
        let mut sizes: HashMap<u64, usize> = HashMap::new();
        let mut excluded: HashSet<u64> = HashSet::new();
        for item in batch.iter() {
            match item {
                WalItem::Data { part, frame, replicated, .. } => {
                    if *replicated || part.object_mode().is_some() {
                        excluded.insert(part.log_id());
                    }
                    *sizes.entry(part.log_id()).or_default() += frame.bytes.len();
                }
                WalItem::Seal { part, .. } | WalItem::Drop { part: Some(part), .. } => {
                    excluded.insert(part.log_id());
                }
                _ => {}
            }
        }
        sizes.retain(|id, n| *n >= min && !excluded.contains(id));
        if sizes.is_empty() {
            return;
        }
        self.queued.wait_idle();
        let started = Instant::now();
        // Each chosen log: written, then made durable, or why not.
        let mut logs: HashMap<u64, (Arc<PartitionLog>, std::result::Result<(), String>)> = HashMap::new();
        for item in batch.iter() {
            if let WalItem::Data { part, base, frame, pos, .. } = item
                && sizes.contains_key(&part.log_id())
            {
                let (_, res) = logs.entry(part.log_id()).or_insert_with(|| (part.clone(), Ok(())));
                if res.is_ok() {
                    *res = part.write_records(*base, frame, pos).map_err(|e| e.to_string());
                }
            }
        }
        for (part, res) in logs.values_mut() {
            if res.is_ok() {
                *res = part.make_durable().map_err(|e| e.to_string());
            }
        }
        let mut bytes = 0;
        for item in batch.iter_mut() {
            if let WalItem::Data { part, frame, in_segment, .. } = item
                && let Some((_, res)) = logs.get(&part.log_id())
            {
                bytes += frame.bytes.len() as u64;
                *in_segment = Some(res.clone());
            }
        }
        let m = &self.shared.metrics;
        m.wal_bypass_seconds.observe(started.elapsed().as_secs_f64());
        m.wal_bypass_bytes.inc_by(bytes);
    }

    fn write_batch(&mut self, batch: &[WalItem]) -> Result<Written> {
        if let Some(f) = &self.failed {
            return Err(StorageError::Unavailable(format!("wal write failed: {f}")));
        }
        for item in batch {
            match item {
                WalItem::Data { part, in_segment: None, .. } => {
                    self.current.logs.insert(part.log_id());
                }
                WalItem::Aux { .. } => self.current.has_aux = true,
                _ => {}
            }
        }
        // Each frame goes out as its salted header and its body: the frames themselves stay as
        // encoded (the replicas and the object log use the same bytes).
        let salt = crate::codec::wal_salt(self.seq);
        let mut frames: Vec<&[u8]> = written_frames(batch).collect();
        // Over a reused file's earlier content each group commit ends at a page boundary, so no
        // page holds two commits: a page that a crash left unwritten then holds its earlier
        // content whole, which recovery recognizes by the file's page checksums (`pages`).
        let end = self.current.size + frames.iter().map(|f| f.len() as u64).sum::<u64>();
        let pad = if frames.is_empty() || self.current.size >= self.reused { 0 } else { pad_to_page(end) };
        let padding = (pad > 0).then(|| crate::codec::encode_pad_frame(pad as usize));
        frames.extend(padding.as_deref());
        let heads: Vec<[u8; crate::codec::FRAME_HEADER]> =
            frames.iter().map(|f| crate::codec::salted_header(f, salt)).collect();
        let mut slices: Vec<IoSlice<'_>> = frames
            .iter()
            .zip(&heads)
            .flat_map(|(f, h)| [IoSlice::new(h), IoSlice::new(&f[crate::codec::FRAME_HEADER..])])
            .collect();
        let total: usize = frames.iter().map(|f| f.len()).sum();
        if total == 0 {
            return Ok(Written::default());
        }
        let started = Instant::now();
        let mut bufs = &mut slices[..];
        while !bufs.is_empty() {
            let n = self.file.write_vectored(bufs).ctx(&self.current.path)?;
            if n == 0 {
                return Err(StorageError::io(&self.current.path, std::io::ErrorKind::WriteZero.into()));
            }
            IoSlice::advance_slices(&mut bufs, n);
        }
        self.file.sync_data().ctx(&self.current.path)?;
        let m = &self.shared.metrics;
        m.wal_fsync_seconds.observe(started.elapsed().as_secs_f64());
        m.wal_fsyncs.inc();
        m.wal_bytes_written.inc_by(total as u64);
        self.current.size += total as u64;
        self.jobs.files.lock().current_size = self.current.size;
        Ok(Written { total, heads, padding })
    }

    /// Starts the next WAL file and returns the current one's description. Everything in the
    /// current one is fsynced; it becomes trimmable once applied (the caller dispatches it as a
    /// `Rolled` job after every batch written to it).
    fn roll(&mut self) -> Result<WalFileMeta> {
        let seq = self.seq + 1;
        let path = wal_path(&self.dir, seq);
        // Fill stops at the file size that rolls, so a rolled file holds none; cut it if a
        // roll came before (the file must be frames only once complete).
        self.cut_fill().ctx(&self.current.path)?;
        let (file, old) = next_file(&self.dir, seq, &self.jobs.files)?;
        let done = std::mem::replace(&mut self.current, WalFileMeta::new(seq, path));
        self.file = file;
        self.seq = seq;
        self.ahead = crate::fill::Ahead::reused(old);
        self.reused = old;
        // Counted as complete right away (disk use), trimmable only once applied.
        {
            let mut files = self.jobs.files.lock();
            files.current_size = 0;
            files.rolling += done.size;
        }
        Ok(done)
    }

    /// Runs `job` here when nothing is waiting (no hop), or queues it behind the applier's jobs
    /// (order is kept: a job runs here only when the applier has none left).
    fn dispatch(&self, job: ApplyJob, more_waiting: bool) {
        if !more_waiting && self.queued.count() == 0 {
            self.jobs.run(job);
            return;
        }
        self.queued.add();
        // The applier outlives the flusher (it ends when this sender goes), so this only fails
        // if it panicked; the appenders then see their channels closed.
        let _ = self.apply.send(job);
    }
}

/// Opens the WAL file `seq` for the flusher: a trimmed file kept for reuse when there is one
/// (renamed, and overwritten from its start), else a new one. Returns it with how far the
/// earlier content reaches (0 for a new file).
///
/// Overwriting blocks that are allocated and written makes each group commit's `fdatasync`
/// write data only: no block allocation, no inode update (measured on the standard machine:
/// write + `fdatasync` 0.33–0.35 ms against 0.70–0.76 ms per group commit of saturated 1 KB
/// produce, docs/benchmarks.md).
/// PostgreSQL recycles its WAL segments and RocksDB its logs (`recycle_log_file_num`) for the
/// same reason. The earlier frames left after the new ones carry the earlier salt
/// (`codec::wal_salt`), so replay ends where the new frames end.
fn next_file(dir: &Path, seq: u64, files: &Mutex<WalFiles>) -> Result<(File, u64)> {
    let path = wal_path(dir, seq);
    loop {
        let Some(free) = files.lock().free.pop_front() else { break };
        // Its page checksums first: a reused file without them is judged strictly at recovery.
        let _ = std::fs::rename(crate::pages::pages_path(&free), crate::pages::pages_path(&path));
        if let Err(e) = std::fs::rename(&free, &path) {
            tracing::warn!(error = %e, file = %free.display(), "a wal file kept for reuse cannot be reused; deleting it");
            let _ = std::fs::remove_file(&free);
            // Its checksums describe no file at `path` now.
            let _ = std::fs::remove_file(crate::pages::pages_path(&path));
            continue;
        }
        // Durable before anything goes into it under its new name (replay reads `.wal` files
        // only), and positioned at its start.
        File::open(dir).and_then(|d| d.sync_all()).ctx(dir)?;
        let file = OpenOptions::new().write(true).open(&path).ctx(&path)?;
        let old = file.metadata().ctx(&path)?.len();
        return Ok((file, old));
    }
    Ok((open_wal_file(dir, &path)?, 0))
}

/// Bytes from `end` to the next page boundary, as a padding frame can fill them (at least its
/// header and type byte: a page more when fewer are left).
fn pad_to_page(end: u64) -> u64 {
    let page = crate::fill::PAGE;
    match (page - end % page) % page {
        0 => 0,
        n if n < crate::codec::FRAME_HEADER as u64 + 1 => n + page,
        n => n,
    }
}

/// Creates (or opens) the WAL file `path`, positioned at its end, and fsyncs its directory.
/// Not opened for appending: writes go at the file position, which stays at the end of the
/// frames when space is written ahead of them.
fn open_wal_file(dir: &Path, path: &Path) -> Result<File> {
    let mut file = OpenOptions::new().create(true).write(true).truncate(false).open(path).ctx(path)?;
    std::io::Seek::seek(&mut file, std::io::SeekFrom::End(0)).ctx(path)?;
    File::open(dir).and_then(|d| d.sync_all()).ctx(dir)?;
    Ok(file)
}
