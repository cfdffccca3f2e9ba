//! `/admin/v2/persistent/{tenant}/{namespace}/...`: topic lifecycle, partitions, stats.

use crate::AppState;
use crate::error::{
    ApiError, ApiResult, BadRequest, Conflict, Forbidden, MethodNotAllowed, NotAcceptable, NotFound, PayloadTooLarge,
    PreconditionFailed, Unauthorized, Unavailable,
};
use crate::extract::{
    AuthContext, ForceQuery, JsonBody, NamespaceParam, OptionalJsonBody, PartitionCount, Query, TopicParam,
};
use crate::fanout::Whole;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use magnetar_auth::Operation;
use magnetar_broker::BrokerError;
use magnetar_broker::stats::{InternalStats, PartitionedMetadata, PartitionedTopicStats, TopicStats};
use magnetar_core::MessageId;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_topics))
        .routes(routes!(list_partitioned_topics))
        .routes(routes!(create_topic, delete_topic))
        .routes(routes!(create_partitioned_topic, update_partitions, get_partitions, delete_partitioned_topic))
        .routes(routes!(get_stats))
        .routes(routes!(get_partitioned_stats))
        .routes(routes!(get_internal_stats))
        .routes(routes!(get_partitioned_internal_stats))
        .routes(routes!(get_last_message_id))
        .routes(routes!(unload_topic))
}

/// List the non-partitioned topics and partitions of a namespace
#[utoipa::path(get, path = "/admin/v2/persistent/{tenant}/{namespace}", tag = "persistent topic",
    params(NamespaceParam),
    responses((status = 200, description = "topic names (`persistent://t/ns/x`)", body = [String]),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn list_topics(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<Json<Vec<String>>> {
    Ok(Json(auth.visible_topics(&name, s.broker.topics().list(&name).await).await?))
}

/// List the partitioned topics of a namespace
#[utoipa::path(get, path = "/admin/v2/persistent/{tenant}/{namespace}/partitioned", tag = "persistent topic",
    params(NamespaceParam),
    responses((status = 200, description = "partitioned topic names", body = [String]),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn list_partitioned_topics(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<Json<Vec<String>>> {
    Ok(Json(auth.visible_topics(&name, s.broker.topics().list_partitioned(&name).await).await?))
}

/// Create a non-partitioned topic
///
/// With optional properties `{"key": "value"}`.
#[utoipa::path(put, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}", tag = "persistent topic",
    params(TopicParam), request_body = Option<BTreeMap<String, String>>,
    responses((status = 204, description = "created"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn create_topic(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(name): TopicParam,
    OptionalJsonBody(props): OptionalJsonBody<BTreeMap<String, String>>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::CreateTopic, &name).await?;
    s.broker.topics().create(&name, 0, props.unwrap_or_default()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Pulsar's `PartitionedTopicMetadata`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PartitionedTopicMetadata {
    /// Number of partitions (0 = not partitioned).
    pub partitions: i64,
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

/// A new number of partitions with Pulsar's metadata object.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewPartitions {
    /// 1 to 2^32 - 1 (406 otherwise).
    #[schema(minimum = 1, maximum = 4_294_967_295_i64)]
    pub partitions: i64,
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

/// The body of a partition count change: a bare count (more than 0, 406 otherwise), or Pulsar's
/// metadata object.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum PartitionsBody {
    Count(PartitionCount),
    Metadata(NewPartitions),
}

fn parse_partition_body(v: Value) -> Result<(i64, BTreeMap<String, String>), ApiError> {
    match serde_json::from_value(crate::extract::integral(v)) {
        Ok(PartitionsBody::Count(PartitionCount(n))) => Ok((n, BTreeMap::new())),
        Ok(PartitionsBody::Metadata(m)) => Ok((m.partitions, m.properties)),
        Err(_) => Err(ApiError::bad_request("expected the number of partitions, or {\"partitions\": N}")),
    }
}

fn partition_count(n: i64) -> Result<u32, ApiError> {
    if n <= 0 {
        return Err(
            BrokerError::InvalidPartitionCount(format!("number of partitions should be more than 0, got {n}")).into()
        );
    }
    u32::try_from(n)
        .map_err(|_| BrokerError::InvalidPartitionCount(format!("number of partitions {n} is too large")).into())
}

/// Create a partitioned topic
///
/// Body: the bare number of partitions, or `{"partitions": N, "properties": {...}}` (Pulsar's
/// `application/vnd.partitioned-topic-metadata+json`); 406 unless N > 0.
#[utoipa::path(put, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/partitions", tag = "persistent topic",
    params(TopicParam),
    request_body(content(
        (PartitionsBody = "application/json", example = 3),
        (NewPartitions = "application/vnd.partitioned-topic-metadata+json"))),
    responses((status = 204, description = "created"),
        BadRequest, Unauthorized, Forbidden, NotFound, NotAcceptable, Conflict, PreconditionFailed, PayloadTooLarge,
        Unavailable))]
async fn create_partitioned_topic(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(name): TopicParam,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::CreateTopic, &name).await?;
    let (n, props) = parse_partition_body(body)?;
    s.broker.topics().create(&name, partition_count(n)?, props).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Increase the number of partitions of a topic
///
/// Partitions can only grow (409 otherwise); the new ones get every subscription.
#[utoipa::path(post, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/partitions", tag = "persistent topic",
    params(TopicParam), request_body(content = PartitionsBody, example = 6),
    responses((status = 204, description = "grown"),
        BadRequest, Unauthorized, Forbidden, NotFound, NotAcceptable, Conflict, PreconditionFailed, PayloadTooLarge,
        Unavailable))]
async fn update_partitions(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(name): TopicParam,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::UpdatePartitions, &name).await?;
    let (n, _) = parse_partition_body(body)?;
    s.broker.topics().grow(&name, partition_count(n)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Get the number of partitions of a topic
///
/// 0 for a non-partitioned or missing topic, as Pulsar answers.
#[utoipa::path(get, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/partitions", tag = "persistent topic",
    params(TopicParam),
    responses((status = 200, description = "the partition count and properties", body = PartitionedTopicMetadata),
        BadRequest, Unauthorized, Forbidden, PreconditionFailed, Unavailable))]
async fn get_partitions(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(name): TopicParam,
) -> ApiResult<Json<PartitionedTopicMetadata>> {
    auth.check(Operation::GetPartitions, &name).await?;
    let rec = s.broker.topics().record(&name).await?;
    let (n, properties) = rec.map(|r| (r.partitions, r.properties)).unwrap_or_default();
    Ok(Json(PartitionedTopicMetadata { partitions: i64::from(n), properties }))
}

/// Delete a non-partitioned topic
///
/// 412 while producers or consumers are connected, unless `force`.
#[utoipa::path(delete, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}", tag = "persistent topic",
    params(TopicParam, ForceQuery),
    responses((status = 204, description = "deleted"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unavailable))]
async fn delete_topic(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(name): TopicParam,
    Query(q): Query<ForceQuery>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::DeleteTopic, &name).await?;
    s.broker.topics().delete(&name, q.force, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete a partitioned topic
///
/// 412 while producers or consumers are connected, unless `force`.
#[utoipa::path(delete, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/partitions", tag = "persistent topic",
    params(TopicParam, ForceQuery),
    responses((status = 204, description = "deleted"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unavailable))]
async fn delete_partitioned_topic(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(name): TopicParam,
    Query(q): Query<ForceQuery>,
    whole: Option<Extension<Whole>>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::DeleteTopic, &name).await?;
    if let Some(Extension(whole)) = whole {
        crate::fanout::admin::delete_topic(&s, &whole, q.force).await?;
        return Ok(StatusCode::NO_CONTENT);
    }
    s.broker.topics().delete(&name, q.force, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Get the stats of a topic
///
/// Of a non-partitioned topic or one partition; a partitioned topic's are summed.
#[utoipa::path(get, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/stats", tag = "persistent topic",
    params(TopicParam),
    responses((status = 200, description = "Pulsar's TopicStats", body = TopicStats),
        BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, PreconditionFailed, Unavailable))]
async fn get_stats(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(name): TopicParam,
    whole: Option<Extension<Whole>>,
) -> ApiResult<Json<TopicStats>> {
    auth.check(Operation::GetTopicStats, &name).await?;
    if let Some(Extension(whole)) = whole {
        return Ok(Json(crate::fanout::stats::stats(&s, &whole).await?));
    }
    Ok(Json(s.broker.topics().stats(&name).await?))
}

#[derive(Deserialize, Default, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct PartitionedStatsQuery {
    /// Include each partition's stats (default true).
    #[serde(default)]
    per_partition: Option<bool>,
}

/// Get the stats of a partitioned topic
#[utoipa::path(get, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/partitioned-stats",
    tag = "persistent topic", params(TopicParam, PartitionedStatsQuery),
    responses((status = 200, description = "the totals, and each partition's", body = PartitionedTopicStats),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unavailable))]
async fn get_partitioned_stats(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(name): TopicParam,
    Query(q): Query<PartitionedStatsQuery>,
    whole: Option<Extension<Whole>>,
) -> ApiResult<Json<PartitionedTopicStats>> {
    auth.check(Operation::GetTopicStats, &name).await?;
    if let Some(Extension(whole)) = whole {
        return Ok(Json(crate::fanout::stats::partitioned_stats(&s, &whole, q.per_partition.unwrap_or(true)).await?));
    }
    Ok(Json(s.broker.topics().partitioned_stats(&name, q.per_partition.unwrap_or(true)).await?))
}

/// Get the internal stats of a topic
///
/// Of a non-partitioned topic or one partition: its log's segments (ledgers) and cursors.
#[utoipa::path(get, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/internalStats",
    tag = "persistent topic", params(TopicParam),
    responses((status = 200, description = "Pulsar's PersistentTopicInternalStats", body = InternalStats),
        BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, PreconditionFailed, Unavailable))]
async fn get_internal_stats(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(name): TopicParam,
) -> ApiResult<Json<InternalStats>> {
    auth.check(Operation::GetInternalStats, &name).await?;
    Ok(Json(s.broker.topics().internal_stats(&name).await?))
}

/// Internal stats of every partition of a topic.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartitionedInternalStats {
    pub metadata: PartitionedMetadata,
    /// By partition name.
    pub partitions: BTreeMap<String, InternalStats>,
}

/// Get the internal stats of every partition of a topic
#[utoipa::path(get, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/partitioned-internalStats",
    tag = "persistent topic", params(TopicParam),
    responses((status = 200, description = "each partition's internal stats", body = PartitionedInternalStats),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unavailable))]
async fn get_partitioned_internal_stats(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(name): TopicParam,
) -> ApiResult<Json<PartitionedInternalStats>> {
    auth.check(Operation::GetInternalStats, &name).await?;
    let (partitions, stats) = s.broker.topics().partitioned_internal_stats(&name).await?;
    Ok(Json(PartitionedInternalStats { metadata: PartitionedMetadata { partitions }, partitions: stats }))
}

/// Get the id of the last message of a topic
#[utoipa::path(get, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/lastMessageId",
    tag = "persistent topic", params(TopicParam),
    responses((status = 200, description = "the last message's id", body = MessageId),
        BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, PreconditionFailed, Unavailable))]
async fn get_last_message_id(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(name): TopicParam,
) -> ApiResult<Json<MessageId>> {
    auth.check(Operation::GetLastMessageId, &name).await?;
    Ok(Json(s.broker.topics().last_message_id(&name).await?))
}

/// Unload a topic
///
/// Consumers are disconnected and reconnect; the topic loads again on its next use.
#[utoipa::path(put, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/unload", tag = "persistent topic",
    params(TopicParam),
    responses((status = 204, description = "unloaded"),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn unload_topic(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(name): TopicParam,
    whole: Option<Extension<Whole>>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::UnloadTopic, &name).await?;
    if let Some(Extension(whole)) = whole {
        crate::fanout::admin::unload(&s, &whole).await?;
        return Ok(StatusCode::NO_CONTENT);
    }
    s.broker.topics().unload(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
