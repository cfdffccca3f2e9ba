//! A broker restarted under load over Pulsar's binary protocol (issue 12): Pulsar's Python client
//! produces without pause and consumes through a standalone broker that is stopped with SIGTERM
//! and started again on the same ports and data. The client reconnects by itself; every message
//! it saw acknowledged is received by it and stored exactly once (deduplication on: a send
//! stored whose receipt was lost is sent again by the client).

use crate::common::tier::{acked_ids, assert_stored_exactly_once, drain_subscription, expect, wait_stored};
use magnetar_tests::{BrokerProcess, call, free_port};
use reqwest::Method;
use std::time::Duration;

const TOPIC: &str = "public/default/restarted";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_clients_carry_on_across_a_broker_restart_without_losing_or_duplicating() {
    let dir = tempfile::tempdir().unwrap();
    let pulsar = format!("127.0.0.1:{}", free_port());
    let mut broker = BrokerProcess::start(&dir.path().join("data"), &[("MAGNETAR_BINARY__ADDR", pulsar.as_str())]);
    let base = broker.base.clone();
    let c = reqwest::Client::new();
    let dedup = format!("{base}/admin/v2/namespaces/public/default/deduplication");
    expect(call(&c, Method::POST, &dedup, Some(serde_json::json!(true))).await, 204, "deduplication on");
    expect(call(&c, Method::PUT, &format!("{base}/admin/v2/persistent/{TOPIC}"), None).await, 204, "topic");
    let audit = format!("{base}/admin/v2/persistent/{TOPIC}/subscription/audit");
    expect(call(&c, Method::PUT, &audit, None).await, 204, "audit subscription");

    let stop = dir.path().join("stop");
    let (url, stop_arg) = (format!("pulsar://{pulsar}"), stop.display().to_string());
    let client = tokio::spawn(async move {
        crate::tier_binary::scenario_in("tier_scenarios.py", &url, "under_moves", TOPIC, &[&stop_arg]).await
    });
    let stats = format!("{base}/admin/v2/persistent/{TOPIC}/stats");
    wait_stored(&c, &stats, 200, &client).await;

    let (mut broker_back, status) = tokio::task::spawn_blocking(move || {
        let status = broker.terminate();
        // Down for a moment: the client's reconnection attempts meet a closed port.
        std::thread::sleep(Duration::from_millis(500));
        broker.restart();
        (broker, status)
    })
    .await
    .unwrap();
    assert!(status.success(), "SIGTERM stops the broker with status 0, got {status}");
    // The counter starts again at the restart: 200 more produced through the new process.
    wait_stored(&c, &stats, 200, &client).await;
    std::fs::write(&stop, b"stop").expect("stop file");
    let (result, log) = client.await.expect("client task");

    let acked = acked_ids(&result);
    let reconnects = log.lines().filter(|l| l.contains("Schedule reconnection") || l.contains("reconnect")).count();
    // While the broker is down the client's connection attempts are refused: that is reconnecting.
    let errors = crate::pulsar_client::client_errors(&log, &pulsar);
    eprintln!(
        "client: {} sent, {} acknowledged, {} redelivered, {reconnects} reconnection lines",
        result["sent"],
        acked.len(),
        result["redelivered"]
    );
    assert!(acked.len() >= 400, "the load ran across the restart: {} acknowledged", acked.len());
    assert!(reconnects > 0, "the restart made the client reconnect:\n{log}");
    assert!(errors.is_empty(), "the client logged errors beyond reconnecting:\n{}", errors.join("\n"));

    let stored = drain_subscription(&c, &broker_back.base, TOPIC, "audit").await;
    assert_stored_exactly_once(&acked, &stored);
    broker_back.kill9();
}
