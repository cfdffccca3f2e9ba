//! The broker's side of the tier's load balance (issue 11, item 4): measuring the traffic of the
//! bundles it serves for its lease report, and carrying out a split the leader decided
//! (`tier::split`).
//!
//! The figures are measured every few seconds and kept; the lease renewal only copies them, so
//! a slow metadata read can never delay a renewal (a late renewal self-fences the broker).

use crate::bundles::SplitAlgorithm;
use crate::error::Result;
use crate::tier::load::{REPORTED_BUNDLES, traffic};
use crate::{Broker, BrokerError};
use magnetar_core::NamespaceName;
use magnetar_core::bundles::BundleRange;
use magnetar_metadata::{BrokerLoad, BundleStats};
use std::sync::Arc;
use std::sync::atomic::Ordering;

impl Broker {
    /// This broker's load as it reports it with every lease renewal (last measured).
    pub fn load(&self) -> BrokerLoad {
        self.load_report.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Recomputes every loaded partition's rates, then this broker's load: its totals and the
    /// traffic of its `REPORTED_BUNDLES` busiest bundles.
    pub(crate) async fn measure_load(&self) {
        let mut load = BrokerLoad::default();
        for p in self.registry.loaded_partitions() {
            p.update_rates();
            let r = p.rates();
            load.msg_rate_in += r.msg_in;
            load.msg_rate_out += r.msg_out;
            load.msg_throughput_in += r.bytes_in;
            load.msg_throughput_out += r.bytes_out;
            load.topics += 1;
        }
        match self.topics().loaded_by_bundle().await {
            Ok(by_bundle) => {
                let mut stats: Vec<(String, BundleStats)> = by_bundle
                    .into_iter()
                    .map(|(bundle, partitions)| {
                        let mut s = BundleStats::default();
                        for r in partitions.iter().map(|p| p.rates()) {
                            s.msg_rate_in += r.msg_in;
                            s.msg_rate_out += r.msg_out;
                            s.msg_throughput_in += r.bytes_in;
                            s.msg_throughput_out += r.bytes_out;
                            s.topics += 1;
                        }
                        (bundle, s)
                    })
                    .collect();
                stats.sort_by(|a, b| traffic(&b.1).total_cmp(&traffic(&a.1)).then(a.0.cmp(&b.0)));
                stats.truncate(REPORTED_BUNDLES);
                load.bundle_stats = stats.into_iter().collect();
            }
            // Reported without bundles this time: the leader weighs them by the floor.
            Err(e) => tracing::warn!(error = %e.cause(), "bundle load not measured"),
        }
        *self.load_report.lock().unwrap_or_else(|e| e.into_inner()) = load;
    }

    /// Cuts a bundle as Pulsar's bundle split does. In a broker tier only its owner may (the
    /// API routes the request there): it hands the bundle's data over and cuts it while its
    /// requests are held (`split_owned`), so the halves may go to any broker. `NotOwner` when
    /// this broker does not own it (the request is routed again).
    pub async fn split_bundle(
        &self,
        ns: &NamespaceName,
        bundle: &str,
        algorithm: SplitAlgorithm,
        unload: bool,
    ) -> Result<Vec<BundleRange>> {
        let topics = self.topics();
        if !self.ctx.tier.enabled() {
            return topics.split_bundle(self.admin(), ns, bundle, algorithm, unload).await;
        }
        let range = topics.bundle(ns, bundle).await?;
        self.split_owned(ns, &range, algorithm).await?.ok_or_else(|| {
            BrokerError::NotOwner(format!("bundle {ns}/{range} is not owned by this broker now; route the split again"))
        })
    }

    /// Starts the split the leader decided, if any and none is running (one at a time: a split
    /// waits for a handover, and the tier's pass must not wait for it).
    pub(crate) fn split_hot_bundle(self: &Arc<Self>) {
        if self.splitting.load(Ordering::Acquire) {
            return;
        }
        let Some((ns, range)) = self.ctx.tier.take_split() else { return };
        self.splitting.store(true, Ordering::Release);
        let broker = Arc::clone(self);
        self.ctx.tasks.spawn(async move {
            let bundle = range.to_string();
            match broker.split_bundle(&ns, &bundle, SplitAlgorithm::TopicCountEquallyDivide, false).await {
                Ok(halves) => {
                    broker.ctx.tier.metrics().bundle_splits.inc();
                    tracing::info!(bundle = %format!("{ns}/{bundle}"), halves = ?halves.iter().map(ToString::to_string).collect::<Vec<_>>(),
                        "hot bundle split");
                }
                // Already split, or its topics all hash to one point: nothing to do.
                Err(e @ (BrokerError::NotFound(_) | BrokerError::InvalidPolicy(_))) => {
                    tracing::info!(bundle = %format!("{ns}/{bundle}"), reason = %e.cause(), "hot bundle not split")
                }
                Err(e) => tracing::warn!(bundle = %format!("{ns}/{bundle}"), error = %e.cause(), "hot bundle split failed"),
            }
            broker.splitting.store(false, Ordering::Release);
        });
    }
}
