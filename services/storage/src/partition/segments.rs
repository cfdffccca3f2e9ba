//! A partition's segments across the tiers, as the broker sees them: where an offset's segment
//! starts, their sizes, what is offloaded, local copies of offloaded segments, and deleting
//! whole segments (retention).

use super::{DeletedSegments, PartitionLog, SegmentInfo, Segments, record_mem};
use crate::segment::{self, SealedSegment, SegMeta};
use crate::tier::RemoteSegment;
use crate::{Result, StorageError, now_ms};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

impl PartitionLog {
    /// The base offset of the segment holding `offset` (the ledger id of its Pulsar message
    /// id): from the in-memory tail when the record is there (it may be visible before it is
    /// written to its segment), else from the segments; 0 before the first one.
    pub fn segment_base_of(&self, offset: u64) -> u64 {
        {
            let tail = self.tail.lock();
            if let Some(first) = tail.records.front()
                && offset >= first.offset
                && let Some(r) = tail.records.get((offset - first.offset) as usize)
            {
                return r.segment_base;
            }
        }
        self.segments().iter().rev().find(|s| s.base_offset <= offset).map_or(0, |s| s.base_offset)
    }

    /// Every segment once, in offset order, whichever tiers hold it.
    pub fn segments(&self) -> Vec<SegmentInfo> {
        let segs = self.segs.lock();
        let info = |m: &SegMeta, sealed: bool| SegmentInfo {
            base_offset: m.base,
            end_offset: m.end,
            size_bytes: m.size,
            first_publish_time: if m.count == 0 { 0 } else { m.first_time },
            last_publish_time: if m.count == 0 { 0 } else { m.max_time },
            created_at_ms: m.created_ms,
            sealed,
            local: true,
            offloaded: segs.remote.contains_key(&m.base),
            offloaded_at_ms: segs.remote.get(&m.base).map_or(0, |r| r.uploaded_at_ms),
        };
        let mut out: BTreeMap<u64, SegmentInfo> =
            segs.sealed.values().map(|s| (s.meta.base, info(&s.meta, true))).collect();
        for r in segs.remote.values() {
            out.entry(r.base_offset).or_insert(SegmentInfo {
                base_offset: r.base_offset,
                end_offset: r.end_offset,
                size_bytes: r.size_bytes,
                first_publish_time: r.first_publish_time,
                last_publish_time: r.last_publish_time,
                created_at_ms: r.uploaded_at_ms,
                sealed: true,
                local: false,
                offloaded: true,
                offloaded_at_ms: r.uploaded_at_ms,
            });
        }
        // Reported unsealed until their seal is durable: not uploadable or deletable before.
        for s in segs.sealing.values() {
            out.insert(s.meta.base, info(&s.meta, false));
        }
        let mut out: Vec<SegmentInfo> = out.into_values().collect();
        out.extend(segs.active.as_ref().map(|a| info(&a.meta, false)));
        out
    }

    /// Bytes of this log's segment files on local disk.
    pub fn size_bytes(&self) -> u64 {
        let segs = self.segs.lock();
        segs.sealed.values().map(|s| s.meta.size).sum::<u64>()
            + segs.sealing.values().map(|s| s.meta.size).sum::<u64>()
            + segs.active.as_ref().map_or(0, |a| a.meta.size)
    }

    /// The end of the segments in the object store (0 when none is).
    pub fn uploaded_end(&self) -> u64 {
        self.segs.lock().remote.values().next_back().map_or(0, |r| r.end_offset)
    }

    /// Bytes of this log's segments in the object store.
    pub fn offloaded_bytes(&self) -> u64 {
        self.segs.lock().remote.values().map(|r| r.size_bytes).sum()
    }

    /// Bytes of the whole log, each segment counted once whichever tiers hold it.
    pub fn storage_bytes(&self) -> u64 {
        self.segments().iter().map(|s| s.size_bytes).sum()
    }

    /// Local bytes not (yet) in the object store: the active segment and sealed segments not
    /// offloaded. What the local disk budget limits.
    pub fn local_pending_bytes(&self) -> u64 {
        self.segs.lock().pending()
    }

    /// Installs the segments the index says are in the object store (at load, before any
    /// append). If local files were lost, the log's end moves past the last remote segment so
    /// offsets are never reused.
    pub fn attach_remote(&self, remote: Vec<RemoteSegment>) {
        let mut segs = self.segs.lock();
        for r in remote {
            segs.remote.insert(r.base_offset, r);
        }
        let remote_end = segs.remote.values().next_back().map_or(0, |r| r.end_offset);
        if remote_end > self.end_offset() {
            let mut app = self.appender.lock();
            if app.next_offset < remote_end {
                tracing::warn!(
                    log_id = self.log_id,
                    local_end = app.next_offset,
                    remote_end,
                    "local segments end before the object store's: continuing after the offloaded data"
                );
                app.next_offset = remote_end;
                app.seg_base = remote_end;
                app.seg_bytes = 0;
                app.seg_created_ms = now_ms();
                drop(app);
                self.publish_end(remote_end);
            }
        }
        let first = first_base(&segs).unwrap_or_else(|| self.end_offset());
        self.start.store(first, Ordering::Release);
        self.segments_changed(&mut segs);
    }

    /// Records that sealed segment `seg.base_offset` is now in the object store (its index row
    /// committed).
    pub fn mark_offloaded(&self, seg: RemoteSegment) {
        let mut segs = self.segs.lock();
        if segs.deleted || seg.base_offset < self.start_offset() {
            return;
        }
        if segs.sealed.contains_key(&seg.base_offset) {
            let tick = self.shared.next_use_tick();
            segs.used.entry(seg.base_offset).or_insert(tick);
        }
        segs.remote.insert(seg.base_offset, seg);
        self.segments_changed(&mut segs);
    }

    /// Removes the local copy of an offloaded segment; returns the bytes freed (0 when it has no
    /// local copy). Refused for a segment that is not in the object store.
    pub fn drop_local_copy(&self, base: u64) -> Result<u64> {
        let removed = {
            let mut segs = self.segs.lock();
            if !segs.remote.contains_key(&base) {
                return Err(StorageError::Unavailable(format!(
                    "log {}: segment {base} is not in the object store; its local copy stays",
                    self.log_id
                )));
            }
            segs.used.remove(&base);
            let removed = segs.sealed.remove(&base);
            self.segments_changed(&mut segs);
            removed
        };
        let Some(s) = removed else { return Ok(0) };
        let path = segment::segment_path(&self.dir, base);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(s.meta.size),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(StorageError::io(&path, e)),
        }
    }

    /// Local copies of offloaded segments as `(last use, base offset)`: what may be removed to
    /// make room on the local disk.
    pub(crate) fn cached_copies(&self) -> Vec<(u64, u64)> {
        let segs = self.segs.lock();
        segs.sealed
            .keys()
            .filter(|b| segs.remote.contains_key(b))
            .map(|b| (segs.used.get(b).copied().unwrap_or(0), *b))
            .collect()
    }

    /// The file and summary of local sealed segment `base` (what gets uploaded).
    pub(crate) fn sealed_file(&self, base: u64) -> Result<(PathBuf, SegMeta)> {
        let segs = self.segs.lock();
        let s = segs.sealed.get(&base).ok_or_else(|| {
            StorageError::Unavailable(format!("log {}: no local sealed segment based at {base}", self.log_id))
        })?;
        Ok((segment::segment_path(&self.dir, base), s.meta))
    }

    pub(crate) fn has_segments(&self) -> bool {
        let segs = self.segs.lock();
        !segs.deleted && (segs.active.is_some() || !segs.sealed.is_empty() || !segs.sealing.is_empty())
    }

    /// Deletes whole sealed segments whose end is <= `offset` (never the active one, nor one
    /// whose seal is still in progress) from the local disk and forgets the offloaded ones; the
    /// caller deletes their objects.
    pub fn delete_segments_before(&self, offset: u64) -> Result<DeletedSegments> {
        let (victims, remote): (Vec<SealedSegment>, Vec<RemoteSegment>) = {
            let mut segs = self.segs.lock();
            let bases: Vec<u64> =
                segs.sealed.values().take_while(|s| s.meta.end <= offset).map(|s| s.meta.base).collect();
            for b in &bases {
                segs.used.remove(b);
            }
            let v = bases.iter().filter_map(|b| segs.sealed.remove(b)).collect();
            let rbases: Vec<u64> =
                segs.remote.values().take_while(|r| r.end_offset <= offset).map(|r| r.base_offset).collect();
            let r = rbases.iter().filter_map(|b| segs.remote.remove(b)).collect();
            if let Some(first) = first_base(&segs) {
                self.start.fetch_max(first, Ordering::AcqRel);
            }
            self.segments_changed(&mut segs);
            (v, r)
        };
        let mut freed = 0;
        for s in &victims {
            let path = segment::segment_path(&self.dir, s.meta.base);
            match std::fs::remove_file(&path) {
                Ok(()) => freed += s.meta.size,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::io(&path, e)),
            }
        }
        let start = self.start_offset();
        let mut tail = self.tail.lock();
        while tail.records.front().is_some_and(|r| r.offset < start) {
            let m = record_mem(&tail.records[0]);
            tail.records.pop_front();
            tail.bytes -= m;
            self.shared.release_tail(m);
        }
        Ok(DeletedSegments { freed_local: freed, remote })
    }
}

/// First base offset over every tier.
pub(super) fn first_base(segs: &Segments) -> Option<u64> {
    [
        segs.sealed.keys().next().copied(),
        segs.remote.keys().next().copied(),
        segs.sealing.keys().next().copied(),
        segs.active.as_ref().map(|a| a.meta.base),
    ]
    .into_iter()
    .flatten()
    .min()
}
