use super::*;
use crate::membership::MembershipConfig;
use magnetar_core::Policies;
use magnetar_metadata::{BrokerRegistration, TenantInfo};
use std::collections::BTreeMap;

async fn store() -> (tempfile::TempDir, Arc<dyn MetadataStore>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("metadata.db").display());
    (dir, magnetar_metadata::connect(&url).await.expect("sqlite metadata"))
}

fn enabled() -> TierConfig {
    TierConfig { enabled: true, assignment_wait_ms: 2_000, ..TierConfig::default() }
}

/// A broker of the tier: its membership and its view of ownership, on the shared store.
async fn broker(metadata: &Arc<dyn MetadataStore>, id: &str) -> Arc<Tier> {
    let registration = BrokerRegistration {
        broker_id: id.into(),
        session_id: crate::membership::new_session_id(),
        cluster: "tier".into(),
        internal_address: format!("{id}.internal:1"),
        advertised_address: id.into(),
        binary_internal_url: String::new(),
        binary_advertised_url: String::new(),
        binary_advertised_tls_url: String::new(),
        version: "test".into(),
    };
    let membership =
        Membership::join(Arc::clone(metadata), registration, MembershipConfig::default(), None).await.expect("join");
    // Registration times are in milliseconds: keep the order of joins unambiguous.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let policies = PolicyCache::new(Arc::clone(metadata), Duration::from_secs(60));
    Tier::new(enabled(), Arc::clone(metadata), policies, membership, test_metrics())
}

fn test_metrics() -> crate::metrics::tier::TierMetrics {
    crate::metrics::tier::TierMetrics::new(&prometheus::Registry::new())
}

async fn namespace(metadata: &Arc<dyn MetadataStore>, bundles: u32) -> NamespaceName {
    let ns: NamespaceName = "acme/app".parse().unwrap();
    let info = TenantInfo { admin_roles: vec![], allowed_clusters: vec!["tier".into()] };
    metadata.create_tenant(ns.tenant(), &info).await.expect("tenant");
    let policies = Policies { bundles: Bundles::equal(bundles).unwrap().to_data(), ..Policies::default() };
    metadata.create_namespace(&ns, &policies).await.expect("namespace");
    ns
}

fn topic(n: u32) -> TopicName {
    format!("persistent://acme/app/t{n}").parse().unwrap()
}

#[tokio::test]
async fn the_leader_spreads_free_bundles_over_the_live_brokers_and_owners_serve_them() {
    let (_dir, metadata) = store().await;
    let ns = namespace(&metadata, 8).await;
    let first = broker(&metadata, "b1").await;
    let second = broker(&metadata, "b2").await;
    assert_eq!(first.leader().await.unwrap().unwrap().registration.broker_id, "b1", "the first to register leads");

    // One ownership row per bundle, free, then the leader's placement.
    for range in Bundles::equal(8).unwrap().ranges() {
        metadata.ensure_bundle(&ns, &range.to_string()).await.expect("ensure");
    }
    // Only the leader's periodic pass places; a second pass on stale rows would lose every
    // compare-and-set, so nothing is assigned twice.
    second.refresh().await.unwrap();
    assert!(metadata.list_bundles().await.unwrap().iter().all(|r| r.state == BundleState::Free));
    assert_eq!(first.place().await.unwrap(), 8);
    assert_eq!(second.place().await.unwrap(), 0, "nothing free is left");
    let rows = metadata.list_bundles().await.unwrap();
    let mut per_broker: BTreeMap<String, usize> = BTreeMap::new();
    for r in &rows {
        assert_eq!(r.state, BundleState::Assigning);
        *per_broker.entry(r.owner.clone().unwrap()).or_default() += 1;
    }
    assert_eq!(per_broker, BTreeMap::from([("b1".to_string(), 4), ("b2".to_string(), 4)]));
    // Each takes what was assigned to it; then every topic routes to exactly one owner.
    first.refresh().await.unwrap();
    second.refresh().await.unwrap();
    for n in 0..16 {
        let name = topic(n);
        match (first.route(&name, false).await.unwrap(), second.route(&name, false).await.unwrap()) {
            (Route::Local, Route::Forward { broker, address }) => {
                assert_eq!((broker.as_str(), address.as_str()), ("b1", "b1.internal:1"));
                first.check_owned(&name).await.expect("the owner may load it");
                assert!(matches!(second.check_owned(&name).await, Err(BrokerError::NotOwner(_))));
            }
            (Route::Forward { broker, .. }, Route::Local) => {
                assert_eq!(broker, "b2");
                second.check_owned(&name).await.expect("the owner may load it");
            }
            other => panic!("topic {name} routes to {other:?}"),
        }
        // A request forwarded once is never forwarded again.
        let not_here = if first.route(&name, false).await.unwrap() == Route::Local { &second } else { &first };
        assert!(matches!(not_here.route(&name, true).await, Err(BrokerError::NotOwner(_))));
    }
}

#[tokio::test]
async fn a_request_for_a_new_bundle_waits_for_the_leaders_assignment() {
    let (_dir, metadata) = store().await;
    namespace(&metadata, 4).await;
    let leader = broker(&metadata, "b1").await;
    let other = broker(&metadata, "b2").await;
    // The leader's periodic pass, as the broker runs it.
    let pass = {
        let leader = Arc::clone(&leader);
        tokio::spawn(async move {
            loop {
                leader.refresh().await.expect("pass");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    // The first request creates the row and waits; the leader assigns it (to the broker with
    // the fewest bundles, ties by id: b1), b1 takes it, and b2 forwards.
    let route = other.route(&topic(1), false).await.expect("assigned in time");
    assert_eq!(route, Route::Forward { broker: "b1".into(), address: "b1.internal:1".into() });
    pass.abort();
}

#[tokio::test]
async fn a_stale_view_cannot_take_a_bundle_and_a_restart_takes_its_own_back() {
    let (_dir, metadata) = store().await;
    let ns = namespace(&metadata, 1).await;
    let b1 = broker(&metadata, "b1").await;
    let range = Bundles::equal(1).unwrap().ranges().next().unwrap().to_string();
    metadata.ensure_bundle(&ns, &range).await.unwrap();
    b1.place().await.unwrap();
    let assigning = metadata.get_bundle(&ns, &range).await.unwrap().unwrap();
    b1.refresh().await.unwrap();
    let owned = metadata.get_bundle(&ns, &range).await.unwrap().unwrap();
    assert_eq!((owned.state, owned.epoch), (BundleState::Owned, assigning.epoch + 1));
    // Acting on the row as it was before b1 took it is refused.
    let to = BundleTransition { state: BundleState::Owned, owner: Some(("b2".into(), "s".into())) };
    let stale = metadata.transition_bundle(&ns, &range, assigning.epoch, BundleState::Assigning, &to, &[]).await;
    assert!(matches!(stale, Err(MetadataError::Conflict(_))), "{stale:?}");

    // A new process of b1 (the old one's row replaced) takes the bundle back under its session.
    let old_session = owned.owner_session.clone().unwrap();
    let registration = BrokerRegistration {
        broker_id: "b1".into(),
        session_id: "restarted".into(),
        cluster: "tier".into(),
        internal_address: "b1.internal:1".into(),
        advertised_address: "b1".into(),
        binary_internal_url: String::new(),
        binary_advertised_url: String::new(),
        binary_advertised_tls_url: String::new(),
        version: "test".into(),
    };
    let membership =
        Membership::join(Arc::clone(&metadata), registration, MembershipConfig::default(), Some(&old_session))
            .await
            .expect("rejoin");
    let restarted = Tier::new(
        enabled(),
        Arc::clone(&metadata),
        PolicyCache::new(Arc::clone(&metadata), Duration::from_secs(60)),
        membership,
        test_metrics(),
    );
    assert!(
        matches!(restarted.check_owned(&topic(0)).await, Err(BrokerError::NotOwner(_))),
        "not before it took it back"
    );
    restarted.refresh().await.unwrap();
    let back = metadata.get_bundle(&ns, &range).await.unwrap().unwrap();
    assert_eq!((back.state, back.owner_session.as_deref()), (BundleState::Owned, Some("restarted")));
    restarted.check_owned(&topic(0)).await.expect("owned again");
}

#[tokio::test]
async fn without_the_tier_every_topic_is_served_here() {
    let (_dir, metadata) = store().await;
    namespace(&metadata, 4).await;
    let registration = BrokerRegistration {
        broker_id: "solo".into(),
        session_id: "s".into(),
        cluster: "standalone".into(),
        internal_address: "solo".into(),
        advertised_address: "solo".into(),
        binary_internal_url: String::new(),
        binary_advertised_url: String::new(),
        binary_advertised_tls_url: String::new(),
        version: "test".into(),
    };
    let membership =
        Membership::join(Arc::clone(&metadata), registration, MembershipConfig::default(), None).await.unwrap();
    let tier = Tier::new(
        TierConfig::default(),
        Arc::clone(&metadata),
        PolicyCache::new(Arc::clone(&metadata), Duration::from_secs(60)),
        membership,
        test_metrics(),
    );
    assert_eq!(tier.route(&topic(3), true).await.unwrap(), Route::Local);
    tier.check_owned(&topic(3)).await.expect("owns everything");
    assert!(metadata.list_bundles().await.unwrap().is_empty(), "no ownership rows are written");
}

#[tokio::test]
async fn the_leader_places_a_pinned_namespace_only_on_the_brokers_its_isolation_policy_names() {
    let (_dir, metadata) = store().await;
    let ns = namespace(&metadata, 8).await;
    let first = broker(&metadata, "b1").await;
    let _second = broker(&metadata, "b2").await;
    let cluster = magnetar_metadata::ClusterData { name: "tier".into(), ..Default::default() };
    metadata.upsert_cluster(&cluster).await.expect("cluster");
    let policy = magnetar_metadata::NamespaceIsolationData {
        namespaces: vec!["acme/.*".into()],
        primary: vec!["b2".into()],
        secondary: vec![],
        auto_failover_policy: magnetar_metadata::AutoFailoverPolicyData {
            policy_type: "min_available".into(),
            parameters: BTreeMap::from([("min_limit".into(), "1".into()), ("usage_threshold".into(), "80".into())]),
        },
    };
    metadata.set_isolation_policy("tier", "pin-acme", &policy).await.expect("policy");
    for range in Bundles::equal(8).unwrap().ranges() {
        metadata.ensure_bundle(&ns, &range.to_string()).await.expect("ensure");
    }
    // The leader (b1) places every bundle of acme/app on b2, none on itself.
    assert_eq!(first.place().await.unwrap(), 8);
    let owners: Vec<_> = metadata.list_bundles().await.unwrap().into_iter().map(|r| r.owner.unwrap()).collect();
    assert_eq!(owners, vec!["b2".to_string(); 8]);
}
