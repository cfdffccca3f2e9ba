//! The broker tier with bundle ownership (issue 11): three `magnetar broker` processes on one
//! PostgreSQL and the shared S3 server, `[broker.tier] enabled`. The leader spreads the bundles of
//! a 12-partition topic over all three brokers; every request may go to any broker and is
//! forwarded once to the owner; produce through one broker and pull-consume through another
//! receive every message exactly once; lookups answer the cluster's service address.

use crate::common::tier::{brokers, cluster, expect, tier_config};
use crate::common::ws::{WsClient, text_of, ws_base};
use magnetar_tests::{BrokerProcess, call};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const PARTITIONS: u32 = 12;
const PER_PARTITION: usize = 25;
const TOPIC: &str = "acme/app/orders";

fn partition(i: u32) -> String {
    format!("{TOPIC}-partition-{i}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_spread_over_three_brokers_and_any_broker_serves_every_partition() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tier_config().await;
    let [a, b, c3] = brokers(dir.path(), &cfg);
    let brokers = [&a, &b, &c3];
    let c = reqwest::Client::new();
    let url = |on: &BrokerProcess, path: &str| format!("{}{path}", on.base);

    expect(
        call(&c, Method::PUT, &url(&a, "/admin/v2/tenants/acme"), Some(json!({"allowedClusters": [cluster()]}))).await,
        204,
        "tenant",
    );
    expect(call(&c, Method::PUT, &url(&b, "/admin/v2/namespaces/acme/app"), None).await, 204, "namespace");
    // Created through the third broker (forwarded to the owner of the base name's bundle if need be).
    expect(
        call(&c, Method::PUT, &url(&c3, &format!("/admin/v2/persistent/{TOPIC}/partitions")), Some(json!(PARTITIONS)))
            .await,
        204,
        "partitioned topic",
    );

    // Produce through broker a, partition by partition: each bundle gets its owner on first use.
    let mut produced = BTreeSet::new();
    for i in 0..PARTITIONS {
        let messages: Vec<Value> = (0..PER_PARTITION)
            .map(|j| {
                let id = format!("{i}-{j}");
                produced.insert(id.clone());
                json!({"payload": "eA==", "properties": {"id": id}})
            })
            .collect();
        let body = expect(
            call(
                &c,
                Method::POST,
                &url(&a, &format!("/topics/persistent/{TOPIC}/partitions/{i}")),
                Some(json!({"messages": messages})),
            )
            .await,
            200,
            "produce",
        );
        let results = body["messagePublishResults"].as_array().expect("results");
        assert_eq!(results.len(), PER_PARTITION);
        assert!(results.iter().all(|r| r["errorCode"] == 0), "{body}");
    }

    // The bundles holding the partitions, and who owns them: all three brokers serve some.
    let ownership = expect(
        call(&c, Method::GET, &url(&b, &format!("/admin/v2/brokers/{}/bundles", cluster())), None).await,
        200,
        "view",
    );
    let owner_of: BTreeMap<String, String> = ownership
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["state"] == "owned")
        .map(|r| (r["bundle"].as_str().unwrap().to_string(), r["owner"].as_str().unwrap().to_string()))
        .collect();
    assert!(ownership.as_array().unwrap().iter().all(|r| r["unavailable"] == false), "{ownership}");
    let mut owner_of_partition = BTreeMap::new();
    for i in 0..PARTITIONS {
        let range = expect(
            call(&c, Method::GET, &url(&c3, &format!("/lookup/v2/topic/persistent/{}/bundle", partition(i))), None)
                .await,
            200,
            "bundle lookup",
        );
        let bundle = format!("acme/app/{}", range.as_str().expect("range text"));
        let owner = owner_of.get(&bundle).unwrap_or_else(|| panic!("bundle {bundle} is not owned: {ownership}"));
        owner_of_partition.insert(i, owner.clone());
    }
    let owners: BTreeSet<&String> = owner_of_partition.values().collect();
    let all: BTreeSet<&String> = brokers.iter().map(|p| &p.addr).collect();
    assert_eq!(owners, all, "every broker owns some of the partitions: {owner_of_partition:?}");
    // Pulsar's view of it agrees, asked of any broker.
    for owner in &all {
        let owned = expect(
            call(&c, Method::GET, &url(&a, &format!("/admin/v2/brokers/{}/{owner}/ownedNamespaces", cluster())), None)
                .await,
            200,
            "owned namespaces",
        );
        let keys: BTreeSet<String> = owned.as_object().expect("map").keys().cloned().collect();
        let expected: BTreeSet<String> = owner_of.iter().filter(|(_, o)| o == owner).map(|(b, _)| b.clone()).collect();
        assert_eq!(keys, expected, "bundles of {owner}");
    }

    // Lookups answer the cluster's service address, never a broker's own.
    expect(
        call(
            &c,
            Method::POST,
            &url(&a, &format!("/admin/v2/clusters/{}", cluster())),
            Some(json!({"serviceUrl": "http://tier.example:8080"})),
        )
        .await,
        204,
        "cluster service url",
    );
    for p in brokers {
        let found = expect(
            call(&c, Method::GET, &url(p, &format!("/lookup/v2/topic/persistent/{}", partition(0))), None).await,
            200,
            "lookup",
        );
        assert_eq!(found["httpUrl"], "http://tier.example:8080", "{found}");
    }

    // Pull-consume through broker b, partition by partition, acknowledging as it goes.
    let mut received: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..PARTITIONS {
        let pull = url(&b, &format!("/topics/persistent/{}/subscriptions/sub/pull", partition(i)));
        let ack = url(&b, &format!("/topics/persistent/{}/subscriptions/sub/ack", partition(i)));
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut here = 0;
        while here < PER_PARTITION {
            assert!(Instant::now() < deadline, "partition {i}: {here} of {PER_PARTITION} received");
            let body = json!({"maxMessages": 10, "waitMs": 500, "ackTimeoutMs": 30000, "initialPosition": "earliest"});
            let got = expect(call(&c, Method::POST, &pull, Some(body)).await, 200, "pull");
            let messages = got["messages"].as_array().expect("messages").clone();
            let ids: Vec<String> = messages.iter().map(|m| m["messageId"].as_str().unwrap().to_string()).collect();
            for m in &messages {
                *received.entry(m["properties"]["id"].as_str().expect("id property").to_string()).or_default() += 1;
                here += 1;
            }
            if !ids.is_empty() {
                expect(call(&c, Method::POST, &ack, Some(json!({"messageIds": ids}))).await, 204, "ack");
            }
        }
        // Nothing more, and nothing again: every message of the partition was received once.
        let again = json!({"maxMessages": 10, "waitMs": 200});
        let rest = expect(call(&c, Method::POST, &pull, Some(again)).await, 200, "pull after all");
        assert_eq!(rest["messages"], json!([]), "partition {i}");
    }
    assert_eq!(received.keys().cloned().collect::<BTreeSet<_>>(), produced, "every message produced was received");
    let twice: Vec<_> = received.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "received more than once: {twice:?}");

    // A request already forwarded once is never forwarded again: the receiver, not the owner,
    // answers 503 with a reason (and no internal address).
    let (i, owner) = owner_of_partition.iter().next().unwrap();
    let other = brokers.iter().find(|p| &p.addr != owner).unwrap();
    let stats = url(other, &format!("/admin/v2/persistent/{}/stats", partition(*i)));
    let answer = c.get(&stats).header("x-magnetar-forwarded-by", "test").send().await.expect("stats");
    assert_eq!(answer.status().as_u16(), 503);
    let reason = answer.text().await.unwrap();
    assert!(reason.contains(owner.as_str()) && reason.contains("forwarded"), "{reason}");
    // Without the header, the same request is served through the same broker.
    expect(call(&c, Method::GET, &stats, None).await, 200, "stats through a non-owner");

    // WebSocket sessions through brokers that do not own the partition are spliced to its owner:
    // a consumer through one non-owner receives what a producer sends through the other.
    let others: Vec<&&BrokerProcess> = brokers.iter().filter(|p| &p.addr != owner).collect();
    let topic = partition(*i);
    let consumer_url = format!("{}/ws/v2/consumer/persistent/{topic}/ws-sub", ws_base(&others[0].base));
    let mut consumer = WsClient::connect(&consumer_url).await;
    let mut producer =
        WsClient::connect(&format!("{}/ws/v2/producer/persistent/{topic}", ws_base(&others[1].base))).await;
    let sent: Vec<String> = (0..10).map(|n| format!("ws-{n}")).collect();
    for payload in &sent {
        producer.publish_ok(payload, None).await;
    }
    let mut got = Vec::new();
    for _ in &sent {
        let m = consumer.recv_message().await;
        got.push(text_of(&m));
        consumer.ack(m["messageId"].as_str().expect("id")).await;
    }
    assert_eq!(got, sent, "in order, each once");
    consumer.expect_silence("after every message was received").await;
    producer.close().await;
    consumer.close().await;
}

/// A request forwarded by a broker of another cluster (its view of the tier named an address a
/// broker of this cluster now has) is refused with 503 and the not-owner mark, so the
/// forwarding broker routes it again; nothing is stored. One forwarded within the cluster is
/// served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_forwarded_by_a_broker_of_another_cluster_is_refused() {
    let (_dir, a, c) = crate::common::tier::lone_broker().await;
    crate::common::tier::namespace(&c, &a.base).await;
    let topic = format!("{}/topics/persistent/acme/app/guarded", a.base);
    let sub = format!("{}/admin/v2/persistent/acme/app/guarded/subscription/audit", a.base);
    let create = format!("{}/admin/v2/persistent/acme/app/guarded", a.base);
    expect(call(&c, Method::PUT, &create, None).await, 204, "topic");
    expect(call(&c, Method::PUT, &sub, None).await, 204, "subscription");
    let produce = |cluster: String, id: &'static str| {
        c.post(&topic)
            .header("x-magnetar-forwarded-by", "127.0.0.1:1")
            .header("x-magnetar-cluster", cluster)
            .json(&json!({"messages": [{"payload": "eA==", "properties": {"id": id}}]}))
            .send()
    };

    let refused = produce("another-cluster".into(), "foreign").await.expect("send");
    assert_eq!(refused.status().as_u16(), 503);
    assert!(refused.headers().contains_key("x-magnetar-not-owner"), "{:?}", refused.headers());
    let reason = refused.json::<Value>().await.expect("json")["reason"].as_str().unwrap_or_default().to_string();
    assert!(reason.contains("another-cluster") && reason.contains(cluster()), "{reason}");

    let served = produce(cluster().to_string(), "own").await.expect("send");
    assert_eq!(served.status().as_u16(), 200, "{:?}", served.text().await);
    let pull = format!("{}/topics/persistent/acme/app/guarded/subscriptions/audit/pull", a.base);
    let got = expect(call(&c, Method::POST, &pull, Some(json!({"maxMessages": 10, "waitMs": 500}))).await, 200, "pull");
    let ids: Vec<&str> =
        got["messages"].as_array().expect("messages").iter().map(|m| m["properties"]["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["own"]);
}
