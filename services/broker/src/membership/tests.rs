use super::*;
use crate::testkit::TestBroker;
use crate::{Caller, KeyHashing, PublishMessage};
use magnetar_metadata::BrokerRegistration;

async fn store() -> (tempfile::TempDir, Arc<dyn MetadataStore>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("metadata.db").display());
    (dir, magnetar_metadata::connect(&url).await.expect("sqlite metadata"))
}

fn registration(session: &str) -> BrokerRegistration {
    BrokerRegistration {
        broker_id: "b1".into(),
        session_id: session.into(),
        cluster: "standalone".into(),
        internal_address: "127.0.0.1:1".into(),
        advertised_address: "127.0.0.1:1".into(),
        binary_internal_url: String::new(),
        binary_advertised_url: String::new(),
        binary_advertised_tls_url: String::new(),
        version: "test".into(),
    }
}

#[tokio::test]
async fn without_renewal_the_broker_fences_itself_a_margin_before_its_lease_ends() {
    let (_dir, metadata) = store().await;
    let config = MembershipConfig { lease_ms: 10_000, renew_interval_ms: 2_000, fence_margin_ms: 1_000 };
    let m = Membership::join(metadata, registration("s1"), config, None).await.expect("join");
    assert!(m.may_acknowledge());
    // Paused only now: the store's own I/O would let paused time jump past its timeouts.
    tokio::time::pause();
    tokio::time::advance(Duration::from_millis(8_900)).await;
    assert!(m.may_acknowledge(), "still 100 ms before the fence");
    tokio::time::advance(Duration::from_millis(200)).await;
    assert!(!m.may_acknowledge(), "9.1 s after the last renewal was sent: fenced");
    assert_eq!(m.time_to_fence(), Duration::ZERO);
}

#[tokio::test]
async fn a_renewal_moves_the_fence_from_when_it_was_sent() {
    let (_dir, metadata) = store().await;
    // Real time: renewals go to the store. The fence comes 1 s after a renewal is sent.
    let config = MembershipConfig { lease_ms: 2_000, renew_interval_ms: 500, fence_margin_ms: 1_000 };
    let m = Membership::join(metadata, registration("s1"), config, None).await.expect("join");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(m.renew(&BrokerLoad::default()).await);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(m.may_acknowledge(), "1.2 s after joining but 0.6 s after the renewal");
    let brokers = m.brokers().await.expect("list");
    assert_eq!(brokers.len(), 1);
    assert!(brokers[0].alive);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!m.may_acknowledge(), "1.2 s after the renewal");
}

#[tokio::test]
async fn a_lease_taken_over_fences_the_old_session_for_good() {
    let (_dir, metadata) = store().await;
    let config = MembershipConfig { lease_ms: 30, renew_interval_ms: 10, fence_margin_ms: 10 };
    let old = Membership::join(Arc::clone(&metadata), registration("old"), config.clone(), None).await.expect("join");
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert!(!old.may_acknowledge());
    let new = Membership::join(Arc::clone(&metadata), registration("new"), MembershipConfig::default(), None)
        .await
        .expect("the lapsed id is taken over");
    assert!(!old.renew(&BrokerLoad::default()).await, "the old session's renewal is refused");
    assert!(!old.may_acknowledge());
    assert!(new.may_acknowledge());
    old.leave().await;
    assert_eq!(new.brokers().await.expect("list")[0].registration.session_id, "new", "leave touches only its own row");
}

#[tokio::test]
async fn a_second_live_process_with_the_same_broker_id_is_refused() {
    let (_dir, metadata) = store().await;
    let _first = Membership::join(Arc::clone(&metadata), registration("a"), MembershipConfig::default(), None)
        .await
        .expect("join");
    let err =
        Membership::join(metadata, registration("b"), MembershipConfig::default(), None).await.err().expect("refused");
    assert!(err.to_string().contains("b1"), "{err}");
}

#[test]
fn configurations_that_cannot_hold_a_lease_are_refused() {
    assert!(MembershipConfig::default().validate().is_ok());
    let margin = MembershipConfig { lease_ms: 1_000, renew_interval_ms: 100, fence_margin_ms: 1_000 };
    assert!(margin.validate().unwrap_err().contains("fence_margin_ms"));
    let slow = MembershipConfig { lease_ms: 10_000, renew_interval_ms: 9_500, fence_margin_ms: 1_000 };
    assert!(slow.validate().unwrap_err().contains("renew_interval_ms"));
}

#[tokio::test]
async fn a_broker_whose_lease_was_taken_acknowledges_no_publish() {
    let t = TestBroker::start().await;
    let topic: magnetar_core::TopicName = "persistent://public/default/fenced".parse().unwrap();
    let caller = Caller::superuser();
    let publish = || {
        t.broker.publisher().publish(
            &caller,
            &topic,
            vec![PublishMessage { payload: "x".into(), ..Default::default() }],
            KeyHashing::Murmur3,
        )
    };
    assert!(publish().await.expect("publish")[0].is_ok());
    assert!(t.broker.is_member());
    let live = t.broker.live_brokers().await.expect("brokers");
    assert_eq!(live.len(), 1, "the broker registered itself: {live:?}");

    // Another process takes the row over as the broker's successor (as after a crash).
    let mut successor = live[0].registration.clone();
    let old_session = std::mem::replace(&mut successor.session_id, "successor".into());
    t.store.register_broker(&successor, 10_000, Some(&old_session)).await.expect("take over");
    assert!(!t.broker.testing().renew_membership().await, "the renewal finds the lease gone");
    assert!(!t.broker.is_member());
    assert!(!t.broker.is_ready(), "a fenced broker reports itself not ready");
    let outcome = publish().await.expect("publish call");
    let err = outcome[0].as_ref().expect_err("not acknowledged");
    assert!(err.to_string().contains("lease"), "{err}");
}
