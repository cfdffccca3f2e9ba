//! The Helm chart (`charts/magnetar`): `helm lint`, the values it refuses, and the broker run
//! exactly as the chart configures it. There is no Kubernetes here, so the test plays the
//! kubelet's part: it renders the chart with `helm template`, takes the container's arguments,
//! environment (secret references resolved against the test's PostgreSQL and SeaweedFS),
//! ConfigMap and mounts from the rendered objects, maps each mount path to a temporary
//! directory, starts the real broker binary and checks it serves the admin API, produce and
//! consume, metrics and a clean SIGTERM. `tier` checks a release of several brokers (the broker
//! tier), `dashboard` the Grafana dashboard shipped with the chart.

mod dashboard;
mod tier;

use crate::common::env;
use magnetar_tests::{BrokerProcess, call, free_port, fresh_postgres_database, hs256_token};
use reqwest::Method;
use serde_json::{Value, json};
use serde_yaml_ng::Value as Yaml;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use tempfile::TempDir;

fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/magnetar")
}

/// `helm template` with `--set` values: the rendered objects, or helm's error text.
fn render(values: &[(&str, &str)]) -> Result<Vec<Yaml>, String> {
    let mut cmd = Command::new(env("MAGNETAR_TEST_HELM_BIN"));
    cmd.args(["template", "mg"]).arg(chart());
    for (k, v) in values {
        cmd.arg("--set").arg(format!("{k}={v}"));
    }
    let out = cmd.output().expect("run helm");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8(out.stdout).expect("utf-8 output");
    Ok(serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| <Yaml as serde::Deserialize>::deserialize(doc).expect("rendered YAML"))
        .filter(|v| !v.is_null())
        .collect())
}

fn object<'a>(objects: &'a [Yaml], kind: &str, name: &str) -> &'a Yaml {
    objects
        .iter()
        .find(|o| o["kind"].as_str() == Some(kind) && o["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no {kind} {name} in the rendered chart"))
}

fn text(v: &Yaml) -> &str {
    v.as_str().unwrap_or_else(|| panic!("expected a string, got {v:?}"))
}

async fn json_of(request: reqwest::RequestBuilder) -> Value {
    request.send().await.expect("request").json().await.expect("JSON body")
}

const REQUIRED: [(&str, &str); 3] =
    [("metadata.urlSecret.name", "pg"), ("objectStore.bucket", "b"), ("auth.keySecret.name", "jwt")];

#[test]
fn chart_lints_and_refuses_incomplete_values_naming_them() {
    let mut lint = Command::new(env("MAGNETAR_TEST_HELM_BIN"));
    lint.args(["lint", "--strict"]).arg(chart());
    for (k, v) in REQUIRED {
        lint.arg("--set").arg(format!("{k}={v}"));
    }
    let out = lint.output().expect("run helm lint");
    assert!(out.status.success(), "helm lint failed:\n{}", String::from_utf8_lossy(&out.stdout));
    for missing in REQUIRED.map(|(k, _)| k) {
        let values: Vec<(&str, &str)> = REQUIRED.into_iter().filter(|(k, _)| *k != missing).collect();
        let err = render(&values).expect_err("an incomplete chart must not render");
        assert!(err.contains(missing), "the error does not name {missing}: {err}");
    }
    let mut bad = REQUIRED.to_vec();
    bad.push(("auth.keySecret.kind", "password"));
    let err = render(&bad).expect_err("an unknown key kind must not render");
    assert!(err.contains("auth.keySecret.kind"), "{err}");
    // The ServiceMonitor selects exactly one Service (the headless one would double samples).
    let mut with_monitor = REQUIRED.to_vec();
    with_monitor.push(("serviceMonitor.enabled", "true"));
    let objects = render(&with_monitor).expect("render with a ServiceMonitor");
    let monitor = object(&objects, "ServiceMonitor", "mg-magnetar");
    let wanted = monitor["spec"]["selector"]["matchLabels"].as_mapping().expect("matchLabels");
    let selected: Vec<&str> = objects
        .iter()
        .filter(|o| o["kind"].as_str() == Some("Service"))
        .filter(|o| wanted.iter().all(|(k, v)| &o["metadata"]["labels"][k] == v))
        .map(|o| text(&o["metadata"]["name"]))
        .collect();
    assert_eq!(selected, ["mg-magnetar"]);
    // The binary protocol's port on the pods and both Services; pulsar+ssl:// with its
    // Secret mounted where the configuration reads it, and refused without one.
    let mut with_tls = REQUIRED.to_vec();
    with_tls.extend([
        ("binary.tls.enabled", "true"),
        ("binary.tls.verifyClientCertificates", "true"),
        ("binary.tls.betweenBrokers", "true"),
    ]);
    let err = render(&with_tls).expect_err("TLS without its Secret must not render");
    assert!(err.contains("binary.tls.secretName"), "{err}");
    with_tls.push(("binary.tls.secretName", "broker-tls"));
    let objects = render(&with_tls).expect("render with TLS");
    for service in ["mg-magnetar", "mg-magnetar-headless"] {
        let ports = object(&objects, "Service", service)["spec"]["ports"].as_sequence().unwrap().clone();
        let named: Vec<(&str, u64)> = ports.iter().map(|p| (text(&p["name"]), p["port"].as_u64().unwrap())).collect();
        assert_eq!(named, [("http", 8080), ("pulsar", 6650), ("pulsar-ssl", 6651)], "{service}");
    }
    let toml = text(&object(&objects, "ConfigMap", "mg-magnetar")["data"]["magnetar.toml"]).to_string();
    for line in [
        "addr = \"0.0.0.0:6650\"",
        "tls_addr = \"0.0.0.0:6651\"",
        "tls_cert_file = \"/etc/magnetar/tls/tls.crt\"",
        "tls_key_file = \"/etc/magnetar/tls/tls.key\"",
        "tls_trust_certs_file = \"/etc/magnetar/tls/ca.crt\"",
        "proxy_tls_enabled = true",
        "proxy_tls_trust_certs_file = \"/etc/magnetar/tls/ca.crt\"",
    ] {
        assert!(toml.contains(line), "{line} missing:\n{toml}");
    }
    let pod = &object(&objects, "StatefulSet", "mg-magnetar")["spec"]["template"]["spec"];
    let tls_volume = pod["volumes"].as_sequence().unwrap().iter().find(|v| v["name"].as_str() == Some("tls"));
    assert_eq!(tls_volume.map(|v| text(&v["secret"]["secretName"])), Some("broker-tls"));
    let mounts = pod["containers"][0]["volumeMounts"].as_sequence().unwrap();
    assert!(mounts.iter().any(|m| m["name"].as_str() == Some("tls") && text(&m["mountPath"]) == "/etc/magnetar/tls"));
    // OpenID providers' tokens: the issuers and audiences go to [auth]; issuers without an
    // audience are refused, naming the value.
    let mut openid = REQUIRED.to_vec();
    openid.push(("auth.openid.allowedTokenIssuers[0]", "https://login.example.com/"));
    let err = render(&openid).expect_err("issuers without audiences must not render");
    assert!(err.contains("auth.openid.allowedAudiences"), "{err}");
    openid.push(("auth.openid.allowedAudiences[0]", "magnetar"));
    let objects = render(&openid).expect("render with OpenID issuers");
    let toml = text(&object(&objects, "ConfigMap", "mg-magnetar")["data"]["magnetar.toml"]).to_string();
    let parsed: toml::Value = toml::from_str(&toml).expect("the rendered configuration is TOML");
    assert_eq!(
        parsed["auth"]["openid_allowed_token_issuers"][0].as_str(),
        Some("https://login.example.com/"),
        "{toml}"
    );
    assert_eq!(parsed["auth"]["openid_allowed_audiences"][0].as_str(), Some("magnetar"), "{toml}");
    assert_eq!(parsed["auth"]["openid_role_claim"].as_str(), Some("sub"), "{toml}");
    // Without authentication no key is needed, and no key volume is mounted.
    let objects = render(&[
        ("metadata.urlSecret.name", "pg"),
        ("objectStore.bucket", "b"),
        ("auth.enabled", "false"),
        ("auth.allowInsecure", "true"),
    ])
    .expect("render without auth");
    let sts = object(&objects, "StatefulSet", "mg-magnetar");
    let volumes = sts["spec"]["template"]["spec"]["volumes"].as_sequence().unwrap();
    assert!(volumes.iter().all(|v| v["name"].as_str() != Some("auth")), "{volumes:?}");
}

/// The values of a release that runs against the test's PostgreSQL and SeaweedFS, with the
/// Secrets `pg`, `s3` and `jwt` (see [`Pod::start`]); `cluster` is unique per test.
fn live_values(cluster: &str) -> Vec<(String, String)> {
    [
        ("cluster", cluster.to_string()),
        ("metadata.urlSecret.name", "pg".into()),
        ("objectStore.endpoint", env("MAGNETAR_TEST_S3_ENDPOINT")),
        ("objectStore.allowHttp", "true".into()),
        ("objectStore.bucket", env("MAGNETAR_TEST_S3_BUCKET")),
        ("objectStore.credentialsSecret.name", "s3".into()),
        ("auth.keySecret.name", "jwt".into()),
        ("auth.superuserRoles[0]", "ops".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// One pod of the rendered StatefulSet, run the way the kubelet would: mounts mapped to
/// temporary paths, Secrets resolved, the downward API and `$(VAR)` references expanded.
struct Pod {
    pub broker: BrokerProcess,
    /// The `pulsar://` URL of the pod's binary-protocol listener (the chart's `pulsar` port).
    pub pulsar: String,
    /// The environment the container got, resolved.
    pub env: Vec<(String, String)>,
    /// The `file:` form of the mounted HS256 key, for [`hs256_token`].
    pub key: String,
    pub data_dir: PathBuf,
    _tmp: TempDir,
}

/// Where the test's namespace would be (what `helm template` renders without `--namespace`).
const NAMESPACE: &str = "default";

impl Pod {
    /// Starts pod `name` (`mg-magnetar-0`, ...) of the StatefulSet in `objects`; the Secrets an
    /// operator would create are `pg` (a fresh database of the test's PostgreSQL), `s3` (the
    /// test's SeaweedFS keys) and `jwt` (an HS256 key).
    pub async fn start(objects: &[Yaml], name: &str) -> Pod {
        let tmp = tempfile::tempdir().unwrap();
        let key_file = tmp.path().join("jwt-secret.key");
        // As `magnetar tokens create-secret-key` prints it: base64 text.
        std::fs::write(&key_file, "c2VjcmV0LWtleS1mb3ItdGhlLWhlbG0tY2hhcnQtdGVzdCE=").unwrap();
        let secrets: HashMap<(&str, &str), String> = HashMap::from([
            (("pg", "url"), fresh_postgres_database().await),
            (("s3", "access-key-id"), env("MAGNETAR_TEST_S3_ACCESS_KEY")),
            (("s3", "secret-access-key"), env("MAGNETAR_TEST_S3_SECRET_KEY")),
        ]);

        let sts = object(objects, "StatefulSet", "mg-magnetar");
        let pod = &sts["spec"]["template"]["spec"];
        let container = &pod["containers"][0];
        let config_map = object(objects, "ConfigMap", "mg-magnetar");
        let mut toml = text(&config_map["data"]["magnetar.toml"]).to_string();

        // Mounts: each path the chart mounts becomes a temporary directory (or file).
        let mut mounts: HashMap<String, PathBuf> = HashMap::new();
        let data_dir = tmp.path().join("data");
        let auth_dir = tmp.path().join("auth");
        std::fs::create_dir_all(&auth_dir).unwrap();
        let config_file = tmp.path().join("magnetar.toml");
        for m in container["volumeMounts"].as_sequence().expect("volume mounts") {
            let path = text(&m["mountPath"]).to_string();
            let local = match text(&m["name"]) {
                "data" => data_dir.clone(),
                "config" => config_file.clone(),
                "auth" => auth_dir.clone(),
                other => panic!("unexpected volume {other}"),
            };
            mounts.insert(path, local);
        }
        // The auth Secret volume: its keys become files.
        if let Some(auth_volume) =
            pod["volumes"].as_sequence().unwrap().iter().find(|v| v["name"].as_str() == Some("auth"))
        {
            assert_eq!(text(&auth_volume["secret"]["secretName"]), "jwt");
            std::fs::copy(&key_file, auth_dir.join("secret.key")).unwrap();
        }

        // The configuration the container reads, with mount paths mapped and the port it listens
        // on (the chart's containerPort, named `http`, which the probes and the Service use).
        let port = container["ports"][0]["containerPort"].as_u64().unwrap();
        assert_eq!(text(&container["ports"][0]["name"]), "http");
        assert_eq!(text(&container["readinessProbe"]["httpGet"]["path"]), "/readyz");
        assert_eq!(text(&container["readinessProbe"]["httpGet"]["port"]), "http");
        assert!(toml.contains(&format!("http_addr = \"0.0.0.0:{port}\"")), "{toml}");
        let addr = format!("127.0.0.1:{}", free_port());
        toml = toml.replace(&format!("0.0.0.0:{port}"), &addr);
        // The binary protocol's port, named `pulsar` as the Services target it.
        let pulsar_port =
            container["ports"].as_sequence().unwrap().iter().find(|p| p["name"].as_str() == Some("pulsar"));
        let pulsar_port = pulsar_port.expect("a port named pulsar")["containerPort"].as_u64().unwrap();
        assert!(toml.contains(&format!("addr = \"0.0.0.0:{pulsar_port}\"")), "{toml}");
        let pulsar_addr = format!("127.0.0.1:{}", free_port());
        toml = toml.replace(&format!("0.0.0.0:{pulsar_port}"), &pulsar_addr);
        for (path, local) in &mounts {
            let before = toml.clone();
            toml = toml.replace(path.as_str(), &local.display().to_string());
            if path != "/etc/magnetar/magnetar.toml" {
                assert_ne!(before, toml, "the configuration never refers to the mount {path}");
            }
        }
        std::fs::write(&config_file, &toml).unwrap();

        // Arguments and environment: secret references resolved, the downward API answered, and
        // `$(VAR)` references to earlier variables expanded, as the kubelet does.
        let args: Vec<String> = container["args"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|a| {
                let a = text(a);
                mounts.get(a).map_or_else(|| a.to_string(), |p| p.display().to_string())
            })
            .collect();
        assert!(args.contains(&config_file.display().to_string()), "{args:?}");
        let mut env_vars: Vec<(String, String)> = Vec::new();
        for e in container["env"].as_sequence().unwrap() {
            let var = text(&e["name"]).to_string();
            let value = if let Some(v) = e["value"].as_str() {
                env_vars.iter().fold(v.to_string(), |v, (k, val)| v.replace(&format!("$({k})"), val))
            } else if let Some(field) = e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                match field {
                    "metadata.name" => name.to_string(),
                    "metadata.namespace" => NAMESPACE.to_string(),
                    other => panic!("the test does not know the downward API field {other}"),
                }
            } else {
                let r = &e["valueFrom"]["secretKeyRef"];
                secrets
                    .get(&(text(&r["name"]), text(&r["key"])))
                    .unwrap_or_else(|| panic!("no secret {:?}/{:?}", r["name"], r["key"]))
                    .clone()
            };
            assert!(!value.contains("$("), "{var} refers to an undefined variable: {value}");
            env_vars.push((var, value));
        }
        assert!(env_vars.iter().any(|(k, _)| k == "MAGNETAR_METADATA__URL"), "{env_vars:?}");
        let mut env_refs: Vec<(&str, &str)> = env_vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        // BrokerProcess moves every broker's binary listener to a free port by the environment;
        // this one listens where the configuration (mapped above) says.
        env_refs.push(("MAGNETAR_BINARY__ADDR", &pulsar_addr));

        let broker = BrokerProcess::start_args(&data_dir, addr, args, &env_refs);
        Pod {
            broker,
            pulsar: format!("pulsar://{pulsar_addr}"),
            env: env_vars,
            key: format!("file:{}", key_file.display()),
            data_dir,
            _tmp: tmp,
        }
    }

    pub fn env(&self, name: &str) -> Option<&str> {
        self.env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

fn with_values<'a>(values: &'a [(String, String)], more: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    values.iter().map(|(k, v)| (k.as_str(), v.as_str())).chain(more.iter().copied()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_runs_as_the_chart_configures_it() {
    let cluster = format!("helm-{}-{}", std::process::id(), free_port());
    let values = live_values(&cluster);
    let objects = render(&with_values(
        &values,
        &[("storage.localDiskBudgetBytes", "1073741824"), ("storage.segmentMaxBytes", "65536")],
    ))
    .expect("render the chart");
    let sts = object(&objects, "StatefulSet", "mg-magnetar");
    // The default is one broker serving every topic: no tier, no disruption budget.
    assert_eq!(sts["spec"]["replicas"].as_u64(), Some(1));
    let toml = text(&object(&objects, "ConfigMap", "mg-magnetar")["data"]["magnetar.toml"]);
    assert!(!toml.contains("[broker.tier]"), "{toml}");
    assert!(objects.iter().all(|o| o["kind"].as_str() != Some("PodDisruptionBudget")));

    let mut pod = Pod::start(&objects, "mg-magnetar-0").await;
    let base = pod.broker.base.clone();
    let data_dir = pod.data_dir.clone();
    let c = reqwest::Client::new();
    let ops = hs256_token(&pod.key, "ops", 600);
    let auth = |m: Method, path: &str| c.request(m, format!("{base}{path}")).bearer_auth(&ops);
    // The broker's identity is its pod's stable name, also as a single broker.
    let own = format!("mg-magnetar-0.mg-magnetar-headless.{NAMESPACE}.svc.cluster.local:8080");
    assert_eq!(pod.env("MAGNETAR_BROKER__ADVERTISED_ADDRESS"), Some(own.as_str()));
    assert_eq!(pod.env("MAGNETAR_BROKER__TIER__INTERNAL_ADDRESS"), None);

    // Authentication is on: nothing without a token, everything for the superuser role.
    let (s, _) = call(&c, Method::GET, &format!("{base}/admin/v2/clusters"), None).await;
    assert_eq!(s, 401);
    let clusters = json_of(auth(Method::GET, "/admin/v2/clusters")).await;
    assert_eq!(clusters, json!([cluster]));
    let s = auth(Method::PUT, "/admin/v2/tenants/acme")
        .json(&json!({"adminRoles": [], "allowedClusters": [cluster]}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(s, 204);
    assert_eq!(auth(Method::PUT, "/admin/v2/namespaces/acme/app").send().await.unwrap().status(), 204);
    assert_eq!(auth(Method::PUT, "/admin/v2/persistent/acme/app/events").send().await.unwrap().status(), 204);
    // Four requests of ~27 KB: the 64 KiB segments seal on the way.
    for batch in 0..4 {
        let msgs: Vec<Value> =
            (0..50).map(|i| json!({"payload": format!("{:04}-{}", batch * 50 + i, "x".repeat(500))})).collect();
        let r = auth(Method::POST, "/topics/persistent/acme/app/events").json(&json!({"messages": msgs})).send().await;
        assert_eq!(r.unwrap().status(), 200);
    }
    let pulled = json_of(
        auth(Method::POST, "/topics/persistent/acme/app/events/subscriptions/s/pull")
            .json(&json!({"maxMessages": 500, "waitMs": 2000, "initialPosition": "earliest"})),
    )
    .await;
    assert_eq!(pulled["messages"].as_array().map(Vec::len), Some(200), "{pulled}");
    // Sealed segments go to the bucket with the chart's credentials (offload at once by default).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let stats = json_of(auth(Method::GET, "/admin/v2/persistent/acme/app/events/internalStats")).await;
        if stats["ledgers"].as_array().is_some_and(|l| l.iter().any(|x| x["offloaded"] == true)) {
            break;
        }
        if std::time::Instant::now() > deadline {
            let log = std::fs::read_to_string(data_dir.with_extension("log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(10).collect();
            panic!("no segment offloaded within 30 s: {stats}\nbroker log (newest first):\n{}", tail.join("\n"));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Metrics need the token too (what the ServiceMonitor's bearerTokenSecret is for), and show
    // the upload pace of the chart's default ("auto").
    assert_eq!(c.get(format!("{base}/metrics")).send().await.unwrap().status(), 401);
    let metrics = auth(Method::GET, "/metrics").send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("magnetar_offload_upload_pace_bytes_per_second"), "pace gauge missing");
    // Pulsar's Python client on the pod's binary port, with a token of the chart's key.
    let (out, _) =
        crate::tier_binary::scenario_in("pulsar_scenarios.py", &pod.pulsar, "token", "acme/app/binary", &[&ops]).await;
    assert!(out.is_object(), "{out}");
    let stats = json_of(auth(Method::GET, "/admin/v2/persistent/acme/app/binary/stats")).await;
    assert_eq!(stats["msgInCounter"], 1, "{stats}");

    // SIGTERM, as the kubelet sends it: a clean exit well within the grace period.
    let grace = sts["spec"]["template"]["spec"]["terminationGracePeriodSeconds"].as_u64().unwrap();
    let started = std::time::Instant::now();
    assert!(pod.broker.terminate().success());
    assert!(started.elapsed().as_secs() < grace, "shutdown took {:?}", started.elapsed());
}
