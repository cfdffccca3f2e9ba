//! HTTP surfaces of the broker: the Pulsar-compatible admin API (`/admin/v2`), REST produce
//! (`/topics/...`), Magnetar's HTTP pull-consume API, Prometheus metrics, health, and the
//! OpenAPI description with interactive docs. Handlers are thin: extract, parse names into
//! types, call the broker, map the result; errors become HTTP answers in `error.rs` only. Each
//! handler carries its `#[utoipa::path]` and is registered once, with `routes!`, so the
//! description is collected from the same registration that serves it.

mod error;
mod extract;
mod fanout;
pub mod forward;
mod forward_ws;
mod internal;
mod openapi;
mod routes;
mod watched;

pub use error::ApiError;
pub use extract::{AuthContext, authenticate};
pub use magnetar_auth::{Operation, Resource};

use axum::Router;
use axum::response::IntoResponse;
use magnetar_auth::Auth;
use magnetar_broker::Broker;
use std::sync::Arc;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

/// Limits of the HTTP layer.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Largest request body accepted, in bytes.
    pub max_request_bytes: usize,
    /// Most requests the broker processes at once, over all routes; more wait (backpressure
    /// instead of memory growth). WebSocket sessions count while their handshake runs only.
    pub max_concurrent_requests: usize,
    /// Most WebSocket sessions (producers, consumers, readers) open at once on this broker;
    /// beyond it the handshake is refused with 503.
    pub max_websocket_sessions: usize,
    /// Longest long-poll wait a pull may ask for, in milliseconds.
    pub max_pull_wait_ms: u64,
    /// Most messages one pull may return.
    pub max_pull_messages: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_request_bytes: 64 * 1024 * 1024,
            max_concurrent_requests: 4096,
            max_websocket_sessions: 10_000,
            max_pull_wait_ms: 60_000,
            max_pull_messages: 10_000,
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub broker: Arc<Broker>,
    pub http: Arc<HttpConfig>,
    pub auth: Arc<Auth>,
    /// One permit per open WebSocket session.
    pub ws_sessions: Arc<tokio::sync::Semaphore>,
    /// Forwards requests to the owner of their topic's bundle (broker tier).
    pub forwarder: reqwest::Client,
}

/// The complete HTTP application with authentication off (every caller is a superuser).
pub fn app(broker: Arc<Broker>, http: HttpConfig, authorizer: Arc<magnetar_auth::Authorizer>) -> Router {
    app_with_auth(broker, http, Arc::new(Auth::disabled(authorizer)))
}

/// The complete HTTP application; `auth` decides who may call what.
pub fn app_with_auth(broker: Arc<Broker>, http: HttpConfig, auth: Arc<Auth>) -> Router {
    let limit = http.max_request_bytes;
    // The global variant: `Router::layer` clones a layer per route, and a plain
    // `ConcurrencyLimitLayer` would then bound each route (and method) separately.
    let concurrency = tower::limit::GlobalConcurrencyLimitLayer::new(http.max_concurrent_requests.max(1));
    let ws_sessions = Arc::new(tokio::sync::Semaphore::new(http.max_websocket_sessions));
    let forwarder = forward::client(&broker.config().tier);
    let state = AppState { broker, http: Arc::new(http), auth, ws_sessions, forwarder };
    let (api, _) = described_routes().split_for_parts();
    api.merge(openapi::docs_router())
        .merge(internal::router())
        .fallback(routes::console::fallback)
        // Inside the concurrency limit: a request waiting on its forward holds its permit.
        .layer(axum::middleware::from_fn_with_state(state.clone(), forward::route))
        .with_state(state)
        .layer(axum::extract::DefaultBodyLimit::max(limit))
        .layer(concurrency)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(request_span))
}

/// A handler that panicked (a bug) answers 500 with a reason instead of dropping the
/// connection without a response, which clients report as a network error.
fn panicked(panic: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    let what = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("no message");
    tracing::error!(panic = what, "a request handler panicked");
    let body = serde_json::json!({"reason": format!("internal error (a bug in the broker, logged): {what}")});
    (axum::http::StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response()
}

/// Every route of the API with its description; the description alone is `openapi()`.
fn described_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(routes::clusters::router())
        .merge(routes::cluster_admin::router())
        .merge(routes::brokers::router())
        .merge(routes::tenants::router())
        .merge(routes::namespaces::router())
        .merge(routes::bundles::router())
        .merge(routes::offload::router())
        .merge(routes::compaction::router())
        .merge(routes::topics::router())
        .merge(routes::topic_ops::router())
        .merge(routes::schemas::router())
        .merge(routes::subscriptions::router())
        .merge(routes::produce::router())
        .merge(routes::consume::router())
        .merge(routes::ops::router())
        .merge(routes::permissions::router())
        .merge(routes::service_accounts::router())
        .merge(routes::ws::router())
        .merge(routes::policies::router())
        .merge(routes::namespace_limits::router())
        .merge(routes::deduplication::router())
        .merge(routes::persistence::router())
        .merge(routes::durability::router())
        .merge(routes::namespace_policies::router())
        .merge(routes::topic_policies::router())
        .merge(routes::schema_policies::router())
        .merge(routes::replication_policies::router())
        .merge(routes::anti_affinity::router())
        .merge(routes::topic_overrides::router())
        .merge(routes::auth_info::router())
        .merge(routes::broker_info::router())
        .merge(routes::messages::router())
}

/// The OpenAPI 3.1 description of every route `app` serves, as `/openapi.json` serves it
/// (`magnetar openapi` prints it).
pub fn openapi() -> utoipa::openapi::OpenApi {
    described_routes().into_openapi()
}

/// `openapi()` as pretty-printed JSON.
pub fn openapi_json() -> String {
    openapi().to_pretty_json().expect("the OpenAPI description serializes")
}

/// The request span names the method and the path only: query strings may carry tokens
/// (WebSocket `?token=`), and headers (`Authorization`) are never recorded.
fn request_span(req: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    tracing::debug_span!("request", method = %req.method(), path = %req.uri().path())
}

#[cfg(test)]
mod tests {
    use tower::ServiceExt;

    async fn boom() -> &'static str {
        panic!("index out of bounds")
    }

    #[tokio::test]
    async fn a_handler_that_panics_answers_500_with_a_reason() {
        let app = axum::Router::new()
            .route("/boom", axum::routing::get(boom))
            .layer(tower_http::catch_panic::CatchPanicLayer::custom(super::panicked));
        let request = axum::http::Request::get("/boom").body(axum::body::Body::empty()).expect("request");
        let answer = app.oneshot(request).await.expect("an answer, not a dropped connection");
        assert_eq!(answer.status(), 500);
        let body = axum::body::to_bytes(answer.into_body(), 1 << 16).await.expect("body");
        let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert!(json["reason"].as_str().unwrap_or_default().contains("index out of bounds"), "{json}");
    }
}
