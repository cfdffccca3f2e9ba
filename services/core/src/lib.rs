//! Magnetar's shared vocabulary: resource names parsed at the edge (tenant, namespace, topic,
//! subscription), Pulsar-compatible message ids, namespace/topic policies and the key hash used to
//! route messages to partitions. No I/O lives here.

pub mod bundles;
pub mod clock;
pub mod hash;
pub mod limits;
pub mod message_id;
pub mod names;
pub mod policies;
pub mod schema_policies;
pub mod secret;
pub mod time;
pub mod topic_policies;

pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use limits::{
    AutoSubscriptionCreationOverride, DelayedDeliveryPolicies, DispatchRate, InactiveTopicDeleteMode,
    InactiveTopicPolicies, PublishRate, SubscribeRate, SubscriptionTypeName,
};
pub use message_id::MessageId;
pub use names::{ClusterName, Domain, NameError, NamespaceName, SubscriptionName, TenantName, TopicName};
pub use policies::{
    BacklogQuota, BacklogQuotaPolicy, DurabilityMode, DurabilityPolicy, PersistencePolicies, Policies,
    ReplicationQuorum, RetentionPolicies,
};
pub use schema_policies::{SchemaAutoUpdateCompatibilityStrategy, SchemaCompatibilityStrategy};
pub use secret::Secret;
pub use topic_policies::{SubscriptionPolicies, TopicPolicies};

/// Milliseconds since the Unix epoch, the one clock unit stored and sent on the wire.
pub fn now_millis() -> i64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
