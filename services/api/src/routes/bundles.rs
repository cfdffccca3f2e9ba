//! Namespace unload and Pulsar's bundle operations. Magnetar has one bundle per namespace, the
//! whole hash range `0x00000000_0xffffffff` (see `magnetar_broker::bundles`): a bundle operation
//! acts on the namespace's topics, and any other bundle range is 404.

use crate::AppState;
use crate::error::{
    ApiResult, BadRequest, Conflict, Forbidden, NotFound, PreconditionFailed, Unauthorized, Unavailable,
};
use crate::extract::{AuthContext, NamespaceParam, Path, Query, SubscriptionNameParam, TopicParam};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use magnetar_auth::Operation;
use magnetar_broker::bundles::{FULL_BUNDLE, check_bundle};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(unload_namespace))
        .routes(routes!(get_bundles))
        .routes(routes!(unload_bundle))
        .routes(routes!(clear_bundle_backlog))
        .routes(routes!(clear_bundle_subscription_backlog))
        .routes(routes!(unsubscribe_bundle))
        .routes(routes!(lookup_bundle))
        .routes(routes!(get_topic_hash_positions))
}

/// Pulsar's `TopicHashPositions`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct TopicHashPositions {
    namespace: String,
    bundle: String,
    /// Full topic name → its position in the hash range (CRC-32 of the name, as Pulsar).
    topic_hash_positions: std::collections::BTreeMap<String, u64>,
}

/// Get the hash positions of topics in a namespace bundle
///
/// `topics` (repeatable): full names or names local to the namespace; without it, every topic
/// of the namespace, partitions one by one. The position is Pulsar's: CRC-32 of the full name.
#[utoipa::path(get, path = "/admin/v2/namespaces/{tenant}/{namespace}/{bundle}/topicHashPositions",
    tag = "namespaces",
    params(NamespaceParam, ("bundle" = String, Path, description = "`0x00000000_0xffffffff`"),
        ("topics" = Option<Vec<String>>, Query, description = "topics to place (repeatable); none: all")),
    responses((status = 200, description = "each topic's hash position", body = TopicHashPositions),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn get_topic_hash_positions(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(ns): NamespaceParam,
    Path(p): Path<BundlePath>,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Json<TopicHashPositions>> {
    auth.check(Operation::GetNamespacePolicies, &ns).await?;
    let names: Vec<String> = query.into_iter().filter(|(k, _)| k == "topics").map(|(_, v)| v).collect();
    let positions = s.broker.topics().topic_hash_positions(&ns, &p.bundle, &names).await?;
    Ok(Json(TopicHashPositions { namespace: ns.to_string(), bundle: p.bundle, topic_hash_positions: positions }))
}

/// Unload a namespace
///
/// Every loaded topic of the namespace is unloaded: consumers are disconnected and reconnect,
/// topics load again on their next use. Superusers only, as Pulsar.
#[utoipa::path(put, path = "/admin/v2/namespaces/{tenant}/{namespace}/unload", tag = "namespaces",
    params(NamespaceParam),
    responses((status = 204, description = "unloaded"),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn unload_namespace(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(ns): NamespaceParam,
) -> ApiResult<StatusCode> {
    auth.check(Operation::UnloadNamespace, &ns).await?;
    s.broker.topics().unload_namespace(&ns).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Pulsar's `BundlesData`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct BundlesData {
    /// `["0x00000000", "0xffffffff"]`: one bundle.
    boundaries: Vec<&'static str>,
    num_bundles: u32,
}

/// Get the bundles of a namespace
///
/// One bundle, the whole hash range.
#[utoipa::path(get, path = "/admin/v2/namespaces/{tenant}/{namespace}/bundles", tag = "namespaces",
    params(NamespaceParam),
    responses((status = 200, description = "the bundle boundaries", body = BundlesData),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn get_bundles(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(ns): NamespaceParam,
) -> ApiResult<Json<BundlesData>> {
    auth.check(Operation::GetNamespacePolicies, &ns).await?;
    // `NotFound` for a missing namespace.
    s.broker.admin().get_policies(&ns).await?;
    Ok(Json(BundlesData { boundaries: vec!["0x00000000", "0xffffffff"], num_bundles: 1 }))
}

#[derive(Deserialize)]
struct BundlePath {
    bundle: String,
}

/// Unload a namespace bundle
///
/// The namespace's one bundle: the same as unloading the namespace.
#[utoipa::path(put, path = "/admin/v2/namespaces/{tenant}/{namespace}/{bundle}/unload", tag = "namespaces",
    params(NamespaceParam, ("bundle" = String, Path, description = "`0x00000000_0xffffffff`")),
    responses((status = 204, description = "unloaded"),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn unload_bundle(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(ns): NamespaceParam,
    Path(p): Path<BundlePath>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::UnloadNamespace, &ns).await?;
    check_bundle(&ns, &p.bundle)?;
    s.broker.topics().unload_namespace(&ns).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Clear the backlog of every subscription in a namespace bundle
#[utoipa::path(post, path = "/admin/v2/namespaces/{tenant}/{namespace}/{bundle}/clearBacklog", tag = "namespaces",
    params(NamespaceParam, ("bundle" = String, Path, description = "`0x00000000_0xffffffff`")),
    responses((status = 204, description = "cleared"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unavailable))]
async fn clear_bundle_backlog(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(ns): NamespaceParam,
    Path(p): Path<BundlePath>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::ClearBacklog, &ns).await?;
    check_bundle(&ns, &p.bundle)?;
    s.broker.subscriptions().clear_namespace_backlog(s.broker.topics(), &ns, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct BundleSubscriptionPath {
    bundle: String,
}

/// Clear one subscription's backlog in a namespace bundle
#[utoipa::path(post, path = "/admin/v2/namespaces/{tenant}/{namespace}/{bundle}/clearBacklog/{subscription}",
    tag = "namespaces",
    params(NamespaceParam, ("bundle" = String, Path, description = "`0x00000000_0xffffffff`"), SubscriptionNameParam),
    responses((status = 204, description = "cleared"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unavailable))]
async fn clear_bundle_subscription_backlog(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(ns): NamespaceParam,
    Path(p): Path<BundleSubscriptionPath>,
    SubscriptionNameParam(sub): SubscriptionNameParam,
) -> ApiResult<StatusCode> {
    auth.check(Operation::ClearBacklog, &ns).await?;
    check_bundle(&ns, &p.bundle)?;
    s.broker.subscriptions().clear_namespace_backlog(s.broker.topics(), &ns, Some(&sub)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete a subscription from every topic of a namespace bundle
#[utoipa::path(post, path = "/admin/v2/namespaces/{tenant}/{namespace}/{bundle}/unsubscribe/{subscription}",
    tag = "namespaces",
    params(NamespaceParam, ("bundle" = String, Path, description = "`0x00000000_0xffffffff`"), SubscriptionNameParam),
    responses((status = 204, description = "deleted"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unavailable))]
async fn unsubscribe_bundle(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(ns): NamespaceParam,
    Path(p): Path<BundleSubscriptionPath>,
    SubscriptionNameParam(sub): SubscriptionNameParam,
) -> ApiResult<StatusCode> {
    auth.check(Operation::ClearBacklog, &ns).await?;
    check_bundle(&ns, &p.bundle)?;
    s.broker.subscriptions().unsubscribe_namespace(s.broker.topics(), &ns, &sub).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Look up the bundle of a topic
///
/// Text: the namespace's one bundle, `0x00000000_0xffffffff`.
#[utoipa::path(get, path = "/lookup/v2/topic/persistent/{tenant}/{namespace}/{topic}/bundle", tag = "lookup",
    params(TopicParam),
    responses((status = 200, description = "the bundle range", body = String, content_type = "text/plain"),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn lookup_bundle(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(name): TopicParam,
) -> ApiResult<&'static str> {
    auth.check(Operation::LookupTopic, &name).await?;
    if s.broker.topics().record(&name.base()).await?.is_none() {
        return Err(magnetar_broker::BrokerError::NotFound(magnetar_broker::Entity::Topic(name)).into());
    }
    Ok(FULL_BUNDLE)
}
