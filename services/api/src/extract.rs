//! Request extraction shared by the routes: lenient JSON bodies (Pulsar tools send bare
//! scalars such as `30` or `"Prefix"`), the caller's identity, and topic names from paths.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use magnetar_core::TopicName;
use serde::de::DeserializeOwned;

/// A JSON body parsed whatever the content type says; malformed JSON is a 400 with a reason.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::new(e.status(), format!("cannot read request body: {}", e.body_text())))?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
    }
}

/// Like `JsonBody` but an empty body gives `None`.
pub struct OptionalJsonBody<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::new(e.status(), format!("cannot read request body: {}", e.body_text())))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJsonBody(None));
        }
        serde_json::from_slice(&bytes)
            .map(|v| OptionalJsonBody(Some(v)))
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
    }
}

/// Who is calling. Authentication arrives with the JWT issue; until then every caller is a
/// superuser, but every handler already takes this so enforcement has one place to go.
#[derive(Debug, Clone)]
pub struct AuthContext {
    pub role: Option<String>,
    pub superuser: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for AuthContext {
    type Rejection = ApiError;

    async fn from_request_parts(_parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        Ok(AuthContext { role: None, superuser: true })
    }
}

/// `{tenant}/{namespace}/{topic}` path parameters of a persistent topic.
#[derive(Debug, serde::Deserialize)]
pub struct TopicPath {
    pub tenant: String,
    pub namespace: String,
    pub topic: String,
}

impl TopicPath {
    pub fn name(&self) -> Result<TopicName, ApiError> {
        Ok(TopicName::from_parts("persistent", &self.tenant, &self.namespace, &self.topic)?)
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct SubscriptionPath {
    pub tenant: String,
    pub namespace: String,
    pub topic: String,
    pub subscription: String,
}

impl SubscriptionPath {
    pub fn name(&self) -> Result<(TopicName, String), ApiError> {
        let topic = TopicName::from_parts("persistent", &self.tenant, &self.namespace, &self.topic)?;
        let sub = magnetar_core::SubscriptionName::new(self.subscription.clone())?;
        Ok((topic, sub.to_string()))
    }
}

#[derive(Debug, serde::Deserialize, Default)]
pub struct ForceQuery {
    #[serde(default)]
    pub force: bool,
}
