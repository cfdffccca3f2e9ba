//! The object-store conformance suite against every backend Magnetar supports: the local
//! filesystem (standalone) and a real S3-compatible server (cluster). `scripts/test.sh` starts
//! the S3 server and exports `MAGNETAR_TEST_S3_*`; without them the S3 tests fail rather than
//! skip, so a green run always means S3 was exercised.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use magnetar_storage::object::conformance::{self, CreateSupport};
use magnetar_storage::object::{LocalConfig, ObjectStoreConfig, build_object_store};
use object_store::ObjectStore;
use object_store::path::Path;

/// A key prefix no other test or earlier run uses: test name + process id + clock, so tests
/// running in parallel and reruns against the same bucket never see each other's objects.
fn unique_prefix(test: &str) -> Path {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    Path::from(format!("conformance/{test}-{}-{nanos}", std::process::id()))
}

fn s3_store() -> Arc<dyn ObjectStore> {
    build_object_store(&magnetar_storage::object::conformance::s3_config_from_env()).expect("build s3 object store")
}

/// The S3 store with paced uploads (`upload_bytes_per_second`): every request goes through
/// Magnetar's own HTTP service instead of object_store's.
fn s3_paced_store(bytes_per_second: u64) -> Arc<dyn ObjectStore> {
    let ObjectStoreConfig::S3(mut cfg) = magnetar_storage::object::conformance::s3_config_from_env() else {
        unreachable!("s3 config")
    };
    cfg.upload_bytes_per_second = magnetar_storage::object::UploadPacing::Fixed(bytes_per_second);
    build_object_store(&ObjectStoreConfig::S3(cfg)).expect("build paced s3 object store")
}

/// The temp dir lives as long as the store it backs.
fn local_store() -> (tempfile::TempDir, Arc<dyn ObjectStore>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = ObjectStoreConfig::Local(LocalConfig { root: dir.path().join("objects") });
    let store = build_object_store(&cfg).expect("build local object store");
    (dir, store)
}

/// One test per (backend, check), so a failure names both.
macro_rules! conformance_tests {
    ($($check:ident),* $(,)?) => {
        mod local {
            use super::*;
            $(
                #[tokio::test]
                async fn $check() {
                    let (_dir, store) = local_store();
                    let prefix = unique_prefix(concat!("local-", stringify!($check)));
                    conformance::$check(store.as_ref(), &prefix).await;
                }
            )*
        }
        mod s3 {
            use super::*;
            $(
                #[tokio::test]
                async fn $check() {
                    let store = s3_store();
                    let prefix = unique_prefix(concat!("s3-", stringify!($check)));
                    conformance::$check(store.as_ref(), &prefix).await;
                }
            )*
        }
        mod s3_paced {
            use super::*;
            $(
                #[tokio::test]
                async fn $check() {
                    let store = s3_paced_store(256 << 20);
                    let prefix = unique_prefix(concat!("s3-paced-", stringify!($check)));
                    conformance::$check(store.as_ref(), &prefix).await;
                }
            )*
        }
    };
}

conformance_tests!(
    put_get_round_trip,
    get_range_returns_exact_bytes,
    head_reports_size,
    list_with_prefix_is_exact,
    delete_removes_object,
    get_missing_is_not_found,
    multipart_upload_round_trip,
);

#[tokio::test]
async fn local_put_create_refuses_overwrite() {
    let (_dir, store) = local_store();
    let prefix = unique_prefix("local-put-create");
    let support = conformance::put_create_refuses_overwrite(store.as_ref(), &prefix).await;
    assert_eq!(support, CreateSupport::Enforced);
}

/// SeaweedFS honours `If-None-Match: *` (which object_store sends for `PutMode::Create`), so
/// segment commits may rely on create-only puts against it as well.
#[tokio::test]
async fn s3_put_create_refuses_overwrite() {
    let store = s3_store();
    let prefix = unique_prefix("s3-put-create");
    let support = conformance::put_create_refuses_overwrite(store.as_ref(), &prefix).await;
    assert_eq!(support, CreateSupport::Enforced);
}

/// A paced upload never goes faster than its rate (and arrives whole).
#[tokio::test]
async fn s3_paced_upload_keeps_to_its_byte_rate() {
    use object_store::{ObjectStoreExt, PutPayload};
    let store = s3_paced_store(16 << 20);
    let key = unique_prefix("s3-paced-rate").join("object");
    let body: Vec<u8> = (0..4u32 << 20).map(|i| (i % 251) as u8).collect();
    let started = std::time::Instant::now();
    store.put(&key, PutPayload::from(body.clone())).await.expect("paced put");
    let took = started.elapsed();
    // 4 MiB at 16 MiB/s: the last 64 KiB piece may leave at 4 MiB - 64 KiB, i.e. after ~246 ms.
    assert!(took >= std::time::Duration::from_millis(240), "4 MiB at 16 MiB/s took only {took:?}");
    let got = store.get(&key).await.expect("get").bytes().await.expect("bytes");
    assert!(got[..] == body[..], "paced upload arrived different");
    store.delete(&key).await.expect("delete");
}

/// Automatic pacing: a change of rate applies to an upload already under way (the local disk
/// budget filling up lifts the pacing so a backlog drains at full speed).
#[tokio::test]
async fn s3_a_pace_change_applies_to_an_upload_under_way() {
    use magnetar_storage::object::{AUTO_FLOOR, UploadPacing, build_object_store_paced};
    use object_store::{ObjectStoreExt, PutPayload};
    let ObjectStoreConfig::S3(mut cfg) = conformance::s3_config_from_env() else { unreachable!("s3 config") };
    cfg.upload_bytes_per_second = UploadPacing::Auto;
    let built = build_object_store_paced(&ObjectStoreConfig::S3(cfg)).expect("build paced s3 store");
    let (store, pace) = (built.store, built.pace);
    assert_eq!(pace.bytes_per_second(), AUTO_FLOOR);
    let key = unique_prefix("s3-pace-change").join("object");
    // 96 MiB: six seconds at the floor; unpaced, SeaweedFS on a slow test disk takes ~3.
    let body: Vec<u8> = (0..96u32 << 20).map(|i| (i % 251) as u8).collect();
    let started = std::time::Instant::now();
    let upload = {
        let (store, key, body) = (Arc::clone(&store), key.clone(), body.clone());
        tokio::spawn(async move { store.put(&key, PutPayload::from(body)).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let now = std::time::Instant::now();
    pace.observe(now, 0, 0, 1 << 30);
    // More than half of a 1 GiB budget waiting for upload: unpaced.
    assert_eq!(pace.observe(now + std::time::Duration::from_secs(1), 0, 600 << 20, 1 << 30), 0);
    upload.await.expect("upload task").expect("put");
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_millis(4500), "the unpaced rest of the upload took until {took:?}");
    let got = store.get(&key).await.expect("get").bytes().await.expect("bytes");
    assert!(got[..] == body[..], "upload arrived different");
    store.delete(&key).await.expect("delete");
}

/// A log object of object-store durability (an acknowledgement waits on it) goes through the
/// tier's unpaced client, however slowly segment uploads are paced; a segment-sized write through
/// the tier's ordinary path is paced.
#[tokio::test]
async fn s3_writes_acknowledgements_wait_on_are_never_paced() {
    use magnetar_storage::object::{UploadPacing, build_object_store_paced};
    use magnetar_storage::{ObjectTier, StorageMetrics, TierConfig};
    let ObjectStoreConfig::S3(mut cfg) = conformance::s3_config_from_env() else { unreachable!("s3 config") };
    // 2 MiB at 256 KiB/s: 8 s paced; unpaced on loopback, well under a second.
    cfg.upload_bytes_per_second = UploadPacing::Fixed(256 << 10);
    let built = build_object_store_paced(&ObjectStoreConfig::S3(cfg)).expect("build paced s3 store");
    let tier = ObjectTier::with_unpaced(built.store, built.unpaced, TierConfig::default(), StorageMetrics::new())
        .expect("tier");
    let body = conformance::pattern(2 << 20, 7);
    let urgent = unique_prefix("s3-urgent").join("object").to_string();
    let started = std::time::Instant::now();
    tier.put_urgent_object(&urgent, body.clone()).await.expect("urgent put");
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(4), "the urgent 2 MiB write took {took:?}: it was paced");
    let got = tier.get_object(&urgent).await.expect("get");
    assert!(got[..] == body[..], "the urgent write arrived different");

    // The ordinary path of the same tier is paced: the first second carries at most ~256 KiB.
    let paced = unique_prefix("s3-paced").join("object").to_string();
    let write = {
        let (tier, paced, body) = (Arc::clone(&tier), paced.clone(), body.clone());
        tokio::spawn(async move { tier.put_object(&paced, body).await })
    };
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert!(!write.is_finished(), "a 2 MiB write at 256 KiB/s finished within 2 s: it was not paced");
    write.abort();
    tier.delete_objects(&[urgent]).await.expect("delete");
}
