//! Operations endpoints: Prometheus metrics, health, readiness, Pulsar's status page and the
//! OpenAPI description. None needs a token (metrics do with `auth.authenticate_metrics`).

use crate::AppState;
use crate::error::{ApiError, Forbidden, Unauthorized};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use magnetar_auth::{Operation, Resource};
use std::sync::LazyLock;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(metrics))
        .routes(routes!(pulsar_metrics))
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(status_page))
        .routes(routes!(openapi_json))
}

/// Prometheus metrics
///
/// With authentication on and `auth.authenticate_metrics`, only a superuser may read them: they
/// name every tenant's topics.
#[utoipa::path(get, path = "/metrics", tag = "operations", security((), ("bearerAuth" = [])),
    responses((status = 200, description = "Prometheus text exposition format", body = String,
        content_type = "text/plain; version=0.0.4"), Unauthorized, Forbidden))]
async fn metrics(State(s): State<AppState>, headers: axum::http::HeaderMap) -> Result<impl IntoResponse, ApiError> {
    if s.auth.enabled() && s.auth.config.authenticate_metrics {
        crate::extract::authenticate(&s, &headers, None).await?.check(Operation::Metrics, Resource::Cluster).await?;
    }
    // Rendering walks every loaded partition: with many topics that is CPU work the runtime's
    // workers should not do.
    let broker = std::sync::Arc::clone(&s.broker);
    let text = tokio::task::spawn_blocking(move || broker.render_metrics())
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("rendering metrics failed: {e}")))?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text))
}

/// Prometheus metrics (Pulsar's path)
#[utoipa::path(get, path = "/metrics/", tag = "operations", security((), ("bearerAuth" = [])),
    responses((status = 200, description = "Prometheus text exposition format", body = String,
        content_type = "text/plain; version=0.0.4"), Unauthorized, Forbidden))]
async fn pulsar_metrics(s: State<AppState>, headers: axum::http::HeaderMap) -> Result<impl IntoResponse, ApiError> {
    metrics(s, headers).await
}

/// Liveness
///
/// `OK` as long as the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, description = "alive", body = String, content_type = "text/plain", example = "OK")))]
async fn healthz() -> &'static str {
    "OK"
}

/// Readiness
///
/// `OK` when the broker serves; 503 `NOT READY` while it starts or shuts down.
#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses((status = 200, description = "ready", body = String, content_type = "text/plain", example = "OK"),
        (status = 503, description = "starting or shutting down", body = String, content_type = "text/plain",
            example = "NOT READY")))]
async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    if s.broker.is_ready() { (StatusCode::OK, "OK") } else { (StatusCode::SERVICE_UNAVAILABLE, "NOT READY") }
}

/// Pulsar's status page
///
/// As `/readyz`.
#[utoipa::path(get, path = "/status.html", tag = "operations", security(()),
    responses((status = 200, description = "ready", body = String, content_type = "text/plain", example = "OK"),
        (status = 503, description = "starting or shutting down", body = String, content_type = "text/plain",
            example = "NOT READY")))]
async fn status_page(s: State<AppState>) -> impl IntoResponse {
    readyz(s).await
}

/// The description, built once from the handlers' types.
static OPENAPI_JSON: LazyLock<String> = LazyLock::new(crate::openapi_json);

/// This description (OpenAPI 3.1)
///
/// Derived from the handlers' types; `magnetar openapi` prints the same document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", security(()),
    responses((status = 200, description = "OpenAPI 3.1 JSON", body = Object, content_type = "application/json")))]
async fn openapi_json() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON.as_str())
}

pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("no such endpoint: {}", uri.path()))
}
