//! The periodic pass of every broker of the tier, and the leader's placement.
//!
//! Each pass re-reads the membership and the ownership table, takes the rows addressed to this
//! broker (`assigning` to it, or `owned` by its previous process, which a restart on the same
//! data directory resumes), and, on the leader only, assigns free bundles and balances. Placement
//! gives each free bundle to the lightest broker (`load`: traffic in a busy tier, bundle counts
//! in an idle one), counting its own assignments as it goes so that one pass spreads a burst of
//! new bundles.
//!
//! Namespace isolation policies (`isolation`) narrow the candidates of a namespace's bundles
//! first; a bundle no live broker may take stays free until one may.
//!
//! Crash rules (issue 11): a bundle `owned` by a broker whose lease expired is left to it and
//! reported (`Tier::view`), never reassigned here: its unuploaded tail may exist only on that
//! broker's disk. A bundle still `assigning` to a broker that is gone was never served by it,
//! so it holds nothing there and is assigned again.

use super::Tier;
use super::isolation::{Candidate, eligible};
use super::load::TierLoad;
use crate::Result;
use magnetar_core::NamespaceName;
use magnetar_metadata::{BrokerRecord, BundleState, BundleTransition, MetadataError, NamespaceIsolationData};
use std::collections::HashMap;

/// The ids among `ids` of the brokers the isolation policies allow to own a bundle of `ns`.
fn allowed_among<'a>(
    policies: &[NamespaceIsolationData],
    ns: &NamespaceName,
    brokers: &HashMap<String, BrokerRecord>,
    ids: impl Iterator<Item = &'a String>,
) -> Vec<String> {
    let live: Vec<Candidate> = ids
        .filter_map(|id| brokers.get(id))
        .map(|b| Candidate { id: &b.registration.broker_id, advertised: &b.registration.advertised_address })
        .collect();
    eligible(policies, &ns.to_string(), &live).into_iter().map(str::to_string).collect()
}

impl Tier {
    /// One pass (see the module docs). Errors are logged by the caller's loop.
    pub async fn refresh(&self) -> Result<()> {
        if !self.enabled() {
            return Ok(());
        }
        let brokers = self.refresh_brokers().await?;
        let rows = self.metadata.list_bundles().await?;
        let (id, session) = self.me();
        let (id, session) = (id.to_string(), session.to_string());
        let held = |r: &&magnetar_metadata::BundleOwnership| {
            matches!(r.state, BundleState::Owned | BundleState::Assigning | BundleState::Releasing)
        };
        let live = |o: &Option<String>| o.as_ref().and_then(|o| brokers.get(o)).is_some_and(|b| b.alive);
        self.metrics
            .bundles_owned
            .set(rows.iter().filter(|r| r.state == BundleState::Owned && self.mine(r)).count() as i64);
        self.metrics.unavailable_bundles.set(rows.iter().filter(held).filter(|r| !live(&r.owner)).count() as i64);
        self.metrics.live_brokers.set(brokers.values().filter(|b| b.alive).count() as i64);
        for row in rows {
            let addressed_here = row.owner.as_deref() == Some(id.as_str())
                && (row.state == BundleState::Assigning
                    || (row.state == BundleState::Owned && row.owner_session.as_deref() != Some(session.as_str())));
            let row = if addressed_here { self.take(row).await? } else { row };
            self.remember(row);
        }
        let leader = self.is_leader().await?;
        self.metrics.leader.set(i64::from(leader));
        if leader {
            self.place().await?;
            self.rebalance().await?;
        }
        self.find_hot_bundle(&brokers).await?;
        Ok(())
    }

    /// The namespace isolation policies of this broker's cluster.
    async fn isolation_policies(&self) -> Result<Vec<NamespaceIsolationData>> {
        let cluster = self.membership.registration().cluster.clone();
        // A cluster without a row (never created through the admin API) has no policies.
        match self.metadata.list_isolation_policies(&cluster).await {
            Ok(p) => Ok(p.into_values().collect()),
            Err(MetadataError::NotFound(_)) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// The ids among `ids` of the brokers allowed to own a bundle of `ns`.
    pub(super) async fn allowed_brokers<'a>(
        &self,
        ns: &NamespaceName,
        brokers: &HashMap<String, BrokerRecord>,
        ids: impl Iterator<Item = &'a String>,
    ) -> Result<Vec<String>> {
        Ok(allowed_among(&self.isolation_policies().await?, ns, brokers, ids))
    }

    /// The leader's placement of free bundles (and of assignments to brokers that are gone).
    /// Returns how many bundles it assigned.
    pub async fn place(&self) -> Result<usize> {
        let brokers = self.refresh_brokers().await?;
        let rows = self.metadata.list_bundles().await?;
        let remembered = self.balance.lock().unwrap_or_else(|e| e.into_inner()).remembered();
        let mut load = TierLoad::measure(&brokers, &rows, &remembered);
        if load.brokers.is_empty() {
            return Ok(0);
        }
        let policies = self.isolation_policies().await?;
        let mut assigned = 0;
        for row in rows {
            let stranded = row.state == BundleState::Assigning
                && row.owner.as_ref().is_none_or(|o| !brokers.get(o).is_some_and(|b| b.alive));
            if row.state != BundleState::Free && !stranded {
                continue;
            }
            if row.state == BundleState::Free && !self.is_current_row(&row).await? {
                self.retire(&row).await?;
                continue;
            }
            let allowed = allowed_among(&policies, &row.namespace, &brokers, load.brokers.keys());
            let Some((target, session)) = load.lightest(&allowed) else {
                tracing::warn!(bundle = %format!("{}/{}", row.namespace, row.bundle),
                    "no live broker is allowed by the namespace isolation policies: the bundle waits");
                continue;
            };
            let to = BundleTransition { state: BundleState::Assigning, owner: Some((target.clone(), session)) };
            match self.metadata.transition_bundle(&row.namespace, &row.bundle, row.epoch, row.state, &to, &[]).await {
                Ok(updated) => {
                    self.metrics.transition("assigning");
                    tracing::info!(bundle = %format!("{}/{}", updated.namespace, updated.bundle), broker = %target,
                        epoch = updated.epoch, "bundle assigned");
                    load.add(&target, (updated.namespace.clone(), updated.bundle.clone()));
                    self.remember(updated);
                    assigned += 1;
                }
                // Another broker moved it meanwhile (a second leader, or its owner took it).
                Err(MetadataError::Conflict(_)) | Err(MetadataError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(assigned)
    }
}
