//! Clusters, tenants and namespaces (with their policies).

use crate::{Broker, BrokerError, Result};
use magnetar_core::{NamespaceName, Policies, RetentionPolicies, TenantName};
use magnetar_metadata::{ClusterData, PartitionRecord, TenantInfo};

impl Broker {
    pub async fn list_clusters(&self) -> Result<Vec<String>> {
        Ok(self.metadata.list_clusters().await?)
    }

    pub async fn get_cluster(&self, name: &str) -> Result<ClusterData> {
        self.metadata.get_cluster(name).await?.ok_or_else(|| BrokerError::NotFound(format!("cluster {name}")))
    }

    fn check_clusters(&self, info: &TenantInfo) -> Result<()> {
        if let Some(bad) = info.allowed_clusters.iter().find(|c| c.as_str() != self.config.cluster) {
            return Err(BrokerError::PreconditionFailed(format!(
                "cluster {bad} does not exist (known: {})",
                self.config.cluster
            )));
        }
        Ok(())
    }

    pub async fn create_tenant(&self, name: &TenantName, info: &TenantInfo) -> Result<()> {
        self.check_clusters(info)?;
        self.metadata.create_tenant(name, info).await.map_err(|e| match e {
            magnetar_metadata::MetadataError::AlreadyExists(_) => BrokerError::AlreadyExists(format!("tenant {name}")),
            e => e.into(),
        })
    }

    pub async fn update_tenant(&self, name: &TenantName, info: &TenantInfo) -> Result<()> {
        self.check_clusters(info)?;
        Ok(self.metadata.update_tenant(name, info).await?)
    }

    pub async fn get_tenant(&self, name: &TenantName) -> Result<TenantInfo> {
        self.metadata.get_tenant(name).await?.ok_or_else(|| BrokerError::NotFound(format!("tenant {name}")))
    }

    pub async fn list_tenants(&self) -> Result<Vec<TenantName>> {
        Ok(self.metadata.list_tenants().await?)
    }

    pub async fn delete_tenant(&self, name: &TenantName, force: bool) -> Result<()> {
        let removed = self.metadata.delete_tenant(name, force).await?;
        self.drop_partitions(&removed).await;
        Ok(())
    }

    pub async fn create_namespace(&self, name: &NamespaceName, policies: Option<Policies>) -> Result<()> {
        let mut policies = policies.unwrap_or_default();
        if policies.replication_clusters.is_empty() {
            policies.replication_clusters = vec![self.config.cluster.clone()];
        }
        validate_policies(&policies)?;
        Ok(self.metadata.create_namespace(name, &policies).await?)
    }

    pub async fn list_namespaces(&self, tenant: &TenantName) -> Result<Vec<NamespaceName>> {
        Ok(self.metadata.list_namespaces(tenant).await?)
    }

    pub async fn get_policies(&self, name: &NamespaceName) -> Result<Policies> {
        Ok(self
            .metadata
            .get_namespace(name)
            .await?
            .ok_or_else(|| BrokerError::NotFound(format!("namespace {name}")))?
            .policies)
    }

    pub async fn delete_namespace(&self, name: &NamespaceName, force: bool) -> Result<()> {
        let removed = self.metadata.delete_namespace(name, force).await?;
        self.drop_partitions(&removed).await;
        Ok(())
    }

    /// Read-modify-write of a namespace's policies with optimistic concurrency (retried).
    pub async fn update_policies<F>(&self, name: &NamespaceName, mut change: F) -> Result<()>
    where
        F: FnMut(&mut Policies) -> Result<()>,
    {
        for _ in 0..10 {
            let rec = self
                .metadata
                .get_namespace(name)
                .await?
                .ok_or_else(|| BrokerError::NotFound(format!("namespace {name}")))?;
            let mut policies = rec.policies;
            change(&mut policies)?;
            validate_policies(&policies)?;
            match self.metadata.update_namespace_policies(name, &policies, rec.version).await {
                Ok(_) => {
                    self.policy_cache.invalidate(name);
                    return Ok(());
                }
                Err(magnetar_metadata::MetadataError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(BrokerError::Conflict(format!("namespace {name} is being modified concurrently, try again")))
    }

    /// The retention in force for a namespace: its policy, else the broker default.
    pub async fn effective_retention(&self, name: &NamespaceName) -> Result<RetentionPolicies> {
        Ok(self.cached_policies(name).await?.retention_policies.unwrap_or_else(|| self.config.default_retention()))
    }

    /// Unloads and deletes the data of partitions removed from the metadata store: local files,
    /// then objects (their index rows went with the partitions).
    pub(crate) async fn drop_partitions(&self, removed: &[PartitionRecord]) {
        let ids: std::collections::HashSet<i64> = removed.iter().map(|p| p.log_id).collect();
        let topics: Vec<_> =
            self.loaded_topics().into_iter().filter(|t| t.partitions.iter().any(|p| ids.contains(&p.log_id))).collect();
        let prefixes: std::collections::HashMap<i64, String> = topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .filter(|p| ids.contains(&p.log_id))
            .map(|p| (p.log_id, crate::offload::partition_prefix(&self.config.cluster, p)))
            .collect();
        for t in &topics {
            self.unload(&t.record.name);
        }
        for p in removed {
            if let Err(e) = self.storage.delete_log(p.log_id as u64).await {
                // The orphan collector at the next start removes it.
                tracing::warn!(log_id = p.log_id, error = %e, "could not delete partition data");
            }
        }
        let ids: Vec<i64> = removed.iter().map(|p| p.log_id).collect();
        self.delete_partition_objects(&ids, &prefixes).await;
    }
}

/// Pulsar's validation of policy values (412 on violation).
fn validate_policies(p: &Policies) -> Result<()> {
    if let Some(ttl) = p.message_ttl_in_seconds
        && ttl < 0
    {
        return Err(BrokerError::PreconditionFailed(format!("messageTTL {ttl} must be 0 or positive")));
    }
    if let Some(r) = p.retention_policies {
        validate_retention(&r)?;
    }
    Ok(())
}

pub(crate) fn validate_retention(r: &RetentionPolicies) -> Result<()> {
    if r.retention_time_in_minutes < -1 || r.retention_size_in_mb < -1 {
        return Err(BrokerError::PreconditionFailed(
            "retention time and size must be -1 (infinite), 0 (none) or positive".into(),
        ));
    }
    // Pulsar refuses a retention that is infinite in one dimension and zero in the other.
    if (r.retention_time_in_minutes == 0 && r.retention_size_in_mb == -1)
        || (r.retention_time_in_minutes == -1 && r.retention_size_in_mb == 0)
    {
        return Err(BrokerError::PreconditionFailed(
            "retention time and size must not be infinite in one dimension and zero in the other".into(),
        ));
    }
    Ok(())
}
