//! Cluster administration (superusers): create, update and delete clusters, their peer list,
//! failure domains and namespace isolation policies. These are stored and validated as Pulsar
//! does; no broker tier places namespaces by them yet (see docs/pulsar-compatibility.md).

use crate::AppState;
use crate::error::{
    ApiResult, BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, PreconditionFailed, Unauthorized,
    Unavailable,
};
use crate::extract::{AuthContext, JsonBody, OptionalJsonBody, Path};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use magnetar_auth::{Operation, Resource};
use magnetar_broker::BrokerIsolation;
use magnetar_metadata::{ClusterData, FailureDomain, NamespaceIsolationData};
use serde::Deserialize;
use std::collections::BTreeMap;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_cluster, update_cluster, delete_cluster))
        .routes(routes!(get_peer_clusters, set_peer_clusters))
        .routes(routes!(list_failure_domains))
        .routes(routes!(get_failure_domain, set_failure_domain, delete_failure_domain))
        .routes(routes!(list_isolation_policies))
        .routes(routes!(get_isolation_policy, set_isolation_policy, delete_isolation_policy))
        .routes(routes!(list_brokers_isolation))
        .routes(routes!(get_broker_isolation))
}

/// Create a cluster
#[utoipa::path(put, path = "/admin/v2/clusters/{cluster}", tag = "clusters",
    params(("cluster" = String, Path, description = "cluster name")), request_body = Option<ClusterData>,
    responses((status = 204, description = "created"),
        BadRequest, Unauthorized, Forbidden, Conflict, PayloadTooLarge, Unavailable))]
async fn create_cluster(
    State(s): State<AppState>,
    auth: AuthContext,
    Path(cluster): Path<String>,
    OptionalJsonBody(data): OptionalJsonBody<ClusterData>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::CreateCluster, Resource::Cluster).await?;
    s.broker.admin().create_cluster(&cluster, data.unwrap_or_default()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Update a cluster
#[utoipa::path(post, path = "/admin/v2/clusters/{cluster}", tag = "clusters",
    params(("cluster" = String, Path, description = "cluster name")), request_body = ClusterData,
    responses((status = 204, description = "updated"),
        BadRequest, Unauthorized, Forbidden, NotFound, PayloadTooLarge, Unavailable))]
async fn update_cluster(
    State(s): State<AppState>,
    auth: AuthContext,
    Path(cluster): Path<String>,
    JsonBody(data): JsonBody<ClusterData>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::UpdateCluster, Resource::Cluster).await?;
    s.broker.admin().update_cluster(&cluster, data).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete a cluster
///
/// With its failure domains and isolation policies. 412 for the cluster this broker serves or
/// one a tenant may use.
#[utoipa::path(delete, path = "/admin/v2/clusters/{cluster}", tag = "clusters",
    params(("cluster" = String, Path, description = "cluster name")),
    responses((status = 204, description = "deleted"),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn delete_cluster(
    State(s): State<AppState>,
    auth: AuthContext,
    Path(cluster): Path<String>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::DeleteCluster, Resource::Cluster).await?;
    s.broker.admin().delete_cluster(&cluster).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Get a cluster's peer clusters
#[utoipa::path(get, path = "/admin/v2/clusters/{cluster}/peers", tag = "clusters",
    params(("cluster" = String, Path, description = "cluster name")),
    responses((status = 200, description = "peer cluster names", body = [String]),
        BadRequest, Unauthorized, Forbidden, NotFound, Unavailable))]
async fn get_peer_clusters(
    State(s): State<AppState>,
    auth: AuthContext,
    Path(cluster): Path<String>,
) -> ApiResult<Json<Vec<String>>> {
    auth.check(Operation::GetCluster, Resource::Cluster).await?;
    Ok(Json(s.broker.admin().get_cluster(&cluster).await?.peer_cluster_names))
}

/// Set a cluster's peer clusters
///
/// Every peer must be a known cluster (412 otherwise). Magnetar does not replicate; the list is
/// kept for tools.
#[utoipa::path(post, path = "/admin/v2/clusters/{cluster}/peers", tag = "clusters",
    params(("cluster" = String, Path, description = "cluster name")), request_body = Vec<String>,
    responses((status = 204, description = "set"),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn set_peer_clusters(
    State(s): State<AppState>,
    auth: AuthContext,
    Path(cluster): Path<String>,
    JsonBody(peers): JsonBody<Vec<String>>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::UpdateCluster, Resource::Cluster).await?;
    s.broker.admin().set_peer_clusters(&cluster, peers).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DomainPath {
    cluster: String,
    domain_name: String,
}

/// List a cluster's failure domains
#[utoipa::path(get, path = "/admin/v2/clusters/{cluster}/failureDomains", tag = "clusters",
    params(("cluster" = String, Path, description = "cluster name")),
    responses((status = 200, description = "domains by name", body = BTreeMap<String, FailureDomain>),
        BadRequest, Unauthorized, Forbidden, NotFound, Unavailable))]
async fn list_failure_domains(
    State(s): State<AppState>,
    auth: AuthContext,
    Path(cluster): Path<String>,
) -> ApiResult<Json<BTreeMap<String, FailureDomain>>> {
    auth.check(Operation::GetCluster, Resource::Cluster).await?;
    Ok(Json(s.broker.admin().list_failure_domains(&cluster).await?))
}

/// Get a failure domain
#[utoipa::path(get, path = "/admin/v2/clusters/{cluster}/failureDomains/{domainName}", tag = "clusters",
    params(("cluster" = String, Path, description = "cluster name"), ("domainName" = String, Path, description = "domain name")),
    responses((status = 200, description = "the domain", body = FailureDomain),
        BadRequest, Unauthorized, Forbidden, NotFound, Unavailable))]
async fn get_failure_domain(
    State(s): State<AppState>,
    auth: AuthContext,
    Path(p): Path<DomainPath>,
) -> ApiResult<Json<FailureDomain>> {
    auth.check(Operation::GetCluster, Resource::Cluster).await?;
    Ok(Json(s.broker.admin().get_failure_domain(&p.cluster, &p.domain_name).await?))
}

/// Create or replace a failure domain
///
/// 412 when one of its brokers is in another domain of the cluster.
#[utoipa::path(post, path = "/admin/v2/clusters/{cluster}/failureDomains/{domainName}", tag = "clusters",
    params(("cluster" = String, Path, description = "cluster name"), ("domainName" = String, Path, description = "domain name")),
    request_body = FailureDomain,
    responses((status = 204, description = "set"),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn set_failure_domain(
    State(s): State<AppState>,
    auth: AuthContext,
    Path(p): Path<DomainPath>,
    JsonBody(domain): JsonBody<FailureDomain>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::UpdateCluster, Resource::Cluster).await?;
    s.broker.admin().set_failure_domain(&p.cluster, &p.domain_name, &domain).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete a failure domain
#[utoipa::path(delete, path = "/admin/v2/clusters/{cluster}/failureDomains/{domainName}", tag = "clusters",
    params(("cluster" = String, Path, description = "cluster name"), ("domainName" = String, Path, description = "domain name")),
    responses((status = 204, description = "deleted"),
        BadRequest, Unauthorized, Forbidden, NotFound, Unavailable))]
async fn delete_failure_domain(
    State(s): State<AppState>,
    auth: AuthContext,
    Path(p): Path<DomainPath>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::UpdateCluster, Resource::Cluster).await?;
    s.broker.admin().delete_failure_domain(&p.cluster, &p.domain_name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PolicyPath {
    cluster: String,
    policy_name: String,
}

/// List a cluster's namespace isolation policies
#[utoipa::path(get, path = "/admin/v2/clusters/{cluster}/namespaceIsolationPolicies", tag = "clusters",
    params(("cluster" = String, Path, description = "cluster name")),
    responses((status = 200, description = "policies by name", body = BTreeMap<String, NamespaceIsolationData>),
        BadRequest, Unauthorized, Forbidden, NotFound, Unavailable))]
async fn list_isolation_policies(
    State(s): State<AppState>,
    auth: AuthContext,
    Path(cluster): Path<String>,
) -> ApiResult<Json<BTreeMap<String, NamespaceIsolationData>>> {
    auth.check(Operation::GetCluster, Resource::Cluster).await?;
    Ok(Json(s.broker.admin().list_isolation_policies(&cluster).await?))
}

/// Get a namespace isolation policy
#[utoipa::path(get, path = "/admin/v2/clusters/{cluster}/namespaceIsolationPolicies/{policyName}", tag = "clusters",
    params(("cluster" = String, Path, description = "cluster name"), ("policyName" = String, Path, description = "policy name")),
    responses((status = 200, description = "the policy", body = NamespaceIsolationData),
        BadRequest, Unauthorized, Forbidden, NotFound, Unavailable))]
async fn get_isolation_policy(
    State(s): State<AppState>,
    auth: AuthContext,
    Path(p): Path<PolicyPath>,
) -> ApiResult<Json<NamespaceIsolationData>> {
    auth.check(Operation::GetCluster, Resource::Cluster).await?;
    Ok(Json(s.broker.admin().get_isolation_policy(&p.cluster, &p.policy_name).await?))
}

/// Create or replace a namespace isolation policy
///
/// Validated as Pulsar does (412): namespaces and primary brokers given, every pattern a valid
/// regular expression, `auto_failover_policy` of type `min_available` with integer `min_limit`
/// and `usage_threshold`. Stored only: no broker tier places namespaces by it yet.
#[utoipa::path(post, path = "/admin/v2/clusters/{cluster}/namespaceIsolationPolicies/{policyName}", tag = "clusters",
    params(("cluster" = String, Path, description = "cluster name"), ("policyName" = String, Path, description = "policy name")),
    request_body = NamespaceIsolationData,
    responses((status = 204, description = "set"),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn set_isolation_policy(
    State(s): State<AppState>,
    auth: AuthContext,
    Path(p): Path<PolicyPath>,
    JsonBody(policy): JsonBody<NamespaceIsolationData>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::UpdateCluster, Resource::Cluster).await?;
    s.broker.admin().set_isolation_policy(&p.cluster, &p.policy_name, &policy).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete a namespace isolation policy
#[utoipa::path(delete, path = "/admin/v2/clusters/{cluster}/namespaceIsolationPolicies/{policyName}", tag = "clusters",
    params(("cluster" = String, Path, description = "cluster name"), ("policyName" = String, Path, description = "policy name")),
    responses((status = 204, description = "deleted"),
        BadRequest, Unauthorized, Forbidden, NotFound, Unavailable))]
async fn delete_isolation_policy(
    State(s): State<AppState>,
    auth: AuthContext,
    Path(p): Path<PolicyPath>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::UpdateCluster, Resource::Cluster).await?;
    s.broker.admin().delete_isolation_policy(&p.cluster, &p.policy_name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// How the isolation policies place each active broker of a cluster
#[utoipa::path(get, path = "/admin/v2/clusters/{cluster}/namespaceIsolationPolicies/brokers", tag = "clusters",
    params(("cluster" = String, Path, description = "cluster name")),
    responses((status = 200, description = "one entry per active broker", body = [BrokerIsolation]),
        BadRequest, Unauthorized, Forbidden, NotFound, Unavailable))]
async fn list_brokers_isolation(
    State(s): State<AppState>,
    auth: AuthContext,
    Path(cluster): Path<String>,
) -> ApiResult<Json<Vec<BrokerIsolation>>> {
    auth.check(Operation::GetCluster, Resource::Cluster).await?;
    let policies = s.broker.admin().list_isolation_policies(&cluster).await?;
    // The active brokers a broker knows: itself (as `GET /brokers/{cluster}` answers).
    let brokers = if cluster == s.broker.cluster() { vec![s.broker.broker_id().to_string()] } else { vec![] };
    Ok(Json(brokers.iter().map(|b| magnetar_broker::broker_isolation(&policies, b)).collect()))
}

#[derive(Deserialize)]
struct BrokerPath {
    cluster: String,
    broker: String,
}

/// How the isolation policies place one broker
#[utoipa::path(get, path = "/admin/v2/clusters/{cluster}/namespaceIsolationPolicies/brokers/{broker}", tag = "clusters",
    params(("cluster" = String, Path, description = "cluster name"), ("broker" = String, Path, description = "`host:port`")),
    responses((status = 200, description = "the policy placing it, if any", body = BrokerIsolation),
        BadRequest, Unauthorized, Forbidden, NotFound, Unavailable))]
async fn get_broker_isolation(
    State(s): State<AppState>,
    auth: AuthContext,
    Path(p): Path<BrokerPath>,
) -> ApiResult<Json<BrokerIsolation>> {
    auth.check(Operation::GetCluster, Resource::Cluster).await?;
    let policies = s.broker.admin().list_isolation_policies(&p.cluster).await?;
    Ok(Json(magnetar_broker::broker_isolation(&policies, &p.broker)))
}
