//! Topic operations of Pulsar's admin API beyond lifecycle and stats: terminate, truncate,
//! trim, reading one message (by position, by id, by publish time), backlog size and the
//! stored-topic views, topic properties, and the subscription operations that go with them
//! (analyze backlog, expire to a message id, subscription properties).
//!
//! Message ids are Magnetar's `ledgerId:entryId` as everywhere (`ledgerId` = the segment's base
//! offset, `entryId` = the offset within it; the WebSocket API's base64 ids encode the same
//! pair), so an id read from any surface addresses `/ledger/{ledgerId}/entry/{entryId}`.

use crate::AppState;
use crate::error::{
    ApiError, ApiResult, BadRequest, Conflict, Forbidden, MethodNotAllowed, NotFound, PayloadTooLarge,
    PreconditionFailed, Unauthorized, Unavailable,
};
use crate::extract::{AuthContext, JsonBody, OptionalJsonBody, Path, Query, SubscriptionParam, TopicParam};
use crate::fanout::Whole;
use crate::routes::subscriptions::{PositionBody, message_response};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Json};
use magnetar_auth::Operation;
use magnetar_broker::{BacklogAnalysis, ManagedLedgerInfo, OfflineTopicStats};
use magnetar_core::MessageId;
use serde::Deserialize;
use std::collections::BTreeMap;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(terminate_topic))
        .routes(routes!(terminate_partitions))
        .routes(routes!(truncate_topic))
        .routes(routes!(trim_topic))
        .routes(routes!(examine_message))
        .routes(routes!(get_message_by_id))
        .routes(routes!(get_message_id_by_time))
        .routes(routes!(get_backlog_size))
        .routes(routes!(get_offline_backlog))
        .routes(routes!(get_internal_info))
        .routes(routes!(get_topic_properties, update_topic_properties, remove_topic_property))
        .routes(routes!(create_missed_partitions))
        .routes(routes!(analyze_backlog))
        .routes(routes!(expire_messages_to_id))
        .routes(routes!(get_subscription_properties, set_subscription_properties))
}

/// Terminate a topic
///
/// From now on the topic refuses messages on every surface (producers get 503, as in Pulsar);
/// consumers read what is left, then are told the end of topic. Answers the id of the last
/// message (`-1:-1` for an empty topic); terminating again answers it again. 405 for a
/// partitioned topic (use `/terminate/partitions`).
#[utoipa::path(post, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/terminate", tag = "persistent topic",
    params(TopicParam),
    responses((status = 200, description = "the id of the last message", body = MessageId),
        BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, PreconditionFailed, Unavailable))]
async fn terminate_topic(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
) -> ApiResult<Json<MessageId>> {
    auth.check(Operation::TerminateTopic, &topic).await?;
    Ok(Json(s.broker.topics().terminate(&topic).await?))
}

/// Terminate every partition of a partitioned topic
#[utoipa::path(post, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/terminate/partitions",
    tag = "persistent topic", params(TopicParam),
    responses((status = 200, description = "the id of each partition's last message, by partition index",
        body = BTreeMap<i32, MessageId>),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unavailable))]
async fn terminate_partitions(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
    whole: Option<Extension<Whole>>,
) -> ApiResult<Json<BTreeMap<i32, MessageId>>> {
    auth.check(Operation::TerminateTopic, &topic).await?;
    if let Some(Extension(whole)) = whole {
        return Ok(Json(crate::fanout::admin::terminate(&s, &whole).await?));
    }
    Ok(Json(s.broker.topics().terminate_partitions(&topic).await?))
}

/// Truncate a topic
///
/// Every subscription moves to the end of the topic and every stored message is deleted, from
/// every tier; the topic stays and accepts new messages. Every partition of a partitioned topic.
#[utoipa::path(delete, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/truncate", tag = "persistent topic",
    params(TopicParam),
    responses((status = 204, description = "truncated"),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn truncate_topic(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
) -> ApiResult<StatusCode> {
    auth.check(Operation::TruncateTopic, &topic).await?;
    s.broker.topics().truncate(&topic).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Trim a topic
///
/// Applies the retention in force now instead of at the next retention pass.
#[utoipa::path(post, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/trim", tag = "persistent topic",
    params(TopicParam),
    responses((status = 204, description = "trimmed"),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn trim_topic(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
) -> ApiResult<StatusCode> {
    auth.check(Operation::TrimTopic, &topic).await?;
    s.broker.topics().trim(&topic).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
struct ExamineQuery {
    /// `latest` (default) or `earliest`: where positions count from.
    #[serde(default)]
    initial_position: Option<String>,
    /// 1 (default) = the latest (or earliest) message, 2 = the one before (after) it, ...
    #[serde(default)]
    #[param(minimum = 1)]
    message_position: Option<i64>,
}

/// The payload of a message, as a peek answers it
const MESSAGE_HEADERS: &str = "X-Pulsar-Message-ID (`ledgerId:entryId`), X-Pulsar-publish-time, X-Pulsar-Property";

/// Examine a message by its position
///
/// The raw payload of the `messagePosition`-th message counted from the latest (or earliest)
/// retained one, with Pulsar's `X-Pulsar-*` headers.
#[utoipa::path(get, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/examinemessage", tag = "persistent topic",
    params(TopicParam, ExamineQuery),
    responses((status = 200, description = MESSAGE_HEADERS, body = Vec<u8>, content_type = "application/octet-stream"),
        BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, PreconditionFailed, Unavailable))]
async fn examine_message(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
    Query(q): Query<ExamineQuery>,
) -> ApiResult<Response> {
    auth.check(Operation::PeekMessages, &topic).await?;
    let from_latest = match q.initial_position.as_deref().unwrap_or("latest") {
        p if p.eq_ignore_ascii_case("latest") => true,
        p if p.eq_ignore_ascii_case("earliest") => false,
        other => return Err(ApiError::bad_request(format!("initialPosition `{other}` must be latest or earliest"))),
    };
    let position = q.message_position.unwrap_or(1);
    if position < 1 {
        return Err(ApiError::bad_request(format!("messagePosition {position} must be 1 or more")));
    }
    Ok(message_response(s.broker.topics().examine(&topic, from_latest, position as u64).await?))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EntryPath {
    ledger_id: String,
    entry_id: String,
}

fn parse_long(what: &str, text: &str) -> Result<i64, ApiError> {
    text.parse().map_err(|_| ApiError::bad_request(format!("invalid {what} `{text}`")))
}

/// Get a message by its id
///
/// The raw payload of message `ledgerId:entryId`, with Pulsar's `X-Pulsar-*` headers.
#[utoipa::path(get, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/ledger/{ledgerId}/entry/{entryId}",
    tag = "persistent topic",
    params(TopicParam, ("ledgerId" = i64, Path, description = "ledger id of the message id"),
        ("entryId" = i64, Path, description = "entry id of the message id")),
    responses((status = 200, description = MESSAGE_HEADERS, body = Vec<u8>, content_type = "application/octet-stream"),
        BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, PreconditionFailed, Unavailable))]
async fn get_message_by_id(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
    Path(p): Path<EntryPath>,
) -> ApiResult<Response> {
    auth.check(Operation::PeekMessages, &topic).await?;
    let (ledger, entry) = (parse_long("ledger id", &p.ledger_id)?, parse_long("entry id", &p.entry_id)?);
    Ok(message_response(s.broker.topics().message_by_id(&topic, ledger, entry).await?))
}

#[derive(Deserialize)]
struct TimestampPath {
    timestamp: String,
}

/// Get the id of the first message published at or after a time
///
/// 404 when no message was published then or later.
#[utoipa::path(get, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/messageid/{timestamp}",
    tag = "persistent topic",
    params(TopicParam, ("timestamp" = i64, Path, description = "publish time, epoch milliseconds")),
    responses((status = 200, description = "the message id", body = MessageId),
        BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, PreconditionFailed, Unavailable))]
async fn get_message_id_by_time(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
    Path(p): Path<TimestampPath>,
) -> ApiResult<Json<MessageId>> {
    auth.check(Operation::PeekMessages, &topic).await?;
    let ts = parse_long("timestamp", &p.timestamp)?;
    Ok(Json(s.broker.topics().message_id_by_time(&topic, ts).await?))
}

/// Get the backlog size from a message id
///
/// The bytes stored from the message to the end of the topic, estimated from segment sizes as
/// Pulsar estimates it from ledger sizes.
#[utoipa::path(put, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/backlogSize", tag = "persistent topic",
    params(TopicParam), request_body = MessageId,
    responses((status = 200, description = "bytes", body = u64),
        BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, PreconditionFailed, PayloadTooLarge,
        Unavailable))]
async fn get_backlog_size(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
    JsonBody(id): JsonBody<MessageId>,
) -> ApiResult<Json<u64>> {
    auth.check(Operation::GetBacklogSize, &topic).await?;
    Ok(Json(s.broker.topics().backlog_size(&topic, &id).await?))
}

/// Estimate a topic's backlog from what is stored (Pulsar's offline backlog)
#[utoipa::path(get, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/backlog", tag = "persistent topic",
    params(TopicParam),
    responses((status = 200, description = "the estimate", body = OfflineTopicStats),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn get_offline_backlog(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
) -> ApiResult<Json<OfflineTopicStats>> {
    auth.check(Operation::GetInternalStats, &topic).await?;
    Ok(Json(s.broker.topics().offline_backlog(&topic).await?))
}

/// Get the stored topic's segments and termination (Pulsar's `internal-info`)
#[utoipa::path(get, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/internal-info", tag = "persistent topic",
    params(TopicParam),
    responses((status = 200, description = "segments as ledgers; each partition's for a partitioned topic",
        body = ManagedLedgerInfo),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn get_internal_info(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
) -> ApiResult<Json<ManagedLedgerInfo>> {
    auth.check(Operation::GetInternalStats, &topic).await?;
    Ok(Json(s.broker.topics().internal_info(&topic).await?))
}

/// Get a topic's properties
#[utoipa::path(get, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/properties", tag = "persistent topic",
    params(TopicParam),
    responses((status = 200, description = "the properties", body = BTreeMap<String, String>),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn get_topic_properties(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
) -> ApiResult<Json<BTreeMap<String, String>>> {
    auth.check(Operation::GetTopicProperties, &topic).await?;
    Ok(Json(s.broker.topics().properties(&topic).await?))
}

/// Update a topic's properties
///
/// The given keys are set; the others stay.
#[utoipa::path(put, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/properties", tag = "persistent topic",
    params(TopicParam), request_body = BTreeMap<String, String>,
    responses((status = 204, description = "updated"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn update_topic_properties(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
    JsonBody(update): JsonBody<BTreeMap<String, String>>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::UpdateTopicProperties, &topic).await?;
    s.broker.topics().update_properties(&topic, update).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct KeyQuery {
    /// The property to remove (a missing one is no error).
    key: String,
}

/// Remove a topic property
#[utoipa::path(delete, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/properties", tag = "persistent topic",
    params(TopicParam, KeyQuery),
    responses((status = 204, description = "removed"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unavailable))]
async fn remove_topic_property(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
    Query(q): Query<KeyQuery>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::UpdateTopicProperties, &topic).await?;
    s.broker.topics().remove_property(&topic, &q.key).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Create the missing partitions of a partitioned topic
///
/// Magnetar creates every partition with its topic in one transaction, so none can be missing;
/// this checks the topic is partitioned and loads it. 409 for a topic that is not partitioned.
#[utoipa::path(post, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/createMissedPartitions",
    tag = "persistent topic", params(TopicParam),
    responses((status = 204, description = "every partition exists"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unavailable))]
async fn create_missed_partitions(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
) -> ApiResult<StatusCode> {
    auth.check(Operation::UpdatePartitions, &topic).await?;
    s.broker.topics().create_missed_partitions(&topic).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Analyze a subscription's backlog
///
/// Its unacknowledged messages from the given id (default: where it has consumed to) to the
/// end. Magnetar has no entry filters and no batches: every entry is one accepted message.
#[utoipa::path(post, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/subscription/{subscription}/analyzeBacklog",
    tag = "persistent topic", params(SubscriptionParam), request_body = Option<MessageId>,
    responses((status = 200, description = "the analysis", body = BacklogAnalysis),
        BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, PreconditionFailed, PayloadTooLarge,
        Unavailable))]
async fn analyze_backlog(
    State(s): State<AppState>,
    auth: AuthContext,
    SubscriptionParam(topic, sub): SubscriptionParam,
    OptionalJsonBody(from): OptionalJsonBody<MessageId>,
) -> ApiResult<Json<BacklogAnalysis>> {
    auth.check(Operation::AnalyzeBacklog, (&topic, sub.as_str())).await?;
    Ok(Json(s.broker.subscriptions().analyze_backlog(&topic, &sub, from.as_ref()).await?))
}

/// Expire a subscription's messages up to a message id
///
/// Every message before the id (and the message itself unless `isExcluded`) is acknowledged as
/// expired.
#[utoipa::path(post, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/subscription/{subscription}/expireMessages",
    tag = "persistent topic", params(SubscriptionParam), request_body = PositionBody,
    responses((status = 204, description = "expired"),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn expire_messages_to_id(
    State(s): State<AppState>,
    auth: AuthContext,
    SubscriptionParam(topic, sub): SubscriptionParam,
    whole: Option<Extension<Whole>>,
    JsonBody(body): JsonBody<PositionBody>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::ExpireMessages, (&topic, sub.as_str())).await?;
    if let Some(Extension(whole)) = whole {
        crate::fanout::admin::expire_to_id(&s, &whole, &sub, &body).await?;
        return Ok(StatusCode::NO_CONTENT);
    }
    s.broker.subscriptions().expire_to_id(&topic, &sub, &body.id(), body.is_excluded).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Get a subscription's properties
#[utoipa::path(get, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/subscription/{subscription}/properties",
    tag = "persistent topic", params(SubscriptionParam),
    responses((status = 200, description = "the properties", body = BTreeMap<String, String>),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn get_subscription_properties(
    State(s): State<AppState>,
    auth: AuthContext,
    SubscriptionParam(topic, sub): SubscriptionParam,
) -> ApiResult<Json<BTreeMap<String, String>>> {
    auth.check(Operation::GetSubscriptionProperties, (&topic, sub.as_str())).await?;
    Ok(Json(s.broker.subscriptions().properties(&topic, &sub).await?))
}

/// Replace a subscription's properties
#[utoipa::path(put, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/subscription/{subscription}/properties",
    tag = "persistent topic", params(SubscriptionParam), request_body = BTreeMap<String, String>,
    responses((status = 204, description = "replaced"),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn set_subscription_properties(
    State(s): State<AppState>,
    auth: AuthContext,
    SubscriptionParam(topic, sub): SubscriptionParam,
    JsonBody(properties): JsonBody<BTreeMap<String, String>>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::UpdateSubscriptionProperties, (&topic, sub.as_str())).await?;
    s.broker.subscriptions().set_properties(&topic, &sub, &properties).await?;
    Ok(StatusCode::NO_CONTENT)
}
