//! Topic lifecycle (create, grow, delete, list) and subscription administration.

use crate::broker::Topic;
use crate::partition::Partition;
use crate::{Broker, BrokerError, Result};
use magnetar_core::{MessageId, NamespaceName, TopicName};
use magnetar_metadata::{CursorState, NewTopic, TopicRecord};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Where a new subscription starts.
#[derive(Debug, Clone, Copy)]
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
        match self {
            StartPosition::Earliest => p.log.start_offset(),
            StartPosition::Latest => p.log.end_offset(),
            StartPosition::Offset(o) => o.clamp(p.log.start_offset(), p.log.end_offset()),
        }
    }
}

impl Broker {
    async fn require_namespace(&self, ns: &NamespaceName) -> Result<()> {
        self.get_policies(ns).await.map(|_| ())
    }

    pub async fn create_topic(
        &self,
        name: &TopicName,
        partitions: u32,
        properties: BTreeMap<String, String>,
    ) -> Result<()> {
        if name.partition_index().is_some() {
            return Err(BrokerError::PreconditionFailed(format!(
                "topic name {name} must not end with -partition-N: that suffix names partitions of partitioned topics"
            )));
        }
        let max = self.config.max_partitions_per_topic;
        if max > 0 && partitions > max {
            return Err(BrokerError::NotAcceptable(format!(
                "number of partitions {partitions} exceeds the maximum of {max}"
            )));
        }
        self.require_namespace(name.namespace()).await?;
        let spec = NewTopic { name: name.clone(), partitions, properties };
        self.metadata.create_topic(&spec).await.map_err(|e| match e {
            magnetar_metadata::MetadataError::AlreadyExists(_) if partitions > 0 => {
                BrokerError::AlreadyExists(format!("partitioned topic {name}"))
            }
            magnetar_metadata::MetadataError::AlreadyExists(_) => BrokerError::AlreadyExists(format!("topic {name}")),
            e => e.into(),
        })?;
        Ok(())
    }

    /// Creates a missing topic when auto-creation is allowed (Pulsar's `allowAutoTopicCreation`
    /// and the namespace's `autoTopicCreationOverride`), as producers and consumers expect.
    pub async fn ensure_topic(&self, name: &TopicName) -> Result<()> {
        if self.resolve(name).await.is_ok() {
            return Ok(());
        }
        let policies = self.get_policies(name.namespace()).await?;
        let over = policies.other.get("autoTopicCreationOverride");
        let allow = over
            .and_then(|o| o.get("allowAutoTopicCreation"))
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(self.config.allow_auto_topic_creation);
        if !allow {
            return Err(BrokerError::NotFound(format!("topic {name} (auto-creation is disabled)")));
        }
        let partitioned =
            over.and_then(|o| o.get("topicType")).and_then(serde_json::Value::as_str) == Some("partitioned");
        let partitions = if partitioned {
            over.and_then(|o| o.get("defaultNumPartitions")).and_then(serde_json::Value::as_u64).unwrap_or(1).max(1)
                as u32
        } else {
            0
        };
        match self.create_topic(&name.base(), partitions, BTreeMap::new()).await {
            Ok(()) | Err(BrokerError::AlreadyExists(_)) => {
                tracing::info!(topic = %name, partitions, "topic auto-created");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    pub async fn get_topic_record(&self, name: &TopicName) -> Result<Option<TopicRecord>> {
        Ok(self.metadata.get_topic(name).await?)
    }

    pub async fn update_partitions(&self, name: &TopicName, partitions: u32) -> Result<()> {
        let current = self
            .metadata
            .get_topic(name)
            .await?
            .ok_or_else(|| BrokerError::NotFound(format!("partitioned topic {name}")))?;
        if current.partitions == 0 {
            return Err(BrokerError::Conflict(format!("topic {name} is not partitioned")));
        }
        if partitions <= current.partitions {
            return Err(BrokerError::Conflict(format!(
                "the number of partitions of {name} can only grow (from {} to more, asked {partitions})",
                current.partitions
            )));
        }
        let max = self.config.max_partitions_per_topic;
        if max > 0 && partitions > max {
            return Err(BrokerError::NotAcceptable(format!(
                "number of partitions {partitions} exceeds the maximum of {max}"
            )));
        }
        self.metadata.update_partitions(name, partitions).await?;
        // New partitions start with the subscriptions of the existing ones, at their start.
        let subs = self.metadata.list_subscriptions(current.partition_records[0].log_id).await?;
        let updated =
            self.metadata.get_topic(name).await?.ok_or_else(|| BrokerError::NotFound(format!("topic {name}")))?;
        for sub in subs {
            let fresh: Vec<(i64, CursorState)> = updated
                .partition_records
                .iter()
                .filter(|p| p.index >= current.partitions as i32)
                .map(|p| (p.log_id, CursorState::default()))
                .collect();
            self.metadata.create_subscription(&sub.name, &fresh).await?;
        }
        self.unload(name);
        Ok(())
    }

    /// Deletes a topic with its partitions, subscriptions and data. Without `force`, refuses
    /// while messages are in flight to consumers (Pulsar refuses while consumers are connected).
    pub async fn delete_topic(&self, name: &TopicName, force: bool, partitioned: bool) -> Result<()> {
        let record = self.metadata.get_topic(name).await?;
        let record = match record {
            Some(r) => r,
            None if partitioned => return Err(BrokerError::NotFound(format!("partitioned topic {name}"))),
            None => return Err(BrokerError::NotFound(format!("topic {name}"))),
        };
        if partitioned && record.partitions == 0 {
            return Err(BrokerError::NotFound(format!("partitioned topic {name}")));
        }
        if !partitioned && record.partitions > 0 {
            return Err(BrokerError::Conflict(format!(
                "topic {name} is partitioned: delete it with DELETE .../{}/partitions",
                name.local()
            )));
        }
        if !force {
            let topic = self.topic(name).await?;
            let busy = topic.partitions.iter().flat_map(|p| p.subscriptions()).any(|s| s.is_busy());
            if busy {
                return Err(BrokerError::PreconditionFailed(format!(
                    "topic {name} has connected consumers or messages in flight; use force=true to delete anyway"
                )));
            }
        }
        let removed = self.metadata.delete_topic(name).await?;
        self.drop_partitions(&removed.partition_records).await;
        Ok(())
    }

    /// Non-partitioned topics and the partitions of partitioned ones, as Pulsar lists them.
    pub async fn list_topics(&self, ns: &NamespaceName) -> Result<Vec<String>> {
        self.require_namespace(ns).await?;
        let mut out = Vec::new();
        for t in self.metadata.list_topics(ns).await? {
            if t.partitions == 0 {
                out.push(t.name.to_string());
            } else {
                out.extend((0..t.partitions).map(|i| t.name.partition(i).to_string()));
            }
        }
        Ok(out)
    }

    pub async fn list_partitioned_topics(&self, ns: &NamespaceName) -> Result<Vec<String>> {
        self.require_namespace(ns).await?;
        Ok(self
            .metadata
            .list_topics(ns)
            .await?
            .into_iter()
            .filter(|t| t.partitions > 0)
            .map(|t| t.name.to_string())
            .collect())
    }

    /// The partitions a name designates: one partition, or every partition of the topic.
    pub async fn partitions_of(&self, name: &TopicName) -> Result<(Arc<Topic>, Vec<Arc<Partition>>)> {
        let (topic, index) = self.resolve(name).await?;
        let parts = match index {
            Some(i) => vec![Arc::clone(&topic.partitions[i])],
            None => topic.partitions.clone(),
        };
        Ok((topic, parts))
    }

    /// A single partition (a non-partitioned topic or one partition); 405 for a partitioned topic.
    pub async fn single_partition(&self, name: &TopicName, op: &str) -> Result<Arc<Partition>> {
        let (topic, parts) = self.partitions_of(name).await?;
        if parts.len() != 1 || (topic.is_partitioned() && name.partition_index().is_none()) {
            return Err(BrokerError::NotAllowed(format!(
                "{op} on a partitioned topic is not allowed: name one partition"
            )));
        }
        Ok(Arc::clone(&parts[0]))
    }

    pub async fn list_subscriptions(&self, name: &TopicName) -> Result<Vec<String>> {
        let (_, parts) = self.partitions_of(name).await?;
        let mut names: Vec<String> =
            parts.iter().flat_map(|p| p.subscriptions()).map(|s| s.name().to_string()).collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    pub async fn create_subscription(&self, name: &TopicName, sub: &str, start: StartPosition) -> Result<()> {
        let (_, parts) = self.partitions_of(name).await?;
        let cursors: Vec<(i64, CursorState)> = parts
            .iter()
            .map(|p| (p.log_id, CursorState { mark_delete: start.offset(p), acked_ranges: vec![] }))
            .collect();
        self.metadata.create_subscription(sub, &cursors).await.map_err(|e| match e {
            magnetar_metadata::MetadataError::AlreadyExists(_) => {
                BrokerError::AlreadyExists(format!("subscription {sub}"))
            }
            e => e.into(),
        })?;
        for (p, (_, cursor)) in parts.iter().zip(&cursors) {
            p.add_subscription(sub, cursor);
        }
        Ok(())
    }

    /// Creates the subscription if it does not exist yet (consumers subscribing).
    pub(crate) async fn ensure_subscription(&self, name: &TopicName, sub: &str, start: StartPosition) -> Result<()> {
        let (_, parts) = self.partitions_of(name).await?;
        if parts.iter().all(|p| p.subscription(sub).is_some()) {
            return Ok(());
        }
        match self.create_subscription(name, sub, start).await {
            Ok(()) | Err(BrokerError::AlreadyExists(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub async fn delete_subscription(&self, name: &TopicName, sub: &str, force: bool) -> Result<()> {
        let (_, parts) = self.partitions_of(name).await?;
        let subs: Vec<_> = parts.iter().filter_map(|p| p.subscription(sub)).collect();
        if subs.is_empty() {
            return Err(BrokerError::NotFound(format!("subscription {sub}")));
        }
        if !force && subs.iter().any(|s| s.is_busy()) {
            return Err(BrokerError::PreconditionFailed(format!(
                "subscription {sub} has connected consumers or messages in flight; use force=true to delete anyway"
            )));
        }
        let ids: Vec<i64> = parts.iter().map(|p| p.log_id).collect();
        self.metadata.delete_subscription(sub, &ids).await?;
        for p in &parts {
            p.remove_subscription(sub);
            let (ns, topic) = (p.name.namespace().to_string(), p.name.to_string());
            self.metrics.remove_subscription(&[self.config.cluster.as_str(), ns.as_str(), topic.as_str(), sub]);
        }
        Ok(())
    }

    fn subscriptions_on(
        parts: &[Arc<Partition>],
        sub: &str,
    ) -> Result<Vec<(Arc<Partition>, Arc<crate::subscription::Subscription>)>> {
        let found: Vec<_> = parts.iter().filter_map(|p| p.subscription(sub).map(|s| (Arc::clone(p), s))).collect();
        if found.is_empty() {
            return Err(BrokerError::NotFound(format!("subscription {sub}")));
        }
        Ok(found)
    }

    pub async fn skip_messages(&self, name: &TopicName, sub: &str, n: u64) -> Result<()> {
        let p = self.single_partition(name, "skip messages").await?;
        let s = p.subscription(sub).ok_or_else(|| BrokerError::NotFound(format!("subscription {sub}")))?;
        if let Some(op) = s.skip(n) {
            self.persist_op(&p, &op).await?;
        }
        Ok(())
    }

    pub async fn skip_all(&self, name: &TopicName, sub: &str) -> Result<()> {
        let (_, parts) = self.partitions_of(name).await?;
        for (p, s) in Self::subscriptions_on(&parts, sub)? {
            let op = s.reset(p.log.end_offset());
            self.persist_op(&p, &op).await?;
        }
        Ok(())
    }

    /// Resets the cursor of every partition to the first message published at or after `time`.
    pub async fn reset_cursor_to_time(&self, name: &TopicName, sub: &str, time_ms: i64) -> Result<()> {
        let (_, parts) = self.partitions_of(name).await?;
        for (p, s) in Self::subscriptions_on(&parts, sub)? {
            let offset = p.log.offset_for_publish_time(time_ms);
            let op = s.reset(offset);
            self.persist_op(&p, &op).await?;
        }
        Ok(())
    }

    /// Resets to a message id (to the message itself, or after it when `excluded`).
    pub async fn reset_cursor_to_id(&self, name: &TopicName, sub: &str, id: &MessageId, excluded: bool) -> Result<()> {
        let (topic, parts) = self.partitions_of(name).await?;
        let parts: Vec<_> = if topic.is_partitioned() && name.partition_index().is_none() && id.partition_index >= 0 {
            let p = topic.partition_by_index(id.partition_index).ok_or_else(|| {
                BrokerError::PreconditionFailed(format!("message id {id} names a partition {name} does not have"))
            })?;
            vec![Arc::clone(p)]
        } else {
            parts
        };
        for (p, s) in Self::subscriptions_on(&parts, sub)? {
            let offset = StartPosition::from_message_id(id).offset(&p) + u64::from(excluded);
            let op = s.reset(offset);
            self.persist_op(&p, &op).await?;
        }
        Ok(())
    }
}
