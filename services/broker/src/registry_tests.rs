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

/// What a handover relies on to close binary producers before their log closes: an unload
/// tells a producer that asked to be detached, and its partition's tracker waits until the
/// producer lets go.
#[tokio::test]
async fn an_unload_tells_detached_producers_and_their_partition_waits_for_them() {
    let t = TestBroker::start().await;
    let name: TopicName = "persistent://public/default/detaching".parse().unwrap();
    t.broker.topics().create(&name, 0, BTreeMap::new()).await.unwrap();
    let slots = t.broker.publisher().attach_producer(&Caller::superuser(), &name).await.unwrap();
    let detach = slots.detach_on_unload();
    let (_, parts) = t.broker.registry.partitions_of(&name).await.unwrap();
    let tracker = parts[0].producers.clone();
    assert!(tokio::time::timeout(Duration::from_millis(50), detach.unloaded()).await.is_err(), "told too early");

    t.broker.topics().unload(&name).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), detach.unloaded()).await.expect("the producer is told of the unload");
    tracker.close();
    assert!(
        tokio::time::timeout(Duration::from_millis(50), tracker.wait()).await.is_err(),
        "the partition waits while the producer holds on"
    );
    drop(detach);
    tokio::time::timeout(Duration::from_secs(1), tracker.wait()).await.expect("released once the producer let go");
    drop(slots);
}
