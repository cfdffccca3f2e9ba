//! Object-store boundary: configuration and construction of the `object_store` backend
//! (local filesystem for standalone, S3-compatible for cluster mode). Owned by the object tier.
//!
//! Everything above this module talks to `Arc<dyn ObjectStore>` only. What Magnetar relies on
//! from a backend is spelled out, and checked against every backend, in [`conformance`].

use std::path::PathBuf;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use serde::Deserialize;

use crate::StorageError;
pub use crate::paced::{AUTO_FLOOR, UploadPace, UploadPacing};

/// Where sealed segments are offloaded to.
///
/// In TOML: `kind = "local"` with `root`, or `kind = "s3"` with the [`S3Config`] keys.
/// Unknown keys are rejected so a typo fails at start instead of silently using a default.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ObjectStoreConfig {
    /// A directory on the local filesystem (standalone mode); created if missing.
    Local(LocalConfig),
    /// An S3-compatible bucket (cluster mode).
    S3(S3Config),
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct LocalConfig {
    pub root: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// Custom endpoint (MinIO, SeaweedFS, ...); `None` means AWS itself.
    #[serde(default)]
    pub endpoint: Option<String>,
    pub region: String,
    pub bucket: String,
    /// Both keys or neither. Neither means the default AWS credential chain (web identity,
    /// container or instance metadata), which is what a broker running on AWS wants.
    #[serde(default)]
    pub access_key_id: Option<Secret>,
    #[serde(default)]
    pub secret_access_key: Option<Secret>,
    /// `https://endpoint/bucket/key` rather than `https://bucket.endpoint/key`. Defaults to true
    /// because self-hosted S3 servers rarely have wildcard DNS for bucket sub-domains.
    #[serde(default = "default_true")]
    pub path_style: bool,
    /// Permit a plain `http://` endpoint; off by default so credentials are not sent in clear
    /// by accident.
    #[serde(default)]
    pub allow_http: bool,
    /// Segment uploads stream at this pace: `"auto"` (default: twice the broker's ingest, at
    /// least 16 MiB/s, unpaced while half the local disk budget waits), `0` (as fast as the
    /// network goes) or a fixed number of bytes per second. Spreading an upload keeps its burst of
    /// network work from delaying acknowledgements on the broker's cores (see `paced`).
    #[serde(default)]
    pub upload_bytes_per_second: UploadPacing,
}

fn default_true() -> bool {
    true
}

/// Credentials (access keys) never print: `Debug` and `Display` show `***`.
pub use magnetar_core::Secret;

/// Builds the backend described by `cfg`. Does no network I/O: a wrong endpoint or credential
/// shows up on the first request. Creates the local root directory, so call it at start-up
/// (or from `spawn_blocking`), not on a hot path.
///
/// Invalid configuration is reported as [`StorageError::InvalidConfig`] naming the offending key.
pub fn build_object_store(cfg: &ObjectStoreConfig) -> Result<Arc<dyn ObjectStore>, StorageError> {
    build_object_store_paced(cfg).map(|built| built.store)
}

/// What [`build_object_store_paced`] builds.
pub struct PacedObjectStore {
    /// Paced uploads (segments, compaction output), unpaced reads.
    pub store: Arc<dyn ObjectStore>,
    /// The same bucket through a client that never paces: for writes an acknowledgement waits
    /// on (the log objects of object-store durability). Pacing spreads a large body over time,
    /// which is right for a segment upload and wrong for a producer waiting on it.
    pub unpaced: Arc<dyn ObjectStore>,
    /// The pace: the broker feeds it the ingest (`Storage::attach_upload_pace`).
    pub pace: Arc<UploadPace>,
}

/// [`build_object_store`], with the handle on its upload pace and an unpaced client for urgent
/// writes (see [`PacedObjectStore`]). A local store is never paced.
pub fn build_object_store_paced(cfg: &ObjectStoreConfig) -> Result<PacedObjectStore, StorageError> {
    match cfg {
        ObjectStoreConfig::Local(local) => {
            let store = build_local(local)?;
            Ok(PacedObjectStore { unpaced: Arc::clone(&store), store, pace: UploadPace::new(UploadPacing::Off) })
        }
        ObjectStoreConfig::S3(s3) => {
            let pace = UploadPace::new(s3.upload_bytes_per_second);
            let store = build_s3(s3, &pace)?;
            let unpaced = match pace.mode() {
                UploadPacing::Off => Arc::clone(&store),
                _ => build_s3(s3, &UploadPace::new(UploadPacing::Off))?,
            };
            Ok(PacedObjectStore { store, unpaced, pace })
        }
    }
}

fn build_local(cfg: &LocalConfig) -> Result<Arc<dyn ObjectStore>, StorageError> {
    std::fs::create_dir_all(&cfg.root)
        .map_err(|source| StorageError::Io { path: cfg.root.display().to_string(), source })?;
    let store = LocalFileSystem::new_with_prefix(&cfg.root)
        .map_err(|e| invalid(format!("object store root {}: {e}", cfg.root.display())))?
        // Retention deletes whole segments; without this every deleted topic or partition would
        // leave its empty directories behind forever.
        .with_automatic_cleanup(true);
    Ok(Arc::new(store))
}

fn build_s3(cfg: &S3Config, pace: &Arc<UploadPace>) -> Result<Arc<dyn ObjectStore>, StorageError> {
    if cfg.bucket.is_empty() {
        return Err(invalid("object store key `bucket` is empty".to_owned()));
    }
    if cfg.region.is_empty() {
        return Err(invalid("object store key `region` is empty".to_owned()));
    }
    // Few, short retries: the offloader retries uploads itself with backoff, and a read must
    // fail with "unavailable" in seconds rather than hang for minutes while the store is down.
    let retry = object_store::RetryConfig {
        max_retries: 3,
        retry_timeout: std::time::Duration::from_secs(15),
        ..Default::default()
    };
    let (connect_timeout, timeout) = (std::time::Duration::from_secs(5), std::time::Duration::from_secs(120));
    let options = object_store::ClientOptions::new().with_connect_timeout(connect_timeout).with_timeout(timeout);
    let mut builder = AmazonS3Builder::new()
        .with_retry(retry)
        .with_client_options(options)
        .with_region(&cfg.region)
        .with_bucket_name(&cfg.bucket)
        .with_virtual_hosted_style_request(!cfg.path_style)
        .with_allow_http(cfg.allow_http);
    if let Some(endpoint) = &cfg.endpoint {
        if endpoint.starts_with("http://") && !cfg.allow_http {
            return Err(invalid(format!(
                "object store endpoint {endpoint} is plain http: set `allow_http = true` to permit it"
            )));
        }
        builder = builder.with_endpoint(endpoint);
    }
    match (&cfg.access_key_id, &cfg.secret_access_key) {
        (Some(key), Some(secret)) => {
            builder = builder.with_access_key_id(key.expose()).with_secret_access_key(secret.expose());
        }
        (None, None) => {}
        _ => {
            return Err(invalid(
                "object store keys `access_key_id` and `secret_access_key` must be set together".to_owned(),
            ));
        }
    }
    if pace.mode() != UploadPacing::Off {
        builder = builder.with_http_connector(crate::paced::PacedConnector {
            pace: Arc::clone(pace),
            connect_timeout,
            timeout,
        });
    }
    let store = builder.build().map_err(|e| invalid(format!("object store bucket {}: {e}", cfg.bucket)))?;
    Ok(Arc::new(store))
}

fn invalid(message: String) -> StorageError {
    StorageError::InvalidConfig(message)
}

/// The object-store behaviour Magnetar relies on, as functions every backend must pass (the
/// shape of `object_store`'s own `integration.rs`). Each function writes only under `prefix`,
/// so runs in parallel against one bucket do not collide, and panics on a violation.
#[cfg(any(test, feature = "conformance"))]
pub mod conformance {
    use bytes::Bytes;
    use futures::TryStreamExt;
    use object_store::path::Path;
    use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

    const MIB: usize = 1024 * 1024;

    /// The S3 server `scripts/test.sh` starts, from its `MAGNETAR_TEST_S3_*` variables; a missing
    /// variable fails the calling test with a message saying how to get the server.
    pub fn s3_config_from_env() -> super::ObjectStoreConfig {
        fn env(name: &str) -> String {
            std::env::var(name).unwrap_or_else(|_| {
                panic!("{name} is not set: run the tests through scripts/test.sh, which starts an S3-compatible server")
            })
        }
        let endpoint = env("MAGNETAR_TEST_S3_ENDPOINT");
        super::ObjectStoreConfig::S3(super::S3Config {
            allow_http: endpoint.starts_with("http://"),
            upload_bytes_per_second: super::UploadPacing::Off,
            endpoint: Some(endpoint),
            region: std::env::var("MAGNETAR_TEST_S3_REGION").unwrap_or_else(|_| "us-east-1".into()),
            bucket: env("MAGNETAR_TEST_S3_BUCKET"),
            access_key_id: Some(super::Secret::new(env("MAGNETAR_TEST_S3_ACCESS_KEY"))),
            secret_access_key: Some(super::Secret::new(env("MAGNETAR_TEST_S3_SECRET_KEY"))),
            path_style: true,
        })
    }

    /// Deterministic, non-repeating bytes: a byte-for-byte comparison then catches shifted or
    /// swapped parts, which a constant fill would not.
    pub fn pattern(len: usize, seed: u64) -> Bytes {
        let mut state = seed | 1;
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            // xorshift64
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            out.extend_from_slice(&state.to_le_bytes());
        }
        out.truncate(len);
        Bytes::from(out)
    }

    pub async fn put_get_round_trip(store: &dyn ObjectStore, prefix: &Path) {
        let key = prefix.clone().join("round-trip.seg");
        let data = pattern(64 * 1024 + 7, 1);
        store.put(&key, data.clone().into()).await.expect("put");
        let got = store.get(&key).await.expect("get").bytes().await.expect("get body");
        assert_eq!(got, data, "object {key} read back differs from what was written");
        store.delete(&key).await.expect("delete");
    }

    /// Segment reads fetch record blocks by byte range through the segment index.
    pub async fn get_range_returns_exact_bytes(store: &dyn ObjectStore, prefix: &Path) {
        let key = prefix.clone().join("ranged.seg");
        let data = pattern(100_000, 2);
        store.put(&key, data.clone().into()).await.expect("put");
        for range in [0..1, 10..4_096, 99_000..100_000, 12_345..67_890] {
            let got = store.get_range(&key, range.clone()).await.expect("get_range");
            let want = &data[range.start as usize..range.end as usize];
            assert_eq!(&got[..], want, "range {range:?} of {key}");
        }
        store.delete(&key).await.expect("delete");
    }

    pub async fn head_reports_size(store: &dyn ObjectStore, prefix: &Path) {
        let key = prefix.clone().join("head.seg");
        store.put(&key, pattern(12_345, 3).into()).await.expect("put");
        let meta = store.head(&key).await.expect("head");
        assert_eq!(meta.size, 12_345, "size of {key}");
        assert_eq!(meta.location, key);
        store.delete(&key).await.expect("delete");
    }

    /// Listing a partition's prefix finds its segments and nothing of a sibling partition whose
    /// name merely starts with the same characters (`.../1` versus `.../10`).
    pub async fn list_with_prefix_is_exact(store: &dyn ObjectStore, prefix: &Path) {
        let p1 = prefix.clone().join("1");
        let p10 = prefix.clone().join("10");
        let mine = [p1.clone().join("0-a.seg"), p1.clone().join("100-b.seg")];
        let other = p10.join("0-c.seg");
        for key in mine.iter().chain([&other]) {
            store.put(key, Bytes::from_static(b"x").into()).await.expect("put");
        }
        let mut listed: Vec<Path> =
            store.list(Some(&p1)).map_ok(|meta| meta.location).try_collect().await.expect("list");
        listed.sort();
        assert_eq!(listed, mine.to_vec(), "list of {p1}");

        let all: Vec<_> = store.list(Some(prefix)).try_collect().await.expect("list");
        assert_eq!(all.len(), 3, "list of {prefix}: {all:?}");
        for key in mine.iter().chain([&other]) {
            store.delete(key).await.expect("delete");
        }
    }

    pub async fn delete_removes_object(store: &dyn ObjectStore, prefix: &Path) {
        let key = prefix.clone().join("deleted.seg");
        store.put(&key, Bytes::from_static(b"bye").into()).await.expect("put");
        store.delete(&key).await.expect("delete");
        let err = store.head(&key).await.expect_err("head after delete must fail");
        assert!(matches!(err, object_store::Error::NotFound { .. }), "head after delete: {err}");
        let listed: Vec<_> = store.list(Some(prefix)).try_collect().await.expect("list");
        assert!(listed.is_empty(), "deleted object still listed: {listed:?}");
    }

    pub async fn get_missing_is_not_found(store: &dyn ObjectStore, prefix: &Path) {
        let key = prefix.clone().join("never-written.seg");
        let err = store.get(&key).await.expect_err("get of a missing key must fail");
        assert!(matches!(err, object_store::Error::NotFound { .. }), "get missing: {err}");
        let err = store.head(&key).await.expect_err("head of a missing key must fail");
        assert!(matches!(err, object_store::Error::NotFound { .. }), "head missing: {err}");
    }

    /// Sealed segments are uploaded in 5 MiB parts (the S3 minimum for all but the last part).
    pub async fn multipart_upload_round_trip(store: &dyn ObjectStore, prefix: &Path) {
        let key = prefix.clone().join("multipart.seg");
        let data = pattern(10 * MIB + 123_457, 4);
        let mut upload = store.put_multipart(&key).await.expect("put_multipart");
        for part in data.chunks(5 * MIB) {
            upload.put_part(PutPayload::from(data.slice_ref(part))).await.expect("put_part");
        }
        upload.complete().await.expect("complete");
        let meta = store.head(&key).await.expect("head");
        assert_eq!(meta.size, data.len() as u64, "size of {key}");
        let got = store.get(&key).await.expect("get").bytes().await.expect("get body");
        assert!(got == data, "multipart object {key} read back differs");
        store.delete(&key).await.expect("delete");
    }

    /// What a backend does with `PutMode::Create` on an existing key.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum CreateSupport {
        /// Refused with `AlreadyExists`, the original object untouched: usable for
        /// single-writer commits.
        Enforced,
        /// Refused with `NotImplemented` before any request: the caller must not rely on it.
        NotImplemented,
    }

    /// Checks `PutMode::Create`. A backend that accepts the overwrite (silently replacing the
    /// object) fails this check: that would break single-writer commits without anyone noticing.
    pub async fn put_create_refuses_overwrite(store: &dyn ObjectStore, prefix: &Path) -> CreateSupport {
        let key = prefix.clone().join("create-once.seg");
        let create = || PutOptions::from(PutMode::Create);
        match store.put_opts(&key, Bytes::from_static(b"first").into(), create()).await {
            Ok(_) => {}
            Err(object_store::Error::NotImplemented { .. }) => {
                return CreateSupport::NotImplemented;
            }
            Err(e) => panic!("first create of {key}: {e}"),
        }
        let second = store.put_opts(&key, Bytes::from_static(b"second").into(), create()).await;
        let got = store.get(&key).await.expect("get").bytes().await.expect("get body");
        assert_eq!(&got[..], b"first", "PutMode::Create overwrote {key} (second put: {second:?})");
        match second {
            Err(object_store::Error::AlreadyExists { .. }) => {}
            other => panic!("second create of {key} must be AlreadyExists, got {other:?}"),
        }
        store.delete(&key).await.expect("delete");
        CreateSupport::Enforced
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<ObjectStoreConfig, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn s3_config_parses_with_defaults() {
        let cfg = parse(r#"{"kind":"s3","region":"us-east-1","bucket":"b"}"#).unwrap();
        let ObjectStoreConfig::S3(s3) = cfg else { panic!("not s3: {cfg:?}") };
        assert!(s3.path_style);
        assert!(!s3.allow_http);
        assert_eq!(s3.endpoint, None);
        assert_eq!(s3.access_key_id, None);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = parse(r#"{"kind":"s3","region":"r","bucket":"b","bukket":"x"}"#).unwrap_err();
        assert!(err.to_string().contains("bukket"), "{err}");
        let err = parse(r#"{"kind":"local","root":"/x","extra":1}"#).unwrap_err();
        assert!(err.to_string().contains("extra"), "{err}");
        assert!(parse(r#"{"kind":"gcs","bucket":"b"}"#).is_err());
    }

    #[test]
    fn secrets_never_print() {
        let cfg = parse(
            r#"{"kind":"s3","region":"r","bucket":"b",
                "access_key_id":"AKIDSECRETVALUE","secret_access_key":"hunter2"}"#,
        )
        .unwrap();
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("AKIDSECRETVALUE") && !shown.contains("hunter2"), "{shown}");
        assert_eq!(Secret::new("hunter2").to_string(), "***");
        assert_eq!(Secret::new("hunter2").expose(), "hunter2");
    }

    fn s3(json: &str) -> Result<Arc<dyn ObjectStore>, StorageError> {
        build_object_store(&parse(json).unwrap())
    }

    #[test]
    fn s3_rejects_half_credentials_and_unapproved_http() {
        let err = s3(r#"{"kind":"s3","region":"r","bucket":"b","access_key_id":"k"}"#)
            .expect_err("half credentials must be refused");
        assert!(err.to_string().contains("secret_access_key"), "{err}");
        let err = s3(r#"{"kind":"s3","region":"r","bucket":"b","endpoint":"http://127.0.0.1:1"}"#)
            .expect_err("plain http without allow_http must be refused");
        assert!(err.to_string().contains("allow_http"), "{err}");
        s3(r#"{"kind":"s3","region":"r","bucket":"b","endpoint":"http://127.0.0.1:1",
               "allow_http":true,"access_key_id":"k","secret_access_key":"s"}"#)
        .expect("valid s3 config");
    }

    #[test]
    fn local_store_creates_its_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("a/b");
        build_object_store(&ObjectStoreConfig::Local(LocalConfig { root: root.clone() })).unwrap();
        assert!(root.is_dir());
    }
}
