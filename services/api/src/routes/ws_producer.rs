//! WebSocket producer: `/ws/v2/producer/persistent/{tenant}/{namespace}/{topic}`.
//!
//! Frames in: `{"payload":"<base64>","properties":{},"context":"1","key":"k","eventTime":"..",
//! "deliverAt":ms,"deliverAfterMs":ms}`; frames out: `{"result":"ok","messageId":"<base64>",
//! "context":"1"}` or `{"result":"send-error:N","errorMsg":"..","context":"1"}` with Pulsar's
//! codes (3 bad JSON, 7 bad payload encoding, 8 other). Frames that arrive while a batch is being
//! made durable form the next batch, so one connection with many messages in flight shares group
//! commits and keeps its order.

use super::ws::{Params, credential_lapsed, lapsed_close, spawn_writer, text};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{AuthContext, TopicPath};
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use base64::Engine;
use futures::StreamExt;
use magnetar_broker::{KeyHashing, PublishMessage};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use tokio::sync::mpsc;

/// Most frames published as one batch.
const MAX_BATCH: usize = 1000;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProducerFrame {
    payload: String,
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
}

fn error_frame(code: u8, msg: String, context: Option<Value>) -> Message {
    let mut v = json!({ "result": format!("send-error:{code}"), "errorMsg": msg });
    if let Some(c) = context {
        v["context"] = c;
    }
    text(&v)
}

/// Parses one frame into a message, or the error frame to answer.
fn parse_frame(raw: &str) -> Result<(PublishMessage, Option<Value>), Message> {
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
    let mut msg = PublishMessage {
        key: frame.key,
        properties: frame.properties.into_iter().collect(),
        payload: payload.into(),
        event_time,
    };
    msg.deliver_later(frame.deliver_at, frame.deliver_after_ms);
    Ok((msg, ctx))
}

pub async fn produce_handler(
    State(s): State<AppState>,
    auth: AuthContext,
    Path(p): Path<TopicPath>,
    Query(q): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let params = Params(q);
    let topic = p.name()?;
    auth.check(magnetar_auth::Operation::Produce, &topic).await?;
    let hashing = match params.str("hashingScheme").unwrap_or("JavaStringHash") {
        "JavaStringHash" => KeyHashing::JavaString,
        "Murmur3_32Hash" => KeyHashing::Murmur3,
        other => return Err(ApiError::bad_request(format!("invalid hashingScheme `{other}`"))),
    };
    let single = match params.str("messageRoutingMode").unwrap_or("RoundRobinPartition") {
        "RoundRobinPartition" => false,
        "SinglePartition" => true,
        other => return Err(ApiError::bad_request(format!("invalid messageRoutingMode `{other}`"))),
    };
    s.broker.ensure_topic(&topic).await?;
    // SinglePartition: keyless messages all go to one partition chosen now.
    let (t, _) = s.broker.resolve(&topic).await?;
    let fixed = (single && t.is_partitioned() && topic.partition_index().is_none())
        .then(|| topic.partition((magnetar_core::now_millis() as u32) % t.record.partitions));
    let broker = s.broker.clone();
    Ok(ws.on_upgrade(move |socket| async move {
        let (sink, mut stream) = socket.split();
        let (out, writer) = spawn_writer(sink);
        let (frames_tx, frames_rx) = mpsc::channel::<(PublishMessage, Option<Value>)>(MAX_BATCH);
        let publisher = tokio::spawn(publish_loop(broker, topic, fixed, hashing, frames_rx, out.clone()));
        let lapsed = credential_lapsed(auth);
        tokio::pin!(lapsed);
        loop {
            let msg = tokio::select! {
                m = stream.next() => match m {
                    Some(Ok(m)) => m,
                    _ => break,
                },
                _ = &mut lapsed => {
                    let _ = out.send(lapsed_close()).await;
                    break;
                }
            };
            match msg {
                Message::Text(raw) => match parse_frame(raw.as_str()) {
                    Ok(item) => {
                        if frames_tx.send(item).await.is_err() {
                            break;
                        }
                    }
                    Err(reply) => {
                        if out.send(reply).await.is_err() {
                            break;
                        }
                    }
                },
                Message::Binary(_) => {
                    let _ =
                        out.send(error_frame(3, "binary frames are not supported: send JSON text".into(), None)).await;
                }
                Message::Close(_) => break,
                _ => {}
            }
        }
        drop(frames_tx);
        let _ = publisher.await;
        drop(out);
        let _ = writer.await;
    }))
}

async fn publish_loop(
    broker: std::sync::Arc<magnetar_broker::Broker>,
    topic: magnetar_core::TopicName,
    fixed: Option<magnetar_core::TopicName>,
    hashing: KeyHashing,
    mut frames: mpsc::Receiver<(PublishMessage, Option<Value>)>,
    out: mpsc::Sender<Message>,
) {
    while let Some(first) = frames.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match frames.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        let (messages, contexts): (Vec<PublishMessage>, Vec<Option<Value>>) = batch.into_iter().unzip();
        // Keyless messages of a SinglePartition producer go to its partition; keyed ones by hash.
        let result = match &fixed {
            Some(p) if messages.iter().all(|m| m.key.is_none()) => broker.publish_routed(p, messages, hashing).await,
            _ => broker.publish_routed(&topic, messages, hashing).await,
        };
        let replies: Vec<Message> = match result {
            Ok(ids) => ids
                .into_iter()
                .zip(contexts)
                .map(|(id, ctx)| {
                    let mut v = json!({ "result": "ok", "messageId": id.to_base64() });
                    if let Some(c) = ctx {
                        v["context"] = c;
                    }
                    text(&v)
                })
                .collect(),
            Err(e) => {
                let reason = ApiError::from(e).reason;
                contexts.into_iter().map(|ctx| error_frame(8, reason.clone(), ctx)).collect()
            }
        };
        for r in replies {
            if out.send(r).await.is_err() {
                return;
            }
        }
    }
}
