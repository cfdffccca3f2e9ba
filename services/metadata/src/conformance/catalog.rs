//! Conformance: clusters, tenants, namespaces.

use super::{assert_err, assert_names, given_namespace, given_topic, info, namespace, tenant};
use crate::{ClusterData, CursorState, MetadataStore, SegmentRecord};
use magnetar_core::Policies;
use std::sync::Arc;

pub async fn cluster_upsert_replaces_and_lists_sorted(store: Arc<dyn MetadataStore>) {
    assert_eq!(store.get_cluster("standalone").await.unwrap(), None);
    let mut cluster = ClusterData {
        name: "standalone".into(),
        service_url: "http://localhost:8080".into(),
        service_url_tls: None,
        broker_service_url: "pulsar://localhost:6650".into(),
        broker_service_url_tls: Some("pulsar+ssl://localhost:6651".into()),
        peer_cluster_names: vec!["east".into(), "west".into()],
    };
    store.upsert_cluster(&cluster).await.unwrap();
    assert_eq!(store.get_cluster("standalone").await.unwrap(), Some(cluster.clone()));

    cluster.service_url = "http://broker:8080".into();
    cluster.broker_service_url_tls = None;
    store.upsert_cluster(&cluster).await.unwrap();
    assert_eq!(store.get_cluster("standalone").await.unwrap(), Some(cluster.clone()));

    store.upsert_cluster(&ClusterData { name: "alpha".into(), ..ClusterData::default() }).await.unwrap();
    assert_eq!(store.list_clusters().await.unwrap(), vec!["alpha".to_string(), "standalone".to_string()]);
}

pub async fn tenant_create_get_update_list(store: Arc<dyn MetadataStore>) {
    assert_eq!(store.list_tenants().await.unwrap(), vec![]);
    assert_eq!(store.get_tenant(&tenant("acme")).await.unwrap(), None);
    store.create_tenant(&tenant("acme"), &info(&["alice"])).await.unwrap();
    store.create_tenant(&tenant("beta"), &info(&[])).await.unwrap();
    assert_eq!(store.get_tenant(&tenant("acme")).await.unwrap(), Some(info(&["alice"])));

    store.update_tenant(&tenant("acme"), &info(&["alice", "bob"])).await.unwrap();
    assert_eq!(store.get_tenant(&tenant("acme")).await.unwrap(), Some(info(&["alice", "bob"])));
    assert_eq!(store.list_tenants().await.unwrap(), vec![tenant("acme"), tenant("beta")]);

    assert!(store.delete_tenant(&tenant("beta"), false).await.unwrap().is_empty());
    assert_eq!(store.list_tenants().await.unwrap(), vec![tenant("acme")]);
}

pub async fn create_existing_tenant_fails_already_exists(store: Arc<dyn MetadataStore>) {
    store.create_tenant(&tenant("acme"), &info(&["alice"])).await.unwrap();
    let err = assert_err!(store.create_tenant(&tenant("acme"), &info(&["mallory"])).await, AlreadyExists);
    assert_names(&err, "tenant acme");
    // The failed create changed nothing.
    assert_eq!(store.get_tenant(&tenant("acme")).await.unwrap(), Some(info(&["alice"])));
}

pub async fn update_or_delete_missing_tenant_fails_not_found(store: Arc<dyn MetadataStore>) {
    let err = assert_err!(store.update_tenant(&tenant("ghost"), &info(&[])).await, NotFound);
    assert_names(&err, "tenant ghost");
    let err = assert_err!(store.delete_tenant(&tenant("ghost"), false).await, NotFound);
    assert_names(&err, "tenant ghost");
    assert_err!(store.delete_tenant(&tenant("ghost"), true).await, NotFound);
    let err = assert_err!(store.list_namespaces(&tenant("ghost")).await, NotFound);
    assert_names(&err, "tenant ghost");
}

pub async fn delete_tenant_with_namespaces_requires_force(store: Arc<dyn MetadataStore>) {
    given_namespace(store.as_ref(), "acme/orders").await;
    let err = assert_err!(store.delete_tenant(&tenant("acme"), false).await, NotEmpty);
    assert_names(&err, "tenant acme");
    assert!(store.get_tenant(&tenant("acme")).await.unwrap().is_some());
    assert!(store.get_namespace(&namespace("acme/orders")).await.unwrap().is_some());
}

pub async fn force_delete_tenant_removes_everything_and_returns_partitions(store: Arc<dyn MetadataStore>) {
    given_namespace(store.as_ref(), "acme/orders").await;
    given_namespace(store.as_ref(), "acme/billing").await;
    given_namespace(store.as_ref(), "other/keep").await;
    let a = given_topic(store.as_ref(), "persistent://acme/orders/a", 2).await;
    let b = given_topic(store.as_ref(), "persistent://acme/billing/b", 0).await;
    let kept = given_topic(store.as_ref(), "persistent://other/keep/c", 0).await;
    let log_id = a.partition_records[0].log_id;
    store.create_subscription("sub", &[(log_id, CursorState::default())]).await.unwrap();
    let epoch = store.acquire_partition(log_id, "broker-1").await.unwrap();
    store.commit_segment(epoch, &segment(log_id, 0, 10)).await.unwrap();

    let mut removed = store.delete_tenant(&tenant("acme"), true).await.unwrap();
    removed.sort_by_key(|p| p.log_id);
    let mut expected: Vec<_> = a.partition_records.iter().chain(&b.partition_records).copied().collect();
    expected.sort_by_key(|p| p.log_id);
    assert_eq!(removed, expected);

    assert_eq!(store.get_tenant(&tenant("acme")).await.unwrap(), None);
    assert_eq!(store.get_namespace(&namespace("acme/orders")).await.unwrap(), None);
    assert_eq!(store.get_topic(&a.name).await.unwrap(), None);
    assert_err!(store.list_subscriptions(log_id).await, NotFound);
    assert_err!(store.list_segments(log_id).await, NotFound);
    assert_eq!(store.get_topic(&kept.name).await.unwrap(), Some(kept));
    assert_eq!(store.list_tenants().await.unwrap(), vec![tenant("other")]);
}

pub async fn namespace_create_get_list(store: Arc<dyn MetadataStore>) {
    store.create_tenant(&tenant("acme"), &info(&[])).await.unwrap();
    assert_eq!(store.list_namespaces(&tenant("acme")).await.unwrap(), vec![]);
    let mut policies = Policies { message_ttl_in_seconds: Some(60), ..Policies::default() };
    policies.other.insert("schemaCompatibilityStrategy".into(), serde_json::json!("FULL"));
    store.create_namespace(&namespace("acme/orders"), &policies).await.unwrap();
    store.create_namespace(&namespace("acme/billing"), &Policies::default()).await.unwrap();

    let record = store.get_namespace(&namespace("acme/orders")).await.unwrap().expect("namespace exists");
    assert_eq!(record.policies, policies);
    assert_eq!(store.get_namespace(&namespace("acme/none")).await.unwrap(), None);
    assert_eq!(
        store.list_namespaces(&tenant("acme")).await.unwrap(),
        vec![namespace("acme/billing"), namespace("acme/orders")]
    );
}

pub async fn create_namespace_errors_name_the_resource(store: Arc<dyn MetadataStore>) {
    let err = assert_err!(store.create_namespace(&namespace("ghost/ns"), &Policies::default()).await, NotFound);
    assert_names(&err, "tenant ghost");
    given_namespace(store.as_ref(), "acme/orders").await;
    let err = assert_err!(store.create_namespace(&namespace("acme/orders"), &Policies::default()).await, AlreadyExists);
    assert_names(&err, "namespace acme/orders");
}

pub async fn namespace_policies_update_is_optimistic(store: Arc<dyn MetadataStore>) {
    let ns = given_namespace(store.as_ref(), "acme/orders").await;
    let v0 = store.get_namespace(&ns).await.unwrap().unwrap().version;
    let policies = Policies { max_producers_per_topic: Some(3), ..Policies::default() };
    let v1 = store.update_namespace_policies(&ns, &policies, v0).await.unwrap();
    assert!(v1 > v0, "version must increase");
    let record = store.get_namespace(&ns).await.unwrap().unwrap();
    assert_eq!((record.policies.clone(), record.version), (policies.clone(), v1));

    // A writer holding the old version loses and changes nothing.
    let stale = Policies { max_producers_per_topic: Some(99), ..Policies::default() };
    let err = assert_err!(store.update_namespace_policies(&ns, &stale, v0).await, Conflict);
    assert_names(&err, "namespace acme/orders");
    assert_eq!(store.get_namespace(&ns).await.unwrap().unwrap().policies, policies);

    let err = assert_err!(store.update_namespace_policies(&namespace("acme/none"), &stale, v1).await, NotFound);
    assert_names(&err, "namespace acme/none");
}

pub async fn delete_namespace_requires_force_when_topics_exist(store: Arc<dyn MetadataStore>) {
    let ns = given_namespace(store.as_ref(), "acme/orders").await;
    let t = given_topic(store.as_ref(), "persistent://acme/orders/t", 3).await;
    let err = assert_err!(store.delete_namespace(&ns, false).await, NotEmpty);
    assert_names(&err, "namespace acme/orders");
    assert_eq!(store.get_topic(&t.name).await.unwrap(), Some(t.clone()));

    let removed = store.delete_namespace(&ns, true).await.unwrap();
    assert_eq!(removed, t.partition_records);
    assert_eq!(store.get_namespace(&ns).await.unwrap(), None);
    assert_eq!(store.get_topic(&t.name).await.unwrap(), None);
    let err = assert_err!(store.delete_namespace(&ns, false).await, NotFound);
    assert_names(&err, "namespace acme/orders");

    // An empty namespace needs no force.
    let empty = given_namespace(store.as_ref(), "acme/empty").await;
    assert_eq!(store.delete_namespace(&empty, false).await.unwrap(), vec![]);
}

pub async fn force_delete_namespace_leaves_other_namespaces(store: Arc<dyn MetadataStore>) {
    let gone = given_namespace(store.as_ref(), "acme/gone").await;
    given_namespace(store.as_ref(), "acme/kept").await;
    given_topic(store.as_ref(), "persistent://acme/gone/t", 0).await;
    let kept = given_topic(store.as_ref(), "persistent://acme/kept/t", 2).await;
    store.delete_namespace(&gone, true).await.unwrap();
    assert_eq!(store.list_namespaces(&tenant("acme")).await.unwrap(), vec![namespace("acme/kept")]);
    assert_eq!(store.list_topics(&namespace("acme/kept")).await.unwrap(), vec![kept]);
}

pub(crate) fn segment(log_id: i64, base_offset: i64, end_offset: i64) -> SegmentRecord {
    SegmentRecord {
        log_id,
        base_offset,
        end_offset,
        size_bytes: (end_offset - base_offset) * 100,
        min_publish_time: 1_700_000_000_000 + base_offset,
        max_publish_time: 1_700_000_000_000 + end_offset,
        object_key: format!("logs/{log_id}/{base_offset:020}.seg"),
        created_at: 1_700_000_000_000,
    }
}
