//! `MetadataStore` for `SqlMetadataStore`: each method forwards to the implementation in the
//! file of its resource (catalog, topics, logs, log objects).

use super::SqlMetadataStore;
use crate::{
    BrokerLoad, BrokerRecord, BrokerRegistration, BrokerState, BundleOwnership, BundleState, BundleTransition,
    ClusterData, CompactedViewRecord, CursorCheckpoint, CursorState, DedupSnapshot, FailureDomain, LeaseGrant,
    LogObjectRange, LogObjectRecord, MetadataError, MetadataStore, NamespaceIsolationData, NamespaceRecord, NewTopic,
    PartitionRecord, ReplicaSet, Result, RevokedToken, SchemaVersion, SegmentRecord, ServiceAccount,
    ServiceAccountToken, SubscriptionRecord, TenantInfo, TopicRecord,
};
use async_trait::async_trait;
use magnetar_core::{NamespaceName, Policies, TenantName, TopicName};
use std::collections::BTreeMap;

#[async_trait]
impl MetadataStore for SqlMetadataStore {
    async fn register_broker(
        &self,
        registration: &BrokerRegistration,
        lease_ms: u64,
        replaces: Option<&str>,
    ) -> Result<LeaseGrant> {
        self.register_broker_impl(registration, lease_ms, replaces).await
    }
    async fn renew_broker_lease(
        &self,
        broker_id: &str,
        session_id: &str,
        lease_ms: u64,
        state: BrokerState,
        load: &BrokerLoad,
    ) -> Result<Option<LeaseGrant>> {
        self.renew_broker_lease_impl(broker_id, session_id, lease_ms, state, load).await
    }
    async fn list_brokers(&self, cluster: &str) -> Result<Vec<BrokerRecord>> {
        self.list_brokers_impl(cluster).await
    }
    async fn deregister_broker(&self, broker_id: &str, session_id: &str) -> Result<()> {
        self.deregister_broker_impl(broker_id, session_id).await
    }

    async fn ensure_bundle(&self, namespace: &NamespaceName, bundle: &str) -> Result<BundleOwnership> {
        self.ensure_bundle_impl(namespace, bundle).await
    }
    async fn get_bundle(&self, namespace: &NamespaceName, bundle: &str) -> Result<Option<BundleOwnership>> {
        self.get_bundle_impl(namespace, bundle).await
    }
    async fn list_bundles(&self) -> Result<Vec<BundleOwnership>> {
        self.list_bundles_impl().await
    }
    async fn transition_bundle(
        &self,
        namespace: &NamespaceName,
        bundle: &str,
        expected_epoch: i64,
        expected_state: BundleState,
        to: &BundleTransition,
        partitions: &[i64],
    ) -> Result<BundleOwnership> {
        self.transition_bundle_impl(namespace, bundle, expected_epoch, expected_state, to, partitions).await
    }
    async fn retire_bundle(&self, namespace: &NamespaceName, bundle: &str, expected_epoch: i64) -> Result<()> {
        self.retire_bundle_impl(namespace, bundle, expected_epoch).await
    }

    async fn upsert_cluster(&self, cluster: &ClusterData) -> Result<()> {
        self.upsert_cluster_impl(cluster).await
    }
    async fn get_cluster(&self, name: &str) -> Result<Option<ClusterData>> {
        self.get_cluster_impl(name).await
    }
    async fn list_clusters(&self) -> Result<Vec<String>> {
        self.list_clusters_impl().await
    }
    async fn create_cluster(&self, cluster: &ClusterData) -> Result<()> {
        self.create_cluster_impl(cluster).await
    }
    async fn update_cluster(&self, cluster: &ClusterData) -> Result<()> {
        self.update_cluster_impl(cluster).await
    }
    async fn delete_cluster(&self, name: &str) -> Result<()> {
        self.delete_cluster_impl(name).await
    }
    async fn set_failure_domain(&self, cluster: &str, name: &str, domain: &FailureDomain) -> Result<()> {
        self.set_failure_domain_impl(cluster, name, domain).await
    }
    async fn list_failure_domains(&self, cluster: &str) -> Result<BTreeMap<String, FailureDomain>> {
        self.list_failure_domains_impl(cluster).await
    }
    async fn delete_failure_domain(&self, cluster: &str, name: &str) -> Result<()> {
        self.delete_failure_domain_impl(cluster, name).await
    }
    async fn set_isolation_policy(&self, cluster: &str, name: &str, policy: &NamespaceIsolationData) -> Result<()> {
        self.set_isolation_policy_impl(cluster, name, policy).await
    }
    async fn list_isolation_policies(&self, cluster: &str) -> Result<BTreeMap<String, NamespaceIsolationData>> {
        self.list_isolation_policies_impl(cluster).await
    }
    async fn delete_isolation_policy(&self, cluster: &str, name: &str) -> Result<()> {
        self.delete_isolation_policy_impl(cluster, name).await
    }

    async fn create_tenant(&self, name: &TenantName, info: &TenantInfo) -> Result<()> {
        self.create_tenant_impl(name, info).await
    }
    async fn update_tenant(&self, name: &TenantName, info: &TenantInfo) -> Result<()> {
        self.update_tenant_impl(name, info).await
    }
    async fn get_tenant(&self, name: &TenantName) -> Result<Option<TenantInfo>> {
        self.get_tenant_impl(name).await
    }
    async fn list_tenants(&self) -> Result<Vec<TenantName>> {
        self.list_tenants_impl().await
    }
    async fn delete_tenant(&self, name: &TenantName, force: bool) -> Result<Vec<PartitionRecord>> {
        self.delete_tenant_impl(name, force).await
    }

    async fn create_namespace(&self, name: &NamespaceName, policies: &Policies) -> Result<()> {
        self.create_namespace_impl(name, policies).await
    }
    async fn get_namespace(&self, name: &NamespaceName) -> Result<Option<NamespaceRecord>> {
        self.get_namespace_impl(name).await
    }
    async fn list_namespaces(&self, tenant: &TenantName) -> Result<Vec<NamespaceName>> {
        self.list_namespaces_impl(tenant).await
    }
    async fn update_namespace_policies(
        &self,
        name: &NamespaceName,
        policies: &Policies,
        expected_version: i64,
    ) -> Result<i64> {
        self.update_namespace_policies_impl(name, policies, expected_version).await
    }
    async fn delete_namespace(&self, name: &NamespaceName, force: bool) -> Result<Vec<PartitionRecord>> {
        self.delete_namespace_impl(name, force).await
    }

    async fn create_topic(&self, spec: &NewTopic) -> Result<TopicRecord> {
        self.create_topic_impl(spec).await
    }
    async fn get_topic(&self, name: &TopicName) -> Result<Option<TopicRecord>> {
        self.get_topic_impl(name).await
    }
    async fn list_topics(&self, namespace: &NamespaceName) -> Result<Vec<TopicRecord>> {
        self.list_topics_impl(namespace).await
    }
    async fn update_partitions(&self, name: &TopicName, partitions: u32) -> Result<TopicRecord> {
        self.update_partitions_impl(name, partitions).await
    }
    async fn delete_topic(&self, name: &TopicName) -> Result<TopicRecord> {
        self.delete_topic_impl(name).await
    }
    async fn set_topic_policies(&self, name: &TopicName, policies: &serde_json::Value) -> Result<()> {
        self.set_topic_policies_impl(name, policies).await
    }
    async fn set_topic_properties(&self, name: &TopicName, properties: &BTreeMap<String, String>) -> Result<()> {
        self.set_topic_properties_impl(name, properties).await
    }
    async fn terminate_partition(&self, log_id: i64, end: i64) -> Result<i64> {
        self.terminate_partition_impl(log_id, end).await
    }
    async fn add_schema_version(&self, topic: &TopicName, schema: Option<&serde_json::Value>) -> Result<i64> {
        self.add_schema_version_impl(topic, schema).await
    }
    async fn list_schema_versions(&self, topic: &TopicName) -> Result<Vec<SchemaVersion>> {
        self.list_schema_versions_impl(topic).await
    }

    async fn acquire_partition(&self, log_id: i64, broker: &str) -> Result<i64> {
        self.acquire_partition_impl(log_id, broker).await
    }
    async fn get_partition_owner(&self, log_id: i64) -> Result<Option<(String, i64)>> {
        self.get_partition_owner_impl(log_id).await
    }

    async fn create_subscription(&self, name: &str, cursors: &[(i64, CursorState)]) -> Result<()> {
        self.create_subscription_impl(name, cursors).await
    }
    async fn list_subscriptions(&self, log_id: i64) -> Result<Vec<SubscriptionRecord>> {
        self.list_subscriptions_impl(log_id).await
    }
    async fn delete_subscription(&self, name: &str, log_ids: &[i64]) -> Result<()> {
        self.delete_subscription_impl(name, log_ids).await
    }
    async fn set_subscription_properties(
        &self,
        name: &str,
        log_ids: &[i64],
        properties: &BTreeMap<String, String>,
    ) -> Result<()> {
        self.set_subscription_properties_impl(name, log_ids, properties).await
    }
    async fn checkpoint_cursors(&self, log_id: i64, epoch: i64, cursors: &[(String, CursorState)]) -> Result<()> {
        self.checkpoint_cursors_impl(log_id, epoch, cursors).await
    }
    async fn checkpoint_cursors_many(&self, batch: &[CursorCheckpoint]) -> Result<Vec<(i64, MetadataError)>> {
        self.checkpoint_cursors_many_impl(batch).await
    }

    async fn save_dedup_snapshot(&self, log_id: i64, epoch: i64, snapshot: &DedupSnapshot) -> Result<()> {
        self.save_dedup_snapshot_impl(log_id, epoch, snapshot).await
    }
    async fn get_dedup_snapshot(&self, log_id: i64) -> Result<Option<DedupSnapshot>> {
        self.get_dedup_snapshot_impl(log_id).await
    }
    async fn delete_dedup_snapshot(&self, log_id: i64, epoch: i64) -> Result<()> {
        self.delete_dedup_snapshot_impl(log_id, epoch).await
    }

    async fn commit_segment(&self, epoch: i64, segment: &SegmentRecord) -> Result<()> {
        self.commit_segment_impl(epoch, segment).await
    }
    async fn list_segments(&self, log_id: i64) -> Result<Vec<SegmentRecord>> {
        self.list_segments_impl(log_id).await
    }
    async fn delete_segments(&self, log_id: i64, epoch: i64, base_offsets: &[i64]) -> Result<()> {
        self.delete_segments_impl(log_id, epoch, base_offsets).await
    }

    async fn commit_log_objects(
        &self,
        committed_at: i64,
        objects: &[(String, Vec<LogObjectRange>)],
    ) -> Result<Vec<Vec<(i64, MetadataError)>>> {
        self.commit_log_objects_impl(committed_at, objects).await
    }
    async fn list_log_objects(&self, log_id: i64, from_offset: i64) -> Result<Vec<LogObjectRecord>> {
        self.list_log_objects_impl(log_id, from_offset).await
    }
    async fn trim_log_objects(&self, log_id: i64, epoch: i64, below: i64) -> Result<Vec<String>> {
        self.trim_log_objects_impl(log_id, epoch, below).await
    }
    async fn referenced_log_objects(&self, keys: &[String]) -> Result<Vec<String>> {
        self.referenced_log_objects_impl(keys).await
    }
    async fn mark_local_durability(&self, log_id: i64, epoch: i64) -> Result<()> {
        self.mark_local_durability_impl(log_id, epoch).await
    }
    async fn may_fail_over(&self, log_id: i64) -> Result<bool> {
        self.may_fail_over_impl(log_id).await
    }
    async fn set_partition_replicas(&self, log_id: i64, epoch: i64, replicas: Option<&ReplicaSet>) -> Result<()> {
        self.set_partition_replicas_impl(log_id, epoch, replicas).await
    }
    async fn partition_replicas(&self, log_id: i64) -> Result<Option<(i64, ReplicaSet)>> {
        self.partition_replicas_impl(log_id).await
    }

    async fn commit_compacted_view(
        &self,
        epoch: i64,
        view: &CompactedViewRecord,
        previous_horizon: Option<i64>,
    ) -> Result<Option<CompactedViewRecord>> {
        self.commit_compacted_view_impl(epoch, view, previous_horizon).await
    }
    async fn get_compacted_view(&self, log_id: i64) -> Result<Option<CompactedViewRecord>> {
        self.get_compacted_view_impl(log_id).await
    }

    async fn create_service_account(&self, account: &ServiceAccount) -> Result<()> {
        self.create_service_account_impl(account).await
    }
    async fn get_service_account(&self, tenant: &TenantName, name: &str) -> Result<Option<ServiceAccount>> {
        self.get_service_account_impl(tenant, name).await
    }
    async fn list_service_accounts(&self, tenant: &TenantName) -> Result<Vec<ServiceAccount>> {
        self.list_service_accounts_impl(tenant).await
    }
    async fn delete_service_account(&self, tenant: &TenantName, name: &str) -> Result<()> {
        self.delete_service_account_impl(tenant, name).await
    }
    async fn create_service_account_token(&self, token: &ServiceAccountToken) -> Result<()> {
        self.create_service_account_token_impl(token).await
    }
    async fn list_service_account_tokens(
        &self,
        tenant: &TenantName,
        account: &str,
    ) -> Result<Vec<ServiceAccountToken>> {
        self.list_service_account_tokens_impl(tenant, account).await
    }
    async fn revoke_service_account_token(&self, tenant: &TenantName, account: &str, id: &str) -> Result<()> {
        self.revoke_service_account_token_impl(tenant, account, id).await
    }
    async fn list_revoked_tokens(&self, after_seq: i64, limit: u32) -> Result<Vec<RevokedToken>> {
        self.list_revoked_tokens_impl(after_seq, limit).await
    }
    async fn prune_revoked_tokens(&self, expired_before: i64) -> Result<u64> {
        self.prune_revoked_tokens_impl(expired_before).await
    }
}
