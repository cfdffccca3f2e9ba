//! Schema policies (Pulsar's admin API): the compatibility strategy the schema registry judges
//! new versions by, its deprecated auto-update predecessor, whether producers may register
//! schemas implicitly and whether producers without a schema are refused — per namespace
//! (`/admin/v2/namespaces/{t}/{ns}/...`) and per topic (`/admin/v2/persistent/{t}/{ns}/{topic}/...`).
//! Pulsar sets the strategies with PUT, the flags with POST; these paths keep its verbs.

use crate::AppState;
use crate::error::{
    ApiResult, BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, PreconditionFailed, Unauthorized,
    Unavailable,
};
use crate::extract::{AuthContext, JsonBody, NamespaceParam, Query, TopicParam};
use crate::routes::topic_policies::AppliedQuery;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use magnetar_auth::Operation;
use magnetar_core::{NamespaceName, Policies, SchemaAutoUpdateCompatibilityStrategy, SchemaCompatibilityStrategy};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_schema_compatibility_strategy, set_schema_compatibility_strategy))
        .routes(routes!(get_schema_auto_update_strategy, set_schema_auto_update_strategy))
        .routes(routes!(get_allow_auto_update_schema, set_allow_auto_update_schema))
        .routes(routes!(get_schema_validation_enforced, set_schema_validation_enforced))
        .routes(routes!(
            get_topic_schema_compatibility_strategy,
            set_topic_schema_compatibility_strategy,
            remove_topic_schema_compatibility_strategy
        ))
        .routes(routes!(get_topic_schema_validation_enforced, set_topic_schema_validation_enforced))
}

/// Changes one namespace's policies (the one write path of this file's namespace handlers).
async fn update(
    s: &AppState,
    name: &NamespaceName,
    change: impl Fn(&mut Policies) + Send + Sync,
) -> ApiResult<StatusCode> {
    s.broker
        .admin()
        .update_policies(name, |p| {
            change(p);
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Get the schema compatibility strategy of a namespace
///
/// `UNDEFINED` when it sets none: its auto-update strategy applies if set, else the broker's rule
/// (a new version must keep the type).
#[utoipa::path(get, path = "/admin/v2/namespaces/{tenant}/{namespace}/schemaCompatibilityStrategy",
    tag = "namespaces", params(NamespaceParam),
    responses((status = 200, description = "the strategy", body = SchemaCompatibilityStrategy),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn get_schema_compatibility_strategy(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<Json<SchemaCompatibilityStrategy>> {
    auth.check(Operation::GetNamespacePolicies, &name).await?;
    let p = s.broker.admin().get_policies(&name).await?;
    Ok(Json(p.schema_compatibility_strategy.unwrap_or(SchemaCompatibilityStrategy::Undefined)))
}

/// Set the schema compatibility strategy of a namespace
///
/// The schema registry judges new versions of the namespace's topics by it (a topic's own
/// strategy wins); `UNDEFINED` inherits.
#[utoipa::path(put, path = "/admin/v2/namespaces/{tenant}/{namespace}/schemaCompatibilityStrategy",
    tag = "namespaces", params(NamespaceParam), request_body = SchemaCompatibilityStrategy,
    responses((status = 204, description = "set"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn set_schema_compatibility_strategy(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    JsonBody(strategy): JsonBody<SchemaCompatibilityStrategy>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::SetNamespacePolicy, &name).await?;
    let strategy = (strategy != SchemaCompatibilityStrategy::Undefined).then_some(strategy);
    update(&s, &name, |p| p.schema_compatibility_strategy = strategy).await
}

/// Get the schema auto-update compatibility strategy of a namespace (deprecated in Pulsar)
///
/// `null` when it sets none.
#[utoipa::path(get, path = "/admin/v2/namespaces/{tenant}/{namespace}/schemaAutoUpdateCompatibilityStrategy",
    tag = "namespaces", params(NamespaceParam),
    responses((status = 200, description = "the strategy, or null", body = Option<SchemaAutoUpdateCompatibilityStrategy>),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn get_schema_auto_update_strategy(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<Json<Option<SchemaAutoUpdateCompatibilityStrategy>>> {
    auth.check(Operation::GetNamespacePolicies, &name).await?;
    Ok(Json(s.broker.admin().get_policies(&name).await?.schema_auto_update_compatibility_strategy))
}

/// Set the schema auto-update compatibility strategy of a namespace (deprecated in Pulsar)
///
/// In force, as in Pulsar, while the compatibility strategy is `UNDEFINED`: `AutoUpdateDisabled`
/// acts as `ALWAYS_INCOMPATIBLE`, the others as the strategy of the same name.
#[utoipa::path(put, path = "/admin/v2/namespaces/{tenant}/{namespace}/schemaAutoUpdateCompatibilityStrategy",
    tag = "namespaces", params(NamespaceParam), request_body = SchemaAutoUpdateCompatibilityStrategy,
    responses((status = 204, description = "set"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn set_schema_auto_update_strategy(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    JsonBody(strategy): JsonBody<SchemaAutoUpdateCompatibilityStrategy>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::SetNamespacePolicy, &name).await?;
    update(&s, &name, |p| p.schema_auto_update_compatibility_strategy = Some(strategy)).await
}

/// Get whether producers may register schema versions in a namespace
///
/// `true` unless set to `false`.
#[utoipa::path(get, path = "/admin/v2/namespaces/{tenant}/{namespace}/isAllowAutoUpdateSchema",
    tag = "namespaces", params(NamespaceParam),
    responses((status = 200, description = "bare `true` or `false`", body = bool),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn get_allow_auto_update_schema(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
) -> ApiResult<Json<bool>> {
    auth.check(Operation::GetNamespacePolicies, &name).await?;
    Ok(Json(s.broker.admin().get_policies(&name).await?.is_allow_auto_update_schema.unwrap_or(true)))
}

/// Set whether producers may register schema versions in a namespace
///
/// Bare `true` or `false`. With `false`, producers (binary protocol producers with a schema,
/// REST produce with a `valueSchema`) may use the topic's registered versions only; the schema
/// endpoints still register versions.
#[utoipa::path(post, path = "/admin/v2/namespaces/{tenant}/{namespace}/isAllowAutoUpdateSchema",
    tag = "namespaces", params(NamespaceParam), request_body(content = bool, description = "bare `true` or `false`"),
    responses((status = 204, description = "set"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn set_allow_auto_update_schema(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    JsonBody(allow): JsonBody<bool>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::SetNamespacePolicy, &name).await?;
    update(&s, &name, |p| p.is_allow_auto_update_schema = Some(allow)).await
}

/// Get whether a namespace refuses producers without a schema on topics with one
#[utoipa::path(get, path = "/admin/v2/namespaces/{tenant}/{namespace}/schemaValidationEnforced",
    tag = "namespaces", params(NamespaceParam, AppliedQuery),
    responses((status = 200, description = "bare `true` or `false`", body = bool),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn get_schema_validation_enforced(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    Query(_applied): Query<AppliedQuery>,
) -> ApiResult<Json<bool>> {
    auth.check(Operation::GetNamespacePolicies, &name).await?;
    // The broker's value is `false`, so the applied value is the namespace's.
    Ok(Json(s.broker.admin().get_policies(&name).await?.schema_validation_enforced))
}

/// Set whether a namespace refuses producers without a schema on topics with one
///
/// Bare `true` or `false`. With `true`, a REST produce without `valueSchema` and a WebSocket
/// producer (which carries no schema) are refused with 409 on a topic that has a schema.
#[utoipa::path(post, path = "/admin/v2/namespaces/{tenant}/{namespace}/schemaValidationEnforced",
    tag = "namespaces", params(NamespaceParam), request_body(content = bool, description = "bare `true` or `false`"),
    responses((status = 204, description = "set"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn set_schema_validation_enforced(
    State(s): State<AppState>,
    auth: AuthContext,
    NamespaceParam(name): NamespaceParam,
    JsonBody(enforced): JsonBody<bool>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::SetNamespacePolicy, &name).await?;
    update(&s, &name, |p| p.schema_validation_enforced = enforced).await
}

/// Get the schema compatibility strategy of a topic
///
/// The topic's own (`null` when it sets none) or, with `applied=true`, the one in force (topic,
/// else namespace, else `UNDEFINED`: the broker's rule).
#[utoipa::path(get, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/schemaCompatibilityStrategy",
    tag = "persistent topic", params(TopicParam, AppliedQuery),
    responses((status = 200, description = "the strategy, or null", body = Option<SchemaCompatibilityStrategy>),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn get_topic_schema_compatibility_strategy(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
    Query(q): Query<AppliedQuery>,
) -> ApiResult<Json<Option<SchemaCompatibilityStrategy>>> {
    auth.check(Operation::GetTopicPolicy, &topic).await?;
    if q.applied {
        return Ok(Json(Some(s.broker.topic_policies().effective(&topic).await?.schema_compatibility_strategy.value)));
    }
    Ok(Json(s.broker.topic_policies().get(&topic).await?.schema_compatibility_strategy))
}

/// Set the schema compatibility strategy of a topic
///
/// The schema registry judges the topic's new versions by it.
#[utoipa::path(put, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/schemaCompatibilityStrategy",
    tag = "persistent topic", params(TopicParam), request_body = SchemaCompatibilityStrategy,
    responses((status = 204, description = "set"),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn set_topic_schema_compatibility_strategy(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
    JsonBody(strategy): JsonBody<SchemaCompatibilityStrategy>,
) -> ApiResult<StatusCode> {
    auth.check(Operation::SetTopicPolicy, &topic).await?;
    let strategy = (strategy != SchemaCompatibilityStrategy::Undefined).then_some(strategy);
    s.broker
        .topic_policies()
        .update(&topic, |t| {
            t.schema_compatibility_strategy = strategy;
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove the schema compatibility strategy of a topic
#[utoipa::path(delete, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/schemaCompatibilityStrategy",
    tag = "persistent topic", params(TopicParam),
    responses((status = 204, description = "removed: the namespace's strategy applies"),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn remove_topic_schema_compatibility_strategy(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
) -> ApiResult<StatusCode> {
    super::change_topic_policies(&s, &auth, &topic, |t| {
        t.schema_compatibility_strategy = None;
        Ok(())
    })
    .await
}

/// Get whether a topic refuses producers without a schema
///
/// The topic's own (`false` when it sets none, as Pulsar answers) or, with `applied=true`, the
/// value in force (topic, else namespace, else `false`).
#[utoipa::path(get, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/schemaValidationEnforced",
    tag = "persistent topic", params(TopicParam, AppliedQuery),
    responses((status = 200, description = "bare `true` or `false`", body = bool),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn get_topic_schema_validation_enforced(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
    Query(q): Query<AppliedQuery>,
) -> ApiResult<Json<bool>> {
    auth.check(Operation::GetTopicPolicy, &topic).await?;
    if q.applied {
        return Ok(Json(s.broker.topic_policies().effective(&topic).await?.schema_validation_enforced.value));
    }
    Ok(Json(s.broker.topic_policies().get(&topic).await?.schema_validation_enforced.unwrap_or(false)))
}

/// Set whether a topic refuses producers without a schema
///
/// Bare `true` or `false`; overrides the namespace's. With `true`, a REST produce without
/// `valueSchema` and a WebSocket producer are refused with 409 while the topic has a schema.
#[utoipa::path(post, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/schemaValidationEnforced",
    tag = "persistent topic", params(TopicParam), request_body(content = bool, description = "bare `true` or `false`"),
    responses((status = 204, description = "set"),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn set_topic_schema_validation_enforced(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
    JsonBody(enforced): JsonBody<bool>,
) -> ApiResult<StatusCode> {
    super::change_topic_policies(&s, &auth, &topic, |t| {
        t.schema_validation_enforced = Some(enforced);
        Ok(())
    })
    .await
}
