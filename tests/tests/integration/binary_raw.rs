//! Commands of Pulsar's binary protocol that the Python client cannot observe, driven with raw
//! frames: ACTIVE_CONSUMER_CHANGE for Failover consumers (pulsar-client 3.13 exposes no consumer
//! event listener).

use crate::binary_frames::{connected, next};
use futures::SinkExt;
use magnetar_protocol::Frame;
use magnetar_protocol::proto::*;
use magnetar_tests::TestApp;
use serde_json::json;
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

type Conn = Framed<TcpStream, magnetar_protocol::PulsarCodec>;

const TOPIC: &str = "persistent://public/default/failover-events";

async fn subscribe(conn: &mut Conn, sub: &str, sub_type: SubType, name: &str) {
    conn.send(Frame::new(CommandSubscribe {
        topic: TOPIC.into(),
        subscription: sub.into(),
        sub_type: sub_type as i32,
        consumer_id: 1,
        request_id: 1,
        consumer_name: Some(name.into()),
        ..Default::default()
    }))
    .await
    .unwrap();
}

/// Reads frames until one satisfies `pick`; returns it with the frames read before it.
async fn until<T>(conn: &mut Conn, mut pick: impl FnMut(&Frame) -> Option<T>) -> (T, Vec<Frame>) {
    let mut before = Vec::new();
    loop {
        let f = next(conn).await;
        if let Some(t) = pick(&f) {
            return (t, before);
        }
        before.push(f);
    }
}

fn active_change(f: &Frame) -> Option<bool> {
    f.command.active_consumer_change.map(|c| {
        assert_eq!(c.consumer_id, 1);
        c.is_active()
    })
}

#[tokio::test]
async fn failover_consumers_are_told_when_the_active_consumer_changes() {
    let app = TestApp::standalone().await;
    let mut b = connected(&app).await;
    subscribe(&mut b, "fo", SubType::Failover, "b").await;
    let (active, _) = until(&mut b, active_change).await;
    assert!(active, "the only consumer is active");

    // "a" sorts before "b": it becomes the active consumer and "b" is told it no longer is.
    let mut a = connected(&app).await;
    subscribe(&mut a, "fo", SubType::Failover, "a").await;
    let (active, _) = until(&mut a, active_change).await;
    assert!(active, "consumer a takes over");
    let (active, _) = until(&mut b, active_change).await;
    assert!(!active, "consumer b is told it is inactive");

    // "a" leaves: "b" is active again.
    a.send(Frame::new(CommandCloseConsumer { consumer_id: 1, request_id: 2, ..Default::default() })).await.unwrap();
    let (active, _) = until(&mut b, active_change).await;
    assert!(active, "consumer b is active again");
}

#[tokio::test]
async fn shared_consumers_get_no_active_consumer_change() {
    let app = TestApp::standalone().await;
    let mut conn = connected(&app).await;
    subscribe(&mut conn, "sh", SubType::Shared, "c").await;
    // The subscription exists (from the latest message on) before the message is produced.
    let (_, early) = until(&mut conn, |f| f.command.success.as_ref().map(|_| ())).await;
    assert!(early.iter().all(|f| f.command.active_consumer_change.is_none()), "{early:?}");
    conn.send(Frame::new(CommandFlow { consumer_id: 1, message_permits: 10 })).await.unwrap();
    crate::common::produce(&app, "failover-events", vec![json!({"payload": "m"})]).await;
    // A change would be sent before any message: none came before the message.
    let (_, before) = until(&mut conn, |f| f.command.message.as_ref().map(|_| ())).await;
    assert!(before.iter().all(|f| f.command.active_consumer_change.is_none()), "{before:?}");
}
