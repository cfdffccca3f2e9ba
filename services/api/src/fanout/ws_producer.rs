//! A WebSocket producer on a whole partitioned topic in a broker tier. Each frame is checked as
//! the single broker checks it (bad JSON, bad base64, over the size limit: answered here, alone),
//! its partition chosen by the broker's rule (`choose_partition`: the key's hash by the
//! producer's `hashingScheme`, keyless messages round robin, or all to one partition with
//! `SinglePartition`), and it is sent to that partition's session numbered by this broker (its
//! `context` there). Receipts go back with the client's `context` and the partition's message id
//! (which names the partition, as the single broker's ids do), in the order the frames came, as
//! the single broker answers; at most `maxPendingMessages` frames (default 1000) are unanswered
//! at once, then the client's frames wait.

use super::Whole;
use super::ws::{Handshake, Ledger, Seen, Session, Stalled, Tag, Target, Up, ended, open_all, start};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::AuthContext;
use crate::routes::ws::{await_close_answer, must_end, run_tracked, session_permit, text};
use crate::routes::ws_producer::{ProducerSession, Routing, error_frame, ok_frame, parse_frame};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures::StreamExt;
use futures::future::BoxFuture;
use magnetar_auth::Operation;
use magnetar_broker::choose_partition;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::Arc;

pub(crate) async fn open(
    s: &AppState,
    auth: AuthContext,
    handshake: Handshake,
    routing: Routing,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let Handshake { whole, headers, query } = handshake;
    // Refused on the base name before any partition's session is opened.
    auth.check(Operation::Produce, &whole.base).await?;
    let attach: super::ws::Attach = {
        let (s, auth, routing) = (s.clone(), auth.clone(), routing.clone());
        Arc::new(move |partition, _| {
            let (s, auth, routing) = (s.clone(), auth.clone(), routing.clone());
            Box::pin(async move {
                let session = ProducerSession::attach(&s, auth, &partition, &routing).await?;
                let run: super::ws::Runner =
                    Box::new(move |socket| -> BoxFuture<'static, ()> { Box::pin(session.run(socket)) });
                Ok(run)
            })
        })
    };
    let target = Arc::new(Target { whole, kind: "producer", tail: String::new(), query, headers, attach });
    let links = open_all(s, &target).await?;
    let permit = session_permit(s)?;
    let (s, broker) = (s.clone(), Arc::clone(&s.broker));
    Ok(ws.on_upgrade(move |socket| run_tracked(broker, permit, run(s, target, links, auth, routing, socket))))
}

/// The client's frames in the order they came, and their answers once known.
struct Pending {
    /// The number of the first frame in `slots`.
    first: u64,
    slots: VecDeque<Slot>,
}

struct Slot {
    context: Option<Value>,
    reply: Option<Message>,
}

impl Pending {
    fn new() -> Pending {
        Pending { first: 0, slots: VecDeque::new() }
    }

    fn len(&self) -> usize {
        self.slots.len()
    }

    /// Numbers a frame sent on to a partition.
    fn push(&mut self, context: Option<Value>) -> u64 {
        self.slots.push_back(Slot { context, reply: None });
        self.first + self.slots.len() as u64 - 1
    }

    /// A frame answered here.
    fn push_answered(&mut self, reply: Message) {
        self.slots.push_back(Slot { context: None, reply: Some(reply) });
    }

    /// The partition's receipt for frame `id`, with the client's context.
    fn answer(&mut self, id: u64, receipt: &Message) {
        let Some(slot) = id.checked_sub(self.first).and_then(|i| self.slots.get_mut(i as usize)) else { return };
        if slot.reply.is_none() {
            slot.reply = Some(relay(receipt, slot.context.take()));
        }
    }

    /// The next answer in the frames' order, once it is known.
    fn next_ready(&mut self) -> Option<Message> {
        self.slots.front()?.reply.as_ref()?;
        self.first += 1;
        self.slots.pop_front()?.reply
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Receipt {
    result: String,
    #[serde(default)]
    message_id: Option<String>,
    #[serde(default)]
    error_msg: Option<String>,
}

/// A partition's receipt as the client's: its result and message id, the client's context.
fn relay(receipt: &Message, context: Option<Value>) -> Message {
    let Message::Text(t) = receipt else { return error_frame(8, "unreadable receipt".into(), context) };
    match serde_json::from_str::<Receipt>(t.as_str()) {
        Ok(Receipt { result, message_id: Some(id), .. }) if result == "ok" => ok_frame(&id, context),
        Ok(Receipt { result, error_msg, .. }) => {
            let mut v = json!({ "result": result, "errorMsg": error_msg.unwrap_or_default() });
            if let Some(c) = context {
                v["context"] = c;
            }
            text(&v)
        }
        Err(e) => error_frame(8, format!("a partition's receipt is unreadable: {e}"), context),
    }
}

/// The session: client frames to partitions, receipts back in order.
async fn run(
    s: AppState,
    target: Arc<Target>,
    links: Vec<crate::routes::ws::Socket>,
    auth: AuthContext,
    routing: Routing,
    socket: WebSocket,
) {
    let broker = Arc::clone(&s.broker);
    let whole = target.whole.clone();
    let n = whole.partitions;
    let Session { mut events, inboxes, mut stream, out, writer } = start(&s, &target, links, Ledger::producer, socket);
    let end = must_end(auth, &broker);
    tokio::pin!(end);
    let now = magnetar_core::now_millis();
    // SinglePartition: keyless messages all go to one partition chosen now.
    let fixed = routing.single.then(|| (now as u32) % n.max(1));
    let mut round_robin = now as usize;
    let mut pending = Pending::new();
    let mut stalled = Stalled::default();
    'session: loop {
        let reading = stalled.is_empty() && pending.len() < routing.max_pending;
        tokio::select! {
            event = events.recv() => match event {
                Some(Up::Frame(_, receipt, Seen::Receipt(id))) => pending.answer(id, &receipt),
                Some(Up::Frame(p, other, _)) => {
                    tracing::debug!(partition = p, frame = ?other, "unexpected frame from a partition's producer");
                }
                Some(Up::Ended(p, frame)) => {
                    while let Some(reply) = pending.next_ready() {
                        let _ = out.send(reply).await;
                    }
                    let _ = out.send(ended(p, frame)).await;
                    break;
                }
                None => break,
            },
            frame = stream.next(), if reading => match frame {
                None | Some(Message::Close(_)) => break,
                Some(Message::Text(raw)) => {
                    match route(&broker, &whole, raw.as_str(), &routing, fixed, &mut round_robin) {
                        Ok(Routed { partition, frame, context }) => {
                            let id = pending.push(context);
                            if !stalled.send(&inboxes, partition, with_context(frame, id), Tag::Send(id)) {
                                break;
                            }
                        }
                        Err(reply) => pending.push_answered(reply),
                    }
                }
                Some(Message::Binary(_)) => {
                    pending.push_answered(error_frame(3, "binary frames are not supported: send JSON text".into(), None));
                }
                Some(_) => {}
            },
            sent = stalled.drain_one(&inboxes), if !stalled.is_empty() => {
                if !sent {
                    break;
                }
            }
            close = &mut end => {
                let _ = out.send(close).await;
                break;
            }
        }
        while let Some(reply) = pending.next_ready() {
            if out.send(reply).await.is_err() {
                break 'session;
            }
        }
    }
    drop(inboxes);
    drop(out);
    let _ = writer.await;
    await_close_answer(&broker, stream).await;
}

/// A client's frame on its way to a partition.
struct Routed {
    partition: u32,
    /// The frame as the client wrote it, to send with this broker's number as its context.
    frame: serde_json::Map<String, Value>,
    /// The client's context, for the receipt.
    context: Option<Value>,
}

/// Checks a client's frame and picks its partition; or the error answer.
fn route(
    broker: &magnetar_broker::Broker,
    whole: &Whole,
    raw: &str,
    routing: &Routing,
    fixed: Option<u32>,
    round_robin: &mut usize,
) -> Result<Routed, Message> {
    let (message, context) = parse_frame(raw, routing.producer.as_deref(), routing.encryption.as_ref())?;
    broker
        .publisher()
        .check_size(&whole.base, || "the message".into(), &message)
        .map_err(|e| error_frame(8, ApiError::from(e).reason, context.clone()))?;
    let p = match (message.key.as_deref(), fixed) {
        (None, Some(p)) => p,
        (key, _) => choose_partition(whole.partitions as usize, key, routing.hashing, || {
            *round_robin = round_robin.wrapping_add(1);
            *round_robin
        }) as u32,
    };
    let frame = serde_json::from_str(raw).map_err(|e| error_frame(3, format!("invalid JSON frame: {e}"), None))?;
    Ok(Routed { partition: p, frame, context })
}

fn with_context(mut frame: serde_json::Map<String, Value>, id: u64) -> Message {
    frame.insert("context".into(), Value::String(id.to_string()));
    Message::Text(Value::Object(frame).to_string().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(ctx: u64, id: &str) -> Message {
        Message::Text(format!(r#"{{"result":"ok","messageId":"{id}","context":"{ctx}"}}"#).into())
    }

    fn body(m: Option<Message>) -> Value {
        match m {
            Some(Message::Text(t)) => serde_json::from_str(t.as_str()).unwrap(),
            other => panic!("not a text frame: {other:?}"),
        }
    }

    #[test]
    fn receipts_go_back_in_the_frames_order_with_the_clients_context() {
        let mut p = Pending::new();
        let a = p.push(Some(json!("a")));
        p.push_answered(error_frame(3, "bad".into(), None));
        let b = p.push(None);
        let c = p.push(Some(json!({"n": 1})));
        p.answer(c, &receipt(c, "CAEQAhgD"));
        p.answer(b, &receipt(b, "CAEQARgB"));
        assert!(p.next_ready().is_none(), "the first frame is not answered yet");
        p.answer(a, &receipt(a, "CAEQABgA"));
        let first = body(p.next_ready());
        assert_eq!((first["result"].as_str(), first["context"].as_str()), (Some("ok"), Some("a")));
        assert_eq!(first["messageId"], "CAEQABgA");
        assert_eq!(body(p.next_ready())["result"], "send-error:3");
        let third = body(p.next_ready());
        assert!(third.get("context").is_none(), "{third}");
        assert_eq!(body(p.next_ready())["context"], json!({"n": 1}));
        assert!(p.next_ready().is_none());
        // A second answer to a frame already answered (or unknown) changes nothing.
        p.answer(a, &receipt(a, "x"));
        assert_eq!(p.len(), 0);
    }

    #[test]
    fn a_refused_send_keeps_its_code_and_reason() {
        let refused = Message::Text(r#"{"result":"send-error:8","errorMsg":"quota","context":"4"}"#.into());
        let v = body(Some(relay(&refused, Some(json!("c")))));
        assert_eq!(v, json!({"result": "send-error:8", "errorMsg": "quota", "context": "c"}));
    }
}
