//! Message keys as Pulsar's clients send them: a binary key (the Java client's `keyBytes`, a
//! KEY_VALUE schema's separated key) is base64 text flagged `partition_key_b64_encoded`, and the
//! ordering key is bytes of its own. Both are stored with the message and go back out as they
//! came, batched or not, and the JSON surfaces show them; REST produce with a `keySchema` sends
//! its keys that way, as Pulsar's REST producer does.

use crate::binary_frames::{connected, next, subscribe_earliest};
use futures::SinkExt;
use magnetar_protocol::proto::*;
use magnetar_protocol::{Frame, Payload, SingleMessage};
use magnetar_tests::TestApp;
use serde_json::json;

fn single(key: Option<&str>, base64: Option<bool>, ordering: Option<&[u8]>, body: &'static [u8]) -> SingleMessage {
    let mut m = SingleMessage::new(body);
    m.metadata.partition_key = key.map(str::to_string);
    m.metadata.partition_key_b64_encoded = base64;
    m.metadata.ordering_key = ordering.map(<[u8]>::to_vec);
    m
}

/// (key, base64 flag, ordering key) as a MESSAGE's metadata or a batch's message carries them.
type Keys = (Option<String>, Option<bool>, Option<Vec<u8>>);

#[tokio::test]
async fn binary_keys_and_ordering_keys_go_out_as_they_came_in() {
    let app = TestApp::standalone().await;
    let topic = "persistent://public/default/keys";
    let mut conn = connected(&app).await;
    let producer = CommandProducer { topic: topic.into(), producer_id: 1, request_id: 1, ..Default::default() };
    conn.send(Frame::new(producer)).await.unwrap();
    let name = next(&mut conn).await.command.producer_success.expect("PRODUCER_SUCCESS").producer_name;

    // A batch of three: a binary key with an ordering key, a text key, an ordering key alone.
    let batch = [
        single(Some("AAEC"), Some(true), Some(&[1, 2]), b"a"),
        single(Some("plain"), Some(false), None, b"b"),
        single(None, None, Some(&[7]), b"c"),
    ];
    let metadata =
        MessageMetadata { producer_name: name.clone(), sequence_id: 0, publish_time: 1, ..Default::default() };
    let payload = Payload::batch(metadata, CompressionType::Lz4, &batch).unwrap();
    let send = CommandSend { producer_id: 1, sequence_id: 0, num_messages: Some(3), ..Default::default() };
    conn.send(Frame::with_payload(send, payload)).await.unwrap();
    // A message alone with both.
    let metadata = MessageMetadata {
        producer_name: name,
        sequence_id: 3,
        publish_time: 1,
        partition_key: Some("/w==".into()),
        partition_key_b64_encoded: Some(true),
        ordering_key: Some(vec![9, 9]),
        ..Default::default()
    };
    let send = CommandSend { producer_id: 1, sequence_id: 3, ..Default::default() };
    conn.send(Frame::with_payload(send, Payload::new(metadata, bytes::Bytes::from_static(b"d")))).await.unwrap();
    for _ in 0..2 {
        assert!(next(&mut conn).await.command.send_receipt.is_some(), "stored");
    }
    // Pulsar's REST producer with a key schema: the INT32 key 258 as base64 of its four bytes.
    let body = json!({"keySchema": r#"{"type":"INT32"}"#, "messages": [{"key": "258", "payload": "e"}]});
    let answer = crate::common::ok(app.post("/topics/persistent/public/default/keys", Some(body)).await);
    assert_eq!(answer["messagePublishResults"][0]["errorCode"], 0, "{answer}");

    subscribe_earliest(&mut conn, topic).await;
    let mut got: Vec<Keys> = Vec::new();
    while got.len() < 5 {
        let f = next(&mut conn).await;
        if f.command.message.is_none() {
            continue;
        }
        let payload = f.payload.expect("a payload");
        if payload.is_batch() {
            let singles = payload.split_batch(1 << 20).unwrap();
            got.extend(singles.into_iter().map(|m| {
                let md = m.metadata;
                (md.partition_key, md.partition_key_b64_encoded, md.ordering_key)
            }));
        } else {
            let md = payload.metadata();
            got.push((md.partition_key.clone(), md.partition_key_b64_encoded, md.ordering_key.clone()));
        }
    }
    let expected: Vec<Keys> = vec![
        (Some("AAEC".into()), Some(true), Some(vec![1, 2])),
        (Some("plain".into()), None, None),
        (None, None, Some(vec![7])),
        (Some("/w==".into()), Some(true), Some(vec![9, 9])),
        (Some("AAABAg==".into()), Some(true), None),
    ];
    assert_eq!(got, expected);

    // HTTP pull and the console's browser show the flag and the ordering key (base64).
    let pulled = crate::common::pull_n(&app, "keys", "http", 5, 30_000).await;
    let shown = |ms: &[serde_json::Value]| -> Vec<(serde_json::Value, serde_json::Value)> {
        ms.iter().map(|m| (m["keyBase64"].clone(), m["orderingKey"].clone())).collect()
    };
    let expected_json = vec![
        (json!(true), json!("AQI=")),
        (json!(null), json!(null)),
        (json!(null), json!("Bw==")),
        (json!(true), json!("CQk=")),
        (json!(true), json!(null)),
    ];
    assert_eq!(shown(&pulled), expected_json, "{pulled:?}");
    let page = crate::common::ok(app.get("/admin/v2/persistent/public/default/keys/messages?limit=10").await);
    assert_eq!(shown(page["messages"].as_array().expect("messages")), expected_json, "{page}");
    // The REST producer registered the KEY_VALUE schema of its key and value schemas.
    let schema = crate::common::ok(app.get("/admin/v2/schemas/public/default/keys/schema").await);
    assert_eq!(schema["type"], "KEY_VALUE", "{schema}");
    assert_eq!(schema["properties"]["kv.encoding.type"], "SEPARATED", "{schema}");
    assert_eq!(schema["properties"]["key.schema.type"], "INT32", "{schema}");
    assert_eq!(schema["properties"]["value.schema.type"], "STRING", "{schema}");

    // A key that is not an INT32 is refused with a reason naming the message, nothing stored.
    let body = json!({"keySchema": r#"{"type":"INT32"}"#, "messages": [{"key": "x", "payload": "f"}]});
    let (status, refused) = app.post("/topics/persistent/public/default/keys", Some(body)).await;
    assert_eq!(status, 400, "{refused}");
    assert!(refused["reason"].as_str().is_some_and(|r| r.contains("message 0: key")), "{refused}");
    let (_, stats) = app.get("/admin/v2/persistent/public/default/keys/stats").await;
    assert_eq!(stats["msgInCounter"], 5, "{stats}");
}

/// Pulsar's Key_Shared routes by the ordering key before the key: with the Python client, 40
/// messages with a partition key each and one of two ordering keys, from a batching producer;
/// each ordering key's messages all go to one consumer (by their 40 partition keys they would
/// be spread over both), and the consumers get the ordering keys back.
#[tokio::test]
async fn key_shared_routes_by_the_ordering_key_of_the_python_client() {
    let app = TestApp::standalone().await;
    let out = crate::pulsar_client::scenario(&app.pulsar_url(), "ordering_keys", "ordered", &[]).await;
    let consumers = out["consumers"].as_array().expect("consumers");
    let received: Vec<(usize, String, String)> = consumers
        .iter()
        .enumerate()
        .flat_map(|(i, ms)| {
            ms.as_array().expect("messages").iter().map(move |m| {
                (i, m[0].as_str().expect("ordering key").to_string(), m[1].as_str().expect("key").to_string())
            })
        })
        .collect();
    assert_eq!(received.len(), 40, "{out}");
    for colour in ["red", "blue"] {
        let holders: std::collections::BTreeSet<usize> =
            received.iter().filter(|(_, o, _)| o == colour).map(|(i, _, _)| *i).collect();
        assert_eq!(holders.len(), 1, "{colour} went to one consumer: {out}");
        // In the order sent.
        let order: Vec<u32> = received
            .iter()
            .filter(|(_, o, _)| o == colour)
            .map(|(_, _, k)| k.trim_start_matches("p-").parse().expect("p-<i>"))
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{colour} in order: {order:?}");
    }
    let mut keys: Vec<&str> = received.iter().map(|(_, _, k)| k.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), 40, "every partition key came back: {out}");
    assert_eq!(received.iter().filter(|(_, o, _)| o == "red").count(), 20, "{out}");
}
