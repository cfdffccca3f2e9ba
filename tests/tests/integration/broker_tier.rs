//! The broker tier's membership (issue 11, first step): brokers of one cluster on one
//! PostgreSQL register themselves with a lease, list each other, leave on SIGTERM, drop out
//! when their lease expires after a crash, and rejoin at once when restarted on their data.

use magnetar_tests::{BrokerProcess, call};
use reqwest::Method;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Short leases so that a crashed broker drops out within seconds.
async fn tier_config() -> String {
    let membership = "[broker.membership]\nlease_ms = 2000\nrenew_interval_ms = 300\nfence_margin_ms = 500\n";
    crate::common::cluster_toml("tier", "", membership).await
}

async fn brokers_seen_by(c: &reqwest::Client, broker: &BrokerProcess) -> Vec<String> {
    let (s, body) = call(c, Method::GET, &format!("{}/admin/v2/brokers/tier", broker.base), None).await;
    assert_eq!(s, 200, "{body}");
    let mut list: Vec<String> =
        body.as_array().expect("a list").iter().map(|v: &Value| v.as_str().expect("address").to_string()).collect();
    list.sort();
    list
}

fn sorted(addrs: &[&BrokerProcess]) -> Vec<String> {
    let mut v: Vec<String> = addrs.iter().map(|b| b.addr.clone()).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brokers_of_one_cluster_see_each_other_and_leave_by_shutdown_or_lease_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tier_config().await;
    let mut a = BrokerProcess::start_cluster(&dir.path().join("a"), &cfg, &[]);
    let mut b = BrokerProcess::start_cluster(&dir.path().join("b"), &cfg, &[]);
    let mut c3 = BrokerProcess::start_cluster(&dir.path().join("c"), &cfg, &[]);
    let c = reqwest::Client::new();
    for broker in [&a, &b, &c3] {
        assert_eq!(brokers_seen_by(&c, broker).await, sorted(&[&a, &b, &c3]), "as seen by {}", broker.addr);
    }

    // SIGTERM: the broker deregisters on its way out.
    assert!(b.terminate().success());
    assert_eq!(brokers_seen_by(&c, &a).await, sorted(&[&a, &c3]));

    // SIGKILL: listed until its 2 s lease expires, then gone.
    c3.kill9();
    assert!(brokers_seen_by(&c, &a).await.contains(&c3.addr), "a crashed broker keeps its lease for a while");
    let deadline = Instant::now() + Duration::from_secs(10);
    while brokers_seen_by(&c, &a).await.contains(&c3.addr) {
        assert!(Instant::now() < deadline, "the crashed broker's lease never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(brokers_seen_by(&c, &a).await, sorted(&[&a]));

    // Restarted on its data right after a crash, a broker takes its own row over at once.
    a.kill9();
    let started = Instant::now();
    a.restart();
    assert!(started.elapsed() < Duration::from_secs(2), "the restart waited out the lease");
    b.restart();
    assert_eq!(brokers_seen_by(&c, &b).await, sorted(&[&a, &b]));
}

#[test]
fn a_configuration_in_which_renewals_cannot_keep_the_lease_is_refused() {
    let out = crate::cluster_mode::broker_refuses(
        "[metadata]\nurl = \"postgres://nobody@127.0.0.1:1/none\"\n\n[auth]\nallow_insecure = true\n\n[broker.membership]\nlease_ms = 5000\nrenew_interval_ms = 6000\n",
    );
    assert!(out.contains("renew_interval_ms"), "{out}");
}
