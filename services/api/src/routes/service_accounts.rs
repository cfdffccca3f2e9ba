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
use crate::error::{
    ApiResult, BadRequest, Conflict, Forbidden, NotFound, NotImplemented, PayloadTooLarge, PreconditionFailed,
    Unauthorized, Unavailable,
};
use crate::extract::{AuthContext, JsonBody, OptionalJsonBody, Path, TenantParam};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use magnetar_auth::Operation;
use magnetar_auth::accounts::{AccountView, MintedToken, TokenView};
use magnetar_core::TenantName;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_service_accounts))
        .routes(routes!(get_service_account, create_service_account, delete_service_account))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
}

/// `{name}` of an account's path, as the description lists it.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
struct AccountPath {
    /// Account name: 1 to 64 lowercase letters, digits, `-` or `_`.
    #[param(pattern = "^[a-z0-9][a-z0-9_-]{0,63}$")]
    name: String,
}

/// A new service account.
#[derive(Debug, Deserialize, Default, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AccountBody {
    #[serde(default)]
    description: String,
}

/// A token to mint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TokenBody {
    /// Lifetime of the token in seconds, 1 to `auth.service_account_token_max_secs`.
    #[schema(minimum = 1, example = 86400)]
    expires_in_seconds: u64,
}

/// List the service accounts of a tenant
#[utoipa::path(get, path = "/admin/v2/tenants/{tenant}/service-accounts", tag = "service accounts", params(TenantParam),
    responses((status = 200, description = "the accounts", body = Vec<AccountView>), BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn list_service_accounts(
    State(s): State<AppState>,
    auth: AuthContext,
    Path(t): Path<String>,
) -> ApiResult<Json<Vec<AccountView>>> {
    let tenant = TenantName::new(t)?;
    auth.check(Operation::ListServiceAccounts, &tenant).await?;
    Ok(Json(s.auth.list_service_accounts(&tenant).await?))
}

/// Create a service account
///
/// Its role is `name@tenant`; grant it actions like any role.
#[utoipa::path(put, path = "/admin/v2/tenants/{tenant}/service-accounts/{name}", tag = "service accounts", params(TenantParam, AccountPath),
    request_body = Option<AccountBody>,
    responses((status = 204, description = "created"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, PayloadTooLarge, Unavailable))]
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

/// Get a service account
#[utoipa::path(get, path = "/admin/v2/tenants/{tenant}/service-accounts/{name}", tag = "service accounts", params(TenantParam, AccountPath),
    responses((status = 200, description = "the account", body = AccountView), BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn get_service_account(
    State(s): State<AppState>,
    auth: AuthContext,
    Path((t, name)): Path<(String, String)>,
) -> ApiResult<Json<AccountView>> {
    let tenant = TenantName::new(t)?;
    auth.check(Operation::GetServiceAccount, &tenant).await?;
    Ok(Json(s.auth.get_service_account(&tenant, &name).await?))
}

/// Delete a service account
///
/// Its tokens are revoked.
#[utoipa::path(delete, path = "/admin/v2/tenants/{tenant}/service-accounts/{name}", tag = "service accounts", params(TenantParam, AccountPath),
    responses((status = 204, description = "deleted"), BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
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

/// Mint a token for a service account
///
/// The token's text is in this answer only.
#[utoipa::path(post, path = "/admin/v2/tenants/{tenant}/service-accounts/{name}/tokens", tag = "service accounts", params(TenantParam, AccountPath),
    request_body = TokenBody,
    responses((status = 200, description = "the token", body = MintedToken),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, PayloadTooLarge, NotImplemented,
        Unavailable))]
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

/// List the live tokens of a service account
///
/// Their ids, never their text.
#[utoipa::path(get, path = "/admin/v2/tenants/{tenant}/service-accounts/{name}/tokens", tag = "service accounts", params(TenantParam, AccountPath),
    responses((status = 200, description = "the tokens", body = Vec<TokenView>), BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn list_tokens(
    State(s): State<AppState>,
    auth: AuthContext,
    Path((t, name)): Path<(String, String)>,
) -> ApiResult<Json<Vec<TokenView>>> {
    let tenant = TenantName::new(t)?;
    auth.check(Operation::ListServiceAccountTokens, &tenant).await?;
    Ok(Json(s.auth.list_service_account_tokens(&tenant, &name).await?))
}

/// Revoke a token of a service account
///
/// Every broker refuses it within seconds.
#[utoipa::path(delete, path = "/admin/v2/tenants/{tenant}/service-accounts/{name}/tokens/{id}", tag = "service accounts",
    params(TenantParam, AccountPath, ("id" = String, Path, description = "token id")),
    responses((status = 204, description = "revoked"), BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
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

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::IntoParams;

    #[test]
    fn the_described_name_pattern_is_the_one_the_accounts_check() {
        let params = AccountPath::into_params(|| None);
        let json = serde_json::to_value(&params[0]).expect("serializes");
        assert_eq!(json["schema"]["pattern"], magnetar_auth::accounts::NAME_PATTERN);
    }
}
