//! The conformance suite against PostgreSQL. Each test creates its own database on the server
//! named by `MAGNETAR_TEST_POSTGRES_URL`, so tests run in parallel without seeing each other.

use magnetar_metadata::{MetadataStore, SqlMetadataStore, StoreOptions};
use sqlx::{Connection, PgConnection};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

const URL_VAR: &str = "MAGNETAR_TEST_POSTGRES_URL";

/// The admin URL: a database on a server where the test may create and drop databases.
fn admin_url() -> String {
    std::env::var(URL_VAR).unwrap_or_else(|_| {
        panic!("{URL_VAR} is not set: run the tests through scripts/test.sh, which starts PostgreSQL")
    })
}

/// `admin_url` with its database replaced by `database`.
fn database_url(admin: &str, database: &str) -> String {
    let (base, query) = admin.split_once('?').map_or((admin, None), |(b, q)| (b, Some(q)));
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{database}?{q}"),
        None => format!("{base}/{database}"),
    }
}

fn fresh_database_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("magnetar_test_{}_{}_{}", std::process::id(), nanos, COUNTER.fetch_add(1, Ordering::Relaxed))
}

async fn admin_execute(admin: &str, sql: String) {
    let mut conn = PgConnection::connect(admin).await.expect("connect to the admin database");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.expect("admin statement");
    conn.close().await.expect("close admin connection");
}

/// A new, empty database: the admin URL, its name and its URL.
async fn fresh_database() -> (String, String, String) {
    let admin = admin_url();
    let database = fresh_database_name();
    admin_execute(&admin, format!("CREATE DATABASE {database}")).await;
    let url = database_url(&admin, &database);
    (admin, database, url)
}

async fn with_store<F, Fut>(test: F)
where
    F: FnOnce(Arc<dyn MetadataStore>) -> Fut,
    Fut: Future<Output = ()>,
{
    let (admin, database, url) = fresh_database().await;
    let store = SqlMetadataStore::connect(&url).await.expect("connect to postgres");
    test(Arc::new(store.clone())).await;
    // Only reached when the test passed: a failed test leaves its database for inspection.
    store.close().await;
    admin_execute(&admin, format!("DROP DATABASE {database} WITH (FORCE)")).await;
}

magnetar_metadata::conformance_tests!(with_store);

#[tokio::test]
async fn reconnecting_keeps_data_and_skips_applied_migrations() {
    let (admin, database, url) = fresh_database().await;
    let store = magnetar_metadata::connect(&url).await.expect("first connect");
    let tenant = "acme".parse().expect("tenant name");
    store.create_tenant(&tenant, &Default::default()).await.expect("create tenant");
    drop(store);
    let store = magnetar_metadata::connect(&url).await.expect("second connect");
    assert_eq!(store.list_tenants().await.expect("list"), vec![tenant]);
    drop(store);
    admin_execute(&admin, format!("DROP DATABASE {database} WITH (FORCE)")).await;
}

/// A broker stalled inside a write transaction (SIGSTOP, a paused VM) holds the partition row's
/// lock; PostgreSQL ends its session after `idle_in_transaction_timeout`, so another broker's
/// takeover goes through instead of waiting for the zombie to wake, and the zombie's write is
/// rolled back.
#[tokio::test]
async fn a_writer_stalled_mid_transaction_holds_no_partition_past_the_idle_timeout() {
    use magnetar_metadata::conformance::{given_namespace, given_topic};
    let (admin, database, url) = fresh_database().await;
    let options = StoreOptions { idle_in_transaction_timeout: Duration::from_millis(300), ..StoreOptions::default() };
    let store = SqlMetadataStore::connect_with(&url, &options).await.expect("connect to postgres");
    // Every connection of the pool carries the setting.
    for _ in 0..4 {
        let value = store.session_setting("idle_in_transaction_session_timeout").await.expect("setting");
        assert_eq!(value, "300ms");
    }
    given_namespace(&store, "acme/orders").await;
    let log_id = given_topic(&store, "persistent://acme/orders/t", 0).await.partition_records[0].log_id;
    let first = store.acquire_partition(log_id, "zombie").await.expect("acquire");

    // The zombie: a session set up as the pool's, locking the row as a fenced write does,
    // then stalling.
    let mut zombie = PgConnection::connect(&url).await.expect("connect the zombie");
    sqlx::raw_sql(sqlx::AssertSqlSafe(options.postgres_session_sql())).execute(&mut zombie).await.expect("session");
    sqlx::raw_sql("BEGIN").execute(&mut zombie).await.expect("begin");
    let locked = sqlx::query("UPDATE partitions SET epoch = epoch WHERE log_id = $1 AND epoch = $2")
        .bind(log_id)
        .bind(first)
        .execute(&mut zombie)
        .await
        .expect("lock the partition row");
    assert_eq!(locked.rows_affected(), 1);

    let takeover = tokio::time::timeout(Duration::from_secs(10), store.acquire_partition(log_id, "survivor"))
        .await
        .expect("the takeover waited on the stalled transaction's lock past the idle timeout")
        .expect("acquire");
    assert!(takeover > first);
    assert!(sqlx::raw_sql("COMMIT").execute(&mut zombie).await.is_err(), "the zombie's transaction committed");
    assert_eq!(store.get_partition_owner(log_id).await.expect("owner"), Some(("survivor".to_string(), takeover)));
    store.close().await;
    admin_execute(&admin, format!("DROP DATABASE {database} WITH (FORCE)")).await;
}

#[tokio::test]
async fn unreachable_server_is_unavailable() {
    // Port 1 on localhost refuses connections: the store reports it as retryable.
    let options = StoreOptions { acquire_timeout: Duration::from_millis(500), ..StoreOptions::default() };
    let err =
        SqlMetadataStore::connect_with("postgres://postgres@127.0.0.1:1/none", &options).await.expect_err("must fail");
    assert!(matches!(err, magnetar_metadata::MetadataError::Unavailable(_)), "{err:?}");
}

#[test]
fn database_url_replaces_only_the_database() {
    assert_eq!(database_url("postgres://u@h:5/postgres", "x"), "postgres://u@h:5/x");
    assert_eq!(database_url("postgres://u@h:5", "x"), "postgres://u@h:5/x");
    assert_eq!(database_url("postgres://u@h/postgres?sslmode=disable", "x"), "postgres://u@h/x?sslmode=disable");
}
