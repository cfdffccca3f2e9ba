//! Pulsar's permission endpoints: namespace grants (`namespace_auth`), topic grants
//! (`destination_auth`, keyed by the base topic name), subscription role lists
//! (`subscription_auth_roles`) and the namespace `subscriptionAuthMode`. Grants are stored in
//! the namespace policies; only a tenant admin (or a superuser) may read or change them.

use crate::AppState;
use crate::error::{
    ApiError, ApiResult, BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, PreconditionFailed, Unauthorized,
    Unavailable,
};
use crate::extract::{AuthContext, JsonBody, NamespaceParam, Path, SubscriptionNameParam, TopicParam};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use magnetar_auth::authorize::topic_grant_key;
use magnetar_auth::{Action, Operation};
use magnetar_broker::{BrokerError, Entity};
use magnetar_core::NamespaceName;
use std::collections::BTreeMap;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    // Static `subscription` wins over `{role}` (as in Pulsar, a role named `subscription` cannot
    // be granted on a namespace).
    OpenApiRouter::new()
        .routes(routes!(get_namespace_permissions))
        .routes(routes!(grant_namespace_permission, revoke_namespace_permission))
        .routes(routes!(get_subscription_permissions))
        .routes(routes!(grant_subscription_permission))
        .routes(routes!(revoke_subscription_permission))
        .routes(routes!(set_subscription_auth_mode))
        .routes(routes!(get_topic_permissions))
        .routes(routes!(grant_topic_permission, revoke_topic_permission))
}

type Grants = BTreeMap<String, Vec<String>>;

/// A role name, not blank (400 otherwise).
#[derive(utoipa::ToSchema)]
#[schema(pattern = "\\S")]
#[allow(dead_code)]
struct RoleName(String);

/// `{role}` of the path (the namespace or topic comes from its own extractor).
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
struct RolePath {
    /// Role name (not blank).
    #[param(min_length = 1, pattern = "\\S")]
    role: String,
}

/// Applies a change to a namespace's policies (grants live there). The broker invalidates the
/// shared policy cache once the change has committed, so it applies to the next request.
async fn change_auth<F>(s: &AppState, namespace: &NamespaceName, change: F) -> ApiResult<StatusCode>
where
    F: FnMut(&mut magnetar_core::Policies) -> magnetar_broker::Result<()>,
{
    s.broker.admin().update_policies(namespace, change).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn role(r: &str) -> Result<&str, ApiError> {
    if r.trim().is_empty() {
        return Err(ApiError::bad_request("role must not be empty"));
    }
    Ok(r)
}

/// Get the grants of a namespace
///
/// `{"role": ["produce", "consume"]}`.
#[utoipa::path(get, path = "/admin/v2/namespaces/{tenant}/{namespace}/permissions", tag = "namespaces", params(NamespaceParam),
    responses((status = 200, description = "actions by role", body = BTreeMap<String, Vec<String>>), BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn get_namespace_permissions(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<Json<Grants>> {
    auth.check(Operation::GetPermissions, &name).await?;
    Ok(Json(s.broker.admin().get_policies(&name).await?.auth_policies.namespace_auth))
}

/// Grant a role actions on a namespace
///
/// Body `["produce","consume"]` (also `functions`, `sources`, `sinks`, `packages`); replaces the
/// role's actions on the namespace.
#[utoipa::path(post, path = "/admin/v2/namespaces/{tenant}/{namespace}/permissions/{role}", tag = "namespaces",
    params(NamespaceParam, RolePath), request_body = Vec<Action>,
    responses((status = 204, description = "granted"), BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn grant_namespace_permission(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    Path(p): Path<RolePath>,
    JsonBody(actions): JsonBody<Vec<Action>>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::GrantPermission, &name).await?;
    let actions = Action::names(actions);
    let r = role(&p.role)?.to_string();
    change_auth(&s, &name, |pol| {
        pol.auth_policies.namespace_auth.insert(r.clone(), actions.clone());
        Ok(())
    })
    .await
}

/// Revoke a role's grant on a namespace
#[utoipa::path(delete, path = "/admin/v2/namespaces/{tenant}/{namespace}/permissions/{role}", tag = "namespaces",
    params(NamespaceParam, RolePath),
    responses((status = 204, description = "revoked"), BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unavailable))]
async fn revoke_namespace_permission(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    Path(p): Path<RolePath>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::RevokePermission, &name).await?;
    change_auth(&s, &name, |pol| {
        pol.auth_policies.namespace_auth.remove(&p.role);
        Ok(())
    })
    .await
}

/// Get the subscription role lists of a namespace
///
/// `{"sub": ["role1", "role2"]}`: the subscriptions of the namespace that only the listed roles
/// may consume from (tenant admins and superusers always may).
#[utoipa::path(get, path = "/admin/v2/namespaces/{tenant}/{namespace}/permissions/subscription", tag = "namespaces", params(NamespaceParam),
    responses((status = 200, description = "roles by subscription", body = BTreeMap<String, Vec<String>>), BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn get_subscription_permissions(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<Json<Grants>> {
    auth.check(Operation::GetPermissions, &name).await?;
    Ok(Json(s.broker.admin().get_policies(&name).await?.auth_policies.subscription_auth_roles))
}

/// Set the roles that may consume a subscription
///
/// Body `["role1","role2"]`: replaces the roles allowed to consume from subscription `sub` on
/// every topic of the namespace (they still need a `consume` grant). An empty list lifts the
/// restriction.
#[utoipa::path(post, path = "/admin/v2/namespaces/{tenant}/{namespace}/permissions/subscription/{subscription}", tag = "namespaces",
    params(NamespaceParam, SubscriptionNameParam),
    request_body(content = Vec<RoleName>, description = "role names", example = json!(["app-a"])),
    responses((status = 204, description = "set"), BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn grant_subscription_permission(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    SubscriptionNameParam(sub): SubscriptionNameParam,
    JsonBody(roles): JsonBody<Vec<String>>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::GrantPermission, &name).await?;
    let mut roles = roles.iter().map(|r| role(r).map(str::to_string)).collect::<Result<Vec<_>, _>>()?;
    roles.sort();
    roles.dedup();
    change_auth(&s, &name, |pol| {
        let lists = &mut pol.auth_policies.subscription_auth_roles;
        if roles.is_empty() {
            lists.remove(sub.as_str());
        } else {
            lists.insert(sub.to_string(), roles.clone());
        }
        Ok(())
    })
    .await
}

/// Remove a role from a subscription's role list
///
/// Removes `role` from the subscription's role list (a role not in it is a no-op); when the
/// last role goes, the subscription is open to every role with `consume` again. 404 when the
/// subscription has no role list.
#[utoipa::path(delete, path = "/admin/v2/namespaces/{tenant}/{namespace}/permissions/{subscription}/{role}", tag = "namespaces",
    params(NamespaceParam, SubscriptionNameParam, RolePath),
    responses((status = 204, description = "removed"), BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unavailable))]
async fn revoke_subscription_permission(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    SubscriptionNameParam(sub): SubscriptionNameParam,
    Path(p): Path<RolePath>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::RevokePermission, &name).await?;
    change_auth(&s, &name, |pol| {
        let lists = &mut pol.auth_policies.subscription_auth_roles;
        let Some(roles) = lists.get_mut(sub.as_str()) else {
            return Err(BrokerError::NotFound(Entity::SubscriptionRoles {
                namespace: name.clone(),
                subscription: sub.clone(),
            }));
        };
        roles.retain(|r| r != &p.role);
        if roles.is_empty() {
            lists.remove(sub.as_str());
        }
        Ok(())
    })
    .await
}

/// Pulsar's `SubscriptionAuthMode` (lowercase accepted too).
#[derive(Debug, Clone, Copy, serde::Deserialize, utoipa::ToSchema)]
pub enum SubscriptionAuthMode {
    /// Any subscription name.
    #[serde(alias = "none")]
    None,
    /// A role may only use subscriptions whose name starts with the role.
    #[serde(alias = "prefix")]
    Prefix,
}

/// Set the subscription auth mode of a namespace
///
/// Bare `"None"` or `"Prefix"` (with `Prefix`, a role may only use subscriptions whose name
/// starts with the role).
#[utoipa::path(post, path = "/admin/v2/namespaces/{tenant}/{namespace}/subscriptionAuthMode", tag = "namespaces", params(NamespaceParam),
    request_body(content = SubscriptionAuthMode, description = "bare `\"None\"` or `\"Prefix\"`"),
    responses((status = 204, description = "set"), BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn set_subscription_auth_mode(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    JsonBody(mode): JsonBody<SubscriptionAuthMode>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::SetSubscriptionAuthMode, &name).await?;
    let mode = match mode {
        SubscriptionAuthMode::None => "None",
        SubscriptionAuthMode::Prefix => "Prefix",
    };
    change_auth(&s, &name, |pol| {
        pol.subscription_auth_mode = mode.to_string();
        Ok(())
    })
    .await
}

/// Get the grants of a topic
///
/// The topic's effective grants: namespace grants merged with the topic's own.
#[utoipa::path(get, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/permissions", tag = "persistent topic", params(TopicParam),
    responses((status = 200, description = "actions by role", body = BTreeMap<String, Vec<String>>), BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn get_topic_permissions(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
) -> ApiResult<Json<Grants>> {
    auth.check(Operation::GetPermissions, &topic).await?;
    let policies = s.broker.admin().get_policies(topic.namespace()).await?.auth_policies;
    let mut grants = policies.namespace_auth;
    for (r, actions) in policies.destination_auth.get(&topic_grant_key(&topic)).cloned().unwrap_or_default() {
        let entry = grants.entry(r).or_default();
        entry.extend(actions);
        entry.sort();
        entry.dedup();
    }
    Ok(Json(grants))
}

/// Grant a role actions on a topic
///
/// Stored in the namespace's `destination_auth`, keyed by the base topic name.
#[utoipa::path(post, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/permissions/{role}", tag = "persistent topic",
    params(TopicParam, RolePath), request_body = Vec<Action>,
    responses((status = 204, description = "granted"), BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn grant_topic_permission(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
    Path(p): Path<RolePath>,
    JsonBody(actions): JsonBody<Vec<Action>>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::GrantPermission, &topic).await?;
    let actions = Action::names(actions);
    let (key, r) = (topic_grant_key(&topic), role(&p.role)?.to_string());
    change_auth(&s, topic.namespace(), |pol| {
        pol.auth_policies.destination_auth.entry(key.clone()).or_default().insert(r.clone(), actions.clone());
        Ok(())
    })
    .await
}

/// Revoke a role's grant on a topic
///
/// Pulsar answers 412 when the role has no grant on the topic itself.
#[utoipa::path(delete, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/permissions/{role}", tag = "persistent topic",
    params(TopicParam, RolePath),
    responses((status = 204, description = "revoked"), BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unavailable))]
async fn revoke_topic_permission(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
    Path(p): Path<RolePath>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::RevokePermission, &topic).await?;
    let key = topic_grant_key(&topic);
    change_auth(&s, topic.namespace(), |pol| {
        let grants = &mut pol.auth_policies.destination_auth;
        let removed = grants.get_mut(&key).and_then(|roles| roles.remove(&p.role));
        if removed.is_none() {
            return Err(BrokerError::InvalidPolicy(format!(
                "permissions are not set at the topic level for role {} on {key}",
                p.role
            )));
        }
        if grants.get(&key).is_some_and(BTreeMap::is_empty) {
            grants.remove(&key);
        }
        Ok(())
    })
    .await
}
