//! Hot bundles (issue 11, item 4): a bundle whose traffic or topic count passes one of
//! `[broker.tier]`'s split thresholds (Pulsar's `loadBalancerNamespaceBundleMax*` defaults) is
//! split, so that its halves can be placed on different brokers. Balance alone cannot relieve a
//! broker whose load is one bundle: moving it only makes another broker the hot one.
//!
//! Its owner decides, from the figures it reports with its lease (every broker applies the same
//! thresholds, so this is what a leader reading the reports would decide, without a call from
//! the leader to the owner): at most one bundle per pass, the hottest, among bundles with two
//! topics or more (a single partition cannot be divided) in namespaces below
//! `max_bundles_per_namespace`, not split within the cool-down. The broker carries the split out
//! (`Broker::split_owned`): the bundle is handed over and cut while its requests are held,
//! between its middle topics (`topic_count_equally_divide`: the middle of the hash range may
//! leave every topic on one side), and the leader places the halves like any new bundle.

use super::{Key, Tier};
use crate::{BrokerError, Result};
use magnetar_core::NamespaceName;
use magnetar_core::bundles::BundleRange;
use magnetar_metadata::{BrokerRecord, BundleState, BundleStats, Freshness};
use std::collections::HashMap;

impl super::TierConfig {
    /// Whether a bundle with these figures passes a split threshold.
    pub fn is_hot(&self, s: &BundleStats) -> bool {
        s.msg_rate_in + s.msg_rate_out > self.split_msg_rate
            || s.msg_throughput_in + s.msg_throughput_out > self.split_bytes_rate
            || s.topics > self.split_topics
    }
}

/// `tenant/namespace/range` as reported in `bundleStats`.
fn parse_reported(name: &str) -> Option<(NamespaceName, BundleRange)> {
    let (ns, range) = name.rsplit_once('/')?;
    Some((ns.parse().ok()?, BundleRange::parse(range).ok()?))
}

impl Tier {
    /// The hottest bundle of this broker's to split now, if any (see the module docs). It is
    /// marked as cooling down, so the next passes do not pick it again while it is split.
    pub(super) async fn find_hot_bundle(&self, brokers: &HashMap<String, BrokerRecord>) -> Result<()> {
        if !self.config.auto_split {
            return Ok(());
        }
        let cooldown = std::time::Duration::from_millis(self.config.bundle_cooldown_ms);
        let mut hottest: Option<(Key, BundleRange, f64)> = None;
        let me = self.me().1;
        for b in brokers.values().filter(|b| b.alive && b.registration.session_id == me) {
            for (name, stats) in &b.load.bundle_stats {
                if stats.topics < 2 || !self.config.is_hot(stats) {
                    continue;
                }
                let Some((ns, range)) = parse_reported(name) else { continue };
                let k = (ns, range.to_string());
                let owned = self.cached(&k).is_some_and(|r| r.state == BundleState::Owned && self.mine(&r));
                let weight = super::load::traffic(stats);
                let cooling = self.balance.lock().unwrap_or_else(|e| e.into_inner()).cooling(&k, cooldown);
                if owned && !cooling && hottest.as_ref().is_none_or(|h| weight > h.2) {
                    hottest = Some((k, range, weight));
                }
            }
        }
        let Some((k, range, weight)) = hottest else { return Ok(()) };
        let count = match self.bundles(&k.0, Freshness::Cached).await {
            Ok(b) => b.ranges().count(),
            Err(BrokerError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        if count >= self.config.max_bundles_per_namespace {
            tracing::debug!(bundle = %format!("{}/{}", k.0, k.1), count, "hot bundle not split: the namespace has its most bundles");
            return Ok(());
        }
        tracing::info!(bundle = %format!("{}/{}", k.0, k.1), weight, "hot bundle: splitting it");
        self.balance.lock().unwrap_or_else(|e| e.into_inner()).note_split(k.clone(), weight);
        *self.pending_split.lock().unwrap_or_else(|e| e.into_inner()) = Some((k.0, range));
        Ok(())
    }

    /// The bundle the leader decided to split, for the broker to carry out (once).
    pub fn take_split(&self) -> Option<(NamespaceName, BundleRange)> {
        self.pending_split.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_and_reported_names() {
        let c = super::super::TierConfig { split_msg_rate: 100.0, split_topics: 10, ..Default::default() };
        assert!(!c.is_hot(&BundleStats { msg_rate_in: 60.0, msg_rate_out: 40.0, topics: 10, ..Default::default() }));
        assert!(c.is_hot(&BundleStats { msg_rate_in: 60.0, msg_rate_out: 41.0, ..Default::default() }));
        assert!(c.is_hot(&BundleStats { topics: 11, ..Default::default() }));
        let (ns, range) = parse_reported("acme/app/0x00000000_0x80000000").unwrap();
        assert_eq!((ns.to_string(), range.to_string()), ("acme/app".into(), "0x00000000_0x80000000".into()));
        assert!(parse_reported("acme/0x00000000_0x80000000").is_none());
    }
}
