//! Helpers of the broker-tier suites: several `magnetar broker` processes with
//! `[broker.tier] enabled` on one fresh PostgreSQL database and the shared S3 server.

use magnetar_tests::call;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const PARTITIONS: u32 = 6;

/// This test's cluster name. The tier suites share one S3 bucket and object keys begin with
/// the cluster, so each test (one process under nextest) has its own: otherwise two tests'
/// brokers would write, and collect as orphans, each other's objects.
pub fn cluster() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        format!("tier-{}-{nanos}", std::process::id())
    })
}
pub const TOPIC: &str = "acme/app/events";

pub async fn tier_config() -> String {
    tier_config_with("").await
}

/// `tier_config` with more `[broker]` lines.
pub async fn tier_config_with(broker_lines: &str) -> String {
    let broker = format!("default_namespace_bundles = 16\n{broker_lines}");
    let more = "[broker.membership]\nlease_ms = 4000\nrenew_interval_ms = 500\nfence_margin_ms = 1000\n\n\
                [broker.tier]\nenabled = true\nrefresh_interval_ms = 100\nassignment_wait_ms = 10000\n\
                drain_timeout_ms = 20000\n";
    crate::common::cluster_toml(cluster(), &broker, more).await
}

/// `N` brokers of one tier (`a`, `b`, `c`, ...) started with `cfg` under `dir`.
pub fn brokers<const N: usize>(dir: &std::path::Path, cfg: &str) -> [magnetar_tests::BrokerProcess; N] {
    brokers_with_env(dir, cfg, &[])
}

/// `brokers` with these environment variables set for each.
pub fn brokers_with_env<const N: usize>(
    dir: &std::path::Path,
    cfg: &str,
    env: &[(&str, &str)],
) -> [magnetar_tests::BrokerProcess; N] {
    std::array::from_fn(|i| {
        let name = char::from(b'a' + i as u8).to_string();
        magnetar_tests::BrokerProcess::start_cluster(&dir.join(name), cfg, env)
    })
}

/// One broker of a tier on its own, in a directory that goes when the first value is dropped.
pub async fn lone_broker() -> (tempfile::TempDir, magnetar_tests::BrokerProcess, reqwest::Client) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tier_config().await;
    let [a] = brokers(dir.path(), &cfg);
    (dir, a, reqwest::Client::new())
}

/// The tenant and namespace, `TOPIC` with `PARTITIONS` partitions and their audit
/// subscriptions, created through `base`.
pub async fn partitioned_topic(c: &reqwest::Client, base: &str) {
    namespace(c, base).await;
    let url = format!("{base}/admin/v2/persistent/{TOPIC}/partitions");
    expect(call(c, Method::PUT, &url, Some(json!(PARTITIONS))).await, 204, "partitioned topic");
    audit_subscriptions(c, base).await;
}

#[track_caller]
pub fn expect(answer: (reqwest::StatusCode, Value), status: u16, what: &str) -> Value {
    assert_eq!(answer.0.as_u16(), status, "{what}: {}", answer.1);
    answer.1
}

pub fn partition(i: u32) -> String {
    format!("{TOPIC}-partition-{i}")
}

pub async fn namespace(c: &reqwest::Client, base: &str) {
    let tenant = json!({"allowedClusters": [cluster()]});
    expect(call(c, Method::PUT, &format!("{base}/admin/v2/tenants/acme"), Some(tenant)).await, 204, "tenant");
    expect(call(c, Method::PUT, &format!("{base}/admin/v2/namespaces/acme/app"), None).await, 204, "namespace");
}

/// The test namespace and a non-partitioned `topic` in it (`acme/app/...`).
pub async fn single_topic(c: &reqwest::Client, base: &str, topic: &str) {
    namespace(c, base).await;
    expect(call(c, Method::PUT, &format!("{base}/admin/v2/persistent/{topic}"), None).await, 204, "topic");
}

/// As `single_topic`, with an `audit` subscription made before anything is produced.
pub async fn audited_topic(c: &reqwest::Client, base: &str, topic: &str) {
    single_topic(c, base, topic).await;
    let audit = format!("{base}/admin/v2/persistent/{topic}/subscription/audit");
    expect(call(c, Method::PUT, &audit, None).await, 204, "audit subscription");
}

/// `bundle → owner` of the owned bundles, and whether any bundle is unavailable.
pub async fn ownership(c: &reqwest::Client, base: &str) -> (BTreeMap<String, String>, bool) {
    let view = expect(
        call(c, Method::GET, &format!("{base}/admin/v2/brokers/{}/bundles", cluster()), None).await,
        200,
        "view",
    );
    let rows = view.as_array().expect("rows");
    let owned = rows
        .iter()
        .filter(|r| r["state"] == "owned")
        .map(|r| (r["bundle"].as_str().unwrap().to_string(), r["owner"].as_str().unwrap().to_string()))
        .collect();
    (owned, rows.iter().any(|r| r["unavailable"] == true))
}

/// The bundle (`acme/app/range`) a topic or partition is in.
pub async fn bundle_of(c: &reqwest::Client, base: &str, topic: &str) -> String {
    let range = expect(
        call(c, Method::GET, &format!("{base}/lookup/v2/topic/persistent/{topic}/bundle"), None).await,
        200,
        "bundle",
    );
    format!("acme/app/{}", range.as_str().expect("range text"))
}

/// Producers through the given brokers, each posting batches of messages with unique ids to the
/// partitions in turn until stopped; what was acknowledged and what failed.
pub struct Load {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<String>>>,
    failures: Arc<Mutex<Vec<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    pub fn start(bases: Vec<String>, producers: usize) -> Load {
        Load::numbered(bases, 0..producers)
    }

    /// Producers numbered from `numbers` (ids `{number}-{seq}-{k}-{partition}` stay unique
    /// across loads with disjoint numbers).
    pub fn numbered(bases: Vec<String>, numbers: std::ops::Range<usize>) -> Load {
        Load::on_partitions(bases, (0..PARTITIONS).collect(), numbers)
    }

    /// Producers posting to the given partitions of `TOPIC` only, in turn.
    pub fn on_partitions(bases: Vec<String>, partitions: Vec<u32>, numbers: std::ops::Range<usize>) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let tasks = numbers
            .map(|n| {
                let (stop, acked, failures) = (stop.clone(), acked.clone(), failures.clone());
                let (bases, partitions) = (bases.clone(), partitions.clone());
                tokio::spawn(async move {
                    let c = reqwest::Client::new();
                    let mut seq = 0usize;
                    while !stop.load(Ordering::Relaxed) {
                        let p = partitions[(seq + n) % partitions.len()];
                        let base = &bases[seq % bases.len()];
                        let ids: Vec<String> = (0..5).map(|k| format!("{n}-{seq}-{k}-{p}")).collect();
                        let messages: Vec<Value> =
                            ids.iter().map(|id| json!({"payload": "eA==", "properties": {"id": id}})).collect();
                        let url = format!("{base}/topics/persistent/{TOPIC}/partitions/{p}");
                        let (status, body) = call(&c, Method::POST, &url, Some(json!({"messages": messages}))).await;
                        let ok = status.as_u16() == 200
                            && body["messagePublishResults"]
                                .as_array()
                                .is_some_and(|r| r.len() == ids.len() && r.iter().all(|m| m["errorCode"] == 0));
                        if ok {
                            acked.lock().unwrap().extend(ids);
                        } else {
                            failures.lock().unwrap().push(format!("{url}: {status} {body}"));
                        }
                        seq += 1;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                })
            })
            .collect();
        Load { stop, acked, failures, tasks }
    }

    /// Stops the producers and checks that no request failed (`what` names the phase in the
    /// failure); what was acknowledged.
    pub async fn finish_without_failures(self, what: &str) -> BTreeSet<String> {
        let (acked, failures) = self.finish().await;
        assert!(
            failures.is_empty(),
            "{what}: {} requests failed, e.g. {:?}",
            failures.len(),
            &failures[..failures.len().min(3)]
        );
        acked
    }

    pub async fn finish(self) -> (BTreeSet<String>, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.expect("producer task");
        }
        let acked: Vec<String> = self.acked.lock().unwrap().clone();
        let set: BTreeSet<String> = acked.iter().cloned().collect();
        assert_eq!(set.len(), acked.len(), "an id was acknowledged twice");
        (set, self.failures.lock().unwrap().clone())
    }

    /// Stops the producers and checks that every request that failed was refused as
    /// unavailable (503: partitions between owners, an ack quorum missing), printing after
    /// `what` how many were acknowledged and refused; what was acknowledged.
    pub async fn finish_refused_only_as_unavailable(self, what: &str) -> BTreeSet<String> {
        let (acked, failures) = self.finish().await;
        eprintln!("{what}; {} messages acknowledged, {} requests refused meanwhile", acked.len(), failures.len());
        assert!(
            failures.iter().all(|f| f.contains(" 503 ")),
            "only unavailability: {:?}",
            &failures[..failures.len().min(3)]
        );
        acked
    }
}

/// Pulls every message of `topic` for subscription `sub` through `base`, acknowledging: the
/// count of each `id` property received.
pub async fn drain_subscription(c: &reqwest::Client, base: &str, topic: &str, sub: &str) -> BTreeMap<String, usize> {
    let mut received = BTreeMap::new();
    for id in drain_in_log_order(c, base, topic, sub).await {
        *received.entry(id).or_default() += 1;
    }
    received
}

/// `drain_subscription`'s messages as the log holds them: their ids by position (a pull may
/// deliver out of it once something was redelivered).
pub async fn drain_in_log_order(c: &reqwest::Client, base: &str, topic: &str, sub: &str) -> Vec<String> {
    let pull = format!("{base}/topics/persistent/{topic}/subscriptions/{sub}/pull");
    let ack = format!("{base}/topics/persistent/{topic}/subscriptions/{sub}/ack");
    let mut received: Vec<((u64, u64), String)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut empty = 0;
    let stats = format!("{base}/admin/v2/persistent/{topic}/stats");
    // What the last refusal or backlog count said, for the failure message.
    let mut last = String::new();
    loop {
        assert!(Instant::now() < deadline, "{topic}: still receiving after 60 s; last: {last}");
        let body = json!({"maxMessages": 500, "waitMs": 300, "ackTimeoutMs": 60000});
        let (status, got) = call(c, Method::POST, &pull, Some(body)).await;
        if status.as_u16() == 503 {
            last = format!("pull refused: {got}");
            // The partition is between owners (a balance move, a failover still settling):
            // it serves again within the deadline or the test fails on it.
            tokio::time::sleep(Duration::from_millis(300)).await;
            continue;
        }
        assert_eq!(status.as_u16(), 200, "pull {topic}: {got}");
        let messages = got["messages"].as_array().expect("messages").clone();
        if messages.is_empty() {
            empty += 1;
            // Done when pulls come back empty and the broker counts no backlog either (a
            // partition still loading on a busy machine answers empty pulls too).
            if empty >= 2 {
                let s = expect(call(c, Method::GET, &stats, None).await, 200, "stats");
                if s["subscriptions"][sub]["msgBacklog"] == 0 {
                    break;
                }
                last = format!("empty pulls, stats {s}");
            }
            continue;
        }
        empty = 0;
        let ids: Vec<String> = messages.iter().map(|m| m["messageId"].as_str().unwrap().to_string()).collect();
        for m in &messages {
            // `ledgerId:entryId:partition`.
            let at: Vec<u64> =
                m["messageId"].as_str().unwrap().split(':').take(2).map(|n| n.parse().expect("position")).collect();
            received.push(((at[0], at[1]), m["properties"]["id"].as_str().expect("id").to_string()));
        }
        // Unacknowledged, they would come back only after the 60 s ack timeout: retried.
        crate::common::eventually(30, "ack", || async {
            let (status, body) = call(c, Method::POST, &ack, Some(json!({"messageIds": ids}))).await;
            assert!(matches!(status.as_u16(), 204 | 503), "ack {topic}: {status} {body}");
            (status.as_u16() == 204).then_some(())
        })
        .await;
    }
    received.sort();
    received.into_iter().map(|(_, id)| id).collect()
}

/// Checks that each producer's messages in a partition's log (ids `{producer}-{seq}-{k}-{p}`, as
/// `Load` names them; others are skipped) are in the order it sent them: it waits for each
/// answer before the next.
#[track_caller]
pub fn assert_in_send_order(partition: u32, ids: &[String]) {
    let mut last: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for id in ids {
        let parts: Vec<u64> = id.split('-').filter_map(|n| n.parse().ok()).collect();
        let [n, seq, k, _] = parts[..] else { continue };
        if let Some(before) = last.insert(n, (seq, k)) {
            assert!(
                before < (seq, k),
                "partition {partition}: {id} stored after {n}-{}-{} (out of order)",
                before.0,
                before.1
            );
        }
    }
}

/// Every partition's audit subscription, created before anything is produced.
pub async fn audit_subscriptions(c: &reqwest::Client, base: &str) {
    subscriptions_named(c, base, "audit").await;
}

/// A subscription `sub` on every partition (made before anything is produced, it keeps every
/// message for a read-back).
pub async fn subscriptions_named(c: &reqwest::Client, base: &str, sub: &str) {
    for i in 0..PARTITIONS {
        let url = format!("{base}/admin/v2/persistent/{}/subscription/{sub}", partition(i));
        expect(call(c, Method::PUT, &url, None).await, 204, "subscription");
    }
}

/// Reads every partition through `base` and checks each acknowledged message is stored once.
pub async fn assert_stored_once(c: &reqwest::Client, base: &str, acked: &BTreeSet<String>) {
    assert_stored_once_in(c, base, "audit", acked).await;
}

/// `assert_stored_once` through the subscription `sub` of every partition (which it drains).
pub async fn assert_stored_once_in(c: &reqwest::Client, base: &str, sub: &str, acked: &BTreeSet<String>) {
    let mut all: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..PARTITIONS {
        let ids = drain_in_log_order(c, base, &partition(i), sub).await;
        for id in &ids {
            *all.entry(id.clone()).or_default() += 1;
        }
        // Among the acknowledged ones (a request whose answer was lost may land later), first
        // copies only (duplicates are reported below, with their counts).
        let mut seen = BTreeSet::new();
        let firsts: Vec<String> = ids.into_iter().filter(|id| acked.contains(id) && seen.insert(id.clone())).collect();
        assert_in_send_order(i, &firsts);
    }
    let missing: Vec<&String> = acked.iter().filter(|id| !all.contains_key(*id)).collect();
    let mut by_partition: BTreeMap<usize, usize> = BTreeMap::new();
    for id in &missing {
        let parts: Vec<usize> = id.split('-').map(|n| n.parse().unwrap()).collect();
        *by_partition.entry(parts[3]).or_default() += 1;
    }
    assert!(
        missing.is_empty(),
        "{} acknowledged messages lost (by partition {by_partition:?}), e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let twice: Vec<_> = all.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "stored more than once: {twice:?}");
}

/// What a Python scenario reported acknowledged (`"acked": [ids]`).
pub fn acked_ids(result: &Value) -> BTreeSet<String> {
    result["acked"].as_array().expect("acked").iter().map(|v| v.as_str().expect("id").to_string()).collect()
}

/// Every acknowledged id was stored, and nothing more than once.
#[track_caller]
pub fn assert_stored_exactly_once(acked: &BTreeSet<String>, stored: &BTreeMap<String, usize>) {
    let lost: Vec<&String> = acked.iter().filter(|id| !stored.contains_key(*id)).collect();
    assert!(lost.is_empty(), "{} acknowledged messages not stored, e.g. {:?}", lost.len(), &lost[..lost.len().min(5)]);
    let twice: Vec<_> = stored.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "stored more than once: {twice:?}");
}

/// `msgInCounter` of the stats at `stats_url` (a topic's `/stats` or `/partitioned-stats`).
pub async fn stored_count(c: &reqwest::Client, stats_url: &str) -> u64 {
    let (_, stats) = call(c, Method::GET, stats_url, None).await;
    stats["msgInCounter"].as_u64().unwrap_or(0)
}

/// Waits until the stats at `stats_url` count `n` messages stored (30 s at most), failing at
/// once if the `client` producing them ended.
pub async fn wait_stored<T>(c: &reqwest::Client, stats_url: &str, n: u64, client: &tokio::task::JoinHandle<T>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stored = stored_count(c, stats_url).await;
        if stored >= n {
            return;
        }
        assert!(Instant::now() < deadline, "{stored} messages stored after 30 s, waiting for {n}");
        assert!(!client.is_finished(), "the client ended early");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `TOPIC`'s partitions have taken at least `n` messages in (every partition owned
/// and the producers running).
pub async fn wait_acknowledged(c: &reqwest::Client, base: &str, n: u64) {
    crate::common::eventually(30, "every partition owned and some messages acknowledged", || async {
        let stats = expect(
            call(c, Method::GET, &format!("{base}/admin/v2/persistent/{TOPIC}/partitioned-stats"), None).await,
            200,
            "stats",
        );
        (stats["msgInCounter"].as_u64().unwrap_or(0) >= n).then_some(())
    })
    .await;
}

/// Unloads the bundle of every partition of `TOPIC` through `via`, one after the other, each once
/// it is owned again (as `a` sees it); the bundles, and how many moved to another broker.
pub async fn unload_every_bundle(
    c: &reqwest::Client,
    a: &magnetar_tests::BrokerProcess,
    via: &magnetar_tests::BrokerProcess,
) -> (BTreeSet<String>, usize) {
    let before = ownership(c, &a.base).await.0;
    let mut bundles = BTreeSet::new();
    for i in 0..PARTITIONS {
        bundles.insert(bundle_of(c, &a.base, &partition(i)).await);
    }
    let mut moved = 0;
    for bundle in &bundles {
        let range = bundle.trim_start_matches("acme/app/");
        let unload = format!("{}/admin/v2/namespaces/acme/app/{range}/unload", via.base);
        expect(call(c, Method::PUT, &unload, None).await, 204, "bundle unload");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(owner) = ownership(c, &a.base).await.0.get(bundle) {
                moved += usize::from(Some(owner) != before.get(bundle));
                break;
            }
            assert!(Instant::now() < deadline, "{bundle} not owned again within 10 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    (bundles, moved)
}
