//! HTTP surfaces of the broker: the Pulsar-compatible admin API (`/admin/v2`), REST produce
//! (`/topics/...`), Magnetar's HTTP pull-consume API, Prometheus metrics, health and the
//! OpenAPI description. Handlers are thin: extract, parse names into types, call the broker,
//! map the result; errors become HTTP answers in `error.rs` only.

mod error;
mod extract;
mod routes;

pub use error::ApiError;
pub use extract::AuthContext;

use axum::Router;
use magnetar_broker::Broker;
use std::sync::Arc;

/// Limits of the HTTP layer.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Largest request body accepted, in bytes.
    pub max_request_bytes: usize,
    /// Most requests processed at once; more wait (backpressure instead of memory growth).
    pub max_concurrent_requests: usize,
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
            max_pull_wait_ms: 60_000,
            max_pull_messages: 10_000,
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub broker: Arc<Broker>,
    pub http: Arc<HttpConfig>,
}

/// The complete HTTP application.
pub fn app(broker: Arc<Broker>, http: HttpConfig) -> Router {
    let limit = http.max_request_bytes;
    let concurrency = http.max_concurrent_requests;
    let state = AppState { broker, http: Arc::new(http) };
    Router::new()
        .merge(routes::clusters::router())
        .merge(routes::tenants::router())
        .merge(routes::namespaces::router())
        .merge(routes::topics::router())
        .merge(routes::subscriptions::router())
        .merge(routes::produce::router())
        .merge(routes::consume::router())
        .merge(routes::ops::router())
        .merge(routes::ws::router())
        .fallback(routes::ops::not_found)
        .with_state(state)
        .layer(axum::extract::DefaultBodyLimit::max(limit))
        .layer(tower::limit::ConcurrencyLimitLayer::new(concurrency))
        .layer(tower_http::trace::TraceLayer::new_for_http())
}
