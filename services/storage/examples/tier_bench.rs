//! Object-tier throughput: upload of sealed segments, and a catch-up read of the whole log
//! from the object store (local copies dropped) against the same read from local disk.
//! 1 KB messages, 64 MiB segments.
//!
//! Run against the SeaweedFS `scripts/test.sh` starts (it exports `MAGNETAR_TEST_S3_*`), or
//! against a local directory when those are not set:
//!   cargo run --release -p magnetar-storage --example tier_bench -- [TOTAL_MIB]

use bytes::Bytes;
use magnetar_storage::object::{LocalConfig, ObjectStoreConfig, build_object_store};
use magnetar_storage::{ObjectTier, RecordInput, Storage, StorageConfig, StorageMetrics, TierConfig};
use std::sync::Arc;
use std::time::Instant;

fn store(dir: &std::path::Path) -> (Arc<dyn object_store::ObjectStore>, &'static str) {
    if std::env::var_os("MAGNETAR_TEST_S3_ENDPOINT").is_some() {
        let cfg = magnetar_storage::object::conformance::s3_config_from_env();
        (build_object_store(&cfg).expect("s3 store"), "s3 (SeaweedFS)")
    } else {
        let cfg = ObjectStoreConfig::Local(LocalConfig { root: dir.join("objects") });
        (build_object_store(&cfg).expect("local store"), "local filesystem")
    }
}

fn read_all(log: &magnetar_storage::PartitionLog) -> (u64, u64) {
    let (mut at, mut n, mut bytes) = (0u64, 0u64, 0u64);
    loop {
        let got = log.read(at, 4096, 4 << 20).expect("read");
        let Some(last) = got.last() else { break };
        at = last.offset + 1;
        n += got.len() as u64;
        bytes += got.iter().map(|r| r.payload.len() as u64).sum::<u64>();
    }
    (n, bytes)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let total_mib: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(512);
    let dir = tempfile::tempdir().expect("temp dir");
    let (objects, kind) = store(dir.path());
    let metrics = StorageMetrics::new();
    let cfg = StorageConfig {
        data_dir: dir.path().join("log"),
        segment_max_bytes: 64 << 20,
        read_cache_bytes: 0,
        ..StorageConfig::default()
    };
    let (s, _) = Storage::open_with_metrics(cfg, metrics.clone()).expect("open");
    // Read tuning from the environment, to compare settings: `MAGNETAR_BENCH_BLOCK_KIB`,
    // `MAGNETAR_BENCH_READ_AHEAD` (defaults: the broker's).
    let env = |n: &str| std::env::var(n).ok().and_then(|v| v.parse::<u64>().ok());
    let mut tier_cfg = TierConfig::default();
    if let Some(kib) = env("MAGNETAR_BENCH_BLOCK_KIB") {
        tier_cfg.block_bytes = kib << 10;
    }
    if let Some(n) = env("MAGNETAR_BENCH_READ_AHEAD") {
        tier_cfg.read_ahead_blocks = n;
    }
    println!("block {} KiB, read-ahead {} blocks", tier_cfg.block_bytes >> 10, tier_cfg.read_ahead_blocks);
    let tier = ObjectTier::new(objects.clone(), tier_cfg, metrics.clone()).expect("tier");
    s.attach_tier(tier.clone());
    let log = s.log(1).expect("log");
    let payload = Bytes::from(vec![b'x'; 1024]);
    let n = total_mib * 1024;
    let mut i = 0;
    while i < n {
        let batch = (0..1000.min(n - i))
            .map(|_| RecordInput {
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
            })
            .collect();
        i += log.append(batch).await.expect("append").len() as u64;
    }
    let l = log.clone();
    tokio::task::spawn_blocking(move || l.seal_active()).await.unwrap().expect("seal");
    let prefix = format!("bench/tier-{}-{}", std::process::id(), magnetar_core::now_millis());

    let sealed: Vec<_> = log.segments().into_iter().filter(|s| s.sealed).collect();
    let seg_bytes: u64 = sealed.iter().map(|s| s.size_bytes).sum();
    let t = Instant::now();
    let mut keys = Vec::new();
    for seg in &sealed {
        let key = format!("{prefix}/{:020}-{:020}.seg", seg.base_offset, seg.end_offset);
        let remote = tier.upload(&log, seg.base_offset, &key).await.expect("upload");
        log.mark_offloaded(remote);
        keys.push(key);
    }
    let up = t.elapsed().as_secs_f64();

    let l = log.clone();
    let t = Instant::now();
    let (local_n, local_bytes) = tokio::task::spawn_blocking(move || read_all(&l)).await.unwrap();
    let local = t.elapsed().as_secs_f64();
    for seg in &sealed {
        log.drop_local_copy(seg.base_offset).expect("drop local copy");
    }
    let l = log.clone();
    let t = Instant::now();
    let (remote_n, remote_bytes) = tokio::task::spawn_blocking(move || read_all(&l)).await.unwrap();
    let remote = t.elapsed().as_secs_f64();
    assert_eq!((local_n, local_bytes), (remote_n, remote_bytes));
    assert_eq!(local_n, n);

    let mb = |b: u64, s: f64| b as f64 / 1e6 / s;
    println!(
        "object store: {kind}; {n} messages of 1 KB in {} segments ({:.0} MB)",
        sealed.len(),
        seg_bytes as f64 / 1e6
    );
    println!("upload:                    {:>8.1} MB/s ({:.2} s)", mb(seg_bytes, up), up);
    println!("catch-up read, local disk: {:>8.1} MB/s of payload ({:.2} s)", mb(local_bytes, local), local);
    println!("catch-up read, object:     {:>8.1} MB/s of payload ({:.2} s)", mb(remote_bytes, remote), remote);
    println!("object / local:            {:>8.0} %", 100.0 * local / remote);
    tier.delete_objects(&keys).await.expect("cleanup");
    s.shutdown().await;
}
