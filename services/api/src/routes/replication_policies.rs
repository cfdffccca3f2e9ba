//! Replication policies stored ahead of geo-replication: a topic's replication clusters
//! (`/admin/v2/persistent/{t}/{ns}/{topic}/replication`, validated as the namespace's) and the
//! replicator dispatch rate of a namespace and of a topic. Nothing is replicated yet, so neither
//! has an effect; a `Warning` header says so when another cluster is named.

use super::namespace_policies::replication_warning;
use crate::AppState;
use crate::error::{
    ApiResult, BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, PreconditionFailed, Unauthorized,
    Unavailable,
};
use crate::extract::{AuthContext, JsonBody, NamespaceParam, Query, TopicParam};
use crate::routes::topic_policies::AppliedQuery;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use magnetar_auth::Operation;
use magnetar_core::DispatchRate;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_replicator_dispatch_rate, set_replicator_dispatch_rate, remove_replicator_dispatch_rate))
        .routes(routes!(
            get_topic_replicator_dispatch_rate,
            set_topic_replicator_dispatch_rate,
            remove_topic_replicator_dispatch_rate
        ))
        .routes(routes!(
            get_topic_replication_clusters,
            set_topic_replication_clusters,
            remove_topic_replication_clusters
        ))
}

namespace_policy!(
    get_replicator_dispatch_rate,
    set_replicator_dispatch_rate,
    remove_replicator_dispatch_rate,
    "/admin/v2/namespaces/{tenant}/{namespace}/replicatorDispatchRate",
    DispatchRate,
    get = "Get the replicator dispatch rate of a namespace",
    set = "Set the replicator dispatch rate of a namespace (stored; no effect until geo-replication exists)",
    remove = "Remove the replicator dispatch rate of a namespace",
    read = |p, c| p.replicator_dispatch_rate.get(c).copied(),
    write = |p, c, v| {
        p.replicator_dispatch_rate.insert(c.clone(), v);
    },
    clear = |p, c| {
        p.replicator_dispatch_rate.remove(&c);
    },
);

topic_policy!(
    get_topic_replicator_dispatch_rate,
    set_topic_replicator_dispatch_rate,
    remove_topic_replicator_dispatch_rate,
    "/admin/v2/persistent/{tenant}/{namespace}/{topic}/replicatorDispatchRate",
    DispatchRate,
    get = "Get the replicator dispatch rate of a topic",
    set = "Set the replicator dispatch rate of a topic (stored; no effect until geo-replication exists)",
    remove = "Remove the replicator dispatch rate of a topic",
    own = |t| t.replicator_dispatch_rate,
    applied = |e| e.replicator_dispatch_rate.value,
    write = |t, v| t.replicator_dispatch_rate = Some(v),
    clear = |t| t.replicator_dispatch_rate = None,
);

/// Get the replication clusters of a topic
///
/// The topic's own (`null` when it sets none) or, with `applied=true`, the topic's else its
/// namespace's.
#[utoipa::path(get, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/replication",
    tag = "persistent topic", params(TopicParam, AppliedQuery),
    responses((status = 200, description = "cluster names, or null", body = Option<Vec<String>>),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn get_topic_replication_clusters(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
    Query(q): Query<AppliedQuery>,
) -> ApiResult<Json<Option<Vec<String>>>> {
    auth.check(Operation::GetTopicPolicy, &topic).await?;
    let own = s.broker.topic_policies().get(&topic).await?.replication_clusters;
    if q.applied && own.is_none() {
        return Ok(Json(Some(s.broker.admin().get_policies(topic.namespace()).await?.replication_clusters)));
    }
    Ok(Json(own))
}

/// Set the replication clusters of a topic
///
/// Every cluster must exist (412 otherwise). They are stored; Magnetar has no geo-replication
/// yet, and answers a `Warning` header when a cluster other than this one is named.
#[utoipa::path(post, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/replication",
    tag = "persistent topic", params(TopicParam), request_body = Vec<String>,
    responses((status = 204, description = "stored (`Warning` header when geo-replication would be needed)"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn set_topic_replication_clusters(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
    JsonBody(clusters): JsonBody<Vec<String>>,
) -> ApiResult<impl IntoResponse> {
    auth.check(Operation::SetTopicPolicy, &topic).await?;
    let list = s.broker.admin().check_replication_clusters(&clusters).await?;
    let headers = replication_warning(s.broker.cluster(), &list);
    s.broker
        .topic_policies()
        .update(&topic, |t| {
            t.replication_clusters = Some(list);
            Ok(())
        })
        .await?;
    Ok((StatusCode::NO_CONTENT, headers))
}

/// Remove the replication clusters of a topic
#[utoipa::path(delete, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/replication",
    tag = "persistent topic", params(TopicParam),
    responses((status = 204, description = "removed: the namespace's apply"),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn remove_topic_replication_clusters(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
) -> ApiResult<StatusCode> {
    super::change_topic_policies(&s, &auth, &topic, |t| {
        t.replication_clusters = None;
        Ok(())
    })
    .await
}
