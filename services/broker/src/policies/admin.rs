//! Administration of topic-level policies (Pulsar's `/admin/v2/persistent/.../{topic}/<policy>`)
//! and the values in force (`applied=true`). A partition's name designates its topic's
//! policies. Changes are written to the topic's `policies` in the metadata store and applied at
//! once to the topic if this broker has it loaded (other brokers re-read them within
//! `topic_policies_refresh_ms`).

use super::resolve::EffectivePolicies;
use super::runtime::parse_topic_policies;
use crate::context::Context;
use crate::error::{Entity, OrEntity};
use crate::registry::TopicRegistry;
use crate::{BrokerError, Result};
use magnetar_core::{PersistencePolicies, Policies, TopicName, TopicPolicies};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The handle for topic-level policies and the policies in force.
#[derive(Clone)]
pub struct TopicPolicyAdmin {
    ctx: Arc<Context>,
    registry: Arc<TopicRegistry>,
    /// Read-modify-writes of one topic's policies are serialized on this broker (the store keeps
    /// no version for them).
    locks: Arc<Mutex<HashMap<TopicName, Arc<tokio::sync::Mutex<()>>>>>,
}

impl TopicPolicyAdmin {
    pub(crate) fn new(ctx: Arc<Context>, registry: Arc<TopicRegistry>) -> Self {
        TopicPolicyAdmin { ctx, registry, locks: Arc::default() }
    }

    async fn stored(&self, base: &TopicName) -> Result<TopicPolicies> {
        let record = self
            .ctx
            .metadata
            .get_topic(base)
            .await?
            .ok_or_else(|| BrokerError::NotFound(Entity::Topic(base.clone())))?;
        Ok(parse_topic_policies(base, record.policies.as_ref()))
    }

    /// The topic's own policies (what it overrides), read from the store.
    pub async fn get(&self, name: &TopicName) -> Result<TopicPolicies> {
        self.stored(&name.base()).await
    }

    /// The policies in force for a topic, and the level each comes from: the topic's own (read
    /// fresh), its namespace's (fresh) and the broker's settings.
    pub async fn effective(&self, name: &TopicName) -> Result<EffectivePolicies> {
        let own = self.stored(&name.base()).await?;
        let ns = self.ctx.fresh_policies(name.namespace()).await?;
        Ok(EffectivePolicies::resolve(&own, &ns, &self.ctx.config))
    }

    /// What a namespace's topics get when they set nothing themselves.
    pub async fn namespace_effective(&self, ns: &magnetar_core::NamespaceName) -> Result<EffectivePolicies> {
        let p = self.ctx.fresh_policies(ns).await?;
        Ok(EffectivePolicies::resolve(&TopicPolicies::default(), &p, &self.ctx.config))
    }

    /// Read-modify-write of a topic's own policies; a loaded topic applies the result at once.
    pub async fn update<F>(&self, name: &TopicName, change: F) -> Result<()>
    where
        F: FnOnce(&mut TopicPolicies) -> Result<()>,
    {
        let base = name.base();
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(locks.entry(base.clone()).or_default())
        };
        let _guard = lock.lock().await;
        let mut own = self.stored(&base).await?;
        change(&mut own)?;
        validate_topic(&own)?;
        check_message_size(own.max_message_size, self.ctx.config.max_message_bytes)?;
        let value = if own.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::to_value(&own).map_err(BrokerError::internal)?
        };
        self.ctx.metadata.set_topic_policies(&base, &value).await.or_entity(|| Entity::Topic(base.clone()))?;
        if let Some(topic) = self.registry.loaded(&base) {
            topic.policy.set_own(own);
            if let Err(e) = super::refresh_topic(&self.ctx, &topic).await {
                tracing::warn!(topic = %base, error = %e, "changed topic policies not applied yet");
            }
        }
        Ok(())
    }
}

fn non_negative(name: &str, v: Option<i32>) -> Result<()> {
    match v {
        Some(n) if n < 0 => Err(BrokerError::InvalidPolicy(format!("{name} must be 0 or more, not {n}"))),
        _ => Ok(()),
    }
}

fn non_negative_i64(name: &str, v: Option<i64>) -> Result<()> {
    match v {
        Some(n) if n < 0 => Err(BrokerError::InvalidPolicy(format!("{name} must be 0 or more, not {n}"))),
        _ => Ok(()),
    }
}

/// Pulsar's bound on a topic's `maxMessageSize`: 0 (the broker's) up to the broker's own.
fn check_message_size(v: Option<i32>, broker: usize) -> Result<()> {
    match v {
        Some(n) if n < 0 || n as usize > broker => Err(BrokerError::InvalidPolicy(format!(
            "maxMessageSize must be between 0 and the broker's maxMessageSize {broker}, not {n}"
        ))),
        _ => Ok(()),
    }
}

fn check_inactive(p: Option<&magnetar_core::InactiveTopicPolicies>) -> Result<()> {
    if let Some(p) = p
        && p.max_inactive_duration_seconds < 0
    {
        return Err(BrokerError::InvalidPolicy(format!(
            "maxInactiveDurationSeconds must be 0 or more, not {}",
            p.max_inactive_duration_seconds
        )));
    }
    Ok(())
}

fn check_delayed(p: Option<magnetar_core::DelayedDeliveryPolicies>) -> Result<()> {
    if let Some(p) = p
        && (p.tick_time < 0 || p.max_delivery_delay_in_millis.is_some_and(|m| m < 0))
    {
        return Err(BrokerError::InvalidPolicy("tickTime and maxDeliveryDelayInMillis must be 0 or more".into()));
    }
    Ok(())
}

/// A rate's period must be a whole number of seconds, at least one.
fn check_period(name: &str, period: i32) -> Result<()> {
    if period < 1 {
        return Err(BrokerError::InvalidPolicy(format!("{name}: ratePeriodInSecond must be 1 or more, not {period}")));
    }
    Ok(())
}

fn check_rates<'a>(
    dispatch: impl IntoIterator<Item = &'a magnetar_core::DispatchRate>,
    subscribe: impl IntoIterator<Item = &'a magnetar_core::SubscribeRate>,
) -> Result<()> {
    for d in dispatch {
        check_period("dispatchRate", d.rate_period_in_second)?;
    }
    for r in subscribe {
        check_period("subscribeRate", r.rate_period_in_second)?;
    }
    Ok(())
}

/// Most copies of a record a broker keeps outside replicated durability: one, its own
/// group-committed WAL (or the bucket's). A larger quorum is refused there rather than stored as
/// a promise nothing keeps; a namespace with durability mode `replicated` (docs/durability.md)
/// may ask for up to `MAX_REPLICAS`.
pub const MAX_COPIES: i32 = 1;
pub const MAX_REPLICAS: i32 = 16;

/// Pulsar's checks of a persistence policy (400 on violation), with this broker's bound on
/// copies in the place of `managedLedgerMaxEnsembleSize` and its quorum companions: `replicated`
/// says whether the namespace's durability mode keeps more than one copy.
pub fn check_persistence(p: Option<&PersistencePolicies>, replicated: bool) -> Result<()> {
    let Some(p) = p else { return Ok(()) };
    let max = if replicated { MAX_REPLICAS } else { MAX_COPIES };
    for (what, n) in [
        ("Bookkeeper-Ensemble", p.bookkeeper_ensemble),
        ("Bookkeeper-WriteQuorum", p.bookkeeper_write_quorum),
        ("Bookkeeper-AckQuorum", p.bookkeeper_ack_quorum),
    ] {
        if n <= 0 || n > max {
            let why = if replicated {
                String::new()
            } else {
                ": outside durability mode replicated a broker keeps one copy of each message; set the namespace's \
                 durability to {\"mode\": \"replicated\"} first (topic-level quorums stay 1)"
                    .into()
            };
            return Err(BrokerError::InvalidArgument(format!("{what} must be <= {max} and > 0, got {n}{why}")));
        }
    }
    if !(p.bookkeeper_ensemble >= p.bookkeeper_write_quorum && p.bookkeeper_write_quorum >= p.bookkeeper_ack_quorum) {
        return Err(BrokerError::InvalidArgument(format!(
            "Bookkeeper Ensemble ({}) >= WriteQuorum ({}) >= AckQuorum ({})",
            p.bookkeeper_ensemble, p.bookkeeper_write_quorum, p.bookkeeper_ack_quorum
        )));
    }
    if !p.managed_ledger_max_mark_delete_rate.is_finite() || p.managed_ledger_max_mark_delete_rate < 0.0 {
        return Err(BrokerError::InvalidArgument(format!(
            "managedLedgerMaxMarkDeleteRate must be 0 or positive, got {}",
            p.managed_ledger_max_mark_delete_rate
        )));
    }
    Ok(())
}

/// Longest `objectStoreMaxWaitMs` accepted: a producer waiting longer has long given up.
pub const MAX_OBJECT_STORE_WAIT_MS: u64 = 600_000;

/// Magnetar's checks of a durability policy (400 on violation).
pub fn check_durability(p: Option<&magnetar_core::DurabilityPolicy>) -> Result<()> {
    use magnetar_core::DurabilityMode;
    let Some(p) = p else { return Ok(()) };
    if let Some(ms) = p.object_store_max_wait_ms {
        if p.mode == DurabilityMode::Local {
            return Err(BrokerError::InvalidArgument(
                "objectStoreMaxWaitMs applies to modes object-store and replicated, not local".into(),
            ));
        }
        if ms == 0 || ms > MAX_OBJECT_STORE_WAIT_MS {
            return Err(BrokerError::InvalidArgument(format!(
                "objectStoreMaxWaitMs must be between 1 and {MAX_OBJECT_STORE_WAIT_MS}, got {ms}"
            )));
        }
    }
    Ok(())
}

/// Pulsar's validation of the limit policies of a namespace (412 on violation).
pub fn validate_namespace(p: &Policies) -> Result<()> {
    let replicated = p.durability.is_some_and(|d| d.mode == magnetar_core::DurabilityMode::Replicated);
    check_persistence(p.persistence.as_ref(), replicated)?;
    check_durability(p.durability.as_ref())?;
    if replicated {
        magnetar_core::ReplicationQuorum::of(p.persistence.as_ref()).map_err(BrokerError::InvalidArgument)?;
    }
    non_negative("maxProducersPerTopic", p.max_producers_per_topic)?;
    non_negative("maxConsumersPerTopic", p.max_consumers_per_topic)?;
    non_negative("maxConsumersPerSubscription", p.max_consumers_per_subscription)?;
    non_negative("maxSubscriptionsPerTopic", p.max_subscriptions_per_topic)?;
    non_negative("maxTopicsPerNamespace", p.max_topics_per_namespace)?;
    non_negative("maxUnackedMessagesPerConsumer", p.max_unacked_messages_per_consumer)?;
    non_negative("maxUnackedMessagesPerSubscription", p.max_unacked_messages_per_subscription)?;
    non_negative("subscriptionExpirationTime", p.subscription_expiration_time_minutes)?;
    non_negative("deduplicationSnapshotInterval", p.deduplication_snapshot_interval_seconds)?;
    non_negative_i64("compactionThreshold", p.compaction_threshold)?;
    check_inactive(p.inactive_topic_policies.as_ref())?;
    check_rates(
        p.topic_dispatch_rate.values().chain(p.subscription_dispatch_rate.values()),
        p.cluster_subscribe_rate.values(),
    )?;
    check_delayed(p.delayed_delivery_policies)
}

/// The same rules for a topic's own policies.
pub fn validate_topic(p: &TopicPolicies) -> Result<()> {
    check_persistence(p.persistence.as_ref(), false)?;
    non_negative("maxProducers", p.max_producer_per_topic)?;
    non_negative("maxConsumers", p.max_consumer_per_topic)?;
    non_negative("maxConsumersPerSubscription", p.max_consumers_per_subscription)?;
    non_negative("maxSubscriptionsPerTopic", p.max_subscriptions_per_topic)?;
    non_negative("maxUnackedMessagesOnConsumer", p.max_unacked_messages_on_consumer)?;
    non_negative("maxUnackedMessagesOnSubscription", p.max_unacked_messages_on_subscription)?;
    check_inactive(p.inactive_topic_policies.as_ref())?;
    non_negative("messageTTL", p.message_ttl_in_seconds)?;
    non_negative("deduplicationSnapshotInterval", p.deduplication_snapshot_interval_seconds)?;
    non_negative_i64("compactionThreshold", p.compaction_threshold)?;
    if let Some(r) = &p.retention_policies {
        crate::admin::validate_retention(r)?;
    }
    let own_rates = p.subscription_policies.values().filter_map(|s| s.dispatch_rate.as_ref());
    check_rates(
        p.dispatch_rate.iter().chain(p.subscription_dispatch_rate.iter()).chain(own_rates),
        p.subscribe_rate.iter(),
    )?;
    check_delayed(p.delayed_delivery())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_limits_are_refused_with_the_policy_named() {
        let p = Policies { max_consumers_per_topic: Some(-2), ..Policies::default() };
        let e = validate_namespace(&p).unwrap_err();
        assert!(matches!(e, BrokerError::InvalidPolicy(ref m) if m.contains("maxConsumersPerTopic")), "{e}");
        let t = TopicPolicies { max_unacked_messages_on_consumer: Some(-1), ..TopicPolicies::default() };
        assert!(validate_topic(&t).is_err());
        assert!(validate_topic(&TopicPolicies::default()).is_ok());
        let t = TopicPolicies { message_ttl_in_seconds: Some(-1), ..TopicPolicies::default() };
        assert!(validate_topic(&t).is_err());
        assert!(check_message_size(Some(2048), 1024).is_err());
        assert!(check_message_size(Some(0), 1024).is_ok());
    }
}
