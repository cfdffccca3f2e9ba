//! `/admin/v2/tenants`.

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{AuthContext, ForceQuery, JsonBody, OptionalJsonBody};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use magnetar_auth::Operation;
use magnetar_core::TenantName;
use magnetar_metadata::TenantInfo;

pub fn router() -> Router<AppState> {
    Router::new().route("/admin/v2/tenants", get(list_tenants)).route(
        "/admin/v2/tenants/{tenant}",
        get(get_tenant).put(create_tenant).post(update_tenant).delete(delete_tenant),
    )
}

async fn list_tenants(State(s): State<AppState>, auth: AuthContext) -> ApiResult<Json<Vec<String>>> {
    let tenants = auth.visible_tenants(s.broker.list_tenants().await?).await?;
    Ok(Json(tenants.into_iter().map(|t| t.to_string()).collect()))
}

async fn get_tenant(
    State(s): State<AppState>,
    auth: AuthContext,
    Path(t): Path<String>,
) -> ApiResult<Json<TenantInfo>> {
    auth.check(Operation::GetTenant, &TenantName::new(t.clone())?).await?;
    Ok(Json(s.broker.get_tenant(&TenantName::new(t)?).await?))
}

async fn create_tenant(
    State(s): State<AppState>,
    auth: AuthContext,
    Path(t): Path<String>,
    OptionalJsonBody(info): OptionalJsonBody<TenantInfo>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::CreateTenant, &TenantName::new(t.clone())?).await?;
    let name = TenantName::new(t)?;
    let mut info = info.unwrap_or_default();
    if info.allowed_clusters.is_empty() {
        info.allowed_clusters = vec![s.broker.cluster().to_string()];
    }
    s.broker.create_tenant(&name, &info).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn update_tenant(
    State(s): State<AppState>,
    auth: AuthContext,
    Path(t): Path<String>,
    JsonBody(info): JsonBody<TenantInfo>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::UpdateTenant, &TenantName::new(t.clone())?).await?;
    s.broker.update_tenant(&TenantName::new(t)?, &info).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_tenant(
    State(s): State<AppState>,
    auth: AuthContext,
    Path(t): Path<String>,
    Query(q): Query<ForceQuery>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::DeleteTenant, &TenantName::new(t.clone())?).await?;
    s.broker.delete_tenant(&TenantName::new(t)?, q.force).await?;
    Ok(StatusCode::NO_CONTENT)
}
