//! Replica copies of other brokers' log streams (replicated durability); see docs/durability.md,
//! "Replicated" and "Failover".
//!
//! A peer keeps each source's stream (`{broker}/{session}`) batch by batch in chunk files
//! `{dir}/{source}/{seq:020}.replica`; the index of what they hold lives in memory and is rebuilt
//! at open. A chunk file is a run of entries `[u32 body_len][u32 crc32c(body)][body]` (little
//! endian, like the rest of storage), body = `[u32 n][n × (u64 log_id, u64 start, u64 end,
//! i64 epoch)]` followed by the batch's WAL data frames as the source sent them. Fences are in
//! `{dir}/fences.json`.
//!
//! Contracts:
//! - [`ReplicaStore::append`] returns `Ok` only once the batch is fdatasync'ed (one write and one
//!   fdatasync per batch). A log fenced at a higher epoch than the batch's range is refused.
//! - [`ReplicaStore::fence_and_read`] is atomic with respect to appends: an append that returned
//!   `Ok` before it is in what it reads, and an append that returns after it was checked against
//!   the new fence. The fence is durable before the frames are returned.
//! - Trim points are kept in memory only: after a restart, trimmed frames are indexed again until
//!   the owner's next [`ReplicaStore::trim`] (they are only ever extra copies).
//! - [`merge_recovered`] is the recovering owner's pure merge of several peers' answers.

use crate::codec::{self, WalEntry};
use crate::error::IoContext;
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
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::RwLock;

const CHUNK_EXT: &str = "replica";
const FENCES: &str = "fences.json";
const FENCES_TMP: &str = "fences.json.tmp";
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
}

impl ReplicaStoreConfig {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ReplicaStoreConfig { dir: dir.into(), chunk_bytes: 64 << 20, fenced_retention: Duration::from_secs(600) }
    }
}

/// One stored WAL data frame of a log (header included) and the epoch it was written under.
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
        chunk.spans.iter().all(|(&(log, epoch), &end)| {
            self.trims.get(&log).is_some_and(|&t| end <= t)
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
}

struct Current {
    chunk: ChunkId,
    file: Arc<File>,
    len: u64,
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
        let file = Arc::new(file);
        let mut s = state.lock();
        self.close(&mut s);
        let chunk =
            Chunk { source: self.name.clone(), path, file: file.clone(), len: 0, spans: HashMap::new(), current: true };
        let id = s.add_chunk(chunk);
        self.current = Some(Current { chunk: id, file, len: 0 });
        Ok(())
    }

    /// Stops appending to the current chunk: the next entry starts a new one.
    fn close(&mut self, s: &mut State) {
        if let Some(c) = self.current.take()
            && let Some(chunk) = s.chunks.get_mut(&c.chunk)
        {
            chunk.current = false;
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
        let mut state = State { fences: read_fences(dir)?, ..State::default() };
        let mut stored = 0;
        for entry in fs::read_dir(dir).ctx(dir)? {
            let entry = entry.ctx(dir)?;
            if entry.file_type().ctx(entry.path())?.is_dir() {
                let name = entry.file_name().to_string_lossy().into_owned();
                stored += load_source(&mut state, dir, &name)?;
            }
        }
        Ok(Arc::new(ReplicaStore {
            config,
            gate: Arc::new(RwLock::new(())),
            state: Arc::new(Mutex::new(state)),
            stored: Arc::new(AtomicU64::new(stored)),
        }))
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
        let writer = self.writer(&name).lock_owned().await;
        let (state, stored, chunk_bytes) = (self.state.clone(), self.stored.clone(), self.config.chunk_bytes);
        tokio::task::spawn_blocking(move || {
            let _gate = gate;
            let mut writer = writer;
            let frames = parse_object(&object, &ranges).map_err(|(pos, detail)| corrupt(&label, pos, detail))?;
            let (kept, refused) = check_fences(&state.lock(), &ranges, &frames);
            if !kept.is_empty() {
                let frames: Vec<&ParsedFrame> = frames.iter().filter(|f| kept.contains_key(&f.log_id)).collect();
                write_entry(&mut writer, &state, &stored, chunk_bytes, &object, &kept, &frames)?;
            }
            Ok(refused)
        })
        .await
        .map_err(|e| StorageError::Unavailable(format!("replica append of {source} failed: {e}")))?
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

/// A data frame of a log object.
struct ParsedFrame {
    log_id: u64,
    start: u64,
    end: u64,
    /// Its bytes in the object.
    at: usize,
    len: usize,
}

/// Checks a log object against its ranges: magic, every frame's checksum, every frame's log and
/// offsets inside its range. Errors carry the position in the object.
fn parse_object(object: &[u8], ranges: &[ObjectRange]) -> std::result::Result<Vec<ParsedFrame>, (usize, String)> {
    if object.len() < MAGIC.len() || &object[..MAGIC.len()] != MAGIC {
        return Err((0, "not a log object (bad magic)".into()));
    }
    let mut by_log: HashMap<u64, &ObjectRange> = HashMap::with_capacity(ranges.len());
    for r in ranges {
        if by_log.insert(r.log_id, r).is_some() {
            return Err((0, format!("log {} has two ranges", r.log_id)));
        }
    }
    let mut pos = MAGIC.len();
    let mut frames = Vec::new();
    while pos < object.len() {
        let len = frame_len(&object[pos..]).map_err(|e| (pos, e))?;
        let (log_id, start, end) = frame_span(&object[pos..pos + len]).map_err(|e| (pos, e))?;
        let Some(r) = by_log.get(&log_id) else {
            return Err((pos, format!("a frame of log {log_id}, which has no range in the batch")));
        };
        if start < r.start || end > r.end {
            return Err((
                pos,
                format!("frame {start}..{end} of log {log_id} is outside its range {}..{}", r.start, r.end),
            ));
        }
        frames.push(ParsedFrame { log_id, start, end, at: pos, len });
        pos += len;
    }
    Ok(frames)
}

/// Log and offsets `start..end` of a complete WAL data frame, from its headers alone.
fn frame_span(frame: &[u8]) -> std::result::Result<(u64, u64, u64), String> {
    let body = frame.get(codec::FRAME_HEADER..).ok_or("frame shorter than its header")?;
    let WalEntry::Data { log_id, count, records, .. } = codec::decode_wal_body(body)? else {
        return Err("not a data frame".into());
    };
    if count == 0 {
        return Err(format!("data frame of log {log_id} holds no records"));
    }
    let first = records.get(codec::FRAME_HEADER..).ok_or("data frame without a record")?;
    let start = codec::record_offset(first)?;
    let end = start.checked_add(u64::from(count)).ok_or("record offsets overflow")?;
    Ok((log_id, start, end))
}

/// Splits a batch's ranges into those to store (by log; only logs with frames) and the refused
/// ones: logs fenced at a newer epoch than the batch's.
fn check_fences(
    s: &State,
    ranges: &[ObjectRange],
    frames: &[ParsedFrame],
) -> (HashMap<u64, ObjectRange>, Vec<(u64, String)>) {
    let with_frames: HashSet<u64> = frames.iter().map(|f| f.log_id).collect();
    let (mut kept, mut refused) = (HashMap::new(), Vec::new());
    for r in ranges {
        match s.fences.get(&r.log_id) {
            Some(f) if f.epoch > r.epoch => refused.push((
                r.log_id,
                format!(
                    "log {} is fenced at epoch {} (the batch was written under epoch {})",
                    r.log_id, f.epoch, r.epoch
                ),
            )),
            _ if with_frames.contains(&r.log_id) => {
                kept.insert(r.log_id, *r);
            }
            _ => {}
        }
    }
    (kept, refused)
}

/// Writes one entry to the source's current chunk, fdatasyncs it and indexes its frames.
fn write_entry(
    writer: &mut Writer,
    state: &Mutex<State>,
    stored: &AtomicU64,
    chunk_bytes: u64,
    object: &[u8],
    ranges: &HashMap<u64, ObjectRange>,
    frames: &[&ParsedFrame],
) -> Result<()> {
    let frames_len: usize = frames.iter().map(|f| f.len).sum();
    let body_len = 4 + ranges.len() * RANGE_LEN + frames_len;
    let body_len32 = u32::try_from(body_len)
        .map_err(|_| corrupt("replica batch", 0, format!("batch of {body_len} bytes is too large")))?;
    let mut buf = Vec::with_capacity(ENTRY_HEADER + body_len);
    buf.extend_from_slice(&[0; ENTRY_HEADER]);
    buf.extend_from_slice(&(ranges.len() as u32).to_le_bytes());
    for r in ranges.values() {
        buf.extend_from_slice(&r.log_id.to_le_bytes());
        buf.extend_from_slice(&r.start.to_le_bytes());
        buf.extend_from_slice(&r.end.to_le_bytes());
        buf.extend_from_slice(&r.epoch.to_le_bytes());
    }
    let frames_at = buf.len() as u64;
    for f in frames {
        buf.extend_from_slice(&object[f.at..f.at + f.len]);
    }
    let crc = crc32c::crc32c(&buf[ENTRY_HEADER..]);
    buf[0..4].copy_from_slice(&body_len32.to_le_bytes());
    buf[4..8].copy_from_slice(&crc.to_le_bytes());

    let (chunk, pos, file) = {
        let c = writer.chunk_for_write(state, chunk_bytes)?;
        (c.chunk, c.len, c.file.clone())
    };
    if let Err(e) = file.write_all_at(&buf, pos).and_then(|()| file.sync_data()) {
        // What reached the disk is unknown: later batches go to a new chunk, and a reopen cuts
        // this entry if it is torn.
        let mut s = state.lock();
        let path = s.chunks.get(&chunk).map(|c| c.path.clone()).unwrap_or_default();
        writer.close(&mut s);
        return Err(StorageError::io(path, e));
    }
    let written = buf.len() as u64;
    if let Some(c) = writer.current.as_mut() {
        c.len += written;
    }
    stored.fetch_add(written, Ordering::Relaxed);
    let mut s = state.lock();
    if let Some(c) = s.chunks.get_mut(&chunk) {
        c.len += written;
    }
    let mut at = pos + frames_at;
    for f in frames {
        let epoch = ranges[&f.log_id].epoch;
        s.add_frame(f.log_id, FrameLoc { chunk, pos: at, len: f.len as u32, start: f.start, end: f.end, epoch });
        at += f.len as u64;
    }
    Ok(())
}

fn read_frame(file: &File, path: &Path, loc: FrameLoc) -> Result<StoredFrame> {
    let mut buf = vec![0; loc.len as usize];
    file.read_exact_at(&mut buf, loc.pos).ctx(path)?;
    // The entry checksum was verified when the frame was written or indexed; this catches what
    // the disk did since.
    frame_len(&buf).map_err(|e| corrupt(&path.display().to_string(), loc.pos as usize, e))?;
    Ok(StoredFrame { epoch: loc.epoch, start: loc.start, end: loc.end, frame: Bytes::from(buf) })
}

/// Indexes the chunk files of one source directory; returns their bytes.
fn load_source(state: &mut State, root: &Path, name: &str) -> Result<u64> {
    let dir = root.join(name);
    let mut seqs = Vec::new();
    for entry in fs::read_dir(&dir).ctx(&dir)? {
        let path = entry.ctx(&dir)?.path();
        let seq =
            path.extension().filter(|e| *e == CHUNK_EXT).and_then(|_| path.file_stem()?.to_str()?.parse::<u64>().ok());
        match seq {
            Some(seq) => seqs.push((seq, path)),
            None => tracing::warn!(path = %path.display(), "ignoring a file that is not a replica chunk"),
        }
    }
    seqs.sort();
    let mut bytes = 0;
    for (_, path) in &seqs {
        bytes += load_chunk(state, name, path)?;
    }
    let writer = Writer {
        name: name.to_string(),
        dir,
        parent: root.to_path_buf(),
        next_seq: seqs.last().map_or(0, |(s, _)| s + 1),
        current: None,
        dir_ready: true,
    };
    state.sources.insert(name.to_string(), Arc::new(tokio::sync::Mutex::new(writer)));
    Ok(bytes)
}

/// Indexes one chunk file, cutting a torn or corrupt last entry; returns the bytes kept.
fn load_chunk(state: &mut State, source: &str, path: &Path) -> Result<u64> {
    let file = OpenOptions::new().read(true).write(true).open(path).ctx(path)?;
    let size = file.metadata().ctx(path)?.len();
    let mut reader = BufReader::with_capacity(1 << 20, &file);
    let mut pos = 0u64;
    let mut entries = Vec::new();
    let mut body = Vec::new();
    while pos < size {
        match read_entry(&mut reader, pos, size, &mut body).ctx(path)? {
            EntryRead::Ok => {
                let frames =
                    parse_entry(&body, pos).map_err(|e| corrupt(&path.display().to_string(), pos as usize, e))?;
                entries.extend(frames);
                pos += (ENTRY_HEADER + body.len()) as u64;
            }
            EntryRead::Bad { detail, end } => {
                // Only the last entry can be torn by a crash (appends are sequential and the
                // source is told nothing before its fdatasync). Anything else is damage to
                // records that may be acknowledged: refuse to start rather than drop them.
                if end < size && !zeros_from(&file, end, size).ctx(path)? {
                    return Err(corrupt(&path.display().to_string(), pos as usize, detail));
                }
                tracing::warn!(path = %path.display(), position = pos, cut_bytes = size - pos, %detail,
                    "cutting a torn entry at the end of a replica chunk");
                file.set_len(pos).and_then(|()| file.sync_all()).ctx(path)?;
                break;
            }
        }
    }
    let chunk = Chunk {
        source: source.to_string(),
        path: path.to_path_buf(),
        file: Arc::new(file),
        len: pos,
        spans: HashMap::new(),
        current: false,
    };
    let id = state.add_chunk(chunk);
    for (log_id, mut loc) in entries {
        loc.chunk = id;
        state.add_frame(log_id, loc);
    }
    Ok(pos)
}

enum EntryRead {
    Ok,
    /// Not a valid entry; `end` is where the bytes it claims end (at most the file size).
    Bad {
        detail: String,
        end: u64,
    },
}

/// Reads the entry at `pos` (where `reader` is) into `body`, checking its length and checksum.
fn read_entry(reader: &mut impl Read, pos: u64, size: u64, body: &mut Vec<u8>) -> std::io::Result<EntryRead> {
    if size - pos < ENTRY_HEADER as u64 {
        return Ok(EntryRead::Bad { detail: "truncated entry header".into(), end: size });
    }
    let mut header = [0u8; ENTRY_HEADER];
    reader.read_exact(&mut header)?;
    let len = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes")) as u64;
    let crc = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
    let end = pos + ENTRY_HEADER as u64 + len;
    if len < 4 {
        return Ok(EntryRead::Bad { detail: format!("invalid entry length {len}"), end: end.min(size) });
    }
    if end > size {
        return Ok(EntryRead::Bad {
            detail: format!("entry of {len} bytes truncated at the end of the file"),
            end: size,
        });
    }
    body.clear();
    body.resize(len as usize, 0);
    reader.read_exact(body)?;
    if crc32c::crc32c(body) != crc {
        return Ok(EntryRead::Bad { detail: "entry checksum mismatch".into(), end });
    }
    Ok(EntryRead::Ok)
}

/// The frames of an entry body (checksum already verified) at file position `pos`.
fn parse_entry(body: &[u8], pos: u64) -> std::result::Result<Vec<(u64, FrameLoc)>, String> {
    let n = u32::from_le_bytes(body[0..4].try_into().expect("4 bytes")) as usize;
    let frames_at = 4 + n.checked_mul(RANGE_LEN).filter(|l| 4 + l <= body.len()).ok_or("entry ranges overflow")?;
    let u64_at = |at: usize| u64::from_le_bytes(body[at..at + 8].try_into().expect("8 bytes"));
    let epochs: HashMap<u64, i64> =
        (0..n).map(|i| 4 + i * RANGE_LEN).map(|at| (u64_at(at), u64_at(at + 24) as i64)).collect();
    let mut out = Vec::new();
    let mut at = frames_at;
    while at < body.len() {
        let rest = &body[at..];
        let len = rest.get(..4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize);
        let total =
            len.map(|l| codec::FRAME_HEADER + l).filter(|&t| t <= rest.len()).ok_or("frame overruns its entry")?;
        let (log_id, start, end) = frame_span(&rest[..total])?;
        let epoch = *epochs.get(&log_id).ok_or_else(|| format!("a frame of log {log_id} without a range"))?;
        let abs = pos + (ENTRY_HEADER + at) as u64;
        out.push((log_id, FrameLoc { chunk: 0, pos: abs, len: total as u32, start, end, epoch }));
        at += total;
    }
    Ok(out)
}

/// Whether the file holds only zero bytes from `from` to `size` (space a crash left unwritten).
fn zeros_from(file: &File, from: u64, size: u64) -> std::io::Result<bool> {
    let mut buf = vec![0u8; 1 << 16];
    let mut pos = from;
    while pos < size {
        let n = buf.len().min((size - pos) as usize);
        file.read_exact_at(&mut buf[..n], pos)?;
        if buf[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
        pos += n as u64;
    }
    Ok(true)
}

fn read_fences(dir: &Path) -> Result<BTreeMap<u64, Fence>> {
    let tmp = dir.join(FENCES_TMP);
    if tmp.exists() {
        // A write that did not reach its rename: the previous file is the state.
        fs::remove_file(&tmp).ctx(&tmp)?;
    }
    let path = dir.join(FENCES);
    match fs::read(&path) {
        Ok(data) => serde_json::from_slice(&data).map_err(|e| corrupt(&path.display().to_string(), 0, e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(StorageError::io(&path, e)),
    }
}

/// Replaces the fences file atomically and durably.
fn write_fences(dir: &Path, fences: &BTreeMap<u64, Fence>) -> Result<()> {
    let (tmp, path) = (dir.join(FENCES_TMP), dir.join(FENCES));
    let data = serde_json::to_vec(fences).map_err(|e| StorageError::Unavailable(format!("fences not encoded: {e}")))?;
    let mut f = File::create(&tmp).ctx(&tmp)?;
    std::io::Write::write_all(&mut f, &data).and_then(|()| f.sync_all()).ctx(&tmp)?;
    fs::rename(&tmp, &path).ctx(&path)?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).ctx(dir)
}

/// A directory name for a source, one-to-one: `[A-Za-z0-9_-]` and non-leading dots are kept,
/// every other byte becomes `%XX` (so `b1/s1` is `b1%2Fs1`).
fn source_dir_name(source: &str) -> Result<String> {
    let mut name = String::with_capacity(source.len() + 8);
    for (i, b) in source.bytes().enumerate() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && i > 0) {
            name.push(b as char);
        } else {
            name.push_str(&format!("%{b:02X}"));
        }
    }
    if name.is_empty() || name.len() > 200 {
        return Err(corrupt("replica batch", 0, format!("invalid replica source name {source:?}")));
    }
    Ok(name)
}

fn corrupt(file: &str, position: usize, detail: String) -> StorageError {
    StorageError::Corrupt { file: file.into(), position: position as u64, detail }
}

/// The wire form of recovered frames: repeated `[i64 epoch][u64 start][u64 end][u32 len][frame]`,
/// big endian.
pub fn encode_frames(frames: &[StoredFrame]) -> Bytes {
    let mut buf = BytesMut::with_capacity(frames.iter().map(|f| WIRE_HEADER + f.frame.len()).sum());
    for f in frames {
        buf.put_i64(f.epoch);
        buf.put_u64(f.start);
        buf.put_u64(f.end);
        buf.put_u32(f.frame.len() as u32);
        buf.put_slice(&f.frame);
    }
    buf.freeze()
}

/// Reads [`encode_frames`]' form back, checking every length, every frame's checksum and that each
/// frame holds the offsets it is labelled with.
pub fn decode_frames(body: Bytes) -> Result<Vec<StoredFrame>> {
    let bad = |pos: usize, detail: String| corrupt("recovered replica frames", pos, detail);
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        let h = body.get(pos..pos + WIRE_HEADER).ok_or_else(|| bad(pos, "truncated frame header".into()))?;
        let epoch = i64::from_be_bytes(h[0..8].try_into().expect("8 bytes"));
        let start = u64::from_be_bytes(h[8..16].try_into().expect("8 bytes"));
        let end = u64::from_be_bytes(h[16..24].try_into().expect("8 bytes"));
        let len = u32::from_be_bytes(h[24..28].try_into().expect("4 bytes")) as usize;
        let at = pos + WIRE_HEADER;
        let frame = body.get(at..at + len).ok_or_else(|| bad(pos, format!("frame of {len} bytes truncated")))?;
        if frame_len(frame).map_err(|e| bad(at, e))? != len {
            return Err(bad(at, "frame length disagrees with its header".into()));
        }
        let (_, s, e) = frame_span(frame).map_err(|e| bad(at, e))?;
        if (s, e) != (start, end) {
            return Err(bad(at, format!("frame holds {s}..{e}, labelled {start}..{end}")));
        }
        out.push(StoredFrame { epoch, start, end, frame: body.slice(at..at + len) });
        pos = at + len;
    }
    Ok(out)
}

/// The recovering owner's merge of the frames several peers returned: the records from `next` on,
/// one per offset, contiguous.
///
/// At each offset the covering frame of the highest epoch wins, among those whose epoch is at
/// least the one used for the previous offset; the merge stops at the first offset no such frame
/// covers. A lower epoch's records after a higher epoch's are never used: an owner of the newer
/// epoch recovered every acknowledged record of the older ones before it wrote. Copies of one
/// frame from several peers are fine.
pub fn merge_recovered(next: u64, frames: Vec<StoredFrame>) -> Result<Vec<Record>> {
    let mut decoded: HashMap<usize, Vec<Record>> = HashMap::new();
    let mut log: Option<u64> = None;
    let mut out = Vec::new();
    let (mut offset, mut min_epoch) = (next, i64::MIN);
    loop {
        let covering = |f: &&StoredFrame| f.start <= offset && offset < f.end && f.epoch >= min_epoch;
        let Some((i, best)) = frames.iter().enumerate().filter(|(_, f)| covering(f)).max_by_key(|(_, f)| f.epoch)
        else {
            break;
        };
        // The winner keeps winning until its end or until a frame of a newer epoch starts.
        let run_end = frames
            .iter()
            .filter(|f| f.epoch > best.epoch && f.start > offset && f.start < best.end)
            .map(|f| f.start)
            .min()
            .unwrap_or(best.end);
        if let std::collections::hash_map::Entry::Vacant(v) = decoded.entry(i) {
            let (log_id, records) = decode_data_frame(&best.frame)?;
            if *log.get_or_insert(log_id) != log_id {
                return Err(corrupt("recovered replica frames", 0, format!("frames of logs {log:?} and {log_id}")));
            }
            v.insert(records);
        }
        let records = &decoded[&i];
        for o in offset..run_end {
            let r = records.get((o - best.start) as usize).filter(|r| r.offset == o).ok_or_else(|| {
                corrupt("recovered replica frames", 0, format!("frame {}..{} lacks offset {o}", best.start, best.end))
            })?;
            out.push(r.clone());
        }
        offset = run_end;
        min_epoch = best.epoch;
    }
    Ok(out)
}

/// A WAL data frame of `records` at offsets from `first_offset` (for tests of the replica path).
#[doc(hidden)]
pub fn encode_test_frame(log_id: u64, first_offset: u64, records: &[RecordInput]) -> Bytes {
    Bytes::from(codec::encode_data_frame(log_id, first_offset, first_offset, records).bytes)
}
