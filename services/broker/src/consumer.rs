//! Consumer sessions: a consumer (or reader) attached to a subscription on every partition of a
//! topic, as the WebSocket API uses them. The session takes messages through the same
//! subscription engine as HTTP pull, applies the dead-letter policy and routes acks by message id.

use crate::messaging::{PublishMessage, PulledMessage};
use crate::partition::Partition;
use crate::subscription::{ConsumerId, ConsumerInfo, SubType, Subscription, WaitToken};
use crate::topics::StartPosition;
use crate::{Broker, BrokerError, Result};
use magnetar_core::{MessageId, TopicName};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

static NEXT_CONSUMER: AtomicU64 = AtomicU64::new(1);

/// Pulsar's dead-letter policy: after `max_redeliver` redeliveries a message goes to `topic`.
#[derive(Debug, Clone)]
pub struct DeadLetterPolicy {
    pub topic: TopicName,
    pub max_redeliver: u32,
}

#[derive(Debug, Clone)]
pub struct SubscribeOptions {
    pub sub_type: SubType,
    pub consumer_name: String,
    pub priority: i32,
    pub initial_position: StartPosition,
    pub address: String,
    pub ack_timeout: Option<Duration>,
    pub dead_letter: Option<DeadLetterPolicy>,
}

/// Acknowledgements waiting to be made durable, per partition (index into the session's subs).
type AckBatch = (usize, Vec<(u64, u64)>);
type AckWriter = (tokio::sync::mpsc::Sender<AckBatch>, tokio::task::JoinHandle<()>);

pub struct ConsumerSession {
    broker: Arc<Broker>,
    /// Streamed acks (WebSocket acks get no reply) are applied in memory at once and made
    /// durable by a per-session task that merges them into one WAL record per group commit.
    acks: std::sync::Mutex<Option<AckWriter>>,
    pub topic: TopicName,
    pub subscription: String,
    subs: Vec<(Arc<Partition>, Arc<Subscription>)>,
    id: ConsumerId,
    ack_timeout: Option<Duration>,
    dead_letter: Option<DeadLetterPolicy>,
    reader: bool,
    next: AtomicUsize,
}

impl Broker {
    /// Attaches a consumer to a durable subscription (created at the initial position if it
    /// does not exist), on every partition the name designates.
    pub async fn subscribe(
        self: &Arc<Self>,
        name: &TopicName,
        sub: &str,
        opts: SubscribeOptions,
    ) -> Result<ConsumerSession> {
        self.ensure_subscription(name, sub, opts.initial_position).await?;
        let (_, parts) = self.partitions_of(name).await?;
        let id = NEXT_CONSUMER.fetch_add(1, Ordering::Relaxed);
        let mut subs = Vec::with_capacity(parts.len());
        for p in parts {
            let s = p.subscription(sub).ok_or_else(|| BrokerError::NotFound(format!("subscription {sub}")))?;
            subs.push((p, s));
        }
        let info = ConsumerInfo {
            id,
            name: opts.consumer_name.clone(),
            priority: opts.priority,
            address: opts.address.clone(),
            connected_since: magnetar_core::now_millis(),
            unacked: 0,
            msg_out: 0,
            bytes_out: 0,
        };
        for (i, (_, s)) in subs.iter().enumerate() {
            if let Err(e) = s.attach(info.clone(), opts.sub_type) {
                for (_, done) in &subs[..i] {
                    done.detach(id);
                }
                return Err(e);
            }
        }
        let acks = std::sync::Mutex::new(Some(spawn_ack_writer(
            Arc::clone(self),
            sub.to_string(),
            subs.iter().map(|(p, _)| Arc::clone(p)).collect(),
        )));
        Ok(ConsumerSession {
            broker: Arc::clone(self),
            acks,
            topic: name.clone(),
            subscription: sub.to_string(),
            subs,
            id,
            ack_timeout: opts.ack_timeout,
            dead_letter: opts.dead_letter,
            reader: false,
            next: AtomicUsize::new(0),
        })
    }

    /// A reader: a non-durable, exclusive subscription starting at `start` (exclusive of a given
    /// message id, as Pulsar readers start after it).
    pub async fn create_reader(
        self: &Arc<Self>,
        name: &TopicName,
        start: StartPosition,
        reader_name: &str,
    ) -> Result<ConsumerSession> {
        let (_, parts) = self.partitions_of(name).await?;
        let id = NEXT_CONSUMER.fetch_add(1, Ordering::Relaxed);
        let sub = format!("reader-{id:x}");
        let info = ConsumerInfo {
            id,
            name: reader_name.to_string(),
            priority: 0,
            address: String::new(),
            connected_since: magnetar_core::now_millis(),
            unacked: 0,
            msg_out: 0,
            bytes_out: 0,
        };
        let mut subs = Vec::with_capacity(parts.len());
        for p in parts {
            let s = p.add_reader(&sub, start.offset(&p));
            s.attach(info.clone(), SubType::Exclusive)?;
            subs.push((p, s));
        }
        Ok(ConsumerSession {
            broker: Arc::clone(self),
            acks: std::sync::Mutex::new(None),
            topic: name.clone(),
            subscription: sub,
            subs,
            id,
            ack_timeout: None,
            dead_letter: None,
            reader: true,
            next: AtomicUsize::new(0),
        })
    }
}

impl ConsumerSession {
    pub fn id(&self) -> ConsumerId {
        self.id
    }

    /// Tokens to wait on; take them *before* `receive` so nothing arriving in between is missed.
    pub fn wait_tokens(&self) -> Vec<WaitToken> {
        self.subs.iter().map(|(_, s)| s.wait_token()).collect()
    }

    /// Resolves when any partition may have something for this consumer.
    pub async fn changed(&self, tokens: Vec<WaitToken>) {
        let waits = self.subs.iter().zip(tokens).map(|((_, s), t)| Box::pin(s.changed(t)));
        futures::future::select_all(waits).await;
    }

    /// Takes up to `max` messages without waiting. Messages past the dead-letter policy's
    /// redelivery limit are moved to the dead-letter topic instead of being returned.
    pub async fn receive(&self, max: usize) -> Result<Vec<PulledMessage>> {
        let n = self.subs.len();
        let first = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let mut out = Vec::new();
        for k in 0..n {
            if out.len() >= max {
                break;
            }
            let (p, s) = &self.subs[(first + k) % n];
            let got = s.take(Some(self.id), max - out.len(), 8 * 1024 * 1024, self.ack_timeout).await?;
            if got.is_empty() {
                continue;
            }
            p.record_delivery(got.len() as u64, got.iter().map(|d| d.record.payload.len() as u64).sum());
            for d in got {
                let m = PulledMessage::from_delivery(d);
                match &self.dead_letter {
                    Some(dl) if m.redelivery_count > dl.max_redeliver => self.dead_letter(dl, p, s, m).await?,
                    _ => out.push(m),
                }
            }
        }
        Ok(out)
    }

    async fn dead_letter(
        &self,
        dl: &DeadLetterPolicy,
        p: &Partition,
        s: &Subscription,
        m: PulledMessage,
    ) -> Result<()> {
        self.broker.ensure_topic(&dl.topic).await?;
        let mut properties = m.record.properties.clone();
        properties.push(("REAL_TOPIC".into(), p.name.to_string()));
        properties.push(("ORIGIN_MESSAGE_ID".into(), m.id.to_text()));
        let msg = PublishMessage {
            key: m.record.key.clone(),
            properties,
            payload: m.record.payload.clone(),
            event_time: m.record.event_time,
        };
        self.broker.publish(&dl.topic, vec![msg]).await?;
        if let Some(op) = s.ack(&[m.record.offset]) {
            self.broker.persist_op(p, &op).await?;
        }
        Ok(())
    }

    fn sub_index(&self, id: &MessageId) -> Result<usize> {
        let found = if self.subs.len() == 1 {
            let p = &self.subs[0].0;
            (id.partition_index < 0 || p.index == id.partition_index || p.index < 0).then_some(0)
        } else {
            self.subs.iter().position(|(p, _)| p.index == id.partition_index)
        };
        found.ok_or_else(|| BrokerError::BadRequest(format!("message id {id} does not belong to topic {}", self.topic)))
    }

    fn sub_for(&self, id: &MessageId) -> Result<&(Arc<Partition>, Arc<Subscription>)> {
        Ok(&self.subs[self.sub_index(id)?])
    }

    /// Acknowledges one message in memory at once; durability follows within a group commit
    /// (for WebSocket acks, which Pulsar's protocol never confirms). Waits only when the
    /// session's queue of acks not yet durable is full.
    pub async fn ack_streamed(&self, id: &MessageId) -> Result<()> {
        let i = self.sub_index(id)?;
        let s = &self.subs[i].1;
        let tx = self.acks.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|(tx, _)| tx.clone());
        if let Some(crate::subscription::CursorOp::Ack { ranges, .. }) = s.ack(&[id.offset()])
            && let Some(tx) = tx
        {
            tx.send((i, ranges))
                .await
                .map_err(|_| BrokerError::Unavailable("acknowledgement writer stopped".into()))?;
        }
        Ok(())
    }

    /// Waits until every streamed acknowledgement is durable (end of a session).
    pub async fn flush_acks(&self) {
        let writer = self.acks.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some((tx, task)) = writer {
            drop(tx);
            let _ = task.await;
        }
    }

    pub async fn ack_cumulative(&self, id: &MessageId) -> Result<()> {
        let (p, s) = self.sub_for(id)?;
        if let Some(op) = s.ack_cumulative(id.offset())?
            && !self.reader
        {
            self.broker.persist_op(p, &op).await?;
        }
        Ok(())
    }

    pub fn nack(&self, id: &MessageId, delay: Duration) -> Result<()> {
        let (_, s) = self.sub_for(id)?;
        s.nack(&[id.offset()], delay);
        Ok(())
    }

    /// Messages delivered to this consumer and not acknowledged yet.
    pub fn unacked(&self) -> u64 {
        self.subs.iter().map(|(_, s)| s.unacked_of(self.id)).sum()
    }

    /// Whether every message of every partition has been delivered and the topic is terminated.
    /// Topics cannot be terminated yet, so this is always false (Pulsar's answer for live topics).
    pub fn end_of_topic(&self) -> bool {
        false
    }

    /// Detaches (readers also drop their non-durable subscription).
    pub fn close(&self) {
        for (p, s) in &self.subs {
            s.detach(self.id);
            if self.reader {
                p.remove_subscription(&self.subscription);
            }
        }
    }

    /// Pulsar's unsubscribe: detach, then delete the subscription.
    pub async fn unsubscribe(&self) -> Result<()> {
        self.close();
        if !self.reader {
            self.broker.delete_subscription(&self.topic, &self.subscription, true).await?;
        }
        Ok(())
    }
}

/// Drains queued acks, merges them per partition and writes one cursor record per partition
/// per round; ends (after writing what is queued) when the session is dropped.
fn spawn_ack_writer(broker: Arc<Broker>, sub: String, parts: Vec<Arc<Partition>>) -> AckWriter {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<AckBatch>(4096);
    let task = tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut merged: std::collections::BTreeMap<usize, Vec<(u64, u64)>> = std::collections::BTreeMap::new();
            merged.entry(first.0).or_default().extend(first.1);
            while let Ok((i, r)) = rx.try_recv() {
                merged.entry(i).or_default().extend(r);
            }
            for (i, ranges) in merged {
                let op = crate::subscription::CursorOp::Ack { sub: sub.clone(), ranges };
                if let Err(e) = broker.persist_op(&parts[i], &op).await {
                    tracing::warn!(topic = %parts[i].name, error = %e, "could not persist acknowledgements; they are redelivered after a restart");
                }
            }
        }
    });
    (tx, task)
}

impl Drop for ConsumerSession {
    fn drop(&mut self) {
        self.close();
    }
}
