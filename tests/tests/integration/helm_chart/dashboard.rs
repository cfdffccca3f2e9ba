//! The broker tier's Grafana dashboard (`charts/magnetar/dashboards/magnetar-tier.json`): it has
//! what Grafana's import needs, it ships as the sidecar's ConfigMap, and every metric its panels
//! query is one a tier broker exports — checked against a real scrape, so a renamed metric fails
//! here instead of leaving an empty panel.

use super::{Pod, REQUIRED, live_values, object, render, text, with_values};
use magnetar_tests::{free_port, hs256_token};
use serde_json::{Value, json};
use std::collections::BTreeSet;

fn dashboard_text() -> String {
    let path = super::chart().join("dashboards/magnetar-tier.json");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn dashboard() -> Value {
    serde_json::from_str(&dashboard_text()).expect("the dashboard is JSON")
}

/// The panels that query data (rows only group them), nested rows included.
fn data_panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(panels: &'a Value, out: &mut Vec<&'a Value>) {
        for p in panels.as_array().into_iter().flatten() {
            if p["type"] == "row" {
                walk(&p["panels"], out);
            } else {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// PromQL's keywords and aggregation operators (`sum by (x) (...)` puts the argument list after
/// the modifier, so an aggregation is not always followed by `(`).
const KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "and",
    "or",
    "unless",
    "inf",
    "nan",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];

/// The metric names a PromQL expression selects: identifiers that are not functions, aggregation
/// modifiers or keywords, outside label matchers `{...}`, range selectors `[...]`, strings and
/// the label lists of `by (...)`, `without (...)`, `on (...)`, `ignoring (...)` and `group_*`.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    // Set after a keyword whose parenthesised list holds label names.
    let mut label_list_next = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '{' | '[' | '"' | '\'' | '`' => {
                let close = match c {
                    '{' => '}',
                    '[' => ']',
                    q => q,
                };
                i += 1;
                while i < chars.len() && chars[i] != close {
                    if chars[i] == '\\' && c != '{' && c != '[' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            '(' if label_list_next => {
                while i < chars.len() && chars[i] != ')' {
                    i += 1;
                }
                i += 1;
                label_list_next = false;
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':') {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let mut j = i;
                while j < chars.len() && chars[j].is_whitespace() {
                    j += 1;
                }
                let lower = word.to_ascii_lowercase();
                if ["by", "without", "on", "ignoring", "group_left", "group_right"].contains(&lower.as_str()) {
                    label_list_next = true;
                } else if chars.get(j) == Some(&'(') || KEYWORDS.contains(&lower.as_str()) {
                    // A function or an aggregation (its `by` may follow the argument list).
                } else {
                    names.insert(word);
                }
            }
            c if c.is_ascii_digit() || c == '.' => {
                // A number (0.99, 1e3): its letters are not a name.
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            }
            '$' => {
                // A Grafana variable ($var, ${var}, ${var:format}) is not a metric.
                i += 1;
                if chars.get(i) == Some(&'{') {
                    while i < chars.len() && chars[i] != '}' {
                        i += 1;
                    }
                    i += 1;
                } else {
                    while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                        i += 1;
                    }
                }
            }
            c if c.is_whitespace() => i += 1,
            _ => {
                label_list_next = false;
                i += 1;
            }
        }
    }
    names
}

#[test]
fn metric_names_are_read_from_promql_as_grafana_writes_it() {
    let names = |e: &str| metric_names(e).into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(
            "histogram_quantile(0.99, sum by (instance, le) (rate(a_seconds_bucket{job=~\"x|y\"}[$__rate_interval])))"
        ),
        ["a_seconds_bucket"]
    );
    assert_eq!(names("sum(rate(x_sum[5m])) / sum without (to) (rate(x_count[5m])) > bool 0"), ["x_count", "x_sum"]);
    assert_eq!(names("max(up) by (pod) or on (pod) vector(1e3)"), ["up"]);
    assert_eq!(names("topk by (instance) (3, c) unless count without (le) (d)"), ["c", "d"]);
    assert_eq!(names("label_replace(a, \"dst\", \"$1\", \"src\", \"(.*)\")"), ["a"]);
    assert_eq!(names("sum(b{instance=~\"$instance\"}) * $scale + ${offset:raw}"), ["b"]);
}

#[test]
fn dashboard_has_what_grafana_import_needs() {
    let d = dashboard();
    assert!(d["title"].as_str().is_some_and(|t| !t.is_empty()), "no title");
    let uid = d["uid"].as_str().expect("uid");
    // Grafana's limit on uids; a fixed uid keeps links stable across imports.
    assert!(!uid.is_empty() && uid.len() <= 40, "{uid}");
    assert!(d["schemaVersion"].as_u64().is_some_and(|v| v >= 30), "schemaVersion");
    // No `__inputs`: the Grafana sidecar does not resolve them, the datasource variable does.
    assert!(d.get("__inputs").is_none(), "the dashboard must not need import inputs");
    let variables = d["templating"]["list"].as_array().expect("templating.list");
    let datasource = variables.iter().find(|v| v["name"] == "datasource").expect("a `datasource` variable");
    assert_eq!(datasource["type"], "datasource");
    assert_eq!(datasource["query"], "prometheus");

    let panels = data_panels(&d);
    assert!(panels.len() >= 12, "only {} panels", panels.len());
    let mut ids = BTreeSet::new();
    for p in &panels {
        let title = p["title"].as_str().unwrap_or_else(|| panic!("a panel without title: {p}"));
        assert!(p["type"].as_str().is_some(), "{title}: no type");
        assert!(ids.insert(p["id"].as_u64().unwrap_or_else(|| panic!("{title}: no id"))), "{title}: id reused");
        for key in ["h", "w", "x", "y"] {
            assert!(p["gridPos"][key].as_u64().is_some(), "{title}: gridPos.{key}");
        }
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}: not on the datasource variable");
        let targets = p["targets"].as_array().filter(|t| !t.is_empty());
        let targets = targets.unwrap_or_else(|| panic!("{title}: no targets"));
        let mut ref_ids = BTreeSet::new();
        for t in targets {
            assert!(t["expr"].as_str().is_some_and(|e| !e.trim().is_empty()), "{title}: a target without expr");
            assert!(ref_ids.insert(t["refId"].as_str().expect("refId")), "{title}: refId reused");
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{title}: a target off the datasource variable");
        }
    }
    for row in d["panels"].as_array().unwrap().iter().filter(|p| p["type"] == "row") {
        assert!(ids.insert(row["id"].as_u64().expect("row id")), "row id reused");
    }
}

/// Each part of the tier the dashboard is for has a panel querying it.
#[test]
fn dashboard_covers_the_tier() {
    let used: BTreeSet<String> = data_panels(&dashboard())
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().iter().flat_map(|t| metric_names(t["expr"].as_str().unwrap())))
        .collect();
    for wanted in [
        "magnetar_tier_live_brokers",
        "magnetar_tier_leader",
        "magnetar_tier_bundles_owned",
        "magnetar_tier_unavailable_bundles",
        "magnetar_tier_bundle_transitions_total",
        "magnetar_tier_handover_seconds_bucket",
        "magnetar_tier_handovers_total",
        "magnetar_forwarded_requests_total",
        "magnetar_tier_held_requests_total",
        "magnetar_tier_fenced_writes_total",
        "magnetar_tier_rebalance_moves_total",
        "magnetar_publish_latency_seconds_bucket",
        "pulsar_broker_rate_in",
        "magnetar_wal_fsync_seconds_bucket",
    ] {
        assert!(used.contains(wanted), "no panel queries {wanted}: {used:?}");
    }
}

#[test]
fn dashboard_ships_as_a_configmap_the_grafana_sidecar_loads() {
    let objects = render(&REQUIRED).expect("render");
    let cm = object(&objects, "ConfigMap", "mg-magnetar-dashboards");
    assert_eq!(text(&cm["metadata"]["labels"]["grafana_dashboard"]), "1");
    let shipped: Value = serde_json::from_str(text(&cm["data"]["magnetar-tier.json"])).expect("JSON in the ConfigMap");
    assert_eq!(shipped, dashboard());
    let mut off = REQUIRED.to_vec();
    off.push(("grafana.dashboards.enabled", "false"));
    let objects = render(&off).expect("render without dashboards");
    assert!(objects.iter().all(|o| o["metadata"]["name"].as_str() != Some("mg-magnetar-dashboards")));
}

/// Sample names of a Prometheus text exposition (histograms give `_bucket`, `_sum`, `_count`).
fn exported(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap_or_default().to_string())
        .collect()
}

/// A broker of a three-broker release, run as the chart renders it (the tier on), after a
/// publish: every name in every panel expression is in its `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_queries_is_exported_by_a_tier_broker() {
    let cluster = format!("helm-dash-{}-{}", std::process::id(), free_port());
    let values = live_values(&cluster);
    let objects = render(&with_values(&values, &[("replicas", "3")])).expect("render three brokers");
    let toml = text(&object(&objects, "ConfigMap", "mg-magnetar")["data"]["magnetar.toml"]);
    assert!(toml.contains("[broker.tier]\nenabled = true"), "{toml}");
    let pod = Pod::start(&objects, "mg-magnetar-0").await;
    let c = reqwest::Client::new();
    let ops = hs256_token(&pod.key, "ops", 600);
    let base = &pod.broker.base;
    let put = |path: &str, body: Value| c.put(format!("{base}{path}")).bearer_auth(&ops).json(&body).send();
    assert_eq!(put("/admin/v2/tenants/acme", json!({"allowedClusters": [cluster]})).await.unwrap().status(), 204);
    let ns = c.put(format!("{base}/admin/v2/namespaces/acme/app")).bearer_auth(&ops).send().await.unwrap();
    assert_eq!(ns.status(), 204);
    let produced = c
        .post(format!("{base}/topics/persistent/acme/app/events"))
        .bearer_auth(&ops)
        .json(&json!({"messages": [{"payload": "aGVsbG8="}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(produced.status(), 200);
    let scrape = c.get(format!("{base}/metrics")).bearer_auth(&ops).send().await.unwrap().text().await.unwrap();
    let exported = exported(&scrape);
    assert!(exported.contains("magnetar_tier_live_brokers"), "not a tier broker's scrape:\n{scrape}");

    let mut missing = Vec::new();
    let mut checked = 0;
    for p in data_panels(&dashboard()) {
        for t in p["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            let names = metric_names(expr);
            assert!(!names.is_empty(), "panel {}: no metric in `{expr}`", p["title"]);
            for name in names {
                checked += 1;
                if !exported.contains(&name) {
                    missing.push(format!("{name} (panel {}: `{expr}`)", p["title"]));
                }
            }
        }
    }
    assert!(missing.is_empty(), "the dashboard queries metrics the broker does not export:\n{}", missing.join("\n"));
    assert!(checked >= 20, "only {checked} metric references checked");
}
