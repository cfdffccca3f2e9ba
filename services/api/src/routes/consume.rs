//! Magnetar's HTTP pull-consume API (Pulsar has none). Under the REST produce tree:
//!
//! - `POST /topics/persistent/{t}/{ns}/{topic}/subscriptions/{sub}/pull`
//!   `{"maxMessages":100,"waitMs":5000,"ackTimeoutMs":30000,"initialPosition":"latest"}` →
//!   `{"messages":[{"messageId":"L:E:P","payload":"<base64>","key":..,"properties":{},
//!   "publishTime":"..","eventTime":"..","redeliveryCount":0}],"endOfTopic":false}`; returns as
//!   soon as messages exist, or an empty list when the wait ends. The subscription is created on
//!   first pull. `endOfTopic` turns true once the topic is terminated and every message was
//!   delivered (Pulsar's `hasReachedEndOfTopic`).
//! - `POST .../ack` `{"messageIds":["L:E:P", ...]}` → 204 once the acknowledgement is durable.
//! - `POST .../nack` `{"messageIds":[...],"redeliveryDelayMs":0}` → 204.
//!
//! Messages not acknowledged before their ack deadline are redelivered with a higher
//! `redeliveryCount`. A subscription is Shared: concurrent pullers never get the same message
//! in flight at once.

use crate::AppState;
use crate::error::{
    ApiError, ApiResult, BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, PreconditionFailed, Unauthorized,
    Unavailable,
};
use crate::extract::{AuthContext, JsonBody, OptionalJsonBody, SubscriptionParam};
use crate::fanout::Whole;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use base64::Engine;
use magnetar_broker::{PullRequest, PulledMessage, StartPosition};
use magnetar_core::MessageId;
use magnetar_core::time::format_rfc3339;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(pull_messages)).routes(routes!(ack_messages)).routes(routes!(nack_messages))
}

// Serialize: a broker tier pulls from the owners of a partitioned topic's partitions.
/// A pull; every field is optional.
#[derive(Debug, Clone, Deserialize, Serialize, Default, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PullBody {
    /// Most messages to return (default 100, at most `http.max_pull_messages`).
    #[schema(minimum = 1, example = 100)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_messages: Option<usize>,
    /// Most payload bytes to return (default 8 MiB).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<usize>,
    /// Long-poll wait in milliseconds (default 0, at most `http.max_pull_wait_ms`): the answer
    /// comes as soon as a message exists, or with no message when the wait ends.
    #[schema(example = 5000)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
    /// Milliseconds before an unacknowledged message is redelivered (at least 1000).
    #[schema(minimum = 1000, example = 30000)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ack_timeout_ms: Option<u64>,
    /// Where a subscription created by this pull starts (default `latest`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_position: Option<InitialPosition>,
    /// Pulsar's `readCompacted` (default false): below the compacted horizon, the compacted view
    /// (the latest message of each key), then the live topic. Pulsar allows it on Exclusive and
    /// Failover subscriptions only; HTTP pullers share theirs, and may read compacted all the same.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_compacted: Option<bool>,
}

/// Where a new subscription starts.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum InitialPosition {
    #[serde(alias = "Latest")]
    Latest,
    #[serde(alias = "Earliest")]
    Earliest,
}

/// A pulled message.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PulledJson {
    /// `ledgerId:entryId:partition`; acknowledge with it.
    pub message_id: String,
    /// Base64.
    pub payload: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The key is the base64 text of a binary key (Pulsar's `partition_key_b64_encoded`: the
    /// Java client's `keyBytes`, KEY_VALUE schemas that keep the key apart).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub key_base64: bool,
    /// Pulsar's ordering key (binary producers), base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering_key: Option<String>,
    pub properties: BTreeMap<String, String>,
    /// RFC 3339.
    pub publish_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time: Option<String>,
    pub redelivery_count: u32,
    /// Set on a chunk of a message its producer sent in chunks (binary protocol, above the
    /// broker's message size limit): HTTP pull is shared, so it delivers chunks as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk: Option<ChunkJson>,
    /// Set on an end-to-end encrypted message (binary protocol producers with encryption on):
    /// the payload is the encrypted bytes, and this is what decrypts them. An encrypted batch is
    /// one message here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_context: Option<EncryptionContextJson>,
}

/// Which piece of a chunked message a record is; the payload is its slice of the message as
/// sent (compressed when the producer compressed).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChunkJson {
    /// Shared by every chunk of one message.
    pub uuid: String,
    /// 0-based.
    pub index: u32,
    pub count: u32,
}

impl From<&magnetar_storage::ChunkPos> for ChunkJson {
    fn from(c: &magnetar_storage::ChunkPos) -> Self {
        ChunkJson { uuid: c.uuid.clone(), index: c.index, count: c.count }
    }
}

/// Pulsar's `EncryptionContext`, as its WebSocket API gives it to consumers that take encrypted
/// messages (`cryptoFailureAction=CONSUME`): the encrypted data keys by public key name, the
/// initialization vector, and how the plaintext was compressed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EncryptionContextJson {
    pub keys: BTreeMap<String, EncryptionKeyJson>,
    /// Base64.
    pub param: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
    /// `NONE`, `LZ4`, `ZLIB`, `ZSTD` or `SNAPPY`: decompress after decrypting.
    pub compression_type: String,
    /// The plaintext's size before compression.
    pub uncompressed_message_size: u32,
    /// Messages in the encrypted batch; absent for a message sent alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EncryptionKeyJson {
    /// Base64: the data key, encrypted with this public key.
    pub key_value: String,
    pub metadata: BTreeMap<String, String>,
}

impl EncryptionContextJson {
    pub fn of(r: &magnetar_storage::Record) -> Option<Self> {
        let e = r.encryption()?;
        let b64 = base64::engine::general_purpose::STANDARD;
        let keys = e
            .keys
            .iter()
            .map(|k| {
                let metadata = k.metadata.iter().cloned().collect();
                (k.name.clone(), EncryptionKeyJson { key_value: b64.encode(&k.value), metadata })
            })
            .collect();
        Some(EncryptionContextJson {
            keys,
            param: b64.encode(&e.param),
            algorithm: Some(e.algorithm.clone()).filter(|a| !a.is_empty()),
            compression_type: compression_name(e.compression).to_string(),
            uncompressed_message_size: e.uncompressed_size,
            batch_size: r.batch.map(|b| b.size),
        })
    }
}

/// Pulsar's name of a compression codec (its `CompressionType` numbers).
/// A record's ordering key as the JSON surfaces show it: base64 (it is bytes).
pub(crate) fn ordering_key_text(r: &magnetar_storage::Record) -> Option<String> {
    r.ordering_key.as_ref().map(|k| base64::engine::general_purpose::STANDARD.encode(k))
}

fn compression_name(codec: u8) -> &'static str {
    match codec {
        1 => "LZ4",
        2 => "ZLIB",
        3 => "ZSTD",
        4 => "SNAPPY",
        _ => "NONE",
    }
}

impl From<PulledMessage> for PulledJson {
    fn from(m: PulledMessage) -> Self {
        let encryption_context = EncryptionContextJson::of(&m.record);
        PulledJson {
            message_id: m.id.to_text(),
            payload: base64::engine::general_purpose::STANDARD.encode(&m.record.payload),
            key_base64: m.record.key_base64,
            ordering_key: ordering_key_text(&m.record),
            key: m.record.key,
            properties: m.record.properties.into_iter().collect(),
            publish_time: format_rfc3339(m.record.publish_time),
            event_time: m.record.event_time.map(format_rfc3339),
            redelivery_count: m.redelivery_count,
            chunk: m.record.chunk.as_deref().map(ChunkJson::from),
            encryption_context,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PullResponse {
    pub messages: Vec<PulledJson>,
    /// Pulsar's end of topic: the topic is terminated and every message has been delivered to
    /// this subscription (those redelivered after a timeout or nack count as not delivered).
    /// Pulls then answer at once, with no message.
    pub end_of_topic: bool,
}

/// Pull messages from a subscription
///
/// A long poll on a Shared subscription, created on the first pull. Messages not acknowledged
/// before their deadline are redelivered with a higher `redeliveryCount`.
#[utoipa::path(post, path = "/topics/persistent/{tenant}/{namespace}/{topic}/subscriptions/{subscription}/pull",
    tag = "consume", params(SubscriptionParam), request_body = Option<PullBody>,
    responses((status = 200, description = "the messages (maybe none)", body = PullResponse),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn pull_messages(
    State(s): State<AppState>,
    auth: AuthContext,
    SubscriptionParam(topic, sub): SubscriptionParam,
    whole: Option<Extension<Whole>>,
    OptionalJsonBody(body): OptionalJsonBody<PullBody>,
) -> ApiResult<Json<PullResponse>> {
    let body = body.unwrap_or_default();
    let req = pull_request(&s, &body)?;
    if let Some(Extension(whole)) = whole {
        return crate::fanout::consume::pull(&s, &auth, &whole, &sub, &body, &req).await.map(Json);
    }
    let subscriptions = s.broker.subscriptions();
    let messages = subscriptions.pull(&auth.caller(), &topic, &sub, &req).await?;
    // The messages are delivered (pending on this consumer) once pulled: a failure of the
    // follow-up question (the partition moving away meanwhile) must not drop them from the
    // answer, or they would only come back after the ack timeout. "Not at the end" is always
    // safe: the next pull says more.
    let end_of_topic = match subscriptions.end_of_topic(&topic, &sub).await {
        Ok(end) => end,
        Err(_) if !messages.is_empty() => false,
        Err(e) => return Err(e.into()),
    };
    Ok(Json(PullResponse { messages: messages.into_iter().map(PulledJson::from).collect(), end_of_topic }))
}

/// The pull a body asks for, within this broker's limits.
fn pull_request(s: &AppState, body: &PullBody) -> ApiResult<PullRequest> {
    let max_messages = body.max_messages.unwrap_or(100);
    if max_messages == 0 || max_messages > s.http.max_pull_messages {
        return Err(ApiError::bad_request(format!(
            "maxMessages {max_messages} must be between 1 and {}",
            s.http.max_pull_messages
        )));
    }
    let wait_ms = body.wait_ms.unwrap_or(0);
    if wait_ms > s.http.max_pull_wait_ms {
        return Err(ApiError::bad_request(format!(
            "waitMs {wait_ms} exceeds the maximum of {}",
            s.http.max_pull_wait_ms
        )));
    }
    let initial_position = match body.initial_position {
        None | Some(InitialPosition::Latest) => StartPosition::Latest,
        Some(InitialPosition::Earliest) => StartPosition::Earliest,
    };
    if let Some(ms) = body.ack_timeout_ms.filter(|&ms| ms < 1000) {
        return Err(ApiError::bad_request(format!("ackTimeoutMs {ms} must be at least 1000")));
    }
    Ok(PullRequest {
        max_messages,
        max_bytes: body.max_bytes.unwrap_or(8 * 1024 * 1024).clamp(1, s.http.max_request_bytes),
        wait: Duration::from_millis(wait_ms),
        ack_timeout: body.ack_timeout_ms.map(Duration::from_millis),
        initial_position,
        read_compacted: body.read_compacted.unwrap_or(false),
    })
}

/// Messages to acknowledge or redeliver.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AckBody {
    /// Ids as pulled (`L:E:P`; the base64 ids of the WebSocket API are taken too); at least one.
    #[schema(min_items = 1, inline, value_type = Vec<MessageIdText>)]
    pub message_ids: Vec<String>,
    /// For a nack: milliseconds before redelivery (default 0).
    #[serde(default)]
    pub redelivery_delay_ms: Option<u64>,
}

/// A message id in its text form, `ledgerId:entryId[:partition]`.
#[derive(ToSchema)]
#[schema(pattern = "^-?[0-9]{1,18}:-?[0-9]{1,18}(:-?[0-9]{1,9})?$", example = "0:3:-1")]
#[allow(dead_code)]
struct MessageIdText(String);

/// Accepts the text form `L:E[:P]` and the base64 protobuf form of WebSocket messages.
pub(crate) fn parse_ids(ids: &[String]) -> Result<Vec<MessageId>, ApiError> {
    if ids.is_empty() {
        return Err(ApiError::bad_request("messageIds is empty"));
    }
    ids.iter()
        .map(|s| {
            MessageId::parse_text(s)
                .or_else(|_| MessageId::from_base64(s))
                .map_err(|_| ApiError::bad_request(format!("invalid message id `{s}`")))
        })
        .collect()
}

/// Acknowledge messages
///
/// 204 once the acknowledgement is durable.
#[utoipa::path(post, path = "/topics/persistent/{tenant}/{namespace}/{topic}/subscriptions/{subscription}/ack",
    tag = "consume", params(SubscriptionParam), request_body = AckBody,
    responses((status = 204, description = "acknowledged"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn ack_messages(
    State(s): State<AppState>,
    auth: AuthContext,
    SubscriptionParam(topic, sub): SubscriptionParam,
    whole: Option<Extension<Whole>>,
    JsonBody(body): JsonBody<AckBody>,
) -> ApiResult<StatusCode> {
    if let Some(Extension(whole)) = whole {
        crate::fanout::consume::ack(&s, &auth, &whole, &sub, &body.message_ids, None).await?;
        return Ok(StatusCode::NO_CONTENT);
    }
    s.broker.subscriptions().ack(&auth.caller(), &topic, &sub, &parse_ids(&body.message_ids)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Negatively acknowledge messages
///
/// They are redelivered after `redeliveryDelayMs`.
#[utoipa::path(post, path = "/topics/persistent/{tenant}/{namespace}/{topic}/subscriptions/{subscription}/nack",
    tag = "consume", params(SubscriptionParam), request_body = AckBody,
    responses((status = 204, description = "will be redelivered"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn nack_messages(
    State(s): State<AppState>,
    auth: AuthContext,
    SubscriptionParam(topic, sub): SubscriptionParam,
    whole: Option<Extension<Whole>>,
    JsonBody(body): JsonBody<AckBody>,
) -> ApiResult<StatusCode> {
    let delay = Duration::from_millis(body.redelivery_delay_ms.unwrap_or(0));
    if let Some(Extension(whole)) = whole {
        crate::fanout::consume::ack(&s, &auth, &whole, &sub, &body.message_ids, Some(delay)).await?;
        return Ok(StatusCode::NO_CONTENT);
    }
    s.broker.subscriptions().nack(&auth.caller(), &topic, &sub, &parse_ids(&body.message_ids)?, delay).await?;
    Ok(StatusCode::NO_CONTENT)
}
