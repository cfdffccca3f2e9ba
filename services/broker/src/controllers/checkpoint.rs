//! Cursor checkpoints. Acknowledgements are durable in the WAL first (as cursor ops sharing the
//! group commit); this controller copies changed cursors to the metadata store, every changed
//! partition of a round in one transaction (each conditional on its own epoch), so WAL files
//! holding cursor ops can be trimmed, and replays the ops found in the WAL at start.
//!
//! One partition whose checkpoint fails (its row fenced by another owner, deleted) must not hold
//! back the others, nor the WAL: the store skips it and commits the rest, the failures are
//! counted and logged by topic, and before the WAL is trimmed the cursors of the
//! failing partitions are carried forward — written again to the WAL head as one acknowledgement
//! per subscription (acknowledgements are unions, so replaying them in any order with other ops
//! loses none) — so no older WAL file is needed for them.

use crate::context::Context;
use crate::partition::Partition;
use crate::registry::TopicRegistry;
use crate::subscription::{CursorOp, Subscription, SubscriptionId, SubscriptionLimits};
use crate::{BrokerError, Result};
use magnetar_core::SubscriptionName;
use magnetar_metadata::{CursorCheckpoint, CursorState};
use std::collections::HashMap;
use std::sync::{Arc, Weak};

/// Most partitions one checkpoint transaction writes.
const ROUND_PARTITIONS: usize = 500;

pub(crate) struct Checkpoints {
    ctx: Arc<Context>,
    registry: Arc<TopicRegistry>,
    /// Serializes checkpoints: a WAL trim must not return while another checkpoint still holds
    /// cursors it took as dirty but has not written yet.
    lock: tokio::sync::Mutex<()>,
}

/// A partition whose cursors must be checkpointed now, and who waits for it.
pub(crate) type SyncRequest = (i64, tokio::sync::oneshot::Sender<Result<()>>);

/// A partition whose checkpoint failed.
pub(crate) struct Failed {
    pub partition: Arc<Partition>,
    pub error: BrokerError,
}

impl Checkpoints {
    pub fn new(ctx: Arc<Context>, registry: Arc<TopicRegistry>) -> Self {
        Checkpoints { ctx, registry, lock: tokio::sync::Mutex::new(()) }
    }

    /// Persists every changed cursor; returns the partitions that failed (their cursors stay
    /// dirty for the next round).
    pub async fn checkpoint_all(&self) -> Vec<Failed> {
        let _guard = self.lock.lock().await;
        self.checkpoint_locked().await
    }

    /// Persists the changed cursors of these partitions now (a handover); the first failure.
    pub(crate) async fn checkpoint_partitions(&self, partitions: &[Arc<Partition>]) -> Result<()> {
        let _guard = self.lock.lock().await;
        match self.checkpoint_round(partitions.to_vec()).await.into_iter().next() {
            Some(failed) => Err(failed.error),
            None => Ok(()),
        }
    }

    async fn checkpoint_locked(&self) -> Vec<Failed> {
        let failed = self.checkpoint_round(self.registry.loaded_partitions()).await;
        for f in &failed {
            self.ctx.metrics.checkpoint_failures.inc();
            tracing::warn!(topic = %f.partition.name, error = %f.error.cause(), "cursor checkpoint failed; the cursors stay in the write-ahead log");
        }
        self.ctx.metrics.checkpoint_failing_partitions.set(failed.len() as i64);
        failed
    }

    /// One checkpoint round: the changed cursors of `partitions`, in one transaction per
    /// `ROUND_PARTITIONS` partitions (a tier's metadata load is dominated by checkpoints; one
    /// commit per partition would not scale to thousands of partitions per broker). A
    /// partition refused (fenced by a new owner, deleted) or in a failed transaction keeps its
    /// cursors dirty and is returned.
    async fn checkpoint_round(&self, partitions: Vec<Arc<Partition>>) -> Vec<Failed> {
        let mut failed = Vec::new();
        let mut changed: Vec<(Arc<Partition>, CursorCheckpoint)> = Vec::new();
        for p in partitions {
            let cursors: Vec<(String, CursorState)> =
                p.subscriptions().iter().filter_map(|s| s.take_dirty_cursor().map(|c| (s.name(), c))).collect();
            if !cursors.is_empty() {
                let checkpoint = CursorCheckpoint { log_id: p.log_id, epoch: p.epoch, cursors };
                changed.push((p, checkpoint));
            }
        }
        for chunk in changed.chunks(ROUND_PARTITIONS) {
            let batch: Vec<CursorCheckpoint> = chunk.iter().map(|(_, c)| c.clone()).collect();
            let refused: Vec<(i64, BrokerError)> = match self.ctx.metadata.checkpoint_cursors_many(&batch).await {
                Ok(refused) => refused
                    .into_iter()
                    .map(|(log_id, e)| {
                        self.ctx.note_fenced(&e);
                        (log_id, e.into())
                    })
                    .collect(),
                // The whole transaction failed: every partition of it stays dirty, the first one
                // carrying the error as it came.
                Err(e) => {
                    let text = e.to_string();
                    let mut first = Some(BrokerError::from(e));
                    chunk
                        .iter()
                        .map(|(p, _)| {
                            let error = first.take().unwrap_or_else(|| {
                                BrokerError::Internal(format!("cursor checkpoint transaction failed: {text}"))
                            });
                            (p.log_id, error)
                        })
                        .collect()
                }
            };
            for (log_id, error) in refused {
                let Some((p, c)) = chunk.iter().find(|(p, _)| p.log_id == log_id) else { continue };
                for s in p.subscriptions() {
                    if c.cursors.iter().any(|(n, _)| *n == s.name()) {
                        s.mark_dirty();
                    }
                }
                failed.push(Failed { partition: Arc::clone(p), error });
            }
        }
        failed
    }

    /// Object-store durability: cursor changes of such partitions are checkpointed as they
    /// are made (`Context::persist_op` waits here), so an acknowledgement confirmed to a
    /// consumer is in the metadata store before the answer, and a failover never delivers the
    /// message again. Requests arriving while a round runs share the next one (a group commit
    /// of checkpoints: one transaction for every partition waiting).
    pub(crate) async fn run_sync(self: Arc<Self>, mut rx: tokio::sync::mpsc::UnboundedReceiver<SyncRequest>) {
        loop {
            let first = tokio::select! {
                r = rx.recv() => match r { Some(r) => r, None => return },
                _ = self.ctx.shutdown.cancelled() => return,
            };
            let mut waiting = vec![first];
            while let Ok(r) = rx.try_recv() {
                waiting.push(r);
            }
            let ids: std::collections::HashSet<i64> = waiting.iter().map(|(id, _)| *id).collect();
            let partitions: Vec<Arc<Partition>> =
                self.registry.loaded_partitions().into_iter().filter(|p| ids.contains(&p.log_id)).collect();
            let failed = {
                let _guard = self.lock.lock().await;
                self.checkpoint_round(partitions).await
            };
            for (log_id, done) in waiting {
                // A partition unloaded meanwhile had its cursors checkpointed by its handover.
                let res = match failed.iter().find(|f| f.partition.log_id == log_id) {
                    Some(f) => Err(BrokerError::Unavailable {
                        service: crate::error::Service::Metadata,
                        detail: Some(format!(
                            "the acknowledgement is in this broker's log but not yet checkpointed for failover: {}",
                            f.error
                        )),
                        cause: f.error.cause(),
                    }),
                    None => Ok(()),
                };
                let _ = done.send(res);
            }
        }
    }

    /// What the WAL trimmer needs before it deletes files holding cursor ops: every cursor op
    /// written so far is either in the metadata store or carried forward in the WAL. Fails only
    /// if carrying forward fails (then the files stay).
    pub async fn cover_wal(&self) -> Result<()> {
        let _guard = self.lock.lock().await;
        for Failed { partition, .. } in self.checkpoint_locked().await {
            for s in partition.subscriptions() {
                if let Some(op) = s.cursor_as_op() {
                    // Into the WAL only: this runs under the checkpoint lock, which a
                    // synchronous checkpoint (`persist_op`) would wait for.
                    self.ctx.persist_log_op(partition.log_id, &op).await?;
                }
            }
            self.ctx.metrics.cursors_carried_forward.inc();
        }
        Ok(())
    }

    /// At start: applies the cursor ops found in the WAL (in WAL order) on top of the
    /// checkpointed cursors and checkpoints the result, so the WAL can be trimmed without losing
    /// acknowledgements. A partition that fails is reported and its ops are written to the WAL
    /// again; only a failure to do that fails the start.
    pub async fn replay(&self, ops: Vec<(u64, bytes::Bytes)>) -> Result<()> {
        let mut by_log: HashMap<u64, Vec<CursorOp>> = HashMap::new();
        for (log_id, data) in ops {
            match serde_json::from_slice::<CursorOp>(&data) {
                Ok(op) => by_log.entry(log_id).or_default().push(op),
                Err(e) => tracing::warn!(log_id, error = %e, "skipping undecodable cursor record"),
            }
        }
        for (log_id, ops) in by_log {
            if let Err(e) = self.replay_partition(log_id as i64, &ops).await {
                self.ctx.metrics.checkpoint_failures.inc();
                tracing::warn!(log_id, error = %e.cause(), "replayed cursor updates could not be checkpointed; carrying them forward in the write-ahead log");
                // The files holding them may be trimmed once the broker runs: write them again.
                for op in &ops {
                    self.ctx.persist_log_op(log_id as i64, op).await?;
                }
            }
        }
        Ok(())
    }

    async fn replay_partition(&self, log_id: i64, ops: &[CursorOp]) -> Result<()> {
        let metadata = &self.ctx.metadata;
        let records = match metadata.list_subscriptions(log_id).await {
            Ok(r) => r,
            // The partition was deleted since.
            Err(magnetar_metadata::MetadataError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if self.ctx.tier.enabled() && !self.ctx.last_held_here(log_id).await? {
            // In a tier another broker has continued this partition since (a handover, or a
            // forced takeover): these updates are history, and acquiring it would fence the owner.
            tracing::info!(
                log_id,
                ops = ops.len(),
                "cursor updates of a partition now served elsewhere are not replayed"
            );
            return Ok(());
        }
        let epoch = metadata.acquire_partition(log_id, &self.ctx.broker_id).await?;
        let log = self.ctx.storage.log(log_id as u64)?;
        let mut cursors = Vec::new();
        for rec in records {
            let Ok(name) = SubscriptionName::new(rec.name.clone()) else { continue };
            let sub = Subscription::new(
                SubscriptionId::Durable(name),
                -1,
                Arc::clone(&log),
                &rec.cursor,
                SubscriptionLimits {
                    max_ranges_to_persist: self.ctx.config.max_acked_ranges_to_persist,
                    ..SubscriptionLimits::default()
                },
                Arc::clone(&self.ctx.clock),
            );
            for op in ops.iter().filter(|op| op.subscription() == rec.name) {
                sub.apply(op);
            }
            if let Some(cursor) = sub.take_dirty_cursor() {
                cursors.push((rec.name, cursor));
            }
        }
        metadata.checkpoint_cursors(log_id, epoch, &cursors).await?;
        tracing::info!(log_id, ops = ops.len(), "replayed cursor updates from the write-ahead log");
        Ok(())
    }
}

/// Lets storage cover the cursor ops of WAL files before it trims them.
pub(crate) struct WalCheckpointer(pub Weak<Checkpoints>);

#[async_trait::async_trait]
impl magnetar_storage::Checkpointer for WalCheckpointer {
    async fn checkpoint(&self) -> std::result::Result<(), String> {
        match self.0.upgrade() {
            Some(c) => c.cover_wal().await.map_err(|e| e.cause()),
            None => Err("broker stopped".into()),
        }
    }
}
