//! Magnetar's durability policy of a namespace (docs/durability.md): `{"mode": "local" |
//! "object-store" | "replicated", "objectStoreMaxWaitMs"}` (replicated: with the quorum of the
//! namespace's persistence policy). A change takes effect at each bundle's next change of owner,
//! so setting or removing it unloads the namespace's bundles (hands them over, in a tier) before
//! answering.

use crate::AppState;
use crate::error::{
    ApiResult, BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, PreconditionFailed, Unauthorized,
    Unavailable,
};
use crate::extract::{AuthContext, JsonBody, NamespaceParam};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use magnetar_auth::Operation;
use magnetar_core::DurabilityPolicy;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_durability, set_durability, remove_durability))
}

/// Get the durability policy of a namespace (null: it sets none, and `local` applies)
#[utoipa::path(get, path = "/admin/v2/namespaces/{tenant}/{namespace}/durability", tag = "namespaces",
    params(NamespaceParam),
    responses((status = 200, description = "the namespace's own policy, or null", body = Option<DurabilityPolicy>),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn get_durability(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<Json<Option<DurabilityPolicy>>> {
    auth.check(Operation::GetNamespacePolicies, &name).await?;
    Ok(Json(s.broker.durability(&name).await?))
}

/// Set the durability mode of a namespace: `local` (the owner's WAL), `object-store` (a record
/// is acknowledged once in an object committed in the metadata store) or `replicated` (once the
/// persistence policy's ack quorum of peer brokers fsynced it); in the last two a crash loses
/// nothing acknowledged.
/// The namespace's bundles are unloaded so that the mode applies from their next owner on
#[utoipa::path(post, path = "/admin/v2/namespaces/{tenant}/{namespace}/durability", tag = "namespaces",
    params(NamespaceParam), request_body = DurabilityPolicy,
    responses((status = 204, description = "set; the bundles were unloaded to apply it"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn set_durability(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    JsonBody(value): JsonBody<DurabilityPolicy>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::SetNamespacePolicy, &name).await?;
    s.broker.set_durability(&name, Some(value)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove the durability policy of a namespace: `local` applies from each bundle's next owner on
#[utoipa::path(delete, path = "/admin/v2/namespaces/{tenant}/{namespace}/durability", tag = "namespaces",
    params(NamespaceParam),
    responses((status = 204, description = "removed; the bundles were unloaded to apply it"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unavailable))]
async fn remove_durability(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<StatusCode> {
    auth.check(Operation::SetNamespacePolicy, &name).await?;
    s.broker.set_durability(&name, None).await?;
    Ok(StatusCode::NO_CONTENT)
}
