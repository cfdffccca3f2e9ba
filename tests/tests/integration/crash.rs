//! Crash safety: the broker binary is killed with SIGKILL while producers and consumers are
//! active; after a restart every acknowledged message is readable exactly once and in order, and
//! no acknowledged consumption is redelivered.

use magnetar_tests::{BrokerProcess, call};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

const TOPIC: &str = "public/default/crash";

async fn create_topic(base: &str, partitions: u32) {
    let client = reqwest::Client::new();
    let (status, body) =
        call(&client, Method::PUT, &format!("{base}/admin/v2/persistent/{TOPIC}/partitions"), Some(json!(partitions)))
            .await;
    assert_eq!(status, 204, "create topic: {body}");
}

/// Pulls everything from `sub` (created at earliest), acking as it goes; returns payloads per
/// partition in delivery order.
async fn drain(base: &str, sub: &str) -> BTreeMap<i64, Vec<String>> {
    let client = reqwest::Client::new();
    let url = format!("{base}/topics/persistent/{TOPIC}/subscriptions/{sub}");
    let mut out: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    loop {
        let (status, body) = call(
            &client,
            Method::POST,
            &format!("{url}/pull"),
            Some(json!({"maxMessages": 1000, "waitMs": 500, "initialPosition": "earliest"})),
        )
        .await;
        assert_eq!(status, 200, "pull: {body}");
        let msgs = body["messages"].as_array().cloned().unwrap_or_default();
        if msgs.is_empty() {
            return out;
        }
        let ids: Vec<Value> = msgs.iter().map(|m| m["messageId"].clone()).collect();
        for m in &msgs {
            use base64::Engine;
            let id = m["messageId"].as_str().unwrap();
            let partition: i64 = id.rsplit(':').next().unwrap().parse().unwrap();
            let payload = base64::engine::general_purpose::STANDARD.decode(m["payload"].as_str().unwrap()).unwrap();
            out.entry(partition).or_default().push(String::from_utf8(payload).unwrap());
        }
        let (status, body) =
            call(&client, Method::POST, &format!("{url}/ack"), Some(json!({ "messageIds": ids }))).await;
        assert_eq!(status, 204, "ack: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_messages_survive_sigkill_exactly_once_in_order() {
    sigkill_under_produce(&[], false).await;
}

/// The same with records that bypass the WAL (`wal_bypass_bytes`): a partition's records
/// filling 1 KiB of a group commit go straight to its segment, fewer through the WAL, so both
/// paths interleave within each partition and across segment rolls.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_messages_written_past_the_wal_survive_sigkill_exactly_once_in_order() {
    sigkill_under_produce(&[("MAGNETAR_STORAGE__WAL_BYPASS_BYTES", "1024")], true).await;
}

async fn sigkill_under_produce(env: &[(&str, &str)], bypassing: bool) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut env = env.to_vec();
    env.push(("MAGNETAR_STORAGE__SEGMENT_MAX_BYTES", "65536"));
    let mut broker = BrokerProcess::start(&data, &env);
    create_topic(&broker.base, 4).await;

    // Producers publish numbered messages with a key per producer (so one producer's messages
    // share a partition and their order is checkable) until the broker dies.
    let stop = Arc::new(AtomicBool::new(false));
    let acked_count = Arc::new(AtomicU64::new(0));
    let mut producers = Vec::new();
    for p in 0..8u32 {
        let (base, stop, acked_count) = (broker.base.clone(), Arc::clone(&stop), Arc::clone(&acked_count));
        producers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut acked: Vec<String> = Vec::new();
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let batch: Vec<Value> = (0..10)
                    .map(|i| json!({"payload": format!("p{p}-{:08}", seq + i), "key": format!("producer-{p}")}))
                    .collect();
                let resp = reqwest::Client::post(&client, format!("{base}/topics/persistent/{TOPIC}"))
                    .json(&json!({"messages": batch}))
                    .send()
                    .await;
                match resp {
                    Ok(r) if r.status() == 200 => {
                        let body: Value = r.json().await.unwrap();
                        assert_eq!(body["messagePublishResults"].as_array().unwrap().len(), 10);
                        acked.extend((0..10).map(|i| format!("p{p}-{:08}", seq + i)));
                        acked_count.fetch_add(10, Ordering::Relaxed);
                        seq += 10;
                    }
                    // The broker is gone: whatever was not answered may or may not be stored.
                    _ => break,
                }
            }
            acked
        }));
    }
    // Kill once a good amount is acknowledged, while the producers are still running.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while acked_count.load(Ordering::Relaxed) < 20_000 {
        assert!(std::time::Instant::now() < deadline, "producers too slow");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    if bypassing {
        let metrics = reqwest::get(format!("{}/metrics", broker.base)).await.unwrap().text().await.unwrap();
        let bypassed: f64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix("magnetar_wal_bypass_bytes_total "))
            .expect("the bypass counter is exported")
            .parse()
            .unwrap();
        assert!(bypassed > 0.0, "no record went past the WAL");
    }
    broker.kill9();
    stop.store(true, Ordering::Relaxed);
    let mut acked: Vec<String> = Vec::new();
    for p in producers {
        acked.extend(p.await.unwrap());
    }

    broker.restart();
    let got = drain(&broker.base, "verify").await;
    let mut seen = HashSet::new();
    for (partition, payloads) in &got {
        // Exactly once: no payload twice.
        for pl in payloads {
            assert!(seen.insert(pl.clone()), "duplicate message {pl} in partition {partition}");
        }
        // In order: each producer's sequence increases within its partition.
        let mut last: BTreeMap<&str, &str> = BTreeMap::new();
        for pl in payloads {
            let (producer, _) = pl.split_once('-').unwrap();
            if let Some(prev) = last.insert(producer, pl) {
                assert!(prev < pl.as_str(), "out of order in partition {partition}: {prev} then {pl}");
            }
        }
    }
    let missing: Vec<&String> = acked.iter().filter(|a| !seen.contains(*a)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged messages lost after SIGKILL, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(acked.len() >= 20_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmed_acks_are_not_redelivered_after_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut broker = BrokerProcess::start(&data, &[]);
    create_topic(&broker.base, 2).await;
    let client = reqwest::Client::new();
    let messages: Vec<Value> = (0..1000).map(|i| json!({"payload": format!("m{i:05}")})).collect();
    let (status, body) = call(
        &client,
        Method::POST,
        &format!("{}/topics/persistent/{TOPIC}", broker.base),
        Some(json!({"messages": messages})),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Consume and acknowledge about half, with holes (every third message stays unacked).
    let url = format!("{}/topics/persistent/{TOPIC}/subscriptions/s", broker.base);
    let (status, body) = call(
        &client,
        Method::POST,
        &format!("{url}/pull"),
        Some(json!({"maxMessages": 600, "initialPosition": "earliest", "waitMs": 1000})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let pulled: Vec<Value> = body["messages"].as_array().unwrap().clone();
    assert!(!pulled.is_empty());
    let acked: Vec<Value> =
        pulled.iter().enumerate().filter(|(i, _)| i % 3 != 0).map(|(_, m)| m["messageId"].clone()).collect();
    let (status, body) = call(&client, Method::POST, &format!("{url}/ack"), Some(json!({ "messageIds": acked }))).await;
    assert_eq!(status, 204, "{body}");
    // No graceful shutdown, no checkpoint: the acks live only in the write-ahead log.
    broker.kill9();
    broker.restart();

    let acked_ids: HashSet<String> = acked.iter().map(|v| v.as_str().unwrap().to_string()).collect();
    let mut redelivered = Vec::new();
    let mut total = 0;
    loop {
        let (status, body) =
            call(&client, Method::POST, &format!("{url}/pull"), Some(json!({"maxMessages": 1000, "waitMs": 300})))
                .await;
        assert_eq!(status, 200, "{body}");
        let msgs = body["messages"].as_array().unwrap().clone();
        if msgs.is_empty() {
            break;
        }
        total += msgs.len();
        let ids: Vec<Value> = msgs.iter().map(|m| m["messageId"].clone()).collect();
        redelivered.extend(ids.iter().filter(|id| acked_ids.contains(id.as_str().unwrap())).cloned());
        let (status, _) = call(&client, Method::POST, &format!("{url}/ack"), Some(json!({ "messageIds": ids }))).await;
        assert_eq!(status, 204);
    }
    assert!(redelivered.is_empty(), "acknowledged messages redelivered after SIGKILL: {redelivered:?}");
    assert_eq!(total, 1000 - acked_ids.len(), "every unacknowledged message is delivered once");
}
