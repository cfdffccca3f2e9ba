//! WebSocket sessions through a broker that does not own the topic: the session is spliced to the
//! owner (DESIGN §6). The owner's handshake is made first, with the client's headers (its
//! `Authorization` unchanged) and the same path and query (a `?token=` with it), so that the owner
//! authenticates, authorizes and refuses exactly as if it had been asked directly; its refusal
//! goes back to the client as it came. Once the owner accepted, the client's handshake is
//! accepted and frames are copied both ways until either side closes or this broker shuts down.
//! Each hop answers its own pings; close frames go through with their code and reason, and a
//! close of the owner's ends the client's connection with the closing handshake, as the owner's
//! own sessions end theirs.

use crate::AppState;
use crate::error::ApiError;
use crate::routes::ws::{Socket, await_close_answer, ok_frames};
use crate::watched::Watched;
use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::extract::Request;
use axum::extract::ws::{self, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use magnetar_broker::Broker;
use std::sync::Arc;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, protocol::CloseFrame};

/// Headers of the client's handshake that the owner's handshake does not carry: those of the
/// connection and of the WebSocket handshake itself (tungstenite writes its own).
fn handshake_only(name: &HeaderName) -> bool {
    let n = name.as_str();
    n.starts_with("sec-websocket-")
        || matches!(n, "host" | "connection" | "upgrade" | "content-length" | "transfer-encoding" | "keep-alive" | "te")
}

pub(crate) async fn splice(s: &AppState, req: Request, broker: &str, address: &str) -> Response {
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str()).to_string();
    let (mut parts, _) = req.into_parts();
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, s).await {
        Ok(u) => u,
        Err(e) => {
            return ApiError::bad_request(format!("not a WebSocket handshake: {}", e.body_text())).into_response();
        }
    };
    let upstream = match connect(s, broker, address, &path, &parts.headers).await {
        Ok(ws) => ws,
        Err(Refused::Answer(answer)) => return answer,
        Err(Refused::Unreachable(mut e)) => {
            // The client may retry; the mark is for the fanned-out sessions of this broker.
            e.not_owner = false;
            return e.into_response();
        }
    };
    // This broker holds the session too: it counts against its own limit.
    let Ok(permit) = Arc::clone(&s.ws_sessions).try_acquire_owned() else {
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "too many WebSocket sessions on this broker; retry")
            .into_response();
    };
    s.broker.count_forwarded();
    let broker = Arc::clone(&s.broker);
    upgrade.on_upgrade(move |client| async move {
        let _permit = permit;
        pump(client, upstream, broker).await;
    })
}

/// Why the owner's handshake did not give a session.
pub(crate) enum Refused {
    /// The owner answered (authentication, authorization, a missing topic, its limits, or not
    /// the owner any more: `x-magnetar-not-owner`): its answer, to pass on as it is.
    Answer(Response),
    /// The owner could not be reached (503, marked not-owner: nothing was done there).
    Unreachable(ApiError),
}

/// The owner's handshake for `path` (path and query, from `/`) at `address`, made with
/// `headers` (the client's, less those of its own handshake) and `x-magnetar-forwarded-by`.
pub(crate) async fn connect(
    s: &AppState,
    broker: &str,
    address: &str,
    path: &str,
    headers: &HeaderMap,
) -> Result<Upstream, Refused> {
    let unreachable = || {
        let mut e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("broker {broker}, which serves this topic, could not be reached; retry"),
        );
        e.not_owner = true;
        Refused::Unreachable(e)
    };
    let Ok(mut owner_request) = format!("ws://{address}{path}").into_client_request() else {
        return Err(unreachable());
    };
    for (name, value) in headers {
        if !handshake_only(name) {
            owner_request.headers_mut().append(name.clone(), value.clone());
        }
    }
    for (name, value) in crate::forward::forwarding_headers(s) {
        owner_request.headers_mut().insert(name, value);
    }
    let timeout = s.broker.config().tier.forward_connect_timeout();
    let silence = s.broker.config().tier.owner_silence();
    match tokio::time::timeout(timeout, tokio_tungstenite::connect_async(owner_request)).await {
        Ok(Ok((ws, _))) => Ok(Watched::new(ws, silence).until(crate::forward::owner_gone(s, broker))),
        Ok(Err(tungstenite::Error::Http(refused))) => {
            // The owner refused (authentication, authorization, a missing topic, its limits).
            let (head, body) = refused.into_parts();
            let mut answer = Response::builder().status(head.status);
            for (name, value) in &head.headers {
                if !handshake_only(name) {
                    answer = answer.header(name, value);
                }
            }
            Err(answer
                .body(Body::from(body.unwrap_or_default()))
                .map(Refused::Answer)
                .unwrap_or_else(|_| unreachable()))
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, %broker, "WebSocket handshake with the owner failed");
            Err(unreachable())
        }
        Err(_) => Err(unreachable()),
    }
}

/// An owner's session as a [`Socket`]: its frames as the client side reads them (pings are
/// answered by the connection itself and not passed on).
pub(crate) fn socket(upstream: Upstream) -> Socket {
    let (sink, stream) = upstream.split();
    let sink = sink.with(|m: ws::Message| {
        futures::future::ready(Ok::<_, tungstenite::Error>(
            to_tungstenite(m).unwrap_or(tungstenite::Message::Pong(Default::default())),
        ))
    });
    let stream = crate::routes::ws::ok_frames(stream).filter_map(|m| futures::future::ready(to_axum(m)));
    Socket::new(sink, stream)
}

/// An owner's connection, ended once the owner has been silent too long (`watched`).
pub(crate) type Upstream =
    Watched<tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>>;

/// Copies frames both ways until either side closes or this broker shuts down.
///
/// The owner's close frame reaches the client whatever the client sends meanwhile. Once the owner
/// closed, the client's frames cannot go on to it; the session then waits for the owner's close
/// frame to come down rather than ending on the failed send, which would leave the client a close
/// without the owner's code (the 1012 of an unload, that says reconnect). After passing the
/// owner's close on, the client's connection is closed with the closing handshake
/// ([`await_close_answer`]), as the owner's own sessions close theirs, not dropped under the
/// frames the client sent meanwhile: a connection dropped so is reset, and the reset throws away
/// what the client had not received yet, the close frame last. An owner's connection that ends
/// without a close frame ends the client's with a close of no code, not waiting for an answer.
async fn pump(client: WebSocket, upstream: Upstream, broker: Arc<Broker>) {
    let (mut to_client, mut from_client) = client.split();
    let (mut to_owner, mut from_owner) = upstream.split();
    // True once the owner's close frame went to the client.
    let down = async {
        while let Some(Ok(m)) = from_owner.next().await {
            let Some(m) = to_axum(m) else { continue };
            let close = matches!(m, ws::Message::Close(_));
            if to_client.send(m).await.is_err() {
                return false;
            }
            if close {
                return true;
            }
        }
        false
    };
    let up = async {
        while let Some(Ok(m)) = from_client.next().await {
            let Some(m) = to_tungstenite(m) else { continue };
            let close = m.is_close();
            if to_owner.send(m).await.is_err() {
                // The owner closed, or its connection is gone: what comes down from it says which.
                std::future::pending::<()>().await;
            }
            if close {
                break;
            }
        }
    };
    let shutdown = broker.shutdown_token();
    let owner_closed = tokio::select! {
        relayed = down => relayed,
        _ = up => false,
        _ = shutdown.cancelled() => false,
    };
    // Whichever side ended first, the other is closed too (a no-op when it already is; to the
    // owner, the answer to its close). Bounded: a silent owner may not read what is sent to it.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), to_owner.close()).await;
    let _ = to_client.close().await;
    if owner_closed {
        await_close_answer(&broker, Box::pin(ok_frames(from_client))).await;
    }
}

fn to_axum(m: tungstenite::Message) -> Option<ws::Message> {
    Some(match m {
        tungstenite::Message::Text(t) => ws::Message::Text(t.as_str().into()),
        tungstenite::Message::Binary(b) => ws::Message::Binary(b),
        tungstenite::Message::Close(frame) => ws::Message::Close(
            frame.map(|f| ws::CloseFrame { code: u16::from(f.code), reason: f.reason.as_str().into() }),
        ),
        // Pings are answered per hop; raw frames are not produced by a reading stream.
        tungstenite::Message::Ping(_) | tungstenite::Message::Pong(_) | tungstenite::Message::Frame(_) => return None,
    })
}

fn to_tungstenite(m: ws::Message) -> Option<tungstenite::Message> {
    Some(match m {
        ws::Message::Text(t) => tungstenite::Message::text(t.as_str()),
        ws::Message::Binary(b) => tungstenite::Message::Binary(b),
        ws::Message::Close(frame) => tungstenite::Message::Close(
            frame.map(|f| CloseFrame { code: f.code.into(), reason: f.reason.as_str().into() }),
        ),
        ws::Message::Ping(_) | ws::Message::Pong(_) => return None,
    })
}
