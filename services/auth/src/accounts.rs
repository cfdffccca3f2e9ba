//! Self-service service accounts: a tenant admin creates identities in its own tenant, mints
//! tokens for them (signed with the broker's key, with the expiry it picks), lists and revokes
//! them. A token's text is returned once, at creation; only its id (`jti`) is stored.

use crate::{Auth, AuthError};
use magnetar_core::{TenantName, now_millis};
use magnetar_metadata::{ServiceAccount, ServiceAccountToken};
use serde::Serialize;
use serde_json::{Map, Value};

/// The role of service account `name` of `tenant`.
pub fn role_of(tenant: &TenantName, name: &str) -> String {
    format!("{name}@{tenant}")
}

/// What `validate_name` accepts, as a regular expression (for the OpenAPI description).
pub const NAME_PATTERN: &str = "^[a-z0-9][a-z0-9_-]{0,63}$";

/// Lowercase letters, digits, `-` and `_`, starting with a letter or digit, at most 64.
pub fn validate_name(name: &str) -> Result<(), AuthError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(AuthError::BadRequest(format!(
            "invalid service account name `{name}`: use 1 to 64 lowercase letters, digits, `-` or `_`"
        )))
    }
}

/// An account as the admin API returns it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    pub name: String,
    pub role: String,
    pub description: String,
    pub created_at: i64,
}

impl From<ServiceAccount> for AccountView {
    fn from(a: ServiceAccount) -> Self {
        AccountView {
            role: role_of(&a.tenant, &a.name),
            name: a.name,
            description: a.description,
            created_at: a.created_at,
        }
    }
}

/// A token as listed (never its text).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenView {
    pub id: String,
    pub created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

impl From<ServiceAccountToken> for TokenView {
    fn from(t: ServiceAccountToken) -> Self {
        TokenView { id: t.id, created_at: t.created_at, expires_at: t.expires_at }
    }
}

/// A freshly minted token: the only time its text is shown.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MintedToken {
    pub id: String,
    pub role: String,
    pub token: String,
    pub expires_at: i64,
}

impl std::fmt::Debug for MintedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MintedToken").field("id", &self.id).field("role", &self.role).finish_non_exhaustive()
    }
}

fn new_token_id() -> String {
    use rand::RngCore;
    let mut id = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut id);
    hex::encode(id)
}

fn account_not_found(tenant: &TenantName, name: &str) -> AuthError {
    AuthError::NotFound(format!("service account {name} of tenant {tenant} not found"))
}

impl Auth {
    pub async fn create_service_account(
        &self,
        tenant: &TenantName,
        name: &str,
        description: String,
    ) -> Result<(), AuthError> {
        validate_name(name)?;
        let account =
            ServiceAccount { tenant: tenant.clone(), name: name.to_string(), description, created_at: now_millis() };
        Ok(self.authorizer.store().create_service_account(&account).await?)
    }

    pub async fn get_service_account(&self, tenant: &TenantName, name: &str) -> Result<AccountView, AuthError> {
        let a = self.authorizer.store().get_service_account(tenant, name).await?;
        a.map(AccountView::from).ok_or_else(|| account_not_found(tenant, name))
    }

    pub async fn list_service_accounts(&self, tenant: &TenantName) -> Result<Vec<AccountView>, AuthError> {
        if self.authorizer.store().get_tenant(tenant).await?.is_none() {
            return Err(AuthError::NotFound(format!("tenant {tenant} not found")));
        }
        Ok(self.authorizer.store().list_service_accounts(tenant).await?.into_iter().map(AccountView::from).collect())
    }

    /// Deletes the account; its tokens are revoked on every broker within a poll interval (at
    /// once on this one).
    pub async fn delete_service_account(&self, tenant: &TenantName, name: &str) -> Result<(), AuthError> {
        let tokens = self.authorizer.store().list_service_account_tokens(tenant, name).await?;
        self.authorizer.store().delete_service_account(tenant, name).await?;
        if let Some(a) = self.authenticator() {
            for t in tokens {
                a.revoke_local(&t.id, t.expires_at.map(|ms| ms / 1000));
            }
        }
        Ok(())
    }

    /// Mints a token valid for `expires_in_secs` (1 ..= `service_account_token_max_secs`).
    pub async fn create_service_account_token(
        &self,
        tenant: &TenantName,
        name: &str,
        expires_in_secs: u64,
    ) -> Result<MintedToken, AuthError> {
        let authenticator = self.authenticator().ok_or_else(|| {
            AuthError::NotSupported("authentication is not enabled on this broker: tokens cannot be minted".into())
        })?;
        if !authenticator.can_sign() {
            return Err(AuthError::NotSupported(
                "this broker cannot sign tokens: configure auth.token_secret_key or auth.token_private_key".into(),
            ));
        }
        let max = self.config.service_account_token_max_secs;
        if expires_in_secs == 0 || expires_in_secs > max {
            return Err(AuthError::BadRequest(format!(
                "expiresInSeconds {expires_in_secs} must be between 1 and {max}"
            )));
        }
        if self.authorizer.store().get_service_account(tenant, name).await?.is_none() {
            return Err(account_not_found(tenant, name));
        }
        let now = now_millis();
        let expires_at = now + i64::try_from(expires_in_secs).unwrap_or(i64::MAX / 2) * 1000;
        let id = new_token_id();
        let role = role_of(tenant, name);
        let mut claims = Map::new();
        claims.insert("jti".into(), Value::String(id.clone()));
        claims.insert("iat".into(), Value::from(now / 1000));
        claims.insert("exp".into(), Value::from(expires_at / 1000));
        claims.insert("iss".into(), Value::String("magnetar".into()));
        let token = authenticator.sign(&role, claims)?;
        let record = ServiceAccountToken {
            id: id.clone(),
            tenant: tenant.clone(),
            account: name.to_string(),
            created_at: now,
            expires_at: Some(expires_at),
        };
        self.authorizer.store().create_service_account_token(&record).await?;
        Ok(MintedToken { id, role, token, expires_at })
    }

    pub async fn list_service_account_tokens(
        &self,
        tenant: &TenantName,
        name: &str,
    ) -> Result<Vec<TokenView>, AuthError> {
        let tokens = self.authorizer.store().list_service_account_tokens(tenant, name).await?;
        Ok(tokens.into_iter().map(TokenView::from).collect())
    }

    pub async fn revoke_service_account_token(
        &self,
        tenant: &TenantName,
        name: &str,
        id: &str,
    ) -> Result<(), AuthError> {
        let tokens = self.authorizer.store().list_service_account_tokens(tenant, name).await?;
        let expires = tokens.iter().find(|t| t.id == id).and_then(|t| t.expires_at);
        self.authorizer.store().revoke_service_account_token(tenant, name, id).await?;
        if let Some(a) = self.authenticator() {
            a.revoke_local(id, expires.map(|ms| ms / 1000));
        }
        Ok(())
    }
}
