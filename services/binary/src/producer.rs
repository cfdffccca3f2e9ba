//! One task per producer: SENDs are queued for the WAL in the order they arrived (several at a
//! time, so one producer with many sends in flight shares group commits), and a second task
//! answers each with SEND_RECEIPT or SEND_ERROR once durable, strictly in order.
//!
//! When its partition is unloaded (a handover to another broker of the tier, an admin unload)
//! or found to be served elsewhere, the producer takes no more SENDs, answers the ones already
//! queued for the WAL once they are durable, and sends CLOSE_PRODUCER; only then does the
//! handover close the log (`Detach`). SENDs it did not take are never answered: the client,
//! told its producer is closed, sends them again to wherever the partition is now, so nothing
//! acknowledged is lost and nothing stored is stored twice.

use crate::error::BinaryError;
use crate::{Shared, convert};
use magnetar_broker::{BrokerError, Caller, Detach, KeyHashing, PendingPublish, ProducerSlots, PublishMessage};
use magnetar_core::TopicName;
use magnetar_protocol::Frame;
use magnetar_protocol::proto::{
    CommandCloseProducer, CommandError, CommandProducerSuccess, CommandSendError, CommandSendReceipt, ServerError,
};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

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

impl SendItem {
    /// Payload bytes it would queue for the WAL.
    fn bytes(&self) -> usize {
        self.messages.as_ref().map_or(0, |ms| ms.iter().map(|m| m.payload.len()).sum())
    }
}

/// A connected producer as its connection holds it.
pub struct ProducerHandle {
    pub tx: mpsc::Sender<SendItem>,
    pub task: tokio::task::JoinHandle<()>,
    /// (topic, name), released from the broker-wide set when the producer closes.
    pub key: (String, String),
    /// The version its schema was registered as, answered again to a repeated PRODUCER.
    pub schema_version: Option<Vec<u8>>,
    pub _slots: ProducerSlots,
}

/// Who produces where.
pub struct Route {
    pub caller: Caller,
    pub topic: TopicName,
    pub producer_id: u64,
    /// (topic, name) in the broker-wide set of connected producers, freed when the task ends.
    pub key: (String, String),
    /// The client reached this broker itself (not through another broker's proxy): closed by a
    /// handover, it may be told where to reconnect.
    pub direct: bool,
}

/// What ends or holds a producer besides its client: its partitions' unload, an exclusive
/// producer fencing it out, and its turn when it waits for exclusive access.
pub struct Signals {
    pub detach: Detach,
    pub fenced: std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
    pub waiting: Option<Waiting>,
}

/// A `WaitForExclusive` producer queued behind another: its task answers PRODUCER with
/// `answer` (not ready), then again, ready and with the topic epoch, when `turn` resolves, or
/// with the error that ended the wait.
pub struct Waiting {
    pub answer: CommandProducerSuccess,
    pub turn: std::pin::Pin<Box<dyn Future<Output = magnetar_broker::Result<Option<u64>>> + Send>>,
}

pub fn spawn(
    shared: &Arc<Shared>,
    route: Route,
    signals: Signals,
    out: mpsc::Sender<Frame>,
) -> (mpsc::Sender<SendItem>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(shared.config.max_pending_sends);
    let task = shared.broker.spawn(publish_loop(Arc::clone(shared), route, rx, out, signals));
    (tx, task)
}

/// Waits for a queued producer's turn (see [`Waiting`]); false when the producer is to end
/// (its wait failed, or its client is gone).
async fn wait_turn(producer_id: u64, waiting: Waiting, detach: &Detach, out: &mpsc::Sender<Frame>) -> bool {
    let Waiting { answer, turn } = waiting;
    let request_id = answer.request_id;
    tracing::debug!(producer = producer_id, "pulsar:// producer waits for exclusive access");
    if out.send(Frame::new(answer.clone())).await.is_err() {
        return false;
    }
    let frame = tokio::select! {
        // Unloaded meanwhile: the loop closes the producer at once.
        _ = detach.unloaded() => return true,
        t = turn => match t {
            Ok(epoch) => Frame::new(CommandProducerSuccess { topic_epoch: epoch, producer_ready: Some(true), ..answer }),
            Err(e) => {
                let e = BinaryError::from(e);
                let _ = out.send(Frame::new(CommandError { request_id, error: e.code() as i32, message: e.message() })).await;
                return false;
            }
        },
    };
    out.send(frame).await.is_ok()
}

/// Whether an error means the partition is not (or no longer) served here: nothing was stored,
/// and the client is to send it again where the partition is now.
fn moved(e: &BrokerError) -> bool {
    matches!(e, BrokerError::NotOwner(_) | BrokerError::BundleUnavailable(_))
}

type Group = (Result<PendingPublish, BinaryError>, Vec<(u64, u64, Result<usize, (ServerError, String)>)>);

async fn publish_loop(
    shared: Arc<Shared>,
    route: Route,
    mut rx: mpsc::Receiver<SendItem>,
    out: mpsc::Sender<Frame>,
    signals: Signals,
) {
    let Signals { detach, mut fenced, waiting } = signals;
    if let Some(w) = waiting
        && !wait_turn(route.producer_id, w, &detach, &out).await
    {
        shared.producer_names.lock().unwrap_or_else(|e| e.into_inner()).remove(&route.key);
        return;
    }
    let mut fenced_out = false;
    let broker = Arc::clone(&shared.broker);
    let (groups_tx, groups_rx) = mpsc::channel::<Group>(GROUPS_IN_FLIGHT);
    let gone = CancellationToken::new();
    let acker = broker.spawn(receipt_loop(route.producer_id, groups_rx, out.clone(), gone.clone()));
    // One enqueue is one WAL frame, which must fit the WAL's buffer: SENDs of large messages
    // (chunks are up to the message size limit each) are queued a few at a time.
    let budget = broker.publisher().max_enqueue_bytes();
    let mut carried: Option<SendItem> = None;
    loop {
        let first = match carried.take() {
            Some(item) => item,
            None => tokio::select! {
                biased;
                _ = detach.unloaded() => break gone.cancel(),
                _ = &mut fenced => {
                    fenced_out = true;
                    break;
                }
                _ = gone.cancelled() => break,
                item = rx.recv() => match item {
                    Some(item) => item,
                    None => break,
                },
            },
        };
        let mut count = first.messages.as_ref().map_or(0, Vec::len);
        let mut bytes = first.bytes();
        let mut items = vec![first];
        while count < MAX_BATCH_MESSAGES {
            match rx.try_recv() {
                Ok(item) if bytes + item.bytes() > budget => {
                    carried = Some(item);
                    break;
                }
                Ok(item) => {
                    count += item.messages.as_ref().map_or(0, Vec::len);
                    bytes += item.bytes();
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
    // SENDs not taken are dropped unanswered; a connection waiting to queue one goes on.
    drop(rx);
    drop(groups_tx);
    let _ = acker.await;
    shared.producer_names.lock().unwrap_or_else(|e| e.into_inner()).remove(&route.key);
    if fenced_out || gone.is_cancelled() {
        // Fenced out, its client creates it again and is refused (its topic epoch is behind);
        // moved, it may be told where to.
        let to = if fenced_out {
            tracing::info!(topic = %route.topic, producer = route.producer_id, "pulsar:// producer fenced out by an exclusive producer");
            None
        } else {
            tracing::debug!(topic = %route.topic, producer = route.producer_id, "pulsar:// producer closed: its partition moved");
            detach.moved_to().filter(|_| route.direct).map(|r| broker.tier().redirect_on_close(r))
        };
        let to = to.unwrap_or_default();
        let close = CommandCloseProducer {
            producer_id: route.producer_id,
            request_id: 0,
            assigned_broker_service_url: to.url,
            assigned_broker_service_url_tls: to.url_tls,
        };
        let _ = out.send(Frame::new(close)).await;
    }
    // Only now may the handover close the log.
    drop(detach);
}

/// Answers each SEND in order. A SEND refused because the partition is not served here (any
/// more) stops the answers there and cancels `gone` (the producer's loop then closes the
/// producer): the client sends that one and the later ones again elsewhere, and answering a
/// later SEND while an earlier one stays unanswered would make it close the connection.
async fn receipt_loop(
    producer_id: u64,
    mut groups: mpsc::Receiver<Group>,
    out: mpsc::Sender<Frame>,
    gone: CancellationToken,
) {
    let mut stopped = false;
    while let Some((pending, meta)) = groups.recv().await {
        if stopped {
            continue;
        }
        let (mut outcomes, refused) = match pending {
            Ok(p) => (p.durable().await.into_iter(), None),
            Err(BinaryError::Broker(e)) if moved(&e) => {
                stopped = true;
                gone.cancel();
                continue;
            }
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
                            Some(e) if moved(e) => {
                                stopped = true;
                                gone.cancel();
                                break;
                            }
                            Some(e) => {
                                let e = BinaryError::Broker(clone_broker_error(e));
                                send_error(producer_id, sequence_id, e.code(), e.message())
                            }
                            None => {
                                let first = results.first().and_then(|r| r.as_ref().ok());
                                Frame::new(CommandSendReceipt {
                                    producer_id,
                                    sequence_id,
                                    message_id: first.map(convert::entry_id_data),
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
