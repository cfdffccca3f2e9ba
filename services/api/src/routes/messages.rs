//! Message browsing without a subscription (the console's message browser):
//! `GET /admin/v2/persistent/{tenant}/{namespace}/{topic}/messages?from=&limit=&partition=`.
//!
//! `from` = `earliest` (default) | `latest-N` | `L:E[:P]` | `time:<epoch ms>` | the `next` of
//! an earlier page; `limit` 1..500 (default 50). Answer: `{"messages": [{"messageId": "L:E:P",
//! "partition", "payload": "<base64>", "key", "properties", "publishTime": "<RFC 3339>",
//! "eventTime", "size"}], "next": "<position>" | null}`. Needs `consume` on the topic, as
//! Pulsar's peek (`Operation::PeekMessages`); it creates and moves no subscription.

use crate::AppState;
use crate::error::{
    ApiError, ApiResult, BadRequest, Forbidden, MethodNotAllowed, NotFound, PreconditionFailed, Unauthorized,
    Unavailable,
};
use crate::extract::{AuthContext, Query, TopicParam};
use axum::Json;
use axum::extract::State;
use base64::Engine;
use magnetar_auth::Operation;
use magnetar_broker::browse::{BrowseFrom, MAX_PAGE_MESSAGES};
use magnetar_core::time::format_rfc3339;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(browse_messages))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct BrowseQuery {
    /// `earliest` (default), `latest-N`, `ledgerId:entryId[:partition]`, `time:<epoch ms>`, or
    /// the `next` of an earlier page.
    #[serde(default)]
    from: Option<String>,
    /// Messages per page, 1 to 500 (default 50).
    #[serde(default)]
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
    /// One partition of a partitioned topic.
    #[serde(default)]
    partition: Option<i32>,
}

/// One browsed message.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct BrowsedMessage {
    /// `L:E:P`.
    message_id: String,
    partition: i32,
    /// Base64.
    payload: String,
    key: Option<String>,
    /// The key is a binary key's base64 text.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    key_base64: bool,
    /// Pulsar's ordering key, base64.
    #[serde(skip_serializing_if = "Option::is_none")]
    ordering_key: Option<String>,
    properties: std::collections::BTreeMap<String, String>,
    /// RFC 3339.
    publish_time: String,
    event_time: Option<String>,
    /// Payload bytes.
    size: usize,
    /// Set on a chunk of a message sent in chunks (shown as stored, not joined).
    #[serde(skip_serializing_if = "Option::is_none")]
    chunk: Option<super::consume::ChunkJson>,
    /// Set on an end-to-end encrypted message (the payload is encrypted; an encrypted batch
    /// shows as one message).
    #[serde(skip_serializing_if = "Option::is_none")]
    encryption_context: Option<super::consume::EncryptionContextJson>,
}

#[derive(Serialize, ToSchema)]
struct BrowsePage {
    messages: Vec<BrowsedMessage>,
    /// Where the next page starts (`from=`); null when nothing more was stored.
    next: Option<String>,
}

/// Browse a topic's messages
///
/// Reads from a position without a subscription: nothing is created and no cursor moves. Needs
/// `consume` on the topic.
#[utoipa::path(get, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/messages", tag = "persistent topic",
    params(("tenant" = String, Path), ("namespace" = String, Path), ("topic" = String, Path), BrowseQuery),
    responses((status = 200, description = "a page of messages", body = BrowsePage),
        BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, PreconditionFailed, Unavailable))]
async fn browse_messages(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
    Query(q): Query<BrowseQuery>,
) -> ApiResult<Json<BrowsePage>> {
    auth.check(Operation::PeekMessages, &topic).await?;
    let from = BrowseFrom::parse(q.from.as_deref().unwrap_or("earliest"))?;
    let limit = q.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_PAGE_MESSAGES {
        return Err(ApiError::bad_request(format!("limit {limit} must be between 1 and {MAX_PAGE_MESSAGES}")));
    }
    let page = s.broker.topics().browse(&topic, &from, limit, q.partition).await?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let messages = page
        .messages
        .iter()
        .map(|m| BrowsedMessage {
            message_id: m.id.to_text(),
            partition: m.id.partition_index,
            payload: b64.encode(&m.record.payload),
            key: m.record.key.clone(),
            key_base64: m.record.key_base64,
            ordering_key: super::consume::ordering_key_text(&m.record),
            properties: m.record.properties.iter().cloned().collect(),
            publish_time: format_rfc3339(m.record.publish_time),
            event_time: m.record.event_time.map(format_rfc3339),
            size: m.record.payload.len(),
            chunk: m.record.chunk.as_deref().map(super::consume::ChunkJson::from),
            encryption_context: super::consume::EncryptionContextJson::of(&m.record),
        })
        .collect();
    Ok(Json(BrowsePage { messages, next: page.next }))
}
