//! Tokens from an OpenID Connect provider (Pulsar's `AuthenticationProviderOpenID`), as Pulsar
//! clients' OAuth2 authentication obtains them: the Python client gets a token from the
//! provider's token endpoint (client credentials) and the broker verifies it with the keys the
//! provider publishes, fetched through its discovery document; HTTP callers with such tokens
//! too; a key rotation is followed; tokens of other issuers, other audiences, unpublished keys
//! or past their expiry are refused.
//!
//! No identity provider can be installed on the test machine, so the provider is a minimal one
//! written here: discovery document, JSON Web Key Set and a client-credentials token endpoint,
//! over real HTTP on a loopback port, its RSA keys made by `openssl` per run.

use axum::extract::{Form, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use magnetar_tests::{TestApp, bearer_client, hs256_auth, hs256_token};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const AUDIENCE: &str = "magnetar-test";
const SECRET: &str = "openid-test-secret-at-least-32-bytes!";

/// An RSA key the provider signs with, and its public half as a JWK.
struct Key {
    kid: String,
    signing: EncodingKey,
    jwk: Value,
}

fn rsa_key(dir: &std::path::Path, kid: &str) -> Key {
    let pem = dir.join(format!("{kid}.pem"));
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl").args(args).output().expect("openssl (apt install openssl)");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    run(&["genrsa", "-out", pem.to_str().expect("utf-8 path"), "2048"]);
    let modulus = String::from_utf8(run(&["rsa", "-in", pem.to_str().expect("path"), "-noout", "-modulus"])).unwrap();
    let hex = modulus.trim().strip_prefix("Modulus=").expect("Modulus=");
    let n: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    Key {
        kid: kid.to_string(),
        signing: EncodingKey::from_rsa_pem(&std::fs::read(&pem).unwrap()).expect("an RSA key"),
        jwk: json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64.encode(n), "e": "AQAB"}),
    }
}

/// The provider: its issuer URL, the keys it publishes (the last one signs), how often its key
/// set was fetched.
struct Provider {
    issuer: String,
    keys: Mutex<Vec<Arc<Key>>>,
    jwks_fetches: AtomicUsize,
}

impl Provider {
    /// A token for `sub`, signed with the current key, with `claims` added.
    fn token(&self, sub: &str, claims: Value) -> String {
        let key = self.keys.lock().unwrap().last().cloned().expect("a key");
        self.signed(&key, sub, claims)
    }

    fn signed(&self, key: &Key, sub: &str, claims: Value) -> String {
        let now = jsonwebtoken::get_current_timestamp();
        let mut body = json!({"iss": self.issuer, "sub": sub, "aud": AUDIENCE, "iat": now, "exp": now + 600});
        body.as_object_mut().unwrap().extend(claims.as_object().unwrap().clone());
        let header = Header { kid: Some(key.kid.clone()), ..Header::new(Algorithm::RS256) };
        jsonwebtoken::encode(&header, &body, &key.signing).expect("sign")
    }
}

async fn start_provider(first: Key) -> Arc<Provider> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let provider = Arc::new(Provider { issuer, keys: Mutex::new(vec![Arc::new(first)]), jwks_fetches: 0.into() });
    let app = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(|State(p): State<Arc<Provider>>| async move {
                Json(json!({"issuer": p.issuer, "jwks_uri": format!("{}/keys", p.issuer),
                            "token_endpoint": format!("{}/token", p.issuer)}))
            }),
        )
        .route(
            "/keys",
            get(|State(p): State<Arc<Provider>>| async move {
                p.jwks_fetches.fetch_add(1, Ordering::SeqCst);
                let keys: Vec<Value> = p.keys.lock().unwrap().iter().map(|k| k.jwk.clone()).collect();
                Json(json!({ "keys": keys }))
            }),
        )
        .route(
            "/token",
            post(|State(p): State<Arc<Provider>>, Form(form): Form<HashMap<String, String>>| async move {
                let ok = form.get("grant_type").map(String::as_str) == Some("client_credentials")
                    && form.get("client_id").map(String::as_str) == Some("billing-app")
                    && form.get("client_secret").map(String::as_str) == Some("s3cret");
                if !ok {
                    return (axum::http::StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_client"})));
                }
                let aud = form.get("audience").cloned().unwrap_or_default();
                let token = p.token("billing-app", json!({ "aud": aud }));
                (
                    axum::http::StatusCode::OK,
                    Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": 600})),
                )
            }),
        )
        .with_state(Arc::clone(&provider));
    tokio::spawn(async move { axum::serve(listener, app).await });
    provider
}

async fn produce_status(app: &TestApp, token: &str) -> (u16, Value) {
    let resp = bearer_client(token)
        .post(format!("{}/topics/persistent/public/default/oidc", app.base))
        .json(&json!({"messages": [{"payload": "x"}]}))
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn tokens_of_an_openid_provider_are_verified_with_its_published_keys() {
    let keys_dir = tempfile::tempdir().unwrap();
    let provider = start_provider(rsa_key(keys_dir.path(), "k1")).await;
    let mut auth = hs256_auth(SECRET);
    // A second allowed provider that is down (nothing listens on its port).
    let down = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    auth.openid_allowed_token_issuers = vec![provider.issuer.clone(), down.clone()];
    auth.openid_allowed_audiences = vec![AUDIENCE.into()];
    auth.openid_require_issuers_use_https = false;
    let app = TestApp::with_auth(auth).await;
    let root = hs256_token(SECRET, "root", 600);
    let grant = bearer_client(&root)
        .post(format!("{}/admin/v2/namespaces/public/default/permissions/billing-app", app.base))
        .json(&json!(["produce", "consume"]))
        .send()
        .await
        .unwrap();
    assert_eq!(grant.status(), 204);

    // The Python client's OAuth2 authentication: credentials, the provider's token endpoint,
    // then the token method over pulsar://.
    let creds = json!({"type": "client_credentials", "client_id": "billing-app", "client_secret": "s3cret",
                       "issuer_url": provider.issuer});
    let params = json!({"issuer_url": provider.issuer, "audience": AUDIENCE, "private_key":
        format!("data:application/json;base64,{}", base64::engine::general_purpose::STANDARD.encode(creds.to_string()))});
    let out = crate::pulsar_client::scenario(&app.pulsar_url(), "oauth2", "oidc", &[&params.to_string()]).await;
    assert_eq!(out["received"], json!(["a", "b", "c"]), "{out}");
    assert_eq!(provider.jwks_fetches.load(Ordering::SeqCst), 1, "fetched once, then held");

    // HTTP callers with the provider's tokens.
    let (status, body) = produce_status(&app, &provider.token("billing-app", json!({}))).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = produce_status(&app, &provider.token("stranger", json!({}))).await;
    assert_eq!(status, 403, "a valid token of a role without grants: {body}");
    for (claims, why) in [
        (json!({"aud": "another-cluster"}), "audience"),
        (json!({"exp": 1_000}), "expired"),
        (json!({"iss": "http://127.0.0.1:9"}), "an issuer not allowed: checked against the static key"),
    ] {
        let (status, body) = produce_status(&app, &provider.token("billing-app", claims)).await;
        assert_eq!(status, 401, "{why}: {body}");
    }

    // A provider that cannot be reached: 503 (retriable), not 401.
    let (status, body) = produce_status(&app, &provider.token("billing-app", json!({ "iss": down }))).await;
    assert_eq!(status, 503, "{body}");
    assert!(body["reason"].as_str().is_some_and(|r| r.contains("retry later")), "{body}");

    // The provider rotates: a new key signs, the old one is withdrawn. The first token of the
    // new key makes the broker fetch the keys again (once the 5 s since the last fetch, the
    // shortest interval between two, have passed).
    tokio::time::sleep(magnetar_auth::openid::REFETCH_AFTER).await;
    let old = provider.keys.lock().unwrap().last().cloned().unwrap();
    let next = rsa_key(keys_dir.path(), "k2");
    *provider.keys.lock().unwrap() = vec![Arc::new(next)];
    let (status, body) = produce_status(&app, &provider.token("billing-app", json!({}))).await;
    assert_eq!(status, 200, "signed with the new key: {body}");
    assert_eq!(provider.jwks_fetches.load(Ordering::SeqCst), 2);
    // A key id the provider never published: refused, and the keys are not fetched again
    // within 5 s of the last fetch.
    let key = provider.keys.lock().unwrap().last().cloned().unwrap();
    let now = jsonwebtoken::get_current_timestamp();
    let claims = json!({"iss": provider.issuer, "sub": "billing-app", "aud": AUDIENCE, "exp": now + 600});
    let forged = jsonwebtoken::encode(
        &Header { kid: Some("made-up".into()), ..Header::new(Algorithm::RS256) },
        &claims,
        &key.signing,
    )
    .unwrap();
    let (status, body) = produce_status(&app, &forged).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["reason"].as_str().is_some_and(|r| r.contains("publishes no key")), "{body}");
    assert_eq!(provider.jwks_fetches.load(Ordering::SeqCst), 2, "no fetch per made-up key id");
    // Tokens of the withdrawn key are refused.
    let (status, body) = produce_status(&app, &provider.signed(&old, "billing-app", json!({}))).await;
    assert_eq!(status, 401, "{body}");
    let stats: Value = bearer_client(&root)
        .get(format!("{}/admin/v2/persistent/public/default/oidc/stats", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["msgInCounter"], 5, "three from the client, two over HTTP: {stats}");
}
