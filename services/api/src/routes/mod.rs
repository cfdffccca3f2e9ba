#[macro_use]
mod policy_macros;

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::AuthContext;
use axum::http::StatusCode;
use magnetar_auth::Operation;
use magnetar_core::{NamespaceName, Policies};

/// The body of every handler that changes a namespace's policies: the caller may set them, the
/// change is applied (optimistically, retried on a concurrent update), 204.
pub(crate) async fn change_namespace_policies(
    s: &AppState,
    auth: &AuthContext,
    name: &NamespaceName,
    change: impl FnMut(&mut Policies) -> magnetar_broker::Result<()>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::SetNamespacePolicy, name).await?;
    s.broker.admin().update_policies(name, change).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Authorizes a change of a topic's own policies, applies it (validated, with the topic's loaded
/// partitions refreshed) and answers 204: what every topic-level policy setter does.
pub(crate) async fn change_topic_policies(
    s: &AppState,
    auth: &AuthContext,
    topic: &magnetar_core::TopicName,
    change: impl FnOnce(&mut magnetar_core::TopicPolicies) -> magnetar_broker::Result<()>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::SetTopicPolicy, topic).await?;
    s.broker.topic_policies().update(topic, change).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub mod anti_affinity;
pub mod auth_info;
pub mod broker_info;
pub mod brokers;
pub mod bundles;
pub mod cluster_admin;
pub mod clusters;
pub mod compaction;
pub mod console;
pub mod consume;
pub mod deduplication;
pub mod durability;
pub mod messages;
pub mod namespace_limits;
pub mod namespace_policies;
pub mod namespaces;
pub mod offload;
pub mod ops;
pub mod permissions;
pub mod persistence;
pub mod policies;
pub mod produce;
pub mod replication_policies;
pub mod schema_policies;
pub mod schemas;
pub mod service_accounts;
pub mod subscriptions;
pub mod tenants;
pub mod topic_ops;
pub mod topic_overrides;
pub mod topic_policies;
pub mod topics;
pub mod ws;
pub(crate) mod ws_consumer;
pub(crate) mod ws_producer;
