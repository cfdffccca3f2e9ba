//! The object-store tier through the running broker: offload policies over the admin API,
//! sealed segments uploaded and indexed, local copies dropped, every message read back from the
//! earliest offset with the same ids; retention emptying the bucket. Against the local
//! filesystem store (standalone) and the SeaweedFS S3 server `scripts/test.sh` starts.

use crate::common;

use common::{admin_topic, create_topic, eventually, ok, produce_payloads, pull_n, shared_s3};
use magnetar_storage::object::{ObjectStoreConfig, build_object_store};
use magnetar_tests::{TestApp, test_config};
use object_store::path::Path as ObjectPath;
use serde_json::{Value, json};
use std::sync::Arc;

const NS: &str = "/admin/v2/namespaces/public/default";

fn unique_cluster(test: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{test}-{}-{nanos}", std::process::id())
}

/// A broker whose objects go to `store`, offloading checked often, under a unique cluster name
/// (the first component of every key, so tests sharing a bucket never meet).
async fn start(store: Option<ObjectStoreConfig>, cluster: &str) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    if let Some(s) = store {
        cfg.object_store = s;
    }
    cfg.broker.cluster = cluster.to_string();
    cfg.broker.offload_check_interval_ms = 100;
    cfg.broker.offload_gc_interval_ms = 200;
    cfg.broker.offload_gc_grace_ms = 0;
    // The in-memory tail would serve these reads without touching any segment.
    cfg.storage.read_cache_bytes = 0;
    TestApp::start(dir, cfg).await
}

fn payloads(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{i:06}-{}", "m".repeat(1000))).collect()
}

async fn internal_ledgers(app: &TestApp, topic: &str) -> Vec<Value> {
    let s = ok(app.get(&format!("{}/internalStats", admin_topic(topic))).await);
    s["ledgers"].as_array().unwrap().clone()
}

/// Offload as soon as sealed, drop local copies at once, then read everything back.
async fn offload_and_read_back(app: &TestApp, topic: &str) -> Vec<String> {
    // Keep everything until the test says otherwise (no subscription exists before the read).
    let keep = json!({"retentionTimeInMinutes": -1, "retentionSizeInMB": -1});
    assert_eq!(app.post(&format!("{NS}/retention"), Some(keep)).await.0, 204);
    assert_eq!(ok(app.get(&format!("{NS}/offloadThreshold")).await), json!(-1));
    assert_eq!(app.put(&format!("{NS}/offloadThreshold"), Some(json!(0))).await.0, 204);
    assert_eq!(app.put(&format!("{NS}/offloadDeletionLagMs"), Some(json!(0))).await.0, 204);
    assert_eq!(ok(app.get(&format!("{NS}/offloadThreshold")).await), json!(0));
    assert_eq!(ok(app.get(&format!("{NS}/offloadDeletionLagMs")).await), json!(0));
    create_topic(app, topic).await;
    let sent = payloads(600);
    let mut ids = Vec::new();
    for chunk in sent.chunks(100) {
        ids.extend(produce_payloads(app, topic, chunk).await);
    }
    // Every sealed ledger offloaded and its local copy gone; only the active one is local.
    let ledgers = eventually(30, "every sealed segment offloaded", || async {
        let l = internal_ledgers(app, topic).await;
        (l.len() > 3 && l[..l.len() - 1].iter().all(|x| x["offloaded"] == true)).then_some(l)
    })
    .await;
    let stats = ok(app.get(&format!("{}/stats", admin_topic(topic))).await);
    let offloaded: u64 = ledgers[..ledgers.len() - 1].iter().map(|l| l["size"].as_u64().unwrap()).sum();
    assert_eq!(stats["offloadedStorageSize"].as_u64().unwrap(), offloaded, "{stats}");
    assert!(stats["storageSize"].as_u64().unwrap() > offloaded);
    eventually(30, "local copies of offloaded segments deleted", || async {
        (local_segment_files(app) == 1).then_some(())
    })
    .await;
    // Read everything from the earliest offset: same payloads, same ids, same order.
    let got = pull_n(app, topic, "reader", sent.len(), 60_000).await;
    let got_payloads: Vec<String> = got.iter().map(common::payload_text).collect();
    assert!(got_payloads == sent, "payloads read back differ");
    let got_ids: Vec<String> = got.iter().map(|m| m["messageId"].as_str().unwrap().to_string()).collect();
    assert_eq!(got_ids, ids, "message ids changed by the offload");
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("pulsar_storage_offloaded_size"), "metric missing");
    assert!(metrics.contains("magnetar_offload_segments_total"), "metric missing");
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offloaded_topic_reads_back_from_earliest_on_the_local_store() {
    let app = start(None, "standalone").await;
    offload_and_read_back(&app, "off-local").await;
    // The manual trigger answers with Pulsar's status shape.
    let status = ok(app.get(&format!("{}/offload", admin_topic("off-local"))).await);
    assert_eq!(status["status"], "NOT_RUN", "{status}");
    let (s, _) = app
        .put(&format!("{}/offload", admin_topic("off-local")), Some(json!({"ledgerId": i64::MAX, "entryId": 0})))
        .await;
    assert_eq!(s, 204);
    eventually(30, "manual offload finished", || async {
        let st = ok(app.get(&format!("{}/offload", admin_topic("off-local"))).await);
        (st["status"] == "SUCCESS").then_some(())
    })
    .await;
    // Policies endpoints round-trip.
    let pol = json!({"managedLedgerOffloadThresholdInBytes": 1024, "managedLedgerOffloadDriver": "aws-s3"});
    assert_eq!(app.post(&format!("{NS}/offloadPolicies"), Some(pol.clone())).await.0, 204);
    assert_eq!(ok(app.get(&format!("{NS}/offloadPolicies")).await), pol);
    assert_eq!(ok(app.get(&format!("{NS}/offloadThreshold")).await), json!(1024));
    assert_eq!(app.delete(&format!("{NS}/removeOffloadPolicies")).await.0, 204);
    assert_eq!(app.get(&format!("{NS}/offloadPolicies")).await.0, 204);
    assert_eq!(app.put(&format!("{NS}/offloadThreshold"), Some(json!(-2))).await.0, 412);
    app.stop().await;
}

fn local_segment_files(app: &TestApp) -> usize {
    let log_dir = app.dir.path().join("log/logs");
    std::fs::read_dir(&log_dir).unwrap().flatten().map(|d| std::fs::read_dir(d.path()).unwrap().count()).sum()
}

/// A pass drops each local copy as soon as its deletion lag allows, not when the pass ends (a
/// pass draining a backlog can take minutes): once a manual offload of every sealed segment
/// reports success, only the active segment is on disk, with no automatic pass in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offload_pass_drops_local_copies_as_it_goes() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    cfg.broker.offload_check_interval_ms = 3_600_000;
    cfg.storage.read_cache_bytes = 0;
    let app = TestApp::start(dir, cfg).await;
    let keep = json!({"retentionTimeInMinutes": -1, "retentionSizeInMB": -1});
    assert_eq!(app.post(&format!("{NS}/retention"), Some(keep)).await.0, 204);
    assert_eq!(app.put(&format!("{NS}/offloadDeletionLagMs"), Some(json!(0))).await.0, 204);
    create_topic(&app, "off-drop").await;
    let sent = payloads(600);
    for chunk in sent.chunks(100) {
        produce_payloads(&app, "off-drop", chunk).await;
    }
    let before = local_segment_files(&app);
    assert!(before > 3, "expected several sealed segments, found {before} files");
    let (s, _) = app
        .put(&format!("{}/offload", admin_topic("off-drop")), Some(json!({"ledgerId": i64::MAX, "entryId": 0})))
        .await;
    assert_eq!(s, 204);
    eventually(30, "manual offload finished", || async {
        let st = ok(app.get(&format!("{}/offload", admin_topic("off-drop"))).await);
        (st["status"] == "SUCCESS").then_some(())
    })
    .await;
    assert_eq!(local_segment_files(&app), 1, "local copies left behind by the pass");
    let got = pull_n(&app, "off-drop", "reader", sent.len(), 60_000).await;
    let got_payloads: Vec<String> = got.iter().map(common::payload_text).collect();
    assert!(got_payloads == sent, "payloads read back differ");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offloaded_topic_reads_back_from_s3_and_retention_empties_the_bucket() {
    let cluster = unique_cluster("offload-s3");
    let store: Arc<dyn object_store::ObjectStore> = build_object_store(&shared_s3()).unwrap();
    let app = start(Some(shared_s3()), &cluster).await;
    let ids = offload_and_read_back(&app, "off-s3").await;
    let prefix = ObjectPath::from(cluster.as_str());
    let listed = || async {
        use futures::TryStreamExt;
        let v: Vec<object_store::ObjectMeta> = store.list(Some(&prefix)).try_collect().await.unwrap();
        v
    };
    let objects = listed().await;
    assert!(objects.len() > 3, "objects in the bucket: {}", objects.len());
    let stats = ok(app.get(&format!("{}/stats", admin_topic("off-s3"))).await);
    let in_bucket: u64 = objects.iter().map(|o| o.size).sum();
    assert_eq!(stats["offloadedStorageSize"].as_u64().unwrap(), in_bucket, "stats match the bucket");
    // Acknowledge everything; with no retention the consumed segments go from every tier.
    let (s, body) = common::ack(&app, "off-s3", "reader", &ids).await;
    assert!(s.is_success(), "{body}");
    assert_eq!(
        app.post(&format!("{NS}/retention"), Some(json!({"retentionTimeInMinutes": 0, "retentionSizeInMB": 0})))
            .await
            .0,
        204
    );
    eventually(30, "retention removed the offloaded objects", || async {
        let left = listed().await;
        left.is_empty().then_some(())
    })
    .await;
    let stats = ok(app.get(&format!("{}/stats", admin_topic("off-s3"))).await);
    assert_eq!(stats["offloadedStorageSize"], 0, "{stats}");
    app.stop().await;
}
