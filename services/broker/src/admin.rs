//! Clusters, tenants and namespaces (with their policies). Every change invalidates the shared
//! policy cache after it has committed, so authorization and policy enforcement on this broker
//! see it at once (other brokers within the cache's TTL).

use crate::context::Context;
use crate::controllers::offload::Offloader;
use crate::error::{Entity, OrEntity};
use crate::registry::TopicRegistry;
use crate::{BrokerError, Result};
use magnetar_core::{NamespaceName, Policies, RetentionPolicies, TenantName};
use magnetar_metadata::{ClusterData, TenantInfo};
use std::sync::Arc;

/// The handle for tenants, namespaces and clusters.
#[derive(Clone)]
pub struct Admin {
    ctx: Arc<Context>,
    registry: Arc<TopicRegistry>,
    offloader: Arc<Offloader>,
}

impl Admin {
    pub(crate) fn new(ctx: Arc<Context>, registry: Arc<TopicRegistry>, offloader: Arc<Offloader>) -> Self {
        Admin { ctx, registry, offloader }
    }

    pub(crate) fn ctx(&self) -> &Context {
        &self.ctx
    }

    pub fn cluster(&self) -> &str {
        &self.ctx.config.cluster
    }

    pub async fn list_clusters(&self) -> Result<Vec<String>> {
        Ok(self.ctx.metadata.list_clusters().await?)
    }

    pub async fn get_cluster(&self, name: &str) -> Result<ClusterData> {
        self.ctx.metadata.get_cluster(name).await?.ok_or_else(|| BrokerError::NotFound(Entity::Cluster(name.into())))
    }

    fn check_clusters(&self, info: &TenantInfo) -> Result<()> {
        let known = &self.ctx.config.cluster;
        if let Some(bad) = info.allowed_clusters.iter().find(|c| *c != known) {
            return Err(BrokerError::UnknownCluster { cluster: bad.clone(), known: known.clone() });
        }
        Ok(())
    }

    pub async fn create_tenant(&self, name: &TenantName, info: &TenantInfo) -> Result<()> {
        self.check_clusters(info)?;
        self.ctx.metadata.create_tenant(name, info).await.or_entity(|| Entity::Tenant(name.clone()))?;
        self.ctx.policies.invalidate_tenant(name);
        Ok(())
    }

    pub async fn update_tenant(&self, name: &TenantName, info: &TenantInfo) -> Result<()> {
        self.check_clusters(info)?;
        self.ctx.metadata.update_tenant(name, info).await.or_entity(|| Entity::Tenant(name.clone()))?;
        self.ctx.policies.invalidate_tenant(name);
        Ok(())
    }

    pub async fn get_tenant(&self, name: &TenantName) -> Result<TenantInfo> {
        self.ctx.metadata.get_tenant(name).await?.ok_or_else(|| BrokerError::NotFound(Entity::Tenant(name.clone())))
    }

    pub async fn list_tenants(&self) -> Result<Vec<TenantName>> {
        Ok(self.ctx.metadata.list_tenants().await?)
    }

    pub async fn delete_tenant(&self, name: &TenantName, force: bool) -> Result<()> {
        let removed = self.registry.delete_tenant(name, force).await?;
        self.ctx.policies.invalidate_tenant(name);
        self.offloader.delete_partition_objects(&removed).await;
        Ok(())
    }

    pub async fn create_namespace(&self, name: &NamespaceName, policies: Option<Policies>) -> Result<()> {
        let mut policies = policies.unwrap_or_default();
        if policies.bundles.boundaries.is_empty() {
            // Not given, or only `numBundles`: equal bundles, as Pulsar cuts a new namespace.
            let n = match policies.bundles.num_bundles {
                0 => self.ctx.config.default_namespace_bundles,
                n => n,
            };
            policies.bundles = magnetar_core::bundles::Bundles::equal(n).map_err(BrokerError::InvalidPolicy)?.to_data();
        }
        if policies.replication_clusters.is_empty() {
            policies.replication_clusters = vec![self.ctx.config.cluster.clone()];
        }
        validate_policies(&policies)?;
        match self.ctx.metadata.create_namespace(name, &policies).await {
            Err(magnetar_metadata::MetadataError::NotFound(_)) => {
                return Err(BrokerError::NotFound(Entity::Tenant(name.tenant().clone())));
            }
            other => other.or_entity(|| Entity::Namespace(name.clone()))?,
        }
        self.ctx.policies.invalidate_namespace(name);
        Ok(())
    }

    pub async fn list_namespaces(&self, tenant: &TenantName) -> Result<Vec<NamespaceName>> {
        self.ctx.metadata.list_namespaces(tenant).await.or_entity(|| Entity::Tenant(tenant.clone()))
    }

    /// `clusters` as a namespace or topic stores them: sorted, without duplicates, at least one,
    /// each an existing cluster (`InvalidPolicy` otherwise, as Pulsar answers 412).
    pub async fn check_replication_clusters(&self, clusters: &[String]) -> Result<Vec<String>> {
        if clusters.is_empty() {
            return Err(BrokerError::InvalidPolicy("replication clusters must name at least one cluster".into()));
        }
        let known = self.list_clusters().await?;
        if let Some(bad) = clusters.iter().find(|c| !known.contains(c)) {
            return Err(BrokerError::InvalidPolicy(format!("invalid cluster id: cluster {bad} does not exist")));
        }
        let mut list = clusters.to_vec();
        list.sort();
        list.dedup();
        Ok(list)
    }

    /// The namespaces of `tenant` in anti-affinity group `group`.
    pub async fn anti_affinity_namespaces(&self, tenant: &TenantName, group: &str) -> Result<Vec<NamespaceName>> {
        let mut members = Vec::new();
        for ns in self.list_namespaces(tenant).await? {
            if self.ctx.cached_policies(&ns).await?.namespace_anti_affinity_group.as_deref() == Some(group) {
                members.push(ns);
            }
        }
        Ok(members)
    }

    /// A namespace's policies, read fresh.
    pub async fn get_policies(&self, name: &NamespaceName) -> Result<Policies> {
        self.ctx.fresh_policies(name).await
    }

    pub async fn delete_namespace(&self, name: &NamespaceName, force: bool) -> Result<()> {
        let removed = self.registry.delete_namespace(name, force).await?;
        self.ctx.policies.invalidate_namespace(name);
        self.offloader.delete_partition_objects(&removed).await;
        Ok(())
    }

    /// Read-modify-write of a namespace's policies with optimistic concurrency (retried); the
    /// cache is invalidated once the write has committed.
    pub async fn update_policies<F>(&self, name: &NamespaceName, mut change: F) -> Result<()>
    where
        F: FnMut(&mut Policies) -> Result<()>,
    {
        for _ in 0..10 {
            let rec = self
                .ctx
                .metadata
                .get_namespace(name)
                .await?
                .ok_or_else(|| BrokerError::NotFound(Entity::Namespace(name.clone())))?;
            let mut policies = rec.policies;
            change(&mut policies)?;
            validate_policies(&policies)?;
            match self.ctx.metadata.update_namespace_policies(name, &policies, rec.version).await {
                Ok(_) => {
                    self.ctx.policies.invalidate_namespace(name);
                    // Its loaded topics apply the change now, not at the next refresh.
                    crate::policies::refresh_namespace(&self.ctx, &self.registry, name).await;
                    return Ok(());
                }
                Err(magnetar_metadata::MetadataError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(BrokerError::ModifiedConcurrently(Entity::Namespace(name.clone())))
    }

    /// Pulsar standalone's defaults: tenant `public`, namespace `public/default`, created when
    /// missing.
    pub async fn ensure_defaults(&self) -> Result<()> {
        let public = TenantName::new("public")?;
        if self.ctx.metadata.get_tenant(&public).await?.is_none() {
            let info = TenantInfo { admin_roles: vec![], allowed_clusters: vec![self.ctx.config.cluster.clone()] };
            match self.create_tenant(&public, &info).await {
                Ok(()) | Err(BrokerError::AlreadyExists(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let default = NamespaceName::new(public, "default")?;
        if self.ctx.metadata.get_namespace(&default).await?.is_none() {
            match self.create_namespace(&default, None).await {
                Ok(()) | Err(BrokerError::AlreadyExists(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Pulsar's validation of policy values (412 on violation).
fn validate_policies(p: &Policies) -> Result<()> {
    if let Some(ttl) = p.message_ttl_in_seconds
        && ttl < 0
    {
        return Err(BrokerError::InvalidPolicy(format!("messageTTL {ttl} must be 0 or positive")));
    }
    if let Some(r) = p.retention_policies {
        validate_retention(&r)?;
    }
    magnetar_core::bundles::Bundles::from_data(&p.bundles).map_err(BrokerError::InvalidPolicy)?;
    crate::policies::admin::validate_namespace(p)
}

pub fn validate_retention(r: &RetentionPolicies) -> Result<()> {
    if r.retention_time_in_minutes < -1 || r.retention_size_in_mb < -1 {
        return Err(BrokerError::InvalidPolicy(
            "retention time and size must be -1 (infinite), 0 (none) or positive".into(),
        ));
    }
    // Pulsar refuses a retention that is infinite in one dimension and zero in the other.
    if (r.retention_time_in_minutes == 0 && r.retention_size_in_mb == -1)
        || (r.retention_time_in_minutes == -1 && r.retention_size_in_mb == 0)
    {
        return Err(BrokerError::InvalidPolicy(
            "retention time and size must not be infinite in one dimension and zero in the other".into(),
        ));
    }
    Ok(())
}
