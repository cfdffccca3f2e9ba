//! A release of several brokers is a broker tier (docs/broker-tier.md, "Running it on
//! Kubernetes"): `[broker.tier]` on, each broker addressed by its pod's name through the headless
//! Service, a PodDisruptionBudget, readiness on `/readyz`, a grace period longer than the drain.
//! One broker of such a release is then run exactly as rendered.

use super::{NAMESPACE, Pod, REQUIRED, live_values, object, render, text, with_values};
use magnetar_tests::{free_port, hs256_token};
use serde_json::{Value, json};
use serde_yaml_ng::Value as Yaml;
use std::process::Command;

fn config_of(objects: &[Yaml]) -> toml::Table {
    let source = text(&object(objects, "ConfigMap", "mg-magnetar")["data"]["magnetar.toml"]);
    source.parse().unwrap_or_else(|e| panic!("the rendered magnetar.toml does not parse: {e}\n{source}"))
}

fn required_and(more: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    REQUIRED.iter().copied().chain(more.iter().copied()).collect()
}

fn env_entry<'a>(container: &'a Yaml, name: &str) -> &'a Yaml {
    container["env"]
        .as_sequence()
        .expect("env")
        .iter()
        .find(|e| e["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no {name} in the container's environment"))
}

fn pdbs(objects: &[Yaml]) -> Vec<&Yaml> {
    objects.iter().filter(|o| o["kind"].as_str() == Some("PodDisruptionBudget")).collect()
}

#[test]
fn three_replicas_render_a_tier_with_stable_addresses_a_disruption_budget_and_readiness() {
    let values = required_and(&[("replicas", "3")]);
    let mut lint = Command::new(crate::common::env("MAGNETAR_TEST_HELM_BIN"));
    lint.args(["lint", "--strict"]).arg(super::chart());
    for (k, v) in &values {
        lint.arg("--set").arg(format!("{k}={v}"));
    }
    let out = lint.output().expect("run helm lint");
    assert!(out.status.success(), "helm lint failed:\n{}", String::from_utf8_lossy(&out.stdout));
    let objects = render(&values).expect("render three brokers");

    let sts = object(&objects, "StatefulSet", "mg-magnetar");
    assert_eq!(sts["spec"]["replicas"].as_u64(), Some(3));
    assert_eq!(text(&sts["spec"]["podManagementPolicy"]), "Parallel");
    assert_eq!(text(&sts["spec"]["serviceName"]), "mg-magnetar-headless");
    // Every broker keeps its own volume.
    assert_eq!(text(&sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"]), "data");

    let config = config_of(&objects);
    let tier = config["broker"]["tier"].as_table().expect("[broker.tier]");
    assert_eq!(tier["enabled"].as_bool(), Some(true), "{tier:?}");
    assert_eq!(tier["drain_timeout_ms"].as_integer(), Some(25_000), "{tier:?}");
    assert!(!tier.contains_key("internal_address"), "the address is per pod, from the environment");

    // The internal (and advertised) address: the pod's name through the headless Service.
    let pod = &sts["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(text(&env_entry(container, "POD_NAME")["valueFrom"]["fieldRef"]["fieldPath"]), "metadata.name");
    assert_eq!(
        text(&env_entry(container, "POD_NAMESPACE")["valueFrom"]["fieldRef"]["fieldPath"]),
        "metadata.namespace"
    );
    let address = "$(POD_NAME).mg-magnetar-headless.$(POD_NAMESPACE).svc.cluster.local:8080";
    assert_eq!(text(&env_entry(container, "MAGNETAR_BROKER__TIER__INTERNAL_ADDRESS")["value"]), address);
    assert_eq!(text(&env_entry(container, "MAGNETAR_BROKER__ADVERTISED_ADDRESS")["value"]), address);
    // The kubelet expands $(VAR) only for variables defined earlier in the list.
    let names: Vec<&str> = container["env"].as_sequence().unwrap().iter().map(|e| text(&e["name"])).collect();
    let position = |n: &str| names.iter().position(|x| *x == n).unwrap();
    assert!(position("POD_NAME") < position("MAGNETAR_BROKER__TIER__INTERNAL_ADDRESS"), "{names:?}");
    assert!(position("POD_NAMESPACE") < position("MAGNETAR_BROKER__TIER__INTERNAL_ADDRESS"), "{names:?}");
    let headless = object(&objects, "Service", "mg-magnetar-headless");
    assert_eq!(text(&headless["spec"]["clusterIP"]), "None");
    assert_eq!(headless["spec"]["ports"][0]["port"].as_u64(), Some(8080));
    // A draining broker is not ready but still owns bundles the others forward to.
    assert_eq!(headless["spec"]["publishNotReadyAddresses"].as_bool(), Some(true));
    assert_eq!(&headless["spec"]["selector"], &sts["spec"]["selector"]["matchLabels"]);

    // Readiness on /readyz (503 while draining), a grace period longer than the drain.
    assert_eq!(text(&container["readinessProbe"]["httpGet"]["path"]), "/readyz");
    assert_eq!(pod["terminationGracePeriodSeconds"].as_u64(), Some(60));

    let budgets = pdbs(&objects);
    assert_eq!(budgets.len(), 1);
    assert_eq!(budgets[0]["spec"]["maxUnavailable"].as_u64(), Some(1));
    assert_eq!(&budgets[0]["spec"]["selector"]["matchLabels"], &sts["spec"]["selector"]["matchLabels"]);

    let preferred = &pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0];
    assert_eq!(text(&preferred["podAffinityTerm"]["topologyKey"]), "kubernetes.io/hostname");
    assert_eq!(&preferred["podAffinityTerm"]["labelSelector"]["matchLabels"], &sts["spec"]["selector"]["matchLabels"]);

    // Tunables reach the configuration; the budget is configurable.
    let objects = render(&required_and(&[
        ("replicas", "5"),
        ("podDisruptionBudget.maxUnavailable", "2"),
        ("tier.drainTimeoutSeconds", "40"),
        ("tier.refreshIntervalMs", "250"),
        ("membership.leaseMs", "8000"),
        ("podAntiAffinity", "required"),
    ]))
    .expect("render five brokers");
    assert_eq!(pdbs(&objects)[0]["spec"]["maxUnavailable"].as_u64(), Some(2));
    let config = config_of(&objects);
    assert_eq!(config["broker"]["tier"]["drain_timeout_ms"].as_integer(), Some(40_000));
    assert_eq!(config["broker"]["tier"]["refresh_interval_ms"].as_integer(), Some(250));
    assert_eq!(config["broker"]["membership"]["lease_ms"].as_integer(), Some(8000));
    let sts = object(&objects, "StatefulSet", "mg-magnetar");
    let required = &sts["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        [0];
    assert_eq!(text(&required["topologyKey"]), "kubernetes.io/hostname");
}

#[test]
fn one_replica_renders_no_tier_and_no_disruption_budget_unless_the_tier_is_kept_on() {
    let objects = render(&required_and(&[])).expect("render one broker");
    assert_eq!(object(&objects, "StatefulSet", "mg-magnetar")["spec"]["replicas"].as_u64(), Some(1));
    assert!(config_of(&objects)["broker"].get("tier").is_none());
    assert!(pdbs(&objects).is_empty());
    let container = &object(&objects, "StatefulSet", "mg-magnetar")["spec"]["template"]["spec"]["containers"][0];
    let names: Vec<&str> = container["env"].as_sequence().unwrap().iter().map(|e| text(&e["name"])).collect();
    assert!(!names.contains(&"MAGNETAR_BROKER__TIER__INTERNAL_ADDRESS"), "{names:?}");
    // No drain without the tier: a short grace period is fine.
    render(&required_and(&[("terminationGracePeriodSeconds", "10")])).expect("one broker, short grace");

    // A tier scaled down to one broker keeps the tier on when asked to.
    let objects = render(&required_and(&[("tier.enabled", "true")])).expect("a one-broker tier");
    assert_eq!(config_of(&objects)["broker"]["tier"]["enabled"].as_bool(), Some(true));
    assert!(pdbs(&objects).is_empty(), "a budget over one broker would block every node drain");
    // Disabled by value with one broker, and the budget can be left out.
    let objects = render(&required_and(&[("tier.enabled", "false")])).expect("tier off");
    assert!(config_of(&objects)["broker"].get("tier").is_none());
    let objects =
        render(&required_and(&[("replicas", "3"), ("podDisruptionBudget.enabled", "false")])).expect("no budget");
    assert!(pdbs(&objects).is_empty());
}

#[test]
fn a_grace_period_not_above_the_drain_timeout_or_a_tier_switched_off_is_refused_naming_the_values() {
    for (grace, drain) in [("25", "25"), ("20", "30")] {
        let err = render(&required_and(&[
            ("replicas", "3"),
            ("terminationGracePeriodSeconds", grace),
            ("tier.drainTimeoutSeconds", drain),
        ]))
        .expect_err("a grace period the drain does not fit in must not render");
        assert!(err.contains(&format!("terminationGracePeriodSeconds ({grace})")), "{err}");
        assert!(err.contains(&format!("tier.drainTimeoutSeconds ({drain})")), "{err}");
    }
    // Also for a one-broker tier, which drains too.
    let err = render(&required_and(&[("tier.enabled", "true"), ("terminationGracePeriodSeconds", "5")]))
        .expect_err("a one-broker tier drains too");
    assert!(err.contains("terminationGracePeriodSeconds (5)"), "{err}");
    let err = render(&required_and(&[("replicas", "3"), ("tier.enabled", "false")]))
        .expect_err("several brokers without the tier");
    assert!(err.contains("tier.enabled=false") && err.contains("replicas=3"), "{err}");
    let err = render(&required_and(&[("replicas", "0")])).expect_err("no broker");
    assert!(err.contains("replicas"), "{err}");
}

/// Pod 0 of a three-broker release, run as rendered: it joins the tier under its pod's stable
/// name, leads it while alone, owns the bundle of a topic it is sent, and exits cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_of_a_three_replica_release_joins_the_tier_under_its_pod_name() {
    let cluster = format!("helm-tier-{}-{}", std::process::id(), free_port());
    let values = live_values(&cluster);
    let objects = render(&with_values(&values, &[("replicas", "3")])).expect("render three brokers");
    let mut pod = Pod::start(&objects, "mg-magnetar-0").await;
    let own = format!("mg-magnetar-0.mg-magnetar-headless.{NAMESPACE}.svc.cluster.local:8080");
    assert_eq!(pod.env("MAGNETAR_BROKER__TIER__INTERNAL_ADDRESS"), Some(own.as_str()));

    let c = reqwest::Client::new();
    let ops = hs256_token(&pod.key, "ops", 600);
    let base = pod.broker.base.clone();
    let get = |path: &str| c.get(format!("{base}{path}")).bearer_auth(&ops).send();
    let brokers: Value = get(&format!("/admin/v2/brokers/{cluster}")).await.unwrap().json().await.unwrap();
    assert_eq!(brokers, json!([own]));
    let leader: Value = get("/admin/v2/brokers/leaderBroker").await.unwrap().json().await.unwrap();
    assert_eq!(leader["brokerId"], json!(own), "{leader}");

    let put = |path: &str, body: Value| c.put(format!("{base}{path}")).bearer_auth(&ops).json(&body).send();
    assert_eq!(put("/admin/v2/tenants/acme", json!({"allowedClusters": [cluster]})).await.unwrap().status(), 204);
    assert_eq!(
        c.put(format!("{base}/admin/v2/namespaces/acme/app")).bearer_auth(&ops).send().await.unwrap().status(),
        204
    );
    let produced = c
        .post(format!("{base}/topics/persistent/acme/app/events"))
        .bearer_auth(&ops)
        .json(&json!({"messages": [{"payload": "aGVsbG8="}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(produced.status(), 200, "{:?}", produced.text().await);
    let owned: Value =
        get(&format!("/admin/v2/brokers/{cluster}/{own}/ownedNamespaces")).await.unwrap().json().await.unwrap();
    assert!(owned.as_object().is_some_and(|o| o.keys().any(|k| k.starts_with("acme/app/"))), "{owned}");

    // SIGTERM, as the kubelet sends it: a clean exit within the grace period.
    let grace =
        object(&objects, "StatefulSet", "mg-magnetar")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
            .as_u64()
            .unwrap();
    let started = std::time::Instant::now();
    assert!(pod.broker.terminate().success());
    assert!(started.elapsed().as_secs() < grace, "shutdown took {:?}", started.elapsed());
}
