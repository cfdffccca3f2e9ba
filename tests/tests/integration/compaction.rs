//! Topic compaction through the running broker: the admin trigger and its status, compacted
//! reads through the WebSocket reader and consumer and HTTP pull (latest message of each key
//! with its original id, then the live topic), automatic compaction past the threshold, the
//! threshold policy at namespace and topic level, the view surviving retention and a restart,
//! and going with its topic.

use crate::common;

use common::ws::{WsClient, consumer_url, reader_url, refused_status, text_of, ws_id_text};
use common::{admin_topic, create_partitioned, create_topic, err, eventually, ok, produce};
use magnetar_tests::{TestApp, test_config};
use serde_json::{Value, json};
use std::path::Path;

const NS: &str = "/admin/v2/namespaces/public/default";

fn msg(key: Option<&str>, payload: &str) -> Value {
    match key {
        Some(k) => json!({"key": k, "payload": payload}),
        None => json!({"payload": payload}),
    }
}

/// Keyed updates, a tombstone and a message without a key; returns the ids.
async fn produce_history(app: &TestApp, topic: &str) -> Vec<String> {
    produce(
        app,
        topic,
        vec![
            msg(Some("k1"), "k1-v1"),
            msg(Some("k2"), "k2-v1"),
            msg(Some("k1"), "k1-v2"),
            msg(Some("k3"), "k3-v1"),
            msg(Some("k2"), ""),
            msg(None, "no-key"),
            msg(Some("k3"), "k3-v2"),
        ],
    )
    .await
}

async fn status(app: &TestApp, topic: &str) -> Value {
    ok(app.get(&format!("{}/compaction", admin_topic(topic))).await)
}

/// Triggers a compaction and polls its status until it succeeded.
async fn compact(app: &TestApp, topic: &str) {
    let (code, body) = app.put(&format!("{}/compaction", admin_topic(topic)), None).await;
    assert_eq!(code, 204, "{body}");
    wait_for_success(app, topic).await;
}

async fn wait_for_success(app: &TestApp, topic: &str) {
    eventually(30, "compaction status SUCCESS", || async {
        let s = status(app, topic).await;
        assert_ne!(s["status"], "ERROR", "compaction failed: {s}");
        (s["status"] == "SUCCESS").then_some(())
    })
    .await;
}

/// `(key, payload, id as L:E:P)` of the next `n` deliveries of a WebSocket reader or consumer.
async fn ws_read(ws: &mut WsClient, n: usize) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for _ in 0..n {
        let m = ws.recv_message().await;
        let id = m["messageId"].as_str().unwrap().to_string();
        ws.ack(&id).await;
        out.push((m["key"].as_str().unwrap_or("").to_string(), text_of(&m), ws_id_text(&id)));
    }
    out
}

fn expected(ids: &[String], picks: &[(usize, &str, &str)]) -> Vec<(String, String, String)> {
    picks.iter().map(|&(i, k, p)| (k.to_string(), p.to_string(), ids[i].clone())).collect()
}

#[tokio::test]
async fn compacted_readers_see_latest_per_key_then_live_messages() {
    let app = TestApp::standalone().await;
    let topic = "prices";
    create_topic(&app, topic).await;
    assert_eq!(status(&app, topic).await, json!({"status": "NOT_RUN", "lastError": ""}));
    let mut ids = produce_history(&app, topic).await;
    compact(&app, topic).await;
    assert_eq!(status(&app, topic).await, json!({"status": "SUCCESS", "lastError": ""}));
    ids.extend(produce(&app, topic, vec![msg(Some("k1"), "k1-v3"), msg(Some("k2"), "k2-v2")]).await);
    // The latest of each key below the horizon with its original id (k2 deleted by its tombstone,
    // the message without a key left out), then everything after the horizon.
    let want = expected(&ids, &[(2, "k1", "k1-v2"), (6, "k3", "k3-v2"), (7, "k1", "k1-v3"), (8, "k2", "k2-v2")]);

    let mut reader = WsClient::connect(&reader_url(&app.base, topic, "messageId=earliest&readCompacted=true")).await;
    assert_eq!(ws_read(&mut reader, 4).await, want);
    reader.expect_silence("nothing after the live messages").await;
    // A live message reaches a compacted reader that is past the horizon.
    ids.extend(produce(&app, topic, vec![msg(Some("k4"), "k4-v1")]).await);
    assert_eq!(ws_read(&mut reader, 1).await, expected(&ids, &[(9, "k4", "k4-v1")]));
    reader.close().await;

    // A reader that does not ask for the compacted view reads every message.
    let mut plain = WsClient::connect(&reader_url(&app.base, topic, "messageId=earliest")).await;
    assert_eq!(ws_read(&mut plain, 10).await.len(), 10);
    plain.close().await;

    // An Exclusive consumer reading compacted, on a new durable subscription.
    let url = consumer_url(
        &app.base,
        topic,
        "exclusive",
        "subscriptionType=Exclusive&subscriptionInitialPosition=Earliest&readCompacted=true",
    );
    let mut consumer = WsClient::connect(&url).await;
    let got = ws_read(&mut consumer, 5).await;
    assert_eq!(got[..4], want[..]);
    consumer.close().await;

    // HTTP pull reading compacted (a pull answers with what one read found: pull until all came).
    let mut pulled = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while pulled.len() < 5 {
        assert!(std::time::Instant::now() < deadline, "only {} of 5 messages pulled: {pulled:?}", pulled.len());
        let body = json!({"maxMessages": 100, "waitMs": 1000, "initialPosition": "earliest", "readCompacted": true});
        pulled.extend(common::pull(&app, topic, "puller", body).await);
    }
    let got: Vec<(String, String, String)> = pulled
        .iter()
        .map(|m| {
            let key = m["key"].as_str().unwrap_or("").to_string();
            (key, common::payload_text(m), m["messageId"].as_str().unwrap().to_string())
        })
        .collect();
    let mut want_all = want.clone();
    want_all.extend(expected(&ids, &[(9, "k4", "k4-v1")]));
    assert_eq!(got, want_all);

    // Pulsar's compaction stats of the topic, and its metrics.
    let stats = ok(app.get(&format!("{}/stats", admin_topic(topic))).await);
    let c = &stats["compaction"];
    assert_eq!(c["lastCompactionRemovedEventCount"], 5, "{stats}");
    assert!(c["lastCompactionSucceedTimestamp"].as_i64().unwrap() > 0, "{stats}");
    assert_eq!(c["lastCompactionFailedTimestamp"], 0, "{stats}");
    assert!(c["lastCompactionDurationTimeInMills"].is_u64(), "{stats}");
    let metrics = reqwest::get(app.url("/metrics")).await.unwrap().text().await.unwrap();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("pulsar_compaction_succeed_count{") && l.contains("/prices\""))
        .unwrap_or_else(|| panic!("no pulsar_compaction_succeed_count of the topic in:\n{metrics}"));
    assert!(line.ends_with(" 1"), "{line}");
    assert!(metrics.contains("pulsar_compaction_removed_event_count{"), "{metrics}");
}

#[tokio::test]
async fn a_new_compaction_builds_on_the_previous_view() {
    let app = TestApp::standalone().await;
    let topic = "incremental";
    create_topic(&app, topic).await;
    let mut ids = produce_history(&app, topic).await;
    compact(&app, topic).await;
    ids.extend(produce(&app, topic, vec![msg(Some("k3"), ""), msg(Some("k5"), "k5-v1")]).await);
    compact(&app, topic).await;
    let stats = ok(app.get(&format!("{}/stats", admin_topic(topic))).await);
    // k3's value and its tombstone.
    assert_eq!(stats["compaction"]["lastCompactionRemovedEventCount"], 2, "{stats}");
    let mut reader = WsClient::connect(&reader_url(&app.base, topic, "messageId=earliest&readCompacted=true")).await;
    assert_eq!(ws_read(&mut reader, 2).await, expected(&ids, &[(2, "k1", "k1-v2"), (8, "k5", "k5-v1")]));
    reader.expect_silence("k3 is deleted").await;
    reader.close().await;
}

#[tokio::test]
async fn read_compacted_is_refused_on_shared_and_key_shared_subscriptions() {
    let app = TestApp::standalone().await;
    create_topic(&app, "refused").await;
    for kind in ["Shared", "Key_Shared"] {
        let url = consumer_url(&app.base, "refused", "s", &format!("subscriptionType={kind}&readCompacted=true"));
        assert_eq!(refused_status(&url).await, 400, "{kind}");
    }
    // Failover is allowed.
    let url = consumer_url(&app.base, "refused", "f", "subscriptionType=Failover&readCompacted=true");
    WsClient::connect(&url).await.close().await;
}

#[tokio::test]
async fn compaction_of_unknown_and_partitioned_topics() {
    let app = TestApp::standalone().await;
    err(app.put(&format!("{}/compaction", admin_topic("missing")), None).await, 404);
    err(app.get(&format!("{}/compaction", admin_topic("missing"))).await, 404);
    // A partitioned topic: every partition is compacted (as Pulsar does); the status is a
    // partition's.
    create_partitioned(&app, "parted", 2).await;
    for i in 0..2 {
        produce(&app, &format!("parted-partition-{i}"), vec![msg(Some("a"), "1"), msg(Some("a"), "2")]).await;
    }
    assert_eq!(app.put(&format!("{}/compaction", admin_topic("parted")), None).await.0, 204);
    for i in 0..2 {
        wait_for_success(&app, &format!("parted-partition-{i}")).await;
    }
    err(app.get(&format!("{}/compaction", admin_topic("parted"))).await, 405);
    let stats = ok(app.get(&format!("{}/partitioned-stats", admin_topic("parted"))).await);
    assert_eq!(stats["compaction"]["lastCompactionRemovedEventCount"], 2, "{stats}");
}

#[tokio::test]
async fn compaction_threshold_at_namespace_and_topic_level() {
    let app = TestApp::standalone().await;
    let ns_path = format!("{NS}/compactionThreshold");
    let topic_path = format!("{}/compactionThreshold", admin_topic("thresholds"));
    create_topic(&app, "thresholds").await;
    assert_eq!(ok(app.get(&ns_path).await), Value::Null);
    assert_eq!(ok(app.get(&format!("{topic_path}?applied=true")).await), json!(0), "the broker's default: off");
    assert_eq!(app.put(&ns_path, Some(json!(5000))).await.0, 204);
    assert_eq!(ok(app.get(&ns_path).await), json!(5000));
    assert!(err(app.put(&ns_path, Some(json!(-1))).await, 412).contains("compactionThreshold"));
    assert_eq!(ok(app.get(&topic_path).await), Value::Null);
    assert_eq!(ok(app.get(&format!("{topic_path}?applied=true")).await), json!(5000));
    assert_eq!(app.post(&topic_path, Some(json!(100))).await.0, 204);
    assert_eq!(ok(app.get(&topic_path).await), json!(100));
    assert_eq!(ok(app.get(&format!("{topic_path}?applied=true")).await), json!(100));
    err(app.post(&topic_path, Some(json!(-5))).await, 412);
    assert_eq!(app.delete(&topic_path).await.0, 204);
    assert_eq!(ok(app.get(&format!("{topic_path}?applied=true")).await), json!(5000));
    assert_eq!(app.delete(&ns_path).await.0, 204);
    assert_eq!(ok(app.get(&ns_path).await), Value::Null);
    assert_eq!(ok(app.get(&format!("{topic_path}?applied=true")).await), json!(0));
    // The namespace's policies carry it in Pulsar's field.
    assert_eq!(app.put(&ns_path, Some(json!(7))).await.0, 204);
    assert_eq!(ok(app.get(NS).await)["compaction_threshold"], json!(7));
}

#[tokio::test]
async fn a_topic_is_compacted_automatically_past_its_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    cfg.broker.compaction_monitor_interval_ms = 100;
    let app = TestApp::start(dir, cfg).await;
    create_topic(&app, "auto").await;
    let topic_path = format!("{}/compactionThreshold", admin_topic("auto"));
    assert_eq!(app.post(&topic_path, Some(json!(2000))).await.0, 204);
    let values: Vec<Value> = (0..40).map(|i| msg(Some(&format!("k{}", i % 4)), &"x".repeat(200))).collect();
    produce(&app, "auto", values).await;
    wait_for_success(&app, "auto").await;
    let stats = ok(app.get(&format!("{}/stats", admin_topic("auto"))).await);
    assert_eq!(stats["compaction"]["lastCompactionRemovedEventCount"], 36, "{stats}");
    // Below the threshold after the horizon: no new run starts.
    let before = stats["compaction"]["lastCompactionSucceedTimestamp"].clone();
    app.broker().testing().run_compaction_check().await;
    let after = ok(app.get(&format!("{}/stats", admin_topic("auto"))).await);
    assert_eq!(after["compaction"]["lastCompactionSucceedTimestamp"], before);
}

fn compacted_objects(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "cv") {
                out.push(p);
            }
        }
    }
    out
}

fn restart_config(dir: &Path) -> magnetar::config::Config {
    let mut cfg = test_config(dir);
    cfg.storage.segment_max_bytes = 16 * 1024;
    cfg
}

#[tokio::test]
async fn the_compacted_view_survives_retention_and_a_restart_and_goes_with_its_topic() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = restart_config(dir.path());
    let app = TestApp::start(dir, cfg).await;
    let topic = "durable";
    create_topic(&app, topic).await;
    let zero = json!({"retentionTimeInMinutes": 0, "retentionSizeInMB": 0});
    assert_eq!(app.post(&format!("{NS}/retention"), Some(zero)).await.0, 204);
    // 10 keys updated 30 times each, over several segments.
    let values: Vec<Value> =
        (0..300).map(|i| msg(Some(&format!("k{}", i % 10)), &format!("{i:04}-{}", "v".repeat(200)))).collect();
    let ids = produce(&app, topic, values).await;
    compact(&app, topic).await;
    let want: Vec<(String, String, String)> =
        (290..300).map(|i| (format!("k{}", i % 10), format!("{i:04}-{}", "v".repeat(200)), ids[i].clone())).collect();
    // Later messages (one request's messages share a segment: many requests, many segments)
    // seal the segments holding the compacted ones, and retention deletes those (no
    // subscription holds them); the view is kept.
    for _ in 0..20 {
        let filler: Vec<Value> = (0..30).map(|_| msg(Some("filler"), &"f".repeat(200))).collect();
        produce(&app, topic, filler).await;
    }
    eventually(30, "retention deleting the compacted segments", || async {
        assert_eq!(app.post(&format!("{}/trim", admin_topic(topic)), None).await.0, 204);
        let internal = ok(app.get(&format!("{}/internalStats", admin_topic(topic))).await);
        let first = internal["ledgers"][0]["ledgerId"].as_i64().unwrap_or(0);
        (first >= 300).then_some(())
    })
    .await;
    let mut reader = WsClient::connect(&reader_url(&app.base, topic, "messageId=earliest&readCompacted=true")).await;
    assert_eq!(ws_read(&mut reader, 10).await, want);
    assert_eq!(ws_read(&mut reader, 1).await[0].0, "filler", "then the live topic where retention left it");
    reader.close().await;

    let dir = app.stop().await;
    let cfg = restart_config(dir.path());
    let app = TestApp::start(dir, cfg).await;
    let mut reader = WsClient::connect(&reader_url(&app.base, topic, "messageId=earliest&readCompacted=true")).await;
    assert_eq!(ws_read(&mut reader, 10).await, want, "after a restart");
    reader.close().await;

    // Deleting the topic deletes its view.
    let objects = app.dir.path().join("objects");
    assert_eq!(compacted_objects(&objects).len(), 1, "one view, the replaced ones deleted");
    assert_eq!(app.delete(&admin_topic(topic)).await.0, 204);
    eventually(30, "the compacted view deleted with its topic", || async {
        compacted_objects(&objects).is_empty().then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_view_left_without_its_commit_is_collected_and_the_committed_one_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    cfg.broker.offload_gc_grace_ms = 0;
    let app = TestApp::start(dir, cfg).await;
    let topic = "orphans";
    create_topic(&app, topic).await;
    let ids = produce_history(&app, topic).await;
    compact(&app, topic).await;
    let objects = app.dir.path().join("objects");
    let committed = compacted_objects(&objects);
    assert_eq!(committed.len(), 1);
    // What a compaction that crashed between its upload and its commit leaves behind.
    let stray = committed[0].with_file_name("compacted-00000000000000000099.cv");
    std::fs::write(&stray, b"MGCV0001 never committed").unwrap();
    app.broker().testing().run_offload().await;
    assert_eq!(compacted_objects(&objects), committed, "the stray view goes, the committed one stays");
    let mut reader = WsClient::connect(&reader_url(&app.base, topic, "messageId=earliest&readCompacted=true")).await;
    assert_eq!(ws_read(&mut reader, 2).await, expected(&ids, &[(2, "k1", "k1-v2"), (6, "k3", "k3-v2")]));
    reader.close().await;
}

#[tokio::test]
async fn compaction_with_the_metadata_in_postgresql() {
    let app = TestApp::with_postgres().await;
    let topic = "pg";
    create_topic(&app, topic).await;
    let ids = produce_history(&app, topic).await;
    compact(&app, topic).await;
    let mut reader = WsClient::connect(&reader_url(&app.base, topic, "messageId=earliest&readCompacted=true")).await;
    assert_eq!(ws_read(&mut reader, 2).await, expected(&ids, &[(2, "k1", "k1-v2"), (6, "k3", "k3-v2")]));
    reader.close().await;
}
