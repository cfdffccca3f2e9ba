//! How loaded each broker of the tier is, as placement, the choice of a handover's target and the
//! leader's balance all weigh it (issue 11, item 4).
//!
//! Every broker reports, with each lease renewal, the traffic of its busiest bundles
//! (`BrokerLoad::bundle_stats`, measured every few seconds). A bundle weighs its traffic: messages
//! per second in and out plus kibibytes per second in and out (one message costs about what a
//! kibibyte does — the per-message work of an append and a dispatch against the copy of its
//! bytes). A bundle no report mentions — idle, new, just moved, or below the reporter's bound —
//! weighs the *floor*: a tenth of the mean bundle's traffic, and at least 1. So an idle tier
//! balances bundle counts exactly as before, a busy one balances traffic, and a burst of new
//! bundles still spreads over the brokers instead of landing on the one that is quietest now.
//!
//! A bundle the leader moved keeps, until its cool-down ends, the weight it had when moved: its
//! new owner reports it only after its next measurement, and the leader must not take the gap
//! for spare capacity and pile more onto the same broker.

use super::Key;
use magnetar_metadata::{BrokerRecord, BrokerState, BundleOwnership, BundleState, BundleStats};
use std::collections::{BTreeMap, HashMap};

/// Most bundles a broker reports the traffic of (the busiest): the lease row stays small.
pub const REPORTED_BUNDLES: usize = 100;

/// The traffic of a bundle in the unit the tier balances: messages/s plus KiB/s, in and out.
pub fn traffic(s: &BundleStats) -> f64 {
    s.msg_rate_in + s.msg_rate_out + (s.msg_throughput_in + s.msg_throughput_out) / 1024.0
}

/// A live, active broker's share of the tier's load.
#[derive(Debug, Clone, Default)]
pub(super) struct Share {
    pub session: String,
    pub load: f64,
    /// The bundles it owns or is being given, with their weights.
    pub bundles: Vec<(Key, f64)>,
}

/// The load of every live, active broker, as last reported.
#[derive(Debug, Default)]
pub(super) struct TierLoad {
    pub brokers: BTreeMap<String, Share>,
    /// What a bundle without a report weighs.
    pub floor: f64,
}

impl TierLoad {
    /// Weighs the rows `owned` or `assigning` to the live, active brokers of `brokers`;
    /// `remembered` holds the weights of bundles moved recently (see the module docs).
    pub fn measure(
        brokers: &HashMap<String, BrokerRecord>,
        rows: &[BundleOwnership],
        remembered: &HashMap<Key, f64>,
    ) -> TierLoad {
        let mut shares: BTreeMap<String, Share> = brokers
            .values()
            .filter(|b| b.alive && b.state == BrokerState::Active)
            .map(|b| {
                let share = Share { session: b.registration.session_id.clone(), ..Share::default() };
                (b.registration.broker_id.clone(), share)
            })
            .collect();
        let held: Vec<(&String, Key, Option<f64>)> = rows
            .iter()
            .filter(|r| matches!(r.state, BundleState::Owned | BundleState::Assigning))
            .filter_map(|r| {
                let owner = r.owner.as_ref().filter(|o| shares.contains_key(*o))?;
                let k = (r.namespace.clone(), r.bundle.clone());
                // Only the owner's report counts: a previous owner's may still name the bundle.
                let reported = brokers
                    .get(owner)
                    .and_then(|b| b.load.bundle_stats.get(&format!("{}/{}", r.namespace, r.bundle)))
                    .map(traffic);
                let reported = match (reported, remembered.get(&k)) {
                    (Some(t), Some(m)) => Some(t.max(*m)),
                    (t, m) => t.or(m.copied()),
                };
                Some((owner, k, reported))
            })
            .collect();
        let known: f64 = held.iter().filter_map(|h| h.2).sum();
        let floor = if held.is_empty() { 1.0 } else { (known / held.len() as f64 / 10.0).max(1.0) };
        for (owner, k, reported) in held {
            let weight = reported.unwrap_or(0.0).max(floor);
            let share = shares.get_mut(owner).expect("filtered on live brokers above");
            share.load += weight;
            share.bundles.push((k, weight));
        }
        TierLoad { brokers: shares, floor }
    }

    /// The lightest of the brokers `allowed` (ties by id, so every broker would choose alike):
    /// its id and session.
    pub fn lightest(&self, allowed: &[String]) -> Option<(String, String)> {
        self.brokers
            .iter()
            .filter(|(id, _)| allowed.contains(id))
            .min_by(|a, b| a.1.load.total_cmp(&b.1.load).then(a.0.cmp(b.0)))
            .map(|(id, s)| (id.clone(), s.session.clone()))
    }

    /// Counts a bundle just given to `broker` (placement spreading a burst in one pass).
    pub fn add(&mut self, broker: &str, k: Key) {
        if let Some(share) = self.brokers.get_mut(broker) {
            share.load += self.floor;
            share.bundles.push((k, self.floor));
        }
    }

    /// Each broker's load by id.
    pub fn loads(&self) -> BTreeMap<String, f64> {
        self.brokers.iter().map(|(id, s)| (id.clone(), s.load)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use magnetar_metadata::{BrokerLoad, BrokerRegistration};

    fn broker(id: &str, stats: &[(&str, f64)]) -> (String, BrokerRecord) {
        let load = BrokerLoad {
            bundle_stats: stats
                .iter()
                .map(|(b, rate)| (format!("t/ns/{b}"), BundleStats { msg_rate_in: *rate, ..BundleStats::default() }))
                .collect(),
            ..BrokerLoad::default()
        };
        let registration = BrokerRegistration {
            broker_id: id.into(),
            session_id: format!("{id}-s"),
            cluster: "c".into(),
            internal_address: String::new(),
            advertised_address: String::new(),
            binary_internal_url: String::new(),
            binary_advertised_url: String::new(),
            binary_advertised_tls_url: String::new(),
            version: String::new(),
        };
        let record = BrokerRecord {
            registration,
            state: BrokerState::Active,
            load,
            registered_at_ms: 0,
            lease_expires_at_ms: 0,
            alive: true,
        };
        (id.to_string(), record)
    }

    fn row(bundle: &str, owner: &str) -> BundleOwnership {
        BundleOwnership {
            namespace: "t/ns".parse().unwrap(),
            bundle: bundle.into(),
            state: BundleState::Owned,
            owner: Some(owner.into()),
            owner_session: Some(format!("{owner}-s")),
            epoch: 1,
            updated_at_ms: 0,
        }
    }

    #[test]
    fn an_idle_tier_weighs_bundles_by_count_and_a_busy_one_by_traffic() {
        let brokers: HashMap<_, _> = [broker("a", &[]), broker("b", &[])].into();
        let rows = [row("x", "a"), row("y", "a"), row("z", "b")];
        let load = TierLoad::measure(&brokers, &rows, &HashMap::new());
        assert_eq!(load.loads(), [("a".to_string(), 2.0), ("b".to_string(), 1.0)].into());
        assert_eq!(load.lightest(&["a".into(), "b".into()]), Some(("b".into(), "b-s".into())));

        // b's one bundle carries 1,000 msg/s: the idle ones weigh a tenth of the mean.
        let brokers: HashMap<_, _> = [broker("a", &[]), broker("b", &[("z", 1_000.0)])].into();
        let load = TierLoad::measure(&brokers, &rows, &HashMap::new());
        let floor = 1_000.0 / 3.0 / 10.0;
        assert_eq!(load.floor, floor);
        assert_eq!(load.loads(), [("a".to_string(), 2.0 * floor), ("b".to_string(), 1_000.0)].into());
        assert_eq!(load.lightest(&["a".into(), "b".into()]).unwrap().0, "a");
    }

    #[test]
    fn only_the_owner_s_report_counts_and_a_moved_bundle_keeps_its_weight() {
        // a still reports y, which b owns now and has not measured yet.
        let brokers: HashMap<_, _> = [broker("a", &[("y", 500.0)]), broker("b", &[])].into();
        let rows = [row("y", "b")];
        let load = TierLoad::measure(&brokers, &rows, &HashMap::new());
        assert_eq!(load.loads()["a"], 0.0);
        assert_eq!(load.loads()["b"], 1.0, "unreported: the floor");
        let remembered = [(("t/ns".parse().unwrap(), "y".to_string()), 500.0)].into();
        let load = TierLoad::measure(&brokers, &rows, &remembered);
        assert_eq!(load.loads()["b"], 500.0);
    }

    #[test]
    fn brokers_not_live_and_active_carry_nothing() {
        let (id, mut gone) = broker("gone", &[("x", 50.0)]);
        gone.alive = false;
        let brokers: HashMap<_, _> = [(id, gone), broker("a", &[])].into();
        let load = TierLoad::measure(&brokers, &[row("x", "gone"), row("y", "a")], &HashMap::new());
        assert_eq!(load.loads(), [("a".to_string(), 1.0)].into());
    }
}
