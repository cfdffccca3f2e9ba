//! What every component of the broker shares: its configuration, the metadata store with the
//! policy cache, storage, metrics, the clock, the authorizer, and the tracker of its tasks. Only
//! the broker's components see it; the outside talks to their narrow handles.

use crate::BrokerError;
use crate::access::Caller;
use crate::config::BrokerConfig;
use crate::error::{Entity, Result};
use crate::metrics::BrokerMetrics;
use crate::partition::Partition;
use crate::subscription::CursorOp;
use magnetar_auth::{Authorizer, Operation, Resource};
use magnetar_core::{NamespaceName, Policies, SharedClock};
use magnetar_metadata::{Freshness, MetadataStore, PolicyCache};
use magnetar_storage::Storage;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub(crate) struct Context {
    pub config: BrokerConfig,
    pub metadata: Arc<dyn MetadataStore>,
    pub policies: Arc<PolicyCache>,
    pub storage: Arc<Storage>,
    pub metrics: BrokerMetrics,
    pub clock: SharedClock,
    pub authorizer: Arc<Authorizer>,
    pub broker_id: String,
    /// This broker's lease: nothing is acknowledged once it may have lapsed.
    pub membership: Arc<crate::membership::Membership>,
    /// Which bundles this broker owns (everything when the tier is off).
    pub tier: Arc<crate::tier::Tier>,
    /// Every task the broker spawns, so shutdown can wait for them.
    pub tasks: TaskTracker,
    /// The namespace publish buckets of this broker.
    pub namespace_limiters: crate::policies::runtime::NamespaceLimiters,
    pub shutdown: CancellationToken,
    /// Synchronous cursor checkpoints of partitions with object-store durability
    /// (`Checkpoints::run_sync`).
    pub cursor_sync: tokio::sync::mpsc::UnboundedSender<crate::controllers::checkpoint::SyncRequest>,
    /// Replicated durability: this broker's replica streams and its copies of the others'
    /// (only in a broker tier).
    pub replication: Option<Arc<crate::replication::Replication>>,
    /// Log objects fetched lately by loads recovering a failed broker's tail from the bucket.
    pub recovered_objects: crate::recovered_objects::RecoveredObjects,
}

impl Context {
    pub fn now_ms(&self) -> i64 {
        self.clock.now_millis()
    }

    /// Whether this broker was the last to hold partition `log_id` (the store's `owner`, set
    /// when a broker loads it and when its bundle is committed to a new owner). `false` for a
    /// partition that no longer exists.
    pub(crate) async fn last_held_here(&self, log_id: i64) -> crate::Result<bool> {
        match self.metadata.get_partition_owner(log_id).await {
            Ok(owner) => Ok(owner.is_some_and(|(o, _)| o == self.broker_id)),
            Err(magnetar_metadata::MetadataError::NotFound(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Counts a metadata write refused because another broker owns the partition now.
    pub(crate) fn note_fenced(&self, e: &magnetar_metadata::MetadataError) {
        if matches!(e, magnetar_metadata::MetadataError::Fenced { .. }) {
            self.metrics.tier.fenced_writes.inc();
        }
    }

    /// Refuses with `Forbidden` what the caller may not do.
    pub async fn require(&self, caller: &Caller, op: Operation, resource: Resource<'_>) -> Result<()> {
        Ok(self.authorizer.check(caller.principal(), op, resource).await?)
    }

    /// A namespace's policies through the shared cache (hot path and background loops).
    pub async fn cached_policies(&self, ns: &NamespaceName) -> Result<Policies> {
        self.policies_with(ns, Freshness::Cached).await
    }

    /// A namespace's policies read from the store (administration).
    pub async fn fresh_policies(&self, ns: &NamespaceName) -> Result<Policies> {
        self.policies_with(ns, Freshness::Fresh).await
    }

    async fn policies_with(&self, ns: &NamespaceName, freshness: Freshness) -> Result<Policies> {
        self.policies.policies(ns, freshness).await?.ok_or_else(|| BrokerError::NotFound(Entity::Namespace(ns.clone())))
    }

    /// Writes a cursor op to the WAL; returns once it is durable, and for a partition with
    /// object-store or replicated durability once its cursor is checkpointed in the metadata
    /// store too (the WAL's aux records are not replicated; the checkpoint is what the next
    /// owner reads).
    pub async fn persist_op(&self, partition: &Partition, op: &CursorOp) -> Result<()> {
        self.persist_log_op(partition.log_id, op).await?;
        if partition.log.commit_epoch().is_some() {
            let (tx, rx) = tokio::sync::oneshot::channel();
            self.cursor_sync.send((partition.log_id, tx)).map_err(|_| BrokerError::ShuttingDown)?;
            rx.await.map_err(|_| BrokerError::ShuttingDown)??;
        }
        Ok(())
    }

    pub async fn persist_log_op(&self, log_id: i64, op: &CursorOp) -> Result<()> {
        let data = serde_json::to_vec(op).map_err(BrokerError::internal)?;
        self.storage.append_aux(log_id as u64, data.into()).await?;
        Ok(())
    }

    /// Spawns a task the broker's shutdown waits for.
    pub fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tasks.spawn(task)
    }
}
