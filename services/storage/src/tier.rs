//! The object-store tier: uploads sealed segment files as they are (they are self-describing:
//! footer, indexes and a checksum on every record), reads them back with ranged GETs through a
//! byte-budgeted LRU block cache with asynchronous read-ahead (several GETs in flight ahead of a
//! sequential reader), deletes them, and lists a prefix for garbage collection.
//!
//! Storage does not know where a segment's object lives in the bucket nor whether it is in the
//! segment index: the caller (the broker) chooses the key, commits the index row after
//! [`ObjectTier::upload`] returns, and hands the partition its [`RemoteSegment`]s
//! ([`crate::PartitionLog::attach_remote`], [`crate::PartitionLog::mark_offloaded`]).
//!
//! Reads are synchronous (a partition read runs on a blocking thread): object requests run on
//! the tier's own small runtime (`magnetar-object-io`; uploads run on `magnetar-upload`, at a lower
//! CPU priority) and the reading thread waits for them, so
//! a read works from any blocking context whatever runtime (if any) the caller belongs to.

use crate::metrics::StorageMetrics;
use crate::segment::{self, ReadAt};
use crate::{Result, StorageError, now_ms};
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Tuning of the object tier.
#[derive(Debug, Clone)]
pub struct TierConfig {
    /// Segments larger than this are uploaded in parts (multipart upload).
    pub multipart_threshold_bytes: u64,
    /// Size of one multipart part (S3 needs at least 5 MiB for all but the last).
    pub part_bytes: usize,
    /// Unit of ranged GETs and of the block cache (4 MiB: larger than Pulsar's 1 MiB
    /// `readBufferSizeInBytes`, which measured at half the catch-up throughput).
    pub block_bytes: u64,
    /// Budget of the block cache, in bytes (least recently used blocks go first).
    pub cache_bytes: u64,
    /// Blocks fetched ahead of a sequential reader, each by its own ranged GET, all in flight
    /// together while the reader decodes (read-ahead of all readers stays under half of
    /// `cache_bytes`).
    pub read_ahead_blocks: u64,
}

impl Default for TierConfig {
    fn default() -> Self {
        TierConfig {
            multipart_threshold_bytes: 8 << 20,
            part_bytes: 8 << 20,
            block_bytes: 4 << 20,
            cache_bytes: 256 << 20,
            read_ahead_blocks: 8,
        }
    }
}

/// A segment held in the object store, as the segment index records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSegment {
    /// The object's key (opaque to storage).
    pub key: String,
    pub base_offset: u64,
    /// Exclusive.
    pub end_offset: u64,
    pub size_bytes: u64,
    pub first_publish_time: i64,
    pub last_publish_time: i64,
    /// When the upload completed (the index row's creation time).
    pub uploaded_at_ms: i64,
}

/// One object listed under a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub key: String,
    pub size: u64,
    pub last_modified_ms: i64,
}

pub struct ObjectTier {
    store: Arc<dyn ObjectStore>,
    /// The same bucket, never paced: writes an acknowledgement waits on (`put_urgent_object`).
    urgent: Arc<dyn ObjectStore>,
    config: TierConfig,
    /// Object reads (read-ahead, block fetches for catch-up readers).
    io: IoRuntime,
    /// Uploads, at a lower CPU priority: they are never urgent, the publish path always is.
    uploads: IoRuntime,
    cache: Arc<Mutex<BlockCache>>,
    /// Block fetches running on the i/o runtime; readers needing one of them wait for it.
    inflight: Arc<Mutex<HashMap<BlockKey, Arc<Pending>>>>,
    metrics: StorageMetrics,
}

type BlockKey = (Arc<str>, u64);

impl ObjectTier {
    pub fn new(store: Arc<dyn ObjectStore>, config: TierConfig, metrics: StorageMetrics) -> Result<Arc<ObjectTier>> {
        Self::with_unpaced(Arc::clone(&store), store, config, metrics)
    }

    /// [`ObjectTier::new`] with a client of the same bucket that never paces its uploads, for
    /// the writes acknowledgements wait on (`object::PacedObjectStore::unpaced`).
    pub fn with_unpaced(
        store: Arc<dyn ObjectStore>,
        unpaced: Arc<dyn ObjectStore>,
        config: TierConfig,
        metrics: StorageMetrics,
    ) -> Result<Arc<ObjectTier>> {
        if config.part_bytes < 5 << 20 {
            return Err(StorageError::InvalidConfig("object part size must be at least 5 MiB".into()));
        }
        if config.block_bytes == 0 {
            return Err(StorageError::InvalidConfig("object read block size must be positive".into()));
        }
        let cache = BlockCache::new(config.cache_bytes);
        Ok(Arc::new(ObjectTier {
            store,
            urgent: unpaced,
            config,
            io: IoRuntime::start("magnetar-object-io", 2, false)?,
            uploads: IoRuntime::start("magnetar-upload", 1, true)?,
            cache: Arc::new(Mutex::new(cache)),
            inflight: Arc::default(),
            metrics,
        }))
    }

    pub(crate) fn metrics(&self) -> &StorageMetrics {
        &self.metrics
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    pub fn config(&self) -> &TierConfig {
        &self.config
    }

    /// Uploads the sealed segment `base` of `log` under `key`; the object is complete (visible
    /// under `key`) when this returns `Ok`, never before. A failed multipart upload is aborted.
    pub async fn upload(&self, log: &crate::PartitionLog, base: u64, key: &str) -> Result<RemoteSegment> {
        let (path, meta) = log.sealed_file(base)?;
        let started = Instant::now();
        let in_progress = GaugeGuard::inc(&self.metrics.uploads_in_progress);
        // On the tier's low-priority runtime: the upload's HTTP work never competes on equal
        // terms with the publish path's threads.
        let (store, config, key_owned) = (self.store.clone(), self.config.clone(), key.to_string());
        let res = self
            .uploads
            .handle
            .spawn(async move { upload_file(&store, &config, &path, meta.size, &key_owned).await })
            .await
            .unwrap_or_else(|e| Err(StorageError::Unavailable(format!("upload task failed: {e}"))));
        drop(in_progress);
        match res {
            Ok(()) => {
                self.metrics.offload_seconds.observe(started.elapsed().as_secs_f64());
                self.metrics.offloaded_bytes.inc_by(meta.size);
                self.metrics.offloaded_segments.inc();
                Ok(RemoteSegment {
                    key: key.to_string(),
                    base_offset: meta.base,
                    end_offset: meta.end,
                    size_bytes: meta.size,
                    first_publish_time: meta.first_time,
                    last_publish_time: meta.max_time,
                    uploaded_at_ms: now_ms(),
                })
            }
            Err(e) => {
                self.metrics.offload_failures.inc();
                Err(e)
            }
        }
    }

    /// Writes a whole object (small ones: one PUT, on the upload runtime); complete under `key`
    /// when this returns `Ok`, never before.
    pub async fn put_object(&self, key: &str, data: Bytes) -> Result<()> {
        self.put_on(&self.uploads, &self.store, key, data).await
    }

    /// Writes a whole object that acknowledgements wait for (a log object of object-store
    /// durability): on the object i/o runtime, at normal priority, not behind segment uploads
    /// on the low-priority upload thread, and never paced (a paced 1 MiB object took 50 ms
    /// instead of 10: docs/benchmarks.md, run 11).
    pub async fn put_urgent_object(&self, key: &str, data: Bytes) -> Result<()> {
        self.put_on(&self.io, &self.urgent, key, data).await
    }

    async fn put_on(&self, runtime: &IoRuntime, store: &Arc<dyn ObjectStore>, key: &str, data: Bytes) -> Result<()> {
        let (store, key_owned) = (store.clone(), key.to_string());
        runtime
            .handle
            .spawn(async move { store.put(&ObjectPath::from(key_owned.as_str()), PutPayload::from(data)).await })
            .await
            .map_err(|e| StorageError::Unavailable(format!("object write task failed: {e}")))?
            .map_err(|e| unavailable(key, "put", e))?;
        Ok(())
    }

    /// Reads a whole object (outside the block cache: the caller keeps what it needs).
    pub async fn get_object(&self, key: &str) -> Result<Bytes> {
        let (store, key_owned) = (self.store.clone(), key.to_string());
        self.io
            .handle
            .spawn(async move { store.get(&ObjectPath::from(key_owned.as_str())).await?.bytes().await })
            .await
            .map_err(|e| StorageError::Unavailable(format!("object read task failed: {e}")))?
            .map_err(|e| unavailable(key, "get", e))
    }

    /// Deletes objects; a key already gone is not an error.
    pub async fn delete_objects(&self, keys: &[String]) -> Result<()> {
        for key in keys {
            self.cache.lock().remove_object(key);
            match self.store.delete(&ObjectPath::from(key.as_str())).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(unavailable(key, "delete", e)),
            }
        }
        Ok(())
    }

    /// Every object under `prefix` (a "directory": `a/b` lists `a/b/...`, not `a/bc`).
    pub async fn list_objects(&self, prefix: &str) -> Result<Vec<ListedObject>> {
        let p = ObjectPath::from(prefix);
        let listed: Vec<object_store::ObjectMeta> =
            self.store.list(Some(&p)).try_collect().await.map_err(|e| unavailable(prefix, "list", e))?;
        Ok(listed
            .into_iter()
            .map(|m| ListedObject {
                key: m.location.to_string(),
                size: m.size,
                last_modified_ms: m.last_modified.timestamp_millis(),
            })
            .collect())
    }

    /// Reads records of a remote segment (see `segment::read_records`). Blocking.
    pub(crate) fn read(
        &self,
        seg: &RemoteSegment,
        next: Option<&RemoteSegment>,
        budget: &mut segment::ReadBudget,
        out: &mut Vec<crate::Record>,
    ) -> Result<()> {
        let res = (|| {
            let (obj, sealed) = self.open(seg)?;
            let idx = sealed.load_index(&obj, &obj.display)?;
            let pos = segment::index_lookup(&idx, budget.from).map_or(segment::HEADER_LEN, |e| e.position);
            segment::read_records(&obj, &obj.display, pos, sealed.records_end, seg.base_offset, budget, out)?;
            // Read-ahead stops at the object's end; a reader this close to it continues in the
            // next segment, whose footer and first blocks are fetched now rather than when the
            // reader gets there (two round trips per segment otherwise).
            if let Some(next) = next {
                let at = segment::index_lookup(&idx, budget.from).map_or(pos, |e| e.position);
                let ahead = self.config.read_ahead_blocks * self.config.block_bytes;
                if at + ahead >= sealed.records_end {
                    let left = (sealed.records_end.saturating_sub(at)).div_ceil(self.config.block_bytes);
                    self.prefetch(next, self.config.read_ahead_blocks.saturating_sub(left).max(1));
                }
            }
            Ok(())
        })();
        self.classify(seg, res)
    }

    /// Starts fetching the last block (footer and indexes) and the first `blocks` blocks of
    /// `seg`, unless cached or coming already; never waits.
    fn prefetch(&self, seg: &RemoteSegment, blocks: u64) {
        let key: Arc<str> = Arc::from(seg.key.as_str());
        let bs = self.config.block_bytes;
        let n = seg.size_bytes.div_ceil(bs);
        let last = n.saturating_sub(1);
        let wanted = std::iter::once(last).chain((0..blocks.min(n)).filter(|b| *b != last));
        // Lock order as in `blocks`: cache, then in-flight fetches.
        let cache = self.cache.lock();
        let mut inflight = self.inflight.lock();
        for b in wanted {
            if !self.should_fetch_ahead(&cache, &inflight, &key, b) {
                continue;
            }
            let pending = self.start_fetch(&key, seg.size_bytes, b);
            inflight.insert((key.clone(), b), pending);
        }
    }

    /// First offset with publish time >= `t` in a remote segment. Blocking.
    pub(crate) fn find_time(&self, seg: &RemoteSegment, t: i64) -> Result<Option<u64>> {
        let res = (|| {
            let (obj, sealed) = self.open(seg)?;
            let idx = sealed.load_index(&obj, &obj.display)?;
            let pos = segment::index_lookup_time(&idx, t).map_or(segment::HEADER_LEN, |e| e.position);
            segment::find_time(&obj, &obj.display, pos, sealed.records_end, t)
        })();
        self.classify(seg, res)
    }

    fn open(&self, seg: &RemoteSegment) -> Result<(RemoteObject<'_>, segment::SealedSegment)> {
        let obj = RemoteObject {
            tier: self,
            key: Arc::from(seg.key.as_str()),
            size: seg.size_bytes,
            display: PathBuf::from(format!("object {}", seg.key)),
        };
        if seg.size_bytes < segment::HEADER_LEN + segment::FOOTER_LEN {
            return Err(segment::corrupt(&obj.display, 0, "object too small to be a sealed segment"));
        }
        let mut footer = vec![0u8; segment::FOOTER_LEN as usize];
        let at = seg.size_bytes - segment::FOOTER_LEN;
        obj.pread_exact(&mut footer, at).map_err(|e| StorageError::io(&obj.display, e))?;
        let sealed = segment::decode_footer(&footer, seg.size_bytes, seg.base_offset)
            .map_err(|d| segment::corrupt(&obj.display, at, d))?;
        if sealed.meta.end != seg.end_offset {
            return Err(segment::corrupt(
                &obj.display,
                at,
                format!("footer ends at offset {}, the index says {}", sealed.meta.end, seg.end_offset),
            ));
        }
        Ok((obj, sealed))
    }

    /// Turns i/o errors of the remote reader into `Corrupt` (bad or missing bytes) or
    /// `Unavailable` (the store cannot be reached); reports corruption.
    fn classify<T>(&self, seg: &RemoteSegment, res: Result<T>) -> Result<T> {
        let err = match res {
            Ok(v) => return Ok(v),
            Err(StorageError::Io { path, source }) => match source.kind() {
                io::ErrorKind::InvalidData | io::ErrorKind::NotFound | io::ErrorKind::UnexpectedEof => {
                    StorageError::Corrupt { file: path, position: 0, detail: source.to_string() }
                }
                _ => StorageError::Unavailable(format!("object store read of {} failed: {source}", seg.key)),
            },
            Err(e) => e,
        };
        if let StorageError::Corrupt { .. } = &err {
            self.metrics.object_corrupt.inc();
            self.cache.lock().remove_object(&seg.key);
            tracing::error!(key = %seg.key, error = %err, "corrupt segment object in the object store");
        }
        Err(err)
    }

    /// Blocks `first..=last` of an object, from the cache, from a fetch already running, or
    /// fetched now. Each call also starts fetches of the next `read_ahead_blocks` blocks (one
    /// ranged GET each, all in flight together) that are neither cached nor being fetched, so a
    /// sequential reader finds its next blocks arriving while it decodes the current ones.
    fn blocks(&self, key: &Arc<str>, size: u64, first: u64, last: u64) -> io::Result<Vec<Bytes>> {
        let nblocks = size.div_ceil(self.config.block_bytes);
        let ahead_end = (last + 1 + self.config.read_ahead_blocks).min(nblocks).max(last + 1);
        let mut slots = Vec::with_capacity((last - first + 1) as usize);
        {
            // Lock order: cache, then in-flight fetches (fetch tasks take them one at a time).
            let mut cache = self.cache.lock();
            let mut inflight = self.inflight.lock();
            for b in first..ahead_end {
                let needed = b <= last;
                if needed {
                    if let Some(bytes) = cache.get(key, b) {
                        self.metrics.cache_hits.inc();
                        slots.push(Slot::Ready(bytes));
                        continue;
                    }
                    self.metrics.cache_misses.inc();
                } else if !self.should_fetch_ahead(&cache, &inflight, key, b) {
                    continue;
                }
                let pending =
                    inflight.entry((key.clone(), b)).or_insert_with(|| self.start_fetch(key, size, b)).clone();
                if needed {
                    slots.push(Slot::Wait(pending));
                }
            }
        }
        slots
            .into_iter()
            .map(|s| match s {
                Slot::Ready(bytes) => Ok(bytes),
                Slot::Wait(p) => p.wait(),
            })
            .collect()
    }

    /// False when block `b` is cached, already coming, or when read-ahead of all readers together
    /// already holds half the cache budget in flight (memory stays bounded).
    fn should_fetch_ahead(
        &self,
        cache: &BlockCache,
        inflight: &HashMap<BlockKey, Arc<Pending>>,
        key: &Arc<str>,
        b: u64,
    ) -> bool {
        !(cache.contains(key, b)
            || inflight.contains_key(&(key.clone(), b))
            || inflight.len() as u64 * self.config.block_bytes >= self.config.cache_bytes / 2)
    }

    /// Fetches block `b` on the i/o runtime: into the cache, then to whoever waits for it.
    fn start_fetch(&self, key: &Arc<str>, size: u64, b: u64) -> Arc<Pending> {
        let bs = self.config.block_bytes;
        let range = b * bs..((b + 1) * bs).min(size);
        let pending = Arc::new(Pending::default());
        let done = Completer(pending.clone());
        let (store, cache, inflight) = (self.store.clone(), self.cache.clone(), self.inflight.clone());
        let (key, metrics) = (key.clone(), self.metrics.clone());
        self.io.handle.spawn(async move {
            let res = fetch_range(store.as_ref(), &key, size, range).await;
            if let Ok(bytes) = &res {
                metrics.object_get_bytes.inc_by(bytes.len() as u64);
                cache.lock().insert(&key, b, bytes.clone());
            }
            inflight.lock().remove(&(key, b));
            done.complete(res);
        });
        pending
    }
}

/// One ranged GET, with a wrong length or a failure past the object's end reported as
/// `InvalidData` (a truncated object) and a missing object as `NotFound`.
async fn fetch_range(store: &dyn ObjectStore, key: &str, size: u64, range: std::ops::Range<u64>) -> io::Result<Bytes> {
    let location = ObjectPath::from(key);
    let want = range.end - range.start;
    match store.get_range(&location, range).await {
        Ok(got) if got.len() as u64 == want => Ok(got),
        Ok(got) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("ranged read returned {} bytes instead of {want}: object truncated", got.len()),
        )),
        Err(e @ object_store::Error::NotFound { .. }) => Err(io::Error::new(io::ErrorKind::NotFound, e)),
        // A range past the end fails differently per backend: tell truncation (corruption)
        // from an unreachable store by the object's actual size.
        Err(e) => match store.head(&location).await {
            Ok(meta) if meta.size != size => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("object is {} bytes, the segment index says {size}", meta.size),
            )),
            _ => Err(io::Error::other(e)),
        },
    }
}

enum Slot {
    Ready(Bytes),
    Wait(Arc<Pending>),
}

/// The result of one block fetch, waited for by blocking readers.
#[derive(Default)]
struct Pending {
    result: Mutex<Option<Result<Bytes, (io::ErrorKind, String)>>>,
    ready: parking_lot::Condvar,
}

impl Pending {
    fn wait(&self) -> io::Result<Bytes> {
        let mut slot = self.result.lock();
        loop {
            match slot.as_ref() {
                Some(Ok(bytes)) => return Ok(bytes.clone()),
                Some(Err((kind, msg))) => return Err(io::Error::new(*kind, msg.clone())),
                None => self.ready.wait(&mut slot),
            }
        }
    }
}

/// Completes a [`Pending`]; if the fetch task ends without completing it (runtime stopped,
/// panic), waiters get an error instead of waiting forever.
struct Completer(Arc<Pending>);

impl Completer {
    fn complete(self, res: io::Result<Bytes>) {
        *self.0.result.lock() = Some(res.map_err(|e| (e.kind(), e.to_string())));
        self.0.ready.notify_all();
    }
}

impl Drop for Completer {
    fn drop(&mut self) {
        let mut slot = self.0.result.lock();
        if slot.is_none() {
            *slot = Some(Err((io::ErrorKind::Other, "object fetch task stopped".into())));
            self.0.ready.notify_all();
        }
    }
}

/// Counts one running operation in a gauge, also when its future is dropped half-way.
struct GaugeGuard<'a>(&'a prometheus::IntGauge);

impl<'a> GaugeGuard<'a> {
    fn inc(g: &'a prometheus::IntGauge) -> Self {
        g.inc();
        GaugeGuard(g)
    }
}

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

fn unavailable(key: &str, what: &str, e: object_store::Error) -> StorageError {
    StorageError::Unavailable(format!("object store {what} of {key} failed: {e}"))
}

/// An object read through the block cache.
struct RemoteObject<'a> {
    tier: &'a ObjectTier,
    key: Arc<str>,
    size: u64,
    /// How the object is named in errors.
    display: PathBuf,
}

impl ReadAt for RemoteObject<'_> {
    fn pread_exact(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let end = pos + buf.len() as u64;
        if end > self.size {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end of the object"));
        }
        let bs = self.tier.config.block_bytes;
        let (first, last) = (pos / bs, (end - 1) / bs);
        let blocks = self.tier.blocks(&self.key, self.size, first, last)?;
        let mut filled = 0usize;
        for (i, block) in blocks.iter().enumerate() {
            let block_start = (first + i as u64) * bs;
            let from = (pos + filled as u64 - block_start) as usize;
            let n = (block.len() - from).min(buf.len() - filled);
            buf[filled..filled + n].copy_from_slice(&block[from..from + n]);
            filled += n;
        }
        debug_assert_eq!(filled, buf.len());
        Ok(())
    }
}

/// LRU of object blocks under a byte budget.
struct BlockCache {
    budget: u64,
    used: u64,
    tick: u64,
    map: HashMap<(Arc<str>, u64), (Bytes, u64)>,
    order: BTreeMap<u64, (Arc<str>, u64)>,
}

impl BlockCache {
    fn new(budget: u64) -> Self {
        BlockCache { budget, used: 0, tick: 0, map: HashMap::new(), order: BTreeMap::new() }
    }

    fn contains(&self, key: &Arc<str>, block: u64) -> bool {
        self.map.contains_key(&(key.clone(), block))
    }

    fn get(&mut self, key: &Arc<str>, block: u64) -> Option<Bytes> {
        self.tick += 1;
        let tick = self.tick;
        let entry = self.map.get_mut(&(key.clone(), block))?;
        let old = std::mem::replace(&mut entry.1, tick);
        let bytes = entry.0.clone();
        if let Some(k) = self.order.remove(&old) {
            self.order.insert(tick, k);
        }
        Some(bytes)
    }

    fn insert(&mut self, key: &Arc<str>, block: u64, bytes: Bytes) {
        if bytes.len() as u64 > self.budget {
            return;
        }
        self.tick += 1;
        let len = bytes.len() as u64;
        if let Some((old, t)) = self.map.insert((key.clone(), block), (bytes, self.tick)) {
            self.used -= old.len() as u64;
            self.order.remove(&t);
        }
        self.order.insert(self.tick, (key.clone(), block));
        self.used += len;
        while self.used > self.budget {
            let Some((_, k)) = self.order.pop_first() else { break };
            if let Some((b, _)) = self.map.remove(&k) {
                self.used -= b.len() as u64;
            }
        }
    }

    fn remove_object(&mut self, key: &str) {
        let victims: Vec<(Arc<str>, u64)> = self.map.keys().filter(|(k, _)| k.as_ref() == key).cloned().collect();
        for v in victims {
            if let Some((b, t)) = self.map.remove(&v) {
                self.used -= b.len() as u64;
                self.order.remove(&t);
            }
        }
    }
}

/// Uploads a sealed segment file: one PUT up to the multipart threshold, parts above it.
async fn upload_file(
    store: &Arc<dyn ObjectStore>,
    config: &TierConfig,
    path: &std::path::Path,
    size: u64,
    key: &str,
) -> Result<()> {
    let file = Arc::new(File::open(path).map_err(|e| StorageError::io(path, e))?);
    let location = ObjectPath::from(key);
    let chunk = |from: u64, len: usize| {
        let (file, path) = (file.clone(), path.to_path_buf());
        async move {
            tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; len];
                file.read_exact_at(&mut buf, from).map_err(|e| StorageError::io(&path, e))?;
                Ok::<_, StorageError>(Bytes::from(buf))
            })
            .await
            .map_err(|e| StorageError::Unavailable(format!("segment read task failed: {e}")))?
        }
    };
    if size <= config.multipart_threshold_bytes {
        let body = chunk(0, size as usize).await?;
        store.put(&location, PutPayload::from(body)).await.map_err(|e| unavailable(key, "upload", e))?;
        return Ok(());
    }
    let mut upload = store.put_multipart(&location).await.map_err(|e| unavailable(key, "upload", e))?;
    let mut at = 0u64;
    let part = config.part_bytes as u64;
    let res: Result<()> = async {
        while at < size {
            let len = part.min(size - at);
            let body = chunk(at, len as usize).await?;
            upload.put_part(PutPayload::from(body)).await.map_err(|e| unavailable(key, "upload part", e))?;
            at += len;
        }
        Ok(())
    }
    .await;
    match res {
        Ok(()) => {
            upload.complete().await.map_err(|e| unavailable(key, "complete upload", e))?;
            Ok(())
        }
        Err(e) => {
            if let Err(abort) = upload.abort().await {
                tracing::warn!(key, error = %abort, "aborting a failed multipart upload failed");
            }
            Err(e)
        }
    }
}

/// A small runtime of its own for object reads, driven by a dedicated thread and stopped when
/// the tier is dropped (dropping a runtime inside another runtime's task would panic).
struct IoRuntime {
    handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl IoRuntime {
    fn start(name: &str, threads: usize, background: bool) -> Result<IoRuntime> {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(threads).thread_name(name).enable_all();
        if background {
            builder.on_thread_start(lower_thread_priority);
        }
        let rt = builder
            .build()
            .map_err(|e| StorageError::Unavailable(format!("cannot start the object i/o runtime: {e}")))?;
        let handle = rt.handle().clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(format!("{name}-rt"))
            .spawn(move || {
                rt.block_on(async {
                    let _ = rx.await;
                });
                rt.shutdown_background();
            })
            .map_err(|e| StorageError::Unavailable(format!("cannot start the object i/o thread: {e}")))?;
        Ok(IoRuntime { handle, stop: Some(tx) })
    }
}

/// Nice value of the upload thread: uploads are background work that yields the CPU to the
/// publish and delivery paths when both want it (reads stay at normal priority: a catch-up
/// reader waits for them).
const IO_NICE: i32 = 10;

/// Lowers the calling thread's CPU priority (Linux: the nice value is per thread).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)] // two syscalls std has no wrapper for
fn lower_thread_priority() {
    // SAFETY: plain syscalls on the calling thread's own id; no memory is passed.
    let rc = unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, IO_NICE)
    };
    if rc != 0 {
        tracing::debug!(error = %io::Error::last_os_error(), "cannot lower the upload thread's priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_thread_priority() {}

impl Drop for IoRuntime {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_cache_evicts_least_recently_used_within_budget() {
        let mut c = BlockCache::new(30);
        let k: Arc<str> = Arc::from("a");
        for b in 0..3 {
            c.insert(&k, b, Bytes::from(vec![0u8; 10]));
        }
        assert!(c.get(&k, 0).is_some()); // 0 is now the most recent
        c.insert(&k, 3, Bytes::from(vec![0u8; 10]));
        assert!(c.contains(&k, 0) && !c.contains(&k, 1) && c.contains(&k, 2) && c.contains(&k, 3));
        assert_eq!(c.used, 30);
        c.remove_object("a");
        assert_eq!((c.used, c.map.len(), c.order.len()), (0, 0, 0));
    }
}
