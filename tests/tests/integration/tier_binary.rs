//! Pulsar's binary protocol in the broker tier (issue 12, items 3 and 4): three `magnetar broker`
//! processes on one PostgreSQL and the shared S3 server, and Pulsar's Python client (the C++
//! client inside) given one broker's `pulsar://` URL. Lookups name each partition's owner, the
//! broker the client reached proxies its connections to the owners, and bundle moves (admin
//! unloads, a SIGTERM drain) close producers and consumers so that they carry on at the next
//! owner, with every acknowledged message stored once and received.

use crate::common::tier::{
    acked_ids, assert_stored_exactly_once, bundle_of, drain_subscription, expect, namespace, ownership, tier_config,
};
use crate::common::tls::TestCa;
use futures::{SinkExt, StreamExt};
use magnetar_protocol::proto::{CommandConnect, CommandLookupTopic, CommandPing, LookupResult, ServerError};
use magnetar_protocol::{Frame, PulsarCodec};
use magnetar_tests::{BrokerProcess, call, free_port};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

pub(crate) const TOPIC: &str = "acme/app/binary";
pub(crate) const PARTITIONS: u32 = 12;

/// A broker of the tier with its `pulsar://` URL.
pub(crate) struct Member {
    pub(crate) process: BrokerProcess,
    pub(crate) pulsar: String,
}

pub(crate) fn start(dir: &Path, cfg: &str) -> Member {
    let addr = format!("127.0.0.1:{}", free_port());
    let process = BrokerProcess::start_cluster(dir, cfg, &[("MAGNETAR_BINARY__ADDR", addr.as_str())]);
    Member { process, pulsar: format!("pulsar://{addr}") }
}

async fn three_brokers(dir: &Path) -> (Vec<Member>, reqwest::Client) {
    three_brokers_with(dir, tier_config().await).await
}

pub(crate) async fn three_brokers_with(dir: &Path, cfg: String) -> (Vec<Member>, reqwest::Client) {
    let members = ["a", "b", "c"].iter().map(|n| start(&dir.join(n), &cfg)).collect::<Vec<_>>();
    let c = reqwest::Client::new();
    let base = &members[0].process.base;
    namespace(&c, base).await;
    let url = format!("{base}/admin/v2/persistent/{TOPIC}/partitions");
    expect(call(&c, Method::PUT, &url, Some(json!(PARTITIONS))).await, 204, "partitioned topic");
    (members, c)
}

pub(crate) fn partition(i: u32) -> String {
    format!("{TOPIC}-partition-{i}")
}

/// Runs a scenario of tests/python/tier_scenarios.py on `TOPIC` to its end; fails the test with
/// the client's output if it fails. Returns the result it printed and the client's log.
async fn scenario(url: &str, name: &str, extra: &[&str]) -> (Value, String) {
    scenario_in("tier_scenarios.py", url, name, TOPIC, extra).await
}

pub(crate) async fn scenario_in(script: &str, url: &str, name: &str, topic: &str, extra: &[&str]) -> (Value, String) {
    scenario_with_env(script, url, name, topic, extra, &[]).await
}

/// [`scenario_in`] with environment variables for the client (`MAGNETAR_TLS_CA`: the
/// certificate a TLS client trusts).
async fn scenario_with_env(
    script: &str,
    url: &str,
    name: &str,
    topic: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (Value, String) {
    let script = format!("{}/python/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut cmd = tokio::process::Command::new(crate::pulsar_client::python());
    cmd.envs(env.iter().copied());
    cmd.arg(script)
        .arg(name)
        .arg(url)
        .arg(format!("persistent://{topic}"))
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().expect("run the Python client");
    let out = tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("scenario {name} did not finish within 90 s"))
        .expect("the Python client ran");
    let result = crate::pulsar_client::scenario_result(name, &out);
    let log = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (result, log)
}

/// `broker address → partitions` whose bundle it owns, once every partition's bundle is owned
/// (a bundle handed over is `assigning` until its next owner takes it).
pub(crate) async fn owners(c: &reqwest::Client, base: &str) -> BTreeMap<String, Vec<u32>> {
    let mut bundles = Vec::new();
    for i in 0..PARTITIONS {
        bundles.push(bundle_of(c, base, &partition(i)).await);
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (owned, unavailable) = ownership(c, base).await;
        assert!(!unavailable, "a bundle is unavailable: {owned:?}");
        if bundles.iter().all(|b| owned.contains_key(b)) {
            let mut by_owner: BTreeMap<String, Vec<u32>> = BTreeMap::new();
            for (i, bundle) in bundles.iter().enumerate() {
                by_owner.entry(owned[bundle].clone()).or_default().push(i as u32);
            }
            return by_owner;
        }
        assert!(Instant::now() < deadline, "the partitions' bundles are not all owned after 15 s: {owned:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Unloads, one after the other, every bundle holding a partition of `TOPIC`, asking the broker
/// at `via` (admin requests go to the owner); checks the partitions moved and returns the
/// owners after.
pub(crate) async fn move_every_bundle(c: &reqwest::Client, base: &str, via: &str) -> BTreeMap<String, Vec<u32>> {
    let mut bundles = BTreeSet::new();
    for i in 0..PARTITIONS {
        bundles.insert(bundle_of(c, base, &partition(i)).await);
    }
    let before = owners(c, base).await;
    for bundle in &bundles {
        let range = bundle.trim_start_matches("acme/app/");
        let url = format!("{via}/admin/v2/namespaces/acme/app/{range}/unload");
        expect(call(c, Method::PUT, &url, None).await, 204, "bundle unload");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let after = owners(c, base).await;
    eprintln!("owners before the unloads {before:?}, after {after:?}");
    assert_ne!(before, after, "the unloads moved partitions");
    after
}

/// Prints (never asserts) the client's median send time on the partitions the broker it was
/// given owns and on the others (proxied, or reached directly with `lookup_owner_address`).
fn report_send_times(result: &Value, by_owner: &BTreeMap<String, Vec<u32>>, given: &str) {
    let median = |p: u32| result["send_median_ms"][p.to_string()].as_f64().unwrap_or(f64::NAN);
    let (mut here, mut elsewhere) = (Vec::new(), Vec::new());
    for (owner, parts) in by_owner {
        for p in parts {
            if owner == given { here.push(median(*p)) } else { elsewhere.push(median(*p)) }
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    eprintln!(
        "subscribe {} ms, create producer {} ms (12 partitions); median send: {:.2} ms on the given broker's partitions, {:.2} ms on the others'",
        result["subscribe_ms"],
        result["create_producer_ms"],
        mean(&here),
        mean(&elsewhere)
    );
}

pub(crate) async fn metric(c: &reqwest::Client, base: &str, name: &str) -> f64 {
    let text = c.get(format!("{base}/metrics")).send().await.expect("metrics").text().await.expect("text");
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_given_one_broker_produces_and_consumes_on_partitions_owned_by_three_brokers() {
    let dir = tempfile::tempdir().unwrap();
    let (members, c) = three_brokers(dir.path()).await;
    let base = &members[0].process.base;
    let started = Instant::now();
    let (result, _) = scenario(&members[0].pulsar, "partitions", &[&PARTITIONS.to_string()]).await;
    eprintln!("scenario: {result} in {} ms", started.elapsed().as_millis());
    assert_eq!(result["partitions"], PARTITIONS);

    // The lookups assigned the partitions' bundles over all three brokers, and each partition
    // was served by its owner: the two the client was not given through the one it was.
    let by_owner = owners(&c, base).await;
    report_send_times(&result, &by_owner, &members[0].process.addr);
    assert_eq!(by_owner.len(), 3, "the partitions' bundles are spread over the three brokers: {by_owner:?}");
    let proxied = metric(&c, base, "magnetar_forwarded_requests_total").await;
    assert!(proxied >= 2.0, "broker a proxied connections to the two others: {proxied}");
    for m in &members[1..] {
        assert!(
            by_owner.contains_key(&m.process.addr),
            "broker {} owns a partition and served it: {by_owner:?}",
            m.process.addr
        );
    }
}

/// Three brokers with token authentication and a `pulsar+ssl://` listener each (the test's CA
/// issued their certificate and is trusted for client certificates), the 12-partition topic,
/// and Pulsar's Python client given broker a's TLS URL, authenticating with its certificate as
/// `orders-app` (granted produce and consume, not a superuser). Without `lookup_owner_address`
/// the brokers proxy to each other over TLS (`proxy_tls_enabled`, trusting the test's CA).
/// Returns the members with their TLS URLs, the root HTTP client and the client's log.
async fn tls_tier_scenario(dir: &Path, lookup_owner_address: bool) -> (Vec<(Member, String)>, reqwest::Client, String) {
    let ca = TestCa::new(dir, "tier");
    let (server, client) = (ca.server(&["127.0.0.1"]), ca.client("orders-app"));
    let auth = format!("\n[auth]\nenabled = true\ntoken_secret_key = \"{SECRET}\"\nsuperuser_roles = [\"root\"]\n");
    let mut cfg = tier_config().await + &auth;
    if lookup_owner_address {
        cfg = cfg
            .replace("[broker.tier]\nenabled = true\n", "[broker.tier]\nenabled = true\nlookup_owner_address = true\n");
        assert!(cfg.contains("lookup_owner_address = true"), "{cfg}");
    }
    let members: Vec<(Member, String)> = ["a", "b", "c"]
        .iter()
        .map(|n| {
            let (addr, tls) = (format!("127.0.0.1:{}", free_port()), format!("127.0.0.1:{}", free_port()));
            let env = [
                ("MAGNETAR_BINARY__ADDR", addr.as_str()),
                ("MAGNETAR_BINARY__TLS_ADDR", tls.as_str()),
                ("MAGNETAR_BINARY__TLS_CERT_FILE", server.cert_file.as_str()),
                ("MAGNETAR_BINARY__TLS_KEY_FILE", server.key_file.as_str()),
                ("MAGNETAR_BINARY__TLS_TRUST_CERTS_FILE", ca.cert_file.as_str()),
                ("MAGNETAR_BINARY__PROXY_TLS_ENABLED", if lookup_owner_address { "false" } else { "true" }),
                ("MAGNETAR_BINARY__PROXY_TLS_TRUST_CERTS_FILE", ca.cert_file.as_str()),
            ];
            let process = BrokerProcess::start_cluster(&dir.join(n), &cfg, &env);
            (Member { process, pulsar: format!("pulsar://{addr}") }, format!("pulsar+ssl://{tls}"))
        })
        .collect();
    let c = root_client();
    let base = &members[0].0.process.base;
    namespace(&c, base).await;
    let grant = format!("{base}/admin/v2/namespaces/acme/app/permissions/orders-app");
    expect(call(&c, Method::POST, &grant, Some(json!(["produce", "consume"]))).await, 204, "grant");
    let url = format!("{base}/admin/v2/persistent/{TOPIC}/partitions");
    expect(call(&c, Method::PUT, &url, Some(json!(PARTITIONS))).await, 204, "partitioned topic");
    let env = [
        ("MAGNETAR_TLS_CA", ca.cert_file.as_str()),
        ("MAGNETAR_TLS_CERT", client.cert_file.as_str()),
        ("MAGNETAR_TLS_KEY", client.key_file.as_str()),
    ];
    let (result, log) =
        scenario_with_env("tier_scenarios.py", &members[0].1, "partitions", TOPIC, &[&PARTITIONS.to_string()], &env)
            .await;
    assert_eq!(result["partitions"], PARTITIONS);
    let by_owner = owners(&c, base).await;
    assert_eq!(by_owner.len(), 3, "the partitions' bundles are spread over the three brokers: {by_owner:?}");
    for (m, _) in &members[1..] {
        let plain = format!("-> {}] Connected to broker", m.pulsar.trim_start_matches("pulsar://"));
        assert!(!log.contains(&plain), "the TLS client connected to a plain listener:\n{log}");
    }
    (members, c, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_client_given_one_broker_is_proxied_to_the_owners_of_every_partition() {
    // The broker the client reached vouches for its certificate's role to the owners.
    let dir = tempfile::tempdir().unwrap();
    let (members, c, log) = tls_tier_scenario(dir.path(), false).await;
    // Every connection went to broker a's TLS listener; a proxied the others' partitions.
    assert!(log.contains(&format!("-> {}]", members[0].1)), "the client connected over TLS:\n{log}");
    assert!(log.contains("through proxy"), "the client was proxied to the other owners:\n{log}");
    let proxied = metric(&c, &members[0].0.process.base, "magnetar_forwarded_requests_total").await;
    assert!(proxied >= 2.0, "broker a proxied connections to the two others: {proxied}");
    // The client reached only broker a: the TLS connections the two others accepted are a's
    // proxied ones (`proxy_tls_enabled`).
    for (m, _) in &members[1..] {
        let tls = metric(&c, &m.process.base, "magnetar_binary_tls_connections_total").await;
        assert!(tls >= 1.0, "broker a reached {} over TLS: {tls}", m.process.base);
    }
}

/// A broker of the tier with a `pulsar://` listener and the extra environment `env`.
fn start_with(dir: &Path, cfg: &str, env: &[(&str, &str)]) -> Member {
    let addr = format!("127.0.0.1:{}", free_port());
    let env: Vec<(&str, &str)> =
        [("MAGNETAR_BINARY__ADDR", addr.as_str())].into_iter().chain(env.iter().copied()).collect();
    Member { process: BrokerProcess::start_cluster(dir, cfg, &env), pulsar: format!("pulsar://{addr}") }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_proxy_tls_a_broker_reaches_owners_only_over_verified_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, other) = (TestCa::new(dir.path(), "tier"), TestCa::new(dir.path(), "other"));
    let server = ca.server(&["127.0.0.1"]);
    let cfg = tier_config().await;
    fn proxy(trust: &TestCa) -> [(&'static str, &str); 2] {
        [
            ("MAGNETAR_BINARY__PROXY_TLS_ENABLED", "true"),
            ("MAGNETAR_BINARY__PROXY_TLS_TRUST_CERTS_FILE", &trust.cert_file),
        ]
    }
    // a proxies over TLS trusting the tier's CA and has no TLS listener itself; b has a TLS
    // listener with the tier's certificate; d proxies over TLS trusting another CA.
    let a = start_with(&dir.path().join("a"), &cfg, &proxy(&ca));
    let tls = format!("127.0.0.1:{}", free_port());
    let b_env = [
        ("MAGNETAR_BINARY__TLS_ADDR", tls.as_str()),
        ("MAGNETAR_BINARY__TLS_CERT_FILE", server.cert_file.as_str()),
        ("MAGNETAR_BINARY__TLS_KEY_FILE", server.key_file.as_str()),
    ];
    let b = start_with(&dir.path().join("b"), &cfg, &b_env);
    let d = start_with(&dir.path().join("d"), &cfg, &proxy(&other));
    let c = reqwest::Client::new();

    // a -> b: over b's TLS listener (the client names b's plain URL, as lookups give it).
    assert_proxied(&a, &b).await;
    assert_eq!(metric(&c, &b.process.base, "magnetar_binary_tls_connections_total").await, 1.0);

    // d -> b: b's certificate is not signed by what d trusts: refused, retriably, with the reason.
    assert_refused(&d, b.pulsar.trim_start_matches("pulsar://"), "TLS handshake failed").await;
    assert_eq!(metric(&c, &b.process.base, "magnetar_binary_tls_connections_total").await, 1.0);

    // d -> a: a has no TLS listener; d does not fall back to plain TCP.
    assert_refused(&d, a.pulsar.trim_start_matches("pulsar://"), "no pulsar+ssl:// listener").await;
    drop((a, b, d));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_lookup_owner_address_a_tls_client_connects_to_each_owners_tls_listener() {
    let dir = tempfile::tempdir().unwrap();
    let (members, _, log) = tls_tier_scenario(dir.path(), true).await;
    // (magnetar_forwarded_requests_total also counts admin requests forwarded over HTTP, so the
    // client's own log says whether it was proxied.)
    assert!(!log.contains("through proxy"), "the client connected through a proxy:\n{log}");
    for (_, tls) in &members {
        let direct = format!("-> {}] Connected to broker", tls.trim_start_matches("pulsar+ssl://"));
        assert!(log.contains(&direct), "the client connected to {tls} itself:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_lookup_owner_address_the_client_connects_to_each_owner_directly() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tier_config().await;
    let cfg =
        cfg.replace("[broker.tier]\nenabled = true\n", "[broker.tier]\nenabled = true\nlookup_owner_address = true\n");
    assert!(cfg.contains("lookup_owner_address = true"), "{cfg}");
    let (members, c) = three_brokers_with(dir.path(), cfg).await;
    let base = &members[0].process.base;
    let (result, log) = scenario(&members[0].pulsar, "partitions", &[&PARTITIONS.to_string()]).await;
    assert_eq!(result["partitions"], PARTITIONS);
    let by_owner = owners(&c, base).await;
    report_send_times(&result, &by_owner, &members[0].process.addr);
    assert_eq!(by_owner.len(), 3, "the partitions' bundles are spread over the three brokers: {by_owner:?}");
    // Lookups named the owners' advertised URLs: the client connected to each, not through a.
    assert!(!log.contains("through proxy"), "the client connected through a proxy:\n{log}");
    for m in &members[1..] {
        assert!(log.contains(&format!("-> {}] Connected to broker", m.pulsar.trim_start_matches("pulsar://"))));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_clients_carry_on_across_bundle_unloads_and_a_sigterm_without_losing_or_duplicating() {
    let dir = tempfile::tempdir().unwrap();
    let (mut members, c) = three_brokers(dir.path()).await;
    let base = members[0].process.base.clone();
    for i in 0..PARTITIONS {
        let url = format!("{base}/admin/v2/persistent/{}/subscription/audit", partition(i));
        expect(call(&c, Method::PUT, &url, None).await, 204, "audit subscription");
    }
    let stop = dir.path().join("stop");
    let url = members[0].pulsar.clone();
    let stop_file = stop.clone();
    let client = tokio::spawn(async move {
        let stop_arg = stop_file.display().to_string();
        scenario(&url, "under_moves", &[&stop_arg]).await
    });

    // Producing through broker a to partitions on all three.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stats = call(&c, Method::GET, &format!("{base}/admin/v2/persistent/{TOPIC}/partitioned-stats"), None).await;
        let stored = stats.1["msgInCounter"].as_u64().unwrap_or(0);
        if stored >= 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the client produced {stored} messages in 20 s: {}", stats.1);
        assert!(!client.is_finished(), "the client ended early");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Every bundle holding a partition moves (asked of broker b), one after the other.
    let after = move_every_bundle(&c, &base, &members[1].process.base).await;

    // Then the broker (not the one the client was given) owning most partitions stops.
    let victim = if after.get(&members[1].process.addr).map_or(0, Vec::len)
        >= after.get(&members[2].process.addr).map_or(0, Vec::len)
    {
        1
    } else {
        2
    };
    let mut stopped = members.remove(victim).process;
    let victim_addr = stopped.addr.clone();
    assert!(after.contains_key(&victim_addr), "broker {victim_addr} owns a partition before it stops: {after:?}");
    let (stopped, status) = tokio::task::spawn_blocking(move || {
        let status = stopped.terminate();
        (stopped, status)
    })
    .await
    .unwrap();
    assert!(status.success(), "broker {victim_addr} exited with {status}");
    let last = owners(&c, &base).await;
    assert!(!last.contains_key(&victim_addr), "{victim_addr} owns nothing after its drain: {last:?}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    std::fs::write(&stop, b"stop").expect("stop file");
    let (result, log) = client.await.expect("client task");

    let acked = acked_ids(&result);
    let reconnects = log.lines().filter(|l| l.contains("Schedule reconnection") || l.contains("reconnect")).count();
    let errors: Vec<&str> = log.lines().filter(|l| l.contains(" ERROR ")).collect();
    eprintln!(
        "client: {} sent, {} acknowledged, {} redelivered, {reconnects} reconnection lines, {} error lines",
        result["sent"],
        acked.len(),
        result["redelivered"],
        errors.len()
    );
    assert!(acked.len() > 500, "the load ran: {} acknowledged", acked.len());
    assert!(reconnects > 0, "the moves made the client reconnect:\n{log}");
    // Proxied clients are never sent to a broker's own address (they may not reach it; PIP-307's
    // redirect is for `lookup_owner_address`, tier_binary_redirect.rs): they look up again.
    assert!(!log.contains("assignedBrokerUrl"), "a proxied client was sent to a broker's address:\n{log}");
    assert!(errors.is_empty(), "the client logged errors:\n{}", errors.join("\n"));

    // Stored once each, wherever the partition was when it was sent.
    let mut stored: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..PARTITIONS {
        for (id, n) in drain_subscription(&c, &base, &partition(i), "audit").await {
            *stored.entry(id).or_default() += n;
        }
    }
    assert_stored_exactly_once(&acked, &stored);
    drop(stopped);
}

/// A raw CONNECT to `member` naming `proxy_to` (as the C++ client does, `host:port`), and the
/// first frame answered.
async fn connect_through(member: &Member, proxy_to: &str) -> (Framed<TcpStream, PulsarCodec>, Frame) {
    let addr = member.pulsar.trim_start_matches("pulsar://");
    let mut conn = Framed::new(TcpStream::connect(addr).await.expect("connect"), PulsarCodec::new());
    let connect = CommandConnect {
        client_version: "magnetar-test".into(),
        protocol_version: Some(21),
        proxy_to_broker_url: Some(proxy_to.to_string()),
        ..Default::default()
    };
    conn.send(Frame::new(connect)).await.expect("send CONNECT");
    let reply = crate::binary_frames::next(&mut conn).await;
    (conn, reply)
}

/// A raw CONNECT to `via` naming `to`'s listener reaches `to`: CONNECTED, then PING answered.
async fn assert_proxied(via: &Member, to: &Member) {
    let (mut conn, reply) = connect_through(via, to.pulsar.trim_start_matches("pulsar://")).await;
    assert!(reply.command.connected.is_some(), "{reply:?}");
    conn.send(Frame::new(CommandPing {})).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while crate::binary_frames::next(&mut conn).await.command.pong.is_none() {
        assert!(Instant::now() < deadline, "no PONG through {}", via.pulsar);
    }
}

/// A raw CONNECT to `via` naming `target` is refused retriably, with a reason saying `says`.
async fn assert_refused(via: &Member, target: &str, says: &str) {
    let (_, reply) = connect_through(via, target).await;
    let error = reply.command.error.clone().unwrap_or_else(|| panic!("CONNECT to {target} answered {reply:?}"));
    assert_eq!(error.error, ServerError::ServiceNotReady as i32, "{error:?}");
    assert!(error.message.contains(says), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_proxies_only_to_the_binary_listener_of_a_live_member_of_its_tier() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tier_config().await;
    let (a, b) = (start(&dir.path().join("a"), &cfg), start(&dir.path().join("b"), &cfg));

    // An address outside the tier: refused with a retriable error, and never connected to.
    let outside = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = outside.local_addr().unwrap().to_string();
    assert_refused(&a, &target, &target).await;
    let accepted = tokio::time::timeout(Duration::from_millis(500), outside.accept()).await;
    assert!(accepted.is_err(), "broker a connected to {target}, which no member registered");

    // Broker b's listener: the connection is b's, through a (CONNECTED, then PING answered).
    assert_proxied(&a, &b).await;
    drop((a, b));
}

const SECRET: &str = "magnetar-tier-binary-test-secret-0123456789abcdef";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_refreshed_through_auth_challenge_keeps_a_proxied_connection_open() {
    let dir = tempfile::tempdir().unwrap();
    let auth = format!("\n[auth]\nenabled = true\ntoken_secret_key = \"{SECRET}\"\nsuperuser_roles = [\"root\"]\n");
    let cfg = tier_config().await + &auth;
    let (a, b) = (start(&dir.path().join("a"), &cfg), start(&dir.path().join("b"), &cfg));
    let c = root_client();
    namespace(&c, &a.process.base).await;
    let topic = "acme/app/refresh";
    let url = format!("{}/admin/v2/persistent/{topic}", a.process.base);
    expect(call(&c, Method::PUT, &url, None).await, 204, "topic");

    // The topic's bundle on b, so that the client given a is proxied there.
    place_on(&c, topic, &a, &b).await;

    let short = magnetar_tests::hs256_token(SECRET, "root", 5);
    let fresh = magnetar_tests::hs256_token(SECRET, "root", 600);
    let (result, log) = scenario_in("tier_scenarios.py", &a.pulsar, "token_refresh", topic, &[&short, &fresh]).await;
    eprintln!("token refresh through the proxy: {result}");
    assert!(log.contains("through proxy"), "the producer and consumer were proxied to b:\n{log}");
    // Both connections (a's own and the one spliced to b) opened with the short token and were
    // refreshed in place: neither was closed.
    assert!(result["connect_calls"].as_u64().is_some_and(|n| n >= 2), "{result}");
    assert!(result["refresh_calls"].as_u64().is_some_and(|n| n >= 2), "{result}");
    let before_close = log.split("Closing Pulsar client").next().unwrap_or_default();
    assert!(
        !before_close.contains("Connection disconnected") && !before_close.contains("Schedule reconnection"),
        "a connection was closed before the client closed:\n{log}"
    );
}

/// An HTTP client calling as the superuser `root` of the brokers configured with `SECRET`.
fn root_client() -> reqwest::Client {
    magnetar_tests::bearer_client(&magnetar_tests::hs256_token(SECRET, "root", 600))
}

/// Moves `topic`'s bundle (unloading it through `from`) until `to` owns it.
async fn place_on(c: &reqwest::Client, topic: &str, from: &Member, to: &Member) {
    let base = &from.process.base;
    let bundle = bundle_of(c, base, topic).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let owner = ownership(c, base).await.0.get(&bundle).cloned();
        if owner.as_deref() == Some(to.process.addr.as_str()) {
            return;
        }
        assert!(Instant::now() < deadline, "{bundle} not on broker {} within 15 s: {owner:?}", to.process.addr);
        if owner.as_deref() == Some(from.process.addr.as_str()) {
            let range = bundle.trim_start_matches("acme/app/");
            let unload = format!("{base}/admin/v2/namespaces/acme/app/{range}/unload");
            expect(call(c, Method::PUT, &unload, None).await, 204, "bundle unload");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_of_a_partition_whose_owner_died_fails_retriably_in_the_lookup_response() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tier_config().await;
    let (a, mut b) = (start(&dir.path().join("a"), &cfg), start(&dir.path().join("b"), &cfg));
    let c = reqwest::Client::new();
    namespace(&c, &a.process.base).await;
    let topic = "acme/app/orphaned";
    let url = format!("{}/admin/v2/persistent/{topic}", a.process.base);
    expect(call(&c, Method::PUT, &url, None).await, 204, "topic");
    place_on(&c, topic, &a, &b).await;
    b.process.kill9();

    // Answered with b's URL while its lease runs, then, in the lookup's own response type,
    // ServiceNotReady saying why (the C++ client waits for that type and retries this code).
    let (mut conn, reply) = connect_through(&a, "").await;
    assert!(reply.command.connected.is_some(), "{reply:?}");
    let deadline = Instant::now() + Duration::from_secs(20);
    for request_id in 1.. {
        let lookup = CommandLookupTopic {
            topic: format!("persistent://{topic}"),
            request_id,
            authoritative: Some(false),
            ..Default::default()
        };
        conn.send(Frame::new(lookup)).await.unwrap();
        let answer = loop {
            let frame = crate::binary_frames::next(&mut conn).await;
            if let Some(answer) = frame.command.lookup_topic_response {
                break answer;
            }
        };
        assert_eq!(answer.request_id, request_id);
        if answer.response == Some(LookupResult::Failed as i32) {
            assert_eq!(answer.error, Some(ServerError::ServiceNotReady as i32), "{answer:?}");
            let message = answer.message.unwrap_or_default();
            assert!(message.contains("not a live member"), "{message}");
            break;
        }
        assert_eq!(answer.broker_service_url.as_deref(), Some(b.pulsar.as_str()), "{answer:?}");
        assert!(Instant::now() < deadline, "still answered with the dead broker after 20 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A quiet client proxied to an owner that freezes (its kernel still acknowledges, so neither
/// keep-alive nor `TCP_USER_TIMEOUT` notices) is let go once the owner's lease expires: the
/// proxying broker closes the connection and the client looks its topics up again. Before, the
/// splice waited for as long as the owner stayed frozen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_proxied_to_an_owner_that_freezes_is_closed_once_its_lease_expires() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tier_config().await;
    let (a, b) = (start(&dir.path().join("a"), &cfg), start(&dir.path().join("b"), &cfg));
    assert_proxied(&a, &b).await;
    let (mut conn, reply) = connect_through(&a, b.pulsar.trim_start_matches("pulsar://")).await;
    assert!(reply.command.connected.is_some(), "{reply:?}");
    b.process.pause();
    let frozen = Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(20), async {
        // Whatever b sent before it froze, then the end of the connection.
        while let Some(Ok(_)) = conn.next().await {}
    })
    .await;
    assert!(closed.is_ok(), "the proxied connection stayed open 20 s after its owner froze (lease 4 s)");
    eprintln!("proxied connection closed {} ms after its owner froze", frozen.elapsed().as_millis());
    b.process.resume();
}
