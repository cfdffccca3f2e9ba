//! Authentication and authorization against the real broker: the authorization matrix of
//! issue 5 (roles × endpoint groups × tenants, and its WebSocket column: producer, consumer and
//! reader handshakes with the token in `?token=` and in the header), token validation (HS256,
//! RS256, expiry, nbf, signature, audience, malformed), listings and existence not leaked,
//! subscription permissions, self-service service accounts, and revocation seen by a second
//! broker process on the same PostgreSQL.

use magnetar_auth::tokens_cli::{SigningKey, create_token};
use magnetar_auth::{AuthConfig, Secret};
use magnetar_tests::{BrokerProcess, TestApp, broker_binary, fresh_postgres_database};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, http::HeaderValue};

const SECRET: &str = "magnetar-auth-test-secret-0123456789abcdef";

fn hs_config() -> AuthConfig {
    magnetar_tests::hs256_auth(SECRET)
}

fn token(role: &str) -> String {
    magnetar_tests::hs256_token(SECRET, role, 3600)
}

fn token_with(claims: &[(&str, Value)]) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
    let claims: serde_json::Map<String, Value> = claims.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    magnetar_auth::token::encode(jsonwebtoken::Algorithm::HS256, &key, &claims).expect("encode")
}

fn now() -> i64 {
    magnetar_core::now_millis() / 1000
}

async fn call(base: &str, token: Option<&str>, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    crate::common::call_as(base, token, method, path, body).await
}

#[track_caller]
fn expect(got: (StatusCode, Value), want: u16, what: &str) -> Value {
    assert_eq!(got.0.as_u16(), want, "{what}: body {}", got.1);
    if want >= 400 {
        assert!(
            got.1.get("reason").and_then(Value::as_str).is_some_and(|r| !r.is_empty()),
            "{what}: no reason in {}",
            got.1
        );
    }
    got.1
}

#[track_caller]
fn expect_ok(got: (StatusCode, Value), what: &str) -> Value {
    assert!(got.0.is_success(), "{what}: expected success, got {} {}", got.0, got.1);
    got.1
}

/// Tenants `a` and `b` (admins `admin-a`, `admin-b`), namespace `ns` and topic `t` in each,
/// `producer-a` with produce and `consumer-a` with consume on `a/ns`.
async fn given_two_tenants(app: &TestApp) {
    let root = token("root");
    let r = Some(root.as_str());
    for t in ["a", "b"] {
        let info = json!({"adminRoles": [format!("admin-{t}")], "allowedClusters": ["standalone"]});
        expect(
            call(&app.base, r, Method::PUT, &format!("/admin/v2/tenants/{t}"), Some(info)).await,
            204,
            "create tenant",
        );
        expect(call(&app.base, r, Method::PUT, &format!("/admin/v2/namespaces/{t}/ns"), None).await, 204, "create ns");
        expect(
            call(&app.base, r, Method::PUT, &format!("/admin/v2/persistent/{t}/ns/t"), None).await,
            204,
            "create topic",
        );
    }
    let grant = |role: &str, actions: Value| {
        let path = format!("/admin/v2/namespaces/a/ns/permissions/{role}");
        let base = app.base.clone();
        let root = root.clone();
        async move { expect(call(&base, Some(&root), Method::POST, &path, Some(actions)).await, 204, "grant") }
    };
    grant("producer-a", json!(["produce"])).await;
    grant("consumer-a", json!(["consume"])).await;
}

const ROLES: [&str; 7] = ["root", "admin-a", "admin-b", "producer-a", "consumer-a", "nobody", "anonymous"];

/// One endpoint group: who may call it on tenant `x`.
struct Cell {
    group: &'static str,
    method: Method,
    path: fn(&str, &str) -> String,
    body: fn() -> Option<Value>,
    allowed: fn(role: &str, tenant: &str) -> bool,
}

fn admin_of(role: &str, t: &str) -> bool {
    role == "root" || role == format!("admin-{t}")
}

fn cells() -> Vec<Cell> {
    vec![
        Cell {
            group: "clusters (discovery)",
            method: Method::GET,
            path: |_, _| "/admin/v2/clusters".into(),
            body: || None,
            allowed: |_, _| true,
        },
        Cell {
            group: "tenant read",
            method: Method::GET,
            path: |t, _| format!("/admin/v2/tenants/{t}"),
            body: || None,
            allowed: admin_of,
        },
        Cell {
            group: "tenant update (superuser)",
            method: Method::POST,
            path: |t, _| format!("/admin/v2/tenants/{t}"),
            body: || None,
            allowed: |r, _| r == "root",
        },
        Cell {
            group: "tenant create (superuser)",
            method: Method::PUT,
            path: |t, r| format!("/admin/v2/tenants/{t}-{r}-new"),
            body: || None,
            allowed: |r, _| r == "root",
        },
        Cell {
            group: "namespace policies read",
            method: Method::GET,
            path: |t, _| format!("/admin/v2/namespaces/{t}/ns"),
            body: || None,
            allowed: admin_of,
        },
        Cell {
            group: "namespace create",
            method: Method::PUT,
            path: |t, r| format!("/admin/v2/namespaces/{t}/ns-{r}"),
            body: || None,
            allowed: admin_of,
        },
        Cell {
            group: "namespace policy write",
            method: Method::POST,
            path: |t, _| format!("/admin/v2/namespaces/{t}/ns/messageTTL"),
            body: || Some(json!(30)),
            allowed: admin_of,
        },
        Cell {
            group: "namespace permissions read",
            method: Method::GET,
            path: |t, _| format!("/admin/v2/namespaces/{t}/ns/permissions"),
            body: || None,
            allowed: admin_of,
        },
        Cell {
            group: "namespace grant",
            method: Method::POST,
            path: |t, r| format!("/admin/v2/namespaces/{t}/ns/permissions/granted-by-{r}"),
            body: || Some(json!(["consume"])),
            allowed: admin_of,
        },
        Cell {
            group: "subscription permissions read",
            method: Method::GET,
            path: |t, _| format!("/admin/v2/namespaces/{t}/ns/permissions/subscription"),
            body: || None,
            allowed: admin_of,
        },
        Cell {
            group: "subscription permission grant",
            method: Method::POST,
            path: |t, r| format!("/admin/v2/namespaces/{t}/ns/permissions/subscription/granted-by-{r}"),
            body: || Some(json!(["consumer-a"])),
            allowed: admin_of,
        },
        Cell {
            group: "subscription permission revoke",
            method: Method::DELETE,
            // `listed` has a role list on both tenants (set up by the matrix test).
            path: |t, r| format!("/admin/v2/namespaces/{t}/ns/permissions/listed/{r}"),
            body: || None,
            allowed: admin_of,
        },
        Cell {
            group: "topic create",
            method: Method::PUT,
            path: |t, r| format!("/admin/v2/persistent/{t}/ns/new-{r}"),
            body: || None,
            allowed: admin_of,
        },
        Cell {
            group: "topic grant",
            method: Method::POST,
            path: |t, r| format!("/admin/v2/persistent/{t}/ns/t/permissions/granted-by-{r}"),
            body: || Some(json!(["produce"])),
            allowed: admin_of,
        },
        Cell {
            group: "topic stats (produce or consume)",
            method: Method::GET,
            path: |t, _| format!("/admin/v2/persistent/{t}/ns/t/stats"),
            body: || None,
            allowed: |r, t| admin_of(r, t) || (t == "a" && (r == "producer-a" || r == "consumer-a")),
        },
        Cell {
            group: "lookup (produce or consume)",
            method: Method::GET,
            path: |t, _| format!("/lookup/v2/topic/persistent/{t}/ns/t"),
            body: || None,
            allowed: |r, t| admin_of(r, t) || (t == "a" && (r == "producer-a" || r == "consumer-a")),
        },
        Cell {
            group: "subscription create (consume)",
            method: Method::PUT,
            path: |t, r| format!("/admin/v2/persistent/{t}/ns/t/subscription/sub-{r}"),
            body: || None,
            allowed: |r, t| admin_of(r, t) || (t == "a" && r == "consumer-a"),
        },
        Cell {
            group: "list subscriptions (consume)",
            method: Method::GET,
            path: |t, _| format!("/admin/v2/persistent/{t}/ns/t/subscriptions"),
            body: || None,
            allowed: |r, t| admin_of(r, t) || (t == "a" && r == "consumer-a"),
        },
        Cell {
            group: "REST produce",
            method: Method::POST,
            path: |t, _| format!("/topics/persistent/{t}/ns/t"),
            body: || Some(json!({"messages": [{"payload": "hello"}]})),
            allowed: |r, t| admin_of(r, t) || (t == "a" && r == "producer-a"),
        },
        // After REST produce: the topics have messages to find.
        Cell {
            group: "message id by time (consume)",
            method: Method::GET,
            path: |t, _| format!("/admin/v2/persistent/{t}/ns/t/messageid/0"),
            body: || None,
            allowed: |r, t| admin_of(r, t) || (t == "a" && r == "consumer-a"),
        },
        Cell {
            group: "backlog size (consume)",
            method: Method::PUT,
            path: |t, _| format!("/admin/v2/persistent/{t}/ns/t/backlogSize"),
            body: || Some(json!({"ledgerId": -1, "entryId": -1})),
            allowed: |r, t| admin_of(r, t) || (t == "a" && r == "consumer-a"),
        },
        Cell {
            group: "topic properties read (produce or consume)",
            method: Method::GET,
            path: |t, _| format!("/admin/v2/persistent/{t}/ns/t/properties"),
            body: || None,
            allowed: |r, t| admin_of(r, t) || (t == "a" && (r == "producer-a" || r == "consumer-a")),
        },
        Cell {
            group: "topic properties update (tenant admin)",
            method: Method::PUT,
            path: |t, _| format!("/admin/v2/persistent/{t}/ns/t/properties"),
            body: || Some(json!({"k": "v"})),
            allowed: admin_of,
        },
        Cell {
            group: "schema upload (produce)",
            method: Method::POST,
            path: |t, _| format!("/admin/v2/schemas/{t}/ns/t/schema"),
            body: || Some(json!({"type": "STRING", "schema": ""})),
            allowed: |r, t| admin_of(r, t) || (t == "a" && r == "producer-a"),
        },
        Cell {
            group: "cluster create (superuser)",
            method: Method::PUT,
            path: |t, r| format!("/admin/v2/clusters/c-{t}-{r}"),
            body: || None,
            allowed: |r, _| r == "root",
        },
        Cell {
            group: "namespace unload (superuser)",
            method: Method::PUT,
            path: |t, _| format!("/admin/v2/namespaces/{t}/ns/unload"),
            body: || None,
            allowed: |r, _| r == "root",
        },
        Cell {
            group: "HTTP consume",
            method: Method::POST,
            path: |t, r| format!("/topics/persistent/{t}/ns/t/subscriptions/pull-{r}/pull"),
            body: || Some(json!({"waitMs": 0})),
            allowed: |r, t| admin_of(r, t) || (t == "a" && r == "consumer-a"),
        },
        Cell {
            group: "service accounts",
            method: Method::GET,
            path: |t, _| format!("/admin/v2/tenants/{t}/service-accounts"),
            body: || None,
            allowed: admin_of,
        },
        Cell {
            group: "topic truncate (tenant admin)",
            method: Method::DELETE,
            path: |t, _| format!("/admin/v2/persistent/{t}/ns/t/truncate"),
            body: || None,
            allowed: admin_of,
        },
        Cell {
            group: "topic delete",
            method: Method::DELETE,
            path: |t, r| format!("/admin/v2/persistent/{t}/ns/new-{r}"),
            body: || None,
            allowed: admin_of,
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_matrix_roles_by_endpoint_groups_by_tenant() {
    let app = TestApp::with_auth(hs_config()).await;
    given_two_tenants(&app).await;
    for t in ["a", "b"] {
        expect(
            call(
                &app.base,
                Some(&token("root")),
                Method::POST,
                &format!("/admin/v2/namespaces/{t}/ns/permissions/subscription/listed"),
                Some(json!(["keeper"])),
            )
            .await,
            204,
            "role list of `listed`",
        );
    }
    let mut checked = 0;
    for cell in cells() {
        for tenant in ["a", "b"] {
            for role in ROLES {
                let tok = (role != "anonymous").then(|| token(role));
                let path = (cell.path)(tenant, role);
                let body = match (cell.group, (cell.body)()) {
                    ("tenant update (superuser)", _) => {
                        Some(json!({"adminRoles": [format!("admin-{tenant}")], "allowedClusters": ["standalone"]}))
                    }
                    (_, b) => b,
                };
                let got = call(&app.base, tok.as_deref(), cell.method.clone(), &path, body).await;
                let what = format!("{} {} as {role} on tenant {tenant} ({path})", cell.group, cell.method);
                if role == "anonymous" {
                    expect(got, 401, &what);
                } else if (cell.allowed)(role, tenant) {
                    expect_ok(got, &what);
                } else {
                    expect(got, 403, &what);
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, cells().len() * 2 * ROLES.len());
    app.stop().await;
}

/// How a WebSocket client sends its token.
#[derive(Debug, Clone, Copy)]
enum Via {
    /// `?token=<jwt>`, as browsers must.
    Query,
    /// `Authorization: Bearer <jwt>`.
    Header,
}

/// Opens a WebSocket on `path` (which may carry a query) and closes it at once; returns the
/// handshake status (101 when upgraded) and, for a refused handshake, its JSON body.
async fn ws_handshake(base: &str, path: &str, token: Option<&str>, via: Via) -> (u16, Value) {
    let mut url = format!("{}{path}", base.replacen("http://", "ws://", 1));
    if let (Some(t), Via::Query) = (token, via) {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str("token=");
        url.push_str(t);
    }
    let mut request = url.as_str().into_client_request().expect("WebSocket request");
    if let (Some(t), Via::Header) = (token, via) {
        let value = HeaderValue::from_str(&format!("Bearer {t}")).expect("header value");
        request.headers_mut().insert("Authorization", value);
    }
    let outcome = tokio::time::timeout(Duration::from_secs(10), tokio_tungstenite::connect_async(request))
        .await
        .unwrap_or_else(|_| panic!("WebSocket handshake on {path} did not complete within 10 s"));
    match outcome {
        Ok((mut ws, resp)) => {
            let _ = ws.close(None).await;
            (resp.status().as_u16(), Value::Null)
        }
        Err(tungstenite::Error::Http(resp)) => {
            let text = resp.body().as_deref().map(String::from_utf8_lossy).unwrap_or_default().to_string();
            (resp.status().as_u16(), serde_json::from_str(&text).unwrap_or(Value::String(text)))
        }
        Err(e) => panic!("WebSocket connection on {path} failed: {e}"),
    }
}

#[track_caller]
fn expect_ws(got: (u16, Value), want: u16, what: &str) {
    assert_eq!(got.0, want, "{what}: body {}", got.1);
    if want >= 400 {
        assert!(
            got.1.get("reason").and_then(Value::as_str).is_some_and(|r| !r.is_empty()),
            "{what}: no reason in {}",
            got.1
        );
    }
}

/// One WebSocket surface of the matrix: its path on tenant `t` for `role` sending the token
/// `via`, and who may open it.
struct WsCell {
    surface: &'static str,
    path: fn(t: &str, role: &str, via: Via) -> String,
    allowed: fn(role: &str, tenant: &str) -> bool,
}

fn ws_cells() -> Vec<WsCell> {
    vec![
        WsCell {
            surface: "WebSocket producer (produce)",
            path: |t, _, _| format!("/ws/v2/producer/persistent/{t}/ns/t"),
            allowed: |r, t| admin_of(r, t) || (t == "a" && r == "producer-a"),
        },
        WsCell {
            surface: "WebSocket consumer (consume)",
            // A subscription per role and transport: two exclusive consumers never collide.
            path: |t, r, via| format!("/ws/v2/consumer/persistent/{t}/ns/t/ws-{r}-{via:?}?subscriptionType=Shared"),
            allowed: |r, t| admin_of(r, t) || (t == "a" && r == "consumer-a"),
        },
        WsCell {
            surface: "WebSocket reader (consume)",
            path: |t, _, _| format!("/ws/v2/reader/persistent/{t}/ns/t"),
            allowed: |r, t| admin_of(r, t) || (t == "a" && r == "consumer-a"),
        },
    ]
}

/// The WebSocket column of the matrix: every role × tenant × surface, with the token in the
/// query and in the header: 101 when allowed, 403 with a reason when not, 401 without a token
/// or with a bad one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_matrix_websocket_handshakes() {
    let app = TestApp::with_auth(hs_config()).await;
    given_two_tenants(&app).await;
    let b = &app.base;
    let mut checked = 0;
    for cell in ws_cells() {
        for tenant in ["a", "b"] {
            for via in [Via::Query, Via::Header] {
                for role in ROLES {
                    let tok = (role != "anonymous").then(|| token(role));
                    let path = (cell.path)(tenant, role, via);
                    let what = format!("{} as {role} on tenant {tenant}, token via {via:?} ({path})", cell.surface);
                    let got = ws_handshake(b, &path, tok.as_deref(), via).await;
                    let want = if role == "anonymous" {
                        401
                    } else if (cell.allowed)(role, tenant) {
                        101
                    } else {
                        403
                    };
                    expect_ws(got, want, &what);
                    checked += 1;
                }
                // Bad tokens are 401 on every surface, through either transport.
                let expired = token_with(&[("sub", json!("root")), ("exp", json!(now() - 60))]);
                let forged = {
                    let key = jsonwebtoken::EncodingKey::from_secret(b"another-secret-another-secret-xxxxxxxx");
                    let claims = json!({"sub": "root"});
                    magnetar_auth::token::encode(jsonwebtoken::Algorithm::HS256, &key, claims.as_object().unwrap())
                        .unwrap()
                };
                for (kind, bad) in [("malformed", "not-a-jwt".to_string()), ("expired", expired), ("forged", forged)] {
                    let path = (cell.path)(tenant, "root", via);
                    let got = ws_handshake(b, &path, Some(&bad), via).await;
                    expect_ws(got, 401, &format!("{} with a {kind} token via {via:?}", cell.surface));
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, ws_cells().len() * 2 * 2 * (ROLES.len() + 3));

    // The header wins over `?token=`: a bad header is not rescued by a good query token, and a
    // good header is not spoiled by a bad one. `?token=Bearer <jwt>` is accepted too.
    let consumer = "/ws/v2/consumer/persistent/a/ns/t/precedence?subscriptionType=Shared";
    let root = token("root");
    let mut request =
        format!("{}{consumer}&token={root}", b.replacen("http://", "ws://", 1)).into_client_request().unwrap();
    request.headers_mut().insert("Authorization", HeaderValue::from_static("Bearer not-a-jwt"));
    match tokio_tungstenite::connect_async(request).await {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 401, "bad header, good query token"),
        other => panic!("bad header, good query token: expected 401, got {:?}", other.map(|(_, r)| r.status())),
    }
    expect_ws(
        ws_handshake(b, &format!("{consumer}&token=not-a-jwt"), Some(&root), Via::Header).await,
        101,
        "good header",
    );
    expect_ws(
        ws_handshake(b, consumer, Some(&format!("Bearer%20{root}")), Via::Query).await,
        101,
        "?token=Bearer%20<jwt>",
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_show_only_what_the_caller_may_see_and_existence_is_not_leaked() {
    let app = TestApp::with_auth(hs_config()).await;
    given_two_tenants(&app).await;
    let b = &app.base;
    let get = |role: &'static str, path: String| {
        let base = b.clone();
        async move { call(&base, Some(&token(role)), Method::GET, &path, None).await }
    };
    assert_eq!(expect_ok(get("admin-a", "/admin/v2/tenants".into()).await, "tenants"), json!(["a"]));
    assert_eq!(expect_ok(get("nobody", "/admin/v2/tenants".into()).await, "tenants"), json!([]));
    let all = expect_ok(get("root", "/admin/v2/tenants".into()).await, "tenants");
    assert!(all.as_array().unwrap().len() >= 2, "{all}");
    assert_eq!(expect_ok(get("producer-a", "/admin/v2/namespaces/a".into()).await, "ns"), json!(["a/ns"]));
    assert_eq!(
        expect_ok(get("consumer-a", "/admin/v2/namespaces/a/ns/topics".into()).await, "topics"),
        json!(["persistent://a/ns/t"])
    );

    // A topic-level grant shows just that topic.
    let root = token("root");
    expect(call(b, Some(&root), Method::PUT, "/admin/v2/persistent/a/ns/other", None).await, 204, "topic");
    expect(
        call(b, Some(&root), Method::POST, "/admin/v2/persistent/a/ns/t/permissions/reader", Some(json!(["consume"])))
            .await,
        204,
        "topic grant",
    );
    assert_eq!(
        expect_ok(get("reader", "/admin/v2/persistent/a/ns".into()).await, "topics"),
        json!(["persistent://a/ns/t"])
    );
    let perms = expect_ok(get("root", "/admin/v2/persistent/a/ns/t/permissions".into()).await, "perms");
    assert_eq!(perms["reader"], json!(["consume"]));
    assert_eq!(perms["producer-a"], json!(["produce"]));

    // The same 403 for what exists and what does not, for a role without access.
    for path in [
        "/admin/v2/namespaces/a",
        "/admin/v2/namespaces/ghost",
        "/admin/v2/namespaces/a/ns/topics",
        "/admin/v2/namespaces/a/ghost/topics",
        "/admin/v2/persistent/a/ns/t/stats",
        "/admin/v2/persistent/a/ns/ghost/stats",
        "/admin/v2/persistent/ghost/ns/t/stats",
        "/admin/v2/tenants/a",
        "/admin/v2/tenants/ghost",
        "/admin/v2/namespaces/a/ns",
        "/admin/v2/namespaces/a/ghost",
    ] {
        expect(get("admin-b", path.to_string()).await, 403, path);
        expect(get("nobody", path.to_string()).await, 403, path);
    }
    // A superuser sees the truth.
    expect(get("root", "/admin/v2/namespaces/ghost".into()).await, 404, "root, missing tenant");
    // A producer of a/ns cannot tell other namespaces of a apart either.
    expect(get("producer-a", "/admin/v2/namespaces/a/ghost".into()).await, 403, "missing ns");
    expect(get("producer-a", "/admin/v2/namespaces/a/ns".into()).await, 403, "existing ns policies");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_401_with_a_reason_that_does_not_echo_them() {
    let app = TestApp::with_auth(hs_config()).await;
    let b = &app.base;
    let path = "/admin/v2/clusters";
    expect_ok(call(b, Some(&token("anyone")), Method::GET, path, None).await, "valid token");
    let expired = token_with(&[("sub", json!("x")), ("exp", json!(now() - 60))]);
    let future = token_with(&[("sub", json!("x")), ("nbf", json!(now() + 600))]);
    let no_role = token_with(&[("name", json!("x"))]);
    let forged = {
        let key = jsonwebtoken::EncodingKey::from_secret(b"another-secret-another-secret-xxxxxxxx");
        let claims = json!({"sub": "root"});
        magnetar_auth::token::encode(jsonwebtoken::Algorithm::HS256, &key, claims.as_object().unwrap()).unwrap()
    };
    for (what, t) in [
        ("expired", expired),
        ("not yet valid", future),
        ("no role claim", no_role),
        ("wrong signature", forged),
        ("malformed", "not-a-jwt".to_string()),
        ("three junk parts", "a.b.c".to_string()),
    ] {
        let body = expect(call(b, Some(&t), Method::GET, path, None).await, 401, what);
        assert!(!body.to_string().contains(&t), "{what}: the reason echoes the token");
    }
    let resp = reqwest::Client::new()
        .get(format!("{b}{path}"))
        .header("Authorization", "Basic dXNlcjpwdw==")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "another scheme");
    expect(call(b, None, Method::GET, path, None).await, 401, "no token");
    // Health and readiness stay open; metrics need a superuser.
    assert_eq!(reqwest::get(format!("{b}/readyz")).await.unwrap().status(), 200);
    expect(call(b, None, Method::GET, "/metrics", None).await, 401, "metrics anonymous");
    expect(call(b, Some(&token("nobody")), Method::GET, "/metrics", None).await, 403, "metrics non-superuser");
    let resp = reqwest::Client::new().get(format!("{b}/metrics")).bearer_auth(token("root")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rs256_tokens_with_required_audience() {
    let (private, public) = magnetar_auth::tokens_cli::generate_key_pair(jsonwebtoken::Algorithm::RS256).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let public_path = dir.path().join("public.pem");
    std::fs::write(&public_path, &public).unwrap();
    let config = AuthConfig {
        enabled: true,
        token_public_key: Secret::new(format!("file://{}", public_path.display())),
        token_public_alg: "RS256".into(),
        token_audience: Some("magnetar".into()),
        superuser_roles: vec!["root".into()],
        ..AuthConfig::default()
    };
    let app = TestApp::with_auth(config).await;
    let mint = |aud: Option<&str>| {
        let extra: Vec<(String, String)> = aud.map(|a| ("aud".to_string(), a.to_string())).into_iter().collect();
        create_token(SigningKey::Private(&private, "RS256"), "sub", "root", Some(600), &extra).unwrap()
    };
    let path = "/admin/v2/tenants";
    expect_ok(call(&app.base, Some(&mint(Some("magnetar"))), Method::GET, path, None).await, "RS256 with audience");
    expect(call(&app.base, Some(&mint(Some("elsewhere"))), Method::GET, path, None).await, 401, "wrong audience");
    expect(call(&app.base, Some(&mint(None)), Method::GET, path, None).await, 401, "no audience");
    // An HS256 token (even signed with the public key text) is refused: no algorithm confusion.
    let confused = {
        let key = jsonwebtoken::EncodingKey::from_secret(public.as_bytes());
        let claims = json!({"sub": "root", "aud": "magnetar"});
        magnetar_auth::token::encode(jsonwebtoken::Algorithm::HS256, &key, claims.as_object().unwrap()).unwrap()
    };
    expect(call(&app.base, Some(&confused), Method::GET, path, None).await, 401, "HS256 on an RS256 broker");
    // Without a private key the broker cannot mint service-account tokens.
    let root = mint(Some("magnetar"));
    expect(call(&app.base, Some(&root), Method::PUT, "/admin/v2/tenants/acme", None).await, 204, "tenant");
    expect(
        call(&app.base, Some(&root), Method::PUT, "/admin/v2/tenants/acme/service-accounts/app", None).await,
        204,
        "sa",
    );
    expect(
        call(
            &app.base,
            Some(&root),
            Method::POST,
            "/admin/v2/tenants/acme/service-accounts/app/tokens",
            Some(json!({"expiresInSeconds": 60})),
        )
        .await,
        501,
        "mint without a signing key",
    );
    app.stop().await;
}

/// The "done when" of issue 5 over HTTP: a tenant admin creates a namespace, a topic, a service
/// account and its token, grants it produce; the application produces; it is refused
/// everything else; revoked, it stops working at once on this broker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_admin_manages_service_accounts_and_revocation_is_immediate() {
    let app = TestApp::with_auth(hs_config()).await;
    given_two_tenants(&app).await;
    let b = &app.base;
    let admin = token("admin-a");
    let a = Some(admin.as_str());
    expect(call(b, a, Method::PUT, "/admin/v2/namespaces/a/apps", None).await, 204, "namespace");
    expect(call(b, a, Method::PUT, "/admin/v2/persistent/a/apps/events", None).await, 204, "topic");
    expect(
        call(
            b,
            a,
            Method::PUT,
            "/admin/v2/tenants/a/service-accounts/ingest",
            Some(json!({"description": "ingest app"})),
        )
        .await,
        204,
        "service account",
    );
    expect(call(b, a, Method::PUT, "/admin/v2/tenants/a/service-accounts/ingest", None).await, 409, "again");
    expect(call(b, a, Method::PUT, "/admin/v2/tenants/a/service-accounts/Bad%20Name", None).await, 400, "bad name");
    expect(
        call(b, Some(&token("admin-b")), Method::PUT, "/admin/v2/tenants/a/service-accounts/evil", None).await,
        403,
        "other admin",
    );
    let account = expect_ok(call(b, a, Method::GET, "/admin/v2/tenants/a/service-accounts/ingest", None).await, "get");
    assert_eq!(account["role"], "ingest@a");
    let minted = expect_ok(
        call(
            b,
            a,
            Method::POST,
            "/admin/v2/tenants/a/service-accounts/ingest/tokens",
            Some(json!({"expiresInSeconds": 3600})),
        )
        .await,
        "mint",
    );
    let sa_token = minted["token"].as_str().expect("token").to_string();
    let id = minted["id"].as_str().expect("id").to_string();
    let listed =
        expect_ok(call(b, a, Method::GET, "/admin/v2/tenants/a/service-accounts/ingest/tokens", None).await, "list");
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], json!(id));
    assert!(!listed.to_string().contains(&sa_token), "listing shows the token text");
    expect(
        call(b, a, Method::POST, "/admin/v2/namespaces/a/apps/permissions/ingest@a", Some(json!(["produce"]))).await,
        204,
        "grant",
    );
    let s = Some(sa_token.as_str());
    let produce = json!({"messages": [{"payload": "e1"}]});
    expect_ok(call(b, s, Method::POST, "/topics/persistent/a/apps/events", Some(produce.clone())).await, "produce");
    expect(
        call(b, s, Method::POST, "/topics/persistent/a/apps/events/subscriptions/x/pull", Some(json!({}))).await,
        403,
        "consume",
    );
    expect(call(b, s, Method::PUT, "/admin/v2/persistent/a/apps/other", None).await, 403, "create topic");
    expect(call(b, s, Method::POST, "/topics/persistent/b/ns/t", Some(produce.clone())).await, 403, "other tenant");
    expect(call(b, s, Method::GET, "/admin/v2/tenants/a/service-accounts", None).await, 403, "manage accounts");

    expect(
        call(b, a, Method::DELETE, &format!("/admin/v2/tenants/a/service-accounts/ingest/tokens/{id}"), None).await,
        204,
        "revoke",
    );
    expect(call(b, s, Method::POST, "/topics/persistent/a/apps/events", Some(produce.clone())).await, 401, "revoked");
    expect(
        call(b, a, Method::DELETE, &format!("/admin/v2/tenants/a/service-accounts/ingest/tokens/{id}"), None).await,
        404,
        "again",
    );

    // Deleting the account revokes all of its tokens.
    let minted = expect_ok(
        call(
            b,
            a,
            Method::POST,
            "/admin/v2/tenants/a/service-accounts/ingest/tokens",
            Some(json!({"expiresInSeconds": 60})),
        )
        .await,
        "mint",
    );
    let t2 = minted["token"].as_str().unwrap().to_string();
    expect_ok(
        call(b, Some(&t2), Method::POST, "/topics/persistent/a/apps/events", Some(produce.clone())).await,
        "produce",
    );
    expect(
        call(b, a, Method::DELETE, "/admin/v2/tenants/a/service-accounts/ingest", None).await,
        204,
        "delete account",
    );
    expect(
        call(b, Some(&t2), Method::POST, "/topics/persistent/a/apps/events", Some(produce)).await,
        401,
        "account deleted",
    );
    expect(
        call(
            b,
            a,
            Method::POST,
            "/admin/v2/tenants/a/service-accounts/ingest/tokens",
            Some(json!({"expiresInSeconds": 60})),
        )
        .await,
        404,
        "deleted account",
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_prefix_mode_requires_the_role_as_prefix() {
    let app = TestApp::with_auth(hs_config()).await;
    given_two_tenants(&app).await;
    let b = &app.base;
    let root = token("root");
    expect(
        call(b, Some(&root), Method::POST, "/admin/v2/namespaces/a/ns/subscriptionAuthMode", Some(json!("Prefix")))
            .await,
        204,
        "mode",
    );
    expect(
        call(b, Some(&root), Method::POST, "/admin/v2/namespaces/a/ns/subscriptionAuthMode", Some(json!("Other")))
            .await,
        400,
        "bad mode",
    );
    let c = token("consumer-a");
    let pull = |sub: &str| format!("/topics/persistent/a/ns/t/subscriptions/{sub}/pull");
    expect_ok(call(b, Some(&c), Method::POST, &pull("consumer-a-1"), Some(json!({}))).await, "prefixed");
    expect(call(b, Some(&c), Method::POST, &pull("someone-else"), Some(json!({}))).await, 403, "not prefixed");
    // Revoking the namespace grant takes the consume right away.
    expect(
        call(b, Some(&root), Method::DELETE, "/admin/v2/namespaces/a/ns/permissions/consumer-a", None).await,
        204,
        "revoke",
    );
    expect(call(b, Some(&c), Method::POST, &pull("consumer-a-1"), Some(json!({}))).await, 403, "grant revoked");
    expect(
        call(b, Some(&root), Method::POST, "/admin/v2/namespaces/a/ns/permissions/consumer-a", Some(json!(["write"])))
            .await,
        400,
        "bad action",
    );
    app.stop().await;
}

/// Pulsar's subscription permissions: a tenant admin lists the roles that may consume a
/// subscription; only they (with a `consume` grant) may then use it, over HTTP, WebSocket and
/// the subscription admin operations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_permissions_limit_a_subscription_to_its_roles() {
    let app = TestApp::with_auth(hs_config()).await;
    given_two_tenants(&app).await;
    let b = &app.base;
    let admin = token("admin-a");
    let a = Some(admin.as_str());
    let perms = "/admin/v2/namespaces/a/ns/permissions";
    expect(call(b, a, Method::POST, &format!("{perms}/consumer-a2"), Some(json!(["consume"]))).await, 204, "grant");
    assert_eq!(expect_ok(call(b, a, Method::GET, &format!("{perms}/subscription"), None).await, "none yet"), json!({}));

    // The list replaces, deduplicates and sorts.
    let grant = |sub: &str| format!("{perms}/subscription/{sub}");
    expect(call(b, a, Method::POST, &grant("billing"), Some(json!(["x", "y"]))).await, 204, "first list");
    expect(
        call(b, a, Method::POST, &grant("billing"), Some(json!(["producer-a", "consumer-a", "consumer-a"]))).await,
        204,
        "replacing list",
    );
    assert_eq!(
        expect_ok(call(b, a, Method::GET, &format!("{perms}/subscription"), None).await, "lists"),
        json!({"billing": ["consumer-a", "producer-a"]})
    );
    // Stored in the namespace policies, as Pulsar's `auth_policies.subscription_auth_roles`.
    let policies = expect_ok(call(b, a, Method::GET, "/admin/v2/namespaces/a/ns", None).await, "policies");
    assert_eq!(policies["auth_policies"]["subscription_auth_roles"], json!({"billing": ["consumer-a", "producer-a"]}));

    let pull = |sub: &str| format!("/topics/persistent/a/ns/t/subscriptions/{sub}/pull");
    let as_role = |role: &str| Some(token(role));
    let c = as_role("consumer-a");
    let c2 = as_role("consumer-a2");
    let p = as_role("producer-a");
    expect_ok(call(b, c.as_deref(), Method::POST, &pull("billing"), Some(json!({}))).await, "listed role");
    expect(call(b, c2.as_deref(), Method::POST, &pull("billing"), Some(json!({}))).await, 403, "unlisted role");
    expect(call(b, p.as_deref(), Method::POST, &pull("billing"), Some(json!({}))).await, 403, "listed, no consume");
    expect_ok(call(b, c2.as_deref(), Method::POST, &pull("other"), Some(json!({}))).await, "unlisted subscription");
    expect_ok(call(b, a, Method::POST, &pull("billing"), Some(json!({}))).await, "tenant admin");
    let sub_admin = "/admin/v2/persistent/a/ns/t/subscription/billing";
    expect(call(b, c2.as_deref(), Method::POST, &format!("{sub_admin}/skip_all"), None).await, 403, "skip");
    expect(call(b, c2.as_deref(), Method::GET, &format!("{sub_admin}/position/1"), None).await, 403, "peek");
    expect(call(b, c2.as_deref(), Method::DELETE, sub_admin, None).await, 403, "unsubscribe");
    expect_ok(call(b, c.as_deref(), Method::POST, &format!("{sub_admin}/skip_all"), None).await, "skip, listed");
    let ws = "/ws/v2/consumer/persistent/a/ns/t/billing?subscriptionType=Shared";
    expect_ws(ws_handshake(b, ws, c2.as_deref(), Via::Query).await, 403, "WebSocket, unlisted role");
    expect_ws(ws_handshake(b, ws, c.as_deref(), Via::Header).await, 101, "WebSocket, listed role");

    // Only tenant admins manage the lists; others cannot tell whether a namespace exists.
    for (role, want) in [("consumer-a", 403), ("admin-b", 403), ("nobody", 403), ("anonymous", 401)] {
        let t = (role != "anonymous").then(|| token(role));
        let t = t.as_deref();
        for ns in ["a/ns", "a/ghost"] {
            let base = format!("/admin/v2/namespaces/{ns}/permissions");
            expect(call(b, t, Method::GET, &format!("{base}/subscription"), None).await, want, role);
            let body = Some(json!([role]));
            expect(call(b, t, Method::POST, &format!("{base}/subscription/billing"), body).await, want, role);
            expect(call(b, t, Method::DELETE, &format!("{base}/billing/consumer-a"), None).await, want, role);
        }
    }
    let root = token("root");
    expect(
        call(b, Some(&root), Method::GET, "/admin/v2/namespaces/a/ghost/permissions/subscription", None).await,
        404,
        "missing namespace, superuser",
    );
    expect(call(b, a, Method::POST, &grant("billing"), Some(json!([""]))).await, 400, "empty role");
    // As in Pulsar, the literal `subscription` segment wins: no namespace grant to such a role.
    let (status, _) = call(b, a, Method::POST, &format!("{perms}/subscription"), Some(json!(["consume"]))).await;
    assert_eq!(status, 405, "POST .../permissions/subscription");
    expect(call(b, a, Method::POST, &grant("billing"), Some(json!("consumer-a"))).await, 400, "not a list");

    // Revoking: a role not in the list is a no-op; the last role out lifts the restriction.
    let revoke = |sub: &str, role: &str| format!("{perms}/{sub}/{role}");
    expect(call(b, a, Method::DELETE, &revoke("billing", "stranger"), None).await, 204, "not listed");
    expect(call(b, a, Method::DELETE, &revoke("billing", "consumer-a"), None).await, 204, "revoke");
    expect(call(b, c.as_deref(), Method::POST, &pull("billing"), Some(json!({}))).await, 403, "revoked role");
    expect(call(b, c2.as_deref(), Method::POST, &pull("billing"), Some(json!({}))).await, 403, "still unlisted");
    expect(call(b, a, Method::DELETE, &revoke("billing", "producer-a"), None).await, 204, "last role");
    assert_eq!(expect_ok(call(b, a, Method::GET, &format!("{perms}/subscription"), None).await, "lists"), json!({}));
    expect_ok(call(b, c2.as_deref(), Method::POST, &pull("billing"), Some(json!({}))).await, "open again");
    expect(call(b, a, Method::DELETE, &revoke("billing", "producer-a"), None).await, 404, "no list");
    // An empty list lifts the restriction too.
    expect(call(b, a, Method::POST, &grant("audit"), Some(json!(["consumer-a"]))).await, 204, "audit list");
    expect(call(b, c2.as_deref(), Method::POST, &pull("audit"), Some(json!({}))).await, 403, "audit, unlisted");
    expect(call(b, a, Method::POST, &grant("audit"), Some(json!([]))).await, 204, "empty list");
    expect_ok(call(b, c2.as_deref(), Method::POST, &pull("audit"), Some(json!({}))).await, "audit open");

    // With `Prefix` mode both rules apply: listed and prefixed.
    expect(
        call(b, a, Method::POST, "/admin/v2/namespaces/a/ns/subscriptionAuthMode", Some(json!("Prefix"))).await,
        204,
        "mode",
    );
    expect(call(b, a, Method::POST, &grant("consumer-a-x"), Some(json!(["consumer-a2"]))).await, 204, "prefixed list");
    expect(
        call(b, c.as_deref(), Method::POST, &pull("consumer-a-x"), Some(json!({}))).await,
        403,
        "prefixed, unlisted",
    );
    expect(
        call(b, c2.as_deref(), Method::POST, &pull("consumer-a-x"), Some(json!({}))).await,
        403,
        "listed, not prefixed",
    );
    expect_ok(call(b, c.as_deref(), Method::POST, &pull("consumer-a-y"), Some(json!({}))).await, "prefixed, no list");
    app.stop().await;
}

fn broker_config(pg_url: &str, objects: &std::path::Path) -> String {
    format!(
        "[metadata]\nurl = \"{pg_url}\"\n\n[object_store]\nkind = \"local\"\nroot = \"{}\"\n\n[auth]\nenabled = true\ntoken_secret_key = \"{SECRET}\"\nsuperuser_roles = [\"root\"]\nrevocation_poll_interval_ms = 500\n",
        objects.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_is_seen_by_a_second_broker_on_the_same_postgres() {
    let pg = fresh_postgres_database().await;
    let dir = tempfile::tempdir().unwrap();
    let objects = dir.path().join("objects");
    let one = BrokerProcess::start_cluster(&dir.path().join("one"), &broker_config(&pg, &objects), &[]);
    let two = BrokerProcess::start_cluster(&dir.path().join("two"), &broker_config(&pg, &objects), &[]);
    let root = token("root");
    let r = Some(root.as_str());
    expect(
        call(&one.base, r, Method::PUT, "/admin/v2/tenants/acme", Some(json!({"adminRoles": ["acme-admin"]}))).await,
        204,
        "tenant",
    );
    expect(call(&one.base, r, Method::PUT, "/admin/v2/namespaces/acme/apps", None).await, 204, "ns");
    let admin = token("acme-admin");
    let a = Some(admin.as_str());
    expect(call(&one.base, a, Method::PUT, "/admin/v2/tenants/acme/service-accounts/app", None).await, 204, "sa");
    expect(
        call(
            &one.base,
            a,
            Method::POST,
            "/admin/v2/namespaces/acme/apps/permissions/app@acme",
            Some(json!(["produce"])),
        )
        .await,
        204,
        "grant",
    );
    let minted = expect_ok(
        call(
            &one.base,
            a,
            Method::POST,
            "/admin/v2/tenants/acme/service-accounts/app/tokens",
            Some(json!({"expiresInSeconds": 600})),
        )
        .await,
        "mint",
    );
    let sa = minted["token"].as_str().unwrap().to_string();
    let id = minted["id"].as_str().unwrap().to_string();
    // Broker two accepts the token minted by broker one (same key, same metadata).
    assert_eq!(
        expect_ok(call(&two.base, Some(&sa), Method::GET, "/admin/v2/namespaces/acme", None).await, "list"),
        json!(["acme/apps"])
    );

    expect(
        call(&one.base, a, Method::DELETE, &format!("/admin/v2/tenants/acme/service-accounts/app/tokens/{id}"), None)
            .await,
        204,
        "revoke",
    );
    let revoked_at = Instant::now();
    loop {
        let (status, body) = call(&two.base, Some(&sa), Method::GET, "/admin/v2/namespaces/acme", None).await;
        if status == 401 {
            break;
        }
        assert_eq!(status, 200, "{body}");
        assert!(
            revoked_at.elapsed() < Duration::from_secs(5),
            "broker two still accepts a token revoked on broker one"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Tokens never reach the logs.
    for b in [&one, &two] {
        let log = std::fs::read_to_string(b.data_dir.with_extension("log")).unwrap_or_default();
        assert!(!log.contains(&sa) && !log.contains(&root), "a token appears in {}", b.data_dir.display());
    }
}

#[test]
fn broker_refuses_to_start_without_authentication_unless_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("magnetar.toml");
    std::fs::write(
        &file,
        format!(
            "data_dir = \"{}\"\nhttp_addr = \"127.0.0.1:0\"\n[metadata]\nurl = \"postgres://127.0.0.1:1/none\"\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(broker_binary()).args(["broker", "--config"]).arg(&file).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refuses to run without authentication") && stderr.contains("--insecure"), "{stderr}");
}

#[test]
fn tokens_cli_creates_keys_and_validates_tokens() {
    let bin = broker_binary();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&bin).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let secret = run(&["tokens", "create-secret-key"]);
    let key = format!("data:;base64,{secret}");
    let tok = run(&["tokens", "create", "--secret-key", &key, "--subject", "ops", "--expiry-time", "1h"]);
    assert!(run(&["tokens", "show", &tok]).contains("\"sub\": \"ops\""));
    assert!(run(&["tokens", "validate", &tok, "--secret-key", &key]).contains("ops"));
    let other = format!("data:;base64,{}", run(&["tokens", "create-secret-key"]));
    let out =
        std::process::Command::new(&bin).args(["tokens", "validate", &tok, "--secret-key", &other]).output().unwrap();
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains(&tok), "the error echoes the token");
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = (dir.path().join("k.pem"), dir.path().join("k.pub"));
    run(&[
        "tokens",
        "create-key-pair",
        "--algorithm",
        "ES256",
        "--output-private-key",
        private.to_str().unwrap(),
        "--output-public-key",
        public.to_str().unwrap(),
    ]);
    let priv_spec = format!("file:{}", private.display());
    let pub_spec = format!("file:{}", public.display());
    let tok = run(&["tokens", "create", "--private-key", &priv_spec, "--algorithm", "ES256", "--subject", "svc"]);
    assert!(run(&["tokens", "validate", &tok, "--public-key", &pub_spec, "--algorithm", "ES256"]).contains("svc"));
}
