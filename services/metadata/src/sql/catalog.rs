//! Clusters, tenants and namespaces.

use super::errors::{Target, classify, classify_write};
use super::{Dialect, SqlMetadataStore, from_json, get, to_json};
use crate::{ClusterData, MetadataError, NamespaceRecord, PartitionRecord, Result, TenantInfo};
use magnetar_core::{NamespaceName, Policies, TenantName, now_millis};
use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};

// Deletes of a tenant or namespace first lock its row for the rest of the transaction. Inserting
// a child checks its foreign key by taking a KEY SHARE lock on the parent row, which conflicts
// with FOR UPDATE: a concurrent create_namespace/create_topic either commits before the delete
// (and is counted or cascaded) or waits and then fails with NotFound. SQLite needs no row lock:
// write transactions begin IMMEDIATE and so are serialized.

impl SqlMetadataStore {
    pub(crate) async fn upsert_cluster_impl(&self, c: &ClusterData) -> Result<()> {
        sqlx::query(
            "INSERT INTO clusters (name, service_url, service_url_tls, broker_service_url, broker_service_url_tls, \
             peer_cluster_names) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (name) DO UPDATE SET service_url = excluded.service_url, \
             service_url_tls = excluded.service_url_tls, broker_service_url = excluded.broker_service_url, \
             broker_service_url_tls = excluded.broker_service_url_tls, \
             peer_cluster_names = excluded.peer_cluster_names",
        )
        .bind(&c.name)
        .bind(&c.service_url)
        .bind(&c.service_url_tls)
        .bind(&c.broker_service_url)
        .bind(&c.broker_service_url_tls)
        .bind(to_json(&c.peer_cluster_names)?)
        .execute(&self.pool)
        .await
        .map_err(classify)?;
        Ok(())
    }

    pub(crate) async fn get_cluster_impl(&self, name: &str) -> Result<Option<ClusterData>> {
        let row = sqlx::query(
            "SELECT name, service_url, service_url_tls, broker_service_url, broker_service_url_tls, \
             peer_cluster_names FROM clusters WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(classify)?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(ClusterData {
            name: get(&row, "name")?,
            service_url: get(&row, "service_url")?,
            service_url_tls: get(&row, "service_url_tls")?,
            broker_service_url: get(&row, "broker_service_url")?,
            broker_service_url_tls: get(&row, "broker_service_url_tls")?,
            peer_cluster_names: from_json(&get::<String>(&row, "peer_cluster_names")?, format_args!("cluster {name}"))?,
        }))
    }

    pub(crate) async fn list_clusters_impl(&self) -> Result<Vec<String>> {
        let rows =
            sqlx::query("SELECT name FROM clusters ORDER BY name").fetch_all(&self.pool).await.map_err(classify)?;
        rows.iter().map(|r| get(r, "name")).collect()
    }

    pub(crate) async fn create_tenant_impl(&self, name: &TenantName, info: &TenantInfo) -> Result<()> {
        let target = Target::new(format_args!("tenant {name}"), "");
        sqlx::query("INSERT INTO tenants (name, admin_roles, allowed_clusters, created_at) VALUES ($1, $2, $3, $4)")
            .bind(name.as_str())
            .bind(to_json(&info.admin_roles)?)
            .bind(to_json(&info.allowed_clusters)?)
            .bind(now_millis())
            .execute(&self.pool)
            .await
            .map_err(|e| classify_write(e, Some(&target)))?;
        Ok(())
    }

    pub(crate) async fn update_tenant_impl(&self, name: &TenantName, info: &TenantInfo) -> Result<()> {
        let done = sqlx::query("UPDATE tenants SET admin_roles = $1, allowed_clusters = $2 WHERE name = $3")
            .bind(to_json(&info.admin_roles)?)
            .bind(to_json(&info.allowed_clusters)?)
            .bind(name.as_str())
            .execute(&self.pool)
            .await
            .map_err(classify)?;
        if done.rows_affected() == 0 {
            return Err(MetadataError::NotFound(format!("tenant {name}")));
        }
        Ok(())
    }

    pub(crate) async fn get_tenant_impl(&self, name: &TenantName) -> Result<Option<TenantInfo>> {
        let row = sqlx::query("SELECT admin_roles, allowed_clusters FROM tenants WHERE name = $1")
            .bind(name.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(classify)?;
        let Some(row) = row else { return Ok(None) };
        let owner = format!("tenant {name}");
        Ok(Some(TenantInfo {
            admin_roles: from_json(&get::<String>(&row, "admin_roles")?, &owner)?,
            allowed_clusters: from_json(&get::<String>(&row, "allowed_clusters")?, &owner)?,
        }))
    }

    pub(crate) async fn list_tenants_impl(&self) -> Result<Vec<TenantName>> {
        let rows =
            sqlx::query("SELECT name FROM tenants ORDER BY name").fetch_all(&self.pool).await.map_err(classify)?;
        rows.iter().map(|r| parse_name(&get::<String>(r, "name")?, TenantName::new)).collect()
    }

    pub(crate) async fn delete_tenant_impl(&self, name: &TenantName, force: bool) -> Result<Vec<PartitionRecord>> {
        let mut tx = self.begin_write().await?;
        let lock = match self.dialect {
            Dialect::Postgres => "SELECT 1 FROM tenants WHERE name = $1 FOR UPDATE",
            Dialect::Sqlite => "SELECT 1 FROM tenants WHERE name = $1",
        };
        let locked = sqlx::query(lock).bind(name.as_str()).fetch_optional(&mut *tx).await.map_err(classify)?;
        if locked.is_none() {
            return Err(MetadataError::NotFound(format!("tenant {name}")));
        }
        if !force {
            let child = sqlx::query("SELECT 1 FROM namespaces WHERE tenant = $1 LIMIT 1")
                .bind(name.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(classify)?;
            if child.is_some() {
                return Err(MetadataError::NotEmpty(format!("tenant {name}")));
            }
        }
        let removed = partitions_of(
            &mut tx,
            "SELECT p.log_id, p.idx, p.terminated_end FROM partitions p JOIN topics t ON t.id = p.topic_id \
             WHERE t.tenant = $1 ORDER BY p.log_id",
            name.as_str(),
            None,
        )
        .await?;
        // Namespaces, topics, partitions, subscriptions and segments go by ON DELETE CASCADE.
        sqlx::query("DELETE FROM tenants WHERE name = $1")
            .bind(name.as_str())
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        Ok(removed)
    }

    pub(crate) async fn create_namespace_impl(&self, name: &NamespaceName, policies: &Policies) -> Result<()> {
        let target = Target::new(format_args!("namespace {name}"), format_args!("tenant {}", name.tenant()));
        sqlx::query("INSERT INTO namespaces (tenant, name, policies, version, created_at) VALUES ($1, $2, $3, 0, $4)")
            .bind(name.tenant().as_str())
            .bind(name.local())
            .bind(to_json(policies)?)
            .bind(now_millis())
            .execute(&self.pool)
            .await
            .map_err(|e| classify_write(e, Some(&target)))?;
        Ok(())
    }

    pub(crate) async fn get_namespace_impl(&self, name: &NamespaceName) -> Result<Option<NamespaceRecord>> {
        let row = sqlx::query("SELECT policies, version FROM namespaces WHERE tenant = $1 AND name = $2")
            .bind(name.tenant().as_str())
            .bind(name.local())
            .fetch_optional(&self.pool)
            .await
            .map_err(classify)?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(NamespaceRecord {
            policies: from_json(&get::<String>(&row, "policies")?, format_args!("namespace {name}"))?,
            version: get(&row, "version")?,
        }))
    }

    pub(crate) async fn list_namespaces_impl(&self, tenant: &TenantName) -> Result<Vec<NamespaceName>> {
        // One statement, so the tenant check and the listing see the same snapshot: a tenant
        // without namespaces yields a single row with a NULL namespace.
        let rows = sqlx::query(
            "SELECT n.name AS name FROM tenants t LEFT JOIN namespaces n ON n.tenant = t.name \
             WHERE t.name = $1 ORDER BY n.name",
        )
        .bind(tenant.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(classify)?;
        if rows.is_empty() {
            return Err(MetadataError::NotFound(format!("tenant {tenant}")));
        }
        let mut names = Vec::with_capacity(rows.len());
        for row in &rows {
            if let Some(local) = get::<Option<String>>(row, "name")? {
                names.push(parse_name(&local, |l| NamespaceName::new(tenant.clone(), l))?);
            }
        }
        Ok(names)
    }

    pub(crate) async fn update_namespace_policies_impl(
        &self,
        name: &NamespaceName,
        policies: &Policies,
        expected_version: i64,
    ) -> Result<i64> {
        let row = sqlx::query(
            "UPDATE namespaces SET policies = $1, version = version + 1 \
             WHERE tenant = $2 AND name = $3 AND version = $4 RETURNING version",
        )
        .bind(to_json(policies)?)
        .bind(name.tenant().as_str())
        .bind(name.local())
        .bind(expected_version)
        .fetch_optional(&self.pool)
        .await
        .map_err(classify)?;
        if let Some(row) = row {
            return get(&row, "version");
        }
        match self.get_namespace_impl(name).await? {
            None => Err(MetadataError::NotFound(format!("namespace {name}"))),
            Some(current) => Err(MetadataError::Conflict(format!(
                "namespace {name} policies were changed concurrently: version is {}, expected {expected_version}",
                current.version
            ))),
        }
    }

    pub(crate) async fn delete_namespace_impl(
        &self,
        name: &NamespaceName,
        force: bool,
    ) -> Result<Vec<PartitionRecord>> {
        let mut tx = self.begin_write().await?;
        let lock = match self.dialect {
            Dialect::Postgres => "SELECT 1 FROM namespaces WHERE tenant = $1 AND name = $2 FOR UPDATE",
            Dialect::Sqlite => "SELECT 1 FROM namespaces WHERE tenant = $1 AND name = $2",
        };
        let locked = sqlx::query(lock)
            .bind(name.tenant().as_str())
            .bind(name.local())
            .fetch_optional(&mut *tx)
            .await
            .map_err(classify)?;
        if locked.is_none() {
            return Err(MetadataError::NotFound(format!("namespace {name}")));
        }
        if !force {
            let child = sqlx::query("SELECT 1 FROM topics WHERE tenant = $1 AND namespace = $2 LIMIT 1")
                .bind(name.tenant().as_str())
                .bind(name.local())
                .fetch_optional(&mut *tx)
                .await
                .map_err(classify)?;
            if child.is_some() {
                return Err(MetadataError::NotEmpty(format!("namespace {name}")));
            }
        }
        let removed = partitions_of(
            &mut tx,
            "SELECT p.log_id, p.idx, p.terminated_end FROM partitions p JOIN topics t ON t.id = p.topic_id \
             WHERE t.tenant = $1 AND t.namespace = $2 ORDER BY p.log_id",
            name.tenant().as_str(),
            Some(name.local()),
        )
        .await?;
        // Topics, partitions, subscriptions and segments go by ON DELETE CASCADE.
        sqlx::query("DELETE FROM namespaces WHERE tenant = $1 AND name = $2")
            .bind(name.tenant().as_str())
            .bind(name.local())
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        Ok(removed)
    }
}

async fn partitions_of(
    tx: &mut Transaction<'static, Any>,
    sql: &'static str,
    first: &str,
    second: Option<&str>,
) -> Result<Vec<PartitionRecord>> {
    let mut query = sqlx::query(sql).bind(first.to_string());
    if let Some(second) = second {
        query = query.bind(second.to_string());
    }
    let rows = query.fetch_all(&mut **tx).await.map_err(classify)?;
    rows.iter().map(partition_record).collect()
}

pub(crate) fn partition_record(row: &AnyRow) -> Result<PartitionRecord> {
    let index: i64 = get(row, "idx")?;
    let index =
        i32::try_from(index).map_err(|_| MetadataError::Internal(format!("partition index {index} out of range")))?;
    Ok(PartitionRecord { log_id: get(row, "log_id")?, index, terminated_end: get(row, "terminated_end")? })
}

/// Names read back from the store were validated when written; failing here means corruption.
pub(crate) fn parse_name<T, E: std::fmt::Display>(raw: &str, parse: impl FnOnce(String) -> Result<T, E>) -> Result<T> {
    parse(raw.to_string()).map_err(|e| MetadataError::Internal(format!("invalid name {raw} stored: {e}")))
}
