//! The durable log: a group-committed write-ahead log shared by every partition, per-partition
//! segment files, reads by offset, crash recovery and whole-segment deletion.
//!
//! Storage knows partitions only by `log_id` (an integer from the metadata store); it knows
//! nothing of tenants, topics or subscriptions. Besides message records the WAL carries opaque
//! "aux" records (the broker's cursor updates) so acknowledgements share the same fsync.
//!
//! API sketch (implemented in the modules below):
//! - `Storage::open(config)` (blocking: call from `spawn_blocking`) recovers every partition from
//!   its segments plus the WAL and returns the aux records found in the WAL, in WAL order.
//! - `Storage::log(log_id)` gives the `PartitionLog` handle (created on first use).
//! - `PartitionLog::append(records)` resolves once the records are fsynced (group commit).
//! - `PartitionLog::read(from, max_records, max_bytes)` returns records in offset order.

mod codec;
mod config;
mod error;
mod metrics;
pub mod object;
mod partition;
mod record;
mod recovery;
mod segment;
mod storage;
mod trim;
mod wal;

pub use config::StorageConfig;
pub use error::StorageError;
pub use metrics::StorageMetrics;
pub use partition::{PartitionLog, SegmentInfo};
pub use record::{Record, RecordInput};
pub use storage::{AuxRecord, Storage};
pub use trim::{Checkpointer, TrimStats};

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Wall-clock milliseconds since the Unix epoch (segment ages, created/sealed times).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
