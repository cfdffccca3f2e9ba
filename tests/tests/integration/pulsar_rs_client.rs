//! pulsar-rs (the `pulsar` crate), a second client implementation of Pulsar's binary protocol
//! next to the C++-based Python client: producing with and without batching, consuming and
//! acknowledging, and what it produced read over HTTP pull.

use crate::common::{payload_text, pull_n};
use futures::TryStreamExt;
use magnetar_tests::TestApp;
use pulsar::consumer::InitialPosition;
use pulsar::{ConsumerOptions, ProducerOptions, Pulsar, SubType, TokioExecutor, producer};
use std::collections::HashMap;
use std::time::Duration;

const N: usize = 20;

#[tokio::test]
async fn the_rust_client_produces_and_consumes_with_and_without_batching() {
    let app = TestApp::standalone().await;
    let client = Pulsar::builder(app.pulsar_url(), TokioExecutor).build().await.expect("pulsar-rs connects");
    for (topic, batch_size) in [("rs-plain", None), ("rs-batched", Some(10))] {
        let (mut consumer, mut producer) = consumer_and_producer(&client, topic, batch_size).await;
        let mut receipts = Vec::new();
        for i in 0..N {
            let message = producer::Message {
                payload: format!("{topic}-{i}").into_bytes(),
                partition_key: Some(format!("k{i}")),
                properties: HashMap::from([("i".to_string(), i.to_string())]),
                event_time: Some(1_700_000_000_000 + i as u64),
                ..Default::default()
            };
            receipts.push(producer.send_non_blocking(message).await.expect("send"));
        }
        if batch_size.is_some() {
            producer.send_batch().await.expect("flush the batch");
        }
        let mut last = 0;
        for (i, r) in receipts.into_iter().enumerate() {
            let receipt = tokio::time::timeout(Duration::from_secs(10), r)
                .await
                .unwrap_or_else(|_| panic!("no receipt for message {i} of {topic} within 10 s"))
                .expect("receipt");
            // Without batching each message is a SEND with its sequence id; with batching the
            // messages of a batch share its receipt (pulsar-rs numbers its SENDs, not messages).
            match batch_size {
                None => assert_eq!(receipt.sequence_id, i as u64, "receipt of message {i} of {topic}"),
                Some(_) => assert!(receipt.sequence_id >= last, "receipts of {topic} out of order"),
            }
            last = receipt.sequence_id;
        }
        for i in 0..N {
            let m = tokio::time::timeout(Duration::from_secs(10), consumer.try_next())
                .await
                .unwrap_or_else(|_| panic!("message {i} of {topic} not received within 10 s"))
                .expect("receive")
                .expect("the stream goes on");
            assert_eq!(m.deserialize(), format!("{topic}-{i}").into_bytes());
            assert_eq!(m.key(), Some(format!("k{i}")));
            assert_eq!(m.payload.metadata.event_time, Some(1_700_000_000_000 + i as u64));
            let props: HashMap<_, _> =
                m.payload.metadata.properties.iter().map(|kv| (kv.key.clone(), kv.value.clone())).collect();
            assert_eq!(props.get("i"), Some(&i.to_string()));
            consumer.ack(&m).await.expect("ack");
        }
        let got = pull_n(&app, topic, "http", N, 30_000).await;
        let texts: Vec<String> = got.iter().map(payload_text).collect();
        assert_eq!(texts, (0..N).map(|i| format!("{topic}-{i}")).collect::<Vec<_>>(), "HTTP pull of {topic}");
        assert_eq!(got[3]["key"], "k3");
    }
}

/// An Exclusive consumer of subscription `s` from the earliest message of `topic` (in
/// `public/default`), and a producer named `<topic>-producer` batching `batch_size` messages.
async fn consumer_and_producer(
    client: &Pulsar<TokioExecutor>,
    topic: &str,
    batch_size: Option<u32>,
) -> (pulsar::Consumer<Vec<u8>, TokioExecutor>, pulsar::Producer<TokioExecutor>) {
    let full = format!("persistent://public/default/{topic}");
    let consumer = client
        .consumer()
        .with_topic(&full)
        .with_subscription("s")
        .with_subscription_type(SubType::Exclusive)
        .with_options(ConsumerOptions::default().with_initial_position(InitialPosition::Earliest))
        .build::<Vec<u8>>()
        .await
        .expect("subscribe");
    let producer = client
        .producer()
        .with_topic(&full)
        .with_name(format!("{topic}-producer"))
        .with_options(ProducerOptions { batch_size, ..Default::default() })
        .build()
        .await
        .expect("create the producer");
    (consumer, producer)
}

async fn next_message(
    consumer: &mut pulsar::Consumer<Vec<u8>, TokioExecutor>,
    what: &str,
) -> pulsar::consumer::Message<Vec<u8>> {
    tokio::time::timeout(Duration::from_secs(10), consumer.try_next())
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing received within 10 s"))
        .expect("receive")
        .expect("the stream goes on")
}

async fn send_all(client: &Pulsar<TokioExecutor>, topic: &str, options: ProducerOptions, texts: &[String]) {
    let mut producer = client.producer().with_topic(topic).with_options(options).build().await.expect("producer");
    let mut receipts = Vec::new();
    for t in texts {
        receipts.push(producer.send_non_blocking(t.clone().into_bytes()).await.expect("send"));
    }
    producer.send_batch().await.ok();
    for r in receipts {
        tokio::time::timeout(Duration::from_secs(10), r).await.expect("a receipt within 10 s").expect("receipt");
    }
}

#[tokio::test]
async fn the_rust_client_compresses_with_each_codec_and_every_surface_reads_it() {
    use pulsar::compression::*;
    let app = TestApp::standalone().await;
    let client = Pulsar::builder(app.pulsar_url(), TokioExecutor).build().await.expect("pulsar-rs connects");
    let codecs = [
        ("lz4", Compression::Lz4(CompressionLz4::default())),
        ("zlib", Compression::Zlib(CompressionZlib::default())),
        ("zstd", Compression::Zstd(CompressionZstd::default())),
        ("snappy", Compression::Snappy(CompressionSnappy::default())),
    ];
    for (name, codec) in codecs {
        for batch_size in [None, Some(4)] {
            let topic = format!("rs-{name}-{}", if batch_size.is_some() { "b" } else { "u" });
            let full = format!("persistent://public/default/{topic}");
            let texts: Vec<String> = (0..8).map(|i| format!("{topic}-{i}-{}", "z".repeat(i * 700))).collect();
            let options = ProducerOptions { batch_size, compression: Some(codec.clone()), ..Default::default() };
            send_all(&client, &full, options, &texts).await;
            let mut consumer = client
                .consumer()
                .with_topic(&full)
                .with_subscription("s")
                .with_options(ConsumerOptions::default().with_initial_position(InitialPosition::Earliest))
                .build::<Vec<u8>>()
                .await
                .expect("subscribe");
            for (i, want) in texts.iter().enumerate() {
                let m = next_message(&mut consumer, &format!("{topic} message {i}")).await;
                assert_eq!(m.deserialize(), want.clone().into_bytes(), "{topic} message {i} over pulsar://");
                consumer.ack(&m).await.expect("ack");
            }
            let got = pull_n(&app, &topic, "http", texts.len(), 30_000).await;
            assert_eq!(got.iter().map(payload_text).collect::<Vec<_>>(), texts, "HTTP pull of {topic}");
        }
    }
}

#[tokio::test]
async fn the_rust_client_reads_and_seeks_by_id_and_time() {
    let app = TestApp::standalone().await;
    let client = Pulsar::builder(app.pulsar_url(), TokioExecutor).build().await.expect("pulsar-rs connects");
    let full = "persistent://public/default/rs-seek";
    let mut producer = client.producer().with_topic(full).build().await.expect("producer");
    let mut ids = Vec::new();
    for i in 0..5 {
        let receipt =
            producer.send_non_blocking(format!("m-{i}").into_bytes()).await.expect("send").await.expect("receipt");
        ids.push(receipt.message_id.expect("the receipt carries the id"));
        tokio::time::sleep(Duration::from_millis(10)).await; // distinct publish times
    }
    // A reader from the earliest message reads all five in order.
    let mut reader = client
        .reader()
        .with_topic(full)
        .with_options(ConsumerOptions::default().with_initial_position(InitialPosition::Earliest))
        .into_reader::<Vec<u8>>()
        .await
        .expect("reader");
    let mut times = Vec::new();
    for i in 0..5 {
        let m = tokio::time::timeout(Duration::from_secs(10), reader.try_next())
            .await
            .expect("a message within 10 s")
            .expect("read")
            .expect("the stream goes on");
        assert_eq!(m.deserialize(), format!("m-{i}").into_bytes());
        times.push(m.payload.metadata.publish_time);
    }
    // A consumer reads everything, then seeks back by id and by publish time.
    let mut consumer = client
        .consumer()
        .with_topic(full)
        .with_subscription("s")
        .with_options(ConsumerOptions::default().with_initial_position(InitialPosition::Earliest))
        .build::<Vec<u8>>()
        .await
        .expect("subscribe");
    for i in 0..5 {
        let m = next_message(&mut consumer, &format!("message {i}")).await;
        consumer.ack(&m).await.expect("ack");
    }
    consumer.seek(None, Some(ids[1].clone()), None, client.clone()).await.expect("seek by id");
    // The broker resets to the id itself; pulsar-rs, unlike the C++ client, does not skip it.
    let m = next_message(&mut consumer, "after the seek by id").await;
    assert_eq!(m.deserialize(), b"m-1".to_vec());
    consumer.seek(None, None, Some(times[3]), client.clone()).await.expect("seek by time");
    let m = next_message(&mut consumer, "after the seek by time").await;
    assert_eq!(m.deserialize(), b"m-3".to_vec(), "the first message published at or after the time");
    let last = consumer.get_last_message_id().await.expect("last message id");
    assert_eq!((last[0].ledger_id, last[0].entry_id), (ids[4].ledger_id, ids[4].entry_id));
}

#[tokio::test]
async fn the_rust_client_produces_to_and_consumes_from_a_partitioned_topic() {
    let app = TestApp::standalone().await;
    crate::common::create_partitioned(&app, "rs-parts", 3).await;
    let client = Pulsar::builder(app.pulsar_url(), TokioExecutor).build().await.expect("pulsar-rs connects");
    let full = "persistent://public/default/rs-parts";
    let mut consumer = client
        .consumer()
        .with_topic(full)
        .with_subscription("s")
        .with_subscription_type(SubType::Shared)
        .with_options(ConsumerOptions::default().with_initial_position(InitialPosition::Earliest))
        .build::<Vec<u8>>()
        .await
        .expect("subscribe to the partitioned topic");
    let mut producer = client.producer().with_topic(full).build().await.expect("producer");
    for i in 0..30 {
        let message = producer::Message {
            payload: format!("p-{i}").into_bytes(),
            partition_key: Some(format!("k{i}")),
            ..Default::default()
        };
        producer.send_non_blocking(message).await.expect("send").await.expect("receipt");
    }
    let mut got = Vec::new();
    let mut partitions = std::collections::BTreeSet::new();
    for i in 0..30 {
        let m = next_message(&mut consumer, &format!("message {i}")).await;
        got.push(String::from_utf8(m.deserialize()).unwrap());
        partitions.insert(m.topic.clone());
        consumer.ack(&m).await.expect("ack");
    }
    got.sort();
    let mut want: Vec<String> = (0..30).map(|i| format!("p-{i}")).collect();
    want.sort();
    assert_eq!(got, want);
    assert!(partitions.len() > 1, "the keys spread over the partitions: {partitions:?}");
}

/// Binary keys (`with_key_bytes`: base64 text flagged `partition_key_b64_encoded`) and ordering
/// keys from pulsar-rs, batched and not, come back to its consumer as they were sent, raw bytes
/// included.
#[tokio::test]
async fn the_rust_client_gets_its_binary_keys_and_ordering_keys_back() {
    let app = TestApp::standalone().await;
    let client = Pulsar::builder(app.pulsar_url(), TokioExecutor).build().await.expect("pulsar-rs connects");
    for (topic, batch_size) in [("rs-keys", None), ("rs-keys-batched", Some(4))] {
        let (mut consumer, mut producer) = consumer_and_producer(&client, topic, batch_size).await;
        let mut receipts = Vec::new();
        for i in 0..4u8 {
            use base64::Engine;
            let message = producer::Message {
                payload: vec![i],
                // What the client's `with_key_bytes` sets.
                partition_key: Some(base64::engine::general_purpose::STANDARD.encode([0, 255, i])),
                partition_key_b64_encoded: Some(true),
                ordering_key: Some(vec![i % 2, 7]),
                ..Default::default()
            };
            receipts.push(producer.send_non_blocking(message).await.expect("send"));
        }
        if batch_size.is_some() {
            producer.send_batch().await.expect("flush the batch");
        }
        for r in receipts {
            tokio::time::timeout(Duration::from_secs(10), r).await.expect("a receipt within 10 s").expect("receipt");
        }
        for i in 0..4u8 {
            let m = next_message(&mut consumer, topic).await;
            assert!(m.has_base64_encoded_key(), "{topic} {i}: {:?}", m.payload.metadata);
            assert_eq!(m.key_bytes().expect("base64").as_deref(), Some(&[0, 255, i][..]), "{topic} {i}");
            assert_eq!(m.payload.metadata.ordering_key.as_deref(), Some(&[i % 2, 7][..]), "{topic} {i}");
            consumer.ack(&m).await.expect("ack");
        }
    }
}
