//! The tier's side of a handover (issue 11, item 5): the state transitions of a bundle leaving
//! this broker, and the in-memory mark that holds its requests meanwhile. The work in between —
//! stop, flush, upload the tail, checkpoint cursors — is the broker's (`crate::handover`).
//!
//! `owned → releasing` is either this broker's own decision (SIGTERM drain, admin unload) or a
//! request from another broker (the leader shedding load, an admin unload asked elsewhere):
//! `request_release` moves the row to `releasing` keeping owner and session, and the owner's
//! next pass finds it (`requested_releases`) and runs the handover. The owner ends it with
//! `finish_release`: `releasing → assigning` to the broker it chose (or `free` when no other may
//! take it), bumping the epochs of the bundle's partitions in the same transaction so that a
//! late write of this broker is refused; or, when the handover failed, back to `owned`.

use super::load::TierLoad;
use super::{Key, Tier, key};
use crate::error::Result;
use crate::{BrokerError, Entity};
use magnetar_core::NamespaceName;
use magnetar_core::bundles::BundleRange;
use magnetar_metadata::{BrokerRecord, BrokerState, BundleOwnership, BundleState, BundleTransition, MetadataError};

/// How a release ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Released {
    /// The tail and cursors are in the shared stores: the bundle goes to the lightest other
    /// broker allowed to take it (`free` when there is none; the leader places it later), with
    /// the partitions' epochs bumped.
    Handed,
    /// Handed over as above and then split: the range is gone, its row is freed (epochs bumped)
    /// and deleted; the new bundles' rows are placed like any new bundle.
    Split,
    /// The handover failed: back to `owned` by this process, which serves it again.
    Failed,
}

impl Tier {
    pub(super) fn is_moving(&self, k: &Key) -> bool {
        self.moving.lock().unwrap_or_else(|e| e.into_inner()).contains(k)
    }

    /// Starts releasing a bundle this process owns: the row goes to `releasing` (unless a
    /// request already put it there) and requests for it are held from now on. `None` when the
    /// bundle is not this process's or is already being released here.
    pub async fn begin_release(&self, ns: &NamespaceName, range: &BundleRange) -> Result<Option<BundleOwnership>> {
        let k = key(ns, range);
        {
            let mut moving = self.moving.lock().unwrap_or_else(|e| e.into_inner());
            if !moving.insert(k.clone()) {
                return Ok(None);
            }
        }
        let outcome = self.mark_releasing(ns, &k.1).await;
        match outcome {
            Ok(Some(row)) => Ok(Some(row)),
            other => {
                self.moving.lock().unwrap_or_else(|e| e.into_inner()).remove(&k);
                other
            }
        }
    }

    async fn mark_releasing(&self, ns: &NamespaceName, bundle: &str) -> Result<Option<BundleOwnership>> {
        let Some(row) = self.metadata.get_bundle(ns, bundle).await? else { return Ok(None) };
        if !self.mine(&row) {
            return Ok(None);
        }
        match row.state {
            BundleState::Releasing => Ok(Some(row)),
            BundleState::Owned => {
                let to = BundleTransition {
                    state: BundleState::Releasing,
                    owner: row.owner.clone().zip(row.owner_session.clone()),
                };
                match self.metadata.transition_bundle(ns, bundle, row.epoch, row.state, &to, &[]).await {
                    Ok(updated) => {
                        self.metrics.transition("releasing");
                        self.remember(updated.clone());
                        Ok(Some(updated))
                    }
                    Err(MetadataError::Conflict(_)) => Ok(None),
                    Err(e) => Err(e.into()),
                }
            }
            BundleState::Free | BundleState::Assigning => Ok(None),
        }
    }

    /// Ends a release begun by `begin_release` (see `Released`).
    /// `chosen`: the next owner picked by `choose_next_owner`, kept unless it left the tier
    /// meanwhile (its clients were told to reconnect there).
    pub async fn finish_release(
        &self,
        row: &BundleOwnership,
        partitions: &[i64],
        how: Released,
        chosen: Option<&BrokerRecord>,
    ) -> Result<BundleOwnership> {
        let k = (row.namespace.clone(), row.bundle.clone());
        let outcome = self.commit_release(row, partitions, how, chosen).await;
        self.moving.lock().unwrap_or_else(|e| e.into_inner()).remove(&k);
        outcome
    }

    async fn commit_release(
        &self,
        row: &BundleOwnership,
        partitions: &[i64],
        how: Released,
        chosen: Option<&BrokerRecord>,
    ) -> Result<BundleOwnership> {
        let to = match how {
            Released::Handed => {
                let kept = match chosen {
                    Some(b) => self.still_active(b).await?,
                    None => None,
                };
                let target = match kept {
                    Some(target) => Some(target),
                    None => self.choose_target(&row.namespace, Some(self.me().0)).await?,
                };
                match target {
                    Some(target) => BundleTransition { state: BundleState::Assigning, owner: Some(target) },
                    None => BundleTransition { state: BundleState::Free, owner: None },
                }
            }
            Released::Split => BundleTransition { state: BundleState::Free, owner: None },
            Released::Failed => {
                let (id, session) = self.me();
                BundleTransition { state: BundleState::Owned, owner: Some((id.to_string(), session.to_string())) }
            }
        };
        let parts = if how == Released::Failed { &[] } else { partitions };
        let updated =
            self.metadata.transition_bundle(&row.namespace, &row.bundle, row.epoch, row.state, &to, parts).await?;
        self.metrics.transition(updated.state.as_str());
        tracing::info!(bundle = %format!("{}/{}", updated.namespace, updated.bundle), state = updated.state.as_str(),
            owner = ?updated.owner, epoch = updated.epoch, "bundle released");
        if how == Released::Split {
            self.retire(&updated).await?;
        } else {
            self.remember(updated.clone());
        }
        Ok(updated)
    }

    /// Deletes the free row of a range that is no longer a bundle (a split's old range, or a
    /// row a stale view created for it), and forgets it.
    pub(super) async fn retire(&self, row: &BundleOwnership) -> Result<()> {
        match self.metadata.retire_bundle(&row.namespace, &row.bundle, row.epoch).await {
            // Someone else retired it, or it moved on: nothing of it is ours to delete.
            Ok(()) | Err(MetadataError::NotFound(_)) | Err(MetadataError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
        self.rows.write().unwrap_or_else(|e| e.into_inner()).remove(&(row.namespace.clone(), row.bundle.clone()));
        tracing::info!(bundle = %format!("{}/{}", row.namespace, row.bundle), "row of a split bundle retired");
        Ok(())
    }

    /// Asks the owner of a bundle to hand it over (admin unload, the leader's balance): `owned →
    /// releasing`, owner kept. `false` when the bundle is not owned by a live broker now.
    pub async fn request_release(&self, ns: &NamespaceName, range: &BundleRange) -> Result<bool> {
        let bundle = range.to_string();
        let Some(row) = self.metadata.get_bundle(ns, &bundle).await? else { return Ok(false) };
        if row.state == BundleState::Releasing {
            return Ok(true);
        }
        if row.state != BundleState::Owned {
            return Ok(false);
        }
        let to =
            BundleTransition { state: BundleState::Releasing, owner: row.owner.clone().zip(row.owner_session.clone()) };
        match self.metadata.transition_bundle(ns, &bundle, row.epoch, row.state, &to, &[]).await {
            Ok(updated) => {
                self.metrics.transition("releasing");
                self.remember(updated);
                Ok(true)
            }
            Err(MetadataError::Conflict(_)) => Ok(false),
            Err(MetadataError::NotFound(_)) => Err(BrokerError::NotFound(Entity::Namespace(ns.clone()))),
            Err(e) => Err(e.into()),
        }
    }

    /// Bundles of this process that another broker asked it to release and that no handover
    /// here is working on yet.
    pub async fn requested_releases(&self) -> Result<Vec<(NamespaceName, BundleRange)>> {
        let rows = self.metadata.list_bundles().await?;
        Ok(rows
            .into_iter()
            .filter(|r| r.state == BundleState::Releasing && self.mine(r))
            .filter(|r| !self.is_moving(&(r.namespace.clone(), r.bundle.clone())))
            .filter_map(|r| BundleRange::parse(&r.bundle).ok().map(|b| (r.namespace, b)))
            .collect())
    }

    /// Bundles this process owns (what a drain hands over).
    pub async fn owned_here(&self) -> Result<Vec<(NamespaceName, BundleRange)>> {
        let rows = self.metadata.list_bundles().await?;
        Ok(rows
            .into_iter()
            .filter(|r| matches!(r.state, BundleState::Owned | BundleState::Releasing) && self.mine(r))
            .filter_map(|r| BundleRange::parse(&r.bundle).ok().map(|b| (r.namespace, b)))
            .collect())
    }

    /// The broker a bundle of `ns` this process hands over goes to (`choose_target`), chosen
    /// before its producers and consumers are closed so that they can be told (PIP-307).
    pub async fn choose_next_owner(&self, ns: &NamespaceName) -> Result<Option<BrokerRecord>> {
        let Some((id, session)) = self.choose_target(ns, Some(self.me().0)).await? else { return Ok(None) };
        let known = self.brokers.read().unwrap_or_else(|e| e.into_inner()).get(&id).cloned();
        Ok(known.filter(|b| b.registration.session_id == session))
    }

    /// `b`'s id and session if that same process is still a live, active member.
    async fn still_active(&self, b: &BrokerRecord) -> Result<Option<(String, String)>> {
        let reg = &b.registration;
        let now = self.refresh_brokers().await?.remove(&reg.broker_id);
        Ok(now
            .filter(|n| n.alive && n.state == BrokerState::Active && n.registration.session_id == reg.session_id)
            .map(|_| (reg.broker_id.clone(), reg.session_id.clone())))
    }

    /// The lightest live, active broker (`load`) among those the namespace's isolation policies
    /// allow, other than `exclude`: its id and session.
    pub(crate) async fn choose_target(
        &self,
        ns: &NamespaceName,
        exclude: Option<&str>,
    ) -> Result<Option<(String, String)>> {
        let brokers = self.refresh_brokers().await?;
        let rows = self.metadata.list_bundles().await?;
        let remembered = self.balance.lock().unwrap_or_else(|e| e.into_inner()).remembered();
        let load = TierLoad::measure(&brokers, &rows, &remembered);
        let candidates = load.brokers.keys().filter(|id| Some(id.as_str()) != exclude);
        let allowed = self.allowed_brokers(ns, &brokers, candidates).await?;
        Ok(load.lightest(&allowed))
    }
}
