//! Consumer sessions: a consumer (or reader) attached to a subscription on every partition of a
//! topic, as the WebSocket API uses them. The session takes messages through the same
//! subscription engine as HTTP pull, applies the dead-letter policy (publishing as the consumer,
//! authorized as such) and routes acks by message id.

use crate::access::Caller;
use crate::chunks::{self, Joiner};
use crate::encrypted;
use crate::error::Entity;
use crate::partition::Partition;
use crate::policies::enforce;
use crate::policies::runtime::SlotGuard;
use crate::publish::{KeyHashing, PublishMessage};
use crate::subscription::cursor::CumulativeError;
use crate::subscription::{ConsumerId, ConsumerInfo, CursorOp, ReadAhead, SubType, Subscription, Taking, WaitToken};
use crate::subscriptions::{PulledMessage, StartPosition, Subscriptions, beyond_end};
use crate::{BrokerError, Result};
use magnetar_core::{MessageId, SubscriptionName, TopicName};
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
    /// Pulsar's `readCompacted` (Exclusive and Failover subscriptions only).
    pub read_compacted: bool,
    /// Key_Shared in Sticky mode: the key hash slots the consumer claims (inclusive ranges);
    /// `None` for auto-split.
    pub sticky_ranges: Option<Vec<(u16, u16)>>,
    /// Shown in the consumer's stats: its properties, its client, its unused permits.
    pub shown: ConsumerShown,
    /// Pulsar's subscription properties (PIP-105): set when this consumer creates the
    /// subscription, kept otherwise.
    pub properties: std::collections::BTreeMap<String, String>,
}

/// A reader as `Subscriptions::create_reader` opens it.
pub(crate) struct ReaderInfo<'a> {
    pub name: &'a str,
    pub read_compacted: bool,
    pub shown: ConsumerShown,
}

/// What a consumer's stats show of it beyond the subscription's own counts.
#[derive(Debug, Clone, Default)]
pub struct ConsumerShown {
    pub metadata: Vec<(String, String)>,
    pub client_version: String,
    pub permits: Option<Arc<std::sync::atomic::AtomicI64>>,
}

/// Resolves when consumers joined or left a subscription since the receivers last looked.
pub async fn members_changed(watches: &mut [tokio::sync::watch::Receiver<u64>]) {
    if watches.is_empty() {
        return std::future::pending().await;
    }
    let waits = watches.iter_mut().map(|w| Box::pin(w.changed()));
    if futures::future::select_all(waits).await.0.is_err() {
        // The subscription is gone; the session's `closed` ends the consumer.
        std::future::pending::<()>().await;
    }
}

/// Acknowledgements waiting to be made durable, per partition (index into the session's subs).
type AckBatch = (usize, Vec<(u64, u64)>);
type AckWriter = (tokio::sync::mpsc::Sender<AckBatch>, tokio::task::JoinHandle<()>);

enum Kind {
    Consumer { subscription: SubscriptionName, caller: Caller, dead_letter: Option<DeadLetterPolicy> },
    Reader,
}

pub struct ConsumerSession {
    service: Subscriptions,
    /// Streamed acks (WebSocket acks get no reply) are applied in memory at once and made
    /// durable by a per-session task that merges them into one WAL record per group commit.
    acks: std::sync::Mutex<Option<AckWriter>>,
    pub topic: TopicName,
    kind: Kind,
    subs: Vec<(Arc<Partition>, Arc<Subscription>)>,
    id: ConsumerId,
    ack_timeout: Option<Duration>,
    next: AtomicUsize,
    /// Consumer slots of the topic's partitions (`maxConsumersPerTopic`), held while attached.
    _slots: Vec<SlotGuard>,
    /// When a dispatch rate lets a throttled partition deliver again.
    throttled_until: std::sync::Mutex<Option<tokio::time::Instant>>,
    /// The consumer takes a batch's messages together (a binary consumer, which receives a
    /// batch as one frame): `receive` may then return a few more than asked.
    whole_batches: std::sync::atomic::AtomicBool,
    /// Joins chunked messages (Exclusive and Failover consumers and readers that are not binary
    /// consumers, which join chunks themselves).
    chunks: Option<std::sync::Mutex<Joiner>>,
    /// Read-ahead windows, one per partition (binary consumers; empty for the others).
    ahead: Vec<Arc<ReadAhead>>,
}

fn consumer_info(id: ConsumerId, name: &str, priority: i32, address: &str, now: i64) -> ConsumerInfo {
    ConsumerInfo {
        id,
        name: name.to_string(),
        priority,
        address: address.to_string(),
        connected_since: now,
        ..ConsumerInfo::default()
    }
}

impl ConsumerSession {
    pub(crate) fn attach(
        service: Subscriptions,
        caller: Caller,
        topic: TopicName,
        subscription: SubscriptionName,
        subs: Vec<(Arc<Partition>, Arc<Subscription>)>,
        opts: SubscribeOptions,
        slots: Vec<SlotGuard>,
    ) -> Result<ConsumerSession> {
        let id = NEXT_CONSUMER.fetch_add(1, Ordering::Relaxed);
        let now = service.ctx().now_ms();
        let info = ConsumerInfo {
            sticky: opts.sticky_ranges.clone().filter(|_| opts.sub_type == SubType::KeyShared),
            metadata: opts.shown.metadata.clone(),
            client_version: opts.shown.client_version.clone(),
            permits: opts.shown.permits.clone(),
            ..consumer_info(id, &opts.consumer_name, opts.priority, &opts.address, now)
        };
        for (i, (_, s)) in subs.iter().enumerate() {
            if let Err(e) = s.attach(info.clone(), opts.sub_type) {
                for (_, done) in &subs[..i] {
                    done.detach(id);
                }
                return Err(match e {
                    BrokerError::TooManyConsumers { max, .. } => BrokerError::TooManyConsumers {
                        entity: Box::new(Entity::Subscription { topic: topic.clone(), name: subscription.clone() }),
                        max,
                    },
                    e => e,
                });
            }
        }
        for (_, s) in &subs {
            s.set_read_compacted(opts.read_compacted);
        }
        let chunks = matches!(opts.sub_type, SubType::Exclusive | SubType::Failover).then(|| joiner(&service));
        let writer =
            spawn_ack_writer(&service, subscription.clone(), subs.iter().map(|(p, _)| Arc::clone(p)).collect());
        Ok(ConsumerSession {
            service,
            acks: std::sync::Mutex::new(Some(writer)),
            topic,
            kind: Kind::Consumer { subscription, caller, dead_letter: opts.dead_letter },
            subs,
            id,
            ack_timeout: opts.ack_timeout,
            next: AtomicUsize::new(0),
            _slots: slots,
            throttled_until: std::sync::Mutex::new(None),
            whole_batches: std::sync::atomic::AtomicBool::new(false),
            chunks,
            ahead: Vec::new(),
        })
    }

    /// A reader starts after a given message id (Pulsar readers' `startMessageIdInclusive`
    /// is false), or at the earliest or latest position.
    pub(crate) fn reader(
        service: Subscriptions,
        topic: TopicName,
        parts: Vec<Arc<Partition>>,
        start: StartPosition,
        reader: ReaderInfo<'_>,
        slots: Vec<SlotGuard>,
    ) -> Result<ConsumerSession> {
        let id = NEXT_CONSUMER.fetch_add(1, Ordering::Relaxed);
        let ReaderInfo { name: reader_name, read_compacted, shown } = reader;
        let info = ConsumerInfo {
            metadata: shown.metadata,
            client_version: shown.client_version,
            permits: shown.permits,
            ..consumer_info(id, reader_name, 0, "", service.ctx().now_ms())
        };
        let chunks = Some(joiner(&service));
        let mut subs = Vec::with_capacity(parts.len());
        for p in parts {
            let s = p.add_reader(id, start.offset(&p));
            s.attach(info.clone(), SubType::Exclusive)?;
            s.set_read_compacted(read_compacted);
            subs.push((p, s));
        }
        Ok(ConsumerSession {
            service,
            acks: std::sync::Mutex::new(None),
            topic,
            kind: Kind::Reader,
            subs,
            id,
            ack_timeout: None,
            next: AtomicUsize::new(0),
            _slots: slots,
            throttled_until: std::sync::Mutex::new(None),
            whole_batches: std::sync::atomic::AtomicBool::new(false),
            chunks,
            ahead: Vec::new(),
        })
    }

    pub fn id(&self) -> ConsumerId {
        self.id
    }

    /// Tokens to wait on; take them *before* `receive` so nothing arriving in between is missed.
    pub fn wait_tokens(&self) -> Vec<WaitToken> {
        self.subs.iter().map(|(_, s)| s.wait_token()).collect()
    }

    /// Resolves when any partition may have something for this consumer, or a dispatch rate
    /// that held deliveries back allows more.
    pub async fn changed(&self, tokens: Vec<WaitToken>) {
        let waits = self.subs.iter().zip(tokens).map(|((_, s), t)| Box::pin(s.changed(t)));
        let until = *self.throttled_until.lock().unwrap_or_else(|e| e.into_inner());
        let paced = async {
            match until {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = futures::future::select_all(waits) => {}
            _ = paced => {}
        }
    }

    /// Most messages this consumer may hold unacknowledged (`maxUnackedMessagesPerConsumer`;
    /// `u64::MAX` without a limit).
    pub fn max_unacked(&self) -> u64 {
        let limit = self.subs.first().map_or(0, |(p, _)| p.policy.max_unacked_per_consumer.load(Ordering::Relaxed));
        if limit == 0 || matches!(self.kind, Kind::Reader) { u64::MAX } else { u64::from(limit) }
    }

    /// Pulsar's mark-delete position of this consumer's cursor (the last message below which
    /// everything is acknowledged) on a single partition, `L:-1` when nothing is. Pulsar's
    /// clients compare it with the last message id when a reader started at the latest message
    /// asks whether anything is available.
    pub fn mark_delete_id(&self) -> Option<MessageId> {
        let [(p, s)] = self.subs.as_slice() else { return None };
        let first = s.cursor().mark_delete.max(p.log.start_offset());
        Some(match first.checked_sub(1) {
            Some(last_acked) => crate::stats::message_id_at(p, last_acked),
            None => MessageId { ledger_id: 0, entry_id: -1, partition_index: p.index, batch_index: -1 },
        })
    }

    /// From now on, `receive` keeps the messages of a batch together, even past its `max`,
    /// and `read_ahead` is possible. (A binary consumer, which also joins chunked messages
    /// itself: the session delivers chunks as they are.)
    pub fn deliver_whole_batches(&mut self) {
        self.whole_batches.store(true, Ordering::Relaxed);
        self.chunks = None;
        self.ahead = self.subs.iter().map(|_| Arc::default()).collect();
    }

    /// Reads what the next `receive` will start with, for a consumer that ran out of permits
    /// (`subscription/ahead.rs`). Await it before that `receive`: it then finds the records read.
    pub fn read_ahead(&self) -> tokio::task::JoinHandle<()> {
        let work: Vec<_> =
            self.subs.iter().zip(&self.ahead).map(|((_, s), a)| (Arc::clone(s), Arc::clone(a))).collect();
        tokio::task::spawn_blocking(move || {
            for (s, a) in work {
                s.read_ahead_blocking(&a);
            }
        })
    }

    /// Takes up to `max` messages without waiting. Messages past the dead-letter policy's
    /// redelivery limit are moved to the dead-letter topic instead of being returned.
    pub async fn receive(&self, max: usize) -> Result<Vec<PulledMessage>> {
        let n = self.subs.len();
        let first = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let mut out = Vec::new();
        let mut throttled: Option<Duration> = None;
        for k in 0..n {
            if out.len() >= max {
                break;
            }
            let (p, s) = &self.subs[(first + k) % n];
            let allowed = enforce::dispatch_allowance(p, s);
            if allowed == 0 {
                let wait = enforce::dispatch_wait(p, s);
                throttled = Some(throttled.map_or(wait, |t| t.min(wait)));
                continue;
            }
            let room = (max - out.len()).min(allowed.min(usize::MAX as u64) as usize);
            let whole = self.whole_batches.load(Ordering::Relaxed);
            let mut joined = chunks::Outcome::default();
            let got = loop {
                let how = Taking { whole_batches: whole, ahead: self.ahead.get((first + k) % n).cloned() };
                let got = s.take_with(Some(self.id), room, 8 * 1024 * 1024, self.ack_timeout, how).await?;
                let (got, settled) = encrypted::split_members(got, whole);
                if settled.is_empty() {
                    break got;
                }
                joined.drop.push(((first + k) % n, settled));
                if !got.is_empty() {
                    break got;
                }
                // Only members of encrypted batches, which go nowhere: take what follows them
                // now rather than answer nothing while messages are there.
                self.settle_chunks(std::mem::take(&mut joined)).await?;
            };
            if got.is_empty() {
                self.settle_chunks(joined).await?;
                continue;
            }
            let bytes: u64 = got.iter().map(|d| d.record.payload.len() as u64).sum();
            enforce::record_dispatch(p, s, got.len() as u64, bytes);
            p.record_delivery(got.len() as u64, bytes);
            for d in got {
                let m = PulledMessage::from_delivery(d);
                // An encrypted chunk is encrypted on its own: it goes out as it is, not joined.
                if let Some(j) = &self.chunks
                    && m.record.chunk.is_some()
                    && m.record.encrypted.is_none()
                {
                    j.lock().unwrap_or_else(|e| e.into_inner()).offer((first + k) % n, m, &mut joined);
                    // In log order: a joined message where its last chunk is.
                    out.append(&mut joined.whole);
                    continue;
                }
                match &self.kind {
                    Kind::Consumer { dead_letter: Some(dl), caller, .. } if m.redelivery_count > dl.max_redeliver => {
                        self.dead_letter(caller, dl, p, s, m).await?
                    }
                    _ => out.push(m),
                }
            }
            self.settle_chunks(joined).await?;
        }
        *self.throttled_until.lock().unwrap_or_else(|e| e.into_inner()) = match throttled {
            Some(wait) if out.is_empty() => Some(tokio::time::Instant::now() + wait.max(Duration::from_millis(1))),
            _ => None,
        };
        Ok(out)
    }

    /// Redelivers or drops (acknowledges) the chunks the chunk joiner gave back, and the members
    /// of encrypted batches that go nowhere.
    async fn settle_chunks(&self, joined: chunks::Outcome) -> Result<()> {
        for (i, offsets) in joined.redeliver {
            self.subs[i].1.nack(&offsets, Duration::from_secs(1));
        }
        for (i, offsets) in joined.drop {
            let (p, s) = &self.subs[i];
            // A reader's acknowledgements free its window only: in memory, never persisted.
            let op = s.ack(&offsets).map_err(|e| beyond_end(p, &MessageId::new(0, e.offset, p.index), e))?;
            if let Some(op) = op
                && matches!(self.kind, Kind::Consumer { .. })
            {
                self.service.ctx().persist_op(p, &op).await?;
            }
        }
        Ok(())
    }

    /// The offsets an id delivered by this session covers in its partition `i`: every chunk of
    /// a joined chunked message, else the id's own.
    fn covered(&self, i: usize, id: &MessageId) -> Vec<u64> {
        match &self.chunks {
            Some(j) => j.lock().unwrap_or_else(|e| e.into_inner()).covered(i, id.offset()),
            None => vec![id.offset()],
        }
    }

    /// Publishes the message to the dead-letter topic as the consumer (authorized again: a grant
    /// revoked since the handshake stops it), then acknowledges it.
    async fn dead_letter(
        &self,
        caller: &Caller,
        dl: &DeadLetterPolicy,
        p: &Partition,
        s: &Subscription,
        m: PulledMessage,
    ) -> Result<()> {
        let mut properties = m.record.properties.clone();
        properties.push(("REAL_TOPIC".into(), p.name.to_string()));
        properties.push(("ORIGIN_MESSAGE_ID".into(), m.id.to_text()));
        let msg = PublishMessage {
            key: m.record.key.clone(),
            key_base64: m.record.key_base64,
            ordering_key: m.record.ordering_key.clone(),
            properties,
            payload: m.record.payload.clone(),
            event_time: m.record.event_time,
            ..PublishMessage::default()
        };
        let msgs = encrypted::copies(&m.record, msg);
        let outcome = self.service.publisher().publish(caller, &dl.topic, msgs, KeyHashing::Murmur3).await;
        let failed = |r: Vec<Result<_>>| r.into_iter().find_map(|o| o.err());
        if let Some(e) = outcome.map_or_else(Some, failed) {
            // Not acknowledged: the message stays for another attempt.
            s.nack(&[m.record.offset], Duration::from_secs(1));
            return Err(e);
        }
        if let Some(op) = s.ack(&[m.record.offset]).map_err(|e| beyond_end(p, &m.id, e))? {
            self.service.ctx().persist_op(p, &op).await?;
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
        found.ok_or_else(|| BrokerError::ForeignMessageId { id: id.to_text(), topic: self.topic.clone() })
    }

    fn sub_for(&self, id: &MessageId) -> Result<&(Arc<Partition>, Arc<Subscription>)> {
        Ok(&self.subs[self.sub_index(id)?])
    }

    /// Acknowledges one message in memory at once; durability follows within a group commit
    /// (for WebSocket acks, which Pulsar's protocol never confirms). Waits only when the
    /// session's queue of acks not yet durable is full. An id past the end of its partition is
    /// refused.
    pub async fn ack_streamed(&self, id: &MessageId) -> Result<()> {
        let offsets = self.covered(self.sub_index(id)?, id);
        self.ack_streamed_offsets(id, &offsets).await
    }

    /// [`Self::ack_streamed`] for several messages of the partition `id` names (the messages of
    /// a batch a binary consumer acknowledged by its entry).
    pub async fn ack_streamed_offsets(&self, id: &MessageId, offsets: &[u64]) -> Result<()> {
        let i = self.sub_index(id)?;
        let (p, s) = &self.subs[i];
        let tx = self.acks.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|(tx, _)| tx.clone());
        let op = s.ack(offsets).map_err(|e| beyond_end(p, id, e))?;
        if let Some(CursorOp::Ack { ranges, .. }) = op
            && let Some(tx) = tx
        {
            tx.send((i, ranges)).await.map_err(|_| BrokerError::ShuttingDown)?;
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
        self.ack_cumulative_offset(id, id.offset()).await
    }

    /// Acknowledges `through` and every message before it, in the partition `id` names.
    pub async fn ack_cumulative_offset(&self, id: &MessageId, through: u64) -> Result<()> {
        let i = self.sub_index(id)?;
        let (p, s) = &self.subs[i];
        if let Some(j) = &self.chunks {
            j.lock().unwrap_or_else(|e| e.into_inner()).acked_through(i, through);
        }
        let op = s.ack_cumulative(through).map_err(|e| match e {
            CumulativeError::BeyondEnd(e) => beyond_end(p, id, e),
            CumulativeError::NotAllowed(e) => e,
        })?;
        if let Some(op) = op
            && matches!(self.kind, Kind::Consumer { .. })
        {
            self.service.ctx().persist_op(p, &op).await?;
        }
        Ok(())
    }

    pub fn nack(&self, id: &MessageId, delay: Duration) -> Result<()> {
        let offsets = self.covered(self.sub_index(id)?, id);
        self.nack_offsets(id, &offsets, delay)
    }

    /// [`Self::nack`] for several messages of the partition `id` names.
    pub fn nack_offsets(&self, id: &MessageId, offsets: &[u64], delay: Duration) -> Result<()> {
        let (_, s) = self.sub_for(id)?;
        s.nack(offsets, delay);
        Ok(())
    }

    /// Pulsar's REDELIVER_UNACKNOWLEDGED_MESSAGES without ids: everything delivered to this
    /// consumer and not acknowledged becomes available again at once.
    pub fn redeliver_unacked(&self) -> usize {
        if let Some(j) = &self.chunks {
            j.lock().unwrap_or_else(|e| e.into_inner()).reset();
        }
        self.subs.iter().map(|(_, s)| s.nack_all_of(self.id, Duration::ZERO)).sum()
    }

    /// The partition index of each partition the session reads, in order.
    pub fn partition_indexes(&self) -> Vec<i32> {
        self.subs.iter().map(|(p, _)| p.index).collect()
    }

    /// Resolves once a partition of the session is unloaded or deleted: the session must end
    /// (its client reconnects and attaches to what is loaded then).
    pub async fn closed(&self) {
        let waits = self.subs.iter().map(|(p, _)| Box::pin(p.unloaded()));
        futures::future::select_all(waits).await;
    }

    /// Where an unloaded partition of the session went, when a handover gave its bundle to
    /// another broker (see `Partition::moved_to`).
    pub fn moved_to(&self) -> Option<&magnetar_metadata::BrokerRegistration> {
        self.subs.iter().map(|(p, _)| p).filter(|p| p.unloaded.is_cancelled()).find_map(|p| p.moved_to())
    }

    /// For a Failover subscription, whether this consumer is the active one on any of its
    /// partitions (Pulsar's ACTIVE_CONSUMER_CHANGE); `None` for the other types and readers.
    pub fn failover_active(&self) -> Option<bool> {
        let states: Vec<bool> = self.subs.iter().filter_map(|(_, s)| s.failover_active(self.id)).collect();
        (!states.is_empty()).then(|| states.contains(&true))
    }

    /// Receivers that change when consumers join or leave this session's subscriptions; see
    /// `members_changed`.
    pub fn watch_members(&self) -> Vec<tokio::sync::watch::Receiver<u64>> {
        self.subs.iter().map(|(_, s)| s.watch_members()).collect()
    }

    /// Messages delivered to this consumer and not acknowledged yet.
    pub fn unacked(&self) -> u64 {
        self.subs.iter().map(|(_, s)| s.unacked_of(self.id)).sum()
    }

    /// Pulsar's end of topic: every partition is terminated and has nothing left to deliver to
    /// this session's subscription (false for a live topic).
    pub fn end_of_topic(&self) -> bool {
        self.subs.iter().all(|(p, s)| crate::topic_ops::drained(p, s))
    }

    /// Detaches (a reader's subscription goes with it).
    pub fn close(&self) {
        for (p, s) in &self.subs {
            s.detach(self.id);
            if matches!(self.kind, Kind::Reader) {
                p.remove_reader(self.id);
            }
        }
    }

    /// Pulsar's unsubscribe: detach, then delete the subscription.
    pub async fn unsubscribe(&self) -> Result<()> {
        self.close();
        if let Kind::Consumer { subscription, .. } = &self.kind {
            self.service.delete(&self.topic, subscription, true).await?;
        }
        Ok(())
    }
}

fn joiner(service: &Subscriptions) -> std::sync::Mutex<Joiner> {
    std::sync::Mutex::new(Joiner::new(service.ctx().config.max_chunked_message_bytes))
}

/// Drains queued acks, merges them per partition and writes one cursor record per partition
/// per round; ends (after writing what is queued) when the session is dropped. Tracked by the
/// broker, so shutdown waits for what it has queued.
fn spawn_ack_writer(service: &Subscriptions, sub: SubscriptionName, parts: Vec<Arc<Partition>>) -> AckWriter {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<AckBatch>(4096);
    let ctx = Arc::clone(service.ctx());
    let task = service.ctx().spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut merged: std::collections::BTreeMap<usize, Vec<(u64, u64)>> = std::collections::BTreeMap::new();
            merged.entry(first.0).or_default().extend(first.1);
            while let Ok((i, r)) = rx.try_recv() {
                merged.entry(i).or_default().extend(r);
            }
            for (i, ranges) in merged {
                let op = CursorOp::Ack { sub: sub.to_string(), ranges };
                if let Err(e) = ctx.persist_op(&parts[i], &op).await {
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
