//! What topic operations change besides data: topic and subscription properties, partition
//! termination, and the versions of a topic's schema.

use super::errors::{Target, classify, classify_write};
use super::{SqlMetadataStore, from_json, get, to_json};
use crate::{MetadataError, Result, SchemaVersion};
use magnetar_core::{TopicName, now_millis};
use std::collections::BTreeMap;

impl SqlMetadataStore {
    pub(crate) async fn set_topic_properties_impl(
        &self,
        name: &TopicName,
        properties: &BTreeMap<String, String>,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE topics SET properties = $5 WHERE tenant = $1 AND namespace = $2 AND domain = $3 AND name = $4",
        )
        .bind(name.namespace().tenant().as_str())
        .bind(name.namespace().local())
        .bind(name.domain().as_str())
        .bind(name.local())
        .bind(to_json(properties)?)
        .execute(&self.pool)
        .await
        .map_err(classify)?;
        if done.rows_affected() == 0 {
            return Err(MetadataError::NotFound(format!("topic {name}")));
        }
        Ok(())
    }

    pub(crate) async fn terminate_partition_impl(&self, log_id: i64, end: i64) -> Result<i64> {
        let mut tx = self.begin_write().await?;
        // Only the first termination sets the end: a partition never ends twice.
        sqlx::query("UPDATE partitions SET terminated_end = $1 WHERE log_id = $2 AND terminated_end IS NULL")
            .bind(end)
            .bind(log_id)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        let row = sqlx::query("SELECT terminated_end FROM partitions WHERE log_id = $1")
            .bind(log_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(classify)?
            .ok_or_else(|| MetadataError::NotFound(format!("partition {log_id}")))?;
        let stored: Option<i64> = get(&row, "terminated_end")?;
        tx.commit().await.map_err(classify)?;
        stored.ok_or_else(|| MetadataError::Internal(format!("partition {log_id} was not terminated")))
    }

    pub(crate) async fn set_subscription_properties_impl(
        &self,
        name: &str,
        log_ids: &[i64],
        properties: &BTreeMap<String, String>,
    ) -> Result<()> {
        let json = to_json(properties)?;
        let mut tx = self.begin_write().await?;
        let mut updated = 0;
        for log_id in log_ids {
            let done = sqlx::query("UPDATE subscriptions SET properties = $1 WHERE log_id = $2 AND name = $3")
                .bind(&json)
                .bind(*log_id)
                .bind(name)
                .execute(&mut *tx)
                .await
                .map_err(classify)?;
            updated += done.rows_affected();
        }
        if updated == 0 {
            return Err(MetadataError::NotFound(format!("subscription {name}")));
        }
        tx.commit().await.map_err(classify)?;
        Ok(())
    }

    pub(crate) async fn add_schema_version_impl(
        &self,
        topic: &TopicName,
        schema: Option<&serde_json::Value>,
    ) -> Result<i64> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "SELECT t.id, (SELECT MAX(s.version) FROM topic_schemas s WHERE s.topic_id = t.id) AS last \
             FROM topics t WHERE t.tenant = $1 AND t.namespace = $2 AND t.domain = $3 AND t.name = $4",
        )
        .bind(topic.namespace().tenant().as_str())
        .bind(topic.namespace().local())
        .bind(topic.domain().as_str())
        .bind(topic.local())
        .fetch_optional(&mut *tx)
        .await
        .map_err(classify)?
        .ok_or_else(|| MetadataError::NotFound(format!("topic {topic}")))?;
        let topic_id: i64 = get(&row, "id")?;
        let last: Option<i64> = get(&row, "last")?;
        let version = last.map_or(0, |v| v + 1);
        let schema = schema.map(to_json).transpose()?;
        // The primary key (topic, version) makes a concurrent writer of the same version fail;
        // write transactions are serialized on SQLite and the topic row is read under them.
        sqlx::query("INSERT INTO topic_schemas (topic_id, version, schema, created_at) VALUES ($1, $2, $3, $4)")
            .bind(topic_id)
            .bind(version)
            .bind(schema)
            .bind(now_millis())
            .execute(&mut *tx)
            .await
            .map_err(|e| match classify_write(e, Some(&Target::new(format_args!("schema of topic {topic}"), ""))) {
                MetadataError::AlreadyExists(_) => {
                    MetadataError::Conflict(format!("schema of topic {topic} was changed concurrently"))
                }
                other => other,
            })?;
        tx.commit().await.map_err(classify)?;
        Ok(version)
    }

    pub(crate) async fn list_schema_versions_impl(&self, topic: &TopicName) -> Result<Vec<SchemaVersion>> {
        let rows = sqlx::query(
            "SELECT s.version, s.schema, s.created_at FROM topic_schemas s JOIN topics t ON t.id = s.topic_id \
             WHERE t.tenant = $1 AND t.namespace = $2 AND t.domain = $3 AND t.name = $4 ORDER BY s.version",
        )
        .bind(topic.namespace().tenant().as_str())
        .bind(topic.namespace().local())
        .bind(topic.domain().as_str())
        .bind(topic.local())
        .fetch_all(&self.pool)
        .await
        .map_err(classify)?;
        rows.iter()
            .map(|row| {
                let version: i64 = get(row, "version")?;
                let schema: Option<String> = get(row, "schema")?;
                Ok(SchemaVersion {
                    version,
                    schema: schema
                        .map(|s| from_json(&s, format_args!("version {version} of the schema of topic {topic}")))
                        .transpose()?,
                    created_at: get(row, "created_at")?,
                })
            })
            .collect()
    }
}
