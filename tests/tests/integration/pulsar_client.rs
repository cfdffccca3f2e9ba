//! Pulsar's binary protocol with Pulsar's official Python client (`pulsar-client`, whose wheel
//! bundles the C++ client) against a real broker: each test starts a broker, runs one scenario
//! of tests/python/pulsar_scenarios.py as a child process (the scenario asserts what the client
//! sees) and checks what the other surfaces see. `scripts/test.sh` installs the client into a
//! venv and exports MAGNETAR_TEST_PYTHON.

use crate::common::tls::{Issued, TestCa};
use crate::common::ws::{WsClient, reader_url};
use crate::common::{create_partitioned, payload_text, produce, pull_n};
use magnetar_tests::TestApp;
use serde_json::{Value, json};
use std::time::Duration;

const SECRET: &str = "magnetar-binary-auth-test-secret-0123456789abcdef";

pub(crate) fn python() -> String {
    std::env::var("MAGNETAR_TEST_PYTHON").expect(
        "MAGNETAR_TEST_PYTHON is not set: run the tests through scripts/test.sh, which installs Pulsar's Python \
         client (tests/python/requirements.txt) into a venv, or point it at a python with `pulsar-client` installed",
    )
}

fn full(topic: &str) -> String {
    format!("persistent://public/default/{topic}")
}

/// Runs one scenario; fails the test with the client's output if it fails. Returns the JSON the
/// scenario printed last.
pub(crate) async fn scenario(url: &str, name: &str, topic: &str, extra: &[&str]) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/pulsar_scenarios.py");
    let mut cmd = tokio::process::Command::new(python());
    cmd.arg(script).arg(name).arg(url).arg(full(topic)).args(extra).kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("scenario {name} did not finish within 120 s"))
        .expect("run the Python client");
    scenario_result(name, &out)
}

/// What a finished Python scenario printed last (a JSON line); fails the test with the client's
/// output if the scenario failed or printed none.
pub(crate) fn scenario_result(name: &str, out: &std::process::Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "scenario {name} failed ({}):\n{stdout}\n--- stderr ---\n{stderr}", out.status);
    // The C++ client may log to stdout after the scenario's result (while it is torn down).
    let last = stdout
        .lines()
        .rfind(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("scenario {name} printed no result:\n{stdout}"));
    serde_json::from_str(last).unwrap_or_else(|e| panic!("scenario {name} printed `{last}`: {e}"))
}

/// The ERROR lines of a C++ client's log, but for its refused attempts to connect to `down`
/// (`host:port` of a broker that was stopped or killed while the client kept it in its service
/// URL): those are how it reconnects.
pub(crate) fn client_errors<'a>(log: &'a str, down: &str) -> Vec<&'a str> {
    let refused = |l: &str| l.contains(&format!("-> pulsar://{down}]")) && l.contains("Connection refused");
    log.lines().filter(|l| l.contains(" ERROR ") && !refused(l)).collect()
}

#[tokio::test]
async fn produce_and_consume_without_batching_keeps_keys_properties_and_event_time() {
    let app = TestApp::standalone().await;
    scenario(&app.pulsar_url(), "produce_consume_unbatched", "plain", &[]).await;
}

#[tokio::test]
async fn produce_and_consume_with_batching() {
    let app = TestApp::standalone().await;
    scenario(&app.pulsar_url(), "produce_consume_batched", "batched", &[]).await;
    // Every message of the batches is a message of its own for the other surfaces.
    let got = pull_n(&app, "batched", "http", 51, 30_000).await;
    let texts: Vec<String> = got.iter().map(payload_text).collect();
    let mut expected: Vec<String> = (0..50).map(|i| format!("m-{i}")).collect();
    expected.push("last".into());
    assert_eq!(texts, expected);
    assert_eq!(got[7]["key"], "k1");
    assert_eq!(got[7]["properties"]["i"], "7");
}

#[tokio::test]
async fn the_four_subscription_types() {
    let app = TestApp::standalone().await;
    scenario(&app.pulsar_url(), "subscription_types", "types", &[]).await;
}

#[tokio::test]
async fn individual_cumulative_and_negative_acks() {
    let app = TestApp::standalone().await;
    scenario(&app.pulsar_url(), "acks", "acks", &[]).await;
}

#[tokio::test]
async fn readers_from_earliest_and_from_a_message_id() {
    let app = TestApp::standalone().await;
    scenario(&app.pulsar_url(), "reader", "reader", &[]).await;
}

#[tokio::test]
async fn seek_to_a_message_id() {
    let app = TestApp::standalone().await;
    scenario(&app.pulsar_url(), "seek", "seek", &[]).await;
}

#[tokio::test]
async fn consumers_out_of_permits_get_every_message_once_in_order_across_seeks_and_shared_consumers() {
    let app = TestApp::standalone().await;
    let out = scenario(&app.pulsar_url(), "read_ahead", "read-ahead", &[]).await;
    let shared = out["shared"].as_object().expect("per consumer");
    assert!(
        shared.len() == 2 && shared.values().all(|n| n.as_u64() > Some(0)),
        "both Shared consumers got messages: {out}"
    );
}

#[tokio::test]
async fn seek_by_time_on_a_consumer_and_by_id_and_time_on_a_reader() {
    let app = TestApp::standalone().await;
    scenario(&app.pulsar_url(), "seek_time", "seek-time", &[]).await;
}

#[tokio::test]
async fn delayed_delivery_holds_messages_back_on_shared_subscriptions() {
    let app = TestApp::standalone().await;
    scenario(&app.pulsar_url(), "delayed", "delayed", &[]).await;
}

#[tokio::test]
async fn a_regex_subscription_picks_up_a_new_topic() {
    let app = TestApp::standalone().await;
    scenario(&app.pulsar_url(), "regex", "rx", &[]).await;
}

#[tokio::test]
async fn an_http_service_url_looks_topics_up_over_http_and_connects_to_the_binary_listener() {
    // Pulsar's clients given `http://` look topics up with /lookup/v2 and the partitions
    // endpoint, then connect to the `brokerUrl` the lookup answers.
    let app = TestApp::standalone().await;
    scenario(&app.base, "produce_consume_batched", "over-http", &[]).await;
    create_partitioned(&app, "parts-over-http", 3).await;
    let out = scenario(&app.base, "partitioned", "parts-over-http", &[]).await;
    assert!(out["partitions"].as_array().is_some_and(|p| p.len() > 1), "{out}");
}

#[tokio::test]
async fn producers_register_schemas_that_producers_and_consumers_of_another_type_cannot_use() {
    let app = TestApp::standalone().await;
    let out = scenario(&app.pulsar_url(), "schemas", "typed", &["register"]).await;
    assert_eq!(out["refused_producer"], "IncompatibleSchema", "{out}");
    assert_eq!(out["refused_consumer"], "IncompatibleSchema", "{out}");
    let schemas = "/admin/v2/schemas/public/default/typed/schemas";
    let versions = |all: &Value| -> Vec<(i64, String, String)> {
        all["getSchemaResponses"]
            .as_array()
            .unwrap_or_else(|| panic!("a list of versions: {all}"))
            .iter()
            .map(|v| {
                let def: Value = serde_json::from_str(v["data"].as_str().expect("a definition")).expect("JSON");
                (v["version"].as_i64().unwrap(), v["type"].as_str().unwrap().to_string(), def["name"].to_string())
            })
            .collect()
    };
    // The first producer's definition, then the evolved one; the repeated one is not stored twice.
    let expected = vec![(0, "JSON".to_string(), "\"Order\"".to_string()), (1, "JSON".into(), "\"OrderV2\"".into())];
    let (status, all) = app.get(schemas).await;
    assert_eq!((status.as_u16(), versions(&all)), (200, expected.clone()), "{all}");
    // Typed messages are plain JSON to the other surfaces.
    let got = pull_n(&app, "typed", "http", 3, 30_000).await;
    let first: Value = serde_json::from_str(&payload_text(&got[0])).expect("a JSON message");
    assert_eq!(first, json!({"id": "o-1", "qty": 3}));

    // Registering off: a new definition is refused, a registered one still produces.
    let ns = "/admin/v2/namespaces/public/default/isAllowAutoUpdateSchema";
    assert_eq!(app.post(ns, Some(json!(false))).await.0, 204);
    let out = scenario(&app.pulsar_url(), "schemas", "typed", &["frozen"]).await;
    assert_eq!(out["refused_producer"], "IncompatibleSchema", "{out}");
    assert_eq!(versions(&app.get(schemas).await.1), expected);
    let got = pull_n(&app, "typed", "frozen-check", 4, 30_000).await;
    assert_eq!(serde_json::from_str::<Value>(&payload_text(&got[3])).unwrap()["id"], "o-4");
}

#[tokio::test]
async fn exclusive_waiting_and_fencing_producers() {
    let app = TestApp::standalone().await;
    let out = scenario(&app.pulsar_url(), "access_modes", "access", &[]).await;
    assert_eq!(out["shared"], "ProducerBusy", "{out}");
    assert_eq!(out["exclusive"], "ProducerFenced", "{out}");
    assert_eq!(out["fenced"], "ProducerFenced", "the fenced producer's sends fail: {out}");
    assert!(out["waited_after_release_s"].as_f64().is_some_and(|s| s < 5.0), "{out}");
}

#[tokio::test]
async fn sticky_key_shared_consumers_get_the_hash_ranges_they_claim() {
    let app = TestApp::standalone().await;
    let out = scenario(&app.pulsar_url(), "sticky", "sticky", &[]).await;
    let slots = |side: &str| -> Vec<u16> {
        out[side]
            .as_array()
            .unwrap_or_else(|| panic!("keys of {side}: {out}"))
            .iter()
            .map(|k| magnetar_core::hash::key_slot(k.as_str().expect("a key").as_bytes()))
            .collect()
    };
    assert!(slots("low").iter().all(|s| *s <= 32767), "{out}");
    assert!(slots("high").iter().all(|s| *s >= 32768), "{out}");
    assert_eq!(out["overlap"], "ConsumerAssignError", "{out}");
    assert_eq!(out["auto"], "ConsumerBusy", "{out}");
}

#[tokio::test]
async fn multi_topic_consumers_table_views_batch_receive_listeners_and_partitioned_readers() {
    let app = TestApp::standalone().await;
    create_partitioned(&app, "features-parts", 3).await;
    let out = scenario(&app.pulsar_url(), "client_features", "features", &[]).await;
    assert_eq!(out["table"], json!({"k1": "3", "k2": "2"}), "the latest value of each key");
    assert_eq!(out["batch_receive"], 5, "{out}");
    assert_eq!(out["listener"], json!(["0", "1", "2", "3", "4"]), "{out}");
    assert_eq!(out["partitioned_reader"], json!(["0", "1", "2", "3", "4", "5"]), "{out}");
    assert_eq!(out["short_name"], "persistent://public/default/features-short", "{out}");
}

#[tokio::test]
async fn partitioned_topic_with_batching() {
    let app = TestApp::standalone().await;
    create_partitioned(&app, "parts", 3).await;
    let out = scenario(&app.pulsar_url(), "partitioned", "parts", &[]).await;
    assert!(out["partitions"].as_array().is_some_and(|p| p.len() > 1), "{out}");
}

#[tokio::test]
async fn token_authentication_good_bad_and_expired() {
    let app = TestApp::with_auth(magnetar_tests::hs256_auth(SECRET)).await;
    let good = magnetar_tests::hs256_token(SECRET, "root", 600);
    scenario(&app.pulsar_url(), "token", "authed", &[&good]).await;
    let forged = magnetar_tests::hs256_token("another-secret-0123456789abcdef-0123456789", "root", 600);
    let out = scenario(&app.pulsar_url(), "token", "authed", &[&format!("bad:{forged}")]).await;
    assert!(out["refused"].is_string(), "{out}");
    // Signed with the right key, expired an hour ago.
    let claims = json!({"sub": "root", "exp": magnetar_core::now_millis() / 1000 - 3600});
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
    let expired = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).expect("token");
    let out = scenario(&app.pulsar_url(), "token", "authed", &[&format!("bad:{expired}")]).await;
    assert!(out["refused"].is_string(), "an expired token is refused: {out}");
}

/// `pulsar_connection_created_total_count` (binary connections and WebSocket sessions).
async fn connections_created(app: &TestApp) -> u64 {
    let root = magnetar_tests::hs256_token(SECRET, "root", 600);
    let body = reqwest::Client::new()
        .get(format!("{}/metrics", app.base))
        .bearer_auth(root)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    body.lines()
        .filter(|l| l.starts_with("pulsar_connection_created_total_count"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[tokio::test]
async fn a_token_expiring_under_a_live_connection_is_refreshed_through_auth_challenge() {
    let app = TestApp::with_auth(magnetar_tests::hs256_auth(SECRET)).await;
    let short = magnetar_tests::hs256_token(SECRET, "root", 5);
    let fresh = magnetar_tests::hs256_token(SECRET, "root", 600);
    let out = scenario(&app.pulsar_url(), "token_refresh", "refresh", &["refresh", &format!("{short},{fresh}")]).await;
    assert!(out["supplier_calls"].as_u64().is_some_and(|n| n >= 2), "{out}");
    // One connection throughout: refreshed in place, never closed and reopened.
    assert_eq!(connections_created(&app).await, 1);
}

#[tokio::test]
async fn a_token_expiring_without_refresh_closes_the_connection() {
    let app = TestApp::with_auth(magnetar_tests::hs256_auth(SECRET)).await;
    let short = magnetar_tests::hs256_token(SECRET, "root", 5);
    let out = scenario(&app.pulsar_url(), "token_refresh", "expire", &["static", &short]).await;
    assert!(out["refused"].is_string(), "{out}");
    assert!(connections_created(&app).await >= 2, "the client reconnected after the broker closed its connection");
}

#[tokio::test]
async fn binary_messages_are_read_by_http_pull_and_websocket_with_the_same_ids() {
    let app = TestApp::standalone().await;
    let out = scenario(&app.pulsar_url(), "produce_only", "cross", &["5"]).await;
    let ids: Vec<String> =
        out["ids"].as_array().expect("ids").iter().map(|v| v.as_str().unwrap().to_string()).collect();
    let got = pull_n(&app, "cross", "http", 5, 30_000).await;
    for (i, m) in got.iter().enumerate() {
        assert_eq!(payload_text(m), format!("bin-{i}"));
        assert_eq!(m["key"], format!("k{i}"));
        assert_eq!(m["properties"]["i"], i.to_string());
        assert!(m["eventTime"].is_string(), "{m}");
        assert_eq!(m["messageId"], ids[i], "the id the client was given is the id HTTP pull reports");
    }
    let mut ws = WsClient::connect(&reader_url(&app.base, "cross", "messageId=earliest")).await;
    for i in 0..5 {
        let m = ws.recv_message().await;
        assert_eq!(crate::common::unb64(m["payload"].as_str().unwrap()), format!("bin-{i}").as_bytes());
        assert_eq!(m["key"], format!("k{i}"));
    }
}

#[tokio::test]
async fn batched_binary_messages_keep_their_batch_ids_on_every_surface() {
    let app = TestApp::standalone().await;
    let out = scenario(&app.pulsar_url(), "produce_only", "cross-batch", &["5", "batched"]).await;
    let ids: Vec<String> =
        out["ids"].as_array().expect("ids").iter().map(|v| v.as_str().unwrap().to_string()).collect();
    // One batch: one entry, batch indexes 0..4.
    assert!(ids.iter().enumerate().all(|(i, id)| id.ends_with(&format!(":-1:{i}"))), "{ids:?}");
    // HTTP pull gives at most what it is asked for, even inside a batch.
    let two = crate::common::pull(
        &app,
        "cross-batch",
        "two",
        json!({"maxMessages": 2, "waitMs": 5000, "initialPosition": "earliest"}),
    )
    .await;
    assert_eq!(two.len(), 2, "{two:?}");
    let got = pull_n(&app, "cross-batch", "http", 5, 30_000).await;
    for (i, m) in got.iter().enumerate() {
        assert_eq!(payload_text(m), format!("bin-{i}"));
        assert_eq!(m["key"], format!("k{i}"));
        assert_eq!(m["messageId"], ids[i], "HTTP pull gives the id the producer was told, batch index included");
    }
    let mut ws = WsClient::connect(&reader_url(&app.base, "cross-batch", "messageId=earliest")).await;
    for (i, id) in ids.iter().enumerate() {
        let m = ws.recv_message().await;
        assert_eq!(crate::common::unb64(m["payload"].as_str().unwrap()), format!("bin-{i}").as_bytes());
        let ws_id = magnetar_core::MessageId::from_base64(m["messageId"].as_str().unwrap()).expect("a message id");
        assert_eq!(&ws_id.to_text(), id, "WebSocket gives the same id");
    }
    // A binary consumer receives the batch whole, under the same ids.
    let out = scenario(&app.pulsar_url(), "consume_only", "cross-batch", &["5"]).await;
    let seen: Vec<&str> =
        out["messages"].as_array().expect("messages").iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(seen, ids);
    // A cursor reset to message 3 of the batch (Pulsar's body with `batchIndex`) leaves 3 and 4.
    let admin = "/admin/v2/persistent/public/default/cross-batch";
    let (status, body) = app.put(&format!("{admin}/subscription/reset"), None).await;
    assert!(status.is_success(), "{body}");
    let third = magnetar_core::MessageId::parse_text(&ids[3]).unwrap();
    let position = json!({"ledgerId": third.ledger_id, "entryId": third.entry_id, "batchIndex": 3});
    let (status, body) = app.post(&format!("{admin}/subscription/reset/resetcursor"), Some(position)).await;
    assert!(status.is_success(), "{body}");
    let (_, stats) = app.get(&format!("{admin}/stats")).await;
    assert_eq!(stats["subscriptions"]["reset"]["msgBacklog"], 2, "{stats}");
}

#[tokio::test]
async fn batches_are_delivered_whole_and_acknowledged_by_entry_or_batch_index() {
    let app = TestApp::standalone().await;
    scenario(&app.pulsar_url(), "batch_acks", "batch-acks", &[]).await;
    // Every message the client acknowledged, by entry or by batch index, is acknowledged.
    let (status, stats) = app.get("/admin/v2/persistent/public/default/batch-acks/stats").await;
    assert!(status.is_success(), "{stats}");
    for sub in ["whole", "indexes"] {
        assert_eq!(stats["subscriptions"][sub]["msgBacklog"], 0, "{sub}: {stats}");
    }
}

/// The Python scenario's `chunk_payload`: incompressible bytes.
fn chunk_payload(i: u64, size: usize) -> Vec<u8> {
    let mut x = (i * 7919 + 1) as u32;
    (0..size)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (x >> 16) as u8
        })
        .collect()
}

#[tokio::test]
async fn chunked_messages_reach_binary_consumers_readers_and_websocket_whole() {
    // Messages of 150 KB and more go in three chunks and more; a producer's chunks in flight
    // are more than one WAL frame holds, so they are queued a few at a time.
    let app = TestApp::configured(|cfg| {
        cfg.broker.max_message_bytes = 64 * 1024;
        cfg.storage.wal_buffer_bytes = 192 * 1024;
    })
    .await;
    let n = 3;
    let out = scenario(&app.pulsar_url(), "chunking", "chunks", &[&n.to_string()]).await;
    let sizes: Vec<usize> =
        out["sizes"].as_array().expect("sizes").iter().map(|v| v.as_u64().unwrap() as usize).collect();
    let admin = "/admin/v2/persistent/public/default/chunks";
    let (_, stats) = app.get(&format!("{admin}/stats")).await;
    assert_eq!(stats["subscriptions"]["chunks"]["msgBacklog"], 0, "every chunk was acknowledged: {stats}");
    // Each large message is stored as its chunks (3 to 4 of them), each small one as itself.
    let records = stats["msgInCounter"].as_u64().expect("msgInCounter");
    assert!(records > 4 * n as u64 + 2 * n as u64, "{records} records for {} messages", 4 * n);

    // WebSocket: an Exclusive consumer and a reader get each message whole, in order per producer.
    let expected = |k: u64| -> Vec<Vec<u8>> {
        (0..n as u64)
            .flat_map(|i| [chunk_payload(i * 2 + k, sizes[i as usize]), format!("small-{k}-{i}").into_bytes()])
            .collect()
    };
    let query = "subscriptionType=Exclusive&subscriptionInitialPosition=Earliest";
    let mut consumer = WsClient::connect(&crate::common::ws::consumer_url(&app.base, "chunks", "ws", query)).await;
    let mut reader = WsClient::connect(&reader_url(&app.base, "chunks", "messageId=earliest")).await;
    for ws in [&mut consumer, &mut reader] {
        let mut seen: [Vec<Vec<u8>>; 2] = [Vec::new(), Vec::new()];
        for _ in 0..4 * n {
            let m = ws.recv_message().await;
            let payload = crate::common::unb64(m["payload"].as_str().unwrap());
            let k = if payload.len() < 1000 {
                usize::from(payload.starts_with(b"small-1"))
            } else {
                m["key"].as_str().expect("a key")[..1].parse().unwrap()
            };
            seen[k].push(payload);
            ws.ack(m["messageId"].as_str().unwrap()).await;
        }
        for (k, mine) in seen.iter().enumerate() {
            assert!(*mine == expected(k as u64), "producer {k}: {:?}", mine.iter().map(Vec::len).collect::<Vec<_>>());
        }
    }
    // Acknowledging a joined message acknowledged all its chunks.
    let backlog_gone = async {
        loop {
            let (_, stats) = app.get(&format!("{admin}/stats")).await;
            if stats["subscriptions"]["ws"]["msgBacklog"] == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), backlog_gone).await.expect("the WebSocket consumer's backlog drains");

    // HTTP pull (shared) and the console's browser show the chunks as stored, each labelled.
    let pulled = pull_n(&app, "chunks", "http", records as usize, 30_000).await;
    let (status, page) = app.get(&format!("{admin}/messages?limit=500")).await;
    assert_eq!(status, 200, "{page}");
    for (what, ms) in [("pull", &pulled), ("browse", page["messages"].as_array().expect("messages"))] {
        let chunks: Vec<&Value> = ms.iter().filter(|m| m["chunk"].is_object()).collect();
        assert_eq!(ms.len() - chunks.len(), 2 * n, "{what}: the small messages are not chunks");
        let whole: usize = chunks.iter().filter(|m| m["chunk"]["index"] == 0).count();
        assert_eq!(whole, 2 * n, "{what}: one first chunk per large message");
        assert!(chunks.iter().all(|m| m["chunk"]["count"].as_u64().unwrap() >= 3), "{what}");
    }
}

/// A standalone broker with a `pulsar+ssl://` listener whose certificate `ca` issued, trusting
/// client certificates `ca` issued (and requiring one with `require`).
async fn tls_broker(
    dir: tempfile::TempDir,
    ca: &TestCa,
    auth: Option<magnetar_auth::AuthConfig>,
    require: bool,
) -> TestApp {
    let server = ca.server(&["localhost", "127.0.0.1"]);
    let mut cfg = magnetar_tests::test_config(dir.path());
    cfg.binary.tls_addr = Some("127.0.0.1:0".parse().unwrap());
    cfg.binary.tls_cert_file = server.cert_file;
    cfg.binary.tls_key_file = server.key_file;
    cfg.binary.tls_trust_certs_file = ca.cert_file.clone();
    cfg.binary.tls_require_trusted_client_cert = require;
    if let Some(auth) = auth {
        cfg.auth = auth;
    }
    TestApp::start(dir, cfg).await
}

#[tokio::test]
async fn tls_clients_produce_and_consume_and_one_not_trusting_the_certificate_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new(dir.path(), "tls");
    let app = tls_broker(dir, &ca, None, false).await;
    let out = scenario(&app.pulsar_tls_url(), "tls", "secure", &[&ca.cert_file]).await;
    assert_eq!(out["received"], 20, "{out}");
    // The plain listener still serves, and the messages are there for every surface.
    let (_, stats) = app.get("/admin/v2/persistent/public/default/secure/stats").await;
    assert_eq!(stats["msgInCounter"], 20, "{stats}");
    assert_eq!(stats["subscriptions"]["s"]["msgBacklog"], 0, "{stats}");
}

#[tokio::test]
async fn tls_authentication_takes_the_role_from_the_client_certificate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new(dir.path(), "mtls");
    let stranger_ca = TestCa::new(dir.path(), "stranger");
    let (orders, other, forged) = (ca.client("orders-app"), ca.client("other-app"), stranger_ca.client("orders-app"));
    let app = tls_broker(dir, &ca, Some(magnetar_tests::hs256_auth(SECRET)), false).await;
    let root = magnetar_tests::bearer_client(&magnetar_tests::hs256_token(SECRET, "root", 600));
    let grant = app.url("/admin/v2/namespaces/public/default/permissions/orders-app");
    let (status, body) =
        magnetar_tests::call(&root, reqwest::Method::POST, &grant, Some(json!(["produce", "consume"]))).await;
    assert_eq!(status, 204, "{body}");
    let url = app.pulsar_tls_url();
    let args = |mode: &'static str, who: &Issued| -> [String; 4] {
        [ca.cert_file.clone(), mode.to_string(), who.cert_file.clone(), who.key_file.clone()]
    };
    let run = |a: [String; 4]| {
        let url = url.clone();
        async move { scenario(&url, "tls_auth", "certified", &a.iter().map(String::as_str).collect::<Vec<_>>()).await }
    };
    let out = run(args("allowed", &orders)).await;
    assert_eq!(out["received"], 10, "{out}");
    // Another role the same CA vouches for has no grant on the namespace.
    let out = run(args("refused", &other)).await;
    assert!(out["refused"].as_str().is_some_and(|r| r.contains("AuthorizationError")), "{out}");
    // A certificate naming the granted role, signed by a CA the broker does not trust: the
    // handshake fails, so the client never gets as far as being authorized.
    let out = run(args("refused", &forged)).await;
    assert!(out["refused"].as_str().is_some_and(|r| !r.contains("AuthorizationError")), "{out}");
    let stats_url = app.url("/admin/v2/persistent/public/default/certified/stats");
    let (_, stats) = magnetar_tests::call(&root, reqwest::Method::GET, &stats_url, None).await;
    assert_eq!(stats["msgInCounter"], 10, "only the granted role's messages were stored: {stats}");
}

#[tokio::test]
async fn a_broker_requiring_client_certificates_refuses_a_client_without_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new(dir.path(), "required");
    let app = tls_broker(dir, &ca, None, true).await;
    let out = scenario(&app.pulsar_tls_url(), "tls_auth", "required", &[&ca.cert_file, "anonymous"]).await;
    assert!(out["refused"].as_str().is_some_and(|r| !r.is_empty()), "{out}");
    let client = ca.client("any-app");
    let args = [ca.cert_file.as_str(), "allowed", &client.cert_file, &client.key_file];
    let out = scenario(&app.pulsar_tls_url(), "tls_auth", "required", &args).await;
    assert_eq!(out["received"], 10, "{out}");
}

#[tokio::test]
async fn batches_on_shared_and_key_shared_subscriptions_go_whole_to_one_consumer() {
    let app = TestApp::standalone().await;
    let out = scenario(&app.pulsar_url(), "shared_batches", "shared-batches", &[]).await;
    let received = |what: &str| out[what].as_object().expect(what).values().map(|v| v.as_u64().unwrap()).sum::<u64>();
    assert_eq!(received("shared"), 200, "{out}");
    assert_eq!(received("key_shared"), 200, "{out}");
    assert_eq!(received("key_shared_mixed"), 200, "{out}");
}

#[tokio::test]
async fn readers_over_batches_from_earliest_latest_and_a_batched_id_know_when_they_are_done() {
    let app = TestApp::standalone().await;
    scenario(&app.pulsar_url(), "reader_batches", "reader-batches", &[]).await;
}

#[tokio::test]
async fn rest_messages_reach_binary_consumers_as_pulsar_messages() {
    let app = TestApp::standalone().await;
    let ids = produce(
        &app,
        "from-rest",
        (0..3)
            .map(|i| {
                json!({"payload": format!("rest-{i}"), "key": format!("k{i}"),
                       "properties": {"n": i.to_string()}, "eventTime": 1_700_000_000_000_i64 + i})
            })
            .collect(),
    )
    .await;
    let out = scenario(&app.pulsar_url(), "consume_only", "from-rest", &["3"]).await;
    let messages = out["messages"].as_array().expect("messages");
    for (i, m) in messages.iter().enumerate() {
        assert_eq!(m["data"], format!("rest-{i}"));
        assert_eq!(m["key"], format!("k{i}"));
        assert_eq!(m["properties"]["n"], i.to_string());
        assert_eq!(m["event_time"], 1_700_000_000_000_i64 + i as i64);
        assert!(m["publish_time"].as_i64().unwrap() > 1_700_000_000_000, "{m}");
        assert_eq!(m["id"], ids[i]);
    }
}

/// The payload `compressed_payload` of pulsar_scenarios.py builds.
fn compressed_payload(codec: &str, i: usize) -> String {
    format!("{codec}-{i}-{}", "x".repeat(i * 997 % 20_000))
}

#[tokio::test]
async fn each_compression_codec_with_and_without_batching_reaches_every_surface() {
    let app = TestApp::standalone().await;
    let out = scenario(&app.pulsar_url(), "compression", "codec", &[]).await;
    let topics: Vec<&str> = out["topics"].as_array().expect("topics").iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(topics.len(), 8, "four codecs, batching off and on: {out}");
    for topic in topics {
        let codec = topic.split('-').nth(1).unwrap();
        let expected: Vec<String> = (0..20).map(|i| compressed_payload(codec, i)).collect();
        let got = pull_n(&app, topic, "http", 20, 30_000).await;
        assert_eq!(got.iter().map(payload_text).collect::<Vec<_>>(), expected, "HTTP pull of {topic}");
        let mut ws = WsClient::connect(&reader_url(&app.base, topic, "messageId=earliest")).await;
        for (i, want) in expected.iter().enumerate() {
            let m = ws.recv_message().await;
            let data = crate::common::unb64(m["payload"].as_str().unwrap());
            assert_eq!(data, want.as_bytes(), "WebSocket message {i} of {topic}");
        }
    }
}

#[tokio::test]
async fn ack_timeout_negative_acks_and_the_dead_letter_policy_redeliver_with_counts() {
    let app = TestApp::standalone().await;
    let out = scenario(&app.pulsar_url(), "redelivery", "redeliver", &[]).await;
    // The dead-letter topic the client produced to is an ordinary topic for the other surfaces.
    let dlq = out["dlq"].as_str().expect("dlq");
    let got = pull_n(&app, dlq, "http", 1, 30_000).await;
    assert_eq!(payload_text(&got[0]), "poison");
}

/// End-to-end encrypted messages are stored as the producer sent them: the Python client's
/// consumers and readers with the private key decrypt them (batched and compressed, or not),
/// and every other surface hands them out as they are: one message per encrypted batch, its
/// encryption context beside it, acknowledged as a whole.
#[tokio::test]
async fn end_to_end_encrypted_messages_are_stored_as_sent_and_decrypted_by_their_consumers() {
    use crate::common::ws::{consumer_url, sub_backlog};
    let limit = 64 * 1024;
    let app = TestApp::configured(|cfg| cfg.broker.max_message_bytes = limit).await;
    let out = scenario(&app.pulsar_url(), "encryption", "encrypted", &[&limit.to_string()]).await;
    assert!(out["chunked"].as_u64().is_some_and(|n| n > 2 * limit as u64), "decrypted whole from its chunks: {out}");
    let mut all: Vec<String> = (0..10).map(|i| format!("batched-{i}")).collect();
    all.extend((0..3).map(|i| format!("single-{i}")));
    assert_eq!(out["decrypted"], json!(all), "{out}");
    assert_eq!(out["read"], json!(all), "a reader decrypts in order: {out}");
    assert_eq!(out["from_id"], "single-1", "{out}");
    assert_eq!(out["opaque"], 4, "one message per encrypted batch without the key: {out}");
    assert_eq!(out["opaque_batch_sizes"], json!([-1, -1, -1, 10]), "{out}");
    assert_eq!(out["opaque_keys"], json!(["magnetar-test"]), "{out}");
    for sub in ["decrypting", "opaque", "discarding"] {
        assert_eq!(sub_backlog(&app.base, "encrypted", sub).await, Some(0), "{sub}: acknowledged as a whole");
    }

    // WebSocket, as Pulsar's proxy by default (`cryptoFailureAction=CONSUME`): the encrypted
    // payload and its encryption context; the batch is one message, and acknowledging it
    // settles all ten.
    let query = "subscriptionInitialPosition=Earliest";
    let mut ws = WsClient::connect(&consumer_url(&app.base, "encrypted", "ws", query)).await;
    let mut batch_sizes = Vec::new();
    let mut alone = None;
    for _ in 0..4 {
        let m = ws.recv_message().await;
        if m["encryptionContext"]["batchSize"].is_null() {
            alone.get_or_insert_with(|| m.clone());
        }
        let ctx = &m["encryptionContext"];
        assert!(ctx["keys"]["magnetar-test"]["keyValue"].as_str().is_some_and(|k| !k.is_empty()), "{m}");
        assert!(ctx["param"].as_str().is_some_and(|p| !p.is_empty()), "{m}");
        let payload = crate::common::unb64(m["payload"].as_str().expect("payload"));
        assert!(!String::from_utf8_lossy(&payload).contains("batched-"), "stays encrypted: {m}");
        if let Some(n) = ctx["batchSize"].as_u64() {
            assert_eq!(ctx["compressionType"], "LZ4", "{m}");
            assert!(ctx["uncompressedMessageSize"].as_u64().is_some_and(|n| n > 0), "{m}");
            batch_sizes.push(n);
        } else {
            assert_eq!(m["key"], "solo", "an unbatched message's key is not encrypted: {m}");
            assert_eq!(ctx["compressionType"], "NONE", "{m}");
        }
        ws.ack(m["messageId"].as_str().expect("messageId")).await;
    }
    assert_eq!(batch_sizes, vec![10]);
    ws.expect_silence("the members of the batch are not delivered apart").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while sub_backlog(&app.base, "encrypted", "ws").await != Some(0) {
        assert!(tokio::time::Instant::now() < deadline, "the WebSocket acks settle all 13 messages");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A WebSocket producer whose client encrypts (Pulsar's PIP-290): here it sends again what
    // the Python producer encrypted, with its data key and IV, and the Python client decrypts it.
    let alone = alone.expect("an encrypted message sent alone");
    let ctx = &alone["encryptionContext"];
    let key = &ctx["keys"]["magnetar-test"];
    let b64 = |v: &[u8]| crate::common::b64(v);
    let metadata = b64(serde_json::to_string(&key["metadata"]).expect("JSON").as_bytes());
    let enc = |v: &str| v.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
    let query = format!(
        "encryptionKeys=magnetar-test&encryptionKeyValues={}&encryptionKeyMetadata={}",
        enc(key["keyValue"].as_str().expect("keyValue")),
        enc(&metadata)
    );
    let url =
        format!("{}/ws/v2/producer/persistent/public/default/relayed?{query}", crate::common::ws::ws_base(&app.base));
    let mut relay = WsClient::connect(&url).await;
    let sent = relay
        .publish(json!({"payload": alone["payload"], "encryptionParam": ctx["param"], "compressionType": "NONE", "context": "r"}))
        .await;
    assert_eq!(sent["result"], "ok", "{sent}");
    let plain = relay.publish(json!({"payload": b64(b"no IV"), "context": "p"})).await;
    assert_eq!(plain["result"], "send-error:3", "a frame without its IV: {plain}");
    relay.close().await;
    let keys = out["keys"].as_str().expect("the key pair's directory");
    let read = scenario(&app.pulsar_url(), "decrypt", "relayed", &[keys]).await;
    assert_eq!(read["data"], json!(["single-0"]), "the first message sent alone, decrypted: {read}");
    let server_side = format!(
        "{}/ws/v2/producer/persistent/public/default/relayed?encryptionKeys=k",
        crate::common::ws::ws_base(&app.base)
    );
    assert_eq!(crate::common::ws::refused_status(&server_side).await, 400, "the broker encrypts nothing itself");

    // A pull-mode session asking for one message at a time gets each: the batch's empty members
    // are passed over within the permit.
    let query = "subscriptionInitialPosition=Earliest&cryptoFailureAction=CONSUME&pullMode=true";
    let mut pulling = WsClient::connect(&consumer_url(&app.base, "encrypted", "ws-pull", query)).await;
    let mut sizes = Vec::new();
    for _ in 0..4 {
        pulling.permit(1).await;
        let m = pulling.recv_message().await;
        sizes.push(m["encryptionContext"]["batchSize"].as_u64());
        pulling.ack(m["messageId"].as_str().expect("messageId")).await;
    }
    assert_eq!(sizes, vec![Some(10), None, None, None]);
    pulling.close().await;
    // A reader with a small window reads all four: the members it passes over do not hold it.
    let query = "messageId=earliest&receiverQueueSize=5&cryptoFailureAction=CONSUME";
    let mut reader = WsClient::connect(&reader_url(&app.base, "encrypted", query)).await;
    for _ in 0..4 {
        let m = reader.recv_message().await;
        reader.ack(m["messageId"].as_str().expect("messageId")).await;
    }
    reader.close().await;
    // FAIL: not delivered, left in the backlog.
    let query = "subscriptionInitialPosition=Earliest&cryptoFailureAction=FAIL";
    let mut failing = WsClient::connect(&consumer_url(&app.base, "encrypted", "ws-fail", query)).await;
    failing.expect_silence("FAIL delivers no encrypted message").await;
    // Held: the four messages as this consumer sees them (the batch's members, empty, were
    // settled when it was handed the batch as one message; its head still carries all ten).
    assert_eq!(sub_backlog(&app.base, "encrypted", "ws-fail").await, Some(4));
    failing.close().await;

    // HTTP pull one message at a time without waiting: the batch's empty members are passed
    // over within a pull, so each pull gets the next message.
    let mut one_by_one = Vec::new();
    for _ in 0..4 {
        let body = json!({"maxMessages": 1, "waitMs": 0, "initialPosition": "earliest"});
        let got = crate::common::pull(&app, "encrypted", "single", body).await;
        assert_eq!(got.len(), 1, "after {one_by_one:?}");
        one_by_one.push(got[0]["encryptionContext"]["batchSize"].as_u64());
    }
    assert_eq!(one_by_one, vec![Some(10), None, None, None]);
    // HTTP pull and the console's browser: four messages, with their encryption context.
    let pulled = pull_n(&app, "encrypted", "http", 4, 30_000).await;
    assert_eq!(pulled.len(), 4, "{pulled:?}");
    assert_eq!(pulled.iter().filter(|m| m["encryptionContext"]["batchSize"] == 10).count(), 1, "{pulled:?}");
    let ids: Vec<String> = pulled.iter().map(|m| m["messageId"].as_str().expect("id").to_string()).collect();
    crate::common::ok(crate::common::ack(&app, "encrypted", "http", &ids).await);
    assert_eq!(sub_backlog(&app.base, "encrypted", "http").await, Some(0));
    let page = crate::common::ok(app.get("/admin/v2/persistent/public/default/encrypted/messages?limit=50").await);
    let browsed = page["messages"].as_array().expect("messages");
    assert_eq!(browsed.len(), 4, "{page}");
    assert!(browsed.iter().all(|m| m["encryptionContext"]["keys"]["magnetar-test"].is_object()), "{page}");
}

/// Pulsar's REST producer with schemas: `valueSchema` registers the topic's schema and the
/// payloads are encoded with it, so the Python client's AvroSchema and JsonSchema consumers read
/// the values (and an INT32 is Pulsar's four big-endian bytes), and with a `keySchema` the key
/// is the base64 of its encoding; bad payloads and schemas are refused with a reason, nothing
/// stored.
#[tokio::test]
async fn rest_producers_register_schemas_and_encode_payloads_that_pulsar_clients_decode() {
    let app = TestApp::standalone().await;
    let out = scenario(&app.pulsar_url(), "rest_schemas", "rest-typed", &[&app.base]).await;
    assert_eq!(out["avro"], json!([["ann", 30, 1.5], ["bob", null, 2.5], ["cy", 7, 0.5]]), "{out}");
    assert_eq!(out["avro_versions"], json!(["\u{0}".repeat(8), "\u{0}".repeat(8)]), "stamped with version 0: {out}");
    assert_eq!(out["json"], json!(["dee", 4, 3.25]), "{out}");
    assert_eq!(out["int"], json!([0, 0, 1, 2]), "{out}");
    assert_eq!(out["misfit"][0], 400, "{out}");
    assert!(out["misfit"][1]["reason"].as_str().is_some_and(|r| r.contains("payload.score")), "{out}");
    assert_eq!(out["other_type"][0], 409, "{out}");
    assert_eq!(out["key_value"], json!(["AAABAg==", "ann", 1.5]), "the key's INT32 bytes in base64: {out}");
    let schema = crate::common::ok(app.get("/admin/v2/schemas/public/default/rest-typed-avro/schema").await);
    assert_eq!((schema["type"].as_str(), schema["version"].as_i64()), (Some("AVRO"), Some(0)), "{schema}");
    let (_, stats) = app.get("/admin/v2/persistent/public/default/rest-typed-avro/stats").await;
    assert_eq!(stats["msgInCounter"], 3, "the refused requests stored nothing: {stats}");
}

/// Topic stats show what Pulsar's show of the client's consumers and readers: their
/// properties, their client, the permits their receiver queues granted, and a Sticky
/// consumer's hash ranges.
#[tokio::test]
async fn consumer_stats_show_properties_client_permits_and_sticky_ranges() {
    let app = TestApp::standalone().await;
    let out = scenario(&app.pulsar_url(), "consumer_stats", "watched", &[&app.base]).await;
    let auto = out["auto"].as_array().expect("the auto subscription's consumers");
    assert_eq!(auto.len(), 2, "{out}");
    for (i, c) in auto.iter().enumerate() {
        assert_eq!(c["metadata"], json!({"app": "billing", "n": i.to_string()}), "{c}");
        assert_eq!(c["availablePermits"], 50, "its receiver queue: {c}");
        assert!(c["clientVersion"].as_str().is_some_and(|v| v.starts_with("Pulsar-CPP")), "{c}");
        assert!(c.get("keyHashRanges").is_none(), "AutoSplit shares are not listed: {c}");
    }
    let sticky = &out["sticky"][0];
    assert_eq!(sticky["keyHashRanges"], json!(["[0, 999]", "[5000, 5999]"]), "{sticky}");
    assert_eq!(sticky["availablePermits"], 1000, "{sticky}");
    let reader = &out["reader"][0];
    assert_eq!(reader["availablePermits"], 20, "a reader's receiver queue: {reader}");
    assert!(reader["clientVersion"].as_str().is_some_and(|v| v.starts_with("Pulsar-CPP")), "{reader}");
}
