//! Object-store durability: records are acknowledged and visible only once the object holding
//! them is in the bucket and its ranges are committed; all logs share objects; a fenced log's
//! records are refused; a slow or failing store makes appenders wait at most their log's bound,
//! and the backlog is bounded. The bucket is a real (local directory) object store; the
//! committer is the test's, so that each outcome of the metadata commit can be chosen.

mod common;

use async_trait::async_trait;
use common::{config_bypassing, input, open};
use magnetar_storage::object::{LocalConfig, ObjectStoreConfig, build_object_store};
use magnetar_storage::{
    LogObjectCommitter, ObjectLog, ObjectLogConfig, ObjectRange, ObjectTier, Storage, StorageError, StorageMetrics,
    TierConfig, decode_log_object,
};
use parking_lot::Mutex;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Records what is committed; may hold commits, fail them, or fence logs.
#[derive(Default)]
struct TestCommitter {
    committed: Mutex<Vec<(String, Vec<ObjectRange>)>>,
    /// While `Some`, each commit takes a permit first.
    gate: Mutex<Option<Arc<Semaphore>>>,
    /// This many commits fail before they succeed again.
    failures: AtomicUsize,
    fenced: Mutex<HashSet<u64>>,
    /// How many objects each successful call committed.
    groups: Mutex<Vec<usize>>,
}

#[async_trait]
impl LogObjectCommitter for TestCommitter {
    /// One permit and one failure check per call, however many objects it commits.
    async fn commit(
        &self,
        objects: &[(String, Vec<ObjectRange>)],
    ) -> magnetar_storage::Result<Vec<Vec<(u64, String)>>> {
        let gate = self.gate.lock().clone();
        if let Some(g) = gate {
            g.acquire().await.unwrap().forget();
        }
        if self.failures.load(Ordering::SeqCst) > 0 {
            self.failures.fetch_sub(1, Ordering::SeqCst);
            return Err(StorageError::Unavailable("metadata store unreachable (test)".into()));
        }
        self.groups.lock().push(objects.len());
        let fenced = self.fenced.lock().clone();
        let mut answers = Vec::new();
        for (key, ranges) in objects {
            let (refused, kept): (Vec<ObjectRange>, Vec<ObjectRange>) =
                ranges.iter().partition(|r| fenced.contains(&r.log_id));
            self.committed.lock().push((key.clone(), kept));
            answers
                .push(refused.into_iter().map(|r| (r.log_id, "fenced by a newer epoch (test)".to_string())).collect());
        }
        Ok(answers)
    }
}

struct Setup {
    storage: Arc<Storage>,
    tier: Arc<ObjectTier>,
    committer: Arc<TestCommitter>,
    objects: Arc<ObjectLog>,
    _dir: tempfile::TempDir,
}

fn setup(object_config: ObjectLogConfig) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let (storage, _) = open(config_bypassing(dir.path()));
    let store = build_object_store(&ObjectStoreConfig::Local(LocalConfig { root: dir.path().join("bucket") })).unwrap();
    let tier = ObjectTier::new(store, TierConfig::default(), StorageMetrics::new()).unwrap();
    storage.attach_tier(tier.clone());
    let committer = Arc::new(TestCommitter::default());
    let objects = ObjectLog::start(tier.clone(), committer.clone(), object_config);
    storage.attach_object_log(objects.clone());
    Setup { storage, tier, committer, objects, _dir: dir }
}

fn window(ms: u64) -> ObjectLogConfig {
    ObjectLogConfig { prefix: "wal-objects/b1/s1".into(), window: Duration::from_millis(ms), ..Default::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_resolves_and_becomes_visible_only_once_its_object_is_committed() {
    let s = setup(window(5));
    let gate = Arc::new(Semaphore::new(0));
    *s.committer.gate.lock() = Some(gate.clone());
    let log = s.storage.log(1).unwrap();
    log.set_object_store_durability(7, Duration::from_secs(30)).unwrap();
    let l = log.clone();
    let append = tokio::spawn(async move { l.append((0..5).map(input).collect()).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!append.is_finished(), "acknowledged before the commit");
    assert_eq!(log.end_offset(), 0, "visible before the commit");
    assert!(log.read(0, 10, 1 << 20).unwrap().is_empty());
    gate.add_permits(1);
    let ids = append.await.unwrap().unwrap();
    assert_eq!(ids.iter().map(|(o, _)| *o).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
    assert_eq!(log.end_offset(), 5);
    assert_eq!(log.read(0, 10, 1 << 20).unwrap().len(), 5);

    let committed = s.committer.committed.lock().clone();
    assert_eq!(committed.len(), 1);
    let (key, ranges) = &committed[0];
    assert!(key.starts_with("wal-objects/b1/s1/"), "{key}");
    assert_eq!(ranges, &vec![ObjectRange { log_id: 1, start: 0, end: 5, epoch: 7 }]);
    let object = s.tier.get_object(key).await.unwrap();
    let decoded = decode_log_object(&object).unwrap();
    assert_eq!(decoded.len(), 1);
    assert_eq!(decoded[0].0, 1);
    for (i, r) in decoded[0].1.iter().enumerate() {
        common::check(r, i as u64);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_records_of_many_logs_share_objects() {
    let s = setup(window(200));
    let mut tasks = Vec::new();
    for id in 1..=20u64 {
        let log = s.storage.log(id).unwrap();
        log.set_object_store_durability(1, Duration::from_secs(30)).unwrap();
        tasks.push(tokio::spawn(async move { log.append(vec![input(id)]).await }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let committed = s.committer.committed.lock().clone();
    assert!(committed.len() <= 2, "20 logs appended within one window took {} objects", committed.len());
    let logs: HashSet<u64> = committed.iter().flat_map(|(_, r)| r.iter().map(|r| r.log_id)).collect();
    assert_eq!(logs.len(), 20);
    assert_eq!(s.objects.committed_objects.load(Ordering::Relaxed), committed.len() as u64);
    assert_eq!(s.objects.backlog_bytes(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_go_a_window_apart_and_at_once_after_a_quiet_window() {
    // A window far longer than anything else here: what waits for it is told apart by seconds.
    let s = setup(window(2_000));
    let log = s.storage.log(1).unwrap();
    log.set_object_store_durability(1, Duration::from_secs(30)).unwrap();
    // No object went in the last window: the first append goes at once.
    tokio::time::timeout(Duration::from_secs(1), log.append(vec![input(0)]))
        .await
        .expect("the first object went without waiting for a window")
        .unwrap();
    // The next one goes a window after the first went (a producer whose next messages waited
    // for this acknowledgement sends them now; they do not wait a window of their own).
    let l = log.clone();
    let next = tokio::spawn(async move { l.append(vec![input(1)]).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!next.is_finished(), "a second object within the window of the first");
    tokio::time::timeout(Duration::from_secs(5), next)
        .await
        .expect("the second object, a window later")
        .unwrap()
        .unwrap();
    assert_eq!(s.committer.committed.lock().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_log_is_refused_while_its_neighbour_in_the_object_is_acknowledged() {
    let s = setup(window(100));
    s.committer.fenced.lock().insert(2);
    let (a, b) = (s.storage.log(1).unwrap(), s.storage.log(2).unwrap());
    a.set_object_store_durability(1, Duration::from_secs(30)).unwrap();
    b.set_object_store_durability(1, Duration::from_secs(30)).unwrap();
    let (ra, rb) = tokio::join!(a.append(vec![input(0)]), b.append(vec![input(0)]));
    ra.unwrap();
    let e = rb.unwrap_err();
    assert!(matches!(&e, StorageError::Unavailable(m) if m.contains("fenced")), "{e}");
    assert_eq!(a.end_offset(), 1);
    assert_eq!(b.end_offset(), 0, "a fenced log's records must stay invisible");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_commit_is_retried_and_the_appender_is_told_after_its_wait() {
    let s = setup(window(5));
    s.committer.failures.store(4, Ordering::SeqCst);
    let log = s.storage.log(1).unwrap();
    log.set_object_store_durability(1, Duration::from_millis(60)).unwrap();
    let e = log.append(vec![input(0)]).await.unwrap_err();
    assert!(matches!(&e, StorageError::NotYetDurable(m) if m.contains("within 60 ms")), "{e}");
    assert_eq!(log.end_offset(), 0);
    // The retries go on: once the store answers, the record is committed and readable, as a
    // send that timed out may still have been stored.
    tokio::time::timeout(Duration::from_secs(10), log.wait_for_data(0)).await.expect("committed after the retries");
    let committed = s.committer.committed.lock().clone();
    assert_eq!(committed.len(), 1);
    assert_eq!(committed[0].1, vec![ObjectRange { log_id: 1, start: 0, end: 1, epoch: 1 }]);
    assert!(s.tier.get_object(&committed[0].0).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_are_refused_while_the_backlog_is_over_its_bound() {
    let s = setup(ObjectLogConfig { max_backlog_bytes: 4 << 10, ..window(5) });
    let gate = Arc::new(Semaphore::new(0));
    *s.committer.gate.lock() = Some(gate.clone());
    let log = s.storage.log(1).unwrap();
    log.set_object_store_durability(1, Duration::from_secs(30)).unwrap();
    let mut waiting = Vec::new();
    let refused = loop {
        let big = magnetar_storage::RecordInput { payload: bytes::Bytes::from(vec![7u8; 1024]), ..input(0) };
        match log.enqueue(vec![big]).await {
            Ok(p) => waiting.push(p),
            Err(e) => break e,
        }
        // Let the applier hand the records to the object writer, where the backlog counts them.
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(waiting.len() < 100, "the backlog bound never applied");
    };
    assert!(matches!(&refused, StorageError::Unavailable(m) if m.contains("wait for the object store")), "{refused}");
    gate.add_permits(1000);
    for p in waiting {
        p.durable().await.unwrap();
    }
    assert_eq!(s.objects.backlog_bytes(), 0);
    log.append(vec![input(1)]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_without_an_object_writer_cannot_take_object_store_durability() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, _) = open(config_bypassing(dir.path()));
    let e = storage.log(1).unwrap().set_object_store_durability(1, Duration::from_secs(1)).unwrap_err();
    assert!(matches!(&e, StorageError::Unavailable(m) if m.contains("object tier")), "{e}");
}

#[test]
fn a_damaged_log_object_is_reported_not_decoded() {
    assert!(decode_log_object(&bytes::Bytes::from_static(b"not an object")).is_err());
    let mut ok = magnetar_storage::objlog::MAGIC.to_vec();
    ok.extend_from_slice(&[1, 0, 0, 0, 9, 9, 9, 9, 1]);
    let e = decode_log_object(&bytes::Bytes::from(ok)).unwrap_err();
    assert!(matches!(e, StorageError::Corrupt { .. }), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_that_fell_behind_gathers_everything_queued_into_its_next_object() {
    let s = setup(window(5));
    let gate = Arc::new(Semaphore::new(0));
    *s.committer.gate.lock() = Some(gate.clone());
    // The first object waits for its commit while 40 logs queue one record each.
    let first = s.storage.log(1).unwrap();
    first.set_object_store_durability(1, Duration::from_secs(30)).unwrap();
    let mut tasks = vec![tokio::spawn(async move { first.append(vec![input(0)]).await })];
    tokio::time::sleep(Duration::from_millis(100)).await;
    for id in 2..=41u64 {
        let log = s.storage.log(id).unwrap();
        log.set_object_store_durability(1, Duration::from_secs(30)).unwrap();
        tasks.push(tokio::spawn(async move { log.append(vec![input(id)]).await }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    gate.add_permits(1000);
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let committed = s.committer.committed.lock().clone();
    assert!(committed.len() <= 3, "40 records queued behind one object took {} more objects", committed.len() - 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_are_put_side_by_side_and_committed_in_order_even_after_a_failure() {
    let s = setup(ObjectLogConfig { max_in_flight: 3, ..window(5) });
    let gate = Arc::new(Semaphore::new(0));
    *s.committer.gate.lock() = Some(gate.clone());
    // The first commit fails once it is let through: the others must wait for its retry.
    s.committer.failures.store(1, Ordering::SeqCst);
    // Three objects in the bucket while the first commit is still held.
    let (log, appends) = three_objects_behind_a_held_commit(&s).await;
    assert!(s.committer.committed.lock().is_empty());
    gate.add_permits(10);
    for (i, a) in appends.into_iter().enumerate() {
        assert_eq!(a.await.unwrap().unwrap()[0].0, i as u64);
    }
    let committed: Vec<(String, Vec<ObjectRange>)> = s.committer.committed.lock().clone();
    let starts: Vec<u64> = committed.iter().map(|(_, r)| r[0].start).collect();
    assert_eq!(starts, vec![0, 1, 2], "ranges committed out of order: {committed:?}");
    let keys: Vec<&String> = committed.iter().map(|(k, _)| k).collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
    assert_eq!(log.end_offset(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_put_while_a_commit_runs_are_committed_together_in_one_call() {
    let s = setup(ObjectLogConfig { max_in_flight: 4, ..window(5) });
    let gate = Arc::new(Semaphore::new(0));
    *s.committer.gate.lock() = Some(gate.clone());
    let (_log, appends) = three_objects_behind_a_held_commit(&s).await;
    // The first object's commit holds; the two after it are in the bucket, waiting their turn.
    gate.add_permits(2);
    for (i, a) in appends.into_iter().enumerate() {
        assert_eq!(a.await.unwrap().unwrap()[0].0, i as u64);
    }
    assert_eq!(*s.committer.groups.lock(), vec![1, 2], "the second and third objects committed in one call");
    let starts: Vec<u64> = s.committer.committed.lock().iter().map(|(_, r)| r[0].start).collect();
    assert_eq!(starts, vec![0, 1, 2]);
}

type Append = tokio::task::JoinHandle<magnetar_storage::Result<Vec<(u64, u64)>>>;

/// Log 1 with object-store durability and one record appended in each of three windows, until
/// the three objects are in the bucket (the committer's gate, closed by the caller, holds their
/// commits).
async fn three_objects_behind_a_held_commit(s: &Setup) -> (Arc<magnetar_storage::PartitionLog>, Vec<Append>) {
    let log = s.storage.log(1).unwrap();
    log.set_object_store_durability(1, Duration::from_secs(30)).unwrap();
    let mut appends = Vec::new();
    for i in 0..3u64 {
        let l = log.clone();
        appends.push(tokio::spawn(async move { l.append(vec![input(i)]).await }));
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    for _ in 0..100 {
        if s.tier.list_objects("wal-objects/b1/s1/").await.unwrap().len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(s.tier.list_objects("wal-objects/b1/s1/").await.unwrap().len(), 3, "PUTs waited for commits");
    (log, appends)
}
