//! Pulsar's permission endpoints: namespace grants (`namespace_auth`), topic grants
//! (`destination_auth`, keyed by the base topic name), subscription role lists
//! (`subscription_auth_roles`) and the namespace `subscriptionAuthMode`. Grants are stored in
//! the namespace policies; only a tenant admin (or a superuser) may read or change them.

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AuthContext, JsonBody, NamespaceParam, TopicParam};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use magnetar_auth::authorize::topic_grant_key;
use magnetar_auth::{Action, Operation};
use magnetar_broker::{BrokerError, Entity};
use magnetar_core::{NamespaceName, SubscriptionName};
use std::collections::BTreeMap;

pub fn router() -> Router<AppState> {
    let n = "/admin/v2/namespaces/{tenant}/{namespace}";
    let t = "/admin/v2/persistent/{tenant}/{namespace}/{topic}";
    Router::new()
        .route(&format!("{n}/permissions"), get(get_namespace_permissions))
        .route(
            &format!("{n}/permissions/{{role}}"),
            post(grant_namespace_permission).delete(revoke_namespace_permission),
        )
        // Static `subscription` wins over `{role}` (as in Pulsar, a role named `subscription`
        // cannot be granted on a namespace).
        .route(&format!("{n}/permissions/subscription"), get(get_subscription_permissions))
        .route(&format!("{n}/permissions/subscription/{{subscription}}"), post(grant_subscription_permission))
        .route(&format!("{n}/permissions/{{subscription}}/{{role}}"), delete(revoke_subscription_permission))
        .route(&format!("{n}/subscriptionAuthMode"), post(set_subscription_auth_mode))
        .route(&format!("{t}/permissions"), get(get_topic_permissions))
        .route(&format!("{t}/permissions/{{role}}"), post(grant_topic_permission).delete(revoke_topic_permission))
}

type Grants = BTreeMap<String, Vec<String>>;

/// `{role}` of the path (the namespace or topic comes from its own extractor).
#[derive(serde::Deserialize)]
struct RolePath {
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

/// `{"role": ["produce", "consume"]}`.
async fn get_namespace_permissions(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<Json<Grants>> {
    auth.check(Operation::GetPermissions, &name).await?;
    Ok(Json(s.broker.admin().get_policies(&name).await?.auth_policies.namespace_auth))
}

/// Body `["produce","consume"]` (also `functions`, `sources`, `sinks`, `packages`); replaces the
/// role's actions on the namespace.
async fn grant_namespace_permission(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    Path(p): Path<RolePath>,
    JsonBody(actions): JsonBody<Vec<String>>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::GrantPermission, &name).await?;
    let actions = Action::parse_list(&actions)?;
    let r = role(&p.role)?.to_string();
    change_auth(&s, &name, |pol| {
        pol.auth_policies.namespace_auth.insert(r.clone(), actions.clone());
        Ok(())
    })
    .await
}

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

#[derive(serde::Deserialize)]
struct SubscriptionPath {
    subscription: String,
}

#[derive(serde::Deserialize)]
struct SubscriptionRolePath {
    subscription: String,
    role: String,
}

fn subscription(s: &str) -> Result<SubscriptionName, ApiError> {
    Ok(SubscriptionName::new(s.to_string())?)
}

/// `{"sub": ["role1", "role2"]}`: the subscriptions of the namespace that only the listed roles
/// may consume from (tenant admins and superusers always may).
async fn get_subscription_permissions(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<Json<Grants>> {
    auth.check(Operation::GetPermissions, &name).await?;
    Ok(Json(s.broker.admin().get_policies(&name).await?.auth_policies.subscription_auth_roles))
}

/// Body `["role1","role2"]`: replaces the roles allowed to consume from subscription `sub` on
/// every topic of the namespace (they still need a `consume` grant). An empty list lifts the
/// restriction.
async fn grant_subscription_permission(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    Path(p): Path<SubscriptionPath>,
    JsonBody(roles): JsonBody<Vec<String>>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::GrantPermission, &name).await?;
    let sub = subscription(&p.subscription)?;
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

/// Removes `role` from the subscription's role list (a role not in it is a no-op); when the
/// last role goes, the subscription is open to every role with `consume` again. 404 when the
/// subscription has no role list.
async fn revoke_subscription_permission(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    Path(p): Path<SubscriptionRolePath>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::RevokePermission, &name).await?;
    let sub = subscription(&p.subscription)?;
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

/// Bare `"None"` or `"Prefix"` (with `Prefix`, a role may only use subscriptions whose name
/// starts with the role).
async fn set_subscription_auth_mode(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    JsonBody(mode): JsonBody<String>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::SetSubscriptionAuthMode, &name).await?;
    let mode = match mode.as_str() {
        "None" | "none" => "None",
        "Prefix" | "prefix" => "Prefix",
        other => return Err(ApiError::bad_request(format!("invalid subscriptionAuthMode `{other}` (None or Prefix)"))),
    };
    change_auth(&s, &name, |pol| {
        pol.subscription_auth_mode = mode.to_string();
        Ok(())
    })
    .await
}

/// The topic's effective grants: namespace grants merged with the topic's own.
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

async fn grant_topic_permission(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
    Path(p): Path<RolePath>,
    JsonBody(actions): JsonBody<Vec<String>>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::GrantPermission, &topic).await?;
    let actions = Action::parse_list(&actions)?;
    let (key, r) = (topic_grant_key(&topic), role(&p.role)?.to_string());
    change_auth(&s, topic.namespace(), |pol| {
        pol.auth_policies.destination_auth.entry(key.clone()).or_default().insert(r.clone(), actions.clone());
        Ok(())
    })
    .await
}

/// Pulsar answers 412 when the role has no grant on the topic itself.
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
