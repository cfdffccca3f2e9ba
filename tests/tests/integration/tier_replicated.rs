//! Replicated durability with write quorum 3 and ack quorum 2 (issue 13): three brokers, each
//! record fsynced by its owner and sent to both others, acknowledged once two copies exist.
//! Killing the owner and one replica loses nothing acknowledged: the partitions wait until
//! enough replicas are back to recover from (two of the three copies must answer, so that every
//! acknowledged record is among them), and meanwhile a broker that cannot reach its ack quorum
//! refuses to acknowledge (503) rather than acknowledging less than promised.

use crate::common::eventually;
use crate::common::tier::{
    Load, PARTITIONS, TOPIC, assert_stored_once, audit_subscriptions, brokers, bundle_of, expect, namespace, ownership,
    partition, tier_config, wait_acknowledged,
};
use magnetar_tests::call;
use reqwest::Method;
use serde_json::json;
use std::time::{Duration, Instant};

/// Partition `i`, owned by the broker at `owner`, shows write quorum 3 and ack quorum 2 with
/// `peers` as its replicas in its stats, in the topic's totals and in the owner's metrics.
async fn shows_its_quorum(c: &reqwest::Client, owner: &str, i: u32, peers: &[&String]) {
    let url = format!("{owner}/admin/v2/persistent/{}/stats", partition(i));
    let stats = expect(call(c, Method::GET, &url, None).await, 200, "stats");
    assert_eq!((stats["writeQuorum"].as_u64(), stats["ackQuorum"].as_u64()), (Some(3), Some(2)), "{stats}");
    let mut named: Vec<&str> =
        stats["replicaPeers"].as_array().expect("replicaPeers").iter().flat_map(|p| p.as_str()).collect();
    named.sort();
    let mut expected: Vec<&str> = peers.iter().map(|p| p.as_str()).collect();
    expected.sort();
    assert_eq!(named, expected, "{stats}");
    let url = format!("{owner}/admin/v2/persistent/{TOPIC}/partitioned-stats");
    let totals = expect(call(c, Method::GET, &url, None).await, 200, "partitioned stats");
    assert_eq!((totals["writeQuorum"].as_u64(), totals["ackQuorum"].as_u64()), (Some(3), Some(2)), "{totals}");
    let text = c.get(format!("{owner}/metrics")).send().await.unwrap().text().await.unwrap();
    let topic = format!("topic=\"persistent://{}\"", partition(i));
    let value = |family: &str| -> f64 {
        let line = text.lines().find(|l| l.starts_with(&format!("{family}{{")) && l.contains(&topic));
        line.and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{family} of {topic}"))
    };
    assert_eq!(value("magnetar_durability_replicated"), 1.0);
    assert_eq!(value("magnetar_durability_object_store"), 0.0);
    assert_eq!(value("magnetar_durability_write_quorum"), 3.0);
    assert_eq!(value("magnetar_durability_ack_quorum"), 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_write_quorum_3_killing_the_owner_and_a_replica_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tier_config().await;
    let [a, mut b, mut c3] = brokers(dir.path(), &cfg);
    let c = reqwest::Client::new();
    write_quorum_3(&c, &a.base).await;

    let load = Load::start(vec![a.base.clone()], 2);
    wait_acknowledged(&c, &a.base, 300).await;
    let stats = expect(
        call(&c, Method::GET, &format!("{}/admin/v2/persistent/{}/stats", a.base, partition(0)), None).await,
        200,
        "stats",
    );
    assert_eq!(stats["durability"], "replicated", "{stats}");
    // The owners' batches travel over replication streams (one per replica set and peer).
    for peer in [&b, &c3] {
        let streams = crate::tier_failover::metric(&c, &peer.base, "magnetar_replica_streams").await;
        assert!(streams >= 1.0, "{} serves no replication stream: {streams}", peer.addr);
    }

    let on_a = crate::tier_failover::partitions_of(&c, &a.base, &a.addr).await;
    assert!(!on_a.is_empty(), "a owns none of the {PARTITIONS} partitions");
    shows_its_quorum(&c, &a.base, on_a[0], &[&b.addr, &c3.addr]).await;

    // The owner of some partitions and a replica of everything die together.
    let killed = Instant::now();
    b.kill9();
    c3.kill9();
    // a alone holds one copy of what it writes: it cannot reach its ack quorum of 2, and says so
    // after the policy's 2 s wait instead of acknowledging.
    let refusal = eventually(30, "a refuses to acknowledge without its quorum", || async {
        let url = format!("{}/topics/persistent/{TOPIC}/partitions/{}", a.base, on_a[0]);
        let (status, body) = call(
            &c,
            Method::POST,
            &url,
            Some(json!({"messages": [{"payload": "eA==", "properties": {"id": "alone"}}]})),
        )
        .await;
        assert_ne!(status.as_u16(), 200, "acknowledged with one copy of three: {body}");
        (status.as_u16() == 503 && body["reason"].as_str().unwrap_or_default().contains("ack quorum")).then_some(body)
    })
    .await;
    eprintln!("with one broker of three alive: 503 {refusal}");
    // What it still serves is reported under-replicated once the others' leases have expired
    // (and stays so: there is no spare broker to move the stream to).
    eventually(15, "a's partitions reported under-replicated", || async {
        let under = crate::tier_failover::metric(&c, &a.base, "magnetar_under_replicated_partitions").await;
        (under >= 1.0).then_some(())
    })
    .await;

    // Both come back on their disks: every partition recovers and serves again.
    tokio::time::sleep(Duration::from_secs(5)).await;
    b.restart();
    c3.restart();
    for i in 0..PARTITIONS {
        let url = format!("{}/topics/persistent/{TOPIC}/partitions/{i}", a.base);
        let attempts = std::sync::atomic::AtomicUsize::new(0);
        eventually(60, "produce to every partition again", || async {
            let id = format!("probe-{i}-{}", attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
            let probe = json!({"messages": [{"payload": "eA==", "properties": {"id": id}}]});
            (call(&c, Method::POST, &url, Some(probe)).await.0.as_u16() == 200).then_some(())
        })
        .await;
    }
    let recovered = killed.elapsed();
    let (acked, failures) = load.finish().await;
    eprintln!(
        "owner and replica killed: every partition acknowledging again {} ms after the kill (restarts 5 s after it); \
         {} messages acknowledged, {} requests refused meanwhile",
        recovered.as_millis(),
        acked.len(),
        failures.len()
    );
    assert!(failures.iter().all(|f| f.contains(" 503 ")), "only refusals while the quorum was gone: {failures:?}");
    assert!(!failures.is_empty(), "nothing was refused while two of three brokers were dead");
    let (_, unavailable) = ownership(&c, &a.base).await;
    assert!(!unavailable);
    assert_stored_once(&c, &a.base, &acked).await;
}

/// The namespace with replicated durability 3/2 (waits of 2 s), the partitioned topic and its
/// audit subscriptions.
async fn write_quorum_3(c: &reqwest::Client, base: &str) {
    namespace(c, base).await;
    let ns = format!("{base}/admin/v2/namespaces/acme/app");
    // The mode first (with the default quorum 2/2), then the quorum it keeps.
    let policy = json!({"mode": "replicated", "objectStoreMaxWaitMs": 2000});
    expect(call(c, Method::POST, &format!("{ns}/durability"), Some(policy)).await, 204, "durability");
    let quorum = json!({"bookkeeperEnsemble": 3, "bookkeeperWriteQuorum": 3, "bookkeeperAckQuorum": 2});
    expect(call(c, Method::POST, &format!("{ns}/persistence"), Some(quorum)).await, 204, "persistence");
    let url = format!("{base}/admin/v2/persistent/{TOPIC}/partitions");
    expect(call(c, Method::PUT, &url, Some(json!(PARTITIONS))).await, 204, "partitioned topic");
    audit_subscriptions(c, base).await;
}

/// Messages with the given ids to partition `p` through `base`: the status and answer.
async fn produce_one(c: &reqwest::Client, base: &str, p: u32, ids: &[&str]) -> (u16, serde_json::Value) {
    let url = format!("{base}/topics/persistent/{TOPIC}/partitions/{p}");
    let messages: Vec<_> = ids.iter().map(|id| json!({"payload": "eA==", "properties": {"id": id}})).collect();
    let (status, body) = call(c, Method::POST, &url, Some(json!({ "messages": messages }))).await;
    (status.as_u16(), body)
}

/// An owner whose handover failed while records of a partition waited for their replicas (one
/// peer of two frozen, the other holding them), the partition loaded again: the records the owner
/// accepted are stored once. In CI (stop 38) they were stored twice: the load recovered the live
/// peer's copy of them after the owner's own. The peer is paused rather than killed, and its
/// requests time out only after 30 s: a stream whose batch has failed defers the handover
/// instead (`tier_dead_peer`), while a peer that stops answering during a handover fails it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_waiting_for_their_replicas_through_a_failed_handover_are_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tier_config().await + "\n[broker.durability]\nreplication_timeout_ms = 30000\n";
    let [a, mut b, c3] = brokers(dir.path(), &cfg);
    let c = reqwest::Client::new();
    write_quorum_3(&c, &a.base).await;
    let on_a = crate::tier_failover::partitions_of(&c, &a.base, &a.addr).await;
    let p = *on_a.first().expect("a owns a partition");
    assert_eq!(produce_one(&c, &a.base, p, &["before"]).await.0, 200, "produce with every broker up");
    let stored = crate::tier_failover::metric(&c, &c3.base, "magnetar_replica_stored_bytes").await;

    // c stores what a sends it; b's copy never comes, and the ack quorum needs both.
    b.pause();
    let waiting = ["waiting-0", "waiting-1", "waiting-2", "waiting-3", "waiting-4"];
    let (status, answer) = produce_one(&c, &a.base, p, &waiting).await;
    assert_eq!(status, 503, "acknowledged without an ack quorum: {answer}");
    let now = crate::tier_failover::metric(&c, &c3.base, "magnetar_replica_stored_bytes").await;
    assert!(now > stored, "c did not store the waiting records ({stored} then {now} bytes)");
    // They wait for their replicas longer than the policy's 2 s: the handover fails and the bundle
    // stays on a, its partition unloaded, and loaded again (c's copy of them to recover from).
    let bundle = bundle_of(&c, &a.base, &partition(p)).await;
    let unload = format!("{}/admin/v2/namespaces/acme/app/{}/unload", a.base, bundle.trim_start_matches("acme/app/"));
    let (status, answer) = call(&c, Method::PUT, &unload, None).await;
    assert!(status.as_u16() >= 500, "handover with records waiting for their replicas: {status} {answer}");
    let reason = answer["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("replicas longer than"), "the handover began and failed: {answer}");

    // Paused past its lease, b would acknowledge nothing more once resumed: started again.
    b.kill9();
    b.restart();
    eventually(60, "the partition acknowledges again", || async {
        (produce_one(&c, &a.base, p, &["after"]).await.0 == 200).then_some(())
    })
    .await;
    let stored = crate::common::tier::drain_subscription(&c, &a.base, &partition(p), "audit").await;
    for id in waiting.iter().chain(&["before"]) {
        assert_eq!(stored.get(*id), Some(&1), "{id} stored once: {stored:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicated_durability_needs_an_ack_quorum_of_two_copies() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tier_config().await;
    let [a, _b] = brokers(dir.path(), &cfg);
    let c = reqwest::Client::new();
    namespace(&c, &a.base).await;
    let ns = format!("{}/admin/v2/namespaces/acme/app", a.base);
    let durability = format!("{ns}/durability");
    // Pulsar standalone's habitual 1/1/1 is one copy: not replication.
    let one = json!({"bookkeeperEnsemble": 1, "bookkeeperWriteQuorum": 1, "bookkeeperAckQuorum": 1});
    expect(call(&c, Method::POST, &format!("{ns}/persistence"), Some(one)).await, 204, "persistence");
    let (status, answer) = call(&c, Method::POST, &durability, Some(json!({"mode": "replicated"}))).await;
    assert_eq!(status.as_u16(), 400, "{answer}");
    assert!(answer["reason"].as_str().unwrap().contains("bookkeeperAckQuorum is 1"), "{answer}");
    // Without the mode, more than one copy is a promise nothing keeps.
    let two = json!({"bookkeeperEnsemble": 2, "bookkeeperWriteQuorum": 2, "bookkeeperAckQuorum": 2});
    let (status, answer) = call(&c, Method::POST, &format!("{ns}/persistence"), Some(two.clone())).await;
    assert_eq!(status.as_u16(), 400, "{answer}");
    assert!(answer["reason"].as_str().unwrap().contains("keeps one copy"), "{answer}");
    assert_eq!(expect(call(&c, Method::GET, &durability, None).await, 200, "unset"), json!(null));
    // 2/2 works, and the topic says so.
    expect(call(&c, Method::DELETE, &format!("{ns}/persistence"), None).await, 204, "default persistence");
    expect(call(&c, Method::POST, &durability, Some(json!({"mode": "replicated"}))).await, 204, "replicated");
    expect(call(&c, Method::POST, &format!("{ns}/persistence"), Some(two)).await, 204, "2/2 once replicated");
    let topic = format!("{}/topics/persistent/acme/app/t", a.base);
    expect(call(&c, Method::POST, &topic, Some(json!({"messages": [{"payload": "eA=="}]}))).await, 200, "produce");
    let stats = format!("{}/admin/v2/persistent/acme/app/t/stats", a.base);
    assert_eq!(expect(call(&c, Method::GET, &stats, None).await, 200, "stats")["durability"], "replicated");
    // Back to local while two copies are promised: refused until the quorum is lowered.
    let (status, answer) = call(&c, Method::DELETE, &durability, None).await;
    assert!(status.is_client_error(), "{status} {answer}");
    assert!(answer["reason"].as_str().unwrap_or_default().contains("keeps one copy"), "{answer}");
    // Lowering the ack quorum under a replicated namespace is refused too.
    let (status, answer) = call(
        &c,
        Method::POST,
        &format!("{ns}/persistence"),
        Some(json!({"bookkeeperEnsemble": 2, "bookkeeperWriteQuorum": 2, "bookkeeperAckQuorum": 1})),
    )
    .await;
    assert!(status.is_client_error(), "{status} {answer}");
    assert!(answer["reason"].as_str().unwrap_or_default().contains("bookkeeperAckQuorum"), "{answer}");
}

/// An owner killed -9 and started again at once, within its lease: records go to the peers
/// while the owner's WAL fsyncs them, so a peer may hold records the owner's disk never got
/// (never acknowledged) and the owner's disk records the peer never confirmed (never
/// acknowledged either). Whoever serves the partitions next — the restarted owner or a broker
/// the leader failed them over to — recovers from the replicas past its own copy: every
/// acknowledged message is read back once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_killed_and_restarted_within_its_lease_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tier_config().await;
    let mut brokers: Vec<_> = brokers::<3>(dir.path(), &cfg).into_iter().collect();
    let c = reqwest::Client::new();
    namespace(&c, &brokers[0].base).await;
    let base0 = brokers[0].base.clone();
    let policy = json!({"mode": "replicated", "objectStoreMaxWaitMs": 2000});
    let url = format!("{base0}/admin/v2/namespaces/acme/app/durability");
    expect(call(&c, Method::POST, &url, Some(policy)).await, 204, "durability");
    let url = format!("{base0}/admin/v2/persistent/{TOPIC}/partitions");
    expect(call(&c, Method::PUT, &url, Some(json!(PARTITIONS))).await, 204, "partitioned topic");
    audit_subscriptions(&c, &base0).await;
    // A first load places every bundle.
    let warm = Load::numbered(brokers.iter().map(|b| b.base.clone()).collect(), 10..11);
    wait_acknowledged(&c, &base0, 100).await;
    let mut acked_all = warm.finish_without_failures("warm-up").await;

    // The victim owns partitions; the load goes through the other two.
    let mut victim = 0;
    for (i, b) in brokers.iter().enumerate() {
        if !crate::tier_failover::partitions_of(&c, &base0, &b.addr).await.is_empty() {
            victim = i;
            break;
        }
    }
    let others: Vec<String> = (0..3).filter(|i| *i != victim).map(|i| brokers[i].base.clone()).collect();
    let load = Load::start(others.clone(), 2);
    wait_acknowledged(&c, &others[0], 300).await;
    let killed = Instant::now();
    brokers[victim].kill9();
    brokers[victim].restart();
    let attempt = std::sync::atomic::AtomicUsize::new(0);
    eventually(60, "every partition acknowledging after the restart", || async {
        let mut all = true;
        for i in 0..PARTITIONS {
            let url = format!("{}/topics/persistent/{TOPIC}/partitions/{i}", others[0]);
            // A fresh id per attempt: an attempt refused may still be stored.
            let id = format!("probe-{i}-{}", attempt.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
            let body = json!({"messages": [{"payload": "eA==", "properties": {"id": id}}]});
            all &= call(&c, Method::POST, &url, Some(body)).await.0.as_u16() == 200;
        }
        all.then_some(())
    })
    .await;
    let served = killed.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let acked = load
        .finish_refused_only_as_unavailable(&format!(
            "owner killed -9 and restarted: every partition acknowledging {} ms after the kill",
            served.as_millis()
        ))
        .await;
    let (owned, unavailable) = ownership(&c, &others[0]).await;
    assert!(!unavailable, "{owned:?}");
    acked_all.extend(acked);
    assert_stored_once(&c, &others[0], &acked_all).await;
}

/// The replication stream is an internal endpoint: opened only for the session of a live
/// member of the tier, and only as the protocol it names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replication_stream_is_opened_only_for_a_live_members_session() {
    let (_dir, a, c) = crate::common::tier::lone_broker().await;
    let url = format!("{}/internal/v1/replicas/stream?broker=intruder&session=guessed", a.base);
    let res = c
        .get(&url)
        .header("connection", "upgrade")
        .header("upgrade", "magnetar-replica/1")
        .send()
        .await
        .expect("request");
    assert_eq!(res.status().as_u16(), 403, "{:?}", res.text().await);
    let (status, body) = call(&c, Method::GET, &url, None).await;
    assert_eq!(status.as_u16(), 400, "{body}");
    assert!(body["reason"].as_str().unwrap_or_default().contains("Upgrade: magnetar-replica/1"), "{body}");
}
