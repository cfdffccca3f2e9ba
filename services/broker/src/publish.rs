//! The publish path: authorize, auto-create a missing topic as the namespace's policy allows,
//! route each message to a partition (fixed, key hash or round robin), admit it against the
//! partition's backlog quota, wait for the topic's and namespace's publish rates (throttled,
//! not failed) and queue it for the WAL. Every message has its own outcome: an oversized
//! message, one a policy refuses, or a partition over its quota, fails its own messages only,
//! and a message that was stored is never reported as failed.

use crate::access::Caller;
use crate::context::Context;
use crate::exclusive::{AccessGuard, AccessMode, Admission, ProducerLabel};
use crate::metrics::buckets::{ENTRY_SIZE, Tally};
use crate::partition::Partition;
use crate::policies::enforce::{Throttle, check_message, throttle_publish};
use crate::policies::runtime::SlotGuard;
use crate::registry::{Topic, TopicRegistry};
use crate::subscription::DELIVER_AT_PROPERTY;
use crate::topics::auto_create;
use crate::{BrokerError, Result, Service};
use bytes::Bytes;
use magnetar_auth::Operation;
use magnetar_core::{MessageId, TopicName, hash::partition_for_key};
use magnetar_storage::{ProducerStamp, RecordInput};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone, Default)]
pub struct PublishMessage {
    pub key: Option<String>,
    /// `key` is a binary key's base64 text ([`RecordInput::key_base64`]).
    pub key_base64: bool,
    /// Pulsar's ordering key (binary protocol producers).
    pub ordering_key: Option<Bytes>,
    pub properties: Vec<(String, String)>,
    pub payload: Bytes,
    pub event_time: Option<i64>,
    /// Pulsar's `deliverAt` (epoch ms); zero or negative = none. Wins over `deliver_after_ms`.
    pub deliver_at: Option<i64>,
    /// Pulsar's `deliverAfterMs`, counted from when the broker receives the message.
    pub deliver_after_ms: Option<i64>,
    /// The producer's name and this message's sequence id, when the producer gave both: stored
    /// with the message, and what deduplication checks.
    pub producer: Option<ProducerStamp>,
    /// The message's place in the batch its producer sent (binary protocol producers).
    pub batch: Option<magnetar_storage::BatchPos>,
    /// The message is one chunk of a larger one (binary protocol producers with chunking on).
    pub chunk: Option<Box<magnetar_storage::ChunkPos>>,
    /// The message is end-to-end encrypted, or belongs to an encrypted batch (binary protocol
    /// producers with encryption on).
    pub encrypted: Option<magnetar_storage::Encrypted>,
}

/// How a message key picks a partition: Pulsar's `Murmur3_32Hash` (REST produce) or the Java
/// client's default `JavaStringHash` (WebSocket producers, as Pulsar's proxy uses it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyHashing {
    Murmur3,
    JavaString,
}

/// Messages of one publish call queued for the WAL: [`PendingPublish::durable`] waits for them.
#[must_use = "the messages are not acknowledged until `durable` resolves"]
pub struct PendingPublish {
    ctx: Arc<Context>,
    groups: Vec<PendingGroup>,
    /// Messages refused before reaching the WAL, by position.
    refused: Vec<(usize, BrokerError)>,
    /// Duplicates answered without reaching the WAL, by position.
    duplicates: Vec<(usize, MessageId)>,
    total: usize,
    started: std::time::Instant,
}

struct PendingGroup {
    partition: Arc<Partition>,
    positions: Vec<usize>,
    pending: magnetar_storage::PendingAppend,
    /// Sizes of the group's messages, recorded once they are durable.
    sizes: Tally,
    /// Producer stamps and publish times of the messages deduplication tracks.
    stamps: Vec<(ProducerStamp, i64)>,
    /// Batch positions of the group's messages, in order (their ids carry the batch index).
    batches: Vec<Option<magnetar_storage::BatchPos>>,
    queued_at: std::time::Instant,
}

/// Deduplication of messages whose wait expired while they were still on their way beyond the
/// WAL (object store or replicas): they are not failed, they may yet be committed, so a resend
/// must not store them a second time. They stay in flight for their producer (a resend is
/// refused as retriable) until they are visible, then count as stored (a resend is a
/// duplicate). A partition unloaded first takes its state with it: its next load rebuilds it
/// from what the log holds.
fn settle_once_committed(partition: Arc<Partition>, stamps: Vec<(ProducerStamp, i64)>, last: u64) {
    tokio::spawn(async move {
        tokio::select! {
            _ = partition.log.wait_for_data(last) => partition.dedup.settle(&stamps, true).await,
            _ = partition.unloaded() => {}
        }
    });
}

impl PendingPublish {
    /// Resolves once every queued message is durable (or failed), with one outcome per message
    /// in publish order.
    pub async fn durable(self) -> Vec<Result<MessageId>> {
        let waits = self.groups.into_iter().map(|g| async move {
            let last = g.pending.last_offset();
            let result = g.pending.durable().await;
            if result.is_ok() {
                g.partition.record_publish(&g.sizes, g.queued_at.elapsed());
            }
            match (&result, last) {
                (Err(magnetar_storage::StorageError::NotYetDurable(_)), Some(last)) if !g.stamps.is_empty() => {
                    settle_once_committed(Arc::clone(&g.partition), g.stamps, last)
                }
                _ => g.partition.dedup.settle(&g.stamps, result.is_ok()).await,
            }
            (g.partition, g.positions, g.batches, result)
        });
        let groups = futures::future::join_all(waits).await;
        // Stored but not acknowledged once the lease may have lapsed: another broker may own the
        // partition by now, and the client's retry goes there (at least once, never lost).
        let fenced = !self.ctx.membership.may_acknowledge();
        let mut out: Vec<Option<Result<MessageId>>> = (0..self.total).map(|_| None).collect();
        let mut failed = self.refused.len() as u64;
        for (pos, e) in self.refused {
            out[pos] = Some(Err(e));
        }
        for (pos, id) in self.duplicates {
            out[pos] = Some(Ok(id));
        }
        for (partition, positions, batches, result) in groups {
            match result {
                Ok(_) if fenced => {
                    failed += positions.len() as u64;
                    for pos in positions {
                        out[pos] = Some(Err(lease_lapsed()));
                    }
                }
                Ok(ids) => {
                    for ((pos, (offset, base)), batch) in positions.into_iter().zip(ids).zip(batches) {
                        out[pos] = Some(Ok(magnetar_storage::message_id(base, offset, partition.index, batch)));
                    }
                }
                Err(e) => {
                    let e = BrokerError::from(e);
                    failed += positions.len() as u64;
                    for pos in positions {
                        out[pos] = Some(Err(clone_error(&e)));
                    }
                }
            }
        }
        if failed > 0 {
            self.ctx.metrics.publish_errors.inc_by(failed);
        }
        self.ctx.metrics.publish_latency.observe(self.started.elapsed().as_secs_f64());
        out.into_iter()
            .map(|o| o.unwrap_or_else(|| Err(BrokerError::Internal("message without outcome".into()))))
            .collect()
    }
}

fn lease_lapsed() -> BrokerError {
    let detail = "this broker's membership lease lapsed: it acknowledges nothing until it rejoins";
    BrokerError::Unavailable { service: Service::Metadata, detail: Some(detail.into()), cause: detail.into() }
}

/// The same condition for several messages of one failed group.
fn clone_error(e: &BrokerError) -> BrokerError {
    match e {
        BrokerError::Unavailable { service, detail, cause } => {
            BrokerError::Unavailable { service: *service, detail: detail.clone(), cause: cause.clone() }
        }
        BrokerError::ShuttingDown => BrokerError::ShuttingDown,
        BrokerError::Deleted => BrokerError::Deleted,
        BrokerError::NotOwner(reason) => BrokerError::NotOwner(reason.clone()),
        BrokerError::BacklogQuotaExceeded { topic, held } => {
            BrokerError::BacklogQuotaExceeded { topic: topic.clone(), held: *held }
        }
        BrokerError::MessageTooLarge { what, size, max } => {
            BrokerError::MessageTooLarge { what: what.clone(), size: *size, max: *max }
        }
        BrokerError::PublishRateExceeded { entity, wait_ms, max_ms } => {
            BrokerError::PublishRateExceeded { entity: entity.clone(), wait_ms: *wait_ms, max_ms: *max_ms }
        }
        BrokerError::TopicTerminated(topic) => BrokerError::TopicTerminated(topic.clone()),
        BrokerError::SequenceInFlight { topic, producer, sequence_id } => BrokerError::SequenceInFlight {
            topic: topic.clone(),
            producer: producer.clone(),
            sequence_id: *sequence_id,
        },
        other => BrokerError::Internal(other.to_string()),
    }
}

/// The publish path's handle.
#[derive(Clone)]
pub struct Publisher {
    ctx: Arc<Context>,
    registry: Arc<TopicRegistry>,
}

impl Publisher {
    pub(crate) fn new(ctx: Arc<Context>, registry: Arc<TopicRegistry>) -> Self {
        Publisher { ctx, registry }
    }

    /// Publishes and waits until every message is durable: one outcome per message, in order.
    /// The outer error is about the request as a whole (topic missing, not authorized).
    pub async fn publish(
        &self,
        caller: &Caller,
        name: &TopicName,
        messages: Vec<PublishMessage>,
        hashing: KeyHashing,
    ) -> Result<Vec<Result<MessageId>>> {
        Ok(self.enqueue_with(caller, name, messages, hashing, Throttle::Bounded).await?.durable().await)
    }

    /// What a producer session does when it connects (`prepare`), holding a producer slot on
    /// each partition it writes to until the returned guards are dropped: Pulsar's
    /// `ProducerBusy` (409) when one is at the topic's `maxProducers`.
    pub async fn attach_producer(&self, caller: &Caller, name: &TopicName) -> Result<ProducerSlots> {
        let label = ProducerLabel { connected_since: self.ctx.now_ms(), ..ProducerLabel::default() };
        self.attach_producer_as(caller, name, AccessMode::Shared, &label, None).await
    }

    /// [`Self::attach_producer`] in a producer access mode (`crate::exclusive`), for a producer
    /// (`label`, as topic stats list it) that may bring the topic epoch it was given before. A `WaitForExclusive`
    /// producer may come back queued: [`ProducerSlots::turn`] waits for its turn.
    pub async fn attach_producer_as(
        &self,
        caller: &Caller,
        name: &TopicName,
        mode: AccessMode,
        label: &ProducerLabel,
        epoch: Option<u64>,
    ) -> Result<ProducerSlots> {
        let partitions = self.prepare(caller, name).await?;
        let (_, parts) = self.registry.partitions_of(name).await?;
        let slots = crate::policies::enforce::admit_producer(name, &parts)?;
        let (mut access, mut turns, mut topic_epoch) = (Vec::new(), Vec::new(), None);
        for p in &parts {
            match p.access.admit(mode, label, epoch)? {
                Admission::Ready(guard, e) => {
                    access.push(guard);
                    topic_epoch = topic_epoch.max(e);
                }
                Admission::Queued(guard, turn) => {
                    access.push(guard);
                    turns.push(turn);
                }
            }
        }
        Ok(ProducerSlots { partitions, _slots: slots, detach: parts, access, turns, epoch: topic_epoch })
    }

    /// What a producer does when it connects: authorizes, creates the topic if missing and
    /// allowed, and returns its number of partitions (0 = not partitioned).
    /// A terminated topic (every partition the name designates terminated) is refused.
    pub async fn prepare(&self, caller: &Caller, name: &TopicName) -> Result<u32> {
        self.ctx.require(caller, Operation::Produce, name.into()).await?;
        let (topic, fixed) = match self.registry.resolve(name).await {
            Err(BrokerError::NotFound(_)) if name.partition_index().is_none() => {
                auto_create(&self.ctx, &self.registry, name).await?;
                self.registry.resolve(name).await?
            }
            other => other?,
        };
        let targets = match fixed {
            Some(i) => &topic.partitions[i..=i],
            None => &topic.partitions[..],
        };
        if targets.iter().all(|p| p.log.terminated_at().is_some()) {
            return Err(BrokerError::TopicTerminated(name.clone()));
        }
        Ok(topic.record.partitions)
    }

    /// The last sequence id stored for `producer` on the partitions `name` designates, -1 when
    /// none is known (deduplication off, or a new producer): Pulsar's `last_sequence_id`.
    pub async fn last_sequence_id(&self, name: &TopicName, producer: &str) -> Result<i64> {
        let (_, parts) = self.registry.partitions_of(name).await?;
        let mut last = -1;
        for p in &parts {
            if let Some(seq) = p.dedup.last_sequence_of(&self.ctx, p, producer).await? {
                last = last.max(seq);
            }
        }
        Ok(last)
    }

    /// Payload bytes one [`Self::enqueue`] may safely carry: it queues one WAL frame per
    /// partition, which must fit the WAL's buffer (`storage.wal_buffer_bytes`).
    pub fn max_enqueue_bytes(&self) -> usize {
        (self.ctx.storage.config().wal_buffer_bytes / 2).max(1)
    }

    /// The largest payload a message to `name` may carry: its topic's `maxMessageSize` in force
    /// when the topic is loaded here, else the broker's.
    pub fn max_message_bytes(&self, name: &TopicName) -> usize {
        let broker = self.ctx.config.max_message_bytes;
        match self.registry.loaded(&name.base()) {
            Some(t) => (t.policy.effective().max_message_size.value.max(0) as usize).min(broker),
            None => broker,
        }
    }

    /// Refuses a message to `name` over the maximum size (`what` names it in the error). The
    /// partition's check at enqueue covers a topic loaded meanwhile.
    pub fn check_size(&self, name: &TopicName, what: impl FnOnce() -> String, m: &PublishMessage) -> Result<()> {
        size_within(self.max_message_bytes(name), what, m)
    }

    /// The first half of `publish`: authorizes, routes the messages and queues them for the WAL
    /// with their ids fixed. A connection with many messages in flight enqueues its next batch
    /// while the previous one is being made durable; ids follow enqueue order.
    ///
    /// Throttled publishes wait as long as their rate requires (`Throttle::Wait`): a caller that
    /// reads its next frames only after this returns slows its client down.
    pub async fn enqueue(
        &self,
        caller: &Caller,
        name: &TopicName,
        messages: Vec<PublishMessage>,
        hashing: KeyHashing,
    ) -> Result<PendingPublish> {
        self.enqueue_with(caller, name, messages, hashing, Throttle::Wait).await
    }

    async fn enqueue_with(
        &self,
        caller: &Caller,
        name: &TopicName,
        messages: Vec<PublishMessage>,
        hashing: KeyHashing,
        throttle: Throttle,
    ) -> Result<PendingPublish> {
        let started = std::time::Instant::now();
        self.ctx.require(caller, Operation::Produce, name.into()).await?;
        let (topic, fixed) = match self.registry.resolve(name).await {
            Err(BrokerError::NotFound(_)) if name.partition_index().is_none() => {
                auto_create(&self.ctx, &self.registry, name).await?;
                self.registry.resolve(name).await?
            }
            other => other?,
        };
        let total = messages.len();
        let mut refused = Vec::new();
        let mut routed: BTreeMap<usize, Vec<(usize, RecordInput)>> = BTreeMap::new();
        let publish_time = self.ctx.now_ms();
        // Looked up once for the whole batch: a lookup per message was a measurable part of a
        // batch's enqueue.
        let max_bytes = self.max_message_bytes(name);
        // All of them go to one partition unless the topic is partitioned and this is the topic
        // as a whole: room for all at once, not grown (and moved) as they come.
        let one = fixed.is_some() || topic.partitions.len() == 1;
        for (i, m) in messages.into_iter().enumerate() {
            if let Err(e) = size_within(max_bytes, || format!("message {i}"), &m) {
                refused.push((i, e));
                continue;
            }
            let p = route(&topic, fixed, m.key.as_deref(), hashing);
            if let Err(e) = check_message(&topic.partitions[p], || format!("message {i}"), &m, publish_time) {
                refused.push((i, e));
                continue;
            }
            routed
                .entry(p)
                .or_insert_with(|| Vec::with_capacity(if one { total - i } else { 0 }))
                .push((i, self.record_of(m, publish_time)));
        }
        // Partitions are admitted and queued concurrently: one held by its backlog quota does not
        // hold the others.
        let queued = futures::future::join_all(routed.into_iter().map(|(p, batch)| {
            let partition = Arc::clone(&topic.partitions[p]);
            let ctx = &self.ctx;
            async move {
                let (positions, inputs): (Vec<usize>, Vec<RecordInput>) = batch.into_iter().unzip();
                let mut skipped = Vec::new();
                let result = async {
                    let (count, bytes) = (inputs.len() as u64, inputs.iter().map(|r| r.payload.len() as u64).sum());
                    crate::controllers::enforcement::admit_publish(&partition).await?;
                    throttle_publish(ctx, &partition, count, bytes, throttle).await?;
                    // Checked last, and held until the admitted messages are queued, so that
                    // their order in the log is the order of their checks.
                    let admission = partition.dedup.admit(ctx, &partition, &inputs).await?;
                    let tracking = admission.tracking();
                    let mut stored = Vec::with_capacity(inputs.len());
                    let mut batches = Vec::with_capacity(inputs.len());
                    let (mut kept, mut stamps, mut sizes) =
                        (Vec::with_capacity(inputs.len()), Vec::new(), Tally::default());
                    for ((pos, r), verdict) in positions.iter().zip(inputs).zip(&admission.verdicts) {
                        if *verdict != crate::dedup::Verdict::Store {
                            skipped.push((*pos, crate::dedup::outcome_of(verdict, &partition, r.producer.as_ref())));
                            continue;
                        }
                        sizes.add(&ENTRY_SIZE, r.payload.len() as u64);
                        // A chunk before its message's last one does not make the message stored.
                        if tracking
                            && let Some(s) = &r.producer
                            && r.chunk.as_ref().is_none_or(|c| c.is_last())
                        {
                            stamps.push((s.clone(), r.publish_time));
                        }
                        stored.push(*pos);
                        batches.push(r.batch);
                        kept.push(r);
                    }
                    if kept.is_empty() {
                        return Ok(None);
                    }
                    // The write latency counts from here: time held by a quota or a publish
                    // rate is not storage's.
                    let queued_at = std::time::Instant::now();
                    let enqueued = partition.log.enqueue(kept).await.map_err(|e| match e {
                        magnetar_storage::StorageError::Terminated(_) => {
                            BrokerError::TopicTerminated(partition.name.clone())
                        }
                        e => e.into(),
                    });
                    drop(admission);
                    let enqueued = match enqueued {
                        Ok(e) => e,
                        Err(e) => {
                            partition.dedup.settle(&stamps, false).await;
                            return Err(e);
                        }
                    };
                    Ok::<_, BrokerError>(Some((stored, enqueued, queued_at, sizes, stamps, batches)))
                }
                .await;
                (partition, positions, result, skipped)
            }
        }))
        .await;
        let mut groups = Vec::with_capacity(queued.len());
        let mut duplicates = Vec::new();
        for (partition, positions, result, skipped) in queued {
            for (pos, outcome) in skipped {
                match outcome {
                    Ok(id) => duplicates.push((pos, id)),
                    Err(e) => refused.push((pos, e)),
                }
            }
            match result {
                Ok(Some((positions, pending, queued_at, sizes, stamps, batches))) => {
                    groups.push(PendingGroup { partition, positions, pending, sizes, stamps, batches, queued_at })
                }
                Ok(None) => {}
                Err(e) => {
                    let answered: Vec<usize> =
                        refused.iter().map(|r| r.0).chain(duplicates.iter().map(|d| d.0)).collect();
                    let unanswered = positions.into_iter().filter(|pos| !answered.contains(pos));
                    let failed: Vec<(usize, BrokerError)> = unanswered.map(|pos| (pos, clone_error(&e))).collect();
                    refused.extend(failed);
                }
            }
        }
        Ok(PendingPublish { ctx: Arc::clone(&self.ctx), groups, refused, duplicates, total, started })
    }

    fn record_of(&self, m: PublishMessage, publish_time: i64) -> RecordInput {
        let mut properties = m.properties;
        let at =
            m.deliver_at.filter(|&t| t > 0).or_else(|| m.deliver_after_ms.filter(|&d| d > 0).map(|d| publish_time + d));
        if let Some(at) = at {
            // The time travels with the stored message, hidden from consumers.
            properties.push((DELIVER_AT_PROPERTY.into(), at.to_string()));
        }
        RecordInput {
            publish_time,
            event_time: m.event_time,
            key: m.key,
            key_base64: m.key_base64,
            ordering_key: m.ordering_key,
            properties,
            payload: m.payload,
            producer: m.producer,
            batch: m.batch,
            chunk: m.chunk,
            encrypted: m.encrypted,
        }
    }
}

/// A connected producer session's hold on its topic: its number of partitions (0 = not
/// partitioned) and its producer slots, released when dropped.
pub struct ProducerSlots {
    pub partitions: u32,
    _slots: Vec<SlotGuard>,
    /// The partitions: their unload signals and trackers of attached producers.
    detach: Vec<Arc<Partition>>,
    /// Its place under each partition's access mode.
    access: Vec<AccessGuard>,
    /// A queued `WaitForExclusive` producer's turns still to come, one per partition.
    turns: Vec<tokio::sync::oneshot::Receiver<Result<u64>>>,
    /// The topic epoch, for an exclusive producer.
    epoch: Option<u64>,
}

impl ProducerSlots {
    /// Whether the producer waits for its turn (`WaitForExclusive` behind another producer).
    pub fn queued(&self) -> bool {
        !self.turns.is_empty()
    }

    /// The topic epoch of an exclusive producer (known once its turn came).
    pub fn epoch(&self) -> Option<u64> {
        self.epoch
    }

    /// Waits until a queued producer's turn came on every partition, and returns the topic
    /// epoch; at once for one that was not queued. An error when it was fenced out meanwhile.
    /// (The slots stay with the session; the wait may run elsewhere.)
    pub fn turn(&mut self) -> impl Future<Output = Result<Option<u64>>> + Send + 'static {
        let (turns, mut epoch) = (std::mem::take(&mut self.turns), self.epoch);
        async move {
            for turn in turns {
                epoch = epoch.max(Some(turn.await.map_err(|_| BrokerError::ShuttingDown)??));
            }
            Ok(epoch)
        }
    }

    /// Resolves when an `ExclusiveWithFencing` producer fenced this one out of a partition:
    /// its session is to close.
    pub fn fenced(&self) -> impl Future<Output = ()> + Send + 'static {
        let fences: Vec<_> = self.access.iter().map(AccessGuard::fence).collect();
        async move {
            if fences.is_empty() {
                return std::future::pending().await;
            }
            futures::future::select_all(fences.iter().map(|f| Box::pin(f.cancelled()))).await;
        }
    }

    /// For a producer session that answers every send itself (the binary protocol's receipts):
    /// the returned [`Detach`] tells it when one of its partitions is unloaded (a handover, an
    /// unload), and the handover waits, before the partition's log closes, until it is dropped
    /// (bounded by [`DETACH_WAIT`]). The session stops taking sends when told, answers the ones
    /// it accepted once they are durable, tells its client, then drops it: so nothing is
    /// acknowledged that the handed-over data does not hold, and what the client has not seen
    /// acknowledged it sends again to the next owner.
    pub fn detach_on_unload(&self) -> Detach {
        Detach { partitions: self.detach.clone(), _holds: self.detach.iter().map(|p| p.producers.token()).collect() }
    }
}

/// Most time a handover waits for the producer sessions of a partition to let go.
pub const DETACH_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A producer session's hold on the handover of its partitions (see
/// [`ProducerSlots::detach_on_unload`]); dropping it lets the handover go on.
pub struct Detach {
    partitions: Vec<Arc<Partition>>,
    _holds: Vec<tokio_util::task::task_tracker::TaskTrackerToken>,
}

impl Detach {
    /// Resolves once one of the producer's partitions is unloaded.
    pub async fn unloaded(&self) {
        if self.partitions.is_empty() {
            return std::future::pending().await;
        }
        futures::future::select_all(self.partitions.iter().map(|p| Box::pin(p.unloaded()))).await;
    }

    /// Where an unloaded partition's bundle was handed (see `Partition::moved_to`).
    pub fn moved_to(&self) -> Option<&magnetar_metadata::BrokerRegistration> {
        self.partitions.iter().filter(|p| p.unloaded.is_cancelled()).find_map(|p| p.moved_to())
    }
}

fn names(partitions: &[Arc<Partition>]) -> Vec<String> {
    partitions.iter().map(|p| p.name.to_string()).collect()
}

impl std::fmt::Debug for ProducerSlots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerSlots").field("partitions", &self.partitions).field("of", &names(&self.detach)).finish()
    }
}

impl std::fmt::Debug for Detach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detach").field("partitions", &names(&self.partitions)).finish()
    }
}

/// The partition of a message: fixed by the name, else chosen by `choose_partition`.
fn route(topic: &Topic, fixed: Option<usize>, key: Option<&str>, hashing: KeyHashing) -> usize {
    match fixed {
        Some(p) => p,
        None => choose_partition(topic.partitions.len(), key, hashing, || topic.next_partition()),
    }
}

/// The partition (0-based) of a message among `partitions`: its key's hash, or `round_robin()`
/// (modulo the count) without a key. One rule for every surface: the publish path above, and a
/// broker tier's REST produce to a whole partitioned topic, which picks each message's partition
/// before sending it to the partition's owner.
pub fn choose_partition(
    partitions: usize,
    key: Option<&str>,
    hashing: KeyHashing,
    round_robin: impl FnOnce() -> usize,
) -> usize {
    match key {
        _ if partitions <= 1 => 0,
        Some(k) => match hashing {
            KeyHashing::Murmur3 => partition_for_key(k, partitions as u32) as usize,
            KeyHashing::JavaString => magnetar_core::hash::partition_for_key_java(k, partitions as u32) as usize,
        },
        None => round_robin() % partitions,
    }
}

/// Refuses a message whose payload is over `max` bytes (`what` names it in the error).
fn size_within(max: usize, what: impl FnOnce() -> String, m: &PublishMessage) -> Result<()> {
    if m.payload.len() > max {
        return Err(BrokerError::MessageTooLarge { what: what(), size: m.payload.len(), max });
    }
    Ok(())
}
