//! Pulsar's topic operations (issue 14, item 3) through the REST admin API, REST produce and
//! pull, and the WebSocket API, on a real broker with its metadata in PostgreSQL: terminate,
//! truncate, examine a message, a message by ledger and entry id, a message id by publish time,
//! backlog size and analysis, topic and subscription properties.
//!
//! What a Pulsar user sees of a terminated topic: producers are refused (REST produce and the
//! WebSocket producer handshake answer 503, an open WebSocket producer gets `send-error`),
//! consumers read what is left, then HTTP pull answers `endOfTopic: true` and the WebSocket
//! `isEndOfTopic` query answers `{"endOfTopic": true}` (Pulsar's WebSocket API pushes no
//! end-of-topic frame, so neither does Magnetar).

use crate::common;

use common::ws::*;
use common::*;
use magnetar_tests::TestApp;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

/// A GET answering raw bytes: status, headers, body.
async fn get_raw(app: &TestApp, path: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
    let resp = app.client.get(app.url(path)).send().await.expect("request");
    let (status, headers) = (resp.status(), resp.headers().clone());
    (status, headers, resp.bytes().await.expect("body").to_vec())
}

/// The payload and `X-Pulsar-Message-ID` of a message answered as raw bytes (peek shape).
async fn get_message(app: &TestApp, path: &str) -> (String, String) {
    let (status, headers, body) = get_raw(app, path).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {}", String::from_utf8_lossy(&body));
    let id = headers["X-Pulsar-Message-ID"].to_str().expect("ascii").to_string();
    (String::from_utf8(body).expect("utf-8 payload"), id)
}

fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// `L:E:P` → `L:E`.
fn ledger_entry(id: &str) -> String {
    let (l, e, _) = parse_id(id);
    format!("{l}:{e}")
}

/// Admin `MessageId` JSON → `L:E`.
fn json_id(v: &Value) -> String {
    format!("{}:{}", v["ledgerId"], v["entryId"])
}

#[tokio::test]
async fn terminate_refuses_rest_producers_and_rest_pull_reports_the_end_of_topic() {
    let app = TestApp::with_postgres().await;
    let ids = produce_payloads(&app, "term", &numbered("m", 3)).await;
    let body = json!({"maxMessages": 1, "initialPosition": "earliest", "ackTimeoutMs": 60000});
    let first = ok(app.post(&pull_path("term", "s"), Some(body)).await);
    assert_eq!(first["messages"].as_array().map(Vec::len), Some(1), "{first}");
    assert_eq!(first["endOfTopic"], false, "a live topic has no end: {first}");

    let last = ok(app.post(&format!("{}/terminate", admin_topic("term")), None).await);
    assert_eq!(json_id(&last), ledger_entry(&ids[2]), "terminate answers the last message id");
    let again = ok(app.post(&format!("{}/terminate", admin_topic("term")), None).await);
    assert_eq!(again, last, "terminating again answers the same id");

    // Producers are refused, as a whole request (503, Pulsar's answer), with a reason.
    let reason = err(app.post(&rest_topic("term"), Some(json!({"messages": [{"payload": "eA=="}]}))).await, 503);
    assert!(reason.contains("terminated"), "{reason}");

    // Consumers read what is left, then learn the end of topic.
    let mut seen = Vec::new();
    let mut end = false;
    for _ in 0..10 {
        let body = ok(app
            .post(&pull_path("term", "s"), Some(json!({"maxMessages": 10, "waitMs": 200, "ackTimeoutMs": 60000})))
            .await);
        seen.extend(body["messages"].as_array().expect("messages").iter().map(payload_text));
        if body["endOfTopic"] == true {
            end = true;
            break;
        }
    }
    assert!(end, "the end of topic was never reported");
    assert_eq!(seen, vec!["m-1", "m-2"], "the messages left are delivered before the end");
    // A pull at the end answers at once, however long it may wait.
    let started = std::time::Instant::now();
    let body = ok(app.post(&pull_path("term", "s"), Some(json!({"waitMs": 10000}))).await);
    assert_eq!((body["messages"].as_array().map(Vec::len), body["endOfTopic"].clone()), (Some(0), json!(true)));
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "a pull at the end of topic waited");

    // The termination is stored: it survives an unload, and the stored topic shows it.
    ok(app.put(&format!("{}/unload", admin_topic("term")), None).await);
    err(app.post(&rest_topic("term"), Some(json!({"messages": [{"payload": "eA=="}]}))).await, 503);
    let info = ok(app.get(&format!("{}/internal-info", admin_topic("term"))).await);
    assert_eq!(json_id(&info["terminatedPosition"]), ledger_entry(&ids[2]), "{info}");
    let stats = ok(app.get(&format!("{}/internalStats", admin_topic("term"))).await);
    assert_eq!(stats["state"], "Terminated");
}

#[tokio::test]
async fn terminate_refuses_websocket_producers_and_answers_is_end_of_topic() {
    let app = TestApp::with_postgres().await;
    let mut producer = WsClient::connect(&producer_url(&app.base, "wsterm")).await;
    let ws_ids: Vec<String> = {
        let mut out = Vec::new();
        for p in numbered("w", 2) {
            out.push(producer.publish_ok(&p, None).await);
        }
        out
    };
    let mut consumer =
        WsClient::connect(&consumer_url(&app.base, "wsterm", "s", "subscriptionInitialPosition=Earliest")).await;
    let mut reader = WsClient::connect(&reader_url(&app.base, "wsterm", "messageId=earliest")).await;

    let last = ok(app.post(&format!("{}/terminate", admin_topic("wsterm")), None).await);
    // The id the WebSocket producer got names the message terminate reports.
    let (l, e, _) = decode_ws_id(&ws_ids[1]);
    assert_eq!(json_id(&last), format!("{l}:{e}"));

    // An open producer's sends fail; a new producer is refused at the handshake (503).
    let reply = producer.publish(json!({"payload": b64(b"late"), "context": "c1"})).await;
    assert!(reply["result"].as_str().is_some_and(|r| r.starts_with("send-error")), "{reply}");
    assert!(reply["errorMsg"].as_str().is_some_and(|m| m.contains("terminated")), "{reply}");
    assert_eq!(refused_status(&producer_url(&app.base, "wsterm")).await, 503);

    // Consumers and readers get what is left, then `isEndOfTopic` turns true.
    for ws in [&mut consumer, &mut reader] {
        let got: Vec<String> = [ws.recv_message().await, ws.recv_message().await].iter().map(payload_text).collect();
        assert_eq!(got, vec!["w-0", "w-1"]);
        let mut end = false;
        for _ in 0..50 {
            ws.send_json(&json!({"type": "isEndOfTopic"})).await;
            if ws.recv().await == json!({"endOfTopic": true}) {
                end = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(end, "isEndOfTopic never answered true");
    }
}

#[tokio::test]
async fn a_partitioned_topic_is_terminated_partition_by_partition() {
    let app = TestApp::with_postgres().await;
    create_partitioned(&app, "pterm", 2).await;
    produce_payloads(&app, "pterm", &numbered("p", 4)).await;
    err(app.post(&format!("{}/terminate", admin_topic("pterm")), None).await, 405);
    let ends = ok(app.post(&format!("{}/terminate/partitions", admin_topic("pterm")), None).await);
    assert_eq!(ends.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()), Some(vec!["0".into(), "1".into()]));
    err(app.post(&rest_topic("pterm"), Some(json!({"messages": [{"payload": "eA=="}]}))).await, 503);
    create_topic(&app, "plain").await;
    err(app.post(&format!("{}/terminate/partitions", admin_topic("plain")), None).await, 409);
}

#[tokio::test]
async fn truncate_deletes_every_message_and_moves_subscriptions_to_the_end() {
    let app = TestApp::with_postgres().await;
    // Enough data for several segments (64 KiB each in tests).
    let big = "x".repeat(16 * 1024);
    let payloads: Vec<String> = (0..12).map(|i| format!("{i}-{big}")).collect();
    produce_payloads(&app, "trunc", &payloads).await;
    ok(app
        .put(&format!("{}/subscription/s", admin_topic("trunc")), Some(json!({"ledgerId": -1, "entryId": -1})))
        .await);
    assert_eq!(backlog(&app, "trunc", "s").await, 12);

    assert_eq!(app.delete(&format!("{}/truncate", admin_topic("trunc"))).await.0, StatusCode::NO_CONTENT);
    assert_eq!(backlog(&app, "trunc", "s").await, 0);
    let (status, _, _) =
        get_raw(&app, &format!("{}/examinemessage?initialPosition=earliest", admin_topic("trunc"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no message is left");

    // The topic stays and takes new messages, which the subscription gets, on every surface:
    // a WebSocket consumer of the subscription and a reader from the earliest message see only
    // what was published after the truncation.
    let mut consumer = WsClient::connect(&consumer_url(&app.base, "trunc", "ws", "")).await;
    ok(app.delete(&format!("{}/truncate", admin_topic("trunc"))).await);
    let mut reader = WsClient::connect(&reader_url(&app.base, "trunc", "messageId=earliest")).await;
    let mut producer = WsClient::connect(&producer_url(&app.base, "trunc")).await;
    producer.publish_ok("after", None).await;
    assert_eq!(payload_text(&consumer.recv_message().await), "after");
    assert_eq!(payload_text(&reader.recv_message().await), "after");
    reader.expect_silence("nothing from before the truncation").await;
    let got = pull_n(&app, "trunc", "s", 1, 60000).await;
    assert_eq!(ids_of(&got).len(), 1);
    assert_eq!(payload_text(&got[0]), "after");
    err(app.delete(&format!("{}/truncate", admin_topic("missing"))).await, 404);
}

/// A broker whose namespace keeps every message: without a subscription and with the default
/// retention of 0, sealed segments may be deleted by the next retention pass (every 200 ms in
/// tests), which the tests that read old messages by position must not race with.
async fn keeping_everything() -> TestApp {
    let app = TestApp::with_postgres().await;
    let (s, body) = app
        .post(
            "/admin/v2/namespaces/public/default/retention",
            Some(serde_json::json!({"retentionTimeInMinutes": -1, "retentionSizeInMB": -1})),
        )
        .await;
    assert_eq!(s, 204, "{body}");
    app
}

#[tokio::test]
async fn examine_message_counts_from_the_latest_or_the_earliest() {
    let app = keeping_everything().await;
    let ids = produce_payloads(&app, "exam", &numbered("e", 3)).await;
    let path = |q: &str| format!("{}/examinemessage?{q}", admin_topic("exam"));
    assert_eq!(get_message(&app, &path("")).await, ("e-2".into(), ledger_entry(&ids[2])), "default: the latest");
    assert_eq!(get_message(&app, &path("initialPosition=latest&messagePosition=3")).await.0, "e-0");
    assert_eq!(get_message(&app, &path("initialPosition=earliest&messagePosition=1")).await.0, "e-0");
    assert_eq!(get_message(&app, &path("initialPosition=earliest&messagePosition=2")).await.0, "e-1");
    assert_eq!(get_raw(&app, &path("initialPosition=earliest&messagePosition=4")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(get_raw(&app, &path("initialPosition=middle")).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(get_raw(&app, &path("messagePosition=0")).await.0, StatusCode::BAD_REQUEST);
    // The same through the WebSocket API's ids: a message published there is examined here.
    let mut p = WsClient::connect(&producer_url(&app.base, "exam")).await;
    let ws_id = p.publish_ok("from-ws", None).await;
    let (l, e, _) = decode_ws_id(&ws_id);
    assert_eq!(get_message(&app, &path("")).await, ("from-ws".into(), format!("{l}:{e}")));
}

#[tokio::test]
async fn a_message_is_read_by_the_ledger_and_entry_id_any_surface_gave() {
    let app = keeping_everything().await;
    let big = "y".repeat(20 * 1024);
    // Several segments, so ledger ids differ between messages (a segment rolls between
    // requests, not inside one).
    let payloads: Vec<String> = (0..8).map(|i| format!("{i}-{big}")).collect();
    let mut rest_ids = Vec::new();
    for p in &payloads {
        rest_ids.extend(produce_payloads(&app, "byid", std::slice::from_ref(p)).await);
    }
    let entry = |l: i64, e: i64| format!("{}/ledger/{l}/entry/{e}", admin_topic("byid"));
    for (i, id) in rest_ids.iter().enumerate() {
        let (l, e, _) = parse_id(id);
        let (payload, header) = get_message(&app, &entry(l, e)).await;
        assert_eq!((payload.as_str(), header), (payloads[i].as_str(), format!("{l}:{e}")));
    }
    let mut p = WsClient::connect(&producer_url(&app.base, "byid")).await;
    let ws_id = p.publish_ok("ws", None).await;
    let (l, e, _) = decode_ws_id(&ws_id);
    assert_eq!(get_message(&app, &entry(l, e)).await.0, "ws");

    // An id is a (ledger, entry) pair: the same offset under another ledger is no message.
    let (l, e, _) = parse_id(&rest_ids[7]);
    assert!(l > 0, "the last message is past the first segment: {}", rest_ids[7]);
    assert_eq!(get_raw(&app, &entry(0, l + e)).await.0, StatusCode::NOT_FOUND);
    assert_eq!(get_raw(&app, &entry(l, 10_000)).await.0, StatusCode::NOT_FOUND);
    assert_eq!(get_raw(&app, &entry(-1, 0)).await.0, StatusCode::NOT_FOUND);
    assert_eq!(get_raw(&app, &format!("{}/ledger/x/entry/0", admin_topic("byid"))).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_message_id_of_a_publish_time_is_the_first_message_at_or_after_it() {
    let app = keeping_everything().await;
    let before = now_ms();
    let first = produce_payloads(&app, "bytime", &["a".to_string()]).await;
    // Publish times are milliseconds: the second batch is published strictly later.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let between = now_ms();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let mut p = WsClient::connect(&producer_url(&app.base, "bytime")).await;
    let ws_id = p.publish_ok("b", None).await;

    let at = |t: i64| format!("{}/messageid/{t}", admin_topic("bytime"));
    assert_eq!(json_id(&ok(app.get(&at(before)).await)), ledger_entry(&first[0]));
    assert_eq!(json_id(&ok(app.get(&at(0)).await)), ledger_entry(&first[0]), "before everything: the first");
    let (l, e, _) = decode_ws_id(&ws_id);
    assert_eq!(json_id(&ok(app.get(&at(between)).await)), format!("{l}:{e}"), "the WebSocket message");
    err(app.get(&at(now_ms() + 60_000)).await, 404);
    err(app.get(&format!("{}/messageid/soon", admin_topic("bytime"))).await, 400);
}

#[tokio::test]
async fn backlog_size_and_analysis_count_what_is_left_to_consume() {
    let app = TestApp::with_postgres().await;
    let ids = produce_payloads(&app, "bl", &numbered("b", 5)).await;
    let size_from = |id: &str| {
        let (l, e, _) = parse_id(id);
        json!({"ledgerId": l, "entryId": e})
    };
    let all = ok(app.put(&format!("{}/backlogSize", admin_topic("bl")), Some(size_from(&ids[0]))).await);
    let tail = ok(app.put(&format!("{}/backlogSize", admin_topic("bl")), Some(size_from(&ids[3]))).await);
    assert!(all.as_u64() > tail.as_u64() && tail.as_u64() > Some(0), "from the first {all}, from the fourth {tail}");

    ok(app.put(&format!("{}/subscription/s", admin_topic("bl")), Some(json!({"ledgerId": -1, "entryId": -1}))).await);
    let got = pull_n(&app, "bl", "s", 5, 60000).await;
    ok(ack(&app, "bl", "s", &ids_of(&got[1..2])).await);
    let analysis = ok(app.post(&format!("{}/subscription/s/analyzeBacklog", admin_topic("bl")), None).await);
    assert_eq!((analysis["entries"].clone(), analysis["messages"].clone()), (json!(4), json!(4)), "{analysis}");
    assert_eq!(analysis["firstMessageId"], ledger_entry(&ids[0]));
    assert_eq!(analysis["lastMessageId"], ledger_entry(&ids[4]));
    err(app.post(&format!("{}/subscription/none/analyzeBacklog", admin_topic("bl")), None).await, 404);

    // Expire up to a message id: everything before it and it (unless excluded).
    let (l, e, _) = parse_id(&ids[2]);
    let body = json!({"ledgerId": l, "entryId": e, "isExcluded": false});
    ok(app.post(&format!("{}/subscription/s/expireMessages", admin_topic("bl")), Some(body)).await);
    assert_eq!(backlog(&app, "bl", "s").await, 2);
}

#[tokio::test]
async fn topic_and_subscription_properties_are_stored() {
    let app = TestApp::with_postgres().await;
    create_topic(&app, "props").await;
    let path = format!("{}/properties", admin_topic("props"));
    assert_eq!(ok(app.get(&path).await), json!({}));
    ok(app.put(&path, Some(json!({"a": "1", "b": "2"}))).await);
    ok(app.put(&path, Some(json!({"b": "3"}))).await);
    assert_eq!(ok(app.get(&path).await), json!({"a": "1", "b": "3"}), "an update merges");
    ok(app.delete(&format!("{path}?key=a")).await);
    assert_eq!(ok(app.get(&path).await), json!({"b": "3"}));
    err(app.get(&format!("{}/properties", admin_topic("none"))).await, 404);

    ok(app.put(&format!("{}/subscription/s", admin_topic("props")), None).await);
    let sub = format!("{}/subscription/s/properties", admin_topic("props"));
    assert_eq!(ok(app.get(&sub).await), json!({}));
    ok(app.put(&sub, Some(json!({"owner": "team-a"}))).await);
    // Stored: an unload reloads them from the metadata store.
    ok(app.put(&format!("{}/unload", admin_topic("props")), None).await);
    assert_eq!(ok(app.get(&sub).await), json!({"owner": "team-a"}));
    err(app.get(&format!("{}/subscription/none/properties", admin_topic("props"))).await, 404);

    create_partitioned(&app, "pprops", 2).await;
    assert_eq!(app.post(&format!("{}/createMissedPartitions", admin_topic("pprops")), None).await.0, 204);
    err(app.post(&format!("{}/createMissedPartitions", admin_topic("props")), None).await, 409);
}
