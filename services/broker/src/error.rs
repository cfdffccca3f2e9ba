use magnetar_core::NameError;
use magnetar_metadata::MetadataError;
use magnetar_storage::StorageError;

/// Conditions a broker operation can end in. The API crate maps each variant to one HTTP
/// status (Pulsar's codes) in one place; the messages become the `reason` of 4xx answers.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("{0}")]
    InvalidName(#[from] NameError),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// Pulsar answers these with 409: non-empty tenant/namespace, concurrent modification.
    #[error("{0}")]
    Conflict(String),
    /// Pulsar's 412: a request that is well-formed but violates a precondition.
    #[error("{0}")]
    PreconditionFailed(String),
    /// Pulsar's 406 for an invalid number of partitions.
    #[error("{0}")]
    NotAcceptable(String),
    /// Pulsar's 405: the operation does not apply to this kind of topic.
    #[error("{0}")]
    NotAllowed(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = BrokerError> = std::result::Result<T, E>;

impl From<MetadataError> for BrokerError {
    fn from(e: MetadataError) -> Self {
        match e {
            MetadataError::NotFound(what) => BrokerError::NotFound(what),
            MetadataError::AlreadyExists(what) => BrokerError::AlreadyExists(what),
            MetadataError::NotEmpty(what) => BrokerError::Conflict(format!("{what} is not empty")),
            MetadataError::Conflict(msg) => BrokerError::Conflict(msg),
            e @ MetadataError::Fenced { .. } => BrokerError::Unavailable(e.to_string()),
            e @ MetadataError::Unavailable(_) => BrokerError::Unavailable(e.to_string()),
            e @ MetadataError::Internal(_) => BrokerError::Internal(e.to_string()),
        }
    }
}

impl From<StorageError> for BrokerError {
    fn from(e: StorageError) -> Self {
        match e {
            e @ StorageError::MessageTooLarge { .. } => BrokerError::PayloadTooLarge(e.to_string()),
            e @ (StorageError::ShuttingDown | StorageError::Unavailable(_)) => BrokerError::Unavailable(e.to_string()),
            e => BrokerError::Internal(e.to_string()),
        }
    }
}
