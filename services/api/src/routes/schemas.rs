//! Pulsar's schema registry (`/admin/v2/schemas/{tenant}/{namespace}/{topic}/...`): versions of
//! a topic's schema, stored for clients and tools. Magnetar does not check message payloads
//! against them; a new version is judged by the topic's schema compatibility strategy in force
//! (what each checks: `magnetar_broker::schema_compat`).

use crate::AppState;
use crate::error::{
    ApiError, ApiResult, BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, PreconditionFailed, Unauthorized,
    Unavailable,
};
use crate::extract::{AuthContext, JsonBody, Path, TopicParam};
use axum::Json;
use axum::extract::State;
use magnetar_auth::Operation;
use magnetar_broker::schemas::{SchemaPayload, SchemaVersionInfo};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_schema, upload_schema, delete_schema))
        .routes(routes!(get_schema_version))
        .routes(routes!(list_schema_versions))
        .routes(routes!(check_schema_compatibility))
        .routes(routes!(get_version_of_schema))
}

/// Pulsar's `GetAllVersionsSchemaResponse`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct AllVersions {
    get_schema_responses: Vec<SchemaVersionInfo>,
}

/// Pulsar's `PostSchemaResponse`, `DeleteSchemaResponse` and `LongSchemaVersion`.
#[derive(Serialize, ToSchema)]
struct VersionAnswer {
    version: i64,
}

/// Pulsar's `IsCompatibilityResponse`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct CompatibilityAnswer {
    is_compatibility: bool,
    /// The strategy in force (`UNDEFINED`: the broker's rule, the type must be kept).
    schema_compatibility_strategy: &'static str,
    /// Why not, when not (Magnetar extension).
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// Get the latest version of a topic's schema
#[utoipa::path(get, path = "/admin/v2/schemas/{tenant}/{namespace}/{topic}/schema", tag = "schemas",
    params(TopicParam),
    responses((status = 200, description = "the schema", body = SchemaVersionInfo),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn get_schema(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
) -> ApiResult<Json<SchemaVersionInfo>> {
    auth.check(Operation::GetSchema, &topic).await?;
    Ok(Json(s.broker.topics().schema(&topic).await?))
}

#[derive(Deserialize)]
struct VersionPath {
    version: String,
}

/// Get one version of a topic's schema
#[utoipa::path(get, path = "/admin/v2/schemas/{tenant}/{namespace}/{topic}/schema/{version}", tag = "schemas",
    params(TopicParam, ("version" = i64, Path, description = "schema version")),
    responses((status = 200, description = "the schema", body = SchemaVersionInfo),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn get_schema_version(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
    Path(p): Path<VersionPath>,
) -> ApiResult<Json<SchemaVersionInfo>> {
    auth.check(Operation::GetSchema, &topic).await?;
    let version: i64 =
        p.version.parse().map_err(|_| ApiError::bad_request(format!("invalid schema version `{}`", p.version)))?;
    Ok(Json(s.broker.topics().schema_version(&topic, version).await?))
}

/// List every version of a topic's schema since its last deletion
#[utoipa::path(get, path = "/admin/v2/schemas/{tenant}/{namespace}/{topic}/schemas", tag = "schemas",
    params(TopicParam),
    responses((status = 200, description = "the versions, oldest first", body = AllVersions),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn list_schema_versions(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
) -> ApiResult<Json<AllVersions>> {
    auth.check(Operation::GetSchema, &topic).await?;
    Ok(Json(AllVersions { get_schema_responses: s.broker.topics().schemas(&topic).await? }))
}

/// Upload a schema
///
/// Stored as the next version; an upload identical to a stored version answers that version.
/// 409 when the topic's schema compatibility strategy in force refuses it (by default: when its
/// type differs from the current schema's).
#[utoipa::path(post, path = "/admin/v2/schemas/{tenant}/{namespace}/{topic}/schema", tag = "schemas",
    params(TopicParam), request_body = SchemaPayload,
    responses((status = 200, description = "its version", body = VersionAnswer),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn upload_schema(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
    JsonBody(payload): JsonBody<SchemaPayload>,
) -> ApiResult<Json<VersionAnswer>> {
    auth.check(Operation::UpdateSchema, &topic).await?;
    Ok(Json(VersionAnswer { version: s.broker.topics().upload_schema(&topic, &payload).await? }))
}

/// Delete a topic's schema
///
/// Versions keep counting: the deletion takes a version, which is answered.
#[utoipa::path(delete, path = "/admin/v2/schemas/{tenant}/{namespace}/{topic}/schema", tag = "schemas",
    params(TopicParam),
    responses((status = 200, description = "the deletion's version", body = VersionAnswer),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn delete_schema(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
) -> ApiResult<Json<VersionAnswer>> {
    auth.check(Operation::DeleteSchema, &topic).await?;
    Ok(Json(VersionAnswer { version: s.broker.topics().delete_schema(&topic).await? }))
}

/// Check whether a schema may follow the topic's current one
#[utoipa::path(post, path = "/admin/v2/schemas/{tenant}/{namespace}/{topic}/compatibility", tag = "schemas",
    params(TopicParam), request_body = SchemaPayload,
    responses((status = 200, description = "the verdict", body = CompatibilityAnswer),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn check_schema_compatibility(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
    JsonBody(payload): JsonBody<SchemaPayload>,
) -> ApiResult<Json<CompatibilityAnswer>> {
    auth.check(Operation::GetSchema, &topic).await?;
    let reason = s.broker.topics().schema_incompatibility(&topic, &payload).await?;
    let strategy = s.broker.topics().schema_compatibility_strategy(&topic).await?;
    Ok(Json(CompatibilityAnswer {
        is_compatibility: reason.is_none(),
        schema_compatibility_strategy: strategy.as_str(),
        reason,
    }))
}

/// Get the version of a stored schema
///
/// 404 when no live version is identical to the given schema.
#[utoipa::path(post, path = "/admin/v2/schemas/{tenant}/{namespace}/{topic}/version", tag = "schemas",
    params(TopicParam), request_body = SchemaPayload,
    responses((status = 200, description = "its version", body = VersionAnswer),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, PayloadTooLarge, Unavailable))]
async fn get_version_of_schema(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
    JsonBody(payload): JsonBody<SchemaPayload>,
) -> ApiResult<Json<VersionAnswer>> {
    auth.check(Operation::GetSchema, &topic).await?;
    match s.broker.topics().schema_version_of(&topic, &payload).await? {
        Some(version) => Ok(Json(VersionAnswer { version })),
        None => Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            format!("no version of the schema of topic {topic} is the given schema"),
        )),
    }
}
