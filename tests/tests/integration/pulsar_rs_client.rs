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
        let full = format!("persistent://public/default/{topic}");
        let mut consumer = client
            .consumer()
            .with_topic(&full)
            .with_subscription("s")
            .with_subscription_type(SubType::Exclusive)
            .with_options(ConsumerOptions::default().with_initial_position(InitialPosition::Earliest))
            .build::<Vec<u8>>()
            .await
            .expect("subscribe");
        let mut producer = client
            .producer()
            .with_topic(&full)
            .with_name(format!("{topic}-producer"))
            .with_options(ProducerOptions { batch_size, ..Default::default() })
            .build()
            .await
            .expect("create the producer");
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
