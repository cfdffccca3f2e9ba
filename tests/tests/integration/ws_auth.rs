//! WebSocket sessions and authentication: a token in the `token` query parameter is accepted,
//! a missing or bad one refuses the handshake, and an open session is closed when its token
//! expires (Pulsar leaves such sessions open).

use futures::StreamExt;
use magnetar_auth::AuthConfig;
use magnetar_tests::TestApp;
use std::time::Duration;
use tokio_tungstenite::tungstenite::{self, Message};

const SECRET: &str = "magnetar-ws-auth-test-secret-0123456789abcdef";

fn config() -> AuthConfig {
    magnetar_tests::hs256_auth(SECRET)
}

fn token(role: &str, ttl_secs: u64) -> String {
    magnetar_tests::hs256_token(SECRET, role, ttl_secs)
}

fn ws_url(app: &TestApp, path: &str) -> String {
    format!("{}{path}", app.base.replacen("http://", "ws://", 1))
}

#[tokio::test]
async fn handshake_without_token_is_refused_with_401() {
    let app = TestApp::with_auth(config()).await;
    let url = ws_url(&app, "/ws/v2/consumer/persistent/public/default/t/s");
    match tokio_tungstenite::connect_async(&url).await {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 401),
        other => panic!("expected 401, got {:?}", other.map(|(_, r)| r.status())),
    }
}

#[tokio::test]
async fn session_is_closed_when_its_token_expires() {
    let app = TestApp::with_auth(config()).await;
    // A superuser token valid for 2 seconds, passed as browsers do: `?token=`.
    let t = token("root", 2);
    let url = ws_url(
        &app,
        &format!("/ws/v2/consumer/persistent/public/default/expiring/s?subscriptionType=Shared&token={t}"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.expect("handshake with a valid token");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let next = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("session still open 15 s after the token expired");
        match next {
            Some(Ok(Message::Close(frame))) => {
                let frame = frame.expect("close frame with a code");
                assert_eq!(u16::from(frame.code), 1008);
                assert!(frame.reason.contains("expired"), "{}", frame.reason);
                return;
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => panic!("connection dropped without a close frame"),
        }
    }
}
