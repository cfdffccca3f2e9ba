//! Publishing (key-hash or round-robin routing, durable acknowledgement) and consuming (pull,
//! ack, negative ack) on top of the subscription engine.

use crate::partition::Partition;
use crate::subscription::Delivery;
use crate::topics::StartPosition;
use crate::{Broker, BrokerError, Result};
use bytes::Bytes;
use magnetar_core::{MessageId, TopicName, hash::partition_for_key, now_millis};
use magnetar_storage::{Record, RecordInput};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Messages of one publish call queued for the WAL: [`PendingPublish::durable`] waits for them.
#[must_use = "the messages are not acknowledged until `durable` resolves"]
pub struct PendingPublish {
    groups: Vec<PendingGroup>,
    total: usize,
    started: std::time::Instant,
}

struct PendingGroup {
    partition: Arc<Partition>,
    positions: Vec<usize>,
    pending: magnetar_storage::PendingAppend,
    bytes: u64,
}

impl PendingPublish {
    /// Resolves once every message is durable, with one id per message in publish order.
    pub async fn durable(self, broker: &Broker) -> Result<Vec<MessageId>> {
        let waits = self.groups.into_iter().map(|g| async move {
            let ids = g.pending.durable().await?;
            g.partition.record_publish(ids.len() as u64, g.bytes);
            Ok::<_, BrokerError>((g.partition, g.positions, ids))
        });
        let result = futures::future::try_join_all(waits).await;
        let groups = match result {
            Ok(groups) => groups,
            Err(e) => {
                broker.metrics.publish_errors.inc();
                return Err(e);
            }
        };
        let mut out = vec![MessageId::EARLIEST; self.total];
        for (partition, positions, ids) in groups {
            for (pos, (offset, base)) in positions.into_iter().zip(ids) {
                out[pos] = MessageId::new(base, offset, partition.index);
            }
        }
        broker.metrics.publish_latency.observe(self.started.elapsed().as_secs_f64());
        Ok(out)
    }
}

/// Offsets to act on, per partition index.
type IdGroups = BTreeMap<usize, (Arc<Partition>, Vec<u64>)>;

#[derive(Debug, Clone)]
pub struct PublishMessage {
    pub key: Option<String>,
    pub properties: Vec<(String, String)>,
    pub payload: Bytes,
    pub event_time: Option<i64>,
}

/// How a message key picks a partition: Pulsar's `Murmur3_32Hash` (REST produce) or the Java
/// client's default `JavaStringHash` (WebSocket producers, as Pulsar's proxy uses it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyHashing {
    Murmur3,
    JavaString,
}

impl PublishMessage {
    /// Delayed delivery: `deliver_at` (epoch ms) wins over `deliver_after_ms`; zero or negative
    /// values mean none. The time travels with the stored message (see `DELIVER_AT_PROPERTY`).
    pub fn deliver_later(&mut self, deliver_at: Option<i64>, deliver_after_ms: Option<i64>) {
        let at =
            deliver_at.filter(|&t| t > 0).or_else(|| deliver_after_ms.filter(|&d| d > 0).map(|d| now_millis() + d));
        if let Some(at) = at {
            self.properties.push((crate::subscription::DELIVER_AT_PROPERTY.into(), at.to_string()));
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialPosition {
    Earliest,
    Latest,
}

#[derive(Debug, Clone)]
pub struct PullRequest {
    pub max_messages: usize,
    pub max_bytes: usize,
    pub wait: Duration,
    pub ack_timeout: Duration,
    pub initial_position: InitialPosition,
}

/// A pulled message with its Pulsar-style id.
#[derive(Debug, Clone)]
pub struct PulledMessage {
    pub id: MessageId,
    pub record: Record,
    pub redelivery_count: u32,
}

impl PulledMessage {
    pub(crate) fn from_delivery(d: Delivery) -> Self {
        PulledMessage {
            id: MessageId::new(d.record.segment_base, d.record.offset, d.partition_index),
            redelivery_count: d.redelivery_count,
            record: d.record,
        }
    }
}

impl Broker {
    /// Publishes messages to a topic (or one partition), returning one id per message in order.
    /// All messages are validated before any is stored; the call returns once every message is
    /// durable.
    pub async fn publish(&self, name: &TopicName, messages: Vec<PublishMessage>) -> Result<Vec<MessageId>> {
        self.publish_routed(name, messages, KeyHashing::Murmur3).await
    }

    /// `publish` with a choice of key hashing.
    pub async fn publish_routed(
        &self,
        name: &TopicName,
        messages: Vec<PublishMessage>,
        hashing: KeyHashing,
    ) -> Result<Vec<MessageId>> {
        self.publish_enqueue(name, messages, hashing).await?.durable(self).await
    }

    /// The first half of `publish_routed`: validates and routes the messages and queues them
    /// for the WAL with their ids fixed. A connection with many messages in flight enqueues its
    /// next batch while the previous one is being made durable; ids follow enqueue order.
    pub async fn publish_enqueue(
        &self,
        name: &TopicName,
        messages: Vec<PublishMessage>,
        hashing: KeyHashing,
    ) -> Result<PendingPublish> {
        let res = self.enqueue_inner(name, messages, hashing).await;
        if res.is_err() {
            self.metrics.publish_errors.inc();
        }
        res
    }

    async fn enqueue_inner(
        &self,
        name: &TopicName,
        messages: Vec<PublishMessage>,
        hashing: KeyHashing,
    ) -> Result<PendingPublish> {
        let started = std::time::Instant::now();
        let max = self.config.max_message_bytes;
        if let Some((i, m)) = messages.iter().enumerate().find(|(_, m)| m.payload.len() > max) {
            return Err(BrokerError::PayloadTooLarge(format!(
                "message {i} has {} bytes, more than the maximum message size of {max} bytes",
                m.payload.len()
            )));
        }
        let (topic, fixed) = self.resolve(name).await?;
        let n = topic.partitions.len();
        // Route: a fixed partition, the key's hash, or round robin.
        let mut groups: BTreeMap<usize, Vec<(usize, RecordInput)>> = BTreeMap::new();
        let publish_time = now_millis();
        for (i, m) in messages.into_iter().enumerate() {
            let p = match (fixed, &m.key) {
                (Some(p), _) => p,
                (None, _) if n == 1 => 0,
                (None, Some(k)) => match hashing {
                    KeyHashing::Murmur3 => partition_for_key(k, n as u32) as usize,
                    KeyHashing::JavaString => magnetar_core::hash::partition_for_key_java(k, n as u32) as usize,
                },
                (None, None) => topic.next_partition(),
            };
            let input = RecordInput {
                publish_time,
                event_time: m.event_time,
                key: m.key,
                properties: m.properties,
                payload: m.payload,
            };
            groups.entry(p).or_default().push((i, input));
        }
        let total: usize = groups.values().map(Vec::len).sum();
        let appends = groups.into_iter().map(|(p, batch)| {
            let partition = Arc::clone(&topic.partitions[p]);
            async move {
                self.admit_publish(&partition).await?;
                let (positions, inputs): (Vec<usize>, Vec<RecordInput>) = batch.into_iter().unzip();
                let bytes: u64 = inputs.iter().map(|r| r.payload.len() as u64).sum();
                let pending = partition.log.enqueue(inputs).await?;
                Ok::<_, BrokerError>(PendingGroup { partition, positions, pending, bytes })
            }
        });
        // An error leaves the other partitions' groups queued: they are stored, not acknowledged,
        // as when a producer's connection drops with messages in flight.
        let groups = futures::future::try_join_all(appends).await?;
        Ok(PendingPublish { groups, total, started })
    }

    /// Long-poll pull from a durable subscription, created at `initial_position` if missing.
    /// Returns as soon as at least one message is available, or empty when `wait` passes.
    pub async fn pull(&self, name: &TopicName, sub: &str, req: &PullRequest) -> Result<Vec<PulledMessage>> {
        let start = match req.initial_position {
            InitialPosition::Earliest => StartPosition::Earliest,
            InitialPosition::Latest => StartPosition::Latest,
        };
        self.ensure_subscription(name, sub, start).await?;
        let (_, parts) = self.partitions_of(name).await?;
        let subs: Vec<_> = parts.iter().filter_map(|p| p.subscription(sub).map(|s| (Arc::clone(p), s))).collect();
        if subs.is_empty() {
            return Err(BrokerError::NotFound(format!("subscription {sub}")));
        }
        // HTTP pullers share messages; a subscription whose connected consumers have it
        // exclusively (or by key) cannot be pulled from at the same time.
        if let Some(kind) =
            subs.iter().find_map(|(_, s)| s.kind()).filter(|k| *k != crate::subscription::SubType::Shared)
        {
            return Err(BrokerError::Conflict(format!(
                "subscription {sub} is {} with connected consumers; HTTP pull needs a Shared subscription",
                kind.as_str()
            )));
        }
        let deadline = tokio::time::Instant::now() + req.wait;
        // Start at a different partition each time so one busy partition cannot starve others.
        let first = rand_start(subs.len());
        loop {
            let tokens: Vec<_> = subs.iter().map(|(_, s)| s.wait_token()).collect();
            let mut out = Vec::new();
            let mut bytes = 0usize;
            for k in 0..subs.len() {
                let (p, s) = &subs[(first + k) % subs.len()];
                let room = req.max_messages - out.len();
                if room == 0 || bytes >= req.max_bytes {
                    break;
                }
                let got = s.take(None, room, req.max_bytes - bytes, Some(req.ack_timeout)).await?;
                let got_bytes: usize = got.iter().map(|d| d.record.payload.len()).sum();
                bytes += got_bytes;
                if !got.is_empty() {
                    p.record_delivery(got.len() as u64, got_bytes as u64);
                }
                out.extend(got.into_iter().map(PulledMessage::from_delivery));
            }
            if !out.is_empty() {
                return Ok(out);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(out);
            }
            let waits = subs.iter().zip(tokens).map(|((_, s), t)| Box::pin(s.changed(t)));
            tokio::select! {
                _ = futures::future::select_all(waits) => {}
                _ = tokio::time::sleep_until(deadline) => return Ok(Vec::new()),
            }
        }
    }

    /// Maps message ids to the partitions of the topic they belong to.
    fn group_ids(topic: &crate::Topic, name: &TopicName, ids: &[MessageId]) -> Result<IdGroups> {
        let mut groups: IdGroups = BTreeMap::new();
        let fixed = name.partition_index();
        for id in ids {
            if id.is_earliest() || id.is_latest() {
                return Err(BrokerError::BadRequest(format!("message id {id} does not designate a message")));
            }
            let idx = match (topic.is_partitioned(), fixed) {
                (true, Some(i)) if id.partition_index < 0 || id.partition_index == i as i32 => i as usize,
                (true, None) if id.partition_index >= 0 && (id.partition_index as usize) < topic.partitions.len() => {
                    id.partition_index as usize
                }
                (false, _) if id.partition_index < 0 => 0,
                _ => return Err(BrokerError::BadRequest(format!("message id {id} does not belong to topic {name}"))),
            };
            let entry = groups.entry(idx).or_insert_with(|| (Arc::clone(&topic.partitions[idx]), Vec::new()));
            entry.1.push(id.offset());
        }
        Ok(groups)
    }

    /// Acknowledges messages; returns once the acknowledgement is durable. Acknowledging an
    /// already acknowledged message is a no-op.
    pub async fn ack(&self, name: &TopicName, sub: &str, ids: &[MessageId]) -> Result<()> {
        let (topic, _) = self.resolve(name).await?;
        let groups = Self::group_ids(&topic, name, ids)?;
        for (_, (p, offsets)) in groups {
            let s = p.subscription(sub).ok_or_else(|| BrokerError::NotFound(format!("subscription {sub}")))?;
            if let Some(op) = s.ack(&offsets) {
                self.persist_op(&p, &op).await?;
            }
        }
        Ok(())
    }

    /// Negative acknowledgement: the messages are redelivered after `delay`.
    pub async fn nack(&self, name: &TopicName, sub: &str, ids: &[MessageId], delay: Duration) -> Result<()> {
        let (topic, _) = self.resolve(name).await?;
        for (_, (p, offsets)) in Self::group_ids(&topic, name, ids)? {
            let s = p.subscription(sub).ok_or_else(|| BrokerError::NotFound(format!("subscription {sub}")))?;
            s.nack(&offsets, delay);
        }
        Ok(())
    }

    /// The `n`-th unacknowledged message of a subscription (Pulsar's peek).
    pub async fn peek(&self, name: &TopicName, sub: &str, n: u64) -> Result<PulledMessage> {
        let p = self.single_partition(name, "peek messages").await?;
        let s = p.subscription(sub).ok_or_else(|| BrokerError::NotFound(format!("subscription {sub}")))?;
        let offset =
            s.nth_unacked(n.max(1)).ok_or_else(|| BrokerError::NotFound(format!("message at position {n}")))?;
        let log = Arc::clone(&p.log);
        let rec = tokio::task::spawn_blocking(move || log.read(offset, 1, usize::MAX))
            .await
            .map_err(|e| BrokerError::Internal(e.to_string()))??
            .into_iter()
            .next()
            .filter(|r| r.offset == offset)
            .ok_or_else(|| BrokerError::NotFound(format!("message at position {n}")))?;
        Ok(PulledMessage {
            id: MessageId::new(rec.segment_base, rec.offset, p.index),
            record: rec,
            redelivery_count: 0,
        })
    }

    /// Id of the last durable message of a single partition (`-1:-1` if empty).
    pub async fn last_message_id(&self, name: &TopicName) -> Result<MessageId> {
        let p = self.single_partition(name, "get last message id").await?;
        let end = p.log.end_offset();
        if end == 0 || end <= p.log.start_offset() {
            return Ok(MessageId { partition_index: p.index, ..MessageId::EARLIEST });
        }
        Ok(crate::stats::message_id_at(&p, end - 1))
    }
}

fn rand_start(n: usize) -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed) % n.max(1)
}
