//! One task per consumer: delivers MESSAGE frames against the permits its FLOW commands granted
//! (one permit per message: every stored record is one message), waiting on the subscription
//! engine when there is nothing to send and on a FLOW when permits run out.

use crate::convert;
use magnetar_broker::ConsumerSession;
use magnetar_protocol::Frame;
use magnetar_protocol::proto::{CommandActiveConsumerChange, CommandCloseConsumer, CommandMessage};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

/// Most messages taken from the engine in one go.
const TAKE: u64 = 100;

/// A consumer as its connection holds it.
pub struct ConsumerHandle {
    pub session: Arc<ConsumerSession>,
    pub permits: Arc<AtomicU64>,
    pub wake: Arc<Notify>,
    pub stop: CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
    /// The subscription's name; `None` for a reader.
    pub subscription: Option<magnetar_core::SubscriptionName>,
    /// The subscription name the client gave (a reader's `reader-…` too).
    pub subscription_name: String,
}

impl ConsumerHandle {
    /// Adds permits (FLOW), at most `cap` outstanding.
    pub fn grant(&self, n: u32, cap: u64) {
        let _ = self
            .permits
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| Some(p.saturating_add(n as u64).min(cap)));
        self.wake.notify_one();
    }

    /// Ends delivery, waits for the task, and detaches the session (acks already received are
    /// made durable first).
    pub async fn close(self) {
        self.stop.cancel();
        let _ = self.task.await;
        self.session.flush_acks().await;
        self.session.close();
    }
}

pub fn spawn(
    broker: &magnetar_broker::Broker,
    consumer_id: u64,
    session: ConsumerSession,
    subscription: Option<magnetar_core::SubscriptionName>,
    out: mpsc::Sender<Frame>,
) -> ConsumerHandle {
    let session = Arc::new(session);
    let permits = Arc::new(AtomicU64::new(0));
    let wake = Arc::new(Notify::new());
    let stop = CancellationToken::new();
    let task = broker.spawn(deliver(
        consumer_id,
        Arc::clone(&session),
        Arc::clone(&permits),
        Arc::clone(&wake),
        stop.clone(),
        out,
    ));
    ConsumerHandle { session, permits, wake, stop, task, subscription, subscription_name: String::new() }
}

async fn deliver(
    consumer_id: u64,
    session: Arc<ConsumerSession>,
    permits: Arc<AtomicU64>,
    wake: Arc<Notify>,
    stop: CancellationToken,
    out: mpsc::Sender<Frame>,
) {
    // Failover: tell the consumer whether it is active at once and at every change (Pulsar
    // sends ACTIVE_CONSUMER_CHANGE to Failover consumers only).
    let mut members = session.watch_members();
    let mut told: Option<bool> = None;
    loop {
        if let Some(active) = session.failover_active().filter(|a| told != Some(*a)) {
            told = Some(active);
            let change = CommandActiveConsumerChange { consumer_id, is_active: Some(active) };
            if out.send(Frame::new(change)).await.is_err() {
                return;
            }
        }
        let tokens = session.wait_tokens();
        let available = permits.load(Ordering::Acquire);
        let room = session.max_unacked().saturating_sub(session.unacked());
        let window = available.min(room).min(TAKE);
        let mut sent = 0;
        if window > 0 {
            match session.receive(window as usize).await {
                Ok(messages) => {
                    for m in &messages {
                        let frame = Frame::with_payload(
                            CommandMessage {
                                consumer_id,
                                message_id: convert::id_data(&m.id),
                                redelivery_count: Some(m.redelivery_count),
                                ..Default::default()
                            },
                            convert::message_payload(m),
                        );
                        if out.send(frame).await.is_err() {
                            return;
                        }
                    }
                    sent = messages.len() as u64;
                    let _ = permits.fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| Some(p.saturating_sub(sent)));
                }
                Err(e) => tracing::warn!(consumer_id, error = %e, "delivery to a pulsar:// consumer failed"),
            }
        }
        if sent > 0 {
            continue;
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = session.closed() => {
                // Unloaded or deleted: the client looks the topic up again and resubscribes.
                let _ = out.send(Frame::new(CommandCloseConsumer { consumer_id, request_id: 0, ..Default::default() })).await;
                return;
            }
            _ = wake.notified() => {}
            _ = magnetar_broker::members_changed(&mut members), if told.is_some() => {}
            _ = session.changed(tokens), if available > 0 => {}
        }
    }
}
