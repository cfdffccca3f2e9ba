//! Pulsar's persistence policies: `persistence` of a namespace and of a topic (with `applied`),
//! body `{"bookkeeperEnsemble", "bookkeeperWriteQuorum", "bookkeeperAckQuorum",
//! "managedLedgerMaxMarkDeleteRate"}`. Magnetar's copies are brokers, and until replicated
//! durability exists a broker keeps one: a quorum above 1 is refused with 400 and a reason, as
//! Pulsar refuses one above `managedLedgerMaxEnsembleSize` (docs/durability.md).

use super::topic_policies::AppliedQuery;
use crate::AppState;
use crate::error::{
    ApiResult, BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, PreconditionFailed, Unauthorized,
    Unavailable,
};
use crate::extract::{AuthContext, JsonBody, NamespaceParam, Query, TopicParam};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use magnetar_auth::Operation;
use magnetar_core::PersistencePolicies;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_persistence, set_persistence, remove_persistence)).routes(routes!(
        get_topic_persistence,
        set_topic_persistence,
        remove_topic_persistence
    ))
}

namespace_policy!(
    get_persistence,
    set_persistence,
    remove_persistence,
    "/admin/v2/namespaces/{tenant}/{namespace}/persistence",
    PersistencePolicies,
    get = "Get the persistence policies of a namespace (copies of each message and acknowledgement quorum)",
    set = "Set the persistence policies of a namespace: ensemble >= write quorum >= ack quorum > 0, each at most the copies a broker keeps (up to 16 with durability mode replicated, 1 otherwise; more is refused with 400)",
    remove = "Remove the persistence policies of a namespace: the broker's (one copy) apply",
    read = |p, _c| p.persistence,
    write = |p, _c, v| p.persistence = Some(v),
    clear = |p, _c| p.persistence = None,
);

topic_policy!(
    get_topic_persistence,
    set_topic_persistence,
    remove_topic_persistence,
    "/admin/v2/persistent/{tenant}/{namespace}/{topic}/persistence",
    PersistencePolicies,
    get = "Get the persistence policies of a topic",
    set = "Set the persistence policies of a topic (the namespace's rules apply)",
    remove = "Remove the persistence policies of a topic: the namespace's apply",
    own = |t| t.persistence,
    applied = |e| e.persistence.value,
    write = |t, v| t.persistence = Some(v),
    clear = |t| t.persistence = None,
);
