//! Message deduplication policies, Pulsar's paths and bare bodies: `deduplication` and
//! `deduplicationSnapshotInterval` of a namespace, `deduplicationEnabled` and
//! `deduplicationSnapshotInterval` of a topic (with `applied`). The broker drops a message whose
//! producer name and sequence id it already stored (answered as stored, with id `-1:-1`); see
//! docs/deduplication.md.

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
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_deduplication, set_deduplication, remove_deduplication))
        .routes(routes!(get_snapshot_interval, set_snapshot_interval, remove_snapshot_interval))
        .routes(routes!(get_topic_deduplication, set_topic_deduplication, remove_topic_deduplication))
        .routes(routes!(get_topic_snapshot_interval, set_topic_snapshot_interval, remove_topic_snapshot_interval))
}

namespace_policy!(
    get_deduplication,
    set_deduplication,
    remove_deduplication,
    "/admin/v2/namespaces/{tenant}/{namespace}/deduplication",
    bool,
    get = "Get whether a namespace deduplicates messages",
    set = "Enable or disable message deduplication for a namespace (bare `true` or `false`): a message whose producer name and sequence id were already stored is answered as stored, with id `-1:-1`, and not stored again",
    remove = "Remove a namespace's deduplication setting: the broker's applies",
    read = |p, _c| p.deduplication_enabled,
    write = |p, _c, v| p.deduplication_enabled = Some(v),
    clear = |p, _c| p.deduplication_enabled = None,
);

namespace_policy!(
    get_snapshot_interval,
    set_snapshot_interval,
    remove_snapshot_interval,
    "/admin/v2/namespaces/{tenant}/{namespace}/deduplicationSnapshotInterval",
    i32,
    get = "Get the deduplication snapshot interval of a namespace (seconds)",
    set = "Set the deduplication snapshot interval of a namespace: seconds between snapshots of the producers' sequence ids while messages arrive (a snapshot also follows every `broker.deduplication.entries_interval` messages)",
    remove =
        "Remove the deduplication snapshot interval of a namespace (Magnetar; Pulsar's REST API has no DELETE here)",
    read = |p, _c| p.deduplication_snapshot_interval_seconds,
    write = |p, _c, v| p.deduplication_snapshot_interval_seconds = Some(v),
    clear = |p, _c| p.deduplication_snapshot_interval_seconds = None,
);

topic_policy!(
    get_topic_deduplication,
    set_topic_deduplication,
    remove_topic_deduplication,
    "/admin/v2/persistent/{tenant}/{namespace}/{topic}/deduplicationEnabled",
    bool,
    get = "Get whether a topic deduplicates messages",
    set = "Enable or disable message deduplication for a topic (bare `true` or `false`)",
    remove = "Remove a topic's deduplication setting: the namespace's applies",
    own = |t| t.deduplication_enabled,
    applied = |e| e.deduplication_enabled.value,
    write = |t, v| t.deduplication_enabled = Some(v),
    clear = |t| t.deduplication_enabled = None,
);

topic_policy!(
    get_topic_snapshot_interval,
    set_topic_snapshot_interval,
    remove_topic_snapshot_interval,
    "/admin/v2/persistent/{tenant}/{namespace}/{topic}/deduplicationSnapshotInterval",
    i32,
    get = "Get the deduplication snapshot interval of a topic (seconds)",
    set = "Set the deduplication snapshot interval of a topic (seconds)",
    remove = "Remove the deduplication snapshot interval of a topic: the namespace's applies",
    own = |t| t.deduplication_snapshot_interval_seconds,
    applied = |e| e.deduplication_snapshot_interval_seconds.value,
    write = |t, v| t.deduplication_snapshot_interval_seconds = Some(v),
    clear = |t| t.deduplication_snapshot_interval_seconds = None,
);
