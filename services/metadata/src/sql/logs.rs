//! Per-partition state: ownership epochs, subscription cursors and the segment index.

use super::errors::{Target, classify, classify_write};
use super::{SqlMetadataStore, from_json, get, offset_from_db, offset_to_db, to_json};
use crate::{CursorCheckpoint, CursorState, DedupSnapshot, MetadataError, Result, SegmentRecord, SubscriptionRecord};
use magnetar_core::now_millis;
use sqlx::{Any, Transaction};

impl SqlMetadataStore {
    pub(crate) async fn acquire_partition_impl(&self, log_id: i64, broker: &str) -> Result<i64> {
        let row = sqlx::query("UPDATE partitions SET owner = $1, epoch = epoch + 1 WHERE log_id = $2 RETURNING epoch")
            .bind(broker)
            .bind(log_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(classify)?;
        let row = row.ok_or_else(|| partition_not_found(log_id))?;
        get(&row, "epoch")
    }

    pub(crate) async fn get_partition_owner_impl(&self, log_id: i64) -> Result<Option<(String, i64)>> {
        let row = sqlx::query("SELECT owner, epoch FROM partitions WHERE log_id = $1")
            .bind(log_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(classify)?;
        let row = row.ok_or_else(|| partition_not_found(log_id))?;
        let owner: Option<String> = get(&row, "owner")?;
        Ok(match owner {
            Some(owner) => Some((owner, get(&row, "epoch")?)),
            None => None,
        })
    }

    pub(crate) async fn create_subscription_impl(&self, name: &str, cursors: &[(i64, CursorState)]) -> Result<()> {
        let created_at = now_millis();
        let mut tx = self.begin_write().await?;
        for (log_id, cursor) in cursors {
            let target = Target::new(
                format_args!("subscription {name} on partition {log_id}"),
                format_args!("partition {log_id}"),
            );
            let mark_delete = offset_to_db(cursor.mark_delete, &target.row)?;
            sqlx::query(
                "INSERT INTO subscriptions (log_id, name, mark_delete, acked_ranges, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(*log_id)
            .bind(name)
            .bind(mark_delete)
            .bind(to_json(&cursor.acked_ranges)?)
            .bind(created_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| classify_write(e, Some(&target)))?;
        }
        tx.commit().await.map_err(classify)?;
        Ok(())
    }

    pub(crate) async fn list_subscriptions_impl(&self, log_id: i64) -> Result<Vec<SubscriptionRecord>> {
        // The LEFT JOIN distinguishes a missing partition (no row) from one without
        // subscriptions (one row with NULL subscription columns) in a single snapshot.
        let rows = sqlx::query(
            "SELECT s.name, s.mark_delete, s.acked_ranges, s.created_at, s.properties FROM partitions p \
             LEFT JOIN subscriptions s ON s.log_id = p.log_id WHERE p.log_id = $1 ORDER BY s.name",
        )
        .bind(log_id)
        .fetch_all(&self.pool)
        .await
        .map_err(classify)?;
        if rows.is_empty() {
            return Err(partition_not_found(log_id));
        }
        let mut subscriptions = Vec::with_capacity(rows.len());
        for row in &rows {
            let Some(name) = get::<Option<String>>(row, "name")? else { continue };
            let what = format!("subscription {name} on partition {log_id}");
            let mark_delete: i64 = get(row, "mark_delete")?;
            subscriptions.push(SubscriptionRecord {
                log_id,
                cursor: CursorState {
                    mark_delete: offset_from_db(mark_delete, &what)?,
                    acked_ranges: from_json(&get::<String>(row, "acked_ranges")?, &what)?,
                },
                created_at: get(row, "created_at")?,
                properties: from_json(&get::<String>(row, "properties")?, &what)?,
                name,
            });
        }
        Ok(subscriptions)
    }

    pub(crate) async fn delete_subscription_impl(&self, name: &str, log_ids: &[i64]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let mut deleted = 0;
        for log_id in log_ids {
            let done = sqlx::query("DELETE FROM subscriptions WHERE log_id = $1 AND name = $2")
                .bind(*log_id)
                .bind(name)
                .execute(&mut *tx)
                .await
                .map_err(classify)?;
            deleted += done.rows_affected();
        }
        if deleted == 0 {
            return Err(MetadataError::NotFound(format!("subscription {name}")));
        }
        tx.commit().await.map_err(classify)?;
        Ok(())
    }

    pub(crate) async fn checkpoint_cursors_impl(
        &self,
        log_id: i64,
        epoch: i64,
        cursors: &[(String, CursorState)],
    ) -> Result<()> {
        let one = CursorCheckpoint { log_id, epoch, cursors: cursors.to_vec() };
        match self.checkpoint_cursors_many_impl(std::slice::from_ref(&one)).await?.pop() {
            Some((_, refused)) => Err(refused),
            None => Ok(()),
        }
    }

    pub(crate) async fn checkpoint_cursors_many_impl(
        &self,
        batch: &[CursorCheckpoint],
    ) -> Result<Vec<(i64, MetadataError)>> {
        let mut refused = Vec::new();
        let mut tx = self.begin_write().await?;
        for c in batch {
            match fence(&mut tx, c.log_id, c.epoch).await {
                Ok(()) => {}
                Err(e @ (MetadataError::Fenced { .. } | MetadataError::NotFound(_))) => {
                    refused.push((c.log_id, e));
                    continue;
                }
                Err(e) => return Err(e),
            }
            for (name, cursor) in &c.cursors {
                let mark_delete =
                    offset_to_db(cursor.mark_delete, format!("subscription {name} on partition {}", c.log_id))?;
                // An UPDATE, not an upsert: a subscription deleted meanwhile stays deleted.
                sqlx::query(
                    "UPDATE subscriptions SET mark_delete = $1, acked_ranges = $2 WHERE log_id = $3 AND name = $4",
                )
                .bind(mark_delete)
                .bind(to_json(&cursor.acked_ranges)?)
                .bind(c.log_id)
                .bind(name)
                .execute(&mut *tx)
                .await
                .map_err(classify)?;
            }
        }
        tx.commit().await.map_err(classify)?;
        Ok(refused)
    }

    pub(crate) async fn save_dedup_snapshot_impl(&self, log_id: i64, epoch: i64, snap: &DedupSnapshot) -> Result<()> {
        let mut tx = self.begin_write().await?;
        fence(&mut tx, log_id, epoch).await?;
        let position = offset_to_db(snap.position, format!("deduplication snapshot of partition {log_id}"))?;
        sqlx::query(
            "INSERT INTO dedup_snapshots (log_id, position, producers, taken_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (log_id) DO UPDATE SET position = $2, producers = $3, taken_at = $4",
        )
        .bind(log_id)
        .bind(position)
        .bind(to_json(&snap.producers)?)
        .bind(snap.taken_at)
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        Ok(())
    }

    pub(crate) async fn get_dedup_snapshot_impl(&self, log_id: i64) -> Result<Option<DedupSnapshot>> {
        let row = sqlx::query(
            "SELECT d.position, d.producers, d.taken_at FROM partitions p \
             LEFT JOIN dedup_snapshots d ON d.log_id = p.log_id WHERE p.log_id = $1",
        )
        .bind(log_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(classify)?;
        let row = row.ok_or_else(|| partition_not_found(log_id))?;
        let Some(position) = get::<Option<i64>>(&row, "position")? else { return Ok(None) };
        Ok(Some(DedupSnapshot {
            position: offset_from_db(position, format_args!("deduplication snapshot of partition {log_id}"))?,
            producers: from_json(
                &get::<String>(&row, "producers")?,
                format_args!("deduplication snapshot of partition {log_id}"),
            )?,
            taken_at: get(&row, "taken_at")?,
        }))
    }

    pub(crate) async fn delete_dedup_snapshot_impl(&self, log_id: i64, epoch: i64) -> Result<()> {
        let statement = sqlx::query("DELETE FROM dedup_snapshots WHERE log_id = $1").bind(log_id);
        self.execute_fenced(log_id, epoch, statement).await
    }

    pub(crate) async fn commit_segment_impl(&self, epoch: i64, s: &SegmentRecord) -> Result<()> {
        let mut tx = self.begin_write().await?;
        fence(&mut tx, s.log_id, epoch).await?;
        let target = Target::new(
            format_args!("segment {} of partition {}", s.base_offset, s.log_id),
            format_args!("partition {}", s.log_id),
        );
        sqlx::query(
            "INSERT INTO segments (log_id, base_offset, end_offset, size_bytes, min_publish_time, max_publish_time, \
             object_key, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(s.log_id)
        .bind(s.base_offset)
        .bind(s.end_offset)
        .bind(s.size_bytes)
        .bind(s.min_publish_time)
        .bind(s.max_publish_time)
        .bind(&s.object_key)
        .bind(s.created_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| classify_write(e, Some(&target)))?;
        tx.commit().await.map_err(classify)?;
        Ok(())
    }

    pub(crate) async fn list_segments_impl(&self, log_id: i64) -> Result<Vec<SegmentRecord>> {
        let rows = sqlx::query(
            "SELECT s.base_offset, s.end_offset, s.size_bytes, s.min_publish_time, s.max_publish_time, \
             s.object_key, s.created_at FROM partitions p LEFT JOIN segments s ON s.log_id = p.log_id \
             WHERE p.log_id = $1 ORDER BY s.base_offset",
        )
        .bind(log_id)
        .fetch_all(&self.pool)
        .await
        .map_err(classify)?;
        if rows.is_empty() {
            return Err(partition_not_found(log_id));
        }
        let mut segments = Vec::with_capacity(rows.len());
        for row in &rows {
            let Some(base_offset) = get::<Option<i64>>(row, "base_offset")? else { continue };
            segments.push(SegmentRecord {
                log_id,
                base_offset,
                end_offset: get(row, "end_offset")?,
                size_bytes: get(row, "size_bytes")?,
                min_publish_time: get(row, "min_publish_time")?,
                max_publish_time: get(row, "max_publish_time")?,
                object_key: get(row, "object_key")?,
                created_at: get(row, "created_at")?,
            });
        }
        Ok(segments)
    }

    pub(crate) async fn delete_segments_impl(&self, log_id: i64, epoch: i64, base_offsets: &[i64]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        fence(&mut tx, log_id, epoch).await?;
        for base_offset in base_offsets {
            sqlx::query("DELETE FROM segments WHERE log_id = $1 AND base_offset = $2")
                .bind(log_id)
                .bind(*base_offset)
                .execute(&mut *tx)
                .await
                .map_err(classify)?;
        }
        tx.commit().await.map_err(classify)?;
        Ok(())
    }
}

pub(super) fn partition_not_found(log_id: i64) -> MetadataError {
    MetadataError::NotFound(format!("partition {log_id}"))
}

impl SqlMetadataStore {
    /// Runs one statement in a write transaction fenced on the partition's `epoch` (see `fence`):
    /// an owner's write that must not land once another broker holds the partition.
    pub(super) async fn execute_fenced<'q>(
        &self,
        log_id: i64,
        epoch: i64,
        statement: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        fence(&mut tx, log_id, epoch).await?;
        statement.execute(&mut *tx).await.map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        Ok(())
    }
}

/// Checks that `epoch` is still the partition's epoch and holds the partition row's lock until
/// the transaction ends, so an `acquire_partition` by another broker waits for this write and the
/// new owner reads state that includes it. The no-op UPDATE takes the row lock in PostgreSQL
/// without a dialect-specific `SELECT ... FOR UPDATE`; SQLite already holds the write lock.
pub(super) async fn fence(tx: &mut Transaction<'static, Any>, log_id: i64, epoch: i64) -> Result<()> {
    let locked = sqlx::query("UPDATE partitions SET epoch = epoch WHERE log_id = $1 AND epoch = $2")
        .bind(log_id)
        .bind(epoch)
        .execute(&mut **tx)
        .await
        .map_err(classify)?;
    if locked.rows_affected() == 1 {
        return Ok(());
    }
    let exists = sqlx::query("SELECT epoch FROM partitions WHERE log_id = $1")
        .bind(log_id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(classify)?;
    match exists {
        Some(_) => Err(MetadataError::Fenced { log_id, epoch }),
        None => Err(partition_not_found(log_id)),
    }
}
