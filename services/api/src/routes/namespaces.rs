//! `/admin/v2/namespaces`: namespaces and their policies.

use crate::AppState;
use crate::error::{
    ApiResult, BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, PreconditionFailed, Unauthorized,
    Unavailable,
};
use crate::extract::{
    AuthContext, ForceQuery, JsonBody, NamespaceParam, NonNegativeSeconds, OptionalJsonBody, Query, TenantParam,
};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use magnetar_auth::Operation;
use magnetar_broker::BrokerError;
use magnetar_core::{Policies, RetentionPolicies};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_namespaces))
        .routes(routes!(get_policies, create_namespace, delete_namespace))
        .routes(routes!(list_namespace_topics))
        .routes(routes!(get_retention, set_retention, remove_retention))
        .routes(routes!(get_message_ttl, set_message_ttl, remove_message_ttl))
}

/// List the namespaces of a tenant
///
/// All of them for a tenant admin; for other roles, those they hold grants in (403 when none).
#[utoipa::path(get, path = "/admin/v2/namespaces/{tenant}", tag = "namespaces", params(TenantParam),
    responses((status = 200, description = "namespace names (`tenant/namespace`)", body = [String]),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn list_namespaces(
    State(s): State<AppState>,
    auth: AuthContext,
    TenantParam(tenant): TenantParam,
) -> ApiResult<Json<Vec<String>>> {
    let list = auth.visible_namespaces(&tenant, s.broker.admin().list_namespaces(&tenant).await).await?;
    Ok(Json(list.into_iter().map(|n| n.to_string()).collect()))
}

/// Create a namespace
///
/// With optional initial `Policies`.
#[utoipa::path(put, path = "/admin/v2/namespaces/{tenant}/{namespace}", tag = "namespaces", params(NamespaceParam),
    request_body = Option<Policies>,
    responses((status = 204, description = "created"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn create_namespace(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    OptionalJsonBody(policies): OptionalJsonBody<Policies>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::CreateNamespace, &name).await?;
    s.broker.admin().create_namespace(&name, policies).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Get the policies of a namespace
#[utoipa::path(get, path = "/admin/v2/namespaces/{tenant}/{namespace}", tag = "namespaces", params(NamespaceParam),
    responses((status = 200, description = "the namespace's policies", body = Policies),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn get_policies(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<Json<Policies>> {
    auth.check(Operation::GetNamespacePolicies, &name).await?;
    Ok(Json(s.broker.admin().get_policies(&name).await?))
}

/// Delete a namespace
///
/// 409 while it has topics, unless `force`.
#[utoipa::path(delete, path = "/admin/v2/namespaces/{tenant}/{namespace}", tag = "namespaces",
    params(NamespaceParam, ForceQuery),
    responses((status = 204, description = "deleted"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unavailable))]
async fn delete_namespace(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    Query(q): Query<ForceQuery>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::DeleteNamespace, &name).await?;
    s.broker.admin().delete_namespace(&name, q.force).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List all topics of a namespace
///
/// Full names, partitions included; only those the caller may see (403 when none).
#[utoipa::path(get, path = "/admin/v2/namespaces/{tenant}/{namespace}/topics", tag = "namespaces",
    params(NamespaceParam),
    responses((status = 200, description = "topic names (`persistent://t/ns/x`)", body = [String]),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn list_namespace_topics(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<Json<Vec<String>>> {
    Ok(Json(auth.visible_topics(&name, s.broker.topics().list(&name).await).await?))
}

/// Get the retention of a namespace
///
/// `null` when none is set, as Pulsar answers.
#[utoipa::path(get, path = "/admin/v2/namespaces/{tenant}/{namespace}/retention", tag = "namespaces",
    params(NamespaceParam),
    responses((status = 200, description = "the retention, or null", body = Option<RetentionPolicies>),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn get_retention(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<Json<Option<RetentionPolicies>>> {
    auth.check(Operation::GetNamespacePolicies, &name).await?;
    Ok(Json(s.broker.admin().get_policies(&name).await?.retention_policies))
}

/// Set the retention of a namespace
#[utoipa::path(post, path = "/admin/v2/namespaces/{tenant}/{namespace}/retention", tag = "namespaces",
    params(NamespaceParam), request_body = RetentionPolicies,
    responses((status = 204, description = "set"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn set_retention(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    JsonBody(r): JsonBody<RetentionPolicies>,
) -> ApiResult<StatusCode> {
    super::change_namespace_policies(&s, &auth, &name, |p| {
        p.retention_policies = Some(r);
        Ok(())
    })
    .await
}

/// Remove the retention of a namespace
#[utoipa::path(delete, path = "/admin/v2/namespaces/{tenant}/{namespace}/retention", tag = "namespaces",
    params(NamespaceParam),
    responses((status = 204, description = "removed"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unavailable))]
async fn remove_retention(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<StatusCode> {
    super::change_namespace_policies(&s, &auth, &name, |p| {
        p.retention_policies = None;
        Ok(())
    })
    .await
}

/// Get the message TTL of a namespace
///
/// Bare seconds, or `null` when none is set.
#[utoipa::path(get, path = "/admin/v2/namespaces/{tenant}/{namespace}/messageTTL", tag = "namespaces",
    params(NamespaceParam),
    responses((status = 200, description = "seconds, or null", body = Option<i32>),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn get_message_ttl(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<Json<Option<i32>>> {
    auth.check(Operation::GetNamespacePolicies, &name).await?;
    Ok(Json(s.broker.admin().get_policies(&name).await?.message_ttl_in_seconds))
}

/// Set the message TTL of a namespace
///
/// Bare seconds, 0 or more (412 otherwise): unacknowledged messages older than this expire.
#[utoipa::path(post, path = "/admin/v2/namespaces/{tenant}/{namespace}/messageTTL", tag = "namespaces",
    params(NamespaceParam), request_body(content = NonNegativeSeconds, description = "seconds", example = 3600),
    responses((status = 204, description = "set"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn set_message_ttl(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    JsonBody(NonNegativeSeconds(ttl)): JsonBody<NonNegativeSeconds>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::SetNamespacePolicy, &name).await?;
    let ttl =
        i32::try_from(ttl).map_err(|_| BrokerError::InvalidPolicy(format!("messageTTL {ttl} is out of range")))?;
    if ttl < 0 {
        return Err(BrokerError::InvalidPolicy(format!("messageTTL {ttl} must be 0 or positive")).into());
    }
    s.broker
        .admin()
        .update_policies(&name, |p| {
            p.message_ttl_in_seconds = Some(ttl);
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove the message TTL of a namespace
#[utoipa::path(delete, path = "/admin/v2/namespaces/{tenant}/{namespace}/messageTTL", tag = "namespaces",
    params(NamespaceParam),
    responses((status = 204, description = "removed"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unavailable))]
async fn remove_message_ttl(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<StatusCode> {
    super::change_namespace_policies(&s, &auth, &name, |p| {
        p.message_ttl_in_seconds = None;
        Ok(())
    })
    .await
}
