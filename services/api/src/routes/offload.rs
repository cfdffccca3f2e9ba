//! Offload (tiered storage) endpoints in Pulsar's shapes: namespace `offloadThreshold`,
//! `offloadThresholdInSeconds`, `offloadDeletionLagMs`, `offloadPolicies` /
//! `removeOffloadPolicies`; topic `PUT/GET .../offload`.
//!
//! As in Pulsar, the legacy fields and `offloadPolicies` are kept in step: setting a threshold
//! also sets it in `offloadPolicies` when those exist, and `offloadPolicies` fields win.

use crate::AppState;
use crate::error::{
    ApiResult, BadRequest, Conflict, Forbidden, MethodNotAllowed, NotFound, PayloadTooLarge, PreconditionFailed,
    Unauthorized, Unavailable,
};
use crate::extract::{AuthContext, JsonBody, MinusOneOrMore, NamespaceParam, TopicParam};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use magnetar_auth::Operation;
use magnetar_broker::BrokerError;
use magnetar_broker::OffloadStatus;
use magnetar_core::{MessageId, NamespaceName, Policies};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

const THRESHOLD: &str = "managedLedgerOffloadThresholdInBytes";
const THRESHOLD_SECS: &str = "managedLedgerOffloadThresholdInSeconds";
const DELETION_LAG: &str = "managedLedgerOffloadDeletionLagInMillis";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_offload_threshold, set_offload_threshold))
        .routes(routes!(get_offload_threshold_in_seconds, set_offload_threshold_in_seconds))
        .routes(routes!(get_offload_deletion_lag, set_offload_deletion_lag, remove_offload_deletion_lag))
        .routes(routes!(get_offload_policies, set_offload_policies))
        .routes(routes!(remove_offload_policies))
        .routes(routes!(get_offload_status, trigger_offload))
}

/// Pulsar's `OffloadPolicies`: Magnetar acts on the threshold and deletion-lag fields (each -1
/// or more, 412 otherwise) and keeps the others as sent.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OffloadPolicies {
    /// Bytes of a topic kept in the local tier before sealed segments move to object storage
    /// (-1 off, 0 as soon as sealed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = -1)]
    pub managed_ledger_offload_threshold_in_bytes: Option<i64>,
    /// Age in seconds after which sealed segments move (-1 off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = -1)]
    pub managed_ledger_offload_threshold_in_seconds: Option<i64>,
    /// Milliseconds a moved segment's local copy is kept (-1 kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = -1)]
    pub managed_ledger_offload_deletion_lag_in_millis: Option<i64>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

fn policy_field(p: &Policies, name: &str) -> Option<i64> {
    p.offload_policies.as_ref().and_then(|o| o.get(name)).and_then(Value::as_i64)
}

/// Sets (or with `None` removes) a field of `offloadPolicies` if the namespace has them.
fn sync_field(p: &mut Policies, name: &str, value: Option<i64>) {
    if let Some(Value::Object(o)) = p.offload_policies.as_mut() {
        match value {
            Some(v) => o.insert(name.to_string(), Value::from(v)),
            None => o.remove(name),
        };
    }
}

fn at_least_minus_one(what: &str, v: i64) -> Result<(), BrokerError> {
    if v < -1 {
        return Err(BrokerError::InvalidPolicy(format!("{what} must be -1 (disabled) or at least 0, got {v}")));
    }
    Ok(())
}

async fn read(s: &AppState, auth: &AuthContext, name: &NamespaceName) -> ApiResult<Policies> {
    auth.check(Operation::GetNamespacePolicies, name).await?;
    Ok(s.broker.admin().get_policies(name).await?)
}

async fn change(
    s: &AppState,
    auth: &AuthContext,
    name: &NamespaceName,
    f: impl FnMut(&mut Policies) -> Result<(), BrokerError>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::SetNamespacePolicy, name).await?;
    s.broker.admin().update_policies(name, f).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Get the offload threshold of a namespace
///
/// Bare bytes (-1 off, 0 as soon as a segment is sealed).
#[utoipa::path(get, path = "/admin/v2/namespaces/{tenant}/{namespace}/offloadThreshold", tag = "namespaces",
    params(NamespaceParam),
    responses((status = 200, description = "bytes", body = i64),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn get_offload_threshold(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<Json<i64>> {
    let p = read(&s, &auth, &name).await?;
    Ok(Json(policy_field(&p, THRESHOLD).unwrap_or(p.offload_threshold)))
}

/// Set the offload threshold of a namespace
///
/// Bare bytes, -1 or more.
#[utoipa::path(put, path = "/admin/v2/namespaces/{tenant}/{namespace}/offloadThreshold", tag = "namespaces",
    params(NamespaceParam), request_body(content = MinusOneOrMore, example = 1073741824),
    responses((status = 204, description = "set"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn set_offload_threshold(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    JsonBody(MinusOneOrMore(v)): JsonBody<MinusOneOrMore>,
) -> ApiResult<StatusCode> {
    at_least_minus_one("offloadThreshold", v)?;
    change(&s, &auth, &name, |p| {
        p.offload_threshold = v;
        sync_field(p, THRESHOLD, Some(v));
        Ok(())
    })
    .await
}

/// Get the offload age threshold of a namespace
///
/// Bare seconds (-1 off).
#[utoipa::path(get, path = "/admin/v2/namespaces/{tenant}/{namespace}/offloadThresholdInSeconds", tag = "namespaces",
    params(NamespaceParam),
    responses((status = 200, description = "seconds", body = i64),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn get_offload_threshold_in_seconds(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<Json<i64>> {
    let p = read(&s, &auth, &name).await?;
    Ok(Json(policy_field(&p, THRESHOLD_SECS).or(p.offload_threshold_in_seconds).unwrap_or(-1)))
}

/// Set the offload age threshold of a namespace
///
/// Bare seconds, -1 or more.
#[utoipa::path(put, path = "/admin/v2/namespaces/{tenant}/{namespace}/offloadThresholdInSeconds", tag = "namespaces",
    params(NamespaceParam), request_body(content = MinusOneOrMore, example = 3600),
    responses((status = 204, description = "set"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn set_offload_threshold_in_seconds(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    JsonBody(MinusOneOrMore(v)): JsonBody<MinusOneOrMore>,
) -> ApiResult<StatusCode> {
    at_least_minus_one("offloadThresholdInSeconds", v)?;
    change(&s, &auth, &name, |p| {
        p.offload_threshold_in_seconds = Some(v);
        sync_field(p, THRESHOLD_SECS, Some(v));
        Ok(())
    })
    .await
}

/// Get the deletion lag of offloaded segments' local copies
///
/// Bare milliseconds, or `null` when unset (the broker's default applies).
#[utoipa::path(get, path = "/admin/v2/namespaces/{tenant}/{namespace}/offloadDeletionLagMs", tag = "namespaces",
    params(NamespaceParam),
    responses((status = 200, description = "milliseconds, or null", body = Option<i64>),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn get_offload_deletion_lag(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<Json<Option<i64>>> {
    let p = read(&s, &auth, &name).await?;
    Ok(Json(policy_field(&p, DELETION_LAG).or(p.offload_deletion_lag_ms)))
}

/// Set the deletion lag of offloaded segments' local copies
///
/// Bare milliseconds, -1 (local copies kept) or more.
#[utoipa::path(put, path = "/admin/v2/namespaces/{tenant}/{namespace}/offloadDeletionLagMs", tag = "namespaces",
    params(NamespaceParam), request_body(content = MinusOneOrMore, example = 14400000),
    responses((status = 204, description = "set"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn set_offload_deletion_lag(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    JsonBody(MinusOneOrMore(v)): JsonBody<MinusOneOrMore>,
) -> ApiResult<StatusCode> {
    at_least_minus_one("offloadDeletionLagMs", v)?;
    change(&s, &auth, &name, |p| {
        p.offload_deletion_lag_ms = Some(v);
        sync_field(p, DELETION_LAG, Some(v));
        Ok(())
    })
    .await
}

/// Remove the deletion lag of offloaded segments' local copies
#[utoipa::path(delete, path = "/admin/v2/namespaces/{tenant}/{namespace}/offloadDeletionLagMs", tag = "namespaces",
    params(NamespaceParam),
    responses((status = 204, description = "removed"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unavailable))]
async fn remove_offload_deletion_lag(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<StatusCode> {
    change(&s, &auth, &name, |p| {
        p.offload_deletion_lag_ms = None;
        sync_field(p, DELETION_LAG, None);
        Ok(())
    })
    .await
}

/// Get the offload policies of a namespace
///
/// 204 without a body when none are set (Pulsar's null).
#[utoipa::path(get, path = "/admin/v2/namespaces/{tenant}/{namespace}/offloadPolicies", tag = "namespaces",
    params(NamespaceParam),
    responses((status = 200, description = "the policies", body = OffloadPolicies),
        (status = 204, description = "none set"),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn get_offload_policies(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<Response> {
    let p = read(&s, &auth, &name).await?;
    Ok(match p.offload_policies {
        Some(v) => Json(v).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// Set the offload policies of a namespace
#[utoipa::path(post, path = "/admin/v2/namespaces/{tenant}/{namespace}/offloadPolicies", tag = "namespaces",
    params(NamespaceParam), request_body = OffloadPolicies,
    responses((status = 204, description = "set"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn set_offload_policies(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    JsonBody(body): JsonBody<OffloadPolicies>,
) -> ApiResult<StatusCode> {
    let threshold = body.managed_ledger_offload_threshold_in_bytes;
    let secs = body.managed_ledger_offload_threshold_in_seconds;
    let lag = body.managed_ledger_offload_deletion_lag_in_millis;
    for (key, v) in [(THRESHOLD, threshold), (THRESHOLD_SECS, secs), (DELETION_LAG, lag)] {
        if let Some(v) = v {
            at_least_minus_one(key, v)?;
        }
    }
    let v = serde_json::to_value(&body).map_err(|e| BrokerError::Internal(e.to_string()))?;
    change(&s, &auth, &name, |p| {
        p.offload_policies = Some(v.clone());
        if let Some(x) = threshold {
            p.offload_threshold = x;
        }
        if secs.is_some() {
            p.offload_threshold_in_seconds = secs;
        }
        if lag.is_some() {
            p.offload_deletion_lag_ms = lag;
        }
        Ok(())
    })
    .await
}

/// Remove the offload policies of a namespace
#[utoipa::path(delete, path = "/admin/v2/namespaces/{tenant}/{namespace}/removeOffloadPolicies", tag = "namespaces",
    params(NamespaceParam),
    responses((status = 204, description = "removed"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unavailable))]
async fn remove_offload_policies(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<StatusCode> {
    change(&s, &auth, &name, |p| {
        p.offload_policies = None;
        Ok(())
    })
    .await
}

/// Offload a topic up to a message id
///
/// Offloads every sealed segment before the id, in the background; 409 while an earlier
/// request still runs.
#[utoipa::path(put, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/offload", tag = "persistent topic",
    params(TopicParam), request_body = MessageId,
    responses((status = 204, description = "started"),
        BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, Conflict, PreconditionFailed,
        PayloadTooLarge, Unavailable))]
async fn trigger_offload(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(name): TopicParam,
    JsonBody(id): JsonBody<MessageId>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::OffloadTopic, &name).await?;
    s.broker.offloader().trigger(&name, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Get the status of a topic's last offload request
#[utoipa::path(get, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/offload", tag = "persistent topic",
    params(TopicParam),
    responses((status = 200, description = "the status", body = OffloadStatus),
        BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, PreconditionFailed, Unavailable))]
async fn get_offload_status(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(name): TopicParam,
) -> ApiResult<Json<OffloadStatus>> {
    auth.check(Operation::GetOffloadStatus, &name).await?;
    Ok(Json(s.broker.offloader().status(&name).await?))
}
