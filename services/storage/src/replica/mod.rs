//! Replica copies of other brokers' log streams (replicated durability); see docs/durability.md,
//! "Replicated" and "Failover".
//!
//! A peer keeps each source's stream (`{broker}/{session}`) batch by batch in chunk files
//! `{dir}/{source}/{seq:020}.replica`; the index of what they hold lives in memory and is rebuilt
//! at open. A chunk file is a run of entries `[u32 body_len][u32 crc32c(body)][body]` (little
//! endian, like the rest of storage), body = `[u32 n][n × (u64 log_id, u64 start, u64 end,
//! i64 epoch)]` followed by the batch's WAL data frames as the source sent them. Fences are in
//! `{dir}/fences.json`, the store's identity in `{dir}/store-id`.
//!
//! Contracts:
//! - [`ReplicaStore::append`] returns `Ok` only once the batch is fdatasync'ed. A source's
//!   batches are written one at a time, and those written while an fdatasync of their chunk runs
//!   share the next one (group commit, as the WAL does): a source with several batches in flight
//!   costs its peer one fdatasync per round, not per batch. A log fenced at a higher epoch than
//!   the batch's range is refused.
//! - [`ReplicaStore::fence_and_read`] is atomic with respect to appends: an append that returned
//!   `Ok` before it is in what it reads, and an append that returns after it was checked against
//!   the new fence. The fence is durable before the frames are returned.
//! - Trim points are kept in memory only: after a restart, trimmed frames are indexed again until
//!   the owner's next [`ReplicaStore::trim`] (they are only ever extra copies).
//! - [`merge_recovered`] is the recovering owner's pure merge of several peers' answers.
//! - [`ReplicaStore::id`] stays the same across restarts and changes only when the directory is
//!   lost (a volume replaced by a blank one): an owner seeing it change knows that what this
//!   peer acknowledged before is gone, and sends it again.

use crate::codec::{self, WalEntry};
use crate::direct;
use crate::error::IoContext;
use crate::fill;
use crate::objlog::{MAGIC, ObjectRange, decode_data_frame, frame_len};
use crate::record::{Record, RecordInput};
use crate::{Result, StorageError};
use bytes::{BufMut, Bytes, BytesMut};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::RwLock;

mod files;
mod wire;

use files::*;
pub use wire::{decode_frames, encode_frames, encode_test_frame, merge_recovered};

const CHUNK_EXT: &str = "replica";
const FENCES: &str = "fences.json";
const FENCES_TMP: &str = "fences.json.tmp";
const STORE_ID: &str = "store-id";
/// `[u32 body_len][u32 crc]` before each entry body.
const ENTRY_HEADER: usize = 8;
/// One range in an entry body: log_id, start, end, epoch.
const RANGE_LEN: usize = 32;
/// Header of one frame in the wire form of [`encode_frames`]: epoch, start, end, len.
const WIRE_HEADER: usize = 8 + 8 + 8 + 4;

/// Where and how a peer keeps its replica copies.
#[derive(Debug, Clone)]
pub struct ReplicaStoreConfig {
    pub dir: PathBuf,
    /// A source's next batch starts a new chunk file once its current one has passed this size.
    pub chunk_bytes: u64,
    /// Frames of a log fenced at a newer epoch than theirs are kept this long after the fence, for
    /// a recovery that reads again.
    pub fenced_retention: Duration,
    /// Chunk pages leave the page cache once fsynced, so that later writes reuse them (set
    /// with the storage's `page_cache_window_bytes`; see `pagecache`).
    pub drop_synced: bool,
    /// Chunks are written with direct I/O, not through the page cache (set with the storage's
    /// `direct_segment_writes`; see `direct`): each entry goes out as whole blocks, starting
    /// with the bytes of the last partial block, which it writes again unchanged.
    pub direct_writes: bool,
}

impl ReplicaStoreConfig {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ReplicaStoreConfig {
            dir: dir.into(),
            chunk_bytes: 64 << 20,
            fenced_retention: Duration::from_secs(600),
            drop_synced: false,
            direct_writes: false,
        }
    }
}

/// One stored WAL data frame of a log (header included) and the epoch it was written under.
/// A log a replica store holds frames of (`ReplicaStore::held`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldLog {
    pub log_id: u64,
    /// The highest epoch of its frames held.
    pub epoch: i64,
    /// Its last stored frame, for `ReplicaStore::discard`.
    pub mark: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFrame {
    pub epoch: i64,
    pub start: u64,
    pub end: u64,
    pub frame: Bytes,
}

type ChunkId = u64;

/// A stored frame in the index.
#[derive(Debug, Clone, Copy)]
struct FrameLoc {
    chunk: ChunkId,
    pos: u64,
    len: u32,
    start: u64,
    end: u64,
    epoch: i64,
}

struct Chunk {
    source: String,
    path: PathBuf,
    /// Kept open so that a read that took its snapshot before a sweep still reads the frames.
    file: Arc<File>,
    len: u64,
    /// Highest frame end per (log, epoch): all a sweep needs to know whether every frame is dead.
    spans: HashMap<(u64, i64), u64>,
    /// The chunk its source appends to: only deleted under the source's writer lock.
    current: bool,
    /// Entries written and not yet fdatasync'ed and indexed: the chunk is not dead meanwhile
    /// (their frames are in no span yet).
    pending: u32,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Fence {
    epoch: i64,
    /// Time of the latest fence_and_read of the log: a recovery still reading keeps its frames.
    fenced_at_ms: i64,
}

#[derive(Default)]
struct State {
    chunks: HashMap<ChunkId, Chunk>,
    index: HashMap<u64, Vec<FrameLoc>>,
    fences: BTreeMap<u64, Fence>,
    trims: HashMap<u64, u64>,
    /// Per log, the highest epoch whose frames no recovery will read (`ReplicaStore::discard`).
    discards: HashMap<u64, i64>,
    /// Per log, when its last frame was stored (a count of frames stored, store-wide): a
    /// discard decided before a later frame came is not applied.
    stored_at: HashMap<u64, u64>,
    frames_stored: u64,
    /// By directory name. Entries stay once created (a few bytes per source session) so that a
    /// source's chunk numbers never restart while the store is open.
    sources: HashMap<String, Arc<tokio::sync::Mutex<Writer>>>,
    next_chunk: ChunkId,
}

impl State {
    fn add_chunk(&mut self, chunk: Chunk) -> ChunkId {
        let id = self.next_chunk;
        self.next_chunk += 1;
        self.chunks.insert(id, chunk);
        id
    }

    fn add_frame(&mut self, log_id: u64, loc: FrameLoc) {
        // A frame of a discarded epoch coming in: its owner sends to this store (again), so
        // what it holds of the log is wanted after all.
        if self.discards.get(&log_id).is_some_and(|&d| loc.epoch <= d) {
            self.discards.remove(&log_id);
        }
        self.frames_stored += 1;
        self.stored_at.insert(log_id, self.frames_stored);
        if let Some(c) = self.chunks.get_mut(&loc.chunk) {
            let end = c.spans.entry((log_id, loc.epoch)).or_insert(0);
            *end = (*end).max(loc.end);
        }
        if self.trims.get(&log_id).is_none_or(|&t| loc.end > t) {
            self.index.entry(log_id).or_default().push(loc);
        }
    }

    fn remove_chunk(&mut self, id: ChunkId) -> Option<Chunk> {
        let chunk = self.chunks.remove(&id)?;
        let logs: HashSet<u64> = chunk.spans.keys().map(|&(log, _)| log).collect();
        for log in logs {
            if let Some(v) = self.index.get_mut(&log) {
                v.retain(|f| f.chunk != id);
                if v.is_empty() {
                    self.index.remove(&log);
                }
            }
        }
        Some(chunk)
    }

    fn is_dead(&self, chunk: &Chunk, now_ms: i64, retention_ms: i64) -> bool {
        chunk.pending == 0
            && chunk.spans.iter().all(|(&(log, epoch), &end)| {
                self.trims.get(&log).is_some_and(|&t| end <= t)
                    || self.discards.get(&log).is_some_and(|&d| epoch <= d)
                    || self.fences.get(&log).is_some_and(|f| f.epoch > epoch && now_ms - f.fenced_at_ms >= retention_ms)
            })
    }

    /// The chunks whose frames are all dead, split into closed ones and current ones.
    fn dead_chunks(&self, now_ms: i64, retention_ms: i64) -> (Vec<ChunkId>, Vec<(ChunkId, String)>) {
        let (mut closed, mut current) = (Vec::new(), Vec::new());
        for (&id, c) in &self.chunks {
            if self.is_dead(c, now_ms, retention_ms) {
                if c.current {
                    current.push((id, c.source.clone()));
                } else {
                    closed.push(id);
                }
            }
        }
        (closed, current)
    }
}

/// Appends of one source go through its writer, one at a time.
struct Writer {
    name: String,
    dir: PathBuf,
    /// The store's directory: fsynced when this source's directory is created.
    parent: PathBuf,
    next_seq: u64,
    current: Option<Current>,
    /// False until the source directory exists (and again once a sweep removed it).
    dir_ready: bool,
    /// New chunks are written with direct I/O (cleared when a chunk cannot be opened so).
    direct: bool,
    /// The buffer direct writes go out from.
    aligned: direct::Aligned,
}

struct Current {
    chunk: ChunkId,
    path: PathBuf,
    file: Arc<File>,
    len: u64,
    sync: Arc<ChunkSync>,
    /// Space written ahead of `len` (see `fill`).
    ahead: fill::Ahead,
    direct: Option<DirectChunk>,
}

/// A chunk written with direct I/O.
struct DirectChunk {
    /// The chunk opened with `O_DIRECT`.
    file: File,
    /// The bytes from the last block boundary at or below the chunk's length to its length:
    /// the next entry's write starts with them.
    tail: Vec<u8>,
}

impl Writer {
    /// The chunk the next entry goes to, starting a new one when there is none or it is full.
    fn chunk_for_write(&mut self, state: &Mutex<State>, chunk_bytes: u64) -> Result<&mut Current> {
        if self.current.as_ref().is_none_or(|c| c.len >= chunk_bytes) {
            self.roll(state)?;
        }
        Ok(self.current.as_mut().expect("a current chunk after roll"))
    }

    fn roll(&mut self, state: &Mutex<State>) -> Result<()> {
        if !self.dir_ready {
            fs::create_dir_all(&self.dir).ctx(&self.dir)?;
            sync_dir(&self.parent)?;
            self.dir_ready = true;
        }
        let path = self.dir.join(format!("{:020}.{CHUNK_EXT}", self.next_seq));
        let file = OpenOptions::new().read(true).write(true).create_new(true).open(&path).ctx(&path)?;
        self.next_seq += 1;
        sync_dir(&self.dir)?;
        let direct = if self.direct {
            match direct::open(&path) {
                Ok(file) => Some(DirectChunk { file, tail: Vec::new() }),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e,
                        "replica chunks cannot be written with direct I/O here; written through the page cache");
                    self.direct = false;
                    None
                }
            }
        } else {
            None
        };
        let file = Arc::new(file);
        let mut s = state.lock();
        self.close(&mut s);
        let chunk = Chunk {
            source: self.name.clone(),
            path: path.clone(),
            file: file.clone(),
            len: 0,
            spans: HashMap::new(),
            current: true,
            pending: 0,
        };
        let id = s.add_chunk(chunk);
        self.current = Some(Current {
            chunk: id,
            path,
            file,
            len: 0,
            sync: Arc::default(),
            ahead: fill::Ahead::default(),
            direct,
        });
        Ok(())
    }

    /// Stops appending to the current chunk: the next entry starts a new one.
    fn close(&mut self, s: &mut State) {
        self.cut_ahead();
        if let Some(c) = self.current.take()
            && let Some(chunk) = s.chunks.get_mut(&c.chunk)
        {
            chunk.current = false;
        }
    }

    /// Cuts the space written ahead of the current chunk's entries: a closed chunk, and every
    /// chunk of a store closed cleanly, holds entries only.
    fn cut_ahead(&mut self) {
        if let Some(c) = self.current.as_mut()
            && c.ahead.past(c.len)
        {
            if let Err(e) = c.file.set_len(c.len) {
                tracing::warn!(path = %c.path.display(), error = %e, "space written ahead of a replica chunk was not cut");
            }
            c.ahead = fill::Ahead::default();
        }
    }

    /// Whether the current chunk has too little space ahead and its last step is old enough.
    fn fill_due(&self, chunk_bytes: u64) -> bool {
        self.current.as_ref().is_some_and(|c| c.ahead.wanted(c.len, chunk_bytes) && c.ahead.due_in().is_zero())
    }

    /// Writes a step of space ahead of the current chunk's end when it is due (see `fill`);
    /// called while no batch of this source waits.
    fn fill_ahead(&mut self, chunk_bytes: u64) {
        if self.fill_due(chunk_bytes)
            && let Some(c) = self.current.as_mut()
            && let Err(e) = match &c.direct {
                Some(d) => c.ahead.top_up(&d.file, true, c.len, chunk_bytes),
                None => c.ahead.top_up(&c.file, false, c.len, chunk_bytes),
            }
        {
            tracing::warn!(path = %c.path.display(), error = %e, "writing space ahead of a replica chunk failed; none more for it");
            c.ahead.give_up(chunk_bytes);
        }
    }
}

/// The peer side of replicated durability: stores other brokers' streams, fences logs and reads
/// their frames back (see the module docs).
pub struct ReplicaStore {
    config: ReplicaStoreConfig,
    /// Appends hold it shared for their whole duration, a fence exclusively: see `fence_and_read`.
    gate: Arc<RwLock<()>>,
    state: Arc<Mutex<State>>,
    stored: Arc<AtomicU64>,
    /// Set by [`ReplicaStore::close`]: no more space is written ahead.
    closed: Arc<AtomicBool>,
    /// See [`ReplicaStore::id`].
    id: String,
}

impl Drop for ReplicaStore {
    /// A store dropped between appends (and space written ahead) leaves its chunks as entries
    /// only; [`ReplicaStore::close`] waits for those. A reopen cuts the space anyway; this
    /// keeps the files' sizes what is stored.
    fn drop(&mut self) {
        let s = self.state.lock();
        for writer in s.sources.values() {
            if let Ok(mut w) = writer.try_lock() {
                w.cut_ahead();
            }
        }
    }
}

impl ReplicaStore {
    /// Opens (or creates) the store and rebuilds its index from the chunk files, cutting a torn or
    /// corrupt last entry of a chunk. Blocking: call it from `spawn_blocking`.
    pub fn open(config: ReplicaStoreConfig) -> Result<Arc<Self>> {
        if config.chunk_bytes == 0 {
            return Err(StorageError::InvalidConfig("replica chunk_bytes must be positive".into()));
        }
        let dir = &config.dir;
        fs::create_dir_all(dir).ctx(dir)?;
        let id = store_id(dir)?;
        let mut state = State { fences: read_fences(dir)?, ..State::default() };
        let mut stored = 0;
        for entry in fs::read_dir(dir).ctx(dir)? {
            let entry = entry.ctx(dir)?;
            if entry.file_type().ctx(entry.path())?.is_dir() {
                let name = entry.file_name().to_string_lossy().into_owned();
                stored += load_source(&mut state, dir, &name, config.direct_writes)?;
            }
        }
        Ok(Arc::new(ReplicaStore {
            config,
            gate: Arc::new(RwLock::new(())),
            state: Arc::new(Mutex::new(state)),
            stored: Arc::new(AtomicU64::new(stored)),
            closed: Arc::default(),
            id,
        }))
    }

    /// This store's identity: made when its directory is first used and kept there, so it is
    /// the same after a restart and new after the directory was lost. A peer answers every
    /// batch with it; an owner that sees it change knows the peer no longer holds what it
    /// acknowledged before (docs/durability.md, "A peer that lost its disk").
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Stores one batch of `source`'s stream: `object` is a log object (MAGIC + data frames) and
    /// `ranges` give each of its logs' offsets and epoch. Returns the logs refused because they
    /// are fenced at a newer epoch, with the reason; every other frame is fdatasync'ed before
    /// this returns. A malformed batch is refused whole with `Corrupt`.
    pub async fn append(&self, source: &str, object: Bytes, ranges: &[ObjectRange]) -> Result<Vec<(u64, String)>> {
        let name = source_dir_name(source)?;
        let ranges = ranges.to_vec();
        let label = format!("replica batch of {source}");
        // Owned guards moved into the blocking task: if this future is dropped, the write still
        // finishes under the gate, so a fence never sees half an append.
        let gate = self.gate.clone().read_owned().await;
        let source_writer = self.writer(&name);
        let writer = source_writer.clone().lock_owned().await;
        let (state, stored, chunk_bytes) = (self.state.clone(), self.stored.clone(), self.config.chunk_bytes);
        // Directly written chunks have no pages in the page cache to drop.
        let drop_synced = self.config.drop_synced && !self.config.direct_writes;
        let refused = tokio::task::spawn_blocking(move || -> Result<Vec<(u64, String)>> {
            let _gate = gate;
            let mut writer = writer;
            let frames = parse_object(&object, &ranges).map_err(|(pos, detail)| corrupt(&label, pos, detail))?;
            let (kept, refused) = check_fences(&state.lock(), &ranges, &frames);
            if !kept.is_empty() {
                let frames: Vec<&ParsedFrame> = frames.iter().filter(|f| kept.contains_key(&f.log_id)).collect();
                let written = write_entry(&mut writer, &state, &stored, chunk_bytes, &object, &kept, &frames)?;
                // The source's next batch is written while this one's fdatasync runs, and the
                // next fdatasync covers it (see `sync_entry`).
                drop(writer);
                let synced = sync_entry(&written, drop_synced);
                index_entry(&state, &written, &kept, &frames, synced.is_ok());
                synced.map_err(|e| StorageError::io(&written.path, e))?;
            }
            Ok(refused)
        })
        .await
        .map_err(|e| StorageError::Unavailable(format!("replica append of {source} failed: {e}")))??;
        self.fill_ahead(source_writer);
        Ok(refused)
    }

    /// While no other batch of the source waits for its writer, its chunk gets space ahead (see
    /// `fill`): a step in a few hundred batches at low load, none under load. After the batch
    /// is answered, not before: a step written with direct I/O takes a fraction of a
    /// millisecond, which the batch would otherwise wait for.
    fn fill_ahead(&self, writer: Arc<tokio::sync::Mutex<Writer>>) {
        let (chunk_bytes, closed) = (self.config.chunk_bytes, self.closed.clone());
        let due = writer.try_lock().is_ok_and(|w| w.fill_due(chunk_bytes));
        if due {
            tokio::task::spawn_blocking(move || {
                // Checked under the writer lock, which `close` takes after setting it.
                if let Ok(mut w) = writer.try_lock()
                    && !closed.load(Ordering::SeqCst)
                {
                    w.fill_ahead(chunk_bytes);
                }
            });
        }
    }

    /// Stops writing space ahead and cuts what there is, once any step being written is done:
    /// every chunk then holds its entries only. Appends still work (without space ahead).
    pub async fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let writers: Vec<_> = self.state.lock().sources.values().cloned().collect();
        for writer in writers {
            writer.lock().await.cut_ahead();
        }
    }

    /// Fences `log_id` at `epoch` (kept at the highest epoch ever given, durable before this
    /// returns) and returns its stored frames ending after `from`, of every source and epoch,
    /// sorted by (start, epoch).
    pub async fn fence_and_read(&self, log_id: u64, epoch: i64, from: u64) -> Result<Vec<StoredFrame>> {
        // Exclusive: appends in flight finish first (and are read), later ones see the fence.
        let gate = self.gate.clone().write_owned().await;
        let (state, dir) = (self.state.clone(), self.config.dir.clone());
        let mut frames = tokio::task::spawn_blocking(move || -> Result<Vec<StoredFrame>> {
            let mut fences = state.lock().fences.clone();
            let fence = fences.entry(log_id).or_insert(Fence { epoch, fenced_at_ms: 0 });
            fence.epoch = fence.epoch.max(epoch);
            fence.fenced_at_ms = crate::now_ms();
            write_fences(&dir, &fences)?;
            let locs: Vec<(FrameLoc, Arc<File>, PathBuf)> = {
                let mut s = state.lock();
                s.fences = fences;
                let frames = s.index.get(&log_id).map_or(&[][..], |v| v.as_slice());
                frames
                    .iter()
                    .filter(|f| f.end > from)
                    .filter_map(|f| s.chunks.get(&f.chunk).map(|c| (*f, c.file.clone(), c.path.clone())))
                    .collect()
            };
            drop(gate);
            locs.into_iter().map(|(loc, file, path)| read_frame(&file, &path, loc)).collect()
        })
        .await
        .map_err(|e| StorageError::Unavailable(format!("fence of log {log_id} failed: {e}")))??;
        frames.sort_by_key(|f| (f.start, f.epoch));
        Ok(frames)
    }

    /// The owner uploaded `log_id` below `below` to object storage: its frames ending at or below
    /// it are no longer needed.
    pub fn trim(&self, log_id: u64, below: u64) {
        let mut s = self.state.lock();
        let t = s.trims.entry(log_id).or_insert(0);
        *t = (*t).max(below);
        let t = *t;
        if let Some(v) = s.index.get_mut(&log_id) {
            v.retain(|f| f.end > t);
            if v.is_empty() {
                s.index.remove(&log_id);
            }
        }
    }

    /// The logs this store holds frames of that are neither trimmed nor discarded: each with
    /// the highest epoch of those frames, and a mark of its last stored frame for `discard`.
    pub fn held(&self) -> Vec<HeldLog> {
        let s = self.state.lock();
        let mut held: HashMap<u64, HeldLog> = HashMap::new();
        for c in s.chunks.values() {
            for (&(log, epoch), &end) in &c.spans {
                let trimmed = s.trims.get(&log).is_some_and(|&t| end <= t);
                let discarded = s.discards.get(&log).is_some_and(|&d| epoch <= d);
                if !trimmed && !discarded {
                    let mark = s.stored_at.get(&log).copied().unwrap_or(0);
                    let h = held.entry(log).or_insert(HeldLog { log_id: log, epoch, mark });
                    h.epoch = h.epoch.max(epoch);
                }
            }
        }
        let mut held: Vec<HeldLog> = held.into_values().collect();
        held.sort_by_key(|h| h.log_id);
        held
    }

    /// No recovery will read the frames of `log_id` up to epoch `through` (their partition's
    /// recorded replica set names other brokers, or a later epoch, or none): the next sweep
    /// deletes the chunks holding nothing else. Not applied when a frame of the log was
    /// stored since `held` gave `mark` (the decision was made without it), and taken back
    /// when a frame of such an epoch is stored later (its owner sends here again). Not kept
    /// across a restart: it is decided again. Whether it was applied.
    pub fn discard(&self, log_id: u64, through: i64, mark: u64) -> bool {
        let mut s = self.state.lock();
        if s.stored_at.get(&log_id).copied().unwrap_or(0) != mark {
            return false;
        }
        let d = s.discards.entry(log_id).or_insert(through);
        *d = (*d).max(through);
        true
    }

    /// Deletes the chunk files all of whose frames are dead (trimmed, or fenced at a newer epoch
    /// for longer than `fenced_retention`) and the directories of sources left without chunks.
    /// Returns the bytes freed.
    pub async fn sweep(&self) -> Result<u64> {
        let (now, retention) = (crate::now_ms(), self.config.fenced_retention.as_millis() as i64);
        let (closed, current) = self.state.lock().dead_chunks(now, retention);
        let mut victims: Vec<Chunk> = {
            let mut s = self.state.lock();
            closed.into_iter().filter_map(|id| s.remove_chunk(id)).collect()
        };
        for (id, source) in current {
            let Some(writer) = self.state.lock().sources.get(&source).cloned() else { continue };
            let mut w = writer.lock().await;
            let mut s = self.state.lock();
            // Checked again under the writer lock: an append may have added a live frame.
            let dead = s.chunks.get(&id).is_some_and(|c| c.current && s.is_dead(c, now, retention));
            if dead && w.current.as_ref().is_some_and(|c| c.chunk == id) {
                w.close(&mut s);
                victims.extend(s.remove_chunk(id));
            }
        }
        let freed = victims.iter().map(|c| c.len).sum::<u64>();
        self.stored.fetch_sub(freed, Ordering::Relaxed);
        let paths: Vec<PathBuf> = victims.into_iter().map(|c| c.path).collect();
        tokio::task::spawn_blocking(move || {
            paths.iter().try_for_each(|p| match fs::remove_file(p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StorageError::io(p, e)),
                _ => Ok(()),
            })
        })
        .await
        .map_err(|e| StorageError::Unavailable(format!("replica sweep failed: {e}")))??;
        self.remove_empty_sources().await?;
        Ok(freed)
    }

    /// Bytes in chunk files now.
    pub fn stored_bytes(&self) -> u64 {
        self.stored.load(Ordering::Relaxed)
    }

    fn writer(&self, name: &str) -> Arc<tokio::sync::Mutex<Writer>> {
        let mut s = self.state.lock();
        let w = s.sources.entry(name.to_string()).or_insert_with(|| {
            Arc::new(tokio::sync::Mutex::new(Writer {
                name: name.to_string(),
                dir: self.config.dir.join(name),
                parent: self.config.dir.clone(),
                next_seq: 0,
                current: None,
                dir_ready: false,
                direct: self.config.direct_writes,
                aligned: direct::Aligned::default(),
            }))
        });
        w.clone()
    }

    /// Removes the directories of sources with no chunk left (dead broker sessions), each under
    /// its writer lock so that no append creates a chunk in it meanwhile.
    async fn remove_empty_sources(&self) -> Result<()> {
        let candidates: Vec<Arc<tokio::sync::Mutex<Writer>>> = {
            let s = self.state.lock();
            let busy: HashSet<&str> = s.chunks.values().map(|c| c.source.as_str()).collect();
            s.sources.iter().filter(|(n, _)| !busy.contains(n.as_str())).map(|(_, w)| w.clone()).collect()
        };
        for writer in candidates {
            // A busy writer is appending: its source is alive.
            let Ok(mut w) = writer.try_lock_owned() else { continue };
            let empty =
                w.dir_ready && w.current.is_none() && !self.state.lock().chunks.values().any(|c| c.source == w.name);
            if !empty {
                continue;
            }
            tokio::task::spawn_blocking(move || match fs::remove_dir(&w.dir) {
                Ok(()) => w.dir_ready = false,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => w.dir_ready = false,
                Err(e) => tracing::warn!(dir = %w.dir.display(), error = %e, "replica source directory not removed"),
            })
            .await
            .map_err(|e| StorageError::Unavailable(format!("replica sweep failed: {e}")))?;
        }
        Ok(())
    }
}
