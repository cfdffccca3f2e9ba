//! Topic-level overrides whose shapes are their own: backlog quotas by type
//! (`.../{topic}/backlogQuota`, `.../{topic}/backlogQuotaMap`), offload policies
//! (`.../{topic}/offloadPolicies`) and one subscription's dispatch rate
//! (`.../{topic}/{subscription}/dispatchRate`). Each inherits its namespace's value where the
//! topic sets none; `applied=true` answers the value in force.

use super::offload::OffloadPolicies;
use super::policies::QuotaTypeQuery;
use super::topic_policies::AppliedQuery;
use crate::AppState;
use crate::error::{
    ApiResult, BadRequest, Forbidden, NotFound, PayloadTooLarge, PreconditionFailed, Unauthorized, Unavailable,
};
use crate::extract::{AuthContext, JsonBody, Query, SubscriptionParam, TopicParam};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use magnetar_auth::Operation;
use magnetar_broker::BrokerError;
use magnetar_broker::Level;
use magnetar_core::{BacklogQuota, DispatchRate};
use std::collections::BTreeMap;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_topic_backlog_quota_map))
        .routes(routes!(set_topic_backlog_quota, remove_topic_backlog_quota))
        .routes(routes!(get_topic_offload_policies, set_topic_offload_policies, remove_topic_offload_policies))
        .routes(routes!(
            get_dispatch_rate_of_subscription,
            set_dispatch_rate_of_subscription,
            remove_dispatch_rate_of_subscription
        ))
}

/// Get the backlog quotas of a topic
///
/// The topic's own quotas by type; with `applied=true` the quotas in force (per type the topic's,
/// else its namespace's; empty: none).
#[utoipa::path(get, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/backlogQuotaMap",
    tag = "persistent topic", params(TopicParam, AppliedQuery),
    responses((status = 200, description = "quotas by type", body = BTreeMap<String, BacklogQuota>),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn get_topic_backlog_quota_map(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
    Query(q): Query<AppliedQuery>,
) -> ApiResult<Json<BTreeMap<String, BacklogQuota>>> {
    auth.check(Operation::GetTopicPolicy, &topic).await?;
    if q.applied {
        return Ok(Json(s.broker.topic_policies().effective(&topic).await?.backlog_quota_map.value));
    }
    Ok(Json(s.broker.topic_policies().get(&topic).await?.backlog_quota_map))
}

/// Set a backlog quota of a topic
///
/// `?backlogQuotaType=destination_storage|message_age` (default `destination_storage`). 412 when
/// a size quota exceeds the retention size set for the topic or its namespace.
#[utoipa::path(post, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/backlogQuota",
    tag = "persistent topic", params(TopicParam, QuotaTypeQuery), request_body = BacklogQuota,
    responses((status = 204, description = "set"),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn set_topic_backlog_quota(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
    Query(q): Query<QuotaTypeQuery>,
    JsonBody(quota): JsonBody<BacklogQuota>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::SetTopicPolicy, &topic).await?;
    let policies = s.broker.topic_policies();
    // As Pulsar: a size quota above the retention size set for the topic (its own, else its
    // namespace's) could never be reached.
    let retention = policies.effective(&topic).await?.retention_policies;
    let retention_set = retention.level != Level::Broker;
    let retention = retention.value;
    if retention_set
        && retention.retention_size_in_mb >= 0
        && quota.limit_size > retention.retention_size_in_mb * 1024 * 1024
    {
        return Err(BrokerError::InvalidPolicy(format!(
            "backlog quota limit {} bytes exceeds the topic's retention size of {} MB",
            quota.limit_size, retention.retention_size_in_mb
        ))
        .into());
    }
    let kind = q.backlog_quota_type.as_str();
    policies
        .update(&topic, |t| {
            t.backlog_quota_map.insert(kind.to_string(), quota);
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a backlog quota of a topic
///
/// `?backlogQuotaType=` names the quota (default `destination_storage`); the namespace's of that
/// type applies again.
#[utoipa::path(delete, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/backlogQuota",
    tag = "persistent topic", params(TopicParam, QuotaTypeQuery),
    responses((status = 204, description = "removed"),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn remove_topic_backlog_quota(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
    Query(q): Query<QuotaTypeQuery>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::SetTopicPolicy, &topic).await?;
    let kind = q.backlog_quota_type.as_str();
    s.broker
        .topic_policies()
        .update(&topic, |t| {
            t.backlog_quota_map.remove(kind);
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The topic's offload policies as stored, after Pulsar's bounds on the fields Magnetar acts on.
fn checked_offload(body: OffloadPolicies) -> Result<serde_json::Value, BrokerError> {
    for (name, v) in [
        ("managedLedgerOffloadThresholdInBytes", body.managed_ledger_offload_threshold_in_bytes),
        ("managedLedgerOffloadThresholdInSeconds", body.managed_ledger_offload_threshold_in_seconds),
        ("managedLedgerOffloadDeletionLagInMillis", body.managed_ledger_offload_deletion_lag_in_millis),
    ] {
        if let Some(v) = v
            && v < -1
        {
            return Err(BrokerError::InvalidPolicy(format!("{name} must be -1 (disabled) or at least 0, got {v}")));
        }
    }
    serde_json::to_value(&body).map_err(|e| BrokerError::Internal(e.to_string()))
}

topic_policy!(
    get_topic_offload_policies,
    set_topic_offload_policies,
    remove_topic_offload_policies,
    "/admin/v2/persistent/{tenant}/{namespace}/{topic}/offloadPolicies",
    OffloadPolicies,
    get = "Get the offload policies of a topic",
    set = "Set the offload policies of a topic (its threshold and deletion-lag fields override the namespace's, each -1 or more)",
    remove = "Remove the offload policies of a topic",
    own = |t| t.offload_policies.and_then(|v| serde_json::from_value(v).ok()),
    applied = |e| OffloadPolicies {
        managed_ledger_offload_threshold_in_bytes: Some(e.offload_policies.value.threshold_bytes),
        managed_ledger_offload_threshold_in_seconds: Some(e.offload_policies.value.threshold_seconds),
        managed_ledger_offload_deletion_lag_in_millis: Some(e.offload_policies.value.deletion_lag_ms),
        other: BTreeMap::new(),
    },
    write = |t, v| t.offload_policies = Some(checked_offload(v)?),
    clear = |t| t.offload_policies = None,
);

/// Get the dispatch rate of one subscription
///
/// The subscription's own rate (`null` when it sets none); with `applied=true` the rate in
/// force: its own, else the topic's subscription dispatch rate, else the namespace's, else the
/// broker's.
#[utoipa::path(get, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/{subscription}/dispatchRate",
    tag = "persistent topic", params(SubscriptionParam, AppliedQuery),
    responses((status = 200, description = "the rate, or null", body = Option<DispatchRate>),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn get_dispatch_rate_of_subscription(
    State(s): State<AppState>,
    auth: AuthContext,
    SubscriptionParam(topic, sub): SubscriptionParam,
    Query(q): Query<AppliedQuery>,
) -> ApiResult<Json<Option<DispatchRate>>> {
    auth.check(Operation::GetTopicPolicy, &topic).await?;
    if q.applied {
        let e = s.broker.topic_policies().effective(&topic).await?;
        return Ok(Json(Some(e.dispatch_rate_of_subscription(sub.as_str()).value)));
    }
    Ok(Json(s.broker.topic_policies().get(&topic).await?.subscription_dispatch_rate_of(sub.as_str())))
}

/// Set the dispatch rate of one subscription
///
/// Overrides the topic's and namespace's subscription dispatch rate for this subscription only.
#[utoipa::path(post, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/{subscription}/dispatchRate",
    tag = "persistent topic", params(SubscriptionParam), request_body = DispatchRate,
    responses((status = 204, description = "set"),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn set_dispatch_rate_of_subscription(
    State(s): State<AppState>,
    auth: AuthContext,
    SubscriptionParam(topic, sub): SubscriptionParam,
    JsonBody(rate): JsonBody<DispatchRate>,
) -> ApiResult<StatusCode> {
    super::change_topic_policies(&s, &auth, &topic, |t| {
        t.set_subscription_dispatch_rate(sub.as_str(), Some(rate));
        Ok(())
    })
    .await
}

/// Remove the dispatch rate of one subscription
#[utoipa::path(delete, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/{subscription}/dispatchRate",
    tag = "persistent topic", params(SubscriptionParam),
    responses((status = 204, description = "removed: the topic's subscription dispatch rate applies"),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn remove_dispatch_rate_of_subscription(
    State(s): State<AppState>,
    auth: AuthContext,
    SubscriptionParam(topic, sub): SubscriptionParam,
) -> ApiResult<StatusCode> {
    super::change_topic_policies(&s, &auth, &topic, |t| {
        t.set_subscription_dispatch_rate(sub.as_str(), None);
        Ok(())
    })
    .await
}
