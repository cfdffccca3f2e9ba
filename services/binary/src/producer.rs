//! One task per producer: SENDs are queued for the WAL in the order they arrived (several at a
//! time, so one producer with many sends in flight shares group commits), and a second task
//! answers each with SEND_RECEIPT or SEND_ERROR once durable, strictly in order.

use crate::error::BinaryError;
use crate::{Shared, convert};
use magnetar_broker::{Caller, KeyHashing, PendingPublish, ProducerSlots, PublishMessage};
use magnetar_core::TopicName;
use magnetar_protocol::Frame;
use magnetar_protocol::proto::{CommandSendError, CommandSendReceipt, ServerError};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Most messages queued for the WAL in one call.
const MAX_BATCH_MESSAGES: usize = 1000;
/// Enqueued groups of SENDs waiting to be durable.
const GROUPS_IN_FLIGHT: usize = 16;

/// One SEND: its ids and its messages, or why it was refused before reaching the broker.
pub struct SendItem {
    pub sequence_id: u64,
    pub highest_sequence_id: u64,
    pub messages: Result<Vec<PublishMessage>, (ServerError, String)>,
}

/// A connected producer as its connection holds it.
pub struct ProducerHandle {
    pub tx: mpsc::Sender<SendItem>,
    pub task: tokio::task::JoinHandle<()>,
    /// (topic, name), released from the broker-wide set when the producer closes.
    pub key: (String, String),
    pub _slots: ProducerSlots,
}

struct Route {
    caller: Caller,
    topic: TopicName,
    producer_id: u64,
}

pub fn spawn(
    shared: &Arc<Shared>,
    caller: Caller,
    topic: TopicName,
    producer_id: u64,
    out: mpsc::Sender<Frame>,
) -> (mpsc::Sender<SendItem>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(shared.config.max_pending_sends);
    let broker = Arc::clone(&shared.broker);
    let route = Route { caller, topic, producer_id };
    let task = shared.broker.spawn(publish_loop(broker, route, rx, out));
    (tx, task)
}

type Group = (Result<PendingPublish, BinaryError>, Vec<(u64, u64, Result<usize, (ServerError, String)>)>);

async fn publish_loop(
    broker: Arc<magnetar_broker::Broker>,
    route: Route,
    mut rx: mpsc::Receiver<SendItem>,
    out: mpsc::Sender<Frame>,
) {
    let (groups_tx, groups_rx) = mpsc::channel::<Group>(GROUPS_IN_FLIGHT);
    let acker = broker.spawn(receipt_loop(route.producer_id, groups_rx, out));
    while let Some(first) = rx.recv().await {
        let mut items = vec![first];
        let mut count = items[0].messages.as_ref().map_or(0, Vec::len);
        while count < MAX_BATCH_MESSAGES {
            match rx.try_recv() {
                Ok(item) => {
                    count += item.messages.as_ref().map_or(0, Vec::len);
                    items.push(item);
                }
                Err(_) => break,
            }
        }
        let mut messages = Vec::with_capacity(count);
        let mut meta = Vec::with_capacity(items.len());
        for item in items {
            let n = match item.messages {
                Ok(ms) => {
                    let n = ms.len();
                    messages.extend(ms);
                    Ok(n)
                }
                Err(e) => Err(e),
            };
            meta.push((item.sequence_id, item.highest_sequence_id, n));
        }
        let pending = if messages.is_empty() {
            Err(BinaryError::NotAllowed("no message".into()))
        } else {
            broker
                .publisher()
                .enqueue(&route.caller, &route.topic, messages, KeyHashing::Murmur3)
                .await
                .map_err(BinaryError::from)
        };
        if groups_tx.send((pending, meta)).await.is_err() {
            break;
        }
    }
    drop(groups_tx);
    let _ = acker.await;
}

async fn receipt_loop(producer_id: u64, mut groups: mpsc::Receiver<Group>, out: mpsc::Sender<Frame>) {
    while let Some((pending, meta)) = groups.recv().await {
        let (mut outcomes, refused) = match pending {
            Ok(p) => (p.durable().await.into_iter(), None),
            Err(e) => (Vec::new().into_iter(), Some((e.code(), e.message()))),
        };
        for (sequence_id, highest, n) in meta {
            let frame = match n {
                Err((code, message)) => send_error(producer_id, sequence_id, code, message),
                Ok(n) => {
                    if let Some((code, message)) = &refused {
                        send_error(producer_id, sequence_id, *code, message.clone())
                    } else {
                        let results: Vec<_> = outcomes.by_ref().take(n).collect();
                        match results.iter().find_map(|r| r.as_ref().err()) {
                            Some(e) => {
                                let e = BinaryError::Broker(clone_broker_error(e));
                                send_error(producer_id, sequence_id, e.code(), e.message())
                            }
                            None => {
                                let first = results.first().and_then(|r| r.as_ref().ok());
                                Frame::new(CommandSendReceipt {
                                    producer_id,
                                    sequence_id,
                                    message_id: first.map(convert::id_data),
                                    highest_sequence_id: Some(highest),
                                })
                            }
                        }
                    }
                }
            };
            if out.send(frame).await.is_err() {
                return;
            }
        }
    }
}

fn send_error(producer_id: u64, sequence_id: u64, code: ServerError, message: String) -> Frame {
    Frame::new(CommandSendError { producer_id, sequence_id, error: code as i32, message })
}

/// The code and text of an error held by reference (broker errors are not `Clone`).
fn clone_broker_error(e: &magnetar_broker::BrokerError) -> magnetar_broker::BrokerError {
    use magnetar_broker::BrokerError as B;
    match e {
        B::BacklogQuotaExceeded { topic, held } => B::BacklogQuotaExceeded { topic: topic.clone(), held: *held },
        B::TopicTerminated(t) => B::TopicTerminated(t.clone()),
        B::ShuttingDown => B::ShuttingDown,
        B::Deleted => B::Deleted,
        B::Forbidden(m) => B::Forbidden(m.clone()),
        B::Unavailable { service, detail, cause } => {
            B::Unavailable { service: *service, detail: detail.clone(), cause: cause.clone() }
        }
        other => B::NotAllowed(other.to_string()),
    }
}
