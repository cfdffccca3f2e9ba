//! The limit and life policies enforced on real clients: publish rates throttle (never fail) a
//! WebSocket producer and say so in `/metrics`, one namespace at its rate does not slow another,
//! the N+1th producer, consumer, subscription or topic is refused with Pulsar's status, dispatch
//! and subscribe rates and unacked limits pace consumers, inactive topics are deleted and expired
//! subscriptions removed — and the policies still hold after a restart.

use crate::common::ws::{WsClient, consumer_url, list_subscriptions, producer_url, refused_status};
use crate::common::{admin_topic, create_topic, eventually, ok, pull, rest_topic};
use magnetar_core::{ManualClock, SharedClock};
use magnetar_tests::{TestApp, test_config};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

const NS: &str = "/admin/v2/namespaces/public/default";

async fn set(app: &TestApp, path: &str, value: Value) {
    let (s, body) = app.post(path, Some(value)).await;
    assert_eq!(s, 204, "POST {path}: {body}");
}

/// The value of `family` for `topic` in `/metrics` (0 when the series is absent).
async fn metric(app: &TestApp, family: &str, topic: &str) -> f64 {
    let text = app.client.get(app.url("/metrics")).send().await.expect("scrape").text().await.expect("text");
    let series = format!("topic=\"persistent://{topic}\"");
    text.lines()
        .filter(|l| l.starts_with(&format!("{family}{{")) && l.contains(&series))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

/// Publishes `n` messages one after the other on one WebSocket producer; every one must succeed.
async fn publish_n(app: &TestApp, ns_topic: &str, n: usize) -> Duration {
    let url = format!("{}/ws/v2/producer/persistent/{ns_topic}", app.base.replacen("http://", "ws://", 1));
    let mut p = WsClient::connect(&url).await;
    let started = Instant::now();
    for i in 0..n {
        p.publish_ok(&format!("m{i}"), None).await;
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_over_its_publish_rate_is_throttled_not_failed_at_either_level() {
    let app = TestApp::standalone().await;
    create_topic(&app, "rate-topic").await;
    ok(app.put("/admin/v2/namespaces/public/rated", None).await);
    ok(app.put("/admin/v2/persistent/public/rated/rate-ns", None).await);
    let rate = json!({"publishThrottlingRateInMsg": 10, "publishThrottlingRateInByte": 0});
    set(&app, &format!("{}/publishRate", admin_topic("rate-topic")), rate.clone()).await;
    set(&app, "/admin/v2/namespaces/public/rated/publishRate", rate).await;
    for topic in ["public/default/rate-topic", "public/rated/rate-ns"] {
        // 10 from the full bucket, then 20 at 10 per second.
        let took = publish_n(&app, topic, 30).await;
        assert!(took >= Duration::from_millis(1500), "{topic}: 30 messages at 10/s took only {took:?}");
        assert!(metric(&app, "pulsar_publish_rate_limit_times", topic).await > 0.0, "{topic}: throttling counted");
        assert!(metric(&app, "magnetar_publish_throttled_seconds_total", topic).await > 0.5, "{topic}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_namespace_at_its_broker_rate_does_not_slow_another_namespace() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cfg = test_config(dir.path());
    cfg.broker.publish_rate_per_namespace_msg = 10;
    let app = TestApp::start(dir, cfg).await;
    ok(app.put("/admin/v2/namespaces/public/noisy", None).await);
    ok(app.put("/admin/v2/namespaces/public/quiet", None).await);
    // Two topics of the noisy namespace share its rate.
    let noisy = async {
        let (a, b) = tokio::join!(publish_n(&app, "public/noisy/a", 15), publish_n(&app, "public/noisy/b", 15));
        a.max(b)
    };
    let quiet = publish_n(&app, "public/quiet/c", 5);
    let (noisy, _) = tokio::join!(noisy, quiet);
    assert!(noisy >= Duration::from_millis(1500), "30 messages at 10/s over the namespace took only {noisy:?}");
    let throttled = metric(&app, "pulsar_publish_rate_limit_times", "public/noisy/a").await
        + metric(&app, "pulsar_publish_rate_limit_times", "public/noisy/b").await;
    assert!(throttled > 0.0, "the noisy namespace was throttled");
    assert_eq!(metric(&app, "pulsar_publish_rate_limit_times", "public/quiet/c").await, 0.0, "the quiet one was not");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_producer_consumer_subscription_and_topic_over_a_limit_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = test_config(dir.path());
    let app = TestApp::start(dir, cfg.clone()).await;
    create_topic(&app, "lim").await;
    set(&app, &format!("{}/maxProducers", admin_topic("lim")), json!(1)).await;
    set(&app, &format!("{}/maxConsumers", admin_topic("lim")), json!(1)).await;
    set(&app, &format!("{}/maxSubscriptionsPerTopic", admin_topic("lim")), json!(2)).await;
    create_topic(&app, "per-sub").await;
    set(&app, &format!("{}/maxConsumersPerSubscription", admin_topic("per-sub")), json!(1)).await;
    ok(app.put("/admin/v2/namespaces/public/few", None).await);
    set(&app, "/admin/v2/namespaces/public/few/maxTopicsPerNamespace", json!(2)).await;

    // A restart in between: the limits are read back from the store.
    let dir = app.stop().await;
    let app = TestApp::start(dir, cfg).await;

    let first = WsClient::connect(&producer_url(&app.base, "lim")).await;
    assert_eq!(refused_status(&producer_url(&app.base, "lim")).await, 409, "maxProducers");
    first.close().await;
    let url = producer_url(&app.base, "lim");
    let _again = eventually(10, "the freed producer slot", || {
        let url = url.clone();
        async move { WsClient::try_connect(&url).await }
    })
    .await;

    let _c = WsClient::connect(&consumer_url(&app.base, "lim", "s1", "subscriptionType=Shared")).await;
    assert_eq!(refused_status(&consumer_url(&app.base, "lim", "s2", "")).await, 409, "maxConsumers");

    let _one = WsClient::connect(&consumer_url(&app.base, "per-sub", "s", "subscriptionType=Shared")).await;
    let url = consumer_url(&app.base, "per-sub", "s", "subscriptionType=Shared");
    assert_eq!(refused_status(&url).await, 409, "maxConsumersPerSubscription");

    // s1 exists; one more is allowed, the third is refused (412, as Pulsar).
    let start = Some(json!({"ledgerId": -1, "entryId": -1}));
    ok(app.put(&format!("{}/subscription/s2", admin_topic("lim")), start.clone()).await);
    let (s, body) = app.put(&format!("{}/subscription/s3", admin_topic("lim")), start).await;
    assert_eq!(s, 412, "maxSubscriptionsPerTopic: {body}");

    ok(app.put("/admin/v2/persistent/public/few/t1", None).await);
    ok(app.put("/admin/v2/persistent/public/few/t2", None).await);
    let (s, body) = app.put("/admin/v2/persistent/public/few/t3", None).await;
    assert_eq!(s, 412, "maxTopicsPerNamespace: {body}");
    assert!(metric(&app, "magnetar_policy_refusals_total", "public/default/lim").await >= 2.0);
}

#[tokio::test]
async fn subscription_types_auto_creation_encryption_and_delivery_delay_are_enforced() {
    let app = TestApp::standalone().await;
    create_topic(&app, "typed").await;
    set(&app, &format!("{}/subscriptionTypesEnabled", admin_topic("typed")), json!(["Shared"])).await;
    assert_eq!(refused_status(&consumer_url(&app.base, "typed", "s", "subscriptionType=Exclusive")).await, 412);
    let _shared = WsClient::connect(&consumer_url(&app.base, "typed", "s", "subscriptionType=Shared")).await;

    ok(app.put("/admin/v2/namespaces/public/manual", None).await);
    set(
        &app,
        "/admin/v2/namespaces/public/manual/autoSubscriptionCreation",
        json!({"allowAutoSubscriptionCreation": false}),
    )
    .await;
    ok(app.put("/admin/v2/persistent/public/manual/t", None).await);
    let url = |sub: &str| {
        format!("{}/ws/v2/consumer/persistent/public/manual/t/{sub}", app.base.replacen("http://", "ws://", 1))
    };
    assert_eq!(refused_status(&url("new")).await, 404, "no automatic subscription creation");
    ok(app
        .put("/admin/v2/persistent/public/manual/t/subscription/made", Some(json!({"ledgerId": -1, "entryId": -1})))
        .await);
    let _made = WsClient::connect(&url("made")).await;

    create_topic(&app, "delays").await;
    set(
        &app,
        &format!("{}/delayedDelivery", admin_topic("delays")),
        json!({"tickTime": 1000, "active": true, "maxDeliveryDelayInMillis": 5000}),
    )
    .await;
    let (s, body) = app
        .post(&rest_topic("delays"), Some(json!({"messages": [{"payload": "late", "deliverAfterMs": 60000}]})))
        .await;
    assert_eq!(s, 412, "a delay over maxDeliveryDelayInMillis: {body}");
    let (s, body) =
        app.post(&rest_topic("delays"), Some(json!({"messages": [{"payload": "soon", "deliverAfterMs": 1000}]}))).await;
    assert_eq!(s, 200, "{body}");

    set(&app, &format!("{NS}/encryptionRequired"), json!(true)).await;
    create_topic(&app, "secret").await;
    let (s, body) = app.post(&rest_topic("secret"), Some(json!({"messages": [{"payload": "plain"}]}))).await;
    assert_eq!(s, 412, "unencrypted message on an encryption-required namespace: {body}");
}

#[tokio::test]
async fn consumers_are_paced_by_unacked_dispatch_and_subscribe_limits() {
    let app = TestApp::standalone().await;
    create_topic(&app, "unacked").await;
    set(&app, &format!("{}/maxUnackedMessagesOnConsumer", admin_topic("unacked")), json!(2)).await;
    let mut c = WsClient::connect(&consumer_url(&app.base, "unacked", "s", "subscriptionType=Shared")).await;
    let payloads: Vec<String> = (0..5).map(|i| format!("u{i}")).collect();
    crate::common::produce_payloads(&app, "unacked", &payloads).await;
    let first = c.recv_message().await;
    let _second = c.recv_message().await;
    c.expect_silence("a third message while two are unacknowledged").await;
    c.ack(first["messageId"].as_str().expect("id")).await;
    let _third = c.recv_message().await;

    create_topic(&app, "paced").await;
    let rate = json!({"dispatchThrottlingRateInMsg": 5, "dispatchThrottlingRateInByte": 0,
                      "relativeToPublishRate": false, "ratePeriodInSecond": 1});
    set(&app, &format!("{}/dispatchRate", admin_topic("paced")), rate).await;
    ok(app
        .put(&format!("{}/subscription/s", admin_topic("paced")), Some(json!({"ledgerId": -1, "entryId": -1})))
        .await);
    let payloads: Vec<String> = (0..15).map(|i| format!("d{i}")).collect();
    crate::common::produce_payloads(&app, "paced", &payloads).await;
    let started = Instant::now();
    let first = pull(&app, "paced", "s", json!({"maxMessages": 100, "waitMs": 0})).await;
    assert!(first.len() <= 5, "one period's worth at most, got {}", first.len());
    let mut got = first.len();
    while got < 15 {
        got += pull(&app, "paced", "s", json!({"maxMessages": 100, "waitMs": 2000})).await.len();
        assert!(started.elapsed() < Duration::from_secs(20), "paced delivery stalled at {got}");
    }
    assert!(started.elapsed() >= Duration::from_millis(1500), "15 messages at 5/s came in {:?}", started.elapsed());

    create_topic(&app, "subs").await;
    let rate = json!({"subscribeThrottlingRatePerConsumer": 1, "ratePeriodInSecond": 60});
    set(&app, &format!("{}/subscribeRate", admin_topic("subs")), rate).await;
    let url = consumer_url(&app.base, "subs", "s", "consumerName=again");
    WsClient::connect(&url).await.close().await;
    assert_eq!(refused_status(&url).await, 429, "a second subscribe within the period");
    let _other = WsClient::connect(&consumer_url(&app.base, "subs", "s2", "consumerName=other")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inactive_topics_are_deleted_after_their_time_unless_in_use_or_exempt() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cfg = test_config(dir.path());
    cfg.broker.inactive_topic_check_interval_ms = 200;
    let app = TestApp::start(dir, cfg.clone()).await;
    let policy = json!({"inactiveTopicDeleteMode": "delete_when_no_subscriptions",
                        "maxInactiveDurationSeconds": 2, "deleteWhileInactive": true});
    set(&app, &format!("{NS}/inactiveTopicPolicies"), policy).await;
    for t in ["idle", "subscribed", "exempt"] {
        create_topic(&app, t).await;
    }
    set(&app, &format!("{}/inactiveTopicPolicies", admin_topic("exempt")), json!({"deleteWhileInactive": false})).await;
    ok(app
        .put(&format!("{}/subscription/s", admin_topic("subscribed")), Some(json!({"ledgerId": -1, "entryId": -1})))
        .await);

    // The policies hold after a restart; the topics are loaded again by their use.
    let dir = app.stop().await;
    let app = TestApp::start(dir, cfg).await;
    let started = Instant::now();
    for t in ["idle", "subscribed", "exempt"] {
        crate::common::produce_payloads(&app, t, &["x".to_string()]).await;
    }
    eventually(20, "the idle topic to be deleted", || async {
        (app.get(&format!("{}/stats", admin_topic("idle"))).await.0 == 404).then_some(())
    })
    .await;
    assert!(started.elapsed() >= Duration::from_secs(2), "deleted before its inactive time");
    for t in ["subscribed", "exempt"] {
        assert_eq!(app.get(&format!("{}/stats", admin_topic(t))).await.0, 200, "{t} is kept");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_subscriptions_are_removed_unless_a_consumer_is_attached() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cfg = test_config(dir.path());
    cfg.broker.subscription_expiry_check_interval_ms = 200;
    let app = TestApp::start(dir, cfg.clone()).await;
    set(&app, &format!("{NS}/subscriptionExpirationTime"), json!(1)).await;
    create_topic(&app, "expiring").await;
    let start = Some(json!({"ledgerId": -1, "entryId": -1}));
    ok(app.put(&format!("{}/subscription/old", admin_topic("expiring")), start.clone()).await);
    ok(app.put(&format!("{}/subscription/busy", admin_topic("expiring")), start).await);

    // After a restart, on a clock the test moves.
    let dir = app.stop().await;
    let clock = ManualClock::new(magnetar_core::now_millis());
    let app = TestApp::start_with_clock(dir, cfg, Arc::clone(&clock) as SharedClock).await;
    let _attached = WsClient::connect(&consumer_url(&app.base, "expiring", "busy", "subscriptionType=Shared")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut subs = list_subscriptions(&app.base, "expiring").await;
    subs.sort();
    assert_eq!(subs, ["busy", "old"], "nothing expires before its time");
    clock.advance_millis(61_000);
    eventually(10, "the unused subscription to expire", || async {
        (list_subscriptions(&app.base, "expiring").await == ["busy"]).then_some(())
    })
    .await;
}
