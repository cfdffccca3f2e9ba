//! Policies stored ahead of geo-replication and of the broker tier's placement: a namespace's
//! anti-affinity group (and the listing of a group), a topic's replication clusters (validated
//! like the namespace's, with the same `Warning` for another cluster) and the replicator
//! dispatch rate of a namespace and a topic — set, read, kept across a restart and removed.

use crate::common::{create_topic, err, ok};
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

/// POSTs `body` and returns the status and the `Warning` header, if any.
async fn post_with_warning(app: &TestApp, path: &str, body: Value) -> (u16, Option<String>) {
    let resp = app.client.post(app.url(path)).json(&body).send().await.expect("request");
    let warning = resp.headers().get("warning").and_then(|v| v.to_str().ok()).map(str::to_string);
    (resp.status().as_u16(), warning)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_replication_and_placement_policies_are_set_read_kept_across_a_restart_and_removed() {
    let (app, cfg) = pg_broker().await;
    create_topic(&app, "geo").await;
    let rate = json!({"dispatchThrottlingRateInMsg": 10, "dispatchThrottlingRateInByte": 2048,
                      "relativeToPublishRate": false, "ratePeriodInSecond": 1});
    let topic_rate = json!({"dispatchThrottlingRateInMsg": 5, "dispatchThrottlingRateInByte": 0,
                            "relativeToPublishRate": false, "ratePeriodInSecond": 2});

    assert_eq!(ok(app.get(&format!("{NS}/antiAffinity")).await), Value::Null);
    assert_eq!(ok(app.get(&format!("{NS}/replicatorDispatchRate")).await), Value::Null);
    assert_eq!(ok(app.get(&format!("{TOPIC}/geo/replication")).await), Value::Null);
    assert_eq!(ok(app.get(&format!("{TOPIC}/geo/replicatorDispatchRate")).await), Value::Null);

    // Pulsar's admin client sends the group as bare text; a JSON string is accepted too.
    let resp = app.client.post(app.url(&format!("{NS}/antiAffinity"))).body("group-a").send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(ok(app.get(&format!("{NS}/antiAffinity")).await), "group-a");
    assert_eq!(app.put("/admin/v2/namespaces/public/other", None).await.0, 204);
    assert_eq!(app.post("/admin/v2/namespaces/public/other/antiAffinity", Some(json!("group-a"))).await.0, 204);
    err(app.post(&format!("{NS}/antiAffinity"), Some(json!(""))).await, 412);

    assert_eq!(app.post(&format!("{NS}/replicatorDispatchRate"), Some(rate.clone())).await.0, 204);
    assert_eq!(app.post(&format!("{TOPIC}/geo/replicatorDispatchRate"), Some(topic_rate.clone())).await.0, 204);
    assert_eq!(ok(app.get(&format!("{TOPIC}/geo/replicatorDispatchRate?applied=true")).await), topic_rate);

    err(app.post(&format!("{TOPIC}/geo/replication"), Some(json!(["nowhere"]))).await, 412);
    err(app.post(&format!("{TOPIC}/geo/replication"), Some(json!([]))).await, 412);
    assert_eq!(post_with_warning(&app, &format!("{TOPIC}/geo/replication"), json!(["standalone"])).await, (204, None));
    let remote = json!({"serviceUrl": "http://remote:8080"});
    assert_eq!(app.put("/admin/v2/clusters/remote", Some(remote)).await.0, 204);
    let (status, warning) =
        post_with_warning(&app, &format!("{TOPIC}/geo/replication"), json!(["standalone", "remote"])).await;
    assert_eq!(status, 204);
    assert!(warning.is_some_and(|w| w.contains("remote")), "a Warning names the other cluster");

    let app = {
        let dir = app.stop().await;
        TestApp::start(dir, cfg.clone()).await
    };
    assert_eq!(ok(app.get(&format!("{NS}/antiAffinity")).await), "group-a");
    let members = ok(app.get("/admin/v2/namespaces/standalone/antiAffinity/group-a?tenant=public").await);
    assert_eq!(members, json!(["public/default", "public/other"]));
    err(app.get("/admin/v2/namespaces/standalone/antiAffinity/group-a").await, 412);
    assert_eq!(ok(app.get(&format!("{NS}/replicatorDispatchRate")).await), rate);
    assert_eq!(ok(app.get(&format!("{TOPIC}/geo/replicatorDispatchRate")).await), topic_rate);
    assert_eq!(ok(app.get(&format!("{TOPIC}/geo/replication")).await), json!(["remote", "standalone"]));

    assert_eq!(app.delete(&format!("{NS}/antiAffinity")).await.0, 204);
    assert_eq!(ok(app.get(&format!("{NS}/antiAffinity")).await), Value::Null);
    assert_eq!(
        ok(app.get("/admin/v2/namespaces/standalone/antiAffinity/group-a?tenant=public").await),
        json!(["public/other"])
    );
    assert_eq!(app.delete(&format!("{TOPIC}/geo/replicatorDispatchRate")).await.0, 204);
    assert_eq!(ok(app.get(&format!("{TOPIC}/geo/replicatorDispatchRate?applied=true")).await), rate);
    assert_eq!(app.delete(&format!("{NS}/replicatorDispatchRate")).await.0, 204);
    assert_eq!(ok(app.get(&format!("{NS}/replicatorDispatchRate")).await), Value::Null);
    assert_eq!(app.delete(&format!("{TOPIC}/geo/replication")).await.0, 204);
    assert_eq!(ok(app.get(&format!("{TOPIC}/geo/replication")).await), Value::Null);
    let ns_clusters = ok(app.get(&format!("{NS}/replication")).await);
    assert_eq!(ok(app.get(&format!("{TOPIC}/geo/replication?applied=true")).await), ns_clusters);
}
