//! Object-store durability on one broker (issue 13): with the S3 server stopped, producers get
//! errors after the namespace's `objectStoreMaxWaitMs`, never an acknowledgement, and
//! everything works again when it returns; a broker killed (-9) and restarted on its data
//! directory serves every acknowledged message once, its WAL's uncommitted tail committed
//! before it serves. Real S3 servers (a private SeaweedFS for the outage, the shared one for the
//! restart), real PostgreSQL for the tier broker.

use crate::common::tier::{TOPIC, assert_stored_once, audit_subscriptions, brokers, expect, namespace, tier_config};
use crate::common::weed::Weed;
use crate::common::{create_topic, eventually, ok, pull_n, rest_topic};
use magnetar_tests::{TestApp, call, test_config};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::{Duration, Instant};

const DURABILITY: &str = "/admin/v2/namespaces/public/default/durability";

async fn try_produce(app: &TestApp, topic: &str, payload: &str) -> Result<String, (u16, String)> {
    let (s, body) = app.post(&rest_topic(topic), Some(json!({"messages": [{"payload": payload}]}))).await;
    if !s.is_success() {
        return Err((s.as_u16(), body["reason"].as_str().unwrap_or_default().to_string()));
    }
    let r = &body["messagePublishResults"][0];
    match r["errorCode"].as_i64() {
        Some(0) => Ok(r["messageId"].as_str().expect("id").to_string()),
        _ => Err((r["errorCode"].as_i64().unwrap_or(-1) as u16, r["error"].to_string())),
    }
}

/// A standalone broker on a private S3 server (which the test may stop), its default namespace
/// with object-store durability and a 1 s wait; `label` names its cluster (its keys' prefix).
async fn object_store_broker(label: &str) -> (Weed, TestApp) {
    let weed = Weed::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    cfg.object_store = weed.store_config();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    cfg.broker.cluster = format!("durability-{label}-{}-{nanos}", std::process::id());
    let app = TestApp::start(dir, cfg).await;
    ok(app.post(DURABILITY, Some(json!({"mode": "object-store", "objectStoreMaxWaitMs": 1000}))).await);
    (weed, app)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_object_store_down_producers_get_errors_after_the_wait_never_an_acknowledgement() {
    let (mut weed, app) = object_store_broker("outage").await;
    let topic = "outage";
    create_topic(&app, topic).await;
    let mut acked = Vec::new();
    for i in 0..10 {
        acked.push((try_produce(&app, topic, &format!("up-{i}")).await.expect("store up"), format!("up-{i}")));
    }

    weed.kill();
    let started = Instant::now();
    let (status, reason) = try_produce(&app, topic, "during-outage").await.expect_err("acknowledged with S3 down");
    let waited = started.elapsed();
    assert_eq!(status, 503, "{reason}");
    assert!(reason.contains("object store"), "the reason names the object store: {reason}");
    assert!(waited >= Duration::from_millis(1000), "refused after {waited:?}, before the namespace's 1000 ms wait");
    // Still refused, never acknowledged, while it is down.
    assert_eq!(try_produce(&app, topic, "during-outage-2").await.unwrap_err().0, 503);

    weed.spawn().await;
    // A fresh payload per attempt: an attempt refused after its wait may still be stored later.
    let attempts = std::sync::atomic::AtomicUsize::new(0);
    let after = eventually(60, "produce acknowledged again once the store is back", || async {
        let text = format!("after-{}", attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        try_produce(&app, topic, &text).await.ok().map(|id| (id, text))
    })
    .await;
    acked.push(after);

    // Every acknowledged message once and in order; what was refused may have been stored
    // later (as a Pulsar send that timed out), but at most once.
    let got = pull_n(&app, topic, "reader", acked.len(), 60_000).await;
    let texts: Vec<String> = got.iter().map(crate::common::payload_text).collect();
    let ids: Vec<String> = got.iter().map(|m| m["messageId"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len(), "a message delivered twice: {texts:?}");
    let kept: Vec<&(String, String)> = acked.iter().collect();
    let acked_texts: Vec<&String> = kept.iter().map(|(_, t)| t).collect();
    let read_acked: Vec<&String> = texts.iter().filter(|t| acked_texts.contains(t)).collect();
    assert_eq!(read_acked, acked_texts, "acknowledged messages read back in order");
    assert!(
        texts.iter().all(|t| t.starts_with("up-") || t.starts_with("during-outage") || t.starts_with("after-")),
        "{texts:?}"
    );
    app.stop().await;
}

/// REST produce of one message as `producer` with `seq`: the id, or the status and reason.
async fn produce_seq(app: &TestApp, topic: &str, seq: i64) -> Result<String, (u16, String)> {
    let body = json!({"producerName": "p1", "messages": [{"payload": format!("seq-{seq}"), "sequenceId": seq}]});
    let (s, body) = app.post(&rest_topic(topic), Some(body)).await;
    let r = &body["messagePublishResults"][0];
    match (s.as_u16(), r["errorCode"].as_i64()) {
        (200, Some(0)) => Ok(r["messageId"].as_str().expect("id").to_string()),
        (200, _) => Err((r["errorCode"].as_i64().unwrap_or(-1) as u16, r["error"].to_string())),
        (status, _) => Err((status, body["reason"].as_str().unwrap_or_default().to_string())),
    }
}

/// With deduplication on, a message whose wait for the object store expired is not failed:
/// it is in the WAL and committed once the store returns. Its producer's resends meanwhile are
/// refused (retriable), and once it is committed a resend is answered as a duplicate: stored
/// once, whatever the client's retries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_resent_after_its_wait_expired_is_stored_once_with_deduplication() {
    let (mut weed, app) = object_store_broker("dedup").await;
    ok(app.post("/admin/v2/namespaces/public/default/deduplication", Some(json!(true))).await);
    let topic = "expired-resend";
    create_topic(&app, topic).await;
    produce_seq(&app, topic, 0).await.expect("store up");

    weed.kill();
    let (status, reason) = produce_seq(&app, topic, 1).await.expect_err("acknowledged with S3 down");
    assert_eq!(status, 503, "{reason}");
    let (status, reason) = produce_seq(&app, topic, 1).await.expect_err("the resend acknowledged with S3 down");
    assert_eq!(status, 503, "a resend while the first copy waits is refused as retriable: {reason}");

    weed.spawn().await;
    let id = eventually(60, "the resend answered once the store is back", || async {
        produce_seq(&app, topic, 1).await.ok()
    })
    .await;
    assert!(id.starts_with("-1:-1:"), "the resend is a duplicate of the first copy, committed meanwhile: {id}");
    produce_seq(&app, topic, 2).await.expect("the next message");
    let got = pull_n(&app, topic, "reader", 3, 30_000).await;
    let texts: Vec<String> = got.iter().map(crate::common::payload_text).collect();
    assert_eq!(texts, ["seq-0", "seq-1", "seq-2"], "each message once, in order");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_and_restarted_serves_every_acknowledged_message_once() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tier_config().await;
    let [mut a] = brokers(dir.path(), &cfg);
    let c = reqwest::Client::new();
    namespace(&c, &a.base).await;
    let policy = format!("{}/admin/v2/namespaces/acme/app/durability", a.base);
    expect(call(&c, Method::POST, &policy, Some(json!({"mode": "object-store"}))).await, 204, "durability");
    let url = format!("{}/admin/v2/persistent/{TOPIC}/partitions", a.base);
    expect(call(&c, Method::PUT, &url, Some(json!(crate::common::tier::PARTITIONS))).await, 204, "topic");
    audit_subscriptions(&c, &a.base).await;

    // A producer that goes on through the kill (connection errors are failures, not panics).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producer = {
        let (c, base, stop) = (c.clone(), a.base.clone(), stop.clone());
        tokio::spawn(async move {
            let mut acked = std::collections::BTreeSet::new();
            let mut seq = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let p = seq % crate::common::tier::PARTITIONS;
                let ids: Vec<String> = (0..5).map(|k| format!("0-{seq}-{k}-{p}")).collect();
                let messages: Vec<Value> =
                    ids.iter().map(|id| json!({"payload": "eA==", "properties": {"id": id}})).collect();
                let url = format!("{base}/topics/persistent/{TOPIC}/partitions/{p}");
                let sent = c.post(&url).json(&json!({"messages": messages})).send().await;
                if let Ok(r) = sent
                    && r.status().as_u16() == 200
                    && let Ok(body) = r.json::<Value>().await
                    && body["messagePublishResults"].as_array().is_some_and(|r| r.iter().all(|m| m["errorCode"] == 0))
                {
                    acked.extend(ids);
                }
                seq += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            acked
        })
    };
    let stats = format!("{}/admin/v2/persistent/{TOPIC}/partitioned-stats", a.base);
    eventually(30, "some messages acknowledged", || async {
        let s: Value = expect(call(&c, Method::GET, &stats, None).await, 200, "stats");
        (s["msgInCounter"].as_u64().unwrap_or(0) >= 300).then_some(())
    })
    .await;
    // Killed with records between its WAL and their object: they were never acknowledged, and
    // the restarted broker commits them before it serves.
    a.kill9();
    a.restart();
    eventually(30, "acknowledged again after the restart", || async {
        let s: Value = expect(call(&c, Method::GET, &stats, None).await, 200, "stats");
        (s["msgInCounter"].as_u64().unwrap_or(0) >= 100).then_some(())
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acked = producer.await.expect("producer");
    assert_stored_once(&c, &a.base, &acked).await;
    let stats = format!("{}/admin/v2/persistent/{}/stats", a.base, crate::common::tier::partition(0));
    let s = expect(call(&c, Method::GET, &stats, None).await, 200, "stats");
    assert_eq!(s["durability"], "object-store", "{s}");
    // One broker writes each record; its second copy is the bucket's.
    assert_eq!((s["writeQuorum"].as_u64(), s["ackQuorum"].as_u64()), (Some(1), Some(1)), "{s}");
    assert!(s.get("replicaPeers").is_none(), "{s}");
}

/// The keys of log objects of `cluster` in the bucket.
async fn log_object_keys(store: &magnetar_storage::object::ObjectStoreConfig, cluster: &str) -> Vec<String> {
    let built = magnetar_storage::object::build_object_store(store).expect("object store");
    let tier = magnetar_storage::ObjectTier::new(
        built,
        magnetar_storage::TierConfig::default(),
        magnetar_storage::StorageMetrics::new(),
    )
    .expect("tier");
    let listed = tier.list_objects(&format!("{cluster}/wal-objects/")).await.expect("list");
    listed.into_iter().map(|o| o.key).collect()
}

/// A deleted topic's committed ranges go with it; the log objects only it referenced are then
/// deleted from the bucket by the broker's collection, and those another topic still
/// references stay and serve it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_objects_of_a_deleted_topic_are_collected_and_shared_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    cfg.object_store = crate::common::shared_s3();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let cluster = format!("durability-gc-{}-{nanos}", std::process::id());
    cfg.broker.cluster = cluster.clone();
    cfg.broker.offload_check_interval_ms = 200;
    cfg.broker.offload_gc_interval_ms = 300;
    // No segment is sealed here: every record stays in the log objects.
    cfg.broker.offload_threshold_bytes = -1;
    let store = cfg.object_store.clone();
    let app = TestApp::start(dir, cfg).await;
    ok(app.post(DURABILITY, Some(json!({"mode": "object-store"}))).await);
    create_topic(&app, "gone").await;
    create_topic(&app, "kept").await;
    ok(app.put("/admin/v2/persistent/public/default/kept/subscription/audit", None).await);
    for i in 0..5 {
        try_produce(&app, "gone", &format!("gone-{i}")).await.expect("produce");
    }
    // Produced together, some objects hold records of both topics.
    let (both, kept) = tokio::join!(try_produce(&app, "gone", "both-gone"), try_produce(&app, "kept", "both-kept"));
    both.expect("produce");
    kept.expect("produce");
    for i in 0..5 {
        try_produce(&app, "kept", &format!("kept-{i}")).await.expect("produce");
    }
    let before = log_object_keys(&store, &cluster).await;
    assert!(before.len() >= 2, "objects written: {before:?}");

    let (s, body) = app.delete("/admin/v2/persistent/public/default/gone").await;
    assert!(s.is_success(), "{body}");
    let after = eventually(20, "the deleted topic's objects collected", || async {
        let now = log_object_keys(&store, &cluster).await;
        (now.len() < before.len()).then_some(now)
    })
    .await;
    assert!(!after.is_empty(), "the kept topic's objects were collected too");
    assert!(after.iter().all(|k| before.contains(k)), "{after:?}");

    // The kept topic still serves everything it acknowledged.
    let pulled = pull_n(&app, "kept", "audit", 6, 30_000).await;
    assert_eq!(pulled.len(), 6, "{pulled:?}");
    app.stop().await;
}
