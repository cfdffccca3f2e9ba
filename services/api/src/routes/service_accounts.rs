//! Magnetar's self-service service accounts (Pulsar has none), under
//! `/admin/v2/tenants/{tenant}/service-accounts`. A tenant admin manages the accounts of its
//! own tenant and mints their tokens; the token text is in the creation answer only.
//!
//! - `GET .../service-accounts` → `[{"name","role","description","createdAt"}]`
//! - `PUT .../service-accounts/{name}` optional `{"description": "..."}` → 204, 409 if it exists
//! - `GET .../service-accounts/{name}` → the account; `DELETE` → 204 (its tokens are revoked)
//! - `POST .../service-accounts/{name}/tokens` `{"expiresInSeconds": N}` →
//!   `{"id","role","token","expiresAt"}`; `GET .../tokens` → `[{"id","createdAt","expiresAt"}]`
//! - `DELETE .../tokens/{id}` → 204; the token is refused on every broker within seconds.

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{AuthContext, JsonBody, OptionalJsonBody};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use magnetar_auth::Operation;
use magnetar_auth::accounts::{AccountView, MintedToken, TokenView};
use magnetar_core::TenantName;
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    let a = "/admin/v2/tenants/{tenant}/service-accounts";
    Router::new()
        .route(a, get(list_service_accounts))
        .route(
            &format!("{a}/{{name}}"),
            get(get_service_account).put(create_service_account).delete(delete_service_account),
        )
        .route(&format!("{a}/{{name}}/tokens"), get(list_tokens).post(create_token))
        .route(&format!("{a}/{{name}}/tokens/{{id}}"), delete(revoke_token))
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AccountBody {
    #[serde(default)]
    description: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TokenBody {
    expires_in_seconds: u64,
}

async fn list_service_accounts(
    State(s): State<AppState>,
    auth: AuthContext,
    Path(t): Path<String>,
) -> ApiResult<Json<Vec<AccountView>>> {
    let tenant = TenantName::new(t)?;
    auth.check(Operation::ListServiceAccounts, &tenant).await?;
    Ok(Json(s.auth.list_service_accounts(&tenant).await?))
}

async fn create_service_account(
    State(s): State<AppState>,
    auth: AuthContext,
    Path((t, name)): Path<(String, String)>,
    OptionalJsonBody(body): OptionalJsonBody<AccountBody>,
) -> ApiResult<StatusCode> {
    let tenant = TenantName::new(t)?;
    auth.check(Operation::CreateServiceAccount, &tenant).await?;
    s.auth.create_service_account(&tenant, &name, body.unwrap_or_default().description).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_service_account(
    State(s): State<AppState>,
    auth: AuthContext,
    Path((t, name)): Path<(String, String)>,
) -> ApiResult<Json<AccountView>> {
    let tenant = TenantName::new(t)?;
    auth.check(Operation::GetServiceAccount, &tenant).await?;
    Ok(Json(s.auth.get_service_account(&tenant, &name).await?))
}

async fn delete_service_account(
    State(s): State<AppState>,
    auth: AuthContext,
    Path((t, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let tenant = TenantName::new(t)?;
    auth.check(Operation::DeleteServiceAccount, &tenant).await?;
    s.auth.delete_service_account(&tenant, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn create_token(
    State(s): State<AppState>,
    auth: AuthContext,
    Path((t, name)): Path<(String, String)>,
    JsonBody(body): JsonBody<TokenBody>,
) -> ApiResult<Json<MintedToken>> {
    let tenant = TenantName::new(t)?;
    auth.check(Operation::CreateServiceAccountToken, &tenant).await?;
    Ok(Json(s.auth.create_service_account_token(&tenant, &name, body.expires_in_seconds).await?))
}

async fn list_tokens(
    State(s): State<AppState>,
    auth: AuthContext,
    Path((t, name)): Path<(String, String)>,
) -> ApiResult<Json<Vec<TokenView>>> {
    let tenant = TenantName::new(t)?;
    auth.check(Operation::ListServiceAccountTokens, &tenant).await?;
    Ok(Json(s.auth.list_service_account_tokens(&tenant, &name).await?))
}

async fn revoke_token(
    State(s): State<AppState>,
    auth: AuthContext,
    Path((t, name, id)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let tenant = TenantName::new(t)?;
    auth.check(Operation::RevokeServiceAccountToken, &tenant).await?;
    s.auth.revoke_service_account_token(&tenant, &name, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
