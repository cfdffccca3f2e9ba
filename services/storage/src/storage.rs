//! `Storage`: the set of partition logs over one data directory, with its threads.

use crate::codec;
use crate::config::StorageConfig;
use crate::error::IoContext;
use crate::metrics::StorageMetrics;
use crate::paced::UploadPace;
use crate::partition::{self, PartitionLog};
use crate::recovery;
use crate::trim::{self, Checkpointer, TrimContext, TrimMsg, TrimStats};
use crate::wal::{Flusher, Shared, WalFiles, WalHandle, WalItem};
use crate::{Result, StorageError};
use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use std::fs::{self, File, OpenOptions};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// An opaque record from the WAL (a cursor update), returned by `open` in WAL order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuxRecord {
    pub log_id: u64,
    pub data: Bytes,
}

pub struct Storage {
    shared: Arc<Shared>,
    trim: Arc<TrimContext>,
    trim_tx: mpsc::Sender<TrimMsg>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Exclusive lock on `data_dir/LOCK`: two processes on one WAL would corrupt it.
    dir_lock: Mutex<Option<File>>,
    /// The pace of segment uploads, fed with this log's ingest ([`Storage::update_upload_pace`]).
    upload_pace: std::sync::OnceLock<Arc<UploadPace>>,
}

impl Storage {
    /// Opens (or creates) the data directory, recovers every partition and returns the aux
    /// records found in the WAL, in WAL order. Blocking: call it from `spawn_blocking`.
    pub fn open(config: StorageConfig) -> Result<(Arc<Storage>, Vec<AuxRecord>)> {
        Self::open_with_metrics(config, StorageMetrics::new())
    }

    /// Like [`Storage::open`], recording into the given collectors.
    pub fn open_with_metrics(config: StorageConfig, metrics: StorageMetrics) -> Result<(Arc<Storage>, Vec<AuxRecord>)> {
        config.validate()?;
        metrics.page_cache_window_bytes.set(i64::try_from(config.page_cache_window_bytes).unwrap_or(i64::MAX));
        metrics.segment_direct_writes.set(i64::from(config.direct_segment_writes));
        let dir = config.data_dir.clone();
        fs::create_dir_all(&dir).ctx(&dir)?;
        let lock_path = dir.join("LOCK");
        let lock = OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).ctx(&lock_path)?;
        if lock.try_lock().is_err() {
            return Err(StorageError::Unavailable(format!(
                "data directory {} is in use by another process",
                dir.display()
            )));
        }
        let started = std::time::Instant::now();
        let (wal, rx) = WalHandle::new(config.wal_buffer_bytes);
        // Seals queued during recovery wait here until the sealer thread starts below.
        let (seal_tx, seal_rx) = mpsc::channel();
        let shared = Arc::new(Shared::new(config, metrics, wal, seal_tx.clone()));
        let rec = recovery::recover(&shared)?;
        let replayed: u64 = rec.wal_files.iter().map(|f| f.size).sum();
        tracing::info!(
            partitions = rec.partitions.len(),
            wal_bytes = replayed,
            aux_records = rec.aux.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "durable log recovered"
        );
        let files = Arc::new(Mutex::new(WalFiles {
            complete: rec.wal_files,
            current_size: 0,
            rolling: 0,
            free: rec.free_files,
        }));
        let (trim_tx, trim_rx) = mpsc::channel();
        let wal_dir = dir.join("wal");
        let (flusher, applier) =
            Flusher::create(&wal_dir, rec.next_seq, files.clone(), shared.clone(), trim_tx.clone())?;
        let trim = Arc::new(TrimContext {
            files,
            partitions: Arc::new(RwLock::new(rec.partitions)),
            checkpointer: Mutex::new(None),
            runtime: Mutex::new(tokio::runtime::Handle::try_current().ok()),
            lock: tokio::sync::Mutex::new(()),
            recycle_files: shared.config.wal_recycle_files,
            read_bytes: shared.metrics.wal_trim_read_bytes.clone(),
        });
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new().name(name.into()).spawn(f).map_err(|e| StorageError::io(&wal_dir, e))
        };
        let flusher_thread = spawn("magnetar-wal", Box::new(move || flusher.run(rx)))?;
        let applier_thread = spawn(
            "magnetar-wal-apply",
            Box::new(move || {
                applier.run();
                // The applier ends after the flusher: no segment can roll any more.
                let _ = seal_tx.send(partition::SealMsg::Stop);
            }),
        )?;
        let weak = Arc::downgrade(&trim);
        let trim_thread = spawn("magnetar-wal-trim", Box::new(move || trim::run(weak, trim_rx)))?;
        let sealer_shared = shared.clone();
        let sealer_thread = spawn("magnetar-seal", Box::new(move || partition::run_sealer(seal_rx, sealer_shared)))?;
        let storage = Storage {
            shared,
            trim,
            trim_tx,
            // Joined in this order: the sealer ends after the threads that queue seals.
            threads: Mutex::new(vec![flusher_thread, applier_thread, trim_thread, sealer_thread]),
            dir_lock: Mutex::new(Some(lock)),
            upload_pace: std::sync::OnceLock::new(),
        };
        // Replayed records are only in the page cache; the first trim fsyncs them.
        let _ = storage.trim_tx.send(TrimMsg::Roll);
        Ok((Arc::new(storage), rec.aux))
    }

    pub fn config(&self) -> &StorageConfig {
        &self.shared.config
    }

    pub fn metrics(&self) -> &StorageMetrics {
        &self.shared.metrics
    }

    /// The log `log_id`, created on first use (its files appear with its first record).
    pub fn log(&self, log_id: u64) -> Result<Arc<PartitionLog>> {
        if let Some(p) = self.trim.partitions.read().get(&log_id) {
            return Ok(p.clone());
        }
        let mut map = self.trim.partitions.write();
        Ok(map.entry(log_id).or_insert_with(|| PartitionLog::new(log_id, self.shared.clone())).clone())
    }

    /// Whether log `log_id` has segment files on disk (one of `log_ids`, without listing them).
    pub fn has_log(&self, log_id: u64) -> bool {
        self.trim.partitions.read().get(&log_id).is_some_and(|p| p.has_segments())
    }

    /// Logs with segment files on disk.
    pub fn log_ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> =
            self.trim.partitions.read().values().filter(|p| p.has_segments()).map(|p| p.log_id()).collect();
        ids.sort_unstable();
        ids
    }

    /// Deletes a log durably: a drop record goes through the WAL (so replay never brings the
    /// log back), then its files are removed. Handles to it fail with `LogDeleted` afterwards.
    pub async fn delete_log(&self, log_id: u64) -> Result<()> {
        let part = self.trim.partitions.read().get(&log_id).cloned();
        let (tx, rx) = oneshot::channel();
        match &part {
            Some(p) => p.begin_delete(tx)?,
            None => {
                self.shared.wal.send(WalItem::Drop { part: None, frame: codec::encode_drop_frame(log_id), done: tx })?
            }
        }
        rx.await.map_err(|_| StorageError::ShuttingDown)??;
        let dir = self.shared.config.data_dir.join("logs").join(log_id.to_string());
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let tomb = self.shared.config.data_dir.join("logs").join(format!("{log_id}.deleting-{nanos}"));
        // Rename before forgetting the handle: a new log with this id must not lose its files.
        let (d, t) = (dir.clone(), tomb.clone());
        let moved = tokio::task::spawn_blocking(move || match fs::rename(&d, &t) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StorageError::io(&d, e)),
        })
        .await
        .map_err(|e| StorageError::Unavailable(format!("delete of log {log_id} failed: {e}")))??;
        {
            let mut map = self.trim.partitions.write();
            if let (Some(cur), Some(p)) = (map.get(&log_id), &part)
                && Arc::ptr_eq(cur, p)
            {
                map.remove(&log_id);
            }
        }
        if moved {
            tokio::task::spawn_blocking(move || fs::remove_dir_all(&tomb).ctx(&tomb))
                .await
                .map_err(|e| StorageError::Unavailable(format!("delete of log {log_id} failed: {e}")))??;
        }
        Ok(())
    }

    /// Appends an opaque record for the caller (a cursor update); durable when this returns.
    pub async fn append_aux(&self, log_id: u64, data: Bytes) -> Result<()> {
        let frame = codec::encode_aux_frame(log_id, &data);
        let max = self.shared.config.wal_buffer_bytes.min(codec::MAX_FRAME_LEN);
        if frame.len() > max {
            return Err(StorageError::MessageTooLarge { size: frame.len(), max });
        }
        let permit = self.shared.wal.reserve(frame.len()).await?;
        let (tx, rx) = oneshot::channel();
        self.shared.wal.send(WalItem::Aux { frame, done: tx, _permit: permit })?;
        rx.await.map_err(|_| StorageError::ShuttingDown)?
    }

    /// Registers the checkpointer that lets WAL files holding aux records be trimmed. Call it
    /// from within the runtime the checkpointer needs.
    pub fn set_checkpointer(&self, cp: Arc<dyn Checkpointer>) {
        if let Ok(h) = tokio::runtime::Handle::try_current() {
            *self.trim.runtime.lock() = Some(h);
        }
        *self.trim.checkpointer.lock() = Some(cp);
    }

    /// Trims the WAL now (the background thread also does it after every roll).
    pub async fn trim_wal(&self) -> Result<TrimStats> {
        trim::trim_wal(&self.trim).await
    }

    /// Attaches the object tier: reads of offloaded segments go through it, and the local disk
    /// budget is enforced from now on. Only the first call has an effect.
    pub fn attach_tier(&self, tier: Arc<crate::tier::ObjectTier>) {
        let _ = self.shared.tier.set(tier);
    }

    /// Attaches the writer of object-store durability (after the tier): logs may be given that
    /// durability from now on. Only the first call has an effect.
    pub fn attach_object_log(&self, log: Arc<crate::objlog::ObjectLog>) {
        let _ = self.shared.object_log.set(log);
    }

    pub fn object_log(&self) -> Option<&Arc<crate::objlog::ObjectLog>> {
        self.shared.object_log.get()
    }

    pub fn tier(&self) -> Option<&Arc<crate::tier::ObjectTier>> {
        self.shared.tier.get()
    }

    /// Lets this log's ingest set the pace of segment uploads (automatic pacing). Only the first
    /// call has an effect.
    pub fn attach_upload_pace(&self, pace: Arc<UploadPace>) {
        let _ = self.upload_pace.set(pace);
        self.update_upload_pace();
    }

    /// Feeds the upload pace with the bytes written to the WAL so far and the local bytes waiting
    /// for upload; the broker calls it every second. Cheap: two counters.
    pub fn update_upload_pace(&self) {
        let Some(pace) = self.upload_pace.get() else { return };
        let rate = pace.observe(
            std::time::Instant::now(),
            self.shared.metrics.wal_bytes_written.get(),
            self.shared.local_pending(),
            self.shared.config.local_disk_budget_bytes,
        );
        self.shared.metrics.upload_pace.set(i64::try_from(rate).unwrap_or(i64::MAX));
    }

    /// The bytes the offloader's current pass has to upload (it sets this at the start of each
    /// pass); a backlog raises the automatic upload pace.
    pub fn set_upload_backlog(&self, bytes: u64) {
        if let Some(pace) = self.upload_pace.get() {
            pace.set_backlog(bytes);
        }
    }

    /// One segment of the backlog is uploaded.
    pub fn note_uploaded(&self, bytes: u64) {
        if let Some(pace) = self.upload_pace.get() {
            pace.uploaded(bytes);
        }
    }

    /// The local bytes waiting for upload (the local disk budget's measure). It follows the
    /// logs' segment lists as they change (seals, uploads, retention, deleted logs), so there
    /// is nothing to recompute: this only reads it. Cheap.
    pub fn local_pending_bytes(&self) -> u64 {
        self.shared.local_pending()
    }

    /// Keeps the local segment files within `local_disk_budget_bytes` by removing local copies
    /// of offloaded segments, least recently read first (a copy never read since its upload
    /// counts from the upload). Segments not yet in the object store are never removed: the
    /// budget stops appends instead. Returns the bytes freed. Blocking (removes files).
    pub fn evict_local_copies(&self) -> Result<u64> {
        let budget = self.shared.config.local_disk_budget_bytes;
        if budget == 0 || self.shared.tier.get().is_none() {
            return Ok(0);
        }
        let parts: Vec<Arc<PartitionLog>> = self.trim.partitions.read().values().cloned().collect();
        let mut used: u64 = parts.iter().map(|p| p.size_bytes()).sum();
        if used <= budget {
            return Ok(0);
        }
        let mut copies: Vec<(u64, u64, &Arc<PartitionLog>)> =
            parts.iter().flat_map(|p| p.cached_copies().into_iter().map(move |(tick, base)| (tick, base, p))).collect();
        copies.sort_unstable_by_key(|&(tick, base, p)| (tick, p.log_id(), base));
        let mut freed = 0;
        for (_, base, p) in copies {
            if used <= budget {
                break;
            }
            let n = match p.drop_local_copy(base) {
                Ok(n) => n,
                // Deleted by retention or with its log meanwhile.
                Err(StorageError::Unavailable(_) | StorageError::LogDeleted(_)) => 0,
                Err(e) => return Err(e),
            };
            if n > 0 {
                self.shared.metrics.local_copies_evicted.inc();
                tracing::debug!(log_id = p.log_id(), base, bytes = n, "local copy evicted to make room");
            }
            used = used.saturating_sub(n);
            freed += n;
        }
        Ok(freed)
    }

    /// Segment files plus WAL files, in bytes.
    pub fn disk_usage(&self) -> u64 {
        let logs: u64 = self.trim.partitions.read().values().map(|p| p.size_bytes()).sum();
        let files = self.trim.files.lock();
        logs + files.current_size + files.rolling + files.complete.iter().map(|f| f.size).sum::<u64>()
    }

    /// Flushes everything queued, fsyncs the WAL and the active segments, stops the threads.
    /// Appends after this fail with `ShuttingDown`.
    pub async fn shutdown(&self) {
        let threads = self.stop_threads();
        let parts: Vec<Arc<PartitionLog>> = self.trim.partitions.read().values().cloned().collect();
        let lock = self.dir_lock.lock().take();
        let res = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
            for p in parts {
                if let Err(e) = p.sync_active() {
                    tracing::error!(log_id = p.log_id(), error = %e, "segment fsync at shutdown failed");
                }
            }
            drop(lock);
        })
        .await;
        if let Err(e) = res {
            tracing::error!(error = %e, "storage shutdown task failed");
        }
    }

    /// Stops the threads without fsyncing the segments, leaving the files as a crash would
    /// (acknowledged data is in the fsynced WAL). Blocking; for crash tests.
    #[doc(hidden)]
    pub fn halt(&self) {
        for t in self.stop_threads() {
            let _ = t.join();
        }
        self.dir_lock.lock().take();
    }

    fn stop_threads(&self) -> Vec<JoinHandle<()>> {
        let _ = self.trim_tx.send(TrimMsg::Stop);
        self.shared.wal.close();
        std::mem::take(&mut *self.threads.lock())
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        // Threads end on their own once told; joining here could block a runtime thread.
        let _ = self.trim_tx.send(TrimMsg::Stop);
        self.shared.wal.close();
    }
}
