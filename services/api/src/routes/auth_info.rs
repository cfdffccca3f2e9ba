//! What the caller is and may do, for tools that adapt to the caller (the web console shows only
//! the controls the API would accept): `GET /admin/v2/auth/whoami` and
//! `POST /admin/v2/auth/allowed`. Answers come from the real `Authorizer`, never from a copy of
//! its rules.
//!
//! - `whoami` → `{"authenticationEnabled","role","roles","superuser","expiresAt"}`
//! - `allowed` `{"role"?: "...", "checks": [{"operation": "CreateTopic", "resource":
//!   "persistent://t/ns/x", "subscription"?: "s"}]}` → `{"results": [true, ...]}`. Resources:
//!   `""` (the cluster), `tenant`, `tenant/namespace`, a full topic name. With `role`, the
//!   checks are evaluated for that role instead of the caller's; the caller must then be a
//!   tenant admin of every tenant the checks name (a superuser for checks on the cluster).

use crate::AppState;
use crate::error::{ApiError, ApiResult, BadRequest, Forbidden, PreconditionFailed, Unauthorized, Unavailable};
use crate::extract::{AuthContext, JsonBody};
use axum::Json;
use axum::extract::State;
use magnetar_auth::{AuthError, Operation, Principal, Resource};
use magnetar_core::{NamespaceName, TenantName, TopicName};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Most checks one `allowed` request may carry.
pub const MAX_CHECKS: usize = 200;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(whoami)).routes(routes!(allowed))
}

/// The caller as the broker sees it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct WhoAmI {
    authentication_enabled: bool,
    role: Option<String>,
    roles: Vec<String>,
    superuser: bool,
    expires_at: Option<i64>,
}

/// Who the caller is
///
/// The first role, every role of the token, whether it is a superuser and when the token expires
/// (seconds since the epoch). With authentication off: a superuser without a role.
#[utoipa::path(get, path = "/admin/v2/auth/whoami", tag = "auth",
    responses((status = 200, description = "the caller", body = WhoAmI), Unauthorized))]
async fn whoami(State(s): State<AppState>, auth: AuthContext) -> Json<WhoAmI> {
    Json(WhoAmI {
        authentication_enabled: s.auth.enabled(),
        role: auth.role.clone(),
        roles: auth.principal.roles.clone(),
        superuser: auth.superuser,
        expires_at: auth.principal.expires_at,
    })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AllowedBody {
    /// Evaluate for this role instead of the caller's (the caller must administer every tenant
    /// the checks name).
    #[serde(default)]
    role: Option<String>,
    #[schema(max_items = 200)]
    checks: Vec<Check>,
}

/// One operation on one resource: `resource` is empty (the cluster), a tenant, `tenant/namespace`
/// or a full topic name; `subscription` only with a topic.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Check {
    /// An operation name, e.g. `CreateTopic`, `Produce`, `Consume`.
    operation: String,
    #[serde(default)]
    resource: String,
    #[serde(default)]
    subscription: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct AllowedAnswer {
    /// One answer per check, in order.
    results: Vec<bool>,
}

/// A parsed resource name, owning what `Resource` borrows.
enum Named {
    Cluster,
    Tenant(TenantName),
    Namespace(NamespaceName),
    Topic(TopicName, Option<String>),
}

impl Named {
    fn parse(resource: &str, subscription: Option<&str>) -> Result<Named, ApiError> {
        let r = resource.trim();
        let named = if r.is_empty() || r == "cluster" {
            Named::Cluster
        } else if r.contains("://") {
            Named::Topic(r.parse()?, subscription.map(str::to_string))
        } else if let Some((t, n)) = r.split_once('/') {
            Named::Namespace(NamespaceName::parse_parts(t, n)?)
        } else {
            Named::Tenant(TenantName::new(r.to_string())?)
        };
        if subscription.is_some() && !matches!(named, Named::Topic(..)) {
            return Err(ApiError::bad_request(format!("a subscription needs a topic resource, got `{r}`")));
        }
        Ok(named)
    }

    fn resource(&self) -> Resource<'_> {
        match self {
            Named::Cluster => Resource::Cluster,
            Named::Tenant(t) => Resource::Tenant(t),
            Named::Namespace(n) => Resource::Namespace(n),
            Named::Topic(t, None) => Resource::Topic(t),
            Named::Topic(t, Some(s)) => Resource::Subscription(t, s),
        }
    }

    fn tenant(&self) -> Option<&TenantName> {
        match self {
            Named::Cluster => None,
            Named::Tenant(t) => Some(t),
            Named::Namespace(n) => Some(n.tenant()),
            Named::Topic(t, _) => Some(t.namespace().tenant()),
        }
    }
}

/// What a role may do
///
/// Each check is decided by the broker's authorizer (the console shows only what it accepts).
#[utoipa::path(post, path = "/admin/v2/auth/allowed", tag = "auth", request_body = AllowedBody,
    responses((status = 200, description = "one result per check", body = AllowedAnswer),
        BadRequest, Unauthorized, Forbidden, PreconditionFailed, Unavailable))]
async fn allowed(
    State(s): State<AppState>,
    auth: AuthContext,
    JsonBody(body): JsonBody<AllowedBody>,
) -> ApiResult<Json<AllowedAnswer>> {
    if body.checks.len() > MAX_CHECKS {
        return Err(ApiError::bad_request(format!(
            "{} checks in one request; at most {MAX_CHECKS}",
            body.checks.len()
        )));
    }
    let checks = body
        .checks
        .iter()
        .map(|c| Ok((c.operation.parse::<Operation>()?, Named::parse(&c.resource, c.subscription.as_deref())?)))
        .collect::<Result<Vec<_>, ApiError>>()?;
    // Nothing is enforced with authentication off.
    if !s.auth.enabled() {
        return Ok(Json(AllowedAnswer { results: vec![true; checks.len()] }));
    }
    let principal = match body.role.as_deref().map(str::trim) {
        None => auth.principal.clone(),
        Some("") => return Err(ApiError::bad_request("role must not be empty")),
        Some(role) => {
            // Asking about another role reveals its grants: only its tenants' admins may.
            for (_, named) in &checks {
                match named.tenant() {
                    Some(t) => auth.check(Operation::GetPermissions, Resource::Tenant(t)).await?,
                    None if !auth.superuser => {
                        return Err(AuthError::Forbidden(
                            "checks on the cluster for another role require super-user access".into(),
                        )
                        .into());
                    }
                    None => {}
                }
            }
            std::sync::Arc::new(Principal {
                roles: vec![role.to_string()],
                superuser: s.auth.config.superuser_roles.iter().any(|r| r == role),
                expires_at: None,
                token_id: None,
            })
        }
    };
    let mut results = Vec::with_capacity(checks.len());
    for (op, named) in &checks {
        match s.auth.check(&principal, *op, named.resource()).await {
            Ok(()) => results.push(true),
            Err(AuthError::Forbidden(_)) => results.push(false),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Json(AllowedAnswer { results }))
}
