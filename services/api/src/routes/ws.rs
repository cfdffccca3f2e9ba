//! Pulsar-compatible WebSocket API (`/ws/v2/{producer,consumer,reader}/persistent/...`): URLs,
//! query parameters and JSON frames as Pulsar's WebSocket service has them; message ids are
//! base64 of the `MessageIdData` protobuf. Handshake errors are plain HTTP answers with a
//! `{"reason"}` body (400 bad parameter, 404 no topic, 409 busy subscription); once upgraded,
//! each connection runs one task that reads frames and one that writes them, joined by a
//! bounded channel so a slow client slows its own session down, never the broker's memory.

use crate::AppState;
use crate::error::{ApiError, BadRequest};
use crate::extract::WsUpgrade;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use futures::{Sink, SinkExt, Stream, StreamExt};
use magnetar_broker::Broker;
use serde::de::{DeserializeOwned, Error as _, IntoDeserializer};
use serde::{Deserialize, Deserializer};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(super::ws_producer::router())
        .merge(super::ws_consumer::router())
        .routes(routes!(pingpong))
        .routes(routes!(pingpong_v2))
}

/// Takes one of the broker's WebSocket session permits, or refuses the handshake with 503: a
/// broker serves a bounded number of sessions (`http.max_websocket_sessions`).
pub(crate) fn session_permit(s: &AppState) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
    Arc::clone(&s.ws_sessions).try_acquire_owned().map_err(|_| {
        s.broker.connection_metrics().refused();
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "too many WebSocket sessions: this broker serves at most {}; retry later",
                s.http.max_websocket_sessions
            ),
        )
    })
}

/// Runs an upgraded session as a task of the broker (shutdown waits for it), holding its permit
/// until it ends.
pub(crate) async fn run_tracked<F>(broker: Arc<Broker>, permit: tokio::sync::OwnedSemaphorePermit, session: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let connection = broker.connection_metrics().opened();
    let task = broker.spawn(async move {
        session.await;
        drop(connection);
        drop(permit);
    });
    let _ = task.await;
}

/// The close frame sent when the broker shuts down (1001 = going away); clients reconnect.
fn going_away() -> Message {
    Message::Close(Some(axum::extract::ws::CloseFrame {
        code: 1001,
        reason: Utf8Bytes::from_static("broker shutting down"),
    }))
}

/// The close frame sent when the topic is unloaded or deleted under the session (1012 = service
/// restart: reconnect); the client attaches to what is loaded then.
pub(crate) fn topic_unloaded() -> Message {
    Message::Close(Some(axum::extract::ws::CloseFrame {
        code: 1012,
        reason: Utf8Bytes::from_static("topic unloaded; reconnect"),
    }))
}

/// The close of a producer session an exclusive producer fenced out (a policy violation:
/// another producer holds the topic now).
pub(crate) fn fenced_out() -> Message {
    Message::Close(Some(axum::extract::ws::CloseFrame {
        code: 1008,
        reason: Utf8Bytes::from_static("fenced out: an exclusive producer took the topic"),
    }))
}

/// Frames a session may queue for its writer before the session itself waits.
pub(crate) const OUTBOX: usize = 256;
/// Keep-alive ping interval for idle connections.
const PING_EVERY: Duration = Duration::from_secs(30);

/// A query value parsed with `FromStr`, as Pulsar's WebSocket clients send it: empty means
/// absent (`#[serde(default, deserialize_with = "lenient")]`).
pub(crate) fn lenient<'de, D: Deserializer<'de>, T: FromStr>(d: D) -> Result<Option<T>, D::Error> {
    match Option::<String>::deserialize(d)?.filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| D::Error::custom(format!("invalid value `{v}`"))),
    }
}

/// A query value naming a variant of `T`; empty means absent.
pub(crate) fn lenient_enum<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
    match Option::<String>::deserialize(d)?.filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => T::deserialize(IntoDeserializer::<D::Error>::into_deserializer(v.as_str())).map(Some),
    }
}

/// The handshake answers of every WebSocket route, for their `#[utoipa::path]`.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub(crate) enum Handshake {
    /// The session runs; frames are Pulsar's JSON (see docs/websocket.md).
    #[response(status = 101)]
    SwitchingProtocols,
}

/// The two halves of a session's connection: the client's WebSocket, or, for a session on one
/// partition that a whole-topic session of this broker opened (`fanout/ws`), an in-memory pair.
/// A stream that ends (or fails) is a closed connection.
pub(crate) struct Socket {
    pub sink: std::pin::Pin<Box<dyn Sink<Message, Error = ()> + Send>>,
    pub stream: std::pin::Pin<Box<dyn Stream<Item = Message> + Send>>,
}

impl Socket {
    pub(crate) fn from_ws(socket: WebSocket) -> Socket {
        let (sink, stream) = socket.split();
        Socket { sink: Box::pin(sink.sink_map_err(|_| ())), stream: Box::pin(ok_frames(stream)) }
    }

    pub(crate) fn new<Si, St>(sink: Si, stream: St) -> Socket
    where
        Si: Sink<Message> + Send + 'static,
        St: Stream<Item = Message> + Send + 'static,
    {
        Socket { sink: Box::pin(sink.sink_map_err(|_| ())), stream: Box::pin(stream) }
    }

    /// Two connected ends in memory (`OUTBOX` frames queued each way): what one end sends, the
    /// other receives; closing or dropping one end ends the other's stream.
    pub(crate) fn pair() -> (Socket, Socket) {
        let (a_tx, a_rx) = futures::channel::mpsc::channel::<Message>(OUTBOX);
        let (b_tx, b_rx) = futures::channel::mpsc::channel::<Message>(OUTBOX);
        (Socket::new(a_tx, b_rx), Socket::new(b_tx, a_rx))
    }
}

/// The frames of a connection until it fails.
pub(crate) fn ok_frames<T, E>(stream: impl Stream<Item = Result<T, E>>) -> impl Stream<Item = T> {
    stream.take_while(|r| std::future::ready(r.is_ok())).filter_map(|r| std::future::ready(r.ok()))
}

/// Owns the sending half of the socket: forwards queued frames and pings idle connections.
pub(crate) fn spawn_writer(
    broker: &Broker,
    mut sink: std::pin::Pin<Box<dyn Sink<Message, Error = ()> + Send>>,
) -> (mpsc::Sender<Message>, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<Message>(OUTBOX);
    let task = broker.spawn(async move {
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(m) => {
                        // Queue everything already waiting and flush once: one write for a burst
                        // of acknowledgements or deliveries instead of one per frame.
                        let mut close = matches!(m, Message::Close(_));
                        if sink.feed(m).await.is_err() {
                            break;
                        }
                        while !close && let Ok(m) = rx.try_recv() {
                            close = matches!(m, Message::Close(_));
                            if sink.feed(m).await.is_err() {
                                break;
                            }
                        }
                        if sink.flush().await.is_err() || close {
                            break;
                        }
                    }
                    None => break,
                },
                _ = ping.tick() => {
                    if sink.send(Message::Ping(Default::default())).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = sink.close().await;
    });
    (tx, task)
}

/// How long a session whose close frame went out waits for the client's answer.
const CLOSE_ANSWER_WAIT: Duration = Duration::from_secs(5);

/// The end of a session's connection once its close frame went out (its writer is done, or
/// `forward_ws` passed the owner's close on): the client's frames are read on, and dropped, until
/// it answers the close or goes away (RFC 6455's closing handshake), for at most
/// `CLOSE_ANSWER_WAIT`, and not once the broker shuts down.
///
/// A connection dropped with frames unread is reset, not closed, and a reset throws away what
/// the client had not received yet, the close frame last. A broker fanning a whole topic out
/// (`fanout/ws`) sends acks to each partition's session all the time: its session on a partition
/// whose bundle moved would end without the 1012 that tells it to reopen the session on the new
/// owner.
pub(crate) async fn await_close_answer(
    broker: &Broker,
    mut stream: std::pin::Pin<Box<dyn Stream<Item = Message> + Send>>,
) {
    let read_on = async {
        while let Some(m) = stream.next().await {
            if matches!(m, Message::Close(_)) {
                return;
            }
        }
    };
    let shutdown = broker.shutdown_token();
    tokio::select! {
        _ = read_on => {}
        _ = tokio::time::sleep(CLOSE_ANSWER_WAIT) => {}
        _ = shutdown.cancelled() => {}
    }
}

/// Resolves, with the close frame to send, when a session must end whatever its client does:
/// its token expired or was revoked (1008), or the broker shuts down (1001).
pub(crate) async fn must_end(auth: crate::AuthContext, broker: &Broker) -> Message {
    let shutdown = broker.shutdown_token();
    tokio::select! {
        _ = credential_lapsed(auth) => lapsed_close(),
        _ = shutdown.cancelled() => going_away(),
    }
}

/// Resolves once the session's token has expired or was revoked (never with authentication
/// off), so long-lived sessions end when their credential does (a Pulsar pain point).
async fn credential_lapsed(auth: crate::AuthContext) {
    if auth.role.is_none() {
        // Authentication off: nothing can lapse.
        std::future::pending::<()>().await;
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        if !auth.still_valid() {
            return;
        }
    }
}

/// The close frame sent when the credential lapses (1008 = policy violation).
fn lapsed_close() -> Message {
    Message::Close(Some(axum::extract::ws::CloseFrame {
        code: 1008,
        reason: Utf8Bytes::from_static("token expired or revoked"),
    }))
}

pub(crate) fn text(value: &serde_json::Value) -> Message {
    Message::Text(Utf8Bytes::from(value.to_string()))
}

/// WebSocket ping/pong
///
/// Answers pings (the WebSocket layer does) and echoes nothing else.
#[utoipa::path(get, path = "/ws/pingpong", tag = "websocket", security(()), responses(Handshake, BadRequest))]
async fn pingpong(ws: WsUpgrade) -> axum::response::Response {
    upgrade_pingpong(ws)
}

/// WebSocket ping/pong (v2 path)
///
/// As `/ws/pingpong`.
#[utoipa::path(get, path = "/ws/v2/pingpong", tag = "websocket", security(()), responses(Handshake, BadRequest))]
async fn pingpong_v2(ws: WsUpgrade) -> axum::response::Response {
    upgrade_pingpong(ws)
}

fn upgrade_pingpong(WsUpgrade(ws): WsUpgrade) -> axum::response::Response {
    ws.on_upgrade(|socket| async move {
        let (_sink, mut stream) = socket.split();
        while let Some(Ok(msg)) = stream.next().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    })
}
