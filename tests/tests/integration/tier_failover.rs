//! Zero-loss failover (issue 13), for both modes that allow it: `object-store` (records
//! acknowledged only once committed in log objects in the bucket) and `replicated` (only once
//! an ack quorum of brokers fsynced them). When the broker owning some partitions is killed
//! (-9) under continuous produce, the leader hands them to a live broker as soon as the lease
//! has expired; that broker recovers the tail (from the bucket or the replicas) and serves on:
//! every acknowledged message is read back exactly once. The bucket is the shared S3 server,
//! the metadata a real PostgreSQL, the brokers real processes.

use crate::common::eventually;
use crate::common::tier::{
    Load, PARTITIONS, TOPIC, assert_stored_once, audit_subscriptions, brokers, bundle_of, cluster, expect, namespace,
    ownership, partition, tier_config, tier_config_with, wait_acknowledged,
};
use magnetar_tests::call;
use reqwest::Method;
use serde_json::json;
use std::time::{Duration, Instant};

pub(crate) async fn metric(c: &reqwest::Client, base: &str, name: &str) -> f64 {
    let text = c.get(format!("{base}/metrics")).send().await.expect("metrics").text().await.expect("text");
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("{name} not exported"))
}

/// The partitions whose bundle `owner` holds.
pub(crate) async fn partitions_of(c: &reqwest::Client, base: &str, owner: &str) -> Vec<u32> {
    let (owned, _) = ownership(c, base).await;
    let mut out = Vec::new();
    for i in 0..PARTITIONS {
        if owned.get(&bundle_of(c, base, &partition(i)).await).map(String::as_str) == Some(owner) {
            out.push(i);
        }
    }
    out
}

/// Whether every bundle is owned by a broker other than `dead`.
pub(crate) async fn none_owned_by(c: &reqwest::Client, base: &str, dead: &str) -> bool {
    let (owned, unavailable) = ownership(c, base).await;
    !unavailable && owned.len() as u32 >= 1 && owned.values().all(|o| o != dead)
}

/// Brokers for `mode`: two, or three with replicated durability (write quorum 2: after one
/// dies, the others still make an ack quorum). The first two are the ones the tests use.
fn brokers_for(dir: &std::path::Path, cfg: &str, mode: Mode) -> Vec<magnetar_tests::BrokerProcess> {
    match mode {
        Mode::ObjectStore => Vec::from(brokers::<2>(dir, cfg)),
        Mode::Replicated => Vec::from(brokers::<3>(dir, cfg)),
    }
}

/// How the owner of some partitions fails.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Failure {
    /// kill -9, then restarted on its data directory once the partitions were failed over.
    Kill,
    /// SIGSTOP past its lease (a stalled VM), then SIGCONT: a zombie that must acknowledge
    /// nothing more, its late object commits refused by the bumped epochs.
    Pause,
}

/// The durability mode under test.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Mode {
    ObjectStore,
    /// Default quorum (write 2, ack 2).
    Replicated,
}

impl Mode {
    pub(crate) fn policy(self, max_wait_ms: Option<u64>) -> serde_json::Value {
        let mut p = match self {
            Mode::ObjectStore => json!({"mode": "object-store"}),
            Mode::Replicated => json!({"mode": "replicated"}),
        };
        if let Some(ms) = max_wait_ms {
            p["objectStoreMaxWaitMs"] = json!(ms);
        }
        p
    }

    /// The counter of batches made durable beyond the owner's WAL.
    pub(crate) fn batches_metric(self) -> &'static str {
        match self {
            Mode::ObjectStore => "magnetar_object_store_log_puts_total",
            Mode::Replicated => "magnetar_replication_batches_total",
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_store_durability_fails_a_killed_owner_over_without_losing_an_acknowledged_message() {
    fail_over(Failure::Kill, Mode::ObjectStore).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_owner_acknowledges_nothing_after_its_partitions_failed_over() {
    fail_over(Failure::Pause, Mode::ObjectStore).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicated_durability_fails_a_killed_owner_over_without_losing_an_acknowledged_message() {
    fail_over(Failure::Kill, Mode::Replicated).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_owner_with_replicated_durability_acknowledges_nothing_after_failing_over() {
    fail_over(Failure::Pause, Mode::Replicated).await;
}

/// Replicated durability without the replication stream (`replication_stream = false`: one
/// request per batch, as for a network whose proxies pass no custom HTTP upgrade, and as an
/// owner does with a peer of an earlier version).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicated_durability_over_one_request_per_batch_fails_a_killed_owner_over_losing_nothing() {
    fail_over_with(Failure::Kill, Mode::Replicated, "[broker.durability]\nreplication_stream = false\n").await;
}

async fn fail_over(failure: Failure, mode: Mode) {
    fail_over_with(failure, mode, "").await
}

/// `more`: broker settings after the test's own (a TOML table of `[broker]`'s).
async fn fail_over_with(failure: Failure, mode: Mode, more: &str) {
    let dir = tempfile::tempdir().unwrap();
    // No periodic cursor checkpoint during the test: what the next owner knows of consumer
    // acknowledgements is what was checkpointed as they were confirmed.
    let cfg = tier_config_with(&format!("cursor_checkpoint_interval_ms = 600000\n{more}")).await;
    let mut all = brokers_for(dir.path(), &cfg, mode);
    let (mut b, a) = (all.remove(1), all.remove(0));
    let c = reqwest::Client::new();
    namespace(&c, &a.base).await;
    let policy = format!("{}/admin/v2/namespaces/acme/app/durability", a.base);
    expect(call(&c, Method::POST, &policy, Some(mode.policy(Some(5000)))).await, 204, "durability");
    let got = expect(call(&c, Method::GET, &policy, None).await, 200, "durability");
    assert_eq!(got, mode.policy(Some(5000)));
    let url = format!("{}/admin/v2/persistent/{TOPIC}/partitions", a.base);
    expect(call(&c, Method::PUT, &url, Some(json!(PARTITIONS))).await, 204, "partitioned topic");
    audit_subscriptions(&c, &a.base).await;
    let confirmed_sub = format!("{}/admin/v2/persistent/{TOPIC}/subscription/confirmed", a.base);
    expect(call(&c, Method::PUT, &confirmed_sub, None).await, 204, "subscription");

    // Produce on every partition: through a only when b is killed; through both when b is
    // paused, so that requests reach the zombie when it wakes up.
    let bases = match failure {
        Failure::Kill => vec![a.base.clone()],
        Failure::Pause => vec![a.base.clone(), b.base.clone()],
    };
    let load = Load::start(bases, 2);
    wait_acknowledged(&c, &a.base, 300).await;
    let on_b = partitions_of(&c, &a.base, &b.addr).await;
    assert!(!on_b.is_empty(), "broker b owns none of the {PARTITIONS} partitions: nothing to fail over");
    let batches = metric(&c, &b.base, mode.batches_metric()).await;
    assert!(batches >= 1.0, "b acknowledged without making batches durable in {mode:?} mode");
    if mode == Mode::Replicated {
        // b's peers serve its stream, unless streams are off.
        let mut streams = metric(&c, &a.base, "magnetar_replica_streams").await;
        for other in &all {
            streams += metric(&c, &other.base, "magnetar_replica_streams").await;
        }
        if more.contains("replication_stream = false") {
            assert_eq!(streams, 0.0, "streams opened while they are off");
        } else {
            assert!(streams >= 1.0, "no peer serves a replication stream");
        }
    }

    // A consumer acknowledges messages of one of b's partitions (through a, forwarded to b).
    let watched = partition(on_b[0]);
    let sub = |what: &str| format!("{}/topics/persistent/{watched}/subscriptions/confirmed/{what}", a.base);
    let got = expect(
        call(&c, Method::POST, &sub("pull"), Some(json!({"maxMessages": 50, "initialPosition": "earliest"}))).await,
        200,
        "pull before the failure",
    );
    let confirmed: Vec<String> =
        got["messages"].as_array().expect("messages").iter().map(|m| m["messageId"].as_str().unwrap().into()).collect();
    assert!(!confirmed.is_empty(), "nothing to acknowledge on {watched}: {got}");
    expect(call(&c, Method::POST, &sub("ack"), Some(json!({"messageIds": confirmed}))).await, 204, "ack");

    // The log objects b wrote (a few more may go before the kill), the last ones each with
    // records of all its partitions: sent to them at once, they share objects.
    let objects = if mode == Mode::ObjectStore {
        for round in 0..20 {
            let sends = on_b.iter().map(|i| {
                let url = format!("{}/topics/persistent/{TOPIC}/partitions/{i}", b.base);
                let body =
                    json!({"messages": [{"payload": "eA==", "properties": {"id": format!("burst-{round}-{i}")}}]});
                let c = c.clone();
                async move { c.post(&url).json(&body).send().await.map(|r| r.status().as_u16()) }
            });
            for status in futures::future::join_all(sends).await {
                assert_eq!(status.ok(), Some(200), "a message sent to all b's partitions at once");
            }
        }
        metric(&c, &b.base, "magnetar_object_store_log_puts_total").await
    } else {
        0.0
    };
    let failed = Instant::now();
    match failure {
        Failure::Kill => b.kill9(),
        Failure::Pause => b.pause(),
    }
    // The lease is 4 s: a live broker takes b's bundles once it has expired, and serves them.
    let failover = eventually(30, "b's partitions taken over", || async {
        none_owned_by(&c, &a.base, &b.addr).await.then(|| failed.elapsed())
    })
    .await;
    // A message to each of b's former partitions is acknowledged again.
    let attempts = std::sync::atomic::AtomicUsize::new(0);
    for &i in &on_b {
        let url = format!("{}/topics/persistent/{TOPIC}/partitions/{i}", a.base);
        eventually(10, "produce to a failed-over partition", || async {
            // A fresh id per attempt: an attempt that failed may still have been stored.
            let id = format!("probe-{i}-{}", attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
            let probe = json!({"messages": [{"payload": "eA==", "properties": {"id": id}}]});
            let (status, _) = call(&c, Method::POST, &url, Some(probe)).await;
            (status.as_u16() == 200).then_some(())
        })
        .await;
    }
    let served_again = failed.elapsed();
    if failure == Failure::Pause {
        // The zombie wakes up with requests and records of its own in flight.
        b.resume();
        tokio::time::sleep(Duration::from_secs(2)).await;
    } else {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let (acked, failures) = load.finish().await;
    eprintln!(
        "{failure:?} ({mode:?}): bundles reassigned {} ms and every partition acknowledging {} ms after the failure; {} messages \
         acknowledged, {} requests failed meanwhile",
        failover.as_millis(),
        served_again.as_millis(),
        acked.len(),
        failures.len()
    );
    assert!(failures.iter().all(|f| f.contains(" 503 ")), "only unavailability while failing over: {failures:?}");
    assert!(metric(&c, &a.base, "magnetar_tier_failovers_total").await >= 1.0);
    if mode == Mode::ObjectStore {
        // Each object holds records of all b's partitions: a fetched it once for all of them.
        let gets = metric(&c, &a.base, "magnetar_object_store_log_gets_total").await;
        eprintln!("{} partitions recovered from {gets} GETs of b's {objects} log objects", on_b.len());
        assert!(gets >= 1.0, "nothing recovered from the bucket");
        assert!(gets <= objects + 5.0, "{gets} GETs of b's {objects} log objects for {} partitions", on_b.len());
    }

    // Acknowledgements b confirmed are not delivered again by a.
    let after = expect(
        call(&c, Method::POST, &sub("pull"), Some(json!({"maxMessages": 1000, "waitMs": 500}))).await,
        200,
        "pull after the failover",
    );
    let again: Vec<&str> = after["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["messageId"].as_str().unwrap())
        .filter(|id| confirmed.iter().any(|c| c == id))
        .collect();
    assert!(again.is_empty(), "{} confirmed acknowledgements lost in the failover: {again:?}", again.len());

    let mut acked = acked;
    if failure == Failure::Pause {
        // Whatever the zombie answers now is either a refusal or the new owner's answer,
        // forwarded: a message it acknowledges must be in the log like any other.
        let url = format!("{}/topics/persistent/{TOPIC}/partitions/{}", b.base, on_b[0]);
        let body = json!({"messages": [{"payload": "eA==", "properties": {"id": "after-wake"}}]});
        let (status, answer) = call(&c, Method::POST, &url, Some(body)).await;
        eprintln!("the zombie answered {status}: {answer}");
        if status.as_u16() == 200 {
            acked.insert("after-wake".to_string());
        }
    }

    // Everything b acknowledged was recovered (bucket or replicas): each acknowledged id read once,
    // and nothing the zombie wrote after the failover became part of the log twice.
    assert_stored_once(&c, &a.base, &acked).await;

    if failure == Failure::Kill {
        // b returns: it does not serve its stale copies.
        b.restart();
        let (owned, unavailable) = ownership(&c, &b.base).await;
        assert!(owned.values().all(|o| *o != b.addr), "{owned:?}");
        assert!(!unavailable);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_durability_policy_is_validated_and_removable() {
    let (_dir, a, c) = crate::common::tier::lone_broker().await;
    namespace(&c, &a.base).await;
    let url = format!("{}/admin/v2/namespaces/acme/app/durability", a.base);
    assert_eq!(expect(call(&c, Method::GET, &url, None).await, 200, "unset"), json!(null));
    for (body, reason) in [
        (json!({"mode": "replicated"}), "needs 2 live brokers; 1 are live"),
        (json!({"mode": "local", "objectStoreMaxWaitMs": 100}), "applies to modes object-store and replicated"),
        (json!({"mode": "object-store", "objectStoreMaxWaitMs": 0}), "between 1 and"),
        (json!({"mode": "sometimes"}), "unknown variant `sometimes`"),
    ] {
        let (status, answer) = call(&c, Method::POST, &url, Some(body.clone())).await;
        assert_eq!(status.as_u16(), 400, "{body}: {answer}");
        assert!(answer["reason"].as_str().unwrap_or_default().contains(reason), "{body}: {answer}");
        assert_eq!(expect(call(&c, Method::GET, &url, None).await, 200, "after refusal"), json!(null));
    }
    expect(call(&c, Method::POST, &url, Some(json!({"mode": "object-store"}))).await, 204, "set");
    assert_eq!(expect(call(&c, Method::GET, &url, None).await, 200, "set"), json!({"mode": "object-store"}));
    // A topic of the namespace acknowledges through log objects.
    let topic = format!("{}/topics/persistent/acme/app/t", a.base);
    expect(call(&c, Method::POST, &topic, Some(json!({"messages": [{"payload": "eA=="}]}))).await, 200, "produce");
    assert!(metric(&c, &a.base, "magnetar_object_store_log_puts_total").await >= 1.0);
    let stats = format!("{}/admin/v2/persistent/acme/app/t/stats", a.base);
    assert_eq!(expect(call(&c, Method::GET, &stats, None).await, 200, "stats")["durability"], "object-store");
    expect(call(&c, Method::DELETE, &url, None).await, 204, "remove");
    assert_eq!(expect(call(&c, Method::GET, &url, None).await, 200, "removed"), json!(null));
    // Removing it unloaded the topic: it loads again with local durability, its message kept.
    expect(call(&c, Method::POST, &topic, Some(json!({"messages": [{"payload": "eQ=="}]}))).await, 200, "produce");
    let after = expect(call(&c, Method::GET, &stats, None).await, 200, "stats");
    assert_eq!(after["durability"], "local", "{after}");
    assert_eq!((after["writeQuorum"].as_u64(), after["ackQuorum"].as_u64()), (Some(1), Some(1)), "{after}");
    let peek =
        format!("{}/admin/v2/persistent/acme/app/t/examinemessage?initialPosition=earliest&messagePosition=1", a.base);
    assert_eq!(c.get(&peek).send().await.unwrap().status().as_u16(), 200, "the first message kept");
    let missing = format!("{}/admin/v2/namespaces/acme/nope/durability", a.base);
    assert_eq!(call(&c, Method::POST, &missing, Some(json!({"mode": "local"}))).await.0.as_u16(), 404);
}

/// The namespace with durability `mode` and deduplication, and `TOPIC` with its audit
/// subscriptions, created through `base`.
async fn deduplicated_topic(c: &reqwest::Client, base: &str, mode: Mode) {
    namespace(c, base).await;
    let ns = format!("{base}/admin/v2/namespaces/acme/app");
    expect(call(c, Method::POST, &format!("{ns}/durability"), Some(mode.policy(None))).await, 204, "mode");
    expect(call(c, Method::POST, &format!("{ns}/deduplication"), Some(json!(true))).await, 204, "dedup");
    let url = format!("{base}/admin/v2/persistent/{TOPIC}/partitions");
    expect(call(c, Method::PUT, &url, Some(json!(PARTITIONS))).await, 204, "partitioned topic");
    audit_subscriptions(c, base).await;
}

/// One producer per partition that names itself and numbers its messages, resending each until
/// it is acknowledged, through the brokers in turn (a dead one fails the attempt).
struct Resenders {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    retries: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<u64>>,
}

impl Resenders {
    fn start(bases: Vec<String>) -> Resenders {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let retries = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tasks = (0..PARTITIONS)
            .map(|p| {
                let (bases, stop, retries) = (bases.clone(), stop.clone(), retries.clone());
                tokio::spawn(async move {
                    let client = reqwest::Client::builder().timeout(Duration::from_secs(15)).build().unwrap();
                    let (mut seq, mut attempt) = (0u64, 0usize);
                    while !stop.load(Ordering::Relaxed) {
                        let base = &bases[(seq as usize + attempt) % bases.len()];
                        let url = format!("{base}/topics/persistent/{TOPIC}/partitions/{p}");
                        let body = json!({"producerName": format!("resender-{p}"), "messages": [
                            {"payload": "eA==", "sequenceId": seq, "properties": {"id": format!("{p}-{seq}")}}]});
                        let acked = match client.post(&url).json(&body).send().await {
                            Ok(r) if r.status().as_u16() == 200 => r
                                .json::<serde_json::Value>()
                                .await
                                .is_ok_and(|v| v["messagePublishResults"][0]["errorCode"] == 0),
                            _ => false,
                        };
                        if acked {
                            seq += 1;
                            attempt = 0;
                        } else {
                            attempt += 1;
                            retries.fetch_add(1, Ordering::Relaxed);
                            assert!(attempt < 600, "partition {p}: message {seq} not acknowledged after 600 attempts");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                    seq
                })
            })
            .collect();
        Resenders { stop, retries, tasks }
    }

    /// Stops them; the number of messages each partition's producer had acknowledged, and how
    /// many attempts were retried.
    async fn finish(self) -> (Vec<u64>, usize) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut sent = Vec::new();
        for t in self.tasks {
            sent.push(t.await.expect("producer"));
        }
        (sent, self.retries.load(std::sync::atomic::Ordering::Relaxed))
    }
}

/// Every message the resenders had acknowledged is stored exactly once, and nothing else but
/// possibly the one each was sending when stopped.
async fn assert_each_stored_once(c: &reqwest::Client, base: &str, sent: &[u64]) {
    for (p, n) in sent.iter().enumerate() {
        let in_order = crate::common::tier::drain_in_log_order(c, base, &partition(p as u32), "audit").await;
        // One message in flight at a time, resent until acknowledged: the log holds them in order.
        // (Duplicates are reported below: the first copy of each counts here.)
        let mut seen = std::collections::BTreeSet::new();
        let seqs: Vec<u64> = in_order
            .iter()
            .filter(|id| seen.insert(id.as_str()))
            .filter_map(|id| id.rsplit('-').next()?.parse().ok())
            .collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "partition {p}: stored out of order: {seqs:?}");
        let mut stored: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
        for id in in_order {
            *stored.entry(id).or_default() += 1;
        }
        let want: std::collections::BTreeMap<String, usize> = (0..*n).map(|s| (format!("{p}-{s}"), 1)).collect();
        let last = format!("{p}-{n}");
        let extra: Vec<_> =
            stored.iter().filter(|(id, n)| **n != 1 || !(want.contains_key(*id) || **id == last)).collect();
        let missing: Vec<_> = want.keys().filter(|id| !stored.contains_key(*id)).collect();
        assert!(
            extra.is_empty() && missing.is_empty(),
            "partition {p}: {} acknowledged messages missing (e.g. {:?}), {} stored more than once or unexpected (e.g. {:?})",
            missing.len(),
            &missing[..missing.len().min(5)],
            extra.len(),
            &extra[..extra.len().min(5)]
        );
    }
}

/// Producers resending each message until acknowledged through a failover of the partitions'
/// owner: with deduplication on, every message is stored exactly once, whether the dead owner
/// had committed it (the resend is recognised from the recovered records) or not (the resend
/// stores it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_deduplication_producers_resending_through_a_failover_store_each_message_once() {
    resend_through_a_failover(Mode::ObjectStore).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_deduplication_and_replicas_producers_resending_through_a_failover_store_each_message_once() {
    resend_through_a_failover(Mode::Replicated).await;
}

async fn resend_through_a_failover(mode: Mode) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tier_config().await;
    let mut all = brokers_for(dir.path(), &cfg, mode);
    let (mut b, a) = (all.remove(1), all.remove(0));
    let c = reqwest::Client::new();
    deduplicated_topic(&c, &a.base, mode).await;
    let producers = Resenders::start(vec![a.base.clone()]);
    wait_acknowledged(&c, &a.base, 200).await;
    let on_b = partitions_of(&c, &a.base, &b.addr).await;
    assert!(!on_b.is_empty(), "broker b owns none of the {PARTITIONS} partitions: nothing to fail over");
    b.kill9();
    eventually(30, "b's partitions taken over", || async { none_owned_by(&c, &a.base, &b.addr).await.then_some(()) })
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (sent, _) = producers.finish().await;
    assert_each_stored_once(&c, &a.base, &sent).await;
}

/// A soak: three brokers, one that owns bundles killed (-9) again and again under resending
/// producers (deduplication on), each victim restarted once its bundles were failed over.
/// Every message is stored exactly once. `MAGNETAR_TEST_SOAK_SECS` sets how long it kills (default
/// 20 s in the suite; docs/benchmarks.md has the figures of a longer run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_kills_of_brokers_under_load_lose_and_duplicate_nothing() {
    soak(Mode::ObjectStore).await;
}

/// The soak with replicated durability (write and ack quorum 2): a victim's partitions are
/// recovered from its replicas; partitions replicated to the victim wait for its restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_kills_of_brokers_with_replicated_durability_lose_and_duplicate_nothing() {
    soak(Mode::Replicated).await;
}

async fn soak(mode: Mode) {
    let soak =
        Duration::from_secs(std::env::var("MAGNETAR_TEST_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(20));
    let dir = tempfile::tempdir().unwrap();
    let cfg = tier_config().await;
    let mut brokers: Vec<magnetar_tests::BrokerProcess> = Vec::from(brokers::<3>(dir.path(), &cfg));
    let bases: Vec<String> = brokers.iter().map(|b| b.base.clone()).collect();
    let c = reqwest::Client::new();
    deduplicated_topic(&c, &bases[0], mode).await;
    let producers = Resenders::start(bases.clone());

    let started = Instant::now();
    let mut kills = 0;
    let mut failovers = Vec::new();
    let mut pick = started.elapsed().subsec_nanos() as usize;
    while started.elapsed() < soak {
        tokio::time::sleep(Duration::from_secs(1)).await;
        pick = pick.wrapping_mul(1103515245).wrapping_add(12345);
        // A broker that owns bundles (a restarted one owns none until the balance gives it some).
        let (owned, _) = ownership(&c, &bases[0]).await;
        let holders: Vec<usize> =
            (0..brokers.len()).filter(|i| owned.values().any(|o| *o == brokers[*i].addr)).collect();
        let victim = holders[(pick >> 8) % holders.len()];
        let survivor = bases[(victim + 1) % bases.len()].clone();
        let victim_id = brokers[victim].addr.clone();
        let killed = Instant::now();
        brokers[victim].kill9();
        kills += 1;
        let took = loop {
            let (owned, unavailable) = ownership(&c, &survivor).await;
            if !unavailable && !owned.values().any(|o| *o == victim_id) {
                break killed.elapsed();
            }
            if killed.elapsed() > Duration::from_secs(30) {
                let view =
                    call(&c, Method::GET, &format!("{survivor}/admin/v2/brokers/{}/bundles", cluster()), None).await;
                panic!("kill {kills} of {victim_id}: its bundles not failed over within 30 s: {}", view.1);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        failovers.push(took);
        brokers[victim].restart();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (sent, retries) = producers.finish().await;
    failovers.sort();
    eprintln!(
        "soak ({mode:?}) of {} s: {kills} kills; failover (kill to every bundle owned by a live broker) p50 {} ms, max {} ms; \
         {} messages acknowledged, {retries} attempts retried",
        soak.as_secs(),
        failovers[failovers.len() / 2].as_millis(),
        failovers.last().unwrap().as_millis(),
        sent.iter().sum::<u64>(),
    );
    assert!(kills >= 2, "the soak killed {kills} brokers");
    assert_each_stored_once(&c, &bases[0], &sent).await;
}
