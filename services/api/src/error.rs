//! The one place where errors become HTTP answers: Pulsar's status codes and its
//! `{"reason": "..."}` body. 5xx answers carry a generic reason; the cause goes to the log.

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
}

impl ApiError {
    pub fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        ApiError { status, reason: reason.into() }
    }
    pub fn bad_request(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, reason)
    }
}

impl ApiError {
    /// The answer for an error of a given status: 5xx causes go to the log and the client gets
    /// a generic reason for 500 (503 keeps its reason: it tells the client what to wait for).
    fn classified(status: StatusCode, e: &dyn std::fmt::Display) -> ApiError {
        let reason = match status {
            StatusCode::INTERNAL_SERVER_ERROR => {
                tracing::error!(error = %e, "internal error");
                "internal error, see the broker log".to_string()
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                tracing::warn!(error = %e, "service unavailable");
                e.to_string()
            }
            _ => e.to_string(),
        };
        ApiError { status, reason }
    }
}

impl From<BrokerError> for ApiError {
    fn from(e: BrokerError) -> Self {
        let status = match &e {
            BrokerError::InvalidName(_) | BrokerError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            BrokerError::BadRequest(_) => StatusCode::BAD_REQUEST,
            BrokerError::NotFound(_) => StatusCode::NOT_FOUND,
            BrokerError::AlreadyExists(_) | BrokerError::Conflict(_) => StatusCode::CONFLICT,
            BrokerError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            BrokerError::NotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            BrokerError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            BrokerError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            BrokerError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::classified(status, &e)
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
        ApiError::classified(status, &e)
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
        (self.status, Json(serde_json::json!({ "reason": self.reason }))).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
