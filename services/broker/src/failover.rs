//! Automatic failover of bundles whose partitions have object-store or replicated durability
//! (issue 13, item 2): when the broker holding such a bundle is no longer a live member (its
//! lease expired), the leader gives the bundle to a live broker at once. Nothing is lost: every
//! record the dead broker acknowledged is in a committed log object or on an ack quorum of its
//! replicas, and the new owner appends those past the uploaded segments before serving
//! (`durability::apply`). The transition bumps the partitions' epochs, so a zombie's later
//! object commits are refused (fenced); replicas refuse its batches once the new owner fenced
//! the partition there, and it has stopped acknowledging by its own lease clock before that.
//!
//! A bundle qualifies only if none of its partitions was loaded with local durability under its
//! current epoch (`mark_local_durability`): such a partition's tail is on the dead broker's disk
//! and keeps the crash rules of the broker tier (wait for it, or force the takeover). A
//! partition its owner never loaded under the current epoch (a bundle moved, then its new owner
//! died before any use) holds nothing there and qualifies.

use crate::bundles::in_bundle;
use crate::{Broker, Result};
use magnetar_core::DurabilityMode;
use magnetar_core::bundles::BundleRange;
use magnetar_metadata::{BundleState, BundleTransition, MetadataError};
use std::collections::HashSet;
use std::sync::Arc;

impl Broker {
    /// The leader's pass (see the module docs). Returns the bundles it reassigned.
    pub(crate) async fn fail_over_object_store_bundles(self: &Arc<Self>) -> Result<usize> {
        let tier = &self.ctx.tier;
        if !tier.enabled() || !tier.is_leader().await? {
            return Ok(0);
        }
        let live: HashSet<String> = self.live_brokers().await?.into_iter().map(|b| b.registration.broker_id).collect();
        let mut moved = 0;
        for row in self.ctx.metadata.list_bundles().await? {
            let Some(owner) = row.owner.clone() else { continue };
            // `releasing`: it died handing the bundle over; what it acknowledged is in the
            // bucket all the same.
            if !matches!(row.state, BundleState::Owned | BundleState::Releasing) || live.contains(&owner) {
                continue;
            }
            let policy = match self.ctx.fresh_policies(&row.namespace).await {
                Ok(p) => p.durability,
                // Deleted meanwhile: its bundles are retired, not failed over.
                Err(crate::BrokerError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            // Replicated: the new owner recovers the tail from the replicas (and waits for
            // enough of them to answer before serving).
            if policy.is_none_or(|p| p.mode == DurabilityMode::Local) {
                continue;
            }
            let Ok(range) = BundleRange::parse(&row.bundle) else { continue };
            let mut log_ids = Vec::new();
            let mut qualifies = true;
            for (name, log_id) in self.partitions_of_namespace(&row.namespace).await? {
                if !in_bundle(&range, &name.to_string()) {
                    continue;
                }
                if !self.ctx.metadata.may_fail_over(log_id).await? {
                    qualifies = false;
                    break;
                }
                log_ids.push(log_id);
            }
            let bundle = format!("{}/{}", row.namespace, row.bundle);
            if !qualifies {
                tracing::debug!(%bundle, %owner, "owner gone, but it served a partition with local durability: the bundle waits");
                continue;
            }
            let Some((target, session)) = tier.choose_target(&row.namespace, Some(&owner)).await? else {
                tracing::warn!(%bundle, "owner gone and no live broker may take the bundle: it waits");
                continue;
            };
            let to = BundleTransition { state: BundleState::Assigning, owner: Some((target.clone(), session)) };
            match self
                .ctx
                .metadata
                .transition_bundle(&row.namespace, &row.bundle, row.epoch, row.state, &to, &log_ids)
                .await
            {
                Ok(_) => {
                    tier.metrics().transition("assigning");
                    tier.metrics().failovers.inc();
                    tracing::warn!(%bundle, previous = %owner, new_owner = %target, partitions = log_ids.len(),
                        "owner's lease expired: bundle with object-store or replicated durability failed over");
                    moved += 1;
                }
                Err(MetadataError::Conflict(_) | MetadataError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(moved)
    }
}
