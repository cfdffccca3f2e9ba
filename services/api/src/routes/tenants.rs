//! `/admin/v2/tenants`.

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{AuthContext, ForceQuery, JsonBody, OptionalJsonBody, TenantParam};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use magnetar_auth::Operation;
use magnetar_metadata::TenantInfo;

pub fn router() -> Router<AppState> {
    Router::new().route("/admin/v2/tenants", get(list_tenants)).route(
        "/admin/v2/tenants/{tenant}",
        get(get_tenant).put(create_tenant).post(update_tenant).delete(delete_tenant),
    )
}

async fn list_tenants(State(s): State<AppState>, auth: AuthContext) -> ApiResult<Json<Vec<String>>> {
    let tenants = auth.visible_tenants(s.broker.admin().list_tenants().await?).await?;
    Ok(Json(tenants.into_iter().map(|t| t.to_string()).collect()))
}

async fn get_tenant(
    State(s): State<AppState>,
    auth: AuthContext,
    TenantParam(name): TenantParam,
) -> ApiResult<Json<TenantInfo>> {
    auth.check(Operation::GetTenant, &name).await?;
    Ok(Json(s.broker.admin().get_tenant(&name).await?))
}

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
