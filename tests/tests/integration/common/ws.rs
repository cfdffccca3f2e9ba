//! WebSocket helpers for the Pulsar WebSocket API tests: connecting (and observing refused
//! handshakes), JSON frames with a receive timeout, Pulsar's base64 `MessageIdData` ids decoded
//! independently of the broker's code, and consumers that run in their own task.
//!
//! Every receive is bounded: a missing frame fails the test instead of hanging it.

use super::unb64;
use base64::Engine;
use futures::{SinkExt, StreamExt};
use magnetar_tests::call;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long one expected frame may take before the test fails.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// The bounded wait used to assert that nothing (more) arrives. Short on purpose: it can only
/// catch a frame that was going to arrive promptly, which is what these checks are about.
pub const SILENCE: Duration = Duration::from_millis(500);

/// `http://host:port` → `ws://host:port`.
pub fn ws_base(http_base: &str) -> String {
    http_base.replacen("http://", "ws://", 1)
}

pub fn producer_url(http_base: &str, topic: &str) -> String {
    format!("{}/ws/v2/producer/persistent/public/default/{topic}", ws_base(http_base))
}

/// Consumer URL; `query` is appended after `?` when not empty.
pub fn consumer_url(http_base: &str, topic: &str, sub: &str, query: &str) -> String {
    let url = format!("{}/ws/v2/consumer/persistent/public/default/{topic}/{sub}", ws_base(http_base));
    with_query(url, query)
}

pub fn reader_url(http_base: &str, topic: &str, query: &str) -> String {
    with_query(format!("{}/ws/v2/reader/persistent/public/default/{topic}", ws_base(http_base)), query)
}

fn with_query(url: String, query: &str) -> String {
    if query.is_empty() { url } else { format!("{url}?{query}") }
}

/// One WebSocket connection speaking JSON text frames.
/// What [`WsClient::next_event`] saw.
#[derive(Debug)]
pub enum WsEvent {
    Frame(Value),
    Closed(u16),
    Idle,
}

pub struct WsClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub url: String,
}

impl WsClient {
    /// Connects; a refused handshake fails the test with the status and body.
    pub async fn connect(url: &str) -> WsClient {
        match tokio::time::timeout(FRAME_TIMEOUT, tokio_tungstenite::connect_async(url)).await {
            Err(_) => panic!("WebSocket handshake with {url} did not complete within {FRAME_TIMEOUT:?}"),
            Ok(Ok((ws, _))) => WsClient { ws, url: url.to_string() },
            Ok(Err(tungstenite::Error::Http(resp))) => {
                let body = resp.body().as_deref().map(String::from_utf8_lossy).unwrap_or_default().to_string();
                panic!("WebSocket handshake with {url} refused with {}: {body}", resp.status())
            }
            Ok(Err(e)) => panic!("WebSocket connection to {url} failed: {e}"),
        }
    }

    /// Connects with `Authorization: Bearer {token}`; a refused handshake is its HTTP status.
    pub async fn connect_with_token(url: &str, token: &str) -> Result<WsClient, u16> {
        use tungstenite::client::IntoClientRequest;
        let mut req = url.into_client_request().unwrap_or_else(|e| panic!("{url}: {e}"));
        req.headers_mut().insert("authorization", format!("Bearer {token}").parse().expect("header value"));
        match tokio::time::timeout(FRAME_TIMEOUT, tokio_tungstenite::connect_async(req)).await {
            Err(_) => panic!("WebSocket handshake with {url} did not complete within {FRAME_TIMEOUT:?}"),
            Ok(Ok((ws, _))) => Ok(WsClient { ws, url: url.to_string() }),
            Ok(Err(tungstenite::Error::Http(resp))) => Err(resp.status().as_u16()),
            Ok(Err(e)) => panic!("WebSocket connection to {url} failed: {e}"),
        }
    }

    /// Connects, or `None` when the handshake is refused or fails.
    pub async fn try_connect(url: &str) -> Option<WsClient> {
        match tokio::time::timeout(FRAME_TIMEOUT, tokio_tungstenite::connect_async(url)).await {
            Ok(Ok((ws, _))) => Some(WsClient { ws, url: url.to_string() }),
            _ => None,
        }
    }

    pub async fn send_text(&mut self, text: &str) {
        tokio::time::timeout(FRAME_TIMEOUT, self.ws.send(Message::text(text.to_string())))
            .await
            .unwrap_or_else(|_| panic!("sending on {} timed out", self.url))
            .unwrap_or_else(|e| panic!("sending on {} failed: {e}", self.url));
    }

    pub async fn send_json(&mut self, frame: &Value) {
        self.send_text(&frame.to_string()).await;
    }

    /// The next JSON frame, or `None` when nothing arrives within `wait`. Control frames are
    /// skipped; the broker closing the connection fails the test.
    pub async fn recv_within(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let next = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return None,
                Ok(n) => n,
            };
            match next {
                None => panic!("{}: the broker closed the connection", self.url),
                Some(Err(e)) => panic!("{}: connection failed: {e}", self.url),
                Some(Ok(Message::Text(t))) => {
                    return Some(
                        serde_json::from_str(t.as_str())
                            .unwrap_or_else(|e| panic!("{}: frame `{}` is not JSON: {e}", self.url, t.as_str())),
                    );
                }
                Some(Ok(Message::Close(frame))) => panic!("{}: the broker closed the connection: {frame:?}", self.url),
                Some(Ok(Message::Binary(b))) => panic!("{}: unexpected binary frame of {} bytes", self.url, b.len()),
                Some(Ok(_)) => continue,
            }
        }
    }

    /// The next JSON frame, the broker's close code (a connection dropped without a close frame
    /// reads as 1006), or `Idle` after `wait`: for clients that reconnect as Pulsar's do.
    pub async fn next_event(&mut self, wait: Duration) -> WsEvent {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return WsEvent::Idle,
                Ok(None) | Ok(Some(Err(_))) => return WsEvent::Closed(1006),
                Ok(Some(Ok(Message::Close(frame)))) => {
                    return WsEvent::Closed(frame.map(|f| u16::from(f.code)).unwrap_or(1005));
                }
                Ok(Some(Ok(Message::Text(t)))) => {
                    return WsEvent::Frame(
                        serde_json::from_str(t.as_str())
                            .unwrap_or_else(|e| panic!("{}: frame `{}` is not JSON: {e}", self.url, t.as_str())),
                    );
                }
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// Sends a frame; `false` when the connection is gone (the client reconnects).
    pub async fn try_send_json(&mut self, frame: &Value) -> bool {
        matches!(tokio::time::timeout(FRAME_TIMEOUT, self.ws.send(Message::text(frame.to_string()))).await, Ok(Ok(())))
    }

    /// The next JSON frame; fails the test if none arrives within [`FRAME_TIMEOUT`].
    #[track_caller]
    pub fn recv(&mut self) -> impl std::future::Future<Output = Value> + '_ {
        let caller = std::panic::Location::caller();
        async move {
            self.recv_within(FRAME_TIMEOUT)
                .await
                .unwrap_or_else(|| panic!("{}: no frame within {FRAME_TIMEOUT:?} (expected at {caller})", self.url))
        }
    }

    /// Asserts that no frame arrives within [`SILENCE`].
    #[track_caller]
    pub fn expect_silence<'a>(&'a mut self, what: &'a str) -> impl std::future::Future<Output = ()> + 'a {
        let caller = std::panic::Location::caller();
        async move {
            if let Some(frame) = self.recv_within(SILENCE).await {
                panic!("{}: expected no frame ({what}) at {caller}, got {frame}", self.url);
            }
        }
    }

    /// Waits (bounded) for the broker to close the session; returns the close code, skipping any
    /// frames before it.
    pub async fn close_code(&mut self) -> u16 {
        let deadline = tokio::time::Instant::now() + FRAME_TIMEOUT;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => panic!("{}: the broker did not close the session within {FRAME_TIMEOUT:?}", self.url),
                Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)).unwrap_or(1005),
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(e))) => panic!("{}: connection failed before a close frame: {e}", self.url),
                Ok(None) => panic!("{}: connection dropped without a close frame", self.url),
            }
        }
    }

    /// Closes cleanly and waits for the broker's close reply (bounded).
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(FRAME_TIMEOUT, self.ws.close(None)).await;
        let _ = tokio::time::timeout(FRAME_TIMEOUT, async { while let Some(Ok(_)) = self.ws.next().await {} }).await;
    }

    // ---------------------------------------------------------------- producer frames

    /// Sends one producer frame and returns the broker's reply.
    pub async fn publish(&mut self, frame: Value) -> Value {
        self.send_json(&frame).await;
        self.recv().await
    }

    /// Publishes `payload` (UTF-8) with an optional key; asserts `ok` and returns the base64 id.
    pub async fn publish_ok(&mut self, payload: &str, key: Option<&str>) -> String {
        let mut frame = json!({ "payload": super::b64(payload.as_bytes()) });
        if let Some(k) = key {
            frame["key"] = json!(k);
        }
        let reply = self.publish(frame).await;
        assert_eq!(reply["result"], "ok", "publish of `{payload}` failed: {reply}");
        reply["messageId"].as_str().unwrap_or_else(|| panic!("no messageId in {reply}")).to_string()
    }

    // ---------------------------------------------------------------- consumer frames

    /// The next frame, asserted to be a message delivery.
    pub async fn recv_message(&mut self) -> Value {
        let m = self.recv().await;
        assert!(m["messageId"].is_string() && m["payload"].is_string(), "{}: not a message frame: {m}", self.url);
        m
    }

    pub async fn ack(&mut self, message_id: &str) {
        self.send_json(&json!({ "messageId": message_id })).await;
    }

    pub async fn nack(&mut self, message_id: &str) {
        self.send_json(&json!({ "type": "negativeAcknowledge", "messageId": message_id })).await;
    }

    pub async fn permit(&mut self, n: u32) {
        self.send_json(&json!({ "type": "permit", "permitMessages": n })).await;
    }
}

/// Attempts a handshake that must be refused; returns the HTTP status.
pub async fn refused_status(url: &str) -> u16 {
    match tokio::time::timeout(FRAME_TIMEOUT, tokio_tungstenite::connect_async(url)).await {
        Err(_) => panic!("WebSocket handshake with {url} did not complete within {FRAME_TIMEOUT:?}"),
        Ok(Ok(_)) => panic!("WebSocket handshake with {url} was accepted; expected it to be refused"),
        Ok(Err(tungstenite::Error::Http(resp))) => resp.status().as_u16(),
        Ok(Err(e)) => panic!("WebSocket connection to {url} failed without an HTTP answer: {e}"),
    }
}

// ---------------------------------------------------------------- message ids

/// A decoded `MessageIdData`: (ledgerId, entryId, partition); partition -1 when absent.
pub type WsId = (i64, i64, i32);

/// Decodes base64 (standard alphabet) of Pulsar's `MessageIdData` protobuf: field 1 ledgerId,
/// 2 entryId (both required), 3 partition (default -1); other fields are skipped.
pub fn decode_ws_id(b64: &str) -> WsId {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap_or_else(|e| panic!("message id `{b64}` is not standard base64: {e}"));
    let mut b: &[u8] = &bytes;
    let (mut ledger, mut entry, mut partition) = (None, None, -1i32);
    while !b.is_empty() {
        let key = varint(&mut b).unwrap_or_else(|| panic!("message id `{b64}`: truncated field key"));
        match key & 7 {
            0 => {
                let v = varint(&mut b).unwrap_or_else(|| panic!("message id `{b64}`: truncated varint"));
                match key >> 3 {
                    1 => ledger = Some(v as i64),
                    2 => entry = Some(v as i64),
                    3 => partition = v as i64 as i32,
                    _ => {}
                }
            }
            2 => {
                let len = varint(&mut b).unwrap_or_else(|| panic!("message id `{b64}`: truncated length")) as usize;
                assert!(len <= b.len(), "message id `{b64}`: truncated field");
                b = &b[len..];
            }
            w => panic!("message id `{b64}`: unexpected wire type {w}"),
        }
    }
    (
        ledger.unwrap_or_else(|| panic!("message id `{b64}` has no ledgerId (field 1)")),
        entry.unwrap_or_else(|| panic!("message id `{b64}` has no entryId (field 2)")),
        partition,
    )
}

/// Base64 `MessageIdData` → the `L:E:P` text form the HTTP APIs use.
pub fn ws_id_text(b64: &str) -> String {
    let (l, e, p) = decode_ws_id(b64);
    format!("{l}:{e}:{p}")
}

/// Encodes a `MessageIdData` the way a Pulsar client would (partition omitted when -1).
pub fn encode_ws_id(ledger: i64, entry: i64, partition: i32) -> String {
    let mut buf = Vec::new();
    buf.push(0x08);
    put_varint(&mut buf, ledger as u64);
    buf.push(0x10);
    put_varint(&mut buf, entry as u64);
    if partition >= 0 {
        buf.push(0x18);
        put_varint(&mut buf, partition as u64);
    }
    base64::engine::general_purpose::STANDARD.encode(buf)
}

/// Offset of a message inside its partition (`ledgerId + entryId`, see core's `MessageId`).
pub fn ws_offset(b64: &str) -> i64 {
    let (l, e, _) = decode_ws_id(b64);
    l + e
}

fn varint(b: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = b.split_first()?;
        *b = rest;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// The decoded payload of a delivery frame, as text.
pub fn text_of(m: &Value) -> String {
    String::from_utf8(unb64(m["payload"].as_str().expect("payload"))).expect("utf-8 payload")
}

// ---------------------------------------------------------------- admin reads by base URL

/// Stats of `public/default/{topic}` from a broker at `http_base`.
pub async fn topic_stats(http_base: &str, topic: &str) -> Value {
    let (status, body) = call(
        &reqwest::Client::new(),
        reqwest::Method::GET,
        &format!("{http_base}/admin/v2/persistent/public/default/{topic}/stats"),
        None,
    )
    .await;
    assert!(status.is_success(), "stats of {topic}: {status} {body}");
    body
}

/// `msgBacklog` of `sub` on `topic`, or `None` when the subscription is not in the stats.
pub async fn sub_backlog(http_base: &str, topic: &str, sub: &str) -> Option<u64> {
    topic_stats(http_base, topic).await["subscriptions"][sub]["msgBacklog"].as_u64()
}

/// Subscriptions of `public/default/{topic}` (admin list).
pub async fn list_subscriptions(http_base: &str, topic: &str) -> Vec<String> {
    let (status, body) = call(
        &reqwest::Client::new(),
        reqwest::Method::GET,
        &format!("{http_base}/admin/v2/persistent/public/default/{topic}/subscriptions"),
        None,
    )
    .await;
    assert!(status.is_success(), "subscriptions of {topic}: {status} {body}");
    serde_json::from_value(body.clone()).unwrap_or_else(|_| panic!("subscriptions list is not strings: {body}"))
}

// ---------------------------------------------------------------- consumers in tasks

/// One delivery seen by a consumer running in a task.
#[derive(Debug, Clone)]
pub struct Seen {
    pub consumer: usize,
    pub id: String,
    pub key: Option<String>,
    pub payload: String,
    pub redelivery_count: u64,
}

/// A consumer connection running in its own task: every delivery is recorded in the shared
/// log *before* it is acknowledged (so the log order is consistent with the broker's view), and
/// acknowledged immediately when `ack` is true.
pub struct RunningConsumer {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<WsClient>,
}

impl RunningConsumer {
    pub fn spawn(mut ws: WsClient, index: usize, log: Arc<Mutex<Vec<Seen>>>, ack: bool) -> RunningConsumer {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let task = tokio::spawn(async move {
            while !flag.load(Ordering::SeqCst) {
                let Some(m) = ws.recv_within(Duration::from_millis(100)).await else { continue };
                let id = m["messageId"].as_str().unwrap_or_else(|| panic!("consumer {index}: not a message: {m}"));
                let seen = Seen {
                    consumer: index,
                    id: id.to_string(),
                    key: m["key"].as_str().map(str::to_string),
                    payload: text_of(&m),
                    redelivery_count: m["redeliveryCount"].as_u64().unwrap_or(0),
                };
                log.lock().expect("log").push(seen);
                if ack {
                    ws.ack(id).await;
                }
            }
            ws
        });
        RunningConsumer { stop, task }
    }

    /// Stops reading (deliveries still buffered stay unacknowledged) and returns the connection.
    pub async fn stop(self) -> WsClient {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("consumer task panicked")
    }
}

/// Publish requests a broker at `http_base` has answered (`magnetar_publish_latency_seconds`'s
/// count): a WebSocket producer's frames read together are one request.
pub async fn publish_requests(http_base: &str) -> u64 {
    let text = reqwest::get(format!("{http_base}/metrics"))
        .await
        .and_then(|r| r.error_for_status())
        .unwrap_or_else(|e| panic!("metrics of {http_base}: {e}"))
        .text()
        .await
        .expect("metrics text");
    let line = text
        .lines()
        .find(|l| l.starts_with("magnetar_publish_latency_seconds_count "))
        .unwrap_or_else(|| panic!("no magnetar_publish_latency_seconds_count at {http_base}"));
    line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()).expect("a count") as u64
}

/// Sends `frames` JSON frames at once (each flushed, none answered yet), then reads as many
/// receipts; asserts each is `ok` and comes in the frames' order with its context.
pub async fn publish_at_once(producer: &mut WsClient, frames: usize, tag: &str) -> Vec<String> {
    for n in 0..frames {
        producer
            .send_json(&json!({"payload": super::b64(format!("{tag}{n}").as_bytes()), "context": format!("{tag}{n}")}))
            .await;
    }
    let mut ids = Vec::new();
    for n in 0..frames {
        let r = producer.recv().await;
        assert_eq!(r["result"], "ok", "{r}");
        assert_eq!(r["context"], format!("{tag}{n}"), "receipts in the frames' order: {r}");
        ids.push(r["messageId"].as_str().expect("messageId").to_string());
    }
    ids
}
