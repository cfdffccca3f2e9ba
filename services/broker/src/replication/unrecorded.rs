//! A peer's copies that no recovery will read any more. A recovery reads only the peers its
//! partition's record names (peers and, during a move, the previous peers) and only frames of
//! the recorded epoch or later (`durability::recover_from_replicas`). A peer replaced while it
//! was away (its lease ran out, the owner moved its stream) comes back holding copies its owner
//! no longer trims and no new owner fences: without this they would stay on its disk for good.
//! Each held log is checked against its record; a verdict that stays the same, with no frame of
//! the log stored meanwhile, for the retention (10 minutes by default: far longer than a load
//! takes between sending its tail and recording its set) is applied, and the next sweep
//! deletes what holds nothing else.

use super::Replication;
use magnetar_metadata::{MetadataError, MetadataStore};
use magnetar_storage::replica::HeldLog;
use std::time::{Duration, Instant};

/// A verdict on a held log: its frames up to epoch `through` are not read by any recovery.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Unrecorded {
    through: i64,
    /// The log's last stored frame when the verdict was first given.
    mark: u64,
    since: Instant,
}

impl Replication {
    /// Checks every log held here against its recorded replica set and discards the copies that
    /// stayed unrecorded for `retention`; how many logs were discarded.
    pub(crate) async fn discard_unrecorded(&self, metadata: &dyn MetadataStore, retention: Duration) -> usize {
        let held = self.store.held();
        let mut verdicts = Vec::with_capacity(held.len());
        for h in &held {
            match self.verdict(metadata, h).await {
                Ok(through) => verdicts.push((*h, through)),
                Err(e) => tracing::debug!(log_id = h.log_id, error = %e, "replica copy not checked against its record"),
            }
        }
        let now = Instant::now();
        let mut discarded = 0;
        let mut pending = self.unrecorded.lock();
        pending.retain(|id, _| held.iter().any(|h| h.log_id == *id));
        for (h, through) in verdicts {
            let Some(through) = through else {
                pending.remove(&h.log_id);
                continue;
            };
            match pending.get(&h.log_id) {
                Some(u) if u.through == through && u.mark == h.mark => {
                    if now.duration_since(u.since) >= retention {
                        pending.remove(&h.log_id);
                        if self.store.discard(h.log_id, through, h.mark) {
                            discarded += 1;
                            self.metrics.replica_discarded.inc();
                            tracing::info!(log_id = h.log_id, through, "replica copies no recovery reads given up");
                        }
                    }
                }
                _ => {
                    pending.insert(h.log_id, Unrecorded { through, mark: h.mark, since: now });
                }
            }
        }
        discarded
    }

    /// Up to which epoch no recovery reads `h`'s frames here, if any: all of them when its
    /// partition is gone or records no replicas, those of the recorded epoch and before when
    /// the record names other brokers, those before it when it names this one.
    async fn verdict(&self, metadata: &dyn MetadataStore, h: &HeldLog) -> Result<Option<i64>, MetadataError> {
        let through = match metadata.partition_replicas(h.log_id as i64).await {
            Err(MetadataError::NotFound(_)) => i64::MAX,
            Err(e) => return Err(e),
            Ok(None) => h.epoch,
            Ok(Some((epoch, set))) => {
                if set.peers.iter().chain(&set.previous_peers).any(|p| *p == self.broker_id) {
                    epoch - 1
                } else {
                    epoch
                }
            }
        };
        // Frames of a later epoch may be a load's that has not recorded its set yet.
        Ok(Some(through.min(h.epoch)).filter(|_| through >= 0))
    }
}
