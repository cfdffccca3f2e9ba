//! Recovery at open: validate every partition's segments, then replay the WAL on top.
//!
//! Segments first: a sealed segment is checked by footer and index checksums; the last (active)
//! one is scanned record by record and truncated at the first torn or corrupt frame. Then WAL
//! files are replayed in order: a data frame's records at or past the partition's recovered end
//! are appended to the segment named in the frame (so segment bases match the first run); a
//! drop record erases its log, and only frames after it rebuild a new log with that id; aux
//! records are collected for the caller. The WAL's valid prefix ends at the first torn or corrupt
//! frame: the file is truncated there and any later files are set aside as `*.corrupt`.

use crate::codec::{self, WalEntry};
use crate::error::IoContext;
use crate::partition::PartitionLog;
use crate::segment::{self, ActiveSegment, FrameReader, Next, Opened};
use crate::wal::{self, Shared, WalFileMeta};
use crate::{AuxRecord, Result, now_ms};
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::fs::{self, OpenOptions};
use std::path::Path;
use std::sync::Arc;

pub(crate) struct Recovered {
    pub partitions: HashMap<u64, Arc<PartitionLog>>,
    pub aux: Vec<AuxRecord>,
    pub wal_files: VecDeque<WalFileMeta>,
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
    let (wal_files, next_seq) = replay_wal(&wal_dir, shared, &mut partitions, &mut aux)?;
    Ok(Recovered { partitions, aux, wal_files, next_seq })
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
) -> Result<(VecDeque<WalFileMeta>, u64)> {
    let mut files: Vec<(u64, std::path::PathBuf)> = Vec::new();
    let mut max_seq = None;
    for entry in fs::read_dir(wal_dir).ctx(wal_dir)? {
        let entry = entry.ctx(wal_dir)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let seq = name.split('.').next().and_then(|s| s.parse::<u64>().ok());
        max_seq = max_seq.max(seq);
        if let Some(seq) = wal::parse_wal_name(&name) {
            files.push((seq, entry.path()));
        }
    }
    files.sort();
    let mut metas = VecDeque::new();
    let mut broken = false;
    let count = files.len();
    for (i, (seq, path)) in files.into_iter().enumerate() {
        if broken {
            let aside = path.with_extension("wal.corrupt");
            tracing::error!(file = %path.display(), "wal file follows a corrupt one; set aside, not replayed");
            fs::rename(&path, &aside).ctx(&path)?;
            continue;
        }
        let file = OpenOptions::new().read(true).write(true).open(&path).ctx(&path)?;
        let len = file.metadata().ctx(&path)?.len();
        let mut meta = WalFileMeta::new(seq, path.clone());
        let mut reader = FrameReader::new(&file, 0, len, 4 << 20);
        let valid_end = loop {
            let (pos, frame) = match reader.next().ctx(&path)? {
                Next::Frame { pos, frame } => (pos, frame),
                Next::End => break len,
                Next::Torn { pos } => {
                    if i + 1 < count {
                        broken = true;
                    }
                    tracing::warn!(file = %path.display(), pos, "torn wal frame; truncating");
                    break pos;
                }
                Next::Corrupt { pos, detail } => {
                    tracing::error!(file = %path.display(), pos, detail, "corrupt wal frame; the valid prefix ends here");
                    broken = true;
                    break pos;
                }
            };
            match codec::decode_wal_body(&frame[codec::FRAME_HEADER..]) {
                Ok(WalEntry::Data { log_id, segment_base, records, .. }) => {
                    let part = partitions.entry(log_id).or_insert_with(|| PartitionLog::new(log_id, shared.clone()));
                    part.replay(segment_base, records)?;
                    meta.logs.insert(log_id);
                }
                Ok(WalEntry::Aux { log_id, data }) => {
                    aux.push(AuxRecord { log_id, data: Bytes::copy_from_slice(data) });
                    meta.has_aux = true;
                }
                Ok(WalEntry::Drop { log_id }) => {
                    if let Some(p) = partitions.remove(&log_id) {
                        p.mark_deleted();
                        let dir = p.dir().to_path_buf();
                        if dir.exists() {
                            fs::remove_dir_all(&dir).ctx(&dir)?;
                        }
                    }
                    aux.retain(|a| a.log_id != log_id);
                }
                Err(detail) => {
                    tracing::error!(file = %path.display(), pos, detail, "undecodable wal frame; the valid prefix ends here");
                    broken = true;
                    break pos;
                }
            }
        };
        if valid_end < len {
            file.set_len(valid_end).ctx(&path)?;
            file.sync_all().ctx(&path)?;
        }
        meta.size = valid_end;
        metas.push_back(meta);
    }
    Ok((metas, max_seq.map_or(0, |s| s + 1)))
}
