//! REST produce (Pulsar's PIP-64 shapes) and Magnetar's HTTP pull-consume API against a real
//! in-process broker: routing, limits, long-poll, acks, nacks, ack deadlines, concurrent pullers
//! and acknowledgements surviving a restart.

use crate::common;

use common::*;
use magnetar_core::hash::partition_for_key;
use magnetar_tests::{TestApp, test_config};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

// ---------------------------------------------------------------- produce

#[tokio::test]
async fn produce_returns_one_message_id_per_message_in_pulsar_shape() {
    let app = TestApp::standalone().await;
    create_topic(&app, "orders").await;
    let body = ok(app
        .post(
            &rest_topic("orders"),
            Some(json!({
                "producerName": "p1",
                "messages": [
                    {"payload": "one", "key": "k", "properties": {"a": "b"}, "eventTime": 1_700_000_000_000i64, "sequenceId": 1},
                    {"payload": "two"},
                    {"payload": "three"}
                ]
            })),
        )
        .await);
    let results = body["messagePublishResults"].as_array().unwrap_or_else(|| panic!("{body}"));
    assert_eq!(results.len(), 3);
    let mut last = -1;
    for r in results {
        assert_eq!(r["errorCode"], 0, "{r}");
        assert!(r.get("schemaVersion").is_some(), "{r}");
        let id = r["messageId"].as_str().expect("messageId");
        let (_, _, p) = parse_id(id);
        assert_eq!(p, -1, "non-partitioned topics answer partition -1: {id}");
        assert!(offset_of(id) > last, "ids increase in request order: {body}");
        last = offset_of(id);
    }
}

#[tokio::test]
async fn produce_to_an_unknown_topic_that_cannot_be_created_returns_404() {
    let app = TestApp::standalone().await;
    ok(app
        .post("/admin/v2/namespaces/public/default/autoTopicCreation", Some(json!({"allowAutoTopicCreation": false})))
        .await);
    err(app.post(&rest_topic("ghost"), Some(json!({"messages": [{"payload": "x"}]}))).await, 404);
    err(app.post("/topics/persistent/public/ghost/t", Some(json!({"messages": [{"payload": "x"}]}))).await, 404);
    err(
        app.post(&format!("{}/partitions/0", rest_topic("ghost")), Some(json!({"messages": [{"payload": "x"}]}))).await,
        404,
    );
}

#[tokio::test]
async fn produce_to_a_partition_lands_on_that_partition() {
    let app = TestApp::standalone().await;
    create_partitioned(&app, "parted", 4).await;
    let body = ok(app
        .post(
            &format!("{}/partitions/2", rest_topic("parted")),
            Some(json!({"messages": [{"payload": "a", "key": "any-key"}, {"payload": "b"}]})),
        )
        .await);
    for r in body["messagePublishResults"].as_array().expect("results") {
        assert_eq!(parse_id(r["messageId"].as_str().expect("id")).2, 2, "{body}");
    }
    let stats = ok(app.get(&format!("{}/stats", admin_topic("parted-partition-2"))).await);
    assert_eq!(stats["msgInCounter"], 2);
    err(
        app.post(&format!("{}/partitions/4", rest_topic("parted")), Some(json!({"messages": [{"payload": "x"}]})))
            .await,
        404,
    );
    err(
        app.post(&format!("{}/partitions/x", rest_topic("parted")), Some(json!({"messages": [{"payload": "x"}]})))
            .await,
        400,
    );

    create_topic(&app, "plain").await;
    err(
        app.post(&format!("{}/partitions/0", rest_topic("plain")), Some(json!({"messages": [{"payload": "x"}]}))).await,
        400,
    );
}

#[tokio::test]
async fn message_over_the_maximum_size_returns_413_and_stores_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cfg = test_config(dir.path());
    cfg.broker.max_message_bytes = 1024;
    let app = TestApp::start(dir, cfg).await;
    create_topic(&app, "limited").await;

    let small = "s".repeat(100);
    let big = "b".repeat(1025);
    let reason = err(
        app.post(&rest_topic("limited"), Some(json!({"messages": [{"payload": small}, {"payload": big}]}))).await,
        413,
    );
    assert!(reason.contains("message 1"), "reason names the message: {reason}");
    let stats = ok(app.get(&format!("{}/stats", admin_topic("limited"))).await);
    assert_eq!(stats["msgInCounter"], 0, "nothing of the request is stored: {stats}");
    let got = pull(&app, "limited", "s", json!({"initialPosition": "earliest", "waitMs": 200})).await;
    assert!(got.is_empty(), "{got:?}");

    // Exactly at the limit is fine.
    produce_payloads(&app, "limited", &["e".repeat(1024)]).await;
}

#[tokio::test]
async fn produce_with_malformed_json_returns_400() {
    let app = TestApp::standalone().await;
    create_topic(&app, "t").await;
    let resp = app
        .client
        .post(app.url(&rest_topic("t")))
        .header("content-type", "application/json")
        .body("{\"messages\": [{\"payload\": ")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.expect("json error body");
    assert!(body["reason"].is_string(), "{body}");
    err(app.post(&rest_topic("t"), Some(json!({"messages": [{"key": "no payload"}]}))).await, 400);
    err(app.post(&rest_topic("t"), Some(json!({"messages": []}))).await, 400);
    err(app.post(&rest_topic("t"), Some(json!({"messages": [{"payload": "x", "eventTime": "noon"}]}))).await, 400);
    assert_eq!(ok(app.get(&format!("{}/stats", admin_topic("t"))).await)["msgInCounter"], 0);
}

#[tokio::test]
async fn bytes_schema_payload_is_base64_decoded_and_bad_base64_returns_400() {
    let app = TestApp::standalone().await;
    create_topic(&app, "bin").await;
    let schema = json!({"type": "BYTES", "schema": "", "properties": {}}).to_string();
    let raw: Vec<u8> = vec![0, 1, 2, 254, 255];
    let reason = err(
        app.post(
            &rest_topic("bin"),
            Some(json!({"valueSchema": schema, "messages": [{"payload": b64(&raw)}, {"payload": "***not base64***"}]})),
        )
        .await,
        400,
    );
    assert!(reason.contains("message 1"), "{reason}");
    assert_eq!(ok(app.get(&format!("{}/stats", admin_topic("bin"))).await)["msgInCounter"], 0);

    ok(app.post(&rest_topic("bin"), Some(json!({"valueSchema": schema, "messages": [{"payload": b64(&raw)}]}))).await);
    let got = pull(&app, "bin", "s", json!({"initialPosition": "earliest", "waitMs": 2000})).await;
    assert_eq!(unb64(got[0]["payload"].as_str().expect("payload")), raw);
}

#[tokio::test]
async fn string_payload_without_schema_is_stored_as_utf8() {
    let app = TestApp::standalone().await;
    create_topic(&app, "txt").await;
    produce_payloads(&app, "txt", &["grüße ✓".to_string()]).await;
    let got = pull(&app, "txt", "s", json!({"initialPosition": "earliest", "waitMs": 2000})).await;
    assert_eq!(payload_text(&got[0]), "grüße ✓");
}

#[tokio::test]
async fn keyed_messages_land_on_the_partition_of_their_key_hash() {
    let app = TestApp::standalone().await;
    create_partitioned(&app, "keyed", 4).await;
    let keys: Vec<String> = (0..40).map(|i| format!("user-{i}")).collect();
    let mut seen: BTreeMap<String, BTreeSet<i32>> = BTreeMap::new();
    for round in 0..2 {
        let msgs = keys.iter().map(|k| json!({"payload": format!("{k}-{round}"), "key": k})).collect();
        let ids = produce(&app, "keyed", msgs).await;
        for (k, id) in keys.iter().zip(&ids) {
            seen.entry(k.clone()).or_default().insert(parse_id(id).2);
        }
    }
    let mut used = BTreeSet::new();
    for (k, parts) in &seen {
        assert_eq!(parts.len(), 1, "key {k} went to several partitions: {parts:?}");
        let p = *parts.iter().next().expect("one");
        assert_eq!(p as u32, partition_for_key(k, 4), "key {k} is routed by its hash");
        used.insert(p);
    }
    assert!(used.len() > 1, "40 keys should not all hash to one partition: {used:?}");
}

#[tokio::test]
async fn unkeyed_messages_spread_round_robin_over_all_partitions() {
    let app = TestApp::standalone().await;
    create_partitioned(&app, "rr", 4).await;
    let mut counts: BTreeMap<i32, usize> = BTreeMap::new();
    let ids = produce_payloads(&app, "rr", &(0..8).map(|i| format!("m{i}")).collect::<Vec<_>>()).await;
    for id in &ids {
        *counts.entry(parse_id(id).2).or_default() += 1;
    }
    for i in 0..8 {
        let id = produce_payloads(&app, "rr", &[format!("single-{i}")]).await;
        *counts.entry(parse_id(&id[0]).2).or_default() += 1;
    }
    assert_eq!(counts.keys().copied().collect::<Vec<_>>(), vec![0, 1, 2, 3], "{counts:?}");
    assert!(counts.values().all(|&c| c == 4), "round robin spreads evenly: {counts:?}");
}

// ---------------------------------------------------------------- pull round trips

#[tokio::test]
async fn pull_round_trip_on_a_non_partitioned_topic() {
    let app = TestApp::standalone().await;
    create_topic(&app, "rt").await;
    let msgs: Vec<Value> = (0..50)
        .map(|i| json!({"payload": format!("msg-{i}"), "key": format!("k{i}"), "properties": {"i": i.to_string()}, "eventTime": 1_700_000_000_000i64 + i}))
        .collect();
    let produced = produce(&app, "rt", msgs).await;

    let got = pull_n(&app, "rt", "s", 50, 30_000).await;
    assert_eq!(got.len(), 50);
    assert_eq!(ids_of(&got), produced, "every message once, in order");
    for (i, m) in got.iter().enumerate() {
        assert_eq!(payload_text(m), format!("msg-{i}"));
        assert_eq!(m["key"], format!("k{i}"));
        assert_eq!(m["properties"], json!({"i": i.to_string()}));
        assert!(m["publishTime"].as_str().is_some_and(|t| !t.is_empty()), "{m}");
        assert!(m["eventTime"].as_str().is_some_and(|t| !t.is_empty()), "{m}");
        assert_eq!(m["redeliveryCount"], 0);
    }
    assert_eq!(ack(&app, "rt", "s", &produced).await.0, 204);
    assert!(pull(&app, "rt", "s", json!({"waitMs": 300})).await.is_empty());
    assert_eq!(backlog(&app, "rt", "s").await, 0);
}

#[tokio::test]
async fn pull_round_trip_on_a_four_partition_topic() {
    let app = TestApp::standalone().await;
    create_partitioned(&app, "rt4", 4).await;
    let n = 200;
    let produced = produce_payloads(&app, "rt4", &(0..n).map(|i| format!("{i}")).collect::<Vec<_>>()).await;

    let got = pull_n(&app, "rt4", "s", n, 30_000).await;
    let got_ids = ids_of(&got);
    assert_eq!(got_ids.iter().collect::<HashSet<_>>().len(), n, "no duplicates");
    assert_eq!(got_ids.iter().collect::<HashSet<_>>(), produced.iter().collect::<HashSet<_>>(), "every message");
    // Order within each partition is the publish order.
    let mut per_partition: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
    for m in &got {
        let p = parse_id(m["messageId"].as_str().expect("id")).2;
        per_partition.entry(p).or_default().push(payload_text(m).parse().expect("number"));
    }
    assert_eq!(per_partition.len(), 4);
    for (p, seq) in &per_partition {
        assert!(seq.windows(2).all(|w| w[0] < w[1]), "partition {p} out of order: {seq:?}");
    }
    assert_eq!(ack(&app, "rt4", "s", &got_ids).await.0, 204);
    assert!(pull(&app, "rt4", "s", json!({"waitMs": 300})).await.is_empty());
}

#[tokio::test]
async fn pull_from_one_partition_by_name_sees_only_that_partition() {
    let app = TestApp::standalone().await;
    create_partitioned(&app, "one", 2).await;
    ok(app.post(&format!("{}/partitions/1", rest_topic("one")), Some(json!({"messages": [{"payload": "p1"}]}))).await);
    ok(app.post(&format!("{}/partitions/0", rest_topic("one")), Some(json!({"messages": [{"payload": "p0"}]}))).await);
    let got =
        pull(&app, "one-partition-1", "s", json!({"initialPosition": "earliest", "waitMs": 2000, "maxMessages": 10}))
            .await;
    assert_eq!(got.len(), 1);
    assert_eq!(payload_text(&got[0]), "p1");
}

#[tokio::test]
async fn long_poll_returns_the_message_that_arrives_during_the_wait() {
    let app = Arc::new(TestApp::standalone().await);
    create_topic(&app, "lp").await;
    assert!(pull(&app, "lp", "s", json!({"waitMs": 0})).await.is_empty(), "creates the subscription at latest");

    let producer = {
        let app = Arc::clone(&app);
        tokio::spawn(async move {
            // The delay is the scenario (a message arriving mid-wait), not synchronisation.
            tokio::time::sleep(Duration::from_millis(500)).await;
            produce_payloads(&app, "lp", &["late".to_string()]).await
        })
    };
    let got = pull(&app, "lp", "s", json!({"waitMs": 30_000})).await;
    let produced = producer.await.expect("producer task");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(payload_text(&got[0]), "late");
    assert_eq!(ids_of(&got), produced);
}

#[tokio::test]
async fn pull_with_wait_on_an_empty_topic_returns_no_messages() {
    let app = TestApp::standalone().await;
    create_topic(&app, "empty").await;
    let body = ok(app.post(&pull_path("empty", "s"), Some(json!({"waitMs": 300}))).await);
    assert_eq!(body, json!({"messages": [], "endOfTopic": false}));
}

#[tokio::test]
async fn pull_from_unknown_topic_returns_404_and_bad_parameters_return_400() {
    let app = TestApp::standalone().await;
    // A namespace that does not exist, and one that does not auto-create topics.
    err(app.post("/topics/persistent/public/ghost/t/subscriptions/s/pull", Some(json!({}))).await, 404);
    ok(app
        .post("/admin/v2/namespaces/public/default/autoTopicCreation", Some(json!({"allowAutoTopicCreation": false})))
        .await);
    err(app.post(&pull_path("ghost", "s"), Some(json!({}))).await, 404);
    create_topic(&app, "t").await;
    err(app.post(&pull_path("t", "s"), Some(json!({"maxMessages": 0}))).await, 400);
    err(app.post(&pull_path("t", "s"), Some(json!({"ackTimeoutMs": 10}))).await, 400);
    err(app.post(&pull_path("t", "s"), Some(json!({"initialPosition": "middle"}))).await, 400);
    err(app.post(&pull_path("t", "s"), Some(json!({"waitMs": 10_000_000}))).await, 400);
    err(app.post(&pull_path("t", "s"), Some(json!({"unknownField": 1}))).await, 400);
}

#[tokio::test]
async fn initial_position_earliest_sees_earlier_messages_and_latest_does_not() {
    let app = TestApp::standalone().await;
    create_topic(&app, "pos").await;
    produce_payloads(&app, "pos", &["before".to_string()]).await;

    let early = pull(&app, "pos", "early", json!({"initialPosition": "earliest", "waitMs": 2000})).await;
    assert_eq!(early.len(), 1);
    assert_eq!(payload_text(&early[0]), "before");

    let late = pull(&app, "pos", "late", json!({"initialPosition": "latest", "waitMs": 300})).await;
    assert!(late.is_empty(), "{late:?}");
    produce_payloads(&app, "pos", &["after".to_string()]).await;
    let late = pull(&app, "pos", "late", json!({"waitMs": 5000})).await;
    assert_eq!(late.len(), 1);
    assert_eq!(payload_text(&late[0]), "after");
}

// ---------------------------------------------------------------- ack, nack, deadlines

#[tokio::test]
async fn acked_messages_are_not_redelivered() {
    let app = TestApp::standalone().await;
    create_topic(&app, "acked").await;
    produce_payloads(&app, "acked", &["a".to_string(), "b".to_string()]).await;
    let got =
        pull(&app, "acked", "s", json!({"initialPosition": "earliest", "waitMs": 2000, "ackTimeoutMs": 1000})).await;
    assert_eq!(got.len(), 2);
    assert_eq!(ack(&app, "acked", "s", &ids_of(&got)).await.0, 204);
    assert_eq!(ack(&app, "acked", "s", &ids_of(&got)).await.0, 204, "acknowledging twice is harmless");
    // Past the ack deadline nothing comes back.
    let again = pull(&app, "acked", "s", json!({"waitMs": 2500})).await;
    assert!(again.is_empty(), "{again:?}");
}

#[tokio::test]
async fn nacked_message_is_redelivered_with_redelivery_count_1() {
    let app = TestApp::standalone().await;
    create_topic(&app, "nacked").await;
    produce_payloads(&app, "nacked", &["n".to_string()]).await;
    let got = pull(&app, "nacked", "s", json!({"initialPosition": "earliest", "waitMs": 2000})).await;
    assert_eq!(got[0]["redeliveryCount"], 0);
    assert_eq!(nack(&app, "nacked", "s", &ids_of(&got)).await.0, 204);
    let again = pull(&app, "nacked", "s", json!({"waitMs": 5000})).await;
    assert_eq!(ids_of(&again), ids_of(&got));
    assert_eq!(again[0]["redeliveryCount"], 1);
    assert_eq!(payload_text(&again[0]), "n");
}

#[tokio::test]
async fn unacked_message_is_redelivered_after_its_ack_deadline() {
    let app = TestApp::standalone().await;
    create_topic(&app, "deadline").await;
    produce_payloads(&app, "deadline", &["d".to_string()]).await;
    let got =
        pull(&app, "deadline", "s", json!({"initialPosition": "earliest", "waitMs": 2000, "ackTimeoutMs": 1000})).await;
    assert_eq!(got.len(), 1);
    let again = pull(&app, "deadline", "s", json!({"waitMs": 5000, "ackTimeoutMs": 30_000})).await;
    assert_eq!(ids_of(&again), ids_of(&got));
    assert_eq!(again[0]["redeliveryCount"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pullers_never_receive_the_same_message_in_flight() {
    let app = Arc::new(TestApp::standalone().await);
    create_topic(&app, "shared").await;
    // Create the subscription first so every message is in its backlog.
    assert!(pull(&app, "shared", "s", json!({"initialPosition": "earliest"})).await.is_empty());
    let total = 2000;
    let mut produced = HashSet::new();
    for chunk in 0..10 {
        let payloads: Vec<String> = (0..200).map(|i| format!("m{}", chunk * 200 + i)).collect();
        produced.extend(produce_payloads(&app, "shared", &payloads).await);
    }
    assert_eq!(produced.len(), total);

    let received = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut pullers = Vec::new();
    for _ in 0..4 {
        let app = Arc::clone(&app);
        let received = Arc::clone(&received);
        pullers.push(tokio::spawn(async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            loop {
                if received.lock().expect("lock").len() >= total {
                    return;
                }
                assert!(std::time::Instant::now() < deadline, "pullers did not drain the topic within 60 s");
                // An ack deadline far beyond the test: a message is delivered at most once.
                let got =
                    pull(&app, "shared", "s", json!({"maxMessages": 37, "waitMs": 200, "ackTimeoutMs": 600_000})).await;
                if got.is_empty() {
                    continue;
                }
                let ids = ids_of(&got);
                received.lock().expect("lock").extend(ids.iter().cloned());
                assert_eq!(ack(&app, "shared", "s", &ids).await.0, 204);
            }
        }));
    }
    for p in pullers {
        p.await.expect("puller");
    }
    let received = received.lock().expect("lock").clone();
    let unique: HashSet<String> = received.iter().cloned().collect();
    assert_eq!(unique.len(), received.len(), "{} duplicate deliveries", received.len() - unique.len());
    assert_eq!(unique, produced, "the union of all pulls is every message");
}

#[tokio::test]
async fn ack_with_an_invalid_id_returns_400_naming_it() {
    let app = TestApp::standalone().await;
    create_topic(&app, "bad").await;
    produce_payloads(&app, "bad", &["x".to_string()]).await;
    pull(&app, "bad", "s", json!({"initialPosition": "earliest", "waitMs": 2000})).await;
    let reason = err(ack(&app, "bad", "s", &["not-an-id".to_string()]).await, 400);
    assert!(reason.contains("not-an-id"), "{reason}");
    err(ack(&app, "bad", "s", &[]).await, 400);
    err(nack(&app, "bad", "s", &["1:2:3:4:5".to_string()]).await, 400);
    err(app.post("/topics/persistent/public/default/bad/subscriptions/s/ack", Some(json!({"ids": []}))).await, 400);
    // A partitioned id on a non-partitioned topic.
    err(ack(&app, "bad", "s", &["0:0:3".to_string()]).await, 400);
}

#[tokio::test]
async fn ack_with_an_id_of_another_partition_returns_400() {
    let app = TestApp::standalone().await;
    create_partitioned(&app, "parts", 4).await;
    let ids = ok(app
        .post(&format!("{}/partitions/2", rest_topic("parts")), Some(json!({"messages": [{"payload": "x"}]})))
        .await);
    let id = ids["messagePublishResults"][0]["messageId"].as_str().expect("id").to_string();
    pull(&app, "parts", "s", json!({"initialPosition": "earliest", "waitMs": 2000})).await;
    err(ack(&app, "parts-partition-1", "s", std::slice::from_ref(&id)).await, 400);
    err(ack(&app, "parts", "s", &["0:0:7".to_string()]).await, 400);
    assert_eq!(ack(&app, "parts-partition-2", "s", &[id]).await.0, 204);
}

#[tokio::test]
async fn ack_on_unknown_subscription_returns_404() {
    let app = TestApp::standalone().await;
    create_topic(&app, "t").await;
    let ids = produce_payloads(&app, "t", &["x".to_string()]).await;
    err(ack(&app, "t", "ghost", &ids).await, 404);
    err(ack(&app, "missing", "s", &ids).await, 404);
}

#[tokio::test]
async fn acks_survive_a_graceful_restart() {
    let app = TestApp::standalone().await;
    create_topic(&app, "durable").await;
    let produced = produce_payloads(&app, "durable", &(0..10).map(|i| format!("m{i}")).collect::<Vec<_>>()).await;
    let got = pull_n(&app, "durable", "s", 10, 30_000).await;
    let acked: Vec<String> = ids_of(&got).into_iter().step_by(2).collect();
    assert_eq!(ack(&app, "durable", "s", &acked).await.0, 204);

    let dir = app.stop().await;
    let cfg = test_config(dir.path());
    let app = TestApp::start(dir, cfg).await;

    let unacked: BTreeSet<String> = produced.iter().filter(|id| !acked.contains(id)).cloned().collect();
    let after = pull_n(&app, "durable", "s", unacked.len(), 30_000).await;
    assert_eq!(
        ids_of(&after).into_iter().collect::<BTreeSet<_>>(),
        unacked,
        "only the unacknowledged messages come back"
    );
    let more = pull(&app, "durable", "s", json!({"waitMs": 300})).await;
    assert!(more.is_empty(), "{more:?}");
    assert_eq!(backlog(&app, "durable", "s").await, unacked.len() as u64);
}

#[tokio::test]
async fn pull_round_trip_with_postgres_metadata() {
    let app = TestApp::with_postgres().await;
    create_partitioned(&app, "pg", 2).await;
    let produced = produce_payloads(&app, "pg", &(0..20).map(|i| format!("m{i}")).collect::<Vec<_>>()).await;
    let got = pull_n(&app, "pg", "s", 20, 30_000).await;
    assert_eq!(ids_of(&got).into_iter().collect::<BTreeSet<_>>(), produced.iter().cloned().collect::<BTreeSet<_>>());
    assert_eq!(ack(&app, "pg", "s", &ids_of(&got)).await.0, 204);
    assert!(pull(&app, "pg", "s", json!({"waitMs": 300})).await.is_empty());
    assert_eq!(ok(app.get(&format!("{}/partitioned-stats", admin_topic("pg"))).await)["msgInCounter"], 20);
}
