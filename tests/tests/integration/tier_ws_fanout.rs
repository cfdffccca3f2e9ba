//! WebSocket sessions on a whole partitioned topic in a broker tier: three `magnetar broker`
//! processes on one PostgreSQL and the shared S3 server, a partitioned topic whose partitions the
//! leader spreads over all three, and Pulsar WebSocket clients that name the topic by its base
//! name through one broker. That broker keeps one session per partition behind each client's
//! (here or on the partition's owner): a producer reaches every partition with keys kept on their
//! partition and ids naming it, a consumer receives from every partition and its acks reach the
//! partition each id names, a reader reads every partition; and when the partitions' bundles move
//! under load, the client's sessions stay open and every acknowledged message is stored once, a
//! reader goes on after the last message it read, and a consumer's session outlives a crash of a
//! partition's owner.

use crate::common::b64;
use crate::common::tier::{
    PARTITIONS, TOPIC, assert_stored_once, brokers, bundle_of, expect, namespace, ownership, partition,
    partitioned_topic, tier_config, unload_every_bundle,
};
use crate::common::ws::{WsClient, decode_ws_id, publish_at_once, publish_requests, text_of, ws_base};
use futures::{SinkExt, StreamExt};
use magnetar_tests::{BrokerProcess, call};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const WHOLE: u32 = 12;
const ORDERS: &str = "acme/app/orders";

fn url(on: &BrokerProcess, kind: &str, topic: &str, tail: &str) -> String {
    format!("{}/ws/v2/{kind}/persistent/{topic}{tail}", ws_base(&on.base))
}

/// The owners of the bundles in use (every broker owning some shows the topic is spread).
async fn owners(c: &reqwest::Client, base: &str) -> BTreeSet<String> {
    ownership(c, base).await.0.into_values().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_clients_use_a_partitioned_topic_by_its_base_name_through_one_broker() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tier_config().await;
    let [a, b, c3] = brokers(dir.path(), &cfg);
    let c = reqwest::Client::new();
    namespace(&c, &a.base).await;
    let admin = format!("{}/admin/v2/persistent/{ORDERS}/partitions", b.base);
    expect(call(&c, Method::PUT, &admin, Some(json!(WHOLE))).await, 204, "partitioned topic");

    // The consumer subscribes by base name through a (one session per partition behind it),
    // before anything is produced.
    let query = "/sub?subscriptionType=Shared&negativeAckRedeliveryDelay=100";
    let mut consumer = WsClient::connect(&url(&a, "consumer", ORDERS, query)).await;
    let stats = format!("{}/admin/v2/persistent/{ORDERS}/partitioned-stats", c3.base);
    assert_eq!(owners(&c, &a.base).await.len(), 3, "every broker owns some of the partitions");

    // The producer by base name through a: 40 keyed and 36 keyless frames sent at once, each
    // with a context; the receipts come back in the frames' order, each with its context.
    let mut producer = WsClient::connect(&url(&a, "producer", ORDERS, "")).await;
    let mut frames = Vec::new();
    for n in 0..40 {
        frames.push(json!({"payload": b64(format!("k{n}").as_bytes()), "key": format!("key-{}", n % 10),
                           "context": format!("k{n}")}));
    }
    for n in 0..36 {
        frames.push(json!({"payload": b64(format!("u{n}").as_bytes()), "context": format!("u{n}")}));
    }
    for f in &frames {
        producer.send_json(f).await;
    }
    let mut id_of: BTreeMap<String, String> = BTreeMap::new();
    for f in &frames {
        let r = producer.recv().await;
        assert_eq!(r["result"], "ok", "{r}");
        assert_eq!(r["context"], f["context"], "receipts in the frames' order: {r}");
        id_of.insert(f["context"].as_str().unwrap().to_string(), r["messageId"].as_str().unwrap().to_string());
    }
    let partition_of = |name: &str| decode_ws_id(&id_of[name]).2;
    for n in 0..40 {
        // JavaStringHash (the producer's default) of the key, as the single broker chooses.
        let key = format!("key-{}", n % 10);
        let expected = magnetar_core::hash::partition_for_key_java(&key, WHOLE) as i32;
        assert_eq!(partition_of(&format!("k{n}")), expected, "{key}");
    }
    let spread: BTreeSet<i32> = (0..36).map(|n| partition_of(&format!("u{n}"))).collect();
    assert_eq!(spread, (0..WHOLE as i32).collect(), "keyless messages reach every partition");
    // A bad frame is answered alone, in its turn; the session goes on.
    producer.send_text("{not json").await;
    assert_eq!(producer.recv().await["result"], "send-error:3");
    // `maxPendingMessages` bounds the frames unanswered here and on each partition's session:
    // with 1, every frame is its own publish request on its partition's owner.
    let mut one = WsClient::connect(&url(&a, "producer", ORDERS, "?maxPendingMessages=1")).await;
    let requests = || async {
        publish_requests(&a.base).await + publish_requests(&b.base).await + publish_requests(&c3.base).await
    };
    let before = requests().await;
    let ids = publish_at_once(&mut one, 24, "w").await;
    assert_eq!(requests().await - before, 24, "each frame was published alone");
    id_of.extend(ids.into_iter().enumerate().map(|(n, id)| (format!("w{n}"), id)));
    one.close().await;

    // The consumer receives every message once, with the id it was produced with, each key's
    // messages in the order they were sent, and acknowledges each.
    let mut got: Vec<(String, String)> = Vec::new();
    while got.len() < id_of.len() {
        let m = consumer.recv_message().await;
        let name = text_of(&m);
        let id = m["messageId"].as_str().unwrap().to_string();
        assert_eq!(id_of.get(&name), Some(&id), "{name} received with the id it was produced with");
        consumer.ack(&id).await;
        got.push((name, id));
    }
    let names: BTreeSet<&String> = got.iter().map(|(n, _)| n).collect();
    assert_eq!(names.len(), id_of.len(), "each message once");
    for k in 0..10 {
        let order: Vec<usize> = got
            .iter()
            .filter_map(|(n, _)| n.strip_prefix('k')?.parse::<usize>().ok())
            .filter(|n| n % 10 == k)
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "key-{k} out of order: {order:?}");
    }
    // Acknowledged on their partitions: nothing comes again, the backlog drains.
    consumer.expect_silence("redelivery after acks").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let st = expect(call(&c, Method::GET, &stats, None).await, 200, "stats");
        if st["subscriptions"]["sub"]["msgBacklog"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "backlog after every ack: {st}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The other client frames: end of topic asks every partition; an id of no partition of the
    // topic is refused; a nack redelivers on the message's partition.
    consumer.send_json(&json!({"type": "isEndOfTopic"})).await;
    assert_eq!(consumer.recv().await, json!({"endOfTopic": false}));
    consumer.ack(&crate::common::ws::encode_ws_id(0, 0, WHOLE as i32)).await;
    let refused = consumer.recv().await;
    assert_eq!(refused["errorCode"], 3, "{refused}");
    let id = producer.publish(json!({"payload": b64(b"again"), "context": "again"})).await["messageId"]
        .as_str()
        .unwrap()
        .to_string();
    let first = consumer.recv_message().await;
    assert_eq!(first["messageId"].as_str(), Some(id.as_str()));
    consumer.nack(&id).await;
    let m = consumer.recv_message().await;
    assert_eq!((m["messageId"].as_str(), text_of(&m).as_str()), (Some(id.as_str()), "again"));
    assert!(m["redeliveryCount"].as_u64() >= Some(1), "{m}");
    consumer.ack(&id).await;
    consumer.expect_silence("redelivery after the ack").await;

    // A reader by base name through b reads every partition from the earliest message.
    let mut reader = WsClient::connect(&url(&b, "reader", ORDERS, "?messageId=earliest")).await;
    let mut read = BTreeSet::new();
    while read.len() < id_of.len() + 1 {
        let m = reader.recv_message().await;
        assert!(read.insert(m["messageId"].as_str().unwrap().to_string()), "read twice: {m}");
        reader.ack(m["messageId"].as_str().unwrap()).await;
    }
    assert!(id_of.values().all(|id| read.contains(id)));
    reader.close().await;

    // Pull mode through c: never more messages than permitted, whichever partitions hold them;
    // then unsubscribing removes the subscription from every partition and ends the session.
    let mut puller =
        WsClient::connect(&url(&c3, "consumer", ORDERS, "/pull?pullMode=true&subscriptionType=Shared")).await;
    for n in 0..20 {
        let r = producer.publish(json!({"payload": b64(format!("p{n}").as_bytes()), "context": n})).await;
        assert_eq!((r["result"].as_str(), r["context"].as_i64()), (Some("ok"), Some(n)), "{r}");
    }
    puller.expect_silence("no permits yet").await;
    puller.permit(5).await;
    let mut pulled = BTreeSet::new();
    for _ in 0..5 {
        let m = puller.recv_message().await;
        pulled.insert(text_of(&m));
        puller.ack(m["messageId"].as_str().unwrap()).await;
    }
    puller.expect_silence("five permits used").await;
    puller.permit(100).await;
    while pulled.len() < 20 {
        let m = puller.recv_message().await;
        assert!(pulled.insert(text_of(&m)), "pulled twice: {m}");
        puller.ack(m["messageId"].as_str().unwrap()).await;
    }
    puller.expect_silence("every message pulled").await;
    puller.send_json(&json!({"type": "unsubscribe"})).await;
    puller.close_code().await;
    let list = format!("{}/admin/v2/persistent/{ORDERS}/subscriptions", b.base);
    let subs = expect(call(&c, Method::GET, &list, None).await, 200, "subscriptions");
    assert_eq!(subs, json!(["sub"]), "unsubscribed from every partition");
    consumer.close().await;
    producer.close().await;
}

/// A WebSocket producer on the base name sending messages with unique `id` properties, at most
/// `WINDOW` unanswered; what was acknowledged. Its session must stay open throughout.
struct Producing {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<BTreeSet<String>>,
}

const WINDOW: usize = 64;
/// Keys of the producer under load (message `n` has key `n % KEYS`).
const KEYS: usize = 8;

/// The `seq` of each message stored on `partition`, in stored order, read through subscription
/// `sub` (ids `0-{seq}-0`).
async fn stored_order(c: &reqwest::Client, base: &str, partition: &str, sub: &str) -> Vec<usize> {
    let pull = format!("{base}/topics/persistent/{partition}/subscriptions/{sub}/pull");
    let ack = format!("{base}/topics/persistent/{partition}/subscriptions/{sub}/ack");
    let mut seqs = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "{partition}: still reading after 30 s");
        let body = json!({"maxMessages": 500, "waitMs": 300, "ackTimeoutMs": 60000});
        let got = expect(call(c, Method::POST, &pull, Some(body)).await, 200, "pull");
        let messages = got["messages"].as_array().expect("messages").clone();
        if messages.is_empty() {
            return seqs;
        }
        let ids: Vec<String> = messages.iter().map(|m| m["messageId"].as_str().unwrap().to_string()).collect();
        for m in &messages {
            let id = m["properties"]["id"].as_str().expect("id");
            seqs.push(id.split('-').nth(1).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("id {id}")));
        }
        expect(call(c, Method::POST, &ack, Some(json!({"messageIds": ids}))).await, 204, "ack");
    }
}

impl Producing {
    async fn start(url: String) -> Producing {
        let (ws, _) = tokio_tungstenite::connect_async(&url).await.expect("producer handshake");
        let (mut tx, mut rx) = ws.split();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let task = tokio::spawn(async move {
            let mut acked = BTreeSet::new();
            let mut unanswered: std::collections::VecDeque<String> = Default::default();
            let mut seq = 0usize;
            let mut last_answer = Instant::now();
            loop {
                let stopping = flag.load(Ordering::Relaxed);
                if stopping && unanswered.is_empty() {
                    break;
                }
                if !stopping && unanswered.len() < WINDOW {
                    let id = format!("0-{seq}-0");
                    let key = format!("key-{}", seq % KEYS);
                    seq += 1;
                    let frame = json!({"payload": "eA==", "key": key, "properties": {"id": id}, "context": id});
                    tx.send(Message::text(frame.to_string())).await.expect("send on the producer's session");
                    unanswered.push_back(id);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                match tokio::time::timeout(Duration::from_millis(5), rx.next()).await {
                    Err(_) => {
                        assert!(last_answer.elapsed() < Duration::from_secs(20), "no receipt for 20 s");
                        continue;
                    }
                    Ok(Some(Ok(Message::Text(t)))) => {
                        let r: Value = serde_json::from_str(t.as_str()).unwrap();
                        assert_eq!(r["result"], "ok", "a send failed: {r}");
                        let expected = unanswered.pop_front().expect("a receipt for a frame sent");
                        assert_eq!(r["context"].as_str(), Some(expected.as_str()), "receipts in order");
                        acked.insert(expected);
                        last_answer = Instant::now();
                    }
                    Ok(Some(Ok(Message::Close(f)))) => panic!("the producer's session was closed: {f:?}"),
                    Ok(Some(Ok(_))) => {}
                    Ok(other) => panic!("the producer's session failed: {other:?}"),
                }
            }
            let _ = tx.close().await;
            acked
        });
        Producing { stop, task }
    }

    async fn finish(self) -> BTreeSet<String> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("producer task")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn base_name_websocket_sessions_stay_open_while_every_partitions_bundle_moves_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tier_config().await;
    let [a, b, c3] = brokers(dir.path(), &cfg);
    let c = reqwest::Client::new();
    partitioned_topic(&c, &a.base).await;
    for i in 0..PARTITIONS {
        let order = format!("{}/admin/v2/persistent/{}/subscription/order", a.base, partition(i));
        expect(call(&c, Method::PUT, &order, None).await, 204, "order subscription");
    }

    // Both sessions through a: its own partitions are served in the process, the others on
    // their owners.
    let mut consumer = WsClient::connect(&url(&a, "consumer", TOPIC, "/live?subscriptionType=Shared")).await;
    let producing = Producing::start(url(&a, "producer", TOPIC, "")).await;
    let received: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let consuming = {
        let received = Arc::clone(&received);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let task = tokio::spawn(async move {
            while !flag.load(Ordering::Relaxed) {
                // recv_within fails the test if the session is closed.
                let Some(m) = consumer.recv_within(Duration::from_millis(100)).await else { continue };
                let id = m["messageId"].as_str().unwrap_or_else(|| panic!("not a message: {m}")).to_string();
                let (l, e, p) = decode_ws_id(&id);
                let pulled = format!("{l}:{e}:{p}");
                assert!((0..PARTITIONS as i32).contains(&p), "{pulled}");
                received.lock().unwrap().insert(m["properties"]["id"].as_str().expect("id").to_string());
                consumer.ack(&id).await;
            }
            consumer
        });
        (stop, task)
    };
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Every partition's bundle is unloaded through b, one after the other, under the load.
    let (bundles, moved) = unload_every_bundle(&c, &a, &b).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let acked = producing.finish().await;
    assert!(moved >= 1, "the unloads moved bundles to other brokers: {bundles:?}");
    assert!(acked.len() > 200, "the load ran: {} messages acknowledged", acked.len());

    // The consumer, still on its first session, received every acknowledged message.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let missing = acked.difference(&received.lock().unwrap()).count();
        if missing == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{missing} acknowledged messages not received by the consumer");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    consuming.0.store(true, Ordering::Relaxed);
    let consumer = consuming.1.await.expect("consumer task");
    eprintln!("{} messages acknowledged; {} of {} bundles moved", acked.len(), moved, bundles.len());
    assert_stored_once(&c, &c3.base, &acked).await;
    // Each key on one partition, in the order it was sent: a partition's unanswered messages
    // were sent again to its new owner before anything newer.
    let mut partition_of_key: BTreeMap<usize, u32> = BTreeMap::new();
    for i in 0..PARTITIONS {
        let seqs = stored_order(&c, &b.base, &partition(i), "order").await;
        for k in 0..KEYS {
            let of_key: Vec<usize> = seqs.iter().copied().filter(|s| s % KEYS == k).collect();
            assert!(of_key.windows(2).all(|w| w[0] < w[1]), "key-{k} out of order on partition {i}: {of_key:?}");
            if !of_key.is_empty() {
                assert_eq!(*partition_of_key.entry(k).or_insert(i), i, "key-{k} on two partitions");
            }
        }
    }
    consumer.close().await;
}

/// Reads (and acknowledges) until `read` holds `n` ids, each read once.
async fn read_all(reader: &mut WsClient, read: &mut BTreeSet<String>, n: usize) {
    while read.len() < n {
        let m = reader.recv_message().await;
        let id = m["messageId"].as_str().unwrap().to_string();
        reader.ack(&id).await;
        assert!(read.insert(id), "read twice: {m}");
    }
}

/// A reader by base name goes on, on each partition whose bundle moved, after the last message
/// it was given there (as Pulsar's readers resume from their last message when they reconnect):
/// nothing read twice, nothing skipped, whether the partition's session was on the client's
/// broker or on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_base_name_reader_resumes_every_partition_after_its_bundle_moves() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tier_config().await;
    let [a, b, _c3] = brokers(dir.path(), &cfg);
    let c = reqwest::Client::new();
    partitioned_topic(&c, &a.base).await;
    let mut producer = WsClient::connect(&url(&a, "producer", TOPIC, "")).await;
    let mut written: BTreeSet<String> = publish_at_once(&mut producer, 48, "r").await.into_iter().collect();
    // A message id names one partition's position: refused on the whole topic, as by a single
    // broker (and Pulsar's clients).
    let first = written.iter().next().expect("written").replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
    assert_eq!(crate::common::ws::refused_status(&url(&a, "reader", TOPIC, &format!("?messageId={first}"))).await, 400);
    let mut reader = WsClient::connect(&url(&a, "reader", TOPIC, "?messageId=earliest")).await;
    let mut read = BTreeSet::new();
    read_all(&mut reader, &mut read, written.len()).await;
    assert_eq!(read, written);

    let (bundles, moved) = unload_every_bundle(&c, &a, &b).await;
    assert!(moved >= 1, "the unloads moved bundles to other brokers: {bundles:?}");
    written.extend(publish_at_once(&mut producer, 48, "s").await);
    read_all(&mut reader, &mut read, written.len()).await;
    assert_eq!(read, written);
    reader.expect_silence("every message read once").await;
    reader.close().await;
    producer.close().await;
}

/// Produces `{tag}-{p}-{k}` for `k` in `0..n` to each partition `p` through `base` (retrying a
/// partition whose owner is not serving yet, for up to 20 s); the payloads.
async fn produce_everywhere(c: &reqwest::Client, base: &str, tag: &str, n: usize) -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    for p in 0..PARTITIONS {
        let payloads: Vec<String> = (0..n).map(|k| format!("{tag}-{p}-{k}")).collect();
        let messages: Vec<Value> = payloads.iter().map(|t| json!({"payload": t})).collect();
        let url = format!("{base}/topics/persistent/{TOPIC}/partitions/{p}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, body) = call(c, Method::POST, &url, Some(json!({"messages": messages}))).await;
            if status.as_u16() == 200 {
                break;
            }
            assert!(Instant::now() < deadline, "partition {p} not served within 20 s: {body}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        all.extend(payloads);
    }
    all
}

/// Receives (and acknowledges) until every message of `expected` is in `received`.
async fn receive_all(consumer: &mut WsClient, received: &mut BTreeSet<String>, expected: &BTreeSet<String>) {
    while !expected.is_subset(received) {
        let m = consumer.recv_message().await;
        consumer.ack(m["messageId"].as_str().unwrap()).await;
        received.insert(text_of(&m));
    }
}

/// A consumer's session on a partition whose owner is killed (kill -9: the connection is lost
/// without a close frame) is reopened once the owner serves again, as Pulsar's clients
/// reconnect: the client's session by base name stays open and receives every message, those
/// produced before the kill and those after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_base_name_consumer_stays_open_when_a_partitions_owner_is_killed_and_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tier_config().await;
    let [a, b, c3] = brokers(dir.path(), &cfg);
    let c = reqwest::Client::new();
    partitioned_topic(&c, &a.base).await;
    let mut consumer = WsClient::connect(&url(&a, "consumer", TOPIC, "/live?subscriptionType=Shared")).await;
    let mut expected = produce_everywhere(&c, &a.base, "before", 10).await;
    let mut received = BTreeSet::new();
    receive_all(&mut consumer, &mut received, &expected).await;

    // The owner of some partition other than a is killed and started again on its volume.
    let (owned, _) = ownership(&c, &a.base).await;
    let mut serving = BTreeSet::new();
    for i in 0..PARTITIONS {
        serving.extend(owned.get(&bundle_of(&c, &a.base, &partition(i)).await).cloned());
    }
    let mut others = [b, c3];
    let victim = others.iter().position(|o| serving.contains(&o.addr));
    let victim = &mut others[victim.unwrap_or_else(|| panic!("a serves every partition: {owned:?}"))];
    victim.kill9();
    victim.restart();
    expected.extend(produce_everywhere(&c, &a.base, "after", 10).await);
    receive_all(&mut consumer, &mut received, &expected).await;
    consumer.close().await;
}

/// An owner that stalls (SIGSTOP: neither a close frame nor a reset, as from a dead host or a
/// paused VM) under WebSocket sessions held through another broker: once it is silent for
/// `owner_silence_ms`, a consumer's session on one of its partitions fanned out from the base
/// name is reopened on the partition's new owner (object-store durability: its bundles fail
/// over), so the client's session receives what comes after; a session spliced to it is ended
/// for its client to reconnect, instead of waiting on the stalled owner for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_sessions_through_another_broker_move_on_when_an_owner_stalls() {
    sessions_move_on_when_an_owner_stalls("2000", Duration::from_millis(1500)).await;
}

/// The same with a silence longer than the lease (4 s): the connections to the stalled owner end
/// once it has lost its lease (a broker past its lease acknowledges nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_sessions_through_another_broker_move_on_once_a_stalled_owner_loses_its_lease() {
    sessions_move_on_when_an_owner_stalls("60000", Duration::from_millis(3000)).await;
}

/// A stalled owner's sessions with `owner_silence_ms` = `silence_ms`; the spliced session ends
/// no sooner than `at_least` after the stall.
async fn sessions_move_on_when_an_owner_stalls(silence_ms: &str, at_least: Duration) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tier_config().await;
    let env = [("MAGNETAR_BROKER__TIER__OWNER_SILENCE_MS", silence_ms)];
    let [a, b, c3] = crate::common::tier::brokers_with_env(dir.path(), &cfg, &env);
    let c = reqwest::Client::new();
    namespace(&c, &a.base).await;
    let policy = crate::tier_failover::Mode::ObjectStore.policy(Some(5000));
    let durability = format!("{}/admin/v2/namespaces/acme/app/durability", a.base);
    expect(call(&c, Method::POST, &durability, Some(policy)).await, 204, "durability");
    let topic = format!("{}/admin/v2/persistent/{TOPIC}/partitions", a.base);
    expect(call(&c, Method::PUT, &topic, Some(json!(PARTITIONS))).await, 204, "partitioned topic");
    let mut consumer = WsClient::connect(&url(&a, "consumer", TOPIC, "/live?subscriptionType=Shared")).await;
    let mut expected = produce_everywhere(&c, &a.base, "before", 5).await;
    let mut received = BTreeSet::new();
    receive_all(&mut consumer, &mut received, &expected).await;

    // The owner of some partition other than a, and a session spliced to it on that partition.
    let (owned, _) = ownership(&c, &a.base).await;
    let mut others = [b, c3];
    let mut on_victim = None;
    for i in 0..PARTITIONS {
        let owner = owned.get(&bundle_of(&c, &a.base, &partition(i)).await).cloned();
        if let Some(o) = others.iter().position(|o| Some(&o.addr) == owner.as_ref()) {
            on_victim = Some((o, i));
            break;
        }
    }
    let (victim, i) = on_victim.unwrap_or_else(|| panic!("a serves every partition: {owned:?}"));
    let victim = &mut others[victim];
    let mut spliced = WsClient::connect(&url(&a, "consumer", &partition(i), "/spliced?subscriptionType=Shared")).await;

    victim.pause();
    let started = Instant::now();
    // Its partitions fail over once its lease (4 s) expired; what comes after reaches the
    // client's session through the partition sessions reopened on the new owners.
    crate::common::eventually(30, "the stalled owner's partitions taken over", || async {
        crate::tier_failover::none_owned_by(&c, &a.base, &victim.addr).await.then_some(())
    })
    .await;
    expected.extend(produce_everywhere(&c, &a.base, "after", 5).await);
    receive_all(&mut consumer, &mut received, &expected).await;
    match spliced.next_event(Duration::from_secs(20)).await {
        crate::common::ws::WsEvent::Closed(_) => {}
        other => panic!("the session spliced to the stalled owner is still open: {other:?}"),
    }
    let ended = started.elapsed();
    assert!(ended >= at_least, "ended after {ended:?}, sooner than {at_least:?} after the stall");
    eprintln!("spliced session ended {} ms after its owner stalled", ended.as_millis());
    victim.resume();
    consumer.close().await;
}

const SECRET: &str = "magnetar-tier-ws-fanout-secret-0123456789abcdef";

/// `method url` with a bearer token; the status and the JSON answer (null when empty).
async fn authed(c: &reqwest::Client, method: Method, url: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = c.request(method, url).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn base_name_websocket_sessions_are_authorized_on_the_base_name_and_by_each_owner() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = format!(
        "{}\n[auth]\nenabled = true\nsuperuser_roles = [\"root\"]\ntoken_secret_key = \"{SECRET}\"\n",
        tier_config().await
    );
    let [a, b, c3] = brokers(dir.path(), &cfg);
    let c = reqwest::Client::new();
    let root = magnetar_tests::hs256_token(SECRET, "root", 600);
    let app = magnetar_tests::hs256_token(SECRET, "app", 600);
    let tenant = json!({"allowedClusters": [crate::common::tier::cluster()]});
    let put = |path: &str| format!("{}{path}", a.base);
    assert_eq!(authed(&c, Method::PUT, &put("/admin/v2/tenants/acme"), &root, Some(tenant)).await.0, 204);
    assert_eq!(authed(&c, Method::PUT, &put("/admin/v2/namespaces/acme/app"), &root, None).await.0, 204);
    let topic = format!("{}/admin/v2/persistent/{TOPIC}/partitions", b.base);
    assert_eq!(authed(&c, Method::PUT, &topic, &root, Some(json!(PARTITIONS))).await.0, 204);
    let grant = put("/admin/v2/namespaces/acme/app/permissions/app");
    assert_eq!(authed(&c, Method::POST, &grant, &root, Some(json!(["produce"]))).await.0, 204);

    // No token: 401 before anything is opened.
    assert_eq!(crate::common::ws::refused_status(&url(&a, "producer", TOPIC, "")).await, 401);
    // Produce only: a consumer is refused on the base name (403), and no partition saw it.
    let consumer = url(&a, "consumer", TOPIC, "/sub?subscriptionType=Shared");
    assert_eq!(WsClient::connect_with_token(&consumer, &app).await.err(), Some(403));
    let subs = format!("{}/admin/v2/persistent/{TOPIC}/subscriptions", c3.base);
    let (status, list) = authed(&c, Method::GET, &subs, &root, None).await;
    assert_eq!((status, list), (200, json!([])), "the refused consumer subscribed nowhere");

    // The producer is accepted with the token passed on to every owner, which authorizes it
    // again (each owner reads the grant within its policy cache time: retried until then).
    let producer_url = url(&a, "producer", TOPIC, "");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut producer = loop {
        match WsClient::connect_with_token(&producer_url, &app).await {
            Ok(ws) => break ws,
            Err(403) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(status) => panic!("producer refused with {status}"),
        }
    };
    let mut partitions = BTreeSet::new();
    for n in 0..(2 * PARTITIONS) {
        let id = producer.publish_ok(&format!("m{n}"), None).await;
        partitions.insert(decode_ws_id(&id).2);
    }
    assert_eq!(partitions.len(), PARTITIONS as usize, "every partition, on every owner, took messages");
    let owned: BTreeSet<String> = ownership_view(&c, &c3, &root)
        .await
        .iter()
        .filter(|r| r["state"] == "owned")
        .filter_map(|r| r["owner"].as_str().map(String::from))
        .collect();
    assert_eq!(owned.len(), 3, "every broker owns some of the partitions");
    producer.close().await;
    // `?token=` as browsers pass it goes to the owners with the query.
    let by_query = url(&b, "producer", TOPIC, &format!("?token={app}"));
    let mut producer = WsClient::connect(&by_query).await;
    producer.publish_ok("by query", None).await;
    producer.close().await;
}

/// The ownership view, read with a superuser token.
async fn ownership_view(c: &reqwest::Client, on: &BrokerProcess, root: &str) -> Vec<Value> {
    let url = format!("{}/admin/v2/brokers/{}/bundles", on.base, crate::common::tier::cluster());
    let (status, view) = authed(c, Method::GET, &url, root, None).await;
    assert_eq!(status, 200, "{view}");
    view.as_array().expect("rows").clone()
}
