//! The index of log objects (object-store durability): one row per partition range a log object
//! holds, committed under the partition's epoch and trimmed once uploaded segments hold it; and
//! the mark of the epoch under which a partition was loaded with local durability, which keeps
//! it from being failed over while that epoch is current.

use super::errors::classify;
use super::logs::{fence, partition_not_found};
use super::{Dialect, SqlMetadataStore, get};
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
        // Every partition is fenced once, before any row is written, and with few statements:
        // the commit is on the acknowledgement path, and one round trip per partition and per
        // range made it a large share of each acknowledgement's wait. Only one writer commits ranges of a
        // partition under its current epoch (its owner's, in order), so two such commits never
        // contend for the same rows.
        let pairs: Vec<(i64, i64)> = objects
            .iter()
            .flat_map(|(_, ranges)| ranges.iter().map(|r| (r.log_id, r.epoch)))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut tx = self.begin_write().await?;
        let mut locked = std::collections::HashSet::new();
        for chunk in pairs.chunks(STATEMENT_ROWS) {
            let rows: Vec<String> = (0..chunk.len()).map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2)).collect();
            let sql = format!(
                "UPDATE partitions SET epoch = epoch WHERE (log_id, epoch) IN (VALUES {}) RETURNING log_id",
                rows.join(", ")
            );
            // Only numbered placeholders are formatted in; the values are bound.
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (log_id, epoch) in chunk {
                query = query.bind(*log_id).bind(*epoch);
            }
            for row in query.fetch_all(&mut *tx).await.map_err(classify)? {
                locked.insert(get::<i64>(&row, "log_id")?);
            }
        }
        // Whether each refused (partition, epoch) is fenced (true) or unknown (false).
        let mut refusals: std::collections::BTreeMap<(i64, i64), bool> = std::collections::BTreeMap::new();
        for &(log_id, epoch) in pairs.iter().filter(|(log_id, _)| !locked.contains(log_id)) {
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
        let mut answers: Vec<Vec<(i64, MetadataError)>> = Vec::with_capacity(objects.len());
        let mut rows: Vec<(&str, &LogObjectRange)> = Vec::new();
        for (object_key, ranges) in objects {
            let mut ordered: Vec<&LogObjectRange> = ranges.iter().collect();
            ordered.sort_by_key(|r| (r.log_id, r.start_offset));
            let mut refused = Vec::new();
            for r in ordered {
                match refusals.get(&(r.log_id, r.epoch)) {
                    Some(true) => refused.push((r.log_id, MetadataError::Fenced { log_id: r.log_id, epoch: r.epoch })),
                    Some(false) => refused.push((r.log_id, partition_not_found(r.log_id))),
                    None => rows.push((object_key, r)),
                }
            }
            answers.push(refused);
        }
        let mut inserted = std::collections::HashSet::new();
        for chunk in rows.chunks(STATEMENT_ROWS) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let b = 6 * i;
                    format!("(${}, ${}, ${}, ${}, ${}, ${})", b + 1, b + 2, b + 3, b + 4, b + 5, b + 6)
                })
                .collect();
            // DO NOTHING rather than a unique violation, which would abort the whole PostgreSQL
            // transaction: a row already in place is compared with this one below.
            let sql = format!(
                "INSERT INTO log_objects (log_id, start_offset, end_offset, object_key, epoch, committed_at) VALUES {} \
                 ON CONFLICT (log_id, start_offset) DO NOTHING RETURNING log_id, start_offset",
                values.join(", ")
            );
            // Only numbered placeholders are formatted in; the values are bound.
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (object_key, r) in chunk {
                query = query
                    .bind(r.log_id)
                    .bind(r.start_offset)
                    .bind(r.end_offset)
                    .bind(*object_key)
                    .bind(r.epoch)
                    .bind(committed_at);
            }
            for row in query.fetch_all(&mut *tx).await.map_err(classify)? {
                inserted.insert((get::<i64>(&row, "log_id")?, get::<i64>(&row, "start_offset")?));
            }
        }
        // A range not inserted has a row already: a retry of a commit whose answer was lost, or
        // a conflict.
        for (i, (object_key, ranges)) in objects.iter().enumerate() {
            for r in ranges {
                let refused = answers[i].iter().any(|(id, _)| *id == r.log_id);
                if refused || inserted.contains(&(r.log_id, r.start_offset)) {
                    continue;
                }
                if let Some(e) = existing_range(&mut tx, object_key, r).await? {
                    answers[i].push((r.log_id, e));
                }
            }
            answers[i].sort_by_key(|(id, _)| *id);
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
        // Every row of those objects is locked before any is deleted. Otherwise two owners
        // trimming the last two ranges of one object at once would each still see the other's
        // row and neither would free the object; locked, the second waits for the first and then
        // sees its rows gone. In one order for every trim (key, then log and offset), or trims
        // of partitions sharing objects can each hold a row another waits for: PostgreSQL then
        // ends one as deadlocked (a no-op UPDATE, which locks rows in the order its scan meets
        // them, did so under load). SQLite's write lock already serializes the trims.
        if self.dialect == Dialect::Postgres {
            for key in &keys {
                sqlx::query(
                    "SELECT log_id FROM log_objects WHERE object_key = $1 ORDER BY log_id, start_offset FOR UPDATE",
                )
                .bind(key)
                .fetch_all(&mut *tx)
                .await
                .map_err(classify)?;
            }
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

/// Rows per multi-row statement (SQLite allows 32,766 parameters, PostgreSQL 65,535).
const STATEMENT_ROWS: usize = 500;

/// A range whose insert found a row at its start: `None` when that row is this very range (a
/// retry of a commit whose answer was lost), `Some(Conflict)` when it is another object's.
async fn existing_range(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    object_key: &str,
    r: &LogObjectRange,
) -> Result<Option<MetadataError>> {
    let row = sqlx::query("SELECT end_offset, object_key FROM log_objects WHERE log_id = $1 AND start_offset = $2")
        .bind(r.log_id)
        .bind(r.start_offset)
        .fetch_one(&mut **tx)
        .await
        .map_err(classify)?;
    let (end_offset, key): (i64, String) = (get(&row, "end_offset")?, get(&row, "object_key")?);
    if key == object_key && end_offset == r.end_offset {
        return Ok(None);
    }
    Ok(Some(MetadataError::Conflict(format!(
        "range {}.. of partition {} is committed in log object {key} (up to {end_offset}), not in {object_key}",
        r.start_offset, r.log_id
    ))))
}
