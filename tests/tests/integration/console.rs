//! The endpoints the web console stands on, against the real broker: `auth/whoami`,
//! `auth/allowed` (the real authorizer, for the caller or for another role), message browsing
//! without a subscription, the broker's runtime configuration and load report, and the console
//! fallback (HTML for console paths, the API's JSON 404 elsewhere).

use crate::common::ws::{WsClient, reader_url};
use crate::common::{create_partitioned, create_topic, err, ok, produce, produce_payloads};
use magnetar_tests::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SECRET: &str = "magnetar-console-test-secret-0123456789abcdef";

async fn call(
    app: &TestApp,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    crate::common::call_as(&app.base, token, method, path, body).await
}

fn token(role: &str) -> String {
    magnetar_tests::hs256_token(SECRET, role, 3600)
}

fn payloads(page: &Value) -> Vec<String> {
    use base64::Engine;
    page["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| {
            let b =
                base64::engine::general_purpose::STANDARD.decode(m["payload"].as_str().expect("payload")).expect("b64");
            String::from_utf8(b).expect("utf8")
        })
        .collect()
}

#[tokio::test]
async fn whoami_says_who_the_caller_is() {
    let open = TestApp::standalone().await;
    let who = ok(open.get("/admin/v2/auth/whoami").await);
    assert_eq!(
        who,
        json!({"authenticationEnabled": false, "role": null, "roles": [], "superuser": true, "expiresAt": null})
    );

    let app = TestApp::with_auth(magnetar_tests::hs256_auth(SECRET)).await;
    err(call(&app, None, Method::GET, "/admin/v2/auth/whoami", None).await, 401);
    let who = ok(call(&app, Some(&token("alice")), Method::GET, "/admin/v2/auth/whoami", None).await);
    assert_eq!(who["authenticationEnabled"], true);
    assert_eq!(who["role"], "alice");
    assert_eq!(who["roles"], json!(["alice"]));
    assert_eq!(who["superuser"], false);
    assert!(who["expiresAt"].as_i64().is_some_and(|e| e > magnetar_core::now_millis() / 1000), "{who}");
    let root = ok(call(&app, Some(&token("root")), Method::GET, "/admin/v2/auth/whoami", None).await);
    assert_eq!(root["superuser"], true);
}

#[tokio::test]
async fn allowed_answers_from_the_real_authorizer() {
    let app = TestApp::with_auth(magnetar_tests::hs256_auth(SECRET)).await;
    let root = token("root");
    ok(call(&app, Some(&root), Method::PUT, "/admin/v2/tenants/acme", Some(json!({"adminRoles": ["acme-admin"]})))
        .await);
    ok(call(&app, Some(&root), Method::PUT, "/admin/v2/namespaces/acme/orders", None).await);
    ok(call(&app, Some(&root), Method::PUT, "/admin/v2/tenants/other", Some(json!({"adminRoles": ["other-admin"]})))
        .await);
    ok(call(
        &app,
        Some(&root),
        Method::POST,
        "/admin/v2/namespaces/acme/orders/permissions/reader",
        Some(json!(["consume"])),
    )
    .await);
    let checks = json!([
        {"operation": "CreateTopic", "resource": "acme/orders"},
        {"operation": "Consume", "resource": "persistent://acme/orders/t", "subscription": "s"},
        {"operation": "Produce", "resource": "persistent://acme/orders/t"},
        {"operation": "CreateTenant", "resource": ""},
        {"operation": "GetTenant", "resource": "acme"},
    ]);
    let ask = |who: String, role: Option<&str>| {
        let mut body = json!({ "checks": checks.clone() });
        if let Some(r) = role {
            body["role"] = json!(r);
        }
        let app = &app;
        async move { call(app, Some(&who), Method::POST, "/admin/v2/auth/allowed", Some(body)).await }
    };
    assert_eq!(ok(ask(token("acme-admin"), None).await)["results"], json!([true, true, true, false, true]));
    assert_eq!(ok(ask(token("reader"), None).await)["results"], json!([false, true, false, false, false]));
    assert_eq!(ok(ask(root.clone(), None).await)["results"], json!([true, true, true, true, true]));

    // Another role: a tenant admin may ask about its own tenant only; cluster checks need a superuser.
    let tenant_checks = json!({"role": "reader", "checks": [
        {"operation": "Consume", "resource": "persistent://acme/orders/t", "subscription": "s"},
        {"operation": "Produce", "resource": "persistent://acme/orders/t"}]});
    let r =
        ok(call(&app, Some(&token("acme-admin")), Method::POST, "/admin/v2/auth/allowed", Some(tenant_checks.clone()))
            .await);
    assert_eq!(r["results"], json!([true, false]));
    err(
        call(&app, Some(&token("other-admin")), Method::POST, "/admin/v2/auth/allowed", Some(tenant_checks.clone()))
            .await,
        403,
    );
    err(call(&app, Some(&token("reader")), Method::POST, "/admin/v2/auth/allowed", Some(tenant_checks)).await, 403);
    err(ask(token("acme-admin"), Some("reader")).await, 403);
    assert_eq!(ok(ask(root.clone(), Some("root")).await)["results"], json!([true, true, true, true, true]));

    // Bad requests name what is wrong.
    let bad = |checks: Value| json!({ "checks": checks });
    let reason = err(
        call(
            &app,
            Some(&root),
            Method::POST,
            "/admin/v2/auth/allowed",
            Some(bad(json!([{"operation": "Fly", "resource": ""}]))),
        )
        .await,
        400,
    );
    assert!(reason.contains("Fly"), "{reason}");
    err(
        call(
            &app,
            Some(&root),
            Method::POST,
            "/admin/v2/auth/allowed",
            Some(bad(json!([{"operation": "GetTenant", "resource": "acme", "subscription": "s"}]))),
        )
        .await,
        400,
    );
    let many: Vec<Value> = (0..201).map(|_| json!({"operation": "GetTenant", "resource": "acme"})).collect();
    let reason =
        err(call(&app, Some(&root), Method::POST, "/admin/v2/auth/allowed", Some(bad(json!(many)))).await, 400);
    assert!(reason.contains("200"), "{reason}");
    err(call(&app, None, Method::POST, "/admin/v2/auth/allowed", Some(bad(json!([])))).await, 401);
}

#[tokio::test]
async fn browsing_reads_from_every_position_without_a_subscription() {
    let app = TestApp::standalone().await;
    create_topic(&app, "browse").await;
    let t0 = magnetar_core::now_millis();
    let msgs: Vec<Value> = (0..30)
        .map(|i| json!({"payload": format!("m{i}"), "key": format!("k{i}"), "properties": {"i": i.to_string()}}))
        .collect();
    let ids = produce(&app, "browse", msgs).await;
    let base = "/admin/v2/persistent/public/default/browse/messages";

    let first = ok(app.get(&format!("{base}?from=earliest&limit=10")).await);
    assert_eq!(payloads(&first), (0..10).map(|i| format!("m{i}")).collect::<Vec<_>>());
    let m0 = &first["messages"][0];
    assert_eq!(m0["messageId"], json!(ids[0]));
    assert_eq!(m0["key"], "k0");
    assert_eq!(m0["properties"], json!({"i": "0"}));
    assert_eq!(m0["partition"], -1);
    assert_eq!(m0["size"], 2);
    assert!(m0["publishTime"].as_str().is_some_and(|t| t.contains('T')), "{m0}");

    // Paging with `next` covers everything once, then says there is no more.
    let next = first["next"].as_str().expect("next").to_string();
    let second = ok(app.get(&format!("{base}?from={next}&limit=25")).await);
    assert_eq!(payloads(&second), (10..30).map(|i| format!("m{i}")).collect::<Vec<_>>());
    assert_eq!(second["next"], Value::Null);

    let last = ok(app.get(&format!("{base}?from=latest-3")).await);
    assert_eq!(payloads(&last), vec!["m27", "m28", "m29"]);
    let at = ok(app.get(&format!("{base}?from={}&limit=2", ids[12])).await);
    assert_eq!(payloads(&at), vec!["m12", "m13"]);
    let by_time = ok(app.get(&format!("{base}?from=time:{t0}&limit=1")).await);
    assert_eq!(payloads(&by_time), vec!["m0"]);
    let future = ok(app.get(&format!("{base}?from=time:{}", t0 + 3_600_000)).await);
    assert_eq!(future["messages"], json!([]));

    // Nothing was created or moved.
    assert_eq!(ok(app.get("/admin/v2/persistent/public/default/browse/subscriptions").await), json!([]));

    err(app.get(&format!("{base}?from=yesterday")).await, 400);
    err(app.get(&format!("{base}?limit=501")).await, 400);
    err(app.get(&format!("{base}?limit=0")).await, 400);
    err(app.get("/admin/v2/persistent/public/default/missing/messages").await, 404);
}

#[tokio::test]
async fn browsing_a_partitioned_topic_merges_partitions_by_publish_time() {
    let app = TestApp::standalone().await;
    create_partitioned(&app, "pbrowse", 3).await;
    for i in 0..12 {
        // One message per call: publish times strictly increase across partitions.
        produce(&app, "pbrowse", vec![json!({"payload": format!("p{i}"), "key": format!("key-{i}")})]).await;
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let base = "/admin/v2/persistent/public/default/pbrowse/messages";
    let page = ok(app.get(&format!("{base}?from=earliest&limit=5")).await);
    assert_eq!(payloads(&page), (0..5).map(|i| format!("p{i}")).collect::<Vec<_>>());
    let next = page["next"].as_str().expect("next");
    let rest = ok(app.get(&format!("{base}?from={next}&limit=100")).await);
    assert_eq!(payloads(&rest), (5..12).map(|i| format!("p{i}")).collect::<Vec<_>>());
    assert_eq!(rest["next"], Value::Null);
    let last = ok(app.get(&format!("{base}?from=latest-4")).await);
    assert_eq!(payloads(&last), (8..12).map(|i| format!("p{i}")).collect::<Vec<_>>());

    // One partition, and an id naming a partition reads that partition.
    let p1 = ok(app.get(&format!("{base}?from=earliest&partition=1&limit=100")).await);
    let all_p1 = p1["messages"].as_array().expect("messages");
    assert!(!all_p1.is_empty() && all_p1.iter().all(|m| m["partition"] == 1), "{p1}");
    let id = all_p1[0]["messageId"].as_str().expect("id");
    let from_id = ok(app.get(&format!("{base}?from={id}&limit=100")).await);
    assert_eq!(from_id["messages"], p1["messages"]);
    err(app.get(&format!("{base}?partition=7")).await, 404);
}

#[tokio::test]
async fn browsing_needs_consume() {
    let app = TestApp::with_auth(magnetar_tests::hs256_auth(SECRET)).await;
    let root = token("root");
    ok(call(&app, Some(&root), Method::PUT, "/admin/v2/tenants/acme", Some(json!({}))).await);
    ok(call(&app, Some(&root), Method::PUT, "/admin/v2/namespaces/acme/orders", None).await);
    ok(call(&app, Some(&root), Method::PUT, "/admin/v2/persistent/acme/orders/t", None).await);
    ok(call(
        &app,
        Some(&root),
        Method::POST,
        "/admin/v2/namespaces/acme/orders/permissions/consumer",
        Some(json!(["consume"])),
    )
    .await);
    ok(call(
        &app,
        Some(&root),
        Method::POST,
        "/admin/v2/namespaces/acme/orders/permissions/producer",
        Some(json!(["produce"])),
    )
    .await);
    ok(call(
        &app,
        Some(&root),
        Method::POST,
        "/topics/persistent/acme/orders/t",
        Some(json!({"messages": [{"payload": "x"}]})),
    )
    .await);
    let path = "/admin/v2/persistent/acme/orders/t/messages";
    assert_eq!(payloads(&ok(call(&app, Some(&token("consumer")), Method::GET, path, None).await)), vec!["x"]);
    err(call(&app, Some(&token("producer")), Method::GET, path, None).await, 403);
    err(call(&app, None, Method::GET, path, None).await, 401);
}

#[tokio::test]
async fn runtime_configuration_and_load_report() {
    let app = TestApp::with_auth(magnetar_tests::hs256_auth(SECRET)).await;
    let rc = ok(call(&app, Some(&token("anyone")), Method::GET, "/admin/v2/brokers/configuration/runtime", None).await);
    for key in [
        "defaultRetentionTimeInMinutes",
        "defaultRetentionSizeInMB",
        "allowAutoTopicCreation",
        "allowAutoTopicCreationType",
        "defaultNumPartitions",
        "maxMessageSize",
        "managedLedgerOffloadAutoTriggerSizeThresholdBytes",
        "managedLedgerOffloadThresholdInSeconds",
        "managedLedgerOffloadDeletionLagMs",
        "clusterName",
    ] {
        assert!(rc[key].is_string(), "{key} missing or not a string in {rc}");
    }
    assert_eq!(rc["clusterName"], "standalone");
    assert_eq!(rc["maxMessageSize"], "5242880");
    err(call(&app, None, Method::GET, "/admin/v2/brokers/configuration/runtime", None).await, 401);

    err(call(&app, Some(&token("anyone")), Method::GET, "/admin/v2/broker-stats/load-report", None).await, 403);
    let root = token("root");
    ok(call(&app, Some(&root), Method::PUT, "/admin/v2/persistent/public/default/lr", None).await);
    ok(call(
        &app,
        Some(&root),
        Method::POST,
        "/topics/persistent/public/default/lr",
        Some(json!({"messages": [{"payload": "hello"}]})),
    )
    .await);
    let r = ok(call(&app, Some(&root), Method::GET, "/admin/v2/broker-stats/load-report", None).await);
    assert!(r["numTopics"].as_u64().is_some_and(|n| n >= 1), "{r}");
    assert!(r["storageSize"].as_u64().is_some_and(|n| n > 0), "{r}");
    assert_eq!(
        r["localStorageSize"].as_u64().unwrap() + r["offloadedStorageSize"].as_u64().unwrap(),
        r["storageSize"].as_u64().unwrap()
    );
}

#[tokio::test]
async fn console_paths_get_html_and_api_paths_keep_the_json_404() {
    let app = TestApp::standalone().await;
    for path in ["/", "/tenants/acme/namespaces/orders", "/signin"] {
        let resp = app.client.get(app.url(path)).send().await.expect("request");
        assert_eq!(resp.status(), 200, "{path}");
        let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        assert!(ct.starts_with("text/html"), "{path}: {ct}");
        let body = resp.text().await.expect("body");
        assert!(body.contains("<html"), "{path}: {body}");
    }
    for path in ["/admin/v2/nope", "/topics/nope", "/ws/nope", "/lookup/nope", "/metrics/nope"] {
        let reason = err(app.get(path).await, 404);
        assert!(reason.contains("no such endpoint"), "{path}: {reason}");
    }
    // Not GET: never the console.
    err(app.post("/tenants", None).await, 404);
    let head = app.client.head(app.url("/tenants")).send().await.expect("request");
    assert_eq!(head.status(), 200);
}

/// The console's live tail asks the reader to sample (`maxMessagesPerSecond`): it gets at most
/// that many messages a second and a count of the rest, so it keeps up with any rate and never
/// holds the reader back.
#[tokio::test]
async fn a_sampling_reader_sends_at_most_its_rate_and_counts_the_rest() {
    let app = TestApp::standalone().await;
    create_topic(&app, "busy").await;
    produce_payloads(&app, "busy", &(0..100).map(|i| format!("m{i}")).collect::<Vec<_>>()).await;
    let url = reader_url(&app.base, "busy", "messageId=earliest&maxMessagesPerSecond=10");
    let mut reader = WsClient::connect(&url).await;
    let (mut messages, mut skipped) = (0u64, 0u64);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while messages + skipped < 100 && tokio::time::Instant::now() < deadline {
        let Some(frame) = reader.recv_within(std::time::Duration::from_millis(500)).await else { continue };
        if frame["type"] == "skipped" {
            skipped += frame["count"].as_u64().expect("count");
        } else {
            messages += 1;
            reader.ack(frame["messageId"].as_str().expect("id")).await;
        }
    }
    assert_eq!(messages + skipped, 100, "every message is either sent or counted");
    assert!(messages <= 20, "at most 10 a second over the test's two windows: {messages}");
    assert!(skipped >= 80, "{skipped}");
    reader.close().await;
}
