//! The durable log: a group-committed write-ahead log shared by every partition, per-partition
//! segment files, reads by offset, crash recovery and whole-segment deletion.
//!
//! Storage knows partitions only by `log_id` (an integer from the metadata store); it knows
//! nothing of tenants, topics or subscriptions. Besides message records the WAL carries opaque
//! "aux" records (the broker's cursor updates) so acknowledgements share the same fsync.
//!
//! Layout under `data_dir`: `wal/{seq:020}.wal` (group-committed frames of every partition),
//! `logs/{log_id}/{base_offset:020}.seg` (per-partition segments; format in `segment`), `LOCK`.
//!
//! Contracts:
//! - [`Storage::open`] (blocking: call it from `spawn_blocking`) recovers every partition from its
//!   segments plus the WAL and returns the aux records found in the WAL, in WAL order. It cuts a
//!   torn WAL tail, but never truncates a corrupt frame that is not one: it keeps a copy of the
//!   file and refuses to start, or skips only that frame ([`WalCorruption`]).
//! - [`PartitionLog::append`] resolves once its records are fsynced (one `fdatasync` per group
//!   commit on the `magnetar-wal` thread) and readable; offsets are consecutive and a request's
//!   records share one segment. `segment_base` is carried in the WAL, so it is identical after
//!   any crash and replay.
//! - [`PartitionLog::read`] returns checksum-verified records in offset order, from the
//!   in-memory tail or the segment files (pread: call it from a blocking context on a miss).
//! - A WAL file is deleted only once its data is in fsynced segments and its aux records are
//!   covered by a successful [`Checkpointer::checkpoint`] that began after the file was complete.
//! - [`Storage::delete_log`] writes a drop record first, so replay never brings the log back.
//! - With an [`ObjectTier`] attached, a partition also knows its [`RemoteSegment`]s (given by
//!   the caller from its segment index): reads fall through local segments to the object store,
//!   a local copy of an uploaded segment may be dropped ([`PartitionLog::drop_local_copy`]), and
//!   appends fail with `Unavailable` while more than `local_disk_budget_bytes` wait for upload.

mod codec;
mod config;
mod direct;
mod error;
mod fill;
mod metrics;
pub mod object;
pub mod objlog;
mod paced;
pub mod pagecache;
mod pages;
mod partition;
mod record;
mod recovery;
pub mod replica;
mod segment;
mod storage;
pub mod tier;
mod trim;
mod wal;

pub use config::{StorageConfig, WalCorruption};
pub use error::StorageError;
pub use metrics::StorageMetrics;
pub use objlog::{
    CommitKind, DurableSink, LogObjectCommitter, ObjectLog, ObjectLogConfig, ObjectRange, WriterMetrics,
    decode_data_frame, decode_log_object,
};
pub use partition::{PartitionLog, PendingAppend, SegmentInfo};
pub use record::{
    BatchPos, ChunkPos, Encrypted, Encryption, EncryptionKey, ProducerStamp, Record, RecordInput, message_id,
};
pub use storage::{AuxRecord, Storage};
pub use tier::{ObjectTier, RemoteSegment, TierConfig};
pub use trim::{Checkpointer, TrimStats};

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Wall-clock milliseconds since the Unix epoch (segment ages, created/sealed times).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
