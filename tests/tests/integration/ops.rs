//! Operations surfaces: Prometheus metrics with Pulsar's names and labels, health and readiness,
//! the OpenAPI description (which must document every route the routers define) and the
//! fallback for unknown paths.

use crate::common;

use common::*;
use magnetar_tests::TestApp;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

async fn metrics_text(app: &TestApp) -> String {
    let resp = app.client.get(app.url("/metrics")).send().await.expect("request");
    assert_eq!(resp.status(), 200);
    resp.text().await.expect("metrics text")
}

/// The value of the sample `name{labels}` (labels given exactly as rendered), if present.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (metric, rest) = series.split_once('{').unwrap_or((series, "}"));
        if metric != name {
            return None;
        }
        let got: BTreeMap<&str, &str> = rest
            .trim_end_matches('}')
            .split(',')
            .filter(|kv| !kv.is_empty())
            .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k, v.trim_matches('"'))))
            .collect();
        labels.iter().all(|(k, v)| got.get(k) == Some(v)).then(|| value.parse().ok()).flatten()
    })
}

fn topic_labels(topic: &str) -> [(&'static str, String); 3] {
    [
        ("cluster", "standalone".to_string()),
        ("namespace", "public/default".to_string()),
        ("topic", format!("persistent://public/default/{topic}")),
    ]
}

fn as_refs<'a>(l: &'a [(&'static str, String); 3]) -> Vec<(&'static str, &'a str)> {
    l.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test]
async fn metrics_count_messages_backlog_and_storage_per_topic() {
    let app = TestApp::standalone().await;
    create_topic(&app, "metered").await;
    ok(app.put(&format!("{}/subscription/s", admin_topic("metered")), None).await);
    produce_payloads(&app, "metered", &(0..7).map(|i| format!("m{i}")).collect::<Vec<_>>()).await;

    let text = metrics_text(&app).await;
    let labels = topic_labels("metered");
    let labels = as_refs(&labels);
    let line = "pulsar_in_messages_total{cluster=\"standalone\",namespace=\"public/default\",topic=\"persistent://public/default/metered\"} 7";
    assert!(text.lines().any(|l| l == line), "missing `{line}` in:\n{text}");
    assert_eq!(sample(&text, "pulsar_in_bytes_total", &labels), Some(14.0), "{text}");
    assert_eq!(sample(&text, "pulsar_msg_backlog", &labels), Some(7.0), "{text}");
    assert!(sample(&text, "pulsar_storage_size", &labels).is_some_and(|v| v > 0.0), "{text}");
    assert_eq!(sample(&text, "pulsar_subscriptions_count", &labels), Some(1.0), "{text}");
    assert!(text.contains("magnetar_publish_latency_seconds_bucket{le="), "{text}");
    assert!(sample(&text, "magnetar_publish_latency_seconds_count", &[]).is_some_and(|v| v >= 1.0), "{text}");
}

#[tokio::test]
async fn metrics_label_each_partition_as_its_own_topic() {
    let app = TestApp::standalone().await;
    create_partitioned(&app, "mp", 2).await;
    produce_payloads(&app, "mp", &(0..4).map(|i| format!("m{i}")).collect::<Vec<_>>()).await;
    let text = metrics_text(&app).await;
    for i in 0..2 {
        let labels = topic_labels(&format!("mp-partition-{i}"));
        assert_eq!(sample(&text, "pulsar_in_messages_total", &as_refs(&labels)), Some(2.0), "{text}");
    }
}

#[tokio::test]
async fn metrics_drop_the_series_of_a_deleted_topic() {
    let app = TestApp::standalone().await;
    create_topic(&app, "gone").await;
    produce_payloads(&app, "gone", &["x".to_string()]).await;
    assert!(metrics_text(&app).await.contains("topic=\"persistent://public/default/gone\""));
    ok(app.delete(&admin_topic("gone")).await);
    let text = metrics_text(&app).await;
    assert!(!text.contains("topic=\"persistent://public/default/gone\""), "{text}");
}

#[tokio::test]
async fn metrics_expose_wal_fsync_latency() {
    let app = TestApp::standalone().await;
    create_topic(&app, "wal").await;
    produce_payloads(&app, "wal", &["x".to_string()]).await;
    let text = metrics_text(&app).await;
    assert!(
        text.contains("magnetar_wal_fsync_seconds_bucket"),
        "the storage metrics (magnetar_wal_fsync_seconds, magnetar_wal_batch_*) are not registered with the broker's registry:\n{text}"
    );
    assert!(sample(&text, "magnetar_wal_fsync_seconds_count", &[]).is_some_and(|v| v >= 1.0), "{text}");
}

#[tokio::test]
async fn metrics_with_trailing_slash_is_pulsars_path() {
    let app = TestApp::standalone().await;
    let resp = app.client.get(app.url("/metrics/")).send().await.expect("request");
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.expect("text").contains("pulsar_topics_count"));
}

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

/// Every `(path, method)` the routers in services/api/src/routes define, read from the source
/// so a route added without documentation fails this test. Understands the forms used there:
/// `.route("literal", get(a).put(b))`, `let t = "..."; .route(t, ...)` and
/// `.route(&format!("{t}/x/{{n}}"), ...)`.
fn routes_in_source() -> BTreeSet<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../services/api/src/routes");
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("routes directory") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let src = std::fs::read_to_string(&path).expect("route source");
        let bindings = string_bindings(&src);
        let mut rest = src.as_str();
        while let Some(i) = rest.find(".route(") {
            rest = &rest[i + ".route(".len()..];
            let args = balanced(rest);
            let (first, methods) = split_first_arg(args);
            let route = resolve_path(first.trim(), &bindings)
                .unwrap_or_else(|| panic!("cannot read the route path `{}` in {}", first.trim(), path.display()));
            let mut found = false;
            for m in ["get", "put", "post", "delete", "patch"] {
                if contains_call(methods, m) {
                    out.insert((route.clone(), m.to_string()));
                    found = true;
                }
            }
            assert!(found, "no method found for route {route} in {}", path.display());
        }
    }
    out
}

/// `let name = "...";` bindings of a source file.
fn string_bindings(src: &str) -> BTreeMap<String, String> {
    src.lines()
        .filter_map(|l| {
            let l = l.trim().strip_prefix("let ")?;
            let (name, value) = l.split_once('=')?;
            let value = value.trim().strip_suffix(';')?.trim();
            let value = value.strip_prefix('"')?.strip_suffix('"')?;
            Some((name.trim().to_string(), value.to_string()))
        })
        .collect()
}

/// The text up to the parenthesis closing the one just opened.
fn balanced(s: &str) -> &str {
    let mut depth = 1;
    let mut in_str = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => in_str = !in_str,
            '(' if !in_str => depth += 1,
            ')' if !in_str => {
                depth -= 1;
                if depth == 0 {
                    return &s[..i];
                }
            }
            _ => {}
        }
    }
    s
}

/// Splits `first, rest` at the first top-level comma.
fn split_first_arg(args: &str) -> (&str, &str) {
    let mut depth = 0;
    let mut in_str = false;
    for (i, c) in args.char_indices() {
        match c {
            '"' => in_str = !in_str,
            '(' if !in_str => depth += 1,
            ')' if !in_str => depth -= 1,
            ',' if !in_str && depth == 0 => return (&args[..i], &args[i + 1..]),
            _ => {}
        }
    }
    (args, "")
}

fn contains_call(s: &str, method: &str) -> bool {
    let pat = format!("{method}(");
    s.match_indices(&pat).any(|(i, _)| i == 0 || !s[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_'))
}

fn resolve_path(arg: &str, bindings: &BTreeMap<String, String>) -> Option<String> {
    if let Some(lit) = arg.strip_prefix('"').and_then(|a| a.strip_suffix('"')) {
        return Some(lit.to_string());
    }
    if let Some(v) = bindings.get(arg) {
        return Some(v.clone());
    }
    let fmt = arg.strip_prefix("&format!(\"")?.strip_suffix("\")")?;
    let mut out = String::new();
    let mut rest = fmt;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("{{") {
            out.push('{');
            rest = r;
        } else if let Some(r) = rest.strip_prefix("}}") {
            out.push('}');
            rest = r;
        } else if let Some(r) = rest.strip_prefix('{') {
            let end = r.find('}')?;
            out.push_str(bindings.get(&r[..end])?);
            rest = &r[end + 1..];
        } else {
            let c = rest.chars().next()?;
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    Some(out)
}

#[test]
fn route_parser_reads_the_forms_used_by_the_routers() {
    let src = "let t = \"/a/{x}\";\nRouter::new().route(\"/lit\", get(f).put(g))\n.route(t, post(h))\n.route(&format!(\"{t}/s/{{n}}\"), delete(d))";
    let bindings = string_bindings(src);
    assert_eq!(resolve_path("&format!(\"{t}/s/{{n}}\")", &bindings).as_deref(), Some("/a/{x}/s/{n}"));
    assert_eq!(resolve_path("t", &bindings).as_deref(), Some("/a/{x}"));
    let (first, rest) = split_first_arg("\"/lit\", get(f).put(g)");
    assert_eq!(first, "\"/lit\"");
    assert!(contains_call(rest, "get") && contains_call(rest, "put") && !contains_call(rest, "post"));
    assert!(!contains_call("budget(x)", "get"));
}

#[tokio::test]
async fn openapi_documents_every_route_the_routers_define() {
    let app = TestApp::standalone().await;
    let resp = app.client.get(app.url("/openapi.json")).send().await.expect("request");
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.expect("text");
    let doc: Value = serde_json::from_str(&text).expect("/openapi.json is valid JSON");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "openapi version: {}", doc["openapi"]);
    let paths = doc["paths"].as_object().expect("paths object");

    let routes = routes_in_source();
    assert!(routes.len() > 40, "the route parser found only {} routes: {routes:?}", routes.len());
    let missing: Vec<String> = routes
        .iter()
        .filter(|(path, method)| paths.get(path.as_str()).and_then(|p| p.get(method.as_str())).is_none())
        .map(|(path, method)| format!("{} {path}", method.to_uppercase()))
        .collect();
    assert!(missing.is_empty(), "routes not documented in services/api/openapi.json:\n{}", missing.join("\n"));

    // And nothing documented that does not exist.
    let defined: BTreeSet<&str> = routes.iter().map(|(p, _)| p.as_str()).collect();
    let extra: Vec<&String> = paths.keys().filter(|p| !defined.contains(p.as_str())).collect();
    assert!(extra.is_empty(), "documented paths with no route: {extra:?}");
}

#[tokio::test]
async fn openapi_error_responses_use_the_reason_schema() {
    let app = TestApp::standalone().await;
    let doc = ok(app.get("/openapi.json").await);
    let error = &doc["components"]["schemas"]["Error"];
    assert!(error["properties"]["reason"].is_object(), "Error schema has a reason: {error}");
}
