//! The leader's balance (issue 11, item 4): moves bundles away from brokers owning more than
//! the mean by a margin, one bundle per overloaded broker per pass, at most
//! `max_moves_per_minute` in any minute and never the same bundle twice within
//! `bundle_cooldown_ms`, so balance converges in a bounded number of moves and a flapping
//! broker cannot start a storm. A pass waits while any bundle is still assigning or releasing.
//!
//! The measure is the number of bundles owned. Every broker also reports its message and byte
//! rates with its lease (`/admin/v2/brokers/{cluster}`); weighting bundles by them needs
//! per-bundle rates, which brokers do not report yet.
//!
//! A move is asked of the owner through the ownership table (`request_release`); the owner's
//! next pass hands the bundle over to the broker owning the fewest.

use super::{Key, Tier};
use crate::Result;
use magnetar_core::bundles::BundleRange;
use magnetar_metadata::{BrokerState, BundleState};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Default)]
pub(super) struct BalanceState {
    last_pass: Option<Instant>,
    /// When recent moves were asked (the per-minute cap).
    moves: VecDeque<Instant>,
    /// When each bundle was last moved (the cool-down).
    moved: HashMap<Key, Instant>,
}

/// Which brokers shed a bundle, given each one's bundle count: those above `mean × (1 +
/// margin)` whose move would not just make another broker the heaviest (their count exceeds
/// the lightest one's by two or more). Heaviest first.
pub(super) fn overloaded(counts: &BTreeMap<String, usize>, margin: f64) -> Vec<String> {
    if counts.len() < 2 {
        return Vec::new();
    }
    let total: usize = counts.values().sum();
    let mean = total as f64 / counts.len() as f64;
    let min = counts.values().copied().min().unwrap_or(0);
    let mut over: Vec<(&String, usize)> = counts
        .iter()
        .filter(|(_, n)| (**n as f64) > mean * (1.0 + margin) && **n >= min + 2)
        .map(|(id, n)| (id, *n))
        .collect();
    over.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    over.into_iter().map(|(id, _)| id.clone()).collect()
}

impl Tier {
    /// One balance pass of the leader; returns how many moves it asked for.
    pub(super) async fn rebalance(&self) -> Result<usize> {
        let every = Duration::from_millis(self.config.rebalance_interval_ms.max(10));
        {
            let mut state = self.balance.lock().unwrap_or_else(|e| e.into_inner());
            if state.last_pass.is_some_and(|t| t.elapsed() < every) {
                return Ok(0);
            }
            state.last_pass = Some(Instant::now());
        }
        let brokers = self.refresh_brokers().await?;
        let mut counts: BTreeMap<String, usize> = brokers
            .values()
            .filter(|b| b.alive && b.state == BrokerState::Active)
            .map(|b| (b.registration.broker_id.clone(), 0))
            .collect();
        let rows = self.metadata.list_bundles().await?;
        if rows.iter().any(|r| matches!(r.state, BundleState::Assigning | BundleState::Releasing)) {
            return Ok(0);
        }
        let mut owned: BTreeMap<String, Vec<Key>> = BTreeMap::new();
        for r in &rows {
            if r.state == BundleState::Owned
                && let Some(o) = r.owner.as_ref()
                && let Some(n) = counts.get_mut(o)
            {
                *n += 1;
                owned.entry(o.clone()).or_default().push((r.namespace.clone(), r.bundle.clone()));
            }
        }
        let mut asked = 0;
        for broker in overloaded(&counts, self.config.rebalance_margin) {
            let Some(candidate) = self.pick(owned.get(&broker).map(Vec::as_slice).unwrap_or_default()) else {
                continue;
            };
            let Ok(range) = BundleRange::parse(&candidate.1) else { continue };
            if self.request_release(&candidate.0, &range).await? {
                tracing::info!(bundle = %format!("{}/{}", candidate.0, candidate.1), from = %broker, counts = ?counts,
                    "balance: moving a bundle off an overloaded broker");
                self.metrics.rebalance_moves.inc();
                let mut state = self.balance.lock().unwrap_or_else(|e| e.into_inner());
                state.moves.push_back(Instant::now());
                state.moved.insert(candidate, Instant::now());
                asked += 1;
            }
        }
        Ok(asked)
    }

    /// A bundle of `bundles` that may move now (cap and cool-down permitting).
    fn pick(&self, bundles: &[Key]) -> Option<Key> {
        let mut state = self.balance.lock().unwrap_or_else(|e| e.into_inner());
        let minute = Duration::from_secs(60);
        while state.moves.front().is_some_and(|t| t.elapsed() >= minute) {
            state.moves.pop_front();
        }
        if state.moves.len() >= self.config.max_moves_per_minute as usize {
            return None;
        }
        let cooldown = Duration::from_millis(self.config.bundle_cooldown_ms);
        state.moved.retain(|_, t| t.elapsed() < cooldown);
        bundles.iter().find(|k| !state.moved.contains_key(*k)).cloned()
    }
}

pub(super) type Balance = Mutex<BalanceState>;

#[cfg(test)]
mod tests {
    use super::overloaded;
    use std::collections::BTreeMap;

    fn counts(v: &[(&str, usize)]) -> BTreeMap<String, usize> {
        v.iter().map(|(k, n)| (k.to_string(), *n)).collect()
    }

    #[test]
    fn a_broker_above_the_mean_by_the_margin_sheds_and_a_balanced_tier_does_not() {
        assert_eq!(overloaded(&counts(&[("a", 16), ("b", 0), ("c", 0)]), 0.25), vec!["a"]);
        assert!(overloaded(&counts(&[("a", 6), ("b", 5), ("c", 5)]), 0.25).is_empty());
        // One more than the others is balanced as well as it gets: no move that just swaps.
        assert!(overloaded(&counts(&[("a", 2), ("b", 1)]), 0.0).is_empty());
        assert!(overloaded(&counts(&[("a", 9)]), 0.25).is_empty(), "alone, nothing to balance");
    }

    #[test]
    fn repeated_passes_converge_within_a_bounded_number_of_moves() {
        // Each move takes one bundle from the heaviest to the lightest broker.
        let mut c = counts(&[("a", 16), ("b", 0), ("c", 0)]);
        let mut moves = 0;
        while let Some(from) = overloaded(&c, 0.25).first().cloned() {
            let to = c.iter().min_by_key(|(_, n)| **n).map(|(k, _)| k.clone()).unwrap();
            *c.get_mut(&from).unwrap() -= 1;
            *c.get_mut(&to).unwrap() += 1;
            moves += 1;
            assert!(moves <= 16, "no convergence: {c:?}");
        }
        let max = c.values().max().unwrap();
        let min = c.values().min().unwrap();
        assert!(max - min <= 2, "{c:?}");
        assert!(moves <= 11, "{moves} moves");
    }
}
