//! Handover in the broker tier (issue 11, item 5): bundles move between `magnetar broker`
//! processes on one PostgreSQL and the shared S3 server while clients keep producing and
//! consuming. A SIGTERM drains its broker; an admin unload moves one bundle; either way every
//! acknowledged message is stored exactly once, no HTTP request fails, and WebSocket clients
//! connected through another broker reconnect on the close code and carry on.

use crate::common::ws::{WsClient, WsEvent, text_of, ws_base};
use magnetar_tests::{BrokerProcess, call};
use reqwest::Method;
use serde_json::json;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::common::tier::{
    Load, PARTITIONS, assert_stored_once, audited_topic, brokers, bundle_of, expect, ownership, partition,
    partitioned_topic, tier_config,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_hands_a_brokers_bundles_over_under_load_without_a_failed_request_or_a_lost_message() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tier_config().await;
    let [a, b, c3] = brokers(dir.path(), &cfg);
    let c = reqwest::Client::new();
    partitioned_topic(&c, &a.base).await;

    // Load through a and c only; b owns some of the partitions and is stopped under it.
    let load = Load::start(vec![a.base.clone(), c3.base.clone()], 3);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (owned, _) = ownership(&c, &a.base).await;
    let mut on_b = Vec::new();
    for i in 0..PARTITIONS {
        let bundle = bundle_of(&c, &a.base, &partition(i)).await;
        if owned.get(&bundle) == Some(&b.addr) {
            on_b.push(bundle);
        }
    }
    assert!(!on_b.is_empty(), "broker b owns none of the partitions: {owned:?}");

    let stopped = Instant::now();
    let mut b = b;
    let (b, status) = tokio::task::spawn_blocking(move || {
        let status = b.terminate();
        (b, status)
    })
    .await
    .unwrap();
    let drain_ms = stopped.elapsed().as_millis();
    assert!(status.success(), "broker b exited with {status}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let acked = load.finish_without_failures("under load").await;
    assert!(acked.len() > 100, "the load ran: {} messages acknowledged", acked.len());

    // b's bundles are served elsewhere, by live brokers, within seconds of its drain (the last
    // ones handed over may still be `assigning` when the load stops: their owner takes them on
    // its next pass).
    let (owned, unavailable) = ownership(&c, &a.base).await;
    assert!(!unavailable, "a bundle is unavailable after a clean stop: {owned:?}");
    let owned = crate::common::eventually(10, "b's bundles owned by the others", || async {
        let (owned, _) = ownership(&c, &a.base).await;
        on_b.iter().all(|bundle| owned.contains_key(bundle)).then_some(owned)
    })
    .await;
    for bundle in &on_b {
        let owner = &owned[bundle];
        assert!(owner == &a.addr || owner == &c3.addr, "{bundle} is owned by {owner}");
    }
    assert!(drain_ms < 20_000, "the drain took {drain_ms} ms");
    eprintln!("b owned {on_b:?}; drained in {drain_ms} ms");
    assert_stored_once(&c, &c3.base, &acked).await;
    drop(b);
}

/// A reconnecting WebSocket producer: sends one message at a time and, when the broker closes
/// the session (1012 while its bundle moves), connects again and sends it again.
async fn send_until_acked(ws: &mut WsClient, url: &str, payload: &str, reconnects: &mut usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "`{payload}` not acknowledged within 30 s");
        let frame = json!({"payload": crate::common::b64(payload.as_bytes()), "context": payload});
        if ws.try_send_json(&frame).await {
            match ws.next_event(Duration::from_secs(15)).await {
                WsEvent::Frame(reply) if reply["result"] == "ok" => {
                    return reply["messageId"].as_str().expect("id").to_string();
                }
                WsEvent::Frame(reply) => panic!("publish of `{payload}` failed: {reply}"),
                WsEvent::Closed(code) => assert!(code == 1012 || code == 1001, "producer closed with {code}"),
                WsEvent::Idle => panic!("no answer to `{payload}` within 15 s"),
            }
        }
        *reconnects += 1;
        *ws = reconnect(url).await;
    }
}

async fn reconnect(url: &str) -> WsClient {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(ws) = WsClient::try_connect(url).await {
            return ws;
        }
        assert!(Instant::now() < deadline, "cannot reconnect to {url}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_clients_through_a_non_owner_carry_on_across_an_admin_unload_of_their_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tier_config().await;
    let brokers: [BrokerProcess; 3] = brokers(dir.path(), &cfg);
    let c = reqwest::Client::new();
    let base = &brokers[0].base;
    let topic = "acme/app/ws-moves";
    audited_topic(&c, base, topic).await;
    let bundle = bundle_of(&c, base, topic).await;
    let (owned, _) = ownership(&c, base).await;
    let owner = owned.get(&bundle).expect("owned after first use").clone();
    let others: Vec<&BrokerProcess> = brokers.iter().filter(|p| p.addr != owner).collect();
    let (via, admin) = (others[0], others[1]);

    let producer_url = format!("{}/ws/v2/producer/persistent/{topic}", ws_base(&via.base));
    let consumer_url = format!("{}/ws/v2/consumer/persistent/{topic}/live", ws_base(&via.base));
    let mut consumer = WsClient::connect(&consumer_url).await;
    let mut producer = WsClient::connect(&producer_url).await;
    let (mut producer_reconnects, mut consumer_reconnects) = (0, 0);
    let mut received: BTreeSet<String> = BTreeSet::new();
    let sent: Vec<String> = (0..120).map(|n| format!("m-{n}")).collect();
    let mut moved_to = None;
    for (n, payload) in sent.iter().enumerate() {
        if n == 60 {
            // The bundle moves while both sessions are open through `via`.
            let range = bundle.trim_start_matches("acme/app/");
            let url = format!("{}/admin/v2/namespaces/acme/app/{range}/unload", admin.base);
            expect(call(&c, Method::PUT, &url, None).await, 204, "bundle unload");
            // Assigned at once; owned once the new owner takes it (its next pass or request).
            let deadline = Instant::now() + Duration::from_secs(10);
            while moved_to.is_none() {
                assert!(Instant::now() < deadline, "{bundle} not owned again within 10 s");
                moved_to = ownership(&c, base).await.0.get(&bundle).cloned();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        send_until_acked(&mut producer, &producer_url, payload, &mut producer_reconnects).await;
        // Receive until this payload arrived (a redelivery after a reconnect may come first).
        let deadline = Instant::now() + Duration::from_secs(30);
        while !received.contains(payload) {
            assert!(Instant::now() < deadline, "`{payload}` not received within 30 s");
            match consumer.next_event(Duration::from_secs(5)).await {
                WsEvent::Frame(m) => {
                    received.insert(text_of(&m));
                    let _ = consumer.try_send_json(&json!({"messageId": m["messageId"]})).await;
                }
                WsEvent::Closed(code) => {
                    assert!(code == 1012 || code == 1001, "consumer closed with {code}");
                    consumer_reconnects += 1;
                    consumer = reconnect(&consumer_url).await;
                }
                WsEvent::Idle => {}
            }
        }
    }
    let moved_to = moved_to.expect("the bundle has an owner after the unload");
    assert_ne!(moved_to, owner, "the unload moved the bundle to another broker");
    assert!(consumer_reconnects >= 1, "the consumer's session was closed by the move and reopened");
    assert!(producer_reconnects >= 1, "the producer's session was closed by the move and reopened");
    assert_eq!(received, sent.iter().cloned().collect::<BTreeSet<_>>());

    // Stored once each, in order, whichever broker wrote them.
    let pull = format!("{base}/topics/persistent/{topic}/subscriptions/audit/pull");
    let mut stored: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body = json!({"maxMessages": 1000, "waitMs": 300, "ackTimeoutMs": 60000});
        let got = expect(call(&c, Method::POST, &pull, Some(body)).await, 200, "pull");
        let messages = got["messages"].as_array().expect("messages").clone();
        if messages.is_empty() && (stored.len() >= sent.len() || Instant::now() > deadline) {
            break;
        }
        stored.extend(messages.iter().map(crate::common::payload_text));
    }
    assert_eq!(stored, sent, "every message stored once, in order");
    producer.close().await;
    consumer.close().await;
}

/// Two operators (or a script's retry) unloading the same bundle at once: both calls succeed
/// once the one handover is done. The second used to find the handover under way while it
/// loaded the bundle's partitions from disk, and answered 503 "not the owner".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_unloads_of_one_bundle_both_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tier_config().await;
    let brokers: [BrokerProcess; 2] = brokers(dir.path(), &cfg);
    let c = reqwest::Client::new();
    let base = &brokers[0].base;
    let topic = "acme/app/twice-unloaded";
    audited_topic(&c, base, topic).await;
    let mut sent = BTreeSet::new();
    for n in 0..20 {
        let ids: Vec<String> = (0..50).map(|k| format!("{n}-{k}")).collect();
        let messages: Vec<_> = ids.iter().map(|id| json!({"payload": "eA==", "properties": {"id": id}})).collect();
        let url = format!("{base}/topics/persistent/{topic}");
        expect(call(&c, Method::POST, &url, Some(json!({"messages": messages}))).await, 200, "produce");
        sent.extend(ids);
    }
    let bundle = bundle_of(&c, base, topic).await;
    let owner = ownership(&c, base).await.0.get(&bundle).expect("owned after first use").clone();
    let owner = brokers.iter().find(|b| b.addr == owner).expect("the owner is one of ours");
    let range = bundle.trim_start_matches("acme/app/");
    let url = format!("{}/admin/v2/namespaces/acme/app/{range}/unload", owner.base);
    let (first, second) = tokio::join!(call(&c, Method::PUT, &url, None), call(&c, Method::PUT, &url, None));
    expect(first, 204, "first unload");
    expect(second, 204, "second unload, asked while the first ran");
    let moved_to = crate::common::eventually(10, "the bundle owned again", || async {
        ownership(&c, base).await.0.get(&bundle).cloned()
    })
    .await;
    assert_ne!(moved_to, owner.addr, "the unload moved the bundle");
    let stored = crate::common::tier::drain_subscription(&c, base, topic, "audit").await;
    assert_eq!(stored.keys().cloned().collect::<BTreeSet<_>>(), sent, "every message stored after the move");
    assert!(stored.values().all(|n| *n == 1), "stored once each");
}
