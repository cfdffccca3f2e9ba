//! Append latency across segment seals: concurrent appenders (1 KiB records, one per request,
//! spread over a few partitions) run for a fixed time twice, on a fresh data directory each:
//! once with segments too large to seal during the run, once with small segments that seal
//! every few hundred milliseconds. Prints append latency p50/p99/p99.9/max for each phase and,
//! in the sealing phase, separately for the appends in flight while a segment rolled (an
//! interval from the start to the acknowledgement of an append that started a new segment).
//!
//! `cargo run --release -p magnetar-storage --example seal_bench -- [appenders] [partitions] [secs] [segment_mib] [dir]`

use bytes::Bytes;
use magnetar_storage::{RecordInput, Storage, StorageConfig};
use std::time::{Duration, Instant};

/// One append: start and end in microseconds since the phase began, and whether its records
/// started a new segment (its apply rolled the segment).
#[derive(Clone, Copy)]
struct Sample {
    start: u64,
    end: u64,
    rolled: bool,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, d: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let appenders = arg(1, 16);
    let partitions = arg(2, 4);
    let secs = arg(3, 10);
    let segment_mib = arg(4, 4);
    let base = args.get(5).map(std::path::PathBuf::from).unwrap_or_else(std::env::temp_dir);
    println!("appenders={appenders} partitions={partitions} secs={secs} segment_mib={segment_mib}");
    for (name, segment_bytes) in [("no seals", 1u64 << 40), ("seals", segment_mib << 20)] {
        let dir = tempfile::tempdir_in(&base).expect("temp dir");
        let cfg = StorageConfig {
            data_dir: dir.path().to_path_buf(),
            segment_max_bytes: segment_bytes,
            ..StorageConfig::default()
        };
        let (storage, _) = tokio::task::spawn_blocking(move || Storage::open(cfg)).await.unwrap().unwrap();
        let samples = run(&storage, appenders, partitions, Duration::from_secs(secs)).await;
        let m = storage.metrics();
        let fsyncs = m.wal_fsyncs.get().max(1);
        println!(
            "{name}: appends={} appends_per_sec={:.0} seals={} mean_wal_fsync_ms={:.3} records_per_fsync={:.1}",
            samples.len(),
            samples.len() as f64 / secs as f64,
            m.segments_sealed.get(),
            m.wal_fsync_seconds.get_sample_sum() / fsyncs as f64 * 1e3,
            samples.len() as f64 / fsyncs as f64,
        );
        if m.segments_sealed.get() > 0 {
            let seal = &m.segment_seal_seconds;
            println!(
                "  seal duration (sealer thread): mean={:.2}ms",
                seal.get_sample_sum() / seal.get_sample_count().max(1) as f64 * 1e3
            );
        }
        report("  all", samples.iter().map(|s| s.end - s.start).collect());
        if m.segments_sealed.get() > 0 {
            let rolls = merged(samples.iter().filter(|s| s.rolled).map(|s| (s.start, s.end)).collect());
            let (during, outside): (Vec<&Sample>, Vec<&Sample>) =
                samples.iter().partition(|s| overlaps(&rolls, s.start, s.end));
            report("  in flight during a roll", during.iter().map(|s| s.end - s.start).collect());
            report("  other", outside.iter().map(|s| s.end - s.start).collect());
        }
        storage.shutdown().await;
    }
}

async fn run(storage: &std::sync::Arc<Storage>, appenders: u64, partitions: u64, d: Duration) -> Vec<Sample> {
    let payload = Bytes::from(vec![7u8; 1024]);
    let t0 = Instant::now();
    let deadline = t0 + d;
    let mut tasks = Vec::new();
    for a in 0..appenders {
        let log = storage.log(a % partitions).unwrap();
        let payload = payload.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            while Instant::now() < deadline {
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
                let start = t0.elapsed().as_micros() as u64;
                let ids = log.append(vec![r]).await.unwrap();
                let end = t0.elapsed().as_micros() as u64;
                out.push(Sample { start, end, rolled: ids[0].0 == ids[0].1 && ids[0].0 > 0 });
            }
            out
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

fn merged(mut v: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    v.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (s, e) in v {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

fn overlaps(intervals: &[(u64, u64)], start: u64, end: u64) -> bool {
    let i = intervals.partition_point(|iv| iv.1 < start);
    intervals.get(i).is_some_and(|iv| iv.0 <= end)
}

fn report(label: &str, mut us: Vec<u64>) {
    if us.is_empty() {
        println!("{label}: none");
        return;
    }
    us.sort_unstable();
    let q = |p: f64| us[((us.len() as f64 * p) as usize).min(us.len() - 1)] as f64 / 1e3;
    println!(
        "{label}: n={} p50={:.2}ms p99={:.2}ms p99.9={:.2}ms max={:.2}ms",
        us.len(),
        q(0.50),
        q(0.99),
        q(0.999),
        *us.last().unwrap() as f64 / 1e3
    );
}
