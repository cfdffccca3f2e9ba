//! Subscription administration under `/admin/v2/persistent/.../{topic}/subscription...`.

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AuthContext, ForceQuery, OptionalJsonBody, SubscriptionParam, TopicParam};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use magnetar_auth::Operation;
use magnetar_broker::StartPosition;
use magnetar_core::MessageId;
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    let s = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/subscription/{subscription}";
    Router::new()
        .route("/admin/v2/persistent/{tenant}/{namespace}/{topic}/subscriptions", get(list_subscriptions))
        .route(s, put(create_subscription).delete(delete_subscription))
        .route(&format!("{s}/skip/{{n}}"), post(skip_messages))
        .route(&format!("{s}/skip_all"), post(skip_all))
        .route(&format!("{s}/resetcursor/{{timestamp}}"), post(reset_cursor_to_time))
        .route(&format!("{s}/resetcursor"), post(reset_cursor_to_id))
        .route(&format!("{s}/position/{{n}}"), get(peek_message))
}

async fn list_subscriptions(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
) -> ApiResult<Json<Vec<String>>> {
    auth.check(Operation::ListSubscriptions, &topic).await?;
    Ok(Json(s.broker.subscriptions().list(&topic).await?))
}

/// Pulsar's `ResetCursorData` / `MessageIdImpl` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PositionBody {
    ledger_id: i64,
    entry_id: i64,
    #[serde(default = "minus_one")]
    partition_index: i32,
    #[serde(default)]
    is_excluded: bool,
}

fn minus_one() -> i32 {
    -1
}

impl PositionBody {
    fn id(&self) -> MessageId {
        MessageId {
            ledger_id: self.ledger_id,
            entry_id: self.entry_id,
            partition_index: self.partition_index,
            batch_index: -1,
        }
    }
}

async fn create_subscription(
    State(s): State<AppState>,
    auth: AuthContext,
    SubscriptionParam(topic, sub): SubscriptionParam,
    OptionalJsonBody(body): OptionalJsonBody<PositionBody>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::CreateSubscription, (&topic, sub.as_str())).await?;
    let start = body.map(|b| StartPosition::from_message_id(&b.id())).unwrap_or(StartPosition::Latest);
    s.broker.subscriptions().create(&topic, &sub, start).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_subscription(
    State(s): State<AppState>,
    auth: AuthContext,
    SubscriptionParam(topic, sub): SubscriptionParam,
    Query(q): Query<ForceQuery>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::DeleteSubscription, (&topic, sub.as_str())).await?;
    s.broker.subscriptions().delete(&topic, &sub, q.force).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct CountPath {
    n: String,
}

async fn skip_messages(
    State(s): State<AppState>,
    auth: AuthContext,
    SubscriptionParam(topic, sub): SubscriptionParam,
    Path(p): Path<CountPath>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::SkipMessages, (&topic, sub.as_str())).await?;
    let n: u64 =
        p.n.parse().map_err(|_| ApiError::bad_request(format!("invalid number of messages to skip `{}`", p.n)))?;
    s.broker.subscriptions().skip(&topic, &sub, n).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn skip_all(
    State(s): State<AppState>,
    auth: AuthContext,
    SubscriptionParam(topic, sub): SubscriptionParam,
) -> ApiResult<StatusCode> {
    auth.check(Operation::SkipMessages, (&topic, sub.as_str())).await?;
    s.broker.subscriptions().skip_all(&topic, &sub).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct TimestampPath {
    timestamp: String,
}

async fn reset_cursor_to_time(
    State(s): State<AppState>,
    auth: AuthContext,
    SubscriptionParam(topic, sub): SubscriptionParam,
    Path(p): Path<TimestampPath>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::ResetCursor, (&topic, sub.as_str())).await?;
    let ts: i64 =
        p.timestamp.parse().map_err(|_| ApiError::bad_request(format!("invalid timestamp `{}`", p.timestamp)))?;
    s.broker.subscriptions().reset_to_time(&topic, &sub, ts).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn reset_cursor_to_id(
    State(s): State<AppState>,
    auth: AuthContext,
    SubscriptionParam(topic, sub): SubscriptionParam,
    OptionalJsonBody(body): OptionalJsonBody<PositionBody>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::ResetCursor, (&topic, sub.as_str())).await?;
    let body =
        body.ok_or_else(|| ApiError::bad_request("expected a message id body {\"ledgerId\":L,\"entryId\":E}"))?;
    s.broker.subscriptions().reset_to_id(&topic, &sub, &body.id(), body.is_excluded).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Raw payload with Pulsar's `X-Pulsar-*` headers.
async fn peek_message(
    State(s): State<AppState>,
    auth: AuthContext,
    SubscriptionParam(topic, sub): SubscriptionParam,
    Path(p): Path<CountPath>,
) -> ApiResult<Response> {
    auth.check(Operation::PeekMessages, (&topic, sub.as_str())).await?;
    let n: u64 = p.n.parse().map_err(|_| ApiError::bad_request(format!("invalid message position `{}`", p.n)))?;
    let m = s.broker.subscriptions().peek(&topic, &sub, n).await?;
    let mut headers = HeaderMap::new();
    let mut put = |name: &str, value: String| {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            headers.insert(n, v);
        }
    };
    put("X-Pulsar-Message-ID", format!("{}:{}", m.id.ledger_id, m.id.entry_id));
    put("X-Pulsar-publish-time", magnetar_core::time::format_rfc3339(m.record.publish_time));
    if let Some(t) = m.record.event_time {
        put("X-Pulsar-event-time", magnetar_core::time::format_rfc3339(t));
    }
    if let Some(k) = &m.record.key {
        put("X-Pulsar-partition-key", k.clone());
    }
    for (k, v) in &m.record.properties {
        put(&format!("X-Pulsar-PROPERTY-{k}"), v.clone());
    }
    let props: std::collections::BTreeMap<_, _> = m.record.properties.iter().cloned().collect();
    put("X-Pulsar-Property", serde_json::to_string(&props).unwrap_or_default());
    headers.insert("content-type", HeaderValue::from_static("application/octet-stream"));
    Ok((headers, m.record.payload).into_response())
}
