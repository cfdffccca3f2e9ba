//! The broker's metrics. Pulsar's topic, subscription, namespace and broker metrics
//! (`pulsar_rate_in`, `pulsar_subscription_back_log`, `pulsar_broker_msg_backlog`, ...) are
//! written at scrape time from the loaded partitions' stats ([`exposition`]), the same numbers
//! the admin stats endpoints return, so a deleted topic's series simply stop and nothing on the
//! hot path touches a labelled map. Process-wide metrics live in a Prometheus registry.

pub mod buckets;
pub mod exposition;
pub mod tier;

use prometheus::{Histogram, HistogramOpts, IntCounter, IntGauge, Opts, Registry};
use serde::{Deserialize, Serialize};

/// What `/metrics` exposes (the `[broker.metrics]` section).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Pulsar's `exposeTopicLevelMetricsInPrometheus`: one series per topic (partition) and
    /// subscription. Off, topic metrics are summed per namespace and subscriptions are left out,
    /// which keeps a scrape small on brokers with very many topics.
    pub topic_level: bool,
    /// Pulsar's `exposeConsumerLevelMetricsInPrometheus`: one series per connected consumer.
    pub consumer_level: bool,
    /// Length of the window the bucket gauges (`pulsar_storage_write_latency_le_*`,
    /// `pulsar_entry_size_le_*`) count over, in seconds: Pulsar's `statsUpdateFrequencyInSecs`,
    /// which its dashboards assume is 60.
    pub bucket_window_seconds: u64,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { topic_level: true, consumer_level: false, bucket_window_seconds: 60 }
    }
}

#[derive(Clone)]
pub struct BrokerMetrics {
    pub registry: Registry,
    pub publish_latency: Histogram,
    pub publish_errors: IntCounter,
    pub checkpoint_failures: IntCounter,
    pub checkpoint_failing_partitions: IntGauge,
    pub cursors_carried_forward: IntCounter,
    /// Requests sent on to the owner of their topic's bundle (broker tier).
    pub forwarded_requests: IntCounter,
    /// Pulsar's lookup counters: topic lookups answered (binary LOOKUP and HTTP) and refused.
    pub lookup_answers: IntCounter,
    pub lookup_failures: IntCounter,
    /// `pulsar+ssl://` connections whose TLS handshake completed.
    pub binary_tls_connections: IntCounter,
    pub connections: ConnectionMetrics,
    pub tier: tier::TierMetrics,
}

/// Pulsar's connection metrics, counting WebSocket sessions (HTTP requests are not connections
/// a client keeps).
#[derive(Clone)]
pub struct ConnectionMetrics {
    active: IntGauge,
    created: IntCounter,
    create_failed: IntCounter,
    closed: IntCounter,
}

/// Held for the life of one connection: counts it as active until dropped.
pub struct ConnectionGuard(ConnectionMetrics);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.active.dec();
        self.0.closed.inc();
    }
}

impl ConnectionMetrics {
    pub fn opened(&self) -> ConnectionGuard {
        self.created.inc();
        self.active.inc();
        ConnectionGuard(self.clone())
    }

    /// A connection refused before it was established (for instance at the session limit).
    pub fn refused(&self) {
        self.create_failed.inc();
    }
}

fn register<C: prometheus::core::Collector + Clone + 'static>(registry: &Registry, c: C) -> C {
    registry.register(Box::new(c.clone())).expect("unique metric");
    c
}

impl BrokerMetrics {
    pub fn new(registry: Registry, cluster: &str, broker: &str) -> Self {
        let publish_latency = Histogram::with_opts(
            HistogramOpts::new(
                "magnetar_publish_latency_seconds",
                "time from receiving a publish request to its durable acknowledgement",
            )
            .buckets(vec![0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 1.0]),
        )
        .expect("valid metric");
        let counter = |name: &str, help: &str| register(&registry, IntCounter::new(name, help).expect("valid metric"));
        let gauge = |name: &str, help: &str| register(&registry, IntGauge::new(name, help).expect("valid metric"));
        let labelled = |name: &str, help: &str| {
            Opts::new(name, help).const_label("cluster", cluster).const_label("broker", broker)
        };
        let connections = ConnectionMetrics {
            active: register(
                &registry,
                IntGauge::with_opts(labelled("pulsar_active_connections", "open WebSocket sessions"))
                    .expect("valid metric"),
            ),
            created: register(
                &registry,
                IntCounter::with_opts(labelled(
                    "pulsar_connection_created_total_count",
                    "WebSocket sessions established",
                ))
                .expect("valid metric"),
            ),
            create_failed: register(
                &registry,
                IntCounter::with_opts(labelled(
                    "pulsar_connection_create_fail_count",
                    "WebSocket sessions refused (session limit reached)",
                ))
                .expect("valid metric"),
            ),
            closed: register(
                &registry,
                IntCounter::with_opts(labelled("pulsar_connection_closed_total_count", "WebSocket sessions closed"))
                    .expect("valid metric"),
            ),
        };
        BrokerMetrics {
            publish_latency: register(&registry, publish_latency),
            publish_errors: counter("magnetar_publish_errors_total", "messages whose publish failed"),
            checkpoint_failures: counter(
                "magnetar_cursor_checkpoint_failures_total",
                "cursor checkpoints of a partition that failed (the log names the topic)",
            ),
            checkpoint_failing_partitions: gauge(
                "magnetar_cursor_checkpoint_failing_partitions",
                "partitions whose last cursor checkpoint failed",
            ),
            forwarded_requests: counter(
                "magnetar_forwarded_requests_total",
                "requests forwarded to the broker owning their topic's bundle",
            ),
            lookup_answers: counter("pulsar_broker_lookup_answers", "topic lookups answered"),
            lookup_failures: counter("pulsar_broker_lookup_failures", "topic lookups refused"),
            binary_tls_connections: counter(
                "magnetar_binary_tls_connections_total",
                "pulsar+ssl:// connections whose TLS handshake completed (clients and proxying brokers)",
            ),
            cursors_carried_forward: counter(
                "magnetar_cursor_carried_forward_total",
                "partitions whose cursors were written again to the WAL head because their checkpoint failed",
            ),
            connections,
            tier: tier::TierMetrics::new(&registry),
            registry,
        }
    }
}
