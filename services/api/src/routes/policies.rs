//! Namespace policies acted on by the subscription engine: backlog quotas, topic
//! auto-creation, clearing backlogs, and message expiry (`expireMessages`).

use crate::AppState;
use crate::error::{
    ApiError, ApiResult, BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, PreconditionFailed, Unauthorized,
    Unavailable,
};
use crate::extract::{
    AuthContext, JsonBody, NamespaceParam, Path, Query, SubscriptionNameParam, SubscriptionParam, TopicParam,
};
use crate::fanout::Whole;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use magnetar_auth::Operation;
use magnetar_broker::BrokerError;
use magnetar_core::{BacklogQuota, NamespaceName, SubscriptionName};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_backlog_quota_map))
        .routes(routes!(set_backlog_quota, remove_backlog_quota))
        .routes(routes!(get_auto_topic_creation, set_auto_topic_creation, remove_auto_topic_creation))
        .routes(routes!(clear_namespace_backlog))
        .routes(routes!(clear_namespace_subscription_backlog))
        .routes(routes!(unsubscribe_namespace))
        .routes(routes!(expire_messages))
        .routes(routes!(expire_all_messages))
}

/// Get the backlog quotas of a namespace
///
/// By quota type (`destination_storage`, `message_age`).
#[utoipa::path(get, path = "/admin/v2/namespaces/{tenant}/{namespace}/backlogQuotaMap", tag = "namespaces",
    params(NamespaceParam),
    responses((status = 200, description = "quotas by type", body = BTreeMap<String, BacklogQuota>),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn get_backlog_quota_map(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<Json<BTreeMap<String, BacklogQuota>>> {
    auth.check(Operation::GetNamespacePolicies, &name).await?;
    Ok(Json(s.broker.admin().get_policies(&name).await?.backlog_quota_map))
}

/// What a backlog quota limits: the backlog's size or its oldest message's age.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BacklogQuotaType {
    #[default]
    DestinationStorage,
    MessageAge,
}

impl BacklogQuotaType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            BacklogQuotaType::DestinationStorage => "destination_storage",
            BacklogQuotaType::MessageAge => "message_age",
        }
    }
}

#[derive(Deserialize, Default, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub(crate) struct QuotaTypeQuery {
    /// The quota to set or remove (default `destination_storage`).
    #[serde(default)]
    #[param(inline)]
    pub(crate) backlog_quota_type: BacklogQuotaType,
}

/// Set a backlog quota of a namespace
///
/// 412 when a size quota exceeds the namespace's retention size.
#[utoipa::path(post, path = "/admin/v2/namespaces/{tenant}/{namespace}/backlogQuota", tag = "namespaces",
    params(NamespaceParam, QuotaTypeQuery), request_body = BacklogQuota,
    responses((status = 204, description = "set"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn set_backlog_quota(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    Query(q): Query<QuotaTypeQuery>,
    JsonBody(quota): JsonBody<BacklogQuota>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::SetNamespacePolicy, &name).await?;
    let kind = q.backlog_quota_type.as_str();
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
            p.backlog_quota_map.insert(kind.to_string(), quota.clone());
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a backlog quota of a namespace
#[utoipa::path(delete, path = "/admin/v2/namespaces/{tenant}/{namespace}/backlogQuota", tag = "namespaces",
    params(NamespaceParam, QuotaTypeQuery),
    responses((status = 204, description = "removed"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unavailable))]
async fn remove_backlog_quota(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    Query(q): Query<QuotaTypeQuery>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::SetNamespacePolicy, &name).await?;
    let kind = q.backlog_quota_type.as_str();
    s.broker
        .admin()
        .update_policies(&name, |p| {
            p.backlog_quota_map.remove(kind);
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

const AUTO_CREATION: &str = "autoTopicCreationOverride";

/// Pulsar's `AutoTopicCreationOverride`; other fields are kept as sent.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoTopicCreationOverride {
    /// Whether producers and consumers may create missing topics of the namespace.
    pub allow_auto_topic_creation: bool,
    /// `non-partitioned` (default) or `partitioned` (412 otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^(non-partitioned|partitioned)$", example = "partitioned")]
    pub topic_type: Option<String>,
    /// Partitions of a topic created `partitioned`; positive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub default_num_partitions: Option<i64>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// Get the topic auto-creation override of a namespace
///
/// `null` when none is set (the broker's `allow_auto_topic_creation` applies).
#[utoipa::path(get, path = "/admin/v2/namespaces/{tenant}/{namespace}/autoTopicCreation", tag = "namespaces",
    params(NamespaceParam),
    responses((status = 200, description = "the override, or null", body = Option<AutoTopicCreationOverride>),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn get_auto_topic_creation(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<Json<Value>> {
    auth.check(Operation::GetNamespacePolicies, &name).await?;
    let p = s.broker.admin().get_policies(&name).await?;
    Ok(Json(p.other.get(AUTO_CREATION).cloned().unwrap_or(Value::Null)))
}

/// Set the topic auto-creation override of a namespace
#[utoipa::path(post, path = "/admin/v2/namespaces/{tenant}/{namespace}/autoTopicCreation", tag = "namespaces",
    params(NamespaceParam), request_body = AutoTopicCreationOverride,
    responses((status = 204, description = "set"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn set_auto_topic_creation(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    JsonBody(body): JsonBody<AutoTopicCreationOverride>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::SetNamespacePolicy, &name).await?;
    match body.topic_type.as_deref().unwrap_or("non-partitioned") {
        "non-partitioned" => {}
        "partitioned" => {
            if body.default_num_partitions.unwrap_or(0) <= 0 {
                return Err(BrokerError::InvalidPolicy(
                    "defaultNumPartitions must be positive for partitioned auto-creation".into(),
                )
                .into());
            }
        }
        other => return Err(BrokerError::InvalidPolicy(format!("invalid topicType `{other}`")).into()),
    }
    let value = serde_json::to_value(&body).map_err(|e| BrokerError::Internal(e.to_string()))?;
    s.broker
        .admin()
        .update_policies(&name, |p| {
            p.other.insert(AUTO_CREATION.into(), value.clone());
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove the topic auto-creation override of a namespace
#[utoipa::path(delete, path = "/admin/v2/namespaces/{tenant}/{namespace}/autoTopicCreation", tag = "namespaces",
    params(NamespaceParam),
    responses((status = 204, description = "removed"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unavailable))]
async fn remove_auto_topic_creation(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<StatusCode> {
    super::change_namespace_policies(&s, &auth, &name, |p| {
        p.other.remove(AUTO_CREATION);
        Ok(())
    })
    .await
}

/// Skips every subscription's backlog on every topic of the namespace (or one subscription).
async fn clear_backlog(
    s: &AppState,
    namespace: &NamespaceName,
    sub: Option<&SubscriptionName>,
) -> ApiResult<StatusCode> {
    s.broker.subscriptions().clear_namespace_backlog(s.broker.topics(), namespace, None, sub).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Clear the backlog of every subscription in a namespace
#[utoipa::path(post, path = "/admin/v2/namespaces/{tenant}/{namespace}/clearBacklog", tag = "namespaces",
    params(NamespaceParam),
    responses((status = 204, description = "cleared"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unavailable))]
async fn clear_namespace_backlog(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<StatusCode> {
    auth.check(Operation::ClearBacklog, &name).await?;
    clear_backlog(&s, &name, None).await
}

/// Clear one subscription's backlog on every topic of a namespace
#[utoipa::path(post, path = "/admin/v2/namespaces/{tenant}/{namespace}/clearBacklog/{subscription}",
    tag = "namespaces", params(NamespaceParam, SubscriptionNameParam),
    responses((status = 204, description = "cleared"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unavailable))]
async fn clear_namespace_subscription_backlog(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    SubscriptionNameParam(sub): SubscriptionNameParam,
) -> ApiResult<StatusCode> {
    auth.check(Operation::ClearBacklog, &name).await?;
    clear_backlog(&s, &name, Some(&sub)).await
}

/// Delete a subscription from every topic of a namespace
#[utoipa::path(post, path = "/admin/v2/namespaces/{tenant}/{namespace}/unsubscribe/{subscription}",
    tag = "namespaces", params(NamespaceParam, SubscriptionNameParam),
    responses((status = 204, description = "deleted"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unavailable))]
async fn unsubscribe_namespace(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(namespace): NamespaceParam,
    SubscriptionNameParam(sub): SubscriptionNameParam,
) -> ApiResult<StatusCode> {
    auth.check(Operation::ClearBacklog, &namespace).await?;
    s.broker.subscriptions().unsubscribe_namespace(s.broker.topics(), &namespace, None, &sub).await?;
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

/// Expire the messages of a subscription older than N seconds
#[utoipa::path(post,
    path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/subscription/{subscription}/expireMessages/{seconds}",
    tag = "persistent topic",
    params(SubscriptionParam, ("seconds" = u64, Path, description = "age in seconds")),
    responses((status = 204, description = "expired"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unavailable))]
async fn expire_messages(
    State(s): State<AppState>,
    auth: AuthContext,
    SubscriptionParam(topic, sub): SubscriptionParam,
    Path(p): Path<SecondsPath>,
    whole: Option<Extension<Whole>>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::ExpireMessages, (&topic, sub.as_str())).await?;
    if let Some(Extension(whole)) = whole {
        crate::fanout::admin::expire(&s, &whole, Some(&sub), seconds(&p.seconds)?).await?;
        return Ok(StatusCode::NO_CONTENT);
    }
    s.broker.subscriptions().expire(&topic, Some(&sub), seconds(&p.seconds)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Expire the messages of every subscription older than N seconds
#[utoipa::path(post, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/all_subscription/expireMessages/{seconds}",
    tag = "persistent topic",
    params(TopicParam, ("seconds" = u64, Path, description = "age in seconds")),
    responses((status = 204, description = "expired"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unavailable))]
async fn expire_all_messages(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
    Path(p): Path<SecondsPath>,
    whole: Option<Extension<Whole>>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::ExpireMessages, &topic).await?;
    if let Some(Extension(whole)) = whole {
        crate::fanout::admin::expire(&s, &whole, None, seconds(&p.seconds)?).await?;
        return Ok(StatusCode::NO_CONTENT);
    }
    s.broker.subscriptions().expire(&topic, None, seconds(&p.seconds)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
