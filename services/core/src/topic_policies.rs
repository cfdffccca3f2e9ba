//! Topic-level policies in the JSON shape of Pulsar's `TopicPolicies` (camelCase): overrides of
//! the namespace's policies for one topic (a partitioned topic's partitions share them). An
//! absent field inherits the namespace's value, then the broker's. Fields Magnetar does not act
//! on are kept as sent.

use crate::limits::{
    AutoSubscriptionCreationOverride, DelayedDeliveryPolicies, DispatchRate, InactiveTopicPolicies, PublishRate,
    SubscribeRate, SubscriptionTypeName,
};
use crate::schema_policies::SchemaCompatibilityStrategy;
use crate::{BacklogQuota, PersistencePolicies, RetentionPolicies};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopicPolicies {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_producer_per_topic: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_consumer_per_topic: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_consumers_per_subscription: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_subscriptions_per_topic: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unacked_messages_on_consumer: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unacked_messages_on_subscription: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish_rate: Option<PublishRate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatch_rate: Option<DispatchRate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_dispatch_rate: Option<DispatchRate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribe_rate: Option<SubscribeRate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inactive_topic_policies: Option<InactiveTopicPolicies>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delayed_delivery_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delayed_delivery_tick_time_millis: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delayed_delivery_max_delay_in_millis: Option<i64>,
    /// Empty: inherited.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscription_types_enabled: Vec<SubscriptionTypeName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_subscription_creation_override: Option<AutoSubscriptionCreationOverride>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_compatibility_strategy: Option<SchemaCompatibilityStrategy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_validation_enforced: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deduplication_enabled: Option<bool>,
    /// Seconds between deduplication snapshots while messages arrive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deduplication_snapshot_interval_seconds: Option<i32>,
    /// Stored, validated as the namespace's; geo-replication does not exist yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_clusters: Option<Vec<String>>,
    /// Stored; no effect until geo-replication exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicator_dispatch_rate: Option<DispatchRate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_policies: Option<RetentionPolicies>,
    /// Copies and acknowledgement quorum (`/persistence`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistence: Option<PersistencePolicies>,
    /// Seconds; 0: messages do not expire.
    #[serde(default, rename = "messageTTLInSeconds", skip_serializing_if = "Option::is_none")]
    pub message_ttl_in_seconds: Option<i32>,
    /// Bytes of one message's payload; at most the broker's `max_message_bytes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_message_size: Option<i32>,
    /// Backlog quotas by type (`destination_storage`, `message_age`); a type the topic does not
    /// set inherits its namespace's.
    #[serde(default, rename = "backLogQuotaMap", skip_serializing_if = "BTreeMap::is_empty")]
    pub backlog_quota_map: BTreeMap<String, BacklogQuota>,
    /// Pulsar's `OffloadPolicies` as sent; Magnetar acts on its threshold and deletion-lag fields,
    /// each absent one inheriting the namespace's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offload_policies: Option<serde_json::Value>,
    /// Bytes after the compacted horizon that start an automatic compaction (0: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compaction_threshold: Option<i64>,
    /// Policies of single subscriptions, by subscription name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub subscription_policies: BTreeMap<String, SubscriptionPolicies>,
    /// Other Pulsar topic policies, kept verbatim.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// One subscription's own policies (Pulsar's `SubscriptionPolicies`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionPolicies {
    /// Overrides the topic's (else namespace's) subscription dispatch rate for this subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatch_rate: Option<DispatchRate>,
    /// Other fields, kept verbatim.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl SubscriptionPolicies {
    pub fn is_empty(&self) -> bool {
        *self == SubscriptionPolicies::default()
    }
}

impl TopicPolicies {
    /// A subscription's own dispatch rate, if it sets one.
    pub fn subscription_dispatch_rate_of(&self, subscription: &str) -> Option<DispatchRate> {
        self.subscription_policies.get(subscription).and_then(|p| p.dispatch_rate)
    }

    /// Sets or removes a subscription's own dispatch rate (an emptied entry is dropped).
    pub fn set_subscription_dispatch_rate(&mut self, subscription: &str, rate: Option<DispatchRate>) {
        let entry = self.subscription_policies.entry(subscription.to_string()).or_default();
        entry.dispatch_rate = rate;
        if entry.is_empty() {
            self.subscription_policies.remove(subscription);
        }
    }

    /// The topic's delayed-delivery override as Pulsar's `DelayedDeliveryPolicies`, if any of
    /// its fields is set.
    pub fn delayed_delivery(&self) -> Option<DelayedDeliveryPolicies> {
        if self.delayed_delivery_enabled.is_none() && self.delayed_delivery_tick_time_millis.is_none() {
            return None;
        }
        Some(DelayedDeliveryPolicies {
            tick_time: self.delayed_delivery_tick_time_millis.unwrap_or(1000),
            active: self.delayed_delivery_enabled.unwrap_or(true),
            max_delivery_delay_in_millis: self.delayed_delivery_max_delay_in_millis,
        })
    }

    pub fn set_delayed_delivery(&mut self, p: Option<DelayedDeliveryPolicies>) {
        self.delayed_delivery_enabled = p.map(|p| p.active);
        self.delayed_delivery_tick_time_millis = p.map(|p| p.tick_time);
        self.delayed_delivery_max_delay_in_millis = p.and_then(|p| p.max_delivery_delay_in_millis);
    }

    /// Whether nothing is overridden (stored as no policies at all).
    pub fn is_empty(&self) -> bool {
        *self == TopicPolicies::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_fields_are_not_written() {
        let p = TopicPolicies { max_producer_per_topic: Some(2), ..TopicPolicies::default() };
        assert_eq!(serde_json::to_string(&p).unwrap(), r#"{"maxProducerPerTopic":2}"#);
        assert!(TopicPolicies::default().is_empty());
    }

    #[test]
    fn pulsars_field_names_are_read_and_written() {
        let json = r#"{"messageTTLInSeconds":5,"backLogQuotaMap":{"destination_storage":{"limitSize":10,"limitTime":-1,"policy":"producer_exception"}},"subscriptionPolicies":{"s":{"dispatchRate":{"dispatchThrottlingRateInMsg":2,"dispatchThrottlingRateInByte":0,"relativeToPublishRate":false,"ratePeriodInSecond":1}}}}"#;
        let mut p: TopicPolicies = serde_json::from_str(json).unwrap();
        assert_eq!(p.message_ttl_in_seconds, Some(5));
        assert_eq!(p.backlog_quota_map["destination_storage"].limit_size, 10);
        assert_eq!(p.subscription_dispatch_rate_of("s").unwrap().dispatch_throttling_rate_in_msg, 2);
        assert!(p.other.is_empty(), "{:?}", p.other);
        p.set_subscription_dispatch_rate("s", None);
        assert!(p.subscription_policies.is_empty(), "an emptied subscription entry is dropped");
    }

    #[test]
    fn delayed_delivery_maps_to_pulsars_topic_fields() {
        let mut p = TopicPolicies::default();
        assert_eq!(p.delayed_delivery(), None);
        p.set_delayed_delivery(Some(DelayedDeliveryPolicies {
            tick_time: 500,
            active: false,
            max_delivery_delay_in_millis: None,
        }));
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["delayedDeliveryEnabled"], false);
        assert_eq!(v["delayedDeliveryTickTimeMillis"], 500);
        assert!(!p.delayed_delivery().unwrap().active);
    }
}
