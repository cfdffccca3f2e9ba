//! The policy values that limit what a topic's clients may do, in Pulsar's JSON shapes (camelCase
//! field names, Pulsar's defaults for missing fields): rates of publishing, dispatching and
//! subscribing, inactive-topic deletion, delayed delivery and automatic subscription creation.
//! They are stored in namespace `Policies` and topic `TopicPolicies`; the broker resolves which
//! level applies.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

fn minus_one_i32() -> i32 {
    -1
}
fn minus_one_i64() -> i64 {
    -1
}
fn one() -> i32 {
    1
}
fn thirty() -> i32 {
    30
}

/// Pulsar's `PublishRate`: the most a topic (each partition) accepts per second. 0 or less = no
/// limit in that dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublishRate {
    /// Messages per second (0 or less: no limit).
    #[serde(default = "minus_one_i32")]
    #[schema(default = -1, example = 1000)]
    pub publish_throttling_rate_in_msg: i32,
    /// Payload bytes per second (0 or less: no limit).
    #[serde(default = "minus_one_i64")]
    #[schema(default = -1, example = 1048576)]
    pub publish_throttling_rate_in_byte: i64,
}

impl Default for PublishRate {
    fn default() -> Self {
        PublishRate { publish_throttling_rate_in_msg: -1, publish_throttling_rate_in_byte: -1 }
    }
}

impl PublishRate {
    /// Whether either dimension limits anything.
    pub fn is_limited(&self) -> bool {
        self.publish_throttling_rate_in_msg > 0 || self.publish_throttling_rate_in_byte > 0
    }
}

/// Pulsar's `DispatchRate`: the most a topic (or each subscription) delivers per `ratePeriodInSecond`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DispatchRate {
    /// Messages per period (0 or less: no limit).
    #[serde(default = "minus_one_i32")]
    #[schema(default = -1, example = 1000)]
    pub dispatch_throttling_rate_in_msg: i32,
    /// Payload bytes per period (0 or less: no limit).
    #[serde(default = "minus_one_i64")]
    #[schema(default = -1, example = 1048576)]
    pub dispatch_throttling_rate_in_byte: i64,
    /// The rate is added to the topic's current publish rate.
    #[serde(default)]
    pub relative_to_publish_rate: bool,
    /// Seconds the rate is counted over (at least 1).
    #[serde(default = "one")]
    #[schema(default = 1, minimum = 1)]
    pub rate_period_in_second: i32,
}

impl Default for DispatchRate {
    fn default() -> Self {
        DispatchRate {
            dispatch_throttling_rate_in_msg: -1,
            dispatch_throttling_rate_in_byte: -1,
            relative_to_publish_rate: false,
            rate_period_in_second: 1,
        }
    }
}

impl DispatchRate {
    pub fn is_limited(&self) -> bool {
        self.dispatch_throttling_rate_in_msg > 0 || self.dispatch_throttling_rate_in_byte > 0
    }
}

/// Pulsar's `SubscribeRate`: how many subscribe requests one consumer (host and consumer name)
/// may make per `ratePeriodInSecond` on a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscribeRate {
    /// Subscribes per period per consumer (0 or less: no limit).
    #[serde(default = "minus_one_i32")]
    #[schema(default = -1, example = 10)]
    pub subscribe_throttling_rate_per_consumer: i32,
    /// Seconds the rate is counted over.
    #[serde(default = "thirty")]
    #[schema(default = 30, minimum = 1)]
    pub rate_period_in_second: i32,
}

impl Default for SubscribeRate {
    fn default() -> Self {
        SubscribeRate { subscribe_throttling_rate_per_consumer: -1, rate_period_in_second: 30 }
    }
}

impl SubscribeRate {
    pub fn is_limited(&self) -> bool {
        self.subscribe_throttling_rate_per_consumer > 0 && self.rate_period_in_second > 0
    }
}

/// When an inactive topic counts as abandoned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InactiveTopicDeleteMode {
    /// No producers, no consumers and no subscriptions.
    DeleteWhenNoSubscriptions,
    /// No producers, no consumers and every subscription caught up (no backlog).
    DeleteWhenSubscriptionsCaughtUp,
}

/// Pulsar's `InactiveTopicPolicies`: delete topics inactive for `maxInactiveDurationSeconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InactiveTopicPolicies {
    #[serde(default = "default_delete_mode")]
    pub inactive_topic_delete_mode: InactiveTopicDeleteMode,
    /// Seconds without producers, consumers or publishes before the topic is deleted (0 or more).
    #[serde(default)]
    #[schema(minimum = 0, example = 3600)]
    pub max_inactive_duration_seconds: i32,
    /// Whether inactive topics are deleted at all.
    #[serde(default)]
    pub delete_while_inactive: bool,
}

fn default_delete_mode() -> InactiveTopicDeleteMode {
    InactiveTopicDeleteMode::DeleteWhenNoSubscriptions
}

/// Pulsar's `DelayedDeliveryPolicies`: whether `deliverAt`/`deliverAfter` are honoured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DelayedDeliveryPolicies {
    /// Milliseconds between checks for due messages (Magnetar delivers at the due time; the
    /// tick is kept for Pulsar tools).
    #[serde(default = "default_tick")]
    #[schema(default = 1000, minimum = 0)]
    pub tick_time: i64,
    /// Off: delayed messages are delivered at once.
    #[serde(default)]
    pub active: bool,
    /// Longest delay a message may ask for, in milliseconds (0 or absent: no limit); longer
    /// delays are refused at publish.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0)]
    pub max_delivery_delay_in_millis: Option<i64>,
}

fn default_tick() -> i64 {
    1000
}

/// Pulsar's `AutoSubscriptionCreationOverride`: whether subscribing creates a missing subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoSubscriptionCreationOverride {
    pub allow_auto_subscription_creation: bool,
}

/// The subscription types Pulsar names, as `subscription_types_enabled` lists them.
pub const SUBSCRIPTION_TYPES: [&str; 4] = ["Exclusive", "Shared", "Failover", "Key_Shared"];

/// A subscription type name as Pulsar's admin API takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
pub enum SubscriptionTypeName {
    Exclusive,
    Shared,
    Failover,
    #[serde(rename = "Key_Shared")]
    KeyShared,
}

impl SubscriptionTypeName {
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionTypeName::Exclusive => "Exclusive",
            SubscriptionTypeName::Shared => "Shared",
            SubscriptionTypeName::Failover => "Failover",
            SubscriptionTypeName::KeyShared => "Key_Shared",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_fields_take_pulsars_defaults() {
        let d: DispatchRate = serde_json::from_str(r#"{"dispatchThrottlingRateInMsg":10}"#).unwrap();
        assert_eq!(d.dispatch_throttling_rate_in_byte, -1);
        assert_eq!(d.rate_period_in_second, 1);
        let s: SubscribeRate = serde_json::from_str("{}").unwrap();
        assert_eq!((s.subscribe_throttling_rate_per_consumer, s.rate_period_in_second), (-1, 30));
        let p: PublishRate = serde_json::from_str(r#"{"publishThrottlingRateInByte":100}"#).unwrap();
        assert!(p.is_limited());
        assert!(!PublishRate::default().is_limited());
    }

    #[test]
    fn inactive_topic_policies_use_pulsar_names() {
        let p: InactiveTopicPolicies = serde_json::from_str(
            r#"{"inactiveTopicDeleteMode":"delete_when_subscriptions_caught_up","maxInactiveDurationSeconds":60,"deleteWhileInactive":true}"#,
        )
        .unwrap();
        assert_eq!(p.inactive_topic_delete_mode, InactiveTopicDeleteMode::DeleteWhenSubscriptionsCaughtUp);
        let back = serde_json::to_value(p).unwrap();
        assert_eq!(back["inactiveTopicDeleteMode"], "delete_when_subscriptions_caught_up");
    }

    #[test]
    fn delayed_delivery_reads_tick_time() {
        let p: DelayedDeliveryPolicies = serde_json::from_str(r#"{"active":true,"tickTime":1500}"#).unwrap();
        assert_eq!(p.tick_time, 1500);
        assert_eq!(serde_json::to_string(&p).unwrap(), r#"{"tickTime":1500,"active":true}"#);
    }
}
