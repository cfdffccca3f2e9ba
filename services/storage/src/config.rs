//! Storage configuration and its validation.

use crate::{Result, StorageError};
use std::path::PathBuf;
use std::time::Duration;

/// Tuning of the durable log. Every size is a bound: memory and disk use follow from these.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// Root directory: `wal/` and `logs/{log_id}/` live below it.
    pub data_dir: PathBuf,
    /// Most bytes one group commit writes before it fsyncs.
    pub wal_max_batch_bytes: usize,
    /// Bound on bytes queued for the WAL flusher; appenders wait beyond it (backpressure).
    pub wal_buffer_bytes: usize,
    /// A WAL file is rolled (and later trimmed) once it reaches this size.
    pub wal_file_bytes: u64,
    /// Trimmed WAL files kept for reuse (0: delete them). A reused file is overwritten in place,
    /// so the `fdatasync` of a group commit writes data only instead of also allocating blocks
    /// (half the time on the standard machine, docs/benchmarks.md); the disk holds up to this
    /// many WAL files more.
    pub wal_recycle_files: usize,
    /// A segment seals once it holds this many bytes of records.
    pub segment_max_bytes: u64,
    /// A non-empty segment seals once it is this old.
    pub segment_max_age: Duration,
    /// Largest payload accepted in one record.
    pub max_message_bytes: usize,
    /// Budget for the in-memory tails of all partitions together.
    pub read_cache_bytes: usize,
    /// Bytes at the end of each segment being written that stay in the page cache; older ones
    /// leave it once written back (and a peer's replica chunks once fsynced), so that writes
    /// reuse the pages (`pagecache`). 0: the kernel decides (the
    /// default; the broker's `auto` sets [`crate::pagecache::AUTO_WINDOW_BYTES`] on a virtual
    /// machine that hands free pages back to its host).
    pub page_cache_window_bytes: u64,
    /// Segments being written take their records with direct I/O (`O_DIRECT`), not through the
    /// page cache (`segment::ActiveSegment::write_direct`); where the file system refuses it
    /// they are written as without. Off by default.
    pub direct_segment_writes: bool,
    /// A log whose records fill at least this many bytes of one group commit has them written
    /// straight to its segment and fsynced there instead of through the WAL: large messages
    /// reach the disk once, not twice (`wal::Flusher::write_in_place`). Logs with replicated or
    /// object-store durability always go through the WAL (its frames are what they ship).
    /// 0: every record goes through the WAL. The default, `wal_max_batch_bytes`' own, takes a
    /// partition whose records alone fill a group commit: small ones are faster through the WAL,
    /// whose reused files make an fsync cheaper than a growing segment's (docs/benchmarks.md).
    pub wal_bypass_bytes: usize,
    /// Budget of local segment files once an object tier is attached (0 = no limit). Local
    /// copies of offloaded segments are a cache within it: [`crate::Storage::evict_local_copies`]
    /// removes the least recently read ones when the files exceed it. Segments not yet in the
    /// object store cannot be removed: while they alone exceed the budget, appends fail with
    /// `Unavailable` until uploads, retention or a deleted log free enough of them. The
    /// measure follows the segment files (it includes their headers, indexes and footers);
    /// records queued for the WAL but not yet written count once written, so the budget can be
    /// overshot by at most what is queued (`wal_buffer_bytes`).
    pub local_disk_budget_bytes: u64,
    /// What start-up does when a WAL file holds a corrupt frame that is not a torn tail.
    pub wal_corruption: WalCorruption,
}

/// What start-up does with a WAL file holding a corrupt frame that is not a torn tail: a bad
/// frame that intact frames follow, a bad frame in a WAL file that later files follow, or a
/// frame whose checksum is right but whose content cannot be decoded. Acknowledged records may
/// be in it or after it, so it is never truncated: the file is copied aside as
/// `{name}.wal.corrupt`, the error is logged and counted (`magnetar_wal_corrupt_files_total`),
/// then this decides. A torn tail (the end of the last WAL file, being written when the process
/// or machine died, with no intact frame after it) is always cut off: it was never acknowledged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WalCorruption {
    /// Refuse to start, naming the file, the position and this setting (the default, as etcd
    /// and BookKeeper do): losing acknowledged records is the operator's decision.
    #[default]
    Refuse,
    /// Replay every intact frame before and after the corrupt bytes, skipping only those: the
    /// records in them are lost (reads skip their offsets), and so are cursor updates or a
    /// log's drop record among them (a deleted log's records could come back).
    SkipFrame,
}

impl WalCorruption {
    pub fn as_str(self) -> &'static str {
        match self {
            WalCorruption::Refuse => "refuse",
            WalCorruption::SkipFrame => "skip-frame",
        }
    }
}

impl std::fmt::Display for WalCorruption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            data_dir: PathBuf::from("data/log"),
            wal_max_batch_bytes: 4 << 20,
            wal_buffer_bytes: 64 << 20,
            wal_file_bytes: 64 << 20,
            wal_recycle_files: 2,
            segment_max_bytes: 128 << 20,
            segment_max_age: Duration::from_secs(4 * 3600),
            max_message_bytes: 5 << 20,
            read_cache_bytes: 64 << 20,
            page_cache_window_bytes: 0,
            direct_segment_writes: false,
            wal_bypass_bytes: 4 << 20,
            local_disk_budget_bytes: 0,
            wal_corruption: WalCorruption::Refuse,
        }
    }
}

impl StorageConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, why: &str| Err(StorageError::InvalidConfig(format!("{key} {why}")));
        if self.wal_max_batch_bytes == 0 {
            return bad("wal_max_batch_bytes", "must be positive");
        }
        if self.wal_buffer_bytes < self.max_message_bytes + (64 << 10) {
            return bad("wal_buffer_bytes", "must exceed max_message_bytes by at least 64 KiB");
        }
        if self.wal_file_bytes == 0 {
            return bad("wal_file_bytes", "must be positive");
        }
        if self.segment_max_bytes == 0 {
            return bad("segment_max_bytes", "must be positive");
        }
        if self.segment_max_age.is_zero() {
            return bad("segment_max_age", "must be positive");
        }
        if self.max_message_bytes == 0 {
            return bad("max_message_bytes", "must be positive");
        }
        Ok(())
    }

    /// Cap of one partition's in-memory tail: a share of the global budget, so a few busy
    /// partitions get a useful tail and a thousand idle ones stay small.
    pub(crate) fn tail_cap(&self) -> usize {
        (self.read_cache_bytes / 64).clamp(64 << 10, 16 << 20).min(self.read_cache_bytes)
    }
}
