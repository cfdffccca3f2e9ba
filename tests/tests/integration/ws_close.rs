//! How the broker ends a WebSocket session: its close frame reaches the client whatever the
//! client was doing meanwhile. The broker completes the closing handshake (it reads on until the
//! client answers the close) instead of dropping the connection under frames it has not read: a
//! connection dropped so is reset, and a reset throws away what the client had not received yet,
//! the close frame last (a broker that fans a whole topic out then sees a partition's session end
//! without its 1012 and cannot tell a move from an unsubscribe).

use crate::common::ws::{consumer_url, topic_stats};
use crate::common::{admin_topic, create_topic, eventually, ok, produce_payloads};
use futures::{SinkExt, StreamExt};
use magnetar_tests::TestApp;
use std::time::Duration;
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
    let mut received = 0;
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await.expect("a frame within 30 s") {
            Some(Ok(Message::Text(_))) => received += 1,
            Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
            other => panic!("the connection ended without a close frame after {received} messages: {other:?}"),
        }
    };
    assert_eq!(received, MESSAGES, "every message handed out arrives before the close");
    assert_eq!(code, Some(1012), "the unload's close: reconnect");
}
