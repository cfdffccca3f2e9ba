//! A broker of the tier that dies without handing over (issue 11, item 6): kill -9 and SIGSTOP.
//! Its bundles stay its own and are reported unavailable until it returns (its unuploaded tail is
//! only on its disk); it returns and loses nothing; a forced takeover does what its answer says;
//! a broker paused past its lease acknowledges nothing afterwards and its stale writes are
//! refused and counted.

use crate::common::tier::{brokers, bundle_of, cluster, expect, namespace, ownership, partition, tier_config_with};
use crate::common::{eventually, offset_of, payload_text};
use magnetar_tests::{BrokerProcess, call};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Produces `payloads` to partition `i` through `base`; their message ids.
async fn produce(c: &reqwest::Client, base: &str, i: u32, payloads: &[String]) -> Vec<String> {
    let messages: Vec<Value> = payloads.iter().map(|p| json!({"payload": p})).collect();
    let url = format!("{base}/topics/persistent/acme/app/events/partitions/{i}");
    let body = expect(call(c, Method::POST, &url, Some(json!({"messages": messages}))).await, 200, "produce");
    let results = body["messagePublishResults"].as_array().expect("results");
    assert!(results.iter().all(|r| r["errorCode"] == 0), "{body}");
    results.iter().map(|r| r["messageId"].as_str().expect("id").to_string()).collect()
}

/// Every payload of partition `i`, read through `base` by a new subscription from the earliest,
/// acknowledging as it goes (the leader's balance may move the bundle meanwhile: what was
/// acknowledged is not delivered again by the next owner).
async fn read_all(c: &reqwest::Client, base: &str, i: u32, sub: &str) -> Vec<String> {
    let pull = format!("{base}/topics/persistent/{}/subscriptions/{sub}/pull", partition(i));
    let ack = format!("{base}/topics/persistent/{}/subscriptions/{sub}/ack", partition(i));
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "reading partition {i} took over 30 s");
        let body = json!({"maxMessages": 1000, "waitMs": 300, "ackTimeoutMs": 60000, "initialPosition": "earliest"});
        let got = expect(call(c, Method::POST, &pull, Some(body)).await, 200, "pull");
        let messages = got["messages"].as_array().expect("messages").clone();
        if messages.is_empty() {
            return out;
        }
        out.extend(messages.iter().map(payload_text));
        let ids: Vec<&str> = messages.iter().map(|m| m["messageId"].as_str().expect("id")).collect();
        expect(call(c, Method::POST, &ack, Some(json!({"messageIds": ids}))).await, 204, "ack");
    }
}

fn texts(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|k| format!("{prefix}-{k}")).collect()
}

/// Two brokers; a 4-partition topic; the index of a partition broker `b` owns (produced to
/// through `a` so that every partition has an owner).
async fn two_brokers(
    dir: &std::path::Path,
    broker_lines: &str,
) -> (BrokerProcess, BrokerProcess, reqwest::Client, u32) {
    let cfg = tier_config_with(broker_lines).await;
    let [a, b] = brokers(dir, &cfg);
    let c = reqwest::Client::new();
    namespace(&c, &a.base).await;
    let url = format!("{}/admin/v2/persistent/acme/app/events/partitions", a.base);
    expect(call(&c, Method::PUT, &url, Some(json!(4))).await, 204, "partitioned topic");
    for i in 0..4 {
        produce(&c, &a.base, i, &[format!("warm-{i}")]).await;
    }
    let (owned, _) = ownership(&c, &a.base).await;
    let mut on_b = None;
    for i in 0..4 {
        if owned.get(&bundle_of(&c, &a.base, &partition(i)).await) == Some(&b.addr) {
            on_b = Some(i);
        }
    }
    let i = on_b.unwrap_or_else(|| panic!("broker b owns none of the 4 partitions: {owned:?}"));
    (a, b, c, i)
}

async fn metric(c: &reqwest::Client, base: &str, name: &str) -> f64 {
    let text = c.get(format!("{base}/metrics")).send().await.expect("metrics").text().await.expect("text");
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("{name} not exported"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_broker_s_partitions_wait_for_it_and_a_forced_takeover_does_what_it_says() {
    let dir = tempfile::tempdir().unwrap();
    let (a, mut b, c, i) = two_brokers(dir.path(), "").await;
    let bundle = bundle_of(&c, &a.base, &partition(i)).await;
    let first = texts("before-crash", 30);
    produce(&c, &a.base, i, &first).await;

    // kill -9: the bundle stays b's, reported unavailable once its lease has expired.
    b.kill9();
    eventually(15, "the bundle reported unavailable", || async {
        let (_, unavailable) = ownership(&c, &a.base).await;
        unavailable.then_some(())
    })
    .await;
    eventually(5, "the unavailable bundle counted in the metrics", || async {
        (metric(&c, &a.base, "magnetar_tier_unavailable_bundles").await >= 1.0).then_some(())
    })
    .await;
    let url = format!("{}/topics/persistent/acme/app/events/partitions/{i}", a.base);
    let refused = call(&c, Method::POST, &url, Some(json!({"messages": [{"payload": "eA=="}]}))).await;
    assert_eq!(refused.0.as_u16(), 503, "{}", refused.1);
    assert!(refused.1["reason"].as_str().unwrap().contains("unavailable"), "{}", refused.1);

    // b returns on its volume and serves from where it stopped: nothing lost.
    b.restart();
    let second = texts("after-restart", 10);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let messages: Vec<Value> = second.iter().map(|p| json!({"payload": p})).collect();
        let (status, body) = call(&c, Method::POST, &url, Some(json!({"messages": messages}))).await;
        if status.as_u16() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "b's partition not served again within 15 s: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut expected = vec![format!("warm-{i}")];
    expected.extend(first.iter().cloned());
    expected.extend(second.iter().cloned());
    assert_eq!(read_all(&c, &a.base, i, "after-restart").await, expected, "every message, in order");

    // kill -9 again, then a forced takeover: refused without consent, and done as answered.
    let lost = texts("tail", 5);
    produce(&c, &a.base, i, &lost).await;
    b.kill9();
    eventually(15, "the bundle reported unavailable", || async { ownership(&c, &a.base).await.1.then_some(()) }).await;
    let range = bundle.trim_start_matches("acme/app/");
    let takeover = format!("{}/admin/v2/brokers/{}/bundles/acme/app/{range}/takeover", a.base, cluster());
    let refused = call(&c, Method::POST, &takeover, None).await;
    assert_eq!(refused.0.as_u16(), 400, "{}", refused.1);
    assert!(refused.1["reason"].as_str().unwrap().contains("acceptDataLoss=true"), "{}", refused.1);
    let answer =
        expect(call(&c, Method::POST, &format!("{takeover}?acceptDataLoss=true"), None).await, 200, "takeover");
    assert_eq!(answer["previousOwner"], b.addr.as_str(), "{answer}");
    assert_eq!(answer["newOwner"], a.addr.as_str(), "{answer}");
    let listed = answer["partitions"].as_array().expect("partitions");
    let mine = listed.iter().find(|p| p["topic"] == format!("persistent://{}", partition(i))).expect("listed");
    let from = mine["continuesFromOffset"].as_i64().expect("offset");
    let after = texts("after-takeover", 3);
    let ids = produce(&c, &a.base, i, &after).await;
    assert_eq!(offset_of(&ids[0]), from, "the partition continues where the answer said");
    // What is read: the part of the log the object store held (a prefix), then the new ones.
    let read = read_all(&c, &a.base, i, "after-takeover").await;
    let everything: Vec<String> = expected.iter().chain(lost.iter()).cloned().collect();
    let kept = read.len() - after.len();
    assert_eq!(kept as i64, from, "the object store's prefix is read: {read:?}");
    assert_eq!(read[..kept], everything[..kept]);
    assert_eq!(read[kept..], after[..]);

    // b starts again: it drops its stale copy and does not serve the partition it lost.
    b.restart();
    let (owned, unavailable) = ownership(&c, &b.base).await;
    assert_eq!(owned.get(&bundle), Some(&a.addr));
    assert!(!unavailable);
    assert_eq!(read_all(&c, &b.base, i, "through-b").await, read, "the same log through either broker");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_paused_past_its_lease_acknowledges_nothing_and_its_stale_writes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c, i) = two_brokers(dir.path(), "cursor_checkpoint_interval_ms = 200\n").await;
    let bundle = bundle_of(&c, &a.base, &partition(i)).await;
    produce(&c, &a.base, i, &texts("m", 3000)).await;

    // Acknowledgements keep b's cursor dirty up to the pause; then b freezes past its lease.
    let (pull, ack) = (
        format!("{}/topics/persistent/{}/subscriptions/s/pull", b.base, partition(i)),
        format!("{}/topics/persistent/{}/subscriptions/s/ack", b.base, partition(i)),
    );
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let acker = {
        let (c, pull, ack, acked) = (c.clone(), pull.clone(), ack.clone(), acked.clone());
        tokio::spawn(async move {
            loop {
                let body = json!({"maxMessages": 1, "waitMs": 100, "initialPosition": "earliest"});
                let (status, got) = call(&c, Method::POST, &pull, Some(body)).await;
                if status.as_u16() != 200 {
                    return;
                }
                let ids: Vec<Value> = got["messages"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|m| m["messageId"].clone())
                    .collect();
                if ids.is_empty() {
                    continue;
                }
                if call(&c, Method::POST, &ack, Some(json!({"messageIds": ids}))).await.0.as_u16() != 204 {
                    return;
                }
                acked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Still acknowledging right before the pause: b's cursor is dirty when it freezes (its
    // checkpoint runs every 200 ms).
    let before = acked.load(std::sync::atomic::Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(acked.load(std::sync::atomic::Ordering::Relaxed) > before, "the acknowledgements through b stopped");
    b.pause();
    eventually(15, "the bundle reported unavailable", || async { ownership(&c, &a.base).await.1.then_some(()) }).await;
    let range = bundle.trim_start_matches("acme/app/");
    let takeover =
        format!("{}/admin/v2/brokers/{}/bundles/acme/app/{range}/takeover?acceptDataLoss=true", a.base, cluster());
    expect(call(&c, Method::POST, &takeover, None).await, 200, "takeover");
    produce(&c, &a.base, i, &texts("new-owner", 5)).await;

    // A publish sent straight to b while it is frozen is answered after it resumes: refused.
    // Marked as forwarded, b must serve it itself (or refuse) rather than pass it to the owner.
    let url = format!("{}/topics/persistent/acme/app/events/partitions/{i}", b.base);
    let late = {
        let (c, url) = (c.clone(), url.clone());
        tokio::spawn(async move {
            let body = json!({"messages": [{"payload": "late"}]});
            let answer =
                c.post(&url).header("x-magnetar-forwarded-by", "test").json(&body).send().await.expect("publish");
            (answer.status().as_u16(), answer.text().await.unwrap_or_default())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    b.resume();
    let (status, body) = late.await.unwrap();
    assert_eq!(status, 503, "a broker past its lease acknowledged a message: {body}");
    acker.abort();
    let fenced = eventually(10, "b's stale cursor checkpoint refused and counted", || async {
        let n = metric(&c, &b.base, "magnetar_tier_fenced_writes_total").await;
        (n >= 1.0).then_some(n)
    })
    .await;
    assert!(fenced >= 1.0);
    let ready = c.get(format!("{}/readyz", b.base)).send().await.expect("readyz");
    assert_eq!(ready.status().as_u16(), 503, "a fenced broker is not ready");
    // The new owner's log has none of b's late writes.
    let read = read_all(&c, &a.base, i, "audit").await;
    assert!(read.iter().all(|p| p != "late"), "b's late message is not in the log");
    assert!(read.ends_with(&texts("new-owner", 5)), "{read:?}");
}

/// Requests forwarded to an owner that freezes (a stalled VM keeps its connections open) are
/// answered once the owner's lease has expired, with a 503 that says so, instead of waiting for
/// the owner to wake (they were answered only then, for as long as the stall lasted): one naming
/// the partition, and one by the topic's base name that the broker fans out to the partitions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_forwarded_to_an_owner_that_freezes_are_answered_once_its_lease_expires() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c, i) = two_brokers(dir.path(), "").await;
    b.pause();
    let url = format!("{}/topics/persistent/acme/app/events/partitions/{i}", a.base);
    let stats = format!("{}/admin/v2/persistent/acme/app/events/partitioned-stats", a.base);
    let started = Instant::now();
    let timed = |r: reqwest::RequestBuilder| async move {
        let answer = r.timeout(Duration::from_secs(20)).send().await.expect("an answer within 20 s (the lease is 4 s)");
        let status = answer.status().as_u16();
        (status, answer.json::<Value>().await.expect("json"), started.elapsed())
    };
    let (produced, fanned_out) =
        tokio::join!(timed(c.post(&url).json(&json!({"messages": [{"payload": "frozen"}]}))), timed(c.get(&stats)),);
    for (what, (status, body, elapsed)) in [("produce", produced), ("partitioned stats", fanned_out)] {
        assert_eq!(status, 503, "{what}: {body}");
        assert!(body["reason"].as_str().unwrap_or_default().contains("lost its membership lease"), "{what}: {body}");
        eprintln!("{what} through a answered {} ms after the owner froze", elapsed.as_millis());
    }
    // The partition stays its frozen owner's (local durability): unavailable, said at once.
    let (status, body) = call(&c, Method::POST, &url, Some(json!({"messages": [{"payload": "later"}]}))).await;
    assert_eq!(status.as_u16(), 503, "{body}");
    assert!(body["reason"].as_str().unwrap_or_default().contains("not a live member"), "{body}");
    b.resume();
}
