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
use std::sync::{Arc, Mutex};
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
    // The server keeps as many frames unanswered as the client's window (as a Pulsar client's
    // `maxPendingMessages`), not its default of 1000.
    let url = format!(
        "{}/ws/v2/producer/{}?maxPendingMessages={}",
        a.url.trim_end_matches('/'),
        path(&a.topic)?,
        a.window.max(1)
    );
    let (ws, _) = connect(&url).await?;
    let (tx, mut rx) = ws.split();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    // Send times by context; the sender and the reader of acknowledgements run side by side (a
    // client that stops reading while it writes stalls a broker whose answers fill the socket).
    let in_flight: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let window = Arc::new(tokio::sync::Semaphore::new(a.window.max(1)));
    let mut latencies = Vec::with_capacity(if a.latencies.is_some() { a.messages as usize } else { 0 });
    let started = Instant::now();
    let sender = tokio::spawn(send_window(a.clone(), tx, Arc::clone(&in_flight), Arc::clone(&window), started));
    let mut acked = 0u64;
    let mut last_report = Instant::now();
    let mut last_ack = Instant::now();
    while acked < a.messages {
        let msg = match tokio::time::timeout(Duration::from_secs(1), rx.next()).await {
            Ok(Some(m)) => m?,
            Ok(None) => bail!("connection closed after {acked} acknowledgements"),
            Err(_) if sender.is_finished() && acked < a.messages && in_flight.lock().unwrap().is_empty() => {
                // The sender stopped early: its error is the one to report.
                return match sender.await? {
                    Err(e) => Err(e),
                    Ok(()) => bail!("the sender ended after {acked} acknowledgements"),
                };
            }
            Err(_) if last_ack.elapsed() > Duration::from_secs(30) => bail!("no acknowledgement for 30 s"),
            Err(_) => continue,
        };
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(t.as_str())?;
            if v["result"] != "ok" {
                bail!("publish failed: {v}");
            }
            let ctx: u64 = v["context"].as_str().and_then(|c| c.parse().ok()).context("reply without context")?;
            let sent = in_flight.lock().unwrap().remove(&ctx);
            if let Some(t0) = sent {
                let us = t0.elapsed().as_micros().max(1) as u64;
                hist.record(us)?;
                if a.latencies.is_some() {
                    latencies.push(us);
                }
                acked += 1;
                last_ack = Instant::now();
                window.add_permits(1);
            }
        }
        if last_report.elapsed() >= Duration::from_secs(1) {
            eprintln!("ws-produce: {acked} acknowledged");
            last_report = Instant::now();
        }
    }
    sender.await??;
    crate::perf::summary("ws-produce", acked, acked * a.size as u64, started.elapsed(), &hist, "ack latency");
    if let Some(file) = &a.latencies {
        let text: String = latencies.iter().map(|us| format!("{us}\n")).collect();
        std::fs::write(file, text).with_context(|| format!("cannot write --latencies {}", file.display()))?;
    }
    Ok(())
}

type WsSink = futures::stream::SplitSink<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    Message,
>;

/// Sends `a.messages` messages, each once the window has room (paced when a rate is set),
/// flushing whenever it would wait.
async fn send_window(
    a: WsProduceArgs,
    mut tx: WsSink,
    in_flight: Arc<Mutex<HashMap<u64, Instant>>>,
    window: Arc<tokio::sync::Semaphore>,
    started: Instant,
) -> anyhow::Result<()> {
    let payload = base64::engine::general_purpose::STANDARD.encode(vec![b'x'; a.size]);
    let interval = (a.rate > 0).then(|| Duration::from_secs_f64(1.0 / a.rate as f64));
    for sent in 0..a.messages {
        if let Some(i) = interval {
            let due = started + i * sent as u32;
            if Instant::now() < due {
                tx.flush().await?;
                tokio::time::sleep_until(due.into()).await;
            }
        }
        match window.try_acquire() {
            Ok(p) => p.forget(),
            Err(_) => {
                tx.flush().await?;
                window.acquire().await?.forget();
            }
        }
        // The payload is base64 already: the frame is formatted, not built as a JSON value.
        let frame =
            format!(r#"{{"payload":"{payload}","context":"{sent}","properties":{{"sent_us":"{}"}}}}"#, now_us());
        in_flight.lock().unwrap().insert(sent, Instant::now());
        tx.feed(Message::Text(frame.into())).await?;
    }
    tx.flush().await?;
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
