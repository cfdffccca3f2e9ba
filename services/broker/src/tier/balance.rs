//! The leader's balance (issue 11, item 4): moves bundles away from brokers loaded above the mean
//! by a margin, one bundle per overloaded broker per pass, at most `max_moves_per_minute` in any
//! minute and never the same bundle twice within `bundle_cooldown_ms`, so balance converges in
//! a bounded number of moves and a flapping broker cannot start a storm. A pass waits while any
//! bundle is still assigning or releasing.
//!
//! Load is what `load` weighs: traffic in a busy tier, bundle counts in an idle one. The bundle
//! moved is the one that best halves the gap between the broker and the lightest one, and only
//! one lighter than that gap (so a move never just swaps which broker is the heaviest). A broker
//! whose load is one bundle too heavy to move that way is relieved by splitting it (`split`).
//!
//! A move is asked of the owner through the ownership table (`request_release`); the owner's
//! next pass hands the bundle over to the lightest broker.

use super::load::TierLoad;
use super::{Key, Tier};
use crate::Result;
use magnetar_core::bundles::BundleRange;
use magnetar_metadata::BundleState;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Default)]
pub(super) struct BalanceState {
    last_pass: Option<Instant>,
    /// When recent moves were asked (the per-minute cap).
    moves: VecDeque<Instant>,
    /// When each bundle was last moved or split, and what it weighed then (the cool-down).
    moved: HashMap<Key, (Instant, f64)>,
}

/// How long a moved bundle's weight is remembered at least: its new owner measures rates over
/// 5-second windows (the first window of a partition just loaded has none) and reports them with
/// its next renewal.
const REPORT_LAG: Duration = Duration::from_secs(15);

impl BalanceState {
    /// Forgets moves older than both the cool-down and the report lag.
    fn expire(&mut self, cooldown: Duration) {
        let keep = cooldown.max(REPORT_LAG);
        self.moved.retain(|_, (t, _)| t.elapsed() < keep);
    }

    /// What the bundles moved within the cool-down weighed when moved.
    pub(super) fn remembered(&self) -> HashMap<Key, f64> {
        self.moved.iter().map(|(k, (_, w))| (k.clone(), *w)).collect()
    }

    /// Whether `k` was moved or split within `cooldown`.
    pub(super) fn cooling(&self, k: &Key, cooldown: Duration) -> bool {
        self.moved.get(k).is_some_and(|(t, _)| t.elapsed() < cooldown)
    }

    pub(super) fn note(&mut self, k: Key, weight: f64) {
        self.moves.push_back(Instant::now());
        self.moved.insert(k, (Instant::now(), weight));
    }

    /// A split in progress: not picked again within the cool-down (not counted as a move).
    pub(super) fn note_split(&mut self, k: Key, weight: f64) {
        self.moved.insert(k, (Instant::now(), weight));
    }
}

/// Which brokers shed a bundle, given each one's load: those above `mean × (1 + margin)`.
/// Heaviest first.
pub(super) fn overloaded(loads: &BTreeMap<String, f64>, margin: f64) -> Vec<String> {
    if loads.len() < 2 {
        return Vec::new();
    }
    let mean = loads.values().sum::<f64>() / loads.len() as f64;
    let mut over: Vec<(&String, f64)> =
        loads.iter().filter(|(_, l)| **l > mean * (1.0 + margin)).map(|(id, l)| (id, *l)).collect();
    over.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    over.into_iter().map(|(id, _)| id.clone()).collect()
}

/// The bundle of `bundles` (with their weights) to move to close `gap`, the load difference
/// between the broker and the lightest: lighter than the gap, so that the receiver ends below
/// where the sender was, and closest to half of it. `None` when none qualifies or every
/// candidate is `excluded`.
pub(super) fn pick(bundles: &[(Key, f64)], gap: f64, excluded: impl Fn(&Key) -> bool) -> Option<&(Key, f64)> {
    bundles
        .iter()
        .filter(|(k, w)| *w > 0.0 && *w < gap && !excluded(k))
        .min_by(|a, b| (a.1 - gap / 2.0).abs().total_cmp(&(b.1 - gap / 2.0).abs()).then(a.0.cmp(&b.0)))
}

impl Tier {
    /// One balance pass of the leader; returns how many moves it asked for.
    pub(super) async fn rebalance(&self) -> Result<usize> {
        let every = Duration::from_millis(self.config.rebalance_interval_ms.max(10));
        let remembered = {
            let mut state = self.balance.lock().unwrap_or_else(|e| e.into_inner());
            if state.last_pass.is_some_and(|t| t.elapsed() < every) {
                return Ok(0);
            }
            state.last_pass = Some(Instant::now());
            state.expire(Duration::from_millis(self.config.bundle_cooldown_ms));
            state.remembered()
        };
        let brokers = self.refresh_brokers().await?;
        let rows = self.metadata.list_bundles().await?;
        if rows.iter().any(|r| matches!(r.state, BundleState::Assigning | BundleState::Releasing)) {
            return Ok(0);
        }
        let load = TierLoad::measure(&brokers, &rows, &remembered);
        let loads = load.loads();
        let lightest = loads.values().copied().fold(f64::INFINITY, f64::min);
        let mut asked = 0;
        for broker in overloaded(&loads, self.config.rebalance_margin) {
            let Some((candidate, weight)) = self.allowed_move(&load, &broker, loads[&broker] - lightest) else {
                continue;
            };
            let Ok(range) = BundleRange::parse(&candidate.1) else { continue };
            if self.request_release(&candidate.0, &range).await? {
                tracing::info!(bundle = %format!("{}/{}", candidate.0, candidate.1), from = %broker, weight,
                    loads = ?loads, "balance: moving a bundle off an overloaded broker");
                self.metrics.rebalance_moves.inc();
                self.balance.lock().unwrap_or_else(|e| e.into_inner()).note(candidate, weight);
                asked += 1;
            }
        }
        Ok(asked)
    }

    /// The bundle `broker` sheds now, cap and cool-down permitting.
    fn allowed_move(&self, load: &TierLoad, broker: &str, gap: f64) -> Option<(Key, f64)> {
        let mut state = self.balance.lock().unwrap_or_else(|e| e.into_inner());
        let minute = Duration::from_secs(60);
        while state.moves.front().is_some_and(|t| t.elapsed() >= minute) {
            state.moves.pop_front();
        }
        if state.moves.len() >= self.config.max_moves_per_minute as usize {
            return None;
        }
        let bundles = &load.brokers.get(broker)?.bundles;
        let cooldown = Duration::from_millis(self.config.bundle_cooldown_ms);
        pick(bundles, gap, |k| state.cooling(k, cooldown)).cloned()
    }
}

pub(super) type Balance = Mutex<BalanceState>;

#[cfg(test)]
mod tests {
    use super::{overloaded, pick};
    use magnetar_core::NamespaceName;
    use std::collections::BTreeMap;

    type Tier = BTreeMap<String, Vec<f64>>;

    fn tier(v: &[(&str, &[f64])]) -> Tier {
        v.iter().map(|(k, w)| (k.to_string(), w.to_vec())).collect()
    }

    fn loads(t: &Tier) -> BTreeMap<String, f64> {
        t.iter().map(|(k, w)| (k.clone(), w.iter().sum())).collect()
    }

    /// The leader's passes until none moves anything: each pass moves what `pick` chooses from
    /// the heaviest overloaded broker to the lightest. Returns the number of moves.
    fn settle(t: &mut Tier, margin: f64) -> usize {
        let ns: NamespaceName = "t/ns".parse().unwrap();
        let mut moves = 0;
        loop {
            let l = loads(t);
            let (to, min) = l.iter().min_by(|a, b| a.1.total_cmp(b.1)).map(|(k, v)| (k.clone(), *v)).unwrap();
            let Some((from, i)) = overloaded(&l, margin).into_iter().find_map(|from| {
                let bundles: Vec<_> =
                    t[&from].iter().enumerate().map(|(i, w)| ((ns.clone(), i.to_string()), *w)).collect();
                let i = pick(&bundles, l[&from] - min, |_| false)?.0.1.parse::<usize>().unwrap();
                Some((from, i))
            }) else {
                return moves;
            };
            let w = t.get_mut(&from).unwrap().remove(i);
            t.get_mut(&to).unwrap().push(w);
            moves += 1;
            assert!(moves <= 100, "no convergence: {t:?}");
        }
    }

    #[test]
    fn a_broker_above_the_mean_by_the_margin_sheds_and_a_balanced_tier_does_not() {
        let l = |v: &[(&str, f64)]| v.iter().map(|(k, n)| (k.to_string(), *n)).collect::<BTreeMap<_, _>>();
        assert_eq!(overloaded(&l(&[("a", 16.0), ("b", 0.0), ("c", 0.0)]), 0.25), vec!["a"]);
        assert!(overloaded(&l(&[("a", 6.0), ("b", 5.0), ("c", 5.0)]), 0.25).is_empty());
        assert!(overloaded(&l(&[("a", 9.0)]), 0.25).is_empty(), "alone, nothing to balance");
        // One bundle more than the other is as balanced as it gets: a move would just swap.
        let mut t = tier(&[("a", &[1.0, 1.0]), ("b", &[1.0])]);
        assert_eq!(settle(&mut t, 0.0), 0);
    }

    #[test]
    fn idle_bundles_converge_by_count_within_a_bounded_number_of_moves() {
        let mut t = tier(&[("a", &[1.0; 16]), ("b", &[]), ("c", &[])]);
        let moves = settle(&mut t, 0.25);
        let counts: Vec<usize> = t.values().map(Vec::len).collect();
        assert!(counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 2, "{t:?}");
        assert!(moves <= 11, "{moves} moves");
    }

    #[test]
    fn busy_bundles_converge_by_traffic_and_idle_ones_stay() {
        // a carries two hot bundles, b as many bundles but idle: counts are even, traffic is not.
        let mut t = tier(&[("a", &[1_000.0, 900.0, 20.0]), ("b", &[20.0, 20.0, 20.0])]);
        assert_eq!(settle(&mut t, 0.25), 1);
        assert!(t["b"].contains(&900.0) || t["b"].contains(&1_000.0), "one hot bundle moved: {t:?}");
        // Three hot bundles of unequal weights over three brokers end one per broker.
        let mut t = tier(&[("a", &[3_000.0, 2_000.0, 1_000.0, 5.0]), ("b", &[5.0]), ("c", &[5.0])]);
        let moves = settle(&mut t, 0.25);
        assert!(moves <= 3, "{moves} moves: {t:?}");
        assert!(t.values().all(|w| w.iter().filter(|w| **w >= 1_000.0).count() == 1), "{t:?}");
    }

    #[test]
    fn one_bundle_heavier_than_the_gap_is_not_moved_it_is_split() {
        let mut t = tier(&[("a", &[5_000.0]), ("b", &[10.0])]);
        assert_eq!(settle(&mut t, 0.25), 0, "moving it would only make b the hot broker");
    }
}
