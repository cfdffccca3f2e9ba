#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("message of {size} bytes exceeds the maximum of {max} bytes")]
    MessageTooLarge { size: usize, max: usize },
    #[error("offset {offset} of log {log_id} is no longer retained (earliest is {earliest})")]
    OffsetTrimmed { log_id: u64, offset: u64, earliest: u64 },
    #[error("corrupt record in {file} at position {position}: {detail}")]
    Corrupt { file: String, position: u64, detail: String },
    #[error("storage is shutting down")]
    ShuttingDown,
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The records are in the WAL and still on their way beyond it (object store or replicas),
    /// longer than the log's bound allows the appender to wait: they may yet be committed.
    #[error("storage unavailable: {0}")]
    NotYetDurable(String),
    #[error("i/o error on {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("log {0} was deleted")]
    LogDeleted(u64),
    /// The log was terminated: it accepts no more records.
    #[error("log {0} is terminated")]
    Terminated(u64),
    /// The log accepts no appends while its partition is handed to another broker.
    #[error("log {0} is closed: its partition is moving to another broker")]
    Closed(u64),
    /// An append that had to start at a given offset (records copied from elsewhere keep their
    /// offsets) found the log at another: nothing was appended.
    #[error("log {log_id}: records of offset {first} would have been appended at {next}; nothing was appended")]
    Misplaced { log_id: u64, first: u64, next: u64 },
    #[error("invalid storage configuration: {0}")]
    InvalidConfig(String),
}

impl StorageError {
    pub(crate) fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        StorageError::Io { path: path.as_ref().display().to_string(), source }
    }
}

/// Attaches a path to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn ctx(self, path: impl AsRef<std::path::Path>) -> Result<T, StorageError>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, path: impl AsRef<std::path::Path>) -> Result<T, StorageError> {
        self.map_err(|e| StorageError::io(path, e))
    }
}
