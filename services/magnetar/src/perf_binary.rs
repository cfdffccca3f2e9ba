//! `magnetar perf bin-produce` / `bin-consume`: load over Pulsar's binary protocol in
//! pulsar-perf's shape (producers, message size, batching, compression, pending window), so that
//! the binary listener is measured by a client as fast as the broker rather than by a Python
//! callback per message. Batches are built the way Pulsar's clients build them (one SEND whose
//! payload holds `num_messages_in_batch` single messages, compressed as a whole), with the
//! defaults of Pulsar's C++/Python client: 1000 messages or 128 KiB per batch, 10 ms delay,
//! 1000 messages pending.

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use magnetar_protocol::proto::*;
use magnetar_protocol::{Frame, Payload, PulsarCodec, SingleMessage};
use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

type Conn = Framed<TcpStream, PulsarCodec>;

#[derive(Args, Clone)]
pub struct Connection {
    /// The broker's `pulsar://` URL.
    #[arg(long, default_value = "pulsar://127.0.0.1:6650")]
    url: String,
    #[arg(long, default_value = "persistent://public/default/perf")]
    topic: String,
    /// Token for the `token` authentication method.
    #[arg(long, env = "MAGNETAR_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Codec {
    None,
    Lz4,
    Zlib,
    Zstd,
    Snappy,
}

impl From<Codec> for CompressionType {
    fn from(c: Codec) -> Self {
        match c {
            Codec::None => CompressionType::None,
            Codec::Lz4 => CompressionType::Lz4,
            Codec::Zlib => CompressionType::Zlib,
            Codec::Zstd => CompressionType::Zstd,
            Codec::Snappy => CompressionType::Snappy,
        }
    }
}

#[derive(Args, Clone)]
pub struct BinProduceArgs {
    #[command(flatten)]
    conn: Connection,
    /// Messages to publish in total (over all producers).
    #[arg(long, short = 'n', default_value_t = 100_000)]
    messages: u64,
    #[arg(long, short = 's', default_value_t = 1024)]
    size: usize,
    /// Producers, each on its own connection.
    #[arg(long, short = 'p', default_value_t = 1)]
    producers: usize,
    /// Messages sent and not yet acknowledged, per producer (the client's `maxPendingMessages`).
    #[arg(long, short = 'w', default_value_t = 1000)]
    pending: usize,
    /// Turn batching off: one SEND per message.
    #[arg(long)]
    no_batching: bool,
    #[arg(long, default_value_t = 1000)]
    batch_max_messages: usize,
    #[arg(long, default_value_t = 128 * 1024)]
    batch_max_bytes: usize,
    /// A batch that is not full goes out this long after its first message.
    #[arg(long, default_value_t = 10)]
    batch_delay_ms: u64,
    #[arg(long, value_enum, default_value = "none")]
    compression: Codec,
    /// Target rate in messages per second over all producers (0 = as fast as the window allows).
    #[arg(long, default_value_t = 0)]
    rate: u64,
}

#[derive(Args, Clone)]
pub struct BinConsumeArgs {
    #[command(flatten)]
    conn: Connection,
    #[arg(long, default_value = "perf-bin")]
    subscription: String,
    /// Exclusive, Shared, Failover or Key_Shared.
    #[arg(long, default_value = "Shared")]
    subscription_type: String,
    /// Where a new subscription starts: Earliest (catch-up reads) or Latest (tailing).
    #[arg(long, default_value = "Earliest")]
    initial_position: String,
    /// Messages to consume before stopping.
    #[arg(long, short = 'n', default_value_t = 100_000)]
    messages: u64,
    /// Permits given to the broker (the client's `receiverQueueSize`).
    #[arg(long, default_value_t = 1000)]
    receiver_queue: u32,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

async fn next(conn: &mut Conn, what: &str) -> anyhow::Result<Frame> {
    match tokio::time::timeout(Duration::from_secs(30), conn.next()).await {
        Err(_) => bail!("no frame for 30 s while waiting for {what}"),
        Ok(None) => bail!("the broker closed the connection while waiting for {what}"),
        Ok(Some(Err(e))) => bail!("bad frame from the broker: {e}"),
        Ok(Some(Ok(Err(e)))) => bail!("bad checksum from the broker: {e:?}"),
        Ok(Some(Ok(Ok(f)))) => Ok(f),
    }
}

/// Reads frames until `pick` accepts one, answering the broker's PINGs on the way.
async fn until<T>(conn: &mut Conn, what: &str, mut pick: impl FnMut(&Frame) -> Option<T>) -> anyhow::Result<T> {
    loop {
        let f = next(conn, what).await?;
        if f.command.ping.is_some() {
            conn.send(Frame::new(CommandPong {})).await?;
            continue;
        }
        if let Some(e) = &f.command.error {
            bail!("{what} failed: {} ({})", e.message, e.error);
        }
        if let Some(t) = pick(&f) {
            return Ok(t);
        }
    }
}

async fn connect(c: &Connection) -> anyhow::Result<Conn> {
    let addr = c
        .url
        .strip_prefix("pulsar://")
        .with_context(|| format!("--url {} is not a pulsar:// URL", c.url))?
        .trim_end_matches('/');
    let tcp = TcpStream::connect(addr).await.with_context(|| format!("cannot connect to {}", c.url))?;
    tcp.set_nodelay(true)?;
    let mut conn = Framed::new(tcp, PulsarCodec::new());
    conn.send(Frame::new(CommandConnect {
        client_version: "magnetar-perf".into(),
        protocol_version: Some(21),
        auth_method_name: c.token.as_ref().map(|_| "token".into()),
        auth_data: c.token.as_ref().map(|t| t.trim().as_bytes().to_vec()),
        ..Default::default()
    }))
    .await?;
    until(&mut conn, "CONNECTED", |f| f.command.connected.as_ref().map(|_| ())).await?;
    Ok(conn)
}

pub async fn produce(a: BinProduceArgs) -> anyhow::Result<()> {
    if a.producers == 0 || a.pending == 0 || a.batch_max_messages == 0 {
        bail!("--producers, --pending and --batch-max-messages must be at least 1");
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..a.producers {
        let share = a.messages / a.producers as u64 + u64::from((p as u64) < a.messages % a.producers as u64);
        let a = a.clone();
        tasks.push(tokio::spawn(async move { produce_one(&a, p, share).await }));
    }
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut acked = 0;
    for t in tasks {
        let (n, h) = t.await??;
        acked += n;
        hist.add(h)?;
    }
    let what = if a.no_batching { "bin-produce (batching off)" } else { "bin-produce (batching on)" };
    crate::perf::summary(what, acked, acked * a.size as u64, started.elapsed(), &hist, "ack latency");
    Ok(())
}

/// A batch on the wire: its first sequence id, and when each of its messages was sent.
struct InFlight {
    sequence_id: u64,
    sent: Vec<Instant>,
}

async fn produce_one(a: &BinProduceArgs, index: usize, total: u64) -> anyhow::Result<(u64, Histogram<u64>)> {
    let mut conn = connect(&a.conn).await?;
    conn.send(Frame::new(CommandProducer {
        topic: a.conn.topic.clone(),
        producer_id: 1,
        request_id: 1,
        ..Default::default()
    }))
    .await?;
    let name = until(&mut conn, "PRODUCER_SUCCESS", |f| {
        if let Some(e) = &f.command.send_error {
            return Some(Err(e.message.clone()));
        }
        f.command.producer_success.as_ref().map(|s| Ok(s.producer_name.clone()))
    })
    .await?
    .map_err(|e| anyhow::anyhow!("producer {index} refused: {e}"))?;
    let (max_messages, max_bytes, delay) = if a.no_batching {
        (1, usize::MAX, Duration::ZERO)
    } else {
        (a.batch_max_messages, a.batch_max_bytes, Duration::from_millis(a.batch_delay_ms))
    };
    let codec = CompressionType::from(a.compression);
    let body = bytes::Bytes::from(vec![b'x'; a.size]);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut in_flight: VecDeque<InFlight> = VecDeque::new();
    let (mut next_seq, mut acked, mut pending) = (0u64, 0u64, 0usize);
    let mut batch: Vec<Instant> = Vec::new();
    let mut last_report = Instant::now();
    // Paced: message k of this producer is due at start + k / (rate / producers).
    let started = Instant::now();
    let per_message = (a.rate > 0).then(|| Duration::from_secs_f64(a.producers as f64 / a.rate as f64));
    let due = |k: u64| per_message.map(|d| started + d.mul_f64(k as f64));
    while acked < total {
        // Fill the batch while the window allows, then send it when full, when its delay is up,
        // or when nothing more can be added (the window is full or every message is out).
        while next_seq + (batch.len() as u64) < total
            && pending + batch.len() < a.pending
            && batch.len() < max_messages
            && (batch.len() + 1) * a.size <= max_bytes.max(a.size)
            && due(next_seq + batch.len() as u64).is_none_or(|t| Instant::now() >= t)
        {
            batch.push(Instant::now());
        }
        let full = batch.len() >= max_messages
            || (batch.len() + 1) * a.size > max_bytes.max(a.size)
            || next_seq + batch.len() as u64 >= total
            || pending + batch.len() >= a.pending;
        let expired = batch.first().is_some_and(|t| t.elapsed() >= delay);
        if !batch.is_empty() && (full || expired) {
            let n = batch.len();
            let metadata = MessageMetadata {
                producer_name: name.clone(),
                sequence_id: next_seq,
                publish_time: now_ms(),
                ..Default::default()
            };
            let payload = if a.no_batching {
                Payload::compressed(metadata, codec, &body)?
            } else {
                let msgs: Vec<SingleMessage> = (0..n).map(|_| SingleMessage::new(body.clone())).collect();
                Payload::batch(metadata, codec, &msgs)?
            };
            let send = CommandSend {
                producer_id: 1,
                sequence_id: next_seq,
                num_messages: Some(n as i32),
                highest_sequence_id: Some(next_seq + n as u64 - 1),
                ..Default::default()
            };
            conn.feed(Frame::with_payload(send, payload)).await?;
            in_flight.push_back(InFlight { sequence_id: next_seq, sent: std::mem::take(&mut batch) });
            next_seq += n as u64;
            pending += n;
            continue;
        }
        // Receipts already read are taken first: one flush for all the sends they free room
        // for, not one per receipt (the broker writes whole frames, so buffered bytes complete).
        if conn.read_buffer().is_empty() {
            SinkExt::<Frame>::flush(&mut conn).await?;
        }
        // Wait for a receipt, or for the open batch's delay to run out.
        let mut wait = match batch.first() {
            Some(t) => delay.saturating_sub(t.elapsed()),
            None => Duration::from_secs(30),
        };
        if let Some(t) = due(next_seq + batch.len() as u64).filter(|_| next_seq + (batch.len() as u64) < total) {
            wait = wait.min(t.saturating_duration_since(Instant::now()));
        }
        let frame = match tokio::time::timeout(wait, next(&mut conn, "SEND_RECEIPT")).await {
            Ok(f) => f?,
            Err(_) if batch.is_empty() && per_message.is_none() => {
                bail!("no receipt for 30 s after {acked} acknowledged")
            }
            Err(_) => continue,
        };
        if frame.command.ping.is_some() {
            conn.send(Frame::new(CommandPong {})).await?;
        } else if let Some(e) = &frame.command.send_error {
            bail!("send {} failed: {} ({})", e.sequence_id, e.message, e.error);
        } else if let Some(r) = &frame.command.send_receipt {
            let Some(first) = in_flight.pop_front() else { bail!("a receipt for nothing sent: {r:?}") };
            if first.sequence_id != r.sequence_id {
                bail!("receipt for sequence id {} while {} was the oldest pending", r.sequence_id, first.sequence_id);
            }
            for t in &first.sent {
                hist.record(t.elapsed().as_micros().max(1) as u64)?;
            }
            acked += first.sent.len() as u64;
            pending -= first.sent.len();
        } else if frame.command.close_producer.is_some() {
            bail!("the broker closed producer {index} after {acked} acknowledged");
        }
        if index == 0 && last_report.elapsed() >= Duration::from_secs(1) {
            eprintln!("bin-produce: producer 0: {acked} acknowledged");
            last_report = Instant::now();
        }
    }
    Ok((acked, hist))
}

pub async fn consume(a: BinConsumeArgs) -> anyhow::Result<()> {
    let sub_type = match a.subscription_type.as_str() {
        "Exclusive" => SubType::Exclusive,
        "Shared" => SubType::Shared,
        "Failover" => SubType::Failover,
        "Key_Shared" => SubType::KeyShared,
        other => bail!("--subscription-type {other}: expected Exclusive, Shared, Failover or Key_Shared"),
    };
    let initial = match a.initial_position.as_str() {
        "Earliest" => InitialPosition::Earliest,
        "Latest" => InitialPosition::Latest,
        other => bail!("--initial-position {other}: expected Earliest or Latest"),
    };
    let mut conn = connect(&a.conn).await?;
    conn.send(Frame::new(CommandSubscribe {
        topic: a.conn.topic.clone(),
        subscription: a.subscription.clone(),
        sub_type: sub_type as i32,
        consumer_id: 1,
        request_id: 1,
        initial_position: Some(initial as i32),
        ..Default::default()
    }))
    .await?;
    until(&mut conn, "SUBSCRIBE's SUCCESS", |f| f.command.success.as_ref().map(|_| ())).await?;
    conn.send(Frame::new(CommandFlow { consumer_id: 1, message_permits: a.receiver_queue })).await?;
    let mut hist = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    let (mut count, mut bytes, mut used) = (0u64, 0u64, 0u32);
    let mut started: Option<Instant> = None;
    let mut last_report = Instant::now();
    while count < a.messages {
        let f = next(&mut conn, "MESSAGE").await?;
        if f.command.ping.is_some() {
            conn.send(Frame::new(CommandPong {})).await?;
            continue;
        }
        let (Some(m), Some(p)) = (&f.command.message, &f.payload) else { continue };
        started.get_or_insert_with(Instant::now);
        let n = p.num_messages().max(1) as u64;
        bytes += p.uncompressed(usize::MAX)?.len() as u64;
        let latency = now_ms().saturating_sub(p.metadata().publish_time) * 1000;
        // Messages older than the histogram's range (a backlog from long ago) count as its maximum.
        hist.saturating_record_n(latency.max(1), n);
        count += n;
        used += n as u32;
        // Acknowledge the whole entry (every message of a batch) with one individual ack.
        let id = MessageIdData { batch_index: None, batch_size: None, ack_set: vec![], ..m.message_id.clone() };
        conn.feed(Frame::new(CommandAck {
            consumer_id: 1,
            ack_type: AckType::Individual as i32,
            message_id: vec![id],
            ..Default::default()
        }))
        .await?;
        // Permits are refilled by half the queue at a time and sent at once, as Pulsar's
        // clients do; acks wait for the frames already received.
        let refill = used >= a.receiver_queue / 2;
        if refill {
            conn.feed(Frame::new(CommandFlow { consumer_id: 1, message_permits: used })).await?;
            used = 0;
        }
        if refill || conn.read_buffer().is_empty() {
            SinkExt::<Frame>::flush(&mut conn).await?;
        }
        if last_report.elapsed() >= Duration::from_secs(1) {
            eprintln!("bin-consume: {count} received");
            last_report = Instant::now();
        }
    }
    SinkExt::<Frame>::flush(&mut conn).await?;
    let elapsed = started.map(|s| s.elapsed()).unwrap_or_default();
    crate::perf::summary("bin-consume", count, bytes, elapsed, &hist, "end-to-end latency");
    Ok(())
}
