//! The replica store's files: chunk entries (their layout in the module docs of `replica`),
//! the fences file, and the checks of a batch before it is stored.

use super::*;

/// A data frame of a log object.
pub(super) struct ParsedFrame {
    pub(super) log_id: u64,
    start: u64,
    end: u64,
    /// Its bytes in the object.
    at: usize,
    len: usize,
}

/// Checks a log object against its ranges: magic, every frame's checksum, every frame's log and
/// offsets inside its range. Errors carry the position in the object.
pub(super) fn parse_object(
    object: &[u8],
    ranges: &[ObjectRange],
) -> std::result::Result<Vec<ParsedFrame>, (usize, String)> {
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
pub(super) fn frame_span(frame: &[u8]) -> std::result::Result<(u64, u64, u64), String> {
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
pub(super) fn check_fences(
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

/// How far a chunk file is written and fdatasync'ed: the group commit of its source's batches.
#[derive(Default)]
pub(super) struct ChunkSync {
    /// End of the last complete write (stored after it returned; writes are sequential).
    written: AtomicU64,
    /// Held across an fdatasync, so that a batch waiting for it finds its bytes covered after.
    synced: Mutex<Synced>,
}

#[derive(Default)]
struct Synced {
    /// Everything below is on disk.
    len: u64,
    /// An fdatasync failed: nothing written after `len` is trusted any more (a later fdatasync
    /// may succeed although the kernel dropped the pages that failed).
    failed: bool,
    /// Bytes below this were dropped from the page cache (`pagecache`).
    dropped: u64,
}

impl ChunkSync {
    fn failed(&self) -> Option<u64> {
        let s = self.synced.lock();
        s.failed.then_some(s.len)
    }
}

/// An entry written to its chunk, not yet fdatasync'ed nor indexed.
pub(super) struct Written {
    chunk: ChunkId,
    pub(super) path: PathBuf,
    /// Position of its first frame and end of the entry in the chunk file.
    frames_at: u64,
    end: u64,
    file: Arc<File>,
    sync: Arc<ChunkSync>,
}

/// Writes one entry to the source's current chunk (the caller holds the source's writer).
/// The entry counts as pending in its chunk until [`index_entry`].
pub(super) fn write_entry(
    writer: &mut Writer,
    state: &Mutex<State>,
    stored: &AtomicU64,
    chunk_bytes: u64,
    object: &[u8],
    ranges: &HashMap<u64, ObjectRange>,
    frames: &[&ParsedFrame],
) -> Result<Written> {
    let frames_len: usize = frames.iter().map(|f| f.len).sum();
    let body_len = 4 + ranges.len() * RANGE_LEN + frames_len;
    if u32::try_from(body_len).is_err() {
        return Err(corrupt("replica batch", 0, format!("batch of {body_len} bytes is too large")));
    }
    let entry_len = ENTRY_HEADER + body_len;

    writer.cut_if_sync_failed(state, stored);
    writer.chunk_for_write(state, chunk_bytes)?;
    let Writer { current, aligned, .. } = &mut *writer;
    let c = current.as_mut().expect("a current chunk after chunk_for_write");
    let pos = c.len;
    let wrote = match &mut c.direct {
        Some(d) => {
            // Whole blocks from the last boundary: the tail again, the entry, fill to the end.
            let (tail, used) = (d.tail.len(), d.tail.len() + entry_len);
            let block_at = pos - tail as u64;
            let total = direct::round_up(used as u64);
            let out = aligned.get(total as usize);
            out[..tail].copy_from_slice(&d.tail);
            encode_entry(&mut out[tail..used], object, ranges, frames);
            fill::fill(&mut out[used..], block_at + used as u64);
            let wrote = d.file.write_all_at(out, block_at);
            if wrote.is_ok() {
                d.tail.clear();
                d.tail.extend_from_slice(&out[direct::round_down(used as u64) as usize..used]);
                c.ahead.covered(block_at + total);
            }
            wrote
        }
        None => {
            let mut buf = vec![0; entry_len];
            encode_entry(&mut buf, object, ranges, frames);
            c.file.write_all_at(&buf, pos)
        }
    };
    let (chunk, path, file, sync) = (c.chunk, c.path.clone(), c.file.clone(), c.sync.clone());
    if let Err(e) = wrote {
        // What reached the disk is unknown: later batches go to a new chunk, and a reopen cuts
        // this entry if it is torn.
        writer.close(&mut state.lock());
        return Err(StorageError::io(path, e));
    }
    let written = entry_len as u64;
    sync.written.store(pos + written, Ordering::Release);
    c.len += written;
    stored.fetch_add(written, Ordering::Relaxed);
    if let Some(c) = state.lock().chunks.get_mut(&chunk) {
        c.len += written;
        c.pending += 1;
    }
    let frames_at = pos + (ENTRY_HEADER + 4 + ranges.len() * RANGE_LEN) as u64;
    Ok(Written { chunk, path, frames_at, end: pos + written, file, sync })
}

/// Encodes an entry into `out`, which is exactly its length: header, ranges, the frames.
fn encode_entry(out: &mut [u8], object: &[u8], ranges: &HashMap<u64, ObjectRange>, frames: &[&ParsedFrame]) {
    let body_len = (out.len() - ENTRY_HEADER) as u32;
    let mut at = ENTRY_HEADER;
    let mut put = |bytes: &[u8]| {
        out[at..at + bytes.len()].copy_from_slice(bytes);
        at += bytes.len();
    };
    put(&(ranges.len() as u32).to_le_bytes());
    for r in ranges.values() {
        put(&r.log_id.to_le_bytes());
        put(&r.start.to_le_bytes());
        put(&r.end.to_le_bytes());
        put(&r.epoch.to_le_bytes());
    }
    for f in frames {
        put(&object[f.at..f.at + f.len]);
    }
    debug_assert_eq!(at, out.len());
    let crc = magnetar_core::hash::crc32c(&out[ENTRY_HEADER..]);
    out[0..4].copy_from_slice(&body_len.to_le_bytes());
    out[4..8].copy_from_slice(&crc.to_le_bytes());
}

/// Makes the entry durable: returns at once if an fdatasync that began after it was written
/// has succeeded, else runs one that covers it and every entry of its chunk written so far.
/// With `drop_synced`, what the fdatasync made durable leaves the page cache (only a takeover
/// reads it back; see `pagecache`).
pub(super) fn sync_entry(w: &Written, drop_synced: bool) -> std::io::Result<()> {
    let mut synced = w.sync.synced.lock();
    if synced.len >= w.end {
        return Ok(());
    }
    if synced.failed {
        return Err(std::io::Error::other("an earlier fdatasync of this replica chunk failed"));
    }
    let target = w.sync.written.load(Ordering::Acquire);
    match w.file.sync_data() {
        Ok(()) => {
            synced.len = synced.len.max(target);
            if drop_synced && let Some((from, len)) = crate::pagecache::behind(synced.dropped, synced.len, 0) {
                crate::pagecache::drop_cached(&w.file, from, len);
                synced.dropped = from + len;
            }
            Ok(())
        }
        Err(e) => {
            synced.failed = true;
            Err(e)
        }
    }
}

/// Ends an entry's pending state; indexes its frames if it was made durable.
pub(super) fn index_entry(
    state: &Mutex<State>,
    w: &Written,
    ranges: &HashMap<u64, ObjectRange>,
    frames: &[&ParsedFrame],
    durable: bool,
) {
    let mut s = state.lock();
    if let Some(c) = s.chunks.get_mut(&w.chunk) {
        c.pending -= 1;
    }
    if !durable {
        return;
    }
    let mut at = w.frames_at;
    for f in frames {
        let epoch = ranges[&f.log_id].epoch;
        s.add_frame(
            f.log_id,
            FrameLoc { chunk: w.chunk, pos: at, len: f.len as u32, start: f.start, end: f.end, epoch },
        );
        at += f.len as u64;
    }
}

impl Writer {
    /// After a failed fdatasync of the current chunk: cuts what followed its last good one (every
    /// batch there was refused to its source) so that a reopen meets no torn entry in the
    /// middle of the file, and starts a new chunk with the next batch.
    fn cut_if_sync_failed(&mut self, state: &Mutex<State>, stored: &AtomicU64) {
        let Some(c) = self.current.as_mut() else { return };
        let Some(good) = c.sync.failed() else { return };
        // Cut below with everything after `good`: `close` must not cut (extend) again.
        c.ahead = fill::Ahead::default();
        let (chunk, file, len) = (c.chunk, c.file.clone(), c.len);
        let mut s = state.lock();
        match file.set_len(good) {
            Ok(()) => {
                stored.fetch_sub(len.saturating_sub(good), Ordering::Relaxed);
                if let Some(c) = s.chunks.get_mut(&chunk) {
                    c.len = good;
                }
            }
            Err(e) => {
                tracing::warn!(path = %c.path.display(), error = %e, "a replica chunk whose fdatasync failed was not cut")
            }
        }
        self.close(&mut s);
    }
}

pub(super) fn read_frame(file: &File, path: &Path, loc: FrameLoc) -> Result<StoredFrame> {
    let mut buf = vec![0; loc.len as usize];
    file.read_exact_at(&mut buf, loc.pos).ctx(path)?;
    // The entry checksum was verified when the frame was written or indexed; this catches what
    // the disk did since.
    frame_len(&buf).map_err(|e| corrupt(&path.display().to_string(), loc.pos as usize, e))?;
    Ok(StoredFrame { epoch: loc.epoch, start: loc.start, end: loc.end, frame: Bytes::from(buf) })
}

/// Indexes the chunk files of one source directory; returns their bytes. `direct`: the
/// source's new chunks are written with direct I/O.
pub(super) fn load_source(state: &mut State, root: &Path, name: &str, direct: bool) -> Result<u64> {
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
    for (i, (_, path)) in seqs.iter().enumerate() {
        bytes += load_chunk(state, name, path, i + 1 == seqs.len())?;
    }
    let writer = Writer {
        name: name.to_string(),
        dir,
        parent: root.to_path_buf(),
        next_seq: seqs.last().map_or(0, |(s, _)| s + 1),
        current: None,
        dir_ready: true,
        direct,
        aligned: direct::Aligned::default(),
    };
    state.sources.insert(name.to_string(), Arc::new(tokio::sync::Mutex::new(writer)));
    Ok(bytes)
}

/// Indexes one chunk file, cutting a torn or corrupt last entry and space written ahead of the
/// entries; returns the bytes kept. `last`: the source's last chunk (the one a crash can leave
/// with entries whose write-back was incomplete).
pub(super) fn load_chunk(state: &mut State, source: &str, path: &Path, last: bool) -> Result<u64> {
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
                // Nothing but space written ahead (`fill`) or zeros from here: the entries end.
                let ahead_only = fill::unused(&file, pos, size).ctx(path)?;
                // A page of that space inside this entry of the last chunk: its write-back had
                // not finished when the process died, so no fdatasync covered it, nor anything
                // written after it; none of it was answered.
                let unwritten = !ahead_only && last && fill::unwritten(&file, pos, end).ctx(path)?;
                // Otherwise only the last entry can be torn by a crash (appends are sequential
                // and the source is told nothing before its fdatasync). Anything else is damage
                // to records that may be acknowledged: refuse to start rather than drop them.
                if !ahead_only && !unwritten && end < size && !fill::unused(&file, end, size).ctx(path)? {
                    return Err(corrupt(&path.display().to_string(), pos as usize, detail));
                }
                if !ahead_only {
                    tracing::warn!(path = %path.display(), position = pos, cut_bytes = size - pos, %detail, unwritten,
                        "cutting a torn entry at the end of a replica chunk");
                }
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
        pending: 0,
    };
    let id = state.add_chunk(chunk);
    for (log_id, mut loc) in entries {
        loc.chunk = id;
        state.add_frame(log_id, loc);
    }
    Ok(pos)
}

pub(super) enum EntryRead {
    Ok,
    /// Not a valid entry; `end` is where the bytes it claims end (at most the file size).
    Bad {
        detail: String,
        end: u64,
    },
}

/// Reads the entry at `pos` (where `reader` is) into `body`, checking its length and checksum.
pub(super) fn read_entry(
    reader: &mut impl Read,
    pos: u64,
    size: u64,
    body: &mut Vec<u8>,
) -> std::io::Result<EntryRead> {
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
    if magnetar_core::hash::crc32c(body) != crc {
        return Ok(EntryRead::Bad { detail: "entry checksum mismatch".into(), end });
    }
    Ok(EntryRead::Ok)
}

/// The frames of an entry body (checksum already verified) at file position `pos`.
pub(super) fn parse_entry(body: &[u8], pos: u64) -> std::result::Result<Vec<(u64, FrameLoc)>, String> {
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

pub(super) fn read_fences(dir: &Path) -> Result<BTreeMap<u64, Fence>> {
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
pub(super) fn write_fences(dir: &Path, fences: &BTreeMap<u64, Fence>) -> Result<()> {
    let (tmp, path) = (dir.join(FENCES_TMP), dir.join(FENCES));
    let data = serde_json::to_vec(fences).map_err(|e| StorageError::Unavailable(format!("fences not encoded: {e}")))?;
    let mut f = File::create(&tmp).ctx(&tmp)?;
    std::io::Write::write_all(&mut f, &data).and_then(|()| f.sync_all()).ctx(&tmp)?;
    fs::rename(&tmp, &path).ctx(&path)?;
    sync_dir(dir)
}

/// The store's identity in `dir` (`STORE_ID`), made and made durable when there is none (a new
/// directory, or one a store of an earlier version used: its owners saw no identity yet, so a
/// new one changes nothing for them). An empty file, left by a crash while it was made, gets a
/// new one too: the owners then send their tails again, which is only ever extra copies.
pub(super) fn store_id(dir: &Path) -> Result<String> {
    let path = dir.join(STORE_ID);
    match fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => return Ok(id.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(StorageError::io(&path, e)),
    }
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let tmp = dir.join(format!("{STORE_ID}.tmp"));
    fs::write(&tmp, &id).ctx(&tmp)?;
    File::open(&tmp).and_then(|f| f.sync_all()).ctx(&tmp)?;
    fs::rename(&tmp, &path).ctx(&path)?;
    sync_dir(dir)?;
    Ok(id)
}

pub(super) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).ctx(dir)
}

/// A directory name for a source, one-to-one: `[A-Za-z0-9_-]` and non-leading dots are kept,
/// every other byte becomes `%XX` (so `b1/s1` is `b1%2Fs1`).
pub(super) fn source_dir_name(source: &str) -> Result<String> {
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

pub(super) fn corrupt(file: &str, position: usize, detail: String) -> StorageError {
    StorageError::Corrupt { file: file.into(), position: position as u64, detail }
}
