//! Topic operations beyond lifecycle and stats, as Pulsar's admin API has them: terminate (the
//! topic accepts no more messages; its consumers drain it and are told the end of topic),
//! truncate and trim, reading one message by position, by id or by publish time, backlog size
//! and analysis, topic and subscription properties, and the stored-topic views (`internal-info`,
//! the offline backlog estimate).
//!
//! Termination is recorded in the metadata store per partition (it survives restarts and
//! unloads) and enforced by the partition's log, which refuses appends from then on under the
//! same lock that assigns offsets: no message can slip in after the end is fixed.

use crate::error::Entity;
use crate::partition::Partition;
use crate::subscription::Subscription;
use crate::subscriptions::{PulledMessage, Subscriptions, not_found};
use crate::topics::Topics;
use crate::{BrokerError, Result, Service};
use magnetar_core::{MessageId, SubscriptionName, TopicName};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Longest wait for messages accepted before a termination to become durable.
const TERMINATE_DRAIN: Duration = Duration::from_secs(30);

/// Whether a subscription of a partition has reached Pulsar's end of topic: the partition is
/// terminated and nothing is left to deliver.
pub(crate) fn drained(p: &Partition, s: &Subscription) -> bool {
    p.log.terminated_at().is_some_and(|end| s.delivered_all(end))
}

/// The id of the last message below `end`, or `-1:-1` (with the partition) when the log holds
/// none there.
fn id_before(p: &Partition, end: u64) -> MessageId {
    if end == 0 || end <= p.log.start_offset() {
        return MessageId { partition_index: p.index, ..MessageId::EARLIEST };
    }
    crate::stats::message_id_at(p, end - 1)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(BrokerError::internal)?
}

/// The record at `offset`, `NotFound` (naming `what`) when the log does not hold it.
pub(crate) async fn read_one(p: &Arc<Partition>, offset: u64, what: impl FnOnce() -> String) -> Result<PulledMessage> {
    let missing = || BrokerError::NotFound(Entity::Message(what()));
    if offset < p.log.start_offset() || offset >= p.log.end_offset() {
        return Err(missing());
    }
    let log = Arc::clone(&p.log);
    let rec = blocking(move || Ok(log.read(offset, 1, usize::MAX)?))
        .await?
        .into_iter()
        .next()
        .filter(|r| r.offset == offset)
        .ok_or_else(missing)?;
    Ok(PulledMessage { id: rec.message_id(p.index), record: rec, redelivery_count: 0 })
}

/// Pulsar's `PersistentOfflineTopicStats`: the backlog estimated from what is stored.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfflineTopicStats {
    pub storage_size: u64,
    pub total_messages: u64,
    /// The largest backlog of a durable subscription.
    pub message_backlog: u64,
    pub broker_name: String,
    pub topic_name: String,
    pub data_ledger_details: Vec<LedgerDetails>,
    pub cursor_details: BTreeMap<String, CursorDetails>,
    /// Epoch milliseconds.
    pub stat_generated_at: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LedgerDetails {
    pub entries: u64,
    pub timestamp: i64,
    pub size: u64,
    pub ledger_id: u64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CursorDetails {
    pub cursor_backlog: u64,
    pub cursor_ledger_id: i64,
}

/// Pulsar's `ManagedLedgerInfo`: the stored topic's segments (ledgers) and its termination.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManagedLedgerInfo {
    pub version: i64,
    /// RFC 3339.
    pub creation_date: String,
    pub modification_date: String,
    pub ledgers: Vec<ManagedLedgerSegment>,
    /// Where a terminated topic ends (its last message), absent while it accepts messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terminated_position: Option<Position>,
    pub properties: BTreeMap<String, String>,
    /// For a partitioned topic: each partition's, by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    // A reference to itself: the schema must not inline it (it would never end).
    #[schema(no_recursion)]
    pub partitions: Option<BTreeMap<String, ManagedLedgerInfo>>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManagedLedgerSegment {
    pub ledger_id: u64,
    pub entries: u64,
    pub size: u64,
    pub timestamp: i64,
    pub is_offloaded: bool,
}

/// A position in a topic, `ledgerId` and `entryId`.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Position {
    pub ledger_id: i64,
    pub entry_id: i64,
}

/// Pulsar's `AnalyzeSubscriptionBacklogResult`. Magnetar has no entry filters and no batches:
/// every entry is one message and every message is accepted.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BacklogAnalysis {
    pub entries: u64,
    pub messages: u64,
    pub marker_messages: u64,
    pub filter_accepted_entries: u64,
    pub filter_rejected_entries: u64,
    pub filter_rescheduled_entries: u64,
    pub filter_accepted_messages: u64,
    pub filter_rejected_messages: u64,
    pub filter_rescheduled_messages: u64,
    pub aborted: bool,
    /// `ledgerId:entryId` of the first unacknowledged message, absent with no backlog.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_message_id: Option<String>,
}

impl Topics {
    /// Pulsar's terminate, on a non-partitioned topic or one partition: from now on the topic
    /// refuses messages on every surface, and consumers that have read everything are told the
    /// end of topic. Returns the id of its last message. Terminating again returns it again.
    pub async fn terminate(&self, name: &TopicName) -> Result<MessageId> {
        let p = self.registry().single_partition(name, "terminate").await?;
        self.terminate_partition(&p).await
    }

    /// Terminates every partition of a partitioned topic; the last message id of each, by
    /// partition index.
    pub async fn terminate_partitions(&self, name: &TopicName) -> Result<BTreeMap<i32, MessageId>> {
        let topic = self.registry().topic(&name.base()).await?;
        if !topic.is_partitioned() || name.partition_index().is_some() {
            return Err(BrokerError::NotPartitioned(name.clone()));
        }
        let mut out = BTreeMap::new();
        for p in &topic.partitions {
            out.insert(p.index, self.terminate_partition(p).await?);
        }
        Ok(out)
    }

    async fn terminate_partition(&self, p: &Arc<Partition>) -> Result<MessageId> {
        let was_terminated = p.log.terminated_at().is_some();
        let end = p.log.terminate();
        let stored = match self.ctx().metadata.terminate_partition(p.log_id, end as i64).await {
            Ok(stored) => stored as u64,
            Err(e) => {
                if !was_terminated {
                    // Not recorded: the topic keeps accepting messages, as before the call.
                    p.log.resume();
                }
                return Err(e.into());
            }
        };
        // Messages accepted before the end was fixed become readable, then the id is known.
        if stored > 0 && p.log.end_offset() < stored {
            tokio::time::timeout(TERMINATE_DRAIN, p.log.wait_for_data(stored - 1)).await.map_err(|_| {
                BrokerError::Unavailable {
                    service: Service::Storage,
                    detail: Some(format!("messages of {} accepted before its termination are not durable yet", p.name)),
                    cause: format!("terminate of {}: end {} not reached", p.name, stored),
                }
            })?;
        }
        if !was_terminated {
            tracing::info!(topic = %p.name, end = stored, "topic terminated");
        }
        // Consumers waiting for messages learn that none will come.
        for s in p.all_subscriptions() {
            s.bump();
        }
        Ok(id_before(p, stored))
    }

    /// Pulsar's truncate: every subscription (readers too) moves to the end of the topic, then
    /// every segment is deleted, the active one sealed first, from every tier. On a partitioned
    /// topic, every partition.
    pub async fn truncate(&self, name: &TopicName) -> Result<()> {
        let (_, parts) = self.registry().partitions_of(name).await?;
        for p in &parts {
            let end = p.log.end_offset();
            for s in p.all_subscriptions() {
                let op = s.reset(end);
                if s.is_durable() {
                    self.ctx().persist_op(p, &op).await?;
                }
            }
            let log = Arc::clone(&p.log);
            blocking(move || Ok(log.seal_active()?)).await?;
            self.offloader().delete_segments_all_tiers(p, end).await?;
        }
        Ok(())
    }

    /// Pulsar's trim: applies the retention in force now (the background pass does the same
    /// later): consumed segments past the retention time or size are deleted.
    pub async fn trim(&self, name: &TopicName) -> Result<()> {
        let (_, parts) = self.registry().partitions_of(name).await?;
        let topic = self.registry().topic(&name.base()).await?;
        let ns = self.ctx().fresh_policies(name.namespace()).await?;
        let retention =
            crate::policies::resolve::EffectivePolicies::resolve(&topic.policy.own(), &ns, &self.ctx().config)
                .retention_policies
                .value;
        let now = self.ctx().now_ms();
        for p in &parts {
            crate::controllers::retention::trim_partition(self.offloader(), p, &retention, now).await?;
        }
        Ok(())
    }

    /// Pulsar's examine message: the `position`-th message (1-based) counted from the earliest
    /// retained message, or back from the latest.
    pub async fn examine(&self, name: &TopicName, from_latest: bool, position: u64) -> Result<PulledMessage> {
        let p = self.registry().single_partition(name, "examine message").await?;
        let (start, end) = (p.log.start_offset(), p.log.end_offset());
        let position = position.max(1);
        let offset = if from_latest { end.checked_sub(position) } else { start.checked_add(position - 1) };
        let what = || {
            let from = if from_latest { "latest" } else { "earliest" };
            format!("message at position {position} from the {from} of topic {name}")
        };
        match offset.filter(|&o| o >= start && o < end) {
            Some(o) => read_one(&p, o, what).await,
            None => Err(BrokerError::NotFound(Entity::Message(what()))),
        }
    }

    /// Pulsar's get message by id: the message at `ledger_id:entry_id`.
    pub async fn message_by_id(&self, name: &TopicName, ledger_id: i64, entry_id: i64) -> Result<PulledMessage> {
        let p = self.registry().single_partition(name, "get message by id").await?;
        let what = || format!("message {ledger_id}:{entry_id} of topic {name}");
        let (Ok(ledger), Ok(entry)) = (u64::try_from(ledger_id), u64::try_from(entry_id)) else {
            return Err(BrokerError::NotFound(Entity::Message(what())));
        };
        let m = read_one(&p, ledger.saturating_add(entry), what).await?;
        // An id names its segment: the same offset under another ledger id is no such message.
        if m.record.segment_base != ledger {
            return Err(BrokerError::NotFound(Entity::Message(what())));
        }
        Ok(m)
    }

    /// Pulsar's message id by timestamp: the first message published at or after `time_ms`.
    pub async fn message_id_by_time(&self, name: &TopicName, time_ms: i64) -> Result<MessageId> {
        let p = self.registry().single_partition(name, "get message id by timestamp").await?;
        let p2 = Arc::clone(&p);
        let offset = blocking(move || Ok(p2.log.offset_for_publish_time(time_ms))).await?;
        if offset >= p.log.end_offset() {
            return Err(BrokerError::NotFound(Entity::Message(format!(
                "message published at or after {time_ms} in topic {name}"
            ))));
        }
        Ok(crate::stats::message_id_at(&p, offset.max(p.log.start_offset())))
    }

    /// Pulsar's backlog size by message id: the bytes stored from `id` to the end, estimated
    /// from segment sizes (as Pulsar estimates it from ledger sizes).
    pub async fn backlog_size(&self, name: &TopicName, id: &MessageId) -> Result<u64> {
        let p = self.registry().single_partition(name, "get backlog size").await?;
        p.log.settled().await;
        let from = if id.is_earliest() { 0 } else { id.offset() };
        let mut bytes = 0u64;
        for s in p.log.segments() {
            let entries = s.end_offset.saturating_sub(s.base_offset);
            if s.end_offset <= from || entries == 0 {
                continue;
            }
            let counted = s.end_offset - from.max(s.base_offset);
            bytes += s.size_bytes * counted / entries;
        }
        Ok(bytes)
    }

    /// The topic's properties (those given at creation, then updated).
    pub async fn properties(&self, name: &TopicName) -> Result<BTreeMap<String, String>> {
        let base = name.base();
        let rec = self.record(&base).await?.ok_or_else(|| BrokerError::NotFound(Entity::Topic(name.clone())))?;
        Ok(rec.properties)
    }

    /// Merges `update` into the topic's properties (Pulsar's update properties).
    pub async fn update_properties(&self, name: &TopicName, update: BTreeMap<String, String>) -> Result<()> {
        let mut props = self.properties(name).await?;
        props.extend(update);
        self.store_properties(name, &props).await
    }

    /// Removes one property (Pulsar's remove properties `?key=`); a missing key is no error.
    pub async fn remove_property(&self, name: &TopicName, key: &str) -> Result<()> {
        let mut props = self.properties(name).await?;
        if props.remove(key).is_some() {
            self.store_properties(name, &props).await?;
        }
        Ok(())
    }

    async fn store_properties(&self, name: &TopicName, props: &BTreeMap<String, String>) -> Result<()> {
        match self.ctx().metadata.set_topic_properties(&name.base(), props).await {
            Err(magnetar_metadata::MetadataError::NotFound(_)) => {
                Err(BrokerError::NotFound(Entity::Topic(name.clone())))
            }
            other => Ok(other?),
        }
    }

    /// Pulsar's create missed partitions. Magnetar creates every partition with its topic in one
    /// transaction, so none can be missing; loading the topic repairs a partition that lacks a
    /// subscription its topic has. `NotPartitioned` unless the topic is partitioned.
    pub async fn create_missed_partitions(&self, name: &TopicName) -> Result<()> {
        let rec =
            self.record(name).await?.ok_or_else(|| BrokerError::NotFound(Entity::PartitionedTopic(name.clone())))?;
        if rec.partitions == 0 {
            return Err(BrokerError::NotPartitioned(name.clone()));
        }
        self.registry().topic(name).await?;
        Ok(())
    }

    /// Pulsar's offline backlog estimate of a topic (every partition of a partitioned one).
    pub async fn offline_backlog(&self, name: &TopicName) -> Result<OfflineTopicStats> {
        let (_, parts) = self.registry().settled_partitions_of(name).await?;
        let mut out = OfflineTopicStats {
            storage_size: 0,
            total_messages: 0,
            message_backlog: 0,
            broker_name: self.ctx().broker_id.clone(),
            topic_name: name.to_string(),
            data_ledger_details: Vec::new(),
            cursor_details: BTreeMap::new(),
            stat_generated_at: self.ctx().now_ms(),
        };
        for p in &parts {
            out.storage_size += p.log.storage_bytes();
            out.total_messages += p.log.end_offset().saturating_sub(p.log.start_offset());
            out.data_ledger_details.extend(p.log.segments().iter().map(|s| LedgerDetails {
                entries: s.end_offset - s.base_offset,
                timestamp: s.created_at_ms,
                size: s.size_bytes,
                ledger_id: s.base_offset,
            }));
            for s in p.subscriptions() {
                let backlog = s.snapshot().backlog;
                let e = out
                    .cursor_details
                    .entry(s.name())
                    .or_insert(CursorDetails { cursor_backlog: 0, cursor_ledger_id: -1 });
                e.cursor_backlog += backlog;
                out.message_backlog = out.message_backlog.max(e.cursor_backlog);
            }
        }
        Ok(out)
    }

    /// Pulsar's `internal-info`: the stored topic (each partition's for a partitioned one).
    pub async fn internal_info(&self, name: &TopicName) -> Result<ManagedLedgerInfo> {
        let (topic, parts) = self.registry().settled_partitions_of(name).await?;
        let created = magnetar_core::time::format_rfc3339(topic.record.created_at);
        let info = |p: &Partition| ManagedLedgerInfo {
            version: 0,
            creation_date: created.clone(),
            modification_date: created.clone(),
            ledgers: p
                .log
                .segments()
                .iter()
                .map(|s| ManagedLedgerSegment {
                    ledger_id: s.base_offset,
                    entries: s.end_offset - s.base_offset,
                    size: s.size_bytes,
                    timestamp: s.created_at_ms,
                    is_offloaded: s.offloaded,
                })
                .collect(),
            terminated_position: p.log.terminated_at().map(|end| {
                let id = id_before(p, end);
                Position { ledger_id: id.ledger_id, entry_id: id.entry_id }
            }),
            properties: topic.record.properties.clone(),
            partitions: None,
        };
        if topic.is_partitioned() && name.partition_index().is_none() {
            let partitions = parts.iter().map(|p| (p.name.to_string(), info(p))).collect();
            return Ok(ManagedLedgerInfo {
                ledgers: Vec::new(),
                terminated_position: None,
                partitions: Some(partitions),
                ..info(&parts[0])
            });
        }
        Ok(info(&parts[0]))
    }
}

impl Subscriptions {
    /// The subscription on each partition the name designates; `NotFound` when it is on none.
    async fn subscription_on(
        &self,
        name: &TopicName,
        sub: &SubscriptionName,
    ) -> Result<Vec<(Arc<Partition>, Arc<Subscription>)>> {
        let (_, parts) = self.registry().partitions_of(name).await?;
        let subs: Vec<_> = parts.into_iter().filter_map(|p| p.subscription(sub).map(|s| (Arc::clone(&p), s))).collect();
        if subs.is_empty() {
            return Err(not_found(name, sub));
        }
        Ok(subs)
    }

    /// Whether a subscription has reached Pulsar's end of topic on every partition the name
    /// designates (for HTTP pull, which has no session to ask).
    pub async fn end_of_topic(&self, name: &TopicName, sub: &SubscriptionName) -> Result<bool> {
        Ok(self.subscription_on(name, sub).await?.iter().all(|(p, s)| drained(p, s)))
    }

    /// Pulsar's analyze backlog of one partition's subscription: its unacknowledged messages
    /// from `from` (default: the mark-delete position) to the end.
    pub async fn analyze_backlog(
        &self,
        name: &TopicName,
        sub: &SubscriptionName,
        from: Option<&MessageId>,
    ) -> Result<BacklogAnalysis> {
        let p = self.registry().single_partition(name, "analyze backlog").await?;
        let s = p.subscription(sub).ok_or_else(|| not_found(name, sub))?;
        let start = from.filter(|id| !id.is_earliest()).map(MessageId::offset).unwrap_or(0);
        let (count, first, last) = s.unacked_in(start.max(p.log.start_offset()), p.log.end_offset());
        let text = |o: u64| {
            let id = crate::stats::message_id_at(&p, o);
            format!("{}:{}", id.ledger_id, id.entry_id)
        };
        Ok(BacklogAnalysis {
            entries: count,
            messages: count,
            marker_messages: 0,
            filter_accepted_entries: count,
            filter_rejected_entries: 0,
            filter_rescheduled_entries: 0,
            filter_accepted_messages: count,
            filter_rejected_messages: 0,
            filter_rescheduled_messages: 0,
            aborted: false,
            first_message_id: first.map(text),
            last_message_id: last.map(text),
        })
    }

    /// Pulsar's expire messages to a message id: everything before it (and it, unless
    /// `excluded`) is acknowledged as expired. Returns how many expired.
    pub async fn expire_to_id(
        &self,
        name: &TopicName,
        sub: &SubscriptionName,
        id: &MessageId,
        excluded: bool,
    ) -> Result<u64> {
        let mut expired = 0;
        for (p, s) in self.subscription_on(name, sub).await? {
            if id.partition_index >= 0 && p.index >= 0 && p.index != id.partition_index {
                continue;
            }
            let upto = id.offset() + u64::from(!excluded);
            if let Some((op, n)) = s.expire_below(upto) {
                expired += n;
                self.ctx().persist_op(&p, &op).await?;
            }
        }
        Ok(expired)
    }

    /// The subscription's properties (those of its first partition: every partition has the
    /// same).
    pub async fn properties(&self, name: &TopicName, sub: &SubscriptionName) -> Result<BTreeMap<String, String>> {
        let subs = self.subscription_on(name, sub).await?;
        let log_id = subs[0].0.log_id;
        let records = self.ctx().metadata.list_subscriptions(log_id).await?;
        Ok(records.into_iter().find(|r| r.name == sub.as_str()).map(|r| r.properties).unwrap_or_default())
    }

    /// Replaces the subscription's properties on every partition.
    pub async fn set_properties(
        &self,
        name: &TopicName,
        sub: &SubscriptionName,
        properties: &BTreeMap<String, String>,
    ) -> Result<()> {
        let subs = self.subscription_on(name, sub).await?;
        let log_ids: Vec<i64> = subs.iter().map(|(p, _)| p.log_id).collect();
        match self.ctx().metadata.set_subscription_properties(sub.as_str(), &log_ids, properties).await {
            Err(magnetar_metadata::MetadataError::NotFound(_)) => return Err(not_found(name, sub)),
            other => other?,
        }
        for (_, s) in &subs {
            s.set_properties(properties.clone());
        }
        Ok(())
    }
}
