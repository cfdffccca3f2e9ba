//! Conformance: partition termination, topic and subscription properties, schema versions.

use super::{assert_err, assert_names, given_namespace, given_topic, topic};
use crate::{CursorState, MetadataStore};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

pub async fn terminating_a_partition_keeps_its_first_end(store: Arc<dyn MetadataStore>) {
    given_namespace(store.as_ref(), "acme/orders").await;
    let t = given_topic(store.as_ref(), "persistent://acme/orders/t", 2).await;
    assert!(t.partition_records.iter().all(|p| p.terminated_end.is_none()));
    let (p0, p1) = (t.partition_records[0].log_id, t.partition_records[1].log_id);
    assert_eq!(store.terminate_partition(p0, 5).await.unwrap(), 5);
    assert_eq!(store.terminate_partition(p0, 9).await.unwrap(), 5, "a partition ends once");
    let read = store.get_topic(&t.name).await.unwrap().expect("topic");
    assert_eq!(read.partition_records[0].terminated_end, Some(5));
    assert_eq!(read.partition_records[1].terminated_end, None, "partitions end one by one");
    assert_eq!(store.terminate_partition(p1, 0).await.unwrap(), 0);
    let err = assert_err!(store.terminate_partition(987_654_321, 1).await, NotFound);
    assert_names(&err, "partition 987654321");
}

pub async fn topic_and_subscription_properties_round_trip(store: Arc<dyn MetadataStore>) {
    given_namespace(store.as_ref(), "acme/orders").await;
    let t = given_topic(store.as_ref(), "persistent://acme/orders/t", 2).await;
    store.set_topic_properties(&t.name, &props(&[("owner", "team-a"), ("tier", "gold")])).await.unwrap();
    let read = store.get_topic(&t.name).await.unwrap().expect("topic");
    assert_eq!(read.properties, props(&[("owner", "team-a"), ("tier", "gold")]));
    let err =
        assert_err!(store.set_topic_properties(&topic("persistent://acme/orders/none"), &props(&[])).await, NotFound);
    assert_names(&err, "topic persistent://acme/orders/none");

    let (p0, p1) = (t.partition_records[0].log_id, t.partition_records[1].log_id);
    store.create_subscription("s", &[(p0, CursorState::default()), (p1, CursorState::default())]).await.unwrap();
    assert_eq!(store.list_subscriptions(p0).await.unwrap()[0].properties, BTreeMap::new());
    store.set_subscription_properties("s", &[p0, p1], &props(&[("app", "billing")])).await.unwrap();
    for p in [p0, p1] {
        assert_eq!(store.list_subscriptions(p).await.unwrap()[0].properties, props(&[("app", "billing")]));
    }
    store.set_subscription_properties("s", &[p0, p1], &props(&[])).await.unwrap();
    assert_eq!(store.list_subscriptions(p1).await.unwrap()[0].properties, BTreeMap::new(), "properties are replaced");
    let err = assert_err!(store.set_subscription_properties("ghost", &[p0, p1], &props(&[])).await, NotFound);
    assert_names(&err, "subscription ghost");
}

pub async fn schema_versions_count_on_after_a_deletion(store: Arc<dyn MetadataStore>) {
    given_namespace(store.as_ref(), "acme/orders").await;
    let t = given_topic(store.as_ref(), "persistent://acme/orders/t", 0).await;
    assert_eq!(store.list_schema_versions(&t.name).await.unwrap(), vec![]);
    let v0 = json!({"type": "STRING", "schema": "", "properties": {}});
    let v1 = json!({"type": "JSON", "schema": "{\"type\":\"record\"}", "properties": {"k": "v"}});
    assert_eq!(store.add_schema_version(&t.name, Some(&v0)).await.unwrap(), 0);
    assert_eq!(store.add_schema_version(&t.name, Some(&v1)).await.unwrap(), 1);
    assert_eq!(store.add_schema_version(&t.name, None).await.unwrap(), 2);
    assert_eq!(store.add_schema_version(&t.name, Some(&v0)).await.unwrap(), 3);
    let versions = store.list_schema_versions(&t.name).await.unwrap();
    assert_eq!(versions.iter().map(|v| v.version).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    assert_eq!(versions[1].schema, Some(v1));
    assert_eq!(versions[2].schema, None, "a deletion marker");
    let missing = topic("persistent://acme/orders/none");
    let err = assert_err!(store.add_schema_version(&missing, Some(&v0)).await, NotFound);
    assert_names(&err, "topic persistent://acme/orders/none");
    assert_eq!(store.list_schema_versions(&missing).await.unwrap(), vec![]);
    // A topic's schema goes with it.
    store.delete_topic(&t.name).await.unwrap();
    given_topic(store.as_ref(), "persistent://acme/orders/t", 0).await;
    assert_eq!(store.list_schema_versions(&t.name).await.unwrap(), vec![]);
}
