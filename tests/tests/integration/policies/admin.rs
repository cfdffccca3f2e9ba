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
    ]
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
    ]
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
        let (s, body) = app.post(&format!("{TOPIC}/levels/{path}"), Some(topic_value.clone())).await;
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
