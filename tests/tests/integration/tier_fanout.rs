//! Whole partitioned topics in a broker tier: three `magnetar broker` processes on one PostgreSQL
//! and the shared S3 server, a 12-partition topic whose partitions the leader spreads over all
//! three, and a client that only ever names the topic by its base name. Each request goes to one
//! broker, which fans it out to the partitions' owners and merges their answers as Pulsar does:
//! produce (keys keep their partition, keyless messages spread), subscription creation, stats,
//! pull-consume with ack and nack, and deleting the topic, after which no owner serves a partition.

use crate::common::tier::{brokers, cluster, expect, tier_config};
use magnetar_tests::{BrokerProcess, call};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const PARTITIONS: u32 = 12;
const TOPIC: &str = "acme/app/orders";
const KEYS: usize = 10;
const PER_KEY: usize = 4;
const KEYLESS: usize = 36;

fn partition_of(id: &str) -> i64 {
    id.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("no partition in id {id}"))
}

/// Produces `messages` to the base name through `on`; each message's id, in order.
async fn produce(c: &reqwest::Client, on: &BrokerProcess, messages: Vec<Value>) -> Vec<String> {
    let n = messages.len();
    let body = expect(
        call(c, Method::POST, &format!("{}/topics/persistent/{TOPIC}", on.base), Some(json!({"messages": messages})))
            .await,
        200,
        "produce by base name",
    );
    let results = body["messagePublishResults"].as_array().expect("results").clone();
    assert_eq!(results.len(), n, "{body}");
    assert!(results.iter().all(|r| r["errorCode"] == 0), "{body}");
    results.iter().map(|r| r["messageId"].as_str().expect("id").to_string()).collect()
}

/// Pulls by base name through `on` until `want` messages came (acknowledging each batch through
/// `ack_on`); each message's `id` property and message id.
async fn pull_all(
    c: &reqwest::Client,
    on: &BrokerProcess,
    ack_on: &BrokerProcess,
    want: usize,
) -> Vec<(String, String)> {
    let pull = format!("{}/topics/persistent/{TOPIC}/subscriptions/sub/pull", on.base);
    let ack = format!("{}/topics/persistent/{TOPIC}/subscriptions/sub/ack", ack_on.base);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got = Vec::new();
    while got.len() < want {
        assert!(Instant::now() < deadline, "{} of {want} received", got.len());
        let body = json!({"maxMessages": 17, "waitMs": 1000, "ackTimeoutMs": 60000});
        let answer = expect(call(c, Method::POST, &pull, Some(body)).await, 200, "pull by base name");
        let messages = answer["messages"].as_array().expect("messages").clone();
        assert!(messages.len() <= 17, "more than asked for: {answer}");
        let ids: Vec<String> = messages.iter().map(|m| m["messageId"].as_str().unwrap().to_string()).collect();
        for (m, id) in messages.iter().zip(&ids) {
            got.push((m["properties"]["id"].as_str().expect("id property").to_string(), id.clone()));
        }
        if !ids.is_empty() {
            expect(call(c, Method::POST, &ack, Some(json!({"messageIds": ids}))).await, 204, "ack by base name");
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_topic_is_used_by_its_base_name_through_any_broker() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tier_config().await;
    let [a, b, c3] = brokers(dir.path(), &cfg);
    let brokers = [&a, &b, &c3];
    let c = reqwest::Client::new();
    let url = |on: &BrokerProcess, path: &str| format!("{}{path}", on.base);
    let admin = |on: &BrokerProcess, tail: &str| format!("{}/admin/v2/persistent/{TOPIC}{tail}", on.base);

    expect(
        call(&c, Method::PUT, &url(&a, "/admin/v2/tenants/acme"), Some(json!({"allowedClusters": [cluster()]}))).await,
        204,
        "tenant",
    );
    expect(call(&c, Method::PUT, &url(&b, "/admin/v2/namespaces/acme/app"), None).await, 204, "namespace");
    expect(call(&c, Method::PUT, &admin(&c3, "/partitions"), Some(json!(PARTITIONS))).await, 204, "topic");

    // The subscription exists on every partition before anything is produced: created by base
    // name through broker b, at the start.
    expect(
        call(&c, Method::PUT, &admin(&b, "/subscription/sub"), Some(json!({"ledgerId": -1, "entryId": -1}))).await,
        204,
        "subscription by base name",
    );
    let subs = expect(call(&c, Method::GET, &admin(&a, "/subscriptions"), None).await, 200, "subscriptions");
    assert_eq!(subs, json!(["sub"]));

    // Keyed messages through broker a: one key, one partition (Pulsar's Murmur3 hash of the key).
    let keyed: Vec<Value> = (0..KEYS * PER_KEY)
        .map(|n| json!({"payload": format!("k{n}"), "key": format!("key-{}", n % KEYS), "properties": {"id": format!("k{n}")}}))
        .collect();
    let ids = produce(&c, &a, keyed).await;
    let mut partition_of_key: BTreeMap<usize, BTreeSet<i64>> = BTreeMap::new();
    let mut id_of: BTreeMap<String, String> = BTreeMap::new();
    for (n, id) in ids.iter().enumerate() {
        partition_of_key.entry(n % KEYS).or_default().insert(partition_of(id));
        id_of.insert(format!("k{n}"), id.clone());
    }
    for (key, partitions) in &partition_of_key {
        assert_eq!(partitions.len(), 1, "key-{key} went to several partitions: {partitions:?}");
        let expected = magnetar_core::hash::partition_for_key(&format!("key-{key}"), PARTITIONS);
        assert_eq!(partitions.first().copied(), Some(i64::from(expected)), "key-{key}");
    }

    // Keyless messages through broker a: spread over every partition.
    let keyless: Vec<Value> =
        (0..KEYLESS).map(|n| json!({"payload": format!("u{n}"), "properties": {"id": format!("u{n}")}})).collect();
    let ids = produce(&c, &a, keyless).await;
    let spread: BTreeSet<i64> = ids.iter().map(|id| partition_of(id)).collect();
    assert_eq!(spread, (0..i64::from(PARTITIONS)).collect(), "keyless messages reach every partition");
    for (n, id) in ids.iter().enumerate() {
        id_of.insert(format!("u{n}"), id.clone());
    }
    let produced = id_of.len();

    // The partitions are served by all three brokers, so the answers above came from each.
    let ownership = expect(
        call(&c, Method::GET, &url(&b, &format!("/admin/v2/brokers/{}/bundles", cluster())), None).await,
        200,
        "view",
    );
    let owners: BTreeSet<&str> = ownership
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["state"] == "owned")
        .filter_map(|r| r["owner"].as_str())
        .collect();
    assert_eq!(owners.len(), 3, "every broker owns some of the partitions: {ownership}");

    // Partitioned stats through broker c: the sums, and each partition's own.
    let stats = expect(call(&c, Method::GET, &admin(&c3, "/partitioned-stats"), None).await, 200, "partitioned-stats");
    assert_eq!(stats["metadata"]["partitions"], PARTITIONS, "{stats}");
    assert_eq!(stats["msgInCounter"], produced, "{stats}");
    assert_eq!(stats["subscriptions"]["sub"]["msgBacklog"], produced, "{stats}");
    let each = stats["partitions"].as_object().expect("per partition");
    assert_eq!(each.len(), PARTITIONS as usize, "{stats}");
    let sum: u64 = each.values().map(|p| p["msgInCounter"].as_u64().unwrap()).sum();
    assert_eq!(sum, produced as u64);
    for (n, id) in &id_of {
        let name = format!("persistent://{TOPIC}-partition-{}", partition_of(id));
        assert!(each[&name]["msgInCounter"].as_u64().unwrap() > 0, "{n} is counted on {name}");
    }
    assert!(stats.get("appliedPolicies").is_some(), "the policies in force come with the totals");
    let bare = expect(
        call(&c, Method::GET, &admin(&c3, "/partitioned-stats?perPartition=false"), None).await,
        200,
        "partitioned-stats without partitions",
    );
    assert_eq!(bare["partitions"], json!({}));
    let total = expect(call(&c, Method::GET, &admin(&b, "/stats"), None).await, 200, "stats by base name");
    assert_eq!(total["msgInCounter"], produced);

    // Pull by base name through broker a, acknowledging through broker b: every message once, with
    // the id it was produced with.
    let got = pull_all(&c, &a, &b, produced).await;
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (name, id) in &got {
        *seen.entry(name.clone()).or_default() += 1;
        assert_eq!(id_of.get(name), Some(id), "{name} pulled with the id it was produced with");
    }
    assert_eq!(seen.keys().cloned().collect::<BTreeSet<_>>(), id_of.keys().cloned().collect::<BTreeSet<_>>());
    assert!(seen.values().all(|n| *n == 1), "received more than once: {seen:?}");
    let rest = expect(
        call(
            &c,
            Method::POST,
            &url(&c3, &format!("/topics/persistent/{TOPIC}/subscriptions/sub/pull")),
            Some(json!({"maxMessages": 50, "waitMs": 300})),
        )
        .await,
        200,
        "pull after all",
    );
    assert_eq!(rest["messages"], json!([]), "{rest}");
    let stats = expect(call(&c, Method::GET, &admin(&a, "/partitioned-stats"), None).await, 200, "stats after acks");
    assert_eq!(stats["subscriptions"]["sub"]["msgBacklog"], 0, "{stats}");

    // A nack by base name redelivers on the message's partition.
    let more: Vec<Value> = (0..3).map(|n| json!({"payload": "n", "properties": {"id": format!("n{n}")}})).collect();
    let ids = produce(&c, &b, more).await;
    let pull = url(&b, &format!("/topics/persistent/{TOPIC}/subscriptions/sub/pull"));
    let mut first = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while first.len() < 3 {
        assert!(Instant::now() < deadline, "nack round: {first:?}");
        let answer =
            expect(call(&c, Method::POST, &pull, Some(json!({"maxMessages": 3, "waitMs": 500}))).await, 200, "pull");
        first.extend(
            answer["messages"].as_array().unwrap().iter().map(|m| m["messageId"].as_str().unwrap().to_string()),
        );
    }
    assert_eq!(first.iter().collect::<BTreeSet<_>>(), ids.iter().collect::<BTreeSet<_>>());
    let nack = url(&c3, &format!("/topics/persistent/{TOPIC}/subscriptions/sub/nack"));
    expect(call(&c, Method::POST, &nack, Some(json!({"messageIds": first}))).await, 204, "nack by base name");
    let mut again = Vec::new();
    while again.len() < 3 {
        assert!(Instant::now() < deadline, "redelivery: {again:?}");
        let answer =
            expect(call(&c, Method::POST, &pull, Some(json!({"maxMessages": 3, "waitMs": 500}))).await, 200, "pull");
        for m in answer["messages"].as_array().unwrap() {
            assert!(m["redeliveryCount"].as_u64().unwrap() >= 1, "{m}");
            again.push(m["messageId"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(again.iter().collect::<BTreeSet<_>>(), ids.iter().collect::<BTreeSet<_>>());
    let ack = url(&a, &format!("/topics/persistent/{TOPIC}/subscriptions/sub/ack"));
    expect(call(&c, Method::POST, &ack, Some(json!({"messageIds": again}))).await, 204, "ack");

    // Bad input is refused with a reason before anything is sent on.
    let foreign = expect(
        call(&c, Method::POST, &ack, Some(json!({"messageIds": [format!("0:0:{PARTITIONS}")]}))).await,
        400,
        "ack of a partition the topic does not have",
    );
    assert!(foreign["reason"].as_str().unwrap().contains("does not belong"), "{foreign}");
    let empty = expect(
        call(&c, Method::POST, &url(&c3, &format!("/topics/persistent/{TOPIC}")), Some(json!({"messages": []}))).await,
        400,
        "produce of nothing",
    );
    assert!(empty["reason"].is_string(), "{empty}");

    // Unloading by base name unloads every partition on its owner; they load again on use, with
    // their in-memory counters started afresh.
    let before = expect(call(&c, Method::GET, &admin(&c3, "/partitioned-stats"), None).await, 200, "stats");
    assert!(before["partitions"].as_object().unwrap().values().all(|p| p["msgInCounter"].as_u64().unwrap() > 0));
    expect(call(&c, Method::PUT, &admin(&b, "/unload"), None).await, 204, "unload by base name");
    let after = expect(call(&c, Method::GET, &admin(&c3, "/partitioned-stats"), None).await, 200, "stats after unload");
    assert_eq!(after["partitions"].as_object().unwrap().len(), PARTITIONS as usize, "{after}");
    assert_eq!(after["msgInCounter"], 0, "every partition was loaded again: {after}");

    // Delete through broker b: the metadata goes, and no owner serves a partition any longer.
    expect(call(&c, Method::DELETE, &admin(&b, "/partitions"), None).await, 204, "delete by base name");
    let meta = expect(call(&c, Method::GET, &admin(&a, "/partitions"), None).await, 200, "metadata after delete");
    assert_eq!(meta["partitions"], 0, "{meta}");
    for on in brokers {
        for i in 0..PARTITIONS {
            let stats = format!("{}/admin/v2/persistent/{TOPIC}-partition-{i}/stats", on.base);
            let answer = call(&c, Method::GET, &stats, None).await;
            assert_eq!(answer.0.as_u16(), 404, "partition {i} through {}: {}", on.addr, answer.1);
        }
    }
}

/// Requests naming a partitioned topic by its base name are answered while its partitions'
/// bundles move: a partition whose supposed owner answers that it no longer owns it (having done
/// nothing) is asked again where its bundle is now, as a request naming the partition is, not
/// answered 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn base_name_requests_are_answered_while_the_partitions_bundles_move() {
    use crate::common::tier::{TOPIC, partitioned_topic, unload_every_bundle};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let cfg = tier_config().await;
    let [a, b, c3] = brokers(dir.path(), &cfg);
    let c = reqwest::Client::new();
    partitioned_topic(&c, &a.base).await;
    let moving = Arc::new(AtomicBool::new(true));
    let asking = {
        let (c, moving) = (c.clone(), Arc::clone(&moving));
        let stats = format!("{}/admin/v2/persistent/{TOPIC}/partitioned-stats?perPartition=true", a.base);
        let subscriptions = format!("{}/admin/v2/persistent/{TOPIC}/subscriptions", a.base);
        tokio::spawn(async move {
            let mut asked = 0;
            while moving.load(Ordering::Relaxed) {
                expect(call(&c, Method::GET, &stats, None).await, 200, "stats by base name while bundles move");
                let what = "subscriptions by base name while bundles move";
                expect(call(&c, Method::GET, &subscriptions, None).await, 200, what);
                asked += 1;
            }
            asked
        })
    };
    let mut moved = 0;
    for _ in 0..2 {
        moved += unload_every_bundle(&c, &b, &c3).await.1;
    }
    moving.store(false, Ordering::Relaxed);
    let asked = asking.await.expect("the requests were answered");
    assert!(moved > 0, "no bundle changed owner");
    assert!(asked >= 10, "only {asked} rounds of requests while the bundles moved");
}
