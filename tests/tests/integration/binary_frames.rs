//! Malformed frames against the `pulsar://` listener: each closes only its own connection (the
//! reason goes to the log), the broker stays up and a connection opened before them keeps
//! working. A SEND with a bad checksum is answered with ChecksumError and its connection goes on.
//! Chunks of a chunked message sent twice are stored once under deduplication.
//! Hundreds of randomly mutated frames (seeded, replayable) harm neither the broker nor a
//! connection opened before them.

use bytes::{BufMut, BytesMut};
use futures::{SinkExt, StreamExt};
use magnetar_protocol::proto::*;
use magnetar_protocol::{Frame, Payload, PulsarCodec};
use magnetar_tests::TestApp;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

const WAIT: Duration = Duration::from_secs(10);

pub(crate) async fn connected(app: &TestApp) -> Framed<TcpStream, PulsarCodec> {
    let addr = app.pulsar_url().trim_start_matches("pulsar://").to_string();
    let mut conn = Framed::new(TcpStream::connect(addr).await.expect("connect"), PulsarCodec::new());
    conn.send(Frame::new(CommandConnect {
        client_version: "magnetar-test".into(),
        protocol_version: Some(21),
        ..Default::default()
    }))
    .await
    .unwrap();
    let reply = next(&mut conn).await;
    assert!(reply.command.connected.is_some(), "{reply:?}");
    conn
}

pub(crate) async fn next(conn: &mut Framed<TcpStream, PulsarCodec>) -> Frame {
    match tokio::time::timeout(WAIT, conn.next()).await.expect("a frame within 10 s") {
        Some(Ok(Ok(frame))) => frame,
        other => panic!("expected a frame, got {other:?}"),
    }
}

/// PING is answered with PONG (the broker may also ping: skipped).
async fn still_alive(conn: &mut Framed<TcpStream, PulsarCodec>) {
    conn.send(Frame::new(CommandPing {})).await.unwrap();
    loop {
        let f = next(conn).await;
        if f.command.pong.is_some() {
            return;
        }
    }
}

/// Sends raw bytes on a fresh, connected socket and expects the broker to close it.
async fn closed_after(app: &TestApp, bytes: &[u8]) {
    let conn = connected(app).await;
    let mut socket = conn.into_inner();
    socket.write_all(bytes).await.unwrap();
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the connection stayed open after {bytes:02x?}");
}

fn command_frame(command: &[u8]) -> Vec<u8> {
    let mut b = BytesMut::new();
    b.put_u32(command.len() as u32 + 4);
    b.put_u32(command.len() as u32);
    b.put_slice(command);
    b.to_vec()
}

#[tokio::test]
async fn malformed_frames_close_their_connection_only() {
    let app = TestApp::standalone().await;
    let mut bystander = connected(&app).await;

    // A size above the frame limit.
    closed_after(&app, &[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 1]).await;
    // A command size larger than its frame.
    closed_after(&app, &[0, 0, 0, 8, 0, 0, 0, 200, 1, 2, 3, 4]).await;
    // Bytes that are not a protobuf message.
    closed_after(&app, &command_frame(&[0xff, 0xff, 0xff, 0xff])).await;
    // An unknown command type (99).
    closed_after(&app, &command_frame(&[0x08, 99])).await;
    // SUBSCRIBE without its required message.
    closed_after(&app, &command_frame(&[0x08, 4])).await;
    // A second CONNECT.
    let connect = BaseCommand::from(CommandConnect { client_version: "x".into(), ..Default::default() });
    closed_after(&app, &command_frame(&prost::Message::encode_to_vec(&connect))).await;

    still_alive(&mut bystander).await;
    let (status, _) = app.get("/admin/v2/clusters").await;
    assert_eq!(status, 200, "the broker still serves HTTP");
}

/// Subscribes consumer 1 (request 2) to `s` on `topic` from the earliest message, and gives it
/// 100 permits.
pub(crate) async fn subscribe_earliest(conn: &mut Framed<TcpStream, PulsarCodec>, topic: &str) {
    let subscribe = CommandSubscribe {
        topic: topic.into(),
        subscription: "s".into(),
        consumer_id: 1,
        request_id: 2,
        initial_position: Some(InitialPosition::Earliest as i32),
        ..Default::default()
    };
    conn.send(Frame::new(subscribe)).await.unwrap();
    assert!(next(conn).await.command.success.is_some(), "subscribed");
    conn.send(Frame::new(CommandFlow { consumer_id: 1, message_permits: 100 })).await.unwrap();
}

/// Creates producer 1 on `topic` (`persistent://public/default/…`); returns the name the broker
/// gave it.
async fn producer(conn: &mut Framed<TcpStream, PulsarCodec>, topic: &str) -> String {
    conn.send(Frame::new(CommandProducer {
        topic: format!("persistent://public/default/{topic}"),
        producer_id: 1,
        request_id: 1,
        ..Default::default()
    }))
    .await
    .unwrap();
    loop {
        let f = next(conn).await;
        if let Some(ok) = f.command.producer_success {
            return ok.producer_name;
        }
        assert!(f.command.error.is_none(), "PRODUCER refused: {f:?}");
    }
}

/// An encrypted SEND from `name` (sequence id `seq`): a batch of `batch` messages when set.
fn encrypted_send(name: &str, seq: u64, batch: Option<i32>, chunks: Option<i32>) -> Frame {
    let key = EncryptionKeys { key: "k1".into(), value: vec![1, 2, 3], metadata: vec![KeyValue::new("version", "1")] };
    let metadata = MessageMetadata {
        producer_name: name.into(),
        sequence_id: seq,
        publish_time: 1,
        partition_key: Some("pk".into()),
        encryption_keys: vec![key],
        encryption_param: Some(vec![9; 12]),
        compression: Some(CompressionType::Lz4 as i32),
        uncompressed_size: Some(64),
        num_messages_in_batch: batch,
        num_chunks_from_msg: chunks,
        uuid: chunks.map(|_| "u-1".into()),
        chunk_id: chunks.map(|_| 0),
        total_chunk_msg_size: chunks.map(|_| 12),
        ..Default::default()
    };
    let send = CommandSend { producer_id: 1, sequence_id: seq, num_messages: batch, ..Default::default() };
    Frame::with_payload(send, Payload::new(metadata, bytes::Bytes::from_static(b"sealed bytes")))
}

#[tokio::test]
async fn end_to_end_encrypted_messages_go_out_as_sent_and_impossible_ones_are_refused() {
    let app = TestApp::standalone().await;
    let mut conn = connected(&app).await;
    let topic = "persistent://public/default/encrypted";
    let declared = CommandProducer {
        topic: topic.into(),
        producer_id: 1,
        request_id: 1,
        encrypted: Some(true),
        ..Default::default()
    };
    conn.send(Frame::new(declared)).await.unwrap();
    let name = next(&mut conn).await.command.producer_success.expect("PRODUCER_SUCCESS").producer_name;

    // A batch claiming no message: refused alone, nothing stored.
    conn.send(encrypted_send(&name, 1, Some(0), None)).await.unwrap();
    let error = next(&mut conn).await.command.send_error.expect("SEND_ERROR");
    assert_eq!(error.error, ServerError::NotAllowedError as i32, "{error:?}");

    // A message alone, a batch of three and a chunk: stored as sent, one offset per message.
    conn.send(encrypted_send(&name, 2, None, None)).await.unwrap();
    conn.send(encrypted_send(&name, 3, Some(3), None)).await.unwrap();
    conn.send(encrypted_send(&name, 4, None, Some(2))).await.unwrap();
    for _ in 0..3 {
        assert!(next(&mut conn).await.command.send_receipt.is_some(), "stored");
    }
    let (_, stats) = app.get("/admin/v2/persistent/public/default/encrypted/stats").await;
    assert_eq!(stats["msgInCounter"], 5, "{stats}");

    subscribe_earliest(&mut conn, topic).await;
    let mut frames = Vec::new();
    while frames.len() < 3 {
        let f = next(&mut conn).await;
        if f.command.message.is_some() {
            frames.push(f);
        }
    }
    let chunk = frames[2].payload.as_ref().expect("a payload").metadata();
    assert_eq!((chunk.num_chunks_from_msg, chunk.chunk_id), (Some(2), Some(0)), "a chunk, as sent: {chunk:?}");
    for (f, batch) in frames.iter().zip([None, Some(3), None]) {
        let payload = f.payload.as_ref().expect("a payload");
        let md = payload.metadata();
        assert_eq!(payload.data().as_ref(), b"sealed bytes", "as sent");
        assert_eq!(md.encryption_keys.len(), 1, "{md:?}");
        assert_eq!(md.encryption_keys[0].value, vec![1, 2, 3]);
        assert_eq!(md.encryption_keys[0].metadata[0].value, "1");
        assert_eq!(md.encryption_param.as_deref(), Some(&[9u8; 12][..]));
        assert_eq!((md.compression, md.uncompressed_size), (Some(CompressionType::Lz4 as i32), Some(64)));
        assert_eq!(md.num_messages_in_batch, batch, "{md:?}");
        assert_eq!(md.partition_key.as_deref(), Some("pk"));
    }
    // Part of the batch acknowledged by batch index: nothing; all of it by its entry: all three.
    let entry = frames[1].command.message.as_ref().expect("MESSAGE").message_id.clone();
    let ack = |id: MessageIdData| Frame::new(CommandAck { consumer_id: 1, message_id: vec![id], ..Default::default() });
    conn.send(ack(MessageIdData { batch_index: Some(1), ..entry.clone() })).await.unwrap();
    still_alive(&mut conn).await;
    let (_, stats) = app.get("/admin/v2/persistent/public/default/encrypted/stats").await;
    assert_eq!(stats["subscriptions"]["s"]["msgBacklog"], 5, "{stats}");
    conn.send(ack(entry)).await.unwrap();
    for f in [&frames[0], &frames[2]] {
        conn.send(ack(f.command.message.as_ref().expect("MESSAGE").message_id.clone())).await.unwrap();
    }
    still_alive(&mut conn).await;
    let (_, stats) = app.get("/admin/v2/persistent/public/default/encrypted/stats").await;
    assert_eq!(stats["subscriptions"]["s"]["msgBacklog"], 0, "{stats}");

    // Pulsar's encryptionRequired: a producer that does not encrypt is refused with
    // MetadataError, an unencrypted message alone; encrypted ones are stored.
    let (status, body) =
        app.post("/admin/v2/namespaces/public/default/encryptionRequired", Some(serde_json::json!(true))).await;
    assert_eq!(status, 204, "{body}");
    let plain = CommandProducer { topic: topic.into(), producer_id: 2, request_id: 3, ..Default::default() };
    conn.send(Frame::new(plain)).await.unwrap();
    let refused = next(&mut conn).await.command.error.expect("ERROR");
    assert_eq!(refused.error, ServerError::MetadataError as i32, "{refused:?}");
    let metadata =
        MessageMetadata { producer_name: name.clone(), sequence_id: 10, publish_time: 1, ..Default::default() };
    let send = CommandSend { producer_id: 1, sequence_id: 10, ..Default::default() };
    conn.send(Frame::with_payload(send, Payload::new(metadata, bytes::Bytes::from_static(b"plain")))).await.unwrap();
    assert!(next(&mut conn).await.command.send_error.is_some(), "an unencrypted message is refused");
    conn.send(encrypted_send(&name, 11, None, None)).await.unwrap();
    // The subscription's consumer may be sent the message before its producer gets the receipt.
    let answer = loop {
        let f = next(&mut conn).await;
        if f.command.message.is_none() {
            break f;
        }
    };
    assert!(answer.command.send_receipt.is_some(), "an encrypted one is stored: {answer:?}");
}

#[tokio::test]
async fn a_bad_checksum_is_answered_and_the_connection_goes_on() {
    let app = TestApp::standalone().await;
    let mut conn = connected(&app).await;
    let name = producer(&mut conn, "checksum").await;
    let metadata = MessageMetadata { producer_name: name, sequence_id: 0, publish_time: 1, ..Default::default() };
    let send = Frame::with_payload(
        CommandSend { producer_id: 1, sequence_id: 0, ..Default::default() },
        Payload::new(metadata, bytes::Bytes::from_static(b"payload")),
    );
    let mut wire = BytesMut::new();
    tokio_util::codec::Encoder::encode(&mut PulsarCodec::new(), &send, &mut wire).unwrap();
    let last = wire.len() - 1;
    wire[last] ^= 0xff;
    conn.get_mut().write_all(&wire).await.unwrap();
    let reply = next(&mut conn).await;
    let error = reply.command.send_error.expect("SEND_ERROR");
    assert_eq!(error.error, ServerError::ChecksumError as i32);
    still_alive(&mut conn).await;
}

/// SEND of chunk `index` of 2 of message `seq` ("first-" + "second!!", 14 bytes).
fn chunk(name: &str, seq: u64, index: i32, count: i32, total: i32) -> Frame {
    let metadata = MessageMetadata {
        producer_name: name.to_string(),
        sequence_id: seq,
        publish_time: 1,
        uuid: Some(format!("{name}-{seq}")),
        chunk_id: Some(index),
        num_chunks_from_msg: Some(count),
        total_chunk_msg_size: Some(total),
        ..Default::default()
    };
    let body: &'static [u8] = if index == 0 { b"first-" } else { b"second!!" };
    Frame::with_payload(
        CommandSend { producer_id: 1, sequence_id: seq, ..Default::default() },
        Payload::new(metadata, bytes::Bytes::from_static(body)),
    )
}

#[tokio::test]
async fn sends_in_flight_beyond_what_one_wal_frame_holds_are_all_stored() {
    let app = TestApp::configured(|cfg| {
        cfg.broker.max_message_bytes = 64 * 1024;
        cfg.storage.wal_buffer_bytes = 256 * 1024;
    })
    .await;
    let mut conn = connected(&app).await;
    let name = producer(&mut conn, "wide").await;
    // 40 SENDs of 60 KB written at once: 2.4 MB queued behind a 256 KiB WAL buffer.
    let mut wire = BytesMut::new();
    for seq in 0..40u64 {
        let metadata =
            MessageMetadata { producer_name: name.clone(), sequence_id: seq, publish_time: 1, ..Default::default() };
        let send = Frame::with_payload(
            CommandSend { producer_id: 1, sequence_id: seq, ..Default::default() },
            Payload::new(metadata, bytes::Bytes::from(vec![seq as u8; 60_000])),
        );
        tokio_util::codec::Encoder::encode(&mut PulsarCodec::new(), &send, &mut wire).unwrap();
    }
    conn.get_mut().write_all(&wire).await.unwrap();
    for seq in 0..40u64 {
        let reply = next(&mut conn).await;
        let receipt = reply.command.send_receipt.clone().unwrap_or_else(|| panic!("receipt {seq}: {reply:?}"));
        assert_eq!(receipt.sequence_id, seq);
    }
    let (_, stats) = app.get("/admin/v2/persistent/public/default/wide/stats").await;
    assert_eq!(stats["msgInCounter"], 40, "{stats}");
}

#[tokio::test]
async fn chunks_are_stored_once_under_deduplication_and_inconsistent_ones_are_refused() {
    let app = TestApp::standalone().await;
    let (status, body) =
        app.post("/admin/v2/namespaces/public/default/deduplication", Some(serde_json::json!(true))).await;
    assert!(status.is_success(), "{body}");
    let mut conn = connected(&app).await;
    let name = producer(&mut conn, "chunks").await;
    let mut receipts = Vec::new();
    // The message, then all of it again (a producer resending after a reconnect).
    for _ in 0..2 {
        for index in 0..2 {
            conn.send(chunk(&name, 0, index, 2, 14)).await.unwrap();
            let reply = next(&mut conn).await;
            let receipt = reply.command.send_receipt.clone().unwrap_or_else(|| panic!("a receipt: {reply:?}"));
            receipts.push(receipt.message_id.expect("an id"));
        }
    }
    assert_ne!(receipts[0].entry_id, receipts[1].entry_id, "each chunk is an entry: {receipts:?}");
    assert!(receipts[2..].iter().all(|id| id.entry_id == u64::MAX), "the resent chunks are duplicates: {receipts:?}");
    for (bad, reason) in
        [(chunk(&name, 1, 5, 2, 14), "chunk id 5"), (chunk(&name, 1, 0, 2, 1 << 30), "chunked message of")]
    {
        conn.send(bad).await.unwrap();
        let reply = next(&mut conn).await;
        let error = reply.command.send_error.clone().unwrap_or_else(|| panic!("SEND_ERROR: {reply:?}"));
        assert_eq!(error.error, ServerError::NotAllowedError as i32);
        assert!(error.message.contains(reason), "{}", error.message);
    }
    let (status, stats) = app.get("/admin/v2/persistent/public/default/chunks/stats").await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["msgInCounter"], 2, "two chunks stored once: {stats}");
    // A WebSocket reader gets the message whole.
    let url = crate::common::ws::reader_url(&app.base, "chunks", "messageId=earliest");
    let mut reader = crate::common::ws::WsClient::connect(&url).await;
    let m = reader.recv_message().await;
    assert_eq!(crate::common::unb64(m["payload"].as_str().unwrap()), b"first-second!!");
}

#[tokio::test]
async fn a_command_before_connect_closes_the_connection() {
    let app = TestApp::standalone().await;
    let addr = app.pulsar_url().trim_start_matches("pulsar://").to_string();
    let mut socket = TcpStream::connect(addr).await.unwrap();
    let ping = prost::Message::encode_to_vec(&BaseCommand::from(CommandPing {}));
    socket.write_all(&command_frame(&ping)).await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(WAIT, socket.read(&mut buf)).await.expect("closed within 10 s").unwrap_or(0);
    assert_eq!(n, 0, "nothing is answered before CONNECT");
}

/// A small deterministic generator (xorshift64*): every run of the fuzz test can be replayed
/// from the seed it prints.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Valid frames of the commands a client sends after CONNECT, encoded: what the fuzzer mutates.
fn valid_frames() -> Vec<Vec<u8>> {
    let topic = "persistent://public/default/fuzzed".to_string();
    let metadata =
        MessageMetadata { producer_name: "fuzz".into(), sequence_id: 1, publish_time: 1, ..Default::default() };
    let frames = [
        Frame::new(CommandProducer { topic: topic.clone(), producer_id: 1, request_id: 1, ..Default::default() }),
        Frame::with_payload(
            CommandSend { producer_id: 1, sequence_id: 1, num_messages: Some(1), ..Default::default() },
            Payload::new(metadata, bytes::Bytes::from_static(b"a fuzzed payload")),
        ),
        Frame::new(CommandSubscribe {
            topic: topic.clone(),
            subscription: "s".into(),
            consumer_id: 1,
            request_id: 2,
            ..Default::default()
        }),
        Frame::new(CommandFlow { consumer_id: 1, message_permits: 100 }),
        Frame::new(CommandAck {
            consumer_id: 1,
            message_id: vec![MessageIdData { ledger_id: 0, entry_id: 0, ack_set: vec![-1, 7], ..Default::default() }],
            ..Default::default()
        }),
        Frame::new(CommandLookupTopic { topic, request_id: 3, ..Default::default() }),
        Frame::new(CommandPing {}),
    ];
    frames
        .iter()
        .map(|f| {
            let mut wire = BytesMut::new();
            tokio_util::codec::Encoder::encode(&mut PulsarCodec::new(), f, &mut wire).unwrap();
            wire.to_vec()
        })
        .collect()
}

/// One malformed byte sequence: a valid frame with flipped bits, a cut, a forged size, inserted
/// garbage, or pure noise.
fn mutate(rng: &mut Rng, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut b = frames[rng.below(frames.len())].clone();
    match rng.below(5) {
        0 => {
            for _ in 0..=rng.below(8) {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
        }
        1 => b.truncate(rng.below(b.len())),
        2 => {
            // The frame's total size or its command size replaced.
            let at = if rng.next().is_multiple_of(2) { 0 } else { 4 };
            let forged = [rng.next() as u32, u32::MAX, 0, b.len() as u32 * 2][rng.below(4)];
            b[at..at + 4].copy_from_slice(&forged.to_be_bytes());
        }
        3 => {
            let at = rng.below(b.len());
            let noise: Vec<u8> = (0..1 + rng.below(64)).map(|_| rng.next() as u8).collect();
            b.splice(at..at, noise);
        }
        _ => b = (0..1 + rng.below(256)).map(|_| rng.next() as u8).collect(),
    }
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzed_frames_harm_neither_the_broker_nor_other_connections() {
    let seed = std::env::var("MAGNETAR_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
    });
    eprintln!("fuzz seed {seed} (MAGNETAR_FUZZ_SEED={seed} replays this run)");
    let app = TestApp::standalone().await;
    let mut bystander = connected(&app).await;
    let frames = valid_frames();
    let mut rng = Rng(seed);
    let cases: Vec<Vec<u8>> = (0..1500).map(|_| mutate(&mut rng, &frames)).collect();
    // Each case on its own connection, after a valid CONNECT, 16 at a time; whatever the
    // broker answers (an error, a close, nothing yet), the case ends after a short read.
    futures::stream::iter(cases)
        .for_each_concurrent(16, |bytes| {
            let app = &app;
            async move {
                let mut socket = connected(app).await.into_inner();
                if socket.write_all(&bytes).await.is_err() {
                    return;
                }
                let mut buf = [0u8; 4096];
                let _ = tokio::time::timeout(Duration::from_millis(200), async {
                    while let Ok(n) = socket.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                    }
                })
                .await;
            }
        })
        .await;

    still_alive(&mut bystander).await;
    let (status, _) = app.get("/admin/v2/clusters").await;
    assert_eq!(status, 200, "the broker still serves HTTP (seed {seed})");
    // A fresh client still produces over the binary protocol.
    let mut conn = connected(&app).await;
    let name = producer(&mut conn, "after-fuzz").await;
    let metadata = MessageMetadata { producer_name: name, sequence_id: 0, publish_time: 1, ..Default::default() };
    conn.send(Frame::with_payload(
        CommandSend { producer_id: 1, sequence_id: 0, ..Default::default() },
        Payload::new(metadata, bytes::Bytes::from_static(b"still here")),
    ))
    .await
    .unwrap();
    loop {
        let f = next(&mut conn).await;
        if f.command.send_receipt.is_some() {
            break;
        }
        assert!(f.command.send_error.is_none(), "a send after the fuzzing failed (seed {seed}): {f:?}");
    }
}
