//! REST produce, Pulsar-compatible (PIP-64): `POST /topics/persistent/{t}/{ns}/{topic}` and
//! `.../partitions/{n}`. Without a schema the payload string is stored as its UTF-8 bytes
//! (Pulsar's default string schema); with a `BYTES` value schema it is base64.

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AuthContext, JsonBody, TopicPath};
use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use magnetar_auth::Operation;
use magnetar_broker::PublishMessage;
use magnetar_core::TopicName;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/topics/persistent/{tenant}/{namespace}/{topic}", post(produce))
        .route("/topics/persistent/{tenant}/{namespace}/{topic}/partitions/{partition}", post(produce_to_partition))
}

/// Pulsar's request; producer name, key schema and replication fields are accepted for
/// compatibility and not used.
#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProduceRequest {
    #[serde(default)]
    pub producer_name: Option<String>,
    #[serde(default)]
    pub schema_version: Option<i64>,
    #[serde(default)]
    pub key_schema: Option<String>,
    #[serde(default)]
    pub value_schema: Option<String>,
    pub messages: Vec<ProduceMessage>,
}

#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProduceMessage {
    pub payload: String,
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub event_time: Option<Value>,
    #[serde(default)]
    pub sequence_id: Option<i64>,
    #[serde(default)]
    pub replication_clusters: Option<Vec<String>>,
    #[serde(default)]
    pub disable_replication: Option<bool>,
    #[serde(default)]
    pub deliver_at: Option<i64>,
    #[serde(default)]
    pub deliver_after_ms: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishResult {
    pub message_id: String,
    pub error_code: i32,
    pub schema_version: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProduceResponse {
    pub message_publish_results: Vec<PublishResult>,
    pub schema_version: i64,
}

/// Event time as epoch ms: a number, a string of digits or an RFC 3339 date-time; anything else
/// is a 400.
fn parse_event_time(v: &Option<Value>, i: usize) -> Result<Option<i64>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            n.as_i64().map(Some).ok_or_else(|| ApiError::bad_request(format!("message {i}: invalid eventTime")))
        }
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => magnetar_core::time::parse_event_time(s)
            .map(Some)
            .ok_or_else(|| ApiError::bad_request(format!("message {i}: invalid eventTime `{s}`"))),
        Some(_) => Err(ApiError::bad_request(format!("message {i}: invalid eventTime"))),
    }
}

fn is_bytes_schema(schema: &Option<String>) -> bool {
    schema
        .as_deref()
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .and_then(|v| v.get("type").and_then(Value::as_str).map(|t| t.eq_ignore_ascii_case("BYTES")))
        .unwrap_or(false)
}

fn to_messages(req: ProduceRequest) -> Result<Vec<PublishMessage>, ApiError> {
    if req.messages.is_empty() {
        return Err(ApiError::bad_request("request has no messages"));
    }
    let base64 = is_bytes_schema(&req.value_schema);
    req.messages
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let payload = if base64 {
                base64::engine::general_purpose::STANDARD
                    .decode(m.payload.as_bytes())
                    .map_err(|e| ApiError::bad_request(format!("message {i}: payload is not valid base64: {e}")))?
                    .into()
            } else {
                bytes::Bytes::from(m.payload)
            };
            let mut msg = PublishMessage {
                key: m.key,
                properties: m.properties.into_iter().collect(),
                payload,
                event_time: parse_event_time(&m.event_time, i)?,
            };
            msg.deliver_later(m.deliver_at, m.deliver_after_ms);
            Ok(msg)
        })
        .collect()
}

async fn publish(s: &AppState, name: &TopicName, req: ProduceRequest) -> ApiResult<Json<ProduceResponse>> {
    let schema_version = req.schema_version.unwrap_or(0);
    let messages = to_messages(req)?;
    let ids = s.broker.publish(name, messages).await?;
    Ok(Json(ProduceResponse {
        message_publish_results: ids
            .into_iter()
            .map(|id| PublishResult { message_id: id.to_text(), error_code: 0, schema_version })
            .collect(),
        schema_version,
    }))
}

async fn produce(
    State(s): State<AppState>,
    auth: AuthContext,
    Path(p): Path<TopicPath>,
    JsonBody(req): JsonBody<ProduceRequest>,
) -> ApiResult<Json<ProduceResponse>> {
    auth.check(Operation::Produce, &p.name()?).await?;
    publish(&s, &p.name()?, req).await
}

#[derive(Deserialize)]
struct PartitionPath {
    tenant: String,
    namespace: String,
    topic: String,
    partition: String,
}

async fn produce_to_partition(
    State(s): State<AppState>,
    auth: AuthContext,
    Path(p): Path<PartitionPath>,
    JsonBody(req): JsonBody<ProduceRequest>,
) -> ApiResult<Json<ProduceResponse>> {
    auth.check(Operation::Produce, &TopicName::from_parts("persistent", &p.tenant, &p.namespace, &p.topic)?).await?;
    let index: u32 =
        p.partition.parse().map_err(|_| ApiError::bad_request(format!("invalid partition `{}`", p.partition)))?;
    let base = TopicName::from_parts("persistent", &p.tenant, &p.namespace, &p.topic)?;
    let rec = s.broker.get_topic_record(&base).await?;
    match rec {
        Some(r) if r.partitions > index => publish(&s, &base.partition(index), req).await,
        Some(r) if r.partitions > 0 => Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            format!("partition {index} of topic {base} not found (it has {} partitions)", r.partitions),
        )),
        Some(_) => Err(ApiError::bad_request(format!("topic {base} is not partitioned"))),
        None => Err(ApiError::new(axum::http::StatusCode::NOT_FOUND, format!("topic {base} not found"))),
    }
}
