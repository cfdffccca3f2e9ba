//! The subscription service: consumers and readers attach here, HTTP pullers pull, ack and nack
//! here, and administrators create, list, skip, reset, expire and delete subscriptions. Every
//! surface shares the one engine per partition (`subscription`), so a message is in flight to at
//! most one consumer of a subscription whichever surface it came through. Data-plane operations
//! are authorized here, as the caller.

use crate::access::Caller;
use crate::context::Context;
use crate::error::Entity;
use crate::partition::Partition;
use crate::policies::enforce;
use crate::publish::Publisher;
use crate::registry::{Topic, TopicRegistry};
use crate::session::{ConsumerSession, ConsumerShown, DeadLetterPolicy, SubscribeOptions};
use crate::subscription::{BeyondEnd, Delivery, SubType, Subscription};
use crate::topics::auto_create;
use crate::{BrokerError, Result};
use magnetar_auth::{Operation, Resource};
use magnetar_core::{MessageId, SubscriptionName, TopicName};
use magnetar_metadata::CursorState;
use magnetar_storage::Record;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Where a new subscription starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPosition {
    Earliest,
    Latest,
    Offset(u64),
}

impl StartPosition {
    pub fn from_message_id(id: &MessageId) -> Self {
        if id.is_latest() {
            StartPosition::Latest
        } else if id.is_earliest() {
            StartPosition::Earliest
        } else {
            StartPosition::Offset(id.offset())
        }
    }

    pub(crate) fn offset(self, p: &Partition) -> u64 {
        // A loaded compacted view outlives retention: compacted readers start below the log's
        // start (others skip what retention deleted on their first read).
        let start = if p.compaction.view().is_some() { 0 } else { p.log.start_offset() };
        match self {
            StartPosition::Earliest => start,
            StartPosition::Latest => p.log.end_offset(),
            StartPosition::Offset(o) => o.clamp(start, p.log.end_offset()),
        }
    }
}

/// A reader of a whole partitioned topic starts at its earliest or latest messages, as Pulsar's
/// clients require ("The partitioned topic startMessageId is illegal"): a message id is a
/// position in one partition, and means nothing in the others.
pub fn whole_topic_reader_start(name: &TopicName, start: StartPosition) -> Result<()> {
    match start {
        StartPosition::Earliest | StartPosition::Latest => Ok(()),
        StartPosition::Offset(_) => Err(BrokerError::InvalidArgument(format!(
            "a reader of the partitioned topic {name} starts at earliest or latest; to start after a \
             message id, read the partition the id names ({name}-partition-N)"
        ))),
    }
}

#[derive(Debug, Clone)]
pub struct PullRequest {
    pub max_messages: usize,
    pub max_bytes: usize,
    pub wait: Duration,
    /// `None`: the broker's default ack deadline.
    pub ack_timeout: Option<Duration>,
    pub initial_position: StartPosition,
    /// Pulsar's `readCompacted`: below the compacted horizon, the compacted view. Magnetar
    /// allows it on HTTP pull (whose pullers share the subscription) as an extension.
    pub read_compacted: bool,
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
            id: d.record.message_id(d.partition_index),
            redelivery_count: d.redelivery_count,
            record: d.record,
        }
    }
}

/// Offsets to act on, per partition index.
type IdGroups = BTreeMap<usize, (Arc<Partition>, Vec<(u64, MessageId)>)>;

/// The subscription service's handle.
#[derive(Clone)]
pub struct Subscriptions {
    ctx: Arc<Context>,
    registry: Arc<TopicRegistry>,
    publisher: Publisher,
}

impl Subscriptions {
    pub(crate) fn new(ctx: Arc<Context>, registry: Arc<TopicRegistry>, publisher: Publisher) -> Self {
        Subscriptions { ctx, registry, publisher }
    }

    pub(crate) fn ctx(&self) -> &Arc<Context> {
        &self.ctx
    }

    pub(crate) fn registry(&self) -> &TopicRegistry {
        &self.registry
    }

    pub(crate) fn publisher(&self) -> &Publisher {
        &self.publisher
    }

    /// The partitions a name designates, creating a missing topic as the namespace's
    /// auto-creation policy allows (the caller is authorized already).
    async fn partitions_or_create(&self, name: &TopicName) -> Result<(Arc<Topic>, Vec<Arc<Partition>>)> {
        match self.registry.partitions_of(name).await {
            Err(BrokerError::NotFound(_)) if name.partition_index().is_none() => {
                auto_create(&self.ctx, &self.registry, name).await?;
                self.registry.partitions_of(name).await
            }
            other => other,
        }
    }

    /// Attaches a consumer to a durable subscription (created at the initial position if it
    /// does not exist), on every partition the name designates. With a dead-letter policy, the
    /// caller must also be allowed to produce to the dead-letter topic (as Pulsar requires),
    /// since the broker publishes there on its behalf.
    pub async fn subscribe(
        &self,
        caller: &Caller,
        name: &TopicName,
        sub: &SubscriptionName,
        opts: SubscribeOptions,
    ) -> Result<ConsumerSession> {
        self.ctx.require(caller, Operation::Consume, Resource::Subscription(name, sub.as_str())).await?;
        if let Some(DeadLetterPolicy { topic, .. }) = &opts.dead_letter {
            self.ctx.require(caller, Operation::Produce, topic.into()).await.map_err(|e| match e {
                BrokerError::Forbidden(reason) => {
                    BrokerError::Forbidden(format!("dead-letter topic {topic}: {reason}"))
                }
                e => e,
            })?;
        }
        let (topic, parts) = self.partitions_or_create(name).await?;
        enforce::check_subscription_type(&topic, name, opts.sub_type)?;
        if opts.read_compacted {
            check_read_compacted(name, opts.sub_type)?;
            self.load_views(&parts).await?;
        }
        enforce::check_subscribe_rate(&topic, name, &consumer_key(&opts))?;
        // The consumer slot first: a consumer refused at the topic's limit leaves no subscription.
        let slots = enforce::admit_consumer(name, &parts)?;
        let fresh = parts.iter().all(|p| p.subscription(sub).is_none());
        let subs = self.ensure_subscription(&topic, name, &parts, sub, opts.initial_position).await?;
        // Pulsar's subscription properties (PIP-105) are those of the consumer that creates it.
        if fresh && !opts.properties.is_empty() {
            let log_ids: Vec<i64> = subs.iter().map(|(p, _)| p.log_id).collect();
            self.ctx.metadata.set_subscription_properties(sub.as_str(), &log_ids, &opts.properties).await?;
            for (_, s) in &subs {
                s.set_properties(opts.properties.clone());
            }
        }
        ConsumerSession::attach(self.clone(), caller.clone(), name.clone(), sub.clone(), subs, opts, slots)
    }

    /// A reader: a non-durable, exclusive subscription of its own (never persisted, gone when it
    /// closes) starting at `start`.
    pub async fn create_reader(
        &self,
        caller: &Caller,
        name: &TopicName,
        start: StartPosition,
        reader_name: &str,
        read_compacted: bool,
        shown: ConsumerShown,
    ) -> Result<ConsumerSession> {
        self.ctx.require(caller, Operation::Read, name.into()).await?;
        let (topic, parts) = self.partitions_or_create(name).await?;
        if topic.is_partitioned() && name.partition_index().is_none() {
            whole_topic_reader_start(name, start)?;
        }
        if read_compacted {
            self.load_views(&parts).await?;
        }
        let slots = enforce::admit_consumer(name, &parts)?;
        let reader = crate::session::ReaderInfo { name: reader_name, read_compacted, shown };
        ConsumerSession::reader(self.clone(), name.clone(), parts, start, reader, slots)
    }

    /// Where a reader of one partition (or a non-partitioned topic) starts to read what was
    /// published at or after `time_ms` (Pulsar's seek by time on a reader).
    pub async fn position_for_time(&self, caller: &Caller, name: &TopicName, time_ms: i64) -> Result<StartPosition> {
        self.ctx.require(caller, Operation::Read, name.into()).await?;
        let (_, parts) = self.registry.partitions_of(name).await?;
        match parts.as_slice() {
            [p] => Ok(StartPosition::Offset(p.log.offset_for_publish_time(time_ms))),
            _ => Err(BrokerError::InvalidArgument(format!(
                "seek by time on a reader needs one partition; {name} has {}",
                parts.len()
            ))),
        }
    }

    /// Loads the compacted view of each partition (compacted reads start below the log's start).
    async fn load_views(&self, parts: &[Arc<Partition>]) -> Result<()> {
        for p in parts {
            crate::compaction::load_view(&self.ctx, p).await?;
        }
        Ok(())
    }

    /// The subscription on each of `parts`, created where missing when the topic's
    /// `autoSubscriptionCreation` allows.
    async fn ensure_subscription(
        &self,
        topic: &Topic,
        name: &TopicName,
        parts: &[Arc<Partition>],
        sub: &SubscriptionName,
        start: StartPosition,
    ) -> Result<Vec<(Arc<Partition>, Arc<Subscription>)>> {
        if parts.iter().any(|p| p.subscription(sub).is_none()) {
            // A subscription some partitions have is completed, as growing the topic does.
            if parts.iter().all(|p| p.subscription(sub).is_none()) {
                enforce::check_auto_subscription(&topic.policy.effective(), name, sub)?;
            }
            match self.create_on(topic, name, parts, sub, start).await {
                Ok(()) | Err(BrokerError::AlreadyExists(_)) => {}
                Err(e) => return Err(e),
            }
        }
        parts
            .iter()
            .map(|p| {
                let s = p.subscription(sub).ok_or_else(|| not_found(name, sub))?;
                Ok((Arc::clone(p), s))
            })
            .collect()
    }

    async fn create_on(
        &self,
        topic: &Topic,
        name: &TopicName,
        parts: &[Arc<Partition>],
        sub: &SubscriptionName,
        start: StartPosition,
    ) -> Result<()> {
        if parts.iter().all(|p| p.subscription(sub).is_none()) {
            enforce::check_subscription_count(topic, name, parts)?;
        }
        let cursors: Vec<(i64, CursorState)> = parts
            .iter()
            .map(|p| (p.log_id, CursorState { mark_delete: start.offset(p), acked_ranges: vec![] }))
            .collect();
        match self.ctx.metadata.create_subscription(sub.as_str(), &cursors).await {
            Err(magnetar_metadata::MetadataError::AlreadyExists(_)) => {
                return Err(BrokerError::AlreadyExists(subscription_entity(name, sub)));
            }
            other => other?,
        }
        for (p, (_, cursor)) in parts.iter().zip(&cursors) {
            p.add_subscription(sub, cursor);
        }
        Ok(())
    }

    /// Long-poll pull from a durable subscription, created at the request's initial position if
    /// missing. Returns as soon as at least one message is available, or empty when `wait` passes.
    pub async fn pull(
        &self,
        caller: &Caller,
        name: &TopicName,
        sub: &SubscriptionName,
        req: &PullRequest,
    ) -> Result<Vec<PulledMessage>> {
        self.ctx.require(caller, Operation::Consume, Resource::Subscription(name, sub.as_str())).await?;
        let (topic, parts) = self.partitions_or_create(name).await?;
        enforce::check_subscription_type(&topic, name, SubType::Shared)?;
        if req.read_compacted {
            self.load_views(&parts).await?;
        }
        let subs = self.ensure_subscription(&topic, name, &parts, sub, req.initial_position).await?;
        // HTTP pullers share messages; a subscription whose connected consumers have it
        // exclusively (or by key) cannot be pulled from at the same time.
        if let Some(kind) = subs.iter().find_map(|(_, s)| s.kind()).filter(|k| *k != SubType::Shared) {
            return Err(BrokerError::ConsumerBusy(format!(
                "subscription {sub} is {} with connected consumers; HTTP pull needs a Shared subscription",
                kind.as_str()
            )));
        }
        for (_, s) in &subs {
            s.set_read_compacted(req.read_compacted);
        }
        let ack_timeout = req.ack_timeout.unwrap_or(Duration::from_millis(self.ctx.config.default_ack_timeout_ms));
        let deadline = tokio::time::Instant::now() + req.wait;
        // Start at a different partition each time so one busy partition cannot starve others.
        let first = rand_start(subs.len());
        loop {
            let tokens: Vec<_> = subs.iter().map(|(_, s)| s.wait_token()).collect();
            let mut out = Vec::new();
            let mut bytes = 0usize;
            // The soonest a dispatch rate lets a throttled partition deliver again.
            let mut throttled: Option<Duration> = None;
            for k in 0..subs.len() {
                let (p, s) = &subs[(first + k) % subs.len()];
                let room = req.max_messages - out.len();
                if room == 0 || bytes >= req.max_bytes {
                    break;
                }
                let allowed = enforce::dispatch_allowance(p, s);
                if allowed == 0 {
                    let wait = enforce::dispatch_wait(p, s);
                    throttled = Some(throttled.map_or(wait, |t| t.min(wait)));
                    continue;
                }
                let room = room.min(allowed.min(usize::MAX as u64) as usize);
                let got = loop {
                    let got = s.take(None, room, req.max_bytes - bytes, Some(ack_timeout)).await?;
                    // An encrypted batch is pulled as one message, its head: the members are
                    // settled, and taken past when nothing else came, so that a pull is not
                    // answered empty (at its deadline) while messages follow them.
                    let (got, settled) = crate::encrypted::split_members(got, false);
                    if settled.is_empty() {
                        break got;
                    }
                    if let Some(op) =
                        s.ack(&settled).map_err(|e| beyond_end(p, &MessageId::new(0, e.offset, p.index), e))?
                    {
                        self.ctx.persist_op(p, &op).await?;
                    }
                    if !got.is_empty() {
                        break got;
                    }
                };
                let got_bytes: usize = got.iter().map(|d| d.record.payload.len()).sum();
                bytes += got_bytes;
                if !got.is_empty() {
                    p.record_delivery(got.len() as u64, got_bytes as u64);
                    enforce::record_dispatch(p, s, got.len() as u64, got_bytes as u64);
                }
                out.extend(got.into_iter().map(PulledMessage::from_delivery));
            }
            let drained = || subs.iter().all(|(p, s)| crate::topic_ops::drained(p, s));
            if !out.is_empty() || tokio::time::Instant::now() >= deadline || drained() {
                return Ok(out);
            }
            let waits = subs.iter().zip(tokens).map(|((_, s), t)| Box::pin(s.changed(t)));
            let paced = async {
                match throttled {
                    Some(wait) => tokio::time::sleep(wait.max(Duration::from_millis(1))).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = futures::future::select_all(waits) => {}
                _ = paced => {}
                _ = tokio::time::sleep_until(deadline) => return Ok(Vec::new()),
            }
        }
    }

    /// Maps message ids to the partitions of the topic they belong to.
    fn group_ids(topic: &Topic, name: &TopicName, ids: &[MessageId]) -> Result<IdGroups> {
        let mut groups: IdGroups = BTreeMap::new();
        let fixed = name.partition_index();
        for id in ids {
            let foreign = || BrokerError::ForeignMessageId { id: id.to_text(), topic: name.clone() };
            if id.is_earliest() || id.is_latest() {
                return Err(BrokerError::InvalidArgument(format!("message id {id} does not designate a message")));
            }
            let idx = match (topic.is_partitioned(), fixed) {
                (true, Some(i)) if id.partition_index < 0 || id.partition_index == i as i32 => topic.slot(i),
                (true, None) if id.partition_index >= 0 => topic.slot(id.partition_index as u32),
                (false, _) if id.partition_index < 0 => Some(0),
                _ => None,
            };
            let idx = idx.ok_or_else(foreign)?;
            let entry = groups.entry(idx).or_insert_with(|| (Arc::clone(&topic.partitions[idx]), Vec::new()));
            entry.1.push((id.offset(), *id));
        }
        Ok(groups)
    }

    /// Acknowledges messages; returns once the acknowledgement is durable. Acknowledging an
    /// already acknowledged message is a no-op; an id past the end of its partition is refused
    /// and nothing of the request is acknowledged.
    pub async fn ack(
        &self,
        caller: &Caller,
        name: &TopicName,
        sub: &SubscriptionName,
        ids: &[MessageId],
    ) -> Result<()> {
        self.ctx.require(caller, Operation::Consume, Resource::Subscription(name, sub.as_str())).await?;
        let (topic, _) = self.registry.resolve(name).await?;
        let groups = Self::group_ids(&topic, name, ids)?;
        let mut targets = Vec::with_capacity(groups.len());
        for (_, (p, offsets)) in groups {
            let s = p.subscription(sub).ok_or_else(|| not_found(name, sub))?;
            let end = p.log.end_offset();
            if let Some((_, id)) = offsets.iter().find(|(o, _)| *o >= end) {
                return Err(beyond_end(&p, id, BeyondEnd { offset: id.offset(), end }));
            }
            targets.push((p, s, offsets));
        }
        for (p, s, offsets) in targets {
            let plain: Vec<u64> = offsets.iter().map(|(o, _)| *o).collect();
            let op = s.ack(&plain).map_err(|e| beyond_end(&p, &offsets[0].1, e))?;
            if let Some(op) = op {
                self.ctx.persist_op(&p, &op).await?;
            }
        }
        Ok(())
    }

    /// Negative acknowledgement: the messages are redelivered after `delay`.
    pub async fn nack(
        &self,
        caller: &Caller,
        name: &TopicName,
        sub: &SubscriptionName,
        ids: &[MessageId],
        delay: Duration,
    ) -> Result<()> {
        self.ctx.require(caller, Operation::Consume, Resource::Subscription(name, sub.as_str())).await?;
        let (topic, _) = self.registry.resolve(name).await?;
        for (_, (p, offsets)) in Self::group_ids(&topic, name, ids)? {
            let s = p.subscription(sub).ok_or_else(|| not_found(name, sub))?;
            s.nack(&offsets.iter().map(|(o, _)| *o).collect::<Vec<_>>(), delay);
        }
        Ok(())
    }

    // ---- administration (the API authorizes these) ----

    pub async fn list(&self, name: &TopicName) -> Result<Vec<String>> {
        let (_, parts) = self.registry.partitions_of(name).await?;
        let mut names: Vec<String> = parts.iter().flat_map(|p| p.subscriptions()).map(|s| s.name()).collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    pub async fn create(&self, name: &TopicName, sub: &SubscriptionName, start: StartPosition) -> Result<()> {
        let (topic, parts) = self.registry.partitions_of(name).await?;
        self.create_on(&topic, name, &parts, sub, start).await
    }

    pub async fn delete(&self, name: &TopicName, sub: &SubscriptionName, force: bool) -> Result<()> {
        let (_, parts) = self.registry.partitions_of(name).await?;
        let subs: Vec<_> = parts.iter().filter_map(|p| p.subscription(sub)).collect();
        if subs.is_empty() {
            return Err(not_found(name, sub));
        }
        if !force && subs.iter().any(|s| s.is_busy()) {
            return Err(BrokerError::InUse(subscription_entity(name, sub)));
        }
        let ids: Vec<i64> = parts.iter().map(|p| p.log_id).collect();
        match self.ctx.metadata.delete_subscription(sub.as_str(), &ids).await {
            Err(magnetar_metadata::MetadataError::NotFound(_)) => return Err(not_found(name, sub)),
            other => other?,
        }
        for p in &parts {
            p.remove_subscription(sub);
        }
        Ok(())
    }

    fn subscriptions_on(
        name: &TopicName,
        parts: &[Arc<Partition>],
        sub: &SubscriptionName,
    ) -> Result<Vec<(Arc<Partition>, Arc<Subscription>)>> {
        let found: Vec<_> = parts.iter().filter_map(|p| p.subscription(sub).map(|s| (Arc::clone(p), s))).collect();
        if found.is_empty() {
            return Err(not_found(name, sub));
        }
        Ok(found)
    }

    /// Skips the next `n` unacknowledged messages of one partition; returns how many.
    pub async fn skip(&self, name: &TopicName, sub: &SubscriptionName, n: u64) -> Result<u64> {
        let p = self.registry.single_partition(name, "skip messages").await?;
        let s = p.subscription(sub).ok_or_else(|| not_found(name, sub))?;
        let Some((op, count)) = s.skip(n) else { return Ok(0) };
        self.ctx.persist_op(&p, &op).await?;
        Ok(count)
    }

    /// Clears the backlog on every partition; returns how many messages were skipped.
    pub async fn skip_all(&self, name: &TopicName, sub: &SubscriptionName) -> Result<u64> {
        let (_, parts) = self.registry.partitions_of(name).await?;
        let mut skipped = 0;
        for (p, s) in Self::subscriptions_on(name, &parts, sub)? {
            skipped += s.snapshot().backlog;
            let op = s.reset(p.log.end_offset());
            self.ctx.persist_op(&p, &op).await?;
        }
        Ok(skipped)
    }

    /// Resets the cursor of every partition to the first message published at or after `time`;
    /// returns the backlog afterwards.
    pub async fn reset_to_time(&self, name: &TopicName, sub: &SubscriptionName, time_ms: i64) -> Result<u64> {
        let (_, parts) = self.registry.partitions_of(name).await?;
        let mut backlog = 0;
        for (p, s) in Self::subscriptions_on(name, &parts, sub)? {
            let op = s.reset(p.log.offset_for_publish_time(time_ms));
            self.ctx.persist_op(&p, &op).await?;
            backlog += s.snapshot().backlog;
        }
        Ok(backlog)
    }

    /// Resets to a message id (to the message itself, or after it when `excluded`); returns the
    /// backlog afterwards.
    pub async fn reset_to_id(
        &self,
        name: &TopicName,
        sub: &SubscriptionName,
        id: &MessageId,
        excluded: bool,
    ) -> Result<u64> {
        let (topic, parts) = self.registry.partitions_of(name).await?;
        let parts: Vec<_> = if topic.is_partitioned() && name.partition_index().is_none() && id.partition_index >= 0 {
            let p = topic
                .partition_by_index(id.partition_index)
                .ok_or_else(|| BrokerError::ForeignMessageId { id: id.to_text(), topic: name.clone() })?;
            vec![Arc::clone(p)]
        } else {
            parts
        };
        let mut backlog = 0;
        for (p, s) in Self::subscriptions_on(name, &parts, sub)? {
            let offset = StartPosition::from_message_id(id).offset(&p) + u64::from(excluded);
            let op = s.reset(offset);
            self.ctx.persist_op(&p, &op).await?;
            backlog += s.snapshot().backlog;
        }
        Ok(backlog)
    }

    /// Acknowledges messages older than `seconds` (Pulsar's expireMessages) on one subscription
    /// or, with `None`, on all; returns how many expired.
    pub async fn expire(&self, name: &TopicName, sub: Option<&SubscriptionName>, seconds: i64) -> Result<u64> {
        let (_, parts) = self.registry.partitions_of(name).await?;
        let before = self.ctx.now_ms() - seconds.max(0) * 1000;
        let mut expired = 0;
        let mut found = sub.is_none();
        for p in &parts {
            let subs = match sub {
                Some(name) => p.subscription(name).into_iter().collect(),
                None => p.subscriptions(),
            };
            for s in subs {
                found = true;
                if let Some((op, n)) = s.expire_before(before) {
                    expired += n;
                    self.ctx.persist_op(p, &op).await?;
                }
            }
        }
        if !found && let Some(sub) = sub {
            return Err(not_found(name, sub));
        }
        Ok(expired)
    }

    /// The `n`-th unacknowledged message of a subscription (Pulsar's peek).
    pub async fn peek(&self, name: &TopicName, sub: &SubscriptionName, n: u64) -> Result<PulledMessage> {
        let p = self.registry.single_partition(name, "peek messages").await?;
        let s = p.subscription(sub).ok_or_else(|| not_found(name, sub))?;
        let missing =
            || BrokerError::NotFound(Entity::Message(format!("message at position {n} of subscription {sub}")));
        let offset = s.nth_unacked(n.max(1)).ok_or_else(missing)?;
        let log = Arc::clone(&p.log);
        let rec = tokio::task::spawn_blocking(move || log.read(offset, 1, usize::MAX))
            .await
            .map_err(BrokerError::internal)??
            .into_iter()
            .next()
            .filter(|r| r.offset == offset)
            .ok_or_else(missing)?;
        Ok(PulledMessage { id: rec.message_id(p.index), record: rec, redelivery_count: 0 })
    }
}

/// Who a subscribe rate counts: the consumer's host and name (Pulsar adds its connection's
/// consumer id, which a WebSocket consumer gets anew at each handshake).
/// Pulsar's rule: `readCompacted` only on Exclusive and Failover subscriptions (and readers).
fn check_read_compacted(name: &TopicName, kind: SubType) -> Result<()> {
    match kind {
        SubType::Exclusive | SubType::Failover => Ok(()),
        other => Err(BrokerError::NotAllowed(format!(
            "readCompacted is only allowed on Exclusive or Failover subscriptions and readers, not on a {} subscription of topic {name}",
            other.as_str()
        ))),
    }
}

fn consumer_key(opts: &SubscribeOptions) -> String {
    let host = opts.address.rsplit_once(':').map_or(opts.address.as_str(), |(h, _)| h);
    format!("{host}/{}", opts.consumer_name)
}

pub(crate) fn subscription_entity(topic: &TopicName, sub: &SubscriptionName) -> Entity {
    Entity::Subscription { topic: topic.clone(), name: sub.clone() }
}

pub(crate) fn not_found(topic: &TopicName, sub: &SubscriptionName) -> BrokerError {
    BrokerError::NotFound(subscription_entity(topic, sub))
}

/// The condition of an acknowledgement past the end of a partition, in message-id terms.
pub(crate) fn beyond_end(p: &Partition, id: &MessageId, e: BeyondEnd) -> BrokerError {
    BrokerError::MessageIdBeyondEnd { id: id.to_text(), topic: p.name.clone(), next_offset: e.end }
}

fn rand_start(n: usize) -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed) % n.max(1)
}
