//! Test support: real storage in a temporary directory (optionally with an object tier on the
//! local filesystem), for the unit tests of the subscription engine and the controllers.

use bytes::Bytes;
use magnetar_storage::object::{LocalConfig, ObjectStoreConfig, build_object_store};
use magnetar_storage::{ObjectTier, PartitionLog, RecordInput, StorageConfig, StorageMetrics, TierConfig};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub struct Storage {
    pub dir: tempfile::TempDir,
    pub storage: Arc<magnetar_storage::Storage>,
    tier: Option<Arc<ObjectTier>>,
}

pub fn input(i: u64) -> RecordInput {
    RecordInput {
        publish_time: 1_000 + i as i64,
        event_time: None,
        key: Some(format!("key-{i}")),
        properties: vec![],
        payload: Bytes::from(format!("payload-{i}")),
    }
}

/// A message to deliver at `at` (epoch ms), as a publish with `deliverAt` stores it.
pub fn delayed_input(i: u64, at: i64) -> RecordInput {
    RecordInput { properties: vec![(crate::subscription::DELIVER_AT_PROPERTY.into(), at.to_string())], ..input(i) }
}

impl Storage {
    /// Without an in-memory tail, so reads go to the segments.
    fn config(dir: &std::path::Path) -> StorageConfig {
        StorageConfig {
            data_dir: dir.to_path_buf(),
            segment_max_bytes: 4 << 10,
            segment_max_age: Duration::from_secs(3600),
            read_cache_bytes: 0,
            ..StorageConfig::default()
        }
    }

    pub fn open() -> Storage {
        let dir = tempfile::tempdir().expect("temp dir");
        let (storage, _) = magnetar_storage::Storage::open(Self::config(dir.path())).expect("open storage");
        Storage { dir, storage, tier: None }
    }

    /// With an object tier on the local filesystem under `objects/`.
    pub fn with_object_tier() -> Storage {
        let mut kit = Self::open();
        let store = build_object_store(&ObjectStoreConfig::Local(LocalConfig { root: kit.objects_dir() }))
            .expect("local object store");
        let cfg = TierConfig { block_bytes: 4096, cache_bytes: 0, read_ahead_blocks: 0, ..TierConfig::default() };
        let tier = ObjectTier::new(store, cfg, StorageMetrics::new()).expect("tier");
        kit.storage.attach_tier(Arc::clone(&tier));
        kit.tier = Some(tier);
        kit
    }

    fn objects_dir(&self) -> PathBuf {
        self.dir.path().join("objects")
    }

    /// Log `log_id` with `n` records.
    pub async fn log_with(&self, log_id: u64, n: u64) -> Arc<PartitionLog> {
        let log = self.storage.log(log_id).expect("log");
        self.append(&log, n).await;
        log
    }

    pub async fn append(&self, log: &PartitionLog, n: u64) {
        let from = log.end_offset();
        log.append((from..from + n).map(input).collect()).await.expect("append");
    }

    /// Seals the active segment, uploads every sealed one and drops the local copies, so reads
    /// go to the object store.
    pub async fn offload_everything(&self, log: &Arc<PartitionLog>) {
        let tier = self.tier.as_ref().expect("an object tier");
        let l = Arc::clone(log);
        tokio::task::spawn_blocking(move || l.seal_active()).await.expect("seal task").expect("seal");
        for seg in log.segments().into_iter().filter(|s| s.sealed && !s.offloaded) {
            let key = format!("test/{}/{:020}.seg", log.log_id(), seg.base_offset);
            let remote = tier.upload(log, seg.base_offset, &key).await.expect("upload");
            log.mark_offloaded(remote);
            log.drop_local_copy(seg.base_offset).expect("drop local copy");
        }
    }

    /// Makes every object unreadable (as during an outage); returns where they went.
    pub fn break_object_store(&self) -> PathBuf {
        let aside = self.dir.path().join("objects-away");
        std::fs::rename(self.objects_dir(), &aside).expect("move objects away");
        aside
    }

    pub fn repair_object_store(&self, aside: PathBuf) {
        std::fs::rename(aside, self.objects_dir()).expect("move objects back");
    }
}
