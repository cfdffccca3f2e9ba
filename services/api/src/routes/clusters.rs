//! Discovery endpoints simple tools call first: clusters, brokers, lookup, status.

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{AuthContext, TopicParam};
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use magnetar_auth::{Operation, Resource};
use magnetar_broker::BrokerError;
use magnetar_broker::Entity;
use serde_json::{Value, json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/v2/clusters", get(list_clusters))
        .route("/admin/v2/clusters/{cluster}", get(get_cluster))
        .route("/admin/v2/brokers/health", get(broker_health))
        .route("/admin/v2/brokers/leaderBroker", get(leader_broker))
        .route("/admin/v2/brokers/{cluster}", get(list_brokers))
        .route("/lookup/v2/topic/persistent/{tenant}/{namespace}/{topic}", get(lookup_topic))
}

async fn list_clusters(State(s): State<AppState>, auth: AuthContext) -> ApiResult<Json<Vec<String>>> {
    auth.check(Operation::ListClusters, Resource::Cluster).await?;
    Ok(Json(s.broker.admin().list_clusters().await?))
}

async fn get_cluster(
    State(s): State<AppState>,
    auth: AuthContext,
    Path(cluster): Path<String>,
) -> ApiResult<Json<Value>> {
    auth.check(Operation::GetCluster, Resource::Cluster).await?;
    let data = s.broker.admin().get_cluster(&cluster).await?;
    Ok(Json(serde_json::to_value(data).unwrap_or_default()))
}

async fn list_brokers(
    State(s): State<AppState>,
    auth: AuthContext,
    Path(cluster): Path<String>,
) -> ApiResult<Json<Vec<String>>> {
    auth.check(Operation::ListBrokers, Resource::Cluster).await?;
    if cluster != s.broker.cluster() {
        return Err(BrokerError::NotFound(Entity::Cluster(cluster)).into());
    }
    Ok(Json(vec![s.broker.broker_id().to_string()]))
}

async fn broker_health(State(s): State<AppState>, auth: AuthContext) -> ApiResult<&'static str> {
    auth.check(Operation::BrokerHealth, Resource::Cluster).await?;
    if s.broker.is_ready() { Ok("ok") } else { Err(BrokerError::ShuttingDown.into()) }
}

async fn leader_broker(State(s): State<AppState>, _auth: AuthContext) -> Json<Value> {
    let id = s.broker.broker_id();
    Json(json!({ "serviceUrl": format!("http://{id}"), "brokerId": id }))
}

async fn lookup_topic(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(name): TopicParam,
) -> ApiResult<Json<Value>> {
    auth.check(Operation::LookupTopic, &name).await?;
    if s.broker.topics().record(&name.base()).await?.is_none() {
        return Err(BrokerError::NotFound(Entity::Topic(name)).into());
    }
    let url = format!("http://{}", s.broker.broker_id());
    Ok(Json(json!({ "brokerUrl": url, "httpUrl": url, "nativeUrl": url })))
}
