//! The brokers' own endpoints of replicated durability (`/internal/v1/replicas/*`, not part of
//! the public API and not in the OpenAPI description): a peer stores a batch of another
//! broker's log stream, or fences a partition and returns what it holds of it. The caller names
//! its broker id and session; only a live member's session is accepted (`Broker::replica_*`).
//! An owner sends its batches over `stream`, an HTTP/1.1 connection upgraded to the replication
//! stream (`magnetar_broker::replication::stream`); `append` takes one batch per request (what
//! an owner of an earlier version sends).

use crate::AppState;
use crate::error::ApiResult;
use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use magnetar_broker::durability::ReplicaRecover;

/// A batch is at most the writer's 4 MiB object plus its header; room for more.
const MAX_BATCH_BYTES: usize = magnetar_broker::replication::stream::MAX_FRAME_BYTES;

#[derive(serde::Deserialize)]
struct Source {
    broker: String,
    session: String,
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/internal/v1/replicas/stream", get(stream))
        .route("/internal/v1/replicas/append", post(append))
        .route("/internal/v1/replicas/recover", post(recover))
        .layer(DefaultBodyLimit::max(MAX_BATCH_BYTES))
}

async fn append(
    State(s): State<AppState>,
    Query(q): Query<Source>,
    body: Bytes,
) -> ApiResult<Json<magnetar_broker::replication::AppendAnswer>> {
    Ok(Json(s.broker.replica_append(&q.broker, &q.session, body).await?))
}

/// Opens the replication stream of a live member: 101 and the stream, served as a task of the
/// broker once the connection is handed over.
async fn stream(
    State(s): State<AppState>,
    Query(q): Query<Source>,
    headers: HeaderMap,
    mut request: axum::extract::Request,
) -> ApiResult<Response> {
    use magnetar_broker::replication::stream::PROTOCOL;
    let asked = headers.get(header::UPGRADE).and_then(|v| v.to_str().ok());
    if !asked.is_some_and(|p| p.eq_ignore_ascii_case(PROTOCOL)) {
        let why = format!("the replication stream needs `Upgrade: {PROTOCOL}` (got {asked:?})");
        return Err(magnetar_broker::BrokerError::InvalidArgument(why).into());
    }
    s.broker.replica_stream_check(&q.broker, &q.session).await?;
    let upgrade = hyper::upgrade::on(&mut request);
    let broker = s.broker.clone();
    tokio::spawn(async move {
        match upgrade.await {
            Ok(io) => {
                let io = hyper_util::rt::TokioIo::new(io);
                if let Err(e) = broker.serve_replica_stream(q.broker, q.session, io) {
                    tracing::warn!(error = %e, "replication stream not served");
                }
            }
            Err(e) => tracing::debug!(error = %e, "replication stream upgrade failed"),
        }
    });
    let mut answer = StatusCode::SWITCHING_PROTOCOLS.into_response();
    answer.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    answer.headers_mut().insert(header::UPGRADE, HeaderValue::from_static(PROTOCOL));
    Ok(answer)
}

async fn recover(State(s): State<AppState>, Query(q): Query<ReplicaRecover>) -> ApiResult<Bytes> {
    Ok(s.broker.replica_recover(&q).await?)
}
