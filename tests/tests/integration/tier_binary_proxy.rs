//! The crash of a broker that only proxies a client's connections (issue 12): the client's
//! service URL names two brokers of the tier, the one it reaches first owns nothing and splices
//! its connections to the owners. When that broker is killed (SIGKILL), the client reconnects
//! through the other and carries on: every message it saw acknowledged is received and stored
//! exactly once. Deduplication is on: a send the owner stored whose receipt died with the proxy
//! is sent again by the client, and only deduplication makes that one copy.

use crate::common::tier::{
    acked_ids, assert_stored_exactly_once, drain_subscription, expect, namespace, stored_count, tier_config,
    wait_stored,
};
use crate::tier_binary::{Member, PARTITIONS, TOPIC, owners, partition, scenario_in, start};
use magnetar_tests::call;
use reqwest::Method;
use serde_json::json;
use std::collections::BTreeMap;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_carries_on_through_another_broker_when_the_one_proxying_it_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    // No balancing: the broker started last stays without bundles, a pure proxy.
    let cfg = tier_config()
        .await
        .replace("[broker.tier]\nenabled = true\n", "[broker.tier]\nenabled = true\nrebalance_interval_ms = 3600000\n");
    let owners_ = [start(&dir.path().join("b"), &cfg), start(&dir.path().join("c"), &cfg)];
    let c = reqwest::Client::new();
    let base = owners_[0].process.base.clone();
    namespace(&c, &base).await;
    let dedup = format!("{base}/admin/v2/namespaces/acme/app/deduplication");
    expect(call(&c, Method::POST, &dedup, Some(json!(true))).await, 204, "deduplication on");
    let url = format!("{base}/admin/v2/persistent/{TOPIC}/partitions");
    expect(call(&c, Method::PUT, &url, Some(json!(PARTITIONS))).await, 204, "partitioned topic");
    for i in 0..PARTITIONS {
        let url = format!("{base}/admin/v2/persistent/{}/subscription/audit", partition(i));
        expect(call(&c, Method::PUT, &url, None).await, 204, "audit subscription");
    }
    let before = owners(&c, &base).await;
    let mut proxy: Member = start(&dir.path().join("a"), &cfg);
    assert!(!before.contains_key(&proxy.process.addr), "{before:?}");

    // The proxy first in the service URL: the client's first connection goes through it.
    let hosts = [&proxy, &owners_[0]].map(|m| m.pulsar.trim_start_matches("pulsar://").to_string());
    let service_url = format!("pulsar://{}", hosts.join(","));
    let stop = dir.path().join("stop");
    let stop_arg = stop.display().to_string();
    let client = tokio::spawn(async move {
        scenario_in("tier_scenarios.py", &service_url, "under_moves", TOPIC, &[&stop_arg]).await
    });
    let stats = format!("{base}/admin/v2/persistent/{TOPIC}/partitioned-stats");
    wait_stored(&c, &stats, 200, &client).await;
    let forwarded = crate::tier_binary::metric(&c, &proxy.process.base, "magnetar_forwarded_requests_total").await;
    assert!(forwarded > 0.0, "the client's connections went through the proxy");

    let proxy_addr = proxy.process.addr.clone();
    let killed = tokio::task::spawn_blocking(move || {
        proxy.process.kill9();
        proxy
    })
    .await
    .unwrap();
    let at_kill = stored_count(&c, &stats).await;
    wait_stored(&c, &stats, at_kill + 200, &client).await;
    std::fs::write(&stop, b"stop").expect("stop file");
    let (result, log) = client.await.expect("client task");
    assert_eq!(owners(&c, &base).await, before, "the proxy's crash moved no bundle");

    let acked = acked_ids(&result);
    // The dead broker stays in the service URL: the client's attempts to connect to it are
    // refused (and logged as errors) while it reconnects through the other; nothing else may fail.
    let errors = crate::pulsar_client::client_errors(&log, &hosts[0]);
    eprintln!(
        "client: {} sent, {} acknowledged, {} redelivered, {} error lines; proxy {proxy_addr} killed after {at_kill} stored",
        result["sent"],
        acked.len(),
        result["redelivered"],
        errors.len()
    );
    assert!(errors.is_empty(), "the client logged errors beyond reconnecting:\n{}", errors.join("\n"));
    let mut stored_ids: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..PARTITIONS {
        for (id, n) in drain_subscription(&c, &base, &partition(i), "audit").await {
            *stored_ids.entry(id).or_default() += n;
        }
    }
    assert_stored_exactly_once(&acked, &stored_ids);
    drop(killed);
}
