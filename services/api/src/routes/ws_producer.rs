//! WebSocket producer: `/ws/v2/producer/persistent/{tenant}/{namespace}/{topic}`.
//!
//! Frames in: `{"payload":"<base64>","properties":{},"context":"1","key":"k","eventTime":"..",
//! "deliverAt":ms,"deliverAfterMs":ms}`; frames out: `{"result":"ok","messageId":"<base64>",
//! "context":"1"}` or `{"result":"send-error:N","errorMsg":"..","context":"1"}` with Pulsar's
//! codes (3 bad JSON, 7 bad payload encoding, 8 other). Frames are batched and each batch is
//! queued for the WAL while earlier ones are still being made durable, so one connection with many
//! messages in flight shares group commits, keeps the WAL busy and keeps its order. Each message
//! gets its own answer: an invalid or oversized frame fails alone, and a message that was stored
//! is never reported as failed.

use super::ws::{
    Handshake, Socket, await_close_answer, lenient, lenient_enum, must_end, run_tracked, session_permit, spawn_writer,
    text,
};
use crate::AppState;
use crate::error::{
    ApiError, BadRequest, Conflict, Forbidden, NotFound, PreconditionFailed, Unauthorized, Unavailable,
};
use crate::extract::{AuthContext, Query, TopicParam, WsUpgrade};
use crate::fanout::ws::WholeSession;
use axum::extract::State;
use axum::extract::ws::Message;
use axum::response::Response;
use base64::Engine;
use futures::StreamExt;
use magnetar_broker::{Broker, Caller, KeyHashing, PendingPublish, ProducerSlots, PublishMessage};
use magnetar_core::TopicName;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(produce_handler))
}

/// Most frames published as one batch.
const MAX_BATCH: usize = 1000;
/// Batches of one connection queued for the WAL and not yet answered, at most.
const BATCHES_IN_FLIGHT: usize = 256;
/// Payload bytes of one connection queued for the WAL and not yet answered, at most (a batch
/// larger than this alone takes the whole budget): what bounds a producer's memory here. Not a
/// count of 16 batches, as before: batches form in bursts (one large, then many of a few
/// messages), and with object-store durability, where an answer waits a whole object cycle,
/// 16 of them held some messages back a second cycle (p99 about twice p50 at 1,000 in flight;
/// docs/benchmarks.md, run 11).
const BYTES_IN_FLIGHT: usize = 32 << 20;
/// Frames of one connection unanswered at once without `maxPendingMessages` (the default of
/// Pulsar's clients, whose producer the WebSocket handler is in Pulsar).
const DEFAULT_PENDING: usize = 1000;
/// The most `maxPendingMessages` takes (0 asks for it: Pulsar's "no count limit"); the byte
/// bound above holds whatever the count.
const MOST_PENDING: usize = 100_000;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProducerFrame<'a> {
    /// Borrowed from the frame unless JSON escapes forced a copy.
    #[serde(borrow)]
    payload: std::borrow::Cow<'a, str>,
    #[serde(default)]
    properties: BTreeMap<String, String>,
    #[serde(default)]
    context: Option<Value>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    event_time: Option<Value>,
    #[serde(default)]
    deliver_at: Option<i64>,
    #[serde(default)]
    deliver_after_ms: Option<i64>,
    /// With the producer's `producerName`: stored with the message, what deduplication checks.
    #[serde(default)]
    sequence_id: Option<i64>,
    /// Client-side encryption (Pulsar's PIP-290): the IV the client encrypted the payload
    /// with, base64.
    #[serde(default)]
    encryption_param: Option<String>,
    /// Client-side encryption: how the client compressed the payload before encrypting it.
    #[serde(default)]
    compression_type: Option<String>,
    /// Client-side encryption: the payload's size before compression.
    #[serde(default)]
    uncompressed_message_size: Option<u32>,
}

/// Pulsar's compression codec numbers by name (`NONE`, `LZ4`, `ZLIB`, `ZSTD`, `SNAPPY`).
fn compression_code(name: Option<&str>) -> Option<u8> {
    match name.map(str::to_ascii_uppercase).as_deref() {
        None | Some("NONE") => Some(0),
        Some("LZ4") => Some(1),
        Some("ZLIB") => Some(2),
        Some("ZSTD") => Some(3),
        Some("SNAPPY") => Some(4),
        Some(_) => None,
    }
}

/// What a client-side encryption frame carries, with the producer's data key: the message's
/// encryption as stored.
fn client_encryption(
    frame: &ProducerFrame,
    key: &magnetar_storage::EncryptionKey,
    ctx: &Option<Value>,
) -> Result<magnetar_storage::Encrypted, Message> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let param = frame.encryption_param.as_deref().ok_or_else(|| {
        error_frame(
            3,
            "encryptionParam is missing: this producer's messages are encrypted by the client".into(),
            ctx.clone(),
        )
    })?;
    let param = b64
        .decode(param)
        .map_err(|e| error_frame(3, format!("encryptionParam is not valid base64: {e}"), ctx.clone()))?;
    let compression = compression_code(frame.compression_type.as_deref()).ok_or_else(|| {
        error_frame(
            3,
            format!("unknown compressionType `{}`", frame.compression_type.as_deref().unwrap_or("")),
            ctx.clone(),
        )
    })?;
    Ok(magnetar_storage::Encrypted::Head(Box::new(magnetar_storage::Encryption {
        keys: vec![key.clone()],
        algorithm: String::new(),
        param: param.into(),
        compression,
        uncompressed_size: frame.uncompressed_message_size.unwrap_or(0),
    })))
}

pub(crate) fn error_frame(code: u8, msg: String, context: Option<Value>) -> Message {
    let mut v = json!({ "result": format!("send-error:{code}"), "errorMsg": msg });
    if let Some(c) = context {
        v["context"] = c;
    }
    text(&v)
}

/// `{"result":"ok","messageId":..,"context":..}`, written directly: one per message sent.
pub(crate) fn ok_frame(id: &str, context: Option<Value>) -> Message {
    // A base64 id needs no JSON escaping.
    let mut out = String::with_capacity(64);
    out.push_str(r#"{"result":"ok","messageId":""#);
    out.push_str(id);
    out.push('"');
    if let Some(c) = context {
        out.push_str(r#","context":"#);
        out.push_str(&c.to_string());
    }
    out.push('}');
    Message::Text(out.into())
}

/// Parses one frame into a message, or the error frame to answer. `encryption`: the data key of
/// a producer whose client encrypts (PIP-290).
pub(crate) fn parse_frame(
    raw: &str,
    producer: Option<&str>,
    encryption: Option<&magnetar_storage::EncryptionKey>,
) -> Result<(PublishMessage, Option<Value>), Message> {
    let frame: ProducerFrame =
        serde_json::from_str(raw).map_err(|e| error_frame(3, format!("invalid JSON frame: {e}"), None))?;
    let ctx = frame.context.clone();
    let payload = base64::engine::general_purpose::STANDARD
        .decode(frame.payload.as_bytes())
        .map_err(|e| error_frame(7, format!("payload is not valid base64: {e}"), ctx.clone()))?;
    let event_time = match &frame.event_time {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(
            magnetar_core::time::parse_event_time(s)
                .ok_or_else(|| error_frame(3, format!("invalid eventTime `{s}`"), ctx.clone()))?,
        ),
        Some(_) => return Err(error_frame(3, "invalid eventTime".into(), ctx)),
    };
    let stamp = super::produce::producer_stamp(producer, frame.sequence_id, 0)
        .map_err(|e| error_frame(3, e.reason.replacen("message 0: ", "", 1), ctx.clone()))?;
    let encrypted = encryption.map(|key| client_encryption(&frame, key, &ctx)).transpose()?;
    let msg = PublishMessage {
        encrypted,
        producer: stamp,
        key: frame.key,
        properties: frame.properties.into_iter().collect(),
        payload: payload.into(),
        event_time,
        deliver_at: frame.deliver_at,
        deliver_after_ms: frame.deliver_after_ms,
        ..PublishMessage::default()
    };
    Ok((msg, ctx))
}

/// How keyed messages pick a partition.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
enum HashingScheme {
    /// The Java client's default.
    JavaStringHash,
    Murmur3_32Hash,
}

/// How keyless messages pick a partition.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
enum MessageRoutingMode {
    RoundRobinPartition,
    /// All to one partition, chosen at the handshake.
    SinglePartition,
}

/// The producer's query parameters (Pulsar's others are accepted and ignored).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct ProducerQuery {
    /// Default `JavaStringHash`.
    #[serde(default, deserialize_with = "lenient_enum")]
    #[param(inline)]
    hashing_scheme: Option<HashingScheme>,
    /// Default `RoundRobinPartition`.
    #[serde(default, deserialize_with = "lenient_enum")]
    #[param(inline)]
    message_routing_mode: Option<MessageRoutingMode>,
    /// With a frame's `sequenceId`: the message is stored with both and deduplicated where
    /// deduplication is on.
    producer_name: Option<String>,
    /// Frames sent and not yet answered at once (default 1000, at most 100,000, 0 for the
    /// most): beyond them the server stops reading until answers go out.
    #[serde(default, deserialize_with = "lenient")]
    max_pending_messages: Option<u32>,
    /// The name of the public key the client encrypted its data key with (Pulsar's
    /// client-side encryption, PIP-290; only with `encryptionKeyValues`: the broker encrypts
    /// nothing itself).
    encryption_keys: Option<String>,
    /// The data key, encrypted with that public key, base64: every message's payload is then
    /// encrypted by the client, and frames carry `encryptionParam`.
    encryption_key_values: Option<String>,
    /// The data key's metadata: base64 of a JSON object, or of a list of `{"key","value"}`.
    encryption_key_metadata: Option<String>,
    /// A JWT, for clients that cannot send `Authorization` (used only without that header).
    #[allow(dead_code)]
    token: Option<String>,
}

/// WebSocket producer
///
/// Frames in: `{"payload":"<base64>","properties":{},"context":"1","key":"k","eventTime":"..",
/// "deliverAt":ms,"deliverAfterMs":ms}`; frames out: `{"result":"ok","messageId":"<base64>",
/// "context":"1"}` or `{"result":"send-error:N","errorMsg":"..","context":"1"}`. A missing topic
/// is created at the handshake as the namespace allows; 409 when the topic has its
/// `maxProducers`. Over the publish rate, frames are read more slowly (throttled, not failed).
#[utoipa::path(
    get,
    path = "/ws/v2/producer/persistent/{tenant}/{namespace}/{topic}",
    tag = "websocket",
    params(TopicParam, ProducerQuery),
    responses(Handshake, BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unavailable)
)]
async fn produce_handler(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
    Query(q): Query<ProducerQuery>,
    WholeSession(whole): WholeSession,
    WsUpgrade(ws): WsUpgrade,
) -> Result<Response, ApiError> {
    if let Some(handshake) = whole {
        // A whole partitioned topic in a broker tier: one session per partition behind this one.
        return crate::fanout::ws_producer::open(&s, auth, handshake, q.routing()?, ws).await;
    }
    let session = ProducerSession::attach(&s, auth, &topic, &q.routing()?).await?;
    let permit = session_permit(&s)?;
    let broker = s.broker.clone();
    Ok(ws.on_upgrade(move |socket| run_tracked(broker, permit, session.run(Socket::from_ws(socket)))))
}

impl ProducerQuery {
    /// The data key of a producer whose client encrypts (PIP-290); 400 for a bad value, and
    /// for `encryptionKeys` alone (Pulsar's proxy would encrypt itself, with keys it was given:
    /// this broker never holds keys, and must not store in the clear what was meant to be
    /// encrypted).
    fn encryption(&self) -> Result<Option<magnetar_storage::EncryptionKey>, ApiError> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let name = self.encryption_keys.clone().filter(|k| !k.is_empty());
        let Some(value) = self.encryption_key_values.as_deref().filter(|v| !v.is_empty()) else {
            return match name {
                Some(_) => Err(ApiError::bad_request(
                    "encryptionKeys without encryptionKeyValues: the broker does not encrypt messages itself; encrypt \
                     them in the client and give the encrypted data key in encryptionKeyValues (Pulsar's PIP-290)",
                )),
                None => Ok(None),
            };
        };
        let name =
            name.ok_or_else(|| ApiError::bad_request("encryptionKeyValues needs encryptionKeys (the key's name)"))?;
        let value = b64
            .decode(value)
            .map_err(|e| ApiError::bad_request(format!("encryptionKeyValues is not valid base64: {e}")))?;
        let metadata = match self.encryption_key_metadata.as_deref().filter(|m| !m.is_empty()) {
            None => Vec::new(),
            Some(m) => key_metadata(m).ok_or_else(|| {
                ApiError::bad_request("encryptionKeyMetadata is not base64 of a JSON object or key-value list")
            })?,
        };
        Ok(Some(magnetar_storage::EncryptionKey { name, value: value.into(), metadata }))
    }

    fn routing(&self) -> Result<Routing, ApiError> {
        let hashing = match self.hashing_scheme.unwrap_or(HashingScheme::JavaStringHash) {
            HashingScheme::JavaStringHash => KeyHashing::JavaString,
            HashingScheme::Murmur3_32Hash => KeyHashing::Murmur3,
        };
        let single = matches!(self.message_routing_mode, Some(MessageRoutingMode::SinglePartition));
        let producer = self.producer_name.clone().filter(|n| !n.is_empty());
        let max_pending = match self.max_pending_messages {
            None => DEFAULT_PENDING,
            Some(0) => MOST_PENDING,
            Some(n) => (n as usize).min(MOST_PENDING),
        };
        Ok(Routing { hashing, single, producer, max_pending, encryption: self.encryption()? })
    }
}

/// `encryptionKeyMetadata`: base64 of a JSON object of strings, or of a list of
/// `{"key": .., "value": ..}` (Pulsar's `KeyValue`).
fn key_metadata(text: &str) -> Option<Vec<(String, String)>> {
    let raw = base64::engine::general_purpose::STANDARD.decode(text).ok()?;
    match serde_json::from_slice::<Value>(&raw).ok()? {
        Value::Object(m) => m.into_iter().map(|(k, v)| Some((k, v.as_str()?.to_string()))).collect(),
        Value::Array(items) => items
            .iter()
            .map(|kv| Some((kv.get("key")?.as_str()?.to_string(), kv.get("value")?.as_str()?.to_string())))
            .collect(),
        _ => None,
    }
}

/// How a producer's messages pick their partition, and its name.
#[derive(Clone)]
pub(crate) struct Routing {
    pub hashing: KeyHashing,
    /// `SinglePartition`: keyless messages all go to one partition chosen at the handshake.
    pub single: bool,
    pub producer: Option<String>,
    /// Frames unanswered at once (`maxPendingMessages`).
    pub max_pending: usize,
    /// The data key of a producer whose client encrypts (PIP-290).
    pub encryption: Option<magnetar_storage::EncryptionKey>,
}

/// A producer attached to its topic (or one partition), ready to run on a connection.
pub(crate) struct ProducerSession {
    broker: Arc<Broker>,
    auth: AuthContext,
    route: Route,
    /// The producer counts toward maxProducers until its session ends.
    slots: ProducerSlots,
}

impl ProducerSession {
    /// The handshake's work: authorizes, creates a missing topic as the namespace allows and
    /// takes a producer slot of each partition (409 at the topic's maxProducers).
    pub(crate) async fn attach(
        s: &AppState,
        auth: AuthContext,
        topic: &TopicName,
        routing: &Routing,
    ) -> Result<ProducerSession, ApiError> {
        let caller = auth.caller();
        let Routing { hashing, single, producer, max_pending, encryption } = routing.clone();
        // A WebSocket producer is a shared producer, listed in topic stats under its name.
        let label = magnetar_broker::ProducerLabel {
            name: producer.clone().unwrap_or_default(),
            address: String::new(),
            connected_since: magnetar_core::now_millis(),
        };
        let slots = s
            .broker
            .publisher()
            .attach_producer_as(&caller, topic, magnetar_broker::AccessMode::Shared, &label, None)
            .await?;
        // A WebSocket producer carries no schema: refused (409) where schemaValidationEnforced holds.
        s.broker.topics().check_schemaless_producer(topic, false).await?;
        let partitions = slots.partitions;
        // SinglePartition: keyless messages all go to one partition chosen now.
        let fixed = (single && partitions > 0 && topic.partition_index().is_none())
            .then(|| topic.partition((magnetar_core::now_millis() as u32) % partitions));
        let route = Route { topic: topic.clone(), fixed, hashing, producer, max_pending, encryption };
        Ok(ProducerSession { broker: Arc::clone(&s.broker), auth, route, slots })
    }

    pub(crate) async fn run(self, socket: Socket) {
        let fenced = self.slots.fenced();
        run_producer(self.broker, socket, self.auth, self.route, fenced).await;
        drop(self.slots);
    }
}

/// Where a producer's messages go.
struct Route {
    topic: TopicName,
    fixed: Option<TopicName>,
    hashing: KeyHashing,
    /// The producer's name (`producerName`), when it gave one.
    producer: Option<String>,
    max_pending: usize,
    encryption: Option<magnetar_storage::EncryptionKey>,
}

/// `fenced` resolves when an exclusive binary producer fenced this (shared) one out of a
/// partition: the session closes, as Pulsar's closes its producers then.
async fn run_producer(
    broker: Arc<Broker>,
    socket: Socket,
    auth: AuthContext,
    route: Route,
    fenced: impl Future<Output = ()>,
) {
    let Socket { sink, mut stream } = socket;
    let (out, writer) = spawn_writer(&broker, sink);
    let (frames_tx, frames_rx) = mpsc::channel::<(PublishMessage, Option<Value>)>(MAX_BATCH);
    let caller = auth.caller();
    let topic = route.topic.clone();
    let producer = route.producer.clone();
    let encryption = route.encryption.clone();
    // One permit per frame read and not yet answered (`maxPendingMessages`): the answers give
    // them back, and without one the socket is not read.
    let window = Arc::new(tokio::sync::Semaphore::new(route.max_pending));
    let publisher =
        broker.spawn(publish_loop(Arc::clone(&broker), caller, route, frames_rx, out.clone(), Arc::clone(&window)));
    let end = must_end(auth, &broker);
    tokio::pin!(end);
    tokio::pin!(fenced);
    loop {
        let msg = tokio::select! {
            m = stream.next() => match m {
                Some(m) => m,
                None => break,
            },
            close = &mut end => {
                let _ = out.send(close).await;
                break;
            }
            _ = &mut fenced => {
                let _ = out.send(super::ws::fenced_out()).await;
                break;
            }
        };
        let reply = match msg {
            Message::Text(raw) => match parse_frame(raw.as_str(), producer.as_deref(), encryption.as_ref()) {
                // An oversized message is refused alone; the others of its batch go on.
                Ok((m, ctx)) => match broker.publisher().check_size(&topic, || "the message".into(), &m) {
                    Ok(()) => {
                        let Ok(permit) = window.acquire().await else { break };
                        permit.forget();
                        if frames_tx.send((m, ctx)).await.is_err() {
                            break;
                        }
                        None
                    }
                    Err(e) => Some(error_frame(8, ApiError::from(e).reason, ctx)),
                },
                Err(reply) => Some(reply),
            },
            Message::Binary(_) => Some(error_frame(3, "binary frames are not supported: send JSON text".into(), None)),
            Message::Close(_) => break,
            _ => None,
        };
        if let Some(reply) = reply
            && out.send(reply).await.is_err()
        {
            break;
        }
    }
    drop(frames_tx);
    let _ = publisher.await;
    drop(out);
    let _ = writer.await;
    await_close_answer(&broker, stream).await;
}

/// A batch queued for the WAL (or refused as a whole), its frames' contexts, and its share of
/// the connection's in-flight budget (returned once it is answered).
type QueuedBatch = (Result<PendingPublish, ApiError>, Vec<Option<Value>>, tokio::sync::OwnedSemaphorePermit);

/// Batches frames and queues each batch for the WAL without waiting for the previous one to be
/// durable: a connection with many messages in flight keeps the group commit busy.
async fn publish_loop(
    broker: Arc<Broker>,
    caller: Caller,
    route: Route,
    mut frames: mpsc::Receiver<(PublishMessage, Option<Value>)>,
    out: mpsc::Sender<Message>,
    window: Arc<tokio::sync::Semaphore>,
) {
    let (acks_tx, acks_rx) = mpsc::channel::<QueuedBatch>(BATCHES_IN_FLIGHT);
    let acker = broker.spawn(ack_loop(acks_rx, out, window));
    let budget = Arc::new(tokio::sync::Semaphore::new(BYTES_IN_FLIGHT));
    while let Some(first) = frames.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match frames.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        let (messages, contexts): (Vec<PublishMessage>, Vec<Option<Value>>) = batch.into_iter().unzip();
        let bytes = messages.iter().map(|m| m.payload.len()).sum::<usize>().clamp(1, BYTES_IN_FLIGHT);
        let Ok(share) = Arc::clone(&budget).acquire_many_owned(bytes as u32).await else { break };
        // Keyless messages of a SinglePartition producer go to its partition; keyed ones by hash.
        let target = match &route.fixed {
            Some(p) if messages.iter().all(|m| m.key.is_none()) => p,
            _ => &route.topic,
        };
        let pending =
            broker.publisher().enqueue(&caller, target, messages, route.hashing).await.map_err(ApiError::from);
        if acks_tx.send((pending, contexts, share)).await.is_err() {
            break;
        }
    }
    drop(acks_tx);
    let _ = acker.await;
}

/// Answers each message once it is durable (or failed), in the order the frames came: every
/// message has its own result, so a client retries only what was not stored.
///
/// A message refused because the topic's bundle is moving to another broker (nothing was
/// stored) is not answered: once everything before it is, the session is closed with 1012 and
/// the client reconnects, reaching the new owner, and sends it again.
async fn ack_loop(
    mut batches: mpsc::Receiver<QueuedBatch>,
    out: mpsc::Sender<Message>,
    window: Arc<tokio::sync::Semaphore>,
) {
    while let Some((pending, contexts, _share)) = batches.recv().await {
        let answered = contexts.len();
        let mut moved = false;
        let replies: Vec<Message> = match pending {
            Ok(p) => p
                .durable()
                .await
                .into_iter()
                .zip(contexts)
                .filter_map(|(outcome, ctx)| match outcome {
                    Ok(id) => Some(ok_frame(&id.to_base64(), ctx)),
                    Err(magnetar_broker::BrokerError::NotOwner(_)) => {
                        moved = true;
                        None
                    }
                    Err(e) => Some(error_frame(8, ApiError::from(e).reason, ctx)),
                })
                .collect(),
            Err(e) if e.not_owner => {
                moved = true;
                Vec::new()
            }
            Err(e) => contexts.into_iter().map(|ctx| error_frame(8, e.reason.clone(), ctx)).collect(),
        };
        for r in replies {
            if out.send(r).await.is_err() {
                return;
            }
        }
        window.add_permits(answered);
        if moved {
            let _ = out.send(super::ws::topic_unloaded()).await;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(max_pending_messages: Option<u32>) -> usize {
        ProducerQuery { max_pending_messages, ..Default::default() }.routing().expect("valid").max_pending
    }

    #[test]
    fn max_pending_messages_defaults_to_pulsars_1000_and_is_bounded() {
        assert_eq!(window(None), DEFAULT_PENDING);
        assert_eq!(window(Some(7)), 7);
        assert_eq!(window(Some(0)), MOST_PENDING, "0: no count limit of its own, the most");
        assert_eq!(window(Some(u32::MAX)), MOST_PENDING);
    }
}
