//! Operations endpoints: Prometheus metrics, health, readiness, Pulsar's status page and the
//! OpenAPI description.

use crate::AppState;
use crate::error::ApiError;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use magnetar_auth::{Operation, Resource};
use prometheus::Encoder;

const OPENAPI: &str = include_str!("../../openapi.json");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/metrics/", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/status.html", get(readyz))
        .route("/openapi.json", get(openapi))
}

/// With authentication on (and `auth.authenticate_metrics`), only a superuser may read metrics:
/// they name every tenant's topics.
async fn metrics(State(s): State<AppState>, headers: axum::http::HeaderMap) -> Result<impl IntoResponse, ApiError> {
    if s.auth.enabled() && s.auth.config.authenticate_metrics {
        crate::extract::authenticate(&s, &headers, None)?.check(Operation::Metrics, Resource::Cluster).await?;
    }
    s.broker.refresh_metrics();
    let families = s.broker.metrics_registry().gather();
    let mut buf = Vec::new();
    if let Err(e) = prometheus::TextEncoder::new().encode(&families, &mut buf) {
        tracing::error!(error = %e, "encoding metrics failed");
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], buf))
}

/// Liveness: the process answers.
async fn healthz() -> &'static str {
    "OK"
}

/// Readiness: 503 while starting or shutting down.
async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    if s.broker.is_ready() { (StatusCode::OK, "OK") } else { (StatusCode::SERVICE_UNAVAILABLE, "NOT READY") }
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("no such endpoint: {}", uri.path()))
}
