//! A broker that loses its disk (issue 13: "an operator kills any broker at any moment — or
//! loses its disk — and no message ... that any client was told is durable is lost"): stopped
//! with kill -9, its data directory emptied (its volume replaced by a blank one), then started
//! again under the same name. With replicated durability the copies it held as a peer are gone:
//! its owners must notice and send their tails again before the copy counts, or the next
//! failover recovers from a replica with a hole.

use crate::common::eventually;
use crate::common::tier::{
    Load, PARTITIONS, TOPIC, assert_stored_once, assert_stored_once_in, audit_subscriptions, audited_topic, brokers,
    bundle_of, drain_subscription, expect, namespace, ownership, subscriptions_named, tier_config, tier_config_with,
    unload_every_bundle, wait_acknowledged,
};
use crate::tier_failover::{Mode, metric, partitions_of};
use magnetar_tests::{BrokerProcess, call};
use reqwest::Method;
use serde_json::json;
use std::time::{Duration, Instant};

/// `N` brokers (their configuration ending with `more`), `TOPIC` partitioned with the durability
/// `mode` (replicated: write and ack quorum 2, each partition's owner and the broker after it in
/// id order), every bundle placed by a first load; what that load had acknowledged.
pub(crate) async fn tier_with<const N: usize>(
    c: &reqwest::Client,
    dir: &std::path::Path,
    mode: Mode,
    more: &str,
) -> (Vec<BrokerProcess>, std::collections::BTreeSet<String>) {
    tier_with_config::<N>(c, dir, mode, |cfg| cfg + more).await
}

/// `tier_with`, its configuration edited by `edit`.
pub(crate) async fn tier_with_config<const N: usize>(
    c: &reqwest::Client,
    dir: &std::path::Path,
    mode: Mode,
    edit: impl FnOnce(String) -> String,
) -> (Vec<BrokerProcess>, std::collections::BTreeSet<String>) {
    // No balancing: the tests follow one owner's partitions.
    let cfg = edit(tier_config().await.replace(
        "[broker.tier]\nenabled = true\n",
        "[broker.tier]\nenabled = true\nrebalance_interval_ms = 3600000\nrebalance_margin = 1000.0\n",
    ));
    let brokers: Vec<_> = brokers::<N>(dir, &cfg).into_iter().collect();
    let base0 = brokers[0].base.clone();
    namespace(c, &base0).await;
    let url = format!("{base0}/admin/v2/namespaces/acme/app/durability");
    expect(call(c, Method::POST, &url, Some(mode.policy(Some(2000)))).await, 204, "durability");
    let url = format!("{base0}/admin/v2/persistent/{TOPIC}/partitions");
    expect(call(c, Method::PUT, &url, Some(json!(PARTITIONS))).await, 204, "partitioned topic");
    audit_subscriptions(c, &base0).await;
    subscriptions_named(c, &base0, "again").await;
    let warm = Load::numbered(brokers.iter().map(|b| b.base.clone()).collect(), 10..11);
    wait_acknowledged(c, &base0, 100).await;
    let acked = warm.finish_without_failures("warm-up").await;
    (brokers, acked)
}

/// The index of a broker owning partitions, and of its peer: the live broker after it in id
/// order (broker ids are the addresses), as `Replication::candidates` chooses.
pub(crate) async fn owner_and_peer(c: &reqwest::Client, brokers: &[BrokerProcess]) -> (usize, usize) {
    let base = &brokers[0].base;
    let mut owner = None;
    for (i, b) in brokers.iter().enumerate() {
        if !partitions_of(c, base, &b.addr).await.is_empty() {
            owner = Some(i);
            break;
        }
    }
    let owner = owner.expect("a broker owns partitions");
    let mut others: Vec<usize> = (0..brokers.len()).filter(|i| *i != owner).collect();
    others.sort_by(|x, y| brokers[*x].addr.cmp(&brokers[*y].addr));
    let peer = others.iter().copied().find(|i| brokers[*i].addr > brokers[owner].addr).unwrap_or(others[0]);
    (owner, peer)
}

/// Probes every partition through `base` until each acknowledges a message (ids `{tag}-...`,
/// unique per call).
pub(crate) async fn every_partition_acknowledges(c: &reqwest::Client, base: &str, tag: &str) {
    let attempt = std::sync::atomic::AtomicUsize::new(0);
    eventually(90, "every partition acknowledging", || async {
        let mut all = true;
        for i in 0..PARTITIONS {
            let url = format!("{base}/topics/persistent/{TOPIC}/partitions/{i}");
            // A fresh id per attempt: an attempt refused may still be stored.
            let id = format!("{tag}-{i}-{}", attempt.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
            let body = json!({"messages": [{"payload": "eA==", "properties": {"id": id}}]});
            all &= call(c, Method::POST, &url, Some(body)).await.0.as_u16() == 200;
        }
        all.then_some(())
    })
    .await;
}

/// The peer of an owner's partitions loses its disk under load and comes back blank; the owner
/// sends it everything past the uploaded segments again (`magnetar_replica_tails_resent_total`)
/// and reports the partitions under-replicated until then. Then the owner dies (kill -9, for
/// good): the partitions fail over and are recovered from that peer, and every message
/// acknowledged before, during and after the disk loss is read back exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_lost_its_disk_is_sent_the_tail_again_and_the_owners_failover_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let c = reqwest::Client::new();
    let (mut brokers, mut acked_all) = tier_with::<3>(&c, dir.path(), Mode::Replicated, "").await;
    let (owner, peer) = owner_and_peer(&c, &brokers).await;
    let third = (0..3).find(|i| *i != owner && *i != peer).expect("a third broker");
    let owned = partitions_of(&c, &brokers[third].base, &brokers[owner].addr).await;
    eprintln!(
        "owner {} (partitions {owned:?}), its peer {}, third {}",
        brokers[owner].addr, brokers[peer].addr, brokers[third].addr
    );

    // The load goes through the third broker, which forwards to the owners.
    let via = brokers[third].base.clone();
    let load = Load::numbered(vec![via.clone()], 0..2);
    wait_acknowledged(&c, &via, 400).await;
    let before = metric(&c, &brokers[owner].base, "magnetar_replica_tails_resent_total").await;
    brokers[peer].kill9();
    brokers[peer].lose_disk();
    brokers[peer].restart();
    let restarted = Instant::now();
    // The owner learns that the peer's copy is a new one from its answers, and sends the tail
    // of each partition it replicates there again. Or, when a tend of the owner's found the
    // peer not live (blank, it waits out its previous process's lease before it joins), the
    // stream moves to the third broker, which is sent the tails instead: the partitions' stats
    // stop naming the peer once that move is done.
    let way = eventually(60, "the owner's tails sent again to the blank peer, or to the third broker", || async {
        let resent = metric(&c, &brokers[owner].base, "magnetar_replica_tails_resent_total").await;
        if resent - before >= owned.len() as f64 {
            return Some("sent again to the blank peer");
        }
        let mut moved = true;
        for i in &owned {
            let url = format!("{}/admin/v2/persistent/{}", brokers[owner].base, crate::common::tier::partition(*i));
            let (_, s) = call(&c, Method::GET, &format!("{url}/stats"), None).await;
            let peers = s["replicaPeers"].as_array().cloned().unwrap_or_default();
            moved &= !peers.is_empty() && !peers.iter().any(|p| p.as_str() == Some(brokers[peer].addr.as_str()));
        }
        moved.then_some("moved to the third broker (the peer was not live at a tend)")
    })
    .await;
    eprintln!("the owner's tails: {way}");
    let under = metric(&c, &brokers[owner].base, "magnetar_under_replicated_partitions").await;
    eprintln!(
        "tails sent again {} ms after the peer was ready; under-replicated partitions on the owner: {under}",
        restarted.elapsed().as_millis()
    );

    // The owner dies for good: its partitions are recovered from the peer alone.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killed = Instant::now();
    brokers[owner].kill9();
    every_partition_acknowledges(&c, &via, "probe").await;
    let served = killed.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let acked = load
        .finish_refused_only_as_unavailable(&format!(
            "owner killed after its peer lost its disk: every partition acknowledging {} ms after the kill",
            served.as_millis()
        ))
        .await;
    let (_, unavailable) = ownership(&c, &via).await;
    assert!(!unavailable);
    acked_all.extend(acked);
    assert_stored_once(&c, &via, &acked_all).await;

    // The dead owner comes back on a blank disk too: it joins at once (its lease ran out long
    // ago), takes bundles again when they are unloaded (the broker owning the fewest gets them)
    // and serves them from what the others uploaded, bringing nothing back.
    brokers[owner].lose_disk();
    brokers[owner].restart();
    let (_, moved) = unload_every_bundle(&c, &brokers[third], &brokers[third]).await;
    let on_blank = partitions_of(&c, &via, &brokers[owner].addr).await;
    eprintln!("after unloading every bundle: {moved} moved, the blank owner serves partitions {on_blank:?}");
    assert!(!on_blank.is_empty(), "the broker back on a blank disk took no partition");
    every_partition_acknowledges(&c, &via, "probe-after").await;
    // Read back again, through a second subscription: the audit one is drained.
    assert_stored_once_in(&c, &via, "again", &acked_all).await;
}

/// With object-store durability, the owner of some partitions loses its disk under load: killed,
/// its data directory emptied, started again at once. It waits out the lease its name holds
/// while the others take its partitions over from the bucket, then joins blank, takes bundles
/// again when they are unloaded, and every acknowledged message is read back exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_that_lost_its_disk_with_object_store_durability_comes_back_blank_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let c = reqwest::Client::new();
    let (mut brokers, mut acked_all) = tier_with::<3>(&c, dir.path(), Mode::ObjectStore, "").await;
    let (owner, _) = owner_and_peer(&c, &brokers).await;
    let others: Vec<usize> = (0..3).filter(|i| *i != owner).collect();
    let via = brokers[others[0]].base.clone();
    let load = Load::numbered(others.iter().map(|i| brokers[*i].base.clone()).collect(), 0..2);
    wait_acknowledged(&c, &via, 400).await;
    let killed = Instant::now();
    brokers[owner].kill9();
    brokers[owner].lose_disk();
    brokers[owner].restart();
    let joined = killed.elapsed();
    every_partition_acknowledges(&c, &via, "probe").await;
    let served = killed.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let acked = load
        .finish_refused_only_as_unavailable(&format!(
            "owner back on a blank disk: ready {} ms after the kill, every partition acknowledging after {} ms",
            joined.as_millis(),
            served.as_millis()
        ))
        .await;
    acked_all.extend(acked);
    let (_, moved) = unload_every_bundle(&c, &brokers[others[0]], &brokers[others[0]]).await;
    let on_blank = partitions_of(&c, &via, &brokers[owner].addr).await;
    eprintln!("after unloading every bundle: {moved} moved, the blank owner serves partitions {on_blank:?}");
    assert!(!on_blank.is_empty(), "the broker back on a blank disk took no partition");
    every_partition_acknowledges(&c, &via, "probe-after").await;
    assert_stored_once(&c, &via, &acked_all).await;
}

/// With `local` durability (the default), the owner of a topic loses its disk: its tail past the
/// uploaded segments is gone with it, as the mode says. Back on a blank disk it takes its bundle
/// back, and moves the subscription that had read further than what is left back to where the
/// topic continues: the subscription receives the messages produced after the restart, instead
/// of skipping those stored at offsets it had passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_owner_back_on_a_blank_disk_moves_back_cursors_past_its_lost_tail() {
    let dir = tempfile::tempdir().unwrap();
    let c = reqwest::Client::new();
    let cfg = tier_config_with("cursor_checkpoint_interval_ms = 200\n").await;
    let mut brokers: Vec<_> = brokers::<2>(dir.path(), &cfg).into_iter().collect();
    let topic = "acme/app/lone";
    audited_topic(&c, &brokers[0].base, topic).await;
    let produce = |base: String, id: String| {
        let c = c.clone();
        async move {
            let url = format!("{base}/topics/persistent/{topic}");
            let body = json!({"messages": [{"payload": "eA==", "properties": {"id": id}}]});
            call(&c, Method::POST, &url, Some(body)).await
        }
    };
    for i in 0..20 {
        expect(produce(brokers[0].base.clone(), format!("before-{i}")).await, 200, "produce");
    }
    let read = drain_subscription(&c, &brokers[0].base, topic, "audit").await;
    assert_eq!(read.len(), 20, "{read:?}");
    // The acknowledgements reach the metadata store's checkpoint (every 200 ms here).
    tokio::time::sleep(Duration::from_secs(1)).await;

    let bundle = bundle_of(&c, &brokers[0].base, topic).await;
    let owner_addr = ownership(&c, &brokers[0].base).await.0.get(&bundle).cloned().expect("owned");
    let owner = brokers.iter().position(|b| b.addr == owner_addr).expect("an owner of the test's");
    let via = brokers[1 - owner].base.clone();
    brokers[owner].kill9();
    brokers[owner].lose_disk();
    brokers[owner].restart();
    for i in 0..5 {
        eventually(60, "the topic acknowledging again", || async {
            (produce(via.clone(), format!("after-{i}")).await.0.as_u16() == 200).then_some(())
        })
        .await;
    }
    let read = drain_subscription(&c, &via, topic, "audit").await;
    let expected: std::collections::BTreeMap<String, usize> = (0..5).map(|i| (format!("after-{i}"), 1)).collect();
    assert_eq!(read, expected, "the subscription receives what was produced after the disk was lost, once each");
}
