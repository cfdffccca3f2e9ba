//! The one precedence rule of policies: a topic's own value, else its namespace's, else the
//! broker's setting. Enforcement, the `applied=true` answers of the admin API and the stats
//! ("which level a value came from") all read `EffectivePolicies::resolve`.

use crate::config::BrokerConfig;
use crate::controllers::offload::{OffloadPolicy, effective_policy, namespace_sets_offload, topic_policy};
use magnetar_core::{
    AutoSubscriptionCreationOverride, BacklogQuota, DelayedDeliveryPolicies, DispatchRate, InactiveTopicPolicies,
    PersistencePolicies, Policies, PublishRate, RetentionPolicies, SchemaCompatibilityStrategy, SubscribeRate,
    SubscriptionTypeName, TopicPolicies,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Where a policy value in force came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Topic,
    Namespace,
    Broker,
}

/// A value in force and the level that set it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Applied<T> {
    pub value: T,
    pub level: Level,
}

fn pick<T>(topic: Option<T>, namespace: Option<T>, broker: T) -> Applied<T> {
    match (topic, namespace) {
        (Some(value), _) => Applied { value, level: Level::Topic },
        (None, Some(value)) => Applied { value, level: Level::Namespace },
        (None, None) => Applied { value: broker, level: Level::Broker },
    }
}

/// Every policy Magnetar enforces per topic, resolved. Counts are Pulsar's: 0 = no limit.
// Deserialize: a broker tier merging a partitioned topic's stats reads them from an owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EffectivePolicies {
    #[schema(value_type = AppliedValue)]
    pub max_producers_per_topic: Applied<i32>,
    #[schema(value_type = AppliedValue)]
    pub max_consumers_per_topic: Applied<i32>,
    #[schema(value_type = AppliedValue)]
    pub max_consumers_per_subscription: Applied<i32>,
    #[schema(value_type = AppliedValue)]
    pub max_subscriptions_per_topic: Applied<i32>,
    #[schema(value_type = AppliedValue)]
    pub max_unacked_messages_per_consumer: Applied<i32>,
    #[schema(value_type = AppliedValue)]
    pub max_unacked_messages_per_subscription: Applied<i32>,
    #[schema(value_type = AppliedValue)]
    pub publish_rate: Applied<PublishRate>,
    #[schema(value_type = AppliedValue)]
    pub dispatch_rate: Applied<DispatchRate>,
    #[schema(value_type = AppliedValue)]
    pub subscription_dispatch_rate: Applied<DispatchRate>,
    #[schema(value_type = AppliedValue)]
    pub subscribe_rate: Applied<SubscribeRate>,
    #[schema(value_type = AppliedValue)]
    pub inactive_topic_policies: Applied<InactiveTopicPolicies>,
    #[schema(value_type = AppliedValue)]
    pub delayed_delivery: Applied<DelayedDeliveryPolicies>,
    #[schema(value_type = AppliedValue)]
    pub subscription_types_enabled: Applied<Vec<SubscriptionTypeName>>,
    #[schema(value_type = AppliedValue)]
    pub auto_subscription_creation: Applied<AutoSubscriptionCreationOverride>,
    #[schema(value_type = AppliedValue)]
    pub subscription_expiration_time_minutes: Applied<i32>,
    #[schema(value_type = AppliedValue)]
    pub encryption_required: Applied<bool>,
    #[schema(value_type = AppliedValue)]
    pub deduplication_enabled: Applied<bool>,
    /// Seconds between deduplication snapshots while messages arrive.
    #[schema(value_type = AppliedValue)]
    pub deduplication_snapshot_interval_seconds: Applied<i32>,
    /// `UNDEFINED` at every level: the broker's rule (same type may follow, see `schemas`).
    #[schema(value_type = AppliedValue)]
    pub schema_compatibility_strategy: Applied<SchemaCompatibilityStrategy>,
    #[schema(value_type = AppliedValue)]
    pub schema_validation_enforced: Applied<bool>,
    /// No effect until geo-replication exists; the broker's is unlimited.
    #[schema(value_type = AppliedValue)]
    pub replicator_dispatch_rate: Applied<DispatchRate>,
    #[schema(value_type = AppliedValue)]
    pub retention_policies: Applied<RetentionPolicies>,
    /// Copies and acknowledgement quorum; the broker's is one copy.
    #[schema(value_type = AppliedValue)]
    pub persistence: Applied<PersistencePolicies>,
    /// Seconds; 0: messages do not expire.
    #[serde(rename = "messageTTLInSeconds")]
    #[schema(value_type = AppliedValue)]
    pub message_ttl_in_seconds: Applied<i32>,
    /// Bytes; Pulsar sets it per topic or per broker, not per namespace.
    #[schema(value_type = AppliedValue)]
    pub max_message_size: Applied<i32>,
    /// By type; empty: no quota.
    #[schema(value_type = AppliedValue)]
    pub backlog_quota_map: Applied<BTreeMap<String, BacklogQuota>>,
    #[schema(value_type = AppliedValue)]
    pub offload_policies: Applied<OffloadPolicy>,
    /// Bytes after the compacted horizon that start an automatic compaction; 0: never.
    #[schema(value_type = AppliedValue)]
    pub compaction_threshold: Applied<i64>,
    /// The subscriptions that set their own dispatch rate (over `subscription_dispatch_rate`).
    #[serde(skip)]
    pub subscription_dispatch_rates: BTreeMap<String, DispatchRate>,
}

/// How the description shows an `Applied` value: the value and its level.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AppliedValue {
    /// The value in force (its shape is the policy's).
    value: serde_json::Value,
    level: Level,
}

/// The namespace's strategy; when `UNDEFINED`, its deprecated auto-update strategy as Pulsar
/// reads it (only when set: Pulsar's default for it, `Full`, is not Magnetar's broker rule).
fn namespace_schema_strategy(ns: &Policies) -> Option<SchemaCompatibilityStrategy> {
    match ns.schema_compatibility_strategy {
        Some(s) if s != SchemaCompatibilityStrategy::Undefined => Some(s),
        _ => ns.schema_auto_update_compatibility_strategy.map(Into::into),
    }
}

fn unlimited_if_negative(v: Option<i32>) -> Option<i32> {
    v.map(|n| n.max(0))
}

impl EffectivePolicies {
    /// The values in force for a topic with `topic` overrides in a namespace with `ns`, on a
    /// broker configured by `broker` in `cluster`.
    pub fn resolve(topic: &TopicPolicies, ns: &Policies, broker: &BrokerConfig) -> EffectivePolicies {
        let cluster = broker.cluster.as_str();
        let count = |v: u32| v.min(i32::MAX as u32) as i32;
        let per_second = |msg: u32, bytes: u64| DispatchRate {
            dispatch_throttling_rate_in_msg: count(msg),
            dispatch_throttling_rate_in_byte: bytes.min(i64::MAX as u64) as i64,
            relative_to_publish_rate: false,
            rate_period_in_second: 1,
        };
        let broker_types = broker.subscription_types_enabled.clone();
        let nonempty = |v: &Vec<SubscriptionTypeName>| (!v.is_empty()).then(|| v.clone());
        EffectivePolicies {
            max_producers_per_topic: pick(
                unlimited_if_negative(topic.max_producer_per_topic),
                unlimited_if_negative(ns.max_producers_per_topic),
                count(broker.max_producers_per_topic),
            ),
            max_consumers_per_topic: pick(
                unlimited_if_negative(topic.max_consumer_per_topic),
                unlimited_if_negative(ns.max_consumers_per_topic),
                count(broker.max_consumers_per_topic),
            ),
            max_consumers_per_subscription: pick(
                unlimited_if_negative(topic.max_consumers_per_subscription),
                unlimited_if_negative(ns.max_consumers_per_subscription),
                count(broker.max_consumers_per_subscription),
            ),
            max_subscriptions_per_topic: pick(
                unlimited_if_negative(topic.max_subscriptions_per_topic),
                unlimited_if_negative(ns.max_subscriptions_per_topic),
                count(broker.max_subscriptions_per_topic),
            ),
            max_unacked_messages_per_consumer: pick(
                unlimited_if_negative(topic.max_unacked_messages_on_consumer),
                unlimited_if_negative(ns.max_unacked_messages_per_consumer),
                count(broker.max_unacked_per_consumer),
            ),
            max_unacked_messages_per_subscription: pick(
                unlimited_if_negative(topic.max_unacked_messages_on_subscription),
                unlimited_if_negative(ns.max_unacked_messages_per_subscription),
                broker.max_unacked_per_subscription.min(i32::MAX as usize) as i32,
            ),
            publish_rate: pick(
                topic.publish_rate,
                ns.publish_max_message_rate.get(cluster).copied(),
                PublishRate {
                    publish_throttling_rate_in_msg: count(broker.publish_rate_per_topic_msg),
                    publish_throttling_rate_in_byte: broker.publish_rate_per_topic_bytes.min(i64::MAX as u64) as i64,
                },
            ),
            dispatch_rate: pick(
                topic.dispatch_rate,
                ns.topic_dispatch_rate.get(cluster).copied(),
                per_second(broker.dispatch_rate_per_topic_msg, broker.dispatch_rate_per_topic_bytes),
            ),
            subscription_dispatch_rate: pick(
                topic.subscription_dispatch_rate,
                ns.subscription_dispatch_rate.get(cluster).copied(),
                per_second(broker.dispatch_rate_per_subscription_msg, broker.dispatch_rate_per_subscription_bytes),
            ),
            subscribe_rate: pick(
                topic.subscribe_rate,
                ns.cluster_subscribe_rate.get(cluster).copied(),
                SubscribeRate {
                    subscribe_throttling_rate_per_consumer: count(broker.subscribe_rate_per_consumer),
                    rate_period_in_second: count(broker.subscribe_rate_period_seconds),
                },
            ),
            inactive_topic_policies: pick(
                topic.inactive_topic_policies,
                ns.inactive_topic_policies,
                InactiveTopicPolicies {
                    inactive_topic_delete_mode: broker.inactive_topic_delete_mode,
                    max_inactive_duration_seconds: broker.inactive_topic_max_seconds,
                    delete_while_inactive: broker.delete_inactive_topics,
                },
            ),
            delayed_delivery: pick(
                topic.delayed_delivery(),
                ns.delayed_delivery_policies,
                DelayedDeliveryPolicies {
                    tick_time: broker.delayed_delivery_tick_ms,
                    active: broker.delayed_delivery_enabled,
                    max_delivery_delay_in_millis: None,
                },
            ),
            subscription_types_enabled: pick(
                nonempty(&topic.subscription_types_enabled),
                nonempty(&ns.subscription_types_enabled),
                broker_types,
            ),
            auto_subscription_creation: pick(
                topic.auto_subscription_creation_override,
                ns.auto_subscription_creation_override,
                AutoSubscriptionCreationOverride {
                    allow_auto_subscription_creation: broker.allow_auto_subscription_creation,
                },
            ),
            subscription_expiration_time_minutes: pick(
                None,
                ns.subscription_expiration_time_minutes.map(|m| m.max(0)),
                broker.subscription_expiration_minutes.max(0),
            ),
            encryption_required: pick(None, ns.encryption_required.then_some(true), false),
            deduplication_enabled: pick(
                topic.deduplication_enabled,
                ns.deduplication_enabled,
                broker.deduplication.enabled,
            ),
            deduplication_snapshot_interval_seconds: pick(
                topic.deduplication_snapshot_interval_seconds,
                ns.deduplication_snapshot_interval_seconds,
                broker.deduplication.snapshot_interval_seconds,
            ),
            schema_compatibility_strategy: pick(
                topic.schema_compatibility_strategy.filter(|s| *s != SchemaCompatibilityStrategy::Undefined),
                namespace_schema_strategy(ns),
                SchemaCompatibilityStrategy::Undefined,
            ),
            schema_validation_enforced: pick(
                topic.schema_validation_enforced,
                ns.schema_validation_enforced.then_some(true),
                false,
            ),
            replicator_dispatch_rate: pick(
                topic.replicator_dispatch_rate,
                ns.replicator_dispatch_rate.get(cluster).copied(),
                per_second(0, 0),
            ),
            retention_policies: pick(topic.retention_policies, ns.retention_policies, broker.default_retention()),
            persistence: pick(topic.persistence, ns.persistence, PersistencePolicies::LOCAL),
            message_ttl_in_seconds: pick(
                topic.message_ttl_in_seconds.map(|t| t.max(0)),
                ns.message_ttl_in_seconds.map(|t| t.max(0)),
                0,
            ),
            // 0 at topic level is Pulsar's "the broker's".
            max_message_size: pick(
                topic.max_message_size.filter(|&n| n > 0),
                None,
                broker.max_message_bytes.min(i32::MAX as usize) as i32,
            ),
            // Per type, as Pulsar's quota manager: the topic's quota of a type, else the
            // namespace's; the level is the topic's when it sets any.
            backlog_quota_map: pick(
                (!topic.backlog_quota_map.is_empty()).then(|| {
                    let mut quotas = ns.backlog_quota_map.clone();
                    quotas.extend(topic.backlog_quota_map.clone());
                    quotas
                }),
                (!ns.backlog_quota_map.is_empty()).then(|| ns.backlog_quota_map.clone()),
                BTreeMap::new(),
            ),
            subscription_dispatch_rates: topic
                .subscription_policies
                .iter()
                .filter_map(|(name, p)| Some((name.clone(), p.dispatch_rate?)))
                .collect(),
            compaction_threshold: pick(
                topic.compaction_threshold.map(|b| b.max(0)),
                ns.compaction_threshold.map(|b| b.max(0)),
                broker.compaction_threshold_bytes.max(0),
            ),
            offload_policies: {
                let defaults = OffloadPolicy {
                    threshold_bytes: broker.offload_threshold_bytes,
                    threshold_seconds: broker.offload_threshold_seconds,
                    deletion_lag_ms: broker.offload_deletion_lag_ms,
                };
                let namespace = effective_policy(ns, &defaults);
                pick(
                    topic_policy(topic.offload_policies.as_ref(), &namespace),
                    namespace_sets_offload(ns).then_some(namespace),
                    defaults,
                )
            },
        }
    }

    /// The dispatch rate in force for one subscription: its own, else the topic's (else
    /// namespace's, else broker's) subscription dispatch rate.
    pub fn dispatch_rate_of_subscription(&self, subscription: &str) -> Applied<DispatchRate> {
        match self.subscription_dispatch_rates.get(subscription) {
            Some(&value) => Applied { value, level: Level::Topic },
            None => self.subscription_dispatch_rate.clone(),
        }
    }

    /// Whether consumers of `kind` may subscribe.
    pub fn allows_subscription_type(&self, kind: SubscriptionTypeName) -> bool {
        self.subscription_types_enabled.value.contains(&kind)
    }
}

/// A Pulsar limit as an optional bound: 0 (or less) is no limit.
pub fn limit(v: i32) -> Option<u32> {
    (v > 0).then_some(v as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_topic_wins_over_the_namespace_which_wins_over_the_broker() {
        let broker = BrokerConfig { max_producers_per_topic: 7, ..BrokerConfig::default() };
        let mut ns = Policies::default();
        let mut topic = TopicPolicies::default();
        let e = EffectivePolicies::resolve(&topic, &ns, &broker);
        assert_eq!(e.max_producers_per_topic, Applied { value: 7, level: Level::Broker });
        ns.max_producers_per_topic = Some(3);
        let e = EffectivePolicies::resolve(&topic, &ns, &broker);
        assert_eq!(e.max_producers_per_topic, Applied { value: 3, level: Level::Namespace });
        topic.max_producer_per_topic = Some(1);
        let e = EffectivePolicies::resolve(&topic, &ns, &broker);
        assert_eq!(e.max_producers_per_topic, Applied { value: 1, level: Level::Topic });
    }

    #[test]
    fn cluster_keyed_rates_are_read_for_this_cluster_only() {
        let broker = BrokerConfig::default();
        let mut ns = Policies::default();
        let rate = PublishRate { publish_throttling_rate_in_msg: 10, publish_throttling_rate_in_byte: -1 };
        ns.publish_max_message_rate.insert("elsewhere".into(), rate);
        let e = EffectivePolicies::resolve(&TopicPolicies::default(), &ns, &broker);
        assert_eq!(e.publish_rate.level, Level::Broker);
        assert!(!e.publish_rate.value.is_limited());
        ns.publish_max_message_rate.insert(broker.cluster.clone(), rate);
        let e = EffectivePolicies::resolve(&TopicPolicies::default(), &ns, &broker);
        assert_eq!(e.publish_rate, Applied { value: rate, level: Level::Namespace });
    }

    #[test]
    fn an_empty_list_of_subscription_types_inherits() {
        let broker = BrokerConfig::default();
        let mut ns = Policies::default();
        let e = EffectivePolicies::resolve(&TopicPolicies::default(), &ns, &broker);
        assert!(e.allows_subscription_type(SubscriptionTypeName::KeyShared));
        ns.subscription_types_enabled = vec![SubscriptionTypeName::Shared];
        let e = EffectivePolicies::resolve(&TopicPolicies::default(), &ns, &broker);
        assert!(!e.allows_subscription_type(SubscriptionTypeName::Exclusive));
        assert_eq!(e.subscription_types_enabled.level, Level::Namespace);
    }

    #[test]
    fn an_undefined_schema_strategy_falls_back_to_the_auto_update_one() {
        use magnetar_core::SchemaAutoUpdateCompatibilityStrategy as Auto;
        let broker = BrokerConfig::default();
        let mut ns = Policies::default();
        let mut topic = TopicPolicies::default();
        let e = EffectivePolicies::resolve(&topic, &ns, &broker);
        assert_eq!(e.schema_compatibility_strategy.value, SchemaCompatibilityStrategy::Undefined);
        ns.schema_auto_update_compatibility_strategy = Some(Auto::AutoUpdateDisabled);
        let e = EffectivePolicies::resolve(&topic, &ns, &broker);
        assert_eq!(
            e.schema_compatibility_strategy,
            Applied { value: SchemaCompatibilityStrategy::AlwaysIncompatible, level: Level::Namespace }
        );
        ns.schema_compatibility_strategy = Some(SchemaCompatibilityStrategy::Forward);
        topic.schema_compatibility_strategy = Some(SchemaCompatibilityStrategy::Undefined);
        let e = EffectivePolicies::resolve(&topic, &ns, &broker);
        assert_eq!(e.schema_compatibility_strategy.value, SchemaCompatibilityStrategy::Forward);
    }

    #[test]
    fn a_topics_retention_and_ttl_win_and_its_message_size_falls_back_to_the_broker() {
        let broker = BrokerConfig::default();
        let ns = Policies {
            message_ttl_in_seconds: Some(600),
            retention_policies: Some(RetentionPolicies { retention_time_in_minutes: 60, retention_size_in_mb: -1 }),
            ..Policies::default()
        };
        let mut topic = TopicPolicies::default();
        let e = EffectivePolicies::resolve(&topic, &ns, &broker);
        assert_eq!(e.message_ttl_in_seconds, Applied { value: 600, level: Level::Namespace });
        assert_eq!(e.retention_policies.level, Level::Namespace);
        assert_eq!(e.max_message_size.value as usize, broker.max_message_bytes);
        topic.message_ttl_in_seconds = Some(5);
        topic.retention_policies = Some(RetentionPolicies { retention_time_in_minutes: 1, retention_size_in_mb: 0 });
        topic.max_message_size = Some(1024);
        let e = EffectivePolicies::resolve(&topic, &ns, &broker);
        assert_eq!(e.message_ttl_in_seconds, Applied { value: 5, level: Level::Topic });
        assert_eq!(e.retention_policies.value.retention_time_in_minutes, 1);
        assert_eq!(e.max_message_size, Applied { value: 1024, level: Level::Topic });
    }

    #[test]
    fn backlog_quotas_and_offload_fields_are_resolved_one_by_one() {
        use magnetar_core::BacklogQuotaPolicy;
        let broker = BrokerConfig::default();
        let quota =
            |size| BacklogQuota { limit_size: size, limit_time: -1, policy: BacklogQuotaPolicy::ProducerException };
        let mut ns = Policies::default();
        ns.backlog_quota_map.insert("destination_storage".into(), quota(100));
        ns.backlog_quota_map.insert("message_age".into(), quota(-1));
        ns.offload_deletion_lag_ms = Some(7);
        let mut topic = TopicPolicies::default();
        topic.backlog_quota_map.insert("destination_storage".into(), quota(10));
        topic.offload_policies = Some(serde_json::json!({"managedLedgerOffloadThresholdInBytes": 5}));
        let e = EffectivePolicies::resolve(&topic, &ns, &broker);
        assert_eq!(e.backlog_quota_map.level, Level::Topic);
        assert_eq!(e.backlog_quota_map.value["destination_storage"].limit_size, 10);
        assert!(e.backlog_quota_map.value.contains_key("message_age"), "the namespace's other type still applies");
        assert_eq!(e.offload_policies.level, Level::Topic);
        assert_eq!(e.offload_policies.value.threshold_bytes, 5);
        assert_eq!(e.offload_policies.value.deletion_lag_ms, 7, "a field the topic leaves out is the namespace's");
        let e = EffectivePolicies::resolve(&TopicPolicies::default(), &Policies::default(), &broker);
        assert_eq!(e.backlog_quota_map, Applied { value: BTreeMap::new(), level: Level::Broker });
        assert_eq!(e.offload_policies.level, Level::Broker);
    }

    #[test]
    fn a_subscriptions_own_dispatch_rate_wins_for_it_alone() {
        let rate = |msgs| DispatchRate {
            dispatch_throttling_rate_in_msg: msgs,
            dispatch_throttling_rate_in_byte: 0,
            relative_to_publish_rate: false,
            rate_period_in_second: 1,
        };
        let mut topic = TopicPolicies { subscription_dispatch_rate: Some(rate(50)), ..TopicPolicies::default() };
        topic.set_subscription_dispatch_rate("slow", Some(rate(5)));
        let e = EffectivePolicies::resolve(&topic, &Policies::default(), &BrokerConfig::default());
        assert_eq!(e.dispatch_rate_of_subscription("slow").value, rate(5));
        assert_eq!(e.dispatch_rate_of_subscription("other").value, rate(50));
    }

    #[test]
    fn negative_counts_mean_no_limit() {
        let ns = Policies { max_consumers_per_topic: Some(-1), ..Policies::default() };
        let e = EffectivePolicies::resolve(&TopicPolicies::default(), &ns, &BrokerConfig::default());
        assert_eq!(limit(e.max_consumers_per_topic.value), None);
        assert_eq!(limit(2), Some(2));
    }
}
