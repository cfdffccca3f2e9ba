use bytes::{Bytes, BytesMut};
use magnetar_storage::objlog::MAGIC;
use magnetar_storage::replica::{
    ReplicaStore, ReplicaStoreConfig, StoredFrame, decode_frames, encode_frames, encode_test_frame, merge_recovered,
};
use magnetar_storage::{ObjectRange, RecordInput, StorageError, decode_data_frame};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

fn record(tag: &str, offset: u64) -> RecordInput {
    RecordInput {
        publish_time: 1_000 + offset as i64,
        payload: Bytes::from(format!("{tag}-{offset}")),
        ..Default::default()
    }
}

/// A data frame of `log` with records `start..start + n`, payloads `{tag}-{offset}`.
fn frame(log: u64, start: u64, n: u64, tag: &str) -> Bytes {
    let records: Vec<RecordInput> = (start..start + n).map(|o| record(tag, o)).collect();
    encode_test_frame(log, start, &records)
}

/// A log object and its ranges: one frame per `(log, start, n, epoch)`.
fn batch(frames: &[(u64, u64, u64, i64)]) -> (Bytes, Vec<ObjectRange>) {
    let mut object = BytesMut::from(&MAGIC[..]);
    let mut ranges: Vec<ObjectRange> = Vec::new();
    for &(log, start, n, epoch) in frames {
        object.extend_from_slice(&frame(log, start, n, &format!("e{epoch}")));
        match ranges.iter_mut().find(|r| r.log_id == log) {
            Some(r) => r.end = start + n,
            None => ranges.push(ObjectRange { log_id: log, start, end: start + n, epoch }),
        }
    }
    (object.freeze(), ranges)
}

async fn append(store: &ReplicaStore, source: &str, frames: &[(u64, u64, u64, i64)]) -> Vec<(u64, String)> {
    let (object, ranges) = batch(frames);
    store.append(source, object, &ranges).await.expect("append")
}

/// A store in `dir`, writing chunks as the suite's runner says.
fn base(dir: &Path) -> ReplicaStoreConfig {
    ReplicaStoreConfig { direct_writes: super::DIRECT, ..ReplicaStoreConfig::new(dir) }
}

fn config(dir: &Path, chunk_bytes: u64) -> ReplicaStoreConfig {
    ReplicaStoreConfig { chunk_bytes, ..base(dir) }
}

async fn open(config: ReplicaStoreConfig) -> magnetar_storage::Result<Arc<ReplicaStore>> {
    tokio::task::spawn_blocking(move || ReplicaStore::open(config)).await.unwrap()
}

/// `(start, end, epoch)` of each frame.
fn spans(frames: &[StoredFrame]) -> Vec<(u64, u64, i64)> {
    frames.iter().map(|f| (f.start, f.end, f.epoch)).collect()
}

fn chunk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for source in std::fs::read_dir(dir).unwrap() {
        let source = source.unwrap().path();
        if source.is_dir() {
            out.extend(std::fs::read_dir(&source).unwrap().map(|e| e.unwrap().path()));
        }
    }
    out.sort();
    out
}

fn file_bytes(files: &[PathBuf]) -> u64 {
    files.iter().map(|f| std::fs::metadata(f).unwrap().len()).sum()
}

/// Waits (5 s at most) until the chunk files hold more than `bytes`: the space a store writes
/// ahead of its entries once an append is answered.
async fn space_ahead(dir: &Path, bytes: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while file_bytes(&chunk_files(dir)) <= bytes {
        assert!(std::time::Instant::now() < deadline, "no space written ahead of {bytes} bytes in 5 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Payloads of records, for comparing merges.
fn payloads(records: &[magnetar_storage::Record]) -> Vec<String> {
    records.iter().map(|r| String::from_utf8(r.payload.to_vec()).unwrap()).collect()
}

fn stored(log: u64, start: u64, n: u64, epoch: i64) -> StoredFrame {
    StoredFrame { epoch, start, end: start + n, frame: frame(log, start, n, &format!("e{epoch}")) }
}

#[tokio::test]
async fn appended_frames_are_returned_by_fence_and_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(base(dir.path())).await.unwrap();
    assert!(append(&store, "b1/s1", &[(1, 0, 3, 1), (2, 0, 2, 1)]).await.is_empty());
    assert!(append(&store, "b1/s1", &[(1, 3, 2, 1)]).await.is_empty());
    assert!(append(&store, "b2/s1", &[(1, 3, 2, 1)]).await.is_empty());

    let frames = store.fence_and_read(1, 1, 0).await.unwrap();
    assert_eq!(spans(&frames), vec![(0, 3, 1), (3, 5, 1), (3, 5, 1)]);
    assert_eq!(frames[0].frame, frame(1, 0, 3, "e1"));
    let (log, records) = decode_data_frame(&frames[1].frame).unwrap();
    assert_eq!(log, 1);
    assert_eq!(records.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![3, 4]);

    // Only frames ending after `from`.
    assert_eq!(spans(&store.fence_and_read(1, 1, 3).await.unwrap()), vec![(3, 5, 1), (3, 5, 1)]);
    assert_eq!(spans(&store.fence_and_read(2, 1, 0).await.unwrap()), vec![(0, 2, 1)]);
    assert!(store.fence_and_read(9, 1, 0).await.unwrap().is_empty());
    // Open, the chunk holds space written ahead of what is stored (see `fill`); dropped, it
    // holds what is stored only.
    let stored = store.stored_bytes();
    space_ahead(dir.path(), stored).await;
    store.close().await;
    drop(store);
    assert_eq!(stored, file_bytes(&chunk_files(dir.path())));
}

#[tokio::test]
async fn a_fenced_log_is_refused_while_other_logs_of_the_batch_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(base(dir.path())).await.unwrap();
    append(&store, "b1/s1", &[(1, 0, 2, 4)]).await;
    assert_eq!(spans(&store.fence_and_read(1, 5, 0).await.unwrap()), vec![(0, 2, 4)]);

    let refused = append(&store, "b1/s1", &[(1, 2, 2, 4), (2, 0, 3, 4)]).await;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].0, 1);
    assert!(refused[0].1.contains("epoch 5"), "{}", refused[0].1);
    assert_eq!(spans(&store.fence_and_read(2, 4, 0).await.unwrap()), vec![(0, 3, 4)]);

    // The fencing epoch itself (the new owner's) is accepted.
    assert!(append(&store, "b3/s1", &[(1, 2, 2, 5)]).await.is_empty());
    // A lower fence never lowers it.
    assert_eq!(spans(&store.fence_and_read(1, 3, 0).await.unwrap()), vec![(0, 2, 4), (2, 4, 5)]);
    assert_eq!(append(&store, "b1/s1", &[(1, 4, 1, 4)]).await.len(), 1);
}

#[tokio::test]
async fn fences_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(base(dir.path())).await.unwrap();
    store.fence_and_read(7, 3, 0).await.unwrap();
    store.close().await;
    drop(store);

    let store = open(base(dir.path())).await.unwrap();
    assert_eq!(append(&store, "b1/s1", &[(7, 0, 1, 2)]).await.len(), 1);
    assert!(append(&store, "b1/s1", &[(7, 0, 1, 3)]).await.is_empty());
}

/// The store's identity is what tells an owner that a peer lost its copies: the same after a
/// reopen, new once the directory is gone (a blank volume), and new when a crash left its file
/// empty (a new identity only makes owners send their tails again).
#[tokio::test]
async fn the_identity_survives_a_reopen_and_changes_with_a_new_directory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("replicas");
    let store = open(base(&root)).await.unwrap();
    let first = store.id().to_string();
    assert_eq!(first.len(), 32, "{first}");
    append(&store, "b1/s1", &[(7, 0, 2, 1)]).await;
    store.close().await;
    drop(store);

    let store = open(base(&root)).await.unwrap();
    assert_eq!(store.id(), first, "reopened on the same directory");
    store.close().await;
    drop(store);

    std::fs::remove_dir_all(&root).unwrap();
    let store = open(base(&root)).await.unwrap();
    let blank = store.id().to_string();
    assert_ne!(blank, first, "a blank directory is a new store");
    assert!(store.fence_and_read(7, 2, 0).await.unwrap().is_empty(), "and holds nothing");
    store.close().await;
    drop(store);

    std::fs::write(root.join("store-id"), "").unwrap();
    let store = open(base(&root)).await.unwrap();
    assert!(!store.id().is_empty() && store.id() != blank, "an empty identity file is replaced");
}

#[tokio::test]
async fn reopen_rebuilds_the_index_from_the_chunk_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(config(dir.path(), 300)).await.unwrap();
    for i in 0..10 {
        append(&store, "b1/s1", &[(1, i * 2, 2, 1), (2, i, 1, 1)]).await;
        append(&store, "b2/s9", &[(1, i * 2, 2, 1)]).await;
    }
    let before1 = store.fence_and_read(1, 1, 0).await.unwrap();
    let before2 = store.fence_and_read(2, 1, 0).await.unwrap();
    let bytes = store.stored_bytes();
    store.close().await;
    drop(store);
    let files = chunk_files(dir.path());
    assert!(files.len() > 4, "small chunks roll: {files:?}");
    assert_eq!(bytes, file_bytes(&files));

    let store = open(config(dir.path(), 300)).await.unwrap();
    assert_eq!(store.stored_bytes(), bytes);
    assert_eq!(store.fence_and_read(1, 1, 0).await.unwrap(), before1);
    assert_eq!(store.fence_and_read(2, 1, 0).await.unwrap(), before2);
    assert_eq!(before1.len(), 20);

    // Appends after a reopen go to a new chunk; the old files are left as they were.
    append(&store, "b1/s1", &[(1, 20, 2, 1)]).await;
    let after = chunk_files(dir.path());
    assert_eq!(after.len(), files.len() + 1);
    assert_eq!(file_bytes(&files), bytes);
    assert_eq!(store.fence_and_read(1, 1, 19).await.unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_of_one_source_share_fdatasyncs_and_are_all_indexed_across_chunk_rolls() {
    // Batches of one source written while another's fdatasync runs are made durable by the next
    // one (group commit): every append that returned is indexed, in the right chunk, and the
    // chunk files hold exactly what the index says, before and after a reopen.
    let dir = tempfile::tempdir().unwrap();
    let store = open(config(dir.path(), 2 << 10)).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..16u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for b in 0..25u64 {
                let start = (t * 25 + b) * 3;
                assert!(append(&store, "b1/s1", &[(7, start, 3, 1)]).await.is_empty());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let expected: Vec<(u64, u64, i64)> = (0..400u64).map(|i| (i * 3, i * 3 + 3, 1)).collect();
    let before = store.fence_and_read(7, 1, 0).await.unwrap();
    assert_eq!(spans(&before), expected);
    let bytes = store.stored_bytes();
    store.close().await;
    drop(store);
    let files = chunk_files(dir.path());
    assert!(files.len() > 10, "small chunks roll under concurrent appends: {}", files.len());
    assert_eq!(bytes, file_bytes(&files));
    let store = open(config(dir.path(), 2 << 10)).await.unwrap();
    assert_eq!(store.fence_and_read(7, 1, 0).await.unwrap(), before);
}

/// Three batches in one chunk; returns the chunk file and its size after the first two.
async fn three_batches(dir: &Path) -> (PathBuf, u64) {
    let store = open(base(dir)).await.unwrap();
    append(&store, "b1/s1", &[(1, 0, 2, 1)]).await;
    append(&store, "b1/s1", &[(1, 2, 2, 1)]).await;
    let two = store.stored_bytes();
    append(&store, "b1/s1", &[(1, 4, 2, 1)]).await;
    store.close().await;
    let files = chunk_files(dir);
    assert_eq!(files.len(), 1);
    (files[0].clone(), two)
}

#[tokio::test]
async fn a_torn_last_entry_is_cut_at_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (chunk, two) = three_batches(dir.path()).await;
    let len = std::fs::metadata(&chunk).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&chunk).unwrap().set_len(len - 5).unwrap();

    let store = open(base(dir.path())).await.unwrap();
    assert_eq!(std::fs::metadata(&chunk).unwrap().len(), two);
    assert_eq!(store.stored_bytes(), two);
    assert_eq!(spans(&store.fence_and_read(1, 1, 0).await.unwrap()), vec![(0, 2, 1), (2, 4, 1)]);
    append(&store, "b1/s1", &[(1, 4, 2, 1)]).await;
    assert_eq!(store.fence_and_read(1, 1, 0).await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_corrupt_last_entry_or_a_zeroed_tail_is_cut_at_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (chunk, two) = three_batches(dir.path()).await;
    let mut data = std::fs::read(&chunk).unwrap();
    let last = data.len() - 3;
    data[last] ^= 0x40;
    std::fs::write(&chunk, &data).unwrap();
    let store = reopened_with_two_batches(dir.path(), &chunk, two).await;
    store.close().await;
    drop(store);

    // Space a crash left allocated but unwritten reads as zeros.
    let mut data = std::fs::read(&chunk).unwrap();
    data.extend_from_slice(&[0; 5000]);
    std::fs::write(&chunk, &data).unwrap();
    reopened_with_two_batches(dir.path(), &chunk, two).await;
}

/// Reopens the store of [`three_batches`] and checks that the chunk was cut after the second.
async fn reopened_with_two_batches(dir: &Path, chunk: &Path, two: u64) -> Arc<ReplicaStore> {
    let store = open(base(dir)).await.unwrap();
    assert_eq!(std::fs::metadata(chunk).unwrap().len(), two);
    assert_eq!(store.fence_and_read(1, 1, 0).await.unwrap().len(), 2);
    store
}

#[tokio::test]
async fn a_corrupt_entry_before_the_last_refuses_to_open_and_keeps_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (chunk, _) = three_batches(dir.path()).await;
    let mut data = std::fs::read(&chunk).unwrap();
    data[20] ^= 0x01;
    std::fs::write(&chunk, &data).unwrap();
    let err = open(base(dir.path())).await.err().expect("refused");
    assert!(matches!(err, StorageError::Corrupt { .. }), "{err}");
    assert_eq!(std::fs::read(&chunk).unwrap(), data);
}

#[tokio::test]
async fn a_malformed_batch_is_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(base(dir.path())).await.unwrap();
    let (good, ranges) = batch(&[(1, 0, 2, 1), (2, 0, 2, 1)]);

    let mut bad_magic = good.to_vec();
    bad_magic[0] = b'X';
    let mut flipped = good.to_vec();
    let at = flipped.len() - 2;
    flipped[at] ^= 0x10;
    let truncated = good.slice(..good.len() - 3);
    let cases: Vec<(&str, Bytes, Vec<ObjectRange>)> = vec![
        ("bad magic", Bytes::from(bad_magic), ranges.clone()),
        ("bad checksum", Bytes::from(flipped), ranges.clone()),
        ("truncated", truncated, ranges.clone()),
        ("log without a range", good.clone(), ranges[..1].to_vec()),
        ("frame outside its range", good.clone(), vec![ObjectRange { start: 1, ..ranges[0] }, ranges[1]]),
    ];
    for (what, object, ranges) in cases {
        let err = store.append("b1/s1", object, &ranges).await.err().unwrap_or_else(|| panic!("{what}: accepted"));
        assert!(matches!(err, StorageError::Corrupt { .. }), "{what}: {err}");
    }
    assert_eq!(store.stored_bytes(), 0);
    assert!(chunk_files(dir.path()).is_empty());
    assert!(store.fence_and_read(1, 1, 0).await.unwrap().is_empty());
    assert!(store.fence_and_read(2, 1, 0).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fence_racing_appends_never_loses_an_acknowledged_append() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(config(dir.path(), 4 << 10)).await.unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        let (store, done) = (store.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            // Two tasks per source: appends of one source also race each other.
            let source = format!("b{}/s1", t / 2);
            let mut acked = Vec::new();
            for b in 0..60u64 {
                let start = (t * 60 + b) * 2;
                if append(&store, &source, &[(1, start, 2, 1), (2, start, 2, 1)]).await.is_empty() {
                    acked.push(start);
                }
                done.fetch_add(1, Ordering::SeqCst);
            }
            acked
        }));
    }
    while done.load(Ordering::SeqCst) < 100 {
        tokio::task::yield_now().await;
    }
    let fenced: BTreeSet<u64> = store.fence_and_read(1, 2, 0).await.unwrap().iter().map(|f| f.start).collect();
    let mut acked = BTreeSet::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    assert!(acked.len() >= 100 && acked.len() < 480, "the fence landed mid-stream: {} acked", acked.len());
    assert_eq!(fenced, acked, "exactly the appends acknowledged before the fence");
    let again: BTreeSet<u64> = store.fence_and_read(1, 2, 0).await.unwrap().iter().map(|f| f.start).collect();
    assert_eq!(again, acked, "nothing of the fenced epoch was stored after the fence");
    // The other log of the same batches was never fenced.
    assert_eq!(store.fence_and_read(2, 1, 0).await.unwrap().len(), 480);
}

#[tokio::test]
async fn sweep_deletes_trimmed_chunks_and_keeps_live_ones() {
    let dir = tempfile::tempdir().unwrap();
    // One batch per chunk.
    let store = open(config(dir.path(), 1)).await.unwrap();
    append(&store, "b1/s1", &[(1, 0, 2, 1)]).await;
    append(&store, "b1/s1", &[(1, 2, 2, 1)]).await;
    append(&store, "b1/s1", &[(2, 0, 2, 1), (1, 4, 2, 1)]).await;
    append(&store, "b1/s1", &[(1, 6, 2, 1)]).await;
    let files = chunk_files(dir.path());
    assert_eq!(files.len(), 4);
    assert_eq!(store.sweep().await.unwrap(), 0);

    // Closed chunks hold their entries only; the current one may hold space past them.
    let dead = file_bytes(&files[..2]);
    let live = store.stored_bytes() - dead;
    store.trim(1, 4);
    assert_eq!(store.sweep().await.unwrap(), dead);
    assert_eq!(chunk_files(dir.path()), files[2..].to_vec());
    assert_eq!(store.stored_bytes(), live);
    assert_eq!(spans(&store.fence_and_read(1, 1, 0).await.unwrap()), vec![(4, 6, 1), (6, 8, 1)]);

    // The source's current chunk goes too once it is dead; a chunk with a live frame stays.
    store.trim(1, 8);
    store.sweep().await.unwrap();
    assert_eq!(chunk_files(dir.path()), vec![files[2].clone()]);
    store.trim(2, 2);
    store.sweep().await.unwrap();
    assert!(chunk_files(dir.path()).is_empty());
    assert_eq!(store.stored_bytes(), 0);
    assert!(!dir.path().join("b1%2Fs1").exists(), "the empty source directory is removed");

    // The source can still append.
    append(&store, "b1/s1", &[(1, 8, 2, 1)]).await;
    assert_eq!(spans(&store.fence_and_read(1, 1, 0).await.unwrap()), vec![(8, 10, 1)]);
    assert_eq!(chunk_files(dir.path()).len(), 1);
}

#[tokio::test]
async fn discarded_frames_are_swept_and_a_later_frame_of_their_epoch_takes_the_log_back() {
    let dir = tempfile::tempdir().unwrap();
    // One batch per chunk.
    let store = open(config(dir.path(), 1)).await.unwrap();
    append(&store, "b1/s1", &[(1, 0, 2, 3)]).await;
    append(&store, "b1/s1", &[(2, 0, 2, 3)]).await;
    append(&store, "b1/s1", &[(1, 2, 2, 4)]).await;
    let held = |store: &ReplicaStore| store.held().iter().map(|h| (h.log_id, h.epoch)).collect::<Vec<_>>();
    assert_eq!(held(&store), vec![(1, 4), (2, 3)]);
    let mark = store.held()[0].mark;
    let files = chunk_files(dir.path());

    // Epoch 3 of log 1 is no longer wanted; epoch 4 and the other log are.
    assert!(store.discard(1, 3, mark));
    assert_eq!(held(&store), vec![(1, 4), (2, 3)]);
    let dead = file_bytes(&files[..1]);
    assert_eq!(store.sweep().await.unwrap(), dead);
    assert_eq!(chunk_files(dir.path()), files[1..].to_vec());

    // Discarded through epoch 4, then its owner sends a frame of epoch 4 here again: the log is
    // wanted after all, and nothing of it goes.
    assert!(store.discard(1, 4, mark));
    assert_eq!(held(&store), vec![(2, 3)]);
    append(&store, "b1/s1", &[(1, 4, 2, 4)]).await;
    assert_eq!(held(&store), vec![(1, 4), (2, 3)]);
    store.sweep().await.unwrap();
    assert_eq!(spans(&store.fence_and_read(1, 5, 0).await.unwrap()), vec![(2, 4, 4), (4, 6, 4)]);

    // A discard decided before a frame of the log was stored is not applied (epoch 5: the read
    // above fenced the log there).
    let stale = store.held()[0].mark;
    append(&store, "b1/s1", &[(1, 6, 2, 5)]).await;
    assert!(!store.discard(1, 4, stale));
    store.sweep().await.unwrap();
    assert_eq!(spans(&store.fence_and_read(1, 5, 0).await.unwrap()).len(), 3);
}

#[tokio::test]
async fn sweep_deletes_fenced_frames_only_after_the_retention() {
    let dir = tempfile::tempdir().unwrap();
    let kept = ReplicaStoreConfig { chunk_bytes: 1, fenced_retention: Duration::from_secs(3600), ..base(dir.path()) };
    let store = open(kept.clone()).await.unwrap();
    append(&store, "b1/s1", &[(3, 0, 2, 1)]).await;
    store.fence_and_read(3, 2, 0).await.unwrap();
    append(&store, "b2/s1", &[(3, 0, 3, 2)]).await;
    assert_eq!(store.sweep().await.unwrap(), 0);
    store.close().await;
    drop(store);

    let store = open(ReplicaStoreConfig { fenced_retention: Duration::ZERO, ..kept }).await.unwrap();
    assert!(store.sweep().await.unwrap() > 0);
    assert_eq!(spans(&store.fence_and_read(3, 2, 0).await.unwrap()), vec![(0, 3, 2)]);
    assert_eq!(chunk_files(dir.path()).len(), 1);
}

#[tokio::test]
async fn recovered_frames_round_trip_through_the_wire_form() {
    let frames = vec![stored(1, 0, 3, 1), stored(1, 3, 2, 2), stored(1, 3, 2, 2)];
    let wire = encode_frames(&frames);
    assert_eq!(decode_frames(wire.clone()).unwrap(), frames);
    assert!(decode_frames(Bytes::new()).unwrap().is_empty());

    let mut flipped = wire.to_vec();
    let at = flipped.len() - 4;
    flipped[at] ^= 0x01;
    let truncated = wire.slice(..wire.len() - 1);
    let mut mislabelled = wire.to_vec();
    mislabelled[15] = 9; // the first frame's start
    for (what, body) in
        [("checksum", Bytes::from(flipped)), ("truncated", truncated), ("label", Bytes::from(mislabelled))]
    {
        let err = decode_frames(body).err().unwrap_or_else(|| panic!("{what}: accepted"));
        assert!(matches!(err, StorageError::Corrupt { .. }), "{what}: {err}");
    }
}

#[test]
fn merge_takes_the_union_of_the_peers_partial_copies() {
    let peer_a = vec![stored(1, 0, 3, 1), stored(1, 6, 3, 1)];
    let peer_b = vec![stored(1, 0, 3, 1), stored(1, 3, 3, 1)];
    let merged = merge_recovered(0, [peer_a, peer_b].concat()).unwrap();
    assert_eq!(merged.iter().map(|r| r.offset).collect::<Vec<_>>(), (0..9).collect::<Vec<_>>());
    assert_eq!(payloads(&merged), (0..9).map(|o| format!("e1-{o}")).collect::<Vec<_>>());
    // From inside a frame.
    let merged = merge_recovered(4, vec![stored(1, 3, 3, 1), stored(1, 0, 3, 1)]).unwrap();
    assert_eq!(payloads(&merged), vec!["e1-4", "e1-5"]);
}

#[test]
fn merge_prefers_the_highest_epoch_and_never_goes_back_to_a_lower_one() {
    // The old owner's copy runs to 10; the new owner rewrote from 5 and got to 8.
    let frames = vec![stored(1, 0, 10, 1), stored(1, 5, 3, 2)];
    let merged = merge_recovered(0, frames.clone()).unwrap();
    let want: Vec<String> = (0..5).map(|o| format!("e1-{o}")).chain((5..8).map(|o| format!("e2-{o}"))).collect();
    assert_eq!(payloads(&merged), want);
    assert_eq!(payloads(&merge_recovered(6, frames).unwrap()), vec!["e2-6", "e2-7"]);

    // From the first offset on, the newer epoch wins even where the older copy is longer.
    let merged = merge_recovered(0, vec![stored(1, 0, 4, 1), stored(1, 0, 2, 3), stored(1, 2, 1, 2)]).unwrap();
    assert_eq!(payloads(&merged), vec!["e3-0", "e3-1"]);
}

#[test]
fn merge_stops_at_the_first_gap() {
    let frames = vec![stored(1, 4, 2, 1), stored(1, 0, 3, 1)];
    assert_eq!(merge_recovered(0, frames.clone()).unwrap().len(), 3);
    assert!(merge_recovered(3, frames.clone()).unwrap().is_empty());
    assert_eq!(payloads(&merge_recovered(4, frames).unwrap()), vec!["e1-4", "e1-5"]);
    assert!(merge_recovered(0, Vec::new()).unwrap().is_empty());
}

/// Space as the store writes it ahead of a chunk's entries: a pattern in phase with the file
/// position.
fn fill(bytes: &mut [u8], at: usize) {
    const FILL: &[u8; 16] = b"magnetar:ahead:\n";
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = FILL[(at + i) % FILL.len()];
    }
}

#[tokio::test]
async fn an_idle_chunk_gets_space_ahead_that_a_reopen_after_a_crash_cuts_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(base(dir.path())).await.unwrap();
    append(&store, "b1/s1", &[(1, 0, 3, 1)]).await;
    let stored = store.stored_bytes() as usize;
    let chunk = chunk_files(dir.path()).pop().unwrap();
    // The batch was alone: the chunk gets a step of space ahead once it is answered.
    space_ahead(dir.path(), stored as u64 + 4096).await;
    let crashed = std::fs::read(&chunk).unwrap();
    assert!(crashed.len() > stored + 4096, "{} bytes for {stored} stored", crashed.len());
    let mut expected = vec![0; crashed.len() - stored];
    fill(&mut expected, stored);
    assert!(crashed[stored..] == expected[..], "the space after the entries is fill");
    store.close().await;
    drop(store);
    assert_eq!(std::fs::metadata(&chunk).unwrap().len() as usize, stored, "a drop cuts it");
    // As a crash leaves it: the reopen cuts the space and keeps every entry.
    std::fs::write(&chunk, &crashed).unwrap();
    let store = open(base(dir.path())).await.unwrap();
    assert_eq!(std::fs::metadata(&chunk).unwrap().len() as usize, stored);
    assert_eq!(spans(&store.fence_and_read(1, 1, 0).await.unwrap()), vec![(0, 3, 1)]);
}

#[tokio::test]
async fn space_ahead_inside_an_entry_of_the_last_chunk_ends_it_there_but_zeros_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(base(dir.path())).await.unwrap();
    let mut ends = Vec::new();
    for i in 0..3 {
        append(&store, "b1/s1", &[(1, i * 500, 500, 1)]).await;
        ends.push(store.stored_bytes() as usize);
    }
    let chunk = chunk_files(dir.path()).pop().unwrap();
    let with_space = std::fs::read(&chunk).unwrap();
    store.close().await;
    drop(store);
    // A whole page inside the second entry.
    let page = 4096;
    let at = ends[0].div_ceil(page) * page;
    assert!(at + page <= ends[1], "the second entry spans a page: {ends:?}");
    // As a crash can leave the chunk: write-back had reached the third entry but not that page,
    // which still holds what it held before the entry was written there.
    let crashed = |page_bytes: &dyn Fn(&mut [u8])| {
        let mut bytes = with_space.clone();
        page_bytes(&mut bytes[at..at + page]);
        std::fs::write(&chunk, &bytes).unwrap();
        bytes
    };
    // Zeros there are damage: the open is refused and the file kept as it is.
    let zeroed = crashed(&|p| p.fill(0));
    let err = open(base(dir.path())).await.err().expect("refused");
    assert!(matches!(err, StorageError::Corrupt { .. }), "{err}");
    assert_eq!(std::fs::read(&chunk).unwrap(), zeroed);
    // Fill there: the second entry and everything after it were never answered.
    crashed(&|p| fill(p, at));
    let store = open(base(dir.path())).await.unwrap();
    assert_eq!(std::fs::metadata(&chunk).unwrap().len() as usize, ends[0]);
    assert_eq!(spans(&store.fence_and_read(1, 1, 0).await.unwrap()), vec![(0, 500, 1)]);
}

/// With `drop_synced`, what a chunk holds leaves the page cache once fsynced (the peer's later
/// writes reuse those pages; see `pagecache`), and reading it back after a fence still returns
/// every frame, from the disk. Without it, the chunk stays cached, unless written with direct
/// I/O, which never puts it there.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn fsynced_chunk_pages_leave_the_page_cache_when_asked() {
    for drop_synced in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let store = open(ReplicaStoreConfig { drop_synced, ..base(dir.path()) }).await.unwrap();
        // 24 batches of one 128 KiB record: 3 MiB in one chunk.
        for i in 0..24u64 {
            let payload = Bytes::from(vec![i as u8; 128 << 10]);
            let rec = RecordInput { publish_time: 1, payload, ..Default::default() };
            let mut object = BytesMut::from(&MAGIC[..]);
            object.extend_from_slice(&encode_test_frame(1, i, &[rec]));
            let ranges = [ObjectRange { log_id: 1, start: i, end: i + 1, epoch: 1 }];
            assert!(store.append("b1/s1", object.freeze(), &ranges).await.unwrap().is_empty());
        }
        let files = chunk_files(dir.path());
        assert_eq!(files.len(), 1, "{files:?}");
        let file = std::fs::File::open(&files[0]).unwrap();
        let cached = magnetar_storage::pagecache::resident_pages(&file, 0, 2 << 20);
        if drop_synced || super::DIRECT {
            assert_eq!(cached, 0, "the chunk's first 2 MiB left the page cache");
        } else {
            assert_eq!(cached, 512, "without drop_synced the chunk stays cached");
        }
        let frames = store.fence_and_read(1, 2, 0).await.unwrap();
        assert_eq!(frames.len(), 24);
        for (i, f) in frames.iter().enumerate() {
            let (_, records) = decode_data_frame(&f.frame).unwrap();
            assert_eq!(records[0].payload.len(), 128 << 10);
            assert!(records[0].payload.iter().all(|b| *b == i as u8), "frame {i} read back intact");
        }
    }
}

/// What a kill -9 leaves: the chunk files as they are while the store is open, written ahead
/// and (with direct writes) with the last partial block padded. Entries of every size, from a
/// few bytes to several blocks, so that block boundaries fall everywhere in them: a store
/// opened on a copy of the files reads back every acknowledged frame intact.
#[tokio::test]
async fn every_acknowledged_entry_is_in_the_files_as_a_kill_leaves_them() {
    let (dir, copy) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let store = open(config(dir.path(), 256 << 10)).await.unwrap();
    let mut expected = Vec::new();
    for i in 0..40u64 {
        let size = [3usize, 700, 4090, 4096, 9000, 30_000][i as usize % 6];
        let rec = RecordInput { publish_time: 1, payload: Bytes::from(vec![i as u8; size]), ..Default::default() };
        let frame = encode_test_frame(1, i, &[rec]);
        let mut object = BytesMut::from(&MAGIC[..]);
        object.extend_from_slice(&frame);
        let ranges = [ObjectRange { log_id: 1, start: i, end: i + 1, epoch: 1 }];
        assert!(store.append("b1/s1", object.freeze(), &ranges).await.unwrap().is_empty());
        expected.push(StoredFrame { epoch: 1, start: i, end: i + 1, frame });
    }
    let files = chunk_files(dir.path());
    assert!(files.len() > 1, "the chunks rolled: {files:?}");
    for f in &files {
        let to = copy.path().join(f.strip_prefix(dir.path()).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(f, &to).unwrap();
    }
    let reopened = open(base(copy.path())).await.unwrap();
    assert_eq!(reopened.fence_and_read(1, 2, 0).await.unwrap(), expected);
    assert_eq!(store.fence_and_read(1, 2, 0).await.unwrap(), expected);
}
