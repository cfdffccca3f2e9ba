//! Request extraction shared by the routes: lenient JSON bodies (Pulsar tools send bare
//! scalars such as `30` or `"Prefix"`), the caller's identity, and resource names parsed into
//! types once, from the path, for the whole way to the broker. Every rejection is an `ApiError`
//! (a `{"reason"}` body), and the path extractors describe their parameters for the OpenAPI
//! description (`params(TopicParam)` in a handler's `#[utoipa::path]`).

use crate::AppState;
use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use magnetar_auth::authorize::topic_grant_key;
use magnetar_auth::{Auth, AuthError, Operation, Principal, Resource, Visibility};
use magnetar_broker::{BrokerError, Caller};
use magnetar_core::{NamespaceName, SubscriptionName, TenantName, TopicName};
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::sync::Arc;

/// A JSON body parsed whatever the content type says; malformed JSON is a 400 with a reason.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + utoipa::PartialSchema> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::new(e.status(), format!("cannot read request body: {}", e.body_text())))?;
        refuse_array::<T>(&bytes)?;
        from_json(&bytes).map(JsonBody).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
    }
}

/// Parses a body. JSON Schema (and Pulsar's Jackson) take `5.0` for the integer 5; serde does
/// not, so a body that fails is parsed again with integral numbers made integers (the first
/// error is the one reported).
fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    match serde_json::from_slice(bytes) {
        Ok(v) => Ok(v),
        Err(e) => match serde_json::from_slice::<serde_json::Value>(bytes) {
            Ok(value) => serde_json::from_value(integral(value)).map_err(|_| e),
            Err(_) => Err(e),
        },
    }
}

/// serde's derive reads a struct from a JSON array too (`[]` is a `TenantInfo` with every field
/// defaulted, `[60, 64]` a `RetentionPolicies`); the description says object, and so does the
/// server: an array where the body's schema has none is a 400.
fn refuse_array<T: utoipa::PartialSchema>(bytes: &[u8]) -> Result<(), ApiError> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') && !admits_array(&T::schema()) {
        return Err(ApiError::bad_request("invalid JSON body: expected an object, not an array"));
    }
    Ok(())
}

fn admits_array(schema: &utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>) -> bool {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{Schema, SchemaType, Type};
    match schema {
        RefOr::T(Schema::Array(_)) => true,
        RefOr::T(Schema::Object(o)) => match &o.schema_type {
            SchemaType::Type(t) => *t == Type::Array,
            SchemaType::Array(ts) => ts.contains(&Type::Array),
            SchemaType::AnyValue => true,
        },
        RefOr::T(Schema::OneOf(o)) => o.items.iter().any(admits_array),
        RefOr::T(Schema::AnyOf(o)) => o.items.iter().any(admits_array),
        RefOr::T(Schema::AllOf(o)) => o.items.iter().all(admits_array),
        // A named schema or a future kind: let serde decide.
        _ => true,
    }
}

/// `value` with every number that is a whole float within `i64` made an integer.
pub fn integral(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 => {
                Value::from(f as i64)
            }
            _ => Value::Number(n),
        },
        Value::Array(a) => Value::Array(a.into_iter().map(integral).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, integral(v))).collect()),
        other => other,
    }
}

/// Like `JsonBody` but an empty body, or `null`, gives `None`.
pub struct OptionalJsonBody<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned + utoipa::PartialSchema> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::new(e.status(), format!("cannot read request body: {}", e.body_text())))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJsonBody(None));
        }
        refuse_array::<T>(&bytes)?;
        from_json(&bytes).map(OptionalJsonBody).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
    }
}

/// Who is calling, and the one door to authorization: handlers call
/// `auth.check(Operation::..., &resource).await?` before doing anything. With authentication
/// off every caller is a superuser; with it on, a missing or bad token is a 401 before the
/// handler runs.
#[derive(Clone)]
pub struct AuthContext {
    /// The first role of the token (`None` with authentication off).
    pub role: Option<String>,
    pub superuser: bool,
    pub principal: Arc<Principal>,
    auth: Arc<Auth>,
}

impl std::fmt::Debug for AuthContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthContext").field("role", &self.role).field("superuser", &self.superuser).finish()
    }
}

impl AuthContext {
    fn new(principal: Arc<Principal>, auth: Arc<Auth>) -> Self {
        AuthContext { role: principal.role().map(String::from), superuser: principal.superuser, principal, auth }
    }

    /// Allows `op` on `resource` or answers 403 (the same for existing and missing resources).
    pub async fn check<'a>(&self, op: Operation, resource: impl Into<Resource<'a>>) -> Result<(), ApiError> {
        Ok(self.auth.check(&self.principal, op, resource.into()).await?)
    }

    /// When the token expires (`None`: never, or authentication off); a WebSocket session closes
    /// its connection then.
    pub fn expires_at(&self) -> Option<std::time::SystemTime> {
        let secs = u64::try_from(self.principal.expires_at?).unwrap_or(0);
        Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
    }

    /// Whether the token is still good: not expired and not revoked since the request began.
    /// Long-lived sessions (WebSocket) check this periodically and close when it turns false.
    pub fn still_valid(&self) -> bool {
        let expired = self.expires_at().is_some_and(|e| std::time::SystemTime::now() > e);
        !expired && !self.auth.is_revoked(&self.principal)
    }

    /// The caller as the broker sees it: the broker authorizes what it does on its behalf.
    pub fn caller(&self) -> Caller {
        Caller::new(Arc::clone(&self.principal))
    }

    /// The tenants the caller administers (all for a superuser).
    pub async fn visible_tenants(&self, all: Vec<TenantName>) -> Result<Vec<TenantName>, ApiError> {
        if self.superuser {
            return Ok(all);
        }
        let mut visible = Vec::new();
        for t in all {
            if self.auth.authorizer.can_see_tenant(&self.principal, &t).await? {
                visible.push(t);
            }
        }
        Ok(visible)
    }

    /// A tenant's namespaces the caller may see. Tenant admins get the listing as it is (404
    /// for a missing tenant); others get the namespaces they hold grants in, and a 403 when
    /// there are none, whether or not the tenant exists.
    pub async fn visible_namespaces(
        &self,
        tenant: &TenantName,
        listed: Result<Vec<NamespaceName>, BrokerError>,
    ) -> Result<Vec<NamespaceName>, ApiError> {
        if self.auth.check(&self.principal, Operation::GetTenant, Resource::Tenant(tenant)).await.is_ok() {
            return Ok(listed?);
        }
        let mut visible = Vec::new();
        for n in listed.unwrap_or_default() {
            if !matches!(self.auth.authorizer.namespace_visibility(&self.principal, &n).await?, Visibility::Nothing) {
                visible.push(n);
            }
        }
        if visible.is_empty() {
            return Err(AuthError::Forbidden(format!(
                "role {} is not authorized to list namespaces of tenant {tenant}",
                self.role.as_deref().unwrap_or("(none)")
            ))
            .into());
        }
        Ok(visible)
    }

    /// A namespace's topics (full names, partitions included) the caller may see; 403 when
    /// none, whether or not the namespace exists.
    pub async fn visible_topics(
        &self,
        namespace: &NamespaceName,
        listed: Result<Vec<String>, BrokerError>,
    ) -> Result<Vec<String>, ApiError> {
        if self.superuser {
            return Ok(listed?);
        }
        match self.auth.authorizer.namespace_visibility(&self.principal, namespace).await? {
            Visibility::All => Ok(listed?),
            Visibility::Topics(keys) => Ok(listed?
                .into_iter()
                .filter(|t| t.parse::<TopicName>().is_ok_and(|t| keys.contains(&topic_grant_key(&t))))
                .collect()),
            Visibility::Nothing => Err(AuthError::Forbidden(format!(
                "role {} is not authorized to list topics of namespace {namespace}",
                self.role.as_deref().unwrap_or("(none)")
            ))
            .into()),
        }
    }
}

/// `Authorization: Bearer <jwt>`; `None` without the header, an error for another scheme.
fn bearer(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let value = value.to_str().map_err(|_| ApiError::from(AuthError::Malformed))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Ok(Some(token.trim())),
        _ => Err(AuthError::Malformed.into()),
    }
}

/// Authenticates a request from its headers, or (only when there is no `Authorization`
/// header) from a `token` query value as browsers' WebSocket clients send it, with or without
/// a `Bearer ` prefix. For the WebSocket upgrade and any handler that must authenticate by hand.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    query_token: Option<&str>,
) -> Result<AuthContext, ApiError> {
    let auth = Arc::clone(&state.auth);
    if !auth.enabled() {
        return Ok(AuthContext::new(Arc::new(Principal::anonymous_superuser()), auth));
    }
    let token = match bearer(headers)? {
        Some(t) => Some(t),
        None => query_token.map(|t| t.strip_prefix("Bearer ").unwrap_or(t)),
    };
    let principal = auth.authenticate(token).await?;
    Ok(AuthContext::new(principal, auth))
}

/// The `token` query parameter of a WebSocket URL (percent-decoded), never logged.
fn query_token(parts: &Parts) -> Option<String> {
    if !parts.uri.path().starts_with("/ws/") {
        return None;
    }
    let axum::extract::Query(mut params) =
        axum::extract::Query::<std::collections::HashMap<String, String>>::try_from_uri(&parts.uri).ok()?;
    params.remove("token")
}

impl FromRequestParts<AppState> for AuthContext {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = query_token(parts);
        authenticate(state, &parts.headers, token.as_deref()).await
    }
}

/// The path's parameters by name (`{tenant}`, `{topic}`, ...), for the typed extractors below.
async fn path_params(parts: &mut Parts, state: &AppState) -> Result<HashMap<String, String>, ApiError> {
    let axum::extract::Path(params) = axum::extract::Path::<HashMap<String, String>>::from_request_parts(parts, state)
        .await
        .map_err(|e| ApiError::bad_request(format!("invalid path: {}", e.body_text())))?;
    Ok(params)
}

fn param<'a>(params: &'a HashMap<String, String>, name: &str) -> Result<&'a str, ApiError> {
    params.get(name).map(String::as_str).ok_or_else(|| ApiError::bad_request(format!("path has no {{{name}}}")))
}

/// `axum::extract::Query`, rejecting with a `{"reason"}` 400 like every other error.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e| ApiError::bad_request(format!("invalid query string: {}", e.body_text())))
    }
}

/// `axum::extract::Path` for the parameters that are not resource names, rejecting with a
/// `{"reason"}` 400.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|e| ApiError::bad_request(format!("invalid path: {}", e.body_text())))
    }
}

/// The WebSocket handshake; a request that is not one is a `{"reason"}` 400.
pub struct WsUpgrade(pub axum::extract::ws::WebSocketUpgrade);

impl<S: Send + Sync> FromRequestParts<S> for WsUpgrade {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::ws::WebSocketUpgrade::from_request_parts(parts, state)
            .await
            .map(WsUpgrade)
            .map_err(|e| ApiError::bad_request(format!("not a WebSocket handshake: {}", e.body_text())))
    }
}

/// `{tenant}` of the path, parsed once (a bad name is Pulsar's 412).
pub struct TenantParam(pub TenantName);

/// `{tenant}/{namespace}` of the path.
pub struct NamespaceParam(pub NamespaceName);

/// `{tenant}/{namespace}/{topic}` of a persistent topic's path.
pub struct TopicParam(pub TopicName);

/// A persistent topic and `{subscription}` of the path.
pub struct SubscriptionParam(pub TopicName, pub SubscriptionName);

/// `{subscription}` of a path that names no topic (namespace-wide subscription operations).
pub struct SubscriptionNameParam(pub SubscriptionName);

fn topic_of(params: &HashMap<String, String>) -> Result<TopicName, ApiError> {
    Ok(TopicName::from_parts(
        "persistent",
        param(params, "tenant")?,
        param(params, "namespace")?,
        param(params, "topic")?,
    )?)
}

impl FromRequestParts<AppState> for TenantParam {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let params = path_params(parts, state).await?;
        Ok(TenantParam(TenantName::new(param(&params, "tenant")?)?))
    }
}

impl FromRequestParts<AppState> for NamespaceParam {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let params = path_params(parts, state).await?;
        Ok(NamespaceParam(NamespaceName::parse_parts(param(&params, "tenant")?, param(&params, "namespace")?)?))
    }
}

impl FromRequestParts<AppState> for TopicParam {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(TopicParam(topic_of(&path_params(parts, state).await?)?))
    }
}

impl FromRequestParts<AppState> for SubscriptionNameParam {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let params = path_params(parts, state).await?;
        Ok(SubscriptionNameParam(SubscriptionName::new(param(&params, "subscription")?)?))
    }
}

impl FromRequestParts<AppState> for SubscriptionParam {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let params = path_params(parts, state).await?;
        let sub = SubscriptionName::new(param(&params, "subscription")?)?;
        Ok(SubscriptionParam(topic_of(&params)?, sub))
    }
}

/// A name segment of the path, as the OpenAPI description lists it.
fn name_param(name: &str, description: &str) -> utoipa::openapi::path::Parameter {
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    let schema = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(magnetar_core::names::NAME_PATTERN))
        .max_length(Some(magnetar_core::names::MAX_NAME_LEN));
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(utoipa::openapi::Required::True)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

type Params = Vec<utoipa::openapi::path::Parameter>;
type ParamIn = Option<utoipa::openapi::path::ParameterIn>;

impl utoipa::IntoParams for TenantParam {
    fn into_params(_: impl Fn() -> ParamIn) -> Params {
        vec![name_param("tenant", "tenant name")]
    }
}

impl utoipa::IntoParams for NamespaceParam {
    fn into_params(f: impl Fn() -> ParamIn) -> Params {
        let mut p = TenantParam::into_params(f);
        p.push(name_param("namespace", "namespace name, without its tenant"));
        p
    }
}

impl utoipa::IntoParams for TopicParam {
    fn into_params(f: impl Fn() -> ParamIn) -> Params {
        let mut p = NamespaceParam::into_params(f);
        p.push(name_param("topic", "local name of a persistent topic (`x-partition-N` names a partition)"));
        p
    }
}

impl utoipa::IntoParams for SubscriptionParam {
    fn into_params(f: impl Fn() -> ParamIn) -> Params {
        let mut p = TopicParam::into_params(f);
        p.extend(SubscriptionNameParam::into_params(|| None));
        p
    }
}

impl utoipa::IntoParams for SubscriptionNameParam {
    fn into_params(_: impl Fn() -> ParamIn) -> Params {
        vec![name_param("subscription", "subscription name")]
    }
}

/// A bare integer body with a lower bound the handler enforces, described with that bound.
macro_rules! bounded_integer {
    ($(#[doc = $doc:literal])* $name:ident($int:ty, $format:ident, min = $min:literal $(, max = $max:literal)?)) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, serde::Deserialize)]
        pub struct $name(pub $int);

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::$format)))
                    .minimum(Some($min))
                    $(.maximum(Some($max)))?
                    .description(Some(concat!($($doc),*).trim()))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

bounded_integer! {
    /// Seconds, 0 to 2^31 - 1 (412 otherwise, as Pulsar).
    NonNegativeSeconds(i64, Int64, min = 0, max = 2_147_483_647_i64)
}

bounded_integer! {
    /// -1 (off) or more.
    MinusOneOrMore(i64, Int64, min = -1)
}

bounded_integer! {
    /// A number of partitions, 1 to 2^32 - 1 (406 otherwise).
    PartitionCount(i64, Int64, min = 1, max = 4_294_967_295_i64)
}

/// `?force=`: also delete what is in use or not empty.
#[derive(Debug, serde::Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ForceQuery {
    /// Delete even when in use (connected clients are disconnected) or not empty.
    #[serde(default)]
    pub force: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_array_is_refused_where_the_schema_has_an_object() {
        assert!(refuse_array::<magnetar_metadata::TenantInfo>(b" []").is_err());
        assert!(refuse_array::<magnetar_core::RetentionPolicies>(b"[60, 64]").is_err());
        assert!(refuse_array::<magnetar_metadata::TenantInfo>(b"{}").is_ok());
        assert!(refuse_array::<Vec<String>>(b"[\"a\"]").is_ok());
        assert!(refuse_array::<serde_json::Value>(b"[1]").is_ok());
    }

    #[test]
    fn whole_floats_are_integers() {
        let r: magnetar_core::RetentionPolicies =
            from_json(br#"{"retentionTimeInMinutes": 60.0, "retentionSizeInMB": -1}"#).expect("parses");
        assert_eq!(r.retention_time_in_minutes, 60);
        assert!(
            from_json::<magnetar_core::RetentionPolicies>(
                br#"{"retentionTimeInMinutes": 60.5, "retentionSizeInMB": 1}"#
            )
            .is_err()
        );
        // Exactly, also past 2^52 (serde_json's default float parsing can be a ULP off).
        let id: magnetar_core::MessageId =
            from_json(br#"{"ledgerId": 4110360862486390.0, "entryId": 9220326.0}"#).expect("parses");
        assert_eq!(id.ledger_id, 4_110_360_862_486_390);
    }
}
