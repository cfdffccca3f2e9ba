//! WebSocket consumer (`/ws/v2/consumer/persistent/{tenant}/{namespace}/{topic}/{subscription}`)
//! and reader (`/ws/v2/reader/persistent/{tenant}/{namespace}/{topic}`).
//!
//! Frames out: `{"messageId":"<base64>","payload":"<base64>","properties":{},"publishTime":"..",
//! "redeliveryCount":0,"eventTime":"..","key":".."}`. Frames in: `{"messageId":".."}` (ack),
//! `{"type":"negativeAcknowledge","messageId":".."}`, `{"type":"unsubscribe"}`,
//! `{"type":"permit","permitMessages":N}` (pull mode), `{"type":"isEndOfTopic"}`. Flow control:
//! push mode keeps at most `receiverQueueSize` messages unacknowledged; pull mode delivers only
//! against permits. A malformed frame is answered with `{"error":..,"errorCode":3}` and the
//! session goes on.

use super::ws::{
    Handshake, Socket, await_close_answer, lenient, lenient_enum, must_end, run_tracked, session_permit, spawn_writer,
    text, topic_unloaded,
};
use crate::AppState;
use crate::error::{
    ApiError, BadRequest, Conflict, Forbidden, NotFound, PreconditionFailed, TooManyRequests, Unauthorized, Unavailable,
};
use crate::extract::{AuthContext, Query, SubscriptionParam, TopicParam, WsUpgrade};
use crate::fanout::ws::WholeSession;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::response::Response;
use base64::Engine;
use futures::StreamExt;
use magnetar_broker::{
    Broker, ConsumerSession, DeadLetterPolicy, PulledMessage, StartPosition, SubType, SubscribeOptions,
};
use magnetar_core::time::format_rfc3339;
use magnetar_core::{MessageId, SubscriptionName, TopicName};
use serde::Deserialize;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(consume_handler)).routes(routes!(read_handler))
}

/// Pulsar caps the WebSocket receiver queue at 1000.
const MAX_RECEIVER_QUEUE: u64 = 1000;

#[derive(Clone)]
pub(crate) struct Flow {
    pub pull_mode: bool,
    pub queue: u64,
    nack_delay: Duration,
    /// Readers only: deliver at most this many messages a second, skip (and count) the rest.
    pub sample: Option<Sampler>,
    /// What to do with end-to-end encrypted messages, which the broker cannot decrypt.
    pub crypto: CryptoFailureAction,
}

/// Pulsar's `cryptoFailureAction`: what a consumer does with a message it cannot decrypt. The
/// broker holds no private keys, so this applies to every end-to-end encrypted message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub(crate) enum CryptoFailureAction {
    /// Not delivered, left unacknowledged (held by this consumer until it closes; another
    /// consumer may take it then).
    Fail,
    /// Acknowledged and not delivered.
    Discard,
    /// The default of Pulsar's WebSocket API (since 2.8): delivered as stored (the encrypted
    /// payload) with its `encryptionContext`; an encrypted batch comes as one message.
    #[default]
    Consume,
}

/// Server-side sampling of a reader (Magnetar's `maxMessagesPerSecond`): a live view (the
/// console's tail) keeps up with any rate and never holds the reader back; what it skips is
/// acknowledged by the broker and reported as `{"type":"skipped","count":N}` at most once a
/// second. Readers only: a reader's acknowledgements only move its own, non-durable position.
#[derive(Clone)]
pub(crate) struct Sampler {
    per_second: u32,
    window_start: tokio::time::Instant,
    sent: u32,
    skipped: u64,
}

impl Sampler {
    pub(crate) fn new(per_second: u32) -> Sampler {
        Sampler { per_second, window_start: tokio::time::Instant::now(), sent: 0, skipped: 0 }
    }

    /// Whether to send this message now; rolls the one-second window.
    fn admit(&mut self, now: tokio::time::Instant) -> bool {
        if now.duration_since(self.window_start) >= Duration::from_secs(1) {
            self.window_start = now;
            self.sent = 0;
        }
        if self.sent < self.per_second {
            self.sent += 1;
            true
        } else {
            self.skipped += 1;
            false
        }
    }

    /// The report of what was skipped since the last one, once the window it belongs to ended.
    fn report(&mut self, now: tokio::time::Instant) -> Option<Message> {
        if self.skipped == 0 || now.duration_since(self.window_start) < Duration::from_secs(1) {
            return None;
        }
        let count = std::mem::take(&mut self.skipped);
        // Written out so that `type` comes first: clients tell this frame from a message by
        // its start without parsing every frame (the console does).
        Some(Message::Text(format!("{{\"type\":\"skipped\",\"count\":{count}}}").into()))
    }

    fn next_report(&self) -> Option<tokio::time::Instant> {
        (self.skipped > 0).then(|| self.window_start + Duration::from_secs(1))
    }
}

/// Where a new subscription starts.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
enum SubscriptionInitialPosition {
    #[serde(alias = "latest")]
    Latest,
    #[serde(alias = "earliest")]
    Earliest,
}

/// The consumer's query parameters (Pulsar's others are accepted and ignored).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct ConsumerQuery {
    /// Default `Exclusive`.
    #[serde(default, deserialize_with = "lenient_enum")]
    #[param(inline)]
    subscription_type: Option<SubType>,
    /// Where a subscription this creates starts (default `Latest`).
    #[serde(default, deserialize_with = "lenient_enum")]
    #[param(inline)]
    subscription_initial_position: Option<SubscriptionInitialPosition>,
    /// Unacknowledged deliveries at once in push mode (default and most 1000).
    #[serde(default, deserialize_with = "lenient")]
    receiver_queue_size: Option<u64>,
    /// Redeliver what is not acknowledged in time: 0 off (default), else at least 1000.
    #[serde(default, deserialize_with = "lenient")]
    ack_timeout_millis: Option<u64>,
    /// Delay before a negatively acknowledged message is redelivered (default 60000).
    #[serde(default, deserialize_with = "lenient")]
    negative_ack_redelivery_delay: Option<u64>,
    /// Deliveries before a message goes to the dead-letter topic (with `deadLetterTopic`: 16 when unset).
    #[serde(default, deserialize_with = "lenient")]
    max_redeliver_count: Option<u32>,
    /// Dead-letter topic (default `{topic}-{subscription}-DLQ` when `maxRedeliverCount` is set).
    #[serde(default, deserialize_with = "lenient")]
    dead_letter_topic: Option<String>,
    /// Deliver only against `permit` frames (default false).
    #[serde(default, deserialize_with = "lenient")]
    pull_mode: Option<bool>,
    #[serde(default, deserialize_with = "lenient")]
    consumer_name: Option<String>,
    /// Consumers of a higher priority (lower number) are served first (default 0).
    #[serde(default, deserialize_with = "lenient")]
    priority_level: Option<i32>,
    /// Magnetar (Pulsar's clients' `readCompacted`, which its WebSocket API lacks): below the
    /// compacted horizon, read the compacted view (the latest message of each key), then the
    /// live topic. Exclusive and Failover subscriptions only, else 400.
    #[serde(default, deserialize_with = "lenient")]
    read_compacted: Option<bool>,
    /// `CONSUME` (default: encrypted messages are delivered as stored, with their
    /// `encryptionContext`), `DISCARD` (acknowledged unseen) or `FAIL` (not delivered).
    #[serde(default, deserialize_with = "lenient_enum")]
    #[param(inline)]
    crypto_failure_action: Option<CryptoFailureAction>,
    /// A JWT, for clients that cannot send `Authorization` (used only without that header).
    #[allow(dead_code)]
    token: Option<String>,
}

/// WebSocket consumer
///
/// Frames out: `{"messageId":"<base64>","payload":"<base64>","properties":{},"publishTime":"..",
/// "redeliveryCount":0}`; frames in: `{"messageId":".."}` (ack), `{"type":"negativeAcknowledge",
/// "messageId":".."}`, `{"type":"unsubscribe"}`, `{"type":"permit","permitMessages":N}`,
/// `{"type":"isEndOfTopic"}`. 409 when the subscription is busy (another Exclusive consumer) or
/// a consumer limit is reached, 412 for a subscription type the topic does not enable, 404 for a
/// missing subscription when automatic subscription creation is off, 429 over the subscribe rate.
#[utoipa::path(
    get,
    path = "/ws/v2/consumer/persistent/{tenant}/{namespace}/{topic}/{subscription}",
    tag = "websocket",
    params(SubscriptionParam, ConsumerQuery),
    responses(
        Handshake,
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        PreconditionFailed,
        TooManyRequests,
        Unavailable
    )
)]
async fn consume_handler(
    State(s): State<AppState>,
    auth: AuthContext,
    SubscriptionParam(topic, sub): SubscriptionParam,
    Query(q): Query<ConsumerQuery>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    WholeSession(whole): WholeSession,
    WsUpgrade(ws): WsUpgrade,
) -> Result<Response, ApiError> {
    let (opts, flow) = consumer_options(&topic, &sub, &q, peer)?;
    if let Some(handshake) = whole {
        // A whole partitioned topic in a broker tier: one session per partition behind this one
        // (all with this consumer name).
        let plan = crate::fanout::ws_consumer::Plan::Consumer { sub, opts: Box::new(opts), flow };
        return crate::fanout::ws_consumer::open(&s, auth, handshake, plan, ws).await;
    }
    // Authorizes consuming (and producing to the dead-letter topic), creates what is missing.
    let session = s.broker.subscriptions().subscribe(&auth.caller(), &topic, &sub, opts).await?;
    upgrade(&s, ws, session, flow, auth)
}

/// A consumer's subscription options and flow control from its query; `topic` names the default
/// dead-letter topic (`{topic}-{subscription}-DLQ`).
fn consumer_options(
    topic: &TopicName,
    sub: &SubscriptionName,
    q: &ConsumerQuery,
    peer: SocketAddr,
) -> Result<(SubscribeOptions, Flow), ApiError> {
    let sub_type = q.subscription_type.unwrap_or(SubType::Exclusive);
    let initial_position = match q.subscription_initial_position {
        None | Some(SubscriptionInitialPosition::Latest) => StartPosition::Latest,
        Some(SubscriptionInitialPosition::Earliest) => StartPosition::Earliest,
    };
    let ack_timeout_ms = q.ack_timeout_millis.unwrap_or(0);
    if ack_timeout_ms > 0 && ack_timeout_ms < 1000 {
        return Err(ApiError::bad_request(format!(
            "ackTimeoutMillis {ack_timeout_ms} must be 0 (off) or at least 1000"
        )));
    }
    let max_redeliver = q.max_redeliver_count.unwrap_or(0);
    let dead_letter = match (q.dead_letter_topic.as_deref(), max_redeliver) {
        (None, 0) => None,
        (dlq, n) => {
            let name = match dlq {
                Some(t) => t.parse().or_else(|_| TopicName::new(topic.domain(), topic.namespace().clone(), t))?,
                None => {
                    TopicName::new(topic.domain(), topic.namespace().clone(), format!("{}-{sub}-DLQ", topic.local()))?
                }
            };
            // Pulsar's client requires maxRedeliverCount > 0 with a DLQ; default it to 16 as the client.
            Some(DeadLetterPolicy { topic: name, max_redeliver: if n == 0 { 16 } else { n } })
        }
    };
    let flow = Flow {
        pull_mode: q.pull_mode.unwrap_or(false),
        queue: q.receiver_queue_size.unwrap_or(MAX_RECEIVER_QUEUE).clamp(1, MAX_RECEIVER_QUEUE),
        nack_delay: Duration::from_millis(q.negative_ack_redelivery_delay.unwrap_or(60_000)),
        sample: None,
        crypto: q.crypto_failure_action.unwrap_or_default(),
    };
    let opts = SubscribeOptions {
        sticky_ranges: None,
        sub_type,
        consumer_name: q
            .consumer_name
            .clone()
            .unwrap_or_else(|| format!("ws-{}", magnetar_core::now_millis() % 100_000)),
        priority: q.priority_level.unwrap_or(0),
        initial_position,
        address: peer.to_string(),
        ack_timeout: (ack_timeout_ms > 0).then(|| Duration::from_millis(ack_timeout_ms.max(1000))),
        dead_letter,
        read_compacted: q.read_compacted.unwrap_or(false),
        shown: Default::default(),
        properties: Default::default(),
    };
    Ok((opts, flow))
}

/// The reader's query parameters (Pulsar's others are accepted and ignored).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct ReaderQuery {
    /// `earliest`, `latest` (default) or a base64 message id to start after.
    #[serde(default, deserialize_with = "lenient")]
    message_id: Option<String>,
    /// Unacknowledged deliveries at once (default and most 1000).
    #[serde(default, deserialize_with = "lenient")]
    receiver_queue_size: Option<u64>,
    #[serde(default, deserialize_with = "lenient")]
    reader_name: Option<String>,
    /// Magnetar: deliver at most this many messages a second and skip the rest, reporting them
    /// as `{"type":"skipped","count":N}` frames (for live views that must keep up).
    #[serde(default, deserialize_with = "lenient")]
    #[param(minimum = 1)]
    max_messages_per_second: Option<u32>,
    /// Magnetar (Pulsar's readers' `readCompacted`, which its WebSocket API lacks): below the
    /// compacted horizon, read the compacted view (the latest message of each key), then the
    /// live topic.
    #[serde(default, deserialize_with = "lenient")]
    read_compacted: Option<bool>,
    /// `CONSUME` (default: encrypted messages are delivered as stored, with their
    /// `encryptionContext`), `DISCARD` (acknowledged unseen) or `FAIL` (not delivered).
    #[serde(default, deserialize_with = "lenient_enum")]
    #[param(inline)]
    crypto_failure_action: Option<CryptoFailureAction>,
    /// A JWT, for clients that cannot send `Authorization` (used only without that header).
    #[allow(dead_code)]
    token: Option<String>,
}

/// WebSocket reader
///
/// Frames as the consumer's; a reader acknowledges only to free its window.
#[utoipa::path(
    get,
    path = "/ws/v2/reader/persistent/{tenant}/{namespace}/{topic}",
    tag = "websocket",
    params(TopicParam, ReaderQuery),
    responses(Handshake, BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unavailable)
)]
async fn read_handler(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
    Query(q): Query<ReaderQuery>,
    WholeSession(whole): WholeSession,
    WsUpgrade(ws): WsUpgrade,
) -> Result<Response, ApiError> {
    let options = reader_options(&q)?;
    if let Some(handshake) = whole {
        // A whole partitioned topic in a broker tier: one session per partition behind this one.
        let plan = crate::fanout::ws_consumer::Plan::Reader { options, per_second: q.max_messages_per_second };
        return crate::fanout::ws_consumer::open(&s, auth, handshake, plan, ws).await;
    }
    let ReaderOptions { start, name, compacted, flow } = options;
    let session = s
        .broker
        .subscriptions()
        .create_reader(&auth.caller(), &topic, start, &name, compacted, Default::default())
        .await?;
    upgrade(&s, ws, session, flow, auth)
}

/// A reader's start, name and flow control from its query.
pub(crate) struct ReaderOptions {
    pub start: StartPosition,
    pub name: String,
    pub compacted: bool,
    pub flow: Flow,
}

/// Where a reader given message `id` starts: after it, as Pulsar's readers do
/// (startMessageIdInclusive = false).
pub(crate) fn start_after(id: &str) -> Result<StartPosition, ApiError> {
    Ok(StartPosition::Offset(MessageId::from_base64(id)?.offset() + 1))
}

fn reader_options(q: &ReaderQuery) -> Result<ReaderOptions, ApiError> {
    let start = match q.message_id.as_deref().unwrap_or("latest") {
        "latest" => StartPosition::Latest,
        "earliest" => StartPosition::Earliest,
        id => start_after(id)?,
    };
    let flow = Flow {
        pull_mode: false,
        queue: q.receiver_queue_size.unwrap_or(MAX_RECEIVER_QUEUE).clamp(1, MAX_RECEIVER_QUEUE),
        nack_delay: Duration::ZERO,
        sample: q.max_messages_per_second.map(|n| Sampler::new(n.max(1))),
        crypto: q.crypto_failure_action.unwrap_or_default(),
    };
    let name = q.reader_name.clone().unwrap_or_else(|| "reader".to_string());
    Ok(ReaderOptions { start, name, compacted: q.read_compacted.unwrap_or(false), flow })
}

fn upgrade(
    s: &AppState,
    ws: WebSocketUpgrade,
    session: ConsumerSession,
    flow: Flow,
    auth: AuthContext,
) -> Result<Response, ApiError> {
    let permit = session_permit(s)?;
    let broker = Arc::clone(&s.broker);
    Ok(ws.on_upgrade(move |socket| {
        let run = run_session(Arc::clone(&broker), Socket::from_ws(socket), session, flow, auth);
        run_tracked(broker, permit, run)
    }))
}

fn message_frame(m: &PulledMessage) -> Message {
    let props: serde_json::Map<String, Value> =
        m.record.properties.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    let mut v = json!({
        "messageId": m.id.to_base64(),
        "payload": base64::engine::general_purpose::STANDARD.encode(&m.record.payload),
        "properties": props,
        "publishTime": format_rfc3339(m.record.publish_time),
        "redeliveryCount": m.redelivery_count,
    });
    if let Some(t) = m.record.event_time {
        v["eventTime"] = Value::String(format_rfc3339(t));
    }
    if let Some(k) = &m.record.key {
        v["key"] = Value::String(k.clone());
    }
    if let Some(c) = super::consume::EncryptionContextJson::of(&m.record) {
        v["encryptionContext"] = serde_json::to_value(c).unwrap_or_default();
    }
    text(&v)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConsumerCommand {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub message_id: Option<String>,
    #[serde(default)]
    pub permit_messages: Option<u64>,
}

pub(crate) fn error_reply(code: u8, msg: impl Into<String>) -> Message {
    text(&json!({ "error": msg.into(), "errorCode": code }))
}

enum Outcome {
    Continue,
    Close,
}

async fn handle_command(
    session: &ConsumerSession,
    raw: &str,
    flow: &Flow,
    permits: &mut u64,
    out: &mpsc::Sender<Message>,
) -> Outcome {
    let cmd: ConsumerCommand = match serde_json::from_str(raw) {
        Ok(c) => c,
        Err(e) => {
            let _ = out.send(error_reply(3, format!("invalid JSON frame: {e}"))).await;
            return Outcome::Continue;
        }
    };
    let id = |cmd: &ConsumerCommand| -> Result<MessageId, String> {
        let raw = cmd.message_id.as_deref().ok_or("messageId is missing")?;
        MessageId::from_base64(raw).map_err(|e| e.to_string())
    };
    let result = match cmd.kind.as_deref() {
        None | Some("ack") => match id(&cmd) {
            Ok(id) => session.ack_streamed(&id).await.map_err(|e| ApiError::from(e).reason),
            Err(e) => Err(e),
        },
        Some("negativeAcknowledge") => match id(&cmd) {
            Ok(id) => session.nack(&id, flow.nack_delay).map_err(|e| ApiError::from(e).reason),
            Err(e) => Err(e),
        },
        Some("permit") => {
            *permits = permits.saturating_add(cmd.permit_messages.unwrap_or(0));
            Ok(())
        }
        Some("isEndOfTopic") => {
            let _ = out.send(text(&json!({ "endOfTopic": session.end_of_topic() }))).await;
            Ok(())
        }
        Some("unsubscribe") => {
            return match session.unsubscribe().await {
                Ok(()) => {
                    // Said with a close frame, so that a fan-out (`fanout/ws`) tells this end from
                    // a lost connection, after which it would reopen the session.
                    let done = CloseFrame { code: 1000, reason: Utf8Bytes::from_static("unsubscribed") };
                    let _ = out.send(Message::Close(Some(done))).await;
                    Outcome::Close
                }
                Err(e) => {
                    let _ = out.send(error_reply(8, ApiError::from(e).reason)).await;
                    Outcome::Continue
                }
            };
        }
        Some(other) => Err(format!("unknown frame type `{other}`")),
    };
    if let Err(e) = result {
        let _ = out.send(error_reply(3, e)).await;
    }
    Outcome::Continue
}

/// One consumer or reader session: deliver within the flow-control window, handle commands.
pub(crate) async fn run_session(
    broker: Arc<Broker>,
    socket: Socket,
    session: ConsumerSession,
    mut flow: Flow,
    auth: AuthContext,
) {
    let session = Arc::new(session);
    let end = must_end(auth, &broker);
    tokio::pin!(end);
    let Socket { sink, mut stream } = socket;
    let (out, writer) = spawn_writer(&broker, sink);
    let mut permits: u64 = 0;
    'session: loop {
        // maxUnackedMessagesPerConsumer bounds what is held unacknowledged, in both modes.
        let unacked = session.unacked();
        let room = session.max_unacked().saturating_sub(unacked);
        let window =
            if flow.pull_mode { permits.min(room) } else { flow.queue.min(room + unacked).saturating_sub(unacked) };
        let tokens = session.wait_tokens();
        if window > 0 {
            match session.receive(window.min(100) as usize).await {
                Ok(msgs) if !msgs.is_empty() => {
                    if flow.pull_mode {
                        permits = permits.saturating_sub(msgs.len() as u64);
                    }
                    let now = tokio::time::Instant::now();
                    for m in &msgs {
                        if m.record.encryption().is_some() && flow.crypto != CryptoFailureAction::Consume {
                            if flow.crypto == CryptoFailureAction::Discard {
                                let _ = session.ack_streamed(&m.id).await;
                            }
                            continue;
                        }
                        if let Some(sampler) = flow.sample.as_mut()
                            && !sampler.admit(now)
                        {
                            let _ = session.ack_streamed(&m.id).await;
                            continue;
                        }
                        if out.send(message_frame(m)).await.is_err() {
                            break 'session;
                        }
                    }
                    if let Some(report) = flow.sample.as_mut().and_then(|s| s.report(now))
                        && out.send(report).await.is_err()
                    {
                        break 'session;
                    }
                    // Deliver more before blocking, but still read commands (acks) promptly.
                    while let Some(Some(msg)) = futures::FutureExt::now_or_never(stream.next()) {
                        if !handle_frame(&session, msg, &flow, &mut permits, &out).await {
                            break 'session;
                        }
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = out.send(error_reply(8, ApiError::from(e).reason)).await;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        let report_at = flow.sample.as_ref().and_then(Sampler::next_report);
        tokio::select! {
            frame = stream.next() => match frame {
                Some(msg) => {
                    if !handle_frame(&session, msg, &flow, &mut permits, &out).await {
                        break;
                    }
                }
                _ => break,
            },
            _ = async { tokio::time::sleep_until(report_at.expect("guarded")).await }, if report_at.is_some() => {
                let now = tokio::time::Instant::now();
                if let Some(report) = flow.sample.as_mut().and_then(|s| s.report(now))
                    && out.send(report).await.is_err()
                {
                    break;
                }
            }
            _ = session.changed(tokens), if window > 0 => {}
            close = &mut end => {
                let _ = out.send(close).await;
                break;
            }
            _ = session.closed() => {
                let _ = out.send(topic_unloaded()).await;
                break;
            }
        }
    }
    session.close();
    session.flush_acks().await;
    // Its consumer slots are not held while the connection closes.
    drop(session);
    drop(out);
    let _ = writer.await;
    await_close_answer(&broker, stream).await;
}

/// Returns false when the session must end.
async fn handle_frame(
    session: &ConsumerSession,
    msg: Message,
    flow: &Flow,
    permits: &mut u64,
    out: &mpsc::Sender<Message>,
) -> bool {
    match msg {
        Message::Text(raw) => {
            matches!(handle_command(session, raw.as_str(), flow, permits, out).await, Outcome::Continue)
        }
        Message::Close(_) => false,
        _ => true,
    }
}
