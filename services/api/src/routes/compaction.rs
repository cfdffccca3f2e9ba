//! Topic compaction in Pulsar's shapes: `PUT/GET /admin/v2/persistent/{t}/{ns}/{topic}/compaction`
//! (trigger; Pulsar's `LongRunningProcessStatus`) and the `compactionThreshold` policy at the
//! namespace level (GET/PUT/DELETE) and the topic level (GET with `applied`/POST/DELETE).

use crate::AppState;
use crate::error::{
    ApiResult, BadRequest, Conflict, Forbidden, MethodNotAllowed, NotFound, PayloadTooLarge, PreconditionFailed,
    Unauthorized, Unavailable,
};
use crate::extract::{AuthContext, JsonBody, NamespaceParam, Query, TopicParam};
use crate::routes::topic_policies::AppliedQuery;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use magnetar_auth::Operation;
use magnetar_broker::CompactionStatus;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(trigger_compaction, get_compaction_status))
        .routes(routes!(get_compaction_threshold, set_compaction_threshold, remove_compaction_threshold))
        .routes(routes!(
            get_topic_compaction_threshold,
            set_topic_compaction_threshold,
            remove_topic_compaction_threshold
        ))
}

/// Compact a topic
///
/// Starts a compaction in the background (every partition of a partitioned topic): the
/// compacted view then holds the latest message of each key below the current end. 409 while
/// one runs.
#[utoipa::path(put, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/compaction", tag = "persistent topic",
    params(TopicParam),
    responses((status = 204, description = "started"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unavailable))]
async fn trigger_compaction(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(name): TopicParam,
) -> ApiResult<StatusCode> {
    auth.check(Operation::CompactTopic, &name).await?;
    s.broker.compactor().trigger(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Get the status of a topic's last compaction
///
/// Of a non-partitioned topic or one partition (405 for a whole partitioned topic), since it was
/// loaded: `NOT_RUN`, `RUNNING`, `SUCCESS` or `ERROR` with `lastError`.
#[utoipa::path(get, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/compaction", tag = "persistent topic",
    params(TopicParam),
    responses((status = 200, description = "the status", body = CompactionStatus),
        BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, PreconditionFailed, Unavailable))]
async fn get_compaction_status(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(name): TopicParam,
) -> ApiResult<Json<CompactionStatus>> {
    auth.check(Operation::CompactTopic, &name).await?;
    Ok(Json(s.broker.compactor().status(&name).await?))
}

namespace_policy!(
    set_method = put,
    get_compaction_threshold,
    set_compaction_threshold,
    remove_compaction_threshold,
    "/admin/v2/namespaces/{tenant}/{namespace}/compactionThreshold",
    i64,
    get = "Get the compaction threshold of a namespace, in bytes",
    set = "Set the compaction threshold of a namespace, in bytes (a partition is compacted automatically once more than this is stored after its compacted horizon; 0: never; negative: 412)",
    remove = "Remove the compaction threshold of a namespace",
    read = |p, _c| p.compaction_threshold,
    write = |p, _c, v| p.compaction_threshold = Some(v),
    clear = |p, _c| p.compaction_threshold = None,
);

topic_policy!(
    get_topic_compaction_threshold,
    set_topic_compaction_threshold,
    remove_topic_compaction_threshold,
    "/admin/v2/persistent/{tenant}/{namespace}/{topic}/compactionThreshold",
    i64,
    get = "Get the compaction threshold of a topic, in bytes",
    set = "Set the compaction threshold of a topic, in bytes (0: no automatic compaction; negative: 412)",
    remove = "Remove the compaction threshold of a topic",
    own = |t| t.compaction_threshold,
    applied = |e| e.compaction_threshold.value,
    write = |t, v| t.compaction_threshold = Some(v),
    clear = |t| t.compaction_threshold = None,
);
