//! Load by traffic in the broker tier (issue 11, item 4): brokers report the traffic of their
//! bundles with their leases, the leader moves a hot bundle off a broker whose bundles are as
//! many as the others' but carry all the traffic, and splits a bundle hot enough on its own,
//! its halves placed on different brokers. Producers run throughout: no request fails and every
//! acknowledged message is stored once.

use crate::common::eventually;
use crate::common::tier::{
    Load, PARTITIONS, TOPIC, assert_stored_once, audit_subscriptions, brokers, bundle_of, cluster, expect, ownership,
    tier_config_with,
};
use magnetar_tests::call;
use reqwest::Method;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Quick balance passes, so that the tests see balance within seconds.
const TIER_EXTRA: &str = "rebalance_interval_ms = 300\nbundle_cooldown_ms = 3000\nmax_moves_per_minute = 30\n";

async fn config(extra: &str) -> String {
    let cfg = tier_config_with("").await;
    // The `[broker.tier]` section is the last one: its extra keys go at the end.
    format!("{cfg}{TIER_EXTRA}{extra}")
}

/// The tenant, a namespace of `bundles` bundles and `TOPIC` with its audit subscriptions.
async fn topic(c: &reqwest::Client, base: &str, bundles: u32) {
    let tenant = json!({"allowedClusters": [cluster()]});
    expect(call(c, Method::PUT, &format!("{base}/admin/v2/tenants/acme"), Some(tenant)).await, 204, "tenant");
    let policies = json!({"bundles": {"numBundles": bundles}});
    let url = format!("{base}/admin/v2/namespaces/acme/app");
    expect(call(c, Method::PUT, &url, Some(policies)).await, 204, "namespace");
    let url = format!("{base}/admin/v2/persistent/{TOPIC}/partitions");
    expect(call(c, Method::PUT, &url, Some(json!(PARTITIONS))).await, 204, "partitioned topic");
    audit_subscriptions(c, base).await;
}

/// A counter of a broker's `/metrics`.
async fn counter(c: &reqwest::Client, base: &str, name: &str) -> f64 {
    let text = c.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")).and_then(|v| v.parse().ok()))
        .unwrap_or_else(|| panic!("{name} not exported"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_moves_a_hot_bundle_off_a_broker_whose_bundles_carry_all_the_traffic() {
    let dir = tempfile::tempdir().unwrap();
    // No split here: the bundles stay as they are and only move.
    let cfg = config("auto_split = false\n").await;
    let [a, b] = brokers(dir.path(), &cfg);
    let c = reqwest::Client::new();
    topic(&c, &a.base, 16).await;

    // Idle, the bundles in use are spread by count.
    let mut bundle = BTreeMap::new();
    for i in 0..PARTITIONS {
        bundle.insert(i, bundle_of(&c, &a.base, &crate::common::tier::partition(i)).await);
    }
    let used: BTreeSet<&String> = bundle.values().collect();
    let owned = eventually(20, "every bundle in use owned", || async {
        let (owned, _) = ownership(&c, &a.base).await;
        used.iter().all(|b| owned.contains_key(*b)).then_some(owned)
    })
    .await;
    let mut counts: BTreeMap<&String, usize> = BTreeMap::new();
    for b in &used {
        *counts.entry(&owned[*b]).or_default() += 1;
    }
    let (busy, n) = counts.iter().max_by_key(|(_, n)| **n).map(|(k, n)| ((*k).clone(), *n)).unwrap();
    assert!(n >= 2 && counts.len() == 2, "bundles by count over both brokers: {counts:?} ({owned:?})");

    // Traffic on the partitions of `busy`'s bundles only, through both brokers.
    let hot: Vec<u32> = (0..PARTITIONS).filter(|i| owned[&bundle[i]] == busy).collect();
    let hot_bundles: BTreeSet<String> = hot.iter().map(|i| bundle[i].clone()).collect();
    let load = Load::on_partitions(vec![a.base.clone(), b.base.clone()], hot.clone(), 0..3);
    let spread = eventually(45, "a hot bundle moved to the other broker", || async {
        let (owned, _) = ownership(&c, &a.base).await;
        let owners: BTreeSet<&String> = hot_bundles.iter().filter_map(|b| owned.get(b)).collect();
        (owners.len() == 2).then_some(owned)
    })
    .await;
    let moves = counter(&c, &a.base, "magnetar_tier_rebalance_moves_total").await
        + counter(&c, &b.base, "magnetar_tier_rebalance_moves_total").await;
    assert!(moves >= 1.0 && moves <= hot_bundles.len() as f64, "{moves} moves for {hot_bundles:?}: {spread:?}");
    // Each broker's load report names the traffic of the hot bundles it serves (measured every
    // 5 s: the one moved shows on its new owner after a measurement or two).
    for base in [&a.base, &b.base] {
        eventually(20, "the load report names a hot bundle's traffic", || async {
            let (status, report) =
                call(&c, Method::GET, &format!("{base}/admin/v2/broker-stats/load-report"), None).await;
            assert_eq!(status.as_u16(), 200, "{report}");
            let stats = report["bundleStats"].as_object().cloned().unwrap_or_default();
            stats
                .iter()
                .any(|(b, s)| hot_bundles.contains(b) && s["msgRateIn"].as_f64().unwrap_or(0.0) > 0.0)
                .then_some(())
        })
        .await;
    }

    tokio::time::sleep(Duration::from_secs(1)).await;
    let acked = load.finish_without_failures("under load").await;
    assert!(!acked.is_empty());
    assert_stored_once(&c, &b.base, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_hot_on_its_own_is_split_and_its_halves_go_to_both_brokers() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config("split_msg_rate = 150.0\n").await;
    let [a, b] = brokers(dir.path(), &cfg);
    let c = reqwest::Client::new();
    // One bundle: every partition on one broker, which balance alone cannot relieve.
    topic(&c, &a.base, 1).await;

    let load = Load::start(vec![a.base.clone(), b.base.clone()], 3);
    let spread = eventually(60, "the bundle split and spread over both brokers", || async {
        let (owned, _) = ownership(&c, &a.base).await;
        let bundles = expect(
            call(&c, Method::GET, &format!("{}/admin/v2/namespaces/acme/app/bundles", a.base), None).await,
            200,
            "bundles",
        );
        let n = bundles["numBundles"].as_u64().unwrap_or(0);
        let owners: BTreeSet<&String> = owned.values().collect();
        (n >= 2 && owners.len() == 2).then_some((n, owned))
    })
    .await;
    let splits = counter(&c, &a.base, "magnetar_tier_bundle_splits_total").await
        + counter(&c, &b.base, "magnetar_tier_bundle_splits_total").await;
    assert!(splits >= 1.0, "splits counted: {spread:?}");
    // Never beyond single partitions: a bundle of one topic is not split.
    assert!(spread.0 <= u64::from(PARTITIONS), "{spread:?}");

    tokio::time::sleep(Duration::from_secs(1)).await;
    let acked = load.finish_without_failures("under load").await;
    assert_stored_once(&c, &a.base, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_split_sent_to_a_broker_that_does_not_own_the_bundle_is_done_by_its_owner_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config("auto_split = false\n").await;
    let [a, b] = brokers(dir.path(), &cfg);
    let c = reqwest::Client::new();
    topic(&c, &a.base, 1).await;
    let load = Load::start(vec![a.base.clone(), b.base.clone()], 3);
    tokio::time::sleep(Duration::from_secs(1)).await;

    let (owned, _) = ownership(&c, &a.base).await;
    let (range, owner) = owned.iter().next().map(|(b, o)| (b.clone(), o.clone())).expect("the one bundle owned");
    let other = if owner == a.addr { &b } else { &a };
    let range = range.trim_start_matches("acme/app/");
    let url = format!(
        "{}/admin/v2/namespaces/acme/app/{range}/split?splitAlgorithmName=topic_count_equally_divide",
        other.base
    );
    expect(call(&c, Method::PUT, &url, None).await, 204, "split through the non-owner");
    let bundles = expect(
        call(&c, Method::GET, &format!("{}/admin/v2/namespaces/acme/app/bundles", other.base), None).await,
        200,
        "bundles",
    );
    assert_eq!(bundles["numBundles"], 2, "{bundles}");
    // The old range is gone from the ownership table; both halves are owned.
    eventually(20, "both halves owned, the old range's row retired", || async {
        let (owned, _) = ownership(&c, &a.base).await;
        (owned.len() == 2 && !owned.contains_key(&format!("acme/app/{range}"))).then_some(())
    })
    .await;
    // Split again: a range that is no longer a bundle is unknown.
    let again = call(&c, Method::PUT, &url, None).await;
    assert_eq!(again.0.as_u16(), 404, "{}", again.1);

    tokio::time::sleep(Duration::from_secs(1)).await;
    let acked = load.finish_without_failures("under load").await;
    assert_stored_once(&c, &a.base, &acked).await;
}
