//! The one place where sqlx errors become `MetadataError`s. Classification is by error kind
//! (SQLSTATE for PostgreSQL, extended result code for SQLite), never by message text.

use crate::MetadataError;
use sqlx::error::{DatabaseError, ErrorKind};
use sqlx::postgres::PgDatabaseError;
use sqlx::sqlite::SqliteError;

/// The row a statement writes, so that a constraint violation names the resource: a unique
/// violation means `row` already exists, a foreign-key violation means `parent` is missing.
pub(crate) struct Target {
    pub row: String,
    pub parent: String,
}

impl Target {
    pub fn new(row: impl std::fmt::Display, parent: impl std::fmt::Display) -> Self {
        Self { row: row.to_string(), parent: parent.to_string() }
    }
}

/// Classifies an error of a statement that is not expected to violate constraints: any
/// violation there is a bug or a schema drift, reported as `Internal` with the constraint.
pub(crate) fn classify(err: sqlx::Error) -> MetadataError {
    classify_write(err, None)
}

pub(crate) fn classify_write(err: sqlx::Error, target: Option<&Target>) -> MetadataError {
    match err {
        sqlx::Error::Database(db) => classify_database(db.as_ref(), target),
        // The store cannot be reached or has no capacity right now: retryable by the caller.
        sqlx::Error::Io(e) => MetadataError::Unavailable(format!("i/o: {e}")),
        sqlx::Error::Tls(e) => MetadataError::Unavailable(format!("tls: {e}")),
        sqlx::Error::PoolTimedOut => MetadataError::Unavailable("timed out waiting for a connection".into()),
        sqlx::Error::PoolClosed => MetadataError::Unavailable("connection pool closed".into()),
        sqlx::Error::WorkerCrashed => MetadataError::Unavailable("database worker crashed".into()),
        other => MetadataError::Internal(other.to_string()),
    }
}

fn classify_database(db: &dyn DatabaseError, target: Option<&Target>) -> MetadataError {
    match (db.kind(), target) {
        (ErrorKind::UniqueViolation, Some(t)) => return MetadataError::AlreadyExists(t.row.clone()),
        (ErrorKind::ForeignKeyViolation, Some(t)) => return MetadataError::NotFound(t.parent.clone()),
        _ => {}
    }
    if is_transient(db) {
        return MetadataError::Unavailable(db.message().to_string());
    }
    match db.constraint() {
        Some(constraint) => MetadataError::Internal(format!("constraint {constraint}: {}", db.message())),
        None => MetadataError::Internal(db.message().to_string()),
    }
}

/// Conditions that say "not now" rather than "never": lost connections, server shutdown,
/// exhausted resources, lock contention, serialization failures.
fn is_transient(db: &dyn DatabaseError) -> bool {
    if let Some(pg) = db.try_downcast_ref::<PgDatabaseError>() {
        let code = pg.code();
        // 08: connection exception, 53: insufficient resources, 57P: operator intervention
        // (admin shutdown, crash recovery), 40001/40P01: serialization failure / deadlock.
        return code.starts_with("08")
            || code.starts_with("53")
            || code.starts_with("57P")
            || code == "40001"
            || code == "40P01";
    }
    if db.try_downcast_ref::<SqliteError>().is_some() {
        // Primary result code is the low byte of the extended code: 5 = SQLITE_BUSY,
        // 6 = SQLITE_LOCKED, 10 = SQLITE_IOERR, 13 = SQLITE_FULL, 14 = SQLITE_CANTOPEN.
        let primary = db.code().and_then(|c| c.parse::<i32>().ok()).map(|c| c & 0xff);
        return matches!(primary, Some(5 | 6 | 10 | 13 | 14));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_errors_are_unavailable() {
        assert!(matches!(classify(sqlx::Error::PoolTimedOut), MetadataError::Unavailable(_)));
        assert!(matches!(classify(sqlx::Error::PoolClosed), MetadataError::Unavailable(_)));
    }

    #[test]
    fn row_not_found_is_internal() {
        assert!(matches!(classify(sqlx::Error::RowNotFound), MetadataError::Internal(_)));
    }
}
