//! Helpers of the broker-tier suites: several `magnetar broker` processes with
//! `[broker.tier] enabled` on one fresh PostgreSQL database and the shared S3 server.

use magnetar_tests::call;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub const PARTITIONS: u32 = 6;
pub const TOPIC: &str = "acme/app/events";

pub async fn tier_config() -> String {
    tier_config_with("").await
}

/// `tier_config` with more `[broker]` lines.
pub async fn tier_config_with(broker_lines: &str) -> String {
    let broker = format!("default_namespace_bundles = 16\n{broker_lines}");
    let more = "[broker.membership]\nlease_ms = 4000\nrenew_interval_ms = 500\nfence_margin_ms = 1000\n\n\
                [broker.tier]\nenabled = true\nrefresh_interval_ms = 100\nassignment_wait_ms = 10000\n\
                drain_timeout_ms = 20000\n";
    crate::common::cluster_toml("tier", &broker, more).await
}

pub fn expect(answer: (reqwest::StatusCode, Value), status: u16, what: &str) -> Value {
    assert_eq!(answer.0.as_u16(), status, "{what}: {}", answer.1);
    answer.1
}

pub fn partition(i: u32) -> String {
    format!("{TOPIC}-partition-{i}")
}

pub async fn namespace(c: &reqwest::Client, base: &str) {
    let tenant = json!({"allowedClusters": ["tier"]});
    expect(call(c, Method::PUT, &format!("{base}/admin/v2/tenants/acme"), Some(tenant)).await, 204, "tenant");
    expect(call(c, Method::PUT, &format!("{base}/admin/v2/namespaces/acme/app"), None).await, 204, "namespace");
}

/// `bundle → owner` of the owned bundles, and whether any bundle is unavailable.
pub async fn ownership(c: &reqwest::Client, base: &str) -> (BTreeMap<String, String>, bool) {
    let view = expect(call(c, Method::GET, &format!("{base}/admin/v2/brokers/tier/bundles"), None).await, 200, "view");
    let rows = view.as_array().expect("rows");
    let owned = rows
        .iter()
        .filter(|r| r["state"] == "owned")
        .map(|r| (r["bundle"].as_str().unwrap().to_string(), r["owner"].as_str().unwrap().to_string()))
        .collect();
    (owned, rows.iter().any(|r| r["unavailable"] == true))
}

/// The bundle (`acme/app/range`) a topic or partition is in.
pub async fn bundle_of(c: &reqwest::Client, base: &str, topic: &str) -> String {
    let range = expect(
        call(c, Method::GET, &format!("{base}/lookup/v2/topic/persistent/{topic}/bundle"), None).await,
        200,
        "bundle",
    );
    format!("acme/app/{}", range.as_str().expect("range text"))
}
