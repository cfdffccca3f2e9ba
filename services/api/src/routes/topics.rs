//! `/admin/v2/persistent/{tenant}/{namespace}/...`: topic lifecycle, partitions, stats.

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AuthContext, ForceQuery, JsonBody, NamespaceParam, OptionalJsonBody, TopicParam};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use magnetar_auth::Operation;
use magnetar_broker::BrokerError;
use magnetar_broker::stats::{InternalStats, PartitionedTopicStats, TopicStats};
use magnetar_core::MessageId;
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub fn router() -> Router<AppState> {
    let t = "/admin/v2/persistent/{tenant}/{namespace}/{topic}";
    Router::new()
        .route("/admin/v2/persistent/{tenant}/{namespace}", get(list_topics))
        .route("/admin/v2/persistent/{tenant}/{namespace}/partitioned", get(list_partitioned_topics))
        .route(t, put(create_topic).delete(delete_topic))
        .route(
            &format!("{t}/partitions"),
            put(create_partitioned_topic).post(update_partitions).get(get_partitions).delete(delete_partitioned_topic),
        )
        .route(&format!("{t}/stats"), get(get_stats))
        .route(&format!("{t}/partitioned-stats"), get(get_partitioned_stats))
        .route(&format!("{t}/internalStats"), get(get_internal_stats))
        .route(&format!("{t}/partitioned-internalStats"), get(get_partitioned_internal_stats))
        .route(&format!("{t}/lastMessageId"), get(get_last_message_id))
        .route(&format!("{t}/unload"), put(unload_topic))
}

async fn list_topics(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<Json<Vec<String>>> {
    Ok(Json(auth.visible_topics(&name, s.broker.topics().list(&name).await).await?))
}

async fn list_partitioned_topics(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<Json<Vec<String>>> {
    Ok(Json(auth.visible_topics(&name, s.broker.topics().list_partitioned(&name).await).await?))
}

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

/// Pulsar accepts a bare count or `{"partitions": N, "properties": {...}}`.
fn parse_partition_body(v: &Value) -> Result<(i64, BTreeMap<String, String>), ApiError> {
    match v {
        Value::Number(n) => n.as_i64().map(|n| (n, BTreeMap::new())),
        Value::Object(o) => {
            let n = o.get("partitions").and_then(Value::as_i64);
            let props = o
                .get("properties")
                .and_then(|p| serde_json::from_value::<BTreeMap<String, String>>(p.clone()).ok())
                .unwrap_or_default();
            n.map(|n| (n, props))
        }
        _ => None,
    }
    .ok_or_else(|| ApiError::bad_request("expected the number of partitions, or {\"partitions\": N}"))
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

async fn create_partitioned_topic(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(name): TopicParam,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::CreateTopic, &name).await?;
    let (n, props) = parse_partition_body(&body)?;
    s.broker.topics().create(&name, partition_count(n)?, props).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn update_partitions(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(name): TopicParam,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::UpdatePartitions, &name).await?;
    let (n, _) = parse_partition_body(&body)?;
    s.broker.topics().grow(&name, partition_count(n)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `{"partitions": N}`; 0 for a non-partitioned or missing topic, as Pulsar answers.
async fn get_partitions(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(name): TopicParam,
) -> ApiResult<Json<Value>> {
    auth.check(Operation::GetPartitions, &name).await?;
    let rec = s.broker.topics().record(&name).await?;
    let (n, props) = rec.map(|r| (r.partitions, r.properties)).unwrap_or_default();
    Ok(Json(json!({ "partitions": n, "properties": props })))
}

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

async fn delete_partitioned_topic(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(name): TopicParam,
    Query(q): Query<ForceQuery>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::DeleteTopic, &name).await?;
    s.broker.topics().delete(&name, q.force, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_stats(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(name): TopicParam,
) -> ApiResult<Json<TopicStats>> {
    auth.check(Operation::GetTopicStats, &name).await?;
    Ok(Json(s.broker.topics().stats(&name).await?))
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PartitionedStatsQuery {
    #[serde(default)]
    per_partition: Option<bool>,
}

async fn get_partitioned_stats(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(name): TopicParam,
    Query(q): Query<PartitionedStatsQuery>,
) -> ApiResult<Json<PartitionedTopicStats>> {
    auth.check(Operation::GetTopicStats, &name).await?;
    Ok(Json(s.broker.topics().partitioned_stats(&name, q.per_partition.unwrap_or(true)).await?))
}

async fn get_internal_stats(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(name): TopicParam,
) -> ApiResult<Json<InternalStats>> {
    auth.check(Operation::GetInternalStats, &name).await?;
    Ok(Json(s.broker.topics().internal_stats(&name).await?))
}

async fn get_partitioned_internal_stats(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(name): TopicParam,
) -> ApiResult<Json<Value>> {
    auth.check(Operation::GetInternalStats, &name).await?;
    let (count, partitions) = s.broker.topics().partitioned_internal_stats(&name).await?;
    Ok(Json(json!({ "metadata": { "partitions": count }, "partitions": partitions })))
}

async fn get_last_message_id(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(name): TopicParam,
) -> ApiResult<Json<MessageId>> {
    auth.check(Operation::GetLastMessageId, &name).await?;
    Ok(Json(s.broker.topics().last_message_id(&name).await?))
}

/// Pulsar's topic unload: consumers are disconnected and reconnect; the topic loads again on its
/// next use.
async fn unload_topic(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(name): TopicParam,
) -> ApiResult<StatusCode> {
    auth.check(Operation::UnloadTopic, &name).await?;
    s.broker.topics().unload(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
