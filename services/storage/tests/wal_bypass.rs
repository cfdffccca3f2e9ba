//! Records that fill `wal_bypass_bytes` of a group commit go straight to their segment and are
//! fsynced there, not written to the WAL first: they must survive crashes and restarts exactly
//! once, in order, with their segment bases, mixed with records that went through the WAL, and
//! across segment rolls, WAL rolls and trims.

mod common;

use bytes::Bytes;
use common::*;
use magnetar_storage::{Record, RecordInput, Storage, StorageConfig};
use std::path::Path;
use std::sync::Arc;

/// Records of about 3 KB: four of them fill a bypassing commit, one does not.
fn big(i: u64) -> RecordInput {
    RecordInput { payload: Bytes::from(vec![(i % 251) as u8; 3000 + (i % 7) as usize * 100]), ..input(i) }
}

fn check_big(r: &Record, i: u64) {
    let want = big(i);
    assert_eq!(r.offset, i);
    assert_eq!(r.key, want.key);
    assert_eq!(r.payload, want.payload, "payload of offset {i}");
}

fn cfg(dir: &Path) -> StorageConfig {
    StorageConfig {
        wal_bypass_bytes: 8 << 10,
        // Rolls of both every few appends.
        segment_max_bytes: 32 << 10,
        wal_file_bytes: 16 << 10,
        ..config(dir)
    }
}

/// Appends `big` records from `next`, alternating runs of four (bypassing) and single records
/// (through the WAL); returns their ids and the payload bytes of the runs of four.
async fn append_mixed(s: &Storage, log: u64, next: u64, appends: u64) -> (Vec<(u64, u64)>, u64) {
    let p = s.log(log).unwrap();
    let (mut ids, mut bypassed) = (Vec::new(), 0);
    let mut i = next;
    for k in 0..appends {
        let n = if k % 3 == 0 { 1 } else { 4 };
        let records: Vec<RecordInput> = (i..i + n).map(big).collect();
        if n == 4 {
            bypassed += records.iter().map(|r| r.payload.len() as u64).sum::<u64>();
        }
        ids.extend(p.append(records).await.unwrap());
        i += n;
    }
    (ids, bypassed)
}

#[tokio::test]
async fn records_filling_a_commit_skip_the_wal_and_survive_crashes_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut ids: Vec<(u64, u64)> = Vec::new();
    for round in 0..4u64 {
        let (s, _) = open(cfg(dir.path()));
        assert_log(&s, 1, &ids, check_big);
        let (more, bypassed) = append_mixed(&s, 1, ids.len() as u64, 12).await;
        ids.extend(more);
        let m = s.metrics();
        assert!(m.wal_bypass_bytes.get() >= bypassed, "the runs of four went to the segment");
        // The WAL took the single records only.
        assert!(m.wal_bytes_written.get() < bypassed / 2, "{} bytes in the WAL", m.wal_bytes_written.get());
        if round == 1 {
            s.trim_wal().await.unwrap();
        }
        if round % 2 == 0 { s.halt() } else { s.shutdown().await }
    }
    let segments = {
        let (s, _) = open(cfg(dir.path()));
        assert_log(&s, 1, &ids, check_big);
        let segs = s.log(1).unwrap().segments();
        s.halt();
        segs
    };
    assert!(segments.len() > 10, "segments rolled: {segments:?}");
    // Turning the bypass off changes nothing stored.
    let (s, _) = open(StorageConfig { wal_bypass_bytes: 0, ..cfg(dir.path()) });
    s.trim_wal().await.unwrap();
    assert_log(&s, 1, &ids, check_big);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_bypassing_and_logs_on_the_wal_commit_together_and_recover_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = open(cfg(dir.path()));
    let mut tasks = Vec::new();
    for log in 1..=4u64 {
        let s: Arc<Storage> = s.clone();
        tasks.push(tokio::spawn(async move {
            if log <= 2 { append_mixed(&s, log, 0, 60).await.0 } else { append_range(&s, log, 0, 400, 3).await }
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    assert!(s.metrics().wal_bypass_bytes.get() > 0);
    s.halt();
    let (s, _) = open(cfg(dir.path()));
    for (log, ids) in (1..=4u64).zip(&ids) {
        assert_log(&s, log, ids, if log <= 2 { check_big } else { check });
    }
    // Appends go on after the recovered ends, on both paths.
    let (more, _) = append_mixed(&s, 1, ids[0].len() as u64, 3).await;
    assert_eq!(more[0].0, ids[0].len() as u64);
    s.shutdown().await;
}
