//! `/admin/v2/namespaces`: namespaces and their policies.

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{AuthContext, ForceQuery, JsonBody, NamespaceParam, OptionalJsonBody, TenantParam};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use magnetar_auth::Operation;
use magnetar_broker::BrokerError;
use magnetar_core::{Policies, RetentionPolicies};
use serde_json::Value;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/v2/namespaces/{tenant}", get(list_namespaces))
        .route(
            "/admin/v2/namespaces/{tenant}/{namespace}",
            get(get_policies).put(create_namespace).delete(delete_namespace),
        )
        .route("/admin/v2/namespaces/{tenant}/{namespace}/topics", get(list_namespace_topics))
        .route(
            "/admin/v2/namespaces/{tenant}/{namespace}/retention",
            get(get_retention).post(set_retention).delete(remove_retention),
        )
        .route(
            "/admin/v2/namespaces/{tenant}/{namespace}/messageTTL",
            get(get_message_ttl).post(set_message_ttl).delete(remove_message_ttl),
        )
}

async fn list_namespaces(
    State(s): State<AppState>,
    auth: AuthContext,
    TenantParam(tenant): TenantParam,
) -> ApiResult<Json<Vec<String>>> {
    let list = auth.visible_namespaces(&tenant, s.broker.admin().list_namespaces(&tenant).await).await?;
    Ok(Json(list.into_iter().map(|n| n.to_string()).collect()))
}

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

async fn get_policies(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<Json<Policies>> {
    auth.check(Operation::GetNamespacePolicies, &name).await?;
    Ok(Json(s.broker.admin().get_policies(&name).await?))
}

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

async fn list_namespace_topics(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<Json<Vec<String>>> {
    Ok(Json(auth.visible_topics(&name, s.broker.topics().list(&name).await).await?))
}

async fn get_retention(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<Json<Value>> {
    auth.check(Operation::GetNamespacePolicies, &name).await?;
    let p = s.broker.admin().get_policies(&name).await?;
    // Pulsar answers an unset policy with an empty body (null).
    Ok(Json(serde_json::to_value(p.retention_policies).unwrap_or(Value::Null)))
}

async fn set_retention(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    JsonBody(r): JsonBody<RetentionPolicies>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::SetNamespacePolicy, &name).await?;
    s.broker
        .admin()
        .update_policies(&name, |p| {
            p.retention_policies = Some(r);
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_retention(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<StatusCode> {
    auth.check(Operation::SetNamespacePolicy, &name).await?;
    s.broker
        .admin()
        .update_policies(&name, |p| {
            p.retention_policies = None;
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_message_ttl(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<Json<Value>> {
    auth.check(Operation::GetNamespacePolicies, &name).await?;
    let p = s.broker.admin().get_policies(&name).await?;
    Ok(Json(p.message_ttl_in_seconds.map(Value::from).unwrap_or(Value::Null)))
}

async fn set_message_ttl(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    JsonBody(ttl): JsonBody<i64>,
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

async fn remove_message_ttl(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<StatusCode> {
    auth.check(Operation::SetNamespacePolicy, &name).await?;
    s.broker
        .admin()
        .update_policies(&name, |p| {
            p.message_ttl_in_seconds = None;
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
