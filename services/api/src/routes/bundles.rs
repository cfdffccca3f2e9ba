//! Namespace unload and Pulsar's bundle operations: a namespace's hash range is cut into bundles
//! (`0x00000000_0x3fffffff`, ...; see `magnetar_broker::bundles`), a bundle operation acts on the
//! topics whose partition names hash into its range, and a range that is not one of the
//! namespace's bundles is 404.

use crate::AppState;
use crate::error::{
    ApiResult, BadRequest, Conflict, Forbidden, NotFound, PreconditionFailed, Unauthorized, Unavailable,
};
use crate::extract::{AuthContext, NamespaceParam, Path, Query, SubscriptionNameParam, TopicParam};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use magnetar_auth::Operation;
use magnetar_broker::bundles::SplitAlgorithm;
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
        .routes(routes!(split_bundle))
        .routes(routes!(delete_bundle))
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
    params(NamespaceParam, ("bundle" = String, Path, description = "a bundle range, `0x00000000_0x3fffffff`"),
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
/// topics load again on their next use. In a broker tier each bundle is handed over to another
/// broker, losing nothing; the call returns once every bundle has left `releasing`. Superusers
/// only, as Pulsar.
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
    s.broker.unload_bundles(&ns, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Get the bundles of a namespace
///
/// Pulsar's `BundlesData`: the boundaries (`0x00000000` to `0xffffffff`) and the count.
#[utoipa::path(get, path = "/admin/v2/namespaces/{tenant}/{namespace}/bundles", tag = "namespaces",
    params(NamespaceParam),
    responses((status = 200, description = "the bundle boundaries", body = magnetar_core::policies::BundlesData),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn get_bundles(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(ns): NamespaceParam,
) -> ApiResult<Json<magnetar_core::policies::BundlesData>> {
    auth.check(Operation::GetNamespacePolicies, &ns).await?;
    Ok(Json(s.broker.topics().bundles(&ns).await?.to_data()))
}

#[derive(Deserialize)]
struct BundlePath {
    bundle: String,
}

/// Unload a namespace bundle
///
/// The loaded topics with a partition in the bundle are unloaded; they load again on use. In a
/// broker tier the bundle is handed over to another broker, losing nothing.
#[utoipa::path(put, path = "/admin/v2/namespaces/{tenant}/{namespace}/{bundle}/unload", tag = "namespaces",
    params(NamespaceParam, ("bundle" = String, Path, description = "a bundle range, `0x00000000_0x3fffffff`")),
    responses((status = 204, description = "unloaded"),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn unload_bundle(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(ns): NamespaceParam,
    Path(p): Path<BundlePath>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::UnloadNamespace, &ns).await?;
    let range = s.broker.topics().bundle(&ns, &p.bundle).await?;
    s.broker.unload_bundles(&ns, Some(&range)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Clear the backlog of every subscription in a namespace bundle
#[utoipa::path(post, path = "/admin/v2/namespaces/{tenant}/{namespace}/{bundle}/clearBacklog", tag = "namespaces",
    params(NamespaceParam, ("bundle" = String, Path, description = "a bundle range, `0x00000000_0x3fffffff`")),
    responses((status = 204, description = "cleared"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unavailable))]
async fn clear_bundle_backlog(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(ns): NamespaceParam,
    Path(p): Path<BundlePath>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::ClearBacklog, &ns).await?;
    let range = s.broker.topics().bundle(&ns, &p.bundle).await?;
    s.broker.subscriptions().clear_namespace_backlog(s.broker.topics(), &ns, Some(&range), None).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct BundleSubscriptionPath {
    bundle: String,
}

/// Clear one subscription's backlog in a namespace bundle
#[utoipa::path(post, path = "/admin/v2/namespaces/{tenant}/{namespace}/{bundle}/clearBacklog/{subscription}",
    tag = "namespaces",
    params(NamespaceParam, ("bundle" = String, Path, description = "a bundle range, `0x00000000_0x3fffffff`"), SubscriptionNameParam),
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
    let range = s.broker.topics().bundle(&ns, &p.bundle).await?;
    s.broker.subscriptions().clear_namespace_backlog(s.broker.topics(), &ns, Some(&range), Some(&sub)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete a subscription from every topic of a namespace bundle
#[utoipa::path(post, path = "/admin/v2/namespaces/{tenant}/{namespace}/{bundle}/unsubscribe/{subscription}",
    tag = "namespaces",
    params(NamespaceParam, ("bundle" = String, Path, description = "a bundle range, `0x00000000_0x3fffffff`"), SubscriptionNameParam),
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
    let range = s.broker.topics().bundle(&ns, &p.bundle).await?;
    s.broker.subscriptions().unsubscribe_namespace(s.broker.topics(), &ns, Some(&range), &sub).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Look up the bundle of a topic
///
/// Text: the range of the namespace's bundle its name hashes into (CRC-32, as Pulsar).
#[utoipa::path(get, path = "/lookup/v2/topic/persistent/{tenant}/{namespace}/{topic}/bundle", tag = "lookup",
    params(TopicParam),
    responses((status = 200, description = "the bundle range", body = String, content_type = "text/plain"),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn lookup_bundle(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(name): TopicParam,
) -> ApiResult<String> {
    auth.check(Operation::LookupTopic, &name).await?;
    if s.broker.topics().record(&name.base()).await?.is_none() {
        return Err(magnetar_broker::BrokerError::NotFound(magnetar_broker::Entity::Topic(name)).into());
    }
    Ok(s.broker.topics().bundle_of(&name).await?.to_string())
}

/// Pulsar's query parameters of a bundle split.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct SplitQuery {
    /// Unload the bundle's topics after the split (they load again on use).
    #[serde(default)]
    unload: bool,
    /// `range_equally_divide` (default), `topic_count_equally_divide` or
    /// `specified_positions_divide` (positions in the body).
    split_algorithm_name: Option<String>,
    /// Accepted for compatibility (every broker answers for every bundle here).
    #[allow(dead_code)]
    authoritative: Option<bool>,
}

/// Split a namespace bundle
///
/// The bundle is cut at its middle (`range_equally_divide`), between its middle topics
/// (`topic_count_equally_divide`) or at the positions of the body (`specified_positions_divide`:
/// a JSON list of hash positions inside the bundle). The namespace's `bundles` change; topics
/// keep their names and data. Superusers and tenant admins, as Pulsar.
#[utoipa::path(put, path = "/admin/v2/namespaces/{tenant}/{namespace}/{bundle}/split", tag = "namespaces",
    params(NamespaceParam, ("bundle" = String, Path, description = "a bundle range, `0x00000000_0x3fffffff`"), SplitQuery),
    request_body(content = Option<Vec<u64>>, description = "split positions, for `specified_positions_divide`"),
    responses((status = 204, description = "split"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unavailable))]
async fn split_bundle(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(ns): NamespaceParam,
    Path(p): Path<BundlePath>,
    Query(q): Query<SplitQuery>,
    body: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    auth.check(Operation::SetNamespacePolicy, &ns).await?;
    let positions: Vec<u64> = if body.iter().all(u8::is_ascii_whitespace) {
        Vec::new()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| crate::ApiError::bad_request(format!("split positions must be a JSON list of numbers: {e}")))?
    };
    let positions = positions
        .into_iter()
        .map(|p| {
            u32::try_from(p)
                .map_err(|_| crate::ApiError::bad_request(format!("split position {p} is beyond 0xffffffff")))
        })
        .collect::<Result<Vec<u32>, _>>()?;
    let algorithm = SplitAlgorithm::parse(q.split_algorithm_name.as_deref(), positions)?;
    s.broker.split_bundle(&ns, &p.bundle, algorithm, q.unload).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Pulsar's query parameters of a bundle delete.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct DeleteBundleQuery {
    /// Delete the bundle's topics even when it has some (they are deleted forcefully).
    #[serde(default)]
    force: bool,
    #[allow(dead_code)]
    authoritative: Option<bool>,
}

/// Delete a namespace bundle
///
/// Deletes the topics of the bundle (a partitioned topic with a partition in it goes whole);
/// the bundle's range stays. Without `force`, a bundle with topics is refused (409).
#[utoipa::path(delete, path = "/admin/v2/namespaces/{tenant}/{namespace}/{bundle}", tag = "namespaces",
    params(NamespaceParam, ("bundle" = String, Path, description = "a bundle range, `0x00000000_0x3fffffff`"), DeleteBundleQuery),
    responses((status = 204, description = "deleted"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unavailable))]
async fn delete_bundle(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(ns): NamespaceParam,
    Path(p): Path<BundlePath>,
    Query(q): Query<DeleteBundleQuery>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::DeleteNamespace, &ns).await?;
    s.broker.topics().delete_bundle(&ns, &p.bundle, q.force).await?;
    Ok(StatusCode::NO_CONTENT)
}
