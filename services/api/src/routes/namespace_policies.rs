//! `/admin/v2/namespaces/{t}/{ns}/...`: the namespace policies of topic and subscription life —
//! inactive topics, subscription expiration, automatic subscription creation, enabled
//! subscription types, delayed delivery, encryption — and the namespace's properties, the GET
//! of its subscription auth mode and its replication clusters (stored; geo-replication does not
//! exist yet, and the answer says so).

use crate::AppState;
use crate::error::{
    ApiResult, BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, PreconditionFailed, Unauthorized,
    Unavailable,
};
use crate::extract::{AuthContext, JsonBody, NamespaceParam, Path};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use magnetar_auth::Operation;
use magnetar_broker::{BrokerError, EffectivePolicies, Entity};
use magnetar_core::{
    AutoSubscriptionCreationOverride, DelayedDeliveryPolicies, InactiveTopicPolicies, SubscriptionTypeName,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_inactive_topic_policies, set_inactive_topic_policies, remove_inactive_topic_policies))
        .routes(routes!(get_subscription_expiration, set_subscription_expiration, remove_subscription_expiration))
        .routes(routes!(
            get_auto_subscription_creation,
            set_auto_subscription_creation,
            remove_auto_subscription_creation
        ))
        .routes(routes!(get_subscription_types, set_subscription_types, remove_subscription_types))
        .routes(routes!(get_delayed_delivery, set_delayed_delivery, remove_delayed_delivery))
        .routes(routes!(get_encryption_required, set_encryption_required))
        .routes(routes!(get_properties, set_properties, clear_properties))
        .routes(routes!(get_property, remove_property))
        .routes(routes!(set_property))
        .routes(routes!(get_subscription_auth_mode))
        .routes(routes!(get_replication_clusters, set_replication_clusters))
        .routes(routes!(get_namespace_applied_policies))
}

/// Every policy in force on a namespace's topics (Magnetar)
///
/// What a topic of the namespace that sets nothing itself gets: each value with the level it
/// comes from (`namespace` or `broker`).
#[utoipa::path(get, path = "/admin/v2/namespaces/{tenant}/{namespace}/appliedPolicies", tag = "namespaces",
    params(NamespaceParam),
    responses((status = 200, description = "values in force and their levels", body = EffectivePolicies),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn get_namespace_applied_policies(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<Json<EffectivePolicies>> {
    auth.check(Operation::GetNamespacePolicies, &name).await?;
    Ok(Json(s.broker.topic_policies().namespace_effective(&name).await?))
}

namespace_policy!(
    get_inactive_topic_policies,
    set_inactive_topic_policies,
    remove_inactive_topic_policies,
    "/admin/v2/namespaces/{tenant}/{namespace}/inactiveTopicPolicies",
    InactiveTopicPolicies,
    get = "Get the inactive topic policies of a namespace",
    set = "Set the inactive topic policies of a namespace (with deleteWhileInactive, topics without producers, consumers or publishes for maxInactiveDurationSeconds are deleted)",
    remove = "Remove the inactive topic policies of a namespace",
    read = |p, _c| p.inactive_topic_policies,
    write = |p, _c, v| p.inactive_topic_policies = Some(v),
    clear = |p, _c| p.inactive_topic_policies = None,
);

namespace_policy!(
    get_subscription_expiration,
    set_subscription_expiration,
    remove_subscription_expiration,
    "/admin/v2/namespaces/{tenant}/{namespace}/subscriptionExpirationTime",
    i32,
    get = "Get the subscription expiration time of a namespace, in minutes",
    set = "Set the subscription expiration time of a namespace, in minutes (0: never; subscriptions without consumers unused that long are deleted)",
    remove = "Remove the subscription expiration time of a namespace",
    read = |p, _c| p.subscription_expiration_time_minutes,
    write = |p, _c, v| p.subscription_expiration_time_minutes = Some(v),
    clear = |p, _c| p.subscription_expiration_time_minutes = None,
);

namespace_policy!(
    get_auto_subscription_creation,
    set_auto_subscription_creation,
    remove_auto_subscription_creation,
    "/admin/v2/namespaces/{tenant}/{namespace}/autoSubscriptionCreation",
    AutoSubscriptionCreationOverride,
    get = "Get the automatic subscription creation override of a namespace",
    set = "Set the automatic subscription creation override of a namespace (off: subscribing to or pulling from a missing subscription answers 404)",
    remove = "Remove the automatic subscription creation override of a namespace",
    read = |p, _c| p.auto_subscription_creation_override,
    write = |p, _c, v| p.auto_subscription_creation_override = Some(v),
    clear = |p, _c| p.auto_subscription_creation_override = None,
);

namespace_policy!(
    get_subscription_types,
    set_subscription_types,
    remove_subscription_types,
    "/admin/v2/namespaces/{tenant}/{namespace}/subscriptionTypesEnabled",
    Vec<SubscriptionTypeName>,
    get = "Get the subscription types enabled in a namespace (empty: the broker's setting)",
    set = "Set the subscription types enabled in a namespace (a consumer of another type is refused with 412; HTTP pull is Shared)",
    remove = "Remove the subscription types enabled in a namespace",
    read = |p, _c| Some(p.subscription_types_enabled.clone()),
    write = |p, _c, v| p.subscription_types_enabled = dedup(v),
    clear = |p, _c| p.subscription_types_enabled.clear(),
);

namespace_policy!(
    get_delayed_delivery,
    set_delayed_delivery,
    remove_delayed_delivery,
    "/admin/v2/namespaces/{tenant}/{namespace}/delayedDelivery",
    DelayedDeliveryPolicies,
    get = "Get the delayed delivery policy of a namespace",
    set = "Set the delayed delivery policy of a namespace (inactive: deliverAt and deliverAfter are ignored and messages delivered at once)",
    remove = "Remove the delayed delivery policy of a namespace",
    read = |p, _c| p.delayed_delivery_policies,
    write = |p, _c, v| p.delayed_delivery_policies = Some(v),
    clear = |p, _c| p.delayed_delivery_policies = None,
);

fn dedup(mut v: Vec<SubscriptionTypeName>) -> Vec<SubscriptionTypeName> {
    v.sort();
    v.dedup();
    v
}

/// Get whether a namespace requires encrypted messages
#[utoipa::path(get, path = "/admin/v2/namespaces/{tenant}/{namespace}/encryptionRequired", tag = "namespaces",
    params(NamespaceParam),
    responses((status = 200, description = "bare `true` or `false`", body = bool),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn get_encryption_required(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<Json<bool>> {
    auth.check(Operation::GetNamespacePolicies, &name).await?;
    Ok(Json(s.broker.admin().get_policies(&name).await?.encryption_required))
}

/// Set whether a namespace requires encrypted messages
///
/// Bare `true` or `false`. With `true`, publishes are refused (412): no Magnetar surface carries
/// an encryption context yet.
#[utoipa::path(post, path = "/admin/v2/namespaces/{tenant}/{namespace}/encryptionRequired", tag = "namespaces",
    params(NamespaceParam), request_body(content = bool, description = "bare `true` or `false`"),
    responses((status = 204, description = "set"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn set_encryption_required(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    JsonBody(required): JsonBody<bool>,
) -> ApiResult<StatusCode> {
    super::change_namespace_policies(&s, &auth, &name, |p| {
        p.encryption_required = required;
        Ok(())
    })
    .await
}

/// Get the properties of a namespace
#[utoipa::path(get, path = "/admin/v2/namespaces/{tenant}/{namespace}/properties", tag = "namespaces",
    params(NamespaceParam),
    responses((status = 200, description = "key/value pairs", body = BTreeMap<String, String>),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn get_properties(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<Json<BTreeMap<String, String>>> {
    auth.check(Operation::GetNamespacePolicies, &name).await?;
    Ok(Json(s.broker.admin().get_policies(&name).await?.properties))
}

/// Set properties of a namespace
///
/// The pairs given are added (or replace the values of their keys); others stay.
#[utoipa::path(put, path = "/admin/v2/namespaces/{tenant}/{namespace}/properties", tag = "namespaces",
    params(NamespaceParam), request_body = BTreeMap<String, String>,
    responses((status = 204, description = "set"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn set_properties(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    JsonBody(pairs): JsonBody<BTreeMap<String, String>>,
) -> ApiResult<StatusCode> {
    super::change_namespace_policies(&s, &auth, &name, |p| {
        p.properties.extend(pairs.clone());
        Ok(())
    })
    .await
}

/// Remove every property of a namespace
#[utoipa::path(delete, path = "/admin/v2/namespaces/{tenant}/{namespace}/properties", tag = "namespaces",
    params(NamespaceParam),
    responses((status = 204, description = "removed"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unavailable))]
async fn clear_properties(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<StatusCode> {
    super::change_namespace_policies(&s, &auth, &name, |p| {
        p.properties.clear();
        Ok(())
    })
    .await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
struct KeyPath {
    /// Property key.
    key: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
struct KeyValuePath {
    /// Property key.
    key: String,
    /// Property value.
    value: String,
}

fn property_missing(name: &magnetar_core::NamespaceName, key: &str) -> BrokerError {
    BrokerError::NotFound(Entity::Message(format!("property {key} of namespace {name}")))
}

/// Get one property of a namespace
///
/// The value as text (as Pulsar answers it); 404 when the key is not set.
#[utoipa::path(get, path = "/admin/v2/namespaces/{tenant}/{namespace}/property/{key}", tag = "namespaces",
    params(NamespaceParam, KeyPath),
    responses((status = 200, description = "the value", body = String, content_type = "text/plain"),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn get_property(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    Path(k): Path<KeyPath>,
) -> ApiResult<String> {
    auth.check(Operation::GetNamespacePolicies, &name).await?;
    let mut p = s.broker.admin().get_policies(&name).await?;
    Ok(p.properties.remove(&k.key).ok_or_else(|| property_missing(&name, &k.key))?)
}

/// Set one property of a namespace
#[utoipa::path(put, path = "/admin/v2/namespaces/{tenant}/{namespace}/property/{key}/{value}", tag = "namespaces",
    params(NamespaceParam, KeyValuePath),
    responses((status = 204, description = "set"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unavailable))]
async fn set_property(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    Path(kv): Path<KeyValuePath>,
) -> ApiResult<StatusCode> {
    super::change_namespace_policies(&s, &auth, &name, |p| {
        p.properties.insert(kv.key.clone(), kv.value.clone());
        Ok(())
    })
    .await
}

/// Remove one property of a namespace
///
/// 404 when the key is not set.
#[utoipa::path(delete, path = "/admin/v2/namespaces/{tenant}/{namespace}/property/{key}", tag = "namespaces",
    params(NamespaceParam, KeyPath),
    responses((status = 204, description = "removed"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unavailable))]
async fn remove_property(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    Path(k): Path<KeyPath>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::SetNamespacePolicy, &name).await?;
    s.broker
        .admin()
        .update_policies(&name, |p| {
            p.properties.remove(&k.key).map(|_| ()).ok_or_else(|| property_missing(&name, &k.key))
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Get the subscription auth mode of a namespace
///
/// `"None"` or `"Prefix"` (a role may only use subscriptions whose name starts with the role).
#[utoipa::path(get, path = "/admin/v2/namespaces/{tenant}/{namespace}/subscriptionAuthMode", tag = "namespaces",
    params(NamespaceParam),
    responses((status = 200, description = "bare `\"None\"` or `\"Prefix\"`", body = String),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn get_subscription_auth_mode(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<Json<String>> {
    auth.check(Operation::GetNamespacePolicies, &name).await?;
    Ok(Json(s.broker.admin().get_policies(&name).await?.subscription_auth_mode))
}

/// Get the replication clusters of a namespace
#[utoipa::path(get, path = "/admin/v2/namespaces/{tenant}/{namespace}/replication", tag = "namespaces",
    params(NamespaceParam),
    responses((status = 200, description = "cluster names", body = [String]),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn get_replication_clusters(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<Json<Vec<String>>> {
    auth.check(Operation::GetNamespacePolicies, &name).await?;
    Ok(Json(s.broker.admin().get_policies(&name).await?.replication_clusters))
}

/// Set the replication clusters of a namespace
///
/// Every cluster must exist (412 otherwise). They are stored; Magnetar has no geo-replication
/// yet, so messages stay in this cluster: when the list names another cluster, the answer's
/// `Warning` header says so.
#[utoipa::path(post, path = "/admin/v2/namespaces/{tenant}/{namespace}/replication", tag = "namespaces",
    params(NamespaceParam), request_body = Vec<String>,
    responses((status = 204, description = "stored (`Warning` header when geo-replication would be needed)"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn set_replication_clusters(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    JsonBody(clusters): JsonBody<Vec<String>>,
) -> ApiResult<impl IntoResponse> {
    auth.check(Operation::SetNamespacePolicy, &name).await?;
    let list = s.broker.admin().check_replication_clusters(&clusters).await?;
    s.broker
        .admin()
        .update_policies(&name, |p| {
            p.replication_clusters = list.clone();
            Ok(())
        })
        .await?;
    let headers = replication_warning(s.broker.cluster(), &list);
    Ok((StatusCode::NO_CONTENT, headers))
}

/// Pulsar answers a `Warning` when clusters other than this one are named: they are stored, but
/// nothing is replicated to them (geo-replication does not exist yet).
pub(crate) fn replication_warning(local: &str, clusters: &[String]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Some(remote) = clusters.iter().find(|c| c.as_str() != local) {
        let warning = format!(
            "299 magnetar \"replication clusters stored; geo-replication is not available yet: messages are not replicated to {remote}\""
        );
        if let Ok(v) = HeaderValue::from_str(&warning) {
            headers.insert(axum::http::header::WARNING, v);
        }
    }
    headers
}
