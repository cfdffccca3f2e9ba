//! The brokers' own endpoints of replicated durability (`/internal/v1/replicas/*`, not part of
//! the public API and not in the OpenAPI description): a peer stores a batch of another
//! broker's log stream, or fences a partition and returns what it holds of it. The caller names
//! its broker id and session; only a live member's session is accepted (`Broker::replica_*`).

use crate::AppState;
use crate::error::ApiResult;
use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::routing::post;
use bytes::Bytes;
use magnetar_broker::durability::ReplicaRecover;

/// A batch is at most the writer's 4 MiB object plus its header; room for more.
const MAX_BATCH_BYTES: usize = 64 << 20;

#[derive(serde::Deserialize)]
struct Source {
    broker: String,
    session: String,
}

#[derive(serde::Serialize)]
struct AppendAnswer {
    fenced: Vec<(u64, String)>,
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/internal/v1/replicas/append", post(append))
        .route("/internal/v1/replicas/recover", post(recover))
        .layer(DefaultBodyLimit::max(MAX_BATCH_BYTES))
}

async fn append(State(s): State<AppState>, Query(q): Query<Source>, body: Bytes) -> ApiResult<Json<AppendAnswer>> {
    let fenced = s.broker.replica_append(&q.broker, &q.session, body).await?;
    Ok(Json(AppendAnswer { fenced }))
}

async fn recover(State(s): State<AppState>, Query(q): Query<ReplicaRecover>) -> ApiResult<Bytes> {
    Ok(s.broker.replica_recover(&q).await?)
}
