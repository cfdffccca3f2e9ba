//! Segment files: `logs/{log_id}/{base_offset:020}.seg`.
//!
//! Layout: a 32-byte header (`magic "MGSEG\0\0\x01" | base_offset u64 | created_ms i64 |
//! reserved u32 | crc u32`), then record frames (see `codec`). A sealed segment is followed by
//! its indexes and a fixed-size footer, which makes it self-describing (it is what gets uploaded):
//! - offset index: `index_count` × (`offset u64 | position u64`), one entry per ~64 KiB block;
//! - publish-time index: `index_count` × (`max_publish_time_through_block i64 | first offset u64`),
//!   a running maximum, so a binary search finds the first block that can hold a time;
//! - footer ([`FOOTER_LEN`] bytes): `records_end | index_count | offset_index_pos |
//!   time_index_pos | base_offset | end_offset | record_count | first_publish_time |
//!   max_publish_time | created_ms | sealed_ms` (all 8 bytes) `| index_crc u32 | version u32 |
//!   footer_crc u32 | magic "MGSFOOT1"`. `footer_crc` covers every footer byte before it.
//!
//! An active segment has no footer; it is written through the page cache, or with direct I/O
//! (`ActiveSegment::write_direct`: whole blocks straight to the disk, the bytes past the last
//! whole block kept in memory), and fsynced when it seals (on the sealer thread, see
//! `partition::seal`) or when the WAL that covers it is trimmed. On open its torn tail is
//! truncated.

use crate::codec::{self, FRAME_HEADER, FrameParse};
use crate::direct;
use crate::error::IoContext;
use crate::pagecache;
use crate::record::Record;
use crate::{Result, StorageError};
use bytes::Bytes;
use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const HEADER_LEN: u64 = 32;
pub const FOOTER_LEN: u64 = 11 * 8 + 3 * 4 + 8;
const HEADER_MAGIC: &[u8; 8] = b"MGSEG\0\0\x01";
const FOOTER_MAGIC: &[u8; 8] = b"MGSFOOT1";
const FORMAT_VERSION: u32 = 1;
/// Distance between sparse index entries: bounds index memory (~24 B per 64 KiB) while a
/// lookup reads at most one block before the wanted record.
pub const INDEX_INTERVAL: u64 = 64 << 10;

pub fn segment_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.seg"))
}

/// Parses `{base:020}.seg`.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".seg")?;
    if stem.len() != 20 {
        return None;
    }
    stem.parse().ok()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    pub offset: u64,
    pub position: u64,
    /// Largest publish time of all records up to the end of this block.
    pub max_time: i64,
}

/// Summary of one segment, kept in memory for every segment of a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegMeta {
    pub base: u64,
    /// One past the last offset held.
    pub end: u64,
    pub size: u64,
    pub first_time: i64,
    pub max_time: i64,
    pub created_ms: i64,
    pub count: u64,
}

impl SegMeta {
    fn new(base: u64, created_ms: i64) -> Self {
        SegMeta { base, end: base, size: HEADER_LEN, first_time: 0, max_time: i64::MIN, created_ms, count: 0 }
    }
}

/// Index position for `offset`: the last entry at or before it.
pub fn index_lookup(index: &[IndexEntry], offset: u64) -> Option<IndexEntry> {
    let i = index.partition_point(|e| e.offset <= offset);
    if i == 0 { None } else { Some(index[i - 1]) }
}

/// First block that may hold a record with publish time >= `t`.
pub fn index_lookup_time(index: &[IndexEntry], t: i64) -> Option<IndexEntry> {
    index.get(index.partition_point(|e| e.max_time < t)).copied()
}

/// The segment being appended to. Owned by the partition under its segment lock.
pub struct ActiveSegment {
    pub meta: SegMeta,
    pub file: Arc<File>,
    pub path: PathBuf,
    pub index: Vec<IndexEntry>,
    /// Bytes before this position were handed to the kernel's writeback.
    written_back: u64,
    /// Bytes before this position were dropped from the page cache (`pagecache`).
    dropped: u64,
    /// Set when records are written with direct I/O.
    direct: Option<DirectTail>,
}

/// The state of direct writes: the segment is on disk below `flushed` (a whole number of
/// blocks); `pending` holds what follows: small appends gathered (up to `DIRECT_GATHER`) until
/// the WAL's applier flushes at the end of their group commit (`ActiveSegment::flush_direct`),
/// then less than a block until more records complete it or the segment is made durable
/// (`ActiveSegment::persist_pending`).
struct DirectTail {
    file: File,
    flushed: u64,
    pending: Vec<u8>,
}

thread_local! {
    /// The aligned buffer direct writes go out from, one per writing thread (the WAL's flusher
    /// and applier), grown to the largest append.
    static ALIGNED: RefCell<direct::Aligned> = RefCell::default();
}

/// Pending bytes at which an append writes its whole blocks at once instead of gathering more
/// (and so what `pending` may hold at most between flushes): batched records arrive in appends
/// larger than this and go out as they come; single small messages gather up to it.
const DIRECT_GATHER: usize = 64 << 10;

impl DirectTail {
    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.pending.len() + bytes.len() < DIRECT_GATHER {
            self.pending.extend_from_slice(bytes);
            return Ok(());
        }
        self.write_whole(bytes)
    }

    /// Writes the whole blocks of what was gathered.
    fn flush(&mut self) -> std::io::Result<()> {
        self.write_whole(&[])
    }

    /// Writes the whole blocks of `pending` followed by `bytes` in one direct write; keeps the
    /// rest (less than a block) in `pending`.
    fn write_whole(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let kept = self.pending.len();
        let whole = (kept + bytes.len()) / direct::BLOCK * direct::BLOCK;
        if whole == 0 {
            self.pending.extend_from_slice(bytes);
            return Ok(());
        }
        let from_pending = whole.min(kept);
        ALIGNED.with(|cell| {
            let mut buf = cell.borrow_mut();
            let out = buf.get(whole);
            out[..from_pending].copy_from_slice(&self.pending[..from_pending]);
            out[from_pending..].copy_from_slice(&bytes[..whole - from_pending]);
            self.file.write_all_at(out, self.flushed)
        })?;
        self.flushed += whole as u64;
        self.pending.drain(..from_pending);
        self.pending.extend_from_slice(&bytes[whole - from_pending..]);
        // A segment keeps little between commits, whatever it gathered during one.
        if self.pending.capacity() > DIRECT_GATHER {
            self.pending.shrink_to(2 * direct::BLOCK);
        }
        Ok(())
    }
}

/// What a reader of an unsealed segment reads: the file, and with direct writes the bytes past
/// its last whole block from memory (the file does not hold them yet).
pub struct SegmentView {
    file: Arc<File>,
    flushed: u64,
    pending: Vec<u8>,
}

impl ReadAt for SegmentView {
    fn pread_exact(&self, buf: &mut [u8], pos: u64) -> std::io::Result<()> {
        let on_disk = (self.flushed.saturating_sub(pos) as usize).min(buf.len());
        let (disk, memory) = buf.split_at_mut(on_disk);
        if !disk.is_empty() {
            self.file.read_exact_at(disk, pos)?;
        }
        if !memory.is_empty() {
            let from = (pos + on_disk as u64 - self.flushed) as usize;
            let src = self.pending.get(from..from + memory.len()).ok_or(std::io::ErrorKind::UnexpectedEof)?;
            memory.copy_from_slice(src);
        }
        Ok(())
    }
}

/// Segment bytes written before their writeback is started.
const WRITEBACK_CHUNK: u64 = 1 << 20;

/// Starts writing `len` bytes at `from` to the disk without waiting for it. Segments are made
/// durable by the WAL until a trim or a seal fsyncs them; without this, the kernel lets
/// gigabytes of their pages stay dirty and that fsync then floods the disk queue, stalling the
/// WAL's own fsync (and every producer's acknowledgement) for tens of milliseconds.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)] // the one syscall std has no wrapper for
pub(crate) fn start_writeback(file: &File, from: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain syscall on a file descriptor we own; no memory is passed.
    let rc = unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            from as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        )
    };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "sync_file_range failed");
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn start_writeback(_file: &File, _from: u64, _len: u64) {}

/// One record about to be appended: its frame length and what the indexes need.
pub struct RecordPos {
    pub offset: u64,
    pub publish_time: i64,
    pub len: u32,
}

impl ActiveSegment {
    pub fn create(dir: &Path, base: u64, created_ms: i64) -> Result<Self> {
        let path = segment_path(dir, base);
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).ctx(&path)?;
        let mut h = [0u8; HEADER_LEN as usize];
        h[..8].copy_from_slice(HEADER_MAGIC);
        h[8..16].copy_from_slice(&base.to_le_bytes());
        h[16..24].copy_from_slice(&created_ms.to_le_bytes());
        let crc = magnetar_core::hash::crc32c(&h[..28]);
        h[28..32].copy_from_slice(&crc.to_le_bytes());
        file.write_all_at(&h, 0).ctx(&path)?;
        Ok(ActiveSegment {
            meta: SegMeta::new(base, created_ms),
            file: Arc::new(file),
            path,
            index: Vec::new(),
            written_back: 0,
            dropped: 0,
            direct: None,
        })
    }

    /// Writes records with direct I/O from now on: whole blocks go straight to the disk, not
    /// through the page cache (whose new pages cost a first write dearly where the host
    /// reclaims free guest memory; see `pagecache`), the rest waits in memory for its block.
    /// An error (a file system without `O_DIRECT`) leaves the segment written as before.
    pub fn write_direct(&mut self) -> Result<()> {
        let file = direct::open(&self.path).ctx(&self.path)?;
        let flushed = direct::round_down(self.meta.size);
        let mut pending = vec![0u8; (self.meta.size - flushed) as usize];
        self.file.read_exact_at(&mut pending, flushed).ctx(&self.path)?;
        self.direct = Some(DirectTail { file, flushed, pending });
        Ok(())
    }

    /// With direct writes, writes the whole blocks of what was appended since the last flush
    /// (once per group commit: one write per partition of a commit, not one per append).
    pub fn flush_direct(&mut self) -> Result<()> {
        match &mut self.direct {
            Some(d) => d.flush().ctx(&self.path),
            None => Ok(()),
        }
    }

    /// With direct writes, writes the bytes past the last whole block through the page cache,
    /// so that an fsync makes every record appended so far durable (the next direct write
    /// covers them again with the same bytes).
    pub fn persist_pending(&self) -> Result<()> {
        match &self.direct {
            Some(d) if !d.pending.is_empty() => self.file.write_all_at(&d.pending, d.flushed).ctx(&self.path),
            _ => Ok(()),
        }
    }

    /// What a reader of this segment reads (see [`SegmentView`]).
    pub fn view(&self) -> SegmentView {
        match &self.direct {
            Some(d) => SegmentView { file: self.file.clone(), flushed: d.flushed, pending: d.pending.clone() },
            None => SegmentView { file: self.file.clone(), flushed: u64::MAX, pending: Vec::new() },
        }
    }

    /// Appends record frames (`bytes` is their concatenation, described by `recs`). Keeps the
    /// last `window` bytes in the page cache and drops what is older once written back (0: the
    /// kernel decides; see `pagecache`).
    pub fn append(&mut self, bytes: &[u8], recs: &[RecordPos], window: u64) -> Result<()> {
        match &mut self.direct {
            Some(d) => d.append(bytes).ctx(&self.path)?,
            None => self.file.write_all_at(bytes, self.meta.size).ctx(&self.path)?,
        }
        let mut pos = self.meta.size;
        for r in recs {
            self.note(r, pos);
            pos += u64::from(r.len);
        }
        debug_assert_eq!(pos, self.meta.size + bytes.len() as u64);
        self.meta.size = pos;
        if self.direct.is_none() && pos - self.written_back >= WRITEBACK_CHUNK {
            start_writeback(&self.file, self.written_back, pos - self.written_back);
            // What writeback was started for a step ago has had a whole step's time to finish.
            if window > 0
                && let Some((from, len)) = pagecache::behind(self.dropped, self.written_back, window)
            {
                pagecache::drop_cached(&self.file, from, len);
                self.dropped = from + len;
            }
            self.written_back = pos;
        }
        Ok(())
    }

    fn note(&mut self, r: &RecordPos, pos: u64) {
        let m = &mut self.meta;
        if m.count == 0 {
            m.first_time = r.publish_time;
        }
        m.max_time = m.max_time.max(r.publish_time);
        m.count += 1;
        m.end = r.offset + 1;
        match self.index.last_mut() {
            Some(last) if pos - last.position < INDEX_INTERVAL => last.max_time = m.max_time,
            _ => self.index.push(IndexEntry { offset: r.offset, position: pos, max_time: m.max_time }),
        }
    }

    /// Writes indexes and footer after the records and fsyncs: the file is immutable from here
    /// on. Takes `&self` so readers can keep reading the records (they never read past
    /// `records_end`) while a seal runs.
    pub fn seal(&self, now_ms: i64) -> Result<SealedSegment> {
        self.persist_pending()?;
        let m = self.meta;
        let records_end = m.size;
        let n = self.index.len() as u64;
        let mut buf = Vec::with_capacity((n * 32 + FOOTER_LEN) as usize);
        for e in &self.index {
            buf.extend_from_slice(&e.offset.to_le_bytes());
            buf.extend_from_slice(&e.position.to_le_bytes());
        }
        for e in &self.index {
            buf.extend_from_slice(&e.max_time.to_le_bytes());
            buf.extend_from_slice(&e.offset.to_le_bytes());
        }
        let index_crc = magnetar_core::hash::crc32c(&buf);
        let footer_at = buf.len();
        for v in [records_end, n, records_end, records_end + n * 16, m.base, m.end, m.count] {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        for v in [m.first_time, m.max_time, m.created_ms, now_ms] {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        buf.extend_from_slice(&index_crc.to_le_bytes());
        buf.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        let footer_crc = magnetar_core::hash::crc32c(&buf[footer_at..]);
        buf.extend_from_slice(&footer_crc.to_le_bytes());
        buf.extend_from_slice(FOOTER_MAGIC);
        self.file.write_all_at(&buf, records_end).ctx(&self.path)?;
        self.file.sync_data().ctx(&self.path)?;
        let size = records_end + buf.len() as u64;
        Ok(SealedSegment { meta: SegMeta { size, ..m }, records_end, index_count: n })
    }
}

/// A sealed, immutable segment. Its index stays on disk and is read when needed, so a
/// partition with many sealed segments costs a few dozen bytes per segment in memory.
#[derive(Debug, Clone)]
pub struct SealedSegment {
    pub meta: SegMeta,
    pub records_end: u64,
    pub index_count: u64,
}

impl SealedSegment {
    /// Reads and checks the sparse index from the file.
    pub fn load_index(&self, file: &dyn ReadAt, path: &Path) -> Result<Vec<IndexEntry>> {
        let n = self.index_count as usize;
        let mut buf = vec![0u8; n * 32];
        file.pread_exact(&mut buf, self.records_end).ctx(path)?;
        let mut crc = [0u8; 4];
        file.pread_exact(&mut crc, self.meta.size - FOOTER_LEN + 11 * 8).ctx(path)?;
        if magnetar_core::hash::crc32c(&buf) != u32::from_le_bytes(crc) {
            return Err(corrupt(path, self.records_end, "segment index checksum mismatch"));
        }
        Ok(parse_index(&buf, n))
    }
}

fn parse_index(buf: &[u8], n: usize) -> Vec<IndexEntry> {
    let u = |at: usize| u64::from_le_bytes(buf[at..at + 8].try_into().expect("8 bytes"));
    (0..n)
        .map(|i| IndexEntry { offset: u(i * 16), position: u(i * 16 + 8), max_time: u(n * 16 + i * 16) as i64 })
        .collect()
}

pub fn corrupt(path: &Path, position: u64, detail: impl Into<String>) -> StorageError {
    StorageError::Corrupt { file: path.display().to_string(), position, detail: detail.into() }
}

/// What a segment file turned out to be when opened.
pub enum Opened {
    Sealed(SealedSegment),
    /// `truncated` is the number of torn/corrupt tail bytes removed.
    Active {
        seg: ActiveSegment,
        truncated: u64,
    },
    /// Shorter than a header: a crash while creating it; it holds nothing.
    Empty,
}

/// Opens and validates a segment: a sealed one by footer and index checksums, an active one by
/// scanning every record and truncating at the first torn or corrupt frame.
pub fn open_segment(path: &Path, base: u64) -> Result<Opened> {
    let file = OpenOptions::new().read(true).write(true).open(path).ctx(path)?;
    let len = file.metadata().ctx(path)?.len();
    if len < HEADER_LEN {
        return Ok(Opened::Empty);
    }
    let mut h = [0u8; HEADER_LEN as usize];
    file.read_exact_at(&mut h, 0).ctx(path)?;
    let hdr_base = u64::from_le_bytes(h[8..16].try_into().expect("8 bytes"));
    if &h[..8] != HEADER_MAGIC
        || magnetar_core::hash::crc32c(&h[..28]) != u32::from_le_bytes(h[28..32].try_into().expect("4"))
    {
        return Err(corrupt(path, 0, "invalid segment header"));
    }
    if hdr_base != base {
        return Err(corrupt(path, 0, format!("header says base offset {hdr_base}")));
    }
    let created_ms = i64::from_le_bytes(h[16..24].try_into().expect("8 bytes"));
    if let Some(sealed) = read_footer(&file, path, len, base)? {
        return Ok(Opened::Sealed(sealed));
    }
    let mut seg = ActiveSegment {
        meta: SegMeta::new(base, created_ms),
        file: Arc::new(file),
        path: path.to_path_buf(),
        index: Vec::new(),
        written_back: 0,
        dropped: 0,
        direct: None,
    };
    let file = seg.file.clone();
    let mut reader = FrameReader::new(&*file, HEADER_LEN, len, 1 << 20);
    let mut good = HEADER_LEN;
    while let Next::Frame { pos, frame } = reader.next().ctx(path)? {
        let body = &frame[FRAME_HEADER..];
        let (Ok(offset), Ok(publish_time)) = (codec::record_offset(body), codec::record_publish_time(body)) else {
            break;
        };
        // Offsets only grow inside a segment; anything else is not a record of ours.
        if (seg.meta.count > 0 && offset < seg.meta.end) || offset < base {
            break;
        }
        seg.note(&RecordPos { offset, publish_time, len: frame.len() as u32 }, pos);
        good = pos + frame.len() as u64;
    }
    seg.meta.size = good;
    seg.written_back = good;
    let truncated = len - good;
    if truncated > 0 {
        seg.file.set_len(good).ctx(path)?;
    }
    Ok(Opened::Active { seg, truncated })
}

fn read_footer(file: &File, path: &Path, len: u64, base: u64) -> Result<Option<SealedSegment>> {
    if len < HEADER_LEN + FOOTER_LEN {
        return Ok(None);
    }
    let mut f = [0u8; FOOTER_LEN as usize];
    file.read_exact_at(&mut f, len - FOOTER_LEN).ctx(path)?;
    let Ok(sealed) = decode_footer(&f, len, base) else {
        return Ok(None);
    };
    // Validates the index checksum now, so a damaged sealed segment is found at open.
    match sealed.load_index(file, path) {
        Ok(_) => Ok(Some(sealed)),
        Err(StorageError::Corrupt { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Parses and checks the footer of a sealed segment of `len` bytes based at `base`.
pub fn decode_footer(f: &[u8], len: u64, base: u64) -> std::result::Result<SealedSegment, String> {
    let n = FOOTER_LEN as usize;
    if f.len() != n || &f[n - 8..] != FOOTER_MAGIC {
        return Err("segment footer magic missing".into());
    }
    let crc_at = n - 12;
    if magnetar_core::hash::crc32c(&f[..crc_at]) != u32::from_le_bytes(f[crc_at..crc_at + 4].try_into().expect("4")) {
        return Err("segment footer checksum mismatch".into());
    }
    let u = |i: usize| u64::from_le_bytes(f[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    let [records_end, index_count, _, _, fbase, end, count] = std::array::from_fn(u);
    let version = u32::from_le_bytes(f[92..96].try_into().expect("4"));
    if version != FORMAT_VERSION {
        return Err(format!("unknown segment format version {version}"));
    }
    if fbase != base || records_end.saturating_add(index_count.saturating_mul(32)).saturating_add(FOOTER_LEN) != len {
        return Err(format!("segment footer does not describe a segment of {len} bytes based at {base}"));
    }
    let meta = SegMeta {
        base,
        end,
        size: len,
        first_time: u(7) as i64,
        max_time: u(8) as i64,
        created_ms: u(9) as i64,
        count,
    };
    Ok(SealedSegment { meta, records_end, index_count })
}

/// Positioned reads: a local file, or an object in the object store (through the block cache).
pub trait ReadAt {
    fn pread_exact(&self, buf: &mut [u8], pos: u64) -> std::io::Result<()>;
}

impl ReadAt for File {
    fn pread_exact(&self, buf: &mut [u8], pos: u64) -> std::io::Result<()> {
        FileExt::read_exact_at(self, buf, pos)
    }
}

/// Sequential reader of frames from a file region, by positioned reads (no shared cursor, so
/// readers and the appender can use the same file handle).
pub struct FrameReader<'a> {
    file: &'a dyn ReadAt,
    /// File position of `buf[buf.len()]`.
    next_read: u64,
    end: u64,
    buf: Vec<u8>,
    start: usize,
    chunk: usize,
    /// Stored checksums are XORed with this (WAL files; 0 elsewhere).
    salt: u32,
}

pub enum Next<'b> {
    Frame { pos: u64, frame: &'b [u8] },
    End,
    Torn { pos: u64 },
    Corrupt { pos: u64, detail: String },
}

impl<'a> FrameReader<'a> {
    pub fn new(file: &'a dyn ReadAt, from: u64, end: u64, chunk: usize) -> Self {
        FrameReader { file, next_read: from, end, buf: Vec::new(), start: 0, chunk, salt: 0 }
    }

    /// Reads frames whose stored checksums are XORed with `salt` (a WAL file's, `codec::wal_salt`).
    pub fn salted(mut self, salt: u32) -> Self {
        self.salt = salt;
        self
    }

    pub fn position(&self) -> u64 {
        self.next_read - (self.buf.len() - self.start) as u64
    }

    pub fn next(&mut self) -> std::io::Result<Next<'_>> {
        let total = loop {
            match codec::parse_salted_frame(&self.buf[self.start..], self.salt) {
                FrameParse::Complete { total } => break total,
                FrameParse::Corrupt(detail) => return Ok(Next::Corrupt { pos: self.position(), detail }),
                FrameParse::Incomplete { need } => {
                    let have = self.buf.len() - self.start;
                    if self.next_read >= self.end {
                        return Ok(if have == 0 { Next::End } else { Next::Torn { pos: self.position() } });
                    }
                    self.buf.drain(..self.start);
                    self.start = 0;
                    let want = (need - have).max(self.chunk) as u64;
                    let n = want.min(self.end - self.next_read) as usize;
                    let at = self.buf.len();
                    self.buf.resize(at + n, 0);
                    self.file.pread_exact(&mut self.buf[at..], self.next_read)?;
                    self.next_read += n as u64;
                }
            }
        };
        let pos = self.position();
        let s = self.start;
        self.start += total;
        Ok(Next::Frame { pos, frame: &self.buf[s..s + total] })
    }
}

/// Limits and progress of one read call across segments.
pub struct ReadBudget {
    pub from: u64,
    /// Readers never see offsets at or beyond this (the durable end).
    pub end: u64,
    pub max_records: usize,
    pub max_bytes: usize,
    pub bytes: usize,
}

impl ReadBudget {
    pub fn full(&self, out: &[Record]) -> bool {
        out.len() >= self.max_records || (!out.is_empty() && self.bytes >= self.max_bytes)
    }
}

/// Reads records from `[pos, limit)` of a segment file into `out`, skipping offsets below
/// `budget.from`. Every record is checksum-verified: corrupt data is an error, never returned.
pub fn read_records(
    file: &dyn ReadAt,
    path: &Path,
    pos: u64,
    limit: u64,
    base: u64,
    budget: &mut ReadBudget,
    out: &mut Vec<Record>,
) -> Result<()> {
    let mut reader = FrameReader::new(file, pos, limit, 256 << 10);
    while !budget.full(out) {
        match reader.next().ctx(path)? {
            Next::Frame { pos, frame } => {
                let body = Bytes::copy_from_slice(&frame[FRAME_HEADER..]);
                let offset = codec::record_offset(&body).map_err(|e| corrupt(path, pos, e))?;
                if offset >= budget.end {
                    return Ok(());
                }
                if offset < budget.from {
                    continue;
                }
                if budget.bytes + frame.len() > budget.max_bytes && !out.is_empty() {
                    budget.bytes = budget.max_bytes;
                    return Ok(());
                }
                let rec = codec::decode_record(&body, base).map_err(|e| corrupt(path, pos, e))?;
                budget.bytes += frame.len();
                budget.from = offset + 1;
                out.push(rec);
            }
            Next::End => return Ok(()),
            Next::Torn { pos } => return Err(corrupt(path, pos, "record truncated")),
            Next::Corrupt { pos, detail } => return Err(corrupt(path, pos, detail)),
        }
    }
    Ok(())
}

/// First offset in `[pos, limit)` whose publish time is >= `t`.
pub fn find_time(file: &dyn ReadAt, path: &Path, pos: u64, limit: u64, t: i64) -> Result<Option<u64>> {
    let mut reader = FrameReader::new(file, pos, limit, 64 << 10);
    loop {
        match reader.next().ctx(path)? {
            Next::Frame { pos, frame } => {
                let body = &frame[FRAME_HEADER..];
                let pt = codec::record_publish_time(body).map_err(|e| corrupt(path, pos, e))?;
                if pt >= t {
                    return Ok(Some(codec::record_offset(body).map_err(|e| corrupt(path, pos, e))?));
                }
            }
            Next::End => return Ok(None),
            Next::Torn { pos } => return Err(corrupt(path, pos, "record truncated")),
            Next::Corrupt { pos, detail } => return Err(corrupt(path, pos, detail)),
        }
    }
}

#[cfg(test)]
mod tests;
