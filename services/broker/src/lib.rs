//! The broker: loads topics and their partitions, routes published messages, runs the
//! subscription engine shared by every consume surface, applies policies (TTL, backlog quotas,
//! retention, offload, limits and rates of namespaces and topics) and keeps statistics. It owns the logic behind every API; the HTTP layer
//! only parses and maps.
//!
//! Shape: one shared `Context` (configuration, metadata store and policy cache, storage,
//! metrics, clock, authorizer, task tracker); one `TopicRegistry` that owns loading, unloading
//! and deleting topics; components with narrow handles — `Topics`, `Publisher`,
//! `Subscriptions`, `Admin`, `Offloader` — and background controllers (checkpoints, TTL and
//! quotas, retention, offload), each a pure decision plus a thin loop.

mod access;
mod admin;
mod broker;
pub mod browse;
pub mod bundles;
mod chunks;
pub mod clock;
mod clusters;
pub mod compaction;
mod config;
mod context;
pub mod controllers;
mod dedup;
pub mod durability;
mod encrypted;
mod error;
mod exclusive;
mod failover;
mod handover;
mod load_balance;
pub mod membership;
pub mod metrics;
mod partition;
pub mod policies;
mod publish;
pub mod ranges;
mod recovered_objects;
mod registry;
pub mod replication;
pub mod schema_compat;
pub mod schema_encode;
pub mod schemas;
mod session;
pub mod stats;
pub mod subscription;
mod subscriptions;
mod takeover;
pub mod tier;
mod topic_ops;
mod topics;

#[cfg(test)]
mod registry_tests;
#[cfg(test)]
mod testkit;

pub use access::Caller;
pub use admin::{Admin, validate_retention};
pub use broker::{BinaryUrls, Broker, BrokerDeps, Testing};
pub use clusters::{BrokerIsolation, broker_isolation};
pub use compaction::{CompactionRun, CompactionStats, CompactionStatus, Compactor};
pub use config::BrokerConfig;
pub use controllers::offload::{OffloadRun, OffloadStatus, Offloader};
pub use dedup::DedupConfig;
pub use error::{BrokerError, Entity, Result, Service};
pub use exclusive::{AccessMode, ProducerLabel};
pub use handover::Handover;
pub use magnetar_storage::ProducerStamp;
pub use partition::Partition;
pub use policies::admin::TopicPolicyAdmin;
pub use policies::enforce::Throttle;
pub use policies::resolve::{Applied, EffectivePolicies, Level};
pub use publish::{
    DETACH_WAIT, Detach, KeyHashing, PendingPublish, ProducerSlots, PublishMessage, Publisher, choose_partition,
};
pub use registry::Topic;
pub use session::{ConsumerSession, ConsumerShown, DeadLetterPolicy, SubscribeOptions, members_changed};
pub use subscription::{CursorOp, Delivery, SubType};
pub use subscriptions::{PullRequest, PulledMessage, StartPosition, Subscriptions, whole_topic_reader_start};
pub use takeover::{TakenPartition, Takeover};
pub use topic_ops::{
    BacklogAnalysis, CursorDetails, LedgerDetails, ManagedLedgerInfo, ManagedLedgerSegment, OfflineTopicStats, Position,
};
pub use topics::Topics;
