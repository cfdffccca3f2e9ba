//! Namespace policies acted on by the subscription engine: backlog quotas, topic
//! auto-creation, clearing backlogs, and message expiry (`expireMessages`).

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AuthContext, JsonBody, SubscriptionPath, TopicPath};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use magnetar_auth::Operation;
use magnetar_broker::BrokerError;
use magnetar_core::{BacklogQuota, NamespaceName};
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

fn ns(t: &str, n: &str) -> Result<NamespaceName, ApiError> {
    Ok(NamespaceName::parse_parts(t, n)?)
}

async fn get_backlog_quota_map(
    State(s): State<AppState>,
    auth: AuthContext,
    Path((t, n)): Path<(String, String)>,
) -> ApiResult<Json<BTreeMap<String, BacklogQuota>>> {
    auth.check(Operation::GetNamespacePolicies, &ns(&t, &n)?).await?;
    Ok(Json(s.broker.get_policies(&ns(&t, &n)?).await?.backlog_quota_map))
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
    Path((t, n)): Path<(String, String)>,
    Query(q): Query<QuotaType>,
    JsonBody(quota): JsonBody<BacklogQuota>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::SetNamespacePolicy, &ns(&t, &n)?).await?;
    let kind = quota_type(&q)?;
    if !POLICIES.contains(&quota.policy.as_str()) {
        return Err(ApiError::bad_request(format!(
            "invalid backlog quota policy `{}` (one of {})",
            quota.policy,
            POLICIES.join(", ")
        )));
    }
    s.broker
        .update_policies(&ns(&t, &n)?, |p| {
            // Pulsar refuses a size quota above the retention size: the backlog could never reach it.
            if let Some(r) = p.retention_policies
                && r.retention_size_in_mb >= 0
                && quota.limit_size > r.retention_size_in_mb * 1024 * 1024
            {
                return Err(BrokerError::PreconditionFailed(format!(
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
    Path((t, n)): Path<(String, String)>,
    Query(q): Query<QuotaType>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::SetNamespacePolicy, &ns(&t, &n)?).await?;
    let kind = quota_type(&q)?;
    s.broker
        .update_policies(&ns(&t, &n)?, |p| {
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
    Path((t, n)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    auth.check(Operation::GetNamespacePolicies, &ns(&t, &n)?).await?;
    let p = s.broker.get_policies(&ns(&t, &n)?).await?;
    Ok(Json(p.other.get(AUTO_CREATION).cloned().unwrap_or(Value::Null)))
}

/// Pulsar's `AutoTopicCreationOverride`: `{"allowAutoTopicCreation":true,
/// "topicType":"partitioned","defaultNumPartitions":2}`.
async fn set_auto_topic_creation(
    State(s): State<AppState>,
    auth: AuthContext,
    Path((t, n)): Path<(String, String)>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::SetNamespacePolicy, &ns(&t, &n)?).await?;
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
                return Err(BrokerError::PreconditionFailed(
                    "defaultNumPartitions must be positive for partitioned auto-creation".into(),
                )
                .into());
            }
        }
        other => return Err(BrokerError::PreconditionFailed(format!("invalid topicType `{other}`")).into()),
    }
    s.broker
        .update_policies(&ns(&t, &n)?, |p| {
            p.other.insert(AUTO_CREATION.into(), body.clone());
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_auto_topic_creation(
    State(s): State<AppState>,
    auth: AuthContext,
    Path((t, n)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::SetNamespacePolicy, &ns(&t, &n)?).await?;
    s.broker
        .update_policies(&ns(&t, &n)?, |p| {
            p.other.remove(AUTO_CREATION);
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Skips every subscription's backlog on every topic of the namespace (or one subscription).
async fn clear_backlog(s: &AppState, t: &str, n: &str, sub: Option<&str>) -> ApiResult<StatusCode> {
    let namespace = ns(t, n)?;
    for topic in s.broker.list_topics(&namespace).await? {
        let name: magnetar_core::TopicName = topic.parse()?;
        for name_sub in s.broker.list_subscriptions(&name).await? {
            if sub.is_none_or(|x| x == name_sub) {
                s.broker.skip_all(&name, &name_sub).await?;
            }
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn clear_namespace_backlog(
    State(s): State<AppState>,
    auth: AuthContext,
    Path((t, n)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::ClearBacklog, &ns(&t, &n)?).await?;
    clear_backlog(&s, &t, &n, None).await
}

async fn clear_namespace_subscription_backlog(
    State(s): State<AppState>,
    auth: AuthContext,
    Path((t, n, sub)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::ClearBacklog, &ns(&t, &n)?).await?;
    clear_backlog(&s, &t, &n, Some(&sub)).await
}

async fn unsubscribe_namespace(
    State(s): State<AppState>,
    auth: AuthContext,
    Path((t, n, sub)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::ClearBacklog, &ns(&t, &n)?).await?;
    let namespace = ns(&t, &n)?;
    for topic in s.broker.list_topics(&namespace).await? {
        let name: magnetar_core::TopicName = topic.parse()?;
        if s.broker.list_subscriptions(&name).await?.contains(&sub) {
            s.broker.delete_subscription(&name, &sub, false).await?;
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct ExpirePath {
    tenant: String,
    namespace: String,
    topic: String,
    subscription: String,
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
    Path(p): Path<ExpirePath>,
) -> ApiResult<StatusCode> {
    let (topic, sub) =
        SubscriptionPath { tenant: p.tenant, namespace: p.namespace, topic: p.topic, subscription: p.subscription }
            .name()?;
    auth.check(Operation::ExpireMessages, (&topic, &sub)).await?;
    s.broker.expire_messages(&topic, Some(&sub), seconds(&p.seconds)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct ExpireAllPath {
    tenant: String,
    namespace: String,
    topic: String,
    seconds: String,
}

async fn expire_all_messages(
    State(s): State<AppState>,
    auth: AuthContext,
    Path(p): Path<ExpireAllPath>,
) -> ApiResult<StatusCode> {
    let topic = TopicPath { tenant: p.tenant, namespace: p.namespace, topic: p.topic }.name()?;
    auth.check(Operation::ExpireMessages, &topic).await?;
    s.broker.expire_messages(&topic, None, seconds(&p.seconds)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
