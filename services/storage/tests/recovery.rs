//! Crash recovery: every acknowledged record survives, exactly once, in order, with the same
//! segment base; torn or corrupt bytes are cut off, never returned.

mod common;

use common::*;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

fn wal_files(dir: &Path) -> Vec<std::path::PathBuf> {
    files_with_ext(&dir.join("wal"), ".wal")
}

fn seg_files(dir: &Path, log: u64) -> Vec<std::path::PathBuf> {
    files_with_ext(&dir.join("logs").join(log.to_string()), ".seg")
}

fn assert_all(s: &magnetar_storage::Storage, log: u64, ids: &[(u64, u64)]) {
    let all = read_all(s, log, 0);
    assert_eq!(all.len(), ids.len(), "log {log}");
    for (r, &(off, base)) in all.iter().zip(ids) {
        check(r, off);
        assert_eq!(r.segment_base, base, "segment base of offset {off}");
    }
    assert_eq!(s.log(log).unwrap().end_offset(), ids.len() as u64);
}

#[tokio::test]
async fn torn_wal_tail_is_truncated_and_acknowledged_records_survive() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = open(config(dir.path()));
    let ids = append_range(&s, 1, 0, 200, 3).await;
    s.halt();
    // A frame that was being written when the process died: header and half a body.
    let wal = wal_files(dir.path()).pop().unwrap();
    let len = wal.metadata().unwrap().len();
    let mut f = OpenOptions::new().append(true).open(&wal).unwrap();
    f.write_all(&[200, 0, 0, 0, 1, 2, 3, 4, 9, 9, 9]).unwrap();
    drop(f);
    let (s, _) = open(config(dir.path()));
    assert_all(&s, 1, &ids);
    // Truncated (or already trimmed by the post-recovery trim: the segments hold everything).
    assert!(wal.metadata().map_or(true, |m| m.len() == len), "torn tail truncated");
    // New appends continue after the recovered end.
    let more = append_range(&s, 1, 200, 210, 5).await;
    assert_eq!(more[0].0, 200);
    s.halt();
    let (s, _) = open(config(dir.path()));
    let mut all_ids = ids.clone();
    all_ids.extend(more);
    assert_all(&s, 1, &all_ids);
    s.shutdown().await;
}

#[tokio::test]
async fn lost_segment_writes_are_rebuilt_from_the_wal_with_the_same_segment_bases() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = open(config(dir.path()));
    let ids = append_range(&s, 1, 0, 300, 4).await;
    let ids2 = append_range(&s, 2, 0, 50, 1).await;
    let ids3 = append_range(&s, 3, 0, 200, 5).await;
    let bases: Vec<u64> = s.log(1).unwrap().segments().iter().map(|s| s.base_offset).collect();
    assert!(bases.len() > 3);
    s.halt();
    // As if the page cache of the segments was lost (sealed segments were fsynced when they
    // sealed): log 1's active segment is cut to its header, log 3's active segment is gone,
    // log 2 lost everything.
    let segs = seg_files(dir.path(), 1);
    OpenOptions::new().write(true).open(segs.last().unwrap()).unwrap().set_len(32).unwrap();
    std::fs::remove_file(seg_files(dir.path(), 3).pop().unwrap()).unwrap();
    std::fs::remove_dir_all(dir.path().join("logs/2")).unwrap();
    let (s, _) = open(config(dir.path()));
    assert_all(&s, 1, &ids);
    assert_all(&s, 2, &ids2);
    assert_all(&s, 3, &ids3);
    let after: Vec<u64> = s.log(1).unwrap().segments().iter().map(|s| s.base_offset).collect();
    assert_eq!(after, bases);
    s.shutdown().await;
}

#[tokio::test]
async fn flipped_byte_in_the_active_segment_is_cut_and_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.segment_max_bytes = 1 << 30;
    let (s, _) = open(cfg.clone());
    let ids = append_range(&s, 1, 0, 100, 2).await;
    s.halt();
    let seg = seg_files(dir.path(), 1).pop().unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    std::fs::write(&seg, &bytes).unwrap();
    let (s, _) = open(cfg);
    assert_all(&s, 1, &ids);
    s.shutdown().await;
}

#[tokio::test]
async fn corrupt_sealed_segment_is_reported_not_returned() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.read_cache_bytes = 0;
    let (s, _) = open(cfg.clone());
    append_range(&s, 1, 0, 100, 2).await;
    let p = s.log(1).unwrap();
    p.seal_active().unwrap();
    s.shutdown().await;
    let seg = seg_files(dir.path(), 1).into_iter().next().unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[100] ^= 0x01; // inside the records block: the footer stays valid
    std::fs::write(&seg, &bytes).unwrap();
    let (s, _) = open(cfg);
    let p = s.log(1).unwrap();
    let mut next = 0;
    let mut saw_error = false;
    while next < p.end_offset() {
        match p.read(next, 1, 1 << 20) {
            Ok(r) => {
                check(&r[0], next);
                next += 1;
            }
            Err(magnetar_storage::StorageError::Corrupt { .. }) => {
                saw_error = true;
                next += 1;
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(saw_error);
    s.shutdown().await;
}

#[tokio::test]
async fn corrupt_wal_frame_ends_the_valid_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = open(config(dir.path()));
    let ids = append_range(&s, 1, 0, 60, 3).await;
    s.halt();
    // Segments hold everything (page cache survives kill -9); a flipped byte in the WAL must
    // not bring back anything corrupt, and must not lose what the segments hold.
    let wal = wal_files(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&wal).unwrap();
    let at = bytes.len() - 20;
    bytes[at] ^= 0xff;
    std::fs::write(&wal, &bytes).unwrap();
    let (s, _) = open(config(dir.path()));
    assert_all(&s, 1, &ids);
    // Truncated at the bad frame (or already trimmed: the segments hold everything).
    assert!(wal.metadata().map_or(true, |m| m.len() < bytes.len() as u64));
    s.shutdown().await;
}

#[tokio::test]
async fn records_survive_many_restarts_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut ids = Vec::new();
    for round in 0..4u64 {
        let (s, _) = open(config(dir.path()));
        assert_all(&s, 1, &ids);
        ids.extend(append_range(&s, 1, round * 40, round * 40 + 40, 3).await);
        if round % 2 == 0 { s.halt() } else { s.shutdown().await }
    }
    let (s, _) = open(config(dir.path()));
    assert_all(&s, 1, &ids);
    s.shutdown().await;
}
