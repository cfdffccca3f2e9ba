//! A seal's fsync must stay off the group-commit path and out of the segment lock: while one
//! is held (as a slow disk would hold it), reads and appends of every log go on. Likewise a
//! segment write, which follows the acknowledgement: readers find its records in the tail.

use crate::{RecordInput, Storage, StorageConfig};
use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

fn record(size: usize) -> RecordInput {
    RecordInput {
        publish_time: 1,
        event_time: None,
        key: None,
        key_base64: false,
        ordering_key: None,
        properties: vec![],
        payload: Bytes::from(vec![1; size]),
        producer: None,
        batch: None,
        chunk: None,
        encrypted: None,
    }
}

/// Releases the gates when the test ends, passing or failing, so the storage's threads end.
struct Release(Arc<super::PartitionLog>);

impl Drop for Release {
    fn drop(&mut self) {
        self.0.shared.seal_gate.release();
        self.0.shared.write_gate.release();
        self.0.shared.disk_gate.release();
    }
}

const PATIENCE: Duration = Duration::from_secs(5);

/// Storage with the default settings in `dir`, and log 1 holding one record.
async fn one_record_log(dir: &std::path::Path) -> (Arc<Storage>, Arc<super::PartitionLog>) {
    let (s, _) = Storage::open(StorageConfig { data_dir: dir.to_path_buf(), ..StorageConfig::default() }).unwrap();
    let log = s.log(1).unwrap();
    log.append(vec![record(100)]).await.unwrap();
    (s, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seal_waiting_for_its_fsync_blocks_neither_reads_nor_appends() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StorageConfig {
        data_dir: dir.path().to_path_buf(),
        segment_max_bytes: 4 << 10,
        // No in-memory tail: every read goes through the segments (and their lock).
        read_cache_bytes: 0,
        ..StorageConfig::default()
    };
    let (s, _) = Storage::open(cfg).unwrap();
    let log = s.log(1).unwrap();
    log.append(vec![record(3000)]).await.unwrap();
    log.shared.seal_gate.hold();
    let _release = Release(log.clone());
    // Does not fit the first segment: applying it seals that one.
    let rolling = tokio::spawn({
        let log = log.clone();
        async move { log.append(vec![record(3000)]).await }
    });
    let deadline = Instant::now() + PATIENCE;
    while log.shared.seal_gate.waiting.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the seal never started");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }

    // The segment being sealed still reads.
    let l = log.clone();
    let read = tokio::time::timeout(PATIENCE, tokio::task::spawn_blocking(move || l.read(0, 10, 1 << 20))).await;
    let read = read.expect("a read waited for a seal's fsync").unwrap().unwrap();
    assert_eq!(read[0].offset, 0);
    // The append whose records started the new segment is acknowledged without waiting...
    let ids = tokio::time::timeout(PATIENCE, rolling).await.expect("an append waited for a seal's fsync");
    assert_eq!(ids.unwrap().unwrap(), vec![(1, 1)]);
    // ... and so are later ones, of this log and of another.
    let more = tokio::time::timeout(PATIENCE, log.append(vec![record(10)])).await;
    assert_eq!(more.expect("the next append of the log waited").unwrap(), vec![(2, 1)]);
    let other = s.log(2).unwrap();
    let other_ids = tokio::time::timeout(PATIENCE, other.append(vec![record(10)])).await;
    assert_eq!(other_ids.expect("another log's append waited for a seal's fsync").unwrap(), vec![(0, 0)]);
    let l = log.clone();
    let read = tokio::task::spawn_blocking(move || l.read(0, 10, 1 << 20)).await.unwrap().unwrap();
    assert_eq!(read.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![0, 1, 2]);

    log.shared.seal_gate.release();
    s.shutdown().await;
    let segs = log.segments();
    assert!(segs[0].sealed && segs[0].end_offset == 1, "the seal finished: {segs:?}");
}

/// WAL files go only once the records in them are in fsynced segments: a seal still waiting
/// for its fsync keeps them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wal_file_stays_until_the_seals_of_its_records_are_durable() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StorageConfig {
        data_dir: dir.path().to_path_buf(),
        segment_max_bytes: 4 << 10,
        wal_file_bytes: 16 << 10,
        ..StorageConfig::default()
    };
    let (s, _) = Storage::open(cfg).unwrap();
    let log = s.log(1).unwrap();
    log.shared.seal_gate.hold();
    let _release = Release(log.clone());
    for _ in 0..40 {
        log.append(vec![record(1000)]).await.unwrap();
    }
    // `.wal` files: trimmed ones may stay as `.free` files for reuse.
    let wal_files = || {
        std::fs::read_dir(dir.path().join("wal"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".wal"))
            .count()
    };
    let before = wal_files();
    assert!(before > 2, "several wal files: {before}");
    assert!(tokio::time::timeout(Duration::from_millis(300), s.trim_wal()).await.is_err(), "trimmed before the seals");
    assert_eq!(wal_files(), before);
    log.shared.seal_gate.release();
    // Trims until only the active file is left: the last roll registers its file just after the
    // append that filled it returned.
    let deadline = std::time::Instant::now() + PATIENCE;
    while wal_files() != 1 {
        assert!(std::time::Instant::now() < deadline, "{} wal files left after the seals", wal_files());
        tokio::time::timeout(PATIENCE, s.trim_wal()).await.expect("trim after the seals").unwrap();
    }
    s.shutdown().await;
}

/// An append is answered once the WAL has it, before its segment write: while that write is
/// held (as a slow disk would hold it), its records are read from the tail even with no tail
/// budget, message ids and publish-time lookups find them, and what is computed from the
/// segments waits for the write (`settled`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_answered_before_their_segment_write_are_read_from_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StorageConfig { data_dir: dir.path().to_path_buf(), read_cache_bytes: 0, ..StorageConfig::default() };
    let (s, _) = Storage::open(cfg).unwrap();
    let log = s.log(1).unwrap();
    log.append(vec![record(100)]).await.unwrap();
    tokio::time::timeout(PATIENCE, log.settled()).await.unwrap();
    assert_eq!(log.written_offset(), 1);
    log.shared.write_gate.hold();
    let _release = Release(log.clone());
    let later = RecordInput { publish_time: 7, ..record(300) };
    let ids = tokio::time::timeout(PATIENCE, log.append(vec![record(200), later])).await;
    assert_eq!(ids.expect("the append waited for its segment write").unwrap(), vec![(1, 0), (2, 0)]);
    let deadline = Instant::now() + PATIENCE;
    while log.shared.write_gate.waiting.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the segment write never started");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!((log.written_offset(), log.end_offset()), (1, 3));
    let l = log.clone();
    // From the segment, then on in the tail.
    let read = tokio::task::spawn_blocking(move || l.read(0, 10, 1 << 20)).await.unwrap().unwrap();
    assert_eq!(
        read.iter().map(|r| (r.offset, r.payload.len())).collect::<Vec<_>>(),
        vec![(0, 100), (1, 200), (2, 300)]
    );
    let l = log.clone();
    let read = tokio::task::spawn_blocking(move || l.read(1, 10, 1 << 20)).await.unwrap().unwrap();
    assert_eq!(read.iter().map(|r| (r.offset, r.payload.len())).collect::<Vec<_>>(), vec![(1, 200), (2, 300)]);
    assert_eq!(log.segment_base_of(2), 0);
    assert_eq!(log.offset_for_publish_time(5), 2);
    assert!(tokio::time::timeout(Duration::from_millis(200), log.settled()).await.is_err(), "settled before the write");

    log.shared.write_gate.release();
    tokio::time::timeout(PATIENCE, log.settled()).await.expect("settled once written");
    assert_eq!(log.written_offset(), 3);
    assert_eq!(log.segments().last().unwrap().end_offset, 3);
    // Written, the records leave the tail (no budget) and read from the segment.
    assert!(log.tail.lock().records.is_empty());
    let l = log.clone();
    let read = tokio::task::spawn_blocking(move || l.read(1, 10, 1 << 20)).await.unwrap().unwrap();
    assert_eq!(read.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![1, 2]);
    s.shutdown().await;
}

/// The applier holds the segments' lock while the disk takes a segment write. Appends run on
/// the async runtime and must not wait for that lock: they did (to see whether the log had
/// failed), which stalled every producer of the log, and the runtime thread under it, for as
/// long as each write took.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_segment_write_holds_no_append() {
    let dir = tempfile::tempdir().unwrap();
    let (s, log) = one_record_log(dir.path()).await;
    tokio::time::timeout(PATIENCE, log.settled()).await.unwrap();
    log.shared.disk_gate.hold();
    let _release = Release(log.clone());
    assert_eq!(log.append(vec![record(100)]).await.unwrap(), vec![(1, 0)], "durable in the WAL");
    let deadline = Instant::now() + PATIENCE;
    while log.shared.disk_gate.waiting.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the segment write never started");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // On a task of its own: an append blocked on the lock would block its thread too.
    let l = log.clone();
    let next = tokio::spawn(async move { l.append(vec![record(100)]).await });
    let ids = tokio::time::timeout(PATIENCE, next).await.expect("the append waited for the segment write");
    assert_eq!(ids.unwrap().unwrap(), vec![(2, 0)]);
    assert_eq!(log.written_offset(), 1, "the segment write is still held");
    log.shared.disk_gate.release();
    tokio::time::timeout(PATIENCE, log.settled()).await.expect("settled once written");
    assert_eq!(log.written_offset(), 3);
    s.shutdown().await;
}

/// A segment write that fails after its records were answered (the WAL has them) stops the
/// log: later appends are refused, instead of being answered and then held in the tail for
/// good (its budget never evicts records not yet written).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_are_refused_once_a_segment_write_failed() {
    let dir = tempfile::tempdir().unwrap();
    let (s, log) = one_record_log(dir.path()).await;
    log.shared.write_gate.fail.store(true, Ordering::SeqCst);
    assert_eq!(log.append(vec![record(100)]).await.unwrap(), vec![(1, 0)], "durable in the WAL");
    let deadline = Instant::now() + PATIENCE;
    loop {
        match log.append(vec![record(100)]).await {
            Err(crate::StorageError::Unavailable(why)) => {
                assert!(why.contains("a test failed the segment write"), "{why}");
                break;
            }
            other => assert!(Instant::now() < deadline, "appends still accepted: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    s.shutdown().await;
}
