//! Message browsing without a subscription (the console's message browser):
//! `GET /admin/v2/persistent/{tenant}/{namespace}/{topic}/messages?from=&limit=&partition=`.
//!
//! `from` = `earliest` (default) | `latest-N` | `L:E[:P]` | `time:<epoch ms>` | the `next` of
//! an earlier page; `limit` 1..500 (default 50). Answer: `{"messages": [{"messageId": "L:E:P",
//! "partition", "payload": "<base64>", "key", "properties", "publishTime": "<RFC 3339>",
//! "eventTime", "size"}], "next": "<position>" | null}`. Needs `consume` on the topic, as
//! Pulsar's peek (`Operation::PeekMessages`); it creates and moves no subscription.

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AuthContext, TopicParam};
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use magnetar_auth::Operation;
use magnetar_broker::browse::{BrowseFrom, MAX_PAGE_MESSAGES};
use magnetar_core::time::format_rfc3339;
use serde::Deserialize;
use serde_json::{Map, Value, json};

pub fn router() -> Router<AppState> {
    Router::new().route("/admin/v2/persistent/{tenant}/{namespace}/{topic}/messages", get(browse_messages))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BrowseQuery {
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    partition: Option<i32>,
}

async fn browse_messages(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
    Query(q): Query<BrowseQuery>,
) -> ApiResult<Json<Value>> {
    auth.check(Operation::PeekMessages, &topic).await?;
    let from = BrowseFrom::parse(q.from.as_deref().unwrap_or("earliest"))?;
    let limit = q.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_PAGE_MESSAGES {
        return Err(ApiError::bad_request(format!("limit {limit} must be between 1 and {MAX_PAGE_MESSAGES}")));
    }
    let page = s.broker.topics().browse(&topic, &from, limit, q.partition).await?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let messages: Vec<Value> = page
        .messages
        .iter()
        .map(|m| {
            let props: Map<String, Value> =
                m.record.properties.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
            json!({
                "messageId": m.id.to_text(),
                "partition": m.id.partition_index,
                "payload": b64.encode(&m.record.payload),
                "key": m.record.key,
                "properties": props,
                "publishTime": format_rfc3339(m.record.publish_time),
                "eventTime": m.record.event_time.map(format_rfc3339),
                "size": m.record.payload.len(),
            })
        })
        .collect();
    Ok(Json(json!({ "messages": messages, "next": page.next })))
}
