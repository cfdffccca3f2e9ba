//! Offload (tiered storage) endpoints in Pulsar's shapes: namespace `offloadThreshold`,
//! `offloadThresholdInSeconds`, `offloadDeletionLagMs`, `offloadPolicies` /
//! `removeOffloadPolicies`; topic `PUT/GET .../offload`.
//!
//! As in Pulsar, the legacy fields and `offloadPolicies` are kept in step: setting a threshold
//! also sets it in `offloadPolicies` when those exist, and `offloadPolicies` fields win.

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{AuthContext, JsonBody, NamespaceParam, TopicParam};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use magnetar_auth::Operation;
use magnetar_broker::BrokerError;
use magnetar_broker::OffloadStatus;
use magnetar_core::{MessageId, NamespaceName, Policies};
use serde_json::Value;

const THRESHOLD: &str = "managedLedgerOffloadThresholdInBytes";
const THRESHOLD_SECS: &str = "managedLedgerOffloadThresholdInSeconds";
const DELETION_LAG: &str = "managedLedgerOffloadDeletionLagInMillis";

pub fn router() -> Router<AppState> {
    let ns = "/admin/v2/namespaces/{tenant}/{namespace}";
    Router::new()
        .route(&format!("{ns}/offloadThreshold"), get(get_offload_threshold).put(set_offload_threshold))
        .route(
            &format!("{ns}/offloadThresholdInSeconds"),
            get(get_offload_threshold_in_seconds).put(set_offload_threshold_in_seconds),
        )
        .route(
            &format!("{ns}/offloadDeletionLagMs"),
            get(get_offload_deletion_lag).put(set_offload_deletion_lag).delete(remove_offload_deletion_lag),
        )
        .route(&format!("{ns}/offloadPolicies"), get(get_offload_policies).post(set_offload_policies))
        .route(&format!("{ns}/removeOffloadPolicies"), delete(remove_offload_policies))
        .route(
            "/admin/v2/persistent/{tenant}/{namespace}/{topic}/offload",
            get(get_offload_status).put(trigger_offload),
        )
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

async fn get_offload_threshold(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<Json<i64>> {
    let p = read(&s, &auth, &name).await?;
    Ok(Json(policy_field(&p, THRESHOLD).unwrap_or(p.offload_threshold)))
}

async fn set_offload_threshold(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    JsonBody(v): JsonBody<i64>,
) -> ApiResult<StatusCode> {
    at_least_minus_one("offloadThreshold", v)?;
    change(&s, &auth, &name, |p| {
        p.offload_threshold = v;
        sync_field(p, THRESHOLD, Some(v));
        Ok(())
    })
    .await
}

async fn get_offload_threshold_in_seconds(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<Json<i64>> {
    let p = read(&s, &auth, &name).await?;
    Ok(Json(policy_field(&p, THRESHOLD_SECS).or(p.offload_threshold_in_seconds).unwrap_or(-1)))
}

async fn set_offload_threshold_in_seconds(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    JsonBody(v): JsonBody<i64>,
) -> ApiResult<StatusCode> {
    at_least_minus_one("offloadThresholdInSeconds", v)?;
    change(&s, &auth, &name, |p| {
        p.offload_threshold_in_seconds = Some(v);
        sync_field(p, THRESHOLD_SECS, Some(v));
        Ok(())
    })
    .await
}

async fn get_offload_deletion_lag(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<Json<Option<i64>>> {
    let p = read(&s, &auth, &name).await?;
    Ok(Json(policy_field(&p, DELETION_LAG).or(p.offload_deletion_lag_ms)))
}

async fn set_offload_deletion_lag(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    JsonBody(v): JsonBody<i64>,
) -> ApiResult<StatusCode> {
    at_least_minus_one("offloadDeletionLagMs", v)?;
    change(&s, &auth, &name, |p| {
        p.offload_deletion_lag_ms = Some(v);
        sync_field(p, DELETION_LAG, Some(v));
        Ok(())
    })
    .await
}

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

/// The namespace's `OffloadPolicies`; 204 without a body when none are set (Pulsar's null).
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

async fn set_offload_policies(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    JsonBody(v): JsonBody<Value>,
) -> ApiResult<StatusCode> {
    let Value::Object(o) = &v else {
        return Err(BrokerError::InvalidArgument("offloadPolicies must be a JSON object".into()).into());
    };
    for key in [THRESHOLD, THRESHOLD_SECS, DELETION_LAG] {
        match o.get(key) {
            None | Some(Value::Null) => {}
            Some(x) => match x.as_i64() {
                Some(n) => at_least_minus_one(key, n)?,
                None => return Err(BrokerError::InvalidArgument(format!("{key} must be an integer")).into()),
            },
        }
    }
    let get = |k: &str| o.get(k).and_then(Value::as_i64);
    let (threshold, secs, lag) = (get(THRESHOLD), get(THRESHOLD_SECS), get(DELETION_LAG));
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

/// `PUT .../offload` with a MessageId: offloads every sealed segment before it, in the
/// background; 409 while an earlier request still runs.
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

async fn get_offload_status(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(name): TopicParam,
) -> ApiResult<Json<OffloadStatus>> {
    auth.check(Operation::GetOffloadStatus, &name).await?;
    Ok(Json(s.broker.offloader().status(&name).await?))
}
