//! The one place where errors become HTTP answers: Pulsar's status codes and its
//! `{"reason": "..."}` body. 5xx answers carry a generic reason; the cause goes to the log.
//! The error answers the OpenAPI description lists (`BadRequest`, `NotFound`, ...) are defined
//! here too, beside the table they come from.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use magnetar_broker::BrokerError;
use magnetar_core::NameError;
use magnetar_core::message_id::MessageIdError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub reason: String,
    /// Nothing was done because this broker does not own the topic's bundle (it is moving or
    /// not yet assigned): the forwarding layer may serve the request again where it is now.
    pub not_owner: bool,
}

/// Marks an answer `ApiError::not_owner` gave, for the broker that forwarded the request.
pub const NOT_OWNER: axum::http::HeaderName = axum::http::HeaderName::from_static("x-magnetar-not-owner");

impl ApiError {
    pub fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        ApiError { status, reason: reason.into(), not_owner: false }
    }
    pub fn bad_request(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, reason)
    }
}

impl ApiError {
    /// The answer for an error of a given status: 5xx causes go to the log and the client gets
    /// a generic reason for 500; 503 keeps its reason (it tells the client what to wait for),
    /// which never carries driver text (`BrokerError::cause` does, for the log).
    fn classified(status: StatusCode, reason: String, cause: &dyn std::fmt::Display) -> ApiError {
        let reason = match status {
            StatusCode::INTERNAL_SERVER_ERROR => {
                tracing::error!(error = %cause, "internal error");
                "internal error, see the broker log".to_string()
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                tracing::warn!(error = %cause, "service unavailable");
                reason
            }
            _ => reason,
        };
        ApiError { status, reason, not_owner: false }
    }
}

/// The one table from a broker condition to Pulsar's status code.
pub fn status_of(e: &BrokerError) -> StatusCode {
    use BrokerError as B;
    match e {
        B::NotFound(_) | B::Deleted | B::AutoSubscriptionCreationDisabled { .. } => StatusCode::NOT_FOUND,
        B::SubscribeRateExceeded { .. } => StatusCode::TOO_MANY_REQUESTS,
        B::AlreadyExists(_)
        | B::TooManyProducers { .. }
        | B::TooManyConsumers { .. }
        | B::NotEmpty(_)
        | B::ModifiedConcurrently(_)
        | B::OwnerAlive { .. }
        | B::ConsumerBusy(_)
        | B::ProducerBusy(_)
        | B::ConsumerAssign(_)
        | B::ProducerFenced(_)
        | B::PartitionsCannotShrink { .. }
        | B::NotPartitioned(_)
        | B::IsPartitioned(_)
        | B::OffloadRunning(_)
        | B::CompactionRunning(_)
        | B::SchemaIncompatible(_) => StatusCode::CONFLICT,
        B::InUse(_)
        | B::TooManySubscriptions { .. }
        | B::TooManyTopics { .. }
        | B::SubscriptionTypeDisabled { .. }
        | B::EncryptionRequired(_)
        | B::DeliveryDelayTooLong { .. }
        | B::InvalidName(_)
        | B::InvalidPolicy(_)
        | B::PartitionSuffix(_)
        | B::UnknownCluster { .. }
        | B::NoObjectStore => StatusCode::PRECONDITION_FAILED,
        B::InvalidArgument(_) | B::ForeignMessageId { .. } | B::MessageIdBeyondEnd { .. } | B::NotAllowed(_) => {
            StatusCode::BAD_REQUEST
        }
        B::InvalidPartitionCount(_) => StatusCode::NOT_ACCEPTABLE,
        B::WholePartitionedTopic { .. } => StatusCode::METHOD_NOT_ALLOWED,
        B::MessageTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        B::Forbidden(_) => StatusCode::FORBIDDEN,
        // A terminated topic is 503 as in Pulsar (its producer handshake and REST produce).
        B::BacklogQuotaExceeded { .. }
        | B::PublishRateExceeded { .. }
        | B::TopicTerminated(_)
        | B::Unavailable { .. }
        | B::SequenceInFlight { .. }
        | B::NotOwner(_)
        | B::BundleUnavailable(_)
        | B::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        B::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<BrokerError> for ApiError {
    fn from(e: BrokerError) -> Self {
        let mut out = ApiError::classified(status_of(&e), e.to_string(), &e.cause());
        out.not_owner = matches!(e, BrokerError::NotOwner(_));
        out
    }
}

/// 401 for a missing, malformed, expired or revoked token; 403 for an authenticated role that
/// may not do the operation (Pulsar answers 401 for both; clients treat both as errors).
impl From<magnetar_auth::AuthError> for ApiError {
    fn from(e: magnetar_auth::AuthError) -> Self {
        use magnetar_auth::AuthError as A;
        let status = match &e {
            e if e.is_unauthenticated() => StatusCode::UNAUTHORIZED,
            A::Forbidden(_) => StatusCode::FORBIDDEN,
            A::BadRequest(_) => StatusCode::BAD_REQUEST,
            A::NotFound(_) => StatusCode::NOT_FOUND,
            A::AlreadyExists(_) => StatusCode::CONFLICT,
            A::NotSupported(_) => StatusCode::NOT_IMPLEMENTED,
            A::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        // The store's text stays in the log.
        let reason = match &e {
            A::Unavailable(_) => "authorization data unavailable, retry later".to_string(),
            e => e.to_string(),
        };
        ApiError::classified(status, reason, &e)
    }
}

/// Names that break Pulsar's naming rules are 412, as in Pulsar.
impl From<NameError> for ApiError {
    fn from(e: NameError) -> Self {
        ApiError::new(StatusCode::PRECONDITION_FAILED, e.to_string())
    }
}

impl From<MessageIdError> for ApiError {
    fn from(e: MessageIdError) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(ErrorBody { reason: self.reason })).into_response();
        if self.not_owner {
            response.headers_mut().insert(NOT_OWNER, axum::http::HeaderValue::from_static("1"));
        }
        response
    }
}

/// The body of every error answer, as Pulsar's `ErrorData`.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// What went wrong, naming the resource; generic for 500.
    pub reason: String,
}

/// One documented error answer per status `status_of` (and authentication) can give, for the
/// `responses(...)` of the handlers' `#[utoipa::path]`.
macro_rules! error_responses {
    ($($name:ident = $status:tt, $description:tt;)*) => {$(
        #[doc = $description]
        #[derive(utoipa::IntoResponses)]
        #[response(status = $status, description = $description)]
        #[allow(dead_code)]
        pub struct $name(ErrorBody);
    )*};
}

error_responses! {
    BadRequest = 400, "invalid request: malformed body, parameter or message id";
    Unauthorized = 401, "authentication is on and the token is missing, malformed, expired or revoked";
    Forbidden = 403, "the caller's role may not do this";
    NotFound = 404, "the resource does not exist";
    MethodNotAllowed = 405, "not possible on a partitioned topic as a whole: name a partition";
    NotAcceptable = 406, "invalid number of partitions";
    Conflict = 409, "the resource exists, is not empty, is busy (a producer or consumer limit reached) or was changed concurrently";
    PreconditionFailed = 412, "invalid name or policy, the resource is in use, or a policy refuses it (subscription or topic limit, subscription type, encryption)";
    PayloadTooLarge = 413, "the request body or a message is larger than allowed";
    TooManyRequests = 429, "too many subscribe requests from this consumer (the topic's subscribe rate)";
    NotImplemented = 501, "not possible with this broker's authentication setup";
    Unavailable = 503, "the broker cannot serve this now (metadata store unavailable, backlog quota or publish rate reached, shutting down); retry later";
}

pub type ApiResult<T> = Result<T, ApiError>;
