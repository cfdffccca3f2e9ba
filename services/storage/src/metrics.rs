//! Prometheus collectors of the durable log. The caller registers them with its registry.

use prometheus::{Histogram, HistogramOpts, IntCounter, Registry};

/// Collectors shared by the WAL flusher and the partitions. Cloning shares the collectors.
#[derive(Clone)]
pub struct StorageMetrics {
    pub wal_fsync_seconds: Histogram,
    pub wal_batch_records: Histogram,
    pub wal_batch_bytes: Histogram,
    pub wal_bytes_written: IntCounter,
    pub wal_fsyncs: IntCounter,
    pub wal_records: IntCounter,
    pub segments_sealed: IntCounter,
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
            wal_fsyncs: c("magnetar_wal_fsyncs_total", "WAL fdatasync calls"),
            wal_records: c(
                "magnetar_wal_records_total",
                "Records written to the WAL (data records, aux and drop records)",
            ),
            segments_sealed: c("magnetar_segments_sealed_total", "Segments sealed"),
        }
    }

    pub fn register(&self, registry: &Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.wal_fsync_seconds.clone()))?;
        registry.register(Box::new(self.wal_batch_records.clone()))?;
        registry.register(Box::new(self.wal_batch_bytes.clone()))?;
        registry.register(Box::new(self.wal_bytes_written.clone()))?;
        registry.register(Box::new(self.wal_fsyncs.clone()))?;
        registry.register(Box::new(self.wal_records.clone()))?;
        registry.register(Box::new(self.segments_sealed.clone()))?;
        Ok(())
    }
}

impl Default for StorageMetrics {
    fn default() -> Self {
        Self::new()
    }
}
