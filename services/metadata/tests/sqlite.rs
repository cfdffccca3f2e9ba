//! The conformance suite against SQLite, one fresh database file per test.

use magnetar_metadata::{MetadataStore, SqlMetadataStore};
use std::future::Future;
use std::sync::Arc;

async fn with_store<F, Fut>(test: F)
where
    F: FnOnce(Arc<dyn MetadataStore>) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("temp dir");
    // The file does not exist yet: connect must create it.
    let url = format!("sqlite://{}", dir.path().join("metadata.db").display());
    let store = SqlMetadataStore::connect(&url).await.expect("connect to sqlite");
    test(Arc::new(store.clone())).await;
    store.close().await;
}

magnetar_metadata::conformance_tests!(with_store);

#[tokio::test]
async fn reopening_a_database_keeps_data_and_skips_applied_migrations() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("metadata.db").display());
    let store = magnetar_metadata::connect(&url).await.expect("first connect");
    let tenant = "acme".parse().expect("tenant name");
    store.create_tenant(&tenant, &Default::default()).await.expect("create tenant");
    drop(store);
    let store = magnetar_metadata::connect(&url).await.expect("second connect");
    assert_eq!(store.list_tenants().await.expect("list"), vec![tenant]);
}

#[tokio::test]
async fn sqlite_database_uses_wal_journal() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("metadata.db");
    let store = SqlMetadataStore::connect(&format!("sqlite://{}", path.display())).await.expect("connect");
    store.close().await;
    // WAL mode is recorded in the file header: bytes 18 and 19 are 2 for WAL (1 for rollback).
    let header = std::fs::read(&path).expect("read database file");
    assert_eq!((header[18], header[19]), (2, 2), "database is not in WAL mode");
}

#[tokio::test]
async fn unsupported_url_scheme_is_rejected() {
    let err = magnetar_metadata::connect("mysql://localhost/db").await.err().expect("must fail");
    assert!(err.to_string().contains("mysql"), "{err}");
}
