//! Where the publish and subscribe paths ask the policies in force: publish rates (throttling,
//! never failing a WebSocket producer), per-message checks (size, encryption, longest delay), producer
//! and consumer slots, subscription types, subscribe rates, automatic subscription creation and
//! the number of subscriptions and topics.

use super::resolve::{EffectivePolicies, limit};
use super::runtime::{PolicyMetrics, SlotGuard};
use crate::context::Context;
use crate::error::Entity;
use crate::partition::Partition;
use crate::publish::PublishMessage;
use crate::registry::Topic;
use crate::subscription::{SubType, Subscription};
use crate::{BrokerError, Result};
use magnetar_core::{NamespaceName, SubscriptionName, SubscriptionTypeName, TopicName};
use std::sync::Arc;
use std::time::Duration;

/// How long a publish may wait for its publish rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttle {
    /// As long as the rate requires (WebSocket producers: their frames are not read meanwhile,
    /// so the client is slowed down, not failed).
    Wait,
    /// At most `publish_throttle_max_wait_ms`, then 503 (REST produce: a request cannot wait
    /// forever).
    Bounded,
}

/// Takes `messages` and `bytes` from the partition's and its namespace's publish rates and waits
/// until they are repaid. Lock-free: only the buckets' atomics are touched.
pub(crate) async fn throttle_publish(
    ctx: &Context,
    p: &Partition,
    messages: u64,
    bytes: u64,
    mode: Throttle,
) -> Result<()> {
    let policy = &p.policy;
    let topic_wait = policy.publish.acquire(messages, bytes);
    let namespace_wait = policy.namespace_publish.acquire(messages, bytes);
    let wait = topic_wait.max(namespace_wait);
    if wait.is_zero() {
        return Ok(());
    }
    PolicyMetrics::bump(&policy.metrics.rate_limit_times, 1);
    let max = Duration::from_millis(ctx.config.publish_throttle_max_wait_ms);
    if mode == Throttle::Bounded && wait > max {
        policy.publish.release(messages, bytes);
        policy.namespace_publish.release(messages, bytes);
        let entity = Box::new(if topic_wait >= namespace_wait {
            Entity::Topic(p.name.clone())
        } else {
            Entity::Namespace(p.name.namespace().clone())
        });
        return Err(BrokerError::PublishRateExceeded {
            entity,
            wait_ms: wait.as_millis() as u64,
            max_ms: max.as_millis() as u64,
        });
    }
    PolicyMetrics::bump(&policy.metrics.throttled_micros, wait.as_micros().min(u128::from(u64::MAX)) as u64);
    tokio::select! {
        _ = tokio::time::sleep(wait) => Ok(()),
        _ = ctx.shutdown.cancelled() => Err(BrokerError::ShuttingDown),
    }
}

/// The checks of one message (`what` names it) against its partition's policies: size,
/// encryption and longest delay.
pub(crate) fn check_message(
    p: &Partition,
    what: impl FnOnce() -> String,
    m: &PublishMessage,
    now_ms: i64,
) -> Result<()> {
    use std::sync::atomic::Ordering;
    // The broker's own bound was checked before routing; this is the topic's `maxMessageSize`.
    let max_size = p.policy.max_message_bytes.load(Ordering::Relaxed);
    if max_size > 0 && m.payload.len() > max_size {
        return Err(BrokerError::MessageTooLarge { what: what(), size: m.payload.len(), max: max_size });
    }
    if p.policy.encryption_required.load(Ordering::Relaxed) && m.encrypted.is_none() {
        // Only binary protocol producers with encryption on encrypt: REST and WebSocket
        // messages never carry an encryption context.
        return Err(BrokerError::EncryptionRequired(p.name.clone()));
    }
    let max = p.policy.max_delivery_delay_ms.load(Ordering::Relaxed);
    if max > 0 {
        let delay = match (m.deliver_at.filter(|&t| t > 0), m.deliver_after_ms.filter(|&d| d > 0)) {
            (Some(at), _) => at - now_ms,
            (None, Some(after)) => after,
            (None, None) => 0,
        };
        if delay > max {
            return Err(BrokerError::DeliveryDelayTooLong { topic: p.name.clone(), delay_ms: delay, max_ms: max });
        }
    }
    Ok(())
}

/// A producer slot on each partition a producer of `name` writes to; Pulsar's `ProducerBusy`
/// when one is at the topic's `maxProducers`.
pub(crate) fn admit_producer(name: &TopicName, parts: &[Arc<Partition>]) -> Result<Vec<SlotGuard>> {
    let mut slots = Vec::with_capacity(parts.len());
    for p in parts {
        match p.policy.take_producer() {
            Some(slot) => slots.push(slot),
            None => {
                refused(p, "maxProducersPerTopic");
                return Err(BrokerError::TooManyProducers { topic: name.clone(), max: p.policy.max_producers() });
            }
        }
    }
    Ok(slots)
}

/// A consumer slot on each partition; Pulsar's `ConsumerBusy` at the topic's `maxConsumers`.
pub(crate) fn admit_consumer(name: &TopicName, parts: &[Arc<Partition>]) -> Result<Vec<SlotGuard>> {
    let mut slots = Vec::with_capacity(parts.len());
    for p in parts {
        match p.policy.take_consumer() {
            Some(slot) => slots.push(slot),
            None => {
                refused(p, "maxConsumersPerTopic");
                return Err(BrokerError::TooManyConsumers {
                    entity: Box::new(Entity::Topic(name.clone())),
                    max: p.policy.max_consumers(),
                });
            }
        }
    }
    Ok(slots)
}

fn refused(p: &Partition, policy: &str) {
    PolicyMetrics::bump(&p.policy.metrics.refused, 1);
    tracing::debug!(topic = %p.name, policy, "refused by a limit policy");
}

pub(crate) fn type_name(kind: SubType) -> SubscriptionTypeName {
    match kind {
        SubType::Exclusive => SubscriptionTypeName::Exclusive,
        SubType::Shared => SubscriptionTypeName::Shared,
        SubType::Failover => SubscriptionTypeName::Failover,
        SubType::KeyShared => SubscriptionTypeName::KeyShared,
    }
}

/// Refuses a subscription type the topic's `subscription_types_enabled` leaves out.
pub(crate) fn check_subscription_type(topic: &Topic, name: &TopicName, kind: SubType) -> Result<()> {
    let e = topic.policy.effective();
    if e.allows_subscription_type(type_name(kind)) {
        return Ok(());
    }
    let enabled: Vec<&str> = e.subscription_types_enabled.value.iter().map(|t| t.as_str()).collect();
    Err(BrokerError::SubscriptionTypeDisabled { topic: name.clone(), kind: kind.as_str(), enabled: enabled.join(", ") })
}

/// Takes one subscribe of the consumer (`host/name`) from the topic's subscribe rate.
pub(crate) fn check_subscribe_rate(topic: &Topic, name: &TopicName, consumer: &str) -> Result<()> {
    if topic.policy.try_subscribe(consumer) {
        return Ok(());
    }
    let rate = topic.policy.effective().subscribe_rate.value;
    if let Some(p) = topic.partitions.first() {
        PolicyMetrics::bump(&p.policy.metrics.subscribe_throttled, 1);
    }
    Err(BrokerError::SubscribeRateExceeded {
        topic: name.clone(),
        consumer: consumer.to_string(),
        rate: rate.subscribe_throttling_rate_per_consumer,
        period_s: rate.rate_period_in_second,
    })
}

/// Before a subscription is created by subscribing or pulling: allowed by the topic's
/// `autoSubscriptionCreation`?
pub(crate) fn check_auto_subscription(e: &EffectivePolicies, name: &TopicName, sub: &SubscriptionName) -> Result<()> {
    if e.auto_subscription_creation.value.allow_auto_subscription_creation {
        return Ok(());
    }
    Err(BrokerError::AutoSubscriptionCreationDisabled { topic: name.clone(), name: sub.clone() })
}

/// Before a subscription is created on `parts` (by any surface): the topic's
/// `maxSubscriptionsPerTopic` counts its durable subscriptions, as on each partition.
pub(crate) fn check_subscription_count(topic: &Topic, name: &TopicName, parts: &[Arc<Partition>]) -> Result<()> {
    let Some(max) = limit(topic.policy.effective().max_subscriptions_per_topic.value) else { return Ok(()) };
    let existing = parts.iter().map(|p| p.subscriptions().len()).max().unwrap_or(0);
    if existing >= max as usize {
        if let Some(p) = parts.first() {
            refused(p, "maxSubscriptionsPerTopic");
        }
        return Err(BrokerError::TooManySubscriptions { topic: name.clone(), max });
    }
    Ok(())
}

/// Before `asked` topics (partitions count one each) are created in a namespace: its
/// `maxTopicsPerNamespace`. The caller holds the namespace's lock, so the count holds.
pub(crate) async fn check_topic_count(ctx: &Context, ns: &NamespaceName, asked: u32) -> Result<()> {
    let policies = ctx.cached_policies(ns).await?;
    let max = policies.max_topics_per_namespace.unwrap_or(ctx.config.max_topics_per_namespace as i32);
    let Some(max) = limit(max) else { return Ok(()) };
    let existing: u32 = match ctx.metadata.list_topics(ns).await {
        Ok(topics) => topics.iter().map(|t| t.partitions.max(1)).sum(),
        Err(magnetar_metadata::MetadataError::NotFound(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if existing + asked > max {
        tracing::debug!(namespace = %ns, max, existing, asked, "topic creation refused by maxTopicsPerNamespace");
        return Err(BrokerError::TooManyTopics { namespace: ns.clone(), max, existing, asked });
    }
    Ok(())
}

/// How many messages a subscription may deliver now under its topic's and its own dispatch
/// rates (`u64::MAX` without limits); 0 means wait `dispatch_wait`.
pub(crate) fn dispatch_allowance(p: &Partition, s: &Subscription) -> u64 {
    p.policy.configure_subscription_dispatch(s.id(), &s.dispatch);
    let allowed = p.policy.dispatch.messages_allowed().min(s.dispatch.messages_allowed());
    if allowed == 0 {
        PolicyMetrics::bump(&p.policy.metrics.dispatch_throttled, 1);
    }
    allowed
}

/// Counts what was delivered against the dispatch rates.
pub(crate) fn record_dispatch(p: &Partition, s: &Subscription, messages: u64, bytes: u64) {
    if messages > 0 {
        p.policy.dispatch.acquire(messages, bytes);
        s.dispatch.acquire(messages, bytes);
    }
}

/// How long until the dispatch rates allow a delivery again.
pub(crate) fn dispatch_wait(p: &Partition, s: &Subscription) -> Duration {
    p.policy.dispatch.until_available().max(s.dispatch.until_available())
}
