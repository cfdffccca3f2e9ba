//! Topic administration: create, grow, delete and list topics, their metadata and statistics.
//! Loading and deleting go through the topic registry; objects of deleted partitions go with
//! them through the offloader.

use crate::context::Context;
use crate::controllers::offload::Offloader;
use crate::error::Entity;
use crate::registry::TopicRegistry;
use crate::stats::{InternalStats, PartitionedTopicStats, TopicStats};
use crate::{BrokerError, Result};
use magnetar_core::{MessageId, NamespaceName, TopicName};
use magnetar_metadata::{NewTopic, TopicRecord};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Creates a missing topic when auto-creation is allowed (Pulsar's `allowAutoTopicCreation`
/// and the namespace's `autoTopicCreationOverride`), as producers and consumers expect. The
/// caller has been authorized for the operation that needs the topic.
pub(crate) async fn auto_create(ctx: &Context, registry: &TopicRegistry, name: &TopicName) -> Result<()> {
    let Some(partitions) = auto_creation(ctx, name.namespace()).await? else {
        return Err(BrokerError::NotFound(Entity::Topic(name.clone())));
    };
    let spec = NewTopic { name: name.base(), partitions, properties: BTreeMap::new() };
    match registry.create(&spec).await {
        Ok(_) => {
            tracing::info!(topic = %name, partitions, "topic auto-created");
            Ok(())
        }
        Err(BrokerError::AlreadyExists(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// How a missing topic of `namespace` would be auto-created: `None` when it would not be, else
/// with how many partitions (0: not partitioned).
async fn auto_creation(ctx: &Context, namespace: &NamespaceName) -> Result<Option<u32>> {
    let policies = ctx.cached_policies(namespace).await?;
    let over = policies.other.get("autoTopicCreationOverride");
    let allow = over
        .and_then(|o| o.get("allowAutoTopicCreation"))
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(ctx.config.allow_auto_topic_creation);
    if !allow {
        return Ok(None);
    }
    let partitioned = over.and_then(|o| o.get("topicType")).and_then(serde_json::Value::as_str) == Some("partitioned");
    Ok(Some(if partitioned {
        over.and_then(|o| o.get("defaultNumPartitions")).and_then(serde_json::Value::as_u64).unwrap_or(1).max(1) as u32
    } else {
        0
    }))
}

/// The topic administration handle.
#[derive(Clone)]
pub struct Topics {
    ctx: Arc<Context>,
    registry: Arc<TopicRegistry>,
    offloader: Arc<Offloader>,
}

impl Topics {
    pub(crate) fn new(ctx: Arc<Context>, registry: Arc<TopicRegistry>, offloader: Arc<Offloader>) -> Self {
        Topics { ctx, registry, offloader }
    }

    pub(crate) fn registry(&self) -> &TopicRegistry {
        &self.registry
    }

    pub(crate) fn ctx(&self) -> &Context {
        &self.ctx
    }

    /// Pulsar's `encryptionRequired` for a producer that just attached (its topic is loaded): one
    /// that does not encrypt is refused up front, as Pulsar's broker refuses it; every message is
    /// checked too (`enforce::check_message`).
    pub fn check_producer_encryption(&self, topic: &TopicName, encrypted: bool) -> Result<()> {
        let required =
            self.registry.loaded(&topic.base()).is_some_and(|t| t.policy.effective().encryption_required.value);
        if required && !encrypted { Err(BrokerError::EncryptionRequired(topic.clone())) } else { Ok(()) }
    }

    pub(crate) fn offloader(&self) -> &Offloader {
        &self.offloader
    }

    /// Stats of every loaded partition, and how many topics are loaded (the broker's load).
    pub fn loaded_stats(&self) -> (Vec<TopicStats>, usize) {
        let topics = self.registry.loaded_topics();
        let stats = topics.iter().flat_map(|t| t.partitions.iter()).map(|p| crate::stats::partition_stats(p)).collect();
        (stats, topics.len())
    }

    fn check_partitions(&self, partitions: u32) -> Result<()> {
        let max = self.ctx.config.max_partitions_per_topic;
        if max > 0 && partitions > max {
            return Err(BrokerError::InvalidPartitionCount(format!(
                "number of partitions {partitions} exceeds the maximum of {max}"
            )));
        }
        Ok(())
    }

    /// Creates a topic (`partitions` = 0: non-partitioned).
    pub async fn create(&self, name: &TopicName, partitions: u32, properties: BTreeMap<String, String>) -> Result<()> {
        if name.partition_index().is_some() {
            return Err(BrokerError::PartitionSuffix(name.clone()));
        }
        self.check_partitions(partitions)?;
        self.registry.create(&NewTopic { name: name.clone(), partitions, properties }).await?;
        Ok(())
    }

    /// Grows a partitioned topic to `partitions`.
    pub async fn grow(&self, name: &TopicName, partitions: u32) -> Result<()> {
        let current =
            self.record(name).await?.ok_or_else(|| BrokerError::NotFound(Entity::PartitionedTopic(name.clone())))?;
        if current.partitions == 0 {
            return Err(BrokerError::NotPartitioned(name.clone()));
        }
        if partitions <= current.partitions {
            return Err(BrokerError::PartitionsCannotShrink {
                topic: name.clone(),
                current: current.partitions,
                asked: partitions,
            });
        }
        self.check_partitions(partitions)?;
        self.registry.grow(name, partitions).await
    }

    /// Deletes a topic with its partitions, subscriptions and data. `partitioned` says which of
    /// Pulsar's two endpoints was called. Without `force`, refuses while consumers are attached or
    /// messages are in flight.
    pub async fn delete(&self, name: &TopicName, force: bool, partitioned: bool) -> Result<()> {
        let entity = || if partitioned { Entity::PartitionedTopic(name.clone()) } else { Entity::Topic(name.clone()) };
        let removed = self
            .registry
            .delete_topic(name, |record, loaded| {
                if partitioned && record.partitions == 0 {
                    return Err(BrokerError::NotFound(entity()));
                }
                if !partitioned && record.partitions > 0 {
                    return Err(BrokerError::IsPartitioned(name.clone()));
                }
                let busy = loaded
                    .is_some_and(|t| t.partitions.iter().flat_map(|p| p.all_subscriptions()).any(|s| s.is_busy()));
                if busy && !force {
                    return Err(BrokerError::InUse(entity()));
                }
                Ok(())
            })
            .await
            .map_err(|e| match e {
                BrokerError::NotFound(_) => BrokerError::NotFound(entity()),
                e => e,
            })?;
        self.offloader.delete_partition_objects(&removed).await;
        Ok(())
    }

    /// Pulsar's topic unload: the topic is dropped from memory (consumers are detached) and
    /// loaded again on its next use, from what is durable. `NotFound` if it does not exist.
    ///
    /// In a broker tier a partition is loaded alone, under its own name, and a partitioned topic
    /// deleted through another broker leaves its partitions loaded on their owners: the deleting
    /// broker unloads each on its owner, which then drops it with its local data.
    pub async fn unload(&self, name: &TopicName) -> Result<()> {
        let loaded_as =
            if self.ctx.tier.enabled() && name.partition_index().is_some() { name.clone() } else { name.base() };
        if self.record(&name.base()).await?.is_none() {
            if self.registry.drop_deleted(&loaded_as).await {
                return Ok(());
            }
            return Err(BrokerError::NotFound(Entity::Topic(name.clone())));
        }
        self.registry.unload(&loaded_as).await;
        Ok(())
    }

    /// Non-partitioned topics and the partitions of partitioned ones, as Pulsar lists them.
    pub async fn list(&self, ns: &NamespaceName) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for t in self.list_records(ns).await? {
            if t.partitions == 0 {
                out.push(t.name.to_string());
            } else {
                out.extend((0..t.partitions).map(|i| t.name.partition(i).to_string()));
            }
        }
        Ok(out)
    }

    pub async fn list_partitioned(&self, ns: &NamespaceName) -> Result<Vec<String>> {
        Ok(self.list_records(ns).await?.into_iter().filter(|t| t.partitions > 0).map(|t| t.name.to_string()).collect())
    }

    async fn list_records(&self, ns: &NamespaceName) -> Result<Vec<TopicRecord>> {
        match self.ctx.metadata.list_topics(ns).await {
            Err(magnetar_metadata::MetadataError::NotFound(_)) => {
                Err(BrokerError::NotFound(Entity::Namespace(ns.clone())))
            }
            other => Ok(other?),
        }
    }

    /// The topic's metadata (`None` if it does not exist).
    pub async fn record(&self, name: &TopicName) -> Result<Option<TopicRecord>> {
        Ok(self.ctx.metadata.get_topic(name).await?)
    }

    /// Whether `name` exists or would be created by the first producer or consumer that asks for
    /// it (auto-creation allowed in its namespace). A missing namespace is `NotFound`.
    pub async fn exists_or_creatable(&self, name: &TopicName) -> Result<bool> {
        Ok(self.record(&name.base()).await?.is_some() || auto_creation(&self.ctx, name.namespace()).await?.is_some())
    }

    /// Stats of a topic or partition; for a partitioned topic, the totals over its partitions.
    pub async fn stats(&self, name: &TopicName) -> Result<TopicStats> {
        let (topic, parts) = self.registry.settled_partitions_of(name).await?;
        let each: Vec<TopicStats> = parts.iter().map(|p| crate::stats::partition_stats(p)).collect();
        let mut stats =
            if each.len() == 1 { each.into_iter().next().expect("one") } else { crate::stats::aggregate(each.iter()) };
        stats.applied_policies = Some((*topic.policy.effective()).clone());
        Ok(stats)
    }

    pub async fn partitioned_stats(&self, name: &TopicName, per_partition: bool) -> Result<PartitionedTopicStats> {
        let (topic, parts) = self.registry.settled_partitions_of(name).await?;
        let each: BTreeMap<String, TopicStats> =
            parts.iter().map(|p| (p.name.to_string(), crate::stats::partition_stats(p))).collect();
        let mut total = crate::stats::aggregate(each.values());
        total.applied_policies = Some((*topic.policy.effective()).clone());
        Ok(PartitionedTopicStats {
            total,
            metadata: crate::stats::PartitionedMetadata { partitions: topic.record.partitions },
            partitions: if per_partition { each } else { BTreeMap::new() },
        })
    }

    pub async fn internal_stats(&self, name: &TopicName) -> Result<InternalStats> {
        let p = self.registry.single_partition(name, "internalStats").await?;
        p.log.settled().await;
        Ok(crate::stats::internal_stats(&p))
    }

    /// Internal stats of every partition, with the partition count.
    pub async fn partitioned_internal_stats(&self, name: &TopicName) -> Result<(u32, BTreeMap<String, InternalStats>)> {
        let (topic, parts) = self.registry.settled_partitions_of(name).await?;
        Ok((
            topic.record.partitions,
            parts.iter().map(|p| (p.name.to_string(), crate::stats::internal_stats(p))).collect(),
        ))
    }

    /// Id of the last durable message of a single partition (`-1:-1` if empty). The record is
    /// read: the id of a batched message carries its batch index, which clients compare with
    /// the last id they received (`hasMessageAvailable`).
    pub async fn last_message_id(&self, name: &TopicName) -> Result<MessageId> {
        let p = self.registry.single_partition(name, "get last message id").await?;
        let end = p.log.end_offset();
        if end == 0 || end <= p.log.start_offset() {
            return Ok(MessageId { partition_index: p.index, ..MessageId::EARLIEST });
        }
        match crate::topic_ops::read_one(&p, end - 1, || format!("{}", end - 1)).await {
            Ok(m) => Ok(m.id),
            // Deleted by retention meanwhile: the id without a batch index names it as well.
            Err(BrokerError::NotFound(_)) => Ok(crate::stats::message_id_at(&p, end - 1)),
            Err(e) => Err(e),
        }
    }
}
