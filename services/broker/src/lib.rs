//! The broker: loads topics and their partitions, routes published messages, runs the
//! subscription engine shared by every consume surface, applies policies (retention) and keeps
//! statistics. It owns the logic behind every API; the HTTP layer only parses and maps.

mod admin;
mod broker;
pub mod browse;
mod config;
mod consumer;
mod error;
mod messaging;
pub mod metrics;
pub mod offload;
mod partition;
pub mod policy;
pub mod ranges;
pub mod retention;
pub mod stats;
pub mod subscription;
mod topics;

pub use broker::{Broker, Topic};
pub use config::BrokerConfig;
pub use consumer::{ConsumerSession, DeadLetterPolicy, SubscribeOptions};
pub use error::{BrokerError, Result};
pub use messaging::{InitialPosition, KeyHashing, PendingPublish, PublishMessage, PullRequest, PulledMessage};
pub use partition::Partition;
pub use subscription::{CursorOp, Delivery, SubType};
pub use topics::StartPosition;
