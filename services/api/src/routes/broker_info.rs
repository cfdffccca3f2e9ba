//! What the broker runs with and carries, in Pulsar's shapes:
//!
//! - `GET /admin/v2/brokers/configuration/runtime` → Pulsar's string→string map of the broker's
//!   settings that namespace policies fall back to (`defaultRetentionTimeInMinutes`, ...), so
//!   tools can tell an inherited value from one set on the namespace. Pulsar reserves it to
//!   superusers; it carries no secret here, so any authenticated role may read it.
//! - `GET /admin/v2/broker-stats/load-report` → Pulsar's `LoadReport` totals of this broker
//!   (`msgRateIn`, `msgRateOut`, `msgThroughputIn`, `msgThroughputOut`, `numTopics`,
//!   `numConsumers`, `numProducers`) plus Magnetar's storage split (`storageSize`,
//!   `offloadedStorageSize`, `localStorageSize`) and `msgBacklog`. Superusers only (it covers
//!   every tenant), as `/metrics`.

use crate::AppState;
use crate::error::{ApiResult, Forbidden, Unauthorized};
use crate::extract::AuthContext;
use axum::Json;
use axum::extract::State;
use magnetar_auth::{Operation, Resource};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_runtime_configuration)).routes(routes!(get_load_report))
}

/// The broker's runtime configuration
///
/// Pulsar's string map of the settings namespace policies fall back to, so a tool can tell an
/// inherited value from one set on the namespace.
#[utoipa::path(get, path = "/admin/v2/brokers/configuration/runtime", tag = "brokers",
    responses((status = 200, description = "setting name to value", body = BTreeMap<String, String>),
        Unauthorized, Forbidden))]
async fn get_runtime_configuration(
    State(s): State<AppState>,
    auth: AuthContext,
) -> ApiResult<Json<BTreeMap<&'static str, String>>> {
    auth.check(Operation::GetCluster, Resource::Cluster).await?;
    let c = s.broker.config();
    let h = &s.http;
    Ok(Json(BTreeMap::from([
        ("clusterName", c.cluster.clone()),
        ("advertisedAddress", c.advertised_address.clone()),
        ("defaultRetentionTimeInMinutes", c.default_retention_time_minutes.to_string()),
        ("defaultRetentionSizeInMB", c.default_retention_size_mb.to_string()),
        ("allowAutoTopicCreation", c.allow_auto_topic_creation.to_string()),
        // Auto-created topics are non-partitioned unless a namespace override says otherwise.
        ("allowAutoTopicCreationType", "non-partitioned".to_string()),
        ("defaultNumPartitions", "1".to_string()),
        ("maxNumPartitionsPerPartitionedTopic", c.max_partitions_per_topic.to_string()),
        ("maxMessageSize", c.max_message_bytes.to_string()),
        ("maxUnackedMessagesPerSubscription", c.max_unacked_per_subscription.to_string()),
        ("managedLedgerOffloadAutoTriggerSizeThresholdBytes", c.offload_threshold_bytes.to_string()),
        ("managedLedgerOffloadThresholdInSeconds", c.offload_threshold_seconds.to_string()),
        ("managedLedgerOffloadDeletionLagMs", c.offload_deletion_lag_ms.to_string()),
        ("authenticationEnabled", s.auth.enabled().to_string()),
        ("authorizationEnabled", s.auth.enabled().to_string()),
        ("subscriptionAuthMode", "None".to_string()),
        ("messageTTLInSeconds", "0".to_string()),
        ("backlogQuotaDefaultLimitBytes", "-1".to_string()),
        ("backlogQuotaDefaultLimitSecond", "-1".to_string()),
        ("httpMaxRequestSize", h.max_request_bytes.to_string()),
    ])))
}

/// This broker's load report
///
/// Pulsar's `LoadReport` totals plus the storage split between the local disk and the object
/// store. Superusers only.
#[utoipa::path(get, path = "/admin/v2/broker-stats/load-report", tag = "broker-stats",
    responses((status = 200, description = "totals of this broker", body = LoadReport), Unauthorized, Forbidden))]
async fn get_load_report(State(s): State<AppState>, auth: AuthContext) -> ApiResult<Json<LoadReport>> {
    auth.check(Operation::Metrics, Resource::Cluster).await?;
    let (each, topics) = s.broker.topics().loaded_stats();
    let total = magnetar_broker::stats::aggregate(each.iter());
    let consumers: usize = each.iter().flat_map(|t| t.subscriptions.values()).map(|s| s.consumers.len()).sum();
    let backlog: u64 = each.iter().flat_map(|t| t.subscriptions.values()).map(|s| s.msg_backlog).sum();
    let subscriptions: usize = each.iter().map(|t| t.subscriptions.len()).sum();
    Ok(Json(LoadReport {
        name: s.broker.broker_id().to_string(),
        broker_version_string: env!("CARGO_PKG_VERSION"),
        timestamp: magnetar_core::now_millis(),
        msg_rate_in: total.msg_rate_in,
        msg_rate_out: total.msg_rate_out,
        msg_throughput_in: total.msg_throughput_in,
        msg_throughput_out: total.msg_throughput_out,
        num_topics: topics,
        num_partitions: each.len(),
        num_subscriptions: subscriptions,
        num_consumers: consumers,
        num_producers: 0,
        msg_backlog: backlog,
        storage_size: total.storage_size,
        offloaded_storage_size: total.offloaded_storage_size,
        local_storage_size: total.storage_size.saturating_sub(total.offloaded_storage_size),
        bundle_stats: s.broker.load().bundle_stats,
    }))
}

/// Pulsar's `LoadReport` totals of one broker, with Magnetar's storage split, and the traffic
/// of its busiest bundles as it reports them to the tier's leader.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct LoadReport {
    name: String,
    broker_version_string: &'static str,
    timestamp: i64,
    msg_rate_in: f64,
    msg_rate_out: f64,
    msg_throughput_in: f64,
    msg_throughput_out: f64,
    num_topics: usize,
    num_partitions: usize,
    num_subscriptions: usize,
    num_consumers: usize,
    num_producers: usize,
    msg_backlog: u64,
    /// Bytes stored, each segment once whichever tiers hold it.
    storage_size: u64,
    /// Bytes in the object store.
    offloaded_storage_size: u64,
    /// Bytes on the broker's disk only.
    local_storage_size: u64,
    /// The busiest bundles' traffic by `tenant/namespace/range`, measured every 5 s (Pulsar's
    /// `bundleStats`).
    bundle_stats: std::collections::BTreeMap<String, magnetar_metadata::BundleStats>,
}
