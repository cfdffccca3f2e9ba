//! Cluster administration beyond the broker's own registration: create, update, delete, and a
//! cluster's failure domains and namespace isolation policies (stored as Pulsar's JSON).

use super::errors::{Target, classify, classify_write};
use super::{SqlMetadataStore, from_json, get, to_json};
use crate::{ClusterData, FailureDomain, MetadataError, NamespaceIsolationData, Result};
use sqlx::{Any, Transaction};
use std::collections::BTreeMap;

fn cluster_not_found(name: &str) -> MetadataError {
    MetadataError::NotFound(format!("cluster {name}"))
}

impl SqlMetadataStore {
    pub(crate) async fn create_cluster_impl(&self, c: &ClusterData) -> Result<()> {
        let target = Target::new(format_args!("cluster {}", c.name), "");
        sqlx::query(
            "INSERT INTO clusters (name, service_url, service_url_tls, broker_service_url, broker_service_url_tls, \
             peer_cluster_names) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&c.name)
        .bind(&c.service_url)
        .bind(&c.service_url_tls)
        .bind(&c.broker_service_url)
        .bind(&c.broker_service_url_tls)
        .bind(to_json(&c.peer_cluster_names)?)
        .execute(&self.pool)
        .await
        .map_err(|e| classify_write(e, Some(&target)))?;
        Ok(())
    }

    pub(crate) async fn update_cluster_impl(&self, c: &ClusterData) -> Result<()> {
        let done = sqlx::query(
            "UPDATE clusters SET service_url = $1, service_url_tls = $2, broker_service_url = $3, \
             broker_service_url_tls = $4, peer_cluster_names = $5 WHERE name = $6",
        )
        .bind(&c.service_url)
        .bind(&c.service_url_tls)
        .bind(&c.broker_service_url)
        .bind(&c.broker_service_url_tls)
        .bind(to_json(&c.peer_cluster_names)?)
        .bind(&c.name)
        .execute(&self.pool)
        .await
        .map_err(classify)?;
        if done.rows_affected() == 0 {
            return Err(cluster_not_found(&c.name));
        }
        Ok(())
    }

    pub(crate) async fn delete_cluster_impl(&self, name: &str) -> Result<()> {
        // Failure domains and isolation policies go by ON DELETE CASCADE.
        let done = sqlx::query("DELETE FROM clusters WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(classify)?;
        if done.rows_affected() == 0 {
            return Err(cluster_not_found(name));
        }
        Ok(())
    }

    pub(crate) async fn set_failure_domain_impl(
        &self,
        cluster: &str,
        name: &str,
        domain: &FailureDomain,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        require_cluster(&mut tx, cluster).await?;
        let rows = sqlx::query("SELECT name, brokers FROM failure_domains WHERE cluster = $1 AND name <> $2")
            .bind(cluster)
            .bind(name)
            .fetch_all(&mut *tx)
            .await
            .map_err(classify)?;
        for row in &rows {
            let other: String = get(row, "name")?;
            let brokers: Vec<String> = from_json(
                &get::<String>(row, "brokers")?,
                format_args!("failure domain {other} of cluster {cluster}"),
            )?;
            if let Some(b) = domain.brokers.iter().find(|b| brokers.contains(b)) {
                return Err(MetadataError::Conflict(format!(
                    "broker {b} is already in failure domain {other} of cluster {cluster}"
                )));
            }
        }
        sqlx::query(
            "INSERT INTO failure_domains (cluster, name, brokers) VALUES ($1, $2, $3) \
             ON CONFLICT (cluster, name) DO UPDATE SET brokers = excluded.brokers",
        )
        .bind(cluster)
        .bind(name)
        .bind(to_json(&domain.brokers)?)
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        Ok(())
    }

    pub(crate) async fn list_failure_domains_impl(&self, cluster: &str) -> Result<BTreeMap<String, FailureDomain>> {
        let rows = self.cluster_children("failure_domains", "brokers", cluster).await?;
        rows.into_iter()
            .map(|(name, brokers)| {
                let brokers = from_json(&brokers, format_args!("failure domain {name} of cluster {cluster}"))?;
                Ok((name, FailureDomain { brokers }))
            })
            .collect()
    }

    pub(crate) async fn delete_failure_domain_impl(&self, cluster: &str, name: &str) -> Result<()> {
        self.delete_cluster_child("failure_domains", cluster, name, "failure domain").await
    }

    pub(crate) async fn set_isolation_policy_impl(
        &self,
        cluster: &str,
        name: &str,
        policy: &NamespaceIsolationData,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        require_cluster(&mut tx, cluster).await?;
        sqlx::query(
            "INSERT INTO namespace_isolation_policies (cluster, name, policy) VALUES ($1, $2, $3) \
             ON CONFLICT (cluster, name) DO UPDATE SET policy = excluded.policy",
        )
        .bind(cluster)
        .bind(name)
        .bind(to_json(policy)?)
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        Ok(())
    }

    pub(crate) async fn list_isolation_policies_impl(
        &self,
        cluster: &str,
    ) -> Result<BTreeMap<String, NamespaceIsolationData>> {
        let rows = self.cluster_children("namespace_isolation_policies", "policy", cluster).await?;
        rows.into_iter()
            .map(|(name, policy)| {
                let policy = from_json(&policy, format_args!("isolation policy {name} of cluster {cluster}"))?;
                Ok((name, policy))
            })
            .collect()
    }

    pub(crate) async fn delete_isolation_policy_impl(&self, cluster: &str, name: &str) -> Result<()> {
        self.delete_cluster_child("namespace_isolation_policies", cluster, name, "namespace isolation policy").await
    }

    /// `(name, json column)` of a cluster's rows in `table`, by name; `NotFound` for a missing
    /// cluster. One statement, so the cluster and its rows come from one snapshot.
    async fn cluster_children(&self, table: &str, column: &str, cluster: &str) -> Result<Vec<(String, String)>> {
        let sql = format!(
            "SELECT t.name, t.{column} AS doc FROM clusters c LEFT JOIN {table} t ON t.cluster = c.name \
             WHERE c.name = $1 ORDER BY t.name"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(cluster).fetch_all(&self.pool).await.map_err(classify)?;
        if rows.is_empty() {
            return Err(cluster_not_found(cluster));
        }
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            if let Some(name) = get::<Option<String>>(row, "name")? {
                out.push((name, get(row, "doc")?));
            }
        }
        Ok(out)
    }

    async fn delete_cluster_child(&self, table: &str, cluster: &str, name: &str, what: &str) -> Result<()> {
        let sql = format!("DELETE FROM {table} WHERE cluster = $1 AND name = $2");
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(cluster)
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(classify)?;
        if done.rows_affected() == 0 {
            return Err(MetadataError::NotFound(format!("{what} {name} of cluster {cluster}")));
        }
        Ok(())
    }
}

/// `NotFound` unless the cluster exists (inside a write transaction, so it cannot vanish before
/// the transaction's child rows are written: their foreign key would refuse them).
async fn require_cluster(tx: &mut Transaction<'static, Any>, cluster: &str) -> Result<()> {
    let found = sqlx::query("SELECT 1 AS one FROM clusters WHERE name = $1")
        .bind(cluster)
        .fetch_optional(&mut **tx)
        .await
        .map_err(classify)?;
    if found.is_none() {
        return Err(cluster_not_found(cluster));
    }
    Ok(())
}
