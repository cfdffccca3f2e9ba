//! PIP-307 in the broker tier (issue 12, item 4): with `lookup_owner_address` (clients reach
//! every broker), a handover closes each binary producer and consumer naming the broker it gave
//! the bundle to, and Pulsar's Python client (the C++ client inside) reconnects there at once,
//! without looking the topic up again. Nothing acknowledged is lost or stored twice.

use crate::common::tier::{
    acked_ids, assert_stored_exactly_once, drain_subscription, expect, tier_config, wait_stored,
};
use crate::tier_binary::{
    Member, PARTITIONS, TOPIC, metric, move_every_bundle, partition, scenario_in, three_brokers_with,
};
use magnetar_tests::call;
use reqwest::Method;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Topic lookups the brokers answered or refused, summed over the tier.
async fn lookups(c: &reqwest::Client, members: &[Member]) -> f64 {
    let mut n = 0.0;
    for m in members {
        n += metric(c, &m.process.base, "pulsar_broker_lookup_answers").await;
        n += metric(c, &m.process.base, "pulsar_broker_lookup_failures").await;
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_closed_by_a_bundle_move_reconnect_to_the_next_owner_without_a_lookup() {
    let dir = tempfile::tempdir().unwrap();
    // No balancing: only the unloads below move bundles.
    let cfg = tier_config().await.replace(
        "[broker.tier]\nenabled = true\n",
        "[broker.tier]\nenabled = true\nlookup_owner_address = true\nrebalance_interval_ms = 3600000\n",
    );
    assert!(cfg.contains("lookup_owner_address = true"), "{cfg}");
    let (members, c) = three_brokers_with(dir.path(), cfg).await;
    let base = members[0].process.base.clone();
    for i in 0..PARTITIONS {
        let url = format!("{base}/admin/v2/persistent/{}/subscription/audit", partition(i));
        expect(call(&c, Method::PUT, &url, None).await, 204, "audit subscription");
    }
    let stop = dir.path().join("stop");
    let (url, stop_arg) = (members[0].pulsar.clone(), stop.display().to_string());
    let client =
        tokio::spawn(async move { scenario_in("tier_scenarios.py", &url, "under_moves", TOPIC, &[&stop_arg]).await });
    let stats = format!("{base}/admin/v2/persistent/{TOPIC}/partitioned-stats");
    wait_stored(&c, &stats, 200, &client).await;

    // Every bundle holding a partition moves, one after the other, under load (the bundle
    // lookups this makes are not topic lookups, which the counters count).
    let looked_up = lookups(&c, &members).await;
    move_every_bundle(&c, &base, &members[1].process.base).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let new_lookups = lookups(&c, &members).await - looked_up;
    std::fs::write(&stop, b"stop").expect("stop file");
    let (result, log) = client.await.expect("client task");

    // Each partition's producer and consumer was told where its bundle went ...
    let mut redirects = 0.0;
    for m in &members {
        redirects += metric(&c, &m.process.base, "magnetar_tier_handover_redirects_total").await;
    }
    let named: Vec<&str> =
        log.lines().filter_map(|l| l.split("assignedBrokerUrl: ").nth(1)).map(|u| u.trim()).collect();
    let urls: BTreeSet<&str> = members.iter().map(|m| m.pulsar.as_str()).collect();
    eprintln!(
        "{redirects} closes named the next owner, the client logged {} of them; {new_lookups} lookups during the moves",
        named.len()
    );
    assert!(redirects >= f64::from(2 * PARTITIONS), "a producer and a consumer per partition: {redirects}");
    assert!(named.len() >= 2 * PARTITIONS as usize, "the client was told the next owners:\n{log}");
    for url in &named {
        assert!(urls.contains(url), "the client was sent to {url}, not a broker of the tier ({urls:?})");
    }
    // ... and went straight there: no lookup while the bundles moved.
    assert_eq!(new_lookups, 0.0, "the clients looked their topics up again:\n{log}");
    let errors: Vec<&str> = log.lines().filter(|l| l.contains(" ERROR ")).collect();
    assert!(errors.is_empty(), "the client logged errors:\n{}", errors.join("\n"));

    let acked = acked_ids(&result);
    assert!(acked.len() > 500, "the load ran: {} acknowledged", acked.len());
    let mut stored: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..PARTITIONS {
        for (id, n) in drain_subscription(&c, &base, &partition(i), "audit").await {
            *stored.entry(id).or_default() += n;
        }
    }
    assert_stored_exactly_once(&acked, &stored);
}
