//! The crash of a broker that only proxies a client's connections (issue 12): the client's
//! service URL names two brokers of the tier, the one it reaches first owns nothing and splices
//! its connections to the owners. When that broker is killed (SIGKILL), the client reconnects
//! through the other and carries on: every message it saw acknowledged is received and stored
//! exactly once. Deduplication is on: a send the owner stored whose receipt died with the proxy
//! is sent again by the client, and only deduplication makes that one copy.

use crate::common::tier::{drain_subscription, expect, namespace, tier_config};
use crate::tier_binary::{Member, PARTITIONS, TOPIC, owners, partition, scenario_in, start};
use magnetar_tests::call;
use reqwest::Method;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

async fn stored(c: &reqwest::Client, base: &str) -> u64 {
    let (_, stats) = call(c, Method::GET, &format!("{base}/admin/v2/persistent/{TOPIC}/partitioned-stats"), None).await;
    stats["msgInCounter"].as_u64().unwrap_or(0)
}

async fn stored_at_least(c: &reqwest::Client, base: &str, n: u64, client: &tokio::task::JoinHandle<impl Sized>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while stored(c, base).await < n {
        assert!(Instant::now() < deadline, "fewer than {n} messages stored after 30 s");
        assert!(!client.is_finished(), "the client ended early");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

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
    stored_at_least(&c, &base, 200, &client).await;
    let forwarded = crate::tier_binary::metric(&c, &proxy.process.base, "magnetar_forwarded_requests_total").await;
    assert!(forwarded > 0.0, "the client's connections went through the proxy");

    let proxy_addr = proxy.process.addr.clone();
    let killed = tokio::task::spawn_blocking(move || {
        proxy.process.kill9();
        proxy
    })
    .await
    .unwrap();
    let at_kill = stored(&c, &base).await;
    stored_at_least(&c, &base, at_kill + 200, &client).await;
    std::fs::write(&stop, b"stop").expect("stop file");
    let (result, log) = client.await.expect("client task");
    assert_eq!(owners(&c, &base).await, before, "the proxy's crash moved no bundle");

    let acked: BTreeSet<String> =
        result["acked"].as_array().expect("acked").iter().map(|v| v.as_str().expect("id").to_string()).collect();
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
    let lost: Vec<&String> = acked.iter().filter(|id| !stored_ids.contains_key(*id)).collect();
    assert!(lost.is_empty(), "{} acknowledged messages not stored, e.g. {:?}", lost.len(), &lost[..lost.len().min(5)]);
    let twice: Vec<_> = stored_ids.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "stored more than once: {twice:?}");
    drop(killed);
}
