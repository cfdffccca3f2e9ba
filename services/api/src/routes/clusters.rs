//! Discovery endpoints simple tools call first: clusters, brokers, lookup, status.

use crate::AppState;
use crate::error::{ApiResult, BadRequest, Forbidden, NotFound, PreconditionFailed, Unauthorized, Unavailable};
use crate::extract::{AuthContext, Path, TopicParam};
use axum::Json;
use axum::extract::State;
use magnetar_auth::{Operation, Resource};
use magnetar_broker::BrokerError;
use magnetar_broker::Entity;
use magnetar_metadata::ClusterData;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_clusters))
        .routes(routes!(get_cluster))
        .routes(routes!(broker_health))
        .routes(routes!(leader_broker))
        .routes(routes!(list_brokers))
        .routes(routes!(lookup_topic))
}

/// List clusters
#[utoipa::path(get, path = "/admin/v2/clusters", tag = "clusters",
    responses((status = 200, description = "cluster names", body = [String]), Unauthorized, Forbidden, Unavailable))]
async fn list_clusters(State(s): State<AppState>, auth: AuthContext) -> ApiResult<Json<Vec<String>>> {
    auth.check(Operation::ListClusters, Resource::Cluster).await?;
    Ok(Json(s.broker.admin().list_clusters().await?))
}

/// Get a cluster
#[utoipa::path(get, path = "/admin/v2/clusters/{cluster}", tag = "clusters",
    params(("cluster" = String, Path, description = "cluster name")),
    responses((status = 200, description = "the cluster", body = ClusterData),
        BadRequest, Unauthorized, Forbidden, NotFound, Unavailable))]
async fn get_cluster(
    State(s): State<AppState>,
    auth: AuthContext,
    Path(cluster): Path<String>,
) -> ApiResult<Json<ClusterData>> {
    auth.check(Operation::GetCluster, Resource::Cluster).await?;
    Ok(Json(s.broker.admin().get_cluster(&cluster).await?))
}

/// List the active brokers of a cluster
///
/// The advertised addresses (`host:port`) of the brokers whose membership lease is live in the
/// metadata store, sorted by broker id. A broker stopped gracefully leaves the list at once; one
/// that died leaves it when its lease expires (`broker.membership.lease_ms`).
#[utoipa::path(get, path = "/admin/v2/brokers/{cluster}", tag = "brokers",
    params(("cluster" = String, Path, description = "cluster name")),
    responses((status = 200, description = "broker addresses", body = [String]),
        BadRequest, Unauthorized, Forbidden, NotFound, Unavailable))]
async fn list_brokers(
    State(s): State<AppState>,
    auth: AuthContext,
    Path(cluster): Path<String>,
) -> ApiResult<Json<Vec<String>>> {
    auth.check(Operation::ListBrokers, Resource::Cluster).await?;
    if cluster != s.broker.cluster() {
        return Err(BrokerError::NotFound(Entity::Cluster(cluster)).into());
    }
    let brokers = s.broker.live_brokers().await?;
    Ok(Json(brokers.into_iter().map(|b| b.registration.advertised_address).collect()))
}

/// Broker health
///
/// Text `ok` while the broker serves; 503 while it starts or shuts down.
#[utoipa::path(get, path = "/admin/v2/brokers/health", tag = "brokers",
    responses((status = 200, description = "serving", body = String, content_type = "text/plain", example = "ok"),
        Unauthorized, Forbidden, Unavailable))]
async fn broker_health(State(s): State<AppState>, auth: AuthContext) -> ApiResult<&'static str> {
    auth.check(Operation::BrokerHealth, Resource::Cluster).await?;
    if s.broker.is_ready() { Ok("ok") } else { Err(BrokerError::ShuttingDown.into()) }
}

/// Pulsar's `BrokerInfo`: the broker answering (every broker leads its own topics).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeaderBroker {
    /// `http://host:port`.
    pub service_url: String,
    pub broker_id: String,
}

/// Leader broker
#[utoipa::path(get, path = "/admin/v2/brokers/leaderBroker", tag = "brokers",
    responses((status = 200, description = "the broker placing bundles in a tier (alone: the broker answering)", body = LeaderBroker),
        Unauthorized, Unavailable))]
async fn leader_broker(State(s): State<AppState>, _auth: AuthContext) -> ApiResult<Json<LeaderBroker>> {
    // In a tier, the broker placing bundles; alone, this one.
    let mut id = s.broker.broker_id().to_string();
    if s.broker.tier().enabled()
        && let Some(leader) = s.broker.tier().leader().await?
    {
        id = leader.registration.advertised_address;
    }
    Ok(Json(LeaderBroker { service_url: format!("http://{id}"), broker_id: id }))
}

/// Pulsar's `LookupData`: where to reach the broker serving a topic. Clients given an `http://`
/// service URL look topics up here and connect to `brokerUrl` (`brokerUrlTls` over TLS).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LookupData {
    /// `pulsar://host:port` of the broker's binary-protocol listener (empty without one).
    pub broker_url: String,
    /// `pulsar+ssl://host:port` of its TLS listener (empty without one).
    pub broker_url_tls: String,
    pub http_url: String,
    pub http_url_tls: String,
    /// The same as `brokerUrl`, as Pulsar answers it.
    pub native_url: String,
}

/// Look up the broker serving a topic
#[utoipa::path(get, path = "/lookup/v2/topic/persistent/{tenant}/{namespace}/{topic}", tag = "lookup",
    params(TopicParam),
    responses((status = 200, description = "the broker's addresses", body = LookupData),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn lookup_topic(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(name): TopicParam,
) -> ApiResult<Json<LookupData>> {
    let answer = lookup_answer(&s, &auth, name).await;
    s.broker.count_lookup(answer.is_ok());
    answer.map(Json)
}

async fn lookup_answer(s: &AppState, auth: &AuthContext, name: magnetar_core::TopicName) -> ApiResult<LookupData> {
    auth.check(Operation::LookupTopic, &name).await?;
    // As Pulsar: a topic the first producer or consumer would create is looked up like one
    // that exists.
    if !s.broker.topics().exists_or_creatable(&name).await? {
        return Err(BrokerError::NotFound(Entity::Topic(name)).into());
    }
    let http_url = lookup_url(s, &name).await?;
    // The binary listener: this broker's, or in a tier the owner's advertised one. An HTTP
    // lookup cannot ask the client to stay on its service URL and be proxied (a binary LOOKUP
    // can), so clients with an `http://` service URL must reach the owners' advertised URLs.
    let tier = s.broker.tier();
    let owner = tier.lookup_owner(&name).await?;
    let reg = owner.as_ref().map_or_else(|| tier.registration(), |o| &o.registration);
    let broker_url = reg.binary_advertised_url.clone();
    Ok(LookupData {
        native_url: broker_url.clone(),
        broker_url,
        broker_url_tls: reg.binary_advertised_tls_url.clone(),
        http_url,
        http_url_tls: String::new(),
    })
}

/// What a lookup answers. Alone, this broker. In a tier, the cluster's service address (the
/// `serviceUrl` of the cluster, which an operator points at the address in front of every
/// broker): any broker serves any topic, and a client is never sent to an internal host name.
/// With `lookup_owner_address`, the owner's advertised address instead.
async fn lookup_url(s: &AppState, name: &magnetar_core::TopicName) -> ApiResult<String> {
    let tier = s.broker.tier();
    if !tier.enabled() {
        return Ok(format!("http://{}", s.broker.broker_id()));
    }
    if tier.config().lookup_owner_address {
        let owner = tier.owner_advertised_address(name).await?;
        return Ok(format!("http://{}", owner.as_deref().unwrap_or(s.broker.broker_id())));
    }
    let cluster = s.broker.admin().get_cluster(s.broker.cluster()).await?;
    Ok(if cluster.service_url.is_empty() { format!("http://{}", s.broker.broker_id()) } else { cluster.service_url })
}
