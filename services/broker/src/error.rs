//! Conditions a broker operation can end in, each naming what it concerns. Nothing here knows
//! HTTP: the API crate maps every condition to a status in one table. Messages are lowercase,
//! name the offending entity and become the `reason` of 4xx answers; the causes of 5xx
//! conditions (driver text, paths) stay out of `Display` and go to the log (`cause`).

use magnetar_core::{NameError, NamespaceName, SubscriptionName, TenantName, TopicName};
use magnetar_metadata::MetadataError;
use magnetar_storage::StorageError;
use std::fmt;

/// What a condition concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entity {
    Cluster(String),
    Tenant(TenantName),
    Namespace(NamespaceName),
    Topic(TopicName),
    PartitionedTopic(TopicName),
    Partition {
        topic: TopicName,
        index: u32,
    },
    Subscription {
        topic: TopicName,
        name: SubscriptionName,
    },
    /// A message, in words ("message at position 3 of subscription s").
    Message(String),
    /// The role list of a subscription in a namespace (`subscription_auth_roles`).
    SubscriptionRoles {
        namespace: NamespaceName,
        subscription: SubscriptionName,
    },
    /// A role's grant on one topic (`destination_auth`).
    TopicGrant {
        topic: TopicName,
        role: String,
    },
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entity::Cluster(c) => write!(f, "cluster {c}"),
            Entity::Tenant(t) => write!(f, "tenant {t}"),
            Entity::Namespace(n) => write!(f, "namespace {n}"),
            Entity::Topic(t) => write!(f, "topic {t}"),
            Entity::PartitionedTopic(t) => write!(f, "partitioned topic {t}"),
            Entity::Partition { topic, index } => write!(f, "partition {index} of topic {topic}"),
            Entity::Subscription { topic, name } => write!(f, "subscription {name} of topic {topic}"),
            Entity::Message(m) => f.write_str(m),
            Entity::SubscriptionRoles { namespace, subscription } => {
                write!(f, "role list of subscription {subscription} in namespace {namespace}")
            }
            Entity::TopicGrant { topic, role } => write!(f, "grant of role {role} on topic {topic}"),
        }
    }
}

/// A dependency the broker could not use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Metadata,
    Storage,
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Service::Metadata => "metadata store",
            Service::Storage => "storage",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    // ---- the entity and its state ----
    #[error("{0} not found")]
    NotFound(Entity),
    #[error("{0} already exists")]
    AlreadyExists(Entity),
    /// A tenant with namespaces, a namespace with topics.
    #[error("{0} is not empty")]
    NotEmpty(Entity),
    /// Consumers connected or messages in flight; `force` overrides.
    #[error("{0} has connected consumers or messages in flight; use force=true to delete it anyway")]
    InUse(Entity),
    #[error("{0} is being modified concurrently, try again")]
    ModifiedConcurrently(Entity),
    /// The bundle's owner is not a live member of the tier and its partitions wait for it.
    #[error("{0}")]
    BundleUnavailable(String),
    /// A forced takeover of a bundle whose owner is alive (it hands the bundle over instead).
    #[error("bundle {bundle} is owned by live broker {owner}: unload it instead, which hands it over without loss")]
    OwnerAlive { bundle: String, owner: String },
    /// An exclusive subscription with a consumer, or consumers of another subscription type.
    #[error("{0}")]
    ConsumerBusy(String),
    /// A Sticky Key_Shared consumer whose hash ranges are malformed or claimed by another
    /// consumer (Pulsar's `ConsumerAssignError`).
    #[error("{0}")]
    ConsumerAssign(String),
    /// A shared producer on a partition held by an exclusive producer (Pulsar's `ProducerBusy`).
    #[error("{0}")]
    ProducerBusy(String),
    /// An exclusive producer that cannot have the partition, or one fenced out by another
    /// (Pulsar's `ProducerFenced`).
    #[error("{0}")]
    ProducerFenced(String),
    /// A terminal error of a partition that was deleted while the request ran.
    #[error("the topic was deleted")]
    Deleted,

    // ---- requests that cannot be done as asked ----
    #[error("{0}")]
    InvalidName(#[from] NameError),
    #[error("{0}")]
    InvalidArgument(String),
    /// A policy value Pulsar refuses (negative TTL, inconsistent retention, ...).
    #[error("{0}")]
    InvalidPolicy(String),
    /// Pulsar's 406 for a number of partitions out of bounds.
    #[error("{0}")]
    InvalidPartitionCount(String),
    #[error("topic {topic} has {current} partitions: the count can only grow, not become {asked}")]
    PartitionsCannotShrink { topic: TopicName, current: u32, asked: u32 },
    #[error("topic {0} is not partitioned")]
    NotPartitioned(TopicName),
    #[error("topic {0} is partitioned: delete it with DELETE .../{local}/partitions", local = .0.local())]
    IsPartitioned(TopicName),
    #[error("{operation} on partitioned topic {topic} is not allowed: name one of its partitions")]
    WholePartitionedTopic { topic: TopicName, operation: &'static str },
    #[error("topic name {0} must not end with -partition-N: that suffix names partitions of partitioned topics")]
    PartitionSuffix(TopicName),
    #[error("message id {id} does not belong to topic {topic}")]
    ForeignMessageId { id: String, topic: TopicName },
    /// An acknowledgement of a message that does not exist yet: accepting it would silently skip
    /// the message once it is published.
    #[error("message id {id} is past the end of topic {topic} (its next message is at offset {next_offset})")]
    MessageIdBeyondEnd { id: String, topic: TopicName, next_offset: u64 },
    #[error("{0}")]
    NotAllowed(String),
    /// A tenant naming a cluster this broker does not know (Pulsar's 412).
    #[error("cluster {cluster} does not exist (known: {known})")]
    UnknownCluster { cluster: String, known: String },
    #[error("{what} has {size} bytes, more than the maximum of {max} bytes")]
    MessageTooLarge { what: String, size: usize, max: usize },
    #[error("offload of {0} is already running")]
    OffloadRunning(TopicName),
    #[error("no object store is configured")]
    NoObjectStore,
    /// Pulsar's `AlreadyRunningException` text, then the topic.
    #[error("Compaction already in progress on topic {0}")]
    CompactionRunning(TopicName),

    // ---- limits set by namespace and topic policies ----
    /// Pulsar's `ProducerBusy` "Topic reached max producers limit".
    #[error("topic {topic} reached max producers limit of {max}")]
    TooManyProducers { topic: TopicName, max: u32 },
    /// Pulsar's `ConsumerBusy` "Topic (or Subscription) reached max consumers limit".
    #[error("{entity} reached max consumers limit of {max}")]
    TooManyConsumers { entity: Box<Entity>, max: u32 },
    #[error("topic {topic} reached max subscriptions limit of {max}")]
    TooManySubscriptions { topic: TopicName, max: u32 },
    /// Partitions count one topic each, as in Pulsar.
    #[error(
        "namespace {namespace} reached max topics limit of {max}: it has {existing} topics (partitions count one each) and {asked} more were asked"
    )]
    TooManyTopics { namespace: NamespaceName, max: u32, existing: u32, asked: u32 },
    #[error("subscription type {kind} is not enabled on topic {topic} (enabled: {enabled})")]
    SubscriptionTypeDisabled { topic: TopicName, kind: &'static str, enabled: String },
    #[error("subscription {name} of topic {topic} does not exist and automatic subscription creation is disabled")]
    AutoSubscriptionCreationDisabled { topic: TopicName, name: SubscriptionName },
    /// Pulsar's `TooManyRequests` for subscribes over the topic's subscribe rate.
    #[error("too many subscribe requests from consumer {consumer} on topic {topic}: at most {rate} per {period_s} s")]
    SubscribeRateExceeded { topic: TopicName, consumer: String, rate: i32, period_s: i32 },
    #[error("topic {0} requires encrypted messages (encryption_required): the message is not encrypted")]
    EncryptionRequired(TopicName),
    #[error("message delay of {delay_ms} ms exceeds the maximum of {max_ms} ms of topic {topic}")]
    DeliveryDelayTooLong { topic: TopicName, delay_ms: i64, max_ms: i64 },

    // ---- authorization ----
    #[error("{0}")]
    Forbidden(String),

    // ---- the broker cannot serve now ----
    #[error("backlog quota exceeded on topic {topic}{}", if *.held { ": publish held for 30 s" } else { "" })]
    BacklogQuotaExceeded { topic: TopicName, held: bool },
    /// `detail` is safe to show (composed by Magnetar); `cause` (driver text) is only logged.
    #[error("{service} unavailable{}", .detail.as_deref().map(|d| format!(": {d}")).unwrap_or_else(|| ", retry later".into()))]
    Unavailable { service: Service, detail: Option<String>, cause: String },
    /// A REST publish that would wait longer than the broker lets a request wait.
    #[error(
        "publish rate of {entity} reached: this request would wait {wait_ms} ms, more than the {max_ms} ms a request may wait; retry later"
    )]
    PublishRateExceeded { entity: Box<Entity>, wait_ms: u64, max_ms: u64 },
    #[error("the broker is shutting down")]
    ShuttingDown,
    /// The broker tier: this broker does not own the topic's bundle and cannot forward the
    /// request (already forwarded once, owner gone, or no owner yet). The text names bundles and
    /// broker ids, never internal addresses.
    #[error("{0}")]
    NotOwner(String),
    /// Deduplication: an earlier message of this producer with this sequence id is still being
    /// stored; whether it will be is not known yet (Pulsar's "unknown" duplicate status).
    #[error(
        "message {sequence_id} of producer {producer} is already being stored on {topic}: retry once that one is acknowledged or failed"
    )]
    SequenceInFlight { topic: TopicName, producer: String, sequence_id: i64 },
    /// Pulsar's terminated topic: it accepts no more messages (its consumers read what is left).
    #[error("topic {0} is terminated: it accepts no more messages")]
    TopicTerminated(TopicName),
    /// Pulsar's incompatible schema: the upload cannot follow the topic's current schema.
    #[error("incompatible schema: {0}")]
    SchemaIncompatible(String),
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = BrokerError> = std::result::Result<T, E>;

impl BrokerError {
    /// What to log about a server-side condition (driver text included); the client gets
    /// `Display`.
    pub fn cause(&self) -> String {
        match self {
            BrokerError::Unavailable { cause, .. } => cause.clone(),
            other => other.to_string(),
        }
    }

    pub(crate) fn internal(e: impl fmt::Display) -> Self {
        BrokerError::Internal(e.to_string())
    }
}

impl From<MetadataError> for BrokerError {
    /// The metadata store names what it did not find by string; callers that know the entity
    /// map `NotFound`/`AlreadyExists` themselves (see `or_entity`).
    fn from(e: MetadataError) -> Self {
        match e {
            MetadataError::NotFound(what) => BrokerError::NotFound(Entity::Message(what)),
            MetadataError::AlreadyExists(what) => BrokerError::AlreadyExists(Entity::Message(what)),
            MetadataError::NotEmpty(what) => BrokerError::NotEmpty(Entity::Message(what)),
            MetadataError::Conflict(msg) => BrokerError::ModifiedConcurrently(Entity::Message(msg)),
            e @ MetadataError::Fenced { .. } => {
                BrokerError::Unavailable { service: Service::Metadata, detail: None, cause: e.to_string() }
            }
            e @ MetadataError::Unavailable(_) => {
                BrokerError::Unavailable { service: Service::Metadata, detail: None, cause: e.to_string() }
            }
            e @ MetadataError::Internal(_) => BrokerError::Internal(e.to_string()),
        }
    }
}

impl From<StorageError> for BrokerError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::MessageTooLarge { size, max } => {
                BrokerError::MessageTooLarge { what: "the request".into(), size, max }
            }
            StorageError::ShuttingDown => BrokerError::ShuttingDown,
            StorageError::LogDeleted(_) => BrokerError::Deleted,
            // Nothing was appended: the request is served again by the partition's next owner.
            e @ StorageError::Closed(_) => BrokerError::NotOwner(e.to_string()),
            // Callers that know the partition name it (`TopicTerminated`); this is the fallback.
            e @ StorageError::Terminated(_) => BrokerError::NotAllowed(e.to_string()),
            e @ StorageError::OffsetTrimmed { .. } => {
                BrokerError::NotFound(Entity::Message(format!("message ({e}; deleted by retention)")))
            }
            StorageError::Unavailable(detail) | StorageError::NotYetDurable(detail) => {
                BrokerError::Unavailable { service: Service::Storage, cause: detail.clone(), detail: Some(detail) }
            }
            e => BrokerError::Unavailable { service: Service::Storage, detail: None, cause: e.to_string() },
        }
    }
}

impl From<magnetar_auth::AuthError> for BrokerError {
    fn from(e: magnetar_auth::AuthError) -> Self {
        use magnetar_auth::AuthError as A;
        match e {
            A::Forbidden(reason) => BrokerError::Forbidden(reason),
            A::Unavailable(cause) => BrokerError::Unavailable { service: Service::Metadata, detail: None, cause },
            other => BrokerError::Internal(other.to_string()),
        }
    }
}

/// Maps a metadata store's `NotFound` / `AlreadyExists` to the entity the caller was working on.
pub(crate) trait OrEntity<T> {
    fn or_entity(self, entity: impl FnOnce() -> Entity) -> Result<T>;
}

impl<T> OrEntity<T> for std::result::Result<T, MetadataError> {
    fn or_entity(self, entity: impl FnOnce() -> Entity) -> Result<T> {
        self.map_err(|e| match e {
            MetadataError::NotFound(_) => BrokerError::NotFound(entity()),
            MetadataError::AlreadyExists(_) => BrokerError::AlreadyExists(entity()),
            MetadataError::NotEmpty(_) => BrokerError::NotEmpty(entity()),
            MetadataError::Conflict(_) => BrokerError::ModifiedConcurrently(entity()),
            e => e.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailable_metadata_hides_driver_text() {
        let e: BrokerError = MetadataError::Unavailable("pool timed out connecting to 10.0.0.7:5432".into()).into();
        assert_eq!(e.to_string(), "metadata store unavailable, retry later");
        assert!(e.cause().contains("10.0.0.7"), "the cause is kept for the log");
    }

    #[test]
    fn deleted_logs_and_trimmed_offsets_are_not_internal_errors() {
        assert!(matches!(BrokerError::from(StorageError::LogDeleted(4)), BrokerError::Deleted));
        let trimmed = StorageError::OffsetTrimmed { log_id: 4, offset: 1, earliest: 9 };
        assert!(matches!(BrokerError::from(trimmed), BrokerError::NotFound(_)));
    }

    #[test]
    fn entities_name_themselves() {
        let topic: TopicName = "persistent://a/b/c".parse().unwrap();
        let sub = SubscriptionName::new("s").unwrap();
        assert_eq!(
            BrokerError::NotFound(Entity::Subscription { topic, name: sub }).to_string(),
            "subscription s of topic persistent://a/b/c not found"
        );
    }
}
