//! A broker tier for the tests: three (or more) `magnetar broker` processes on one fresh
//! PostgreSQL database and the shared S3 server, `[broker.tier] enabled`, with short leases and
//! refreshes so that ownership settles in a test's time.

use reqwest::StatusCode;
use serde_json::Value;

/// The configuration every broker of one test's tier starts with (cluster `tier`).
pub async fn tier_config() -> String {
    // 16 bundles per namespace, so that 12 partitions can fall into several of them.
    let broker = "default_namespace_bundles = 16\n";
    let more = "[broker.membership]\nlease_ms = 4000\nrenew_interval_ms = 500\nfence_margin_ms = 1000\n\n\
                [broker.tier]\nenabled = true\nrefresh_interval_ms = 100\nassignment_wait_ms = 10000\n";
    super::cluster_toml("tier", broker, more).await
}

/// Asserts the status of an answer and returns its body.
#[track_caller]
pub fn expect(answer: (StatusCode, Value), status: u16, what: &str) -> Value {
    assert_eq!(answer.0.as_u16(), status, "{what}: {}", answer.1);
    answer.1
}
