//! Namespace policies acted on by the subscription engine: backlog quotas, topic
//! auto-creation, clearing backlogs, and message expiry (`expireMessages`).

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AuthContext, JsonBody, NamespaceParam, SubscriptionParam, TopicParam};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use magnetar_auth::Operation;
use magnetar_broker::BrokerError;
use magnetar_core::{BacklogQuota, NamespaceName, SubscriptionName, TopicName};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

const POLICIES: [&str; 3] = ["producer_request_hold", "producer_exception", "consumer_backlog_eviction"];

pub fn router() -> Router<AppState> {
    let n = "/admin/v2/namespaces/{tenant}/{namespace}";
    Router::new()
        .route(&format!("{n}/backlogQuotaMap"), get(get_backlog_quota_map))
        .route(&format!("{n}/backlogQuota"), post(set_backlog_quota).delete(remove_backlog_quota))
        .route(
            &format!("{n}/autoTopicCreation"),
            get(get_auto_topic_creation).post(set_auto_topic_creation).delete(remove_auto_topic_creation),
        )
        .route(&format!("{n}/clearBacklog"), post(clear_namespace_backlog))
        .route(&format!("{n}/clearBacklog/{{subscription}}"), post(clear_namespace_subscription_backlog))
        .route(&format!("{n}/unsubscribe/{{subscription}}"), post(unsubscribe_namespace))
        .route(
            "/admin/v2/persistent/{tenant}/{namespace}/{topic}/subscription/{subscription}/expireMessages/{seconds}",
            post(expire_messages),
        )
        .route(
            "/admin/v2/persistent/{tenant}/{namespace}/{topic}/all_subscription/expireMessages/{seconds}",
            post(expire_all_messages),
        )
}

async fn get_backlog_quota_map(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<Json<BTreeMap<String, BacklogQuota>>> {
    auth.check(Operation::GetNamespacePolicies, &name).await?;
    Ok(Json(s.broker.admin().get_policies(&name).await?.backlog_quota_map))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct QuotaType {
    backlog_quota_type: Option<String>,
}

fn quota_type(q: &QuotaType) -> Result<String, ApiError> {
    match q.backlog_quota_type.as_deref().unwrap_or("destination_storage") {
        t @ ("destination_storage" | "message_age") => Ok(t.to_string()),
        other => Err(ApiError::bad_request(format!(
            "invalid backlogQuotaType `{other}` (destination_storage or message_age)"
        ))),
    }
}

async fn set_backlog_quota(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    Query(q): Query<QuotaType>,
    JsonBody(quota): JsonBody<BacklogQuota>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::SetNamespacePolicy, &name).await?;
    let kind = quota_type(&q)?;
    if !POLICIES.contains(&quota.policy.as_str()) {
        return Err(ApiError::bad_request(format!(
            "invalid backlog quota policy `{}` (one of {})",
            quota.policy,
            POLICIES.join(", ")
        )));
    }
    s.broker
        .admin()
        .update_policies(&name, |p| {
            // Pulsar refuses a size quota above the retention size: the backlog could never reach it.
            if let Some(r) = p.retention_policies
                && r.retention_size_in_mb >= 0
                && quota.limit_size > r.retention_size_in_mb * 1024 * 1024
            {
                return Err(BrokerError::InvalidPolicy(format!(
                    "backlog quota limit {} bytes exceeds the retention size of {} MB",
                    quota.limit_size, r.retention_size_in_mb
                )));
            }
            p.backlog_quota_map.insert(kind.clone(), quota.clone());
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_backlog_quota(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    Query(q): Query<QuotaType>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::SetNamespacePolicy, &name).await?;
    let kind = quota_type(&q)?;
    s.broker
        .admin()
        .update_policies(&name, |p| {
            p.backlog_quota_map.remove(&kind);
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

const AUTO_CREATION: &str = "autoTopicCreationOverride";

async fn get_auto_topic_creation(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<Json<Value>> {
    auth.check(Operation::GetNamespacePolicies, &name).await?;
    let p = s.broker.admin().get_policies(&name).await?;
    Ok(Json(p.other.get(AUTO_CREATION).cloned().unwrap_or(Value::Null)))
}

/// Pulsar's `AutoTopicCreationOverride`: `{"allowAutoTopicCreation":true,
/// "topicType":"partitioned","defaultNumPartitions":2}`.
async fn set_auto_topic_creation(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::SetNamespacePolicy, &name).await?;
    let allow = body.get("allowAutoTopicCreation").and_then(Value::as_bool);
    let kind = body.get("topicType").and_then(Value::as_str).unwrap_or("non-partitioned");
    if allow.is_none() {
        return Err(ApiError::bad_request("allowAutoTopicCreation (true or false) is required"));
    }
    match kind {
        "non-partitioned" => {}
        "partitioned" => {
            let n = body.get("defaultNumPartitions").and_then(Value::as_i64).unwrap_or(0);
            if n <= 0 {
                return Err(BrokerError::InvalidPolicy(
                    "defaultNumPartitions must be positive for partitioned auto-creation".into(),
                )
                .into());
            }
        }
        other => return Err(BrokerError::InvalidPolicy(format!("invalid topicType `{other}`")).into()),
    }
    s.broker
        .admin()
        .update_policies(&name, |p| {
            p.other.insert(AUTO_CREATION.into(), body.clone());
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_auto_topic_creation(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<StatusCode> {
    auth.check(Operation::SetNamespacePolicy, &name).await?;
    s.broker
        .admin()
        .update_policies(&name, |p| {
            p.other.remove(AUTO_CREATION);
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Skips every subscription's backlog on every topic of the namespace (or one subscription).
async fn clear_backlog(s: &AppState, namespace: &NamespaceName, sub: Option<&str>) -> ApiResult<StatusCode> {
    for topic in s.broker.topics().list(namespace).await? {
        let name: TopicName = topic.parse()?;
        for name_sub in s.broker.subscriptions().list(&name).await? {
            if sub.is_none_or(|x| x == name_sub) {
                s.broker.subscriptions().skip_all(&name, &SubscriptionName::new(name_sub)?).await?;
            }
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn clear_namespace_backlog(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<StatusCode> {
    auth.check(Operation::ClearBacklog, &name).await?;
    clear_backlog(&s, &name, None).await
}

#[derive(Deserialize)]
struct SubscriptionOnly {
    subscription: String,
}

async fn clear_namespace_subscription_backlog(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    Path(p): Path<SubscriptionOnly>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::ClearBacklog, &name).await?;
    clear_backlog(&s, &name, Some(&p.subscription)).await
}

async fn unsubscribe_namespace(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(namespace): NamespaceParam,
    Path(p): Path<SubscriptionOnly>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::ClearBacklog, &namespace).await?;
    let sub = SubscriptionName::new(p.subscription)?;
    for topic in s.broker.topics().list(&namespace).await? {
        let name: TopicName = topic.parse()?;
        if s.broker.subscriptions().list(&name).await?.iter().any(|n| n == sub.as_str()) {
            s.broker.subscriptions().delete(&name, &sub, false).await?;
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct SecondsPath {
    seconds: String,
}

fn seconds(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|s| *s >= 0)
        .ok_or_else(|| ApiError::bad_request(format!("invalid expiry time `{raw}` in seconds")))
}

async fn expire_messages(
    State(s): State<AppState>,
    auth: AuthContext,
    SubscriptionParam(topic, sub): SubscriptionParam,
    Path(p): Path<SecondsPath>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::ExpireMessages, (&topic, sub.as_str())).await?;
    s.broker.subscriptions().expire(&topic, Some(&sub), seconds(&p.seconds)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn expire_all_messages(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
    Path(p): Path<SecondsPath>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::ExpireMessages, &topic).await?;
    s.broker.subscriptions().expire(&topic, None, seconds(&p.seconds)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
