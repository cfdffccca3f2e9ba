//! The OpenAPI 3.1 description of the HTTP API and the interactive docs serving it. The paths
//! come from the handlers' `#[utoipa::path]` as `routes!` registers them (a route cannot be
//! served undescribed); this file adds what is common to all: title, tags, the `Error` schema
//! and the `bearerAuth` security scheme.

use crate::AppState;
use crate::error::ErrorBody;
use axum::Router;
use axum::response::Redirect;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::{Config, SwaggerUi};

/// Where the description is served.
pub const OPENAPI_PATH: &str = "/openapi.json";
/// Where the interactive docs are served (`/docs` redirects there).
pub const DOCS_PATH: &str = "/swagger-ui";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Magnetar HTTP API",
        description = "Pulsar-compatible admin API (`/admin/v2`), REST produce (`/topics/...`) and WebSocket API \
(`/ws/v2/...`), plus Magnetar's HTTP pull-consume API and service accounts. Errors answer `{\"reason\": \"...\"}`. \
With authentication on, send `Authorization: Bearer <jwt>` (401: token missing, malformed, expired or revoked; \
403: the role may not do this)."
    ),
    modifiers(&BearerAuth),
    security((), ("bearerAuth" = [])),
    components(schemas(ErrorBody)),
    tags(
        (name = "clusters", description = "Clusters (Pulsar)"),
        (name = "brokers", description = "Brokers and their health (Pulsar)"),
        (name = "broker-stats", description = "The broker's load (Pulsar)"),
        (name = "auth", description = "Who the caller is and what a role may do (Magnetar, for tools such as the console)"),
        (name = "lookup", description = "Topic lookup (Pulsar)"),
        (name = "tenants", description = "Tenants (Pulsar)"),
        (name = "namespaces", description = "Namespaces, their policies and grants (Pulsar)"),
        (name = "persistent topic", description = "Topics, partitions, subscriptions, stats and offload (Pulsar)"),
        (name = "schemas", description = "Schemas of topics, stored for clients and tools (Pulsar)"),
        (name = "produce", description = "REST produce (Pulsar PIP-64)"),
        (name = "consume", description = "HTTP pull-consume (Magnetar)"),
        (name = "websocket", description = "WebSocket producer, consumer and reader (Pulsar); GET upgrades"),
        (name = "service accounts", description = "Self-service service accounts and their tokens (Magnetar)"),
        (name = "operations", description = "Metrics, health and this description"),
    )
)]
pub struct ApiDoc;

/// `bearerAuth`: the JWT of `Authorization: Bearer <jwt>` (needed only with authentication on).
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .description(Some("A token of a role (`magnetar tokens create`, or a service account's token)"))
            .build();
        api.components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearerAuth", SecurityScheme::Http(scheme));
    }
}

/// The Swagger UI at `/swagger-ui/` reading `/openapi.json`, and `/docs` redirecting to it.
/// Neither needs a token: they describe the API, not the data; the page lets a user paste one.
pub fn docs_router() -> Router<AppState> {
    let config = Config::new([OPENAPI_PATH]).persist_authorization(true);
    Router::from(SwaggerUi::new(DOCS_PATH).config(config))
        .route("/docs", axum::routing::get(|| async { Redirect::permanent(&format!("{DOCS_PATH}/")) }))
}
