//! Message deduplication (Pulsar's `deduplicationEnabled`): the namespace and topic policies
//! with Pulsar's paths, precedence and `applied`; a message resent with the same producer name
//! and sequence id is stored once, over REST and WebSocket, answered as Pulsar does (`-1:-1`);
//! and the state survives a clean restart and a kill -9 (rebuilt from the snapshot in PostgreSQL
//! and the log after it).

use crate::common::ws::{WsClient, producer_url};
use crate::common::{admin_topic, b64, create_topic, ok, payload_text, pull_n};
use magnetar_core::MessageId;
use magnetar_tests::{BrokerProcess, TestApp, call};
use reqwest::Method;
use serde_json::{Value, json};

const NS: &str = "/admin/v2/namespaces/public/default";

async fn set(app: &TestApp, path: &str, value: Value) {
    let (s, body) = app.post(path, Some(value)).await;
    assert_eq!(s, 204, "POST {path}: {body}");
}

/// REST produce of `seqs` as producer `producer`; the message ids, in order.
async fn produce_seqs(c: &reqwest::Client, base: &str, topic: &str, producer: &str, seqs: &[i64]) -> Vec<String> {
    let messages: Vec<Value> = seqs.iter().map(|s| json!({"payload": format!("seq-{s}"), "sequenceId": s})).collect();
    let (s, body) = call(
        c,
        Method::POST,
        &format!("{base}/topics/persistent/{topic}"),
        Some(json!({"producerName": producer, "messages": messages})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    body["messagePublishResults"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            assert_eq!(r["errorCode"], 0, "{r}");
            r["messageId"].as_str().expect("id").to_string()
        })
        .collect()
}

fn is_duplicate(id: &str) -> bool {
    id.starts_with("-1:-1:")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deduplication_policies_follow_pulsars_paths_and_precedence() {
    let app = TestApp::with_postgres().await;
    create_topic(&app, "dedup-policies").await;
    let topic = admin_topic("dedup-policies");

    assert_eq!(ok(app.get(&format!("{NS}/deduplication")).await), Value::Null);
    assert_eq!(
        ok(app.get(&format!("{topic}/deduplicationEnabled?applied=true")).await),
        json!(false),
        "broker default"
    );
    set(&app, &format!("{NS}/deduplication"), json!(true)).await;
    assert_eq!(ok(app.get(&format!("{NS}/deduplication")).await), json!(true));
    assert_eq!(ok(app.get(&format!("{topic}/deduplicationEnabled")).await), Value::Null, "the topic sets nothing");
    assert_eq!(ok(app.get(&format!("{topic}/deduplicationEnabled?applied=true")).await), json!(true));
    set(&app, &format!("{topic}/deduplicationEnabled"), json!(false)).await;
    assert_eq!(ok(app.get(&format!("{topic}/deduplicationEnabled?applied=true")).await), json!(false), "topic wins");
    let stats = ok(app.get(&format!("{topic}/stats")).await);
    assert_eq!(stats["deduplicationStatus"], "Disabled", "{stats}");
    assert_eq!(stats["appliedPolicies"]["deduplicationEnabled"]["level"], "topic", "{stats}");
    ok(app.delete(&format!("{topic}/deduplicationEnabled")).await);
    assert_eq!(ok(app.get(&format!("{topic}/deduplicationEnabled?applied=true")).await), json!(true));
    crate::common::eventually(10, "the namespace's setting in the stats", || async {
        let stats = ok(app.get(&format!("{topic}/stats")).await);
        (stats["deduplicationStatus"] == "Enabled").then_some(())
    })
    .await;
    ok(app.delete(&format!("{NS}/deduplication")).await);
    assert_eq!(ok(app.get(&format!("{NS}/deduplication")).await), Value::Null);

    // The snapshot interval, in seconds, with the broker's 120 as the default.
    assert_eq!(ok(app.get(&format!("{topic}/deduplicationSnapshotInterval?applied=true")).await), json!(120));
    set(&app, &format!("{NS}/deduplicationSnapshotInterval"), json!(30)).await;
    assert_eq!(ok(app.get(&format!("{NS}/deduplicationSnapshotInterval")).await), json!(30));
    assert_eq!(ok(app.get(&format!("{topic}/deduplicationSnapshotInterval?applied=true")).await), json!(30));
    set(&app, &format!("{topic}/deduplicationSnapshotInterval"), json!(7)).await;
    assert_eq!(ok(app.get(&format!("{topic}/deduplicationSnapshotInterval")).await), json!(7));
    let (s, body) = app.post(&format!("{topic}/deduplicationSnapshotInterval"), Some(json!(-1))).await;
    assert_eq!(s, 412, "{body}");
    assert!(body["reason"].as_str().unwrap_or_default().contains("deduplicationSnapshotInterval"), "{body}");
    let (s, body) = app.post(&format!("{NS}/deduplication"), Some(json!("yes"))).await;
    assert_eq!(s, 400, "not a boolean: {body}");
    ok(app.delete(&format!("{topic}/deduplicationSnapshotInterval")).await);
    assert_eq!(ok(app.get(&format!("{topic}/deduplicationSnapshotInterval?applied=true")).await), json!(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_message_is_stored_once_over_rest_and_websocket() {
    let app = TestApp::with_postgres().await;
    set(&app, &format!("{NS}/deduplication"), json!(true)).await;
    let topic = "public/default/orders";
    let (c, b) = (&app.client, app.base.as_str());
    create_topic(&app, "orders").await;
    ok(app
        .put(&format!("{}/subscription/audit", admin_topic("orders")), Some(json!({"ledgerId": -1, "entryId": -1})))
        .await);

    let first = produce_seqs(c, b, topic, "rest-1", &[0, 1, 2, 3, 4]).await;
    assert!(first.iter().all(|id| !is_duplicate(id)), "{first:?}");
    // A retry of a batch that was stored in part: the stored ones come back as duplicates.
    let retry = produce_seqs(c, b, topic, "rest-1", &[3, 4, 5]).await;
    assert!(is_duplicate(&retry[0]) && is_duplicate(&retry[1]), "{retry:?}");
    assert!(!is_duplicate(&retry[2]), "{retry:?}");
    // Another producer's sequence ids are its own; unnamed messages are never deduplicated.
    assert!(!is_duplicate(&produce_seqs(c, b, topic, "rest-2", &[0]).await[0]));
    let (s, body) = call(
        c,
        Method::POST,
        &format!("{b}/topics/persistent/{topic}"),
        Some(json!({"messages": [{"payload": "seq-0", "sequenceId": 0}]})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert!(!is_duplicate(body["messagePublishResults"][0]["messageId"].as_str().unwrap()), "{body}");
    let (s, body) = call(
        c,
        Method::POST,
        &format!("{b}/topics/persistent/{topic}"),
        Some(json!({"producerName": "rest-1", "messages": [{"payload": "x", "sequenceId": -3}]})),
    )
    .await;
    assert_eq!(s, 400, "{body}");
    assert!(body["reason"].as_str().unwrap_or_default().contains("sequenceId -3"), "{body}");

    // WebSocket: `producerName` at the handshake, `sequenceId` per frame.
    let mut p = WsClient::connect(&format!("{}?producerName=ws-1", producer_url(b, "orders"))).await;
    let mut ws_ids = Vec::new();
    for seq in [0, 1, 1, 2] {
        let reply = p.publish(json!({"payload": b64(format!("ws-{seq}").as_bytes()), "sequenceId": seq})).await;
        assert_eq!(reply["result"], "ok", "{reply}");
        ws_ids.push(MessageId::from_base64(reply["messageId"].as_str().unwrap()).expect("an id"));
    }
    assert_eq!((ws_ids[2].ledger_id, ws_ids[2].entry_id), (-1, -1), "the resent frame: {ws_ids:?}");
    assert!(ws_ids[3].ledger_id >= 0, "{ws_ids:?}");
    let bad = p.publish(json!({"payload": b64(b"x"), "sequenceId": -1})).await;
    assert_eq!(bad["result"], "send-error:3", "{bad}");
    p.close().await;

    let got: Vec<String> = pull_n(&app, "orders", "audit", 11, 30_000).await.iter().map(payload_text).collect();
    let expected = ["seq-0", "seq-1", "seq-2", "seq-3", "seq-4", "seq-5", "seq-0", "seq-0", "ws-0", "ws-1", "ws-2"];
    assert_eq!(got, expected);
    let stats = ok(app.get(&format!("/admin/v2/persistent/{topic}/stats")).await);
    assert_eq!(stats["msgInCounter"], 11, "duplicates are not counted as published: {stats}");

    // Where deduplication is off, a resend is stored again.
    create_topic(&app, "not-deduplicated").await;
    set(&app, &format!("{}/deduplicationEnabled", admin_topic("not-deduplicated")), json!(false)).await;
    produce_seqs(c, b, "public/default/not-deduplicated", "p", &[0]).await;
    assert!(!is_duplicate(&produce_seqs(c, b, "public/default/not-deduplicated", "p", &[0]).await[0]));
}

/// A cluster broker on PostgreSQL and S3 with deduplication on for every namespace and a
/// snapshot every 4 messages (so the rebuild starts from a snapshot and replays the rest).
async fn dedup_cluster_config(cluster: &str) -> String {
    let dedup = "[broker.deduplication]\nenabled = true\nentries_interval = 4\n";
    crate::common::cluster_toml(cluster, "", dedup).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deduplication_state_survives_a_restart_and_a_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    // The cluster names the objects' key prefix in the shared bucket.
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos();
    let cluster = format!("dedup-{nanos}");
    let mut broker = BrokerProcess::start_cluster(&dir.path().join("data"), &dedup_cluster_config(&cluster).await, &[]);
    let c = reqwest::Client::new();
    let topic = "acme/app/survivor";
    let tenant = json!({"allowedClusters": [cluster]});
    let (s, body) = call(&c, Method::PUT, &format!("{}/admin/v2/tenants/acme", broker.base), Some(tenant)).await;
    assert!(s.is_success(), "{s}: {body}");
    let (s, body) = call(&c, Method::PUT, &format!("{}/admin/v2/namespaces/acme/app", broker.base), None).await;
    assert!(s.is_success(), "{s}: {body}");
    let (s, body) = call(&c, Method::PUT, &format!("{}/admin/v2/persistent/{topic}", broker.base), None).await;
    assert!(s.is_success(), "{s}: {body}");
    let (s, body) = call(
        &c,
        Method::PUT,
        &format!("{}/admin/v2/persistent/{topic}/subscription/all", broker.base),
        Some(json!({"ledgerId": -1, "entryId": -1})),
    )
    .await;
    assert!(s.is_success(), "{s}: {body}");
    // Two producers, interleaved: 0..10 of each (snapshots every 4 messages on the way).
    for seq in 0..10 {
        produce_seqs(&c, &broker.base, topic, "a", &[seq]).await;
        produce_seqs(&c, &broker.base, topic, "b", &[seq]).await;
    }
    // The snapshot shows as Pulsar's `pulsar.dedup` cursor, with the sequence ids as properties.
    let url = format!("{}/admin/v2/persistent/{topic}/internalStats", broker.base);
    let snapshot = crate::common::eventually(20, "a snapshot of all 20 messages", || {
        let (c, url) = (c.clone(), url.clone());
        async move {
            let (_, stats) = call(&c, Method::GET, &url, None).await;
            let cursor = stats["cursors"]["pulsar.dedup"].clone();
            (cursor["properties"] == json!({"a": 9, "b": 9})).then_some(cursor)
        }
    })
    .await;
    assert_eq!(snapshot["markDeletePosition"], last_position(&c, &broker.base, topic).await, "{snapshot}");

    assert!(broker.terminate().success(), "SIGTERM stops the broker cleanly");
    broker.restart();
    let again = produce_seqs(&c, &broker.base, topic, "a", &[8, 9, 10]).await;
    assert!(is_duplicate(&again[0]) && is_duplicate(&again[1]) && !is_duplicate(&again[2]), "{again:?}");

    // Killed: the messages after the last snapshot are only in the log; they are replayed. (With
    // a snapshot every 4 messages, the 2 after the restart's stay out of any snapshot.)
    produce_seqs(&c, &broker.base, topic, "b", &[10, 11]).await;
    broker.kill9();
    broker.restart();
    let again = produce_seqs(&c, &broker.base, topic, "b", &[9, 10, 11, 12]).await;
    assert_eq!(again.iter().map(|id| is_duplicate(id)).collect::<Vec<_>>(), [true, true, true, false], "{again:?}");
    let again = produce_seqs(&c, &broker.base, topic, "a", &[10, 11]).await;
    assert!(is_duplicate(&again[0]) && !is_duplicate(&again[1]), "{again:?}");

    // Every message exactly once, in order per producer.
    let (s, stats) = call(&c, Method::GET, &format!("{}/admin/v2/persistent/{topic}/stats", broker.base), None).await;
    assert_eq!(s, 200, "{stats}");
    assert_eq!(stats["subscriptions"]["all"]["msgBacklog"], 25, "a 0..=11 and b 0..=12: {stats}");
}

/// `ledger:entry` of the last message of a non-partitioned topic, as internal stats write it.
async fn last_position(c: &reqwest::Client, base: &str, topic: &str) -> Value {
    let (s, stats) = call(c, Method::GET, &format!("{base}/admin/v2/persistent/{topic}/internalStats"), None).await;
    assert_eq!(s, 200, "{stats}");
    stats["lastConfirmedEntry"].clone()
}
