//! Retention deletes whole segments once every subscription has consumed them and the
//! namespace's retention allows it, and the disk is really freed.

use magnetar_tests::{TestApp, test_config};
use serde_json::json;

fn dir_size(path: &std::path::Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(path) {
        for e in entries.flatten() {
            let m = e.metadata().unwrap();
            total += if m.is_dir() { dir_size(&e.path()) } else { m.len() };
        }
    }
    total
}

async fn produce(app: &TestApp, topic: &str, n: usize, size: usize) {
    for chunk in 0..n / 100 {
        let msgs: Vec<_> = (0..100).map(|i| json!({"payload": format!("{:0>size$}", chunk * 100 + i)})).collect();
        let (s, body) =
            app.post(&format!("/topics/persistent/public/default/{topic}"), Some(json!({"messages": msgs}))).await;
        assert_eq!(s, 200, "{body}");
    }
}

async fn consume_all(app: &TestApp, topic: &str, sub: &str) -> usize {
    let mut total = 0;
    loop {
        let (s, body) = app
            .post(
                &format!("/topics/persistent/public/default/{topic}/subscriptions/{sub}/pull"),
                Some(json!({"maxMessages": 1000, "waitMs": 200})),
            )
            .await;
        assert_eq!(s, 200, "{body}");
        let ids: Vec<_> = body["messages"].as_array().unwrap().iter().map(|m| m["messageId"].clone()).collect();
        if ids.is_empty() {
            return total;
        }
        total += ids.len();
        let (s, _) = app
            .post(
                &format!("/topics/persistent/public/default/{topic}/subscriptions/{sub}/ack"),
                Some(json!({ "messageIds": ids })),
            )
            .await;
        assert_eq!(s, 204);
    }
}

async fn storage_size(app: &TestApp, topic: &str) -> u64 {
    let (_, stats) = app.get(&format!("/admin/v2/persistent/public/default/{topic}/stats")).await;
    stats["storageSize"].as_u64().unwrap()
}

#[tokio::test]
async fn consumed_segments_are_deleted_and_disk_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    cfg.storage.segment_max_bytes = 16 * 1024;
    let app = TestApp::start(dir, cfg).await;
    app.put("/admin/v2/persistent/public/default/r", None).await;
    let (s, _) = app
        .put("/admin/v2/persistent/public/default/r/subscription/s", Some(json!({"ledgerId": -1, "entryId": -1})))
        .await;
    assert_eq!(s, 204);
    let (s, _) = app
        .post(
            "/admin/v2/namespaces/public/default/retention",
            Some(json!({"retentionTimeInMinutes": 0, "retentionSizeInMB": 0})),
        )
        .await;
    assert_eq!(s, 204);
    produce(&app, "r", 2000, 500).await;
    let logs = app.dir.path().join("log").join("logs");
    let before_disk = dir_size(&logs);
    let before = storage_size(&app, "r").await;
    assert!(before > 500_000, "stored {before}");

    // Unconsumed data is backlog: retention must not touch it.
    app.broker().testing().run_retention().await;
    // (A segment sealed meanwhile on the sealer thread may have grown by its index and footer.)
    let kept = storage_size(&app, "r").await;
    assert!(kept >= before, "backlog deleted by retention: {kept} of {before} bytes left");

    assert_eq!(consume_all(&app, "r", "s").await, 2000);
    // The consumer's acknowledgements reach the retention pass through the cursor.
    app.broker().testing().run_retention().await;
    let now = storage_size(&app, "r").await;
    assert!(now < before / 10, "retention did not delete consumed segments: {now} of {before} bytes left");
    let after_disk = dir_size(&logs);
    assert!(after_disk < before_disk / 5, "disk not freed: {after_disk} of {before_disk} bytes left");
    // The earliest position moved: a new subscription at earliest sees only what is retained.
    let (_, internal) = app.get("/admin/v2/persistent/public/default/r/internalStats").await;
    assert!(internal["numberOfEntries"].as_u64().unwrap() < 2000);
}

#[tokio::test]
async fn infinite_retention_keeps_consumed_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    cfg.storage.segment_max_bytes = 16 * 1024;
    let app = TestApp::start(dir, cfg).await;
    app.put("/admin/v2/persistent/public/default/keep", None).await;
    app.put("/admin/v2/persistent/public/default/keep/subscription/s", Some(json!({"ledgerId": -1, "entryId": -1})))
        .await;
    let (s, _) = app
        .post(
            "/admin/v2/namespaces/public/default/retention",
            Some(json!({"retentionTimeInMinutes": -1, "retentionSizeInMB": -1})),
        )
        .await;
    assert_eq!(s, 204);
    produce(&app, "keep", 1000, 500).await;
    assert_eq!(consume_all(&app, "keep", "s").await, 1000);
    let before = storage_size(&app, "keep").await;
    app.broker().testing().run_retention().await;
    assert_eq!(storage_size(&app, "keep").await, before);
    // Everything is still readable from the start.
    let (s, body) = app
        .post(
            "/topics/persistent/public/default/keep/subscriptions/again/pull",
            Some(json!({"maxMessages": 2000, "initialPosition": "earliest", "waitMs": 500})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(body["messages"].as_array().unwrap().len(), 1000);
}
