//! Faults of the object-store tier: the S3 server stopped during uploads and restarted, the
//! broker killed with SIGKILL in the middle of an upload, and topic/namespace/tenant deletion
//! removing their objects. Uses the PostgreSQL and SeaweedFS servers `scripts/test.sh` starts,
//! and for the outage test a SeaweedFS of its own (`MAGNETAR_TEST_WEED_BIN`): the shared one is
//! never stopped.

use crate::common;

use common::weed::Weed;
use common::{admin_topic, create_topic, eventually, ok, produce_payloads, pull_n, rest_topic, shared_s3};
use futures::TryStreamExt;
use magnetar_storage::object::{ObjectStoreConfig, build_object_store};
use magnetar_tests::{BrokerProcess, TestApp, call, fresh_postgres_database, test_config};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

const NS: &str = "/admin/v2/namespaces/public/default";

fn unique_cluster(test: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{test}-{}-{nanos}", std::process::id())
}

async fn list_keys(store: &dyn ObjectStore, prefix: &str) -> BTreeMap<String, u64> {
    let p = ObjectPath::from(prefix);
    let listed: Vec<object_store::ObjectMeta> = store.list(Some(&p)).try_collect().await.expect("list objects");
    listed.into_iter().map(|m| (m.location.to_string(), m.size)).collect()
}

fn payload(i: usize, size: usize) -> String {
    format!("{i:08}-{}", "x".repeat(size.saturating_sub(9)))
}

async fn ledgers(app: &TestApp, topic: &str) -> Vec<Value> {
    let s = ok(app.get(&format!("{}/internalStats", admin_topic(topic))).await);
    s["ledgers"].as_array().unwrap().clone()
}

async fn log_id_of(app: &TestApp, topic: &str) -> i64 {
    let name: magnetar_core::TopicName = format!("persistent://public/default/{topic}").parse().unwrap();
    app.broker().testing().log_ids(&name).await.expect("topic loaded")[0]
}

/// Every sealed ledger offloaded and `offloadedStorageSize` equal to their sizes.
async fn wait_offload_caught_up(app: &TestApp, topic: &str, secs: u64) {
    eventually(secs, "offload caught up (offloadedStorageSize covers every sealed segment)", || async {
        let l = ledgers(app, topic).await;
        let sealed = &l[..l.len().saturating_sub(1)];
        let stats = ok(app.get(&format!("{}/stats", admin_topic(topic))).await);
        let offloaded = stats["offloadedStorageSize"].as_u64().unwrap();
        let want: u64 = sealed.iter().map(|x| x["size"].as_u64().unwrap()).sum();
        (!sealed.is_empty() && sealed.iter().all(|x| x["offloaded"] == true) && offloaded == want).then_some(())
    })
    .await;
}

/// Publishes one batch; `Ok(ids)` or `Err((status, reason))`.
async fn try_produce(app: &TestApp, topic: &str, payloads: &[String]) -> Result<Vec<String>, (u16, String)> {
    let msgs: Vec<Value> = payloads.iter().map(|p| json!({ "payload": p })).collect();
    let (s, body) = app.post(&rest_topic(topic), Some(json!({ "messages": msgs }))).await;
    if !s.is_success() {
        return Err((s.as_u16(), body["reason"].as_str().unwrap_or_default().to_string()));
    }
    let results = body["messagePublishResults"].as_array().expect("messagePublishResults");
    results
        .iter()
        .map(|r| match r["errorCode"].as_i64() {
            Some(0) => Ok(r["messageId"].as_str().unwrap().to_string()),
            _ => Err((r["errorCode"].as_i64().unwrap_or(-1) as u16, r["error"].to_string())),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_outage_keeps_acknowledged_messages_and_catches_up() {
    const BUDGET: u64 = 256 << 10;
    let mut weed = Weed::start().await;
    let cluster = unique_cluster("outage");
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    cfg.object_store = weed.store_config();
    cfg.broker.cluster = cluster.clone();
    cfg.broker.offload_threshold_bytes = 0;
    cfg.broker.offload_deletion_lag_ms = 0;
    cfg.broker.offload_check_interval_ms = 100;
    cfg.broker.offload_max_backoff_ms = 500;
    cfg.broker.offload_gc_interval_ms = 200;
    cfg.broker.offload_gc_grace_ms = 0;
    cfg.storage.local_disk_budget_bytes = BUDGET;
    // Reads go to the segments and objects, not to the in-memory tail.
    cfg.storage.read_cache_bytes = 0;
    let app = TestApp::start(dir, cfg).await;
    let topic = "outage";
    let keep = json!({"retentionTimeInMinutes": -1, "retentionSizeInMB": -1});
    assert_eq!(app.post(&format!("{NS}/retention"), Some(keep)).await.0, 204);
    create_topic(&app, topic).await;

    let mut sent: Vec<String> = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    let batch = |from: usize, n: usize| (from..from + n).map(|i| payload(i, 1000)).collect::<Vec<_>>();
    // Before the outage: data flows to the bucket.
    for _ in 0..4 {
        let b = batch(sent.len(), 50);
        ids.extend(produce_payloads(&app, topic, &b).await);
        sent.extend(b);
    }
    wait_offload_caught_up(&app, topic, 30).await;

    // The store goes away while the offloader uploads every segment that seals.
    weed.kill();
    let down_from = sent.len();
    let reason = loop {
        let b = batch(sent.len(), 20);
        match try_produce(&app, topic, &b).await {
            Ok(got) => {
                ids.extend(got);
                sent.extend(b);
            }
            Err((503, reason)) => break reason,
            Err(other) => panic!("publish failed with {other:?} instead of succeeding or 503"),
        }
        assert!(sent.len() - down_from < 10_000, "the local disk budget never applied");
    };
    assert!(reason.contains("budget"), "503 names the budget: {reason}");
    // Rejected only once the budget is exhausted: publishes went on against local disk.
    let pending = app.broker().testing().storage().local_pending_bytes();
    assert!(pending >= BUDGET, "503 with only {pending} of {BUDGET} bytes waiting for upload");
    let accepted_down: u64 = sent[down_from..].iter().map(|p| p.len() as u64).sum();
    assert!(accepted_down >= BUDGET / 2, "only {accepted_down} bytes accepted during the outage");
    // Still refused while the store is down (no silent growth past the budget).
    assert_eq!(try_produce(&app, topic, &batch(sent.len(), 1)).await.unwrap_err().0, 503);

    // The store comes back: offload catches up by itself and publishes work again.
    weed.spawn().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let b = batch(sent.len(), 20);
        match try_produce(&app, topic, &b).await {
            Ok(got) => {
                ids.extend(got);
                sent.extend(b);
                break;
            }
            Err((503, _)) => {}
            Err(other) => panic!("publish failed with {other:?} after the store came back"),
        }
        assert!(Instant::now() < deadline, "publishes still refused 60 s after the store came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_offload_caught_up(&app, topic, 60).await;

    // Every acknowledged message exactly once, in order, with its id.
    let got = pull_n(&app, topic, "reader", sent.len(), 120_000).await;
    let got_ids: Vec<String> = got.iter().map(|m| m["messageId"].as_str().unwrap().to_string()).collect();
    assert_eq!(got_ids.iter().collect::<HashSet<_>>().len(), got_ids.len(), "a message was delivered twice");
    assert_eq!(got_ids, ids, "messages read back differ from the acknowledged ones");
    let got_payloads: Vec<String> = got.iter().map(common::payload_text).collect();
    assert!(got_payloads == sent, "payloads read back differ");
    let more = common::pull(&app, topic, "reader", json!({"maxMessages": 10, "waitMs": 200})).await;
    assert!(more.is_empty(), "unacknowledged messages appeared: {}", more.len());

    // After the orphan collection no object without an index row is left under the topic's
    // prefix (one is planted to see the pass run).
    let store = build_object_store(&weed.store_config()).unwrap();
    let log_id = log_id_of(&app, topic).await;
    let prefix = format!("{cluster}/public/default/{topic}/-1/{log_id}");
    let planted = format!("{prefix}/{:020}-{:020}.seg", 1u64 << 40, (1u64 << 40) + 1);
    store.put(&ObjectPath::from(planted.as_str()), PutPayload::from_static(b"half")).await.unwrap();
    let metadata = Arc::clone(app.broker().testing().metadata());
    eventually(30, "objects under the topic's prefix are exactly the indexed segments", || async {
        let objects = list_keys(store.as_ref(), &prefix).await;
        let rows: BTreeMap<String, u64> = metadata
            .list_segments(log_id)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.object_key, r.size_bytes as u64))
            .collect();
        (objects == rows).then_some(())
    })
    .await;
    app.stop().await;
}

/// Pulls everything from the earliest offset of a child-process broker until a pull comes back
/// empty after at least `min` messages.
async fn pull_all(c: &reqwest::Client, base: &str, topic_path: &str, min: usize) -> Vec<Value> {
    let url = format!("{base}/topics/{topic_path}/subscriptions/check/pull");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut out: Vec<Value> = Vec::new();
    loop {
        let body = json!({"maxMessages": 200, "waitMs": 500, "ackTimeoutMs": 600_000, "initialPosition": "earliest"});
        let (s, resp) = call(c, Method::POST, &url, Some(body)).await;
        assert!(s.is_success(), "pull: {s} {resp}");
        let msgs = resp["messages"].as_array().unwrap().clone();
        if msgs.is_empty() && out.len() >= min {
            return out;
        }
        out.extend(msgs);
        assert!(Instant::now() < deadline, "only {} of at least {min} messages pulled in 120 s", out.len());
    }
}

async fn metric(c: &reqwest::Client, base: &str, name: &str) -> f64 {
    let text = c.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_upload_leaves_consistent_index_and_no_orphans() {
    let cluster = unique_cluster("sigkill");
    let db = fresh_postgres_database().await;
    let ObjectStoreConfig::S3(s3) = shared_s3() else { unreachable!() };
    // ~8 MiB segments go up as multipart uploads of 5 MiB parts.
    let config = format!(
        "[metadata]\nurl = \"{db}\"\n\n[object_store]\nkind = \"s3\"\nendpoint = \"{}\"\nregion = \"{}\"\nbucket = \"{}\"\n\
         access_key_id = \"{}\"\nsecret_access_key = \"{}\"\nallow_http = true\n\n\
         [storage]\nsegment_max_bytes = 8388608\nobject_part_bytes = 5242880\nread_cache_bytes = 0\n\n\
         [broker]\ncluster = \"{cluster}\"\noffload_threshold_bytes = 0\noffload_deletion_lag_ms = 0\n\
         offload_check_interval_ms = 100\noffload_gc_interval_ms = 200\noffload_gc_grace_ms = 1000\n",
        s3.endpoint.as_deref().unwrap(),
        s3.region,
        s3.bucket,
        s3.access_key_id.as_ref().unwrap().expose(),
        s3.secret_access_key.as_ref().unwrap().expose(),
    );
    let dir = tempfile::tempdir().unwrap();
    let data: PathBuf = dir.path().join("data");
    let mut broker = BrokerProcess::start_cluster(&data, &config, &[]);
    let c = reqwest::Client::new();
    let b = broker.base.clone();
    let admin = |path: &str| format!("{b}/admin/v2/{path}");
    let (s, body) = call(&c, Method::PUT, &admin("tenants/acme"), Some(json!({"allowedClusters": [cluster]}))).await;
    assert_eq!(s, 204, "{body}");
    assert_eq!(call(&c, Method::PUT, &admin("namespaces/acme/app"), None).await.0, 204);
    let keep = json!({"retentionTimeInMinutes": -1, "retentionSizeInMB": -1});
    assert_eq!(call(&c, Method::POST, &admin("namespaces/acme/app/retention"), Some(keep)).await.0, 204);
    assert_eq!(call(&c, Method::PUT, &admin("persistent/acme/app/events"), None).await.0, 204);

    // Publish 1 MiB requests (32 KiB messages) until an upload is seen running, then SIGKILL.
    let acked: Arc<std::sync::Mutex<Vec<(String, String)>>> = Arc::default();
    let producer = {
        let (c, url, acked) = (c.clone(), format!("{b}/topics/persistent/acme/app/events"), acked.clone());
        tokio::spawn(async move {
            for n in 0.. {
                let payloads: Vec<String> = (0..32).map(|i| payload(n * 32 + i, 32 << 10)).collect();
                let msgs: Vec<Value> = payloads.iter().map(|p| json!({ "payload": p })).collect();
                let Ok(resp) = c.post(&url).json(&json!({ "messages": msgs })).send().await else { return };
                if !resp.status().is_success() {
                    return;
                }
                let Ok(body) = resp.json::<Value>().await else { return };
                let mut acked = acked.lock().unwrap();
                for (r, p) in body["messagePublishResults"].as_array().unwrap().iter().zip(payloads) {
                    if r["errorCode"] == 0 {
                        acked.push((r["messageId"].as_str().unwrap().to_string(), p));
                    }
                }
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if metric(&c, &b, "magnetar_offload_uploads_in_progress").await >= 1.0 {
            break;
        }
        assert!(!producer.is_finished(), "the producer stopped before any upload started");
        assert!(Instant::now() < deadline, "no upload observed running within 120 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    broker.kill9();
    producer.await.unwrap();
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(acked.len() >= 7 * 32, "at least one segment's worth acknowledged: {}", acked.len());

    // While the broker is down, plant what a crash between upload and commit leaves behind: a
    // complete object without an index row.
    let metadata = magnetar_metadata::connect(&db).await.unwrap();
    let name: magnetar_core::TopicName = "persistent://acme/app/events".parse().unwrap();
    let log_id = metadata.get_topic(&name).await.unwrap().unwrap().partition_records[0].log_id;
    let store = build_object_store(&shared_s3()).unwrap();
    let prefix = format!("{cluster}/acme/app/events/-1/{log_id}");
    let planted = format!("{prefix}/{:020}-{:020}.seg", 1u64 << 40, (1u64 << 40) + 1);
    store.put(&ObjectPath::from(planted.as_str()), PutPayload::from(vec![7u8; 1 << 20])).await.unwrap();

    broker.restart();
    let b = broker.base.clone();
    // Every acknowledged message readable, in order, none twice (messages written but not
    // acknowledged before the kill may be there too).
    let got = pull_all(&c, &b, "persistent/acme/app/events", acked.len()).await;
    let got_ids: Vec<String> = got.iter().map(|m| m["messageId"].as_str().unwrap().to_string()).collect();
    assert_eq!(got_ids.iter().collect::<HashSet<_>>().len(), got_ids.len(), "a message was delivered twice");
    let by_id: BTreeMap<&str, String> =
        got_ids.iter().map(String::as_str).zip(got.iter().map(common::payload_text)).collect();
    let mut last = None;
    for (id, p) in &acked {
        let at = got_ids.iter().position(|g| g == id).unwrap_or_else(|| panic!("acknowledged {id} lost"));
        assert!(by_id[id.as_str()] == *p, "payload of {id} differs");
        assert!(last.is_none_or(|l| at > l), "{id} out of order");
        last = Some(at);
    }

    // Offload catches up; every index row points at a complete object; the planted orphan goes.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let rows = metadata.list_segments(log_id).await.unwrap();
        let objects = list_keys(store.as_ref(), &prefix).await;
        for r in &rows {
            assert_eq!(
                objects.get(&r.object_key),
                Some(&(r.size_bytes as u64)),
                "row {} has no complete object",
                r.object_key
            );
        }
        let row_keys: HashSet<&String> = rows.iter().map(|r| &r.object_key).collect();
        let (s, stats) =
            call(&c, Method::GET, &format!("{b}/admin/v2/persistent/acme/app/events/internalStats"), None).await;
        assert!(s.is_success(), "{stats}");
        let ledgers = stats["ledgers"].as_array().unwrap();
        let sealed_all_offloaded = ledgers[..ledgers.len() - 1].iter().all(|l| l["offloaded"] == true);
        if sealed_all_offloaded && objects.keys().all(|k| row_keys.contains(k)) && !rows.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "index and bucket not consistent within 120 s: {} rows, objects {:?}",
            rows.len(),
            objects.keys().collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    broker.terminate();
}

/// Deleting a topic, a namespace or a tenant deletes their objects, not only their index rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_topic_namespace_and_tenant_removes_their_objects() {
    let cluster = unique_cluster("delete-objects");
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    cfg.object_store = shared_s3();
    cfg.broker.cluster = cluster.clone();
    cfg.broker.offload_threshold_bytes = 0;
    cfg.broker.offload_deletion_lag_ms = 0;
    cfg.broker.offload_check_interval_ms = 100;
    // Long enough that only the deletions themselves remove objects.
    cfg.broker.offload_gc_interval_ms = 3_600_000;
    let app = TestApp::start(dir, cfg).await;
    let store = build_object_store(&shared_s3()).unwrap();
    ok(app.put("/admin/v2/tenants/acme", Some(json!({"allowedClusters": [cluster]}))).await);
    for ns in ["a", "b"] {
        ok(app.put(&format!("/admin/v2/namespaces/acme/{ns}"), None).await);
        let keep = json!({"retentionTimeInMinutes": -1, "retentionSizeInMB": -1});
        ok(app.post(&format!("/admin/v2/namespaces/acme/{ns}/retention"), Some(keep)).await);
    }
    let topics = ["acme/a/one", "acme/a/two", "acme/b/three"];
    for t in topics {
        ok(app.put(&format!("/admin/v2/persistent/{t}"), None).await);
        // A request's records share a segment: several requests make several segments.
        for r in 0..4 {
            let payloads: Vec<Value> = (0..50).map(|i| json!({"payload": payload(r * 50 + i, 1000)})).collect();
            ok(app.post(&format!("/topics/persistent/{t}"), Some(json!({"messages": payloads}))).await);
        }
    }
    // Each topic has offloaded objects.
    for t in topics {
        eventually(30, &format!("{t} offloaded"), || async {
            (!list_keys(store.as_ref(), &format!("{cluster}/{t}")).await.is_empty()).then_some(())
        })
        .await;
    }
    let count = |prefix: String| {
        let store = store.clone();
        async move { list_keys(store.as_ref(), &prefix).await.len() }
    };
    // A topic: its objects go, its siblings' stay.
    assert_eq!(app.delete("/admin/v2/persistent/acme/a/one?force=true").await.0, 204);
    assert_eq!(count(format!("{cluster}/acme/a/one")).await, 0);
    assert!(count(format!("{cluster}/acme/a/two")).await > 0);
    // A namespace (force: with its topics).
    assert_eq!(app.delete("/admin/v2/namespaces/acme/a?force=true").await.0, 204);
    assert_eq!(count(format!("{cluster}/acme/a")).await, 0);
    assert!(count(format!("{cluster}/acme/b")).await > 0);
    // A tenant.
    assert_eq!(app.delete("/admin/v2/tenants/acme?force=true").await.0, 204);
    assert_eq!(count(cluster.clone()).await, 0);
    app.stop().await;
}

/// Objects of a partition deleted while the store could not delete them (here: planted after
/// the deletion, as an upload finishing late would leave them) are found by the sweep of the
/// cluster's keys, which asks the metadata store whether their `log_id` still exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_deletes_objects_of_partitions_that_no_longer_exist() {
    let cluster = unique_cluster("sweep");
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    cfg.object_store = shared_s3();
    cfg.broker.cluster = cluster.clone();
    cfg.broker.offload_threshold_bytes = 0;
    cfg.broker.offload_check_interval_ms = 100;
    cfg.broker.offload_gc_interval_ms = 200;
    cfg.broker.offload_gc_grace_ms = 0;
    let app = TestApp::start(dir, cfg).await;
    let store = build_object_store(&shared_s3()).unwrap();
    let keep = json!({"retentionTimeInMinutes": -1, "retentionSizeInMB": -1});
    assert_eq!(app.post(&format!("{NS}/retention"), Some(keep)).await.0, 204);
    create_topic(&app, "kept").await;
    create_topic(&app, "gone").await;
    for r in 0..4 {
        let payloads: Vec<String> = (0..50).map(|i| payload(r * 50 + i, 1000)).collect();
        produce_payloads(&app, "kept", &payloads).await;
    }
    let gone_id = log_id_of(&app, "gone").await;
    assert_eq!(app.delete(&format!("{}?force=true", admin_topic("gone"))).await.0, 204);
    let kept = format!("{cluster}/public/default/kept");
    eventually(30, "kept offloaded", || async { (!list_keys(store.as_ref(), &kept).await.is_empty()).then_some(()) })
        .await;
    let stale = format!("{cluster}/public/default/gone/-1/{gone_id}/{:020}-{:020}.seg", 0, 10);
    let foreign = format!("{cluster}/public/default/gone/notes.txt");
    for k in [&stale, &foreign] {
        store.put(&ObjectPath::from(k.as_str()), PutPayload::from_static(b"late")).await.unwrap();
    }
    eventually(30, "stale object of a deleted partition swept", || async {
        let left = list_keys(store.as_ref(), &format!("{cluster}/public/default/gone")).await;
        (!left.contains_key(&stale)).then_some(left)
    })
    .await;
    // Only keys of the documented layout are touched; the live topic keeps its objects.
    assert!(store.head(&ObjectPath::from(foreign.as_str())).await.is_ok(), "a foreign key was deleted");
    assert!(!list_keys(store.as_ref(), &kept).await.is_empty());
    store.delete(&ObjectPath::from(foreign.as_str())).await.unwrap();
    app.stop().await;
}
