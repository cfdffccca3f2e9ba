//! Cluster administration (clusters, peers, failure domains, namespace isolation policies), the
//! broker endpoints (version, readiness, dynamic configuration, owned namespaces) and the schema
//! registry through the admin API, on a real broker with its metadata in PostgreSQL; and the
//! compatibility document checked against the routes by `scripts/pulsar-admin-coverage.py`.

use crate::common;

use common::*;
use magnetar_tests::TestApp;
use reqwest::StatusCode;
use serde_json::json;

fn isolation_policy(namespaces: &[&str], primary: &[&str]) -> serde_json::Value {
    json!({
        "namespaces": namespaces,
        "primary": primary,
        "secondary": [],
        "auto_failover_policy": {"policy_type": "min_available", "parameters": {"min_limit": "1", "usage_threshold": "80"}}
    })
}

#[tokio::test]
async fn clusters_are_created_updated_and_deleted_with_their_domains_and_policies() {
    let app = TestApp::with_postgres().await;
    let own = ok(app.get("/admin/v2/clusters").await)[0].as_str().expect("own cluster").to_string();
    let url = json!({"serviceUrl": "http://east:8080", "brokerServiceUrl": "pulsar://east:6650"});
    assert_eq!(app.put("/admin/v2/clusters/east", Some(url.clone())).await.0, StatusCode::NO_CONTENT);
    err(app.put("/admin/v2/clusters/east", Some(url)).await, 409);
    err(app.put("/admin/v2/clusters/bad%2Fname", None).await, 412);
    ok(app.post("/admin/v2/clusters/east", Some(json!({"serviceUrl": "http://east-2:8080"}))).await);
    assert_eq!(ok(app.get("/admin/v2/clusters/east").await)["serviceUrl"], "http://east-2:8080");
    err(app.post("/admin/v2/clusters/west", Some(json!({"serviceUrl": "http://w"}))).await, 404);

    // Peers must be known clusters.
    ok(app.post("/admin/v2/clusters/east/peers", Some(json!([own]))).await);
    assert_eq!(ok(app.get("/admin/v2/clusters/east/peers").await), json!([own]));
    err(app.post("/admin/v2/clusters/east/peers", Some(json!(["nowhere"]))).await, 412);

    // Failure domains: a broker is in at most one domain of a cluster.
    ok(app.post("/admin/v2/clusters/east/failureDomains/rack-a", Some(json!({"brokers": ["b1:8080"]}))).await);
    ok(app.post("/admin/v2/clusters/east/failureDomains/rack-b", Some(json!({"brokers": ["b2:8080"]}))).await);
    err(app.post("/admin/v2/clusters/east/failureDomains/rack-c", Some(json!({"brokers": ["b1:8080"]}))).await, 412);
    assert_eq!(ok(app.get("/admin/v2/clusters/east/failureDomains/rack-b").await), json!({"brokers": ["b2:8080"]}));
    let domains = ok(app.get("/admin/v2/clusters/east/failureDomains").await);
    assert_eq!(domains.as_object().map(|d| d.len()), Some(2), "{domains}");
    ok(app.delete("/admin/v2/clusters/east/failureDomains/rack-b").await);
    err(app.get("/admin/v2/clusters/east/failureDomains/rack-b").await, 404);
    err(app.get("/admin/v2/clusters/nowhere/failureDomains").await, 404);

    // Namespace isolation policies: validated, stored, and matched against brokers.
    let policy = isolation_policy(&["acme/.*"], &["b1:8080"]);
    ok(app.post("/admin/v2/clusters/east/namespaceIsolationPolicies/p1", Some(policy.clone())).await);
    assert_eq!(ok(app.get("/admin/v2/clusters/east/namespaceIsolationPolicies/p1").await), policy);
    err(
        app.post("/admin/v2/clusters/east/namespaceIsolationPolicies/p2", Some(isolation_policy(&[], &["b1"]))).await,
        412,
    );
    err(
        app.post("/admin/v2/clusters/east/namespaceIsolationPolicies/p2", Some(isolation_policy(&["a/("], &["b1"])))
            .await,
        412,
    );
    let placed = ok(app.get("/admin/v2/clusters/east/namespaceIsolationPolicies/brokers/b1:8080").await);
    assert_eq!((placed["policyName"].clone(), placed["isPrimary"].clone()), (json!("p1"), json!(true)), "{placed}");
    assert_eq!(placed["namespaceRegex"], json!(["acme/.*"]));
    let all = ok(app.get("/admin/v2/clusters/east/namespaceIsolationPolicies").await);
    assert_eq!(all.as_object().map(|p| p.len()), Some(1));

    // The broker's own cluster cannot go; another goes with its domains and policies.
    err(app.delete(&format!("/admin/v2/clusters/{own}")).await, 412);
    ok(app.delete("/admin/v2/clusters/east").await);
    err(app.get("/admin/v2/clusters/east").await, 404);
    err(app.get("/admin/v2/clusters/east/namespaceIsolationPolicies").await, 404);
    ok(app.put("/admin/v2/clusters/east", None).await);
    assert_eq!(ok(app.get("/admin/v2/clusters/east/failureDomains").await), json!({}), "nothing was left behind");
}

#[tokio::test]
async fn broker_endpoints_answer_for_this_broker() {
    let app = TestApp::with_postgres().await;
    let cluster = ok(app.get("/admin/v2/clusters").await)[0].as_str().expect("cluster").to_string();
    let brokers = ok(app.get("/admin/v2/brokers").await);
    let me = brokers[0].as_str().expect("broker").to_string();
    assert_eq!(ok(app.get(&format!("/admin/v2/brokers/{cluster}")).await), brokers);
    assert_eq!(ok(app.get("/admin/v2/brokers/ready").await), "ok");
    assert_eq!(ok(app.get("/admin/v2/brokers/version").await), env!("CARGO_PKG_VERSION"));
    assert_eq!(ok(app.get("/admin/v2/brokers/configuration").await), json!([]));
    assert_eq!(ok(app.get("/admin/v2/brokers/configuration/values").await), json!({}));
    let reason = err(app.post("/admin/v2/brokers/configuration/maxMessageSize/10", None).await, 412);
    assert!(reason.contains("not dynamic"), "{reason}");
    err(app.delete("/admin/v2/brokers/configuration/maxMessageSize").await, 412);
    assert_eq!(app.get("/admin/v2/brokers/backlog-quota-check").await.0, StatusCode::NO_CONTENT);

    // A bundle is owned while one of its topics is loaded.
    produce_payloads(&app, "owned", &["x".to_string()]).await;
    let bundle = ok(app.get("/lookup/v2/topic/persistent/public/default/owned/bundle").await);
    let owned = ok(app.get(&format!("/admin/v2/brokers/{cluster}/{me}/ownedNamespaces")).await);
    assert_eq!(owned[format!("public/default/{}", bundle.as_str().unwrap())]["is_active"], true, "{owned}");
    err(app.get(&format!("/admin/v2/brokers/{cluster}/elsewhere:8080/ownedNamespaces")).await, 404);
    err(app.get(&format!("/admin/v2/brokers/nowhere/{me}/ownedNamespaces")).await, 404);
}

#[tokio::test]
async fn schemas_are_versioned_per_topic_and_keep_counting_after_a_deletion() {
    let app = TestApp::with_postgres().await;
    create_topic(&app, "typed").await;
    let path = "/admin/v2/schemas/public/default/typed";
    err(app.get(&format!("{path}/schema")).await, 404);
    let v1 = json!({"type": "JSON", "schema": "{\"type\":\"record\",\"name\":\"A\",\"fields\":[]}", "properties": {}});
    let v2 = json!({"type": "JSON", "schema": "{\"type\":\"record\",\"name\":\"B\",\"fields\":[]}", "properties": {"k": "v"}});
    assert_eq!(ok(app.post(&format!("{path}/schema"), Some(v1.clone())).await), json!({"version": 0}));
    assert_eq!(ok(app.post(&format!("{path}/schema"), Some(v1.clone())).await), json!({"version": 0}), "stored once");
    assert_eq!(ok(app.post(&format!("{path}/schema"), Some(v2.clone())).await), json!({"version": 1}));
    let latest = ok(app.get(&format!("{path}/schema")).await);
    assert_eq!(
        (latest["version"].clone(), latest["type"].clone(), latest["properties"].clone()),
        (json!(1), json!("JSON"), json!({"k": "v"}))
    );
    assert_eq!(ok(app.get(&format!("{path}/schema/0")).await)["data"], v1["schema"]);
    let all = ok(app.get(&format!("{path}/schemas")).await);
    assert_eq!(all["getSchemaResponses"].as_array().map(Vec::len), Some(2));
    assert_eq!(ok(app.post(&format!("{path}/version"), Some(v1.clone())).await), json!({"version": 0}));

    // Another type cannot follow.
    let avro = json!({"type": "AVRO", "schema": "{}"});
    let verdict = ok(app.post(&format!("{path}/compatibility"), Some(avro.clone())).await);
    assert_eq!(verdict["isCompatibility"], false, "{verdict}");
    assert_eq!(ok(app.post(&format!("{path}/compatibility"), Some(v2.clone())).await)["isCompatibility"], true);
    err(app.post(&format!("{path}/schema"), Some(avro.clone())).await, 409);
    err(app.post(&format!("{path}/schema"), Some(json!({"type": "NOPE"}))).await, 400);

    // A deletion takes a version; the next upload, of any type, counts on.
    assert_eq!(ok(app.delete(&format!("{path}/schema")).await), json!({"version": 2}));
    err(app.get(&format!("{path}/schema")).await, 404);
    assert_eq!(ok(app.get(&format!("{path}/schemas")).await)["getSchemaResponses"], json!([]));
    assert_eq!(ok(app.post(&format!("{path}/schema"), Some(avro)).await), json!({"version": 3}));
    err(app.get("/admin/v2/schemas/public/default/missing/schema").await, 404);
}

/// docs/pulsar-compatibility.md lists every operation of the groups below that is not routed,
/// with its reason, and every operation it marks supported is routed (the script's check).
#[test]
fn the_compatibility_document_matches_the_routes() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let openapi = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(openapi.path(), magnetar_api::openapi_json()).expect("write the description");
    let out = std::process::Command::new("python3")
        .arg(root.join("scripts/pulsar-admin-coverage.py"))
        .arg("--openapi")
        .arg(openapi.path())
        .arg("--doc")
        .arg(root.join("docs/pulsar-compatibility.md"))
        // Every group the reference list has; a group name may hold a space (one argument).
        .args(["--groups", "tenants,namespaces,persistent topic,clusters,brokers,lookup,schemas"])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "scripts/pulsar-admin-coverage.py --doc failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The bundle (of the namespace's `boundaries`) holding `topic`'s CRC-32, as Pulsar places it.
fn bundle_holding(boundaries: &serde_json::Value, topic: &str) -> String {
    let b: Vec<u32> = boundaries
        .as_array()
        .expect("boundaries")
        .iter()
        .map(|v| u32::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap())
        .collect();
    let h = crc32_ieee(topic.as_bytes());
    let i = (1..b.len()).find(|&i| h < b[i] || i == b.len() - 1).expect("a bundle");
    format!("0x{:08x}_0x{:08x}", b[i - 1], b[i])
}

#[tokio::test]
async fn bundles_cut_the_namespace_and_their_operations_act_on_their_topics() {
    let app = TestApp::with_postgres().await;
    let ns = "/admin/v2/namespaces/public/default";
    // Pulsar's default: four equal bundles.
    let bundles = ok(app.get(&format!("{ns}/bundles")).await);
    assert_eq!(
        bundles,
        json!({"boundaries": ["0x00000000", "0x3fffffff", "0x7ffffffe", "0xbffffffd", "0xffffffff"], "numBundles": 4})
    );
    let ids = produce_payloads(&app, "bundled", &["a".to_string(), "b".to_string()]).await;
    ok(app
        .put(&format!("{}/subscription/s", admin_topic("bundled")), Some(json!({"ledgerId": -1, "entryId": -1})))
        .await);
    assert_eq!(backlog(&app, "bundled", "s").await, 2);
    let mine = bundle_holding(&bundles["boundaries"], "persistent://public/default/bundled");
    assert_eq!(ok(app.get("/lookup/v2/topic/persistent/public/default/bundled/bundle").await), mine.as_str());
    err(app.get("/lookup/v2/topic/persistent/public/default/nothing/bundle").await, 404);
    let other = ["0x00000000_0x3fffffff", "0x3fffffff_0x7ffffffe", "0x7ffffffe_0xbffffffd", "0xbffffffd_0xffffffff"]
        .into_iter()
        .find(|b| *b != mine)
        .unwrap();

    // Unloading another bundle leaves the topic loaded; its own bundle unloads it.
    assert!(app.broker().testing().loaded_topics() > 0);
    ok(app.put(&format!("{ns}/{other}/unload"), None).await);
    assert_eq!(app.broker().testing().loaded_topics(), 1);
    ok(app.put(&format!("{ns}/{mine}/unload"), None).await);
    assert_eq!(app.broker().testing().loaded_topics(), 0);
    assert_eq!(backlog(&app, "bundled", "s").await, 2, "the topic loads again with its subscription");
    ok(app.put(&format!("{ns}/unload"), None).await);
    err(app.put(&format!("{ns}/0x00000000_0x7fffffff/unload"), None).await, 404);
    err(app.put(&format!("{ns}/not-a-bundle/unload"), None).await, 400);
    err(app.put("/admin/v2/namespaces/public/nowhere/unload", None).await, 404);

    // Backlog and subscription operations of a bundle touch only its topics.
    ok(app.post(&format!("{ns}/{other}/clearBacklog/s"), None).await);
    assert_eq!(backlog(&app, "bundled", "s").await, 2);
    ok(app.post(&format!("{ns}/{mine}/clearBacklog/s"), None).await);
    assert_eq!(backlog(&app, "bundled", "s").await, 0);
    produce_payloads(&app, "bundled", &["c".to_string()]).await;
    ok(app.post(&format!("{ns}/{mine}/clearBacklog"), None).await);
    assert_eq!(backlog(&app, "bundled", "s").await, 0);
    ok(app.post(&format!("{ns}/{mine}/unsubscribe/s"), None).await);
    assert_eq!(ok(app.get(&format!("{}/subscriptions", admin_topic("bundled"))).await), json!([]));
    assert_eq!(ids.len(), 2);

    // Hash positions: CRC-32 of the full name; the bundle's topics only.
    create_partitioned(&app, "hashed", 2).await;
    let mut expected = serde_json::Map::new();
    for name in [
        "persistent://public/default/bundled",
        "persistent://public/default/hashed-partition-0",
        "persistent://public/default/hashed-partition-1",
    ] {
        if bundle_holding(&bundles["boundaries"], name) == mine {
            expected.insert(name.to_string(), json!(u64::from(crc32_ieee(name.as_bytes()))));
        }
    }
    let all = ok(app.get(&format!("{ns}/{mine}/topicHashPositions")).await);
    assert_eq!((&all["namespace"], &all["bundle"]), (&json!("public/default"), &json!(mine)));
    assert_eq!(all["topicHashPositions"], serde_json::Value::Object(expected), "{all}");
    let some =
        ok(app.get(&format!("{ns}/{mine}/topicHashPositions?topics=bundled&topics=persistent://public/other/x")).await);
    let some = some["topicHashPositions"].as_object().expect("a map");
    assert_eq!(some.keys().collect::<Vec<_>>(), ["persistent://public/default/bundled"], "other namespaces left out");

    // Splits: at the middle, between the topics, at given positions.
    ok(app.put(&format!("{ns}/{mine}/split"), None).await);
    let after = ok(app.get(&format!("{ns}/bundles")).await);
    assert_eq!(after["numBundles"], 5, "{after}");
    let half = bundle_holding(&after["boundaries"], "persistent://public/default/bundled");
    assert_eq!(ok(app.get("/lookup/v2/topic/persistent/public/default/bundled/bundle").await), half.as_str());
    err(app.put(&format!("{ns}/{mine}/split"), None).await, 404);
    let lower = u32::from_str_radix(&half[2..10], 16).unwrap();
    ok(app
        .put(&format!("{ns}/{half}/split?splitAlgorithmName=specified_positions_divide"), Some(json!([lower + 16])))
        .await);
    assert_eq!(ok(app.get(&format!("{ns}/bundles")).await)["numBundles"], 6);
    err(
        app.put(&format!("{ns}/{other}/split?splitAlgorithmName=specified_positions_divide"), Some(json!([0]))).await,
        412,
    );
    err(app.put(&format!("{ns}/{other}/split?splitAlgorithmName=flow_or_qps_equally_divide"), None).await, 400);

    // A namespace created with its own bundle count; invalid boundaries are refused.
    ok(app.put("/admin/v2/namespaces/public/eight", Some(json!({"bundles": {"numBundles": 8}}))).await);
    let eight = ok(app.get("/admin/v2/namespaces/public/eight/bundles").await);
    assert_eq!(eight["numBundles"], 8);
    let first = format!("{}_{}", eight["boundaries"][0].as_str().unwrap(), eight["boundaries"][1].as_str().unwrap());
    let path = format!("/admin/v2/namespaces/public/eight/{first}/split?splitAlgorithmName=topic_count_equally_divide");
    let reason = err(app.put(&path, None).await, 412);
    assert!(reason.contains("cannot be split"), "no topics to divide: {reason}");
    let bad =
        json!({"bundles": {"boundaries": ["0x00000000", "0x90000000", "0x80000000", "0xffffffff"], "numBundles": 3}});
    err(app.put("/admin/v2/namespaces/public/crooked", Some(bad)).await, 412);

    // Deleting a bundle deletes its topics (only with force when it has some); the range stays.
    let now = ok(app.get("/lookup/v2/topic/persistent/public/default/bundled/bundle").await);
    let now = now.as_str().unwrap();
    err(app.delete(&format!("{ns}/{now}")).await, 409);
    ok(app.delete(&format!("{ns}/{now}?force=true")).await);
    err(app.get(&format!("{}/stats", admin_topic("bundled"))).await, 404);
    assert_eq!(ok(app.get(&format!("{ns}/bundles")).await)["numBundles"], 6);
}

/// CRC-32 (IEEE), bit by bit: an independent check of the broker's table-driven one.
fn crc32_ieee(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[test]
fn an_administrator_can_shut_a_broker_down_gracefully() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut broker = magnetar_tests::BrokerProcess::start(&dir.path().join("data"), &[]);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let client = reqwest::Client::new();
    let url = format!("{}/admin/v2/brokers/shutdown?maxConcurrentUnloadPerSec=10", broker.base);
    let (status, body) = rt.block_on(magnetar_tests::call(&client, reqwest::Method::POST, &url, None));
    assert_eq!(status, 204, "{body}");
    let exit = broker.wait_for_exit(std::time::Duration::from_secs(30)).expect("the broker stops within 30 s");
    assert!(exit.success(), "a requested shutdown exits with status 0, got {exit}");
}
