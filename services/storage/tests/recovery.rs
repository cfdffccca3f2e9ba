//! Crash recovery: every acknowledged record survives, exactly once, in order, with the same
//! segment base; torn or corrupt bytes are never returned. A torn WAL tail is cut off; a corrupt
//! WAL frame that is not one is never cut: the start is refused, or skips only that frame.

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
    assert_log(s, log, ids, check);
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
    settle(&s.log(1).unwrap()).await;
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
async fn a_corrupt_last_wal_frame_is_cut_as_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    // Through the page cache: with direct writes the records of a segment's last partial block
    // are in the WAL only after a crash, and cutting its last frame would lose them.
    let cfg = magnetar_storage::StorageConfig { direct_segment_writes: false, ..config(dir.path()) };
    let (s, _) = open(cfg.clone());
    let ids = append_range(&s, 1, 0, 60, 3).await;
    s.halt();
    // Segments hold everything (page cache survives kill -9); a flipped byte in the last WAL
    // frame, with nothing after it, is what a torn write looks like: it is cut, and nothing
    // corrupt comes back.
    let wal = wal_files(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&wal).unwrap();
    let at = bytes.len() - 20;
    bytes[at] ^= 0xff;
    std::fs::write(&wal, &bytes).unwrap();
    let (s, _) = open(cfg);
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

/// `(position, length)` of every frame of a WAL file (`len u32 | crc u32 | body`).
fn wal_frames(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut frames = Vec::new();
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let len = 8 + u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        frames.push((at, len));
        at += len;
    }
    frames
}

/// Sixty records, one WAL frame each, in one WAL file; then, as if the machine lost the page
/// cache of the active segment, the WAL is their only copy. Frame 30 (record 30) gets a
/// flipped byte in its body: intact frames follow it, so it is not a torn tail. Returns the
/// WAL file, its corrupted bytes and the corrupt frame's position.
async fn corrupt_mid_wal(dir: &Path) -> (std::path::PathBuf, Vec<u8>, u64) {
    let (s, _) = open(big_segments(dir));
    append_range(&s, 1, 0, 60, 1).await;
    s.halt();
    let seg = seg_files(dir, 1).pop().unwrap();
    OpenOptions::new().write(true).open(&seg).unwrap().set_len(32).unwrap();
    let wal = wal_files(dir).pop().unwrap();
    let mut bytes = std::fs::read(&wal).unwrap();
    let frames = wal_frames(&bytes);
    assert_eq!(frames.len(), 60);
    let (pos, len) = frames[30];
    bytes[pos + 8 + len / 2] ^= 0x10;
    std::fs::write(&wal, &bytes).unwrap();
    (wal, bytes, pos as u64)
}

fn big_segments(dir: &Path) -> magnetar_storage::StorageConfig {
    magnetar_storage::StorageConfig { segment_max_bytes: 1 << 30, ..config(dir) }
}

#[tokio::test]
async fn corrupt_wal_frame_followed_by_intact_frames_refuses_to_open_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, bytes, pos) = corrupt_mid_wal(dir.path()).await;
    let err = match magnetar_storage::Storage::open(big_segments(dir.path())) {
        Ok(_) => panic!("opened over a corrupt wal frame that intact frames follow"),
        Err(e) => e,
    };
    let name = wal.file_name().unwrap().to_string_lossy().into_owned();
    match &err {
        magnetar_storage::StorageError::Corrupt { file, position, .. } => {
            assert!(file.ends_with(&name), "error names {file}, not {name}");
            assert_eq!(*position, pos);
        }
        e => panic!("expected Corrupt, got {e}"),
    }
    assert!(err.to_string().contains("wal_corruption"), "the error names the setting to change: {err}");
    assert!(std::fs::read(&wal).unwrap() == bytes, "the wal file was modified");
    let aside = wal.with_extension("wal.corrupt");
    assert!(std::fs::read(&aside).unwrap() == bytes, "a copy of the file is kept aside");
    // Still refused on the next attempt: nothing was "repaired" behind the operator's back.
    assert!(matches!(
        magnetar_storage::Storage::open(big_segments(dir.path())),
        Err(magnetar_storage::StorageError::Corrupt { .. })
    ));
    assert!(std::fs::read(&wal).unwrap() == bytes);
}

#[tokio::test]
async fn a_bad_frame_in_an_earlier_wal_file_is_not_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.wal_file_bytes = 16 << 10;
    let (s, _) = open(cfg.clone());
    // An aux record in the first file keeps every file from being trimmed (no checkpointer).
    s.append_aux(1, bytes::Bytes::from_static(b"cursor")).await.unwrap();
    append_range(&s, 1, 0, 400, 2).await;
    s.halt();
    let files = wal_files(dir.path());
    assert!(files.len() >= 3, "several wal files: {files:?}");
    // The last frame of the first file is damaged: nothing valid follows it in that file, but
    // it is not the tail of the log either.
    let first = &files[0];
    let mut bytes = std::fs::read(first).unwrap();
    let (pos, len) = *wal_frames(&bytes).last().unwrap();
    bytes[pos + len - 3] ^= 0x01;
    std::fs::write(first, &bytes).unwrap();
    let sizes: Vec<u64> = files.iter().map(|f| f.metadata().unwrap().len()).collect();
    assert!(magnetar_storage::Storage::open(cfg).is_err(), "opened over a corrupt frame in a complete wal file");
    assert_eq!(wal_files(dir.path()), files, "no wal file set aside or removed");
    assert_eq!(files.iter().map(|f| f.metadata().unwrap().len()).collect::<Vec<_>>(), sizes, "nothing truncated");
}

#[tokio::test]
async fn a_zero_filled_tail_of_the_last_wal_file_is_a_torn_tail_and_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = open(config(dir.path()));
    let ids = append_range(&s, 1, 0, 100, 3).await;
    s.halt();
    // The file grew but its last blocks were never written (a crash mid-write).
    let wal = wal_files(dir.path()).pop().unwrap();
    let len = wal.metadata().unwrap().len();
    OpenOptions::new().write(true).open(&wal).unwrap().set_len(len + 4096).unwrap();
    let (s, _) = open(config(dir.path()));
    assert_all(&s, 1, &ids);
    assert!(wal.metadata().map_or(true, |m| m.len() == len), "torn tail truncated");
    s.shutdown().await;
}

#[tokio::test]
async fn a_corrupt_wal_file_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    corrupt_mid_wal(dir.path()).await;
    let metrics = magnetar_storage::StorageMetrics::new();
    let registry = prometheus::Registry::new();
    metrics.register(&registry).unwrap();
    let _ = magnetar_storage::Storage::open_with_metrics(big_segments(dir.path()), metrics);
    let count = registry
        .gather()
        .iter()
        .find(|f| f.name() == "magnetar_wal_corrupt_files_total")
        .map(|f| f.get_metric()[0].get_counter().get_value());
    assert_eq!(count, Some(1.0));
}

#[tokio::test]
async fn skip_frame_policy_recovers_the_records_after_a_corrupt_frame() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, bytes, _) = corrupt_mid_wal(dir.path()).await;
    let metrics = magnetar_storage::StorageMetrics::new();
    let cfg = magnetar_storage::StorageConfig {
        wal_corruption: magnetar_storage::WalCorruption::SkipFrame,
        ..big_segments(dir.path())
    };
    let (s, _) = magnetar_storage::Storage::open_with_metrics(cfg.clone(), metrics.clone()).unwrap();
    assert_eq!(metrics.wal_corrupt_files.get(), 1);
    // Every record but the one in the corrupt frame, in order; offsets stay where they were.
    let got: Vec<u64> = read_all(&s, 1, 0).iter().map(|r| r.offset).collect();
    assert_eq!(got, (0..60).filter(|&o| o != 30).collect::<Vec<_>>());
    for r in read_all(&s, 1, 0) {
        check(&r, r.offset);
    }
    assert_eq!(s.log(1).unwrap().end_offset(), 60);
    // The original is never cut (it goes with the usual trim once the segments hold its data),
    // and the copy aside keeps its bytes.
    assert!(wal.metadata().map_or(true, |m| m.len() == bytes.len() as u64), "the wal file was truncated");
    assert!(std::fs::read(wal.with_extension("wal.corrupt")).unwrap() == bytes);
    let ids = append_range(&s, 1, 60, 65, 5).await;
    assert_eq!(ids[0].0, 60);
    s.shutdown().await;
    let (s, _) = magnetar_storage::Storage::open(cfg).unwrap();
    assert_eq!(read_all(&s, 1, 0).len(), 64);
    s.shutdown().await;
}

/// Space as the WAL writes it ahead of its frames: a pattern in phase with the file position.
fn fill(bytes: &mut [u8], at: usize) {
    const FILL: &[u8; 16] = b"magnetar:ahead:\n";
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = FILL[(at + i) % FILL.len()];
    }
}

/// Where the frames of a WAL file end (the first length that does not fit).
fn frames_end(bytes: &[u8]) -> usize {
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let len = 8 + u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        if at + len > bytes.len() {
            break;
        }
        at += len;
    }
    at
}

#[tokio::test]
async fn an_idle_wal_writes_space_ahead_of_its_frames_and_a_stop_cuts_it() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = open(config(dir.path()));
    let mut ids = append_range(&s, 1, 0, 50, 5).await;
    let wal = wal_files(dir.path()).pop().unwrap();
    // Idle, the flusher writes 2 MiB ahead of the frames, a step at a time.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let bytes = loop {
        let bytes = std::fs::read(&wal).unwrap();
        if bytes.len() >= 2 << 20 {
            break bytes;
        }
        assert!(std::time::Instant::now() < deadline, "no space written ahead within 10 s: {} bytes", bytes.len());
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    let end = frames_end(&bytes);
    assert!(end > 0 && end < bytes.len());
    let mut expected = vec![0; bytes.len() - end];
    fill(&mut expected, end);
    assert!(bytes[end..] == expected[..], "the space after the frames is fill");
    let steps = s.metrics().wal_space_ahead_seconds.get_sample_count();
    assert!(steps >= 4, "each step is timed: {steps}");
    // Later appends write over it, and read back like any.
    ids.extend(append_range(&s, 1, 50, 60, 5).await);
    s.halt();
    let after = std::fs::read(&wal).unwrap();
    assert!(after.len() > end);
    assert_eq!(frames_end(&after), after.len(), "a stop leaves the file frames only");
    let (s, _) = open(config(dir.path()));
    assert_all(&s, 1, &ids);
    s.shutdown().await;
}

#[tokio::test]
async fn space_written_ahead_where_frames_should_be_ends_the_last_wal_file_but_zeros_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = open(big_segments(dir.path()));
    let ids = append_range(&s, 1, 0, 200, 1).await;
    s.halt();
    // The WAL as the records' only copy.
    let seg = seg_files(dir.path(), 1).pop().unwrap();
    OpenOptions::new().write(true).open(&seg).unwrap().set_len(32).unwrap();
    let wal = wal_files(dir.path()).pop().unwrap();
    let frames_bytes = std::fs::read(&wal).unwrap();
    let frames = wal_frames(&frames_bytes);
    let page = 4096;
    assert!(frames_bytes.len() > 3 * page, "the frames span several pages");
    // As a crash can leave the file: write-back had reached the pages after the second one,
    // which still holds what it held before the frames were written there; space ahead follows.
    let crashed = |second: &dyn Fn(&mut [u8])| {
        let mut bytes = frames_bytes.clone();
        second(&mut bytes[page..2 * page]);
        let end = bytes.len();
        bytes.resize(end + 3 * page, 0);
        fill(&mut bytes[end..], end);
        std::fs::write(&wal, &bytes).unwrap();
        bytes
    };
    // Zeros there are damage, not space written ahead: the start is refused, nothing is cut.
    let zeroed = crashed(&|p| p.fill(0));
    assert!(magnetar_storage::Storage::open(big_segments(dir.path())).is_err(), "zeros are not unwritten space");
    assert_eq!(std::fs::read(&wal).unwrap(), zeroed);
    // Fill there: nothing from the frame it cuts into was covered by an fdatasync.
    crashed(&|p| fill(p, page));
    let kept = frames.iter().take_while(|(pos, len)| pos + len <= page).count();
    let cut = frames[kept].0 as u64;
    let (s, _) = open(big_segments(dir.path()));
    assert_all(&s, 1, &ids[..kept]);
    assert!(wal.metadata().map_or(true, |m| m.len() == cut), "cut where the frame holding fill starts");
    let more = append_range(&s, 1, kept as u64, kept as u64 + 5, 5).await;
    assert_eq!(more[0].0, kept as u64);
    s.shutdown().await;
}

#[tokio::test]
async fn every_wal_file_gets_space_ahead_not_only_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let limit: u64 = 1 << 20;
    let cfg = magnetar_storage::StorageConfig { wal_file_bytes: limit, ..config(dir.path()) };
    let (s, _) = open(cfg.clone());
    // An aux record in the first file keeps every file from being trimmed (no checkpointer).
    s.append_aux(1, bytes::Bytes::from_static(b"cursor")).await.unwrap();
    let mut ids = Vec::new();
    let mut next = 0;
    while wal_files(dir.path()).len() < 3 {
        ids.extend(append_range(&s, 1, next, next + 100, 100).await);
        next += 100;
    }
    ids.extend(append_range(&s, 1, next, next + 10, 10).await);
    // The third file, idle: written ahead up to the size that rolls it (less than 2 MiB ahead).
    let third = wal_files(dir.path()).pop().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while third.metadata().unwrap().len() < limit {
        assert!(std::time::Instant::now() < deadline, "no space ahead in the third wal file within 10 s");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let bytes = std::fs::read(&third).unwrap();
    assert_eq!(bytes.len() as u64, limit, "never written ahead past the size that rolls the file");
    assert!(frames_end(&bytes) < bytes.len());
    s.halt();
    for f in wal_files(dir.path()) {
        let b = std::fs::read(&f).unwrap();
        assert_eq!(frames_end(&b), b.len(), "{f:?} holds frames only after a stop");
    }
    let (s, _) = open(cfg);
    assert_all(&s, 1, &ids);
    s.shutdown().await;
}
