//! The conformance suite every `MetadataStore` implementation must pass, one public async
//! function per behaviour. Each function expects a fresh, empty store and panics on a violated
//! contract. `conformance_tests!` turns the whole list into `#[tokio::test]`s for a backend:
//!
//! ```text
//! async fn with_store<F, Fut>(test: F) where F: FnOnce(Arc<dyn MetadataStore>) -> Fut, Fut: Future<Output = ()> { ... }
//! magnetar_metadata::conformance_tests!(with_store);
//! ```

mod accounts;
mod brokers;
mod bundles;
mod catalog;
mod clusters;
mod log_objects;
mod logs;
mod topic_ops;
mod topics;

pub use accounts::*;
pub use brokers::*;
pub use bundles::*;
pub use catalog::*;
pub use clusters::*;
pub use log_objects::*;
pub use logs::*;
pub use topic_ops::*;
pub use topics::*;

use crate::{MetadataError, MetadataStore, NewTopic, TenantInfo, TopicRecord};
use magnetar_core::{NamespaceName, Policies, TenantName, TopicName};
use std::collections::BTreeMap;

/// Expands to one `#[tokio::test]` per conformance function, each calling
/// `$runner(conformance::function)`; the runner provides a fresh store and cleans up after.
#[macro_export]
macro_rules! conformance_tests {
    ($runner:path) => {
        $crate::conformance_tests!(@each $runner;
            cluster_upsert_replaces_and_lists_sorted,
            tenant_create_get_update_list,
            create_existing_tenant_fails_already_exists,
            update_or_delete_missing_tenant_fails_not_found,
            delete_tenant_with_namespaces_requires_force,
            force_delete_tenant_removes_everything_and_returns_partitions,
            namespace_create_get_list,
            create_namespace_errors_name_the_resource,
            namespace_policies_update_is_optimistic,
            delete_namespace_requires_force_when_topics_exist,
            force_delete_namespace_leaves_other_namespaces,
            create_non_partitioned_topic_has_partition_minus_one,
            create_partitioned_topic_creates_sorted_partitions,
            create_topic_errors_name_the_resource,
            list_topics_returns_only_the_namespace_topics,
            update_partitions_grows_partitioned_topics_only,
            update_partitions_gives_new_partitions_every_subscription,
            delete_topic_removes_partitions_subscriptions_and_segments,
            log_ids_are_never_reused_after_delete,
            topic_policies_round_trip,
            acquire_partition_bumps_epoch_and_sets_owner,
            concurrent_acquisitions_get_distinct_epochs,
            subscription_create_list_delete,
            create_subscription_over_partitions_is_all_or_none,
            checkpoint_cursors_persists_and_is_fenced,
            a_checkpoint_round_commits_many_partitions_and_skips_the_fenced_ones,
            segment_commit_list_delete,
            dedup_snapshots_are_replaced_fenced_and_go_with_their_topic,
            segment_writes_are_fenced,
            log_object_ranges_commit_and_list_in_offset_order,
            a_log_object_commit_leaves_out_fenced_and_unknown_partitions,
            a_log_object_commit_retry_is_accepted_and_another_key_conflicts,
            trimming_log_objects_is_fenced_and_frees_an_object_once_unreferenced,
            concurrent_trims_free_a_shared_object_exactly_once,
            deleting_a_topic_removes_its_log_object_ranges,
            an_object_is_referenced_until_its_last_range_goes,
            several_log_objects_commit_in_one_call_each_with_its_refusals,
            a_partition_marked_local_under_its_epoch_may_not_fail_over,
            a_new_epoch_lifts_the_local_mark,
            a_stale_owner_cannot_mark_local_durability,
            local_durability_of_an_unknown_partition_is_not_found,
            a_replica_set_is_recorded_under_its_owners_epoch,
            service_account_create_get_list_delete,
            service_account_tokens_list_and_revoke,
            deleting_account_or_tenant_revokes_its_tokens,
            revocations_of_expired_tokens_are_pruned,
            cluster_create_update_delete,
            failure_domains_round_trip_and_keep_brokers_in_one_domain,
            isolation_policies_round_trip_and_go_with_their_cluster,
            terminating_a_partition_keeps_its_first_end,
            topic_and_subscription_properties_round_trip,
            schema_versions_count_on_after_a_deletion,
            brokers_register_renew_and_list,
            a_live_broker_id_cannot_be_taken_by_another_session,
            an_expired_lease_is_not_renewed_and_may_be_taken_over,
            deregistering_removes_only_the_own_session,
            binary_listener_urls_are_registered_and_replaced_by_a_restart,
            compacted_view_commits_replace_atomically_and_are_fenced,
            deleting_a_topic_removes_its_compacted_views,
            bundle_ownership_moves_by_compare_and_set_on_its_epoch,
            a_bundle_changing_owner_fences_its_partitions,
            bundle_rows_go_with_their_namespace,
        );
    };
    (@each $runner:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $runner($crate::conformance::$name).await;
            }
        )*
    };
}

/// Asserts that `$result` is `Err(MetadataError::$variant ..)` and returns the error.
macro_rules! assert_err {
    ($result:expr, $variant:ident) => {
        match $result {
            Err(e @ $crate::MetadataError::$variant { .. }) => e,
            other => panic!("expected {}, got {other:?}", stringify!($variant)),
        }
    };
}
pub(crate) use assert_err;

pub(crate) fn tenant(name: &str) -> TenantName {
    TenantName::new(name).expect("valid tenant name")
}

pub(crate) fn namespace(name: &str) -> NamespaceName {
    name.parse().expect("valid namespace name")
}

pub(crate) fn topic(name: &str) -> TopicName {
    name.parse().expect("valid topic name")
}

pub(crate) fn info(roles: &[&str]) -> TenantInfo {
    TenantInfo {
        admin_roles: roles.iter().map(|r| r.to_string()).collect(),
        allowed_clusters: vec!["standalone".into()],
    }
}

/// Creates the tenant (if needed) and the namespace `tenant/ns`.
pub async fn given_namespace(store: &dyn MetadataStore, name: &str) -> NamespaceName {
    let ns = namespace(name);
    match store.create_tenant(ns.tenant(), &info(&["admin"])).await {
        Ok(()) | Err(MetadataError::AlreadyExists(_)) => {}
        Err(e) => panic!("creating tenant {}: {e}", ns.tenant()),
    }
    store.create_namespace(&ns, &Policies::default()).await.expect("create namespace");
    ns
}

pub async fn given_topic(store: &dyn MetadataStore, name: &str, partitions: u32) -> TopicRecord {
    let spec = NewTopic { name: topic(name), partitions, properties: BTreeMap::new() };
    store.create_topic(&spec).await.expect("create topic")
}

/// The error message must name the offending resource.
pub(crate) fn assert_names(err: &MetadataError, resource: &str) {
    let message = err.to_string();
    assert!(message.contains(resource), "error {message:?} should name {resource:?}");
}
