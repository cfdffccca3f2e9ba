//! Topics and their partition rows.

use super::catalog::{parse_name, partition_record};
use super::errors::{Target, classify, classify_write};
use super::{SqlMetadataStore, from_json, get, to_json};
use crate::{MetadataError, NewTopic, Result, TopicRecord};
use magnetar_core::{NamespaceName, TopicName, now_millis};
use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};

/// Topic columns joined with their partitions, one row per partition. Reading a topic is one
/// statement so that it never sees a topic and its partitions from different snapshots.
macro_rules! select_topics {
    ($where:literal) => {
        concat!(
            "SELECT t.id, t.tenant, t.namespace, t.domain, t.name, t.partitions, t.properties, t.policies, \
             t.created_at, p.log_id, p.idx, p.terminated_end FROM topics t JOIN partitions p ON p.topic_id = t.id WHERE ",
            $where,
            " ORDER BY t.domain, t.name, p.idx"
        )
    };
}

const TOPIC_BY_NAME: &str = select_topics!("t.tenant = $1 AND t.namespace = $2 AND t.domain = $3 AND t.name = $4");
const TOPICS_BY_NAMESPACE: &str = select_topics!("t.tenant = $1 AND t.namespace = $2");

impl SqlMetadataStore {
    pub(crate) async fn create_topic_impl(&self, spec: &NewTopic) -> Result<TopicRecord> {
        let name = &spec.name;
        let partitions = i64::from(spec.partitions);
        let created_at = now_millis();
        let mut tx = self.begin_write().await?;
        let target = Target::new(format_args!("topic {name}"), format_args!("namespace {}", name.namespace()));
        let row = sqlx::query(
            "INSERT INTO topics (tenant, namespace, domain, name, partitions, properties, policies, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL, $7) RETURNING id",
        )
        .bind(name.namespace().tenant().as_str())
        .bind(name.namespace().local())
        .bind(name.domain().as_str())
        .bind(name.local())
        .bind(partitions)
        .bind(to_json(&spec.properties)?)
        .bind(created_at)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| classify_write(e, Some(&target)))?;
        let id: i64 = get(&row, "id")?;
        // A non-partitioned topic is stored as one partition with index -1, so that storage,
        // ownership and cursors always hang off a partition.
        let indices: Vec<i64> = if partitions == 0 { vec![-1] } else { (0..partitions).collect() };
        add_partitions(&mut tx, id, indices).await?;
        let record = read_topic(&mut tx, name).await?;
        tx.commit().await.map_err(classify)?;
        record.ok_or_else(|| MetadataError::Internal(format!("topic {name} vanished while being created")))
    }

    pub(crate) async fn get_topic_impl(&self, name: &TopicName) -> Result<Option<TopicRecord>> {
        let rows = bind_name(sqlx::query(TOPIC_BY_NAME), name).fetch_all(&self.pool).await.map_err(classify)?;
        Ok(assemble(&rows)?.pop())
    }

    pub(crate) async fn list_topics_impl(&self, namespace: &NamespaceName) -> Result<Vec<TopicRecord>> {
        let rows = sqlx::query(TOPICS_BY_NAMESPACE)
            .bind(namespace.tenant().as_str())
            .bind(namespace.local())
            .fetch_all(&self.pool)
            .await
            .map_err(classify)?;
        if rows.is_empty() && self.get_namespace_impl(namespace).await?.is_none() {
            return Err(MetadataError::NotFound(format!("namespace {namespace}")));
        }
        assemble(&rows)
    }

    pub(crate) async fn update_partitions_impl(&self, name: &TopicName, partitions: u32) -> Result<TopicRecord> {
        let mut tx = self.begin_write().await?;
        let current = read_topic(&mut tx, name).await?.ok_or_else(|| not_found(name))?;
        if current.partitions == 0 {
            return Err(MetadataError::Conflict(format!("topic {name} is not partitioned")));
        }
        if partitions <= current.partitions {
            return Err(MetadataError::Conflict(format!(
                "topic {name} has {} partitions: the count can only grow, not become {partitions}",
                current.partitions
            )));
        }
        // Conditional on the count just read: a concurrent update loses with Conflict instead
        // of both adding the same partition indices.
        let updated = sqlx::query("UPDATE topics SET partitions = $1 WHERE id = $2 AND partitions = $3")
            .bind(i64::from(partitions))
            .bind(current.id)
            .bind(i64::from(current.partitions))
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        if updated.rows_affected() == 0 {
            return Err(MetadataError::Conflict(format!("topic {name} partitions were changed concurrently")));
        }
        add_partitions(&mut tx, current.id, (i64::from(current.partitions)..i64::from(partitions)).collect()).await?;
        // The new partitions get every subscription of the existing ones, at their start, in the
        // same transaction: a topic whose partitions disagree on their subscriptions would answer
        // 404 or skip the new partitions for those subscriptions.
        sqlx::query(
            "INSERT INTO subscriptions (log_id, name, mark_delete, acked_ranges, created_at) \
             SELECT p.log_id, s.name, 0, '[]', $3 FROM partitions p \
             CROSS JOIN (SELECT DISTINCT name FROM subscriptions WHERE log_id IN \
                 (SELECT log_id FROM partitions WHERE topic_id = $1 AND idx < $2)) s \
             WHERE p.topic_id = $1 AND p.idx >= $2",
        )
        .bind(current.id)
        .bind(i64::from(current.partitions))
        .bind(now_millis())
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        let record = read_topic(&mut tx, name).await?.ok_or_else(|| not_found(name))?;
        tx.commit().await.map_err(classify)?;
        Ok(record)
    }

    pub(crate) async fn delete_topic_impl(&self, name: &TopicName) -> Result<TopicRecord> {
        let mut tx = self.begin_write().await?;
        let record = read_topic(&mut tx, name).await?.ok_or_else(|| not_found(name))?;
        // Partitions, subscriptions and segment index rows go by ON DELETE CASCADE.
        sqlx::query("DELETE FROM topics WHERE id = $1").bind(record.id).execute(&mut *tx).await.map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        Ok(record)
    }

    pub(crate) async fn set_topic_policies_impl(&self, name: &TopicName, policies: &serde_json::Value) -> Result<()> {
        let query = sqlx::query(
            "UPDATE topics SET policies = $5 WHERE tenant = $1 AND namespace = $2 AND domain = $3 AND name = $4",
        );
        let updated = bind_name(query, name).bind(to_json(policies)?).execute(&self.pool).await.map_err(classify)?;
        if updated.rows_affected() == 0 {
            return Err(not_found(name));
        }
        Ok(())
    }
}

fn not_found(name: &TopicName) -> MetadataError {
    MetadataError::NotFound(format!("topic {name}"))
}

type AnyQuery<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>;

/// Binds `$1..$4` to the topic's tenant, namespace, domain and local name.
fn bind_name<'q>(query: AnyQuery<'q>, name: &TopicName) -> AnyQuery<'q> {
    query
        .bind(name.namespace().tenant().as_str().to_string())
        .bind(name.namespace().local().to_string())
        .bind(name.domain().as_str())
        .bind(name.local().to_string())
}

async fn read_topic(tx: &mut Transaction<'static, Any>, name: &TopicName) -> Result<Option<TopicRecord>> {
    let rows = bind_name(sqlx::query(TOPIC_BY_NAME), name).fetch_all(&mut **tx).await.map_err(classify)?;
    Ok(assemble(&rows)?.pop())
}

async fn add_partitions(tx: &mut Transaction<'static, Any>, topic_id: i64, indices: Vec<i64>) -> Result<()> {
    for idx in indices {
        sqlx::query("INSERT INTO partitions (topic_id, idx, owner, epoch) VALUES ($1, $2, NULL, 0)")
            .bind(topic_id)
            .bind(idx)
            .execute(&mut **tx)
            .await
            .map_err(classify)?;
    }
    Ok(())
}

/// Folds the joined rows (ordered by topic, then partition index) into topic records.
fn assemble(rows: &[AnyRow]) -> Result<Vec<TopicRecord>> {
    let mut topics: Vec<TopicRecord> = Vec::new();
    for row in rows {
        let id: i64 = get(row, "id")?;
        let partition = partition_record(row)?;
        if let Some(last) = topics.last_mut().filter(|t| t.id == id) {
            last.partition_records.push(partition);
            continue;
        }
        let (tenant, namespace, domain, local): (String, String, String, String) =
            (get(row, "tenant")?, get(row, "namespace")?, get(row, "domain")?, get(row, "name")?);
        let name = parse_name(&local, |l| TopicName::from_parts(&domain, &tenant, &namespace, &l))?;
        let partitions: i64 = get(row, "partitions")?;
        let policies: Option<String> = get(row, "policies")?;
        topics.push(TopicRecord {
            id,
            partitions: u32::try_from(partitions)
                .map_err(|_| MetadataError::Internal(format!("topic {name} has {partitions} partitions stored")))?,
            properties: from_json(&get::<String>(row, "properties")?, format_args!("topic {name}"))?,
            policies: policies.map(|p| from_json(&p, format_args!("topic {name}"))).transpose()?,
            partition_records: vec![partition],
            created_at: get(row, "created_at")?,
            name,
        });
    }
    Ok(topics)
}
