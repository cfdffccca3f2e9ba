/// Conditions of the metadata store. sqlx errors never leave this crate: they are classified
/// here by SQLSTATE into these variants.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("{0} is not empty")]
    NotEmpty(String),
    #[error("{0}")]
    Conflict(String),
    #[error("partition {log_id} is owned by a newer epoch than {epoch}")]
    Fenced { log_id: i64, epoch: i64 },
    #[error("metadata store unavailable: {0}")]
    Unavailable(String),
    #[error("metadata store error: {0}")]
    Internal(String),
}
