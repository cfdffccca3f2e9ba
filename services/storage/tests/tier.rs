//! The object-store tier against both backends: the local filesystem and the real S3 server
//! `scripts/test.sh` starts (`MAGNETAR_TEST_S3_*`; without them the S3 tests fail, never skip).
//! Seal → upload → read back with the local copies gone; corrupt and truncated objects.

mod common;

use bytes::Bytes;
use common::{append_range, config, input};
use magnetar_storage::object::{LocalConfig, ObjectStoreConfig, build_object_store};
use magnetar_storage::{ObjectTier, Record, RemoteSegment, Storage, StorageError, StorageMetrics, TierConfig};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

fn s3_store() -> Arc<dyn ObjectStore> {
    build_object_store(&magnetar_storage::object::conformance::s3_config_from_env()).expect("build s3 object store")
}

fn local_store(dir: &std::path::Path) -> Arc<dyn ObjectStore> {
    build_object_store(&ObjectStoreConfig::Local(LocalConfig { root: dir.join("objects") })).expect("local store")
}

fn unique_prefix(test: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("tier-tests/{test}-{}-{nanos}", std::process::id())
}

fn key(prefix: &str, log: u64, base: u64, end: u64) -> String {
    format!("{prefix}/{log}/{base:020}-{end:020}.seg")
}

fn tier(store: Arc<dyn ObjectStore>, metrics: &StorageMetrics) -> Arc<ObjectTier> {
    // Small blocks so reads cross many block boundaries and exercise read-ahead and eviction.
    let cfg = TierConfig { block_bytes: 4096, cache_bytes: 64 << 10, read_ahead_blocks: 2, ..TierConfig::default() };
    ObjectTier::new(store, cfg, metrics.clone()).expect("tier")
}

/// No in-memory tail: every read goes to the segments (local or remote).
fn cfg(dir: &std::path::Path) -> magnetar_storage::StorageConfig {
    magnetar_storage::StorageConfig { read_cache_bytes: 0, ..config(dir) }
}

fn read_all(log: &magnetar_storage::PartitionLog, from: u64) -> Vec<Record> {
    let mut out = Vec::new();
    let mut at = from;
    loop {
        let got = log.read(at, 37, 16 << 10).expect("read");
        let Some(last) = got.last() else { break };
        at = last.offset + 1;
        out.extend(got);
    }
    out
}

/// Uploads every sealed segment of `log_id`, marks it offloaded and returns what the index
/// would hold.
async fn offload_all(s: &magnetar_storage::Storage, t: &ObjectTier, prefix: &str, log_id: u64) -> Vec<RemoteSegment> {
    let log = s.log(log_id).unwrap();
    let mut out = Vec::new();
    for seg in log.segments().into_iter().filter(|s| s.sealed && !s.offloaded) {
        let k = key(prefix, log_id, seg.base_offset, seg.end_offset);
        let remote = t.upload(&log, seg.base_offset, &k).await.expect("upload");
        assert_eq!(
            (remote.base_offset, remote.end_offset, remote.size_bytes),
            (seg.base_offset, seg.end_offset, seg.size_bytes)
        );
        log.mark_offloaded(remote.clone());
        out.push(remote);
    }
    out
}

async fn round_trip(store: Arc<dyn ObjectStore>, prefix: &str) {
    let dir = tempfile::tempdir().unwrap();
    let metrics = StorageMetrics::new();
    let (s, _) = Storage::open_with_metrics(cfg(dir.path()), metrics.clone()).unwrap();
    let t = tier(store.clone(), &metrics);
    s.attach_tier(t.clone());
    append_range(&s, 7, 0, 500, 5).await;
    let log = s.log(7).unwrap();
    tokio::task::spawn_blocking({
        let log = log.clone();
        move || log.seal_active()
    })
    .await
    .unwrap()
    .unwrap();
    let before = read_all(&log, 0);
    assert_eq!(before.len(), 500);
    let remote = offload_all(&s, &t, prefix, 7).await;
    assert!(remote.len() > 5, "several segments offloaded: {}", remote.len());
    // Each object is the sealed segment file, byte for byte.
    for r in &remote {
        let local = std::fs::read(dir.path().join(format!("logs/7/{:020}.seg", r.base_offset))).unwrap();
        let object = store.get(&ObjectPath::from(r.key.as_str())).await.unwrap().bytes().await.unwrap();
        assert!(object[..] == local[..], "object {} differs from its segment file", r.key);
    }
    let total: u64 = remote.iter().map(|r| r.size_bytes).sum();
    for r in &remote {
        assert!(log.drop_local_copy(r.base_offset).unwrap() > 0);
    }
    assert_eq!(log.offloaded_bytes(), total);
    assert!(log.size_bytes() < total, "only the (empty) active segment is local now");
    let sealed_files = std::fs::read_dir(dir.path().join("logs/7")).unwrap().count();
    assert_eq!(sealed_files, 1, "only the active segment file is left");
    let log2 = log.clone();
    let after = tokio::task::spawn_blocking(move || read_all(&log2, 0)).await.unwrap();
    assert!(after == before, "records read from the object store differ from the local ones");
    assert!(metrics.read_bytes.with_label_values(&["object"]).get() > 0);
    assert!(metrics.cache_misses.get() > 0);
    // A second pass over a small range is served by the block cache.
    let hits = metrics.cache_hits.get();
    let log2 = log.clone();
    tokio::task::spawn_blocking(move || {
        log2.read(3, 2, 1000).unwrap();
        log2.read(3, 2, 1000).unwrap();
    })
    .await
    .unwrap();
    assert!(metrics.cache_hits.get() > hits);

    // Restart with the local copies gone: the index (here: `remote`) brings the data back.
    s.shutdown().await;
    drop(s);
    let (s, _) = Storage::open_with_metrics(cfg(dir.path()), metrics.clone()).unwrap();
    s.attach_tier(tier(store.clone(), &metrics));
    let log = s.log(7).unwrap();
    log.attach_remote(remote.clone());
    assert_eq!((log.start_offset(), log.end_offset()), (0, 500));
    let again = tokio::task::spawn_blocking(move || read_all(&log, 0)).await.unwrap();
    assert!(again == before, "records read after restart differ");
    // Appends continue after the offloaded data, with fresh offsets.
    let ids = s.log(7).unwrap().append(vec![input(500)]).await.unwrap();
    assert_eq!(ids[0].0, 500);
    t.delete_objects(&remote.iter().map(|r| r.key.clone()).collect::<Vec<_>>()).await.unwrap();
    assert!(t.list_objects(prefix).await.unwrap().is_empty());
    s.shutdown().await;
}

/// A segment of ~12 MiB goes up in several parts.
async fn multipart(store: Arc<dyn ObjectStore>, prefix: &str) {
    let dir = tempfile::tempdir().unwrap();
    let metrics = StorageMetrics::new();
    let mut cfg = cfg(dir.path());
    cfg.segment_max_bytes = 64 << 20;
    let (s, _) = Storage::open_with_metrics(cfg, metrics.clone()).unwrap();
    let t = ObjectTier::new(
        store.clone(),
        TierConfig { multipart_threshold_bytes: 1 << 20, part_bytes: 5 << 20, ..TierConfig::default() },
        metrics.clone(),
    )
    .unwrap();
    s.attach_tier(t.clone());
    let log = s.log(3).unwrap();
    for i in 0..24u64 {
        let mut r = input(i);
        r.payload = Bytes::from(vec![(i % 251) as u8; 512 << 10]);
        log.append(vec![r]).await.unwrap();
    }
    let l = log.clone();
    tokio::task::spawn_blocking(move || l.seal_active()).await.unwrap().unwrap();
    let before = {
        let l = log.clone();
        tokio::task::spawn_blocking(move || read_all(&l, 0)).await.unwrap()
    };
    let remote = offload_all(&s, &t, prefix, 3).await;
    assert_eq!(remote.len(), 1);
    assert!(remote[0].size_bytes > 10 << 20);
    assert_eq!(metrics.offloaded_bytes.get(), remote[0].size_bytes);
    log.drop_local_copy(remote[0].base_offset).unwrap();
    let l = log.clone();
    let after = tokio::task::spawn_blocking(move || read_all(&l, 0)).await.unwrap();
    assert!(after == before);
    t.delete_objects(&[remote[0].key.clone()]).await.unwrap();
    s.shutdown().await;
}

/// Damaged objects are found by their checksums and never returned as data.
async fn corruption(store: Arc<dyn ObjectStore>, prefix: &str) {
    let dir = tempfile::tempdir().unwrap();
    let metrics = StorageMetrics::new();
    let (s, _) = Storage::open_with_metrics(cfg(dir.path()), metrics.clone()).unwrap();
    let t = tier(store.clone(), &metrics);
    s.attach_tier(t.clone());
    append_range(&s, 9, 0, 200, 4).await;
    let log = s.log(9).unwrap();
    let l = log.clone();
    tokio::task::spawn_blocking(move || l.seal_active()).await.unwrap().unwrap();
    let remote = offload_all(&s, &t, prefix, 9).await;
    for r in &remote {
        log.drop_local_copy(r.base_offset).unwrap();
    }
    // Flip one payload byte in the middle of the first segment's records.
    let first = &remote[0];
    let path = ObjectPath::from(first.key.as_str());
    let mut bytes = store.get(&path).await.unwrap().bytes().await.unwrap().to_vec();
    bytes[200] ^= 0x55;
    store.put(&path, Bytes::from(bytes).into()).await.unwrap();
    let l = log.clone();
    let res = tokio::task::spawn_blocking(move || l.read(0, 1000, 1 << 20)).await.unwrap();
    assert!(matches!(res, Err(StorageError::Corrupt { .. })), "flipped byte not detected: {:?}", res.map(|r| r.len()));
    assert_eq!(metrics.object_corrupt.get(), 1);
    // Truncated object: the second segment loses its last bytes.
    let second = &remote[1];
    let path = ObjectPath::from(second.key.as_str());
    let bytes = store.get(&path).await.unwrap().bytes().await.unwrap();
    store.put(&path, bytes.slice(..bytes.len() - 100).into()).await.unwrap();
    let l = log.clone();
    let from = second.base_offset;
    let res = tokio::task::spawn_blocking(move || l.read(from, 1000, 1 << 20)).await.unwrap();
    assert!(matches!(res, Err(StorageError::Corrupt { .. })), "truncation not detected: {:?}", res.map(|r| r.len()));
    assert_eq!(metrics.object_corrupt.get(), 2);
    // Undamaged segments still read.
    let l = log.clone();
    let from = remote[2].base_offset;
    let got = tokio::task::spawn_blocking(move || l.read(from, 1, 1 << 20)).await.unwrap().unwrap();
    assert_eq!(got[0].offset, from);
    t.delete_objects(&remote.iter().map(|r| r.key.clone()).collect::<Vec<_>>()).await.unwrap();
    s.shutdown().await;
}

/// Past the local disk budget appends fail with `Unavailable`; uploads make room again.
async fn budget(store: Arc<dyn ObjectStore>, prefix: &str) {
    let dir = tempfile::tempdir().unwrap();
    let metrics = StorageMetrics::new();
    let mut cfg = cfg(dir.path());
    cfg.local_disk_budget_bytes = 16 << 10;
    let (s, _) = Storage::open_with_metrics(cfg, metrics.clone()).unwrap();
    let t = tier(store, &metrics);
    s.attach_tier(t.clone());
    let log = s.log(4).unwrap();
    let mut i = 0;
    let err = loop {
        match log.append(vec![input(i)]).await {
            Ok(_) => i += 1,
            Err(e) => break e,
        }
        assert!(i < 10_000, "the budget never applied");
    };
    assert!(matches!(&err, StorageError::Unavailable(m) if m.contains("budget")), "{err}");
    let remote = offload_all(&s, &t, prefix, 4).await;
    assert!(s.local_pending_bytes() < 16 << 10);
    log.append(vec![input(i)]).await.expect("room again after the upload");
    t.delete_objects(&remote.iter().map(|r| r.key.clone()).collect::<Vec<_>>()).await.unwrap();
    s.shutdown().await;
}

/// Local copies of offloaded segments are a cache within the local disk budget: when the files
/// exceed it, the least recently read copies go first, and their records still read (from the
/// object store). Segments not yet uploaded are never evicted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_copies_are_evicted_least_recently_read_first_when_the_budget_needs_room() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = StorageMetrics::new();
    let mut cfg = cfg(dir.path());
    cfg.local_disk_budget_bytes = 20 << 10;
    let (s, _) = Storage::open_with_metrics(cfg, metrics.clone()).unwrap();
    let store = local_store(dir.path());
    let prefix = unique_prefix("eviction");
    // Appends before the tier is attached are not held to the budget: ~40 KiB of 4 KiB segments.
    append_range(&s, 5, 0, 600, 5).await;
    let log = s.log(5).unwrap();
    let l = log.clone();
    let before = tokio::task::spawn_blocking(move || {
        l.seal_active().unwrap();
        read_all(&l, 0)
    })
    .await
    .unwrap();
    let t = tier(store, &metrics);
    s.attach_tier(t.clone());
    let total = log.size_bytes();
    assert!(total > 30 << 10, "enough segments to exceed the budget: {total}");
    // Nothing is offloaded yet: nothing may be evicted, whatever the budget says.
    let s2 = s.clone();
    assert_eq!(tokio::task::spawn_blocking(move || s2.evict_local_copies()).await.unwrap().unwrap(), 0);
    assert_eq!(log.size_bytes(), total);

    let remote = offload_all(&s, &t, &prefix, 5).await;
    assert!(remote.len() > 6, "segments offloaded: {}", remote.len());
    // Read the oldest two segments: they become the most recently used local copies.
    let (first, second) = (remote[0].clone(), remote[1].clone());
    let l = log.clone();
    tokio::task::spawn_blocking(move || {
        l.read(second.base_offset, 1, 1 << 20).unwrap();
        l.read(first.base_offset, 1, 1 << 20).unwrap();
    })
    .await
    .unwrap();

    let s2 = s.clone();
    let freed = tokio::task::spawn_blocking(move || s2.evict_local_copies()).await.unwrap().unwrap();
    assert!(freed > 0);
    assert!(log.size_bytes() <= 20 << 10, "local files {} within the budget", log.size_bytes());
    assert_eq!(metrics.local_copies_evicted.get() as usize, log.segments().iter().filter(|s| !s.local).count());
    let local: Vec<bool> = log.segments().iter().filter(|s| s.offloaded).map(|s| s.local).collect();
    // The two segments just read stay; of the others, those never read since their upload go,
    // oldest upload first, so the newest ones are still local.
    assert!(local[0] && local[1], "recently read copies kept: {local:?}");
    let evicted = local.iter().filter(|l| !**l).count();
    assert!(evicted > 0 && local[2..2 + evicted].iter().all(|l| !l), "least recently used evicted: {local:?}");
    assert!(local[2 + evicted..].iter().all(|l| *l), "newer uploads kept: {local:?}");
    // Already within the budget: a second pass evicts nothing.
    let s2 = s.clone();
    assert_eq!(tokio::task::spawn_blocking(move || s2.evict_local_copies()).await.unwrap().unwrap(), 0);

    // Every record still reads, the evicted ones from the object store.
    let object_before = metrics.read_bytes.with_label_values(&["object"]).get();
    let l = log.clone();
    let after = tokio::task::spawn_blocking(move || read_all(&l, 0)).await.unwrap();
    assert!(after == before, "records differ after eviction");
    assert!(metrics.read_bytes.with_label_values(&["object"]).get() > object_before);
    s.shutdown().await;
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod local {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    super::$name(local_store(dir.path()), &unique_prefix(stringify!($name))).await;
                }
            )*
        }
        mod s3 {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(s3_store(), &unique_prefix(stringify!($name))).await;
                }
            )*
        }
    };
}

both_backends!(round_trip, multipart, corruption, budget);

/// A reader reaching the end of one offloaded segment finds the next one's footer and first
/// block fetched already: crossing into it costs no cache miss (no round trip on the read path).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequential_reader_finds_the_next_segment_prefetched() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = StorageMetrics::new();
    let (s, _) = Storage::open_with_metrics(cfg(dir.path()), metrics.clone()).unwrap();
    let t = tier(local_store(dir.path()), &metrics);
    s.attach_tier(t.clone());
    append_range(&s, 9, 0, 300, 5).await;
    let log = s.log(9).unwrap();
    let l = log.clone();
    tokio::task::spawn_blocking(move || l.seal_active()).await.unwrap().unwrap();
    let remote = offload_all(&s, &t, &unique_prefix("prefetch"), 9).await;
    assert!(remote.len() >= 3, "several segments: {}", remote.len());
    for r in &remote {
        log.drop_local_copy(r.base_offset).unwrap();
    }
    let (first, second) = (remote[0].clone(), remote[1].clone());
    // Read the first segment to its end, as a catch-up reader does.
    let l = log.clone();
    tokio::task::spawn_blocking(move || {
        let mut at = first.base_offset;
        while at < first.end_offset {
            let got = l.read(at, (first.end_offset - at) as usize, 1 << 20).unwrap();
            at = got.last().unwrap().offset + 1;
        }
    })
    .await
    .unwrap();
    // Let the prefetches land (they run on the tier's own runtime).
    let mut fetched = metrics.object_get_bytes.get();
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let now = metrics.object_get_bytes.get();
        if now == fetched {
            break;
        }
        fetched = now;
    }
    let (misses, hits) = (metrics.cache_misses.get(), metrics.cache_hits.get());
    let l = log.clone();
    let got = tokio::task::spawn_blocking(move || l.read(second.base_offset, 1, 1 << 20).unwrap()).await.unwrap();
    assert_eq!(got[0].offset, remote[1].base_offset);
    assert_eq!(metrics.cache_misses.get(), misses, "opening the next segment missed the cache");
    assert!(metrics.cache_hits.get() > hits);
    s.shutdown().await;
}
