//! Pulsar's broker endpoints beyond health and discovery: version, readiness, the dynamic
//! configuration (Magnetar has no dynamic settings: every setting comes from the configuration
//! file or environment at start) and the namespaces a broker owns.

use crate::AppState;
use crate::error::{
    ApiError, ApiResult, BadRequest, Forbidden, NotFound, PreconditionFailed, Unauthorized, Unavailable,
};
use crate::extract::{AuthContext, Path};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use magnetar_auth::{Operation, Resource};
use magnetar_broker::{BrokerError, Entity};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_version))
        .routes(routes!(broker_ready))
        .routes(routes!(list_local_brokers))
        .routes(routes!(list_dynamic_configuration_names))
        .routes(routes!(get_dynamic_configuration_values))
        .routes(routes!(update_dynamic_configuration))
        .routes(routes!(delete_dynamic_configuration))
        .routes(routes!(get_owned_namespaces))
        .routes(routes!(check_backlog_quotas))
        .routes(routes!(shutdown_broker))
        .routes(routes!(get_bundle_ownership))
        .routes(routes!(force_takeover))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
struct TakeoverQuery {
    /// Must be `true`: the caller accepts losing what the answer lists.
    #[serde(default)]
    accept_data_loss: bool,
}

#[derive(Deserialize)]
struct TakeoverPath {
    cluster: String,
    tenant: String,
    namespace: String,
    bundle: String,
}

/// Take over a bundle from a dead broker (Magnetar)
///
/// A bundle held by a broker whose lease expired is not served until that broker returns, since
/// the tail of its partitions not yet in the object store exists only on its disk. This gives
/// the bundle to a live broker anyway, with `acceptDataLoss=true`: each partition continues from
/// the end of what the object store holds (listed in the answer), and what the dead broker
/// acknowledged after that is lost. Refused (409) while the owner is alive: unload the bundle,
/// which hands it over without loss. Superusers only.
#[utoipa::path(post, path = "/admin/v2/brokers/{cluster}/bundles/{tenant}/{namespace}/{bundle}/takeover", tag = "brokers",
    params(("cluster" = String, Path, description = "cluster name"), ("tenant" = String, Path, description = "tenant"),
        ("namespace" = String, Path, description = "namespace"),
        ("bundle" = String, Path, description = "a bundle range, `0x00000000_0x3fffffff`"), TakeoverQuery),
    responses((status = 200, description = "taken over: what continues where, and what may be lost", body = magnetar_broker::Takeover),
        BadRequest, Unauthorized, Forbidden, NotFound, crate::error::Conflict, PreconditionFailed, Unavailable))]
async fn force_takeover(
    State(s): State<AppState>,
    auth: AuthContext,
    Path(p): Path<TakeoverPath>,
    crate::extract::Query(q): crate::extract::Query<TakeoverQuery>,
) -> ApiResult<Json<magnetar_broker::Takeover>> {
    let ns: magnetar_core::NamespaceName =
        format!("{}/{}", p.tenant, p.namespace).parse().map_err(|e| ApiError::bad_request(format!("{e}")))?;
    auth.check(Operation::UnloadNamespace, &ns).await?;
    if p.cluster != s.broker.cluster() {
        return Err(BrokerError::NotFound(Entity::Cluster(p.cluster)).into());
    }
    if !q.accept_data_loss {
        return Err(ApiError::bad_request(
            "a forced takeover abandons what the dead broker acknowledged but had not uploaded: \
             repeat with acceptDataLoss=true to accept that, or restart that broker on its volume to lose nothing",
        ));
    }
    let range = s.broker.topics().bundle(&ns, &p.bundle).await?;
    Ok(Json(s.broker.force_takeover(&ns, &range).await?))
}

/// The bundle ownership table of the tier (Magnetar)
///
/// Every bundle in use with its state (`free`, `assigning`, `owned`, `releasing`), owner and
/// epoch. `unavailable`: held by a broker whose lease has expired; its partitions are not served
/// until it returns (nobody takes over a tail that only its disk holds). Empty when the broker
/// tier is off (a single broker owns everything).
#[utoipa::path(get, path = "/admin/v2/brokers/{cluster}/bundles", tag = "brokers",
    params(("cluster" = String, Path, description = "cluster name")),
    responses((status = 200, description = "ownership rows", body = [magnetar_broker::tier::BundleView]),
        Unauthorized, Forbidden, NotFound, Unavailable))]
async fn get_bundle_ownership(
    State(s): State<AppState>,
    auth: AuthContext,
    Path(cluster): Path<String>,
) -> ApiResult<Json<Vec<magnetar_broker::tier::BundleView>>> {
    auth.check(Operation::ListBrokers, Resource::Cluster).await?;
    if cluster != s.broker.cluster() {
        return Err(BrokerError::NotFound(Entity::Cluster(cluster)).into());
    }
    if !s.broker.tier().enabled() {
        return Ok(Json(Vec::new()));
    }
    Ok(Json(s.broker.tier().view().await?))
}

/// Apply the backlog quotas now
///
/// Checks every loaded topic against its backlog quotas and applies their policies (hold,
/// refuse or evict), as the broker's periodic pass does every second.
#[utoipa::path(get, path = "/admin/v2/brokers/backlog-quota-check", tag = "brokers",
    responses((status = 204, description = "checked"), Unauthorized, Forbidden))]
async fn check_backlog_quotas(State(s): State<AppState>, auth: AuthContext) -> ApiResult<StatusCode> {
    auth.check(Operation::UpdateBrokerConfiguration, Resource::Cluster).await?;
    s.broker.check_backlog_quotas().await;
    Ok(StatusCode::NO_CONTENT)
}

/// The broker's version
#[utoipa::path(get, path = "/admin/v2/brokers/version", tag = "brokers",
    responses((status = 200, description = "Magnetar's version", body = String, content_type = "text/plain"),
        Unauthorized))]
async fn get_version(_auth: AuthContext) -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// Whether the broker is ready
///
/// Text `ok` once the broker serves; 503 while it starts or shuts down.
#[utoipa::path(get, path = "/admin/v2/brokers/ready", tag = "brokers",
    responses((status = 200, description = "ready", body = String, content_type = "text/plain", example = "ok"),
        Unauthorized, Forbidden, Unavailable))]
async fn broker_ready(State(s): State<AppState>, auth: AuthContext) -> ApiResult<&'static str> {
    auth.check(Operation::BrokerHealth, Resource::Cluster).await?;
    if s.broker.is_ready() { Ok("ok") } else { Err(BrokerError::ShuttingDown.into()) }
}

/// List the active brokers of this broker's cluster
///
/// The advertised addresses (`host:port`) of the brokers whose membership lease is live, as
/// `/admin/v2/brokers/{cluster}` answers for this broker's cluster.
#[utoipa::path(get, path = "/admin/v2/brokers", tag = "brokers",
    responses((status = 200, description = "broker addresses", body = [String]), Unauthorized, Forbidden, Unavailable))]
async fn list_local_brokers(State(s): State<AppState>, auth: AuthContext) -> ApiResult<Json<Vec<String>>> {
    auth.check(Operation::ListBrokers, Resource::Cluster).await?;
    let brokers = s.broker.live_brokers().await?;
    Ok(Json(brokers.into_iter().map(|b| b.registration.advertised_address).collect()))
}

/// List the names of the settings that can change at run time
///
/// Empty: Magnetar's settings are read at start (see `/brokers/configuration/runtime` for them).
#[utoipa::path(get, path = "/admin/v2/brokers/configuration", tag = "brokers",
    responses((status = 200, description = "setting names", body = [String]), Unauthorized, Forbidden))]
async fn list_dynamic_configuration_names(auth: AuthContext) -> ApiResult<Json<Vec<String>>> {
    auth.check(Operation::GetBrokerConfiguration, Resource::Cluster).await?;
    Ok(Json(Vec::new()))
}

/// Get the values of the settings changed at run time
///
/// Empty: no setting changes at run time.
#[utoipa::path(get, path = "/admin/v2/brokers/configuration/values", tag = "brokers",
    responses((status = 200, description = "setting name to value", body = BTreeMap<String, String>),
        Unauthorized, Forbidden))]
async fn get_dynamic_configuration_values(auth: AuthContext) -> ApiResult<Json<BTreeMap<String, String>>> {
    auth.check(Operation::GetBrokerConfiguration, Resource::Cluster).await?;
    Ok(Json(BTreeMap::new()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigPath {
    config_name: String,
    #[serde(default)]
    config_value: Option<String>,
}

/// 412, as Pulsar answers for a setting that is not dynamic.
fn not_dynamic(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::PRECONDITION_FAILED,
        format!(
            "setting {name} is not dynamic: Magnetar reads its settings at start (configuration file, environment)"
        ),
    )
}

/// Change a setting at run time
///
/// Always 412: no Magnetar setting is dynamic (Pulsar's answer for a name not in its dynamic
/// list). Change the configuration and restart the broker instead.
#[utoipa::path(post, path = "/admin/v2/brokers/configuration/{configName}/{configValue}", tag = "brokers",
    params(("configName" = String, Path, description = "setting name"), ("configValue" = String, Path, description = "value")),
    responses((status = 204, description = "never: no setting is dynamic"), Unauthorized, Forbidden, PreconditionFailed))]
async fn update_dynamic_configuration(auth: AuthContext, Path(p): Path<ConfigPath>) -> ApiResult<StatusCode> {
    auth.check(Operation::UpdateBrokerConfiguration, Resource::Cluster).await?;
    let _ = p.config_value;
    Err(not_dynamic(&p.config_name))
}

/// Reset a setting changed at run time
///
/// Always 412: no Magnetar setting is dynamic.
#[utoipa::path(delete, path = "/admin/v2/brokers/configuration/{configName}", tag = "brokers",
    params(("configName" = String, Path, description = "setting name")),
    responses((status = 204, description = "never: no setting is dynamic"), Unauthorized, Forbidden, PreconditionFailed))]
async fn delete_dynamic_configuration(auth: AuthContext, Path(p): Path<ConfigPath>) -> ApiResult<StatusCode> {
    auth.check(Operation::UpdateBrokerConfiguration, Resource::Cluster).await?;
    Err(not_dynamic(&p.config_name))
}

/// Pulsar's `NamespaceOwnershipStatus`.
#[derive(Serialize, ToSchema)]
struct NamespaceOwnershipStatus {
    /// Always `shared`: Magnetar has no isolation tier yet.
    broker_assignment: &'static str,
    is_controlled: bool,
    is_active: bool,
}

#[derive(Deserialize)]
struct OwnedPath {
    cluster: String,
    broker: String,
}

/// The namespaces a broker owns
///
/// Keyed `tenant/namespace/range`. Alone: the bundles of which this broker has a partition
/// loaded, and only this broker answers for itself (404 for another broker or cluster). In a
/// tier (`[broker.tier] enabled`): the bundles the broker owns, and any broker answers for any
/// live broker of its cluster.
#[utoipa::path(get, path = "/admin/v2/brokers/{cluster}/{broker}/ownedNamespaces", tag = "brokers",
    params(("cluster" = String, Path, description = "cluster name"),
        ("broker" = String, Path, description = "the broker's `host:port` (Pulsar's broker-webserviceurl)")),
    responses((status = 200, description = "owned namespace bundles", body = BTreeMap<String, NamespaceOwnershipStatus>),
        BadRequest, Unauthorized, Forbidden, NotFound, Unavailable))]
async fn get_owned_namespaces(
    State(s): State<AppState>,
    auth: AuthContext,
    Path(p): Path<OwnedPath>,
) -> ApiResult<Json<BTreeMap<String, NamespaceOwnershipStatus>>> {
    auth.check(Operation::GetBrokerConfiguration, Resource::Cluster).await?;
    if p.cluster != s.broker.cluster() {
        return Err(BrokerError::NotFound(Entity::Cluster(p.cluster)).into());
    }
    let me = s.broker.broker_id();
    let broker = p.broker.trim_start_matches("http://").trim_start_matches("https://");
    // In a tier every broker answers for any broker of the cluster, from the ownership table.
    let tier = s.broker.tier();
    let known =
        tier.enabled() && s.broker.live_brokers().await?.iter().any(|b| b.registration.advertised_address == broker);
    if broker != me && !known {
        return Err(
            BrokerError::NotFound(Entity::Message(format!("broker {} of cluster {}", p.broker, p.cluster))).into()
        );
    }
    let owned: std::collections::BTreeSet<String> = if tier.enabled() {
        tier.owned_by(broker).await?.into_iter().collect()
    } else {
        s.broker.topics().owned_bundles().await?
    };
    Ok(Json(
        owned
            .into_iter()
            .map(|bundle| {
                let status =
                    NamespaceOwnershipStatus { broker_assignment: "shared", is_controlled: false, is_active: true };
                (bundle, status)
            })
            .collect(),
    ))
}

/// Pulsar's query parameters of `brokers/shutdown`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct ShutdownQuery {
    /// Accepted for compatibility: topics are not unloaded one by one, the broker drains as on
    /// SIGTERM (sessions closed, cursors checkpointed, the WAL flushed).
    #[allow(dead_code)]
    max_concurrent_unload_per_sec: Option<i32>,
    /// Accepted for compatibility; a graceful stop never loses acknowledged data either way.
    #[allow(dead_code)]
    forced_terminate_topic: Option<bool>,
}

/// Shut this broker down gracefully
///
/// Answers 204 at once, then stops as on SIGTERM: readiness off, new requests refused,
/// sessions closed, cursors checkpointed, the write-ahead log flushed, the process exits with
/// status 0. Superusers only.
#[utoipa::path(post, path = "/admin/v2/brokers/shutdown", tag = "brokers", params(ShutdownQuery),
    responses((status = 204, description = "the shutdown has begun"), BadRequest, Unauthorized, Forbidden))]
async fn shutdown_broker(
    State(s): State<AppState>,
    auth: AuthContext,
    crate::extract::Query(_q): crate::extract::Query<ShutdownQuery>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::ShutdownBroker, Resource::Cluster).await?;
    s.broker.request_stop();
    Ok(StatusCode::NO_CONTENT)
}
