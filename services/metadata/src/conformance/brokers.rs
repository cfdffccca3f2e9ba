//! Broker membership: registration, lease renewal, expiry on the store's clock, takeover.

use super::assert_err;
use crate::{BrokerLoad, BrokerRegistration, BrokerState, BundleStats, MetadataStore};
use std::sync::Arc;
use std::time::Duration;

fn registration(id: &str, session: &str) -> BrokerRegistration {
    BrokerRegistration {
        broker_id: id.into(),
        session_id: session.into(),
        cluster: "standalone".into(),
        internal_address: format!("{id}.internal:8080"),
        advertised_address: format!("{id}.example:8080"),
        binary_internal_url: format!("pulsar://{id}.internal:6650"),
        binary_advertised_url: format!("pulsar://{id}.example:6650"),
        binary_advertised_tls_url: format!("pulsar+ssl://{id}.example:6651"),
        version: "1.2.3".into(),
    }
}

const LONG: u64 = 60_000;

pub async fn brokers_register_renew_and_list(store: Arc<dyn MetadataStore>) {
    let granted = store.register_broker(&registration("b2", "s2"), LONG, None).await.expect("register b2");
    assert!(granted.expires_at_ms - granted.db_now_ms >= LONG as i64 - 1000, "{granted:?}");
    store.register_broker(&registration("b1", "s1"), LONG, None).await.expect("register b1");
    let mut other = registration("b3", "s3");
    other.cluster = "elsewhere".into();
    store.register_broker(&other, LONG, None).await.expect("register b3");

    let hot = BundleStats { msg_rate_in: 10.0, msg_throughput_in: 2048.0, topics: 2, ..BundleStats::default() };
    let load = BrokerLoad {
        msg_rate_in: 12.5,
        topics: 3,
        bundle_stats: [("t/ns/0x00000000_0x80000000".to_string(), hot)].into(),
        ..BrokerLoad::default()
    };
    let renewed = store
        .renew_broker_lease("b1", "s1", LONG, BrokerState::Draining, &load)
        .await
        .expect("renew")
        .expect("an unexpired lease is renewed");
    assert!(renewed.expires_at_ms >= granted.expires_at_ms - 1000);

    let brokers = store.list_brokers("standalone").await.expect("list");
    let ids: Vec<_> = brokers.iter().map(|b| b.registration.broker_id.as_str()).collect();
    assert_eq!(ids, ["b1", "b2"], "sorted, this cluster only");
    assert_eq!(brokers[0].registration, registration("b1", "s1"));
    assert_eq!((brokers[0].state, &brokers[0].load), (BrokerState::Draining, &load));
    assert_eq!((brokers[1].state, &brokers[1].load), (BrokerState::Active, &BrokerLoad::default()));
    assert!(brokers.iter().all(|b| b.alive));
}

pub async fn a_live_broker_id_cannot_be_taken_by_another_session(store: Arc<dyn MetadataStore>) {
    store.register_broker(&registration("b1", "first"), LONG, None).await.expect("register");
    let err = assert_err!(store.register_broker(&registration("b1", "second"), LONG, None).await, Conflict);
    super::assert_names(&err, "b1");
    // The same session may register again (a retried call after a lost answer).
    store.register_broker(&registration("b1", "first"), LONG, None).await.expect("same session again");
    // A process that knows the live session is its own dead predecessor may take over.
    store.register_broker(&registration("b1", "third"), LONG, Some("other")).await.expect_err("not its predecessor");
    // The second session cannot renew a lease it never held.
    let renewed = store
        .renew_broker_lease("b1", "second", LONG, BrokerState::Active, &BrokerLoad::default())
        .await
        .expect("renew");
    assert_eq!(renewed, None);
    let brokers = store.list_brokers("standalone").await.expect("list");
    assert_eq!(brokers[0].registration.session_id, "first");
    store.register_broker(&registration("b1", "restarted"), LONG, Some("first")).await.expect("successor");
    let brokers = store.list_brokers("standalone").await.expect("list");
    assert_eq!(brokers[0].registration.session_id, "restarted");
}

pub async fn an_expired_lease_is_not_renewed_and_may_be_taken_over(store: Arc<dyn MetadataStore>) {
    store.register_broker(&registration("b1", "old"), 1, None).await.expect("register with a 1 ms lease");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let brokers = store.list_brokers("standalone").await.expect("list");
    assert!(!brokers[0].alive, "the lease lapsed on the store's clock: {brokers:?}");
    let renewed =
        store.renew_broker_lease("b1", "old", LONG, BrokerState::Active, &BrokerLoad::default()).await.expect("renew");
    assert_eq!(renewed, None, "a lapsed lease stays lapsed: its holder must stop acting as a member");

    store.register_broker(&registration("b1", "new"), LONG, None).await.expect("take over after expiry");
    let brokers = store.list_brokers("standalone").await.expect("list");
    assert_eq!(brokers[0].registration.session_id, "new");
    assert!(brokers[0].alive);
}

pub async fn deregistering_removes_only_the_own_session(store: Arc<dyn MetadataStore>) {
    store.register_broker(&registration("b1", "s1"), LONG, None).await.expect("register");
    store.deregister_broker("b1", "stale-session").await.expect("deregister other");
    assert_eq!(store.list_brokers("standalone").await.expect("list").len(), 1);
    store.deregister_broker("b1", "s1").await.expect("deregister");
    assert!(store.list_brokers("standalone").await.expect("list").is_empty());
}

pub async fn binary_listener_urls_are_registered_and_replaced_by_a_restart(store: Arc<dyn MetadataStore>) {
    // A broker without a binary listener registers empty URLs.
    let mut without = registration("b1", "s1");
    without.binary_internal_url = String::new();
    without.binary_advertised_url = String::new();
    without.binary_advertised_tls_url = String::new();
    store.register_broker(&without, LONG, None).await.expect("register without a binary listener");
    let brokers = store.list_brokers("standalone").await.expect("list");
    assert_eq!(brokers[0].registration, without);

    // Its next process listens elsewhere: the row says where now.
    let mut restarted = registration("b1", "s2");
    restarted.binary_internal_url = "pulsar://b1.internal:16650".into();
    store.register_broker(&restarted, LONG, Some("s1")).await.expect("register the successor");
    let brokers = store.list_brokers("standalone").await.expect("list");
    assert_eq!(brokers[0].registration, restarted);
    assert_eq!(brokers[0].registration.binary_advertised_url, "pulsar://b1.example:6650");
    assert_eq!(brokers[0].registration.binary_advertised_tls_url, "pulsar+ssl://b1.example:6651");
}
