//! The one cache of tenants and namespace policies that the hot path reads: authorization of
//! produce/consume/lookup, and the broker's policy enforcement (TTL, backlog quotas, retention,
//! offload). Administration reads fresh.
//!
//! Contract for writers: change the store first, then call `invalidate_*` once the change has
//! committed. Invalidating before the write would let a concurrent reader put the old value
//! back for a whole TTL (a revoked grant that keeps working). A fill that raced with an
//! invalidation is not kept: every invalidation bumps a generation, and a reader caches what it
//! read only if the generation it saw before reading is still current.
//!
//! Changes made by other brokers are seen when entries age out (`ttl`).

use crate::{MetadataStore, NamespaceRecord, Result, TenantInfo};
use magnetar_core::{NamespaceName, Policies, TenantName};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

struct Entry<T> {
    value: Option<T>,
    at: Instant,
}

/// Where the cache reads from: the metadata store (a seam for tests that control the timing of
/// reads).
#[async_trait::async_trait]
pub trait PolicySource: Send + Sync + 'static {
    async fn get_tenant(&self, name: &TenantName) -> Result<Option<TenantInfo>>;
    async fn get_namespace(&self, name: &NamespaceName) -> Result<Option<NamespaceRecord>>;
}

struct StoreSource(Arc<dyn MetadataStore>);

#[async_trait::async_trait]
impl PolicySource for StoreSource {
    async fn get_tenant(&self, name: &TenantName) -> Result<Option<TenantInfo>> {
        self.0.get_tenant(name).await
    }
    async fn get_namespace(&self, name: &NamespaceName) -> Result<Option<NamespaceRecord>> {
        self.0.get_namespace(name).await
    }
}

pub struct PolicyCache {
    source: Arc<dyn PolicySource>,
    ttl: Duration,
    generation: AtomicU64,
    tenants: RwLock<HashMap<TenantName, Entry<TenantInfo>>>,
    namespaces: RwLock<HashMap<NamespaceName, Entry<Policies>>>,
}

impl std::fmt::Debug for PolicyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyCache").field("ttl", &self.ttl).finish()
    }
}

/// Whether a read may be answered from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Within the TTL (hot path).
    Cached,
    /// From the store (administration); the answer refreshes the cache.
    Fresh,
}

impl PolicyCache {
    pub fn new(store: Arc<dyn MetadataStore>, ttl: Duration) -> Arc<PolicyCache> {
        Self::with_source(Arc::new(StoreSource(store)), ttl)
    }

    pub fn with_source(source: Arc<dyn PolicySource>, ttl: Duration) -> Arc<PolicyCache> {
        Arc::new(PolicyCache {
            source,
            ttl,
            generation: AtomicU64::new(0),
            tenants: RwLock::new(HashMap::new()),
            namespaces: RwLock::new(HashMap::new()),
        })
    }

    /// The tenant's info, `None` if it does not exist.
    pub async fn tenant(&self, name: &TenantName, freshness: Freshness) -> Result<Option<TenantInfo>> {
        if freshness == Freshness::Cached
            && let Some(v) = lookup(&self.tenants, name, self.ttl)
        {
            return Ok(v);
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let value = self.source.get_tenant(name).await?;
        self.fill(&self.tenants, name, &value, generation);
        Ok(value)
    }

    /// The namespace's policies, `None` if it does not exist.
    pub async fn policies(&self, name: &NamespaceName, freshness: Freshness) -> Result<Option<Policies>> {
        if freshness == Freshness::Cached
            && let Some(v) = lookup(&self.namespaces, name, self.ttl)
        {
            return Ok(v);
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let value = self.source.get_namespace(name).await?.map(|r| r.policies);
        self.fill(&self.namespaces, name, &value, generation);
        Ok(value)
    }

    /// After a committed change of a tenant (created, updated, deleted): drops it and, since a
    /// deleted tenant takes its namespaces along, every namespace of it.
    pub fn invalidate_tenant(&self, name: &TenantName) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        write(&self.tenants).remove(name);
        write(&self.namespaces).retain(|ns, _| ns.tenant() != name);
    }

    /// After a committed change of a namespace (created, policies changed, deleted).
    pub fn invalidate_namespace(&self, name: &NamespaceName) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        write(&self.namespaces).remove(name);
    }

    fn fill<K, T>(&self, map: &RwLock<HashMap<K, Entry<T>>>, key: &K, value: &Option<T>, generation: u64)
    where
        K: std::hash::Hash + Eq + Clone,
        T: Clone,
    {
        let mut map = write(map);
        // Checked under the map's lock: an invalidation bumps the generation before it takes the
        // lock, so either it sees this entry and removes it, or this fill sees its bump.
        if self.generation.load(Ordering::SeqCst) == generation {
            map.insert(key.clone(), Entry { value: value.clone(), at: Instant::now() });
        }
    }
}

fn lookup<K: std::hash::Hash + Eq, T: Clone>(
    map: &RwLock<HashMap<K, Entry<T>>>,
    key: &K,
    ttl: Duration,
) -> Option<Option<T>> {
    let map = map.read().unwrap_or_else(|e| e.into_inner());
    map.get(key).filter(|e| e.at.elapsed() < ttl).map(|e| e.value.clone())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use tokio::sync::Notify;

    /// A store of one namespace whose reads can be held after they have read, as a slow query
    /// that returns the value of its snapshot after a concurrent change has committed.
    #[derive(Default)]
    struct SlowSource {
        policies: Mutex<Policies>,
        hold: Mutex<Option<Arc<Notify>>>,
        reading: Notify,
    }

    #[async_trait::async_trait]
    impl PolicySource for SlowSource {
        async fn get_tenant(&self, _: &TenantName) -> Result<Option<TenantInfo>> {
            Ok(Some(TenantInfo::default()))
        }
        async fn get_namespace(&self, _: &NamespaceName) -> Result<Option<NamespaceRecord>> {
            let snapshot = self.policies.lock().unwrap().clone();
            let hold = self.hold.lock().unwrap().take();
            if let Some(release) = hold {
                self.reading.notify_one();
                release.notified().await;
            }
            Ok(Some(NamespaceRecord { policies: snapshot, version: 0 }))
        }
    }

    fn granted(role: &str) -> Policies {
        let mut p = Policies::default();
        p.auth_policies.namespace_auth.insert(role.into(), vec!["produce".into()]);
        p
    }

    #[tokio::test]
    async fn a_read_that_raced_with_a_committed_change_is_not_cached() {
        let source = Arc::new(SlowSource::default());
        *source.policies.lock().unwrap() = granted("app");
        let cache = PolicyCache::with_source(source.clone(), Duration::from_secs(3600));
        let ns: NamespaceName = "t/ns".parse().unwrap();

        // A reader reads the grant, then stalls before filling the cache.
        let release = Arc::new(Notify::new());
        *source.hold.lock().unwrap() = Some(release.clone());
        let reader = {
            let (cache, ns) = (cache.clone(), ns.clone());
            tokio::spawn(async move { cache.policies(&ns, Freshness::Cached).await })
        };
        source.reading.notified().await;
        // The grant is revoked and the cache invalidated after the commit.
        *source.policies.lock().unwrap() = Policies::default();
        cache.invalidate_namespace(&ns);
        release.notify_one();
        let stale = reader.await.unwrap().unwrap().unwrap();
        assert!(stale.auth_policies.namespace_auth.contains_key("app"), "the racing read saw its snapshot");

        // The next cached read must not serve that snapshot for a whole TTL.
        let now = cache.policies(&ns, Freshness::Cached).await.unwrap().unwrap();
        assert!(now.auth_policies.namespace_auth.is_empty(), "revoked grant served from the cache");
    }

    #[tokio::test]
    async fn cached_reads_stay_until_invalidated_or_expired() {
        let source = Arc::new(SlowSource::default());
        let cache = PolicyCache::with_source(source.clone(), Duration::from_secs(3600));
        let ns: NamespaceName = "t/ns".parse().unwrap();
        assert!(cache.policies(&ns, Freshness::Cached).await.unwrap().unwrap().auth_policies.namespace_auth.is_empty());
        *source.policies.lock().unwrap() = granted("app");
        let cached = cache.policies(&ns, Freshness::Cached).await.unwrap().unwrap();
        assert!(cached.auth_policies.namespace_auth.is_empty(), "within the TTL the cache answers");
        let fresh = cache.policies(&ns, Freshness::Fresh).await.unwrap().unwrap();
        assert!(fresh.auth_policies.namespace_auth.contains_key("app"));
        *source.policies.lock().unwrap() = Policies::default();
        cache.invalidate_tenant(&"t".parse().unwrap());
        let after = cache.policies(&ns, Freshness::Cached).await.unwrap().unwrap();
        assert!(after.auth_policies.namespace_auth.is_empty(), "a tenant change drops its namespaces");
    }
}
