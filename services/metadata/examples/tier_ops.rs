//! What the broker tier costs PostgreSQL per operation (issue 11's paper estimate): times the
//! metadata writes and reads a tier makes — lease renewals, cursor checkpoints (one partition,
//! one subscription per transaction, as the broker writes them today), segment commits, bundle
//! transitions and the ownership table read every refresh — against a real database, one at a
//! time and with 8 in flight.
//!
//!   MAGNETAR_BENCH_PG_URL=postgres://... cargo run --release -p magnetar-metadata --example tier_ops
//!
//! `scripts/bench-metadata.sh` starts a throwaway PostgreSQL and runs it.

use magnetar_core::bundles::Bundles;
use magnetar_core::policies::Policies;
use magnetar_core::{NamespaceName, TopicName};
use magnetar_metadata::{
    BrokerLoad, BrokerRegistration, BrokerState, BundleState, BundleTransition, CursorCheckpoint, CursorState,
    MetadataStore, NewTopic, SegmentRecord, TenantInfo,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

const PARTITIONS: u32 = 64;

async fn timed<F, Fut>(what: &str, n: usize, in_flight: usize, op: F)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..in_flight {
        let (op, next) = (Arc::clone(&op), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return lat;
                }
                let t = Instant::now();
                op(i).await;
                lat.push(t.elapsed());
            }
        }));
    }
    let mut lat: Vec<Duration> = Vec::new();
    for t in tasks {
        lat.extend(t.await.expect("task"));
    }
    let secs = started.elapsed().as_secs_f64();
    lat.sort();
    let q = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1000.0;
    println!(
        "{what:<44} in flight {in_flight}: {:>7.0} ops/s  p50 {:.2} ms  p99 {:.2} ms",
        n as f64 / secs,
        q(0.5),
        q(0.99)
    );
}

#[tokio::main]
async fn main() {
    let url = std::env::var("MAGNETAR_BENCH_PG_URL").expect("set MAGNETAR_BENCH_PG_URL to a PostgreSQL URL");
    let store = magnetar_metadata::connect(&url).await.expect("connect");
    let ns: NamespaceName = "bench/tier".parse().unwrap();
    let info = TenantInfo { admin_roles: vec![], allowed_clusters: vec!["bench".into()] };
    store.create_tenant(ns.tenant(), &info).await.expect("tenant");
    let policies = Policies { bundles: Bundles::equal(64).unwrap().to_data(), ..Policies::default() };
    store.create_namespace(&ns, &policies).await.expect("namespace");
    let name: TopicName = "persistent://bench/tier/t".parse().unwrap();
    let topic = store
        .create_topic(&NewTopic { name, partitions: PARTITIONS, properties: Default::default() })
        .await
        .expect("topic");
    let logs: Vec<i64> = topic.partition_records.iter().map(|p| p.log_id).collect();
    let cursors: Vec<(i64, CursorState)> = logs.iter().map(|l| (*l, CursorState::default())).collect();
    for sub in ["sub", "sub1", "sub2", "sub3"] {
        store.create_subscription(sub, &cursors).await.expect("subscription");
    }
    let mut epochs = Vec::new();
    for l in &logs {
        epochs.push(store.acquire_partition(*l, "b0").await.expect("acquire"));
    }
    let registration = |i: usize| BrokerRegistration {
        broker_id: format!("b{i}"),
        session_id: format!("s{i}"),
        cluster: "bench".into(),
        internal_address: format!("10.0.0.{i}:8080"),
        advertised_address: format!("10.0.0.{i}:8080"),
        binary_internal_url: String::new(),
        binary_advertised_url: String::new(),
        binary_advertised_tls_url: String::new(),
        version: "bench".into(),
    };
    for i in 0..20 {
        store.register_broker(&registration(i), 10_000, None).await.expect("register");
    }
    let ranges: Vec<String> = Bundles::equal(64).unwrap().ranges().map(|r| r.to_string()).collect();
    for r in &ranges {
        store.ensure_bundle(&ns, r).await.expect("bundle");
    }
    let store: Arc<dyn MetadataStore> = store;
    for in_flight in [1, 8] {
        let s = Arc::clone(&store);
        timed("lease renewal (20 brokers)", 2000, in_flight, move |i| {
            let s = Arc::clone(&s);
            async move {
                let load = BrokerLoad::default();
                let id = i % 20;
                s.renew_broker_lease(&format!("b{id}"), &format!("s{id}"), 10_000, BrokerState::Active, &load)
                    .await
                    .expect("renew");
            }
        })
        .await;
        let (s, logs2, epochs2) = (Arc::clone(&store), logs.clone(), epochs.clone());
        timed("cursor checkpoint (1 partition, 1 cursor)", 4000, in_flight, move |i| {
            let (s, log, epoch) = (Arc::clone(&s), logs2[i % logs2.len()], epochs2[i % epochs2.len()]);
            async move {
                let cursor = CursorState { mark_delete: i as u64, acked_ranges: vec![] };
                s.checkpoint_cursors(log, epoch, &[("sub".into(), cursor)]).await.expect("checkpoint");
            }
        })
        .await;
        // A broker's checkpoint round: every partition with 4 changed cursors, one transaction.
        let (s, logs2, epochs2) = (Arc::clone(&store), logs.clone(), epochs.clone());
        timed("checkpoint round (64 partitions x 4 cursors, 1 transaction)", 200, in_flight, move |i| {
            let batch: Vec<CursorCheckpoint> = logs2
                .iter()
                .zip(&epochs2)
                .map(|(log, epoch)| CursorCheckpoint {
                    log_id: *log,
                    epoch: *epoch,
                    cursors: ["sub", "sub1", "sub2", "sub3"]
                        .iter()
                        .map(|n| (n.to_string(), CursorState { mark_delete: i as u64, acked_ranges: vec![] }))
                        .collect(),
                })
                .collect();
            let s = Arc::clone(&s);
            async move {
                let refused = s.checkpoint_cursors_many(&batch).await.expect("round");
                assert!(refused.is_empty());
            }
        })
        .await;
        let next = Arc::new(AtomicI64::new(in_flight as i64 * 1_000_000_000));
        let (s, logs2, epochs2) = (Arc::clone(&store), logs.clone(), epochs.clone());
        timed("segment commit", 2000, in_flight, move |i| {
            let (s, log, epoch) = (Arc::clone(&s), logs2[i % logs2.len()], epochs2[i % epochs2.len()]);
            let base = next.fetch_add(100, Ordering::Relaxed);
            async move {
                let seg = SegmentRecord {
                    log_id: log,
                    base_offset: base,
                    end_offset: base + 100,
                    size_bytes: 1 << 20,
                    min_publish_time: 0,
                    max_publish_time: 0,
                    object_key: format!("k/{log}/{base}"),
                    created_at: 0,
                };
                s.commit_segment(epoch, &seg).await.expect("commit");
            }
        })
        .await;
        let s = Arc::clone(&store);
        timed("ownership table read (64 bundles)", 2000, in_flight, move |_| {
            let s = Arc::clone(&s);
            async move {
                s.list_bundles().await.expect("list");
            }
        })
        .await;
    }
    // Transitions one at a time (each bundle free → assigning → owned → free, CAS on epoch).
    let ns2 = ns.clone();
    let s = Arc::clone(&store);
    timed("bundle transition (read, then compare-and-set)", 3000, 1, move |i| {
        let (s, ns, r) = (Arc::clone(&s), ns2.clone(), ranges[i % ranges.len()].clone());
        async move {
            let row = s.get_bundle(&ns, &r).await.expect("get").expect("row");
            let to = match row.state {
                BundleState::Free => {
                    BundleTransition { state: BundleState::Assigning, owner: Some(("b1".into(), "s1".into())) }
                }
                BundleState::Assigning => {
                    BundleTransition { state: BundleState::Owned, owner: Some(("b1".into(), "s1".into())) }
                }
                _ => BundleTransition { state: BundleState::Free, owner: None },
            };
            s.transition_bundle(&ns, &r, row.epoch, row.state, &to, &[]).await.expect("transition");
        }
    })
    .await;
}
