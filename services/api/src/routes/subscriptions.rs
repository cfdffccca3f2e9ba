//! Subscription administration under `/admin/v2/persistent/.../{topic}/subscription...`.

use crate::AppState;
use crate::error::{
    ApiError, ApiResult, BadRequest, Conflict, Forbidden, MethodNotAllowed, NotFound, PayloadTooLarge,
    PreconditionFailed, Unauthorized, Unavailable,
};
use crate::extract::{AuthContext, ForceQuery, OptionalJsonBody, Path, Query, SubscriptionParam, TopicParam};
use crate::fanout::{self, Whole};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use magnetar_auth::Operation;
use magnetar_broker::StartPosition;
use magnetar_core::MessageId;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_subscriptions))
        .routes(routes!(create_subscription, delete_subscription))
        .routes(routes!(skip_messages))
        .routes(routes!(skip_all))
        .routes(routes!(reset_cursor_to_time))
        .routes(routes!(reset_cursor_to_id))
        .routes(routes!(peek_message))
}

/// List the subscriptions of a topic
#[utoipa::path(get, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/subscriptions",
    tag = "persistent topic", params(TopicParam),
    responses((status = 200, description = "subscription names", body = [String]),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn list_subscriptions(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
    whole: Option<Extension<Whole>>,
) -> ApiResult<Json<Vec<String>>> {
    auth.check(Operation::ListSubscriptions, &topic).await?;
    if let Some(Extension(whole)) = whole {
        return Ok(Json(fanout::admin::list_subscriptions(&s, &whole).await?));
    }
    Ok(Json(s.broker.subscriptions().list(&topic).await?))
}

/// Pulsar's `ResetCursorData` / `MessageIdImpl` body: a position in the topic.
#[derive(Debug, Deserialize, serde::Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ResetCursorData)]
pub(crate) struct PositionBody {
    ledger_id: i64,
    entry_id: i64,
    /// -1 when the topic is not partitioned.
    #[serde(default = "minus_one")]
    #[schema(default = -1)]
    partition_index: i32,
    /// The message's index in its batch; -1 (or absent) for the entry itself.
    #[serde(default = "minus_one")]
    #[schema(default = -1)]
    batch_index: i32,
    /// Start after the message rather than at it.
    #[serde(default)]
    pub(crate) is_excluded: bool,
}

fn minus_one() -> i32 {
    -1
}

impl PositionBody {
    pub(crate) fn id(&self) -> MessageId {
        MessageId {
            ledger_id: self.ledger_id,
            entry_id: self.entry_id,
            partition_index: self.partition_index,
            batch_index: self.batch_index.max(-1),
        }
    }
}

/// `?replicated=` is accepted for Pulsar's clients; subscriptions are never replicated.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct ReplicatedQuery {
    replicated: Option<bool>,
}

/// Create a subscription
///
/// At the given position, or at the end of the topic without a body.
#[utoipa::path(put, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/subscription/{subscription}", tag = "persistent topic",
    params(SubscriptionParam, ReplicatedQuery), request_body = Option<PositionBody>,
    responses((status = 204, description = "created"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn create_subscription(
    State(s): State<AppState>,
    auth: AuthContext,
    SubscriptionParam(topic, sub): SubscriptionParam,
    Query(_): Query<ReplicatedQuery>,
    whole: Option<Extension<Whole>>,
    OptionalJsonBody(body): OptionalJsonBody<PositionBody>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::CreateSubscription, (&topic, sub.as_str())).await?;
    if let Some(Extension(whole)) = whole {
        fanout::admin::create_subscription(&s, &whole, &sub, body).await?;
        return Ok(StatusCode::NO_CONTENT);
    }
    let start = body.map(|b| StartPosition::from_message_id(&b.id())).unwrap_or(StartPosition::Latest);
    s.broker.subscriptions().create(&topic, &sub, start).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete a subscription
///
/// 412 while consumers are connected, unless `force`.
#[utoipa::path(delete, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/subscription/{subscription}", tag = "persistent topic",
    params(SubscriptionParam, ForceQuery),
    responses((status = 204, description = "deleted"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unavailable))]
async fn delete_subscription(
    State(s): State<AppState>,
    auth: AuthContext,
    SubscriptionParam(topic, sub): SubscriptionParam,
    Query(q): Query<ForceQuery>,
    whole: Option<Extension<Whole>>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::DeleteSubscription, (&topic, sub.as_str())).await?;
    if let Some(Extension(whole)) = whole {
        fanout::admin::delete_subscription(&s, &whole, &sub, q.force).await?;
        return Ok(StatusCode::NO_CONTENT);
    }
    s.broker.subscriptions().delete(&topic, &sub, q.force).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct CountPath {
    n: String,
}

/// Skip messages of a subscription
#[utoipa::path(post, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/subscription/{subscription}/skip/{n}", tag = "persistent topic",
    params(SubscriptionParam, ("n" = u64, Path, description = "number of messages")),
    responses((status = 204, description = "skipped"),
        BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, Conflict, PreconditionFailed, Unavailable))]
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

/// Skip every message of a subscription (clear its backlog)
#[utoipa::path(post, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/subscription/{subscription}/skip_all", tag = "persistent topic", params(SubscriptionParam),
    responses((status = 204, description = "skipped"),
        BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, Conflict, PreconditionFailed, Unavailable))]
async fn skip_all(
    State(s): State<AppState>,
    auth: AuthContext,
    SubscriptionParam(topic, sub): SubscriptionParam,
    whole: Option<Extension<Whole>>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::SkipMessages, (&topic, sub.as_str())).await?;
    if let Some(Extension(whole)) = whole {
        fanout::admin::skip_all(&s, &whole, &sub).await?;
        return Ok(StatusCode::NO_CONTENT);
    }
    s.broker.subscriptions().skip_all(&topic, &sub).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct TimestampPath {
    timestamp: String,
}

/// Reset a subscription to a publish time
#[utoipa::path(post, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/subscription/{subscription}/resetcursor/{timestamp}", tag = "persistent topic",
    params(SubscriptionParam, ("timestamp" = i64, Path, description = "publish time, epoch milliseconds")),
    responses((status = 204, description = "reset"),
        BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, Conflict, PreconditionFailed, Unavailable))]
async fn reset_cursor_to_time(
    State(s): State<AppState>,
    auth: AuthContext,
    SubscriptionParam(topic, sub): SubscriptionParam,
    Path(p): Path<TimestampPath>,
    whole: Option<Extension<Whole>>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::ResetCursor, (&topic, sub.as_str())).await?;
    let ts: i64 =
        p.timestamp.parse().map_err(|_| ApiError::bad_request(format!("invalid timestamp `{}`", p.timestamp)))?;
    if let Some(Extension(whole)) = whole {
        fanout::admin::reset_to_time(&s, &whole, &sub, ts).await?;
        return Ok(StatusCode::NO_CONTENT);
    }
    s.broker.subscriptions().reset_to_time(&topic, &sub, ts).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reset a subscription to a message id
#[utoipa::path(post, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/subscription/{subscription}/resetcursor", tag = "persistent topic", params(SubscriptionParam),
    request_body = PositionBody,
    responses((status = 204, description = "reset"),
        BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, Conflict, PreconditionFailed, PayloadTooLarge,
        Unavailable))]
async fn reset_cursor_to_id(
    State(s): State<AppState>,
    auth: AuthContext,
    SubscriptionParam(topic, sub): SubscriptionParam,
    whole: Option<Extension<Whole>>,
    OptionalJsonBody(body): OptionalJsonBody<PositionBody>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::ResetCursor, (&topic, sub.as_str())).await?;
    let body =
        body.ok_or_else(|| ApiError::bad_request("expected a message id body {\"ledgerId\":L,\"entryId\":E}"))?;
    if let Some(Extension(whole)) = whole {
        fanout::admin::reset_to_id(&s, &whole, &sub, &body).await?;
        return Ok(StatusCode::NO_CONTENT);
    }
    s.broker.subscriptions().reset_to_id(&topic, &sub, &body.id(), body.is_excluded).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Peek the n-th unacknowledged message of a subscription
///
/// The raw payload, with Pulsar's `X-Pulsar-*` headers.
#[utoipa::path(get, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/subscription/{subscription}/position/{n}", tag = "persistent topic",
    params(SubscriptionParam, ("n" = u64, Path, description = "position, 1 = the oldest unacknowledged message")),
    responses((status = 200, description = "the payload", body = Vec<u8>, content_type = "application/octet-stream",
        headers(("X-Pulsar-Message-ID" = String, description = "`ledgerId:entryId`"),
            ("X-Pulsar-publish-time" = String, description = "RFC 3339"),
            ("X-Pulsar-Property" = String, description = "the properties as a JSON object"))),
        BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, PreconditionFailed, Unavailable))]
async fn peek_message(
    State(s): State<AppState>,
    auth: AuthContext,
    SubscriptionParam(topic, sub): SubscriptionParam,
    Path(p): Path<CountPath>,
) -> ApiResult<Response> {
    auth.check(Operation::PeekMessages, (&topic, sub.as_str())).await?;
    let n: u64 = p.n.parse().map_err(|_| ApiError::bad_request(format!("invalid message position `{}`", p.n)))?;
    Ok(message_response(s.broker.subscriptions().peek(&topic, &sub, n).await?))
}

/// One message as Pulsar's peek, examine and get-by-id answer it: the raw payload, with its id,
/// times, key and properties in `X-Pulsar-*` headers.
pub(crate) fn message_response(m: magnetar_broker::PulledMessage) -> Response {
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
    (headers, m.record.payload).into_response()
}
