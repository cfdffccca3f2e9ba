//! Group-commit micro-benchmark: N concurrent appenders (one partition each) append 1 KiB
//! records one per request for a fixed count; prints appends/s and records per fsync.
//!
//! `cargo run --release -p magnetar-storage --example wal_bench -- [appenders] [appends_each] [dir]`

use bytes::Bytes;
use magnetar_storage::{RecordInput, Storage, StorageConfig};
use std::time::Instant;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let appenders: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(64);
    let each: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(2_000);
    let base = args.get(3).map(std::path::PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(base).expect("temp dir");
    // One big WAL file, so the recovery measurement below replays all of it.
    let cfg = StorageConfig { data_dir: dir.path().to_path_buf(), wal_file_bytes: 1 << 40, ..StorageConfig::default() };
    let reopen_cfg = cfg.clone();
    let (storage, _) = tokio::task::spawn_blocking(move || Storage::open(cfg)).await.unwrap().unwrap();
    let payload = Bytes::from(vec![7u8; 1024]);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for a in 0..appenders {
        let log = storage.log(a).unwrap();
        let payload = payload.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..each {
                let r = RecordInput {
                    publish_time: 0,
                    event_time: None,
                    key: None,
                    key_base64: false,
                    ordering_key: None,
                    properties: vec![],
                    payload: payload.clone(),
                    producer: None,
                    batch: None,
                    chunk: None,
                    encrypted: None,
                };
                log.append(vec![r]).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let m = storage.metrics();
    let total = appenders * each;
    let fsyncs = m.wal_fsyncs.get();
    println!(
        "appenders={appenders} appends={total} secs={secs:.2} appends_per_sec={:.0} fsyncs={fsyncs} records_per_fsync={:.1} mean_fsync_ms={:.3}",
        total as f64 / secs,
        total as f64 / fsyncs as f64,
        m.wal_fsync_seconds.get_sample_sum() / m.wal_fsync_seconds.get_sample_count() as f64 * 1e3
    );
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|st| st.lines().find(|l| l.starts_with("VmRSS")).map(str::to_string));
    println!("after appends: {}", rss.unwrap_or_default());
    // Recovery: stop without the shutdown's segment fsync, then reopen (replays the whole WAL).
    let wal_bytes = m.wal_bytes_written.get();
    storage.halt();
    drop(storage);
    let started = Instant::now();
    let (storage, _) = tokio::task::spawn_blocking(move || Storage::open(reopen_cfg)).await.unwrap().unwrap();
    let secs = started.elapsed().as_secs_f64();
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|st| st.lines().find(|l| l.starts_with("VmRSS")).map(str::to_string));
    println!("after recovery ({} logs): {}", storage.log_ids().len(), rss.unwrap_or_default());
    println!("recovery: wal_bytes={wal_bytes} secs={secs:.3} secs_per_gb={:.2}", secs / (wal_bytes as f64 / 1e9));
    storage.shutdown().await;
}
