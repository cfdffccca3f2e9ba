//! `/admin/v2/tenants`.

use crate::AppState;
use crate::error::{
    ApiResult, BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, PreconditionFailed, Unauthorized,
    Unavailable,
};
use crate::extract::{AuthContext, ForceQuery, JsonBody, OptionalJsonBody, Query, TenantParam};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use magnetar_auth::Operation;
use magnetar_metadata::TenantInfo;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_tenants)).routes(routes!(
        get_tenant,
        create_tenant,
        update_tenant,
        delete_tenant
    ))
}

/// List tenants
///
/// The tenants the caller administers (all of them for a superuser).
#[utoipa::path(get, path = "/admin/v2/tenants", tag = "tenants",
    responses((status = 200, description = "tenant names", body = [String]), Unauthorized, Unavailable))]
async fn list_tenants(State(s): State<AppState>, auth: AuthContext) -> ApiResult<Json<Vec<String>>> {
    let tenants = auth.visible_tenants(s.broker.admin().list_tenants().await?).await?;
    Ok(Json(tenants.into_iter().map(|t| t.to_string()).collect()))
}

/// Get a tenant
#[utoipa::path(get, path = "/admin/v2/tenants/{tenant}", tag = "tenants", params(TenantParam),
    responses((status = 200, description = "the tenant", body = TenantInfo),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn get_tenant(
    State(s): State<AppState>,
    auth: AuthContext,
    TenantParam(name): TenantParam,
) -> ApiResult<Json<TenantInfo>> {
    auth.check(Operation::GetTenant, &name).await?;
    Ok(Json(s.broker.admin().get_tenant(&name).await?))
}

/// Create a tenant
///
/// Superusers only. Without a body, or without `allowedClusters`, the tenant may use this
/// broker's cluster.
#[utoipa::path(put, path = "/admin/v2/tenants/{tenant}", tag = "tenants", params(TenantParam),
    request_body = Option<TenantInfo>,
    responses((status = 204, description = "created"),
        BadRequest, Unauthorized, Forbidden, Conflict, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn create_tenant(
    State(s): State<AppState>,
    auth: AuthContext,
    TenantParam(name): TenantParam,
    OptionalJsonBody(info): OptionalJsonBody<TenantInfo>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::CreateTenant, &name).await?;
    let mut info = info.unwrap_or_default();
    if info.allowed_clusters.is_empty() {
        info.allowed_clusters = vec![s.broker.cluster().to_string()];
    }
    s.broker.admin().create_tenant(&name, &info).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Update a tenant
#[utoipa::path(post, path = "/admin/v2/tenants/{tenant}", tag = "tenants", params(TenantParam),
    request_body = TenantInfo,
    responses((status = 204, description = "updated"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn update_tenant(
    State(s): State<AppState>,
    auth: AuthContext,
    TenantParam(name): TenantParam,
    JsonBody(info): JsonBody<TenantInfo>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::UpdateTenant, &name).await?;
    s.broker.admin().update_tenant(&name, &info).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete a tenant
///
/// 409 while it has namespaces, unless `force`.
#[utoipa::path(delete, path = "/admin/v2/tenants/{tenant}", tag = "tenants", params(TenantParam, ForceQuery),
    responses((status = 204, description = "deleted"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unavailable))]
async fn delete_tenant(
    State(s): State<AppState>,
    auth: AuthContext,
    TenantParam(name): TenantParam,
    Query(q): Query<ForceQuery>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::DeleteTenant, &name).await?;
    s.broker.admin().delete_tenant(&name, q.force).await?;
    Ok(StatusCode::NO_CONTENT)
}
