//! The broker's background controllers. Each is a pure decision over a snapshot (`plan`,
//! `deletable_before`, `exceeded_quota`) plus a thin loop that applies it to the loaded
//! partitions: cursor checkpoints, message TTL and backlog quotas, retention, offload, and the
//! life policies (inactive topics, expired subscriptions).

pub mod checkpoint;
pub mod enforcement;
pub mod lifecycle;
pub mod offload;
pub mod retention;
