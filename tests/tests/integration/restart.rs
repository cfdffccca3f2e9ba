//! Clean restarts: SIGTERM stops the broker with exit status 0, and tenants, namespaces,
//! topics, subscriptions, cursors and messages are all there afterwards.

use magnetar_tests::{BrokerProcess, call};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_survives_a_clean_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut broker = BrokerProcess::start(&data, &[]);
    let c = reqwest::Client::new();
    let b = broker.base.clone();
    let ok = |(s, body): (reqwest::StatusCode, Value)| {
        assert!(s.is_success(), "{s}: {body}");
        body
    };
    ok(call(
        &c,
        Method::PUT,
        &format!("{b}/admin/v2/tenants/acme"),
        Some(json!({"adminRoles": ["ops"], "allowedClusters": ["standalone"]})),
    )
    .await);
    ok(call(&c, Method::PUT, &format!("{b}/admin/v2/namespaces/acme/orders"), None).await);
    ok(call(
        &c,
        Method::POST,
        &format!("{b}/admin/v2/namespaces/acme/orders/retention"),
        Some(json!({"retentionTimeInMinutes": 60, "retentionSizeInMB": 100})),
    )
    .await);
    ok(call(&c, Method::PUT, &format!("{b}/admin/v2/persistent/acme/orders/created/partitions"), Some(json!(3))).await);
    ok(call(&c, Method::PUT, &format!("{b}/admin/v2/persistent/acme/orders/plain"), None).await);
    ok(call(
        &c,
        Method::PUT,
        &format!("{b}/admin/v2/persistent/acme/orders/plain/subscription/audit"),
        Some(json!({"ledgerId": -1, "entryId": -1})),
    )
    .await);
    let msgs: Vec<Value> = (0..100).map(|i| json!({"payload": format!("m{i}")})).collect();
    ok(call(&c, Method::POST, &format!("{b}/topics/persistent/acme/orders/plain"), Some(json!({"messages": msgs})))
        .await);
    ok(call(&c, Method::POST, &format!("{b}/admin/v2/persistent/acme/orders/plain/subscription/audit/skip/40"), None)
        .await);

    let status = broker.terminate();
    assert!(status.success(), "SIGTERM must stop the broker with status 0, got {status}");
    broker.restart();
    let b = broker.base.clone();

    let tenant = ok(call(&c, Method::GET, &format!("{b}/admin/v2/tenants/acme"), None).await);
    assert_eq!(tenant["adminRoles"], json!(["ops"]));
    let retention = ok(call(&c, Method::GET, &format!("{b}/admin/v2/namespaces/acme/orders/retention"), None).await);
    assert_eq!(retention["retentionSizeInMB"], 100);
    let parts =
        ok(call(&c, Method::GET, &format!("{b}/admin/v2/persistent/acme/orders/created/partitions"), None).await);
    assert_eq!(parts["partitions"], 3);
    let subs =
        ok(call(&c, Method::GET, &format!("{b}/admin/v2/persistent/acme/orders/plain/subscriptions"), None).await);
    assert_eq!(subs, json!(["audit"]));
    let stats = ok(call(&c, Method::GET, &format!("{b}/admin/v2/persistent/acme/orders/plain/stats"), None).await);
    assert_eq!(stats["subscriptions"]["audit"]["msgBacklog"], 60, "cursor position survives: {stats}");
    let pulled = ok(call(
        &c,
        Method::POST,
        &format!("{b}/topics/persistent/acme/orders/plain/subscriptions/audit/pull"),
        Some(json!({"maxMessages": 1000, "waitMs": 500})),
    )
    .await);
    let first = &pulled["messages"][0];
    use base64::Engine;
    let payload = base64::engine::general_purpose::STANDARD.decode(first["payload"].as_str().unwrap()).unwrap();
    assert_eq!(payload, b"m40");
    assert_eq!(pulled["messages"].as_array().unwrap().len(), 60);
}

#[test]
fn unknown_configuration_key_is_rejected_with_its_name_and_source() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("magnetar.toml");
    std::fs::write(&cfg, "[broker]\nmax_mesage_bytes = 10\n").unwrap();
    let out = std::process::Command::new(magnetar_tests::broker_binary())
        .args(["standalone", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("max_mesage_bytes"), "names the key: {err}");
    assert!(err.contains("magnetar.toml"), "names the file: {err}");
}

#[test]
fn bad_environment_value_is_rejected_naming_the_variable() {
    let err = magnetar_tests::standalone_start_error(&[("MAGNETAR_BROKER__MAX_MESSAGE_BYTES", "lots")]);
    assert!(err.to_lowercase().contains("max_message_bytes"), "names the key: {err}");
    assert!(
        err.contains("MAGNETAR_BROKER__MAX_MESSAGE_BYTES") || err.to_lowercase().contains("environment"),
        "names the source: {err}"
    );
}
