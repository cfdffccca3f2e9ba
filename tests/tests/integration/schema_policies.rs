//! Schema policies over the admin API and their effect: the namespace and topic strategies are
//! set, read (`applied=true` too), kept across a restart and removed; the schema registry
//! refuses or accepts new versions as the strategy in force says, field rules included; and
//! `schemaValidationEnforced` refuses a REST produce without a schema, and a WebSocket producer,
//! on a topic with one.
//! Metadata in PostgreSQL, so the restart reads what another broker would.

use crate::common::ws::refused_status;
use crate::common::{create_topic, err, ok, rest_topic};
use magnetar::config::{Config, MetadataSection, Secret};
use magnetar_tests::{TestApp, fresh_postgres_database, test_config};
use serde_json::{Value, json};

const NS: &str = "/admin/v2/namespaces/public/default";
const TOPIC: &str = "/admin/v2/persistent/public/default";
const SCHEMAS: &str = "/admin/v2/schemas/public/default";

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

/// An Avro record schema of `kind` (`AVRO` or `JSON`) with `fields`.
fn record(kind: &str, fields: Value) -> Value {
    json!({"type": kind, "schema": json!({"type": "record", "name": "R", "fields": fields}).to_string()})
}

async fn upload(app: &TestApp, topic: &str, schema: Value) -> (reqwest::StatusCode, Value) {
    app.post(&format!("{SCHEMAS}/{topic}/schema"), Some(schema)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_policies_are_set_read_kept_across_a_restart_and_removed() {
    let (app, cfg) = pg_broker().await;
    create_topic(&app, "pol").await;
    assert_eq!(ok(app.get(&format!("{NS}/schemaCompatibilityStrategy")).await), "UNDEFINED");
    assert_eq!(ok(app.get(&format!("{NS}/schemaAutoUpdateCompatibilityStrategy")).await), Value::Null);
    assert_eq!(ok(app.get(&format!("{NS}/isAllowAutoUpdateSchema")).await), true);
    assert_eq!(ok(app.get(&format!("{NS}/schemaValidationEnforced")).await), false);
    assert_eq!(ok(app.get(&format!("{TOPIC}/pol/schemaCompatibilityStrategy")).await), Value::Null);
    assert_eq!(ok(app.get(&format!("{TOPIC}/pol/schemaCompatibilityStrategy?applied=true")).await), "UNDEFINED");
    assert_eq!(ok(app.get(&format!("{TOPIC}/pol/schemaValidationEnforced?applied=true")).await), false);

    // The deprecated strategy applies while the namespace's is UNDEFINED.
    assert_eq!(app.put(&format!("{NS}/schemaAutoUpdateCompatibilityStrategy"), Some(json!("Backward"))).await.0, 204);
    assert_eq!(ok(app.get(&format!("{TOPIC}/pol/schemaCompatibilityStrategy?applied=true")).await), "BACKWARD");
    assert_eq!(app.put(&format!("{NS}/schemaCompatibilityStrategy"), Some(json!("FORWARD"))).await.0, 204);
    assert_eq!(app.post(&format!("{NS}/isAllowAutoUpdateSchema"), Some(json!(false))).await.0, 204);
    assert_eq!(app.post(&format!("{NS}/schemaValidationEnforced"), Some(json!(true))).await.0, 204);
    assert_eq!(ok(app.get(&format!("{TOPIC}/pol/schemaCompatibilityStrategy?applied=true")).await), "FORWARD");
    assert_eq!(ok(app.get(&format!("{TOPIC}/pol/schemaValidationEnforced?applied=true")).await), true);
    assert_eq!(
        app.put(&format!("{TOPIC}/pol/schemaCompatibilityStrategy"), Some(json!("FULL_TRANSITIVE"))).await.0,
        204
    );
    assert_eq!(app.post(&format!("{TOPIC}/pol/schemaValidationEnforced"), Some(json!(false))).await.0, 204);
    err(app.put(&format!("{NS}/schemaCompatibilityStrategy"), Some(json!("SOMETIMES"))).await, 400);

    let app = restart(app, &cfg).await;
    assert_eq!(ok(app.get(&format!("{NS}/schemaCompatibilityStrategy")).await), "FORWARD");
    assert_eq!(ok(app.get(&format!("{NS}/schemaAutoUpdateCompatibilityStrategy")).await), "Backward");
    assert_eq!(ok(app.get(&format!("{NS}/isAllowAutoUpdateSchema")).await), false);
    assert_eq!(ok(app.get(&format!("{NS}/schemaValidationEnforced")).await), true);
    let all = ok(app.get(NS).await);
    assert_eq!(all["schema_compatibility_strategy"], "FORWARD", "{all}");
    assert_eq!(all["schema_validation_enforced"], true, "{all}");
    assert_eq!(ok(app.get(&format!("{TOPIC}/pol/schemaCompatibilityStrategy")).await), "FULL_TRANSITIVE");
    assert_eq!(ok(app.get(&format!("{TOPIC}/pol/schemaValidationEnforced")).await), false);
    assert_eq!(ok(app.get(&format!("{TOPIC}/pol/schemaValidationEnforced?applied=true")).await), false);

    assert_eq!(app.delete(&format!("{TOPIC}/pol/schemaCompatibilityStrategy")).await.0, 204);
    assert_eq!(ok(app.get(&format!("{TOPIC}/pol/schemaCompatibilityStrategy")).await), Value::Null);
    assert_eq!(ok(app.get(&format!("{TOPIC}/pol/schemaCompatibilityStrategy?applied=true")).await), "FORWARD");
    assert_eq!(app.put(&format!("{NS}/schemaCompatibilityStrategy"), Some(json!("UNDEFINED"))).await.0, 204);
    assert_eq!(ok(app.get(&format!("{NS}/schemaCompatibilityStrategy")).await), "UNDEFINED");
    err(app.get(&format!("{TOPIC}/missing/schemaCompatibilityStrategy")).await, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_honours_the_always_strategies() {
    let (app, _cfg) = pg_broker().await;
    create_topic(&app, "always").await;
    let a = record("JSON", json!([{"name": "a", "type": "string"}]));
    let b = record("JSON", json!([{"name": "b", "type": "int"}]));
    assert_eq!(ok(upload(&app, "always", a.clone()).await), json!({"version": 0}));

    assert_eq!(
        app.put(&format!("{TOPIC}/always/schemaCompatibilityStrategy"), Some(json!("ALWAYS_INCOMPATIBLE"))).await.0,
        204
    );
    let reason = err(upload(&app, "always", b.clone()).await, 409);
    assert!(reason.contains("ALWAYS_INCOMPATIBLE"), "{reason}");
    assert_eq!(ok(upload(&app, "always", a).await), json!({"version": 0}), "a stored version is answered");
    let verdict = ok(app.post(&format!("{SCHEMAS}/always/compatibility"), Some(b.clone())).await);
    assert_eq!(verdict["isCompatibility"], false, "{verdict}");
    assert_eq!(verdict["schemaCompatibilityStrategy"], "ALWAYS_INCOMPATIBLE");

    // ALWAYS_COMPATIBLE, set on the namespace once the topic's own is removed: even another type.
    assert_eq!(app.delete(&format!("{TOPIC}/always/schemaCompatibilityStrategy")).await.0, 204);
    assert_eq!(app.put(&format!("{NS}/schemaCompatibilityStrategy"), Some(json!("ALWAYS_COMPATIBLE"))).await.0, 204);
    assert_eq!(ok(upload(&app, "always", b).await), json!({"version": 1}));
    assert_eq!(ok(upload(&app, "always", json!({"type": "STRING", "schema": ""})).await), json!({"version": 2}));

    // Without a strategy, the broker's rule: the type must be kept.
    assert_eq!(app.put(&format!("{NS}/schemaCompatibilityStrategy"), Some(json!("UNDEFINED"))).await.0, 204);
    err(upload(&app, "always", record("JSON", json!([{"name": "c", "type": "string"}]))).await, 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_checks_avro_record_fields_by_strategy() {
    let (app, _cfg) = pg_broker().await;
    create_topic(&app, "fields").await;
    let a = json!({"name": "a", "type": "string"});
    let b = json!({"name": "b", "type": "int"});
    let b_default = json!({"name": "b", "type": "int", "default": 0});
    assert_eq!(ok(upload(&app, "fields", record("AVRO", json!([a]))).await), json!({"version": 0}));
    assert_eq!(app.put(&format!("{TOPIC}/fields/schemaCompatibilityStrategy"), Some(json!("BACKWARD"))).await.0, 204);
    // BACKWARD: a field may be added only with a default.
    let reason = err(upload(&app, "fields", record("AVRO", json!([a, b]))).await, 409);
    assert!(reason.contains("BACKWARD") && reason.contains("field b"), "{reason}");
    assert_eq!(ok(upload(&app, "fields", record("AVRO", json!([a, b_default]))).await), json!({"version": 1}));
    // FORWARD: a field without a default may be added, but not removed.
    assert_eq!(app.put(&format!("{TOPIC}/fields/schemaCompatibilityStrategy"), Some(json!("FORWARD"))).await.0, 204);
    assert_eq!(
        ok(upload(&app, "fields", record("AVRO", json!([a, b_default, {"name": "c", "type": "long"}]))).await),
        json!({"version": 2})
    );
    let without_c = record("AVRO", json!([a, b_default, {"name": "e", "type": "long", "default": 0}]));
    let reason = err(upload(&app, "fields", without_c).await, 409);
    assert!(reason.contains("field c"), "{reason}");
    // FULL_TRANSITIVE: against every version, so a field missing from version 0 needs a default.
    assert_eq!(
        app.put(&format!("{TOPIC}/fields/schemaCompatibilityStrategy"), Some(json!("FULL_TRANSITIVE"))).await.0,
        204
    );
    let verdict = ok(app
        .post(
            &format!("{SCHEMAS}/fields/compatibility"),
            Some(record("AVRO", json!([a, b_default, {"name": "c", "type": "long"}, {"name": "d", "type": "long"}]))),
        )
        .await);
    assert_eq!(verdict["isCompatibility"], false, "{verdict}");
    assert_eq!(verdict["schemaCompatibilityStrategy"], "FULL_TRANSITIVE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_validation_enforced_refuses_a_produce_without_a_schema() {
    let (app, _cfg) = pg_broker().await;
    create_topic(&app, "typed").await;
    let message = json!({"messages": [{"payload": "hello"}]});
    // No schema on the topic yet: a schemaless producer is fine even when enforced.
    assert_eq!(app.post(&format!("{TOPIC}/typed/schemaValidationEnforced"), Some(json!(true))).await.0, 204);
    ok(app.post(&rest_topic("typed"), Some(message.clone())).await);
    ok(upload(&app, "typed", json!({"type": "STRING", "schema": ""})).await);
    let reason = err(app.post(&rest_topic("typed"), Some(message.clone())).await, 409);
    assert!(reason.contains("schemaValidationEnforced"), "{reason}");
    // A WebSocket producer carries no schema: refused at the handshake.
    let ws = format!("{}/ws/v2/producer/persistent/public/default/typed", app.base.replacen("http", "ws", 1));
    assert_eq!(refused_status(&ws).await, 409);
    let with_schema = json!({"valueSchema": "{\"type\":\"STRING\"}", "messages": [{"payload": "hello"}]});
    ok(app.post(&rest_topic("typed"), Some(with_schema)).await);
    // Off at the topic, off in force even with the namespace enforcing.
    assert_eq!(app.post(&format!("{NS}/schemaValidationEnforced"), Some(json!(true))).await.0, 204);
    assert_eq!(app.post(&format!("{TOPIC}/typed/schemaValidationEnforced"), Some(json!(false))).await.0, 204);
    ok(app.post(&rest_topic("typed"), Some(message)).await);
}
