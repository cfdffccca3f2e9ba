//! How the broker ends a WebSocket session: its close frame reaches the client whatever the
//! client was doing meanwhile. The broker completes the closing handshake (it reads on until the
//! client answers the close) instead of dropping the connection under frames it has not read: a
//! connection dropped so is reset, and a reset throws away what the client had not received yet,
//! the close frame last (a broker that fans a whole topic out then sees a partition's session end
//! without its 1012 and cannot tell a move from an unsubscribe). A broker that passes a session
//! on to the topic's owner does the same with the owner's close.

use crate::common::tier::{brokers, bundle_of, expect, ownership, single_topic, tier_config};
use crate::common::ws::{consumer_url, topic_stats, ws_base};
use crate::common::{admin_topic, b64, create_topic, eventually, ok, produce_payloads};
use futures::{SinkExt, StreamExt};
use magnetar_tests::{BrokerProcess, TestApp, call};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// Enough messages, of this size, to fill the socket buffers on both sides many times over.
const MESSAGES: u64 = 100;
const PAYLOAD_BYTES: usize = 100_000;

#[tokio::test]
async fn a_websocket_consumer_reading_late_gets_every_message_then_the_close_of_an_unload() {
    let app = TestApp::standalone().await;
    create_topic(&app, "late").await;
    produce_payloads(&app, "late", &vec!["x".repeat(PAYLOAD_BYTES); MESSAGES as usize]).await;

    // A consumer with a small receive buffer that reads nothing yet: its session hands it every
    // message, most of them left waiting in the broker's queues and socket buffer.
    let url = consumer_url(&app.base, "late", "s", "subscriptionInitialPosition=Earliest");
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(64 * 1024).expect("SO_RCVBUF");
    let tcp = socket.connect(app.base.trim_start_matches("http://").parse().expect("address")).await.expect("connect");
    let (mut ws, _) = tokio_tungstenite::client_async(url.as_str(), tcp).await.expect("consumer handshake");
    let base = app.base.clone();
    eventually(20, "every message handed to the session", || {
        let base = base.clone();
        async move {
            let out = topic_stats(&base, "late").await["subscriptions"]["s"]["msgOutCounter"].as_u64();
            (out == Some(MESSAGES)).then_some(())
        }
    })
    .await;

    // The topic is unloaded (its session closes with 1012), and the client sends frames that the
    // ended session never reads.
    ok(app.put(&format!("{}/unload", admin_topic("late")), None).await);
    for _ in 0..50 {
        ws.send(Message::text(r#"{"type":"permit","permitMessages":1}"#)).await.expect("send a frame");
    }

    // Reading now, the client receives every message and then the close frame: the connection
    // was closed, not reset under what the client had not read.
    let (received, code) = read_to_close(&mut ws).await;
    assert_eq!(received, MESSAGES, "every message handed out arrives before the close");
    assert_eq!(code, Some(1012), "the unload's close: reconnect");
}

/// Few enough messages, of this size, that they and the close after them all fit in the buffers
/// between the owner and a client that reads nothing, most of them in the sending buffer of the
/// broker in between: it has the owner's close in hand before the client reads.
const THROUGH_MESSAGES: u64 = 32;
const THROUGH_PAYLOAD_BYTES: usize = 8_000;

/// WebSocket sessions open on the broker at `base` (its own, not those it passes on).
async fn open_sessions(c: &reqwest::Client, base: &str) -> u64 {
    let text = c.get(format!("{base}/metrics")).send().await.expect("metrics").text().await.expect("metrics text");
    text.lines()
        .find(|l| l.starts_with("pulsar_active_connections"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("pulsar_active_connections not exported"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_consumer_through_a_non_owner_reading_late_gets_every_message_then_the_close_of_an_unload() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tier_config().await;
    let brokers: [BrokerProcess; 2] = brokers(dir.path(), &cfg);
    let c = reqwest::Client::new();
    let base = &brokers[0].base;
    let topic = "acme/app/late";
    single_topic(&c, base, topic).await;
    let payload = b64(&vec![b'x'; THROUGH_PAYLOAD_BYTES]);
    let messages: Vec<Value> = (0..THROUGH_MESSAGES).map(|_| json!({ "payload": payload })).collect();
    let url = format!("{base}/topics/persistent/{topic}");
    expect(call(&c, Method::POST, &url, Some(json!({ "messages": messages }))).await, 200, "produce");
    let bundle = bundle_of(&c, base, topic).await;
    let owner =
        eventually(10, "the topic's bundle owned", || async { ownership(&c, base).await.0.remove(&bundle) }).await;
    let owner = brokers.iter().find(|p| p.addr == owner).expect("the owner is one of the brokers");
    let via = brokers.iter().find(|p| p.addr != owner.addr).expect("a broker that is not the owner");

    // A consumer through the broker that does not own the topic, with a small receive buffer,
    // reading nothing yet: the owner hands it every message.
    let url =
        format!("{}/ws/v2/consumer/persistent/{topic}/s?subscriptionInitialPosition=Earliest", ws_base(&via.base));
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(64 * 1024).expect("SO_RCVBUF");
    let tcp = socket.connect(via.addr.parse().expect("address")).await.expect("connect");
    let (mut ws, _) = tokio_tungstenite::client_async(url.as_str(), tcp).await.expect("consumer handshake");
    let stats = format!("{}/admin/v2/persistent/{topic}/stats", owner.base);
    eventually(20, "every message handed to the session", || async {
        let (_, st) = call(&c, Method::GET, &stats, None).await;
        (st["subscriptions"]["s"]["msgOutCounter"].as_u64() == Some(THROUGH_MESSAGES)).then_some(())
    })
    .await;

    // The topic is unloaded: the owner's session closes with 1012, and ends once the broker in
    // between passed the close on. The client sends frames all along, and a few more after that.
    expect(
        call(&c, Method::PUT, &format!("{}/admin/v2/persistent/{topic}/unload", owner.base), None).await,
        204,
        "unload",
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut after = 0;
    while after < 10 {
        if ws.send(Message::text(r#"{"type":"permit","permitMessages":1}"#)).await.is_err() {
            // The connection is gone: what the client can still read says how it ended.
            break;
        }
        if after > 0 || open_sessions(&c, &owner.base).await == 0 {
            after += 1;
        }
        assert!(Instant::now() < deadline, "the owner's session did not end within 20 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Reading now, the client receives every message and then the owner's close frame.
    let (received, code) = read_to_close(&mut ws).await;
    assert_eq!(received, THROUGH_MESSAGES, "every message handed out arrives before the close");
    assert_eq!(code, Some(1012), "the unload's close, passed on: reconnect");
}

/// Reads until the close frame: the messages before it, and its code. Panics if the connection
/// ends without one.
async fn read_to_close<S>(ws: &mut S) -> (u64, Option<u16>)
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let mut received = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await.expect("a frame within 30 s") {
            Some(Ok(Message::Text(_))) => received += 1,
            Some(Ok(Message::Close(frame))) => return (received, frame.map(|f| u16::from(f.code))),
            Some(Ok(_)) => {}
            other => panic!("the connection ended without a close frame after {received} messages: {other:?}"),
        }
    }
}
