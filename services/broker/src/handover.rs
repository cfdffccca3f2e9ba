//! Handing a bundle to another broker of the tier without losing or duplicating anything
//! (issue 11, item 5; DESIGN §6 "Handover").
//!
//! The order matters:
//! 1. Partitions of the bundle with data on this broker's disk are loaded (a restarted broker
//!    may hold the tail of a partition nobody has asked for since), while the bundle is owned.
//! 2. The bundle goes to `releasing` and its requests are held (`Tier::begin_release`).
//! 3. Its topics are unloaded: WebSocket consumers are closed with 1012 (reconnect), and a
//!    producer's next send meets the closed log and closes its session the same way. Binary
//!    producers and consumers are sent CLOSE_PRODUCER / CLOSE_CONSUMER; a binary producer first
//!    answers the sends it accepted, and the logs close only once those producers have let go
//!    (bounded by `DETACH_WAIT`), so every receipt is for a record the handed-over data holds.
//! 4. Each log is closed to appends; sealing the active segment then waits for every record
//!    accepted before to be durable, and every segment not yet in the object store is uploaded
//!    and committed under the partition's epoch. Cursors and deduplication state are
//!    checkpointed under the same epoch.
//! 5. The local copies are dropped (a drop record in the WAL, so a restart never brings back a
//!    log another broker has continued), and the bundle is committed to its next owner with the
//!    partitions' epochs bumped (`Tier::finish_release`), which serves from exactly where this
//!    broker stopped: the end of the last uploaded segment.
//!
//! A failure before step 5 (the object store unreachable, say) reopens the logs and takes the
//! bundle back: nothing is lost, and the handover is retried later.

use crate::bundles::{SplitAlgorithm, in_bundle};
use crate::partition::Partition;
use crate::tier::Released;
use crate::{Broker, BrokerError, Result};
use magnetar_core::bundles::BundleRange;
use magnetar_core::{NamespaceName, TopicName};
use magnetar_storage::StorageError;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a drain checks whether a bundle's records are confirmed again.
const CONFIRM_POLL: Duration = Duration::from_millis(200);

/// What a handover did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handover {
    /// `tenant/namespace/range`.
    pub bundle: String,
    /// Partitions (or topics) handed over with their data.
    pub partitions: usize,
    /// The broker the bundle went to; `None` when it was left free for the leader to place.
    pub to: Option<String>,
    pub millis: u64,
}

impl Broker {
    /// Hands one bundle this broker owns to another broker (see the module docs). `Ok(None)`
    /// when this broker does not own it or is already handing it over.
    pub async fn hand_over(&self, ns: &NamespaceName, range: &BundleRange) -> Result<Option<Handover>> {
        Ok(self.release(ns, range, None).await?.map(|(h, _)| h))
    }

    /// Splits a bundle this broker owns in a tier: it is handed over as for a move, and while
    /// its requests are still held the namespace's bundles are cut (`split` decides where) and
    /// the old range's row retired, so no broker ever serves the old range and a new one at
    /// once. The new bundles are placed like any new bundle. `Ok(None)` when this broker does
    /// not own it.
    pub(crate) async fn split_owned(
        &self,
        ns: &NamespaceName,
        range: &BundleRange,
        split: SplitAlgorithm,
    ) -> Result<Option<Vec<BundleRange>>> {
        Ok(self.release(ns, range, Some(split)).await?.map(|(_, halves)| halves))
    }

    /// A handover, with a split before the release when `split` says where.
    async fn release(
        &self,
        ns: &NamespaceName,
        range: &BundleRange,
        split: Option<SplitAlgorithm>,
    ) -> Result<Option<(Handover, Vec<BundleRange>)>> {
        let started = Instant::now();
        let tier = &self.ctx.tier;
        self.load_local_partitions(ns, range).await?;
        let Some(row) = tier.begin_release(ns, range).await? else { return Ok(None) };
        let bundle = format!("{ns}/{range}");
        if let Some(name) = self.unconfirmed_partition(ns, range) {
            // Nothing unloaded yet: the bundle is served on as before.
            tier.finish_release(&row, &[], Released::Failed, None).await?;
            tier.metrics().handovers.with_label_values(&["deferred"]).inc();
            return Err(StorageError::Unavailable(format!(
                "{name}: its records are not confirmed by its replicas or the object store now; the bundle {bundle} \
                 is handed over once they are (retry later)"
            ))
            .into());
        }
        // Chosen now, so that the closed producers and consumers are told where to reconnect; a
        // split's halves are placed later by the leader.
        let next = match split {
            Some(_) => None,
            None => tier.choose_next_owner(ns).await.unwrap_or_else(|e| {
                tracing::warn!(%bundle, error = %e.cause(), "next owner not chosen before closing; chosen at the end");
                None
            }),
        };
        let partitions: Vec<Arc<Partition>> = self
            .registry
            .unload_matching(ns, |p| in_bundle(range, &p.name.to_string()), next.as_ref().map(|b| &b.registration))
            .await
            .iter()
            .flat_map(|t| t.partitions.iter().cloned())
            .collect();
        // Binary producers answer what they accepted and close (CLOSE_PRODUCER) while the logs
        // still take it: what they acknowledged is in what is handed over, and the client sends
        // what it has not seen acknowledged to the next owner.
        let detached = futures::future::join_all(partitions.iter().map(|p| {
            p.producers.close();
            p.producers.wait()
        }));
        if tokio::time::timeout(crate::DETACH_WAIT, detached).await.is_err() {
            tracing::warn!(%bundle, "producers still attached after {} ms; closing the logs under them", crate::DETACH_WAIT.as_millis());
        }
        for p in &partitions {
            p.log.close();
        }
        if let Err(e) = self.flush_to_shared_stores(&partitions).await {
            for p in &partitions {
                p.log.reopen();
            }
            tier.metrics().handovers.with_label_values(&["failed"]).inc();
            tracing::warn!(%bundle, error = %e.cause(), "handover failed; the bundle stays here and is retried later");
            tier.finish_release(&row, &[], Released::Failed, None).await?;
            return Err(e);
        }
        for p in &partitions {
            if let Err(e) = self.ctx.storage.delete_log(p.log_id as u64).await {
                // Its data is in the object store; the stale copy is dropped at the next start.
                tracing::warn!(topic = %p.name, error = %e, "local copy of a handed-over partition not deleted");
            }
        }
        let log_ids: Vec<i64> = partitions.iter().map(|p| p.log_id).collect();
        // Everything is in the shared stores: a failed cut still hands the bundle over whole.
        let (how, halves, cut) = match split {
            None => (Released::Handed, Vec::new(), Ok(())),
            Some(at) => match self.topics().split_bundle(self.admin(), ns, &range.to_string(), at, false).await {
                Ok(halves) => (Released::Split, halves, Ok(())),
                Err(e) => (Released::Handed, Vec::new(), Err(e)),
            },
        };
        let released = tier.finish_release(&row, &log_ids, how, next.as_ref()).await?;
        cut?;
        let elapsed = started.elapsed();
        tier.metrics().handover_seconds.observe(elapsed.as_secs_f64());
        tier.metrics().handovers.with_label_values(&["ok"]).inc();
        tracing::info!(%bundle, partitions = partitions.len(), to = ?released.owner, millis = elapsed.as_millis() as u64, "bundle handed over");
        let handover =
            Handover { bundle, partitions: partitions.len(), to: released.owner, millis: elapsed.as_millis() as u64 };
        Ok(Some((handover, halves)))
    }

    /// Pulsar's namespace and bundle unload. In a tier each bundle owned by a live broker is
    /// handed over to another one (by this broker when it owns it, else by its owner, asked
    /// through the ownership table), and the call returns once every one has left `releasing`;
    /// without a tier the loaded topics are unloaded and load again on their next use.
    pub async fn unload_bundles(&self, ns: &NamespaceName, range: Option<&BundleRange>) -> Result<usize> {
        let tier = &self.ctx.tier;
        if !tier.enabled() {
            return self.topics().unload_namespace(ns, range).await;
        }
        let ranges: Vec<BundleRange> = match range {
            Some(r) => vec![*r],
            None => self.topics().bundles(ns).await?.ranges().collect(),
        };
        let mut asked = Vec::new();
        for r in ranges {
            if tier.request_release(ns, &r).await? {
                // Run here when this broker owns it; otherwise its owner's next pass does.
                self.hand_over(ns, &r).await?;
                asked.push(r);
            }
        }
        let deadline = Instant::now() + std::time::Duration::from_millis(tier.config().drain_timeout_ms);
        for r in &asked {
            loop {
                let row = self.ctx.metadata.get_bundle(ns, &r.to_string()).await?;
                if row.is_none_or(|row| row.state != magnetar_metadata::BundleState::Releasing) {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(BrokerError::NotOwner(format!(
                        "bundle {ns}/{r} is still being handed over by its owner; it completes on its own"
                    )));
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
        Ok(asked.len())
    }

    /// A loaded partition of the bundle whose records cannot be committed beyond the WAL now: its
    /// stream's oldest batch failed (a replica down and not yet replaced, the bucket
    /// unreachable). A handover started then would close every client, fail once the records
    /// waited the policy's wait, and leave the partitions to load again from a replica set that
    /// may name the dead peer, waiting for it. Deferred instead, it finds them committed once the
    /// tier has moved the stream off the dead peer (or the store answers again).
    fn unconfirmed_partition(&self, ns: &NamespaceName, range: &BundleRange) -> Option<TopicName> {
        self.registry
            .loaded_partitions()
            .into_iter()
            .find(|p| p.name.namespace() == ns && in_bundle(range, &p.name.to_string()) && p.log.commits_retrying())
            .map(|p| p.name.clone())
    }

    /// Waits until no loaded partition of the bundle has records its stream failed to commit
    /// (`unconfirmed_partition`); the caller bounds the wait.
    async fn until_confirmed(&self, ns: &NamespaceName, range: &BundleRange) {
        let mut told = false;
        while let Some(name) = self.unconfirmed_partition(ns, range) {
            if !std::mem::replace(&mut told, true) {
                tracing::info!(bundle = %format!("{ns}/{range}"), partition = %name,
                    "handover waits until the partition's records are confirmed again");
            }
            tokio::time::sleep(CONFIRM_POLL).await;
        }
    }

    /// Step 4: everything accepted is durable, uploaded and committed, cursors and producer
    /// sequences checkpointed.
    async fn flush_to_shared_stores(&self, partitions: &[Arc<Partition>]) -> Result<()> {
        if self.ctx.storage.tier().is_none() {
            return Err(BrokerError::NoObjectStore);
        }
        // A lease for the dead peer to count as gone, then the tend that moves the stream.
        let stream_move = Duration::from_millis(self.ctx.config.membership.lease_ms)
            + crate::durability::TEND_INTERVAL * 2
            + Duration::from_secs(1);
        for p in partitions {
            crate::durability::wait_committed(p, stream_move).await?;
            self.offloader.upload_tail(p).await?;
            crate::durability::release_replicas(&self.ctx, p).await?;
            crate::dedup::snapshot_now(&self.ctx, p).await?;
        }
        self.checkpoints.checkpoint_partitions(partitions).await
    }

    /// Step 1: loads the partitions of the bundle that have data on this broker's disk.
    async fn load_local_partitions(&self, ns: &NamespaceName, range: &BundleRange) -> Result<()> {
        let local: std::collections::HashSet<u64> = self.ctx.storage.log_ids().into_iter().collect();
        if local.is_empty() {
            return Ok(());
        }
        for (name, log_id) in self.partitions_of_namespace(ns).await? {
            if local.contains(&(log_id as u64))
                && in_bundle(range, &name.to_string())
                && self.registry.loaded(&name).is_none()
            {
                match self.registry.resolve(&name).await {
                    // NotOwner: the bundle is not this process's, or a handover of it is already
                    // under way here (it loaded what it needed); `begin_release` then declines.
                    Ok(_) | Err(BrokerError::NotFound(_)) | Err(BrokerError::NotOwner(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// Every partition of the namespace (non-partitioned topics included) with its log id.
    pub(crate) async fn partitions_of_namespace(&self, ns: &NamespaceName) -> Result<Vec<(TopicName, i64)>> {
        crate::takeover::partitions_of_namespace(self.ctx.metadata.as_ref(), ns).await
    }

    /// Hands over every bundle another broker asked this one to release (the leader's balance,
    /// an admin unload asked elsewhere). Called by the tier's pass.
    pub(crate) async fn serve_release_requests(self: &Arc<Self>) {
        let requested = match self.ctx.tier.requested_releases().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e.cause(), "cannot read the bundles asked of this broker");
                return;
            }
        };
        for (ns, range) in requested {
            let b = Arc::clone(self);
            self.ctx.spawn(async move {
                if let Err(e) = b.hand_over(&ns, &range).await {
                    tracing::warn!(bundle = %format!("{ns}/{range}"), error = %e.cause(), "requested handover failed");
                }
            });
        }
    }

    /// SIGTERM in a tier: hands every bundle of this broker to the others, a few at a time,
    /// within `drain_timeout_ms`. What is not handed over by then stays owned by this broker and
    /// is taken back by its next process.
    pub async fn drain(&self) -> usize {
        let tier = &self.ctx.tier;
        if !tier.enabled() {
            return 0;
        }
        // Announced first, so the leader places nothing more here.
        self.ctx.membership.set_draining();
        self.ctx.membership.renew(&self.load()).await;
        let deadline = std::time::Duration::from_millis(tier.config().drain_timeout_ms);
        let work = async {
            let bundles = match tier.owned_here().await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e.cause(), "cannot list the bundles to drain");
                    return 0;
                }
            };
            use futures::StreamExt;
            futures::stream::iter(bundles)
                .map(|(ns, range)| async move {
                    // A stream moving off a dead peer commits again within a lease or so: the
                    // bundle goes then rather than staying here (and waiting for that peer).
                    self.until_confirmed(&ns, &range).await;
                    match self.hand_over(&ns, &range).await {
                        Ok(Some(_)) => 1,
                        Ok(None) => 0,
                        Err(e) => {
                            tracing::warn!(bundle = %format!("{ns}/{range}"), error = %e.cause(), "drain: handover failed");
                            0
                        }
                    }
                })
                .buffer_unordered(4)
                .fold(0usize, |n, k| async move { n + k })
                .await
        };
        match tokio::time::timeout(deadline, work).await {
            Ok(n) => {
                tracing::info!(bundles = n, "drained: bundles handed to the other brokers");
                // Requests still routed here by other brokers' cached views are forwarded to the
                // new owners until those views refresh; only then does this broker stop listening
                // (a request on a connection it closes could not be retried safely).
                if n > 0 {
                    tokio::time::sleep(tier.config().refresh_interval() * 3 + std::time::Duration::from_millis(100))
                        .await;
                }
                n
            }
            Err(_) => {
                tracing::warn!(
                    timeout_ms = deadline.as_millis() as u64,
                    "drain timed out; the remaining bundles stay owned here"
                );
                0
            }
        }
    }
}
