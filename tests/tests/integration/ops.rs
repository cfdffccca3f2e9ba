//! Operations surfaces: health and readiness, the OpenAPI description and its interactive docs,
//! and the fallback for unknown paths (metrics have their own suite, `metrics.rs`).

use crate::common;

use common::*;
use magnetar_tests::TestApp;
use serde_json::Value;
use std::collections::BTreeSet;

#[tokio::test]
async fn health_readiness_and_status_page_answer_200() {
    let app = TestApp::standalone().await;
    for path in ["/healthz", "/readyz", "/status.html"] {
        let resp = app.client.get(app.url(path)).send().await.expect("request");
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(resp.text().await.expect("text"), "OK", "{path}");
    }
}

#[tokio::test]
async fn unknown_path_returns_404_with_a_reason() {
    let app = TestApp::standalone().await;
    let reason = err(app.get("/admin/v2/nothing/here").await, 404);
    assert!(reason.contains("/admin/v2/nothing/here"), "{reason}");
    err(app.get("/admin/v2/non-persistent/public/default/t/stats").await, 404);
}

// ---------------------------------------------------------------- OpenAPI

/// Pulsar admin paths tools call, with their methods: the description must keep them.
const PULSAR_PATHS: &[(&str, &str)] = &[
    ("get", "/admin/v2/clusters"),
    ("get", "/admin/v2/brokers/health"),
    ("get", "/admin/v2/tenants"),
    ("put", "/admin/v2/tenants/{tenant}"),
    ("get", "/admin/v2/namespaces/{tenant}"),
    ("put", "/admin/v2/namespaces/{tenant}/{namespace}"),
    ("post", "/admin/v2/namespaces/{tenant}/{namespace}/retention"),
    ("post", "/admin/v2/namespaces/{tenant}/{namespace}/messageTTL"),
    ("post", "/admin/v2/namespaces/{tenant}/{namespace}/backlogQuota"),
    ("post", "/admin/v2/namespaces/{tenant}/{namespace}/permissions/{role}"),
    ("post", "/admin/v2/namespaces/{tenant}/{namespace}/publishRate"),
    ("post", "/admin/v2/namespaces/{tenant}/{namespace}/maxProducersPerTopic"),
    ("post", "/admin/v2/namespaces/{tenant}/{namespace}/inactiveTopicPolicies"),
    ("post", "/admin/v2/namespaces/{tenant}/{namespace}/subscriptionExpirationTime"),
    ("get", "/admin/v2/namespaces/{tenant}/{namespace}/subscriptionAuthMode"),
    ("get", "/admin/v2/persistent/{tenant}/{namespace}/{topic}/publishRate"),
    ("delete", "/admin/v2/persistent/{tenant}/{namespace}/{topic}/maxConsumers"),
    ("post", "/admin/v2/persistent/{tenant}/{namespace}/{topic}/retention"),
    ("post", "/admin/v2/persistent/{tenant}/{namespace}/{topic}/messageTTL"),
    ("get", "/admin/v2/persistent/{tenant}/{namespace}/{topic}/maxMessageSize"),
    ("post", "/admin/v2/persistent/{tenant}/{namespace}/{topic}/backlogQuota"),
    ("get", "/admin/v2/persistent/{tenant}/{namespace}/{topic}/backlogQuotaMap"),
    ("post", "/admin/v2/persistent/{tenant}/{namespace}/{topic}/offloadPolicies"),
    ("get", "/admin/v2/persistent/{tenant}/{namespace}"),
    ("put", "/admin/v2/persistent/{tenant}/{namespace}/{topic}/partitions"),
    ("get", "/admin/v2/persistent/{tenant}/{namespace}/{topic}/stats"),
    ("get", "/admin/v2/persistent/{tenant}/{namespace}/{topic}/internalStats"),
    ("put", "/admin/v2/persistent/{tenant}/{namespace}/{topic}/subscription/{subscription}"),
    ("post", "/admin/v2/persistent/{tenant}/{namespace}/{topic}/subscription/{subscription}/resetcursor"),
    ("put", "/admin/v2/persistent/{tenant}/{namespace}/{topic}/offload"),
    ("get", "/lookup/v2/topic/persistent/{tenant}/{namespace}/{topic}"),
    ("post", "/topics/persistent/{tenant}/{namespace}/{topic}"),
    ("get", "/ws/v2/consumer/persistent/{tenant}/{namespace}/{topic}/{subscription}"),
];

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

async fn served_openapi(app: &TestApp) -> Value {
    let resp = app.client.get(app.url("/openapi.json")).send().await.expect("request");
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().expect("ascii").starts_with("application/json"));
    serde_json::from_str(&resp.text().await.expect("text")).expect("/openapi.json is JSON")
}

/// What a `$ref` inside the document points at.
fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    doc.pointer(reference.strip_prefix('#')?)
}

/// Every `$ref` under `v`.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get("$ref") {
                out.push(r.clone());
            }
            o.values().for_each(|x| refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

/// The shape OpenAPI 3.1 requires and the description promises: each operation tagged (with a
/// declared tag), summarized, with a unique id, its path parameters declared, a success answer,
/// the `Error` schema on every error answer, and every `$ref` resolving.
#[tokio::test]
async fn openapi_is_a_complete_openapi_3_1_document() {
    let app = TestApp::standalone().await;
    let doc = served_openapi(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["info"]["title"].as_str().is_some_and(|t| !t.is_empty()) && doc["info"]["version"].is_string());
    assert_eq!(doc["components"]["securitySchemes"]["bearerAuth"]["scheme"], "bearer");
    assert_eq!(doc["components"]["schemas"]["Error"]["required"], serde_json::json!(["reason"]));
    assert_eq!(doc["components"]["schemas"]["Error"]["additionalProperties"], false);
    let tags: BTreeSet<&str> =
        doc["tags"].as_array().expect("tags").iter().filter_map(|t| t["name"].as_str()).collect();

    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() > 60, "only {} paths", paths.len());
    let mut ids = BTreeSet::new();
    let mut problems = Vec::new();
    for (path, item) in paths {
        let templated: BTreeSet<&str> =
            path.split('/').filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}')).collect();
        for (method, op) in item.as_object().expect("path item") {
            assert!(METHODS.contains(&method.as_str()), "{method} {path}: unexpected method");
            let here = format!("{} {path}", method.to_uppercase());
            let op_tags: Vec<&str> =
                op["tags"].as_array().map(|t| t.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
            if op_tags.is_empty() || op_tags.iter().any(|t| !tags.contains(t)) {
                problems.push(format!("{here}: tags {op_tags:?} not declared"));
            }
            if op["summary"].as_str().is_none_or(str::is_empty) {
                problems.push(format!("{here}: no summary"));
            }
            if !op["operationId"].as_str().is_some_and(|id| ids.insert(id.to_string())) {
                problems.push(format!("{here}: missing or duplicate operationId {}", op["operationId"]));
            }
            let declared: BTreeSet<&str> = op["parameters"]
                .as_array()
                .map(|ps| ps.iter().filter(|p| p["in"] == "path").filter_map(|p| p["name"].as_str()).collect())
                .unwrap_or_default();
            if declared != templated {
                problems.push(format!("{here}: path parameters {declared:?}, template has {templated:?}"));
            }
            let responses = op["responses"].as_object().expect("responses");
            let success = responses.keys().any(|c| c.starts_with('2') || (path.starts_with("/ws/") && c == "101"));
            if !success {
                problems.push(format!("{here}: no success answer"));
            }
            for (code, resp) in responses {
                let is_error = code.starts_with('4') || code.starts_with('5');
                let api_error = !(code == "503" && matches!(path.as_str(), "/readyz" | "/status.html"));
                if is_error
                    && api_error
                    && resp["content"]["application/json"]["schema"]["$ref"] != "#/components/schemas/Error"
                {
                    problems.push(format!("{here}: {code} does not answer the Error schema"));
                }
            }
        }
    }
    let mut all_refs = Vec::new();
    refs(&doc, &mut all_refs);
    for r in all_refs {
        if resolve(&doc, &r).is_none() {
            problems.push(format!("unresolved $ref {r}"));
        }
    }
    assert!(problems.is_empty(), "the description is incomplete:\n{}", problems.join("\n"));

    for (method, path) in PULSAR_PATHS {
        assert!(doc["paths"][path][method].is_object(), "{method} {path} is not described");
    }
    // What `magnetar openapi` prints is what the broker serves.
    let printed: Value = serde_json::from_str(&magnetar_api::openapi_json()).expect("JSON");
    assert_eq!(printed, doc);
}

/// `services/api/openapi.json` is the description the web console generates its API types from
/// at build time (no Rust build needed for it): it must be what the broker serves.
#[test]
fn the_committed_description_is_the_generated_one() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../services/api/openapi.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == magnetar_api::openapi_json() + "\n",
        "services/api/openapi.json is not the description the handlers define: regenerate it with\n  \
         cargo run -q -p magnetar -- openapi > services/api/openapi.json"
    );
}

/// Routes reach the description only through `routes!`: a plain `.route(` in a route file
/// would serve a path the description does not know.
#[test]
fn route_files_register_every_route_through_the_described_router() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../services/api/src/routes");
    for entry in std::fs::read_dir(&dir).expect("routes directory") {
        let path = entry.expect("entry").path();
        let src = std::fs::read_to_string(&path).expect("route source");
        assert!(
            !src.contains(".route(") && !src.contains("axum::routing"),
            "{} registers a route outside utoipa-axum's routes!: it would be served undescribed",
            path.display()
        );
    }
}

/// A validator for `schema`, a part of `doc` whose `$ref`s point into `doc`.
fn validator(doc: &Value, schema: &Value) -> jsonschema::Validator {
    let mut root = serde_json::json!({ "components": doc["components"].clone() });
    root["allOf"] = serde_json::json!([schema]);
    jsonschema::validator_for(&root).unwrap_or_else(|e| panic!("invalid schema {schema}: {e}"))
}

/// Sends one described operation, checks the request body against its schema, the status
/// against the documented ones and the answer against the documented schema; returns the
/// status and body.
async fn call_described(
    app: &TestApp,
    doc: &Value,
    method: &str,
    template: &str,
    path: &str,
    body: Option<Value>,
) -> (reqwest::StatusCode, Value) {
    let op = &doc["paths"][template][method];
    assert!(op.is_object(), "{method} {template} is not described");
    if let Some(b) = &body {
        let schema = &op["requestBody"]["content"]["application/json"]["schema"];
        assert!(schema.is_object(), "{method} {template} takes no JSON body");
        if let Err(e) = validator(doc, schema).validate(b) {
            panic!("{method} {template}: the request {b} does not match its described schema: {e}");
        }
    }
    let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
    let (status, answer) = app.call(m, path, body).await;
    assert_described(doc, method, template, path, status, &answer);
    (status, answer)
}

/// Checks that `status` is a documented answer of the operation and `answer` its schema.
fn assert_described(
    doc: &Value,
    method: &str,
    template: &str,
    path: &str,
    status: reqwest::StatusCode,
    answer: &Value,
) {
    let op = &doc["paths"][template][method];
    let described = &op["responses"][status.as_str()];
    assert!(described.is_object(), "{method} {path} answered {status}, which is not described: {answer}");
    match described["content"]["application/json"]["schema"].as_object() {
        Some(_) => {
            let schema = &described["content"]["application/json"]["schema"];
            if let Err(e) = validator(doc, schema).validate(answer) {
                panic!("{method} {path} answered {status} with {answer}, not its described schema: {e}");
            }
        }
        None => assert!(
            described["content"].is_null() && *answer == Value::String(String::new()),
            "{method} {path} answered {status} with a body the description does not have: {answer}"
        ),
    }
}

/// Requests built from the description's schemas are accepted, and the answers (successes and
/// errors) are the described ones, for a representative walk through the API.
#[tokio::test]
async fn described_operations_answer_as_described() {
    let app = TestApp::standalone().await;
    let doc = served_openapi(&app).await;
    let rest = "/topics/persistent/{tenant}/{namespace}/{topic}";
    let ns = "/admin/v2/namespaces/{tenant}/{namespace}";
    let call = |method: &'static str, template: &'static str, path: String, body: Option<Value>| {
        let (app, doc) = (&app, &doc);
        async move { call_described(app, doc, method, template, &path, body).await }
    };
    let tenant = serde_json::json!({"adminRoles": ["ops"], "allowedClusters": ["standalone"]});
    assert_eq!(call("put", "/admin/v2/tenants/{tenant}", "/admin/v2/tenants/acme".into(), Some(tenant)).await.0, 204);
    call("get", "/admin/v2/tenants/{tenant}", "/admin/v2/tenants/acme".into(), None).await;
    assert_eq!(call("get", "/admin/v2/tenants/{tenant}", "/admin/v2/tenants/nobody".into(), None).await.0, 404);

    let policies = serde_json::json!({
        "message_ttl_in_seconds": 3600,
        "retention_policies": {"retentionTimeInMinutes": 60, "retentionSizeInMB": 64},
        "backlog_quota_map": {"destination_storage": {"limitSize": 1_048_576, "policy": "producer_request_hold"}}
    });
    let n = "/admin/v2/namespaces/acme/orders";
    assert_eq!(call("put", ns, n.into(), Some(policies)).await.0, 204);
    assert_eq!(call("put", ns, n.into(), None).await.0, 409);
    let retention = serde_json::json!({"retentionTimeInMinutes": 120, "retentionSizeInMB": 128});
    assert_eq!(
        call("post", "/admin/v2/namespaces/{tenant}/{namespace}/retention", format!("{n}/retention"), Some(retention))
            .await
            .0,
        204
    );
    let quota = serde_json::json!({"limitSize": 2_097_152, "limitTime": -1, "policy": "producer_exception"});
    let quota_path = format!("{n}/backlogQuota?backlogQuotaType=destination_storage");
    assert_eq!(
        call("post", "/admin/v2/namespaces/{tenant}/{namespace}/backlogQuota", quota_path, Some(quota)).await.0,
        204
    );
    let bad_quota = serde_json::json!({"limitSize": 1, "policy": "drop_everything"});
    assert_eq!(
        call("post", "/admin/v2/namespaces/{tenant}/{namespace}/backlogQuota", format!("{n}/backlogQuota"), None)
            .await
            .0,
        400
    );
    let (status, _) = app.post(&format!("{n}/backlogQuota"), Some(bad_quota)).await;
    assert_eq!(status, 400, "a policy outside the described enum is refused");
    let (_, got) = call("get", ns, n.into(), None).await;
    assert_eq!(got["retention_policies"]["retentionSizeInMB"], 128);

    let topic = "/admin/v2/persistent/acme/orders/events";
    assert_eq!(
        call(
            "put",
            "/admin/v2/persistent/{tenant}/{namespace}/{topic}/partitions",
            format!("{topic}/partitions"),
            Some(serde_json::json!(2))
        )
        .await
        .0,
        204
    );
    // A body outside the schema gets a described error.
    let zero = format!("{topic}-more/partitions");
    let (status, answer) = app.put(&zero, Some(serde_json::json!(0))).await;
    assert_eq!(status, 406);
    assert_described(
        &doc,
        "put",
        "/admin/v2/persistent/{tenant}/{namespace}/{topic}/partitions",
        &zero,
        status,
        &answer,
    );
    call("get", "/admin/v2/persistent/{tenant}/{namespace}/{topic}/partitions", format!("{topic}/partitions"), None)
        .await;

    let messages = serde_json::json!({"messages": [{"payload": "one", "key": "k", "properties": {"a": "b"}}, {"payload": "two", "eventTime": 1_700_000_000_000_i64}]});
    let (_, produced) = call("post", rest, "/topics/persistent/acme/orders/events".into(), Some(messages)).await;
    assert_eq!(produced["messagePublishResults"].as_array().map(Vec::len), Some(2));
    let pull =
        serde_json::json!({"maxMessages": 10, "waitMs": 2000, "ackTimeoutMs": 30000, "initialPosition": "earliest"});
    let mut ids = Vec::new();
    for partition in 0..2 {
        let path = format!("/topics/persistent/acme/orders/events-partition-{partition}/subscriptions/audit");
        let (_, pulled) = call(
            "post",
            "/topics/persistent/{tenant}/{namespace}/{topic}/subscriptions/{subscription}/pull",
            format!("{path}/pull"),
            Some(pull.clone()),
        )
        .await;
        let got: Vec<String> = pulled["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| m["messageId"].as_str().expect("id").to_string())
            .collect();
        if !got.is_empty() {
            let ack = serde_json::json!({ "messageIds": got });
            assert_eq!(
                call(
                    "post",
                    "/topics/persistent/{tenant}/{namespace}/{topic}/subscriptions/{subscription}/ack",
                    format!("{path}/ack"),
                    Some(ack)
                )
                .await
                .0,
                204
            );
        }
        ids.extend(got);
    }
    assert_eq!(ids.len(), 2, "both messages pulled");
    let p0 = format!("{topic}-partition-0");
    call("get", "/admin/v2/persistent/{tenant}/{namespace}/{topic}/stats", format!("{p0}/stats"), None).await;
    call("get", "/admin/v2/persistent/{tenant}/{namespace}/{topic}/internalStats", format!("{p0}/internalStats"), None)
        .await;
    call(
        "get",
        "/admin/v2/persistent/{tenant}/{namespace}/{topic}/partitioned-stats",
        format!("{topic}/partitioned-stats"),
        None,
    )
    .await;
    call("get", "/admin/v2/persistent/{tenant}/{namespace}/{topic}/lastMessageId", format!("{p0}/lastMessageId"), None)
        .await;
    assert_eq!(
        call(
            "get",
            "/admin/v2/persistent/{tenant}/{namespace}/{topic}/stats",
            "/admin/v2/persistent/acme/orders/missing/stats".into(),
            None
        )
        .await
        .0,
        404
    );
}

#[tokio::test]
async fn swagger_ui_is_served_and_docs_redirects_to_it() {
    let app = TestApp::standalone().await;
    for path in ["/swagger-ui/", "/docs"] {
        let resp = app.client.get(app.url(path)).send().await.expect("request");
        assert_eq!(resp.status(), 200, "{path}");
        assert!(resp.headers()["content-type"].to_str().expect("ascii").starts_with("text/html"), "{path}");
        assert!(resp.text().await.expect("text").contains("swagger-ui"), "{path} is the Swagger UI page");
    }
    let init = app.client.get(app.url("/swagger-ui/swagger-initializer.js")).send().await.expect("request");
    assert_eq!(init.status(), 200);
    assert!(init.text().await.expect("text").contains("/openapi.json"), "the page reads /openapi.json");
}

#[tokio::test]
async fn openapi_and_docs_need_no_token_with_authentication_on() {
    let app = TestApp::with_auth(magnetar_tests::hs256_auth("openapi-secret-of-at-least-32-bytes")).await;
    err(app.get("/admin/v2/tenants").await, 401);
    for path in ["/openapi.json", "/swagger-ui/", "/swagger-ui/swagger-initializer.js"] {
        let resp = app.client.get(app.url(path)).send().await.expect("request");
        assert_eq!(resp.status(), 200, "{path} without a token");
    }
}
