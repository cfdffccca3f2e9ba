//! Recovery at open: validate every partition's segments, then replay the WAL on top.
//!
//! Segments first: a sealed segment is checked by footer and index checksums; the last (active)
//! one is scanned record by record and truncated at the first torn or corrupt frame. Then WAL
//! files are replayed in order: a data frame's records at or past the partition's recovered end
//! are appended to the segment named in the frame (so segment bases match the first run); a
//! drop record erases its log, and only frames after it rebuild a new log with that id; aux
//! records are collected for the caller.
//!
//! A bad frame is either a torn tail or corruption, told apart by what follows it:
//! - a torn tail: the end of the last WAL file, where the process or machine died mid-write,
//!   with no intact frame after it. Never acknowledged (its fsync did not return): cut off;
//! - corruption: a bad frame that intact frames follow, a bad frame in a WAL file that later
//!   files follow (rolled files were complete and fsynced), or a frame whose checksum is right
//!   but whose content does not decode. Acknowledged records may be in it or after it, so the
//!   file is never truncated: it is copied aside as `{name}.wal.corrupt`, logged at error level
//!   and counted, then `StorageConfig::wal_corruption` refuses the start (default) or skips only
//!   the corrupt bytes.

use crate::codec::{self, WalEntry};
use crate::config::WalCorruption;
use crate::error::IoContext;
use crate::partition::PartitionLog;
use crate::segment::{self, ActiveSegment, FrameReader, Next, Opened};
use crate::wal::{self, Shared, WalFileMeta};
use crate::{AuxRecord, Result, StorageError, now_ms};
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(crate) struct Recovered {
    pub partitions: HashMap<u64, Arc<PartitionLog>>,
    pub aux: Vec<AuxRecord>,
    pub wal_files: VecDeque<WalFileMeta>,
    /// Trimmed WAL files kept for reuse (`wal::free_path`), oldest first.
    pub free_files: VecDeque<PathBuf>,
    pub next_seq: u64,
}

pub(crate) fn recover(shared: &Arc<Shared>) -> Result<Recovered> {
    let logs_dir = shared.config.data_dir.join("logs");
    fs::create_dir_all(&logs_dir).ctx(&logs_dir)?;
    let mut partitions = HashMap::new();
    for entry in fs::read_dir(&logs_dir).ctx(&logs_dir)? {
        let entry = entry.ctx(&logs_dir)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if name.contains(".deleting") {
            // A delete_log that crashed after its drop record was durable.
            fs::remove_dir_all(&path).ctx(&path)?;
            continue;
        }
        let Ok(log_id) = name.parse::<u64>() else { continue };
        if let Some(p) = load_partition(log_id, &path, shared)? {
            partitions.insert(log_id, p);
        }
    }
    let wal_dir = shared.config.data_dir.join("wal");
    fs::create_dir_all(&wal_dir).ctx(&wal_dir)?;
    let mut aux = Vec::new();
    let (wal_files, free_files, next_seq) = replay_wal(&wal_dir, shared, &mut partitions, &mut aux)?;
    Ok(Recovered { partitions, aux, wal_files, free_files, next_seq })
}

fn load_partition(log_id: u64, dir: &Path, shared: &Arc<Shared>) -> Result<Option<Arc<PartitionLog>>> {
    let mut files: Vec<(u64, std::path::PathBuf)> = Vec::new();
    for entry in fs::read_dir(dir).ctx(dir)? {
        let entry = entry.ctx(dir)?;
        if let Some(base) = segment::parse_segment_name(&entry.file_name().to_string_lossy()) {
            files.push((base, entry.path()));
        }
    }
    files.sort();
    let mut sealed = Vec::new();
    let mut active: Option<ActiveSegment> = None;
    for (base, path) in files {
        let opened = segment::open_segment(&path, base)?;
        // An unsealed segment followed by another one: its seal did not finish. Finish it.
        if let Some(a) = active.take() {
            if a.meta.count == 0 {
                fs::remove_file(&a.path).ctx(&a.path)?;
            } else {
                sealed.push(a.seal(now_ms())?);
            }
        }
        match opened {
            Opened::Empty => fs::remove_file(&path).ctx(&path)?,
            Opened::Sealed(s) => sealed.push(s),
            Opened::Active { seg, truncated } => {
                if truncated > 0 {
                    tracing::warn!(log_id, file = %path.display(), truncated, "truncated the torn tail of a segment");
                }
                active = Some(seg);
            }
        }
    }
    if active.is_none() {
        match sealed.last() {
            // A crash between sealing and starting the next segment.
            Some(last) => active = Some(ActiveSegment::create(dir, last.meta.end, now_ms())?),
            None => {
                fs::remove_dir_all(dir).ctx(dir)?;
                return Ok(None);
            }
        }
    }
    let metas = sealed.iter().map(|s| s.meta).chain(active.as_ref().map(|a| a.meta));
    let mut expected: Option<u64> = None;
    for m in metas {
        // Only possible after losing fsynced data (a disk fault, not a crash): say so loudly.
        if let Some(e) = expected
            && e != m.base
        {
            tracing::error!(log_id, expected = e, found = m.base, "gap between segments: records are missing");
        }
        expected = Some(m.end);
    }
    let part = PartitionLog::new(log_id, shared.clone());
    part.load(sealed, active);
    Ok(Some(part))
}

fn replay_wal(
    wal_dir: &Path,
    shared: &Arc<Shared>,
    partitions: &mut HashMap<u64, Arc<PartitionLog>>,
    aux: &mut Vec<AuxRecord>,
) -> Result<(VecDeque<WalFileMeta>, VecDeque<PathBuf>, u64)> {
    let mut files: Vec<(u64, PathBuf)> = Vec::new();
    let mut free: Vec<(u64, PathBuf)> = Vec::new();
    let mut pages: Vec<PathBuf> = Vec::new();
    let mut max_seq = None;
    for entry in fs::read_dir(wal_dir).ctx(wal_dir)? {
        let entry = entry.ctx(wal_dir)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Files set aside (`*.wal.corrupt`) keep their sequence number from being reused.
        let seq = name.split('.').next().and_then(|s| s.parse::<u64>().ok());
        max_seq = max_seq.max(seq);
        if let Some(seq) = wal::parse_wal_name(&name) {
            files.push((seq, entry.path()));
        } else if let Some(seq) = name.strip_suffix(".free").and_then(|s| s.parse::<u64>().ok()) {
            free.push((seq, entry.path()));
        } else if name.ends_with(".pages") {
            pages.push(entry.path());
        }
    }
    // Page checksums whose file is gone (a crash between a trim's steps).
    for p in pages {
        if !p.with_extension("wal").exists() && !p.with_extension("free").exists() {
            fs::remove_file(&p).ctx(&p)?;
        }
    }
    files.sort();
    // Free files hold only frames replayed before: never read, kept to be overwritten (as many
    // as the configuration keeps now).
    free.sort();
    let keep = free.len().min(shared.config.wal_recycle_files);
    for (_, path) in free.drain(..free.len() - keep) {
        fs::remove_file(&path).ctx(&path)?;
        let _ = fs::remove_file(crate::pages::pages_path(&path));
    }
    let free = free.into_iter().map(|(_, p)| p).collect();
    let mut metas = VecDeque::new();
    let count = files.len();
    let mut replay = Replay { shared, partitions, aux };
    for (i, (seq, path)) in files.into_iter().enumerate() {
        metas.push_back(replay.file(seq, &path, i + 1 == count)?);
    }
    Ok((metas, free, max_seq.map_or(0, |s| s + 1)))
}

/// Where replaying a run of frames stopped short of the end of the file.
enum Bad {
    /// Torn or failing its checksum: where the next intact frame starts is unknown.
    Damaged { pos: u64, detail: String },
    /// A frame whose checksum is right but whose content does not decode (`end`: where it ends).
    /// No torn write produces one.
    Undecodable { pos: u64, end: u64, detail: String },
}

struct Replay<'a> {
    shared: &'a Arc<Shared>,
    partitions: &'a mut HashMap<u64, Arc<PartitionLog>>,
    aux: &'a mut Vec<AuxRecord>,
}

impl Replay<'_> {
    /// Replays one WAL file; `last`: no later WAL file exists (only its end may be torn).
    fn file(&mut self, seq: u64, path: &Path, last: bool) -> Result<WalFileMeta> {
        let file = OpenOptions::new().read(true).write(true).open(path).ctx(path)?;
        let len = file.metadata().ctx(path)?.len();
        let mut meta = WalFileMeta::new(seq, path.to_path_buf());
        let salt = file_salt(&file, seq, len).ctx(path)?;
        meta.salted = salt != 0;
        let mut aside: Option<PathBuf> = None;
        let mut at = 0;
        while at < len {
            let Some(bad) = self.frames(&file, path, at, len, salt, &mut meta)? else { break };
            let (pos, next, detail, why) = match bad {
                Bad::Undecodable { pos, end, detail } => {
                    (pos, end, detail, "its checksum is right, so it is no torn write".to_string())
                }
                Bad::Damaged { pos, detail } => {
                    let next = next_intact(&file, pos, len, salt).ctx(path)?;
                    // Intact frames after a page of the last file that still holds space written
                    // ahead of the frames (`fill`: write-back had not reached that page when the
                    // process died): no fdatasync covered `pos`, so nothing from there on was
                    // acknowledged. (Without intact frames after it, the tail is cut anyway.)
                    // Likewise a page of a reused last file that still holds its earlier content.
                    let ahead = match next {
                        Some(next) if last => {
                            crate::fill::unwritten(&file, pos, next).ctx(path)?
                                || crate::pages::unwritten(&file, pos, next, &crate::pages::read(path)).ctx(path)?
                        }
                        _ => false,
                    };
                    match next {
                        Some(next) if !ahead => {
                            (pos, next, detail, format!("an intact frame follows at position {next}"))
                        }
                        None if !last => (pos, len, detail, "later wal files follow this one".to_string()),
                        _ => {
                            tracing::warn!(file = %path.display(), pos, detail, unwritten_space = ahead,
                                "torn wal tail (no intact frame after it, or space never written over before it); truncating");
                            file.set_len(pos).ctx(path)?;
                            file.sync_all().ctx(path)?;
                            meta.size = pos;
                            return Ok(meta);
                        }
                    }
                }
            };
            if aside.is_none() {
                aside = Some(copy_aside(path)?);
                self.shared.metrics.wal_corrupt_files.inc();
            }
            let kept = aside.as_deref().map_or_else(String::new, |a| a.display().to_string());
            let policy = self.shared.config.wal_corruption;
            tracing::error!(
                file = %path.display(),
                pos,
                skip_to = next,
                detail,
                why,
                copy = kept,
                policy = %policy,
                "corrupt wal frame that is not a torn tail: acknowledged records may be lost"
            );
            match policy {
                WalCorruption::Refuse => {
                    return Err(StorageError::Corrupt {
                        file: path.display().to_string(),
                        position: pos,
                        detail: format!(
                            "{detail}; not a torn tail ({why}): nothing was truncated and the \
                             storage refuses to start; a copy of the file is kept as {kept}; to start \
                             anyway, losing what the corrupt bytes held, set wal_corruption = \
                             \"skip-frame\" (the intact frames before and after them are replayed)"
                        ),
                    });
                }
                WalCorruption::SkipFrame => at = next,
            }
        }
        meta.size = len;
        Ok(meta)
    }

    /// Replays frames from `at` until the end of the file (`None`) or a bad frame.
    fn frames(
        &mut self,
        file: &File,
        path: &Path,
        at: u64,
        len: u64,
        salt: u32,
        meta: &mut WalFileMeta,
    ) -> Result<Option<Bad>> {
        let mut reader = FrameReader::new(file, at, len, 4 << 20).salted(salt);
        loop {
            let (pos, frame) = match reader.next().ctx(path)? {
                Next::Frame { pos, frame } => (pos, frame),
                Next::End => return Ok(None),
                Next::Torn { pos } => return Ok(Some(Bad::Damaged { pos, detail: "frame truncated".into() })),
                Next::Corrupt { pos, detail } => return Ok(Some(Bad::Damaged { pos, detail })),
            };
            let end = pos + frame.len() as u64;
            if let Err(detail) = self.entry(&frame[codec::FRAME_HEADER..], meta)? {
                return Ok(Some(Bad::Undecodable { pos, end, detail }));
            }
        }
    }

    /// Applies one WAL entry. The inner `Err` is an entry that does not decode; the outer one
    /// a failure to apply it (I/O).
    fn entry(&mut self, body: &[u8], meta: &mut WalFileMeta) -> Result<Result<(), String>> {
        match codec::decode_wal_body(body) {
            Ok(WalEntry::Data { log_id, segment_base, records, .. }) => {
                let part =
                    self.partitions.entry(log_id).or_insert_with(|| PartitionLog::new(log_id, self.shared.clone()));
                // A record run that does not split is found before anything is written.
                match part.replay(segment_base, records) {
                    Ok(()) => {}
                    Err(StorageError::Corrupt { detail, .. }) => return Ok(Err(detail)),
                    Err(e) => return Err(e),
                }
                meta.logs.insert(log_id);
            }
            Ok(WalEntry::Aux { log_id, data }) => {
                self.aux.push(AuxRecord { log_id, data: Bytes::copy_from_slice(data) });
                meta.has_aux = true;
            }
            Ok(WalEntry::Pad) => {}
            Ok(WalEntry::Drop { log_id }) => {
                if let Some(p) = self.partitions.remove(&log_id) {
                    p.mark_deleted();
                    let dir = p.dir().to_path_buf();
                    if dir.exists() {
                        fs::remove_dir_all(&dir).ctx(&dir)?;
                    }
                }
                self.aux.retain(|a| a.log_id != log_id);
            }
            Err(detail) => return Ok(Err(detail)),
        }
        Ok(Ok(()))
    }
}

/// Copies a WAL file to `{name}.wal.corrupt` (through a temporary file, fsynced), leaving the
/// original untouched; returns the copy's path.
fn copy_aside(path: &Path) -> Result<PathBuf> {
    let aside = path.with_extension("wal.corrupt");
    let tmp = path.with_extension("wal.corrupt.tmp");
    fs::copy(path, &tmp).ctx(&tmp)?;
    File::open(&tmp).and_then(|f| f.sync_all()).ctx(&tmp)?;
    fs::rename(&tmp, &aside).ctx(&aside)?;
    if let Some(dir) = path.parent() {
        File::open(dir).and_then(|d| d.sync_all()).ctx(dir)?;
    }
    Ok(aside)
}

/// The salt of a WAL file's frames: its own (`codec::wal_salt`), unless its first frame is
/// intact unsalted (a file written before salting; those are never reused, so an unsalted
/// first frame is never a leftover). A damaged first frame counts as salted: in a reused file
/// whose new first frame never reached the disk, the old frames are then all leftovers.
fn file_salt(file: &File, seq: u64, len: u64) -> std::io::Result<u32> {
    let salt = codec::wal_salt(seq);
    let intact_first = |salt| -> std::io::Result<bool> {
        Ok(matches!(FrameReader::new(file, 0, len, 64 << 10).salted(salt).next()?, Next::Frame { .. }))
    };
    if len == 0 || intact_first(salt)? || !intact_first(0)? { Ok(salt) } else { Ok(0) }
}

/// Where the first intact WAL frame after the bad frame at `pos` starts, if any.
///
/// When the bad frame's length still describes a frame inside the file and an intact run
/// starts right after it (a damaged body), that is the answer. Otherwise the length cannot be
/// trusted and every later byte position is tried. A data frame's records are frames too, so a
/// position only counts when what starts there is a run of intact, decodable WAL entries: two of
/// them, or one that ends exactly at the end of the file. The records of the bad frame itself
/// (as far as its header and record count describe them) are stepped over, so the intact
/// records of a torn data frame are never mistaken for WAL frames that follow it.
fn next_intact(file: &File, pos: u64, len: u64, salt: u32) -> std::io::Result<Option<u64>> {
    let mut head = [0u8; codec::FRAME_HEADER + codec::WAL_DATA_HEADER];
    let have = head.len().min((len - pos) as usize);
    file.read_exact_at(&mut head[..have], pos)?;
    let claimed = (have >= 4).then(|| u64::from(u32::from_le_bytes(head[..4].try_into().expect("4 bytes"))));
    if let Some(body) = claimed
        && body > 0
        && pos + codec::FRAME_HEADER as u64 + body < len
        && intact_run_at(file, pos + codec::FRAME_HEADER as u64 + body, len, salt)?
    {
        return Ok(Some(pos + codec::FRAME_HEADER as u64 + body));
    }
    let mut from = pos + 1;
    if have == head.len() && head[codec::FRAME_HEADER] == codec::WAL_DATA {
        let count = u32::from_le_bytes(head[head.len() - 4..].try_into().expect("4 bytes"));
        from = from.max(skip_records(file, pos + head.len() as u64, len, count)?);
    }
    scan_for_intact(file, from, len, salt)
}

/// Steps over up to `count` consecutive record frames from `at`; returns where they end.
fn skip_records(file: &File, mut at: u64, len: u64, count: u32) -> std::io::Result<u64> {
    let mut reader = FrameReader::new(file, at, len, 256 << 10);
    for _ in 0..count {
        match reader.next()? {
            Next::Frame { pos, frame } => at = pos + frame.len() as u64,
            _ => break,
        }
    }
    Ok(at)
}

/// Tries every position from `from`. Checksums are the expensive part (a claimed length may
/// be most of the file), so a position is only checksummed when its header is plausible (a
/// known entry type, a length that fits the file) and so is the header right after the frame
/// it claims (or that frame ends the file): random bytes pass both about once in 10^7.
fn scan_for_intact(file: &File, from: u64, len: u64, salt: u32) -> std::io::Result<Option<u64>> {
    const WINDOW: usize = 1 << 20;
    let mut buf = vec![0u8; WINDOW + HEAD];
    let mut base = from;
    while base + HEAD as u64 <= len {
        let n = ((len - base) as usize).min(buf.len());
        file.read_exact_at(&mut buf[..n], base)?;
        let positions = (n - HEAD + 1).min(WINDOW);
        for i in 0..positions {
            let at = base + i as u64;
            let Some(end) = plausible_frame(&buf[i..i + HEAD], at, len) else { continue };
            let next_ok = end == len || {
                let mut next = [0u8; HEAD];
                end + HEAD as u64 <= len && {
                    file.read_exact_at(&mut next, end)?;
                    plausible_frame(&next, end, len).is_some()
                }
            };
            if next_ok && intact_run_at(file, at, len, salt)? {
                return Ok(Some(at));
            }
        }
        base += positions as u64;
    }
    Ok(None)
}

/// Bytes needed to judge a header: the frame header and the entry type.
const HEAD: usize = codec::FRAME_HEADER + 1;

/// Where the frame whose header starts `head` (at `at`) would end, if that header is plausible.
fn plausible_frame(head: &[u8], at: u64, len: u64) -> Option<u64> {
    let body = u64::from(u32::from_le_bytes(head[..4].try_into().expect("4 bytes")));
    let fits = match head[codec::FRAME_HEADER] {
        codec::WAL_DATA => body >= codec::WAL_DATA_HEADER as u64,
        codec::WAL_AUX => body >= 9,
        codec::WAL_DROP => body == 9,
        codec::WAL_PAD => body >= 1,
        _ => false,
    };
    let end = at + codec::FRAME_HEADER as u64 + body;
    (fits && body <= codec::MAX_FRAME_LEN as u64 && end <= len).then_some(end)
}

/// True when two intact, decodable WAL entries start at `at`, or one that ends the file.
fn intact_run_at(file: &File, at: u64, len: u64, salt: u32) -> std::io::Result<bool> {
    let mut reader = FrameReader::new(file, at, len, 64 << 10).salted(salt);
    let mut intact = 0;
    loop {
        match reader.next()? {
            Next::Frame { frame, .. } if decodes(&frame[codec::FRAME_HEADER..]) => {
                intact += 1;
                if intact == 2 {
                    return Ok(true);
                }
            }
            Next::End => return Ok(intact == 1),
            _ => return Ok(false),
        }
    }
}

/// A WAL entry that replay would accept (a data entry's records split into `count` frames).
fn decodes(body: &[u8]) -> bool {
    match codec::decode_wal_body(body) {
        Ok(WalEntry::Data { count, records, .. }) => {
            codec::split_records(records).is_ok_and(|r| r.len() == count as usize)
        }
        Ok(_) => true,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RecordInput;

    fn records(n: usize) -> Vec<RecordInput> {
        (0..n)
            .map(|i| RecordInput {
                publish_time: 1_000 + i as i64,
                event_time: None,
                key: None,
                key_base64: false,
                ordering_key: None,
                properties: vec![],
                payload: bytes::Bytes::from(vec![b'x'; 40]),
                producer: None,
                batch: None,
                chunk: None,
                encrypted: None,
            })
            .collect()
    }

    /// Frames of log 7, one data frame per run of 4 records from `first`, plus their positions.
    fn wal(frames: usize, first: u64) -> (Vec<u8>, Vec<u64>) {
        let mut out = Vec::new();
        let mut at = Vec::new();
        for f in 0..frames as u64 {
            at.push(out.len() as u64);
            out.extend(codec::encode_data_frame(7, first, first + f * 4, &records(4)).bytes);
        }
        (out, at)
    }

    fn file_of(dir: &Path, bytes: &[u8]) -> (File, u64) {
        let path = dir.join("w");
        fs::write(&path, bytes).unwrap();
        (File::open(&path).unwrap(), bytes.len() as u64)
    }

    #[test]
    fn a_damaged_body_resumes_at_the_next_frame() {
        let dir = tempfile::tempdir().unwrap();
        let (mut bytes, at) = wal(5, 0);
        bytes[at[2] as usize + 40] ^= 1;
        let (f, len) = file_of(dir.path(), &bytes);
        assert_eq!(next_intact(&f, at[2], len, 0).unwrap(), Some(at[3]));
    }

    #[test]
    fn a_damaged_length_is_scanned_past() {
        let dir = tempfile::tempdir().unwrap();
        let (mut bytes, at) = wal(5, 0);
        // The length now claims more than the file holds: it reads as a torn frame.
        bytes[at[1] as usize + 3] ^= 0x01;
        let (f, len) = file_of(dir.path(), &bytes);
        assert_eq!(next_intact(&f, at[1], len, 0).unwrap(), Some(at[2]));
    }

    /// A data frame cut short: its complete records are frames themselves, and a record at an
    /// offset whose low byte is 2 even decodes as an aux entry. It is still a torn tail.
    #[test]
    fn the_records_of_a_torn_data_frame_are_not_mistaken_for_frames() {
        let dir = tempfile::tempdir().unwrap();
        // Records at 258.. (258 = 0x102): the first record's body starts with byte 2.
        let (bytes, at) = wal(2, 258 - 4);
        let frame = &bytes[at[1] as usize..];
        let first_record_end =
            FRAME_HEADER_AND_DATA + codec::split_records(&frame[FRAME_HEADER_AND_DATA..]).unwrap()[0].1;
        let cut = at[1] as usize + first_record_end;
        let (f, len) = file_of(dir.path(), &bytes[..cut]);
        assert!(decodes(&bytes[at[1] as usize + FRAME_HEADER_AND_DATA + codec::FRAME_HEADER..cut]));
        assert_eq!(next_intact(&f, at[1], len, 0).unwrap(), None);
    }

    #[test]
    fn garbage_after_a_bad_frame_is_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let (mut bytes, at) = wal(3, 0);
        bytes.extend((0..5000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
        bytes[at[2] as usize + 20] ^= 0x80;
        let (f, len) = file_of(dir.path(), &bytes);
        assert_eq!(next_intact(&f, at[2], len, 0).unwrap(), None);
    }

    const FRAME_HEADER_AND_DATA: usize = codec::FRAME_HEADER + codec::WAL_DATA_HEADER;
}
