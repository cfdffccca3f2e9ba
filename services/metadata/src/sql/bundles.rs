//! Bundle ownership: one row per bundle in use, moved through its states by compare-and-set on
//! its epoch and state.

use super::errors::{Target, classify, classify_write};
use super::{SqlMetadataStore, get};
use crate::{BundleOwnership, BundleState, BundleTransition, MetadataError, Result};
use magnetar_core::NamespaceName;
use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;

const COLUMNS: &str = "tenant, namespace, bundle, state, owner, owner_session, epoch, updated_at_ms";

fn row_of(row: &AnyRow) -> Result<BundleOwnership> {
    let tenant: String = get(row, "tenant")?;
    let local: String = get(row, "namespace")?;
    let namespace = NamespaceName::parse_parts(&tenant, &local)
        .map_err(|e| MetadataError::Internal(format!("invalid namespace {tenant}/{local} stored: {e}")))?;
    let state: String = get(row, "state")?;
    let bundle: String = get(row, "bundle")?;
    Ok(BundleOwnership {
        state: BundleState::parse(&state).ok_or_else(|| {
            MetadataError::Internal(format!("bundle {namespace}/{bundle} has an unknown state {state}"))
        })?,
        owner: get(row, "owner")?,
        owner_session: get(row, "owner_session")?,
        epoch: get(row, "epoch")?,
        updated_at_ms: get(row, "updated_at_ms")?,
        namespace,
        bundle,
    })
}

/// A query whose text embeds the column list and the dialect's clock expression (constants of
/// this crate) and nothing else.
fn fixed(sql: String) -> AssertSqlSafe<String> {
    AssertSqlSafe(sql)
}

/// The bundle's row, read through `ex` (the pool, or a transaction that goes on to change it).
async fn read_row<'e, E>(ex: E, ns: &NamespaceName, bundle: &str) -> Result<Option<BundleOwnership>>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let row = sqlx::query(fixed(format!(
        "SELECT {COLUMNS} FROM bundle_ownership WHERE tenant = $1 AND namespace = $2 AND bundle = $3"
    )))
    .bind(ns.tenant().as_str())
    .bind(ns.local())
    .bind(bundle)
    .fetch_optional(ex)
    .await
    .map_err(classify)?;
    row.as_ref().map(row_of).transpose()
}

impl SqlMetadataStore {
    pub(crate) async fn ensure_bundle_impl(&self, ns: &NamespaceName, bundle: &str) -> Result<BundleOwnership> {
        let now = self.dialect().now_ms_sql();
        let target = Target::new(format_args!("bundle {ns}/{bundle}"), format_args!("namespace {ns}"));
        let mut tx = self.begin_write().await?;
        sqlx::query(fixed(format!(
            "INSERT INTO bundle_ownership ({COLUMNS}) VALUES ($1, $2, $3, 'free', NULL, NULL, 0, {now}) \
             ON CONFLICT (tenant, namespace, bundle) DO NOTHING"
        )))
        .bind(ns.tenant().as_str())
        .bind(ns.local())
        .bind(bundle)
        .execute(&mut *tx)
        .await
        .map_err(|e| classify_write(e, Some(&target)))?;
        let row = sqlx::query(fixed(format!(
            "SELECT {COLUMNS} FROM bundle_ownership WHERE tenant = $1 AND namespace = $2 AND bundle = $3"
        )))
        .bind(ns.tenant().as_str())
        .bind(ns.local())
        .bind(bundle)
        .fetch_one(&mut *tx)
        .await
        .map_err(classify)?;
        let record = row_of(&row)?;
        tx.commit().await.map_err(classify)?;
        Ok(record)
    }

    pub(crate) async fn get_bundle_impl(&self, ns: &NamespaceName, bundle: &str) -> Result<Option<BundleOwnership>> {
        read_row(&self.pool, ns, bundle).await
    }

    pub(crate) async fn list_bundles_impl(&self) -> Result<Vec<BundleOwnership>> {
        let rows =
            sqlx::query(fixed(format!("SELECT {COLUMNS} FROM bundle_ownership ORDER BY tenant, namespace, bundle")))
                .fetch_all(&self.pool)
                .await
                .map_err(classify)?;
        rows.iter().map(row_of).collect()
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn transition_bundle_impl(
        &self,
        ns: &NamespaceName,
        bundle: &str,
        expected_epoch: i64,
        expected_state: BundleState,
        to: &BundleTransition,
        partitions: &[i64],
    ) -> Result<BundleOwnership> {
        let now = self.dialect().now_ms_sql();
        let (owner, session) = match &to.owner {
            Some((o, s)) => (Some(o.as_str()), Some(s.as_str())),
            None => (None, None),
        };
        let mut tx = self.begin_write().await?;
        let Some(current) = read_row(&mut *tx, ns, bundle).await? else {
            return Err(MetadataError::NotFound(format!("bundle {ns}/{bundle}")));
        };
        // The conditional update decides (it is what a concurrent transition races against);
        // the read above only lets the refusal say what the caller missed.
        let row = sqlx::query(fixed(format!(
            "UPDATE bundle_ownership SET state = $1, owner = $2, owner_session = $3, epoch = epoch + 1, \
             updated_at_ms = {now} \
             WHERE tenant = $4 AND namespace = $5 AND bundle = $6 AND epoch = $7 AND state = $8 \
             RETURNING {COLUMNS}"
        )))
        .bind(to.state.as_str())
        .bind(owner)
        .bind(session)
        .bind(ns.tenant().as_str())
        .bind(ns.local())
        .bind(bundle)
        .bind(expected_epoch)
        .bind(expected_state.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(classify)?;
        let Some(row) = row else {
            return Err(MetadataError::Conflict(format!(
                "bundle {ns}/{bundle} is {} at epoch {}, not {} at epoch {expected_epoch}: the transition is stale",
                current.state.as_str(),
                current.epoch,
                expected_state.as_str()
            )));
        };
        let updated = row_of(&row)?;
        if current.owner != updated.owner || current.owner_session != updated.owner_session {
            // The previous owner's writes to these partitions are refused from this commit on.
            for log_id in partitions {
                sqlx::query("UPDATE partitions SET owner = $1, epoch = epoch + 1 WHERE log_id = $2")
                    .bind(owner)
                    .bind(log_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(classify)?;
            }
        }
        tx.commit().await.map_err(classify)?;
        Ok(updated)
    }

    pub(crate) async fn retire_bundle_impl(&self, ns: &NamespaceName, bundle: &str, expected_epoch: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "DELETE FROM bundle_ownership \
             WHERE tenant = $1 AND namespace = $2 AND bundle = $3 AND epoch = $4 AND state = 'free'",
        )
        .bind(ns.tenant().as_str())
        .bind(ns.local())
        .bind(bundle)
        .bind(expected_epoch)
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        if done.rows_affected() == 0 {
            return Err(match read_row(&mut *tx, ns, bundle).await? {
                None => MetadataError::NotFound(format!("bundle {ns}/{bundle}")),
                Some(row) => MetadataError::Conflict(format!(
                    "bundle {ns}/{bundle} is {} at epoch {}, not free at epoch {expected_epoch}: not retired",
                    row.state.as_str(),
                    row.epoch
                )),
            });
        }
        tx.commit().await.map_err(classify)?;
        Ok(())
    }
}
