//! A replica peer that dies just before its owner hands a bundle over (issue 13: "an operator
//! kills any broker at any moment"): the leader's balance, an operator's unload or a rolling
//! restart meeting a broker failure. With replicated durability 2/2 the owner's records wait for
//! the dead peer until the tier moves the owner's stream to a live broker (once the peer's lease
//! ran out), so a handover started meanwhile could not finish: it closed the partitions'
//! clients, failed after the policy's wait, and left the partitions to load again from a replica
//! set naming the dead peer, waiting for it to come back. Now a bundle whose records are not
//! being confirmed is not handed over until they are: an unload is refused at once with the
//! reason, a drain waits, and the partitions serve on through the stream's move. A peer that
//! stops answering once the handover has begun makes it wait for the stream's move too.

use crate::common::eventually;
use crate::common::tier::{Load, assert_stored_once, bundle_of, ownership, partition, wait_acknowledged};
use crate::common::weed::Weed;
use crate::tier_failover::{Mode, metric, partitions_of};
use crate::tier_lost_disk::{every_partition_acknowledges, owner_and_peer, tier_with_config};
use magnetar_tests::{BrokerProcess, call};
use reqwest::Method;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// `N` brokers with replicated durability 2/2 and a first load acknowledged; the owner of some
/// partitions, its peer, a third broker the load goes through, and the owner's bundles.
struct Tier {
    _dir: tempfile::TempDir,
    c: reqwest::Client,
    brokers: Vec<BrokerProcess>,
    acked: BTreeSet<String>,
    owner: usize,
    peer: usize,
    via: String,
    /// The owner's partitions and their bundles.
    owned: Vec<u32>,
    bundles: BTreeSet<String>,
    first: String,
}

/// `N` brokers on the shared S3 server, or on `store`.
async fn tier<const N: usize>(store: Option<&Weed>) -> Tier {
    tier_with_more::<N>(store, "").await
}

/// `tier`, the brokers' configuration ending with `more`.
async fn tier_with_more<const N: usize>(store: Option<&Weed>, more: &str) -> Tier {
    let dir = tempfile::tempdir().unwrap();
    let c = reqwest::Client::new();
    let on_store = |cfg: String| store.map_or(cfg.clone(), |w| w.serving(&cfg)) + more;
    let (brokers, acked) = tier_with_config::<N>(&c, dir.path(), Mode::Replicated, on_store).await;
    let (owner, peer) = owner_and_peer(&c, &brokers).await;
    let third = (0..N).find(|i| *i != owner && *i != peer).expect("a third broker");
    let via = brokers[third].base.clone();
    let owned = partitions_of(&c, &via, &brokers[owner].addr).await;
    let mut bundles = BTreeSet::new();
    for i in &owned {
        bundles.insert(bundle_of(&c, &via, &partition(*i)).await);
    }
    eprintln!(
        "owner {} (partitions {owned:?}, bundles {bundles:?}), its peer {}",
        brokers[owner].addr, brokers[peer].addr
    );
    let first = bundle_of(&c, &via, &partition(owned[0])).await;
    Tier { _dir: dir, c, brokers, acked, owner, peer, via, owned, bundles, first }
}

impl Tier {
    /// Producers through the third broker, once they have had messages acknowledged.
    async fn load(&self) -> Load {
        let load = Load::numbered(vec![self.via.clone()], 0..2);
        wait_acknowledged(&self.c, &self.via, 400).await;
        load
    }

    /// Kills the peer (-9) and sends the owner a record, then waits until a batch of the owner's
    /// has failed against the dead peer; when the peer was killed, and the record's request.
    async fn kill_peer(&mut self) -> (Instant, tokio::task::JoinHandle<u16>) {
        let owner = self.brokers[self.owner].base.clone();
        let failures = "magnetar_replication_failures_total";
        let before = metric(&self.c, &owner, failures).await;
        self.brokers[self.peer].kill9();
        let killed = Instant::now();
        let waiting = self.send_waiting();
        eventually(10, "a batch of the owner's failing against the dead peer", || async {
            (metric(&self.c, &owner, failures).await > before).then_some(())
        })
        .await;
        eprintln!("the owner's batch failed {} ms after the peer's kill", killed.elapsed().as_millis());
        (killed, waiting)
    }

    /// A record sent straight to the owner's first partition, which waits for the peer's answer
    /// (the load's producers may all be waiting on other partitions meanwhile); its status.
    fn send_waiting(&self) -> tokio::task::JoinHandle<u16> {
        let url = format!("{}/topics/persistent/{}", self.brokers[self.owner].base, partition(self.owned[0]));
        // Named as the load names its messages (producer 99, none of the load's).
        let body = serde_json::json!({"messages": [{"payload": "eA==", "properties": {"id": self.waiting_id()}}]});
        let c = self.c.clone();
        // 0 when the connection fails (the owner stopped before answering: not acknowledged).
        tokio::spawn(async move { c.post(&url).json(&body).send().await.map_or(0, |r| r.status().as_u16()) })
    }

    /// Counts the waiting record as acknowledged if it was.
    async fn settle_waiting(&mut self, waiting: tokio::task::JoinHandle<u16>) {
        if waiting.await.unwrap() == 200 {
            self.acked.insert(self.waiting_id());
        }
    }

    fn waiting_id(&self) -> String {
        format!("99-0-0-{}", self.owned[0])
    }

    /// The bundle of the owner's first partition (the one `send_waiting` writes to).
    fn first_bundle(&self) -> String {
        self.first.clone()
    }

    /// An unload of `bundle` through the owner: its status, answer and duration.
    async fn unload(&self, bundle: &str) -> (u16, serde_json::Value, Duration) {
        let range = bundle.trim_start_matches("acme/app/");
        let url = format!("{}/admin/v2/namespaces/acme/app/{range}/unload", self.brokers[self.owner].base);
        let started = Instant::now();
        let (status, answer) = call(&self.c, Method::PUT, &url, None).await;
        (status.as_u16(), answer, started.elapsed())
    }

    /// Waits until every partition acknowledges, then `finish`es with `what` given how many
    /// milliseconds after `since` that was, the record `send_waiting` sent counted if it was
    /// acknowledged.
    async fn finish_once_serving(
        mut self,
        load: Load,
        waiting: tokio::task::JoinHandle<u16>,
        since: Instant,
        what: impl FnOnce(u128) -> String,
    ) {
        every_partition_acknowledges(&self.c, &self.via, "probe").await;
        let what = what(since.elapsed().as_millis());
        tokio::time::sleep(Duration::from_secs(1)).await;
        self.settle_waiting(waiting).await;
        self.finish(load, &what).await;
    }

    /// Stops `load`, then checks every message acknowledged since the start is stored once.
    async fn finish(mut self, load: Load, what: &str) {
        let acked = load.finish_refused_only_as_unavailable(what).await;
        let (_, unavailable) = ownership(&self.c, &self.via).await;
        assert!(!unavailable);
        self.acked.extend(acked);
        assert_stored_once(&self.c, &self.via, &self.acked).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unload_while_a_replica_peer_is_dead_is_refused_until_the_stream_moved_and_loses_nothing() {
    let mut t = tier::<3>(None).await;
    let load = t.load().await;
    let (killed, waiting) = t.kill_peer().await;
    let (status, answer, took) = t.unload(&t.first_bundle()).await;
    eprintln!("unload once the batch failed: {status} in {} ms: {answer}", took.as_millis());
    assert_eq!(status, 503, "a handover while the records wait for a dead peer: {answer}");
    let reason = answer["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("not confirmed"), "the refusal says why: {answer}");
    assert!(took < Duration::from_secs(1), "refused at once, not after the policy's wait: {} ms", took.as_millis());

    // The tier moves the owner's stream to the third broker once the peer's lease ran out; the
    // partitions, never unloaded, acknowledge again without the dead peer.
    every_partition_acknowledges(&t.c, &t.via, "probe").await;
    let serving = killed.elapsed();
    for bundle in &t.bundles {
        let (status, answer, took) = t.unload(bundle).await;
        assert_eq!(status, 204, "{bundle} handed over once its stream moved: {answer}");
        eprintln!("{bundle} handed over in {} ms", took.as_millis());
    }
    every_partition_acknowledges(&t.c, &t.via, "probe-after").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let what =
        format!("peer killed: every partition acknowledging {} ms after, the peer still dead", serving.as_millis());
    t.settle_waiting(waiting).await;
    t.finish(load, &what).await;
}

/// The same failure meeting a rolling restart: the owner is asked to stop (SIGTERM) right after
/// its peer died. Its drain waits until its stream has moved to a live broker, then hands every
/// bundle over and exits; the partitions serve on the two brokers left (four at the start: two
/// live ones make a quorum of 2), nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_right_after_a_replica_peer_died_hands_everything_over_once_the_stream_moved() {
    let mut t = tier::<4>(None).await;
    let load = t.load().await;
    let (killed, waiting) = t.kill_peer().await;
    let status = tokio::task::block_in_place(|| t.brokers[t.owner].terminate());
    let drained = killed.elapsed();
    assert!(status.success(), "the owner exited with {status}");
    let (owned, _) = ownership(&t.c, &t.via).await;
    let left: Vec<_> = t.bundles.iter().filter(|b| owned.get(*b) == Some(&t.brokers[t.owner].addr)).collect();
    assert!(left.is_empty(), "bundles left on the stopped owner: {left:?} ({owned:?})");
    t.finish_once_serving(load, waiting, killed, |serving| {
        format!(
            "peer killed, owner stopped: drained {} ms after the kill, every partition acknowledging after {serving} ms",
            drained.as_millis()
        )
    })
    .await;
}

/// The peer freezes (SIGSTOP) just before an unload of the owner's bundle: its requests hang, so
/// the stream has no failed batch yet and the handover begins, closing the partitions, one of
/// which has a record waiting for its replicas. It waits longer than the policy's 2 s; the
/// handover waits on, as the stream's batch has failed by then (its request timed out after
/// 2 s), until the tier moves the stream to the third broker once the frozen peer's lease ran
/// out, and then completes. Failing instead left the partitions to load again from a set naming
/// the frozen peer, waiting for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handover_begun_as_a_replica_peer_froze_completes_once_the_stream_moved_and_loses_nothing() {
    let t = tier::<3>(None).await;
    let load = t.load().await;
    t.brokers[t.peer].pause();
    let frozen = Instant::now();
    let waiting = t.send_waiting();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, answer, took) = t.unload(&t.first_bundle()).await;
    eprintln!("unload 500 ms after the peer froze: {status} in {} ms: {answer}", took.as_millis());
    assert_eq!(status, 204, "the handover begun before the stream failed completes: {answer}");
    assert!(took > Duration::from_secs(2), "the records waited for the frozen peer: {} ms", took.as_millis());
    t.finish_once_serving(load, waiting, frozen, |serving| {
        format!(
            "peer frozen: handover done {} ms after, every partition acknowledging after {serving} ms, the peer still frozen",
            took.as_millis() + 500
        )
    })
    .await;
}

/// The handover of the test above meeting the object store down as well: the stream moves off
/// the frozen peer while the handover waits, then the upload fails and the bundle stays here.
/// Its partitions, unloaded meanwhile, had their record of replicas moved with the stream, so
/// loading them again here recovers from the live peer they were re-sent to: they serve again,
/// the peer still frozen and the bucket still down. Before, the record still named the frozen
/// peer and the partitions waited for it (docs/durability.md, "Loaded again on the same broker").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handover_failing_after_its_stream_moved_leaves_partitions_that_serve_without_the_dead_peer() {
    let mut weed = Weed::start().await;
    let t = tier::<3>(Some(&weed)).await;
    let load = t.load().await;
    t.brokers[t.peer].pause();
    let frozen = Instant::now();
    let waiting = t.send_waiting();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The bucket goes while the handover waits for the stream to move (its other partitions
    // uploaded by then), so the upload after the move fails.
    let bucket_down = async {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        weed.kill();
    };
    let bundle = t.first_bundle();
    let ((status, answer, took), ()) = tokio::join!(t.unload(&bundle), bucket_down);
    eprintln!("unload 500 ms after the peer froze, the bucket down: {status} in {} ms: {answer}", took.as_millis());
    assert_eq!(status, 503, "the upload failed, the handover with it: {answer}");
    assert!(took > Duration::from_secs(4), "the handover waited for the stream to move: {} ms", took.as_millis());
    let (owned, _) = ownership(&t.c, &t.via).await;
    assert_eq!(owned.get(&bundle), Some(&t.brokers[t.owner].addr), "the bundle stays with its owner");

    every_partition_acknowledges(&t.c, &t.via, "probe-down").await;
    let serving = frozen.elapsed();
    // Reading the load back needs what was uploaded before.
    weed.spawn().await;
    t.finish_once_serving(load, waiting, frozen, |_| {
        format!(
            "peer frozen, bucket down: handover failed {} ms after, every partition acknowledging after {} ms",
            took.as_millis() + 500,
            serving.as_millis()
        )
    })
    .await;
}

/// A peer replaced while it was away (its lease ran out, the owner's stream went to the third
/// broker) comes back on its disk holding copies no recovery reads any more: nobody trims or
/// fences them, so without more they stayed on its disk for good. It gives them up once their
/// records have named other brokers for the retention (2 s here), and the owner's partitions,
/// failed over afterwards, still recover every acknowledged message from the replica their
/// records name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_peer_back_gives_up_the_copies_no_record_names_it_for() {
    let retention = "\n[broker.durability]\nreplica_unrecorded_retention_ms = 2000\n";
    let mut t = tier_with_more::<3>(None, retention).await;
    let load = t.load().await;
    let peer_base = t.brokers[t.peer].base.clone();
    t.brokers[t.peer].kill9();
    let killed = Instant::now();
    every_partition_acknowledges(&t.c, &t.via, "moved").await;
    let moved = killed.elapsed();
    t.brokers[t.peer].restart();
    let held = metric(&t.c, &peer_base, "magnetar_replica_stored_bytes").await;
    assert!(held > 0.0, "the peer came back without the copies it held");
    let given_up = eventually(30, "the replaced peer giving up its unrecorded copies", || async {
        let n = metric(&t.c, &peer_base, "magnetar_replica_discarded_total").await;
        let now = metric(&t.c, &peer_base, "magnetar_replica_stored_bytes").await;
        (n >= 1.0 && now < held).then_some((n, now))
    })
    .await;
    eprintln!(
        "stream moved {} ms after the peer's kill; back, the peer gave up {} partitions' copies: {held} -> {} bytes",
        moved.as_millis(),
        given_up.0,
        given_up.1
    );

    // The owner dies: its partitions recover from the replica their records name.
    t.brokers[t.owner].kill9();
    let what = format!("peer replaced and back, then the owner killed; the peer gave up {} partitions", given_up.0);
    every_partition_acknowledges(&t.c, &t.via, "after-owner").await;
    t.finish(load, &what).await;
}
