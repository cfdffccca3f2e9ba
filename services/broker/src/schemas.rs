//! Pulsar's schema registry, per topic: versions of a `SchemaInfo` (type, definition,
//! properties) stored in the metadata store, a deletion as a marker version. The broker keeps
//! schemas for clients and tools; it does not check message payloads against them. A new
//! version is judged by the topic's schema compatibility strategy in force (topic, else
//! namespace, else the broker's rule: a schema may evolve freely within its type, changing the
//! type is refused); what each strategy checks is in `schema_compat`.

use crate::access::Caller;
use crate::error::Entity;
use crate::policies::resolve::EffectivePolicies;
use crate::policies::runtime::parse_topic_policies;
use crate::topics::Topics;
use crate::{BrokerError, Result};
use magnetar_auth::{Operation, Resource};
use magnetar_core::{SchemaCompatibilityStrategy, TopicName};
use magnetar_metadata::{MetadataError, SchemaVersion};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Pulsar's schema types; up to `PROTOBUF_NATIVE` in the order of the binary protocol's
/// `Schema.Type` numbers (0 to 20), which the binary protocol relies on.
pub const SCHEMA_TYPES: &[&str] = &[
    "NONE",
    "STRING",
    "JSON",
    "PROTOBUF",
    "AVRO",
    "BOOLEAN",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FLOAT",
    "DOUBLE",
    "DATE",
    "TIME",
    "TIMESTAMP",
    "KEY_VALUE",
    "INSTANT",
    "LOCAL_DATE",
    "LOCAL_TIME",
    "LOCAL_DATE_TIME",
    "PROTOBUF_NATIVE",
    "BYTES",
    "AUTO_CONSUME",
    "AUTO_PUBLISH",
];

/// Pulsar's `PostSchemaPayload`: a schema as a client uploads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SchemaPayload {
    /// One of Pulsar's schema types (`AVRO`, `JSON`, `PROTOBUF`, `STRING`, `BYTES`, ...).
    #[serde(rename = "type")]
    #[schema(example = "JSON")]
    pub schema_type: String,
    /// The definition (an Avro or JSON schema document for `AVRO` and `JSON`; empty for primitives).
    #[serde(default)]
    pub schema: String,
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

/// Pulsar's `GetSchemaResponse`: one version of a topic's schema.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SchemaVersionInfo {
    pub version: i64,
    #[serde(rename = "type")]
    pub schema_type: String,
    /// Epoch milliseconds.
    pub timestamp: i64,
    pub data: String,
    pub properties: BTreeMap<String, String>,
}

fn info(v: &SchemaVersion) -> Option<SchemaVersionInfo> {
    let p: SchemaPayload = serde_json::from_value(v.schema.clone()?).ok()?;
    Some(SchemaVersionInfo {
        version: v.version,
        schema_type: p.schema_type,
        timestamp: v.created_at,
        data: p.schema,
        properties: p.properties,
    })
}

fn no_schema(topic: &TopicName) -> BrokerError {
    BrokerError::NotFound(Entity::Message(format!("schema of topic {topic}")))
}

impl Topics {
    /// Versions since the last deletion, oldest first (Pulsar's "all versions"); `NotFound` for
    /// a missing topic.
    async fn live_versions(&self, topic: &TopicName) -> Result<Vec<SchemaVersion>> {
        let base = topic.base();
        if self.record(&base).await?.is_none() {
            return Err(BrokerError::NotFound(Entity::Topic(topic.clone())));
        }
        let mut all = self.ctx().metadata.list_schema_versions(&base).await?;
        if let Some(deleted) = all.iter().rposition(|v| v.schema.is_none()) {
            all.drain(..=deleted);
        }
        Ok(all)
    }

    /// The latest version of the topic's schema; `NotFound` when it has none (or it was deleted).
    pub async fn schema(&self, topic: &TopicName) -> Result<SchemaVersionInfo> {
        self.live_versions(topic).await?.last().and_then(info).ok_or_else(|| no_schema(topic))
    }

    /// One version, deleted ones included as Pulsar keeps them readable; `NotFound` for a
    /// version that never existed or a deletion marker.
    pub async fn schema_version(&self, topic: &TopicName, version: i64) -> Result<SchemaVersionInfo> {
        let base = topic.base();
        if self.record(&base).await?.is_none() {
            return Err(BrokerError::NotFound(Entity::Topic(topic.clone())));
        }
        let all = self.ctx().metadata.list_schema_versions(&base).await?;
        all.iter().find(|v| v.version == version).and_then(info).ok_or_else(|| {
            BrokerError::NotFound(Entity::Message(format!("version {version} of the schema of topic {topic}")))
        })
    }

    /// Every version since the last deletion.
    pub async fn schemas(&self, topic: &TopicName) -> Result<Vec<SchemaVersionInfo>> {
        Ok(self.live_versions(topic).await?.iter().filter_map(info).collect())
    }

    /// The schema policies in force for an existing topic: its own, else its namespace's (fresh,
    /// as an administrator's change must hold for the next upload), else the broker's.
    async fn schema_policies(&self, topic: &TopicName) -> Result<EffectivePolicies> {
        let base = topic.base();
        let record = self.record(&base).await?.ok_or_else(|| BrokerError::NotFound(Entity::Topic(topic.clone())))?;
        let own = parse_topic_policies(&base, record.policies.as_ref());
        let ns = self.ctx().fresh_policies(base.namespace()).await?;
        Ok(EffectivePolicies::resolve(&own, &ns, &self.ctx().config))
    }

    /// The compatibility strategy new schema versions of the topic are judged by.
    pub async fn schema_compatibility_strategy(&self, topic: &TopicName) -> Result<SchemaCompatibilityStrategy> {
        Ok(self.schema_policies(topic).await?.schema_compatibility_strategy.value)
    }

    /// Why `payload` cannot follow the topic's live schema versions under the strategy in force,
    /// if it cannot (see `schema_compat`). `InvalidArgument` for a type Pulsar does not have.
    pub async fn schema_incompatibility(&self, topic: &TopicName, payload: &SchemaPayload) -> Result<Option<String>> {
        let live = self.live_versions(topic).await?;
        self.incompatibility_with(topic, &live, payload).await
    }

    /// [`Self::schema_incompatibility`] against live versions already read.
    async fn incompatibility_with(
        &self,
        topic: &TopicName,
        live: &[SchemaVersion],
        payload: &SchemaPayload,
    ) -> Result<Option<String>> {
        if !SCHEMA_TYPES.contains(&payload.schema_type.as_str()) {
            return Err(BrokerError::InvalidArgument(format!(
                "unknown schema type {}: one of {}",
                payload.schema_type,
                SCHEMA_TYPES.join(", ")
            )));
        }
        let live: Vec<SchemaPayload> =
            live.iter().filter_map(|v| serde_json::from_value(v.schema.clone()?).ok()).collect();
        let strategy = self.schema_compatibility_strategy(topic).await?;
        Ok(crate::schema_compat::incompatibility(strategy, &live, payload)
            .map(|why| format!("schema of topic {topic}: {why}")))
    }

    /// Refuses a producer that gives no schema (`has_schema` false) when the topic's
    /// `schemaValidationEnforced` is in force and the topic has a live schema, as Pulsar does.
    /// A missing topic has no schema.
    pub async fn check_schemaless_producer(&self, topic: &TopicName, has_schema: bool) -> Result<()> {
        if has_schema {
            return Ok(());
        }
        // A loaded topic keeps its policies in force up to date: no store read on the publish path
        // unless the policy holds.
        let enforced = match self.registry().loaded(&topic.base()) {
            Some(t) => t.policy.effective().schema_validation_enforced.value,
            None => match self.schema_policies(topic).await {
                Ok(e) => e.schema_validation_enforced.value,
                Err(BrokerError::NotFound(Entity::Topic(_))) => return Ok(()),
                Err(e) => return Err(e),
            },
        };
        if enforced && !self.live_versions(topic).await?.is_empty() {
            return Err(BrokerError::SchemaIncompatible(format!(
                "topic {topic} has a schema and schemaValidationEnforced is set: a producer must give a schema"
            )));
        }
        Ok(())
    }

    /// Stores `payload` as the topic's next schema version and returns it; an upload identical
    /// to a live version returns that version (Pulsar does not store a schema twice).
    /// `SchemaIncompatible` when it cannot follow the current schema.
    pub async fn upload_schema(&self, topic: &TopicName, payload: &SchemaPayload) -> Result<i64> {
        let live = self.live_versions(topic).await?;
        match identical(&live, payload) {
            Some(existing) => Ok(existing),
            None => self.store_version(topic, &live, payload).await,
        }
    }

    /// Stores `payload`, which is none of the `live` versions, as the next version if it can
    /// follow them.
    async fn store_version(&self, topic: &TopicName, live: &[SchemaVersion], payload: &SchemaPayload) -> Result<i64> {
        if let Some(why) = self.incompatibility_with(topic, live, payload).await? {
            return Err(BrokerError::SchemaIncompatible(why));
        }
        let json = serde_json::to_value(payload).map_err(BrokerError::internal)?;
        self.ctx().metadata.add_schema_version(&topic.base(), Some(&json)).await.map_err(|e| match e {
            MetadataError::NotFound(_) => BrokerError::NotFound(Entity::Topic(topic.clone())),
            e => e.into(),
        })
    }

    /// The version of a schema a client brings (a producer's, or GET_OR_CREATE_SCHEMA), as
    /// Pulsar's broker gives it: the live version identical to it, else a new version when the
    /// namespace lets clients register schemas (`isAllowAutoUpdateSchema`, on unless turned off)
    /// and the schema can follow the live ones. `SchemaIncompatible` otherwise, the first
    /// schema of a topic included when registering is off.
    pub async fn add_client_schema(&self, topic: &TopicName, payload: &SchemaPayload) -> Result<i64> {
        let live = self.live_versions(topic).await?;
        if let Some(existing) = identical(&live, payload) {
            return Ok(existing);
        }
        let allowed = self.ctx().fresh_policies(topic.namespace()).await?.is_allow_auto_update_schema.unwrap_or(true);
        if !allowed {
            return Err(BrokerError::SchemaIncompatible(format!(
                "schema of topic {topic}: not one of its versions, and its namespace does not let clients register \
                 schemas (isAllowAutoUpdateSchema is false)"
            )));
        }
        self.store_version(topic, &live, payload).await
    }

    /// The schema a REST produce request encodes its payloads with, and its version (Pulsar's REST
    /// producer): the version it names (`schemaVersion`, -1 for none), else its `valueSchema`
    /// (`schema_encode::parse_schema_info`) registered as a producer's schema is, on the topic
    /// created first as the namespace's auto-creation allows; with a `keySchema` too, the
    /// KEY_VALUE schema of both (`SEPARATED`; a missing `valueSchema` is `STRING`, as Pulsar's).
    /// `None` without either, or for a `BYTES` value schema alone, which is not registered.
    /// Authorized as producing to the topic.
    pub async fn producer_schema(
        &self,
        caller: &Caller,
        topic: &TopicName,
        version: Option<i64>,
        key_schema: Option<&str>,
        value_schema: Option<&str>,
    ) -> Result<Option<(SchemaPayload, i64)>> {
        use crate::schema_encode::{key_value_schema, parse_schema_info, parse_side};
        self.ctx().require(caller, Operation::Produce, topic.into()).await?;
        if let Some(v) = version.filter(|v| *v >= 0) {
            let found = self.schema_version(topic, v).await?;
            let payload =
                SchemaPayload { schema_type: found.schema_type, schema: found.data, properties: found.properties };
            return Ok(Some((payload, v)));
        }
        let value_schema = value_schema.filter(|s| !s.is_empty());
        let payload = match key_schema.filter(|s| !s.is_empty()) {
            Some(key) => {
                let key = parse_side("keySchema", key).map_err(BrokerError::InvalidArgument)?;
                let value = parse_side("valueSchema", value_schema.unwrap_or(r#"{"type":"STRING"}"#))
                    .map_err(BrokerError::InvalidArgument)?;
                if [&key, &value].iter().any(|s| s.payload.schema_type == "KEY_VALUE") {
                    return Err(BrokerError::InvalidArgument(
                        "keySchema and valueSchema are each one side of a KEY_VALUE schema: neither can be KEY_VALUE"
                            .into(),
                    ));
                }
                Some(key_value_schema(&key, &value))
            }
            None => match value_schema {
                None => return Ok(None),
                Some(text) => parse_schema_info(text).map_err(BrokerError::InvalidArgument)?,
            },
        };
        let Some(payload) = payload else { return Ok(None) };
        if self.record(&topic.base()).await?.is_none() {
            crate::topics::auto_create(self.ctx(), self.registry(), topic).await?;
        }
        let version = self.add_client_schema(topic, &payload).await?;
        Ok(Some((payload, version)))
    }

    /// Judges a consumer's schema: on a topic with a live schema it must be one of its versions
    /// or able to follow them under the strategy in force, as a new version would; a topic
    /// without one (or not created yet) takes any. A consumer never registers a schema
    /// (Pulsar's does when the topic is idle; here the first producer's does,
    /// docs/binary-protocol.md).
    ///
    /// Authorized as the subscription (`Some`) or reader (`None`) it comes before, so that the
    /// answer tells nothing of the topic to a caller who may not consume it.
    pub async fn check_consumer_schema(
        &self,
        caller: &Caller,
        topic: &TopicName,
        subscription: Option<&str>,
        payload: &SchemaPayload,
    ) -> Result<()> {
        match subscription {
            Some(sub) => self.ctx().require(caller, Operation::Consume, Resource::Subscription(topic, sub)).await?,
            None => self.ctx().require(caller, Operation::Read, topic.into()).await?,
        }
        let live = match self.live_versions(topic).await {
            Ok(live) => live,
            Err(BrokerError::NotFound(Entity::Topic(_))) => return Ok(()),
            Err(e) => return Err(e),
        };
        if live.is_empty() || identical(&live, payload).is_some() {
            return Ok(());
        }
        match self.incompatibility_with(topic, &live, payload).await? {
            Some(why) => Err(BrokerError::SchemaIncompatible(why)),
            None => Ok(()),
        }
    }

    /// Deletes the topic's schema (a marker version) and returns the marker's version.
    pub async fn delete_schema(&self, topic: &TopicName) -> Result<i64> {
        if self.live_versions(topic).await?.is_empty() {
            return Err(no_schema(topic));
        }
        Ok(self.ctx().metadata.add_schema_version(&topic.base(), None).await?)
    }

    /// The live version identical to `payload`, if any.
    pub async fn schema_version_of(&self, topic: &TopicName, payload: &SchemaPayload) -> Result<Option<i64>> {
        Ok(identical(&self.live_versions(topic).await?, payload))
    }
}

/// The version among `live` identical to `payload`, if any.
fn identical(live: &[SchemaVersion], payload: &SchemaPayload) -> Option<i64> {
    live.iter().rev().find_map(|v| {
        let p: SchemaPayload = serde_json::from_value(v.schema.clone()?).ok()?;
        (p == *payload).then_some(v.version)
    })
}
