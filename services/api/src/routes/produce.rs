//! REST produce, Pulsar-compatible (PIP-64): `POST /topics/persistent/{t}/{ns}/{topic}` and
//! `.../partitions/{n}`. A missing topic is created as the namespace's auto-creation policy
//! allows (as for WebSocket producers); a partition of a missing topic is not. Without a schema
//! the payload string is stored as its UTF-8 bytes (Pulsar's default string schema); with a
//! `BYTES` value schema it is base64; with another schema (`valueSchema`, registered in the
//! topic's schema registry as Pulsar's REST producer registers it, or a registered version named
//! by `schemaVersion`) it is encoded as that schema serializes values (`schema_encode`).

use crate::AppState;
use crate::error::{
    ApiError, ApiResult, BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, PreconditionFailed, Unauthorized,
    Unavailable,
};
use crate::extract::{AuthContext, JsonBody, Path, TopicParam};
use crate::fanout::Whole;
use axum::extract::State;
use axum::{Extension, Json};
use base64::Engine;
use magnetar_auth::Operation;
use magnetar_broker::schemas::SchemaPayload;
use magnetar_broker::{BrokerError, Entity, KeyHashing, ProducerStamp, PublishMessage, schema_encode};
use magnetar_core::TopicName;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(produce)).routes(routes!(produce_to_partition))
}

/// Pulsar's request. With `producerName` and a message's `sequenceId`, the message is stored
/// with both (and the schema version) and deduplicated where deduplication is on; replication
/// fields are accepted for compatibility and not used; a key schema is refused (400).
// Serialize: a broker tier sends each partition's owner its part of a request.
#[allow(dead_code)]
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProduceRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub producer_name: Option<String>,
    /// A version of the topic's schema to encode the payloads with (wins over `valueSchema`;
    /// -1 for none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<i64>,
    /// Pulsar's `SchemaInfo` JSON of the keys (as `valueSchema`): with it the topic's schema is
    /// the KEY_VALUE schema of both, `SEPARATED` (a missing `valueSchema` is `STRING`), and each
    /// message's `key` is encoded with it and sent as the base64 of those bytes, flagged so
    /// (Pulsar's `partition_key_b64_encoded`), as Pulsar's REST producer does. A `BYTES` key is
    /// given in base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_schema: Option<String>,
    /// Pulsar's `SchemaInfo` JSON (`type`, `schema`: the definition as text, a JSON document or
    /// base64, `properties`). Registered as the topic's schema as a producer's is (409 when the
    /// topic's compatibility strategy refuses it), and the payloads are encoded with it: `STRING`
    /// as is, `JSON` compacted, `AVRO` from Avro's JSON encoding to its binary one, numbers and
    /// `BOOLEAN` as Pulsar writes them. With type `BYTES` the payloads are base64 (nothing is
    /// registered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = r#"{"type":"BYTES"}"#)]
    pub value_schema: Option<String>,
    /// At least one.
    #[schema(min_items = 1)]
    pub messages: Vec<ProduceMessage>,
}

/// One message of a REST produce request.
#[allow(dead_code)]
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProduceMessage {
    /// The payload as text (stored as UTF-8), base64 with a `BYTES` value schema, or the value as
    /// text for the schema (JSON for `JSON` and `AVRO`, digits for numbers).
    pub payload: String,
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time: Option<EventTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_clusters: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_replication: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliver_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliver_after_ms: Option<i64>,
}

/// A message's event time: epoch milliseconds, as a number or digits, or an RFC 3339 date-time.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum EventTime {
    Millis(i64),
    Text(String),
}

/// The strings `parse_event_time` reads, described as such (a derived schema would say "any string").
impl utoipa::PartialSchema for EventTime {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type};
        let millis =
            ObjectBuilder::new().schema_type(Type::Integer).format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)));
        let digits = ObjectBuilder::new().schema_type(Type::String).pattern(Some("^[0-9]{1,18}$"));
        let date_time = ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)));
        OneOfBuilder::new()
            .item(millis)
            .item(digits)
            .item(date_time)
            .description(Some("Epoch milliseconds (a number or digits), or an RFC 3339 date-time"))
            .into()
    }
}

impl ToSchema for EventTime {}

/// The outcome of one message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublishResult {
    /// `ledgerId:entryId:partition` (partition -1 when not partitioned); empty on failure.
    pub message_id: String,
    /// 0 stored, 1 retriable, 2 failed.
    #[schema(minimum = 0, maximum = 2)]
    pub error_code: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_msg: Option<String>,
    pub schema_version: i64,
}

/// One result per message, in the request's order.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProduceResponse {
    pub message_publish_results: Vec<PublishResult>,
    pub schema_version: i64,
}

/// Event time as epoch ms: a number, a string of digits or an RFC 3339 date-time; another
/// string is a 400 (and another JSON type fails to parse, a 400 too).
fn parse_event_time(v: &Option<EventTime>, i: usize) -> Result<Option<i64>, ApiError> {
    match v {
        None => Ok(None),
        Some(EventTime::Millis(ms)) => Ok(Some(*ms)),
        Some(EventTime::Text(s)) if s.is_empty() => Ok(None),
        Some(EventTime::Text(s)) => magnetar_core::time::parse_event_time(s)
            .map(Some)
            .ok_or_else(|| ApiError::bad_request(format!("message {i}: invalid eventTime `{s}`"))),
    }
}

fn is_bytes_schema(schema: &Option<String>) -> bool {
    schema
        .as_deref()
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .and_then(|v| v.get("type").and_then(Value::as_str).map(|t| t.eq_ignore_ascii_case("BYTES")))
        .unwrap_or(false)
}

/// A message names its producer and sequence id only with both: the pair deduplication keys on.
pub(crate) fn producer_stamp(
    producer: Option<&str>,
    sequence_id: Option<i64>,
    i: usize,
) -> Result<Option<ProducerStamp>, ApiError> {
    match (producer, sequence_id) {
        (_, Some(seq)) if seq < 0 => {
            Err(ApiError::bad_request(format!("message {i}: sequenceId {seq} must be 0 or positive")))
        }
        (Some(name), Some(seq)) => Ok(Some(ProducerStamp::new(name, seq))),
        _ => Ok(None),
    }
}

/// The schema a request's payloads are encoded with and its version (see
/// `Topics::producer_schema`): named by `schemaVersion`, or `valueSchema` registered.
pub(crate) type RequestSchema = Option<(SchemaPayload, i64)>;

pub(crate) async fn request_schema(
    s: &AppState,
    auth: &AuthContext,
    name: &TopicName,
    req: &ProduceRequest,
) -> ApiResult<RequestSchema> {
    let (key_schema, value_schema) = (req.key_schema.as_deref(), req.value_schema.as_deref());
    Ok(s.broker.topics().producer_schema(&auth.caller(), name, req.schema_version, key_schema, value_schema).await?)
}

pub(crate) fn to_messages(req: ProduceRequest, schema: &RequestSchema) -> Result<Vec<PublishMessage>, ApiError> {
    if req.messages.is_empty() {
        return Err(ApiError::bad_request("request has no messages"));
    }
    let base64 = schema.is_none() && is_bytes_schema(&req.value_schema);
    let producer = req.producer_name.filter(|n| !n.is_empty());
    let version = schema.as_ref().map(|(_, v)| Box::<[u8]>::from(v.to_be_bytes()));
    let key_value = match schema.as_ref().filter(|(p, _)| p.schema_type == "KEY_VALUE") {
        Some((p, _)) => Some(schema_encode::key_value_sides(p).map_err(ApiError::bad_request)?),
        None => None,
    };
    req.messages
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let stamp = producer_stamp(producer.as_deref(), m.sequence_id, i)?
                .map(|stamp| ProducerStamp { schema_version: version.clone(), ..stamp });
            let bad = |e: String| ApiError::bad_request(format!("message {i}: {e}"));
            let (key, key_base64, payload) = if let Some(kv) = &key_value {
                let m = kv.encode(m.key.as_deref(), &m.payload).map_err(bad)?;
                (m.key, m.key_base64, m.payload)
            } else if base64 {
                let payload = base64::engine::general_purpose::STANDARD
                    .decode(m.payload.as_bytes())
                    .map_err(|e| bad(format!("payload is not valid base64: {e}")))?;
                (m.key, false, payload.into())
            } else {
                let payload =
                    schema_encode::encode_payload(schema.as_ref().map(|(p, _)| p), &m.payload).map_err(bad)?;
                (m.key, false, payload)
            };
            Ok(PublishMessage {
                key,
                key_base64,
                properties: m.properties.into_iter().collect(),
                payload,
                event_time: parse_event_time(&m.event_time, i)?,
                deliver_at: m.deliver_at,
                deliver_after_ms: m.deliver_after_ms,
                producer: stamp,
                ..PublishMessage::default()
            })
        })
        .collect()
}

/// Pulsar's REST producer answers each message with an `errorCode`: 0 stored, 1 retriable
/// (the broker cannot store it now), 2 failed for good (a terminated topic too, though it is
/// 503 as a whole: it never accepts messages again).
pub(crate) fn error_code(e: &BrokerError) -> i32 {
    let retriable = crate::error::status_of(e) == axum::http::StatusCode::SERVICE_UNAVAILABLE
        && !matches!(e, BrokerError::TopicTerminated(_));
    if retriable { 1 } else { 2 }
}

/// The whole request is refused (nothing stored) when a message is too large; otherwise each
/// message gets its own result. When every message failed, the request fails with the first
/// one's condition (a topic over its backlog quota answers 503, as a whole).
pub(crate) async fn publish(
    s: &AppState,
    auth: &AuthContext,
    name: &TopicName,
    req: ProduceRequest,
) -> ApiResult<Json<ProduceResponse>> {
    let schema = request_schema(s, auth, name, &req).await?;
    let schema_version = schema.as_ref().map_or(req.schema_version.unwrap_or(0), |(_, v)| *v);
    s.broker.topics().check_schemaless_producer(name, req.value_schema.is_some() || schema.is_some()).await?;
    let messages = to_messages(req, &schema)?;
    let publisher = s.broker.publisher();
    for (i, m) in messages.iter().enumerate() {
        publisher.check_size(name, || format!("message {i}"), m)?;
    }
    let outcomes = publisher.publish(&auth.caller(), name, messages, KeyHashing::Murmur3).await?;
    if outcomes.iter().all(Result::is_err) {
        let first = outcomes.into_iter().next().and_then(Result::err);
        return Err(first.unwrap_or_else(|| BrokerError::Internal("no message outcome".into())).into());
    }
    Ok(Json(ProduceResponse {
        message_publish_results: outcomes
            .into_iter()
            .map(|o| match o {
                Ok(id) => PublishResult { message_id: id.to_text(), error_code: 0, error_msg: None, schema_version },
                Err(e) => PublishResult {
                    message_id: String::new(),
                    error_code: error_code(&e),
                    error_msg: Some(crate::ApiError::from(e).reason),
                    schema_version,
                },
            })
            .collect(),
        schema_version,
    }))
}

/// Produce messages to a topic (Pulsar's REST producer)
///
/// A missing topic is created as the namespace's auto-creation policy allows. Each message gets
/// its own result; when every message failed, the request fails with the first one's condition
/// (503 for a topic over its backlog quota). A message larger than allowed refuses the whole
/// request (413).
#[utoipa::path(post, path = "/topics/persistent/{tenant}/{namespace}/{topic}", tag = "produce",
    params(TopicParam), request_body = ProduceRequest,
    responses((status = 200, description = "one result per message", body = ProduceResponse),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn produce(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(name): TopicParam,
    whole: Option<Extension<Whole>>,
    JsonBody(req): JsonBody<ProduceRequest>,
) -> ApiResult<Json<ProduceResponse>> {
    if let Some(Extension(whole)) = whole {
        return crate::fanout::produce::publish(&s, &auth, &whole, req).await;
    }
    publish(&s, &auth, &name, req).await
}

#[derive(Deserialize)]
struct PartitionPath {
    partition: String,
}

/// Produce messages to one partition of a topic
///
/// The topic must exist and be partitioned (400 otherwise; 404 past its last partition).
#[utoipa::path(post, path = "/topics/persistent/{tenant}/{namespace}/{topic}/partitions/{partition}",
    tag = "produce", params(TopicParam, ("partition" = u32, Path, description = "partition index")),
    request_body = ProduceRequest,
    responses((status = 200, description = "one result per message", body = ProduceResponse),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn produce_to_partition(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(base): TopicParam,
    Path(p): Path<PartitionPath>,
    JsonBody(req): JsonBody<ProduceRequest>,
) -> ApiResult<Json<ProduceResponse>> {
    auth.check(Operation::Produce, &base).await?;
    let index: u32 =
        p.partition.parse().map_err(|_| ApiError::bad_request(format!("invalid partition `{}`", p.partition)))?;
    match s.broker.topics().record(&base).await? {
        Some(r) if r.partitions > index => publish(&s, &auth, &base.partition(index), req).await,
        Some(r) if r.partitions > 0 => Err(BrokerError::NotFound(Entity::Partition { topic: base, index }).into()),
        Some(_) => Err(BrokerError::InvalidArgument(format!("topic {base} is not partitioned")).into()),
        None => Err(BrokerError::NotFound(Entity::Topic(base)).into()),
    }
}
