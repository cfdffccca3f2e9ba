//! Topic-level overrides of namespace policies enforced: a topic's retention and message TTL
//! shorter than its namespace's take effect on that topic only, a topic's backlog quota refuses
//! its publishes while the namespace's other topics go on, a topic's `maxMessageSize` refuses
//! larger messages over REST (413) and WebSocket (`send-error`), and one subscription's dispatch
//! rate paces that subscription only.

use super::{NS, backlog, earliest_subscription, eventually, produce};
use crate::common::ws::{WsClient, producer_url};
use crate::common::{b64, create_topic, err, ok, pull, rest_topic};
use magnetar_tests::TestApp;
use serde_json::json;
use std::time::{Duration, Instant};

const TOPIC: &str = "/admin/v2/persistent/public/default";

async fn storage_size(app: &TestApp, topic: &str) -> u64 {
    ok(app.get(&format!("{TOPIC}/{topic}/stats")).await)["storageSize"].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_ttl_shorter_than_its_namespaces_expires_only_its_messages() {
    let app = TestApp::standalone().await;
    for topic in ["ttl-short", "ttl-long"] {
        earliest_subscription(&app, topic, "s").await;
    }
    assert_eq!(app.post(&format!("{NS}/messageTTL"), Some(json!(3600))).await.0, 204);
    assert_eq!(app.post(&format!("{TOPIC}/ttl-short/messageTTL?messageTTL=1"), None).await.0, 204);
    for topic in ["ttl-short", "ttl-long"] {
        assert_eq!(produce(&app, topic, 20).await.0, 200);
    }
    eventually("the topic's 1 s TTL empties its backlog", || async { backlog(&app, "ttl-short", "s").await == 0 })
        .await;
    assert_eq!(backlog(&app, "ttl-long", "s").await, 20, "the namespace's hour keeps the other topic's");
    let applied = ok(app.get(&format!("{TOPIC}/ttl-long/messageTTL?applied=true")).await);
    assert_eq!(applied, json!(3600));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_retention_shorter_than_its_namespaces_deletes_only_its_segments() {
    let app = TestApp::standalone().await;
    let keep = json!({"retentionTimeInMinutes": -1, "retentionSizeInMB": -1});
    assert_eq!(app.post(&format!("{NS}/retention"), Some(keep)).await.0, 204);
    // Without subscriptions every sealed segment is consumed: retention alone decides.
    for topic in ["kept", "trimmed"] {
        ok(app.put(&format!("{TOPIC}/{topic}"), None).await);
    }
    let none = json!({"retentionTimeInMinutes": 0, "retentionSizeInMB": 0});
    assert_eq!(app.post(&format!("{TOPIC}/trimmed/retention"), Some(none)).await.0, 204);
    for topic in ["kept", "trimmed"] {
        for _ in 0..3 {
            assert_eq!(produce(&app, topic, 100).await.0, 200);
        }
    }
    let stored = storage_size(&app, "kept").await;
    assert!(stored > 200_000, "kept stores {stored}");
    eventually("the topic's retention deletes its sealed segments", || async {
        storage_size(&app, "trimmed").await < stored / 2
    })
    .await;
    app.broker().testing().run_retention().await;
    assert_eq!(storage_size(&app, "kept").await, stored, "the namespace's infinite retention keeps the other");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_max_message_size_refuses_larger_messages_over_rest_and_websocket() {
    let app = TestApp::standalone().await;
    create_topic(&app, "small").await;
    create_topic(&app, "large").await;
    assert_eq!(app.post(&format!("{TOPIC}/small/maxMessageSize"), Some(json!(1024))).await.0, 204);
    let big = "b".repeat(1025);

    let reason = err(app.post(&rest_topic("small"), Some(json!({"messages": [{"payload": big}]}))).await, 413);
    assert!(reason.contains("1024"), "the reason names the limit: {reason}");
    ok(app.post(&rest_topic("small"), Some(json!({"messages": [{"payload": "e".repeat(1024)}]}))).await);
    ok(app.post(&rest_topic("large"), Some(json!({"messages": [{"payload": big}]}))).await);

    let mut producer = WsClient::connect(&producer_url(&app.base, "small")).await;
    let reply = producer.publish(json!({"payload": b64(big.as_bytes()), "context": "big"})).await;
    assert!(reply["result"].as_str().unwrap_or("").starts_with("send-error"), "{reply}");
    assert_eq!(reply["context"], "big");
    producer.publish_ok("fits", None).await;

    // Removed: the broker's limit applies again.
    assert_eq!(app.delete(&format!("{TOPIC}/small/maxMessageSize")).await.0, 204);
    producer.publish_ok(&big, None).await;
    ok(app.post(&rest_topic("small"), Some(json!({"messages": [{"payload": big}]}))).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_backlog_quota_refuses_its_publishes_and_not_its_neighbours() {
    let app = TestApp::standalone().await;
    let keep = json!({"retentionTimeInMinutes": -1, "retentionSizeInMB": -1});
    assert_eq!(app.post(&format!("{NS}/retention"), Some(keep)).await.0, 204);
    for topic in ["quota-topic", "quota-free"] {
        earliest_subscription(&app, topic, "s").await;
    }
    let quota = json!({"limitSize": 20_000, "policy": "producer_exception"});
    let (s, body) =
        app.post(&format!("{TOPIC}/quota-topic/backlogQuota?backlogQuotaType=destination_storage"), Some(quota)).await;
    assert_eq!(s, 204, "{body}");
    for topic in ["quota-topic", "quota-free"] {
        assert_eq!(produce(&app, topic, 50).await.0, 200); // ~50 KB of backlog each
    }
    eventually("the topic over its quota refuses publishes with 503", || async {
        let (s, body) = produce(&app, "quota-topic", 1).await;
        s == 503 && body["reason"].as_str().unwrap_or("").contains("backlog quota")
    })
    .await;
    app.broker().check_backlog_quotas().await;
    assert_eq!(produce(&app, "quota-free", 1).await.0, 200, "the namespace sets no quota: its other topic goes on");

    // Removed: the namespace's (none) applies and publishes are accepted again.
    let remove = format!("{TOPIC}/quota-topic/backlogQuota?backlogQuotaType=destination_storage");
    assert_eq!(app.delete(&remove).await.0, 204);
    eventually("publishes accepted once the quota is removed", || async {
        produce(&app, "quota-topic", 1).await.0 == 200
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_dispatch_rate_paces_that_subscription_only() {
    let app = TestApp::standalone().await;
    for sub in ["slow", "fast"] {
        earliest_subscription(&app, "paced-sub", sub).await;
    }
    let rate = json!({"dispatchThrottlingRateInMsg": 5, "dispatchThrottlingRateInByte": 0,
                      "relativeToPublishRate": false, "ratePeriodInSecond": 1});
    assert_eq!(app.post(&format!("{TOPIC}/paced-sub/slow/dispatchRate"), Some(rate)).await.0, 204);
    assert_eq!(produce(&app, "paced-sub", 15).await.0, 200);

    let fast = pull(&app, "paced-sub", "fast", json!({"maxMessages": 100, "waitMs": 0})).await;
    assert_eq!(fast.len(), 15, "the other subscription is not paced");
    let started = Instant::now();
    let first = pull(&app, "paced-sub", "slow", json!({"maxMessages": 100, "waitMs": 0})).await;
    assert!(first.len() <= 5, "one period's worth at most, got {}", first.len());
    let mut got = first.len();
    while got < 15 {
        got += pull(&app, "paced-sub", "slow", json!({"maxMessages": 100, "waitMs": 2000})).await.len();
        assert!(started.elapsed() < Duration::from_secs(20), "paced delivery stalled at {got}");
    }
    assert!(started.elapsed() >= Duration::from_millis(1500), "15 messages at 5/s came in {:?}", started.elapsed());
}
