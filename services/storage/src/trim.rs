//! WAL trimming and the background maintenance thread.
//!
//! A complete (rolled) WAL file may go once (a) every data record in it is in an fsynced
//! segment file, and (b) its aux records are covered by a checkpoint that *began* after the file
//! was complete. Files go oldest first, so a drop record never disappears before the data
//! records it cancels. The thread also seals segments that passed `segment_max_age` while idle.

use crate::partition::PartitionLog;
use crate::wal::{WalFileMeta, WalFiles, free_path};
use crate::{Result, StorageError, now_ms};
use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Persists everything the aux records in the WAL describe (the broker's cursors), so WAL files
/// holding them can be deleted.
#[async_trait::async_trait]
pub trait Checkpointer: Send + Sync {
    async fn checkpoint(&self) -> std::result::Result<(), String>;
}

pub enum TrimMsg {
    Roll,
    Stop,
}

/// How often the maintenance thread looks, besides after every WAL roll.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(5);

/// What `trim_wal` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrimStats {
    /// Files gone from the WAL: deleted, or kept to be reused as later ones.
    pub files_deleted: usize,
    /// Bytes of the deleted ones.
    pub bytes_freed: u64,
    /// Complete files kept (aux records not yet covered by a checkpoint).
    pub files_kept: usize,
}

/// The part of the storage the trimmer needs.
pub(crate) struct TrimContext {
    pub files: Arc<Mutex<WalFiles>>,
    pub partitions: Arc<RwLock<HashMap<u64, Arc<PartitionLog>>>>,
    pub checkpointer: Mutex<Option<Arc<dyn Checkpointer>>>,
    pub runtime: Mutex<Option<tokio::runtime::Handle>>,
    /// One trim at a time (background thread or an explicit `Storage::trim_wal`).
    pub lock: tokio::sync::Mutex<()>,
    /// How many trimmed files wait for reuse at most (`wal_recycle_files`).
    pub recycle_files: usize,
    /// `StorageMetrics::wal_trim_read_bytes`.
    pub read_bytes: prometheus::IntCounter,
}

/// Pure decision: how many of the oldest complete files may go. `checkpointed` says whether a
/// checkpoint that began after all of them were complete has succeeded.
pub fn deletable_prefix(files: &[WalFileMeta], checkpointed: bool) -> usize {
    if checkpointed { files.len() } else { files.iter().take_while(|f| !f.has_aux).count() }
}

pub(crate) async fn trim_wal(ctx: &TrimContext) -> Result<TrimStats> {
    let _guard = ctx.lock.lock().await;
    let candidates: Vec<WalFileMeta> = ctx.files.lock().complete.iter().cloned().collect();
    if candidates.is_empty() {
        return Ok(TrimStats::default());
    }
    let mut checkpointed = false;
    if candidates.iter().any(|f| f.has_aux) {
        let cp = ctx.checkpointer.lock().clone();
        if let Some(cp) = cp {
            match cp.checkpoint().await {
                Ok(()) => checkpointed = true,
                Err(e) => tracing::warn!(error = %e, "checkpoint failed; wal files with cursor updates are kept"),
            }
        }
    }
    let n = deletable_prefix(&candidates, checkpointed);
    let victims: Vec<WalFileMeta> = candidates[..n].to_vec();
    let logs: HashSet<u64> = victims.iter().flat_map(|f| f.logs.iter().copied()).collect();
    let parts: Vec<Arc<PartitionLog>> = {
        let map = ctx.partitions.read();
        logs.iter().filter_map(|id| map.get(id).cloned()).collect()
    };
    let paths: Vec<_> = victims.iter().map(|f| (f.path.clone(), f.size, f.salted, f.page_sums.clone())).collect();
    let room = ctx.recycle_files.saturating_sub(ctx.files.lock().free.len());
    let read_bytes = ctx.read_bytes.clone();
    let (freed, reusable) = tokio::task::spawn_blocking(move || -> Result<(u64, Vec<PathBuf>)> {
        // The data of these files must be durable in segments before the files go.
        for p in &parts {
            p.sync_active()?;
        }
        let (mut freed, mut reusable) = (0, Vec::new());
        for (path, size, salted, sums) in &paths {
            // Kept under another name, the file is never replayed again; only salted files
            // may be reused (`codec::wal_salt`: their old frames cannot pass for new ones),
            // with their page checksums (`pages`) written first.
            let kept = *salted
                && reusable.len() < room
                && crate::pages::write(path, sums)
                    .map(|read| read_bytes.inc_by(read))
                    .inspect_err(|e| tracing::warn!(error = %e, file = %path.display(), "cannot keep a trimmed wal file for reuse; deleting it"))
                    .is_ok();
            let gone = if kept {
                std::fs::rename(path, free_path(path))
            } else {
                let _ = std::fs::remove_file(crate::pages::pages_path(path));
                std::fs::remove_file(path)
            };
            match gone {
                Ok(()) if kept => reusable.push(free_path(path)),
                Ok(()) => freed += size,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::io(path, e)),
            }
        }
        Ok((freed, reusable))
    })
    .await
    .map_err(|e| StorageError::Unavailable(format!("wal trim task failed: {e}")))??;
    let mut files = ctx.files.lock();
    files.free.extend(reusable);
    files.complete.retain(|f| !victims.iter().any(|v| v.seq == f.seq));
    Ok(TrimStats { files_deleted: n, bytes_freed: freed, files_kept: files.complete.len() })
}

/// The maintenance thread: on every WAL roll and every few seconds, seal aged segments and
/// trim the WAL. Ends on `Stop` or when the storage is gone.
pub(crate) fn run(ctx: Weak<TrimContext>, rx: Receiver<TrimMsg>) {
    let own_runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the wal trimmer runtime; wal files will not be trimmed");
            return;
        }
    };
    loop {
        match rx.recv_timeout(MAINTENANCE_INTERVAL) {
            Ok(TrimMsg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            Ok(TrimMsg::Roll) | Err(RecvTimeoutError::Timeout) => {}
        }
        let Some(ctx) = ctx.upgrade() else { return };
        let now = now_ms();
        let parts: Vec<Arc<PartitionLog>> = ctx.partitions.read().values().cloned().collect();
        for p in parts.iter().filter(|p| p.seal_due(now)) {
            if let Err(e) = p.seal_active() {
                tracing::warn!(log_id = p.log_id(), error = %e, "sealing an aged segment failed");
            }
        }
        // The checkpointer usually needs the application's runtime (database pools).
        let handle = ctx.runtime.lock().clone();
        let res = match handle {
            Some(h) => h.block_on(trim_wal(&ctx)),
            None => own_runtime.block_on(trim_wal(&ctx)),
        };
        if let Err(e) = res {
            tracing::warn!(error = %e, "wal trim failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(seq: u64, has_aux: bool) -> WalFileMeta {
        WalFileMeta { has_aux, ..WalFileMeta::new(seq, format!("{seq}").into()) }
    }

    #[test]
    fn without_checkpoint_only_the_prefix_before_aux_goes() {
        let files = [f(1, false), f(2, true), f(3, false)];
        assert_eq!(deletable_prefix(&files, false), 1);
        assert_eq!(deletable_prefix(&files, true), 3);
        assert_eq!(deletable_prefix(&[], false), 0);
    }
}
