//! What follows a durable group commit: its records published and their appenders answered
//! (`publish_durable`), then written to their segments in WAL order (`apply_batch`), by the
//! applier thread or by the flusher itself when nothing else waits.

use super::{WalFileMeta, WalFiles, WalItem};
use crate::StorageError;
use crate::partition::PartitionLog;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::{Arc, mpsc};
use std::time::Instant;

/// What the flusher hands the applier, in WAL order.
pub(crate) enum ApplyJob {
    /// A group commit that is durable (or failed, with the reason): apply and complete it.
    Batch { items: Vec<WalItem>, failed: Option<String> },
    /// A complete WAL file: trimmable once every batch before this job was applied.
    Rolled(WalFileMeta),
}

/// Jobs handed to the applier and not finished yet. The flusher waits for none to be left
/// before it writes records to segments itself (`Flusher::write_in_place`): the applier may be
/// writing earlier records of the same logs.
#[derive(Default)]
pub(super) struct Queued {
    count: Mutex<usize>,
    idle: parking_lot::Condvar,
}

impl Queued {
    pub(super) fn count(&self) -> usize {
        *self.count.lock()
    }
    pub(super) fn add(&self) {
        *self.count.lock() += 1;
    }
    pub(super) fn done(&self) {
        let mut n = self.count.lock();
        *n -= 1;
        if *n == 0 {
            self.idle.notify_all();
        }
    }
    pub(super) fn wait_idle(&self) {
        let mut n = self.count.lock();
        while *n > 0 {
            self.idle.wait(&mut n);
        }
    }
}

/// What running an [`ApplyJob`] needs, on whichever thread runs it.
#[derive(Clone)]
pub(super) struct JobContext {
    pub(super) files: Arc<Mutex<WalFiles>>,
    /// Wakes the trimmer after a roll.
    pub(super) on_roll: mpsc::Sender<crate::trim::TrimMsg>,
}

impl JobContext {
    pub(super) fn run(&self, job: ApplyJob) {
        match job {
            ApplyJob::Batch { items, failed } => apply_batch(items, failed),
            ApplyJob::Rolled(done) => {
                {
                    let mut files = self.files.lock();
                    files.rolling -= done.size;
                    files.complete.push_back(done);
                }
                let _ = self.on_roll.send(crate::trim::TrimMsg::Roll);
            }
        }
    }
}

/// The applier thread: writes durable records to their segments and completes the appenders
/// not answered yet (replicated and object-store durability). When the next group commit is
/// already waiting, or segment writes are left, the flusher hands it the durable batch, so
/// those writes overlap the WAL write and fsync of the next one; otherwise the flusher applies
/// the batch itself, sparing a thread hop on the way to the ack.
pub(crate) struct Applier {
    pub(super) ctx: JobContext,
    pub(super) queued: Arc<Queued>,
    pub(super) rx: mpsc::Receiver<ApplyJob>,
}

impl Applier {
    pub fn run(self) {
        for job in self.rx {
            self.ctx.run(job);
            self.queued.done();
        }
    }
}

/// Publishes the records of a durable group commit whose logs have local durability and
/// answers their appenders, before their segment writes (which the applier does next, in
/// order): an acknowledgement then waits for the WAL's fsync only, not also for the segment
/// write behind it. Readers find the records in the in-memory tail, which keeps every record
/// not yet written (`PartitionLog::written`). Records that went straight to their segment
/// (`Flusher::write_in_place`) are published here too, so that each log's records become
/// visible in order on this one thread. Replicated records are published behind the gate that
/// waits for their ack quorum too; records with object-store durability are left to
/// `apply_batch`, which hands them to the object writer. Returns whether segment writes are
/// left.
pub(super) fn publish_durable(batch: &mut [WalItem]) -> bool {
    let mut writes_left = false;
    for item in batch.iter_mut() {
        let WalItem::Data { part, records, done, replicated, in_segment, .. } = item else { continue };
        match in_segment {
            Some(Err(e)) => {
                if let Some(done) = done.take() {
                    let _ = done.send(Err(StorageError::Unavailable(e.clone())));
                }
            }
            Some(Ok(())) => {
                part.applied(std::mem::take(records), true);
                if let Some(done) = done.take() {
                    let _ = done.send(Ok(()));
                }
            }
            None => {
                // Object-store records wait for their object, in `apply_batch`; replicated ones
                // become visible once their quorum is in too (the gate of `applied`).
                if !*replicated && part.object_mode().is_some() {
                    continue;
                }
                part.applied(std::mem::take(records), !*replicated);
                if let Some(done) = done.take() {
                    let _ = done.send(Ok(()));
                }
                writes_left = true;
            }
        }
    }
    writes_left
}

/// Applies one durable batch in order and completes every waiter.
fn apply_batch(items: Vec<WalItem>, failed: Option<String>) {
    let fail = || StorageError::Unavailable(format!("wal write failed: {}", failed.as_deref().unwrap_or("")));
    // Logs whose segments take direct writes are flushed once the whole commit is applied.
    let mut touched: HashMap<u64, Arc<PartitionLog>> = HashMap::new();
    for item in items {
        match item {
            WalItem::Data { done: None, in_segment: Some(_), .. } => {}
            WalItem::Data { part, base, frame, pos, done: None, .. } => {
                // Published and answered once the WAL had it (`publish_durable`): the segment
                // write is left. A failure stops the log; the records stay in the WAL.
                touched.entry(part.log_id()).or_insert_with(|| part.clone());
                #[cfg(test)]
                part.pass_write_gate();
                let _ = part.write_records(base, &frame, &pos);
            }
            WalItem::Data { part, records, done: Some(done), in_segment: Some(res), .. } => {
                // Written and fsynced in its segment already (`Flusher::write_in_place`), and
                // not published because the WAL write of the same commit failed: the records
                // are durable all the same, and their appenders are told so.
                match res {
                    Ok(()) => {
                        part.applied(records, true);
                        let _ = done.send(Ok(()));
                    }
                    Err(e) => {
                        let _ = done.send(Err(StorageError::Unavailable(e)));
                    }
                }
            }
            WalItem::Data { part, base, frame, pos, records, done: Some(done), replicated, .. } => {
                if failed.is_some() {
                    let _ = done.send(Err(fail()));
                    continue;
                }
                touched.entry(part.log_id()).or_insert_with(|| part.clone());
                let written = part.write_records(base, &frame, &pos);
                if replicated {
                    let _ = done.send(written.map(|()| part.applied(records, false)));
                    continue;
                }
                // A log with object-store durability becomes visible once its object is
                // committed: the object writer publishes it and completes the appender.
                let object = part.object_mode().map(|mode| (mode.clone(), mode.writer));
                let start = records.first().map_or(0, |r| r.offset);
                let end = records.last().map_or(start, |r| r.offset + 1);
                let res = written.map(|()| part.applied(records, object.is_none()));
                match (res, object) {
                    (Ok(()), Some((mode, log))) => log.queue(crate::objlog::Waiting {
                        part,
                        mode,
                        start,
                        end,
                        frame: frame.bytes,
                        queued: Instant::now(),
                        done: Some(done),
                    }),
                    (res, _) => {
                        let _ = done.send(res);
                    }
                }
            }
            WalItem::Aux { done, .. } => {
                let _ = done.send(if failed.is_some() { Err(fail()) } else { Ok(()) });
            }
            WalItem::Drop { part, done, .. } => {
                if failed.is_none()
                    && let Some(p) = part
                {
                    p.mark_deleted();
                }
                let _ = done.send(if failed.is_some() { Err(fail()) } else { Ok(()) });
            }
            WalItem::Seal { part, new_base, done } => {
                let _ = done.send(if failed.is_some() { Err(fail()) } else { part.apply_seal(new_base) });
            }
            WalItem::Shutdown => {}
        }
    }
    for part in touched.into_values() {
        part.flush_segment();
    }
}
