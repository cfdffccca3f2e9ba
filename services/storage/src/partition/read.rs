//! Reads of one partition's log: by offset (the in-memory tail, then the active segment, a local
//! sealed segment or an object) and by publish time.

use super::{PartitionLog, Segments};
use crate::error::IoContext;
use crate::record::Record;
use crate::segment::{self, ActiveSegment, ReadBudget, SealedSegment, SegMeta};
use crate::tier::RemoteSegment;
use crate::{Result, StorageError};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

impl PartitionLog {
    /// Reads up to `max_records` records (and about `max_bytes`, at least one record) starting
    /// at `from`, in offset order. May read from disk: call it from a blocking context.
    ///
    /// A read that fails on a log closed for a handover (its files may be going away under it)
    /// fails with `Closed`: the partition's next owner serves it.
    pub fn read(&self, from: u64, max_records: usize, max_bytes: usize) -> Result<Vec<Record>> {
        self.read_open(from, max_records, max_bytes).map_err(|e| {
            let app = self.appender.lock();
            match e {
                e @ StorageError::OffsetTrimmed { .. } => e,
                _ if app.closed => StorageError::Closed(self.log_id),
                e => e,
            }
        })
    }

    fn read_open(&self, from: u64, max_records: usize, max_bytes: usize) -> Result<Vec<Record>> {
        let start = self.start_offset();
        if from < start {
            return Err(StorageError::OffsetTrimmed { log_id: self.log_id, offset: from, earliest: start });
        }
        let end = self.end_offset();
        if from >= end || max_records == 0 {
            return Ok(Vec::new());
        }
        let mut budget = ReadBudget { from, end, max_records, max_bytes, bytes: 0 };
        let mut out = Vec::new();
        if self.read_tail(&mut budget, &mut out) {
            return Ok(out);
        }
        let mut retried = false;
        while !budget.full(&out) && budget.from < end {
            let Some(target) = self.locate(budget.from)? else { break };
            let before = budget.from;
            let bytes_before = budget.bytes;
            let res = match &target {
                Target::Local(t) => t.read(&mut budget, &mut out),
                Target::Remote(seg) => match self.shared.tier.get() {
                    Some(tier) => {
                        let next = self.segs.lock().remote.range(seg.end_offset..).next().map(|(_, r)| r.clone());
                        tier.read(seg, next.as_ref(), &mut budget, &mut out)
                    }
                    None => Err(StorageError::Unavailable(format!(
                        "log {}: segment {} is in the object store but no object tier is attached",
                        self.log_id, seg.base_offset
                    ))),
                },
            };
            let tier = if matches!(target, Target::Local(_)) { "local" } else { "object" };
            self.shared.metrics.read_bytes.with_label_values(&[tier]).inc_by((budget.bytes - bytes_before) as u64);
            if let Err(e) = res {
                // Retention may have deleted the segment after we located it.
                let start = self.start_offset();
                if budget.from < start {
                    return Err(StorageError::OffsetTrimmed {
                        log_id: self.log_id,
                        offset: budget.from,
                        earliest: start,
                    });
                }
                // The local copy of an offloaded segment may have been dropped meanwhile: the
                // next lookup finds the object.
                if let (Target::Local(_), StorageError::Io { source, .. }) = (&target, &e)
                    && source.kind() == std::io::ErrorKind::NotFound
                    && !retried
                {
                    retried = true;
                    continue;
                }
                return Err(e);
            }
            if budget.from == before && !budget.full(&out) {
                // Nothing at or past `from` in this segment: continue in the next one.
                budget.from = budget.from.max(target.end());
                if budget.from == before {
                    break;
                }
            }
        }
        // Visible records past the segments' written end are in the tail (`written`).
        if !budget.full(&out) && budget.from < end {
            self.read_tail(&mut budget, &mut out);
        }
        Ok(out)
    }

    /// Reads from the in-memory tail into `out` if it holds `budget.from`; returns whether it
    /// did.
    fn read_tail(&self, budget: &mut ReadBudget, out: &mut Vec<Record>) -> bool {
        let tail = self.tail.lock();
        let Some(first) = tail.records.front() else { return false };
        if budget.from < first.offset {
            return false;
        }
        let before = budget.bytes;
        for r in tail.records.iter().skip((budget.from - first.offset) as usize) {
            if out.len() >= budget.max_records
                || r.offset >= budget.end
                || (!out.is_empty() && budget.bytes + r.payload.len() > budget.max_bytes)
            {
                break;
            }
            budget.bytes += r.payload.len();
            budget.from = r.offset + 1;
            out.push(r.clone());
        }
        self.shared.metrics.read_bytes.with_label_values(&["memory"]).inc_by((budget.bytes - before) as u64);
        true
    }

    /// The segment holding `offset` (or the first one after it), ready to read without locks:
    /// the active segment, else a local sealed one, else an object.
    fn locate(&self, offset: u64) -> Result<Option<Target>> {
        let mut segs = self.segs.lock();
        let target = self.locate_in(&segs, offset)?;
        if let Some(Target::Local(t)) = &target
            && t.view.is_none()
        {
            // A sealed local file: the local copy is in use (see `evict_local_copies`).
            segs.used.insert(t.meta.base, self.shared.next_use_tick());
        }
        Ok(target)
    }

    fn locate_in(&self, segs: &Segments, offset: u64) -> Result<Option<Target>> {
        self.check_failed()?;
        let at =
            |a: &ActiveSegment| segment::index_lookup(&a.index, offset).map_or(segment::HEADER_LEN, |e| e.position);
        if let Some(a) = &segs.active
            && a.meta.base <= offset
        {
            return Ok(Some(Target::Local(ReadTarget::unsealed(a, at(a)))));
        }
        // A segment whose seal is in progress: the newest below the active one.
        if let Some((_, a)) = segs.sealing.range(..=offset).next_back()
            && a.meta.end > offset
        {
            return Ok(Some(Target::Local(ReadTarget::unsealed(a, at(a)))));
        }
        let local = |s: &SealedSegment| {
            let path = segment::segment_path(&self.dir, s.meta.base);
            Target::Local(ReadTarget { meta: s.meta, path, view: None, pos: None, limit: s.records_end })
        };
        // The segment holding `offset`: local copy first.
        if let Some((_, s)) = segs.sealed.range(..=offset).next_back()
            && s.meta.end > offset
        {
            return Ok(Some(local(s)));
        }
        if let Some((_, r)) = segs.remote.range(..=offset).next_back()
            && r.end_offset > offset
        {
            return Ok(Some(Target::Remote(r.clone())));
        }
        // Else the first one after it, whichever tier holds it (sealed segments are older than
        // sealing ones, which are older than the active one).
        let next_local = segs.sealed.range(offset..).next().map(|(b, s)| (*b, local(s))).or_else(|| {
            segs.sealing
                .range(offset..)
                .next()
                .map(|(b, a)| (*b, Target::Local(ReadTarget::unsealed(a, segment::HEADER_LEN))))
        });
        let next_remote = segs.remote.range(offset..).next().map(|(_, r)| r);
        match (next_local, next_remote) {
            (Some((b, _)), Some(r)) if r.base_offset < b => return Ok(Some(Target::Remote(r.clone()))),
            (Some((_, t)), _) => return Ok(Some(t)),
            (None, Some(r)) => return Ok(Some(Target::Remote(r.clone()))),
            (None, None) => {}
        }
        Ok(segs.active.as_ref().map(|a| Target::Local(ReadTarget::unsealed(a, segment::HEADER_LEN))))
    }

    /// First retained offset whose publish time is >= `t` (`end_offset()` when there is none).
    /// May read segment indexes from disk.
    pub fn offset_for_publish_time(&self, t: i64) -> u64 {
        match self.find_publish_time(t) {
            Ok(Some(o)) => o,
            // Visible records are in the tail before they are in a segment (`written`).
            Ok(None) => {
                let end = self.end_offset();
                let tail = self.tail.lock();
                tail.records.iter().find(|r| r.publish_time >= t && r.offset < end).map_or(end, |r| r.offset)
            }
            Err(e) => {
                tracing::warn!(log_id = self.log_id, error = %e, "publish-time lookup failed");
                self.end_offset()
            }
        }
    }

    fn find_publish_time(&self, t: i64) -> Result<Option<u64>> {
        let candidates: Vec<Target> = {
            let segs = self.segs.lock();
            let sealed =
                segs.sealed.values().filter(|s| s.meta.count > 0 && s.meta.max_time >= t).map(|s| ReadTarget {
                    meta: s.meta,
                    path: segment::segment_path(&self.dir, s.meta.base),
                    view: None,
                    pos: None,
                    limit: s.records_end,
                });
            // The active segment and those still sealing: their indexes are in memory.
            let unsealed = segs
                .sealing
                .values()
                .map(|a| &**a)
                .chain(segs.active.as_ref())
                .filter(|a| a.meta.count > 0 && a.meta.max_time >= t)
                .map(|a| {
                    let pos = segment::index_lookup_time(&a.index, t).map_or(segment::HEADER_LEN, |e| e.position);
                    ReadTarget::unsealed(a, pos)
                })
                .collect::<Vec<_>>();
            let remote = segs
                .remote
                .values()
                .filter(|r| !segs.sealed.contains_key(&r.base_offset) && r.last_publish_time >= t)
                .cloned()
                .map(Target::Remote);
            let mut all: Vec<Target> = sealed.map(Target::Local).chain(remote).collect();
            all.sort_by_key(|c| c.base());
            all.extend(unsealed.into_iter().map(Target::Local));
            all
        };
        let end = self.end_offset();
        for c in candidates {
            let found = match &c {
                Target::Local(c) => {
                    let (file, pos) = c.open(|idx| segment::index_lookup_time(idx, t))?;
                    segment::find_time(&*file, &c.path, pos, c.limit, t)?
                }
                Target::Remote(r) => match self.shared.tier.get() {
                    Some(tier) => tier.find_time(r, t)?,
                    None => None,
                },
            };
            if let Some(o) = found {
                return Ok(Some(o.min(end)));
            }
        }
        Ok(None)
    }
}

/// Where a read goes: a local file or an object.
enum Target {
    Local(ReadTarget),
    Remote(RemoteSegment),
}

impl Target {
    fn base(&self) -> u64 {
        match self {
            Target::Local(t) => t.meta.base,
            Target::Remote(r) => r.base_offset,
        }
    }

    fn end(&self) -> u64 {
        match self {
            Target::Local(t) => t.meta.end,
            Target::Remote(r) => r.end_offset,
        }
    }
}

/// A segment snapshot for reading outside the partition lock. Sealed segments are opened per
/// read (their files are immutable, and keeping thousands of descriptors open is not needed).
struct ReadTarget {
    meta: SegMeta,
    path: PathBuf,
    /// An unsealed segment's (see `segment::SegmentView`); sealed ones are opened per read.
    view: Option<Arc<segment::SegmentView>>,
    pos: Option<u64>,
    limit: u64,
}

impl ReadTarget {
    /// A segment still written or sealing: read through its open file up to its records' end,
    /// from `pos` (found in its in-memory index).
    fn unsealed(a: &ActiveSegment, pos: u64) -> Self {
        ReadTarget {
            meta: a.meta,
            path: a.path.clone(),
            view: Some(Arc::new(a.view())),
            pos: Some(pos),
            limit: a.meta.size,
        }
    }

    fn open(
        &self,
        lookup: impl Fn(&[segment::IndexEntry]) -> Option<segment::IndexEntry>,
    ) -> Result<(Arc<dyn segment::ReadAt + Send + Sync>, u64)> {
        if let (Some(view), Some(pos)) = (&self.view, self.pos) {
            return Ok((view.clone(), pos));
        }
        let file = File::open(&self.path).ctx(&self.path)?;
        let sealed = SealedSegment { meta: self.meta, records_end: self.limit, index_count: 0 };
        let idx = load_sealed_index(&sealed, &file, &self.path)?;
        let pos = lookup(&idx).map_or(segment::HEADER_LEN, |e| e.position);
        Ok((Arc::new(file), pos))
    }

    fn read(&self, budget: &mut ReadBudget, out: &mut Vec<Record>) -> Result<()> {
        let from = budget.from;
        let (file, pos) = self.open(|idx| segment::index_lookup(idx, from))?;
        segment::read_records(&*file, &self.path, pos, self.limit, self.meta.base, budget, out)
    }
}

/// Reads a sealed segment's index; `index_count` comes from the footer geometry.
fn load_sealed_index(s: &SealedSegment, file: &File, path: &Path) -> Result<Vec<segment::IndexEntry>> {
    let index_count = (s.meta.size - segment::FOOTER_LEN - s.records_end) / 32;
    SealedSegment { index_count, ..s.clone() }.load_index(file, path)
}
