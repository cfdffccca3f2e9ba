//! Pulsar's broker, namespace, topic, subscription and consumer metrics in the Prometheus text
//! format, written at scrape time from the partitions' stats (the numbers the admin stats
//! endpoints return). One table ([`FAMILIES`]) names every family and where each of its levels
//! reads its value, so a family Pulsar reports at several levels (`pulsar_out_bytes_total` per
//! topic and per subscription) is written as one block, as the format requires.

use super::MetricsConfig;
use super::buckets::{ENTRY_SIZE, Layout, WRITE_LATENCY, Window};
use crate::partition::Partition;
use crate::policies::runtime::PolicyMetrics;
use crate::stats::{ConsumerStats, SubscriptionStats, partition_stats};
use std::collections::BTreeMap;
use std::fmt::Write;

/// One topic (partition) or, summed, one namespace or the whole broker.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// `cluster="..",namespace="..",topic=".."` (or without `topic` for a namespace), escaped.
    labels: String,
    topics: u64,
    producers: u64,
    consumers: u64,
    subscriptions_count: u64,
    rate_in: f64,
    rate_out: f64,
    throughput_in: f64,
    throughput_out: f64,
    ack_rate: f64,
    in_messages: u64,
    in_bytes: u64,
    out_messages: u64,
    out_bytes: u64,
    storage_size: u64,
    backlog_size: u64,
    offloaded_size: u64,
    msg_backlog: u64,
    delayed: u64,
    /// Bytes of the backlog quota (-1: none); the largest of a namespace's topics when summed.
    backlog_quota_limit: i64,
    write_latency: Window,
    entry_size: Window,
    publish_rate_limit_times: u64,
    publish_throttled_micros: u64,
    dispatch_throttled: u64,
    subscribe_throttled: u64,
    policy_refusals: u64,
    compaction: crate::compaction::CompactionTotals,
    /// Partitions acknowledged through the object store, through replicas (1 or 0 for one).
    object_store: u64,
    replicated: u64,
    /// Brokers each record is written to, and how many must hold it before its
    /// acknowledgement; the lowest of a namespace's topics when summed.
    write_quorum: u32,
    ack_quorum: u32,
    subscriptions: BTreeMap<String, SubscriptionStats>,
}

impl Sample {
    fn of(p: &Partition, cluster: &str) -> (String, Sample) {
        let stats = partition_stats(p);
        let namespace = p.name.namespace().to_string();
        let mut labels = String::new();
        push_label(&mut labels, "cluster", cluster);
        push_label(&mut labels, "namespace", &namespace);
        push_label(&mut labels, "topic", &p.name.to_string());
        let subs = stats.subscriptions.values();
        let sample = Sample {
            labels,
            topics: 1,
            producers: stats.publishers.len() as u64,
            consumers: subs.clone().map(|s| s.consumers.len() as u64).sum(),
            subscriptions_count: stats.subscriptions.len() as u64,
            rate_in: stats.msg_rate_in,
            rate_out: stats.msg_rate_out,
            throughput_in: stats.msg_throughput_in,
            throughput_out: stats.msg_throughput_out,
            ack_rate: subs.clone().map(|s| s.message_ack_rate).sum(),
            in_messages: stats.msg_in_counter,
            in_bytes: stats.bytes_in_counter,
            out_messages: stats.msg_out_counter,
            out_bytes: stats.bytes_out_counter,
            storage_size: stats.storage_size,
            backlog_size: stats.backlog_size,
            offloaded_size: stats.offloaded_storage_size,
            msg_backlog: subs.clone().map(|s| s.msg_backlog).sum(),
            delayed: subs.map(|s| s.msg_delayed).sum(),
            write_latency: p.distributions.write_latency.last_window(),
            entry_size: p.distributions.entry_size.last_window(),
            backlog_quota_limit: p.policy.backlog_quota_limit_bytes.load(std::sync::atomic::Ordering::Relaxed),
            publish_rate_limit_times: PolicyMetrics::read(&p.policy.metrics.rate_limit_times),
            publish_throttled_micros: PolicyMetrics::read(&p.policy.metrics.throttled_micros),
            dispatch_throttled: PolicyMetrics::read(&p.policy.metrics.dispatch_throttled),
            subscribe_throttled: PolicyMetrics::read(&p.policy.metrics.subscribe_throttled),
            policy_refusals: PolicyMetrics::read(&p.policy.metrics.refused),
            compaction: p.compaction.totals(),
            object_store: u64::from(stats.durability == "object-store"),
            replicated: u64::from(stats.durability == "replicated"),
            write_quorum: stats.write_quorum,
            ack_quorum: stats.ack_quorum,
            subscriptions: stats.subscriptions,
        };
        (namespace, sample)
    }

    /// Adds a topic's figures (not its subscriptions) to a namespace's or the broker's.
    fn add(&mut self, o: &Sample) {
        self.topics += o.topics;
        self.producers += o.producers;
        self.consumers += o.consumers;
        self.subscriptions_count += o.subscriptions_count;
        self.rate_in += o.rate_in;
        self.rate_out += o.rate_out;
        self.throughput_in += o.throughput_in;
        self.throughput_out += o.throughput_out;
        self.ack_rate += o.ack_rate;
        self.in_messages += o.in_messages;
        self.in_bytes += o.in_bytes;
        self.out_messages += o.out_messages;
        self.out_bytes += o.out_bytes;
        self.storage_size += o.storage_size;
        self.backlog_size += o.backlog_size;
        self.offloaded_size += o.offloaded_size;
        self.msg_backlog += o.msg_backlog;
        self.delayed += o.delayed;
        let first = self.topics == o.topics;
        // The first topic added: its value, not the default 0 (which is not "no quota").
        self.backlog_quota_limit =
            if first { o.backlog_quota_limit } else { self.backlog_quota_limit.max(o.backlog_quota_limit) };
        self.write_quorum = if first { o.write_quorum } else { self.write_quorum.min(o.write_quorum) };
        self.ack_quorum = if first { o.ack_quorum } else { self.ack_quorum.min(o.ack_quorum) };
        self.object_store += o.object_store;
        self.replicated += o.replicated;
        self.write_latency.add(&o.write_latency);
        self.entry_size.add(&o.entry_size);
        self.publish_rate_limit_times += o.publish_rate_limit_times;
        self.publish_throttled_micros += o.publish_throttled_micros;
        self.dispatch_throttled += o.dispatch_throttled;
        self.subscribe_throttled += o.subscribe_throttled;
        self.policy_refusals += o.policy_refusals;
        let (c, oc) = (&mut self.compaction, &o.compaction);
        c.succeeded += oc.succeeded;
        c.failed += oc.failed;
        c.removed_events += oc.removed_events;
        c.compacted_entries += oc.compacted_entries;
        c.compacted_bytes += oc.compacted_bytes;
        c.duration_ms = c.duration_ms.max(oc.duration_ms);
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Gauge,
    Counter,
}

type TopicValue = fn(&Sample) -> f64;
type SubscriptionValue = fn(&SubscriptionStats) -> f64;
type ConsumerValue = fn(&ConsumerStats) -> f64;

/// A metric family and its value at each level Pulsar reports it.
struct Family {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    /// Per topic (summed per namespace when topic-level metrics are off).
    topic: Option<TopicValue>,
    /// Per subscription (topic-level metrics only).
    subscription: Option<SubscriptionValue>,
    /// Per consumer (consumer-level metrics only).
    consumer: Option<ConsumerValue>,
    /// Per namespace when topic-level metrics are off, for a family otherwise reported per
    /// subscription only (so a sum over it never counts a message twice).
    aggregated: Option<TopicValue>,
}

const fn topic(name: &'static str, help: &'static str, kind: Kind, f: TopicValue) -> Family {
    Family { name, help, kind, topic: Some(f), subscription: None, consumer: None, aggregated: None }
}

const fn subscription(name: &'static str, help: &'static str, f: SubscriptionValue) -> Family {
    Family { name, help, kind: Kind::Gauge, topic: None, subscription: Some(f), consumer: None, aggregated: None }
}

const fn consumer(name: &'static str, help: &'static str, f: ConsumerValue) -> Family {
    Family { name, help, kind: Kind::Gauge, topic: None, subscription: None, consumer: Some(f), aggregated: None }
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// Pulsar's topic, subscription and consumer metric families (reference-metrics, "Topic",
/// "Subscription" and "Consumer" metrics), in the order Pulsar documents them.
const FAMILIES: &[Family] = &[
    topic("pulsar_subscriptions_count", "subscriptions", Kind::Gauge, |s| s.subscriptions_count as f64),
    topic("pulsar_producers_count", "connected producers", Kind::Gauge, |s| s.producers as f64),
    topic("pulsar_consumers_count", "connected consumers", Kind::Gauge, |s| s.consumers as f64),
    topic("pulsar_rate_in", "messages published per second", Kind::Gauge, |s| s.rate_in),
    topic("pulsar_rate_out", "messages delivered per second", Kind::Gauge, |s| s.rate_out),
    topic("pulsar_throughput_in", "payload bytes published per second", Kind::Gauge, |s| s.throughput_in),
    topic("pulsar_throughput_out", "payload bytes delivered per second", Kind::Gauge, |s| s.throughput_out),
    Family {
        name: "pulsar_consumer_msg_ack_rate",
        help: "messages acknowledged per second",
        kind: Kind::Gauge,
        topic: Some(|s| s.ack_rate),
        subscription: None,
        consumer: Some(|c| c.message_ack_rate),
        aggregated: None,
    },
    topic(
        "pulsar_storage_size",
        "bytes of the stored log, local and offloaded (each segment counted once)",
        Kind::Gauge,
        |s| s.storage_size as f64,
    ),
    topic(
        "pulsar_storage_logical_size",
        "bytes of the stored log (Magnetar keeps no replicas of its own, so as pulsar_storage_size)",
        Kind::Gauge,
        |s| s.storage_size as f64,
    ),
    topic(
        "pulsar_storage_backlog_size",
        "bytes of the largest subscription backlog, estimated from the average stored message size",
        Kind::Gauge,
        |s| s.backlog_size as f64,
    ),
    topic("pulsar_storage_offloaded_size", "bytes of the log in the object store", Kind::Gauge, |s| {
        s.offloaded_size as f64
    }),
    topic("pulsar_storage_write_rate", "messages written to storage per second", Kind::Gauge, |s| s.rate_in),
    topic(
        "pulsar_storage_backlog_quota_limit",
        "bytes of the destination_storage backlog quota in force (-1: none)",
        Kind::Gauge,
        |s| s.backlog_quota_limit as f64,
    ),
    topic("pulsar_storage_read_rate", "messages read from storage for delivery per second", Kind::Gauge, |s| {
        s.rate_out
    }),
    topic("pulsar_msg_backlog", "unacknowledged messages over all subscriptions", Kind::Gauge, |s| {
        s.msg_backlog as f64
    }),
    Family {
        name: "pulsar_subscription_delayed",
        help: "messages held for delayed delivery",
        kind: Kind::Gauge,
        topic: None,
        subscription: Some(|s| s.msg_delayed as f64),
        consumer: None,
        aggregated: Some(|s| s.delayed as f64),
    },
    topic("pulsar_in_bytes_total", "payload bytes published", Kind::Counter, |s| s.in_bytes as f64),
    topic("pulsar_compaction_removed_event_count", "messages compactions left out", Kind::Gauge, |s| {
        s.compaction.removed_events as f64
    }),
    topic("pulsar_compaction_succeed_count", "compactions that succeeded", Kind::Gauge, |s| {
        s.compaction.succeeded as f64
    }),
    topic("pulsar_compaction_failed_count", "compactions that failed", Kind::Gauge, |s| s.compaction.failed as f64),
    topic("pulsar_compaction_duration_time_in_mills", "duration of the last compaction (ms)", Kind::Gauge, |s| {
        s.compaction.duration_ms as f64
    }),
    topic("pulsar_compaction_compacted_entries_count", "messages in the compacted view", Kind::Gauge, |s| {
        s.compaction.compacted_entries as f64
    }),
    topic("pulsar_compaction_compacted_entries_size", "payload bytes in the compacted view", Kind::Gauge, |s| {
        s.compaction.compacted_bytes as f64
    }),
    topic("pulsar_in_messages_total", "messages published", Kind::Counter, |s| s.in_messages as f64),
    Family {
        name: "pulsar_out_bytes_total",
        help: "payload bytes delivered",
        kind: Kind::Counter,
        topic: Some(|s| s.out_bytes as f64),
        subscription: Some(|s| s.bytes_out_counter as f64),
        consumer: None,
        aggregated: None,
    },
    Family {
        name: "pulsar_out_messages_total",
        help: "messages delivered",
        kind: Kind::Counter,
        topic: Some(|s| s.out_messages as f64),
        subscription: Some(|s| s.msg_out_counter as f64),
        consumer: None,
        aggregated: None,
    },
    // Pulsar reports it as a gauge that only grows.
    topic(
        "pulsar_publish_rate_limit_times",
        "publishes that found their topic's or namespace's publish rate reached (throttled, not failed)",
        Kind::Gauge,
        |s| s.publish_rate_limit_times as f64,
    ),
    topic(
        "magnetar_publish_throttled_seconds_total",
        "time publishes waited for their topic's or namespace's publish rate",
        Kind::Counter,
        |s| s.publish_throttled_micros as f64 / 1e6,
    ),
    topic(
        "magnetar_dispatch_throttled_total",
        "delivery attempts held back by a topic's or subscription's dispatch rate",
        Kind::Counter,
        |s| s.dispatch_throttled as f64,
    ),
    topic(
        "magnetar_subscribe_throttled_total",
        "subscribes refused by the topic's subscribe rate",
        Kind::Counter,
        |s| s.subscribe_throttled as f64,
    ),
    topic(
        "magnetar_policy_refusals_total",
        "producers, consumers and subscriptions refused by a limit policy",
        Kind::Counter,
        |s| s.policy_refusals as f64,
    ),
    topic(
        "magnetar_durability_object_store",
        "1 for a partition acknowledged only once its records are committed in the object store (per namespace: how many)",
        Kind::Gauge,
        |s| s.object_store as f64,
    ),
    topic(
        "magnetar_durability_replicated",
        "1 for a partition acknowledged only once its records are on its ack quorum of peer brokers (per namespace: how many)",
        Kind::Gauge,
        |s| s.replicated as f64,
    ),
    topic(
        "magnetar_durability_write_quorum",
        "brokers each record is written to (1 unless replicated; per namespace the lowest)",
        Kind::Gauge,
        |s| s.write_quorum as f64,
    ),
    topic(
        "magnetar_durability_ack_quorum",
        "ack quorum in force: a record is acknowledged once min(ack quorum, write quorum - 1) peer brokers hold it (1 unless replicated; per namespace the lowest)",
        Kind::Gauge,
        |s| s.ack_quorum as f64,
    ),
    subscription("pulsar_subscription_back_log", "unacknowledged messages", |s| s.msg_backlog as f64),
    subscription(
        "pulsar_subscription_back_log_no_delayed",
        "unacknowledged messages not held for delayed delivery",
        |s| s.msg_backlog_no_delayed as f64,
    ),
    subscription("pulsar_subscription_msg_rate_redeliver", "messages redelivered per second", |s| s.msg_rate_redeliver),
    subscription("pulsar_subscription_unacked_messages", "messages delivered and not acknowledged", |s| {
        s.unacked_messages as f64
    }),
    subscription(
        "pulsar_subscription_blocked_on_unacked_messages",
        "1 when dispatch waits for acknowledgements (never: pulls wait at the in-flight limit instead)",
        |s| flag(s.blocked_subscription_on_unacked_msgs),
    ),
    subscription("pulsar_subscription_msg_rate_out", "messages delivered per second", |s| s.msg_rate_out),
    subscription("pulsar_subscription_msg_ack_rate", "messages acknowledged per second", |s| s.message_ack_rate),
    subscription("pulsar_subscription_msg_throughput_out", "payload bytes delivered per second", |s| {
        s.msg_throughput_out
    }),
    subscription("pulsar_subscription_last_expire_timestamp", "when messages last expired (epoch ms, 0 never)", |s| {
        s.last_expire_timestamp as f64
    }),
    subscription("pulsar_subscription_last_acked_timestamp", "when a message was last acknowledged (epoch ms)", |s| {
        s.last_acked_timestamp as f64
    }),
    subscription("pulsar_subscription_last_consumed_timestamp", "when a message was last delivered (epoch ms)", |s| {
        s.last_consumed_timestamp as f64
    }),
    subscription("pulsar_subscription_msg_rate_expired", "messages expired by TTL per second", |s| s.msg_rate_expired),
    subscription("pulsar_subscription_total_msg_expired", "messages expired by TTL", |s| s.total_msg_expired as f64),
    subscription("pulsar_subscription_consumers_count", "connected consumers", |s| s.consumers.len() as f64),
    consumer("pulsar_consumer_msg_rate_out", "messages delivered per second", |c| c.msg_rate_out),
    consumer("pulsar_consumer_msg_throughput_out", "payload bytes delivered per second", |c| c.msg_throughput_out),
    consumer("pulsar_consumer_unacked_messages", "messages delivered and not acknowledged", |c| {
        c.unacked_messages as f64
    }),
    consumer("pulsar_consumer_available_permits", "permits (always 0: Magnetar consumers ask per read)", |c| {
        c.available_permits as f64
    }),
    consumer("pulsar_consumer_blocked_on_unacked_messages", "1 when the consumer waits for acknowledgements", |c| {
        flag(c.blocked_consumer_on_unacked_msgs)
    }),
];

/// Pulsar's broker-level families: every topic this broker serves, summed.
const BROKER_FAMILIES: &[(&str, &str, TopicValue)] = &[
    ("pulsar_broker_topics_count", "topics (partitions) served", |s| s.topics as f64),
    ("pulsar_broker_subscriptions_count", "subscriptions", |s| s.subscriptions_count as f64),
    ("pulsar_broker_producers_count", "connected producers", |s| s.producers as f64),
    ("pulsar_broker_consumers_count", "connected consumers", |s| s.consumers as f64),
    ("pulsar_broker_rate_in", "messages published per second", |s| s.rate_in),
    ("pulsar_broker_rate_out", "messages delivered per second", |s| s.rate_out),
    ("pulsar_broker_throughput_in", "payload bytes published per second", |s| s.throughput_in),
    ("pulsar_broker_throughput_out", "payload bytes delivered per second", |s| s.throughput_out),
    ("pulsar_broker_storage_size", "bytes stored", |s| s.storage_size as f64),
    ("pulsar_broker_storage_logical_size", "bytes stored", |s| s.storage_size as f64),
    ("pulsar_broker_storage_write_rate", "messages written to storage per second", |s| s.rate_in),
    ("pulsar_broker_storage_read_rate", "messages read from storage per second", |s| s.rate_out),
    ("pulsar_broker_msg_backlog", "unacknowledged messages", |s| s.msg_backlog as f64),
];

/// Appends a `key="value"` label, escaped as the text format requires.
fn push_label(out: &mut String, key: &str, value: &str) {
    if !out.is_empty() {
        out.push(',');
    }
    out.push_str(key);
    out.push_str("=\"");
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn push_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{v}");
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: Kind) {
    let kind = if kind == Kind::Counter { "counter" } else { "gauge" };
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn line(out: &mut String, name: &str, labels: &str, v: f64) {
    out.push_str(name);
    out.push('{');
    out.push_str(labels);
    out.push_str("} ");
    push_value(out, v);
    out.push('\n');
}

/// Labels of a subscription (and, with `consumer`, of one of its consumers).
fn child_labels(parent: &str, subscription: &str, consumer: Option<&ConsumerStats>) -> String {
    let mut l = parent.to_string();
    push_label(&mut l, "subscription", subscription);
    if let Some(c) = consumer {
        push_label(&mut l, "consumer_name", &c.consumer_name);
        push_label(&mut l, "consumer_id", &c.consumer_id.to_string());
    }
    l
}

/// The bucket gauges of one layout, then its `_count` and `_sum` (latencies in milliseconds,
/// as Pulsar reports them).
fn write_buckets(out: &mut String, layout: &Layout, samples: &[Sample], pick: fn(&Sample) -> &Window, sum_scale: f64) {
    for (i, suffix) in layout.suffixes.iter().enumerate() {
        let name = format!("{}_{suffix}", layout.name);
        header(out, &name, layout.help, Kind::Gauge);
        for s in samples {
            line(out, &name, &s.labels, pick(s).buckets[i] as f64);
        }
    }
    for (suffix, value) in [("count", (|w: &Window| w.count as f64) as fn(&Window) -> f64), ("sum", |w| w.sum as f64)] {
        let name = format!("{}_{suffix}", layout.name);
        header(out, &name, layout.help, Kind::Gauge);
        for s in samples {
            let scale = if suffix == "sum" { sum_scale } else { 1.0 };
            line(out, &name, &s.labels, value(pick(s)) * scale);
        }
    }
}

/// Writes every Pulsar family for the given partitions.
pub fn write(out: &mut String, partitions: &[std::sync::Arc<Partition>], cluster: &str, config: &MetricsConfig) {
    let mut broker = Sample::default();
    let mut namespaces: BTreeMap<String, Sample> = BTreeMap::new();
    let mut topics = Vec::with_capacity(if config.topic_level { partitions.len() } else { 0 });
    for p in partitions {
        let (namespace, sample) = Sample::of(p, cluster);
        broker.add(&sample);
        let ns = namespaces.entry(namespace).or_insert_with_key(|name| {
            let mut labels = String::new();
            push_label(&mut labels, "cluster", cluster);
            push_label(&mut labels, "namespace", name);
            Sample { labels, ..Sample::default() }
        });
        ns.add(&sample);
        if config.topic_level {
            topics.push(sample);
        }
    }
    let mut cluster_label = String::new();
    push_label(&mut cluster_label, "cluster", cluster);
    for (name, help, value) in BROKER_FAMILIES {
        header(out, name, help, Kind::Gauge);
        line(out, name, &cluster_label, value(&broker));
    }
    let mut version = cluster_label.clone();
    push_label(&mut version, "version", env!("CARGO_PKG_VERSION"));
    header(out, "pulsar_version_info", "the broker's version (Magnetar's), as a label", Kind::Gauge);
    line(out, "pulsar_version_info", &version, 1.0);
    header(out, "pulsar_topics_count", "topics (partitions) of the namespace served", Kind::Gauge);
    for ns in namespaces.values() {
        line(out, "pulsar_topics_count", &ns.labels, ns.topics as f64);
    }

    let namespaces: Vec<Sample> = namespaces.into_values().collect();
    let samples = if config.topic_level { &topics } else { &namespaces };
    for f in FAMILIES {
        let topic_value = f.topic.or(f.aggregated.filter(|_| !config.topic_level));
        let subscription_value = f.subscription.filter(|_| config.topic_level);
        let consumer_value = f.consumer.filter(|_| config.topic_level && config.consumer_level);
        if topic_value.is_none() && subscription_value.is_none() && consumer_value.is_none() {
            continue;
        }
        header(out, f.name, f.help, f.kind);
        if let Some(value) = topic_value {
            for s in samples {
                line(out, f.name, &s.labels, value(s));
            }
        }
        for t in samples.iter().filter(|_| subscription_value.is_some() || consumer_value.is_some()) {
            for (name, sub) in &t.subscriptions {
                if let Some(value) = subscription_value {
                    line(out, f.name, &child_labels(&t.labels, name, None), value(sub));
                }
                if let Some(value) = consumer_value {
                    for c in &sub.consumers {
                        line(out, f.name, &child_labels(&t.labels, name, Some(c)), value(c));
                    }
                }
            }
        }
    }
    write_buckets(out, &WRITE_LATENCY, samples, |s| &s.write_latency, 0.001);
    write_buckets(out, &ENTRY_SIZE, samples, |s| &s.entry_size, 1.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut l = String::new();
        push_label(&mut l, "consumer_name", "a\"b\\c\nd");
        assert_eq!(l, r#"consumer_name="a\"b\\c\nd""#);
    }

    #[test]
    fn values_use_the_text_formats_spelling() {
        let mut s = String::new();
        for v in [3.0, 0.25, f64::INFINITY, f64::NAN] {
            push_value(&mut s, v);
            s.push(' ');
        }
        assert_eq!(s, "3 0.25 +Inf NaN ");
    }

    #[test]
    fn every_family_name_is_unique() {
        let mut names: Vec<&str> = FAMILIES.iter().map(|f| f.name).chain(BROKER_FAMILIES.iter().map(|f| f.0)).collect();
        let before = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), before, "a family is written as one block: merge the levels into one entry");
    }
}
