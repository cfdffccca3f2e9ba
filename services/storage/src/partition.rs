//! One partition's log: offset assignment (the appender), its segments, its in-memory tail and
//! the durable end that readers and waiters see.

use crate::codec::{self, DataFrame};
use crate::objlog::{CommitKind, ObjectMode};
use crate::record::{Record, RecordInput};
use crate::segment::{self, ActiveSegment, RecordPos, SealedSegment};
use crate::tier::RemoteSegment;
use crate::wal::{Shared, WalItem};
use crate::{Result, StorageError, now_ms};
use parking_lot::{Condvar, Mutex};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use tokio::sync::{oneshot, watch};

mod mode;
mod read;
mod seal;
mod segments;

use segments::first_base;

pub(crate) use seal::{SealMsg, run as run_sealer};
#[cfg(test)]
mod tests;

/// What the broker sees of one segment (retention, stats, message ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentInfo {
    pub base_offset: u64,
    pub end_offset: u64,
    pub size_bytes: u64,
    /// Publish time of the first record (0 when empty).
    pub first_publish_time: i64,
    /// Latest publish time of any record (0 when empty).
    pub last_publish_time: i64,
    pub created_at_ms: i64,
    pub sealed: bool,
    /// A local file holds it (the active segment, a sealed one not yet offloaded, or the
    /// local copy of an offloaded one).
    pub local: bool,
    /// The object store holds it (its index row is committed).
    pub offloaded: bool,
    /// When its upload completed (0 when not offloaded).
    pub offloaded_at_ms: i64,
}

/// What [`PartitionLog::delete_segments_before`] removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DeletedSegments {
    /// Bytes of local files removed.
    pub freed_local: u64,
    /// Offloaded segments forgotten: the caller deletes their objects (after their index rows).
    pub remote: Vec<RemoteSegment>,
}

/// Offset assignment. Held while a request's frame is encoded and queued, so WAL order is
/// offset order within the partition.
struct Appender {
    next_offset: u64,
    /// Segment the next request goes to; decided here (not by the flusher) so the WAL frame
    /// can carry it and replay rebuilds identical segments.
    seg_base: u64,
    seg_bytes: u64,
    seg_created_ms: i64,
    deleted: bool,
    /// Pulsar's topic termination: appends are refused from then on.
    terminated: bool,
    /// Closed for a handover: appends are refused until `reopen` (kept in memory only).
    closed: bool,
}

#[derive(Default)]
struct Segments {
    sealed: BTreeMap<u64, SealedSegment>,
    /// Segments in the object store, by base offset (some also have a local copy in `sealed`).
    remote: BTreeMap<u64, RemoteSegment>,
    /// Last use of each local sealed segment (`Shared::use_tick`): its last read, or its upload
    /// when never read since. Orders the eviction of local copies.
    used: HashMap<u64, u64>,
    active: Option<ActiveSegment>,
    /// Rolled segments whose seal (indexes, footer, fsync) the sealer thread has not finished:
    /// readable like the active one, not yet uploadable or deletable (see `seal`).
    sealing: BTreeMap<u64, Arc<ActiveSegment>>,
    deleted: bool,
    /// Bytes of the local sealed segments not in the object store: recounted by `recount`
    /// whenever `sealed` or `remote` change (once per seal, upload or deletion, never per append).
    sealed_pending: u64,
}

impl Segments {
    /// Local bytes not (yet) in the object store: the active segment and the sealed segments
    /// not offloaded. What the local disk budget limits. O(1).
    fn pending(&self) -> u64 {
        if self.deleted {
            return 0;
        }
        self.sealed_pending
            + self.sealing.values().map(|s| s.meta.size).sum::<u64>()
            + self.active.as_ref().map_or(0, |a| a.meta.size)
    }

    /// Derives `sealed_pending` from the segment lists again after they changed.
    fn recount(&mut self) {
        self.sealed_pending =
            self.sealed.values().filter(|s| !self.remote.contains_key(&s.meta.base)).map(|s| s.meta.size).sum();
    }
}

#[derive(Default)]
struct Tail {
    records: VecDeque<Record>,
    bytes: usize,
}

fn record_mem(r: &Record) -> usize {
    96 + r.payload.len()
        + r.key.as_ref().map_or(0, String::len)
        + r.properties.iter().map(|(k, v)| 48 + k.len() + v.len()).sum::<usize>()
}

pub struct PartitionLog {
    log_id: u64,
    dir: PathBuf,
    me: Weak<PartitionLog>,
    shared: Arc<Shared>,
    appender: Mutex<Appender>,
    segs: Mutex<Segments>,
    tail: Mutex<Tail>,
    start: AtomicU64,
    end: AtomicU64,
    end_tx: watch::Sender<u64>,
    /// This log's share of `Shared::local_pending`: `Segments::pending` as last published.
    pending: AtomicU64,
    /// Records below this offset are written to the segments. Records at or past it may be
    /// visible already (acknowledged once the WAL has them, `wal::Flusher::publish_durable`):
    /// the in-memory tail keeps every one of them, so that readers find them there.
    written: AtomicU64,
    /// `written` again, for the waiters of [`PartitionLog::settled`]; the atomic stays for the
    /// reads on every append (`evict_tail`), which a watch's lock would slow.
    written_tx: watch::Sender<u64>,
    /// End of the records the WAL has applied here, visible or still waiting for their commit
    /// beyond it: what [`PartitionLog::adopt_accepted`] waits for.
    applied_tx: watch::Sender<u64>,
    /// Signalled (with `segs`) when a seal finishes.
    sealed_cv: Condvar,
    /// Set when a segment write or seal failed after the WAL fsync: the partition stops serving
    /// until a restart replays the WAL. Outside `segs`, whose lock the applier holds while it
    /// writes to disk: every append checks it, and must not wait for that write.
    failed: OnceLock<String>,
    /// A segment file was created since the directory was last fsynced.
    dir_dirty: AtomicBool,
    /// Object-store durability, when the owner chose it (see `objlog`).
    object_mode: Mutex<Option<ObjectMode>>,
    /// What is written here and what is committed beyond the WAL, for logs whose records wait
    /// for both before they are visible.
    commit_gate: Mutex<CommitGate>,
}

/// Where each record of a data frame lies in it, as segments index them.
pub(crate) fn positions(frame: &DataFrame, records: &[Record]) -> Vec<RecordPos> {
    records
        .iter()
        .zip(&frame.record_lens)
        .map(|(r, &len)| RecordPos { offset: r.offset, publish_time: r.publish_time, len })
        .collect()
}

/// Ends (exclusive offsets) of the records durable here (in the WAL; a replicated record may
/// wait for its segment write in the tail) and of those committed to the object store or an ack
/// quorum of replicas.
#[derive(Default)]
struct CommitGate {
    written: u64,
    committed: u64,
}

impl PartitionLog {
    pub(crate) fn new(log_id: u64, shared: Arc<Shared>) -> Arc<Self> {
        let dir = shared.config.data_dir.join("logs").join(log_id.to_string());
        Arc::new_cyclic(|me| PartitionLog {
            log_id,
            dir,
            me: me.clone(),
            shared,
            appender: Mutex::new(Appender {
                next_offset: 0,
                seg_base: 0,
                seg_bytes: 0,
                seg_created_ms: now_ms(),
                deleted: false,
                terminated: false,
                closed: false,
            }),
            segs: Mutex::new(Segments::default()),
            tail: Mutex::new(Tail::default()),
            start: AtomicU64::new(0),
            end: AtomicU64::new(0),
            end_tx: watch::channel(0).0,
            pending: AtomicU64::new(0),
            written: AtomicU64::new(0),
            written_tx: watch::channel(0).0,
            applied_tx: watch::channel(0).0,
            sealed_cv: Condvar::new(),
            failed: OnceLock::new(),
            // Recovery may have created files: the first sync covers them.
            dir_dirty: AtomicBool::new(true),
            object_mode: Mutex::new(None),
            commit_gate: Mutex::new(CommitGate::default()),
        })
    }

    /// Installs segments found on disk (recovery), before any append.
    pub(crate) fn load(&self, sealed: Vec<SealedSegment>, mut active: Option<ActiveSegment>) {
        if let Some(a) = active.as_mut() {
            self.start_writing(a);
        }
        let mut segs = self.segs.lock();
        for s in sealed {
            segs.sealed.insert(s.meta.base, s);
        }
        if let Some(a) = &active {
            self.mark_written(a.meta.end);
        }
        segs.active = active;
        self.sync_state(&segs);
        self.segments_changed(&mut segs);
    }

    /// Re-derives this log's pending bytes after its segment lists changed and publishes them.
    fn segments_changed(&self, segs: &mut Segments) {
        segs.recount();
        self.publish_pending(segs);
    }

    /// Publishes this log's pending bytes into the storage-wide sum the disk budget checks.
    /// The sum is never counted on its own: each log replaces its share under its segment
    /// lock and moves the sum by exactly the difference, so the sum always equals the total
    /// of the logs' figures, each derived from its segment list. Appends then read one atomic
    /// instead of visiting every partition.
    fn publish_pending(&self, segs: &Segments) {
        let now = segs.pending();
        let old = self.pending.swap(now, Ordering::Relaxed);
        self.shared.adjust_local_pending(old, now);
    }

    /// Recomputes start/end/appender from the segments (recovery only).
    fn sync_state(&self, segs: &Segments) {
        let first = first_base(segs);
        let last = segs.active.as_ref().map(|a| a.meta).or(segs.sealed.values().next_back().map(|s| s.meta));
        let end = last.map_or(0, |m| m.end);
        self.start.store(first.unwrap_or(end), Ordering::Release);
        self.publish_end(end);
        let mut app = self.appender.lock();
        app.next_offset = end;
        match &segs.active {
            Some(a) => {
                app.seg_base = a.meta.base;
                app.seg_bytes = a.meta.size - segment::HEADER_LEN;
                app.seg_created_ms = a.meta.created_ms;
            }
            None => {
                app.seg_base = end;
                app.seg_bytes = 0;
                app.seg_created_ms = now_ms();
            }
        }
    }

    pub fn log_id(&self) -> u64 {
        self.log_id
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends records; resolves once they are fsynced in the WAL and visible to readers.
    /// Returns `(offset, segment_base)` per record; offsets are consecutive.
    pub async fn append(&self, records: Vec<RecordInput>) -> Result<Vec<(u64, u64)>> {
        self.enqueue(records).await?.durable().await
    }

    /// The first half of `append`: the records get their offsets and are queued for the WAL
    /// when this resolves; [`PendingAppend::durable`] waits for the group commit. A caller may
    /// enqueue more before waiting: later enqueues always get later offsets.
    pub async fn enqueue(&self, records: Vec<RecordInput>) -> Result<PendingAppend> {
        self.enqueue_at(None, records).await
    }

    /// Appends records that keep the offsets they have elsewhere (recovered from replicas or
    /// log objects): the first goes at exactly `first`, or nothing is appended
    /// ([`StorageError::Misplaced`]). Resolves as [`PartitionLog::append`].
    pub async fn append_at(&self, first: u64, records: Vec<RecordInput>) -> Result<Vec<(u64, u64)>> {
        self.enqueue_at(Some(first), records).await?.durable().await
    }

    async fn enqueue_at(&self, at: Option<u64>, records: Vec<RecordInput>) -> Result<PendingAppend> {
        if records.is_empty() {
            return Ok(PendingAppend { ids: Vec::new(), done: None, replicas: None });
        }
        let max = self.shared.config.max_message_bytes;
        if let Some(r) = records.iter().find(|r| r.payload.len() > max) {
            return Err(StorageError::MessageTooLarge { size: r.payload.len(), max });
        }
        let frame_len = codec::data_frame_len(&records);
        let max_frame = self.shared.config.wal_buffer_bytes.min(codec::MAX_FRAME_LEN);
        if frame_len > max_frame {
            return Err(StorageError::MessageTooLarge { size: frame_len, max: max_frame });
        }
        self.check_failed()?;
        let mode = self.object_mode();
        if let Some(mode) = &mode {
            mode.writer.check_room(self.log_id)?;
        }
        // Replicated durability sends the frame to the replicas now, while the WAL fsyncs it
        // here (as a BookKeeper client writes to every bookie of its quorum at once): the ack
        // waits for the slower of the two instead of their sum.
        let replicate = mode.filter(|m| m.kind == CommitKind::Replicated);
        let budget = self.shared.config.local_disk_budget_bytes;
        if budget > 0 && self.shared.tier.get().is_some() {
            // Records queued but not yet applied are not counted: the WAL buffer bounds them
            // (`wal_buffer_bytes`), and counting them here would need undoing on every failure.
            let pending = self.shared.local_pending();
            if pending > budget {
                return Err(StorageError::Unavailable(format!(
                    "local disk budget of {budget} bytes is exhausted: {pending} bytes of segments wait for \
                     upload to the object store"
                )));
            }
        }
        let permit = self.shared.wal.reserve(frame_len).await?;
        let (tx, rx) = oneshot::channel();
        let mut replica_done = None;
        let ids = {
            let mut app = self.appender.lock();
            if app.deleted {
                return Err(StorageError::LogDeleted(self.log_id));
            }
            if app.terminated {
                return Err(StorageError::Terminated(self.log_id));
            }
            if app.closed {
                return Err(StorageError::Closed(self.log_id));
            }
            if let Some(first) = at.filter(|first| *first != app.next_offset) {
                return Err(StorageError::Misplaced { log_id: self.log_id, first, next: app.next_offset });
            }
            let now = now_ms();
            let age_ms = self.shared.config.segment_max_age.as_millis() as i64;
            let rec_bytes = (frame_len - codec::data_frame_len(&[])) as u64;
            if app.seg_bytes > 0
                && (app.seg_bytes + rec_bytes > self.shared.config.segment_max_bytes
                    || now - app.seg_created_ms >= age_ms)
            {
                app.seg_base = app.next_offset;
                app.seg_bytes = 0;
                app.seg_created_ms = now;
            }
            let (first, base) = (app.next_offset, app.seg_base);
            let frame = codec::encode_data_frame(self.log_id, base, first, &records);
            let ids: Vec<(u64, u64)> = (0..records.len() as u64).map(|i| (first + i, base)).collect();
            let tail: Vec<Record> =
                records.into_iter().zip(first..).map(|(r, offset)| r.into_record(offset, base)).collect();
            let part = self.me.upgrade().ok_or(StorageError::LogDeleted(self.log_id))?;
            let copy = replicate.as_ref().map(|_| (frame.bytes.clone(), part.clone()));
            let replicated = copy.is_some();
            self.shared.wal.send(WalItem::Data {
                part,
                base,
                pos: positions(&frame, &tail),
                frame,
                records: tail,
                done: Some(tx),
                replicated,
                in_segment: None,
                _permit: permit,
            })?;
            let n = ids.len() as u64;
            // Queued under the appender's lock, right after the WAL: the replicas get each
            // log's frames in offset order.
            if let (Some(mode), Some((frame, part))) = (replicate, copy) {
                let (tx, rx) = oneshot::channel();
                mode.writer.clone().queue(crate::objlog::Waiting {
                    part,
                    mode,
                    start: first,
                    end: first + n,
                    frame,
                    queued: std::time::Instant::now(),
                    done: Some(tx),
                });
                replica_done = Some(rx);
            }
            app.next_offset += n;
            app.seg_bytes += rec_bytes;
            ids
        };
        Ok(PendingAppend { ids, done: Some(rx), replicas: replica_done })
    }

    /// Writes a data frame's records (`pos`: their [`positions`]) to the active segment (the one
    /// based at `base`, rolling to it if needed); a failure stops the log.
    pub(crate) fn write_records(&self, base: u64, frame: &DataFrame, pos: &[RecordPos]) -> Result<()> {
        let mut segs = self.segs.lock();
        #[cfg(test)]
        if self.shared.write_gate.fail.load(Ordering::SeqCst) {
            let e = StorageError::Unavailable("a test failed the segment write".into());
            self.segment_write_failed(&e);
            return Err(e);
        }
        #[cfg(test)]
        self.shared.disk_gate.pass();
        let res = self.write_locked(&mut segs, base, &frame.bytes[frame.records_at..], pos);
        match &res {
            Ok(()) => {
                drop(segs);
                if let Some(last) = pos.last() {
                    self.mark_written(last.offset + 1);
                }
            }
            Err(e) => self.segment_write_failed(e),
        }
        res
    }

    /// Makes durable records visible: with `publish` false (object-store or replicated
    /// durability) only once they are also committed beyond the WAL
    /// ([`PartitionLog::publish_committed`]).
    pub(crate) fn applied(&self, records: Vec<Record>, publish: bool) {
        let Some(last) = records.last().map(|r| r.offset) else { return };
        self.push_tail(records);
        self.applied_tx.send_if_modified(|a| {
            let newer = last + 1 > *a;
            *a = (*a).max(last + 1);
            newer
        });
        if publish {
            self.publish_end(last + 1);
        } else {
            let mut gate = self.commit_gate.lock();
            gate.written = gate.written.max(last + 1);
            self.publish_gated(&gate);
        }
    }

    /// Makes every record written to the segments so far durable there: what direct writes
    /// gathered goes out, earlier segments finish their seals, then the active one is fsynced
    /// (`sync_active`). For records that bypass the WAL (`wal::Flusher::write_in_place`), this
    /// is their fsync; a failure stops the log, as the WAL's own failure stops the storage.
    pub(crate) fn make_durable(&self) -> Result<()> {
        self.flush_segment();
        self.check_failed()?;
        let res = self.sync_active();
        if let Err(e) = &res {
            self.segment_write_failed(e);
        }
        res
    }

    /// Replays a WAL data frame: keeps only records at or past the recovered end.
    pub(crate) fn replay(&self, base: u64, records: &[u8]) -> Result<()> {
        let parts = codec::split_records(records).map_err(|e| StorageError::Corrupt {
            file: "wal".into(),
            position: 0,
            detail: e,
        })?;
        let end = self.end_offset();
        let mut pos = Vec::with_capacity(parts.len());
        let mut from_byte = None;
        for (start, len) in parts {
            let body = &records[start + codec::FRAME_HEADER..start + len];
            let offset = codec::record_offset(body).map_err(|e| StorageError::Corrupt {
                file: "wal".into(),
                position: 0,
                detail: e,
            })?;
            if offset < end {
                continue;
            }
            from_byte.get_or_insert(start);
            let publish_time = codec::record_publish_time(body).unwrap_or(0);
            pos.push(RecordPos { offset, publish_time, len: len as u32 });
        }
        let (Some(from_byte), Some(last)) = (from_byte, pos.last().map(|p| p.offset)) else {
            return Ok(());
        };
        if pos[0].offset != end {
            tracing::warn!(
                log_id = self.log_id,
                expected = end,
                found = pos[0].offset,
                "offset gap while replaying the wal"
            );
        }
        let mut segs = self.segs.lock();
        self.write_locked(&mut segs, base, &records[from_byte..], &pos)?;
        drop(segs);
        self.mark_written(last + 1);
        self.publish_end(last + 1);
        let mut app = self.appender.lock();
        app.next_offset = last + 1;
        if app.seg_base != base {
            app.seg_base = base;
            app.seg_bytes = 0;
        }
        app.seg_bytes += (records.len() - from_byte) as u64;
        Ok(())
    }

    /// Writes what direct writes gathered in the active segment since the last flush (the
    /// WAL's applier calls it once per group commit for every log the commit held). A failure
    /// stops the log as a failed segment write does; the records stay in the WAL.
    pub(crate) fn flush_segment(&self) {
        if !self.shared.config.direct_segment_writes {
            return;
        }
        let mut segs = self.segs.lock();
        if self.failed.get().is_some() || segs.deleted {
            return;
        }
        if let Some(Err(e)) = segs.active.as_mut().map(ActiveSegment::flush_direct) {
            self.segment_write_failed(&e);
        }
    }

    /// A segment write failed: the log stops serving (its records stay in the WAL).
    fn segment_write_failed(&self, e: &StorageError) {
        tracing::error!(log_id = self.log_id, error = %e, "segment write failed; the log stops serving until restart");
        self.fail(e.to_string());
    }

    /// Stops the log until a restart (the first failure is the one reported).
    fn fail(&self, why: String) {
        let _ = self.failed.set(why);
    }

    /// `Unavailable` once a segment write or seal failed.
    fn check_failed(&self) -> Result<()> {
        match self.failed.get() {
            Some(f) => Err(StorageError::Unavailable(format!("log {}: {f}", self.log_id))),
            None => Ok(()),
        }
    }

    fn write_locked(&self, segs: &mut Segments, base: u64, bytes: &[u8], pos: &[RecordPos]) -> Result<()> {
        if segs.deleted {
            return Err(StorageError::LogDeleted(self.log_id));
        }
        self.check_failed()?;
        self.ensure_active(segs, base)?;
        let window = self.shared.config.page_cache_window_bytes;
        let res = segs.active.as_mut().expect("active segment").append(bytes, pos, window);
        self.publish_pending(segs);
        res
    }

    /// Makes the active segment the one based at `base`, sealing the current one.
    fn ensure_active(&self, segs: &mut Segments, base: u64) -> Result<()> {
        match &segs.active {
            Some(a) if a.meta.base == base => return Ok(()),
            Some(a) if a.meta.base > base => {
                return Err(StorageError::Unavailable(format!(
                    "log {}: records for segment {base} arrived after segment {} started",
                    self.log_id, a.meta.base
                )));
            }
            _ => {}
        }
        self.roll_locked(segs, base)
    }

    /// True when the active segment holds records and is older than `segment_max_age`.
    pub(crate) fn seal_due(&self, now: i64) -> bool {
        let app = self.appender.lock();
        !app.deleted
            && app.next_offset > app.seg_base
            && now - app.seg_created_ms >= self.shared.config.segment_max_age.as_millis() as i64
    }

    /// Marks the log deleted in the appender and queues the drop record behind its frames.
    pub(crate) fn begin_delete(&self, done: oneshot::Sender<Result<()>>) -> Result<()> {
        let mut app = self.appender.lock();
        app.deleted = true;
        let frame = codec::encode_drop_frame(self.log_id);
        self.shared.wal.send(WalItem::Drop { part: self.me.upgrade(), frame, done })
    }

    /// Flusher side of a drop: no segment writes after this; files are removed by the caller.
    pub(crate) fn mark_deleted(&self) {
        let mut segs = self.segs.lock();
        segs.deleted = true;
        segs.active = None;
        segs.sealing.clear();
        segs.sealed.clear();
        segs.used.clear();
        self.segments_changed(&mut segs);
        drop(segs);
        self.appender.lock().deleted = true;
        let mut tail = self.tail.lock();
        self.shared.release_tail(tail.bytes);
        *tail = Tail::default();
    }

    fn publish_end(&self, end: u64) {
        self.end.store(end, Ordering::Release);
        self.end_tx.send_replace(end);
    }

    fn push_tail(&self, records: Vec<Record>) {
        let mut tail = self.tail.lock();
        if let (Some(last), Some(first)) = (tail.records.back(), records.first())
            && last.offset + 1 != first.offset
        {
            self.shared.release_tail(tail.bytes);
            *tail = Tail::default();
        }
        let mut added = 0;
        for r in records {
            added += record_mem(&r);
            tail.records.push_back(r);
        }
        tail.bytes += added;
        self.shared.add_tail(added);
        self.evict_tail(&mut tail);
    }

    /// Evicts from the tail's front: past our cap, or while the global budget is exceeded;
    /// never a record not yet in the segments (`written`), which only the tail holds. Those are
    /// bounded by the WAL's buffer, whose permits they hold until written, and evicted once
    /// written (`write_records`).
    fn evict_tail(&self, tail: &mut Tail) {
        let cap = self.shared.config.tail_cap();
        let written = self.written.load(Ordering::Acquire);
        while let Some(front) = tail.records.front() {
            if (tail.bytes <= cap && !self.shared.tail_over_budget()) || front.offset >= written {
                break;
            }
            let m = record_mem(front);
            tail.records.pop_front();
            tail.bytes -= m;
            self.shared.release_tail(m);
        }
    }

    /// Refuses every append from now on (Pulsar's topic termination) and returns the offset
    /// the next record would have had: every record below it was accepted before, and is
    /// readable once `end_offset()` reaches it. Idempotent.
    pub fn terminate(&self) -> u64 {
        let mut app = self.appender.lock();
        app.terminated = true;
        app.next_offset
    }

    /// Accepts appends again: undoes a `terminate` whose recording failed.
    pub fn resume(&self) {
        self.appender.lock().terminated = false;
    }

    /// Refuses appends from now on, for a handover of the partition to another broker; returns
    /// the offset the next append would have had. Appends accepted before are unaffected: once
    /// `end_offset()` reaches the returned offset, every one of them is durable.
    pub fn close(&self) -> u64 {
        let mut app = self.appender.lock();
        app.closed = true;
        app.next_offset
    }

    /// Accepts appends again after a handover that did not complete.
    pub fn reopen(&self) {
        self.appender.lock().closed = false;
    }

    /// Makes visible the records this log accepted but never published because their commit
    /// beyond the WAL (object store or replicas) had not come when their partition was unloaded
    /// (a handover that failed, a load that failed after recovering), once the WAL has them:
    /// they are this broker's records as much as those a restart replays from its WAL, which
    /// become visible the same way. Call it when loading the partition again, before any
    /// append, so that the load recovers what others hold after them instead of under them.
    /// `Unavailable` when the WAL has not applied them within `wait`. Returns the end now.
    pub async fn adopt_accepted(&self, wait: std::time::Duration) -> Result<u64> {
        let target = self.appender.lock().next_offset;
        if self.end_offset() >= target {
            return Ok(self.end_offset());
        }
        let mut applied = self.applied_tx.subscribe();
        if tokio::time::timeout(wait, applied.wait_for(|a| *a >= target)).await.is_err() {
            return Err(StorageError::Unavailable(format!(
                "log {}: records up to offset {target} were accepted but are not in the WAL after {} ms",
                self.log_id,
                wait.as_millis()
            )));
        }
        let mut gate = self.commit_gate.lock();
        gate.written = gate.written.max(target);
        gate.committed = gate.committed.max(target);
        self.publish_gated(&gate);
        Ok(self.end_offset())
    }

    /// Where the log ends for good, if it was terminated.
    pub fn terminated_at(&self) -> Option<u64> {
        let app = self.appender.lock();
        app.terminated.then_some(app.next_offset)
    }

    pub fn start_offset(&self) -> u64 {
        self.start.load(Ordering::Acquire)
    }

    /// Next offset to be assigned among durable records: everything below it is readable.
    pub fn end_offset(&self) -> u64 {
        self.end.load(Ordering::Acquire)
    }

    /// Resolves once `end_offset() > offset`. Never resolves for a deleted log: wrap it in a
    /// timeout.
    pub async fn wait_for_data(&self, offset: u64) {
        let mut rx = self.end_tx.subscribe();
        let _ = rx.wait_for(|end| *end > offset).await;
    }

    /// Records below this offset are written to the segments (those past it are visible from
    /// the in-memory tail, their segment writes just behind their acknowledgement).
    pub fn written_offset(&self) -> u64 {
        self.written.load(Ordering::Acquire)
    }

    /// Test hook: waits while a test holds the applier's writes (`Shared::write_gate`).
    #[cfg(test)]
    pub(crate) fn pass_write_gate(&self) {
        self.shared.write_gate.pass();
    }

    /// Records below `end` are in the segments: the tail may evict them now, and whoever waits
    /// for them (`settled`) is told after that.
    fn mark_written(&self, end: u64) {
        self.written.fetch_max(end, Ordering::AcqRel);
        self.evict_tail(&mut self.tail.lock());
        self.written_tx.send_if_modified(|w| {
            let newer = end > *w;
            *w = (*w).max(end);
            newer
        });
    }

    /// Waits until every record visible now is written to its segment, so that what the
    /// segments report (sizes, ledgers, counts) covers it: an append is acknowledged just
    /// before its segment write. Those records are the tail's past `written`. Gives up after a
    /// second (a log whose segment write failed stops serving anyway).
    pub async fn settled(&self) {
        let target = {
            let tail = self.tail.lock();
            match tail.records.back() {
                Some(r) if r.offset >= self.written_offset() => r.offset + 1,
                _ => return,
            }
        };
        let mut rx = self.written_tx.subscribe();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), rx.wait_for(|w| *w >= target)).await;
    }
}

/// Records queued for the WAL with their `(offset, segment_base)`s, not yet durable.
#[must_use = "the records are not acknowledged until `durable` resolves"]
pub struct PendingAppend {
    ids: Vec<(u64, u64)>,
    done: Option<oneshot::Receiver<Result<()>>>,
    /// With replicated durability: the ack quorum of replicas has the records.
    replicas: Option<oneshot::Receiver<Result<()>>>,
}

impl PendingAppend {
    /// The offset of the last record queued (`None` for an empty append).
    pub fn last_offset(&self) -> Option<u64> {
        self.ids.last().map(|(offset, _)| *offset)
    }

    /// Resolves once the records are fsynced in the WAL (and on their replicas, with
    /// replicated durability) and visible to readers.
    pub async fn durable(self) -> Result<Vec<(u64, u64)>> {
        if let Some(rx) = self.done {
            rx.await.map_err(|_| StorageError::ShuttingDown)??;
        }
        if let Some(rx) = self.replicas {
            rx.await.map_err(|_| StorageError::ShuttingDown)??;
        }
        Ok(self.ids)
    }
}
