//! `[storage] page_cache_window` and `segment_writes`: the broker reports what it uses (`auto`
//! follows the machine); messages written while old segment pages leave the page cache, or
//! written with direct I/O, are read back whole, before and after a restart (clean, or kill -9
//! with the last partial blocks in memory only); a bad value stops the start naming it. And
//! `transparent_huge_pages`: off for the broker's process (but its direct-write buffers, where the
//! kernel allows) unless set to `system`.

use crate::common::{pull_path, unb64};
use magnetar_tests::{BrokerProcess, call};
use reqwest::Method;
use serde_json::{Value, json};

async fn gauge(base: &str, name: &str) -> u64 {
    let text = reqwest::get(format!("{base}/metrics")).await.unwrap().text().await.unwrap();
    let line =
        text.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("no {name} in /metrics"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

async fn window_gauge(base: &str) -> u64 {
    gauge(base, "magnetar_page_cache_window_bytes").await
}

fn payload(i: usize) -> String {
    format!("{i:04}{}", "x".repeat(256 << 10))
}

/// Creates subscription `sub` at the earliest message.
async fn subscribe(c: &reqwest::Client, b: &str, sub: &str) {
    let (s, body) = call(
        c,
        Method::PUT,
        &format!("{b}/admin/v2/persistent/public/default/pc/subscription/{sub}"),
        Some(json!({"ledgerId": -1, "entryId": -1})),
    )
    .await;
    assert!(s.is_success(), "{s}: {body}");
}

/// Pulls from `sub` until `n` messages came, checking each against `payload`.
async fn pull_all(c: &reqwest::Client, b: &str, sub: &str, n: usize) {
    let mut got = 0;
    while got < n {
        let (s, body) = call(
            c,
            Method::POST,
            &format!("{b}{}", pull_path("pc", sub)),
            Some(json!({"maxMessages": 8, "waitMs": 2000})),
        )
        .await;
        assert!(s.is_success(), "{s}: {body}");
        let msgs = body["messages"].as_array().unwrap();
        assert!(!msgs.is_empty(), "nothing more after {got} of {n} messages");
        for m in msgs {
            let p = unb64(m["payload"].as_str().unwrap());
            assert_eq!(p, payload(got).as_bytes(), "message {got} read back whole");
            got += 1;
        }
    }
}

#[tokio::test]
async fn messages_written_through_a_small_window_read_back_whole_across_a_restart() {
    // 1 MiB: the segment drops pages behind its last MiB while 10 MiB are written.
    let env = [("MAGNETAR_STORAGE__PAGE_CACHE_WINDOW", "1048576"), ("MAGNETAR_STORAGE__SEGMENT_WRITES", "page-cache")];
    written_and_read_back(&env, false).await;
}

/// Direct writes: 40 messages of 256 KiB and 4 bytes (no record ends on a block), read back
/// whole, and again after kill -9, when the records of each segment's last partial block were
/// in the broker's memory only (the WAL replays them).
#[tokio::test]
async fn messages_written_with_direct_io_read_back_whole_across_a_kill() {
    written_and_read_back(&[("MAGNETAR_STORAGE__SEGMENT_WRITES", "direct")], true).await;
}

async fn written_and_read_back(env: &[(&str, &str)], kill: bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(&dir.path().join("data"), env);
    let c = reqwest::Client::new();
    let b = broker.base.clone();
    let direct = env.contains(&("MAGNETAR_STORAGE__SEGMENT_WRITES", "direct"));
    assert_eq!(gauge(&b, "magnetar_segment_direct_writes").await, u64::from(direct));
    if !direct {
        assert_eq!(window_gauge(&b).await, 1 << 20);
    }
    let (s, body) = call(&c, Method::PUT, &format!("{b}/admin/v2/persistent/public/default/pc"), None).await;
    assert!(s.is_success(), "{s}: {body}");
    subscribe(&c, &b, "audit").await;
    for chunk in 0..10 {
        let msgs: Vec<Value> = (chunk * 4..chunk * 4 + 4).map(|i| json!({"payload": payload(i)})).collect();
        let (s, body) = call(
            &c,
            Method::POST,
            &format!("{b}/topics/persistent/public/default/pc"),
            Some(json!({"messages": msgs})),
        )
        .await;
        assert!(s.is_success(), "{s}: {body}");
    }
    pull_all(&c, &b, "audit", 40).await;

    if kill {
        broker.kill9();
    } else {
        assert!(broker.terminate().success());
    }
    broker.restart();
    let b = broker.base.clone();
    assert_eq!(gauge(&b, "magnetar_segment_direct_writes").await, u64::from(direct));
    subscribe(&c, &b, "again").await;
    pull_all(&c, &b, "again", 40).await;
}

#[tokio::test]
async fn auto_follows_the_machine_and_0_turns_the_window_off() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("auto"), &[]);
    let expected = if magnetar_storage::pagecache::host_reclaims_free_pages() {
        magnetar_storage::pagecache::AUTO_WINDOW_BYTES
    } else {
        0
    };
    assert_eq!(window_gauge(&broker.base).await, expected);
    let direct = u64::from(magnetar_storage::pagecache::host_reclaims_free_pages());
    assert_eq!(gauge(&broker.base, "magnetar_segment_direct_writes").await, direct);
    drop(broker);
    let broker = BrokerProcess::start(&dir.path().join("off"), &[("MAGNETAR_STORAGE__PAGE_CACHE_WINDOW", "0")]);
    assert_eq!(window_gauge(&broker.base).await, 0);
}

#[test]
fn a_bad_window_stops_the_start_naming_the_value() {
    let err = magnetar_tests::standalone_start_error(&[("MAGNETAR_STORAGE__PAGE_CACHE_WINDOW", "lots")]);
    assert!(err.contains("\"lots\" is neither \"auto\" nor a number of bytes"), "names the value: {err}");
    assert!(err.to_lowercase().contains("page_cache_window"), "names the key: {err}");
    let err = magnetar_tests::standalone_start_error(&[("MAGNETAR_STORAGE__SEGMENT_WRITES", "fast")]);
    assert!(err.contains("fast") && err.contains("page-cache"), "names the value and the choices: {err}");
    assert!(err.to_lowercase().contains("segment_writes"), "names the key: {err}");
}

/// The broker turns transparent huge pages off for its own process by default (a 64 KB produce
/// spent a quarter of its CPU zeroing new huge pages, docs/benchmarks.md), except, where the
/// kernel has that exception (`PR_THP_DISABLE_EXCEPT_ADVISED`), for the buffers of direct
/// writes that ask for them; `system` leaves the kernel's setting; anything else stops the
/// start naming the key. What the broker logs is what the kernel reported back, and
/// `/proc/PID/status` must agree with it: `THP_enabled` is 0 only when they are off for
/// everything. With the exception, no huge page may back a mapping that did not ask for one.
#[tokio::test]
async fn the_broker_turns_transparent_huge_pages_off_for_itself_unless_told_otherwise() {
    for env in [vec![], vec![("MAGNETAR_TRANSPARENT_HUGE_PAGES", "system")]] {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut broker = BrokerProcess::start(&data, &env);
        let log = std::fs::read_to_string(data.with_extension("log")).unwrap();
        let said = log
            .lines()
            .find(|l| l.contains("transparent huge pages"))
            .unwrap_or_else(|| panic!("{env:?}: the broker logged nothing about transparent huge pages:\n{log}"));
        let status = std::fs::read_to_string(format!("/proc/{}/status", broker.pid())).unwrap();
        let line = status
            .lines()
            .find(|l| l.starts_with("THP_enabled:"))
            .expect("/proc/PID/status has THP_enabled (Linux 5.0 and later)");
        let enabled = line.split_whitespace().nth(1);
        if env.is_empty() {
            assert!(said.contains("off for this process"), "{said}");
            let except_advised = said.contains("but its direct-write buffers");
            assert_eq!(enabled, Some(if except_advised { "1" } else { "0" }), "{said} / {line}");
            if except_advised {
                let smaps = std::fs::read_to_string(format!("/proc/{}/smaps", broker.pid())).unwrap();
                assert_eq!(huge_pages_unasked(&smaps), 0, "huge pages outside the mappings that asked for them");
            }
        } else {
            assert!(said.contains("as the kernel sets them"), "{said}");
            assert_eq!(enabled, Some("1"), "{line}");
        }
        broker.terminate();
    }
    let err = magnetar_tests::standalone_start_error(&[("MAGNETAR_TRANSPARENT_HUGE_PAGES", "sometimes")]);
    assert!(err.to_lowercase().contains("transparent_huge_pages") && err.contains("sometimes"), "{err}");
}

/// KiB of `AnonHugePages` in the mappings of a `/proc/PID/smaps` whose `VmFlags` lack `hg`
/// (`MADV_HUGEPAGE`).
fn huge_pages_unasked(smaps: &str) -> u64 {
    let (mut total, mut huge) = (0, 0);
    for line in smaps.lines() {
        if let Some(kb) = line.strip_prefix("AnonHugePages:") {
            huge = kb.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
        } else if let Some(flags) = line.strip_prefix("VmFlags:") {
            if !flags.split_whitespace().any(|f| f == "hg") {
                total += huge;
            }
            huge = 0;
        }
    }
    total
}
