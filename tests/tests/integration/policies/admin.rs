//! The limit and life policies over the admin API, table-driven: each namespace policy is set,
//! read, kept across a restart and removed; each topic-level policy overrides its namespace's,
//! `applied=true` answers the value in force, topic stats say which level it came from, and
//! removing it falls back to the namespace, then to the broker. Metadata in PostgreSQL, so the
//! restart reads what another broker would.

use crate::common::{err, ok};
use magnetar::config::{Config, MetadataSection, Secret};
use magnetar_tests::{TestApp, fresh_postgres_database, test_config};
use serde_json::{Value, json};

const NS: &str = "/admin/v2/namespaces/public/default";
const TOPIC: &str = "/admin/v2/persistent/public/default";

async fn pg_broker() -> (TestApp, Config) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cfg = test_config(dir.path());
    cfg.metadata = MetadataSection { url: Secret::new(fresh_postgres_database().await) };
    (TestApp::start(dir, cfg.clone()).await, cfg)
}

async fn restart(app: TestApp, cfg: &Config) -> TestApp {
    let dir = app.stop().await;
    TestApp::start(dir, cfg.clone()).await
}

/// (path under the namespace, a value to set): every namespace policy with a GET/POST/DELETE.
fn namespace_table() -> Vec<(&'static str, Value)> {
    vec![
        ("maxProducersPerTopic", json!(3)),
        ("maxConsumersPerTopic", json!(4)),
        ("maxConsumersPerSubscription", json!(2)),
        ("maxSubscriptionsPerTopic", json!(5)),
        ("maxTopicsPerNamespace", json!(100)),
        ("maxUnackedMessagesPerConsumer", json!(1000)),
        ("maxUnackedMessagesPerSubscription", json!(2000)),
        ("publishRate", json!({"publishThrottlingRateInMsg": 100, "publishThrottlingRateInByte": 1_048_576})),
        (
            "dispatchRate",
            json!({"dispatchThrottlingRateInMsg": 50, "dispatchThrottlingRateInByte": 0,
                   "relativeToPublishRate": false, "ratePeriodInSecond": 1}),
        ),
        (
            "subscriptionDispatchRate",
            json!({"dispatchThrottlingRateInMsg": 20, "dispatchThrottlingRateInByte": 4096,
                   "relativeToPublishRate": false, "ratePeriodInSecond": 2}),
        ),
        ("subscribeRate", json!({"subscribeThrottlingRatePerConsumer": 3, "ratePeriodInSecond": 30})),
        (
            "inactiveTopicPolicies",
            json!({"inactiveTopicDeleteMode": "delete_when_subscriptions_caught_up",
                   "maxInactiveDurationSeconds": 600, "deleteWhileInactive": true}),
        ),
        ("subscriptionExpirationTime", json!(60)),
        ("autoSubscriptionCreation", json!({"allowAutoSubscriptionCreation": false})),
        ("subscriptionTypesEnabled", json!(["Shared", "Key_Shared"])),
        ("delayedDelivery", json!({"tickTime": 500, "active": true, "maxDeliveryDelayInMillis": 60000})),
        ("persistence", persistence(2.5)),
    ]
}

/// A persistence policy of one copy (what a broker keeps until replicated durability exists).
fn persistence(mark_delete_rate: f64) -> Value {
    json!({"bookkeeperEnsemble": 1, "bookkeeperWriteQuorum": 1, "bookkeeperAckQuorum": 1,
           "managedLedgerMaxMarkDeleteRate": mark_delete_rate})
}

/// What GET answers for a policy the namespace does not set: `null`, or as Pulsar an empty list
/// of enabled subscription types (the broker's apply).
fn unset(path: &str) -> Value {
    if path == "subscriptionTypesEnabled" { json!([]) } else { Value::Null }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_policies_are_set_read_kept_across_a_restart_and_removed() {
    let (app, cfg) = pg_broker().await;
    for (path, value) in namespace_table() {
        assert_eq!(ok(app.get(&format!("{NS}/{path}")).await), unset(path), "{path} is unset at first");
        let (s, body) = app.post(&format!("{NS}/{path}"), Some(value.clone())).await;
        assert_eq!(s, 204, "POST {path}: {body}");
        assert_eq!(ok(app.get(&format!("{NS}/{path}")).await), value, "GET {path} after POST");
    }
    // Flags and key/value policies of the same group.
    assert_eq!(app.post(&format!("{NS}/encryptionRequired"), Some(json!(true))).await.0, 204);
    assert_eq!(app.put(&format!("{NS}/properties"), Some(json!({"team": "payments"}))).await.0, 204);
    assert_eq!(app.put(&format!("{NS}/property/owner/alice"), None).await.0, 204);

    let app = restart(app, &cfg).await;
    for (path, value) in namespace_table() {
        assert_eq!(ok(app.get(&format!("{NS}/{path}")).await), value, "GET {path} after a restart");
        assert_eq!(app.delete(&format!("{NS}/{path}")).await.0, 204, "DELETE {path}");
        assert_eq!(ok(app.get(&format!("{NS}/{path}")).await), unset(path), "{path} is unset after DELETE");
    }
    assert_eq!(ok(app.get(&format!("{NS}/encryptionRequired")).await), json!(true));
    assert_eq!(ok(app.get(&format!("{NS}/properties")).await), json!({"team": "payments", "owner": "alice"}));
    assert_eq!(ok(app.get(&format!("{NS}/property/owner")).await), json!("alice"));
    assert_eq!(ok(app.get(&format!("{NS}/subscriptionAuthMode")).await), json!("None"));
    // The whole policies document carries them under Pulsar's field names.
    let all = ok(app.get(NS).await);
    assert_eq!(all["encryption_required"], true, "{all}");
}

#[tokio::test]
async fn namespace_policies_refuse_invalid_values_with_412_and_unknown_namespaces_with_404() {
    let app = TestApp::standalone().await;
    for (path, bad) in [
        ("maxProducersPerTopic", json!(-1)),
        ("subscriptionExpirationTime", json!(-5)),
        ("subscribeRate", json!({"subscribeThrottlingRatePerConsumer": 1, "ratePeriodInSecond": 0})),
        ("inactiveTopicPolicies", json!({"maxInactiveDurationSeconds": -1, "deleteWhileInactive": true})),
    ] {
        let (s, body) = app.post(&format!("{NS}/{path}"), Some(bad)).await;
        assert_eq!(s, 412, "{path}: {body}");
    }
    err(app.get("/admin/v2/namespaces/public/nope/maxProducersPerTopic").await, 404);
    err(app.post("/admin/v2/namespaces/public/nope/maxProducersPerTopic", Some(json!(1))).await, 404);
    // Replication clusters are stored; a cluster that does not exist is refused.
    err(app.post(&format!("{NS}/replication"), Some(json!(["nowhere"]))).await, 412);
    assert_eq!(app.post(&format!("{NS}/replication"), Some(json!(["standalone"]))).await.0, 204);
    assert_eq!(ok(app.get(&format!("{NS}/replication")).await), json!(["standalone"]));
}

#[tokio::test]
async fn persistence_policies_promising_more_copies_than_a_broker_keeps_are_refused_with_400() {
    let app = TestApp::standalone().await;
    ok(app.put(&format!("{TOPIC}/copies"), None).await);
    let quorum = |e: i32, w: i32, a: i32| {
        json!({"bookkeeperEnsemble": e, "bookkeeperWriteQuorum": w, "bookkeeperAckQuorum": a,
               "managedLedgerMaxMarkDeleteRate": 1.0})
    };
    for (body, says) in [
        (quorum(2, 2, 2), "Bookkeeper-Ensemble must be <= 1"),
        (quorum(3, 2, 1), "Bookkeeper-Ensemble must be <= 1"),
        (quorum(1, 1, 0), "Bookkeeper-AckQuorum must be <= 1 and > 0"),
        (quorum(0, 0, 0), "Bookkeeper-Ensemble must be <= 1 and > 0"),
        (
            json!({"bookkeeperEnsemble": 1, "bookkeeperWriteQuorum": 1, "bookkeeperAckQuorum": 1,
                "managedLedgerMaxMarkDeleteRate": -1.0}),
            "managedLedgerMaxMarkDeleteRate",
        ),
    ] {
        for path in [format!("{NS}/persistence"), format!("{TOPIC}/copies/persistence")] {
            let (s, reply) = app.post(&path, Some(body.clone())).await;
            assert_eq!(s, 400, "{path} {body}: {reply}");
            let reason = reply["reason"].as_str().unwrap_or_default();
            assert!(reason.contains(says), "{path} {body}: {reason}");
        }
    }
    let (_, reply) = app.post(&format!("{NS}/persistence"), Some(quorum(2, 2, 2))).await;
    assert!(reply["reason"].as_str().unwrap_or_default().contains("keeps one copy"), "the reason says why: {reply}");
    assert_eq!(ok(app.get(&format!("{NS}/persistence")).await), Value::Null, "nothing was stored");
    assert_eq!(ok(app.get(&format!("{TOPIC}/copies/persistence")).await), Value::Null, "nothing was stored");
    assert_eq!(ok(app.get(&format!("{TOPIC}/copies/persistence?applied=true")).await), persistence(0.0));
}

/// (topic path, namespace path, stats field, namespace value, topic value, broker default).
fn topic_table() -> Vec<(&'static str, &'static str, &'static str, Value, Value, Value)> {
    vec![
        ("maxProducers", "maxProducersPerTopic", "maxProducersPerTopic", json!(5), json!(2), json!(0)),
        ("maxConsumers", "maxConsumersPerTopic", "maxConsumersPerTopic", json!(5), json!(2), json!(0)),
        (
            "maxConsumersPerSubscription",
            "maxConsumersPerSubscription",
            "maxConsumersPerSubscription",
            json!(5),
            json!(2),
            json!(0),
        ),
        (
            "maxSubscriptionsPerTopic",
            "maxSubscriptionsPerTopic",
            "maxSubscriptionsPerTopic",
            json!(5),
            json!(2),
            json!(0),
        ),
        (
            "maxUnackedMessagesOnConsumer",
            "maxUnackedMessagesPerConsumer",
            "maxUnackedMessagesPerConsumer",
            json!(500),
            json!(20),
            json!(50_000),
        ),
        (
            "maxUnackedMessagesOnSubscription",
            "maxUnackedMessagesPerSubscription",
            "maxUnackedMessagesPerSubscription",
            json!(500),
            json!(20),
            json!(50_000),
        ),
        (
            "publishRate",
            "publishRate",
            "publishRate",
            json!({"publishThrottlingRateInMsg": 100, "publishThrottlingRateInByte": 0}),
            json!({"publishThrottlingRateInMsg": 10, "publishThrottlingRateInByte": 1024}),
            json!({"publishThrottlingRateInMsg": 0, "publishThrottlingRateInByte": 0}),
        ),
        (
            "subscribeRate",
            "subscribeRate",
            "subscribeRate",
            json!({"subscribeThrottlingRatePerConsumer": 10, "ratePeriodInSecond": 30}),
            json!({"subscribeThrottlingRatePerConsumer": 1, "ratePeriodInSecond": 10}),
            json!({"subscribeThrottlingRatePerConsumer": 0, "ratePeriodInSecond": 30}),
        ),
        (
            "autoSubscriptionCreation",
            "autoSubscriptionCreation",
            "autoSubscriptionCreation",
            json!({"allowAutoSubscriptionCreation": false}),
            json!({"allowAutoSubscriptionCreation": true}),
            json!({"allowAutoSubscriptionCreation": true}),
        ),
        (
            "subscriptionTypesEnabled",
            "subscriptionTypesEnabled",
            "subscriptionTypesEnabled",
            json!(["Shared"]),
            json!(["Exclusive", "Failover"]),
            json!(["Exclusive", "Shared", "Failover", "Key_Shared"]),
        ),
        (
            "inactiveTopicPolicies",
            "inactiveTopicPolicies",
            "inactiveTopicPolicies",
            json!({"inactiveTopicDeleteMode": "delete_when_no_subscriptions", "maxInactiveDurationSeconds": 600,
                   "deleteWhileInactive": true}),
            json!({"inactiveTopicDeleteMode": "delete_when_subscriptions_caught_up",
                   "maxInactiveDurationSeconds": 60, "deleteWhileInactive": false}),
            json!({"inactiveTopicDeleteMode": "delete_when_no_subscriptions", "maxInactiveDurationSeconds": 60,
                   "deleteWhileInactive": false}),
        ),
        (
            "delayedDelivery",
            "delayedDelivery",
            "delayedDelivery",
            json!({"tickTime": 1000, "active": false}),
            json!({"tickTime": 1000, "active": true, "maxDeliveryDelayInMillis": 5000}),
            json!({"tickTime": 1000, "active": true}),
        ),
        (
            "retention",
            "retention",
            "retentionPolicies",
            json!({"retentionTimeInMinutes": 60, "retentionSizeInMB": -1}),
            json!({"retentionTimeInMinutes": 5, "retentionSizeInMB": 10}),
            json!({"retentionTimeInMinutes": 0, "retentionSizeInMB": 0}),
        ),
        ("messageTTL", "messageTTL", "messageTTLInSeconds", json!(600), json!(5), json!(0)),
        ("persistence", "persistence", "persistence", persistence(2.0), persistence(0.5), persistence(0.0)),
    ]
}

/// Sets a topic-level policy as Pulsar's admin does: a JSON body, except the TTL, which is a
/// `messageTTL` query parameter.
async fn set_topic_policy(app: &TestApp, topic: &str, path: &str, value: &Value) -> (reqwest::StatusCode, Value) {
    if path == "messageTTL" {
        app.post(&format!("{TOPIC}/{topic}/messageTTL?messageTTL={value}"), None).await
    } else {
        app.post(&format!("{TOPIC}/{topic}/{path}"), Some(value.clone())).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_policies_override_the_namespace_which_overrides_the_broker() {
    let (app, cfg) = pg_broker().await;
    ok(app.put(&format!("{TOPIC}/levels"), None).await);
    let applied = |path: &str| format!("{TOPIC}/levels/{path}?applied=true");
    let level = |stats: &Value, field: &str| stats["appliedPolicies"][field]["level"].clone();

    for (path, ns_path, field, ns_value, topic_value, broker) in topic_table() {
        assert_eq!(ok(app.get(&format!("{TOPIC}/levels/{path}")).await), unset(path), "{path}: no own value at first");
        assert_eq!(ok(app.get(&applied(path)).await), broker, "{path}: the broker's default applies");
        assert_eq!(app.post(&format!("{NS}/{ns_path}"), Some(ns_value.clone())).await.0, 204);
        assert_eq!(ok(app.get(&applied(path)).await), ns_value, "{path}: the namespace's value applies");
        let (s, body) = set_topic_policy(&app, "levels", path, &topic_value).await;
        assert_eq!(s, 204, "POST {path}: {body}");
        assert_eq!(ok(app.get(&format!("{TOPIC}/levels/{path}")).await), topic_value, "{path}: own value");
        assert_eq!(ok(app.get(&applied(path)).await), topic_value, "{path}: the topic's value applies");
        let stats = ok(app.get(&format!("{TOPIC}/levels/stats")).await);
        assert_eq!(level(&stats, field), "topic", "{path}: stats name the level: {}", stats["appliedPolicies"]);
        assert_eq!(stats["appliedPolicies"][field]["value"], topic_value);
    }

    // Topic-level policies are stored with the topic: a restart keeps them.
    let app = restart(app, &cfg).await;
    for (path, ns_path, field, ns_value, topic_value, broker) in topic_table() {
        assert_eq!(ok(app.get(&applied(path)).await), topic_value, "{path}: kept across the restart");
        assert_eq!(app.delete(&format!("{TOPIC}/levels/{path}")).await.0, 204, "DELETE {path}");
        assert_eq!(ok(app.get(&applied(path)).await), ns_value, "{path}: back to the namespace's value");
        let stats = ok(app.get(&format!("{TOPIC}/levels/stats")).await);
        assert_eq!(level(&stats, field), "namespace", "{path}");
        assert_eq!(app.delete(&format!("{NS}/{ns_path}")).await.0, 204);
        assert_eq!(ok(app.get(&applied(path)).await), broker, "{path}: back to the broker's default");
    }
    let all = ok(app.get(&format!("{TOPIC}/levels/appliedPolicies")).await);
    assert_eq!(all["maxProducersPerTopic"], json!({"value": 0, "level": "broker"}), "{all}");
}

#[tokio::test]
async fn topic_policies_of_a_missing_topic_are_404_and_a_partition_names_its_topic() {
    let app = TestApp::standalone().await;
    err(app.get(&format!("{TOPIC}/missing/maxProducers")).await, 404);
    err(app.post(&format!("{TOPIC}/missing/maxProducers"), Some(json!(1))).await, 404);
    ok(app.put(&format!("{TOPIC}/parted/partitions"), Some(json!(2))).await);
    assert_eq!(app.post(&format!("{TOPIC}/parted-partition-1/maxProducers"), Some(json!(3))).await.0, 204);
    assert_eq!(ok(app.get(&format!("{TOPIC}/parted/maxProducers")).await), json!(3));
    err(app.post(&format!("{TOPIC}/parted/maxProducers"), Some(json!(-2))).await, 412);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_max_message_size_is_bounded_by_the_broker_and_kept_across_a_restart() {
    let (app, cfg) = pg_broker().await;
    ok(app.put(&format!("{TOPIC}/sized"), None).await);
    let broker = cfg.broker.max_message_bytes as i64;
    let path = format!("{TOPIC}/sized/maxMessageSize");
    assert_eq!(ok(app.get(&path).await), Value::Null, "no own value at first");
    assert_eq!(ok(app.get(&format!("{path}?applied=true")).await), json!(broker), "the broker's applies");
    err(app.post(&path, Some(json!(broker + 1))).await, 412);
    err(app.post(&path, Some(json!(-1))).await, 412);
    assert_eq!(app.post(&path, Some(json!(2048))).await.0, 204);
    let stats = ok(app.get(&format!("{TOPIC}/sized/stats")).await);
    assert_eq!(stats["appliedPolicies"]["maxMessageSize"], json!({"value": 2048, "level": "topic"}));

    let app = restart(app, &cfg).await;
    assert_eq!(ok(app.get(&path).await), json!(2048), "kept across the restart");
    assert_eq!(app.delete(&path).await.0, 204);
    assert_eq!(ok(app.get(&format!("{path}?applied=true")).await), json!(broker));
    // Invalid TTL and retention are refused at the topic level as at the namespace's.
    err(app.post(&format!("{TOPIC}/sized/messageTTL?messageTTL=-1"), None).await, 412);
    err(
        app.post(
            &format!("{TOPIC}/sized/retention"),
            Some(json!({"retentionTimeInMinutes": -1, "retentionSizeInMB": 0})),
        )
        .await,
        412,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_backlog_quotas_offload_policies_and_subscription_rates_override_and_are_kept() {
    let (app, cfg) = pg_broker().await;
    ok(app.put(&format!("{TOPIC}/own"), None).await);
    let t = |p: &str| format!("{TOPIC}/own/{p}");
    let level = |stats: &Value, field: &str| stats["appliedPolicies"][field]["level"].clone();

    // Backlog quotas, per type: the topic's wins, the namespace's other type still applies.
    let ns_size = json!({"limitSize": 1_000_000, "limitTime": -1, "policy": "producer_request_hold"});
    let ns_age = json!({"limitSize": -1, "limitTime": 600, "policy": "producer_exception"});
    let topic_size = json!({"limitSize": 2048, "limitTime": -1, "policy": "producer_exception"});
    let quota = |kind: &str| format!("{NS}/backlogQuota?backlogQuotaType={kind}");
    assert_eq!(app.post(&quota("destination_storage"), Some(ns_size)).await.0, 204);
    assert_eq!(app.post(&quota("message_age"), Some(ns_age.clone())).await.0, 204);
    assert_eq!(ok(app.get(&t("backlogQuotaMap")).await), json!({}), "no own quota at first");
    let (s, body) = app.post(&t("backlogQuota?backlogQuotaType=destination_storage"), Some(topic_size.clone())).await;
    assert_eq!(s, 204, "{body}");
    assert_eq!(ok(app.get(&t("backlogQuotaMap")).await), json!({"destination_storage": topic_size}));
    let both = json!({"destination_storage": topic_size, "message_age": ns_age});
    assert_eq!(ok(app.get(&t("backlogQuotaMap?applied=true")).await), both);

    // Offload policies: the fields the topic sets win, the others come from the namespace.
    let offload =
        json!({"managedLedgerOffloadThresholdInBytes": 1024, "managedLedgerOffloadDeletionLagInMillis": 5000});
    assert_eq!(ok(app.get(&t("offloadPolicies")).await), Value::Null);
    assert_eq!(app.post(&t("offloadPolicies"), Some(offload.clone())).await.0, 204);
    assert_eq!(ok(app.get(&t("offloadPolicies")).await), offload);
    let applied = ok(app.get(&t("offloadPolicies?applied=true")).await);
    assert_eq!(applied["managedLedgerOffloadThresholdInBytes"], 1024, "{applied}");
    assert_eq!(applied["managedLedgerOffloadThresholdInSeconds"], cfg.broker.offload_threshold_seconds, "{applied}");
    err(app.post(&t("offloadPolicies"), Some(json!({"managedLedgerOffloadThresholdInBytes": -2}))).await, 412);

    // One subscription's dispatch rate; the others keep the topic's.
    let rate = json!({"dispatchThrottlingRateInMsg": 5, "dispatchThrottlingRateInByte": 0,
                      "relativeToPublishRate": false, "ratePeriodInSecond": 1});
    assert_eq!(ok(app.get(&t("s1/dispatchRate")).await), Value::Null);
    assert_eq!(app.post(&t("s1/dispatchRate"), Some(rate.clone())).await.0, 204);
    assert_eq!(ok(app.get(&t("s1/dispatchRate")).await), rate);
    assert_eq!(ok(app.get(&t("s1/dispatchRate?applied=true")).await), rate);
    assert_eq!(ok(app.get(&t("s2/dispatchRate?applied=true")).await)["dispatchThrottlingRateInMsg"], 0);
    let bad = json!({"dispatchThrottlingRateInMsg": 5, "ratePeriodInSecond": 0});
    err(app.post(&t("s1/dispatchRate"), Some(bad)).await, 412);

    let stats = ok(app.get(&t("stats")).await);
    assert_eq!(level(&stats, "backlogQuotaMap"), "topic", "{}", stats["appliedPolicies"]);
    assert_eq!(level(&stats, "offloadPolicies"), "topic");

    // Stored with the topic: a restart keeps them.
    let app = restart(app, &cfg).await;
    assert_eq!(ok(app.get(&t("backlogQuotaMap?applied=true")).await), both, "kept across the restart");
    assert_eq!(ok(app.get(&t("offloadPolicies")).await), offload);
    assert_eq!(ok(app.get(&t("s1/dispatchRate")).await), rate);

    assert_eq!(app.delete(&t("backlogQuota?backlogQuotaType=destination_storage")).await.0, 204);
    let applied = ok(app.get(&t("backlogQuotaMap?applied=true")).await);
    assert_eq!(applied["destination_storage"]["limitSize"], 1_000_000, "back to the namespace's: {applied}");
    assert_eq!(app.delete(&t("offloadPolicies")).await.0, 204);
    assert_eq!(ok(app.get(&t("offloadPolicies")).await), Value::Null);
    assert_eq!(app.delete(&t("s1/dispatchRate")).await.0, 204);
    assert_eq!(ok(app.get(&t("s1/dispatchRate")).await), Value::Null);
    let stats = ok(app.get(&t("stats")).await);
    assert_eq!(level(&stats, "backlogQuotaMap"), "namespace");
    assert_eq!(level(&stats, "offloadPolicies"), "broker");
}
