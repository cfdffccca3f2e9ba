//! Writes the broker makes on a client's behalf are authorized as that client, in the broker:
//! dead-letter publishes (the handshake asks for `produce` on the dead-letter topic, as Pulsar
//! does), topic auto-creation by producers and consumers, subscriptions created by subscribing or
//! pulling, and readers' cursors. Each refusal leaves nothing behind.

use crate::common::ws::{WsClient, refused_status};
use magnetar_tests::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SECRET: &str = "magnetar-on-behalf-test-secret-0123456789abcdef";

fn token(role: &str) -> String {
    magnetar_tests::hs256_token(SECRET, role, 3600)
}

async fn call(app: &TestApp, role: &str, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    crate::common::call_as(&app.base, Some(&token(role)), method, path, body).await
}

#[track_caller]
fn status(got: &(StatusCode, Value), want: u16, what: &str) {
    assert_eq!(got.0.as_u16(), want, "{what}: {}", got.1);
}

/// Tenants `acme` and `beta` with namespace `ns1`; on `acme/ns1`, `app` may produce and consume,
/// `reader` may only consume, `writer` may only produce.
async fn given_tenants(app: &TestApp) {
    for t in ["acme", "beta"] {
        let info = json!({"adminRoles": [], "allowedClusters": ["standalone"]});
        status(&call(app, "root", Method::PUT, &format!("/admin/v2/tenants/{t}"), Some(info)).await, 204, "tenant");
        status(&call(app, "root", Method::PUT, &format!("/admin/v2/namespaces/{t}/ns1"), None).await, 204, "namespace");
    }
    for (role, actions) in
        [("app", json!(["produce", "consume"])), ("reader", json!(["consume"])), ("writer", json!(["produce"]))]
    {
        let path = format!("/admin/v2/namespaces/acme/ns1/permissions/{role}");
        status(&call(app, "root", Method::POST, &path, Some(actions)).await, 204, "grant");
    }
}

fn ws(app: &TestApp, path: &str, role: &str) -> String {
    format!(
        "{}{path}{}token={}",
        app.base.replacen("http://", "ws://", 1),
        if path.contains('?') { "&" } else { "?" },
        token(role)
    )
}

async fn topics_of(app: &TestApp, ns: &str) -> Vec<String> {
    let (s, body) = call(app, "root", Method::GET, &format!("/admin/v2/persistent/{ns}"), None).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    serde_json::from_value(body).expect("topic list")
}

#[tokio::test]
async fn a_dead_letter_topic_the_consumer_may_not_produce_to_refuses_the_handshake() {
    let app = TestApp::with_auth(magnetar_tests::hs256_auth(SECRET)).await;
    given_tenants(&app).await;
    // The reproduction of the issue: a role of acme names a topic of beta as its DLQ.
    let stolen = ws(
        &app,
        "/ws/v2/consumer/persistent/acme/ns1/work/sub?subscriptionType=Shared&maxRedeliverCount=1&deadLetterTopic=persistent://beta/ns1/stolen",
        "app",
    );
    assert_eq!(refused_status(&stolen).await, 403);
    // Consume-only: the default DLQ (acme/ns1/work-sub-DLQ) needs produce too.
    let default_dlq =
        ws(&app, "/ws/v2/consumer/persistent/acme/ns1/work/sub?subscriptionType=Shared&maxRedeliverCount=1", "reader");
    assert_eq!(refused_status(&default_dlq).await, 403);
    assert!(topics_of(&app, "beta/ns1").await.is_empty(), "nothing created in beta");
    // With produce on the DLQ's namespace the consumer connects, and dead-letters as itself.
    let allowed = ws(
        &app,
        "/ws/v2/consumer/persistent/acme/ns1/work/sub?subscriptionType=Shared&maxRedeliverCount=1&negativeAckRedeliveryDelay=0",
        "app",
    );
    let mut consumer = WsClient::connect(&allowed).await;
    status(
        &call(
            &app,
            "app",
            Method::POST,
            "/topics/persistent/acme/ns1/work",
            Some(json!({"messages": [{"payload": "poison"}]})),
        )
        .await,
        200,
        "produce",
    );
    for _ in 0..2 {
        let m = consumer.recv_message().await;
        consumer.nack(m["messageId"].as_str().expect("id")).await;
    }
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !topics_of(&app, "acme/ns1").await.iter().any(|t| t.ends_with("work-sub-DLQ")) {
        assert!(tokio::time::Instant::now() < deadline, "the dead-letter topic was not written");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    consumer.close().await;
}

#[tokio::test]
async fn auto_creation_subscriptions_and_readers_need_the_callers_own_permission() {
    let app = TestApp::with_auth(magnetar_tests::hs256_auth(SECRET)).await;
    given_tenants(&app).await;
    // REST produce to a missing topic creates it only for a role that may produce.
    let produce = |topic: &str| format!("/topics/persistent/acme/ns1/{topic}");
    let body = Some(json!({"messages": [{"payload": "x"}]}));
    status(&call(&app, "reader", Method::POST, &produce("by-reader"), body.clone()).await, 403, "consume-only produce");
    status(&call(&app, "writer", Method::POST, &produce("by-writer"), body.clone()).await, 200, "produce auto-creates");
    // A pull creates its subscription only for a role that may consume.
    let pull = "/topics/persistent/acme/ns1/by-writer/subscriptions/s1/pull";
    status(
        &call(&app, "writer", Method::POST, pull, Some(json!({"initialPosition": "earliest"}))).await,
        403,
        "produce-only pull",
    );
    let (_, subs) =
        call(&app, "root", Method::GET, "/admin/v2/persistent/acme/ns1/by-writer/subscriptions", None).await;
    assert_eq!(subs, json!([]), "no subscription created by the refused pull");
    status(
        &call(&app, "reader", Method::POST, pull, Some(json!({"initialPosition": "earliest"}))).await,
        200,
        "consume pull",
    );
    // WebSocket producers, consumers and readers: the same rules at the handshake.
    let base = "/ws/v2";
    assert_eq!(refused_status(&ws(&app, &format!("{base}/producer/persistent/acme/ns1/ws-p"), "reader")).await, 403);
    assert_eq!(refused_status(&ws(&app, &format!("{base}/consumer/persistent/acme/ns1/ws-c/s"), "writer")).await, 403);
    assert_eq!(refused_status(&ws(&app, &format!("{base}/reader/persistent/acme/ns1/by-writer"), "writer")).await, 403);
    assert_eq!(refused_status(&ws(&app, &format!("{base}/producer/persistent/beta/ns1/x"), "app")).await, 403);
    let topics = topics_of(&app, "acme/ns1").await;
    assert!(
        !topics.iter().any(|t| t.ends_with("by-reader") || t.ends_with("ws-p") || t.ends_with("ws-c")),
        "{topics:?}"
    );
    assert!(topics_of(&app, "beta/ns1").await.is_empty());
    // The roles that may: connected, and what they need is created.
    WsClient::connect(&ws(&app, &format!("{base}/producer/persistent/acme/ns1/ws-p"), "writer")).await.close().await;
    WsClient::connect(&ws(&app, &format!("{base}/consumer/persistent/acme/ns1/ws-c/s"), "reader")).await.close().await;
    WsClient::connect(&ws(&app, &format!("{base}/reader/persistent/acme/ns1/by-writer"), "reader")).await.close().await;
    let topics = topics_of(&app, "acme/ns1").await;
    assert!(topics.iter().any(|t| t.ends_with("ws-p")) && topics.iter().any(|t| t.ends_with("ws-c")), "{topics:?}");
}

#[tokio::test]
async fn a_revoked_grant_is_refused_on_the_next_request() {
    let app = TestApp::with_auth(magnetar_tests::hs256_auth(SECRET)).await;
    given_tenants(&app).await;
    let path = "/topics/persistent/acme/ns1/revoked";
    let body = Some(json!({"messages": [{"payload": "x"}]}));
    // Warm the cache with the grant, then revoke it: the very next produce is refused.
    for _ in 0..3 {
        status(&call(&app, "writer", Method::POST, path, body.clone()).await, 200, "before revocation");
    }
    status(
        &call(&app, "root", Method::DELETE, "/admin/v2/namespaces/acme/ns1/permissions/writer", None).await,
        204,
        "revoke",
    );
    status(&call(&app, "writer", Method::POST, path, body).await, 403, "after revocation");
}
