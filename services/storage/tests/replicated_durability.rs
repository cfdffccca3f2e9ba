//! Replicated durability in the storage engine: a frame goes to the replicas' sink when it is
//! queued, not after the WAL's fsync; the append resolves, and its records become visible, only
//! once both the WAL and the sink have them; each log's frames reach the sink in offset order; a
//! sink that never confirms makes the appender wait at most the log's bound. The sink is the
//! test's (the broker's sends to peer brokers are tested in magnetar-tests).

mod common;

use async_trait::async_trait;
use bytes::Bytes;
use common::{config_bypassing, input, open};
use magnetar_storage::{
    DurableSink, ObjectLog, ObjectLogConfig, ObjectRange, StorageError, StorageMetrics, WriterMetrics,
    decode_log_object,
};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Keeps every batch; each commit takes a permit of `gate` first.
struct TestSink {
    batches: Mutex<Vec<(Bytes, Vec<ObjectRange>)>>,
    gate: Arc<Semaphore>,
}

#[async_trait]
impl DurableSink for TestSink {
    async fn commit(
        &self,
        _seq: u64,
        object: Bytes,
        ranges: &[ObjectRange],
    ) -> magnetar_storage::Result<Vec<(u64, String)>> {
        // Kept before the permit: what the replicas were sent, confirmed or not.
        self.batches.lock().push((object, ranges.to_vec()));
        self.gate.acquire().await.unwrap().forget();
        Ok(Vec::new())
    }
}

fn sink(permits: usize) -> (Arc<TestSink>, Arc<ObjectLog>) {
    let sink = Arc::new(TestSink { batches: Mutex::new(Vec::new()), gate: Arc::new(Semaphore::new(permits)) });
    let config = ObjectLogConfig { window: Duration::ZERO, ..Default::default() };
    let writer = ObjectLog::start_with(sink.clone(), WriterMetrics::replication(&StorageMetrics::new()), config);
    (sink, writer)
}

/// Log 1 of a fresh storage with replicated durability under `epoch` through a test sink with
/// `permits` commits allowed; its appenders wait at most `wait`.
fn replicated_log(
    permits: usize,
    epoch: i64,
    wait: Duration,
) -> (tempfile::TempDir, Arc<magnetar_storage::Storage>, Arc<TestSink>, Arc<magnetar_storage::PartitionLog>) {
    let dir = tempfile::tempdir().unwrap();
    let (storage, _) = open(config_bypassing(dir.path()));
    let (sink, writer) = sink(permits);
    let log = storage.log(1).unwrap();
    log.set_replicated_durability(epoch, wait, writer);
    (dir, storage, sink, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_waits_for_its_replicas_and_is_visible_only_once_they_confirm() {
    let (_dir, _storage, sink, log) = replicated_log(0, 3, Duration::from_secs(30));
    let l = log.clone();
    let append = tokio::spawn(async move { l.append((0..5).map(input).collect()).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!append.is_finished(), "acknowledged before the replicas confirmed");
    assert_eq!(log.end_offset(), 0, "visible before the replicas confirmed");
    let sent = sink.batches.lock().clone();
    assert_eq!(sent.len(), 1, "the frame went to the replicas");
    assert_eq!(sent[0].1, vec![ObjectRange { log_id: 1, start: 0, end: 5, epoch: 3 }]);
    let decoded = decode_log_object(&sent[0].0).unwrap();
    for (i, r) in decoded[0].1.iter().enumerate() {
        common::check(r, i as u64);
    }
    sink.gate.add_permits(1);
    let ids = append.await.unwrap().unwrap();
    assert_eq!(ids.iter().map(|(o, _)| *o).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
    assert_eq!(log.end_offset(), 5);
    assert_eq!(log.read(0, 10, 1 << 20).unwrap().len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_reach_the_replicas_in_offset_order() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, _) = open(config_bypassing(dir.path()));
    let (sink, writer) = sink(usize::MAX >> 4);
    let mut tasks = Vec::new();
    for id in 1..=4u64 {
        let log = storage.log(id).unwrap();
        log.set_replicated_durability(1, Duration::from_secs(30), writer.clone());
        for i in 0..50 {
            let log = log.clone();
            tasks.push(tokio::spawn(async move { log.append(vec![input(i)]).await }));
        }
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let mut next = [0u64; 5];
    for (object, ranges) in sink.batches.lock().iter() {
        for (log_id, records) in decode_log_object(object).unwrap() {
            for r in records {
                assert_eq!(r.offset, next[log_id as usize], "log {log_id}: a frame out of order");
                next[log_id as usize] += 1;
            }
        }
        assert!(ranges.iter().all(|r| r.epoch == 1));
    }
    assert_eq!(next[1..], [50, 50, 50, 50]);
    for id in 1..=4u64 {
        assert_eq!(storage.log(id).unwrap().end_offset(), 50);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_that_never_confirm_refuse_the_append_after_the_wait() {
    let (_dir, _storage, sink, log) = replicated_log(0, 1, Duration::from_millis(200));
    let started = std::time::Instant::now();
    let err = log.append(vec![input(0)]).await.unwrap_err();
    assert!(matches!(err, StorageError::NotYetDurable(ref m) if m.contains("ack quorum")), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "waited {:?}", started.elapsed());
    assert_eq!(log.end_offset(), 0, "a record its replicas never confirmed is not visible");
    // Once the replicas confirm, the record (already in the WAL) is visible: a refused record
    // may still be stored, as with any timed-out send.
    sink.gate.add_permits(1);
    tokio::time::timeout(Duration::from_secs(5), log.wait_for_data(0)).await.expect("visible once confirmed");
    assert_eq!(log.end_offset(), 1);
}

/// What a sink's commit answers: the logs refused as fenced.
type Answer = magnetar_storage::Result<Vec<(u64, String)>>;

/// Holds every commit until the test answers it, in any order.
#[derive(Default)]
struct HeldSink {
    held: Mutex<Vec<(u64, tokio::sync::oneshot::Sender<Answer>)>>,
}

#[async_trait]
impl DurableSink for HeldSink {
    async fn commit(
        &self,
        seq: u64,
        _object: Bytes,
        _ranges: &[ObjectRange],
    ) -> magnetar_storage::Result<Vec<(u64, String)>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.held.lock().push((seq, tx));
        rx.await.unwrap_or(Err(StorageError::ShuttingDown))
    }
}

impl HeldSink {
    /// Answers the commit numbered `seq`.
    fn answer(&self, seq: u64, res: Answer) {
        let mut held = self.held.lock();
        let i = held.iter().position(|(s, _)| *s == seq).expect("held commit");
        let _ = held.remove(i).1.send(res);
    }

    fn seqs(&self) -> Vec<u64> {
        self.held.lock().iter().map(|(s, _)| *s).collect()
    }
}

async fn until(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_in_flight_together_complete_in_order_and_a_failed_one_is_retried_first_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, _) = open(config_bypassing(dir.path()));
    let sink = Arc::new(HeldSink::default());
    let config = ObjectLogConfig { window: Duration::ZERO, max_in_flight: 3, ..Default::default() };
    let writer = ObjectLog::start_with(sink.clone(), WriterMetrics::replication(&StorageMetrics::new()), config);
    let log = storage.log(1).unwrap();
    log.set_replicated_durability(1, Duration::from_secs(30), writer);
    // Three appends one after another: each goes out while the ones before are in flight.
    let mut appends = Vec::new();
    for i in 0..3u64 {
        let l = log.clone();
        appends.push(tokio::spawn(async move { l.append(vec![input(i)]).await }));
        until("the batch in flight", || sink.seqs().len() == i as usize + 1).await;
    }
    let seqs = sink.seqs();
    // The last confirmed first: nothing is visible or acknowledged before the first is.
    sink.answer(seqs[2], Ok(Vec::new()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(log.end_offset(), 0);
    assert!(appends.iter().all(|a| !a.is_finished()));
    assert!(!log.commits_retrying(), "retrying before any commit failed");
    // The first fails: it is sent again, and the second waits behind it.
    sink.answer(seqs[0], Err(StorageError::Unavailable("peer down (test)".into())));
    until("the retry", || sink.seqs().contains(&seqs[0])).await;
    assert!(log.commits_retrying(), "a failed batch waiting for its retry is not reported");
    sink.answer(seqs[1], Ok(Vec::new()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(log.end_offset(), 0, "visible past a batch not committed");
    sink.answer(seqs[0], Ok(Vec::new()));
    for (i, a) in appends.into_iter().enumerate() {
        assert_eq!(a.await.unwrap().unwrap()[0].0, i as u64);
    }
    assert_eq!(log.end_offset(), 3);
    assert!(!log.commits_retrying(), "still reported retrying once the batch committed");
}

/// A replicated log moving off a dead peer sends its tail again (`commit_local_tail`) while
/// appends go on: one batch may then hold a new frame ahead of an older one. Its range for the
/// log must cover both, or the peers refuse the batch as corrupt and the stream stops for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tail_sent_again_beside_new_appends_goes_in_batches_whose_ranges_cover_their_frames() {
    let (_dir, _storage, sink, log) = replicated_log(1, 1, Duration::from_secs(30));
    log.append((0..5).map(input).collect()).await.unwrap();
    // The next batch hangs (no permit): what comes next waits behind it, together.
    let l = log.clone();
    let first = tokio::spawn(async move { l.append(vec![input(5)]).await });
    until("the batch in flight", || sink.batches.lock().len() == 2).await;
    let l = log.clone();
    let newer = tokio::spawn(async move { l.append(vec![input(6)]).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let l = log.clone();
    let tail = tokio::spawn(async move { l.commit_local_tail(0).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    sink.gate.add_permits(100);
    first.await.unwrap().unwrap();
    newer.await.unwrap().unwrap();
    assert_eq!(tail.await.unwrap().unwrap(), 5, "the visible tail was sent again");
    let batches = sink.batches.lock().clone();
    let mixed = batches.iter().any(|(object, _)| {
        let frames = decode_log_object(object).unwrap();
        frames.len() == 2 && frames[0].1[0].offset == 6 && frames[1].1[0].offset == 0
    });
    assert!(mixed, "the new frame and the tail went in one batch, the new one first: {}", batches.len());
    for (object, ranges) in &batches {
        for (log_id, records) in decode_log_object(object).unwrap() {
            let r = ranges.iter().find(|r| r.log_id == log_id).expect("a range for each log");
            for rec in records {
                assert!(r.start <= rec.offset && rec.offset < r.end, "offset {} outside {r:?}", rec.offset);
            }
        }
    }
    assert_eq!(log.end_offset(), 7);
}

/// A partition unloaded while its records waited for their replicas (a handover that failed)
/// and loaded again: the records the log accepted become visible as a restart would replay
/// them, and records copied from elsewhere go at exactly their offsets or not at all. Before,
/// a load recovered the replicas' copy of those same records after them: stored twice (CI).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_accepted_before_an_unload_are_kept_and_never_appended_twice() {
    let (_dir, _storage, _sink, log) = replicated_log(0, 1, Duration::from_millis(200));
    let err = log.append((0..5).map(input).collect()).await.unwrap_err();
    assert!(matches!(err, StorageError::NotYetDurable(_)), "{err}");
    assert_eq!(log.end_offset(), 0);
    // The failed handover: closed, reopened, loaded again with local durability first.
    log.close();
    log.reopen();
    log.set_local_durability();
    // Recovery found the replicas' copy of offsets 0..5: it may not go after the log's own.
    let copy: Vec<_> = (0..5).map(input).collect();
    let err = log.append_at(0, copy.clone()).await.unwrap_err();
    assert!(matches!(err, StorageError::Misplaced { first: 0, next: 5, .. }), "{err}");
    assert_eq!(log.end_offset(), 0, "nothing appended by a refused append_at");
    assert_eq!(log.adopt_accepted(Duration::from_secs(5)).await.unwrap(), 5);
    let records = log.read(0, 100, 1 << 20).unwrap();
    assert_eq!(records.len(), 5, "each accepted record once");
    for (i, r) in records.iter().enumerate() {
        common::check(r, i as u64);
    }
    // The recovery starts after them; an append at the end goes through.
    let ids = log.append_at(5, vec![input(5)]).await.unwrap();
    assert_eq!(ids[0].0, 5);
    assert_eq!(log.adopt_accepted(Duration::from_secs(5)).await.unwrap(), 6, "nothing left to adopt");
}
