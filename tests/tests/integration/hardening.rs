//! The defects of the hardening review, each as a user would meet it: limits that hold for the
//! broker as a whole, acknowledgements past the log end, per-message results of pipelined
//! WebSocket publishes, bounded and tracked sessions, subscriptions that cannot get stuck,
//! per-partition checkpoints, topic loads racing deletes, and time-driven policies under an
//! injected clock.

use crate::common::ws::{WsClient, consumer_url, producer_url, reader_url, refused_status};
use crate::common::{
    admin_topic, b64, create_partitioned, create_topic, err, ok, produce_payloads, pull, pull_path, rest_topic,
};
use magnetar_core::{ManualClock, SharedClock};
use magnetar_tests::{TestApp, test_config};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

async fn app_with(change: impl FnOnce(&mut magnetar::config::Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cfg = test_config(dir.path());
    change(&mut cfg);
    TestApp::start(dir, cfg).await
}

#[tokio::test]
async fn the_concurrency_limit_bounds_the_broker_across_routes() {
    let app = app_with(|c| c.http.max_concurrent_requests = 2).await;
    create_topic(&app, "slow").await;
    // Two long polls on two subscriptions hold both permits for five seconds.
    let polls: Vec<_> = ["s1", "s2"]
        .into_iter()
        .map(|sub| {
            let (client, url) = (app.client.clone(), app.url(&pull_path("slow", sub)));
            tokio::spawn(async move { client.post(url).json(&json!({"waitMs": 5000})).send().await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Another route waits for a permit: it does not answer within a second.
    let tenants = app.client.get(app.url("/admin/v2/tenants")).timeout(Duration::from_secs(1)).send().await;
    assert!(tenants.is_err(), "a third request was served while two held the broker-wide limit: {tenants:?}");
    for p in polls {
        assert!(p.await.expect("poll task").expect("poll answered").status().is_success());
    }
    ok(app.get("/admin/v2/tenants").await);
}

#[tokio::test]
async fn an_ack_past_the_log_end_is_refused_and_skips_nothing() {
    let app = TestApp::standalone().await;
    create_topic(&app, "acks").await;
    produce_payloads(&app, "acks", &["m0".to_string()]).await;
    let got = pull(&app, "acks", "sub", json!({"initialPosition": "earliest", "maxMessages": 10})).await;
    assert_eq!(got.len(), 1);
    let ack = "/topics/persistent/public/default/acks/subscriptions/sub/ack";
    let reason = err(app.post(ack, Some(json!({"messageIds": ["0:5:-1"]}))).await, 400);
    assert!(reason.contains("past the end"), "{reason}");
    // Offset 5, once published, is delivered: the refused ack did not skip it.
    produce_payloads(&app, "acks", &(1..=6).map(|i| format!("m{i}")).collect::<Vec<_>>()).await;
    let got = pull(&app, "acks", "sub", json!({"maxMessages": 10, "waitMs": 2000})).await;
    let ids: Vec<&str> = got.iter().map(|m| m["messageId"].as_str().expect("id")).collect();
    assert!(ids.contains(&"0:5:-1"), "{ids:?}");
}

#[tokio::test]
async fn one_bad_frame_in_a_pipelined_websocket_batch_fails_alone() {
    let app = app_with(|c| c.broker.max_message_bytes = 1024).await;
    let mut producer = WsClient::connect(&producer_url(&app.base, "pipelined")).await;
    // Sent back to back, so they reach the broker as one batch.
    producer.send_json(&json!({"payload": b64(b"one"), "context": "1"})).await;
    producer.send_text("{not json").await;
    producer.send_json(&json!({"payload": b64(&[b'x'; 4096]), "context": "3"})).await;
    producer.send_json(&json!({"payload": "%%%", "context": "4"})).await;
    producer.send_json(&json!({"payload": b64(b"five"), "context": "5"})).await;
    let mut results = std::collections::BTreeMap::new();
    for _ in 0..5 {
        let r = producer.recv().await;
        let ctx = r["context"].as_str().unwrap_or("none").to_string();
        results.insert(ctx, r["result"].as_str().expect("result").to_string());
    }
    assert_eq!(results["1"], "ok", "{results:?}");
    assert_eq!(results["5"], "ok", "{results:?}");
    assert!(results["3"].starts_with("send-error"), "oversized: {results:?}");
    assert!(results["4"].starts_with("send-error"), "bad base64: {results:?}");
    assert!(results["none"].starts_with("send-error"), "bad JSON: {results:?}");
    let stats = ok(app.get(&format!("{}/stats", admin_topic("pipelined"))).await);
    assert_eq!(stats["msgInCounter"], 2, "exactly the two good messages were stored: {stats}");
    producer.close().await;
}

#[tokio::test]
async fn websocket_publishes_report_each_partitions_outcome() {
    let app = TestApp::standalone().await;
    create_partitioned(&app, "quota", 2).await;
    // A size quota with producer_exception; only partition 0 gets a backlog over it.
    let ns = "/admin/v2/namespaces/public/default";
    ok(app
        .post(&format!("{ns}/retention"), Some(json!({"retentionTimeInMinutes": -1, "retentionSizeInMB": -1})))
        .await);
    ok(app
        .post(
            &format!("{ns}/backlogQuota"),
            Some(json!({"limitSize": 1000, "limitTime": -1, "policy": "producer_exception"})),
        )
        .await);
    ok(app
        .put(&format!("{}/subscription/held", admin_topic("quota")), Some(json!({"ledgerId": -1, "entryId": -1})))
        .await);
    let big = vec!["p".repeat(200); 10];
    ok(app
        .post(
            &format!("{}/partitions/0", rest_topic("quota")),
            Some(json!({"messages": big.iter().map(|p| json!({"payload": p})).collect::<Vec<_>>()})),
        )
        .await);
    // Wait until the enforcement pass rejects partition 0.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (s, _) = app
            .post(&format!("{}/partitions/0", rest_topic("quota")), Some(json!({"messages": [{"payload": "x"}]})))
            .await;
        if s.as_u16() == 503 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "partition 0 never went over its quota");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Keys that JavaStringHash sends to partition 0 and to partition 1.
    let key_for = |p: u32| {
        (0..).map(|i| format!("k{i}")).find(|k| magnetar_core::hash::partition_for_key_java(k, 2) == p).expect("key")
    };
    let (k0, k1) = (key_for(0), key_for(1));
    let mut producer = WsClient::connect(&producer_url(&app.base, "quota")).await;
    // Back to back, so batches mix both partitions.
    for i in 0..40 {
        let (key, ctx) = if i % 2 == 0 { (&k0, format!("p0-{i}")) } else { (&k1, format!("p1-{i}")) };
        producer.send_json(&json!({"payload": b64(b"m"), "key": key, "context": ctx})).await;
    }
    for _ in 0..40 {
        let r = producer.recv().await;
        let ctx = r["context"].as_str().expect("context");
        let result = r["result"].as_str().expect("result");
        if ctx.starts_with("p0") {
            assert!(result.starts_with("send-error"), "partition 0 is over quota: {r}");
        } else {
            assert_eq!(result, "ok", "partition 1 stored its message and says so: {r}");
        }
    }
    producer.close().await;
}

#[tokio::test]
async fn websocket_sessions_beyond_the_cap_are_refused_and_shutdown_closes_the_rest() {
    let app = app_with(|c| c.http.max_websocket_sessions = 2).await;
    let a = WsClient::connect(&consumer_url(&app.base, "capped", "a", "subscriptionType=Shared")).await;
    let b = WsClient::connect(&reader_url(&app.base, "capped", "")).await;
    assert_eq!(refused_status(&producer_url(&app.base, "capped")).await, 503);
    a.close().await;
    // The permit is released with the session.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut c = loop {
        if let Some(c) = WsClient::try_connect(&producer_url(&app.base, "capped")).await {
            break c;
        }
        assert!(tokio::time::Instant::now() < deadline, "the closed session's permit was not released");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    drop(b);
    // A graceful stop ends the open sessions (close 1001, going away) instead of waiting on them.
    let stop = tokio::spawn(app.stop());
    assert_eq!(c.close_code().await, 1001);
    let stopped = tokio::time::timeout(Duration::from_secs(20), stop).await;
    assert!(stopped.is_ok(), "shutdown hung on an open WebSocket session");
}

#[tokio::test]
async fn a_durable_subscription_named_like_a_reader_is_not_touched_by_readers() {
    let app = TestApp::standalone().await;
    create_topic(&app, "names").await;
    produce_payloads(&app, "names", &(0..5).map(|i| format!("m{i}")).collect::<Vec<_>>()).await;
    // Durable subscriptions with the names readers used to get (`reader-<hex id>`).
    for i in 1..=40u32 {
        ok(app
            .put(
                &format!("{}/subscription/reader-{i:x}", admin_topic("names")),
                Some(json!({"ledgerId": -1, "entryId": -1})),
            )
            .await);
    }
    let mut reader = WsClient::connect(&reader_url(&app.base, "names", "messageId=earliest")).await;
    for _ in 0..5 {
        let m = reader.recv_message().await;
        reader.ack(m["messageId"].as_str().expect("id")).await;
    }
    reader.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let subs = ok(app.get(&format!("{}/subscriptions", admin_topic("names"))).await);
    assert_eq!(subs.as_array().expect("list").len(), 40, "every durable subscription is still there: {subs}");
    let stats = ok(app.get(&format!("{}/stats", admin_topic("names"))).await);
    assert_eq!(stats["subscriptions"]["reader-1"]["msgBacklog"], 5, "its backlog was not consumed: {stats}");
}

#[tokio::test]
async fn a_partition_missing_a_subscription_is_repaired_when_the_topic_loads() {
    let app = TestApp::standalone().await;
    create_partitioned(&app, "repair", 3).await;
    ok(app
        .put(&format!("{}/subscription/billing", admin_topic("repair")), Some(json!({"ledgerId": -1, "entryId": -1})))
        .await);
    // The state an interrupted partition update of an older version left: partition 2 lacks it.
    let name: magnetar_core::TopicName = "persistent://public/default/repair".parse().expect("name");
    let logs = app.broker().testing().log_ids(&name).await.expect("loaded");
    app.broker().testing().metadata().delete_subscription("billing", &logs[2..]).await.expect("delete row");
    ok(app.put(&format!("{}/unload", admin_topic("repair")), None).await);
    ok(app
        .post(&format!("{}/partitions/2", rest_topic("repair")), Some(json!({"messages": [{"payload": "on p2"}]})))
        .await);
    let got = pull(&app, "repair", "billing", json!({"maxMessages": 10, "waitMs": 3000})).await;
    assert_eq!(got.len(), 1, "the message of partition 2 reaches the subscription: {got:?}");
    assert!(got[0]["messageId"].as_str().expect("id").ends_with(":2"));
}

#[tokio::test]
async fn a_failing_checkpoint_keeps_the_other_partitions_and_the_wal_trimmed() {
    let app = app_with(|c| c.storage.wal_file_bytes = 64 * 1024).await;
    let mut delivered = Vec::new();
    for t in ["fenced", "healthy"] {
        create_topic(&app, t).await;
        produce_payloads(&app, t, &(0..20).map(|i| format!("{t}-{i}")).collect::<Vec<_>>()).await;
        let got = pull(&app, t, "sub", json!({"initialPosition": "earliest", "maxMessages": 20})).await;
        delivered.push((t, got.iter().map(|m| m["messageId"].clone()).collect::<Vec<Value>>()));
    }
    let testing = app.broker().testing();
    let fenced: magnetar_core::TopicName = "persistent://public/default/fenced".parse().expect("name");
    let log = testing.log_ids(&fenced).await.expect("loaded")[0];
    // Another owner takes the partition: this broker's checkpoints of it are refused from now on.
    testing.metadata().acquire_partition(log, "another-broker").await.expect("acquire");
    for (t, ids) in delivered {
        let ack = format!("/topics/persistent/public/default/{t}/subscriptions/sub/ack");
        ok(app.post(&ack, Some(json!({"messageIds": ids}))).await);
    }
    let failed = testing.checkpoint().await;
    assert_eq!(failed.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(), vec!["persistent://public/default/fenced"]);
    let healthy: magnetar_core::TopicName = "persistent://public/default/healthy".parse().expect("name");
    let healthy_log = testing.log_ids(&healthy).await.expect("loaded")[0];
    let cursors = testing.metadata().list_subscriptions(healthy_log).await.expect("subscriptions");
    assert_eq!(cursors[0].cursor.mark_delete, 20, "the healthy partition was checkpointed");
    // Enough traffic to roll WAL files; they are trimmed although one partition keeps failing.
    let payloads: Vec<String> = (0..200).map(|i| format!("{i:0>600}")).collect();
    produce_payloads(&app, "healthy", &payloads).await;
    let trimmed = testing.storage().trim_wal().await.expect("trim");
    assert_eq!(trimmed.files_kept, 0, "{trimmed:?}");
    let wal_files = std::fs::read_dir(app.dir.path().join("log/wal"))
        .expect("wal dir")
        .filter(|e| e.as_ref().is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".wal")))
        .count();
    assert!(wal_files <= 2, "{wal_files} WAL files left: the failing partition held them back");
    let metrics = app.client.get(app.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    assert!(metrics.contains("magnetar_cursor_checkpoint_failing_partitions 1"), "{metrics}");
    // After a restart, the fenced partition's acknowledgements (carried forward in the WAL
    // before its files went) still hold: nothing is redelivered.
    let dir = app.stop().await;
    let mut cfg = test_config(dir.path());
    cfg.storage.wal_file_bytes = 64 * 1024;
    let app = TestApp::start(dir, cfg).await;
    let again = pull(&app, "fenced", "sub", json!({"maxMessages": 20, "waitMs": 500})).await;
    assert!(again.is_empty(), "acknowledged messages of the fenced partition came back: {again:?}");
}

#[tokio::test]
async fn deleting_a_topic_while_it_loads_leaves_no_stale_topic() {
    let app = TestApp::standalone().await;
    for round in 0..30 {
        let topic = format!("racing-{round}");
        // Many partitions: a load takes long enough for the delete to land in the middle of it.
        create_partitioned(&app, &topic, 16).await;
        let loads: Vec<_> = (0..6)
            .map(|_| {
                let (client, url) =
                    (app.client.clone(), app.url(&format!("{}/partitioned-stats", admin_topic(&topic))));
                tokio::spawn(async move { client.get(url).send().await.map(|r| r.status().as_u16()) })
            })
            .collect();
        let (client, url) = (app.client.clone(), app.url(&format!("{}/partitions?force=true", admin_topic(&topic))));
        let delete = tokio::spawn(async move { client.delete(url).send().await.map(|r| r.status().as_u16()) });
        for l in loads {
            let s = l.await.expect("task").expect("answer");
            assert!(s == 200 || s == 404, "a load racing the delete answered {s}");
        }
        assert_eq!(delete.await.expect("task").expect("answer"), 204);
        err(app.get(&format!("{}/partitioned-stats", admin_topic(&topic))).await, 404);
        // Created again, the topic works: no stale partition of the deleted one answers.
        create_partitioned(&app, &topic, 16).await;
        produce_payloads(&app, &topic, &["fresh".to_string()]).await;
        let stats = ok(app.get(&format!("{}/partitioned-stats", admin_topic(&topic))).await);
        assert_eq!(stats["msgInCounter"], 1, "round {round}: {stats}");
    }
}

#[tokio::test]
async fn rest_produce_to_a_missing_topic_follows_the_auto_creation_policy() {
    let app = TestApp::standalone().await;
    let body = Some(json!({"messages": [{"payload": "x"}]}));
    ok(app.post(&rest_topic("made-by-produce"), body.clone()).await);
    ok(app.get(&format!("{}/stats", admin_topic("made-by-produce"))).await);
    ok(app.put("/admin/v2/namespaces/public/closed", None).await);
    ok(app
        .post("/admin/v2/namespaces/public/closed/autoTopicCreation", Some(json!({"allowAutoTopicCreation": false})))
        .await);
    err(app.post("/topics/persistent/public/closed/nope", body.clone()).await, 404);
    err(app.post("/topics/persistent/public/ghost/nope", body).await, 404);
}

#[tokio::test]
async fn ttl_and_delayed_delivery_follow_the_injected_clock() {
    let clock = ManualClock::new(magnetar_core::now_millis());
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = test_config(dir.path());
    let app = TestApp::start_with_clock(dir, cfg, Arc::clone(&clock) as SharedClock).await;
    create_topic(&app, "timed").await;
    ok(app.post("/admin/v2/namespaces/public/default/messageTTL", Some(json!(60))).await);
    ok(app
        .put(&format!("{}/subscription/ttl", admin_topic("timed")), Some(json!({"ledgerId": -1, "entryId": -1})))
        .await);
    produce_payloads(&app, "timed", &["old".to_string()]).await;
    app.broker().testing().run_enforcement().await;
    let stats = ok(app.get(&format!("{}/stats", admin_topic("timed"))).await);
    assert_eq!(stats["subscriptions"]["ttl"]["msgBacklog"], 1, "not expired yet");
    clock.advance_millis(61_000);
    app.broker().testing().run_enforcement().await;
    let stats = ok(app.get(&format!("{}/stats", admin_topic("timed"))).await);
    assert_eq!(stats["subscriptions"]["ttl"]["msgBacklog"], 0, "expired by TTL after 61 s of the broker's clock");
    // Delayed delivery: due one minute later on the broker's clock (TTL off, so it is not expired).
    ok(app.delete("/admin/v2/namespaces/public/default/messageTTL").await);
    ok(app
        .post(&rest_topic("timed"), Some(json!({"messages": [{"payload": "later", "deliverAfterMs": 60000}]})))
        .await);
    let first =
        pull(&app, "timed", "shared", json!({"initialPosition": "earliest", "maxMessages": 10, "waitMs": 300})).await;
    let payloads = |m: &[Value]| m.iter().map(|m| m["payload"].as_str().unwrap_or("").to_string()).collect::<Vec<_>>();
    assert!(!payloads(&first).contains(&b64(b"later")), "delivered before it was due: {first:?}");
    clock.advance_millis(61_000);
    let due = pull(&app, "timed", "shared", json!({"maxMessages": 10, "waitMs": 2000})).await;
    assert_eq!(payloads(&due), vec![b64(b"later")]);
}
