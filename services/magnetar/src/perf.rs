//! `magnetar perf`: load generators over the HTTP APIs, in the spirit of pulsar-perf. They print
//! a progress line every second and a summary with throughput and latency percentiles.

use anyhow::{Context, bail};
use base64::Engine;
use clap::{Args, Subcommand};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Subcommand)]
pub enum PerfCommand {
    /// Publish N messages of S bytes with REST produce, K requests in flight.
    Produce(ProduceArgs),
    /// Pull and acknowledge N messages from a subscription.
    Consume(ConsumeArgs),
    /// Publish over the WebSocket API with a window of messages in flight.
    WsProduce(crate::perf_ws::WsProduceArgs),
    /// Consume and acknowledge every message over the WebSocket API.
    WsConsume(crate::perf_ws::WsConsumeArgs),
    /// Publish over Pulsar's binary protocol (batching, compression, several producers).
    BinProduce(crate::perf_binary::BinProduceArgs),
    /// Consume and acknowledge every message over Pulsar's binary protocol.
    BinConsume(crate::perf_binary::BinConsumeArgs),
}

#[derive(Args, Clone)]
pub struct Common {
    /// Broker HTTP URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Topic, e.g. persistent://public/default/perf.
    #[arg(long, default_value = "persistent://public/default/perf")]
    topic: String,
    /// Token sent as `Authorization: Bearer` (for brokers with authentication on).
    #[arg(long, env = "MAGNETAR_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

impl Common {
    fn headers(&self) -> anyhow::Result<reqwest::header::HeaderMap> {
        let mut h = reqwest::header::HeaderMap::new();
        if let Some(t) = &self.token {
            let mut v = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", t.trim()))?;
            v.set_sensitive(true);
            h.insert(reqwest::header::AUTHORIZATION, v);
        }
        Ok(h)
    }
}

#[derive(Args, Clone)]
pub struct ProduceArgs {
    #[command(flatten)]
    common: Common,
    /// Messages to publish in total.
    #[arg(long, short = 'n', default_value_t = 100_000)]
    messages: u64,
    /// Payload size in bytes.
    #[arg(long, short = 's', default_value_t = 1024)]
    size: usize,
    /// Messages per request.
    #[arg(long, short = 'b', default_value_t = 100)]
    batch: usize,
    /// Requests in flight.
    #[arg(long, short = 'c', default_value_t = 4)]
    concurrency: usize,
    /// Target rate in messages per second (0 = as fast as possible).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Give every message a key (spreads messages over partitions by hash).
    #[arg(long)]
    keyed: bool,
}

#[derive(Args, Clone)]
pub struct ConsumeArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long, default_value = "perf")]
    subscription: String,
    /// Messages to consume in total.
    #[arg(long, short = 'n', default_value_t = 100_000)]
    messages: u64,
    /// Messages per pull (and per ack request).
    #[arg(long, short = 'b', default_value_t = 1000)]
    batch: usize,
    /// Pullers in parallel.
    #[arg(long, short = 'c', default_value_t = 2)]
    concurrency: usize,
}

/// `persistent://t/ns/topic` → `t/ns/topic`.
fn topic_path(topic: &str) -> anyhow::Result<String> {
    let name: magnetar_core::TopicName = topic.parse().with_context(|| format!("invalid --topic {topic}"))?;
    Ok(format!("{}/{}", name.namespace(), name.local()))
}

struct Progress {
    count: AtomicU64,
    bytes: AtomicU64,
}

fn spawn_reporter(progress: Arc<Progress>, what: &'static str) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = 0;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        loop {
            tick.tick().await;
            let now = progress.count.load(Ordering::Relaxed);
            eprintln!("{what}: {:>10} msg/s  total {now}", now - last);
            last = now;
        }
    })
}

/// One result line: throughput and latency percentiles (`label` names the latency measured).
pub(crate) fn summary(what: &str, count: u64, bytes: u64, elapsed: Duration, hist: &Histogram<u64>, label: &str) {
    let secs = elapsed.as_secs_f64();
    println!(
        "{what}: {count} msgs in {secs:.2}s = {:.0} msg/s, {:.1} MB/s | {label} ms p50 {:.2} p99 {:.2} p99.9 {:.2} max {:.2}",
        count as f64 / secs,
        bytes as f64 / secs / 1e6,
        hist.value_at_quantile(0.5) as f64 / 1000.0,
        hist.value_at_quantile(0.99) as f64 / 1000.0,
        hist.value_at_quantile(0.999) as f64 / 1000.0,
        hist.max() as f64 / 1000.0,
    );
}

pub async fn run(cmd: PerfCommand) -> anyhow::Result<()> {
    match cmd {
        PerfCommand::Produce(a) => produce(a).await,
        PerfCommand::Consume(a) => consume(a).await,
        PerfCommand::WsProduce(a) => crate::perf_ws::produce(a).await,
        PerfCommand::WsConsume(a) => crate::perf_ws::consume(a).await,
        PerfCommand::BinProduce(a) => crate::perf_binary::produce(a).await,
        PerfCommand::BinConsume(a) => crate::perf_binary::consume(a).await,
    }
}

async fn produce(a: ProduceArgs) -> anyhow::Result<()> {
    if a.batch == 0 || a.concurrency == 0 {
        bail!("--batch and --concurrency must be at least 1");
    }
    let url = format!("{}/topics/persistent/{}", a.common.url.trim_end_matches('/'), topic_path(&a.common.topic)?);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.concurrency)
        .default_headers(a.common.headers()?)
        .build()?;
    let payload = "x".repeat(a.size);
    let requests = a.messages.div_ceil(a.batch as u64);
    let next = Arc::new(AtomicU64::new(0));
    let progress = Arc::new(Progress { count: AtomicU64::new(0), bytes: AtomicU64::new(0) });
    let reporter = spawn_reporter(Arc::clone(&progress), "produce");
    let started = Instant::now();
    // Requests per second when rate-limited; each worker paces its own share.
    let interval = (a.rate > 0).then(|| Duration::from_secs_f64(a.batch as f64 * a.concurrency as f64 / a.rate as f64));
    let mut workers = Vec::new();
    for w in 0..a.concurrency {
        let (client, url, payload, next, progress, a) =
            (client.clone(), url.clone(), payload.clone(), Arc::clone(&next), Arc::clone(&progress), a.clone());
        workers.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
            let mut pace = interval.map(|i| {
                let mut t = tokio::time::interval(i);
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                t
            });
            loop {
                let r = next.fetch_add(1, Ordering::Relaxed);
                if r >= requests {
                    break;
                }
                if let Some(p) = pace.as_mut() {
                    p.tick().await;
                }
                let n = (a.messages - r * a.batch as u64).min(a.batch as u64);
                let messages: Vec<Value> = (0..n)
                    .map(|i| {
                        if a.keyed {
                            json!({"payload": payload, "key": format!("k{}", (r * a.batch as u64 + i) % 1024)})
                        } else {
                            json!({"payload": payload})
                        }
                    })
                    .collect();
                let body = json!({ "producerName": format!("perf-{w}"), "messages": messages });
                let t = Instant::now();
                let resp = client.post(&url).json(&body).send().await.context("produce request failed")?;
                let status = resp.status();
                if !status.is_success() {
                    bail!("produce failed with {status}: {}", resp.text().await.unwrap_or_default());
                }
                resp.bytes().await?;
                hist.record(t.elapsed().as_micros().max(1) as u64)?;
                progress.count.fetch_add(n, Ordering::Relaxed);
                progress.bytes.fetch_add(n * a.size as u64, Ordering::Relaxed);
            }
            Ok::<_, anyhow::Error>(hist)
        }));
    }
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for w in workers {
        hist.add(w.await??)?;
    }
    reporter.abort();
    summary(
        "produce",
        progress.count.load(Ordering::Relaxed),
        progress.bytes.load(Ordering::Relaxed),
        started.elapsed(),
        &hist,
        "latency",
    );
    Ok(())
}

async fn consume(a: ConsumeArgs) -> anyhow::Result<()> {
    let base = format!(
        "{}/topics/persistent/{}/subscriptions/{}",
        a.common.url.trim_end_matches('/'),
        topic_path(&a.common.topic)?,
        a.subscription
    );
    let client = reqwest::Client::builder().default_headers(a.common.headers()?).build()?;
    let progress = Arc::new(Progress { count: AtomicU64::new(0), bytes: AtomicU64::new(0) });
    let reporter = spawn_reporter(Arc::clone(&progress), "consume");
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..a.concurrency.max(1) {
        let (client, base, progress, a) = (client.clone(), base.clone(), Arc::clone(&progress), a.clone());
        workers.push(tokio::spawn(async move {
            // Latency here is pull round trip plus ack round trip per batch.
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
            let mut idle = 0;
            while progress.count.load(Ordering::Relaxed) < a.messages {
                let t = Instant::now();
                let body = json!({"maxMessages": a.batch, "waitMs": 1000, "initialPosition": "earliest"});
                let resp = client.post(format!("{base}/pull")).json(&body).send().await?;
                if !resp.status().is_success() {
                    bail!("pull failed with {}: {}", resp.status(), resp.text().await.unwrap_or_default());
                }
                let v: Value = resp.json().await?;
                let msgs = v["messages"].as_array().cloned().unwrap_or_default();
                if msgs.is_empty() {
                    idle += 1;
                    if idle >= 10 {
                        break; // nothing for 10 s: the topic holds fewer messages than asked
                    }
                    continue;
                }
                idle = 0;
                let ids: Vec<Value> = msgs.iter().map(|m| m["messageId"].clone()).collect();
                let bytes: u64 = msgs
                    .iter()
                    .map(|m| {
                        base64::engine::general_purpose::STANDARD
                            .decode(m["payload"].as_str().unwrap_or(""))
                            .map(|b| b.len())
                            .unwrap_or(0) as u64
                    })
                    .sum();
                let resp = client.post(format!("{base}/ack")).json(&json!({ "messageIds": ids })).send().await?;
                if !resp.status().is_success() {
                    bail!("ack failed with {}", resp.status());
                }
                hist.record(t.elapsed().as_micros().max(1) as u64)?;
                progress.count.fetch_add(msgs.len() as u64, Ordering::Relaxed);
                progress.bytes.fetch_add(bytes, Ordering::Relaxed);
            }
            Ok::<_, anyhow::Error>(hist)
        }));
    }
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for w in workers {
        hist.add(w.await??)?;
    }
    reporter.abort();
    summary(
        "consume",
        progress.count.load(Ordering::Relaxed),
        progress.bytes.load(Ordering::Relaxed),
        started.elapsed(),
        &hist,
        "latency",
    );
    Ok(())
}
