//! Metrics of the broker tier (issue 11): ownership changes, handovers, forwarded and held
//! requests, fenced writes, and what this broker sees of the tier. Every series exists from the
//! start (label values initialised), so dashboards and alerts never meet a missing series.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// The states a bundle moves to, as the `to` label of `magnetar_tier_bundle_transitions_total`.
pub const TRANSITIONS: [&str; 4] = ["assigning", "owned", "releasing", "free"];

#[derive(Clone)]
pub struct TierMetrics {
    /// Bundle transitions this broker committed, by the state moved to.
    pub transitions: IntCounterVec,
    /// Time from the start of a handover of one bundle to its release (owner side).
    pub handover_seconds: Histogram,
    /// Handovers by outcome (`ok`, `failed`).
    pub handovers: IntCounterVec,
    /// Binary producers and consumers a handover closed naming the next owner (PIP-307).
    pub handover_redirects: IntCounter,
    /// Requests held because their bundle was moving or not yet assigned.
    pub held_requests: IntCounter,
    /// Metadata writes refused because another owner holds the partition now.
    pub fenced_writes: IntCounter,
    /// Bundles this broker owns.
    pub bundles_owned: IntGauge,
    /// Bundles held by a broker whose lease expired (unavailable until it returns).
    pub unavailable_bundles: IntGauge,
    /// Live brokers of the cluster as this broker last read them.
    pub live_brokers: IntGauge,
    /// 1 while this broker is the tier's leader.
    pub leader: IntGauge,
    /// Bundles the leader moved to balance load.
    pub rebalance_moves: IntCounter,
    pub bundle_splits: IntCounter,
    /// Bundles with object-store or replicated durability the leader gave a live broker after
    /// their owner's lease expired.
    pub failovers: IntCounter,
    /// Partitions served here with replicated durability whose replica set has a broker that is
    /// not a live member: they acknowledge only while the live copies still make the ack quorum.
    pub under_replicated: IntGauge,
    /// Log objects fetched from the bucket to recover partitions' tails at load.
    pub log_object_gets: IntCounter,
}

impl TierMetrics {
    pub fn new(registry: &Registry) -> TierMetrics {
        fn reg<C: prometheus::core::Collector + Clone + 'static>(registry: &Registry, c: C) -> C {
            registry.register(Box::new(c.clone())).expect("unique metric");
            c
        }
        let counter = |n: &str, h: &str| reg(registry, IntCounter::new(n, h).expect("valid metric"));
        let gauge = |n: &str, h: &str| reg(registry, IntGauge::new(n, h).expect("valid metric"));
        let transitions = reg(
            registry,
            IntCounterVec::new(
                Opts::new(
                    "magnetar_tier_bundle_transitions_total",
                    "bundle ownership transitions this broker committed",
                ),
                &["to"],
            )
            .expect("valid metric"),
        );
        for to in TRANSITIONS {
            transitions.with_label_values(&[to]);
        }
        let handovers = reg(
            registry,
            IntCounterVec::new(
                Opts::new("magnetar_tier_handovers_total", "bundle handovers this broker ran, by outcome"),
                &["result"],
            )
            .expect("valid metric"),
        );
        for r in ["ok", "failed"] {
            handovers.with_label_values(&[r]);
        }
        let handover_seconds = reg(
            registry,
            Histogram::with_opts(
                HistogramOpts::new(
                    "magnetar_tier_handover_seconds",
                    "time to hand one bundle over: stop, flush, upload the tail, checkpoint cursors, release",
                )
                .buckets(vec![0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            )
            .expect("valid metric"),
        );
        TierMetrics {
            transitions,
            handover_seconds,
            handovers,
            handover_redirects: counter(
                "magnetar_tier_handover_redirects_total",
                "binary producers and consumers a handover closed with the next owner's address",
            ),
            held_requests: counter(
                "magnetar_tier_held_requests_total",
                "requests held while their bundle was moving or not yet assigned",
            ),
            fenced_writes: counter(
                "magnetar_tier_fenced_writes_total",
                "metadata writes refused because another broker owns the partition now",
            ),
            bundles_owned: gauge("magnetar_tier_bundles_owned", "bundles this broker owns"),
            unavailable_bundles: gauge(
                "magnetar_tier_unavailable_bundles",
                "bundles held by a broker whose lease expired: not served until it returns or a forced takeover",
            ),
            live_brokers: gauge("magnetar_tier_live_brokers", "live brokers of the cluster"),
            leader: gauge("magnetar_tier_leader", "1 while this broker leads the tier (placement and balance)"),
            rebalance_moves: counter("magnetar_tier_rebalance_moves_total", "bundles the leader moved to balance load"),
            bundle_splits: counter("magnetar_tier_bundle_splits_total", "hot bundles the leader split"),
            failovers: counter(
                "magnetar_tier_failovers_total",
                "bundles with object-store or replicated durability given to a live broker after their owner's lease \
                 expired",
            ),
            under_replicated: gauge(
                "magnetar_under_replicated_partitions",
                "partitions served here with replicated durability whose replica set has a broker that is not live",
            ),
            log_object_gets: counter(
                "magnetar_object_store_log_gets_total",
                "log objects fetched from the object store to recover partitions' tails at load (one per object for \
                 all the partitions it holds)",
            ),
        }
    }

    pub fn transition(&self, to: &str) {
        self.transitions.with_label_values(&[to]).inc();
    }
}
