#![allow(dead_code)]

use bytes::Bytes;
use magnetar_storage::{Record, RecordInput, Storage, StorageConfig};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Small segments and WAL files so tests exercise rolls with little data.
pub fn config(dir: &Path) -> StorageConfig {
    StorageConfig {
        data_dir: dir.to_path_buf(),
        wal_max_batch_bytes: 1 << 20,
        wal_buffer_bytes: 8 << 20,
        wal_file_bytes: 64 << 20,
        wal_recycle_files: 2,
        segment_max_bytes: 4 << 10,
        segment_max_age: Duration::from_secs(3600),
        max_message_bytes: 1 << 20,
        read_cache_bytes: 1 << 20,
        page_cache_window_bytes: 0,
        // How a broker on the standard machine writes them (`auto`): the page-cache way is
        // what the segment unit tests and every other machine cover.
        direct_segment_writes: true,
        // The broker's default: the small appends of most tests go through the WAL, whose
        // frames they inspect; `wal_bypass` covers records that go straight to segments.
        wal_bypass_bytes: 4 << 20,
        local_disk_budget_bytes: 0,
        wal_corruption: magnetar_storage::WalCorruption::Refuse,
    }
}

/// [`config`] with every group commit of a local log going straight to its segments
/// (`wal_bypass_bytes` 1): logs with replicated or object-store durability must ignore it.
pub fn config_bypassing(dir: &Path) -> StorageConfig {
    StorageConfig { wal_bypass_bytes: 1, ..config(dir) }
}

pub fn input(i: u64) -> RecordInput {
    RecordInput {
        publish_time: 1_000 + i as i64 * 10,
        event_time: if i.is_multiple_of(2) { Some(i as i64) } else { None },
        key: if i.is_multiple_of(3) { Some(format!("key-{i}")) } else { None },
        key_base64: false,
        ordering_key: None,
        properties: vec![("n".into(), i.to_string())],
        payload: Bytes::from(format!("payload-{i}-{}", "x".repeat((i % 50) as usize))),
        producer: None,
        batch: None,
        chunk: None,
        encrypted: None,
    }
}

/// Checks a read record against what `input(i)` produced.
pub fn check(r: &Record, i: u64) {
    let want = input(i);
    assert_eq!(r.offset, i);
    assert_eq!(r.publish_time, want.publish_time);
    assert_eq!(r.event_time, want.event_time);
    assert_eq!(r.key, want.key);
    assert_eq!(r.properties, want.properties);
    assert_eq!(r.payload, want.payload);
}

pub fn open(cfg: StorageConfig) -> (Arc<Storage>, Vec<magnetar_storage::AuxRecord>) {
    Storage::open(cfg).expect("open storage")
}

/// Appends records `from..to` in requests of `batch`, returning `(offset, segment_base)` per record.
pub async fn append_range(s: &Storage, log: u64, from: u64, to: u64, batch: u64) -> Vec<(u64, u64)> {
    let p = s.log(log).unwrap();
    let mut ids = Vec::new();
    let mut i = from;
    while i < to {
        let n = batch.min(to - i);
        ids.extend(p.append((i..i + n).map(input).collect()).await.unwrap());
        i += n;
    }
    ids
}

/// Checks that `log` holds exactly the records `ids` (`(offset, segment_base)`, from offset 0),
/// each as `check` expects, and ends there.
pub fn assert_log(s: &Storage, log: u64, ids: &[(u64, u64)], check: fn(&Record, u64)) {
    let all = read_all(s, log, 0);
    assert_eq!(all.len(), ids.len(), "log {log}");
    for (r, &(off, base)) in all.iter().zip(ids) {
        check(r, off);
        assert_eq!(r.segment_base, base, "log {log}: segment base of offset {off}");
    }
    assert_eq!(s.log(log).unwrap().end_offset(), ids.len() as u64);
}

/// Reads everything from `from` to the end, in small calls.
pub fn read_all(s: &Storage, log: u64, from: u64) -> Vec<Record> {
    let p = s.log(log).unwrap();
    let mut out = Vec::new();
    let mut next = from;
    loop {
        let batch = p.read(next, 7, 64 << 10).unwrap();
        let Some(last) = batch.last() else { break };
        next = last.offset + 1;
        out.extend(batch);
    }
    out
}

pub fn files_with_ext(dir: &Path, ext: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.to_string_lossy().ends_with(ext)).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Trims the WAL until `n` `.wal` files are left (10 s at most). A roll registers the file it
/// completes just after the append that filled it returns, so one trim right after that append
/// may find the file still being rolled.
pub async fn trim_until_wal_files(s: &Storage, dir: &Path, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        s.trim_wal().await.unwrap();
        let left = files_with_ext(&dir.join("wal"), ".wal").len();
        if left == n {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{left} wal files left after trims, not {n}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until every visible record is written to its segment and every segment of the log
/// but the active one is sealed: an append is acknowledged before its segment write (the WAL
/// has it), and a roll hands the seal to the sealer thread, so a segment may still be sealing
/// (reported unsealed) after the append that rolled it is acknowledged.
pub async fn settle(log: &magnetar_storage::PartitionLog) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let segs = log.segments();
        if log.written_offset() >= log.end_offset() && segs.iter().rev().skip(1).all(|s| s.sealed) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "seals did not finish: {segs:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
