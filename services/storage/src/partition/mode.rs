//! A partition's durability beyond the WAL (object store or replicas): which mode it has,
//! under which epoch, and the gate that publishes records once they are both written here and
//! committed there.

use super::{CommitGate, PartitionLog};
use crate::codec;
use crate::objlog::{CommitKind, ObjectLog, ObjectMode};
use crate::record::{Record, RecordInput};
use crate::{Result, StorageError};
use std::sync::Arc;
use tokio::sync::oneshot;

impl PartitionLog {
    /// Records below `end` are committed beyond the WAL (object store or replicas): readers
    /// see them once they are also written here.
    pub(crate) fn publish_committed(&self, end: u64) {
        let mut gate = self.commit_gate.lock();
        gate.committed = gate.committed.max(end);
        self.publish_gated(&gate);
    }

    /// Publishes what is both written here and committed beyond the WAL: with replicated
    /// durability the replicas may confirm a frame before this broker's fsync applied it.
    /// Under the gate's lock, so the published end never goes back.
    pub(super) fn publish_gated(&self, gate: &CommitGate) {
        let end = gate.written.min(gate.committed);
        if end > self.end_offset() {
            self.publish_end(end);
        }
    }

    /// Gives this log object-store durability from now on (its owner sets it at load, before
    /// appending): its records are acknowledged and visible only once committed in an object
    /// under `epoch`, and appenders waiting longer than `max_wait` get `Unavailable`.
    /// `Unavailable` without an object writer attached ([`crate::Storage::attach_object_log`]).
    pub fn set_object_store_durability(&self, epoch: i64, max_wait: std::time::Duration) -> Result<()> {
        let Some(writer) = self.shared.object_log.get().cloned() else {
            return Err(StorageError::Unavailable(format!(
                "log {}: object-store durability needs the object tier, which this broker does not have",
                self.log_id
            )));
        };
        *self.object_mode.lock() = Some(ObjectMode { epoch, max_wait, kind: CommitKind::ObjectStore, writer });
        Ok(())
    }

    /// Gives this log replicated durability from now on (its owner sets it at load, before
    /// appending): its records are acknowledged and visible only once `writer` (the stream to
    /// its replica set) has them on its ack quorum, under `epoch`.
    pub fn set_replicated_durability(&self, epoch: i64, max_wait: std::time::Duration, writer: Arc<ObjectLog>) {
        *self.object_mode.lock() = Some(ObjectMode { epoch, max_wait, kind: CommitKind::Replicated, writer });
    }

    /// Back to local durability (the WAL's fsync acknowledges).
    pub fn set_local_durability(&self) {
        *self.object_mode.lock() = None;
    }

    pub(crate) fn object_mode(&self) -> Option<ObjectMode> {
        self.object_mode.lock().clone()
    }

    /// Commits the records from `from` to the end into log objects (object-store durability
    /// taken on by a log holding records the bucket lacks: a restart after a crash between the
    /// WAL and the object, or a log that had local durability). Call it at load, after
    /// [`PartitionLog::set_object_store_durability`] and before any append. Returns the records
    /// committed.
    pub async fn commit_local_tail(&self, from: u64) -> Result<u64> {
        let Some(mode) = self.object_mode() else {
            return Err(StorageError::Unavailable(format!(
                "log {} has local durability: nothing to commit beyond the WAL",
                self.log_id
            )));
        };
        let objects = mode.writer.clone();
        let me = self.me.upgrade().ok_or(StorageError::LogDeleted(self.log_id))?;
        let (mut next, end, mut count) = (from, self.end_offset(), 0);
        while next < end {
            let part = me.clone();
            let records = tokio::task::spawn_blocking(move || part.read(next, 4096, 4 << 20))
                .await
                .map_err(|e| StorageError::Unavailable(format!("read task failed: {e}")))??;
            let Some(last) = records.last().map(|r| r.offset) else { break };
            // One frame per segment: a frame names the segment its records belong to.
            let mut rest = records;
            while !rest.is_empty() {
                let base = rest[0].segment_base;
                let n = rest.iter().take_while(|r| r.segment_base == base).count();
                let tail = rest.split_off(n);
                let group = std::mem::replace(&mut rest, tail);
                let (start, stop) = (group[0].offset, group[group.len() - 1].offset + 1);
                let inputs: Vec<RecordInput> = group.into_iter().map(Record::into_input).collect();
                let frame = codec::encode_data_frame(self.log_id, base, start, &inputs);
                let (tx, rx) = oneshot::channel();
                objects.queue(crate::objlog::Waiting {
                    part: me.clone(),
                    mode: mode.clone(),
                    start,
                    end: stop,
                    frame: frame.bytes,
                    queued: std::time::Instant::now(),
                    done: Some(tx),
                });
                rx.await.map_err(|_| StorageError::ShuttingDown)??;
                count += stop - start;
            }
            next = last + 1;
        }
        Ok(count)
    }

    /// Whether this log's records cannot be committed beyond the WAL now: its writer's oldest
    /// batch failed and waits for a retry (`ObjectLog::retrying`).
    pub fn commits_retrying(&self) -> bool {
        self.object_mode().is_some_and(|m| m.writer.retrying())
    }

    /// How long appenders wait for the commit beyond the WAL (object store or replicas), when
    /// the log has such durability.
    pub fn commit_max_wait(&self) -> Option<std::time::Duration> {
        self.object_mode().map(|m| m.max_wait)
    }

    /// The epoch this log's records are committed under, when it has object-store durability.
    pub fn object_store_epoch(&self) -> Option<i64> {
        self.object_mode().filter(|m| m.kind == CommitKind::ObjectStore).map(|m| m.epoch)
    }

    /// The epoch this log's records are replicated under, when it has replicated durability.
    pub fn replicated_epoch(&self) -> Option<i64> {
        self.object_mode().filter(|m| m.kind == CommitKind::Replicated).map(|m| m.epoch)
    }

    /// The epoch of a durability beyond the WAL (object store or replicas), if the log has one:
    /// its records and cursor updates must reach it before they are confirmed.
    pub fn commit_epoch(&self) -> Option<i64> {
        self.object_mode().map(|m| m.epoch)
    }
}
