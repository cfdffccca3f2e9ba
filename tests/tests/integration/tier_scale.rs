//! Operating the broker tier under load (issue 11, "done when"): a rolling restart of every
//! broker, and scaling 1 → 3 → 1, while producers keep posting through the brokers that stay.
//! No request fails, every acknowledged message is stored once, and the leader's balance gives
//! joining brokers their share within a bounded number of moves. With replicated durability
//! (issue 13) the tier scales 3 → 1 → 3: one broker cannot hold two copies, so meanwhile
//! producers are refused, never acknowledged falsely, and nothing acknowledged is lost.

use crate::common::eventually;
use crate::common::tier::{Load, TOPIC, assert_stored_once, ownership, partitioned_topic, tier_config_with};
use magnetar_tests::{BrokerProcess, call};
use reqwest::Method;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

/// Quick balance passes, so that the tests see balance within seconds.
const TIER_EXTRA: &str = "rebalance_interval_ms = 300\nbundle_cooldown_ms = 3000\nmax_moves_per_minute = 30\n";

async fn config() -> String {
    let cfg = tier_config_with("").await;
    // The `[broker.tier]` section is the last one: its extra keys go at the end.
    format!("{cfg}{TIER_EXTRA}")
}

/// SIGTERM, off the async runtime (the call waits for the process).
async fn terminate(mut p: BrokerProcess) -> BrokerProcess {
    tokio::task::spawn_blocking(move || {
        let status = p.terminate();
        assert!(status.success(), "broker {} exited with {status}", p.addr);
        p
    })
    .await
    .unwrap()
}

async fn restart(mut p: BrokerProcess) -> BrokerProcess {
    tokio::task::spawn_blocking(move || {
        p.restart();
        p
    })
    .await
    .unwrap()
}

fn counts(owned: &BTreeMap<String, String>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for owner in owned.values() {
        *out.entry(owner.clone()).or_default() += 1;
    }
    out
}

/// With object-store durability (issue 13) the namespace's partitions are acknowledged through
/// log objects; a change of owner waits for them to be committed. With replicated durability
/// through an ack quorum of peer brokers.
async fn set_durability(c: &reqwest::Client, base: &str, mode: &str) {
    let url = format!("{base}/admin/v2/namespaces/acme/app/durability");
    let (status, body) = call(c, Method::POST, &url, Some(json!({ "mode": mode }))).await;
    assert_eq!(status.as_u16(), 204, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_of_every_broker_under_load_fails_no_request_and_loses_nothing() {
    rolling_restart(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_with_object_store_durability_fails_no_request_and_loses_nothing() {
    rolling_restart(Some("object-store")).await;
}

/// Each broker stopping is also a peer of another's stream (2/2): that stream moves to the
/// third broker, or waits for it to return, within the producers' wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_with_replicated_durability_fails_no_request_and_loses_nothing() {
    rolling_restart(Some("replicated")).await;
}

async fn rolling_restart(mode: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config().await;
    let mut brokers: Vec<Option<BrokerProcess>> =
        ["a", "b", "c"].iter().map(|n| Some(BrokerProcess::start_cluster(&dir.path().join(n), &cfg, &[]))).collect();
    let bases: Vec<String> = brokers.iter().map(|b| b.as_ref().unwrap().base.clone()).collect();
    let c = reqwest::Client::new();
    partitioned_topic(&c, &bases[0]).await;
    if let Some(mode) = mode {
        set_durability(&c, &bases[0], mode).await;
    }

    // Each broker in turn: its producers move to the next one, it is stopped and started again.
    let mut acked_all = std::collections::BTreeSet::new();
    for (i, slot) in brokers.iter_mut().enumerate() {
        let others: Vec<String> = (0..bases.len()).filter(|j| *j != i).map(|j| bases[j].clone()).collect();
        let load = Load::numbered(others, i * 10..i * 10 + 3);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let p = terminate(slot.take().unwrap()).await;
        *slot = Some(restart(p).await);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let acked = load.finish_without_failures(&format!("restart of broker {i}")).await;
        acked_all.extend(acked);
    }
    let (owned, unavailable) = ownership(&c, &bases[0]).await;
    assert!(!unavailable, "{owned:?}");
    assert!(acked_all.len() > 300, "the load ran: {} messages", acked_all.len());
    assert_stored_once(&c, &bases[1], &acked_all).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_one_to_three_to_one_to_three_under_load_balances_in_bounded_moves_and_loses_nothing() {
    scale(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_one_to_three_to_one_to_three_with_object_store_durability_loses_nothing() {
    scale(true).await;
}

/// Waits until the `bundles` bundles are spread over `brokers`: each owning one at least and,
/// with `spread`, no two apart by more than it; the counts. (The balance weighs the bundles'
/// load, not their number: with the load through one broker it may settle further apart.)
async fn balanced_over(
    c: &reqwest::Client,
    via: &str,
    brokers: &[&str],
    bundles: usize,
    spread: Option<usize>,
) -> BTreeMap<String, usize> {
    eventually(30, "balance over three brokers", || async {
        let (owned, _) = ownership(c, via).await;
        let n = counts(&owned);
        let settled = owned.len() == bundles
            && brokers.iter().all(|id| n.get(*id).copied().unwrap_or(0) >= 1)
            && spread.is_none_or(|s| n.values().max().unwrap() - n.values().min().unwrap() <= s);
        settled.then_some(n)
    })
    .await
}

/// 1 → 3 → 1 → 3 under load (the 3 → 1 → 3 after a first balance), no request failing
/// and every acknowledged message stored once.
async fn scale(object_store: bool) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config().await;
    let a = BrokerProcess::start_cluster(&dir.path().join("a"), &cfg, &[]);
    let c = reqwest::Client::new();
    partitioned_topic(&c, &a.base).await;
    if object_store {
        set_durability(&c, &a.base, "object-store").await;
    }
    let load = Load::start(vec![a.base.clone()], 3);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (owned, _) = ownership(&c, &a.base).await;
    let bundles = owned.len();
    assert!(bundles >= 3, "the partitions fall into several bundles: {owned:?}");
    assert!(owned.values().all(|o| o == &a.addr));

    // 1 → 3: the new brokers receive bundles until no broker is above the mean by the margin.
    let b = BrokerProcess::start_cluster(&dir.path().join("b"), &cfg, &[]);
    let c3 = BrokerProcess::start_cluster(&dir.path().join("c"), &cfg, &[]);
    let balanced = balanced_over(&c, &a.base, &[&a.addr, &b.addr, &c3.addr], bundles, Some(1)).await;
    let text = c.get(format!("{}/metrics", a.base)).send().await.unwrap().text().await.unwrap();
    let moves: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("magnetar_tier_rebalance_moves_total ").and_then(|v| v.parse().ok()))
        .expect("moves counted by the leader");
    assert!(moves >= 2.0 && moves as usize <= bundles, "{moves} moves for {bundles} bundles: {balanced:?}");

    // 3 → 1: both new brokers drain back onto a.
    let b = terminate(b).await;
    let c3 = terminate(c3).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut acked = load.finish_without_failures("1 → 3 → 1 under load").await;
    let (owned, unavailable) = ownership(&c, &a.base).await;
    assert!(!unavailable && owned.values().all(|o| o == &a.addr), "{owned:?}");

    // 1 → 3 again: the two come back and take bundles over while the load goes on.
    let load = Load::numbered(vec![a.base.clone()], 10..13);
    let b = restart(b).await;
    let c3 = restart(c3).await;
    balanced_over(&c, &a.base, &[&a.addr, &b.addr, &c3.addr], bundles, None).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    acked.extend(load.finish_without_failures("1 → 3 again under load").await);
    let (_, unavailable) = ownership(&c, &a.base).await;
    assert!(!unavailable);
    assert_stored_once(&c, &b.base, &acked).await;
    drop((b, c3));
}

/// 3 → 1 → 3 with replicated durability (2/2): the two brokers that leave hand their bundles
/// over to the one that stays, which cannot find a peer for them or for its own streams;
/// producers get 503s with a reason until the brokers return, then every partition acknowledges
/// again and each acknowledged message is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_three_to_one_to_three_with_replicated_durability_refuses_without_a_quorum_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config().await;
    let [a, b, c3] = ["a", "b", "c"].map(|n| BrokerProcess::start_cluster(&dir.path().join(n), &cfg, &[]));
    let c = reqwest::Client::new();
    partitioned_topic(&c, &a.base).await;
    let url = format!("{}/admin/v2/namespaces/acme/app/durability", a.base);
    let policy = json!({"mode": "replicated", "objectStoreMaxWaitMs": 1500});
    let (status, body) = call(&c, Method::POST, &url, Some(policy)).await;
    assert_eq!(status.as_u16(), 204, "{body}");

    // 3 → 1 under load through a.
    let load = Load::numbered(vec![a.base.clone()], 0..3);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let b = terminate(b).await;
    let c3 = terminate(c3).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (mut acked, failures) = load.finish().await;
    assert!(acked.len() > 100, "the load ran: {} messages", acked.len());
    assert!(!failures.is_empty(), "one broker acknowledged messages it could not replicate");
    assert!(failures.iter().all(|f| f.contains(" 503 ")), "only refusals: {:?}", &failures[..failures.len().min(3)]);

    // Alone, a refuses every partition with a reason.
    for i in 0..crate::common::tier::PARTITIONS {
        let url = format!("{}/topics/persistent/{TOPIC}/partitions/{i}", a.base);
        let body = json!({"messages": [{"payload": "eA==", "properties": {"id": format!("alone-{i}")}}]});
        let (status, answer) = call(&c, Method::POST, &url, Some(body)).await;
        assert_eq!(status.as_u16(), 503, "partition {i} acknowledged by one broker: {answer}");
        let reason = answer["reason"].as_str().unwrap_or_default().to_string()
            + answer["messagePublishResults"].to_string().as_str();
        let named = ["live brokers", "quorum", "replicas"].iter().any(|w| reason.contains(w));
        assert!(named, "partition {i}: the refusal names what is missing: {answer}");
    }

    // 1 → 3: the brokers return, every partition acknowledges again.
    let returned = std::time::Instant::now();
    let b = restart(b).await;
    let c3 = restart(c3).await;
    let bases = vec![a.base.clone(), b.base.clone(), c3.base.clone()];
    let attempt = std::sync::atomic::AtomicUsize::new(0);
    crate::common::eventually(60, "every partition acknowledging after the brokers returned", || async {
        let mut all = true;
        for i in 0..crate::common::tier::PARTITIONS {
            let url = format!("{}/topics/persistent/{TOPIC}/partitions/{i}", a.base);
            // A fresh id per attempt: an attempt refused may still be stored.
            let id = format!("back-{i}-{}", attempt.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
            let body = json!({"messages": [{"payload": "eA==", "properties": {"id": id}}]});
            let (status, _) = call(&c, Method::POST, &url, Some(body)).await;
            all &= status.as_u16() == 200;
        }
        all.then_some(())
    })
    .await;
    eprintln!(
        "3 → 1: {} messages acknowledged, {} requests refused with 503; 1 → 3: every partition acknowledging {} ms \
         after the restarts began",
        acked.len(),
        failures.len(),
        returned.elapsed().as_millis()
    );
    let load = Load::numbered(bases, 10..13);
    tokio::time::sleep(Duration::from_secs(2)).await;
    acked.extend(load.finish_without_failures("after the brokers returned").await);
    let (owned, unavailable) = ownership(&c, &a.base).await;
    assert!(!unavailable, "{owned:?}");
    assert_stored_once(&c, &b.base, &acked).await;
    drop((b, c3));
}
