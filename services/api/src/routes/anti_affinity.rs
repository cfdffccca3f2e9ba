//! Namespace anti-affinity groups (Pulsar's `/admin/v2/namespaces/{t}/{ns}/antiAffinity` and the
//! listing of a group's namespaces): namespaces of one group are meant to be owned by different
//! brokers. Stored; the broker tier's placement will honour them (one broker owns every
//! namespace today).

use crate::AppState;
use crate::error::{
    ApiError, ApiResult, BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, PreconditionFailed, Unauthorized,
    Unavailable,
};
use crate::extract::{AuthContext, NamespaceParam, Path, Query};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use magnetar_auth::Operation;
use magnetar_broker::BrokerError;
use magnetar_core::TenantName;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_anti_affinity_group, set_anti_affinity_group, remove_anti_affinity_group))
        .routes(routes!(list_anti_affinity_namespaces))
}

/// Get the anti-affinity group of a namespace
///
/// `null` when it is in none.
#[utoipa::path(get, path = "/admin/v2/namespaces/{tenant}/{namespace}/antiAffinity", tag = "namespaces",
    params(NamespaceParam),
    responses((status = 200, description = "the group, or null", body = Option<String>),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn get_anti_affinity_group(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<Json<Option<String>>> {
    auth.check(Operation::GetNamespacePolicies, &name).await?;
    Ok(Json(s.broker.admin().get_policies(&name).await?.namespace_anti_affinity_group))
}

/// The group name of a POST body: a JSON string, or the bare text Pulsar's admin client sends.
fn parse_group(body: &str) -> Result<String, ApiError> {
    let group = serde_json::from_str::<String>(body).unwrap_or_else(|_| body.trim().to_string());
    if group.is_empty() {
        return Err(BrokerError::InvalidPolicy("anti-affinity group must not be empty".into()).into());
    }
    Ok(group)
}

/// Set the anti-affinity group of a namespace
///
/// The group's name, as a JSON string or bare text. Stored: the broker tier's placement will
/// keep namespaces of one group on different brokers.
#[utoipa::path(post, path = "/admin/v2/namespaces/{tenant}/{namespace}/antiAffinity", tag = "namespaces",
    params(NamespaceParam), request_body(content = String, description = "the group's name"),
    responses((status = 204, description = "set"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn set_anti_affinity_group(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    body: String,
) -> ApiResult<StatusCode> {
    auth.check(Operation::SetNamespacePolicy, &name).await?;
    let group = parse_group(&body)?;
    s.broker
        .admin()
        .update_policies(&name, |p| {
            p.namespace_anti_affinity_group = Some(group.clone());
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove the anti-affinity group of a namespace
#[utoipa::path(delete, path = "/admin/v2/namespaces/{tenant}/{namespace}/antiAffinity", tag = "namespaces",
    params(NamespaceParam),
    responses((status = 204, description = "removed"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unavailable))]
async fn remove_anti_affinity_group(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<StatusCode> {
    super::change_namespace_policies(&s, &auth, &name, |p| {
        p.namespace_anti_affinity_group = None;
        Ok(())
    })
    .await
}

/// Pulsar names the first segment `{cluster}`; the router needs the name every
/// `/admin/v2/namespaces/{tenant}/...` path gives that segment.
#[derive(Deserialize)]
struct GroupPath {
    #[serde(rename = "tenant")]
    cluster: String,
    group: String,
}

/// `?tenant=`: the tenant whose namespaces are listed (required, as in Pulsar).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct TenantQuery {
    tenant: Option<String>,
}

/// List the namespaces of a tenant in an anti-affinity group
///
/// The first segment is Pulsar's `{cluster}`: it must be this broker's cluster (412 otherwise);
/// the `tenant` query parameter is required (412 without).
#[utoipa::path(get, path = "/admin/v2/namespaces/{tenant}/antiAffinity/{group}", tag = "namespaces",
    params(("tenant" = String, Path, description = "Pulsar's `{cluster}`: this broker's cluster"),
        ("group" = String, Path, description = "the anti-affinity group"), TenantQuery),
    responses((status = 200, description = "namespace names (`tenant/namespace`)", body = [String]),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn list_anti_affinity_namespaces(
    State(s): State<AppState>,
    auth: AuthContext,
    Path(p): Path<GroupPath>,
    Query(q): Query<TenantQuery>,
) -> ApiResult<Json<Vec<String>>> {
    if p.cluster != s.broker.cluster() {
        return Err(BrokerError::InvalidPolicy(format!("cluster {} is not this broker's cluster", p.cluster)).into());
    }
    let tenant = q
        .tenant
        .filter(|t| !t.is_empty())
        .ok_or_else(|| BrokerError::InvalidPolicy("the tenant query parameter is required".into()))?;
    let tenant = TenantName::new(tenant).map_err(|e| ApiError::bad_request(e.to_string()))?;
    auth.check(Operation::GetTenant, &tenant).await?;
    let members = s.broker.admin().anti_affinity_namespaces(&tenant, &p.group).await?;
    Ok(Json(members.iter().map(ToString::to_string).collect()))
}
