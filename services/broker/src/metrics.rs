//! Prometheus collectors of the broker, named as Pulsar names them where Pulsar has the metric
//! (`pulsar_in_messages_total`, `pulsar_msg_backlog`, ...). Gauges that describe state
//! (backlog, storage size) are refreshed from the live topics when `/metrics` is scraped.

use prometheus::{
    CounterVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

pub const TOPIC_LABELS: [&str; 3] = ["cluster", "namespace", "topic"];

#[derive(Clone)]
pub struct BrokerMetrics {
    pub registry: Registry,
    pub in_messages: IntCounterVec,
    pub in_bytes: IntCounterVec,
    pub out_messages: IntCounterVec,
    pub out_bytes: IntCounterVec,
    pub msg_backlog: IntGaugeVec,
    pub storage_size: IntGaugeVec,
    pub offloaded_size: IntGaugeVec,
    pub subscriptions_count: IntGaugeVec,
    pub topics_count: IntGauge,
    pub sub_backlog: IntGaugeVec,
    pub sub_unacked: IntGaugeVec,
    pub sub_consumers: IntGaugeVec,
    pub sub_delayed: IntGaugeVec,
    pub publish_latency: Histogram,
    pub publish_errors: IntCounter,
    pub checkpoint_failures: IntCounter,
    pub checkpoint_failing_partitions: IntGauge,
    pub cursors_carried_forward: IntCounter,
    pub publish_rate_limit_times: IntCounterVec,
    pub publish_throttled: IntCounterVec,
    pub publish_throttled_seconds: CounterVec,
    pub dispatch_throttled: IntCounterVec,
    pub subscribe_throttled: IntCounterVec,
    pub policy_refusals: IntCounterVec,
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), &TOPIC_LABELS).expect("valid metric");
    registry.register(Box::new(c.clone())).expect("unique metric");
    c
}

pub const SUBSCRIPTION_LABELS: [&str; 4] = ["cluster", "namespace", "topic", "subscription"];

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGaugeVec {
    gauge_with(registry, name, help, &TOPIC_LABELS)
}

fn gauge_with(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry.register(Box::new(g.clone())).expect("unique metric");
    g
}

impl BrokerMetrics {
    pub fn new(registry: Registry) -> Self {
        let publish_latency = Histogram::with_opts(
            HistogramOpts::new(
                "magnetar_publish_latency_seconds",
                "time from receiving a publish request to its durable acknowledgement",
            )
            .buckets(vec![0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 1.0]),
        )
        .expect("valid metric");
        registry.register(Box::new(publish_latency.clone())).expect("unique metric");
        let topics_count = IntGauge::new("pulsar_topics_count", "number of topics (partitions count one each) loaded")
            .expect("valid metric");
        registry.register(Box::new(topics_count.clone())).expect("unique metric");
        let publish_errors =
            IntCounter::new("magnetar_publish_errors_total", "messages whose publish failed").expect("valid metric");
        registry.register(Box::new(publish_errors.clone())).expect("unique metric");
        let checkpoint_failures = IntCounter::new(
            "magnetar_cursor_checkpoint_failures_total",
            "cursor checkpoints of a partition that failed (the log names the topic)",
        )
        .expect("valid metric");
        registry.register(Box::new(checkpoint_failures.clone())).expect("unique metric");
        let checkpoint_failing_partitions = IntGauge::new(
            "magnetar_cursor_checkpoint_failing_partitions",
            "partitions whose last cursor checkpoint failed",
        )
        .expect("valid metric");
        registry.register(Box::new(checkpoint_failing_partitions.clone())).expect("unique metric");
        let cursors_carried_forward = IntCounter::new(
            "magnetar_cursor_carried_forward_total",
            "partitions whose cursors were written again to the WAL head because their checkpoint failed",
        )
        .expect("valid metric");
        registry.register(Box::new(cursors_carried_forward.clone())).expect("unique metric");
        let publish_throttled_seconds = CounterVec::new(
            Opts::new(
                "magnetar_publish_throttled_seconds_total",
                "time publishes waited for their topic's or namespace's publish rate",
            ),
            &TOPIC_LABELS,
        )
        .expect("valid metric");
        registry.register(Box::new(publish_throttled_seconds.clone())).expect("unique metric");
        BrokerMetrics {
            publish_rate_limit_times: counter(
                &registry,
                "pulsar_publish_rate_limit_times",
                "times a publish found its topic's or namespace's publish rate reached",
            ),
            publish_throttled: counter(
                &registry,
                "magnetar_publish_throttled_total",
                "publishes that waited for their publish rate (throttled, not failed)",
            ),
            publish_throttled_seconds,
            dispatch_throttled: counter(
                &registry,
                "magnetar_dispatch_throttled_total",
                "deliveries held back by a topic's or subscription's dispatch rate",
            ),
            subscribe_throttled: counter(
                &registry,
                "magnetar_subscribe_throttled_total",
                "subscribes refused by the topic's subscribe rate",
            ),
            policy_refusals: IntCounterVec::new(
                Opts::new(
                    "magnetar_policy_refusals_total",
                    "producers, consumers, subscriptions and topics refused by a limit policy",
                ),
                &["cluster", "namespace", "policy"],
            )
            .map(|c| {
                registry.register(Box::new(c.clone())).expect("unique metric");
                c
            })
            .expect("valid metric"),
            checkpoint_failures,
            checkpoint_failing_partitions,
            cursors_carried_forward,
            in_messages: counter(&registry, "pulsar_in_messages_total", "messages published"),
            in_bytes: counter(&registry, "pulsar_in_bytes_total", "payload bytes published"),
            out_messages: counter(&registry, "pulsar_out_messages_total", "messages delivered to consumers"),
            out_bytes: counter(&registry, "pulsar_out_bytes_total", "payload bytes delivered to consumers"),
            msg_backlog: gauge(&registry, "pulsar_msg_backlog", "unacknowledged messages over all subscriptions"),
            storage_size: gauge(
                &registry,
                "pulsar_storage_size",
                "bytes of the topic's stored log, local and offloaded (each segment counted once)",
            ),
            offloaded_size: gauge(&registry, "pulsar_storage_offloaded_size", "bytes of the topic in the object store"),
            subscriptions_count: gauge(&registry, "pulsar_subscriptions_count", "subscriptions of the topic"),
            topics_count,
            sub_backlog: gauge_with(
                &registry,
                "pulsar_subscription_back_log",
                "unacknowledged messages of the subscription",
                &SUBSCRIPTION_LABELS,
            ),
            sub_unacked: gauge_with(
                &registry,
                "pulsar_subscription_unacked_messages",
                "messages delivered and not acknowledged",
                &SUBSCRIPTION_LABELS,
            ),
            sub_consumers: gauge_with(
                &registry,
                "pulsar_subscription_consumers_count",
                "consumers connected to the subscription",
                &SUBSCRIPTION_LABELS,
            ),
            sub_delayed: gauge_with(
                &registry,
                "pulsar_subscription_delayed",
                "messages held for delayed delivery",
                &SUBSCRIPTION_LABELS,
            ),
            publish_latency,
            publish_errors,
            registry,
        }
    }

    /// Drops the series of a deleted subscription.
    pub fn remove_subscription(&self, labels: &[&str; 4]) {
        for v in [&self.sub_backlog, &self.sub_unacked, &self.sub_consumers, &self.sub_delayed] {
            let _ = v.remove_label_values(labels);
        }
    }

    /// Drops every series of a topic (partition) that was deleted or unloaded.
    pub fn remove_topic(&self, labels: &[&str; 3]) {
        for v in [
            &self.in_messages,
            &self.in_bytes,
            &self.out_messages,
            &self.out_bytes,
            &self.publish_rate_limit_times,
            &self.publish_throttled,
            &self.dispatch_throttled,
            &self.subscribe_throttled,
        ] {
            let _ = v.remove_label_values(labels);
        }
        let _ = self.publish_throttled_seconds.remove_label_values(labels);
        for v in [&self.msg_backlog, &self.storage_size, &self.offloaded_size, &self.subscriptions_count] {
            let _ = v.remove_label_values(labels);
        }
    }
}
