//! The one place broker and authentication conditions become Pulsar's `ServerError` codes, the
//! binary protocol's counterpart of the HTTP surface's status table.

use magnetar_auth::AuthError;
use magnetar_broker::BrokerError;
use magnetar_protocol::proto::ServerError;

/// Why a command failed, with the code the client acts on.
#[derive(Debug, thiserror::Error)]
pub enum BinaryError {
    #[error("{0}")]
    Broker(#[from] BrokerError),
    #[error("{0}")]
    Auth(#[from] AuthError),
    #[error("invalid topic name `{0}`")]
    InvalidTopic(String),
    #[error("{0}")]
    NotAllowed(String),
    #[error("{0}")]
    ProducerBusy(String),
    #[error("{0}")]
    UnknownConsumer(String),
}

impl BinaryError {
    pub fn code(&self) -> ServerError {
        match self {
            BinaryError::Broker(e) => broker_code(e),
            BinaryError::Auth(e) => auth_code(e),
            BinaryError::InvalidTopic(_) => ServerError::InvalidTopicName,
            BinaryError::NotAllowed(_) => ServerError::NotAllowedError,
            BinaryError::ProducerBusy(_) => ServerError::ProducerBusy,
            BinaryError::UnknownConsumer(_) => ServerError::ConsumerNotFound,
        }
    }

    /// The message sent to the client: 5xx-like causes stay in the log.
    pub fn message(&self) -> String {
        match self {
            BinaryError::Broker(BrokerError::Internal(_)) => "internal error".into(),
            other => other.to_string(),
        }
    }
}

fn auth_code(e: &AuthError) -> ServerError {
    match e {
        AuthError::Forbidden(_) => ServerError::AuthorizationError,
        AuthError::NotFound(_) => ServerError::TopicNotFound,
        AuthError::Unavailable(_) => ServerError::ServiceNotReady,
        AuthError::BadRequest(_) | AuthError::AlreadyExists(_) | AuthError::NotSupported(_) => {
            ServerError::NotAllowedError
        }
        AuthError::Config(_) | AuthError::Internal(_) => ServerError::UnknownError,
        _ => ServerError::AuthenticationError,
    }
}

fn broker_code(e: &BrokerError) -> ServerError {
    use BrokerError as B;
    match e {
        B::NotFound(magnetar_broker::Entity::Subscription { .. }) => ServerError::SubscriptionNotFound,
        B::NotFound(_) | B::Deleted => ServerError::TopicNotFound,
        B::AutoSubscriptionCreationDisabled { .. } => ServerError::SubscriptionNotFound,
        B::ConsumerBusy(_) | B::TooManyConsumers { .. } | B::TooManySubscriptions { .. } => ServerError::ConsumerBusy,
        B::TooManyProducers { .. } | B::ProducerBusy(_) => ServerError::ProducerBusy,
        B::ProducerFenced(_) => ServerError::ProducerFenced,
        B::ConsumerAssign(_) => ServerError::ConsumerAssignError,
        B::InvalidName(_) | B::PartitionSuffix(_) => ServerError::InvalidTopicName,
        B::Forbidden(_) => ServerError::AuthorizationError,
        B::BacklogQuotaExceeded { .. } => ServerError::ProducerBlockedQuotaExceededException,
        B::TopicTerminated(_) => ServerError::TopicTerminatedError,
        B::SchemaIncompatible(_) => ServerError::IncompatibleSchema,
        B::SubscribeRateExceeded { .. } | B::PublishRateExceeded { .. } => ServerError::TooManyRequests,
        // Retriable: the client looks the topic up again (a bundle moving or its owner away).
        B::Unavailable { .. }
        | B::ShuttingDown
        | B::ModifiedConcurrently(_)
        | B::NotOwner(_)
        | B::BundleUnavailable(_) => ServerError::ServiceNotReady,
        B::Internal(_) => ServerError::UnknownError,
        B::SequenceInFlight { .. } => ServerError::PersistenceError,
        // Pulsar's answer to a producer that does not encrypt where encryption is required.
        B::EncryptionRequired(_) => ServerError::MetadataError,
        _ => ServerError::NotAllowedError,
    }
}
