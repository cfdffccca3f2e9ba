//! `magnetar perf ws-produce` / `ws-consume`: load over the Pulsar-compatible WebSocket API.
//! The producer stamps each message with its send time (`sent_us` property) so the consumer
//! reports end-to-end latency as well as throughput.

use anyhow::{Context, bail};
use base64::Engine;
use clap::Args;
use futures::{FutureExt, SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio_tungstenite::tungstenite::Message;

#[derive(Args, Clone)]
pub struct WsProduceArgs {
    /// Broker WebSocket URL base.
    #[arg(long, default_value = "ws://127.0.0.1:8080")]
    url: String,
    #[arg(long, default_value = "persistent://public/default/perf")]
    topic: String,
    #[arg(long, short = 'n', default_value_t = 100_000)]
    messages: u64,
    #[arg(long, short = 's', default_value_t = 1024)]
    size: usize,
    /// Messages in flight (sent, not yet acknowledged).
    #[arg(long, short = 'w', default_value_t = 256)]
    window: usize,
    /// Target rate in messages per second (0 = as fast as the window allows).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Also write every acknowledgement latency (microseconds, one per line) to this file, so
    /// that runs can be pooled before taking percentiles (scripts/bench-isolation.sh).
    #[arg(long)]
    latencies: Option<std::path::PathBuf>,
}

#[derive(Args, Clone)]
pub struct WsConsumeArgs {
    #[arg(long, default_value = "ws://127.0.0.1:8080")]
    url: String,
    #[arg(long, default_value = "persistent://public/default/perf")]
    topic: String,
    #[arg(long, default_value = "perf-ws")]
    subscription: String,
    #[arg(long, default_value = "Shared")]
    subscription_type: String,
    /// Where a new subscription starts: Earliest (catch-up reads) or Latest (tailing).
    #[arg(long, default_value = "Earliest")]
    initial_position: String,
    #[arg(long, short = 'n', default_value_t = 100_000)]
    messages: u64,
}

fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// Connects with Nagle's algorithm off, as latency-minded WebSocket clients do.
async fn connect(
    url: &str,
) -> anyhow::Result<(
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    tokio_tungstenite::tungstenite::handshake::client::Response,
)> {
    // A chunked message joined by the broker arrives as one frame of up to
    // `broker.max_chunked_message_bytes` (base64): more than tungstenite's default limits.
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_frame_size(None)
        .max_message_size(Some(512 << 20));
    tokio_tungstenite::connect_async_with_config(url, Some(config), true)
        .await
        .with_context(|| format!("cannot connect to {url}"))
}

fn path(topic: &str) -> anyhow::Result<String> {
    let name: magnetar_core::TopicName = topic.parse().with_context(|| format!("invalid --topic {topic}"))?;
    Ok(format!("persistent/{}/{}", name.namespace(), name.local()))
}

pub async fn produce(a: WsProduceArgs) -> anyhow::Result<()> {
    let url = format!("{}/ws/v2/producer/{}", a.url.trim_end_matches('/'), path(&a.topic)?);
    let (ws, _) = connect(&url).await?;
    let (mut tx, mut rx) = ws.split();
    let payload = base64::engine::general_purpose::STANDARD.encode(vec![b'x'; a.size]);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut in_flight: HashMap<u64, Instant> = HashMap::new();
    let mut latencies = Vec::with_capacity(if a.latencies.is_some() { a.messages as usize } else { 0 });
    let (mut sent, mut acked) = (0u64, 0u64);
    let started = Instant::now();
    let interval = (a.rate > 0).then(|| Duration::from_secs_f64(1.0 / a.rate as f64));
    let mut last_report = Instant::now();
    let mut last_ack = Instant::now();
    while acked < a.messages {
        // Fill the window (paced when a rate is set).
        while sent < a.messages && in_flight.len() < a.window.max(1) {
            if let Some(i) = interval {
                let due = started + i * sent as u32;
                if Instant::now() < due {
                    break;
                }
            }
            // The payload is base64 already: the frame is formatted, not built as a JSON value.
            let frame =
                format!(r#"{{"payload":"{payload}","context":"{sent}","properties":{{"sent_us":"{}"}}}}"#, now_us());
            tx.feed(Message::Text(frame.into())).await?;
            in_flight.insert(sent, Instant::now());
            sent += 1;
        }
        tx.flush().await?;
        // Paced: wake when the next send is due, so waiting for acks never delays sends.
        let wait = match interval {
            Some(i) if sent < a.messages => (started + i * sent as u32).saturating_duration_since(Instant::now()),
            _ => Duration::from_secs(30),
        };
        let msg = match tokio::time::timeout(wait, rx.next()).await {
            Ok(Some(m)) => m?,
            Ok(None) => bail!("connection closed after {acked} acknowledgements"),
            Err(_) if last_ack.elapsed() > Duration::from_secs(30) && !in_flight.is_empty() => {
                bail!("no acknowledgement for 30 s")
            }
            Err(_) => continue,
        };
        // Take every reply already here before refilling, so refills go out in bursts.
        let mut next = Some(msg);
        while let Some(msg) = next {
            if let Message::Text(t) = msg {
                let v: Value = serde_json::from_str(t.as_str())?;
                if v["result"] != "ok" {
                    bail!("publish failed: {v}");
                }
                let ctx: u64 = v["context"].as_str().and_then(|c| c.parse().ok()).context("reply without context")?;
                if let Some(t0) = in_flight.remove(&ctx) {
                    let us = t0.elapsed().as_micros().max(1) as u64;
                    hist.record(us)?;
                    if a.latencies.is_some() {
                        latencies.push(us);
                    }
                    acked += 1;
                    last_ack = Instant::now();
                }
            }
            next = match rx.next().now_or_never() {
                Some(Some(m)) => Some(m?),
                _ => None,
            };
        }
        if last_report.elapsed() >= Duration::from_secs(1) {
            eprintln!("ws-produce: {acked} acknowledged");
            last_report = Instant::now();
        }
    }
    crate::perf::summary("ws-produce", acked, acked * a.size as u64, started.elapsed(), &hist, "ack latency");
    if let Some(file) = &a.latencies {
        let text: String = latencies.iter().map(|us| format!("{us}\n")).collect();
        std::fs::write(file, text).with_context(|| format!("cannot write --latencies {}", file.display()))?;
    }
    Ok(())
}

pub async fn consume(a: WsConsumeArgs) -> anyhow::Result<()> {
    let url = format!(
        "{}/ws/v2/consumer/{}/{}?subscriptionType={}&receiverQueueSize=1000&subscriptionInitialPosition={}",
        a.url.trim_end_matches('/'),
        path(&a.topic)?,
        a.subscription,
        a.subscription_type,
        a.initial_position
    );
    let (ws, _) = connect(&url).await?;
    let (mut tx, mut rx) = ws.split();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    let (mut count, mut bytes) = (0u64, 0u64);
    let mut started: Option<Instant> = None;
    // Pings keep the connection busy: silence is measured from the last data message.
    let mut last_data = Instant::now();
    while count < a.messages {
        let wait = Duration::from_secs(30).saturating_sub(last_data.elapsed());
        let first = match tokio::time::timeout(wait, rx.next()).await {
            Ok(Some(m)) => m?,
            Ok(None) => bail!("connection closed after {count} messages"),
            Err(_) => bail!("no message for 30 s after {count}"),
        };
        let before = count;
        // Ack every message that is already here, then flush the acks as one write.
        let mut next = Some(first);
        while let Some(msg) = next {
            if let Message::Text(t) = msg {
                let v: Value = serde_json::from_str(t.as_str())?;
                if let Some(id) = v["messageId"].as_str() {
                    started.get_or_insert_with(Instant::now);
                    if let Some(sent) = v["properties"]["sent_us"].as_str().and_then(|s| s.parse::<u64>().ok()) {
                        hist.record(now_us().saturating_sub(sent).max(1))?;
                    }
                    bytes += base64::engine::general_purpose::STANDARD
                        .decode(v["payload"].as_str().unwrap_or(""))
                        .map(|p| p.len())
                        .unwrap_or(0) as u64;
                    tx.feed(Message::Text(format!(r#"{{"messageId":"{id}"}}"#).into())).await?;
                    count += 1;
                }
            }
            next = match rx.next().now_or_never() {
                Some(Some(m)) if count < a.messages => Some(m?),
                _ => None,
            };
        }
        tx.flush().await?;
        if count > before {
            last_data = Instant::now();
        }
    }
    let elapsed = started.map(|s| s.elapsed()).unwrap_or_default();
    crate::perf::summary("ws-consume", count, bytes, elapsed, &hist, "end-to-end latency");
    Ok(())
}
