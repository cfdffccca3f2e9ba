#[macro_use]
mod policy_macros;

pub mod auth_info;
pub mod broker_info;
pub mod clusters;
pub mod console;
pub mod consume;
pub mod messages;
pub mod namespace_limits;
pub mod namespace_policies;
pub mod namespaces;
pub mod offload;
pub mod ops;
pub mod permissions;
pub mod policies;
pub mod produce;
pub mod service_accounts;
pub mod subscriptions;
pub mod tenants;
pub mod topic_policies;
pub mod topics;
pub mod ws;
mod ws_consumer;
mod ws_producer;
