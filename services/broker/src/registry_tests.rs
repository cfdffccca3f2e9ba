//! The topic registry under concurrency: loads, unloads and deletes of one topic never
//! interleave, so a deleted topic never stays loaded.

use crate::testkit::TestBroker;
use crate::{BrokerError, Caller, KeyHashing, PublishMessage};
use magnetar_core::TopicName;
use std::collections::BTreeMap;
use std::time::Duration;

#[tokio::test]
async fn a_delete_during_a_load_leaves_no_stale_topic() {
    let t = TestBroker::start().await;
    let topics = t.broker.topics().clone();
    let name: TopicName = "persistent://public/default/racing".parse().unwrap();
    topics.create(&name, 0, BTreeMap::new()).await.unwrap();

    // A load has read the topic's metadata and is slow to install it.
    t.store.arm();
    let load = tokio::spawn({
        let (topics, name) = (topics.clone(), name.clone());
        async move { topics.stats(&name).await }
    });
    t.store.reached.notified().await;
    // Meanwhile the topic is deleted (it waits for the load, or would slip in before it).
    let delete = tokio::spawn({
        let (topics, name) = (topics.clone(), name.clone());
        async move { topics.delete(&name, true, false).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    t.store.release.notify_one();
    let _ = load.await.unwrap();
    delete.await.unwrap().expect("delete");

    assert!(matches!(topics.stats(&name).await, Err(BrokerError::NotFound(_))), "the deleted topic is still loaded");
    // Created again, it serves from a fresh partition.
    topics.create(&name, 0, BTreeMap::new()).await.unwrap();
    let outcomes = t
        .broker
        .publisher()
        .publish(
            &Caller::superuser(),
            &name,
            vec![PublishMessage { payload: "x".into(), ..Default::default() }],
            KeyHashing::Murmur3,
        )
        .await
        .unwrap();
    assert!(outcomes[0].is_ok(), "{:?}", outcomes[0]);
    assert_eq!(t.broker.testing().loaded_topics(), 1);
}
