//! Conformance: cluster administration, failure domains and namespace isolation policies.

use super::{assert_err, assert_names};
use crate::{AutoFailoverPolicyData, ClusterData, FailureDomain, MetadataStore, NamespaceIsolationData};
use std::collections::BTreeMap;
use std::sync::Arc;

fn cluster(name: &str, url: &str) -> ClusterData {
    ClusterData {
        name: name.into(),
        service_url: url.into(),
        broker_service_url: url.replace("http", "pulsar"),
        ..ClusterData::default()
    }
}

fn domain(brokers: &[&str]) -> FailureDomain {
    FailureDomain { brokers: brokers.iter().map(|b| b.to_string()).collect() }
}

fn isolation(namespaces: &[&str], primary: &[&str]) -> NamespaceIsolationData {
    NamespaceIsolationData {
        namespaces: namespaces.iter().map(|n| n.to_string()).collect(),
        primary: primary.iter().map(|b| b.to_string()).collect(),
        secondary: vec![],
        auto_failover_policy: AutoFailoverPolicyData {
            policy_type: "min_available".into(),
            parameters: BTreeMap::from([("min_limit".into(), "1".into()), ("usage_threshold".into(), "80".into())]),
        },
    }
}

pub async fn cluster_create_update_delete(store: Arc<dyn MetadataStore>) {
    let east = cluster("east", "http://east:8080");
    store.create_cluster(&east).await.unwrap();
    assert_eq!(store.get_cluster("east").await.unwrap(), Some(east.clone()));
    let err = assert_err!(store.create_cluster(&cluster("east", "http://other:8080")).await, AlreadyExists);
    assert_names(&err, "cluster east");
    assert_eq!(store.get_cluster("east").await.unwrap(), Some(east.clone()), "the failed create changed nothing");

    let moved = ClusterData { peer_cluster_names: vec!["west".into()], ..cluster("east", "http://east-2:8080") };
    store.update_cluster(&moved).await.unwrap();
    assert_eq!(store.get_cluster("east").await.unwrap(), Some(moved));
    let err = assert_err!(store.update_cluster(&cluster("ghost", "http://g:8080")).await, NotFound);
    assert_names(&err, "cluster ghost");

    store.create_cluster(&cluster("west", "http://west:8080")).await.unwrap();
    assert_eq!(store.list_clusters().await.unwrap(), vec!["east".to_string(), "west".to_string()]);
    store.delete_cluster("east").await.unwrap();
    assert_eq!(store.get_cluster("east").await.unwrap(), None);
    assert_eq!(store.list_clusters().await.unwrap(), vec!["west".to_string()]);
    let err = assert_err!(store.delete_cluster("east").await, NotFound);
    assert_names(&err, "cluster east");
}

pub async fn failure_domains_round_trip_and_keep_brokers_in_one_domain(store: Arc<dyn MetadataStore>) {
    let err = assert_err!(store.set_failure_domain("east", "rack-a", &domain(&["b1:8080"])).await, NotFound);
    assert_names(&err, "cluster east");
    assert_err!(store.list_failure_domains("east").await, NotFound);
    store.create_cluster(&cluster("east", "http://east:8080")).await.unwrap();
    assert_eq!(store.list_failure_domains("east").await.unwrap(), BTreeMap::new());

    store.set_failure_domain("east", "rack-a", &domain(&["b1:8080", "b2:8080"])).await.unwrap();
    store.set_failure_domain("east", "rack-b", &domain(&["b3:8080"])).await.unwrap();
    let err = assert_err!(store.set_failure_domain("east", "rack-b", &domain(&["b2:8080"])).await, Conflict);
    assert_names(&err, "b2:8080");
    assert_names(&err, "rack-a");
    // Replacing a domain with its own brokers is no conflict; moving a broker after it left is.
    store.set_failure_domain("east", "rack-a", &domain(&["b1:8080"])).await.unwrap();
    store.set_failure_domain("east", "rack-b", &domain(&["b2:8080", "b3:8080"])).await.unwrap();
    assert_eq!(
        store.list_failure_domains("east").await.unwrap(),
        BTreeMap::from([("rack-a".into(), domain(&["b1:8080"])), ("rack-b".into(), domain(&["b2:8080", "b3:8080"]))])
    );

    store.delete_failure_domain("east", "rack-a").await.unwrap();
    let err = assert_err!(store.delete_failure_domain("east", "rack-a").await, NotFound);
    assert_names(&err, "failure domain rack-a");
    assert_eq!(store.list_failure_domains("east").await.unwrap().len(), 1);
    // The cluster's domains go with it.
    store.delete_cluster("east").await.unwrap();
    store.create_cluster(&cluster("east", "http://east:8080")).await.unwrap();
    assert_eq!(store.list_failure_domains("east").await.unwrap(), BTreeMap::new());
}

pub async fn isolation_policies_round_trip_and_go_with_their_cluster(store: Arc<dyn MetadataStore>) {
    let policy = isolation(&["acme/.*"], &["b1:.*"]);
    let err = assert_err!(store.set_isolation_policy("east", "acme", &policy).await, NotFound);
    assert_names(&err, "cluster east");
    assert_err!(store.list_isolation_policies("east").await, NotFound);
    store.create_cluster(&cluster("east", "http://east:8080")).await.unwrap();
    store.create_cluster(&cluster("west", "http://west:8080")).await.unwrap();

    store.set_isolation_policy("east", "acme", &policy).await.unwrap();
    store.set_isolation_policy("west", "acme", &isolation(&["acme/web"], &["w1:.*"])).await.unwrap();
    let replaced = isolation(&["acme/.*", "beta/.*"], &["b2:.*"]);
    store.set_isolation_policy("east", "acme", &replaced).await.unwrap();
    store.set_isolation_policy("east", "beta", &policy).await.unwrap();
    let east = store.list_isolation_policies("east").await.unwrap();
    assert_eq!(east, BTreeMap::from([("acme".into(), replaced), ("beta".into(), policy)]));
    assert_eq!(store.list_isolation_policies("west").await.unwrap().len(), 1, "policies are per cluster");

    store.delete_isolation_policy("east", "beta").await.unwrap();
    let err = assert_err!(store.delete_isolation_policy("east", "beta").await, NotFound);
    assert_names(&err, "namespace isolation policy beta");
    store.delete_cluster("east").await.unwrap();
    assert_err!(store.list_isolation_policies("east").await, NotFound);
    assert_eq!(store.list_isolation_policies("west").await.unwrap().len(), 1);
}
