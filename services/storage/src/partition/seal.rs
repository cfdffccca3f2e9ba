//! Segment rolls and seals, and the sealer thread.
//!
//! A roll runs where records are applied: on the WAL flusher or applier thread, under the
//! log's segment lock, on the path of every producer's acknowledgement. So it does no
//! durable I/O: the full segment moves from `active` to `sealing` (readers keep reading its
//! records from the same file) and is queued for the sealer thread; the new active segment is
//! created (no fsync). The sealer writes the indexes and footer and fsyncs, without the lock,
//! then moves the segment to `sealed`. Until then the segment is reported unsealed (it is not
//! uploadable yet) and never deleted, and a WAL file holding its records is not trimmed:
//! `sync_active` waits for it, as the contract "a WAL file is deleted only once its data is in
//! fsynced segments" requires. Directory entries of new segment files are fsynced there too.

use super::{PartitionLog, Segments};
use crate::error::IoContext;
use crate::segment::ActiveSegment;
use crate::wal::{Shared, WalItem};
use crate::{Result, StorageError, now_ms};
use std::fs::File;
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

/// What the sealer thread is told.
pub(crate) enum SealMsg {
    Seal {
        part: Arc<PartitionLog>,
        seg: Arc<ActiveSegment>,
    },
    /// Sent once nothing can roll any more (after the applier ends): seals queued before it
    /// are finished first.
    Stop,
}

/// The sealer thread: seals in the order the rolls queued them (so a log's segments seal
/// oldest first).
pub(crate) fn run(rx: mpsc::Receiver<SealMsg>, shared: Arc<Shared>) {
    // Waiters stop waiting for seals once the thread is gone, however it ends.
    struct Gone(Arc<Shared>);
    impl Drop for Gone {
        fn drop(&mut self) {
            self.0.sealer_running.store(false, Ordering::Release);
        }
    }
    let _gone = Gone(shared);
    for msg in rx {
        match msg {
            SealMsg::Seal { part, seg } => part.finish_seal(&seg),
            SealMsg::Stop => return,
        }
    }
}

/// How often a waiter for a seal checks that the sealer thread still runs.
const SEAL_WAIT_CHECK: Duration = Duration::from_millis(100);

impl PartitionLog {
    pub(super) fn roll_locked(&self, segs: &mut Segments, base: u64) -> Result<()> {
        let res = self.roll_files(segs, base);
        self.segments_changed(segs);
        res
    }

    fn roll_files(&self, segs: &mut Segments, base: u64) -> Result<()> {
        if let Some(a) = segs.active.take() {
            if a.meta.count == 0 {
                std::fs::remove_file(&a.path).ctx(&a.path)?;
            } else {
                let a = Arc::new(a);
                segs.sealing.insert(a.meta.base, a.clone());
                let queued = match self.me.upgrade() {
                    Some(part) => self.shared.sealer.send(SealMsg::Seal { part, seg: a.clone() }).is_ok(),
                    None => false,
                };
                if !queued {
                    // No sealer (it stopped): seal here rather than leave the segment unsealed.
                    self.seal_now(segs, &a)?;
                }
            }
        }
        std::fs::create_dir_all(&self.dir).ctx(&self.dir)?;
        let mut seg = ActiveSegment::create(&self.dir, base, now_ms())?;
        self.start_writing(&mut seg);
        segs.active = Some(seg);
        // Its directory entry is fsynced by `sync_active`, before the WAL covering it goes.
        self.dir_dirty.store(true, Ordering::Release);
        Ok(())
    }

    /// Flusher side of `seal_active`: runs after every earlier frame of this log was applied.
    pub(crate) fn apply_seal(&self, new_base: u64) -> Result<()> {
        let mut segs = self.segs.lock();
        if segs.deleted {
            return Err(StorageError::LogDeleted(self.log_id));
        }
        match &segs.active {
            Some(a) if a.meta.base < new_base && a.meta.count > 0 => self.roll_locked(&mut segs, new_base),
            _ => Ok(()),
        }
    }

    /// Seals the active segment now (if it holds records) and starts a new one. Blocks until
    /// the WAL flusher has applied everything appended before the call and the segment's seal
    /// is durable.
    pub fn seal_active(&self) -> Result<()> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let new_base = {
            let mut app = self.appender.lock();
            if app.deleted {
                return Err(StorageError::LogDeleted(self.log_id));
            }
            if app.next_offset == app.seg_base {
                return Ok(());
            }
            app.seg_base = app.next_offset;
            app.seg_bytes = 0;
            app.seg_created_ms = now_ms();
            let part = self.me.upgrade().ok_or(StorageError::LogDeleted(self.log_id))?;
            self.shared.wal.send(WalItem::Seal { part, new_base: app.seg_base, done: tx })?;
            app.seg_base
        };
        rx.recv().map_err(|_| StorageError::ShuttingDown)??;
        self.wait_sealed(new_base)
    }

    /// Sealer side of a roll: indexes, footer and fsync without the segment lock, then the
    /// segment becomes `sealed`.
    pub(crate) fn finish_seal(&self, seg: &ActiveSegment) {
        if self.segs.lock().deleted {
            // Its files are being removed with the log.
            return;
        }
        #[cfg(test)]
        self.shared.seal_gate.pass();
        let started = Instant::now();
        let res = seg.seal(now_ms());
        let mut segs = self.segs.lock();
        if !segs.deleted {
            self.install_seal(&mut segs, seg.meta.base, res);
            self.shared.metrics.segment_seal_seconds.observe(started.elapsed().as_secs_f64());
        }
        drop(segs);
        self.sealed_cv.notify_all();
    }

    /// Seals `seg` on this thread, under the lock (only when no sealer thread takes it).
    fn seal_now(&self, segs: &mut Segments, seg: &ActiveSegment) -> Result<()> {
        let res = seg.seal(now_ms());
        let err = res.as_ref().err().map(|e| StorageError::Unavailable(e.to_string()));
        self.install_seal(segs, seg.meta.base, res);
        err.map_or(Ok(()), Err)
    }

    fn install_seal(&self, segs: &mut Segments, base: u64, res: Result<crate::segment::SealedSegment>) {
        match res {
            Ok(sealed) => {
                segs.sealing.remove(&base);
                segs.sealed.insert(base, sealed);
                self.shared.metrics.segments_sealed.inc();
            }
            Err(e) => {
                // It stays in `sealing`: its records are durable only in the WAL, which is
                // kept (`sync_active` fails) until a restart seals it again.
                tracing::error!(log_id = self.log_id, base, error = %e, "segment seal failed; the log stops serving until restart");
                self.fail(format!("seal of segment {base} failed: {e}"));
            }
        }
        self.segments_changed(segs);
    }

    /// Waits until every segment based below `below` that is sealing has its seal durable.
    fn wait_sealed(&self, below: u64) -> Result<()> {
        let mut segs = self.segs.lock();
        loop {
            if segs.deleted {
                return Err(StorageError::LogDeleted(self.log_id));
            }
            self.check_failed()?;
            if segs.sealing.range(..below).next().is_none() {
                return Ok(());
            }
            if !self.shared.sealer_running.load(Ordering::Acquire) {
                return Err(StorageError::Unavailable(format!(
                    "log {}: the segment sealer stopped with seals pending",
                    self.log_id
                )));
            }
            self.sealed_cv.wait_for(&mut segs, SEAL_WAIT_CHECK);
        }
    }

    /// Waits until every segment rolled so far has its seal durable (it is then `sealed` in
    /// `segments()`, eligible for upload). Blocking.
    pub fn wait_for_seals(&self) -> Result<()> {
        let below = self.segs.lock().active.as_ref().map(|a| a.meta.base);
        match below {
            Some(below) => self.wait_sealed(below),
            None => Ok(()),
        }
    }

    /// Sets a segment about to take records up as the configuration says (direct writes or
    /// the page cache).
    pub(crate) fn start_writing(&self, seg: &mut ActiveSegment) {
        if self.shared.config.direct_segment_writes
            && let Err(e) = seg.write_direct()
        {
            tracing::warn!(log_id = self.log_id, error = %e, "direct writes refused; the segment is written through the page cache");
        }
    }

    /// Makes everything applied so far durable without the WAL: waits for the seals in
    /// progress, fsyncs the active segment, and the log's directory when files were created in
    /// it. Used before WAL files are trimmed and at shutdown. Blocking.
    pub(crate) fn sync_active(&self) -> Result<()> {
        let (file, path, below) = {
            let segs = self.segs.lock();
            match (&segs.active, segs.deleted) {
                // Seals queued after this call hold records applied after it: not waited for.
                (Some(a), false) => {
                    a.persist_pending()?;
                    (a.file.clone(), a.path.clone(), a.meta.base)
                }
                _ => return Ok(()),
            }
        };
        match self.wait_sealed(below) {
            Err(StorageError::LogDeleted(_)) => return Ok(()),
            res => res?,
        }
        file.sync_data().ctx(&path)?;
        if self.dir_dirty.swap(false, Ordering::AcqRel) {
            let parent = self.dir.parent().unwrap_or(&self.dir);
            let res = [&self.dir, parent].into_iter().try_for_each(|d| File::open(d).and_then(|f| f.sync_all()).ctx(d));
            if res.is_err() {
                self.dir_dirty.store(true, Ordering::Release);
            }
            res?;
        }
        Ok(())
    }
}
