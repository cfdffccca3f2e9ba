//! Helpers shared by the HTTP integration tests: status assertions, REST produce, HTTP pull,
//! base64 and polling with a deadline.
#![allow(dead_code)]

pub mod tier;
pub mod tls;
pub mod weed;
pub mod ws;

use base64::Engine;
use magnetar_tests::TestApp;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::future::Future;
use std::time::{Duration, Instant};

/// Asserts a 2xx answer and returns its body.
#[track_caller]
pub fn ok((status, body): (StatusCode, Value)) -> Value {
    assert!(status.is_success(), "expected success, got {status}: {body}");
    body
}

/// Asserts an error answer with `expected` status and a non-empty `reason`; returns the reason.
#[track_caller]
pub fn err((status, body): (StatusCode, Value), expected: u16) -> String {
    assert_eq!(status.as_u16(), expected, "unexpected status, body: {body}");
    let reason = body
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no `reason` in the {status} body: {body}"));
    assert!(!reason.is_empty(), "empty reason in the {status} body");
    reason.to_string()
}

/// One HTTP call to `base` with a bearer token (none: anonymous); the body is parsed as JSON
/// when it is JSON, else returned as a string.
pub async fn call_as(
    base: &str,
    token: Option<&str>,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let client = reqwest::Client::new();
    let mut req = client.request(method, format!("{base}{path}"));
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// `/admin/v2/persistent/public/default/{topic}`.
pub fn admin_topic(topic: &str) -> String {
    format!("/admin/v2/persistent/public/default/{topic}")
}

/// `/topics/persistent/public/default/{topic}`.
pub fn rest_topic(topic: &str) -> String {
    format!("/topics/persistent/public/default/{topic}")
}

pub async fn create_topic(app: &TestApp, topic: &str) {
    ok(app.put(&admin_topic(topic), None).await);
}

pub async fn create_partitioned(app: &TestApp, topic: &str, partitions: u32) {
    ok(app.put(&format!("{}/partitions", admin_topic(topic)), Some(json!(partitions))).await);
}

/// REST-produces `messages` (Pulsar's message objects) and returns the message ids.
pub async fn produce(app: &TestApp, topic: &str, messages: Vec<Value>) -> Vec<String> {
    let n = messages.len();
    let body = ok(app.post(&rest_topic(topic), Some(json!({ "messages": messages }))).await);
    let results =
        body["messagePublishResults"].as_array().unwrap_or_else(|| panic!("no messagePublishResults: {body}"));
    assert_eq!(results.len(), n, "one result per message: {body}");
    results
        .iter()
        .map(|r| {
            assert_eq!(r["errorCode"], 0, "{r}");
            r["messageId"].as_str().expect("messageId").to_string()
        })
        .collect()
}

/// Produces plain string payloads.
pub async fn produce_payloads(app: &TestApp, topic: &str, payloads: &[String]) -> Vec<String> {
    produce(app, topic, payloads.iter().map(|p| json!({ "payload": p })).collect()).await
}

pub fn pull_path(topic: &str, sub: &str) -> String {
    format!("/topics/persistent/public/default/{topic}/subscriptions/{sub}/pull")
}

/// One pull; returns the messages.
pub async fn pull(app: &TestApp, topic: &str, sub: &str, body: Value) -> Vec<Value> {
    let resp = ok(app.post(&pull_path(topic, sub), Some(body)).await);
    resp["messages"].as_array().unwrap_or_else(|| panic!("no messages array: {resp}")).clone()
}

/// Pulls until `n` messages arrived (or the deadline passes, which fails the test).
pub async fn pull_n(app: &TestApp, topic: &str, sub: &str, n: usize, ack_timeout_ms: u64) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut out = Vec::new();
    while out.len() < n {
        assert!(Instant::now() < deadline, "only {} of {n} messages pulled within 30 s", out.len());
        let got = pull(
            app,
            topic,
            sub,
            json!({"maxMessages": 500, "waitMs": 1000, "ackTimeoutMs": ack_timeout_ms, "initialPosition": "earliest"}),
        )
        .await;
        out.extend(got);
    }
    out
}

pub async fn ack(app: &TestApp, topic: &str, sub: &str, ids: &[String]) -> (StatusCode, Value) {
    app.post(
        &format!("/topics/persistent/public/default/{topic}/subscriptions/{sub}/ack"),
        Some(json!({ "messageIds": ids })),
    )
    .await
}

pub async fn nack(app: &TestApp, topic: &str, sub: &str, ids: &[String]) -> (StatusCode, Value) {
    app.post(
        &format!("/topics/persistent/public/default/{topic}/subscriptions/{sub}/nack"),
        Some(json!({ "messageIds": ids, "redeliveryDelayMs": 0 })),
    )
    .await
}

pub fn ids_of(messages: &[Value]) -> Vec<String> {
    messages.iter().map(|m| m["messageId"].as_str().expect("messageId").to_string()).collect()
}

pub fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

pub fn unb64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(text).unwrap_or_else(|e| panic!("`{text}` is not base64: {e}"))
}

/// The decoded payload of a pulled message, as text.
pub fn payload_text(m: &Value) -> String {
    String::from_utf8(unb64(m["payload"].as_str().expect("payload"))).expect("utf-8 payload")
}

/// `L:E:P` → (L, E, P).
pub fn parse_id(id: &str) -> (i64, i64, i32) {
    let parts: Vec<&str> = id.split(':').collect();
    assert_eq!(parts.len(), 3, "message id `{id}` is not L:E:P");
    (parts[0].parse().expect("ledger"), parts[1].parse().expect("entry"), parts[2].parse().expect("partition"))
}

/// Offset of a message in its partition (`ledgerId + entryId`).
pub fn offset_of(id: &str) -> i64 {
    let (l, e, _) = parse_id(id);
    l + e
}

/// Polls `check` until it returns `Some`, failing after `secs` seconds with `what`.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {secs} s waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Backlog of `sub` in the stats of `topic`.
pub async fn backlog(app: &TestApp, topic: &str, sub: &str) -> u64 {
    let stats = ok(app.get(&format!("{}/stats", admin_topic(topic))).await);
    stats["subscriptions"][sub]["msgBacklog"].as_u64().unwrap_or_else(|| panic!("no msgBacklog for {sub}: {stats}"))
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64
}

/// A variable `scripts/test.sh` exports; a missing one fails the test saying how to get it.
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the tests through scripts/test.sh, which starts PostgreSQL and SeaweedFS and \
             installs helm"
        )
    })
}

/// The shared S3 server `scripts/test.sh` starts, as a broker's object store with the default
/// upload pacing (a missing variable fails the test saying how to get the server).
pub fn shared_s3() -> magnetar_storage::object::ObjectStoreConfig {
    use magnetar_storage::object::{ObjectStoreConfig, UploadPacing, conformance};
    let mut cfg = conformance::s3_config_from_env();
    if let ObjectStoreConfig::S3(s3) = &mut cfg {
        s3.upload_bytes_per_second = UploadPacing::default();
    }
    cfg
}

/// The configuration of a cluster broker (`magnetar broker --config`) on a fresh PostgreSQL
/// database and the shared S3 server: `[metadata]` and `[object_store]`, then `[broker]` with
/// `cluster` (which also prefixes the broker's object keys in the shared bucket) and the extra
/// `[broker]` lines `broker`, then `more` (other sections, as TOML text).
pub async fn cluster_toml(cluster: &str, broker: &str, more: &str) -> String {
    format!(
        "[metadata]\nurl = \"{}\"\n\n[object_store]\nkind = \"s3\"\nendpoint = \"{}\"\nregion = \"{}\"\nbucket = \"{}\"\n\
         access_key_id = \"{}\"\nsecret_access_key = \"{}\"\nallow_http = true\n\n[broker]\ncluster = \"{cluster}\"\n{broker}\n{more}",
        magnetar_tests::fresh_postgres_database().await,
        env("MAGNETAR_TEST_S3_ENDPOINT"),
        std::env::var("MAGNETAR_TEST_S3_REGION").unwrap_or_else(|_| "us-east-1".into()),
        env("MAGNETAR_TEST_S3_BUCKET"),
        env("MAGNETAR_TEST_S3_ACCESS_KEY"),
        env("MAGNETAR_TEST_S3_SECRET_KEY"),
    )
}
