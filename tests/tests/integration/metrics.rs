//! `/metrics`: Pulsar's broker, namespace, topic, subscription and consumer families with Pulsar's
//! names and labels (what a Pulsar operator's dashboards and alert rules query), the switch to
//! namespace-level aggregation, connection counts, and the validity of the text format itself.
//! Every scrape is parsed strictly: one `# TYPE` per family, each family's samples together.

use crate::common;

use common::ws::{WsClient, consumer_url};
use common::*;
use magnetar_tests::{TestApp, test_config};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug)]
struct Series {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A parsed scrape.
struct Scrape {
    text: String,
    types: BTreeMap<String, String>,
    series: Vec<Series>,
}

/// The family a sample line belongs to: itself, or a histogram's/summary's parts.
fn family_of<'a>(name: &'a str, types: &BTreeMap<String, String>) -> &'a str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && types.get(base).is_some_and(|t| t == "histogram" || t == "summary")
        {
            return base;
        }
    }
    name
}

/// `{k="v",...}` with the text format's escapes (`\\`, `\"`, `\n`).
fn parse_labels(s: &str, line: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut chars = s.chars().peekable();
    while chars.peek().is_some() {
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        assert_eq!(chars.next(), Some('"'), "label value not quoted in `{line}`");
        let mut value = String::new();
        loop {
            match chars.next() {
                Some('\\') => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c @ ('\\' | '"')) => value.push(c),
                    other => panic!("bad escape {other:?} in `{line}`"),
                },
                Some('"') => break,
                Some(c) => value.push(c),
                None => panic!("unterminated label value in `{line}`"),
            }
        }
        assert!(labels.insert(key.trim_start_matches(',').to_string(), value).is_none(), "repeated label: `{line}`");
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    labels
}

fn parse(text: String) -> Scrape {
    let mut types = BTreeMap::new();
    let mut closed = BTreeSet::new();
    let mut current: Option<String> = None;
    let mut series = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or_else(|| panic!("bad TYPE line `{line}`"));
            assert!(types.insert(name.to_string(), kind.to_string()).is_none(), "family {name} declared twice");
            if let Some(prev) = current.replace(name.to_string()) {
                closed.insert(prev);
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (head, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value in `{line}`"));
        let (name, labels) = match head.split_once('{') {
            Some((n, l)) => (n, parse_labels(l.strip_suffix('}').expect("closing brace"), line)),
            None => (head, BTreeMap::new()),
        };
        let family = family_of(name, &types);
        assert_eq!(current.as_deref(), Some(family), "sample `{line}` outside its family's block");
        assert!(!closed.contains(family), "family {family} split into two blocks");
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in `{line}`")),
        };
        series.push(Series { name: name.to_string(), labels, value });
    }
    Scrape { text, types, series }
}

async fn scrape(app: &TestApp) -> Scrape {
    let resp = app.client.get(app.url("/metrics")).send().await.expect("request");
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().expect("ascii").to_string();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    parse(resp.text().await.expect("metrics text"))
}

impl Scrape {
    /// Series of `name` whose labels include every given pair.
    fn find(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Series> {
        self.series
            .iter()
            .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
            .collect()
    }

    /// The value of the one series of `name` with exactly these labels.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let exact: Vec<&Series> =
            self.find(name, labels).into_iter().filter(|s| s.labels.len() == labels.len()).collect();
        assert!(exact.len() <= 1, "{name} {labels:?} appears {} times", exact.len());
        exact.first().map(|s| s.value)
    }

    fn expect(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels).unwrap_or_else(|| panic!("no {name}{labels:?} in:\n{}", self.text))
    }
}

const CLUSTER: (&str, &str) = ("cluster", "standalone");
const NAMESPACE: (&str, &str) = ("namespace", "public/default");

fn topic_label(topic: &str) -> (&'static str, String) {
    ("topic", format!("persistent://public/default/{topic}"))
}

/// Pulsar's topic families (reference-metrics "Topic metrics"), labelled cluster, namespace, topic.
const TOPIC_FAMILIES: &[&str] = &[
    "pulsar_subscriptions_count",
    "pulsar_producers_count",
    "pulsar_consumers_count",
    "pulsar_rate_in",
    "pulsar_rate_out",
    "pulsar_throughput_in",
    "pulsar_throughput_out",
    "pulsar_consumer_msg_ack_rate",
    "pulsar_storage_size",
    "pulsar_storage_logical_size",
    "pulsar_storage_backlog_size",
    "pulsar_storage_offloaded_size",
    "pulsar_storage_write_rate",
    "pulsar_storage_read_rate",
    "pulsar_msg_backlog",
    "pulsar_in_bytes_total",
    "pulsar_in_messages_total",
    "pulsar_out_bytes_total",
    "pulsar_out_messages_total",
    "pulsar_storage_write_latency_le_0_5",
    "pulsar_storage_write_latency_le_1",
    "pulsar_storage_write_latency_le_5",
    "pulsar_storage_write_latency_le_10",
    "pulsar_storage_write_latency_le_20",
    "pulsar_storage_write_latency_le_50",
    "pulsar_storage_write_latency_le_100",
    "pulsar_storage_write_latency_le_200",
    "pulsar_storage_write_latency_le_1000",
    "pulsar_storage_write_latency_overflow",
    "pulsar_storage_write_latency_count",
    "pulsar_storage_write_latency_sum",
    "pulsar_entry_size_le_128",
    "pulsar_entry_size_le_512",
    "pulsar_entry_size_le_1_kb",
    "pulsar_entry_size_le_2_kb",
    "pulsar_entry_size_le_4_kb",
    "pulsar_entry_size_le_16_kb",
    "pulsar_entry_size_le_100_kb",
    "pulsar_entry_size_le_1_mb",
    "pulsar_entry_size_le_overflow",
    "pulsar_entry_size_count",
    "pulsar_entry_size_sum",
];

/// Pulsar's subscription families, labelled cluster, namespace, topic, subscription.
const SUBSCRIPTION_FAMILIES: &[&str] = &[
    "pulsar_subscription_back_log",
    "pulsar_subscription_back_log_no_delayed",
    "pulsar_subscription_delayed",
    "pulsar_subscription_msg_rate_redeliver",
    "pulsar_subscription_unacked_messages",
    "pulsar_subscription_blocked_on_unacked_messages",
    "pulsar_subscription_msg_rate_out",
    "pulsar_subscription_msg_ack_rate",
    "pulsar_subscription_msg_throughput_out",
    "pulsar_out_bytes_total",
    "pulsar_out_messages_total",
    "pulsar_subscription_last_expire_timestamp",
    "pulsar_subscription_last_acked_timestamp",
    "pulsar_subscription_last_consumed_timestamp",
    "pulsar_subscription_msg_rate_expired",
    "pulsar_subscription_total_msg_expired",
    "pulsar_subscription_consumers_count",
];

/// Pulsar's broker families, labelled cluster.
const BROKER_FAMILIES: &[&str] = &[
    "pulsar_broker_topics_count",
    "pulsar_broker_subscriptions_count",
    "pulsar_broker_producers_count",
    "pulsar_broker_consumers_count",
    "pulsar_broker_rate_in",
    "pulsar_broker_rate_out",
    "pulsar_broker_throughput_in",
    "pulsar_broker_throughput_out",
    "pulsar_broker_storage_size",
    "pulsar_broker_storage_logical_size",
    "pulsar_broker_storage_write_rate",
    "pulsar_broker_storage_read_rate",
    "pulsar_broker_msg_backlog",
];

#[tokio::test]
async fn a_scrape_names_pulsars_families_with_their_labels_after_producing_and_consuming() {
    let app = TestApp::standalone().await;
    create_topic(&app, "metered").await;
    ok(app.put(&format!("{}/subscription/s", admin_topic("metered")), None).await);
    produce_payloads(&app, "metered", &(0..7).map(|i| format!("m{i}")).collect::<Vec<_>>()).await;
    let mut consumer = WsClient::connect(&consumer_url(&app.base, "metered", "s", "subscriptionType=Shared")).await;
    for _ in 0..3 {
        let m = consumer.recv_message().await;
        consumer.ack(m["messageId"].as_str().expect("id")).await;
    }
    eventually(10, "three acknowledgements", || async { (backlog(&app, "metered", "s").await == 4).then_some(()) })
        .await;

    let m = scrape(&app).await;
    let topic = topic_label("metered");
    let t = [CLUSTER, NAMESPACE, (topic.0, topic.1.as_str())];
    let s = [CLUSTER, NAMESPACE, (topic.0, topic.1.as_str()), ("subscription", "s")];
    for name in TOPIC_FAMILIES {
        assert!(m.value(name, &t).is_some(), "no {name} for the topic in:\n{}", m.text);
    }
    for name in SUBSCRIPTION_FAMILIES {
        assert!(m.value(name, &s).is_some(), "no {name} for the subscription in:\n{}", m.text);
    }
    for name in BROKER_FAMILIES {
        assert!(m.value(name, &[CLUSTER]).is_some(), "no {name} for the broker in:\n{}", m.text);
    }
    assert_eq!(m.expect("pulsar_topics_count", &[CLUSTER, NAMESPACE]), 1.0);

    assert_eq!(m.expect("pulsar_in_messages_total", &t), 7.0);
    assert_eq!(m.expect("pulsar_in_bytes_total", &t), 14.0);
    assert_eq!(m.expect("pulsar_msg_backlog", &t), 4.0);
    assert_eq!(m.expect("pulsar_subscription_back_log", &s), 4.0);
    assert_eq!(m.expect("pulsar_subscriptions_count", &t), 1.0);
    assert_eq!(m.expect("pulsar_consumers_count", &t), 1.0);
    assert_eq!(m.expect("pulsar_subscription_consumers_count", &s), 1.0);
    assert!(m.expect("pulsar_out_messages_total", &s) >= 3.0);
    assert!(m.expect("pulsar_out_messages_total", &t) >= 3.0);
    assert!(m.expect("pulsar_subscription_last_acked_timestamp", &s) > 0.0);
    assert!(m.expect("pulsar_storage_size", &t) > 0.0);
    assert_eq!(m.expect("pulsar_broker_topics_count", &[CLUSTER]), 1.0);
    assert_eq!(m.expect("pulsar_broker_msg_backlog", &[CLUSTER]), 4.0);
    assert_eq!(m.expect("pulsar_broker_consumers_count", &[CLUSTER]), 1.0);
    for (name, kind) in [("pulsar_in_messages_total", "counter"), ("pulsar_rate_in", "gauge")] {
        assert_eq!(m.types.get(name).map(String::as_str), Some(kind), "TYPE of {name}");
    }
    assert!(m.text.contains("magnetar_publish_latency_seconds_bucket{le="), "{}", m.text);
    assert!(m.value("magnetar_publish_latency_seconds_count", &[]).is_some_and(|v| v >= 1.0), "{}", m.text);
    consumer.close().await;
}

#[tokio::test]
async fn rates_follow_publishing_delivery_and_acknowledgement() {
    let app = TestApp::standalone().await;
    create_topic(&app, "rated").await;
    ok(app.put(&format!("{}/subscription/s", admin_topic("rated")), None).await);
    // Rates are recomputed every 5 s from the counters: publish and consume within a window,
    // then wait for the window to close.
    produce_payloads(&app, "rated", &(0..50).map(|i| format!("m{i}")).collect::<Vec<_>>()).await;
    let got = pull_n(&app, "rated", "s", 50, 30_000).await;
    ok(ack(&app, "rated", "s", &ids_of(&got)).await);
    let topic = topic_label("rated");
    let t = [CLUSTER, NAMESPACE, (topic.0, topic.1.as_str())];
    let s = [CLUSTER, NAMESPACE, (topic.0, topic.1.as_str()), ("subscription", "s")];
    eventually(20, "non-zero rates", || async {
        let m = scrape(&app).await;
        let positive = |name: &str, labels: &[(&str, &str)]| m.value(name, labels).is_some_and(|v| v > 0.0);
        (positive("pulsar_rate_in", &t)
            && positive("pulsar_throughput_in", &t)
            && positive("pulsar_rate_out", &t)
            && positive("pulsar_storage_write_rate", &t)
            && positive("pulsar_consumer_msg_ack_rate", &t)
            && positive("pulsar_subscription_msg_rate_out", &s)
            && positive("pulsar_subscription_msg_ack_rate", &s)
            && positive("pulsar_broker_rate_in", &[CLUSTER]))
        .then_some(())
    })
    .await;
}

#[tokio::test]
async fn latency_and_entry_size_buckets_count_the_last_window() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cfg = test_config(dir.path());
    cfg.broker.metrics.bucket_window_seconds = 1;
    let app = TestApp::start(dir, cfg).await;
    create_topic(&app, "sized").await;
    let mut payloads: Vec<String> = (0..3).map(|i| format!("small-{i}")).collect();
    payloads.push("x".repeat(3000));
    produce_payloads(&app, "sized", &payloads).await;
    let topic = topic_label("sized");
    let t = [CLUSTER, NAMESPACE, (topic.0, topic.1.as_str())];
    let m = eventually(10, "a window with the four messages", || async {
        let m = scrape(&app).await;
        (m.value("pulsar_entry_size_count", &t) == Some(4.0)).then_some(m)
    })
    .await;
    assert_eq!(m.expect("pulsar_entry_size_le_128", &t), 3.0);
    assert_eq!(m.expect("pulsar_entry_size_le_4_kb", &t), 1.0);
    assert_eq!(m.expect("pulsar_entry_size_sum", &t), (3 * 7 + 3000) as f64);
    let latency_buckets: f64 = m
        .series
        .iter()
        .filter(|s| {
            s.name.starts_with("pulsar_storage_write_latency_")
                && !s.name.ends_with("_count")
                && !s.name.ends_with("_sum")
        })
        .filter(|s| s.labels.get("topic") == Some(&topic.1))
        .map(|s| s.value)
        .sum();
    assert_eq!(latency_buckets, 4.0, "each message in one latency bucket:\n{}", m.text);
    assert_eq!(m.expect("pulsar_storage_write_latency_count", &t), 4.0);
    assert!(m.expect("pulsar_storage_write_latency_sum", &t) > 0.0, "latency sum in milliseconds");
    eventually(10, "an idle window", || async {
        (scrape(&app).await.value("pulsar_entry_size_count", &t) == Some(0.0)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn namespace_level_metrics_sum_the_topics_and_leave_subscriptions_out() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cfg = test_config(dir.path());
    cfg.broker.metrics.topic_level = false;
    let app = TestApp::start(dir, cfg).await;
    for (topic, n) in [("a", 3), ("b", 4)] {
        create_topic(&app, topic).await;
        ok(app.put(&format!("{}/subscription/s", admin_topic(topic)), None).await);
        produce_payloads(&app, topic, &(0..n).map(|i| format!("m{i}")).collect::<Vec<_>>()).await;
    }
    let m = scrape(&app).await;
    let ns = [CLUSTER, NAMESPACE];
    assert_eq!(m.expect("pulsar_in_messages_total", &ns), 7.0);
    assert_eq!(m.expect("pulsar_msg_backlog", &ns), 7.0);
    assert_eq!(m.expect("pulsar_subscriptions_count", &ns), 2.0);
    assert_eq!(m.expect("pulsar_topics_count", &ns), 2.0);
    assert_eq!(m.expect("pulsar_subscription_delayed", &ns), 0.0);
    assert!(m.value("pulsar_storage_write_latency_le_1", &ns).is_some(), "{}", m.text);
    assert_eq!(m.expect("pulsar_broker_topics_count", &[CLUSTER]), 2.0);
    let per_topic: Vec<&Series> =
        m.series.iter().filter(|s| s.labels.contains_key("topic") || s.labels.contains_key("subscription")).collect();
    assert!(per_topic.is_empty(), "per-topic series with topic-level metrics off: {per_topic:?}");
}

#[tokio::test]
async fn consumer_level_metrics_name_each_consumer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cfg = test_config(dir.path());
    cfg.broker.metrics.consumer_level = true;
    let app = TestApp::start(dir, cfg).await;
    create_topic(&app, "per-consumer").await;
    produce_payloads(&app, "per-consumer", &["a".to_string(), "b".to_string()]).await;
    // A name with a quote: the label value must come back intact through the text format's escapes.
    let url = consumer_url(
        &app.base,
        "per-consumer",
        "s",
        "subscriptionType=Shared&subscriptionInitialPosition=Earliest&consumerName=c%221",
    );
    let mut consumer = WsClient::connect(&url).await;
    consumer.recv_message().await;
    consumer.recv_message().await;
    let topic = topic_label("per-consumer");
    let labels = [CLUSTER, NAMESPACE, (topic.0, topic.1.as_str()), ("subscription", "s"), ("consumer_name", "c\"1")];
    let m = eventually(10, "two unacknowledged messages", || async {
        let m = scrape(&app).await;
        let found = m.find("pulsar_consumer_unacked_messages", &labels);
        (found.len() == 1 && found[0].value == 2.0).then_some(m)
    })
    .await;
    let series = m.find("pulsar_consumer_unacked_messages", &labels);
    assert!(series[0].labels.get("consumer_id").is_some_and(|id| id.parse::<u64>().is_ok()), "{series:?}");
    for name in [
        "pulsar_consumer_msg_rate_out",
        "pulsar_consumer_msg_throughput_out",
        "pulsar_consumer_msg_ack_rate",
        "pulsar_consumer_available_permits",
        "pulsar_consumer_blocked_on_unacked_messages",
    ] {
        assert_eq!(m.find(name, &labels).len(), 1, "no {name} for the consumer in:\n{}", m.text);
    }
    consumer.close().await;
}

#[tokio::test]
async fn websocket_sessions_count_as_connections() {
    let app = TestApp::standalone().await;
    create_topic(&app, "conn").await;
    let connections = |m: &Scrape, name: &str| {
        let found = m.find(name, &[CLUSTER]);
        assert_eq!(found.len(), 1, "one {name} series expected in:\n{}", m.text);
        assert!(found[0].labels.contains_key("broker"), "{found:?}");
        found[0].value
    };
    assert_eq!(connections(&scrape(&app).await, "pulsar_active_connections"), 0.0);
    let consumer = WsClient::connect(&consumer_url(&app.base, "conn", "s", "")).await;
    eventually(10, "one active connection", || async {
        (connections(&scrape(&app).await, "pulsar_active_connections") == 1.0).then_some(())
    })
    .await;
    consumer.close().await;
    let m = eventually(10, "the connection closed", || async {
        let m = scrape(&app).await;
        (connections(&m, "pulsar_active_connections") == 0.0).then_some(m)
    })
    .await;
    assert_eq!(connections(&m, "pulsar_connection_created_total_count"), 1.0);
    assert_eq!(connections(&m, "pulsar_connection_closed_total_count"), 1.0);
}

#[tokio::test]
async fn metrics_label_each_partition_as_its_own_topic() {
    let app = TestApp::standalone().await;
    create_partitioned(&app, "mp", 2).await;
    produce_payloads(&app, "mp", &(0..4).map(|i| format!("m{i}")).collect::<Vec<_>>()).await;
    let m = scrape(&app).await;
    for i in 0..2 {
        let topic = topic_label(&format!("mp-partition-{i}"));
        assert_eq!(m.expect("pulsar_in_messages_total", &[CLUSTER, NAMESPACE, (topic.0, &topic.1)]), 2.0);
    }
    assert_eq!(m.expect("pulsar_topics_count", &[CLUSTER, NAMESPACE]), 2.0, "partitions count as topics");
}

#[tokio::test]
async fn metrics_drop_the_series_of_a_deleted_topic() {
    let app = TestApp::standalone().await;
    create_topic(&app, "gone").await;
    produce_payloads(&app, "gone", &["x".to_string()]).await;
    assert!(scrape(&app).await.text.contains("topic=\"persistent://public/default/gone\""));
    ok(app.delete(&admin_topic("gone")).await);
    let m = scrape(&app).await;
    assert!(!m.text.contains("topic=\"persistent://public/default/gone\""), "{}", m.text);
}

#[tokio::test]
async fn metrics_expose_wal_fsync_latency() {
    let app = TestApp::standalone().await;
    create_topic(&app, "wal").await;
    produce_payloads(&app, "wal", &["x".to_string()]).await;
    let m = scrape(&app).await;
    assert!(
        m.text.contains("magnetar_wal_fsync_seconds_bucket"),
        "the storage metrics (magnetar_wal_fsync_seconds, magnetar_wal_batch_*) are not registered with the broker's registry:\n{}",
        m.text
    );
    assert!(m.value("magnetar_wal_fsync_seconds_count", &[]).is_some_and(|v| v >= 1.0), "{}", m.text);
}

#[tokio::test]
async fn metrics_with_trailing_slash_is_pulsars_path() {
    let app = TestApp::standalone().await;
    create_topic(&app, "slash").await;
    produce_payloads(&app, "slash", &["x".to_string()]).await;
    let resp = app.client.get(app.url("/metrics/")).send().await.expect("request");
    assert_eq!(resp.status(), 200);
    let m = parse(resp.text().await.expect("text"));
    assert_eq!(m.expect("pulsar_topics_count", &[CLUSTER, NAMESPACE]), 1.0);
}

#[test]
fn the_parser_rejects_a_split_family() {
    let text = "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na 2\n".to_string();
    let result = std::panic::catch_unwind(|| parse(text));
    assert!(result.is_err(), "a sample after another family's block must be refused");
}

/// The metric names Pulsar's Grafana dashboards for topics, namespaces and the broker query
/// (docs/grafana-metrics.tsv: the apache/pulsar and StreamNative dashboards): each one marked
/// `exported` is in a scrape after producing and consuming, and every other one says why not.
#[tokio::test]
async fn the_metrics_pulsars_grafana_dashboards_query_are_exported() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let table = std::fs::read_to_string(root.join("docs/grafana-metrics.tsv")).expect("docs/grafana-metrics.tsv");
    let app = TestApp::standalone().await;
    create_topic(&app, "dashboarded").await;
    let quota = json!({"limitSize": 1_000_000, "limitTime": -1, "policy": "producer_request_hold"});
    let path = format!("{}/backlogQuota?backlogQuotaType=destination_storage", admin_topic("dashboarded"));
    assert_eq!(app.post(&path, Some(quota)).await.0, 204);
    ok(app.put(&format!("{}/subscription/s", admin_topic("dashboarded")), None).await);
    produce_payloads(&app, "dashboarded", &(0..5).map(|i| format!("m{i}")).collect::<Vec<_>>()).await;
    let got = pull_n(&app, "dashboarded", "s", 5, 30_000).await;
    ok(ack(&app, "dashboarded", "s", &ids_of(&got)[..2]).await);

    let m = scrape(&app).await;
    let mut exported = 0;
    for row in table.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = row.split('\t').collect();
        assert_eq!(cols.len(), 3, "metric, dashboards, status: {row}");
        let (name, status) = (cols[0], cols[2]);
        if status == "exported" {
            exported += 1;
            let present = m.types.contains_key(name) || m.series.iter().any(|s| s.name == name);
            assert!(present, "{name} (queried by {}) is not in the scrape:\n{}", cols[1], m.text);
        } else {
            assert!(status.starts_with("not exported: ") && status.len() > 20, "{name}: no reason given: {status}");
        }
    }
    assert!(exported >= 39, "only {exported} dashboard metrics marked exported");
    let topic = topic_label("dashboarded");
    let t = [CLUSTER, NAMESPACE, (topic.0, topic.1.as_str())];
    assert_eq!(m.expect("pulsar_storage_backlog_quota_limit", &t), 1_000_000.0);
    assert_eq!(m.expect("pulsar_version_info", &[CLUSTER, ("version", env!("CARGO_PKG_VERSION"))]), 1.0);
}
