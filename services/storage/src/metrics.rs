//! Prometheus collectors of the durable log. The caller registers them with its registry.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Collectors shared by the WAL flusher and the partitions. Cloning shares the collectors.
#[derive(Clone)]
pub struct StorageMetrics {
    pub wal_fsync_seconds: Histogram,
    /// Time of one step of space written ahead of the WAL file (`fill`): the flusher is idle
    /// then, but an append arriving during the step waits for it.
    pub wal_space_ahead_seconds: Histogram,
    pub wal_batch_records: Histogram,
    pub wal_batch_bytes: Histogram,
    pub wal_bytes_written: IntCounter,
    /// Bytes of trimmed WAL files read back to checksum their pages for reuse: files this
    /// process did not write (the flusher keeps the checksums of those it writes, `pages`).
    pub wal_trim_read_bytes: IntCounter,
    pub wal_fsyncs: IntCounter,
    pub wal_records: IntCounter,
    /// Large group commits written once, straight to their segments (`wal_bypass_bytes`): the
    /// record bytes, and the time of one such write with its fdatasync.
    pub wal_bypass_bytes: IntCounter,
    pub wal_bypass_seconds: Histogram,
    pub segments_sealed: IntCounter,
    /// Duration of one segment seal (indexes, footer, fsync), on the sealer thread.
    pub segment_seal_seconds: Histogram,
    /// WAL files found at start-up with a corrupt frame that is not a torn tail (each is copied
    /// aside as `*.wal.corrupt`; `wal_corruption` decides what happens next).
    pub wal_corrupt_files: IntCounter,
    /// Object tier: bytes and segments uploaded, upload latency, failed uploads, retries.
    pub offloaded_bytes: IntCounter,
    pub offloaded_segments: IntCounter,
    pub offload_seconds: Histogram,
    pub offload_failures: IntCounter,
    pub offload_retries: IntCounter,
    /// Segment uploads running now (a crash test waits for one before killing the broker).
    pub uploads_in_progress: IntGauge,
    /// The rate segment uploads are paced at now (0 = unpaced).
    pub upload_pace: IntGauge,
    /// Local copies of offloaded segments removed early to keep the local disk within its
    /// budget (least recently read first).
    pub local_copies_evicted: IntCounter,
    /// Block cache of the object tier.
    pub cache_hits: IntCounter,
    pub cache_misses: IntCounter,
    /// Bytes fetched from the object store by ranged GETs (including read-ahead).
    pub object_get_bytes: IntCounter,
    /// Corrupt or truncated objects found on read.
    pub object_corrupt: IntCounter,
    /// The page cache window in effect (`StorageConfig::page_cache_window_bytes`; 0: off).
    pub page_cache_window_bytes: IntGauge,
    /// 1 when segments being written take their records with direct I/O
    /// (`StorageConfig::direct_segment_writes`), 0 through the page cache.
    pub segment_direct_writes: IntGauge,
    /// Record bytes returned to readers, by tier (`memory`, `local`, `object`).
    pub read_bytes: IntCounterVec,
    /// Object-store durability: log objects committed, their bytes, PUT latency, failed
    /// attempts (each retried).
    pub object_log_objects: IntCounter,
    pub object_log_bytes: IntCounter,
    pub object_log_put_seconds: Histogram,
    pub object_log_failures: IntCounter,
    /// Bytes of records waiting for their log object now.
    pub object_log_backlog: IntGauge,
    /// Replicated durability: batches of this broker's stream confirmed by an ack quorum of
    /// peers, their bytes, failed attempts (retried), the time from send to quorum, bytes
    /// waiting for their quorum (the replication lag), bytes of other brokers' streams kept here.
    pub replication_batches: IntCounter,
    pub replication_bytes: IntCounter,
    pub replication_failures: IntCounter,
    pub replication_ack_seconds: Histogram,
    pub replication_backlog: IntGauge,
    pub replica_stored_bytes: IntGauge,
    pub replica_streams: IntGauge,
    /// On a peer: the time to store one batch of another broker's stream (queueing behind the
    /// same stream's earlier batches, the write and the fdatasync).
    pub replica_append_seconds: Histogram,
    /// Owner side: partitions whose tail was sent again to a peer that answered from a new
    /// store (its disk was lost and replaced, so what it had acknowledged was gone).
    pub replica_tails_resent: IntCounter,
    pub replica_discarded: IntCounter,
}

impl StorageMetrics {
    pub fn new() -> Self {
        let h = |name: &str, help: &str, buckets: Vec<f64>| {
            Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets)).expect("valid histogram")
        };
        let c = |name: &str, help: &str| IntCounter::new(name, help).expect("valid counter");
        StorageMetrics {
            wal_fsync_seconds: h(
                "magnetar_wal_fsync_seconds",
                "Latency of one WAL write + fdatasync",
                vec![0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0],
            ),
            wal_space_ahead_seconds: h(
                "magnetar_wal_space_ahead_seconds",
                "Time of one step of space written ahead of the active WAL file while the WAL was idle",
                vec![0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0],
            ),
            wal_batch_records: h(
                "magnetar_wal_batch_records",
                "Records (data, aux and drop) made durable by one group commit",
                prometheus::exponential_buckets(1.0, 4.0, 10).expect("valid buckets"),
            ),
            wal_batch_bytes: h(
                "magnetar_wal_batch_bytes",
                "Bytes written by one group commit",
                prometheus::exponential_buckets(256.0, 4.0, 10).expect("valid buckets"),
            ),
            wal_bytes_written: c("magnetar_wal_bytes_written_total", "Bytes written to the WAL"),
            wal_trim_read_bytes: c(
                "magnetar_wal_trim_read_bytes_total",
                "Bytes of trimmed WAL files read back to checksum their pages before reuse",
            ),
            wal_fsyncs: c("magnetar_wal_fsyncs_total", "WAL fdatasync calls"),
            wal_records: c(
                "magnetar_wal_records_total",
                "Records written to the WAL (data records, aux and drop records)",
            ),
            wal_bypass_bytes: c(
                "magnetar_wal_bypass_bytes_total",
                "Record bytes written once, straight to their segment and fsynced there, not through the WAL",
            ),
            wal_bypass_seconds: h(
                "magnetar_wal_bypass_seconds",
                "Latency of one group commit's write + fdatasync straight to a segment",
                vec![0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0],
            ),
            segments_sealed: c("magnetar_segments_sealed_total", "Segments sealed"),
            segment_seal_seconds: h(
                "magnetar_segment_seal_seconds",
                "Duration of one segment seal (indexes, footer and fdatasync), off the append path",
                vec![0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0],
            ),
            wal_corrupt_files: c(
                "magnetar_wal_corrupt_files_total",
                "WAL files found at start-up with a corrupt frame that is not a torn tail (copied aside as *.wal.corrupt)",
            ),
            offloaded_bytes: c("magnetar_offload_bytes_total", "Bytes of sealed segments uploaded to the object store"),
            offloaded_segments: c("magnetar_offload_segments_total", "Sealed segments uploaded to the object store"),
            offload_seconds: h(
                "magnetar_offload_upload_seconds",
                "Latency of one segment upload to the object store",
                vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0],
            ),
            offload_failures: c("magnetar_offload_upload_failures_total", "Segment uploads that failed"),
            offload_retries: c(
                "magnetar_offload_upload_retries_total",
                "Segment uploads attempted again after a failure",
            ),
            uploads_in_progress: IntGauge::new(
                "magnetar_offload_uploads_in_progress",
                "Segment uploads to the object store running now",
            )
            .expect("valid gauge"),
            upload_pace: IntGauge::new(
                "magnetar_offload_upload_pace_bytes_per_second",
                "Rate segment uploads are paced at now (0 = unpaced); automatic pacing follows the ingest",
            )
            .expect("valid gauge"),
            local_copies_evicted: c(
                "magnetar_local_copies_evicted_total",
                "Local copies of offloaded segments removed early because the local disk budget needed room",
            ),
            cache_hits: c("magnetar_object_cache_hits_total", "Object block reads served by the block cache"),
            cache_misses: c("magnetar_object_cache_misses_total", "Object block reads that went to the object store"),
            object_get_bytes: c(
                "magnetar_object_get_bytes_total",
                "Bytes fetched from the object store by ranged reads (read-ahead included)",
            ),
            object_corrupt: c(
                "magnetar_object_corrupt_total",
                "Corrupt, truncated or missing segment objects found on read",
            ),
            read_bytes: IntCounterVec::new(
                Opts::new("magnetar_read_bytes_total", "Record bytes returned to readers, by storage tier"),
                &["tier"],
            )
            .expect("valid counter"),
            object_log_objects: c(
                "magnetar_object_store_log_puts_total",
                "Log objects written and committed for partitions with object-store durability",
            ),
            object_log_bytes: c("magnetar_object_store_log_bytes_total", "Bytes of the log objects committed"),
            object_log_put_seconds: h(
                "magnetar_object_store_log_put_seconds",
                "Latency of one log object PUT (object-store durability)",
                vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0],
            ),
            object_log_backlog: IntGauge::new(
                "magnetar_object_store_log_backlog_bytes",
                "Bytes of records written to the WAL and waiting for their log object (not acknowledged yet)",
            )
            .expect("valid gauge"),
            object_log_failures: c(
                "magnetar_object_store_log_failures_total",
                "Log object PUTs or commits that failed (retried; their records wait unacknowledged)",
            ),
            replication_batches: c(
                "magnetar_replication_batches_total",
                "Batches of this broker's log stream confirmed by an ack quorum of replicas",
            ),
            replication_bytes: c("magnetar_replication_bytes_total", "Bytes of the batches confirmed by replicas"),
            replication_failures: c(
                "magnetar_replication_failures_total",
                "Batches that missed their ack quorum (retried; their records wait unacknowledged)",
            ),
            replication_ack_seconds: h(
                "magnetar_replication_ack_seconds",
                "Time from sending a batch to its replicas until an ack quorum fsynced it",
                vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0],
            ),
            replication_backlog: IntGauge::new(
                "magnetar_replication_lag_bytes",
                "Bytes of records in the WAL waiting for their ack quorum of replicas (not acknowledged yet)",
            )
            .expect("valid gauge"),
            page_cache_window_bytes: IntGauge::new(
                "magnetar_page_cache_window_bytes",
                "Bytes at the end of each segment being written kept in the page cache, older ones dropped once on disk (0: left to the kernel)",
            )
            .expect("valid gauge"),
            segment_direct_writes: IntGauge::new(
                "magnetar_segment_direct_writes",
                "1 when segments being written take their records with direct I/O, 0 through the page cache",
            )
            .expect("valid gauge"),
            replica_streams: IntGauge::new(
                "magnetar_replica_streams",
                "Replication streams other brokers have open to this broker (one per replica set and peer)",
            )
            .expect("valid gauge"),
            replica_stored_bytes: IntGauge::new(
                "magnetar_replica_stored_bytes",
                "Bytes of other brokers' log streams this broker keeps as a replica",
            )
            .expect("valid gauge"),
            replica_append_seconds: h(
                "magnetar_replica_append_seconds",
                "Time this broker took to store a batch of another broker's log stream as its replica (fdatasync included)",
                vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0],
            ),
            replica_tails_resent: c(
                "magnetar_replica_tails_resent_total",
                "Partitions whose tail this broker sent again to a replica that had lost its copy (a peer answering from a new store: its disk was replaced)",
            ),
            replica_discarded: c(
                "magnetar_replica_discarded_total",
                "Partitions whose copies this broker held as a replica were given up because their recorded replica set no longer names it (a peer replaced while it was away)",
            ),
        }
    }

    pub fn register(&self, registry: &Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.wal_fsync_seconds.clone()))?;
        registry.register(Box::new(self.wal_space_ahead_seconds.clone()))?;
        registry.register(Box::new(self.wal_batch_records.clone()))?;
        registry.register(Box::new(self.wal_batch_bytes.clone()))?;
        registry.register(Box::new(self.wal_bytes_written.clone()))?;
        registry.register(Box::new(self.wal_trim_read_bytes.clone()))?;
        registry.register(Box::new(self.wal_fsyncs.clone()))?;
        registry.register(Box::new(self.wal_records.clone()))?;
        registry.register(Box::new(self.wal_bypass_bytes.clone()))?;
        registry.register(Box::new(self.wal_bypass_seconds.clone()))?;
        registry.register(Box::new(self.segments_sealed.clone()))?;
        registry.register(Box::new(self.segment_seal_seconds.clone()))?;
        registry.register(Box::new(self.wal_corrupt_files.clone()))?;
        for c in [
            &self.offloaded_bytes,
            &self.offloaded_segments,
            &self.offload_failures,
            &self.offload_retries,
            &self.local_copies_evicted,
            &self.cache_hits,
            &self.cache_misses,
            &self.object_get_bytes,
            &self.object_corrupt,
            &self.object_log_objects,
            &self.object_log_bytes,
            &self.object_log_failures,
            &self.replication_batches,
            &self.replication_bytes,
            &self.replication_failures,
            &self.replica_tails_resent,
            &self.replica_discarded,
        ] {
            registry.register(Box::new(c.clone()))?;
        }
        registry.register(Box::new(self.offload_seconds.clone()))?;
        registry.register(Box::new(self.uploads_in_progress.clone()))?;
        registry.register(Box::new(self.upload_pace.clone()))?;
        registry.register(Box::new(self.read_bytes.clone()))?;
        registry.register(Box::new(self.object_log_put_seconds.clone()))?;
        registry.register(Box::new(self.object_log_backlog.clone()))?;
        registry.register(Box::new(self.replication_ack_seconds.clone()))?;
        registry.register(Box::new(self.replication_backlog.clone()))?;
        registry.register(Box::new(self.replica_stored_bytes.clone()))?;
        registry.register(Box::new(self.replica_streams.clone()))?;
        registry.register(Box::new(self.page_cache_window_bytes.clone()))?;
        registry.register(Box::new(self.segment_direct_writes.clone()))?;
        registry.register(Box::new(self.replica_append_seconds.clone()))?;
        Ok(())
    }
}

impl Default for StorageMetrics {
    fn default() -> Self {
        Self::new()
    }
}
