//! Compacted views of partitions (topic compaction): one row per partition, replaced whole.

use super::errors::classify;
use super::logs::{fence, partition_not_found};
use super::{SqlMetadataStore, get};
use crate::{CompactedViewRecord, MetadataError, Result};
use sqlx::any::AnyRow;

impl SqlMetadataStore {
    pub(crate) async fn commit_compacted_view_impl(
        &self,
        epoch: i64,
        view: &CompactedViewRecord,
        previous_horizon: Option<i64>,
    ) -> Result<Option<CompactedViewRecord>> {
        let log_id = view.log_id;
        let mut tx = self.begin_write().await?;
        // The fence holds the partition row's lock: two commits of one partition serialize here.
        fence(&mut tx, log_id, epoch).await?;
        let current = sqlx::query(
            "SELECT horizon, object_key, messages, size_bytes, created_at FROM compacted_views WHERE log_id = $1",
        )
        .bind(log_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(classify)?
        .map(|row| view_of(log_id, &row))
        .transpose()?;
        let current_horizon = current.as_ref().map(|v| v.horizon);
        if current_horizon != previous_horizon {
            return Err(MetadataError::Conflict(format!(
                "compacted view of partition {log_id}: horizon {current_horizon:?} in force, {previous_horizon:?} expected"
            )));
        }
        sqlx::query("DELETE FROM compacted_views WHERE log_id = $1")
            .bind(log_id)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        sqlx::query(
            "INSERT INTO compacted_views (log_id, horizon, object_key, messages, size_bytes, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(log_id)
        .bind(view.horizon)
        .bind(&view.object_key)
        .bind(view.messages)
        .bind(view.size_bytes)
        .bind(view.created_at)
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        Ok(current)
    }

    pub(crate) async fn get_compacted_view_impl(&self, log_id: i64) -> Result<Option<CompactedViewRecord>> {
        // The LEFT JOIN tells a missing partition (no row) from one without a view.
        let row = sqlx::query(
            "SELECT p.log_id, c.horizon, c.object_key, c.messages, c.size_bytes, c.created_at FROM partitions p \
             LEFT JOIN compacted_views c ON c.log_id = p.log_id WHERE p.log_id = $1",
        )
        .bind(log_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(classify)?
        .ok_or_else(|| partition_not_found(log_id))?;
        if get::<Option<i64>>(&row, "horizon")?.is_none() {
            return Ok(None);
        }
        view_of(log_id, &row).map(Some)
    }
}

fn view_of(log_id: i64, row: &AnyRow) -> Result<CompactedViewRecord> {
    Ok(CompactedViewRecord {
        log_id,
        horizon: get(row, "horizon")?,
        object_key: get(row, "object_key")?,
        messages: get(row, "messages")?,
        size_bytes: get(row, "size_bytes")?,
        created_at: get(row, "created_at")?,
    })
}
