//! Conformance: topics and their partition rows.

use super::catalog::segment;
use super::{assert_err, assert_names, given_namespace, given_topic, namespace, topic};
use crate::{CursorState, MetadataStore, NewTopic, PartitionRecord};
use magnetar_core::now_millis;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

pub async fn create_non_partitioned_topic_has_partition_minus_one(store: Arc<dyn MetadataStore>) {
    given_namespace(store.as_ref(), "acme/orders").await;
    let before = now_millis();
    let properties = BTreeMap::from([("owner".to_string(), "team-a".to_string())]);
    let spec =
        NewTopic { name: topic("persistent://acme/orders/events"), partitions: 0, properties: properties.clone() };
    let created = store.create_topic(&spec).await.unwrap();
    assert_eq!(created.name, spec.name);
    assert_eq!(created.partitions, 0);
    assert_eq!(created.properties, properties);
    assert_eq!(created.policies, None);
    assert_eq!(created.partition_records.len(), 1);
    assert_eq!(created.partition_records[0].index, -1);
    assert!(created.created_at >= before && created.created_at <= now_millis() + 1, "created_at is epoch ms");
    assert_eq!(store.get_topic(&spec.name).await.unwrap(), Some(created));
    assert_eq!(store.get_topic(&topic("persistent://acme/orders/none")).await.unwrap(), None);
}

pub async fn create_partitioned_topic_creates_sorted_partitions(store: Arc<dyn MetadataStore>) {
    given_namespace(store.as_ref(), "acme/orders").await;
    let created = given_topic(store.as_ref(), "persistent://acme/orders/events", 4).await;
    assert_eq!(created.partitions, 4);
    let indices: Vec<i32> = created.partition_records.iter().map(|p| p.index).collect();
    assert_eq!(indices, vec![0, 1, 2, 3]);
    let log_ids: HashSet<i64> = created.partition_records.iter().map(|p| p.log_id).collect();
    assert_eq!(log_ids.len(), 4, "every partition has its own log id");
    assert_eq!(store.get_topic(&created.name).await.unwrap(), Some(created));
}

pub async fn create_topic_errors_name_the_resource(store: Arc<dyn MetadataStore>) {
    let err = assert_err!(
        store
            .create_topic(&NewTopic {
                name: topic("persistent://acme/none/t"),
                partitions: 2,
                properties: BTreeMap::new()
            })
            .await,
        NotFound
    );
    assert_names(&err, "namespace acme/none");

    given_namespace(store.as_ref(), "acme/orders").await;
    let first = given_topic(store.as_ref(), "persistent://acme/orders/t", 2).await;
    let spec = NewTopic { name: first.name.clone(), partitions: 5, properties: BTreeMap::new() };
    let err = assert_err!(store.create_topic(&spec).await, AlreadyExists);
    assert_names(&err, "topic persistent://acme/orders/t");
    // The failed create left the existing topic untouched.
    assert_eq!(store.get_topic(&first.name).await.unwrap(), Some(first));

    // The domain is part of the identity.
    let other = given_topic(store.as_ref(), "non-persistent://acme/orders/t", 0).await;
    assert_eq!(other.partitions, 0);
}

pub async fn list_topics_returns_only_the_namespace_topics(store: Arc<dyn MetadataStore>) {
    let ns = given_namespace(store.as_ref(), "acme/orders").await;
    given_namespace(store.as_ref(), "acme/other").await;
    assert_eq!(store.list_topics(&ns).await.unwrap(), vec![]);
    let b = given_topic(store.as_ref(), "persistent://acme/orders/b", 3).await;
    let a = given_topic(store.as_ref(), "persistent://acme/orders/a", 0).await;
    let np = given_topic(store.as_ref(), "non-persistent://acme/orders/a", 2).await;
    given_topic(store.as_ref(), "persistent://acme/other/a", 0).await;

    let mut listed = store.list_topics(&ns).await.unwrap();
    listed.sort_by(|x, y| x.name.cmp(&y.name));
    let mut expected = vec![a, b, np];
    expected.sort_by(|x, y| x.name.cmp(&y.name));
    assert_eq!(listed, expected);

    let err = assert_err!(store.list_topics(&namespace("acme/none")).await, NotFound);
    assert_names(&err, "namespace acme/none");
}

pub async fn update_partitions_grows_partitioned_topics_only(store: Arc<dyn MetadataStore>) {
    given_namespace(store.as_ref(), "acme/orders").await;
    let t = given_topic(store.as_ref(), "persistent://acme/orders/t", 2).await;
    let grown = store.update_partitions(&t.name, 5).await.unwrap();
    assert_eq!(grown.partitions, 5);
    assert_eq!(grown.partition_records.iter().map(|p| p.index).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
    // Existing partitions keep their log ids.
    assert_eq!(&grown.partition_records[..2], &t.partition_records[..]);
    assert_eq!(store.get_topic(&t.name).await.unwrap(), Some(grown.clone()));

    let err = assert_err!(store.update_partitions(&t.name, 5).await, Conflict);
    assert_names(&err, "topic persistent://acme/orders/t");
    assert_err!(store.update_partitions(&t.name, 3).await, Conflict);
    assert_eq!(store.get_topic(&t.name).await.unwrap(), Some(grown));

    let plain = given_topic(store.as_ref(), "persistent://acme/orders/plain", 0).await;
    let err = assert_err!(store.update_partitions(&plain.name, 3).await, Conflict);
    assert_names(&err, "topic persistent://acme/orders/plain");
    assert_eq!(store.get_topic(&plain.name).await.unwrap(), Some(plain));

    let err = assert_err!(store.update_partitions(&topic("persistent://acme/orders/none"), 3).await, NotFound);
    assert_names(&err, "topic persistent://acme/orders/none");
}

/// Growing a topic and giving the new partitions their subscriptions is one step: no state in
/// which some partitions lack a subscription the others have.
pub async fn update_partitions_gives_new_partitions_every_subscription(store: Arc<dyn MetadataStore>) {
    given_namespace(store.as_ref(), "acme/orders").await;
    let t = given_topic(store.as_ref(), "persistent://acme/orders/t", 2).await;
    let cursors: Vec<(i64, CursorState)> =
        t.partition_records.iter().map(|p| (p.log_id, CursorState { mark_delete: 7, acked_ranges: vec![] })).collect();
    store.create_subscription("billing", &cursors).await.unwrap();
    store.create_subscription("audit", &cursors[..1]).await.unwrap();
    let grown = store.update_partitions(&t.name, 4).await.unwrap();
    for p in &grown.partition_records[2..] {
        let subs = store.list_subscriptions(p.log_id).await.unwrap();
        let names: Vec<&str> = subs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, vec!["audit", "billing"], "partition {}", p.index);
        assert!(subs.iter().all(|s| s.cursor == CursorState::default()), "new partitions start at offset 0");
    }
    // The existing partitions' cursors are untouched.
    let first = store.list_subscriptions(grown.partition_records[0].log_id).await.unwrap();
    assert!(first.iter().all(|s| s.cursor.mark_delete == 7));
}

pub async fn delete_topic_removes_partitions_subscriptions_and_segments(store: Arc<dyn MetadataStore>) {
    given_namespace(store.as_ref(), "acme/orders").await;
    let t = given_topic(store.as_ref(), "persistent://acme/orders/t", 2).await;
    let kept = given_topic(store.as_ref(), "persistent://acme/orders/kept", 0).await;
    let cursors: Vec<(i64, CursorState)> =
        t.partition_records.iter().chain(&kept.partition_records).map(|p| (p.log_id, CursorState::default())).collect();
    store.create_subscription("sub", &cursors).await.unwrap();
    for p in t.partition_records.iter().chain(&kept.partition_records) {
        let epoch = store.acquire_partition(p.log_id, "broker-1").await.unwrap();
        store.commit_segment(epoch, &segment(p.log_id, 0, 10)).await.unwrap();
    }

    let deleted = store.delete_topic(&t.name).await.unwrap();
    assert_eq!(deleted, t);
    assert_eq!(store.get_topic(&t.name).await.unwrap(), None);
    for p in &t.partition_records {
        assert_err!(store.list_subscriptions(p.log_id).await, NotFound);
        assert_err!(store.list_segments(p.log_id).await, NotFound);
        assert_err!(store.get_partition_owner(p.log_id).await, NotFound);
    }
    let kept_log = kept.partition_records[0].log_id;
    assert_eq!(store.list_subscriptions(kept_log).await.unwrap().len(), 1);
    assert_eq!(store.list_segments(kept_log).await.unwrap().len(), 1);

    let err = assert_err!(store.delete_topic(&t.name).await, NotFound);
    assert_names(&err, "topic persistent://acme/orders/t");
}

pub async fn log_ids_are_never_reused_after_delete(store: Arc<dyn MetadataStore>) {
    given_namespace(store.as_ref(), "acme/orders").await;
    let mut seen: HashSet<i64> = HashSet::new();
    let mut record_ids = |records: &[PartitionRecord]| {
        for p in records {
            assert!(seen.insert(p.log_id), "log id {} was handed out twice", p.log_id);
        }
    };
    // Deleting the newest rows is what would let a plain max(id)+1 sequence reuse ids.
    for _ in 0..3 {
        let t = given_topic(store.as_ref(), "persistent://acme/orders/t", 3).await;
        record_ids(&t.partition_records);
        store.delete_topic(&t.name).await.unwrap();
    }
    let ns = namespace("acme/orders");
    let t = given_topic(store.as_ref(), "persistent://acme/orders/t", 0).await;
    record_ids(&t.partition_records);
    store.delete_namespace(&ns, true).await.unwrap();
    given_namespace(store.as_ref(), "acme/orders").await;
    let t = given_topic(store.as_ref(), "persistent://acme/orders/t", 2).await;
    record_ids(&t.partition_records);
}

pub async fn topic_policies_round_trip(store: Arc<dyn MetadataStore>) {
    given_namespace(store.as_ref(), "acme/orders").await;
    let t = given_topic(store.as_ref(), "persistent://acme/orders/t", 0).await;
    let policies = serde_json::json!({"messageTTLInSeconds": 30, "retentionPolicies": {"retentionSizeInMB": 10}});
    store.set_topic_policies(&t.name, &policies).await.unwrap();
    assert_eq!(store.get_topic(&t.name).await.unwrap().unwrap().policies, Some(policies));
    let replaced = serde_json::json!({});
    store.set_topic_policies(&t.name, &replaced).await.unwrap();
    assert_eq!(store.get_topic(&t.name).await.unwrap().unwrap().policies, Some(replaced));

    let missing = topic("persistent://acme/orders/none");
    let err = assert_err!(store.set_topic_policies(&missing, &serde_json::json!({})).await, NotFound);
    assert_names(&err, "topic persistent://acme/orders/none");
}
