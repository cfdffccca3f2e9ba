//! `magnetar broker --config FILE`: PostgreSQL metadata and an S3-compatible object store, as
//! an operator runs it. Uses the PostgreSQL and SeaweedFS servers started by scripts/test.sh.

use magnetar_tests::{BrokerProcess, call};
use reqwest::Method;
use serde_json::json;

async fn cluster_config() -> String {
    crate::common::cluster_toml("prod-east", "", "").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_mode_runs_on_postgres_and_keeps_state_across_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = cluster_config().await;
    // `MAGNETAR_LOG` is the log filter, not a configuration key (it once failed the start).
    let mut broker = BrokerProcess::start_cluster(&data, &cfg, &[("MAGNETAR_LOG", "info,magnetar_broker=debug")]);
    let c = reqwest::Client::new();
    let b = broker.base.clone();
    let (s, body) = call(&c, Method::GET, &format!("{b}/admin/v2/clusters"), None).await;
    assert_eq!((s.as_u16(), body), (200, json!(["prod-east"])));
    // Cluster mode creates no default tenant: an operator does.
    let (s, body) = call(&c, Method::GET, &format!("{b}/admin/v2/tenants"), None).await;
    assert_eq!((s.as_u16(), body), (200, json!([])));
    let (s, body) =
        call(&c, Method::PUT, &format!("{b}/admin/v2/tenants/acme"), Some(json!({"allowedClusters": ["prod-east"]})))
            .await;
    assert_eq!(s, 204, "{body}");
    let (s, _) = call(&c, Method::PUT, &format!("{b}/admin/v2/namespaces/acme/app"), None).await;
    assert_eq!(s, 204);
    let (s, _) =
        call(&c, Method::PUT, &format!("{b}/admin/v2/persistent/acme/app/events/partitions"), Some(json!(2))).await;
    assert_eq!(s, 204);
    let msgs: Vec<_> = (0..50).map(|i| json!({"payload": format!("e{i}"), "key": format!("k{i}")})).collect();
    let (s, body) =
        call(&c, Method::POST, &format!("{b}/topics/persistent/acme/app/events"), Some(json!({"messages": msgs})))
            .await;
    assert_eq!(s, 200, "{body}");

    assert!(broker.terminate().success());
    broker.restart();
    let b = broker.base.clone();
    let (s, body) = call(
        &c,
        Method::POST,
        &format!("{b}/topics/persistent/acme/app/events/subscriptions/s/pull"),
        Some(json!({"maxMessages": 100, "waitMs": 1000, "initialPosition": "earliest"})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["messages"].as_array().unwrap().len(), 50);
    // Uploads are paced automatically by default; an idle broker sits at the floor.
    let metrics = reqwest::get(format!("{b}/metrics")).await.unwrap().text().await.unwrap();
    let pace = format!("magnetar_offload_upload_pace_bytes_per_second {}", magnetar_storage::object::AUTO_FLOOR);
    assert!(metrics.lines().any(|l| l == pace), "no `{pace}` in /metrics");
}

/// `magnetar broker --config FILE` with `config` must fail; its stderr.
pub(crate) fn broker_refuses(config: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("magnetar.toml");
    std::fs::write(&file, config).unwrap();
    let out = std::process::Command::new(magnetar_tests::broker_binary())
        .args(["broker", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn broker_mode_refuses_a_bad_upload_pace_naming_the_value() {
    let err = broker_refuses(
        "[metadata]\nurl = \"postgres://127.0.0.1:1/x\"\n\n[object_store]\nkind = \"s3\"\nregion = \"r\"\n\
         bucket = \"b\"\nupload_bytes_per_second = \"fast\"\n",
    );
    assert!(err.contains("upload_bytes_per_second") && err.contains("\"fast\""), "{err}");
}

#[test]
fn broker_mode_refuses_sqlite_metadata_with_a_clear_message() {
    let err = broker_refuses("[metadata]\nurl = \"sqlite://x.db\"\n");
    assert!(err.contains("PostgreSQL") && err.contains("metadata.url"), "{err}");
}
