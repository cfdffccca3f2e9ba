//! The index of log objects (object-store durability): one row per partition range a log object
//! holds, committed under the partition's epoch and trimmed once uploaded segments hold it; and
//! the mark of the epoch under which a partition was loaded with local durability, which keeps
//! it from being failed over while that epoch is current.

use super::errors::classify;
use super::logs::{fence, partition_not_found};
use super::{SqlMetadataStore, get};
use crate::{LogObjectRange, LogObjectRecord, MetadataError, ReplicaSet, Result};

impl SqlMetadataStore {
    pub(crate) async fn commit_log_objects_impl(
        &self,
        committed_at: i64,
        objects: &[(String, Vec<LogObjectRange>)],
    ) -> Result<Vec<Vec<(i64, MetadataError)>>> {
        for (object_key, ranges) in objects {
            if let Some(r) = ranges.iter().find(|r| r.start_offset < 0 || r.end_offset <= r.start_offset) {
                return Err(MetadataError::Conflict(format!(
                    "log object {object_key}: range {}..{} of partition {} is empty or negative",
                    r.start_offset, r.end_offset, r.log_id
                )));
            }
        }
        // Every partition is fenced once, in log id order, before any row is written: two
        // commits sharing partitions take the partition row locks in one order and cannot
        // deadlock.
        let pairs: std::collections::BTreeSet<(i64, i64)> =
            objects.iter().flat_map(|(_, ranges)| ranges.iter().map(|r| (r.log_id, r.epoch))).collect();
        let mut tx = self.begin_write().await?;
        // Whether each refused (partition, epoch) is fenced (true) or unknown (false).
        let mut refusals: std::collections::BTreeMap<(i64, i64), bool> = std::collections::BTreeMap::new();
        for (log_id, epoch) in pairs {
            match fence(&mut tx, log_id, epoch).await {
                Ok(()) => {}
                Err(MetadataError::Fenced { .. }) => {
                    refusals.insert((log_id, epoch), true);
                }
                Err(MetadataError::NotFound(_)) => {
                    refusals.insert((log_id, epoch), false);
                }
                Err(e) => return Err(e),
            }
        }
        let mut answers = Vec::with_capacity(objects.len());
        for (object_key, ranges) in objects {
            let mut ordered: Vec<&LogObjectRange> = ranges.iter().collect();
            ordered.sort_by_key(|r| (r.log_id, r.start_offset));
            let mut refused = Vec::new();
            for r in ordered {
                match refusals.get(&(r.log_id, r.epoch)) {
                    Some(true) => refused.push((r.log_id, MetadataError::Fenced { log_id: r.log_id, epoch: r.epoch })),
                    Some(false) => refused.push((r.log_id, partition_not_found(r.log_id))),
                    None => {
                        if let Some(e) = insert_range(&mut tx, object_key, committed_at, r).await? {
                            refused.push((r.log_id, e));
                        }
                    }
                }
            }
            answers.push(refused);
        }
        tx.commit().await.map_err(classify)?;
        Ok(answers)
    }

    pub(crate) async fn list_log_objects_impl(&self, log_id: i64, from_offset: i64) -> Result<Vec<LogObjectRecord>> {
        // The LEFT JOIN tells a missing partition (no row) from one without ranges past
        // `from_offset` (one row with NULL range columns); the filter sits in the join for that.
        let rows = sqlx::query(
            "SELECT l.start_offset, l.end_offset, l.object_key, l.committed_at FROM partitions p \
             LEFT JOIN log_objects l ON l.log_id = p.log_id AND l.end_offset > $2 \
             WHERE p.log_id = $1 ORDER BY l.start_offset",
        )
        .bind(log_id)
        .bind(from_offset)
        .fetch_all(&self.pool)
        .await
        .map_err(classify)?;
        if rows.is_empty() {
            return Err(partition_not_found(log_id));
        }
        let mut ranges = Vec::with_capacity(rows.len());
        for row in &rows {
            let Some(start_offset) = get::<Option<i64>>(row, "start_offset")? else { continue };
            ranges.push(LogObjectRecord {
                log_id,
                start_offset,
                end_offset: get(row, "end_offset")?,
                object_key: get(row, "object_key")?,
                committed_at: get(row, "committed_at")?,
            });
        }
        Ok(ranges)
    }

    pub(crate) async fn trim_log_objects_impl(&self, log_id: i64, epoch: i64, below: i64) -> Result<Vec<String>> {
        let mut tx = self.begin_write().await?;
        // The fence's partition lock keeps this partition's rows as read here until the commit.
        fence(&mut tx, log_id, epoch).await?;
        let keys: Vec<String> = sqlx::query(
            "SELECT DISTINCT object_key FROM log_objects WHERE log_id = $1 AND end_offset <= $2 ORDER BY object_key",
        )
        .bind(log_id)
        .bind(below)
        .fetch_all(&mut *tx)
        .await
        .map_err(classify)?
        .iter()
        .map(|row| get(row, "object_key"))
        .collect::<Result<_>>()?;
        // Every row of those objects is locked (no-op UPDATE, in key order) before any is
        // deleted. Otherwise two owners trimming the last two ranges of one object at once would
        // each still see the other's row and neither would free the object; locked, the second
        // waits for the first and then sees its rows gone. SQLite's write lock already does this.
        for key in &keys {
            sqlx::query("UPDATE log_objects SET object_key = object_key WHERE object_key = $1")
                .bind(key)
                .execute(&mut *tx)
                .await
                .map_err(classify)?;
        }
        sqlx::query("DELETE FROM log_objects WHERE log_id = $1 AND end_offset <= $2")
            .bind(log_id)
            .bind(below)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        let mut unreferenced = Vec::new();
        for key in keys {
            let still = sqlx::query("SELECT object_key FROM log_objects WHERE object_key = $1 LIMIT 1")
                .bind(&key)
                .fetch_optional(&mut *tx)
                .await
                .map_err(classify)?;
            if still.is_none() {
                unreferenced.push(key);
            }
        }
        tx.commit().await.map_err(classify)?;
        Ok(unreferenced)
    }

    pub(crate) async fn referenced_log_objects_impl(&self, keys: &[String]) -> Result<Vec<String>> {
        let mut referenced = Vec::new();
        // Bounded statements: SQLite allows 32,766 parameters, PostgreSQL 65,535.
        for chunk in keys.chunks(500) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!("SELECT DISTINCT object_key FROM log_objects WHERE object_key IN ({})", marks.join(", "));
            // Only numbered placeholders are formatted in; the keys are bound.
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for key in chunk {
                query = query.bind(key);
            }
            for row in query.fetch_all(&self.pool).await.map_err(classify)? {
                referenced.push(get::<String>(&row, "object_key")?);
            }
        }
        referenced.sort();
        referenced.dedup();
        Ok(referenced)
    }

    pub(crate) async fn mark_local_durability_impl(&self, log_id: i64, epoch: i64) -> Result<()> {
        // The fence's partition lock keeps `epoch` current until the commit, so a concurrent
        // `acquire_partition` comes after the mark (and lifts it) rather than before it. The
        // partition's epoch column is `epoch` there: the fence just matched it.
        let statement = sqlx::query("UPDATE partitions SET local_epoch = epoch WHERE log_id = $1").bind(log_id);
        self.execute_fenced(log_id, epoch, statement).await
    }

    pub(crate) async fn may_fail_over_impl(&self, log_id: i64) -> Result<bool> {
        let row = sqlx::query("SELECT epoch, local_epoch FROM partitions WHERE log_id = $1")
            .bind(log_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(classify)?
            .ok_or_else(|| partition_not_found(log_id))?;
        // Only a mark under the current epoch blocks: one under an earlier epoch is a previous
        // owner's, lifted since the partition changed hands (an epoch never loaded wrote nothing).
        let epoch: i64 = get(&row, "epoch")?;
        let local: Option<i64> = get(&row, "local_epoch")?;
        Ok(local != Some(epoch))
    }

    pub(crate) async fn set_partition_replicas_impl(
        &self,
        log_id: i64,
        epoch: i64,
        replicas: Option<&ReplicaSet>,
    ) -> Result<()> {
        let json =
            replicas.map(serde_json::to_string).transpose().map_err(|e| MetadataError::Internal(e.to_string()))?;
        let statement = sqlx::query(
            "UPDATE partitions SET replicas = $1, replicas_epoch = CASE WHEN $1 IS NULL THEN NULL ELSE epoch END \
             WHERE log_id = $2",
        )
        .bind(json)
        .bind(log_id);
        self.execute_fenced(log_id, epoch, statement).await
    }

    pub(crate) async fn partition_replicas_impl(&self, log_id: i64) -> Result<Option<(i64, ReplicaSet)>> {
        let row = sqlx::query("SELECT replicas, replicas_epoch FROM partitions WHERE log_id = $1")
            .bind(log_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(classify)?
            .ok_or_else(|| partition_not_found(log_id))?;
        let json: Option<String> = get(&row, "replicas")?;
        let epoch: Option<i64> = get(&row, "replicas_epoch")?;
        match (json, epoch) {
            (Some(json), Some(epoch)) => {
                let set = serde_json::from_str(&json)
                    .map_err(|e| MetadataError::Internal(format!("partition {log_id}: replica set unreadable: {e}")))?;
                Ok(Some((epoch, set)))
            }
            _ => Ok(None),
        }
    }
}

/// Writes one committed range (its partition fenced already); `Some(Conflict)` when the
/// partition's range at that start is committed in another object.
async fn insert_range(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    object_key: &str,
    committed_at: i64,
    r: &LogObjectRange,
) -> Result<Option<MetadataError>> {
    // DO NOTHING rather than a unique violation, which would abort the whole PostgreSQL
    // transaction: a row already in place is compared with this one instead.
    let inserted = sqlx::query(
        "INSERT INTO log_objects (log_id, start_offset, end_offset, object_key, epoch, committed_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (log_id, start_offset) DO NOTHING",
    )
    .bind(r.log_id)
    .bind(r.start_offset)
    .bind(r.end_offset)
    .bind(object_key)
    .bind(r.epoch)
    .bind(committed_at)
    .execute(&mut **tx)
    .await
    .map_err(classify)?;
    if inserted.rows_affected() == 1 {
        return Ok(None);
    }
    let row = sqlx::query("SELECT end_offset, object_key FROM log_objects WHERE log_id = $1 AND start_offset = $2")
        .bind(r.log_id)
        .bind(r.start_offset)
        .fetch_one(&mut **tx)
        .await
        .map_err(classify)?;
    let (end_offset, key): (i64, String) = (get(&row, "end_offset")?, get(&row, "object_key")?);
    if key == object_key && end_offset == r.end_offset {
        return Ok(None); // a retry of a commit whose answer was lost
    }
    Ok(Some(MetadataError::Conflict(format!(
        "range {}.. of partition {} is committed in log object {key} (up to {end_offset}), not in {object_key}",
        r.start_offset, r.log_id
    ))))
}
