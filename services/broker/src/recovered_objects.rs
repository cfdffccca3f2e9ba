//! Log objects fetched by the loads that recover a failed broker's tail from the bucket
//! (object-store durability). One object holds the records of every partition of the broker
//! that wrote it, so without sharing, the loads of one failover would each GET every object of
//! the tail: with 16 partitions, 16 GETs of each. Kept here for a short while, the loads share
//! one GET per object (loads running at once wait for the same one).

use magnetar_storage::Record;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// A log object's records, by log id.
pub(crate) type DecodedObject = Vec<(u64, Vec<Record>)>;

/// How long a fetched object is kept: the loads of one failover come within seconds.
const KEEP: Duration = Duration::from_secs(30);

/// Bytes of fetched objects kept at most (objects are up to 8 MiB by default).
const BUDGET_BYTES: usize = 64 << 20;

struct Entry {
    key: String,
    object: Arc<OnceCell<Arc<DecodedObject>>>,
    added: Instant,
    /// Its size once fetched (0 before).
    bytes: usize,
}

/// Recently fetched log objects, oldest first.
#[derive(Default)]
pub(crate) struct RecoveredObjects {
    entries: Mutex<VecDeque<Entry>>,
}

impl RecoveredObjects {
    /// The decoded object `key`, fetched and decoded with `fetch` (which also gives its size in
    /// bytes) unless a load fetched it lately or is fetching it now. A failed fetch is not
    /// kept: the next load tries again.
    pub(crate) async fn get<F, Fut>(&self, key: &str, fetch: F) -> magnetar_storage::Result<Arc<DecodedObject>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = magnetar_storage::Result<(DecodedObject, usize)>>,
    {
        let cell = self.cell(key);
        let mut size = 0;
        let object = cell
            .get_or_try_init(|| async {
                let (object, bytes) = fetch().await?;
                size = bytes;
                Ok::<_, magnetar_storage::StorageError>(Arc::new(object))
            })
            .await?;
        if size > 0 {
            self.fetched(key, size);
        }
        Ok(Arc::clone(object))
    }

    /// The entry of `key`, added if missing, after dropping the entries kept too long.
    fn cell(&self, key: &str) -> Arc<OnceCell<Arc<DecodedObject>>> {
        let mut entries = self.entries.lock();
        let now = Instant::now();
        while entries.front().is_some_and(|e| now.duration_since(e.added) > KEEP) {
            entries.pop_front();
        }
        if let Some(e) = entries.iter().find(|e| e.key == key) {
            return Arc::clone(&e.object);
        }
        let object = Arc::new(OnceCell::new());
        entries.push_back(Entry { key: key.to_string(), object: Arc::clone(&object), added: now, bytes: 0 });
        object
    }

    /// Records the size of `key`, fetched now, and drops the oldest objects beyond the budget.
    fn fetched(&self, key: &str, bytes: usize) {
        let mut entries = self.entries.lock();
        if let Some(e) = entries.iter_mut().find(|e| e.key == key) {
            e.bytes = bytes;
        }
        let mut total: usize = entries.iter().map(|e| e.bytes).sum();
        while total > BUDGET_BYTES && entries.len() > 1 {
            let dropped = entries.pop_front().expect("more than one");
            total -= dropped.bytes;
        }
    }

    #[cfg(test)]
    fn kept(&self) -> usize {
        self.entries.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn object(log_id: u64) -> (DecodedObject, usize) {
        (vec![(log_id, Vec::new())], 1 << 20)
    }

    #[tokio::test]
    async fn loads_at_once_share_one_fetch_and_a_failed_one_is_tried_again() {
        let cache = Arc::new(RecoveredObjects::default());
        let fetches = Arc::new(AtomicUsize::new(0));
        let loads = (0..8).map(|_| {
            let (cache, fetches) = (Arc::clone(&cache), Arc::clone(&fetches));
            async move {
                cache
                    .get("k", || async move {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok(object(7))
                    })
                    .await
            }
        });
        for got in futures::future::join_all(loads).await {
            assert_eq!(got.unwrap()[0].0, 7);
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);

        let failed =
            cache.get("bad", || async { Err(magnetar_storage::StorageError::Unavailable("down".into())) }).await;
        assert!(failed.is_err());
        let again = cache.get("bad", || async { Ok(object(9)) }).await.unwrap();
        assert_eq!(again[0].0, 9);
        assert_eq!(cache.kept(), 2);
    }
}
