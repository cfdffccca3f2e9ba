//! Pulsar-compatible WebSocket API (`/ws/v2/{producer,consumer,reader}/persistent/...`): URLs,
//! query parameters and JSON frames as Pulsar's WebSocket service has them; message ids are
//! base64 of the `MessageIdData` protobuf. Handshake errors are plain HTTP answers with a
//! `{"reason"}` body (400 bad parameter, 404 no topic, 409 busy subscription); once upgraded,
//! each connection runs one task that reads frames and one that writes them, joined by a
//! bounded channel so a slow client slows its own session down, never the broker's memory.

use crate::AppState;
use crate::error::ApiError;
use axum::Router;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use axum::routing::get;
use futures::{SinkExt, StreamExt};
use magnetar_broker::Broker;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

pub use super::ws_consumer::{consume_handler, read_handler};
pub use super::ws_producer::produce_handler;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ws/v2/producer/persistent/{tenant}/{namespace}/{topic}", get(produce_handler))
        .route("/ws/v2/consumer/persistent/{tenant}/{namespace}/{topic}/{subscription}", get(consume_handler))
        .route("/ws/v2/reader/persistent/{tenant}/{namespace}/{topic}", get(read_handler))
        .route("/ws/pingpong", get(pingpong))
        .route("/ws/v2/pingpong", get(pingpong))
}

/// Takes one of the broker's WebSocket session permits, or refuses the handshake with 503: a
/// broker serves a bounded number of sessions (`http.max_websocket_sessions`).
pub(crate) fn session_permit(s: &AppState) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
    Arc::clone(&s.ws_sessions).try_acquire_owned().map_err(|_| {
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
    let task = broker.spawn(async move {
        session.await;
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

/// Frames a session may queue for its writer before the session itself waits.
pub(crate) const OUTBOX: usize = 256;
/// Keep-alive ping interval for idle connections.
const PING_EVERY: Duration = Duration::from_secs(30);

/// Query parameters, looked up by Pulsar's names.
pub(crate) struct Params(pub HashMap<String, String>);

impl Params {
    pub fn str(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    pub fn parse<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, ApiError> {
        match self.str(name) {
            None => Ok(default),
            Some(v) => {
                v.parse().map_err(|_| ApiError::bad_request(format!("invalid value `{v}` for query parameter {name}")))
            }
        }
    }
}

/// Owns the sending half of the socket: forwards queued frames and pings idle connections.
pub(crate) fn spawn_writer(
    broker: &Broker,
    mut sink: futures::stream::SplitSink<WebSocket, Message>,
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

/// `/ws/pingpong`: answers pings (the WebSocket layer does) and echoes nothing else.
async fn pingpong(ws: axum::extract::ws::WebSocketUpgrade) -> axum::response::Response {
    ws.on_upgrade(|socket| async move {
        let (_sink, mut stream) = socket.split();
        while let Some(Ok(msg)) = stream.next().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    })
}
