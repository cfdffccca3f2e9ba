//! Commands of Pulsar's binary protocol that the Python client cannot observe, driven with raw
//! frames: ACTIVE_CONSUMER_CHANGE for Failover consumers (pulsar-client 3.13 exposes no consumer
//! event listener); and the schema registry commands (GET_SCHEMA, GET_OR_CREATE_SCHEMA), which it
//! never sends; the producer access modes step by step (queued and ready answers, topic
//! epochs, the closes of fenced producers); and subscription properties, which it cannot set.

use crate::binary_frames::{connected, next};
use crate::common::ws::WsClient;
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

fn json_schema(name: &str, fields: &[&str]) -> Schema {
    let fields: Vec<_> = fields.iter().map(|f| json!({"name": f, "type": ["null", "string"]})).collect();
    let def = json!({"type": "record", "name": name, "fields": fields});
    Schema {
        name: String::new(),
        schema_data: def.to_string().into_bytes(),
        r#type: SchemaType::Json as i32,
        properties: vec![],
    }
}

fn version(v: i64) -> Vec<u8> {
    v.to_be_bytes().to_vec()
}

async fn get_schema(conn: &mut Conn, topic: &str, at: Option<i64>) -> CommandGetSchemaResponse {
    let request_id = 100;
    let ask = CommandGetSchema { request_id, topic: topic.into(), schema_version: at.map(version) };
    conn.send(Frame::new(ask)).await.unwrap();
    until(conn, |f| f.command.get_schema_response.clone()).await.0
}

async fn get_or_create(conn: &mut Conn, topic: &str, schema: Schema) -> CommandGetOrCreateSchemaResponse {
    let ask = CommandGetOrCreateSchema { request_id: 101, topic: topic.into(), schema };
    conn.send(Frame::new(ask)).await.unwrap();
    until(conn, |f| f.command.get_or_create_schema_response.clone()).await.0
}

#[tokio::test]
async fn schema_commands_answer_from_the_registry_the_admin_api_serves() {
    let app = TestApp::standalone().await;
    let topic = "persistent://public/default/raw-schemas";
    let mut conn = connected(&app).await;
    // No schema yet: "topic not found" in GET_SCHEMA's own response, as Pulsar answers it.
    let none = get_schema(&mut conn, topic, None).await;
    assert_eq!(none.error_code, Some(ServerError::TopicNotFound as i32), "{none:?}");

    // A producer's schema becomes version 0, told in PRODUCER_SUCCESS.
    let v0 = json_schema("Order", &["id"]);
    let producer = CommandProducer {
        topic: topic.into(),
        producer_id: 1,
        request_id: 1,
        schema: Some(v0.clone()),
        ..Default::default()
    };
    conn.send(Frame::new(producer)).await.unwrap();
    let (ok, _) = until(&mut conn, |f| f.command.producer_success.clone()).await;
    assert_eq!(ok.schema_version, Some(version(0)));

    let latest = get_schema(&mut conn, topic, None).await;
    assert_eq!((latest.error_code, latest.schema_version.clone()), (None, Some(version(0))), "{latest:?}");
    let got = latest.schema.expect("the schema");
    assert_eq!((got.r#type, got.schema_data, got.name.as_str()), (v0.r#type, v0.schema_data.clone(), topic));

    // GET_OR_CREATE_SCHEMA: the same definition is version 0 again, an evolved one version 1,
    // another type refused in its own response type.
    assert_eq!(get_or_create(&mut conn, topic, v0.clone()).await.schema_version, Some(version(0)));
    let v1 = json_schema("Order", &["id", "note"]);
    assert_eq!(get_or_create(&mut conn, topic, v1.clone()).await.schema_version, Some(version(1)));
    let text = Schema { schema_data: vec![], r#type: SchemaType::String as i32, ..v0.clone() };
    let refused = get_or_create(&mut conn, topic, text).await;
    assert_eq!(refused.error_code, Some(ServerError::IncompatibleSchema as i32), "{refused:?}");
    assert!(refused.error_message.as_deref().is_some_and(|m| m.contains("STRING")), "{refused:?}");

    // Versions by number, and one that does not exist.
    let first = get_schema(&mut conn, topic, Some(0)).await;
    assert_eq!(first.schema.map(|s| s.schema_data), Some(v0.schema_data));
    assert_eq!(get_schema(&mut conn, topic, None).await.schema.map(|s| s.schema_data), Some(v1.schema_data));
    let missing = get_schema(&mut conn, topic, Some(7)).await;
    assert_eq!(missing.error_code, Some(ServerError::TopicNotFound as i32), "{missing:?}");

    // The admin API shows what the binary protocol registered.
    let (status, all) = app.get("/admin/v2/schemas/public/default/raw-schemas/schemas").await;
    assert_eq!(status, 200);
    assert_eq!(all["getSchemaResponses"].as_array().map(Vec::len), Some(2), "{all}");
}

fn producer(topic: &str, producer_id: u64, request_id: u64, mode: ProducerAccessMode) -> CommandProducer {
    CommandProducer {
        topic: topic.into(),
        producer_id,
        request_id,
        producer_access_mode: Some(mode as i32),
        ..Default::default()
    }
}

/// PRODUCER's answer: its success, or the error code.
async fn answer(conn: &mut Conn, request_id: u64) -> Result<CommandProducerSuccess, i32> {
    until(conn, |f| match (&f.command.producer_success, &f.command.error) {
        (Some(ok), _) if ok.request_id == request_id => Some(Ok(ok.clone())),
        (_, Some(e)) if e.request_id == request_id => Some(Err(e.error)),
        _ => None,
    })
    .await
    .0
}

#[tokio::test]
async fn producer_access_modes_hold_queue_and_fence_producers_of_every_surface() {
    let app = TestApp::standalone().await;
    let topic = "persistent://public/default/raw-access";
    let mut a = connected(&app).await;
    a.send(Frame::new(producer(topic, 1, 1, ProducerAccessMode::Exclusive))).await.unwrap();
    let held = answer(&mut a, 1).await.expect("the first exclusive producer attaches");
    assert_eq!((held.producer_ready, held.topic_epoch), (Some(true), Some(0)));

    // Held: a WebSocket producer is refused (409), a shared binary one is busy, another
    // exclusive one fenced.
    let ws = crate::common::ws::producer_url(&app.base, "raw-access");
    assert_eq!(WsClient::connect_with_token(&ws, "unused").await.err(), Some(409));
    let mut b = connected(&app).await;
    b.send(Frame::new(producer(topic, 1, 2, ProducerAccessMode::Shared))).await.unwrap();
    assert_eq!(answer(&mut b, 2).await.err(), Some(ServerError::ProducerBusy as i32));
    b.send(Frame::new(producer(topic, 1, 3, ProducerAccessMode::Exclusive))).await.unwrap();
    assert_eq!(answer(&mut b, 3).await.err(), Some(ServerError::ProducerFenced as i32));

    // A waiting producer is told it is queued, then ready with the next epoch once the holder left.
    b.send(Frame::new(producer(topic, 1, 4, ProducerAccessMode::WaitForExclusive))).await.unwrap();
    let queued = answer(&mut b, 4).await.expect("queued");
    assert_eq!(queued.producer_ready, Some(false));
    // Topic stats list the holder and count the waiting one (Pulsar's `publishers`).
    let (_, stats) = app.get("/admin/v2/persistent/public/default/raw-access/stats").await;
    assert_eq!(stats["waitingPublishers"], 1, "{stats}");
    let publishers = stats["publishers"].as_array().expect("publishers");
    assert_eq!(publishers.len(), 1, "{stats}");
    assert_eq!(publishers[0]["accessMode"], "Exclusive");
    assert_eq!(publishers[0]["producerName"], held.producer_name.as_str());
    assert!(publishers[0]["address"].as_str().is_some_and(|a| a.starts_with("127.0.0.1:")), "{stats}");
    a.send(Frame::new(CommandCloseProducer { producer_id: 1, request_id: 5, ..Default::default() })).await.unwrap();
    let ready = answer(&mut b, 4).await.expect("its turn");
    assert_eq!((ready.producer_ready, ready.topic_epoch), (Some(true), Some(1)));

    // Fencing: the waiting-turned-exclusive producer is closed, and coming back with its epoch
    // it is refused; a shared WebSocket producer of a free topic is closed the same way.
    a.send(Frame::new(producer(topic, 2, 6, ProducerAccessMode::ExclusiveWithFencing))).await.unwrap();
    assert_eq!(answer(&mut a, 6).await.expect("fences").topic_epoch, Some(2));
    let (closed, _) = until(&mut b, |f| f.command.close_producer.clone()).await;
    assert_eq!(closed.producer_id, 1);
    let back = CommandProducer { topic_epoch: Some(1), ..producer(topic, 1, 7, ProducerAccessMode::Exclusive) };
    b.send(Frame::new(back)).await.unwrap();
    assert_eq!(answer(&mut b, 7).await.err(), Some(ServerError::ProducerFenced as i32));

    let mut shared = WsClient::connect(&crate::common::ws::producer_url(&app.base, "raw-access-ws")).await;
    let ws_topic = "persistent://public/default/raw-access-ws";
    a.send(Frame::new(producer(ws_topic, 3, 8, ProducerAccessMode::ExclusiveWithFencing))).await.unwrap();
    answer(&mut a, 8).await.expect("fences the WebSocket producer");
    assert_eq!(shared.close_code().await, 1008, "closed as fenced out");
}

/// Pulsar's subscription properties (PIP-105): the consumer that creates a subscription sets
/// them (the Python client has no parameter for them), a later consumer does not change them,
/// the admin API replaces them, and stats show them.
#[tokio::test]
async fn the_consumer_that_creates_a_subscription_sets_its_properties() {
    let app = TestApp::standalone().await;
    let topic = "persistent://public/default/sub-props";
    let admin = "/admin/v2/persistent/public/default/sub-props";
    let props = |kv: &[(&str, &str)]| kv.iter().map(|(k, v)| KeyValue::new(*k, *v)).collect::<Vec<_>>();
    let mut conns = Vec::new();
    for (id, given) in [(1, props(&[("team", "billing"), ("tier", "gold")])), (2, props(&[("team", "other")]))] {
        let mut conn = connected(&app).await;
        conn.send(Frame::new(CommandSubscribe {
            topic: topic.into(),
            subscription: "s".into(),
            sub_type: SubType::Shared as i32,
            consumer_id: id,
            request_id: id,
            subscription_properties: given,
            ..Default::default()
        }))
        .await
        .unwrap();
        assert!(next(&mut conn).await.command.success.is_some(), "subscribed");
        conns.push(conn);
    }
    let expected = json!({"team": "billing", "tier": "gold"});
    let (_, stats) = app.get(&format!("{admin}/stats")).await;
    assert_eq!(stats["subscriptions"]["s"]["subscriptionProperties"], expected, "{stats}");
    let (_, stored) = app.get(&format!("{admin}/subscription/s/properties")).await;
    assert_eq!(stored, expected);
    let (status, _) = app.put(&format!("{admin}/subscription/s/properties"), Some(json!({"team": "ops"}))).await;
    assert_eq!(status, 204);
    let (_, stats) = app.get(&format!("{admin}/stats")).await;
    assert_eq!(stats["subscriptions"]["s"]["subscriptionProperties"], json!({"team": "ops"}), "{stats}");
}
