//! The Pulsar-compatible admin API (`/admin/v2`) against a real in-process broker: every
//! endpoint of the clusters, tenants, namespaces, topics and subscriptions routers, success and
//! error cases, with Pulsar's statuses and `{"reason": ...}` bodies.

use crate::common;

use common::*;
use magnetar_tests::TestApp;
use serde_json::{Value, json};
use std::collections::BTreeSet;

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array: {v}"))
        .iter()
        .map(|s| s.as_str().expect("string").to_string())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// POST with a raw (possibly malformed) body.
async fn post_raw(app: &TestApp, path: &str, body: &str) -> (reqwest::StatusCode, Value) {
    let resp = app
        .client
        .post(app.url(path))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("request");
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

// ---------------------------------------------------------------- clusters and brokers

#[tokio::test]
async fn clusters_list_is_standalone_and_unknown_cluster_returns_404() {
    let app = TestApp::standalone().await;
    assert_eq!(ok(app.get("/admin/v2/clusters").await), json!(["standalone"]));
    let cluster = ok(app.get("/admin/v2/clusters/standalone").await);
    assert!(cluster["serviceUrl"].as_str().is_some_and(|u| u.starts_with("http://")), "{cluster}");
    err(app.get("/admin/v2/clusters/nowhere").await, 404);
}

#[tokio::test]
async fn brokers_discovery_lists_this_broker_and_reports_health_ok() {
    let app = TestApp::standalone().await;
    let brokers = ok(app.get("/admin/v2/brokers/standalone").await);
    assert_eq!(brokers.as_array().map(Vec::len), Some(1), "{brokers}");
    err(app.get("/admin/v2/brokers/nowhere").await, 404);
    assert_eq!(ok(app.get("/admin/v2/brokers/health").await), json!("ok"));
    assert_eq!(ok(app.get("/admin/v2/brokers/health?topicVersion=V2").await), json!("ok"));
    let leader = ok(app.get("/admin/v2/brokers/leaderBroker").await);
    assert!(leader["serviceUrl"].as_str().is_some_and(|u| u.starts_with("http://")), "{leader}");
}

#[tokio::test]
async fn lookup_answers_broker_urls_for_existing_and_creatable_topics_and_404_otherwise() {
    let app = TestApp::standalone().await;
    create_topic(&app, "looked-up").await;
    let found = ok(app.get("/lookup/v2/topic/persistent/public/default/looked-up").await);
    assert_eq!(found["brokerUrl"], app.pulsar_url(), "{found}");
    assert_eq!(found["nativeUrl"], app.pulsar_url(), "{found}");
    assert_eq!(found["brokerUrlTls"], "", "no TLS listener: {found}");
    assert!(found["httpUrl"].as_str().is_some_and(|u| u.starts_with("http://")), "{found}");
    // A topic the first producer would create is looked up, and not created by the lookup.
    let creatable = ok(app.get("/lookup/v2/topic/persistent/public/default/not-yet").await);
    assert_eq!(creatable["brokerUrl"], app.pulsar_url(), "{creatable}");
    err(app.get("/admin/v2/persistent/public/default/not-yet/stats").await, 404);
    // Without auto-creation, and in a namespace that does not exist: 404.
    let off = json!({"allowAutoTopicCreation": false, "topicType": "non-partitioned"});
    ok(app.post("/admin/v2/namespaces/public/default/autoTopicCreation", Some(off)).await);
    err(app.get("/lookup/v2/topic/persistent/public/default/missing").await, 404);
    err(app.get("/lookup/v2/topic/persistent/public/nowhere/missing").await, 404);
}

// ---------------------------------------------------------------- tenants

#[tokio::test]
async fn tenant_crud_round_trip() {
    let app = TestApp::standalone().await;
    assert!(strings(&ok(app.get("/admin/v2/tenants").await)).contains("public"));

    let (status, _) = app
        .put("/admin/v2/tenants/acme", Some(json!({"adminRoles": ["ops"], "allowedClusters": ["standalone"]})))
        .await;
    assert_eq!(status, 204);
    let info = ok(app.get("/admin/v2/tenants/acme").await);
    assert_eq!(info["adminRoles"], json!(["ops"]));
    assert_eq!(info["allowedClusters"], json!(["standalone"]));
    assert!(strings(&ok(app.get("/admin/v2/tenants").await)).contains("acme"));

    let (status, _) = app
        .post("/admin/v2/tenants/acme", Some(json!({"adminRoles": ["ops", "dev"], "allowedClusters": ["standalone"]})))
        .await;
    assert_eq!(status, 204);
    assert_eq!(ok(app.get("/admin/v2/tenants/acme").await)["adminRoles"], json!(["ops", "dev"]));

    let (status, _) = app.delete("/admin/v2/tenants/acme").await;
    assert_eq!(status, 204);
    err(app.get("/admin/v2/tenants/acme").await, 404);
    assert!(!strings(&ok(app.get("/admin/v2/tenants").await)).contains("acme"));
}

#[tokio::test]
async fn tenant_without_body_gets_the_local_cluster() {
    let app = TestApp::standalone().await;
    let (status, _) = app.put("/admin/v2/tenants/bare", None).await;
    assert_eq!(status, 204);
    assert_eq!(ok(app.get("/admin/v2/tenants/bare").await)["allowedClusters"], json!(["standalone"]));
}

#[tokio::test]
async fn creating_an_existing_tenant_returns_409() {
    let app = TestApp::standalone().await;
    ok(app.put("/admin/v2/tenants/acme", None).await);
    err(app.put("/admin/v2/tenants/acme", None).await, 409);
    err(app.put("/admin/v2/tenants/public", None).await, 409);
}

#[tokio::test]
async fn missing_tenant_returns_404_on_get_update_and_delete() {
    let app = TestApp::standalone().await;
    err(app.get("/admin/v2/tenants/ghost").await, 404);
    err(
        app.post("/admin/v2/tenants/ghost", Some(json!({"adminRoles": [], "allowedClusters": ["standalone"]}))).await,
        404,
    );
    err(app.delete("/admin/v2/tenants/ghost").await, 404);
}

#[tokio::test]
async fn tenant_with_invalid_name_returns_412() {
    let app = TestApp::standalone().await;
    err(app.put("/admin/v2/tenants/a%20b", None).await, 412);
    err(app.put("/admin/v2/tenants/bad%2Fname", None).await, 412);
    err(app.get("/admin/v2/tenants/a%20b").await, 412);
}

#[tokio::test]
async fn tenant_with_unknown_cluster_returns_412() {
    let app = TestApp::standalone().await;
    let reason = err(app.put("/admin/v2/tenants/acme", Some(json!({"allowedClusters": ["mars"]}))).await, 412);
    assert!(reason.contains("mars"), "reason names the cluster: {reason}");
    err(app.get("/admin/v2/tenants/acme").await, 404);
    ok(app.put("/admin/v2/tenants/acme", None).await);
    err(app.post("/admin/v2/tenants/acme", Some(json!({"allowedClusters": ["mars"]}))).await, 412);
}

#[tokio::test]
async fn tenant_update_with_malformed_json_returns_400() {
    let app = TestApp::standalone().await;
    ok(app.put("/admin/v2/tenants/acme", None).await);
    err(post_raw(&app, "/admin/v2/tenants/acme", "{\"adminRoles\": [").await, 400);
}

#[tokio::test]
async fn deleting_a_tenant_with_namespaces_returns_409_unless_forced() {
    let app = TestApp::standalone().await;
    ok(app.put("/admin/v2/tenants/acme", None).await);
    ok(app.put("/admin/v2/namespaces/acme/orders", None).await);
    ok(app.put("/admin/v2/persistent/acme/orders/created", None).await);
    ok(app.post("/topics/persistent/acme/orders/created", Some(json!({"messages": [{"payload": "x"}]}))).await);

    err(app.delete("/admin/v2/tenants/acme").await, 409);
    ok(app.get("/admin/v2/namespaces/acme/orders").await);

    let (status, _) = app.delete("/admin/v2/tenants/acme?force=true").await;
    assert_eq!(status, 204);
    err(app.get("/admin/v2/tenants/acme").await, 404);
    err(app.get("/admin/v2/namespaces/acme/orders").await, 404);
    err(app.get("/admin/v2/persistent/acme/orders/created/stats").await, 404);

    // The names are free again and nothing of the old topic is left.
    ok(app.put("/admin/v2/tenants/acme", None).await);
    ok(app.put("/admin/v2/namespaces/acme/orders", None).await);
    assert_eq!(ok(app.get("/admin/v2/namespaces/acme/orders/topics").await), json!([]));
}

// ---------------------------------------------------------------- namespaces

#[tokio::test]
async fn namespace_crud_round_trip() {
    let app = TestApp::standalone().await;
    assert!(strings(&ok(app.get("/admin/v2/namespaces/public").await)).contains("public/default"));
    let (status, _) = app.put("/admin/v2/namespaces/public/orders", None).await;
    assert_eq!(status, 204);
    assert!(strings(&ok(app.get("/admin/v2/namespaces/public").await)).contains("public/orders"));
    ok(app.get("/admin/v2/namespaces/public/orders").await);

    let (status, _) = app.delete("/admin/v2/namespaces/public/orders").await;
    assert_eq!(status, 204);
    err(app.get("/admin/v2/namespaces/public/orders").await, 404);
    err(app.delete("/admin/v2/namespaces/public/orders").await, 404);
    assert!(!strings(&ok(app.get("/admin/v2/namespaces/public").await)).contains("public/orders"));
}

#[tokio::test]
async fn namespace_created_with_policies_returns_them() {
    let app = TestApp::standalone().await;
    ok(app.put("/admin/v2/namespaces/public/ttl", Some(json!({"message_ttl_in_seconds": 60}))).await);
    assert_eq!(ok(app.get("/admin/v2/namespaces/public/ttl").await)["message_ttl_in_seconds"], 60);
    err(app.put("/admin/v2/namespaces/public/badttl", Some(json!({"message_ttl_in_seconds": -5}))).await, 412);
    err(app.get("/admin/v2/namespaces/public/badttl").await, 404);
}

#[tokio::test]
async fn namespace_in_unknown_tenant_returns_404() {
    let app = TestApp::standalone().await;
    err(app.put("/admin/v2/namespaces/ghost/ns", None).await, 404);
    err(app.get("/admin/v2/namespaces/ghost").await, 404);
    err(app.get("/admin/v2/namespaces/ghost/ns").await, 404);
}

#[tokio::test]
async fn namespace_with_invalid_name_returns_412() {
    let app = TestApp::standalone().await;
    err(app.put("/admin/v2/namespaces/public/a%20b", None).await, 412);
}

#[tokio::test]
async fn creating_an_existing_namespace_returns_409() {
    let app = TestApp::standalone().await;
    err(app.put("/admin/v2/namespaces/public/default", None).await, 409);
}

#[tokio::test]
async fn deleting_a_non_empty_namespace_returns_409_unless_forced() {
    let app = TestApp::standalone().await;
    ok(app.put("/admin/v2/namespaces/public/busy", None).await);
    ok(app.put("/admin/v2/persistent/public/busy/t", None).await);
    err(app.delete("/admin/v2/namespaces/public/busy").await, 409);
    ok(app.get("/admin/v2/persistent/public/busy/t/stats").await);
    ok(app.delete("/admin/v2/namespaces/public/busy?force=true").await);
    err(app.get("/admin/v2/namespaces/public/busy").await, 404);
}

#[tokio::test]
async fn namespace_policies_use_pulsar_snake_case_shape() {
    let app = TestApp::standalone().await;
    let p = ok(app.get("/admin/v2/namespaces/public/default").await);
    assert_eq!(p["replication_clusters"], json!(["standalone"]), "{p}");
    assert!(p["auth_policies"]["namespace_auth"].is_object(), "{p}");
    assert!(p["auth_policies"]["destination_auth"].is_object(), "{p}");
    assert!(p["auth_policies"]["subscription_auth_roles"].is_object(), "{p}");
    assert!(p["bundles"]["numBundles"].is_u64(), "{p}");
    assert!(p["backlog_quota_map"].is_object(), "{p}");
    assert!(p.get("offload_threshold").is_some(), "{p}");
    assert!(p.get("subscription_auth_mode").is_some(), "{p}");
    assert!(p.get("replicationClusters").is_none() && p.get("authPolicies").is_none(), "no camelCase variants: {p}");
}

#[tokio::test]
async fn retention_can_be_set_read_and_removed() {
    let app = TestApp::standalone().await;
    let path = "/admin/v2/namespaces/public/default/retention";
    assert_eq!(ok(app.get(path).await), Value::Null, "unset retention is an empty answer");
    let (status, _) = app.post(path, Some(json!({"retentionTimeInMinutes": 60, "retentionSizeInMB": 100}))).await;
    assert_eq!(status, 204);
    assert_eq!(ok(app.get(path).await), json!({"retentionTimeInMinutes": 60, "retentionSizeInMB": 100}));
    let policies = ok(app.get("/admin/v2/namespaces/public/default").await);
    assert_eq!(policies["retention_policies"], json!({"retentionTimeInMinutes": 60, "retentionSizeInMB": 100}));
    ok(app.post(path, Some(json!({"retentionTimeInMinutes": -1, "retentionSizeInMB": -1}))).await);
    assert_eq!(ok(app.get(path).await)["retentionTimeInMinutes"], -1);
    let (status, _) = app.delete(path).await;
    assert_eq!(status, 204);
    assert_eq!(ok(app.get(path).await), Value::Null);
}

#[tokio::test]
async fn invalid_retention_returns_412_and_keeps_the_old_value() {
    let app = TestApp::standalone().await;
    let path = "/admin/v2/namespaces/public/default/retention";
    ok(app.post(path, Some(json!({"retentionTimeInMinutes": 10, "retentionSizeInMB": 10}))).await);
    err(app.post(path, Some(json!({"retentionTimeInMinutes": -2, "retentionSizeInMB": 10}))).await, 412);
    err(app.post(path, Some(json!({"retentionTimeInMinutes": 10, "retentionSizeInMB": -7}))).await, 412);
    err(app.post(path, Some(json!({"retentionTimeInMinutes": 0, "retentionSizeInMB": -1}))).await, 412);
    err(app.post(path, Some(json!({"retentionTimeInMinutes": -1, "retentionSizeInMB": 0}))).await, 412);
    assert_eq!(ok(app.get(path).await), json!({"retentionTimeInMinutes": 10, "retentionSizeInMB": 10}));
}

#[tokio::test]
async fn retention_with_malformed_json_returns_400() {
    let app = TestApp::standalone().await;
    let path = "/admin/v2/namespaces/public/default/retention";
    err(post_raw(&app, path, "{\"retentionTimeInMinutes\": ").await, 400);
    err(post_raw(&app, path, "\"sixty\"").await, 400);
}

#[tokio::test]
async fn retention_of_unknown_namespace_returns_404() {
    let app = TestApp::standalone().await;
    let path = "/admin/v2/namespaces/public/ghost/retention";
    err(app.get(path).await, 404);
    err(app.post(path, Some(json!({"retentionTimeInMinutes": 1, "retentionSizeInMB": 1}))).await, 404);
    err(app.delete(path).await, 404);
}

#[tokio::test]
async fn message_ttl_takes_a_bare_integer() {
    let app = TestApp::standalone().await;
    let path = "/admin/v2/namespaces/public/default/messageTTL";
    assert_eq!(ok(app.get(path).await), Value::Null);
    let (status, _) = app.post(path, Some(json!(3600))).await;
    assert_eq!(status, 204);
    assert_eq!(ok(app.get(path).await), json!(3600));
    assert_eq!(ok(app.get("/admin/v2/namespaces/public/default").await)["message_ttl_in_seconds"], 3600);
    let (status, _) = app.delete(path).await;
    assert_eq!(status, 204);
    assert_eq!(ok(app.get(path).await), Value::Null);
    err(app.get("/admin/v2/namespaces/public/ghost/messageTTL").await, 404);
    err(app.post("/admin/v2/namespaces/public/ghost/messageTTL", Some(json!(5))).await, 404);
}

#[tokio::test]
async fn negative_message_ttl_returns_412_and_malformed_returns_400() {
    let app = TestApp::standalone().await;
    let path = "/admin/v2/namespaces/public/default/messageTTL";
    err(app.post(path, Some(json!(-1))).await, 412);
    err(app.post(path, Some(json!(i64::from(i32::MAX) + 1))).await, 412);
    err(post_raw(&app, path, "ten").await, 400);
    err(post_raw(&app, path, "").await, 400);
    assert_eq!(ok(app.get(path).await), Value::Null);
}

// ---------------------------------------------------------------- topics

#[tokio::test]
async fn non_partitioned_topic_is_created_once() {
    let app = TestApp::standalone().await;
    let (status, _) = app.put(&admin_topic("plain"), None).await;
    assert_eq!(status, 204);
    err(app.put(&admin_topic("plain"), None).await, 409);
    err(app.put(&format!("{}/partitions", admin_topic("plain")), Some(json!(2))).await, 409);
    assert_eq!(ok(app.get(&format!("{}/partitions", admin_topic("plain"))).await)["partitions"], 0);
}

#[tokio::test]
async fn topic_in_unknown_namespace_returns_404() {
    let app = TestApp::standalone().await;
    err(app.put("/admin/v2/persistent/public/ghost/t", None).await, 404);
    err(app.put("/admin/v2/persistent/public/ghost/t/partitions", Some(json!(2))).await, 404);
    err(app.put("/admin/v2/persistent/ghost/ns/t", None).await, 404);
    err(app.get("/admin/v2/persistent/public/ghost").await, 404);
    err(app.get("/admin/v2/namespaces/public/ghost/topics").await, 404);
}

#[tokio::test]
async fn topic_name_with_partition_suffix_returns_412() {
    let app = TestApp::standalone().await;
    err(app.put(&admin_topic("orders-partition-3"), None).await, 412);
    err(app.put(&format!("{}/partitions", admin_topic("orders-partition-3")), Some(json!(2))).await, 412);
}

#[tokio::test]
async fn partitioned_topic_accepts_a_bare_count_or_an_object() {
    let app = TestApp::standalone().await;
    let (status, _) = app.put(&format!("{}/partitions", admin_topic("bare")), Some(json!(3))).await;
    assert_eq!(status, 204);
    let (status, _) = app.put(&format!("{}/partitions", admin_topic("obj")), Some(json!({"partitions": 2}))).await;
    assert_eq!(status, 204);
    assert_eq!(ok(app.get(&format!("{}/partitions", admin_topic("bare"))).await)["partitions"], 3);
    assert_eq!(ok(app.get(&format!("{}/partitions", admin_topic("obj"))).await)["partitions"], 2);
    err(app.put(&format!("{}/partitions", admin_topic("bare")), Some(json!(3))).await, 409);
    err(app.put(&admin_topic("bare"), None).await, 409);
}

#[tokio::test]
async fn partitioned_topic_with_zero_or_negative_partitions_returns_406() {
    let app = TestApp::standalone().await;
    err(app.put(&format!("{}/partitions", admin_topic("zero")), Some(json!(0))).await, 406);
    err(app.put(&format!("{}/partitions", admin_topic("neg")), Some(json!(-2))).await, 406);
    err(app.put(&format!("{}/partitions", admin_topic("negobj")), Some(json!({"partitions": -1}))).await, 406);
    err(app.put(&format!("{}/partitions", admin_topic("text")), Some(json!("three"))).await, 400);
    assert_eq!(ok(app.get(&format!("{}/partitions", admin_topic("zero"))).await)["partitions"], 0);
}

#[tokio::test]
async fn partitions_of_a_missing_topic_is_zero() {
    let app = TestApp::standalone().await;
    assert_eq!(ok(app.get(&format!("{}/partitions", admin_topic("missing"))).await)["partitions"], 0);
}

#[tokio::test]
async fn partitions_can_grow_but_not_shrink() {
    let app = TestApp::standalone().await;
    create_partitioned(&app, "grow", 2).await;
    let (status, _) = app.post(&format!("{}/partitions", admin_topic("grow")), Some(json!(4))).await;
    assert_eq!(status, 204);
    assert_eq!(ok(app.get(&format!("{}/partitions", admin_topic("grow"))).await)["partitions"], 4);
    err(app.post(&format!("{}/partitions", admin_topic("grow")), Some(json!(3))).await, 409);
    err(app.post(&format!("{}/partitions", admin_topic("grow")), Some(json!(0))).await, 406);
    err(app.post(&format!("{}/partitions", admin_topic("missing")), Some(json!(4))).await, 404);
    assert_eq!(ok(app.get(&format!("{}/partitions", admin_topic("grow"))).await)["partitions"], 4);
    // The new partitions take messages.
    let ids = ok(app
        .post(&format!("{}/partitions/3", rest_topic("grow")), Some(json!({"messages": [{"payload": "p3"}]})))
        .await);
    assert!(ids["messagePublishResults"][0]["messageId"].as_str().is_some_and(|id| id.ends_with(":3")), "{ids}");
}

#[tokio::test]
async fn topic_lists_show_partitions_and_partitioned_topics() {
    let app = TestApp::standalone().await;
    create_topic(&app, "plain").await;
    create_partitioned(&app, "parted", 2).await;
    let all = set(&[
        "persistent://public/default/plain",
        "persistent://public/default/parted-partition-0",
        "persistent://public/default/parted-partition-1",
    ]);
    assert_eq!(strings(&ok(app.get("/admin/v2/persistent/public/default").await)), all);
    assert_eq!(strings(&ok(app.get("/admin/v2/namespaces/public/default/topics").await)), all);
    assert_eq!(
        ok(app.get("/admin/v2/persistent/public/default/partitioned").await),
        json!(["persistent://public/default/parted"])
    );
}

#[tokio::test]
async fn deleting_a_topic_needs_the_endpoint_of_its_kind() {
    let app = TestApp::standalone().await;
    create_topic(&app, "plain").await;
    create_partitioned(&app, "parted", 2).await;
    let reason = err(app.delete(&admin_topic("parted")).await, 409);
    assert!(reason.contains("partitions"), "reason names the right endpoint: {reason}");
    err(app.delete(&format!("{}/partitions", admin_topic("plain"))).await, 404);

    let (status, _) = app.delete(&admin_topic("plain")).await;
    assert_eq!(status, 204);
    let (status, _) = app.delete(&format!("{}/partitions", admin_topic("parted"))).await;
    assert_eq!(status, 204);
    assert_eq!(ok(app.get("/admin/v2/persistent/public/default").await), json!([]));
    assert_eq!(ok(app.get("/admin/v2/persistent/public/default/partitioned").await), json!([]));
    err(app.delete(&admin_topic("plain")).await, 404);
    err(app.delete(&format!("{}/partitions", admin_topic("parted"))).await, 404);
    err(app.get(&format!("{}/stats", admin_topic("plain"))).await, 404);
}

#[tokio::test]
async fn deleting_a_topic_with_messages_in_flight_needs_force() {
    let app = TestApp::standalone().await;
    create_topic(&app, "busy").await;
    produce_payloads(&app, "busy", &["a".to_string()]).await;
    assert_eq!(pull(&app, "busy", "s", json!({"initialPosition": "earliest", "waitMs": 2000})).await.len(), 1);
    err(app.delete(&admin_topic("busy")).await, 412);
    ok(app.delete(&format!("{}?force=true", admin_topic("busy"))).await);
}

#[tokio::test]
async fn recreated_topic_is_empty() {
    let app = TestApp::standalone().await;
    create_topic(&app, "again").await;
    produce_payloads(&app, "again", &(0..5).map(|i| format!("old-{i}")).collect::<Vec<_>>()).await;
    ok(app.delete(&admin_topic("again")).await);
    create_topic(&app, "again").await;

    let stats = ok(app.get(&format!("{}/stats", admin_topic("again"))).await);
    assert_eq!(stats["msgInCounter"], 0, "{stats}");
    assert_eq!(stats["subscriptions"], json!({}), "{stats}");
    assert_eq!(ok(app.get(&format!("{}/lastMessageId", admin_topic("again"))).await)["entryId"], -1);
    let got = pull(&app, "again", "s", json!({"initialPosition": "earliest", "waitMs": 300})).await;
    assert!(got.is_empty(), "old messages must be gone: {got:?}");

    // Same for a partitioned topic recreated with the same name.
    create_partitioned(&app, "parted", 2).await;
    produce_payloads(&app, "parted", &(0..4).map(|i| format!("old-{i}")).collect::<Vec<_>>()).await;
    ok(app.delete(&format!("{}/partitions", admin_topic("parted"))).await);
    create_partitioned(&app, "parted", 2).await;
    let got = pull(&app, "parted", "s", json!({"initialPosition": "earliest", "waitMs": 300})).await;
    assert!(got.is_empty(), "old messages must be gone: {got:?}");
}

// ---------------------------------------------------------------- stats

#[tokio::test]
async fn topic_stats_count_produced_messages_and_backlog() {
    let app = TestApp::standalone().await;
    create_topic(&app, "st").await;
    ok(app.put(&format!("{}/subscription/audit", admin_topic("st")), None).await);
    let payloads: Vec<String> = (0..10).map(|i| format!("message-{i}")).collect();
    let ids = produce_payloads(&app, "st", &payloads).await;
    let bytes: usize = payloads.iter().map(String::len).sum();

    let stats = ok(app.get(&format!("{}/stats", admin_topic("st"))).await);
    assert_eq!(stats["msgInCounter"], 10, "{stats}");
    assert_eq!(stats["bytesInCounter"], bytes as u64, "{stats}");
    assert!(stats["storageSize"].as_u64().is_some_and(|s| s > 0), "{stats}");
    assert_eq!(stats["subscriptions"]["audit"]["msgBacklog"], 10, "{stats}");
    assert!(stats["publishers"].is_array(), "{stats}");

    let internal = ok(app.get(&format!("{}/internalStats", admin_topic("st"))).await);
    let ledgers = internal["ledgers"].as_array().unwrap_or_else(|| panic!("ledgers: {internal}"));
    assert!(!ledgers.is_empty(), "{internal}");
    assert!(ledgers.iter().all(|l| l["ledgerId"].is_u64() && l["entries"].is_u64()), "{internal}");
    assert_eq!(internal["entriesAddedCounter"], 10, "{internal}");
    assert!(internal["cursors"]["audit"]["markDeletePosition"].is_string(), "{internal}");
    assert!(internal["cursors"]["audit"]["readPosition"].is_string(), "{internal}");

    let last = ok(app.get(&format!("{}/lastMessageId", admin_topic("st"))).await);
    let (l, e, p) = parse_id(ids.last().expect("ids"));
    assert_eq!(last, json!({"ledgerId": l, "entryId": e, "partitionIndex": p}));
}

#[tokio::test]
async fn stats_of_a_missing_topic_return_404() {
    let app = TestApp::standalone().await;
    for what in
        ["stats", "partitioned-stats", "internalStats", "partitioned-internalStats", "lastMessageId", "subscriptions"]
    {
        err(app.get(&format!("{}/{what}", admin_topic("ghost"))).await, 404);
    }
}

#[tokio::test]
async fn partitioned_stats_report_metadata_and_each_partition() {
    let app = TestApp::standalone().await;
    create_partitioned(&app, "ps", 4).await;
    ok(app.put(&format!("{}/subscription/audit", admin_topic("ps")), None).await);
    produce_payloads(&app, "ps", &(0..20).map(|i| format!("m{i}")).collect::<Vec<_>>()).await;

    let stats = ok(app.get(&format!("{}/partitioned-stats", admin_topic("ps"))).await);
    assert_eq!(stats["metadata"]["partitions"], 4, "{stats}");
    assert_eq!(stats["msgInCounter"], 20, "{stats}");
    assert_eq!(stats["subscriptions"]["audit"]["msgBacklog"], 20, "{stats}");
    let parts = stats["partitions"].as_object().unwrap_or_else(|| panic!("partitions map: {stats}"));
    let names: BTreeSet<String> = parts.keys().cloned().collect();
    assert_eq!(names, (0..4).map(|i| format!("persistent://public/default/ps-partition-{i}")).collect());
    let sum: u64 = parts.values().map(|p| p["msgInCounter"].as_u64().expect("msgInCounter")).sum();
    assert_eq!(sum, 20);

    // Decision: plain stats of a partitioned topic are its totals.
    assert_eq!(ok(app.get(&format!("{}/stats", admin_topic("ps"))).await)["msgInCounter"], 20);

    let internal = ok(app.get(&format!("{}/partitioned-internalStats", admin_topic("ps"))).await);
    assert_eq!(internal["metadata"]["partitions"], 4, "{internal}");
    assert_eq!(internal["partitions"].as_object().map(|m| m.len()), Some(4), "{internal}");

    // One partition by its own name.
    let p0 = ok(app.get(&format!("{}/stats", admin_topic("ps-partition-0"))).await);
    assert_eq!(p0["msgInCounter"], parts["persistent://public/default/ps-partition-0"]["msgInCounter"]);
}

#[tokio::test]
async fn partitioned_stats_of_a_non_partitioned_topic_have_zero_partitions() {
    let app = TestApp::standalone().await;
    create_topic(&app, "plain").await;
    produce_payloads(&app, "plain", &["x".to_string()]).await;
    let stats = ok(app.get(&format!("{}/partitioned-stats", admin_topic("plain"))).await);
    assert_eq!(stats["metadata"]["partitions"], 0, "{stats}");
    assert_eq!(stats["msgInCounter"], 1, "{stats}");
}

#[tokio::test]
async fn single_partition_operations_on_a_partitioned_base_topic_return_405() {
    let app = TestApp::standalone().await;
    create_partitioned(&app, "pp", 2).await;
    ok(app.put(&format!("{}/subscription/s", admin_topic("pp")), Some(json!({"ledgerId": -1, "entryId": -1}))).await);
    produce_payloads(&app, "pp", &["a".to_string(), "b".to_string()]).await;
    err(app.get(&format!("{}/subscription/s/position/1", admin_topic("pp"))).await, 405);
    err(app.post(&format!("{}/subscription/s/skip/1", admin_topic("pp")), None).await, 405);
    err(app.get(&format!("{}/lastMessageId", admin_topic("pp"))).await, 405);
    err(app.get(&format!("{}/internalStats", admin_topic("pp"))).await, 405);
    // Naming one partition works.
    ok(app.get(&format!("{}/lastMessageId", admin_topic("pp-partition-0"))).await);
    ok(app.get(&format!("{}/internalStats", admin_topic("pp-partition-1"))).await);
}

// ---------------------------------------------------------------- subscriptions

#[tokio::test]
async fn subscription_starts_at_latest_earliest_or_a_message_id() {
    let app = TestApp::standalone().await;
    create_topic(&app, "subs").await;
    let ids = produce_payloads(&app, "subs", &(0..5).map(|i| format!("m{i}")).collect::<Vec<_>>()).await;
    let sub = |name: &str| format!("{}/subscription/{name}", admin_topic("subs"));

    let (status, _) = app.put(&sub("latest"), None).await;
    assert_eq!(status, 204);
    ok(app.put(&sub("earliest"), Some(json!({"ledgerId": -1, "entryId": -1}))).await);
    let (l, e, _) = parse_id(&ids[2]);
    ok(app.put(&sub("at-third"), Some(json!({"ledgerId": l, "entryId": e}))).await);

    assert_eq!(backlog(&app, "subs", "latest").await, 0);
    assert_eq!(backlog(&app, "subs", "earliest").await, 5);
    assert_eq!(backlog(&app, "subs", "at-third").await, 3, "a subscription at a message id starts with that message");
    let got = pull(&app, "subs", "at-third", json!({"waitMs": 2000, "maxMessages": 10})).await;
    assert_eq!(payload_text(&got[0]), "m2");

    assert_eq!(
        strings(&ok(app.get(&format!("{}/subscriptions", admin_topic("subs"))).await)),
        set(&["at-third", "earliest", "latest"])
    );
}

#[tokio::test]
async fn creating_an_existing_subscription_returns_409() {
    let app = TestApp::standalone().await;
    create_topic(&app, "dup").await;
    ok(app.put(&format!("{}/subscription/s", admin_topic("dup")), None).await);
    err(app.put(&format!("{}/subscription/s", admin_topic("dup")), None).await, 409);
}

#[tokio::test]
async fn subscription_on_a_missing_topic_returns_404() {
    let app = TestApp::standalone().await;
    err(app.put(&format!("{}/subscription/s", admin_topic("ghost")), None).await, 404);
    err(app.get(&format!("{}/subscriptions", admin_topic("ghost"))).await, 404);
}

#[tokio::test]
async fn subscription_with_malformed_position_returns_400() {
    let app = TestApp::standalone().await;
    create_topic(&app, "bad").await;
    let path = format!("{}/subscription/s", admin_topic("bad"));
    let resp = app.client.put(app.url(&path)).body("{\"ledgerId\":").send().await.expect("request");
    assert_eq!(resp.status(), 400);
    err(app.get(&format!("{}/subscription/s/position/1", admin_topic("bad"))).await, 404);
}

#[tokio::test]
async fn deleting_a_subscription_removes_it_and_a_missing_one_returns_404() {
    let app = TestApp::standalone().await;
    create_topic(&app, "del").await;
    ok(app.put(&format!("{}/subscription/s", admin_topic("del")), None).await);
    let (status, _) = app.delete(&format!("{}/subscription/s", admin_topic("del"))).await;
    assert_eq!(status, 204);
    assert_eq!(ok(app.get(&format!("{}/subscriptions", admin_topic("del"))).await), json!([]));
    err(app.delete(&format!("{}/subscription/s", admin_topic("del"))).await, 404);
    err(app.delete(&format!("{}/subscription/s", admin_topic("ghost"))).await, 404);
}

#[tokio::test]
async fn skip_and_skip_all_reduce_the_backlog() {
    let app = TestApp::standalone().await;
    create_topic(&app, "skip").await;
    let sub = format!("{}/subscription/s", admin_topic("skip"));
    ok(app.put(&sub, Some(json!({"ledgerId": -1, "entryId": -1}))).await);
    produce_payloads(&app, "skip", &(0..10).map(|i| format!("m{i}")).collect::<Vec<_>>()).await;
    assert_eq!(backlog(&app, "skip", "s").await, 10);

    let (status, _) = app.post(&format!("{sub}/skip/3"), None).await;
    assert_eq!(status, 204);
    assert_eq!(backlog(&app, "skip", "s").await, 7);
    let got = pull(&app, "skip", "s", json!({"waitMs": 2000, "maxMessages": 1})).await;
    assert_eq!(payload_text(&got[0]), "m3", "skipped messages are not delivered");

    let (status, _) = app.post(&format!("{sub}/skip_all"), None).await;
    assert_eq!(status, 204);
    assert_eq!(backlog(&app, "skip", "s").await, 0);

    err(app.post(&format!("{sub}/skip/many"), None).await, 400);
    err(app.post(&format!("{}/subscription/ghost/skip/1", admin_topic("skip")), None).await, 404);
    err(app.post(&format!("{}/subscription/ghost/skip_all", admin_topic("skip")), None).await, 404);
}

#[tokio::test]
async fn reset_cursor_to_a_timestamp_moves_the_backlog_back() {
    let app = TestApp::standalone().await;
    create_topic(&app, "reset").await;
    let sub = format!("{}/subscription/s", admin_topic("reset"));
    ok(app.put(&sub, None).await);
    let before = now_ms() - 1;
    produce_payloads(&app, "reset", &(0..10).map(|i| format!("m{i}")).collect::<Vec<_>>()).await;
    ok(app.post(&format!("{sub}/skip_all"), None).await);
    assert_eq!(backlog(&app, "reset", "s").await, 0);

    let (status, _) = app.post(&format!("{sub}/resetcursor/{before}"), None).await;
    assert_eq!(status, 204);
    assert_eq!(backlog(&app, "reset", "s").await, 10);

    let future = now_ms() + 3_600_000;
    ok(app.post(&format!("{sub}/resetcursor/{future}"), None).await);
    assert_eq!(backlog(&app, "reset", "s").await, 0);

    err(app.post(&format!("{sub}/resetcursor/yesterday"), None).await, 400);
    err(app.post(&format!("{}/subscription/ghost/resetcursor/{before}", admin_topic("reset")), None).await, 404);
}

#[tokio::test]
async fn reset_cursor_to_a_message_id_moves_the_backlog_back() {
    let app = TestApp::standalone().await;
    create_topic(&app, "resetid").await;
    let sub = format!("{}/subscription/s", admin_topic("resetid"));
    ok(app.put(&sub, None).await);
    let ids = produce_payloads(&app, "resetid", &(0..10).map(|i| format!("m{i}")).collect::<Vec<_>>()).await;
    ok(app.post(&format!("{sub}/skip_all"), None).await);

    let (l, e, _) = parse_id(&ids[4]);
    let (status, _) = app.post(&format!("{sub}/resetcursor"), Some(json!({"ledgerId": l, "entryId": e}))).await;
    assert_eq!(status, 204);
    assert_eq!(backlog(&app, "resetid", "s").await, 6, "reset includes the message itself");
    let got = pull(&app, "resetid", "s", json!({"waitMs": 2000, "maxMessages": 1})).await;
    assert_eq!(payload_text(&got[0]), "m4");

    ok(app.post(&format!("{sub}/resetcursor"), Some(json!({"ledgerId": l, "entryId": e, "isExcluded": true}))).await);
    assert_eq!(backlog(&app, "resetid", "s").await, 5, "isExcluded starts after the message");

    err(app.post(&format!("{sub}/resetcursor"), None).await, 400);
}

#[tokio::test]
async fn peek_returns_the_raw_payload_with_pulsar_headers() {
    let app = TestApp::standalone().await;
    create_topic(&app, "peek").await;
    let sub = format!("{}/subscription/s", admin_topic("peek"));
    ok(app.put(&sub, None).await);
    let ids = produce(
        &app,
        "peek",
        vec![
            json!({"payload": "first body", "key": "k1", "properties": {"color": "red", "size": "L"}, "eventTime": 1_700_000_000_000i64}),
            json!({"payload": "second body"}),
        ],
    )
    .await;

    let resp = app.client.get(app.url(&format!("{sub}/position/1"))).send().await.expect("request");
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    let header = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (l, e, _) = parse_id(&ids[0]);
    assert_eq!(header("X-Pulsar-Message-ID"), Some(format!("{l}:{e}")));
    assert!(header("X-Pulsar-publish-time").is_some_and(|t| !t.is_empty()), "{h:?}");
    assert_eq!(header("X-Pulsar-PROPERTY-color").as_deref(), Some("red"));
    assert_eq!(header("X-Pulsar-PROPERTY-size").as_deref(), Some("L"));
    assert_eq!(header("X-Pulsar-partition-key").as_deref(), Some("k1"));
    assert!(header("X-Pulsar-event-time").is_some(), "{h:?}");
    assert_eq!(resp.bytes().await.expect("body").as_ref(), b"first body");

    let resp = app.client.get(app.url(&format!("{sub}/position/2"))).send().await.expect("request");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.expect("body").as_ref(), b"second body");

    err(app.get(&format!("{sub}/position/3")).await, 404);
    err(app.get(&format!("{sub}/position/first")).await, 400);
    err(app.get(&format!("{}/subscription/ghost/position/1", admin_topic("peek"))).await, 404);
}
