//! Forced takeover of a bundle whose broker died without handing it over (issue 11, item 6).
//!
//! Such a bundle stays assigned to its broker, unavailable, because the tail of its partitions
//! that was not yet uploaded exists only on that broker's disk: normally the broker returns (a
//! StatefulSet restarts it on its volume) and serves on from where it stopped. When it cannot
//! return, an operator may give the bundle to another broker, accepting the loss of that tail.
//! The answer says exactly what is kept: each partition continues from the end of what the
//! object store holds; messages acknowledged after that by the dead broker, and acknowledgements
//! after its last cursor checkpoint, are lost (the latter are redelivered). The dead broker's
//! copy is dropped when it starts again (it no longer last held those partitions).

use crate::bundles::in_bundle;
use crate::error::Entity;
use crate::{Broker, BrokerError, Result};
use magnetar_core::NamespaceName;
use magnetar_core::bundles::BundleRange;
use magnetar_metadata::{BundleState, BundleTransition, MetadataStore};
use serde::Serialize;

/// What a forced takeover did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Takeover {
    /// `tenant/namespace/range`.
    pub bundle: String,
    /// The broker whose lease expired while it held the bundle.
    pub previous_owner: String,
    /// The live broker the bundle is assigned to now.
    pub new_owner: String,
    pub partitions: Vec<TakenPartition>,
    /// What may be lost, in words.
    pub may_lose: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TakenPartition {
    pub topic: String,
    /// Offset the partition continues from: the end of what the object store holds. The next
    /// message stored gets it; anything the previous owner acknowledged from it on is lost.
    pub continues_from_offset: u64,
    /// Subscriptions whose checkpointed position was beyond that offset, moved back to it so
    /// that they receive the messages stored from there on.
    pub cursors_rewound: usize,
}

/// Before a partition whose unuploaded tail is lost continues at `end`: cursors and the
/// deduplication snapshot that reach beyond it are moved back (under the epoch its last owner
/// held, which is still the partition's), or a consumer would skip the new messages stored at
/// those offsets. Returns how many cursors moved.
pub(crate) async fn rewind_past(metadata: &dyn MetadataStore, log_id: i64, end: u64) -> Result<usize> {
    let Some((_, epoch)) = metadata.get_partition_owner(log_id).await? else { return Ok(0) };
    let mut rewound = Vec::new();
    for sub in metadata.list_subscriptions(log_id).await? {
        let mut cursor = sub.cursor.clone();
        cursor.mark_delete = cursor.mark_delete.min(end);
        cursor.acked_ranges = cursor
            .acked_ranges
            .iter()
            .filter(|(from, _)| *from < end)
            .map(|(from, to)| (*from, (*to).min(end)))
            .collect();
        if cursor != sub.cursor {
            rewound.push((sub.name, cursor));
        }
    }
    if !rewound.is_empty() {
        metadata.checkpoint_cursors(log_id, epoch, &rewound).await?;
    }
    if metadata.get_dedup_snapshot(log_id).await?.is_some_and(|s| s.position > end) {
        metadata.delete_dedup_snapshot(log_id, epoch).await?;
    }
    Ok(rewound.len())
}

/// Where a partition continues once its unuploaded tail is lost: the end of its uploaded
/// segments.
pub(crate) async fn uploaded_end(metadata: &dyn MetadataStore, log_id: i64) -> Result<u64> {
    let end = metadata.list_segments(log_id).await?.iter().map(|s| s.end_offset).max().unwrap_or(0);
    Ok(end.max(0) as u64)
}

/// Every partition of namespace `ns` with its log id (none for an unknown namespace).
pub(crate) async fn partitions_of_namespace(
    metadata: &dyn MetadataStore,
    ns: &NamespaceName,
) -> Result<Vec<(magnetar_core::TopicName, i64)>> {
    let records = match metadata.list_topics(ns).await {
        Ok(r) => r,
        Err(magnetar_metadata::MetadataError::NotFound(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    for t in records {
        for pr in &t.partition_records {
            let name = if t.partitions > 0 { t.name.partition(pr.index as u32) } else { t.name.clone() };
            out.push((name, pr.log_id));
        }
    }
    Ok(out)
}

impl Broker {
    /// Gives a bundle held by a broker whose lease expired to a live broker (see the module).
    pub async fn force_takeover(&self, ns: &NamespaceName, range: &BundleRange) -> Result<Takeover> {
        let tier = &self.ctx.tier;
        if !tier.enabled() {
            return Err(BrokerError::NotAllowed(
                "forced takeover needs the broker tier ([broker.tier] enabled)".into(),
            ));
        }
        let bundle = format!("{ns}/{range}");
        let row = self.ctx.metadata.get_bundle(ns, &range.to_string()).await?.ok_or_else(|| {
            BrokerError::NotFound(Entity::Message(format!("bundle {bundle} has no owner to take over from")))
        })?;
        let previous = match (&row.state, &row.owner) {
            (BundleState::Owned | BundleState::Assigning | BundleState::Releasing, Some(o)) => o.clone(),
            _ => {
                return Err(BrokerError::NotFound(Entity::Message(format!(
                    "bundle {bundle} is {}: nobody holds it, so there is nothing to take over",
                    row.state.as_str()
                ))));
            }
        };
        if self.live_brokers().await?.iter().any(|b| b.registration.broker_id == previous) {
            return Err(BrokerError::OwnerAlive { bundle, owner: previous });
        }
        let mut partitions = Vec::new();
        let mut log_ids = Vec::new();
        for (name, log_id) in self.partitions_of_namespace(ns).await? {
            if !in_bundle(range, &name.to_string()) {
                continue;
            }
            let end = uploaded_end(self.ctx.metadata.as_ref(), log_id).await?;
            let rewound = rewind_past(self.ctx.metadata.as_ref(), log_id, end).await?;
            partitions.push(TakenPartition {
                topic: name.to_string(),
                continues_from_offset: end,
                cursors_rewound: rewound,
            });
            log_ids.push(log_id);
        }
        let (target, session) = tier.choose_target(ns, Some(&previous)).await?.ok_or_else(|| {
            BrokerError::NotOwner(format!(
                "no live broker may take bundle {bundle} (isolation policies, or none is live)"
            ))
        })?;
        let to = BundleTransition { state: BundleState::Assigning, owner: Some((target.clone(), session)) };
        self.ctx.metadata.transition_bundle(ns, &row.bundle, row.epoch, row.state, &to, &log_ids).await?;
        tier.metrics().transition("assigning");
        tracing::warn!(%bundle, %previous, new_owner = %target, partitions = partitions.len(),
            "forced takeover: the previous owner's unuploaded tail is abandoned");
        Ok(Takeover {
            may_lose: format!(
                "messages that broker {previous} acknowledged on these partitions from the listed offsets on (its tail not yet \
                 in the object store), and consumer acknowledgements after its last cursor checkpoint (those messages are \
                 delivered again)"
            ),
            bundle,
            previous_owner: previous,
            new_owner: target,
            partitions,
        })
    }
}
