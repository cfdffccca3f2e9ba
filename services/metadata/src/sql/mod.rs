//! `SqlMetadataStore`: one implementation of the SQL for PostgreSQL and SQLite through sqlx's
//! `Any` driver. The dialects differ only in the schema files (migrations/{postgres,sqlite}) and
//! in how a write transaction begins (`Dialect`); every query is written once, with `$N`
//! placeholders, which both drivers accept.

mod accounts;
mod brokers;
mod bundles;
mod catalog;
mod clusters;
mod compaction;
mod errors;
mod log_objects;
mod logs;
mod store;
mod topic_ops;
mod topics;

use crate::{MetadataError, Result};
use errors::classify;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{Any, AnyPool, ConnectOptions, Connection, Executor, Row, Transaction};
use std::fmt::Display;
use std::str::FromStr;
use std::time::Duration;

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/sqlite");

/// How long a SQLite connection waits for another writer before giving up with SQLITE_BUSY.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Sqlite,
}

impl Dialect {
    fn of_url(url: &str) -> Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Dialect::Postgres)
        } else if url.starts_with("sqlite:") {
            Ok(Dialect::Sqlite)
        } else {
            let scheme = url.split_once(':').map_or(url, |(s, _)| s);
            Err(MetadataError::Internal(format!("unsupported metadata store url scheme {scheme}")))
        }
    }

    /// SQLite upgrades a deferred transaction's read lock to a write lock at its first write and
    /// fails at once (without waiting on the busy timeout) if another writer got there first, so
    /// write transactions take the write lock up front. PostgreSQL locks rows as it goes.
    fn begin_write(self) -> &'static str {
        match self {
            Dialect::Postgres => "BEGIN",
            Dialect::Sqlite => "BEGIN IMMEDIATE",
        }
    }

    /// The database's own clock in milliseconds since the epoch, as a SQL expression: leases
    /// are judged by one clock for every broker, never by a broker's own.
    fn now_ms_sql(self) -> &'static str {
        match self {
            Dialect::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
            Dialect::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
        }
    }
}

/// Pool settings; `Default` suits both a standalone broker and a small cluster.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub max_connections: u32,
    /// How long a call waits for a connection (including connecting at start, which is retried
    /// until then) before failing with `Unavailable`.
    pub acquire_timeout: Duration,
    /// PostgreSQL ends a session that sits idle inside a transaction this long, rolling it back.
    /// A write transaction holds row locks (`logs::fence` locks the partition row until it
    /// ends), so a broker stalled mid-transaction (a paused VM, SIGSTOP) would otherwise hold
    /// them until it woke, and the takeover of its partitions would wait on it past its lease.
    /// Our transactions only run statements back to back, so a healthy broker never comes near
    /// this; a woken zombie finds its connection gone and its write not done. Below the
    /// default membership lease (10 s), so a takeover is never held up longer than the lease.
    pub idle_in_transaction_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(30),
            idle_in_transaction_timeout: Duration::from_secs(5),
        }
    }
}

impl StoreOptions {
    /// What every new PostgreSQL connection of the pool runs first.
    pub fn postgres_session_sql(&self) -> String {
        let idle_ms = self.idle_in_transaction_timeout.as_millis().max(1);
        format!("SET idle_in_transaction_session_timeout = {idle_ms}")
    }
}

/// The metadata store over a sqlx connection pool (see the module docs).
#[derive(Debug, Clone)]
pub struct SqlMetadataStore {
    pool: AnyPool,
    dialect: Dialect,
}

impl SqlMetadataStore {
    /// Connects to `sqlite://PATH` (the file is created if missing) or `postgres://...` and
    /// applies pending migrations before returning.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, &StoreOptions::default()).await
    }

    pub async fn connect_with(url: &str, options: &StoreOptions) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let dialect = Dialect::of_url(url)?;
        let pool_options =
            AnyPoolOptions::new().max_connections(options.max_connections).acquire_timeout(options.acquire_timeout);
        let pool = match dialect {
            Dialect::Postgres => {
                let session = options.postgres_session_sql();
                pool_options
                    .after_connect(move |conn, _meta| {
                        let session = session.clone();
                        Box::pin(async move {
                            conn.execute(sqlx::AssertSqlSafe(session)).await?;
                            Ok(())
                        })
                    })
                    .connect(url)
                    .await
                    .map_err(classify)?
            }
            Dialect::Sqlite => connect_sqlite(url, pool_options).await?,
        };
        let migrator = match dialect {
            Dialect::Postgres => &POSTGRES_MIGRATIONS,
            Dialect::Sqlite => &SQLITE_MIGRATIONS,
        };
        migrator.run(&pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(e) => classify(e),
            other => MetadataError::Internal(format!("applying migrations: {other}")),
        })?;
        Ok(Self { pool, dialect })
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// A run-time setting (`current_setting`) as the pool's connections see it.
    pub async fn session_setting(&self, name: &str) -> Result<String> {
        let row = sqlx::query("SELECT current_setting($1) AS value")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(classify)?;
        get(&row, "value")
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Any>> {
        self.pool.begin_with(self.dialect.begin_write()).await.map_err(classify)
    }
}

/// Creates the database file and switches it to WAL (a persistent property of the file, set
/// once through a plain SQLite connection because the `Any` URL cannot carry it), then opens the
/// pool. Every pooled connection enables foreign keys (the cascades depend on them) and waits
/// on the busy timeout instead of failing when another connection holds the write lock.
/// `synchronous` stays at SQLite's default (FULL): a committed segment or cursor must survive a
/// power loss, and metadata writes are too rare for the fsync to matter.
async fn connect_sqlite(url: &str, pool_options: AnyPoolOptions) -> Result<AnyPool> {
    let bootstrap = SqliteConnectOptions::from_str(url)
        .map_err(|e| MetadataError::Internal(format!("invalid sqlite url: {e}")))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(SQLITE_BUSY_TIMEOUT);
    bootstrap.connect().await.map_err(classify)?.close().await.map_err(classify)?;

    let busy_ms = SQLITE_BUSY_TIMEOUT.as_millis();
    pool_options
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                conn.execute(sqlx::AssertSqlSafe(format!("PRAGMA foreign_keys = ON; PRAGMA busy_timeout = {busy_ms}")))
                    .await?;
                Ok(())
            })
        })
        .connect(url)
        .await
        .map_err(classify)
}

pub(crate) fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| MetadataError::Internal(format!("encoding json: {e}")))
}

/// Decodes a JSON column; `owner` names the resource in the error (corrupt stored data).
pub(crate) fn from_json<T: DeserializeOwned>(text: &str, owner: impl Display) -> Result<T> {
    serde_json::from_str(text).map_err(|e| MetadataError::Internal(format!("corrupt json stored for {owner}: {e}")))
}

pub(crate) fn get<'r, T>(row: &'r AnyRow, column: &str) -> Result<T>
where
    T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    row.try_get(column).map_err(classify)
}

/// Offsets are `u64` in the API and BIGINT in the schema; anything above `i64::MAX` is refused
/// rather than wrapped.
pub(crate) fn offset_to_db(value: u64, what: impl Display) -> Result<i64> {
    i64::try_from(value).map_err(|_| MetadataError::Conflict(format!("{what}: offset {value} out of range")))
}

pub(crate) fn offset_from_db(value: i64, what: impl Display) -> Result<u64> {
    u64::try_from(value).map_err(|_| MetadataError::Internal(format!("negative offset {value} stored for {what}")))
}
