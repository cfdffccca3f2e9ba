//! WebSocket sessions on a whole partitioned topic in a broker tier: what the producer
//! (`ws_producer.rs`) and the consumer and reader (`ws_consumer.rs`) share. The broker that
//! received the client's session keeps one session per partition behind it, each opened where the
//! partition is served: here, as an in-memory session of this broker's own WebSocket code, or on
//! the owner, over the handshake `forward_ws` splices sessions with (the client's headers, its
//! `Authorization` unchanged, and `x-magnetar-forwarded-by`; the path names the partition).
//!
//! Each partition's session is run by one task ([`spawn_partition`]) that copies frames both ways
//! at once (so neither direction can block the other) and keeps a [`Ledger`] of what it sent and
//! was not answered yet. When the session is closed with 1012 (its bundle moved), the task routes
//! the partition afresh (`Tier::reroute`), opens a session on the new owner and sends that
//! ledger again: the producer's unanswered messages (on which the old owner did nothing), the
//! consumer's unanswered `isEndOfTopic` questions and its unused permits; a reader's goes on
//! after the last message it was given there. The client's session stays open. A consumer's or
//! reader's partition session whose connection is lost without a close frame is reopened the
//! same way, a few times a minute ([`reopens`]). Any other end of a partition's session ends the
//! client's, with the same code.
//!
//! Every queue is bounded: frames to a partition (`INBOX`), frames from all partitions to the
//! session (`OUTBOX`); a full queue makes its writer wait, down to the owners' connections.

use super::{Place, Whole, owner_error, path_of};
use crate::AppState;
use crate::error::{ApiError, ApiResult, NOT_OWNER};
use crate::forward_ws::{self, Refused};
use crate::routes::ws::Socket;
use axum::extract::FromRequestParts;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use futures::future::BoxFuture;
use futures::{SinkExt, StreamExt};
use magnetar_core::TopicName;
use percent_encoding::utf8_percent_encode;
use serde::Deserialize;
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Frames queued for one partition's session before the client's session waits.
pub(crate) const INBOX: usize = 256;

/// A client's handshake naming a whole partitioned topic in a broker tier (`None` for any other
/// session: the routing middleware marked it with a [`Whole`]).
pub(crate) struct WholeSession(pub Option<Handshake>);

/// The whole topic, and the client's headers and query, which the owners' handshakes repeat.
pub(crate) struct Handshake {
    pub whole: Whole,
    pub headers: HeaderMap,
    pub query: String,
}

impl<S: Send + Sync> FromRequestParts<S> for WholeSession {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(WholeSession(parts.extensions.get::<Whole>().cloned().map(|whole| Handshake {
            whole,
            headers: parts.headers.clone(),
            query: parts.uri.query().unwrap_or_default().to_string(),
        })))
    }
}

/// Runs a session this broker attached to a partition, on one end of an in-memory connection.
pub(crate) type Runner = Box<dyn FnOnce(Socket) -> BoxFuture<'static, ()> + Send>;
/// The handshake's work for one partition served here (authorize, attach, subscribe), as the
/// route does it for a client: the session to run, or the refusal. The second argument is the
/// id of the last message a reader was given on the partition, when its session is reopened
/// (the reader goes on after it: [`Target::resumes`]).
pub(crate) type Attach = Arc<dyn Fn(TopicName, Option<String>) -> BoxFuture<'static, ApiResult<Runner>> + Send + Sync>;

/// A client's session on a whole topic: how to open its session on any partition.
pub(crate) struct Target {
    pub whole: Whole,
    /// `producer`, `consumer` or `reader`: the route of the partitions' sessions.
    pub kind: &'static str,
    /// The path after the topic's name (`/{subscription}` for a consumer).
    pub tail: String,
    /// The query of the partitions' sessions.
    pub query: String,
    pub headers: HeaderMap,
    pub attach: Attach,
}

impl Target {
    /// The path (and query) of partition `p`'s session on its owner; a reader's reopened
    /// session starts after `resume`, the last message it was given there.
    fn path(&self, p: u32, resume: Option<&str>) -> String {
        let path = path_of(&format!("/ws/v2/{}", self.kind), &self.whole.partition(p), &self.tail);
        let query = match resume {
            Some(id) => with_params(&self.query, &[("messageId", id.to_string())]),
            None => self.query.clone(),
        };
        if query.is_empty() { path } else { format!("{path}?{query}") }
    }

    /// A reader's session reopened on a partition's next owner goes on after the last message
    /// it was given there, as Pulsar's readers do when they reconnect, rather than from its
    /// first start (which would read the partition again, or skip what came meanwhile).
    /// A consumer's subscription keeps its place by itself.
    fn resumes(&self) -> bool {
        self.kind == "reader"
    }
}

/// `query` with the parameters `set` given these values (replacing the client's own).
pub(crate) fn with_params(query: &str, set: &[(&str, String)]) -> String {
    let mut kept: Vec<String> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            let key = pair.split('=').next().unwrap_or_default();
            !set.iter().any(|(k, _)| *k == key)
        })
        .map(str::to_string)
        .collect();
    for (k, v) in set {
        kept.push(format!("{k}={}", utf8_percent_encode(v, super::SEGMENT)));
    }
    kept.join("&")
}

/// Opens partition `p`'s session where the partition is served (`fresh`: routed afresh, after
/// its owner closed the previous one; `resume`: where a reader's reopened session goes on). A
/// partition that is moving, or whose owner answers that it no longer owns it, is routed again
/// until `assignment_wait_ms` has passed; any other refusal is the answer, except that a
/// session being reopened also waits out a partition unavailable for now (503: its owner's
/// lease expired and the leader has not failed it over yet, or it is restarting).
pub(crate) async fn open(
    s: &AppState,
    target: &Target,
    p: u32,
    fresh: bool,
    resume: Option<&str>,
) -> ApiResult<Socket> {
    let tier = s.broker.tier();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(tier.config().assignment_wait_ms);
    let reopening = fresh;
    let mut fresh = fresh;
    // Retries back off, up to half a second: an owner that is down refuses at once.
    let mut pause = Duration::from_millis(20);
    loop {
        let partition = target.whole.partition(p);
        let place = if fresh { target.whole.replace(s, p).await } else { target.whole.place(s, p).await };
        let attempt = match place {
            Ok(Place::Local) => match (target.attach)(partition, resume.map(str::to_string)).await {
                Ok(run) => {
                    let (server, client) = Socket::pair();
                    s.broker.spawn(run(server));
                    Ok(client)
                }
                Err(e) => Err(e),
            },
            Ok(Place::Remote { broker, address }) => {
                match forward_ws::connect(s, &broker, &address, &target.path(p, resume), &target.headers).await {
                    Ok(upstream) => {
                        s.broker.count_forwarded();
                        Ok(forward_ws::socket(upstream))
                    }
                    Err(Refused::Unreachable(e)) => Err(e),
                    Err(Refused::Answer(answer)) => Err(refusal(answer, &broker).await),
                }
            }
            Err(e) => Err(e),
        };
        match attempt {
            Ok(socket) => return Ok(socket),
            Err(e)
                if (e.not_owner || reopening && e.status == axum::http::StatusCode::SERVICE_UNAVAILABLE)
                    && tokio::time::Instant::now() < deadline =>
            {
                fresh = true;
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(500));
            }
            Err(e) => return Err(e),
        }
    }
}

/// An owner's refused handshake as this broker's error (`not_owner` when it said so).
async fn refusal(answer: axum::response::Response, broker: &str) -> ApiError {
    let status = answer.status();
    let not_owner = answer.headers().contains_key(&NOT_OWNER);
    let body = axum::body::to_bytes(answer.into_body(), 64 * 1024).await.unwrap_or_default();
    let mut e = owner_error(status, &body, broker);
    e.not_owner = not_owner;
    e
}

/// Opens every partition's session (at most 16 handshakes at once); the first refusal, in
/// partition order, refuses the client's handshake (the sessions already open are closed).
pub(crate) async fn open_all(s: &AppState, target: &Target) -> ApiResult<Vec<Socket>> {
    target.whole.each(|p| open(s, target, p, false, None)).await.into_iter().collect()
}

/// What a frame from a partition's session is, read once by its task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    /// A message delivered to a consumer or reader.
    Delivery,
    /// The answer to `isEndOfTopic`.
    EndOfTopic(bool),
    /// A producer's receipt, for the send this broker numbered so.
    Receipt(u64),
    /// Anything else (errors, a reader's `skipped` report): passed on as it is.
    Other,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Peek {
    #[serde(default)]
    end_of_topic: Option<bool>,
    #[serde(default)]
    result: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    payload: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    message_id: Option<String>,
    #[serde(default)]
    context: Option<Value>,
}

fn classify(m: &Message) -> (Seen, Option<String>) {
    let Message::Text(t) = m else { return (Seen::Other, None) };
    let Ok(peek) = serde_json::from_str::<Peek>(t.as_str()) else { return (Seen::Other, None) };
    if let Some(end) = peek.end_of_topic {
        return (Seen::EndOfTopic(end), None);
    }
    if peek.result.is_some() {
        let id = match &peek.context {
            Some(Value::String(s)) => s.parse().ok(),
            Some(Value::Number(n)) => n.as_u64(),
            _ => None,
        };
        return (id.map_or(Seen::Other, Seen::Receipt), None);
    }
    if peek.payload.is_some() && peek.message_id.is_some() {
        return (Seen::Delivery, peek.message_id);
    }
    (Seen::Other, None)
}

/// What a frame sent to a partition is, for its [`Ledger`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tag {
    /// A producer's message, numbered by this broker (its `context` on the partition).
    Send(u64),
    EndOfTopic,
    Permit(u64),
    /// Acks, nacks, `unsubscribe`: not sent again after a move (an ack lost with the old owner
    /// means the new one redelivers the message).
    Plain,
}

/// What a partition's session was sent and has not answered: sent again to the next owner.
pub(crate) enum Ledger {
    Producer(VecDeque<(u64, Message)>),
    /// `last`: the id of the last message delivered.
    Consumer {
        end_of_topic: u32,
        permits: u64,
        last: Option<String>,
    },
}

impl Ledger {
    pub(crate) fn producer() -> Ledger {
        Ledger::Producer(VecDeque::new())
    }

    pub(crate) fn consumer() -> Ledger {
        Ledger::Consumer { end_of_topic: 0, permits: 0, last: None }
    }

    fn sent(&mut self, tag: Tag, frame: &Message) {
        match (self, tag) {
            (Ledger::Producer(unanswered), Tag::Send(id)) => unanswered.push_back((id, frame.clone())),
            (Ledger::Consumer { end_of_topic, .. }, Tag::EndOfTopic) => *end_of_topic += 1,
            (Ledger::Consumer { permits, .. }, Tag::Permit(n)) => *permits = permits.saturating_add(n),
            _ => {}
        }
    }

    /// `delivered`: the id of the message delivered (`Seen::Delivery`).
    fn received(&mut self, seen: Seen, delivered: Option<String>) {
        match (self, seen) {
            (Ledger::Producer(unanswered), Seen::Receipt(id)) => {
                // Receipts come in the order of the sends; a search covers anything else.
                match unanswered.front() {
                    Some((first, _)) if *first == id => {
                        unanswered.pop_front();
                    }
                    _ => unanswered.retain(|(i, _)| *i != id),
                }
            }
            (Ledger::Consumer { end_of_topic, .. }, Seen::EndOfTopic(_)) => {
                *end_of_topic = end_of_topic.saturating_sub(1);
            }
            (Ledger::Consumer { permits, last, .. }, Seen::Delivery) => {
                *permits = permits.saturating_sub(1);
                if delivered.is_some() {
                    *last = delivered;
                }
            }
            _ => {}
        }
    }

    /// The id of the last message delivered (a consumer's or reader's).
    fn last_delivered(&self) -> Option<String> {
        match self {
            Ledger::Consumer { last, .. } => last.clone(),
            Ledger::Producer(_) => None,
        }
    }

    /// The frames that put a new session where the old one was.
    fn replay(&self) -> Vec<Message> {
        match self {
            Ledger::Producer(unanswered) => unanswered.iter().map(|(_, m)| m.clone()).collect(),
            Ledger::Consumer { end_of_topic, permits, .. } => {
                let mut frames: Vec<Message> =
                    (0..*end_of_topic).map(|_| Message::Text(Utf8Bytes::from_static(IS_END_OF_TOPIC))).collect();
                if *permits > 0 {
                    frames.push(permit(*permits));
                }
                frames
            }
        }
    }
}

pub(crate) const IS_END_OF_TOPIC: &str = r#"{"type":"isEndOfTopic"}"#;

pub(crate) fn permit(n: u64) -> Message {
    Message::Text(format!(r#"{{"type":"permit","permitMessages":{n}}}"#).into())
}

/// What a partition's task tells the client's session.
pub(crate) enum Up {
    Frame(u32, Message, Seen),
    /// The partition's session ended for good, with this close frame (`None`: without one).
    Ended(u32, Option<CloseFrame>),
}

/// How one connection to a partition's session ended.
enum End {
    /// The client's session is over (its queue to this partition was closed).
    Done,
    /// The partition's session closed, with this close frame (`None`: a close without a code).
    Closed(Option<CloseFrame>),
    /// The connection ended without a close frame.
    Lost,
}

/// The close code of a bundle moving (service restart: reconnect).
const MOVED: u16 = 1012;

/// What both whole-topic session loops start from: every partition's session running (fed by
/// its inbox), their merged events, and the client's socket split into the stream of its frames
/// and a writer task (`out` feeds it).
pub(crate) struct Session {
    pub events: mpsc::Receiver<Up>,
    pub inboxes: Vec<mpsc::Sender<(Message, Tag)>>,
    pub stream: std::pin::Pin<Box<dyn futures::Stream<Item = Message> + Send>>,
    pub out: mpsc::Sender<Message>,
    pub writer: tokio::task::JoinHandle<()>,
}

/// Starts the partitions' sessions on `links` (each with a fresh `ledger()`) and the client's
/// writer.
pub(crate) fn start(
    s: &AppState,
    target: &Arc<Target>,
    links: Vec<Socket>,
    ledger: fn() -> Ledger,
    socket: axum::extract::ws::WebSocket,
) -> Session {
    let (events_tx, events) = mpsc::channel::<Up>(crate::routes::ws::OUTBOX);
    let mut inboxes = Vec::with_capacity(links.len());
    for (p, link) in (0u32..).zip(links) {
        let (tx, rx) = mpsc::channel(INBOX);
        spawn_partition(s, Arc::clone(target), p, link, rx, events_tx.clone(), ledger());
        inboxes.push(tx);
    }
    let Socket { sink, stream } = Socket::from_ws(socket);
    let (out, writer) = crate::routes::ws::spawn_writer(&s.broker, sink);
    Session { events, inboxes, stream, out, writer }
}

/// Runs partition `p`'s session on `link` until the client's session ends (its `inbox` closes),
/// reopening it on the partition's next owner when it is closed for a move.
pub(crate) fn spawn_partition(
    s: &AppState,
    target: Arc<Target>,
    p: u32,
    link: Socket,
    inbox: mpsc::Receiver<(Message, Tag)>,
    events: mpsc::Sender<Up>,
    ledger: Ledger,
) {
    let s = s.clone();
    let broker = Arc::clone(&s.broker);
    broker.spawn(async move {
        let (mut link, mut inbox, ledger) = (link, inbox, Mutex::new(ledger));
        let mut drops = VecDeque::new();
        loop {
            match pump(&mut link, &mut inbox, &events, &ledger, p).await {
                End::Done => {
                    let _ = link.sink.close().await;
                    return;
                }
                end @ (End::Closed(_) | End::Lost) if reopens(&end, target.kind, &mut drops) => {
                    if matches!(end, End::Lost) {
                        tracing::warn!(topic = %target.whole.base, partition = p, "a partition's session ended without a close frame; reopening it");
                    } else {
                        tracing::debug!(topic = %target.whole.base, partition = p, "a partition's session moved; reopening it");
                    }
                    let resume = target
                        .resumes()
                        .then(|| ledger.lock().unwrap_or_else(|e| e.into_inner()).last_delivered())
                        .flatten();
                    // Not while this broker shuts down: its client's session ends then (1001).
                    let shutdown = s.broker.shutdown_token();
                    let reopened = tokio::select! {
                        r = open(&s, &target, p, true, resume.as_deref()) => Some(r),
                        _ = shutdown.cancelled() => None,
                    };
                    match reopened {
                        None => {
                            let frame = close_frame(1001, "the broker is shutting down");
                            let _ = events.send(Up::Ended(p, Some(frame))).await;
                            return;
                        }
                        Some(Ok(mut next)) => {
                            let again = ledger.lock().unwrap_or_else(|e| e.into_inner()).replay();
                            for frame in again {
                                if next.sink.feed(frame).await.is_err() {
                                    break;
                                }
                            }
                            let _ = next.sink.flush().await;
                            link = next;
                        }
                        Some(Err(e)) => {
                            tracing::warn!(topic = %target.whole.base, partition = p, reason = %e.reason, "a partition's session could not be reopened");
                            let reason = format!("partition {p} could not be reopened: {}", e.reason);
                            let _ = events.send(Up::Ended(p, Some(close_frame(MOVED, &reason)))).await;
                            return;
                        }
                    }
                }
                End::Closed(frame) => {
                    let _ = events.send(Up::Ended(p, frame)).await;
                    return;
                }
                End::Lost => {
                    let _ = events.send(Up::Ended(p, None)).await;
                    return;
                }
            }
        }
    });
}

/// Connections lost (without a close frame) that a consumer's or reader's partition session is
/// reopened after, at most, in `DROPS_WINDOW`; more end the client's session.
const DROPS: usize = 3;
const DROPS_WINDOW: Duration = Duration::from_secs(60);

/// Whether a partition's session that ended so is reopened on the partition's owner:
/// when its bundle moved (1012), and, for consumers and readers, when its connection was lost
/// without a close frame, a few times a minute (`drops`: when that happened), as Pulsar's clients
/// reconnect. A subscription keeps its place and redelivers what was not acknowledged, and a
/// reader goes on after its last message; a producer's session is not reopened then, since the
/// lost owner may have stored what it did not answer, and sending it again could store it twice.
fn reopens(end: &End, kind: &str, drops: &mut VecDeque<std::time::Instant>) -> bool {
    match end {
        End::Done => false,
        End::Closed(frame) => frame.as_ref().is_some_and(|f| f.code == MOVED),
        End::Lost if kind == "producer" => false,
        End::Lost => {
            let now = std::time::Instant::now();
            drops.retain(|t| now.duration_since(*t) < DROPS_WINDOW);
            drops.push_back(now);
            drops.len() <= DROPS
        }
    }
}

/// Copies frames both ways on one connection until it closes or the client's session ends.
async fn pump(
    link: &mut Socket,
    inbox: &mut mpsc::Receiver<(Message, Tag)>,
    events: &mpsc::Sender<Up>,
    ledger: &Mutex<Ledger>,
    p: u32,
) -> End {
    let Socket { sink, stream } = link;
    let up = async {
        while let Some((frame, tag)) = inbox.recv().await {
            ledger.lock().unwrap_or_else(|e| e.into_inner()).sent(tag, &frame);
            if sink.send(frame).await.is_err() {
                // The connection is gone: its other half says how.
                std::future::pending::<()>().await;
            }
        }
        End::Done
    };
    let down = async {
        while let Some(m) = stream.next().await {
            match m {
                Message::Close(frame) => return End::Closed(frame),
                Message::Ping(_) | Message::Pong(_) => continue,
                m => {
                    let (seen, delivered) = classify(&m);
                    ledger.lock().unwrap_or_else(|e| e.into_inner()).received(seen, delivered);
                    if events.send(Up::Frame(p, m, seen)).await.is_err() {
                        return End::Done;
                    }
                }
            }
        }
        End::Lost
    };
    tokio::select! {
        end = up => end,
        end = down => end,
    }
}

pub(crate) fn close_frame(code: u16, reason: &str) -> CloseFrame {
    // A close frame's reason is at most 123 bytes.
    let mut cut = reason.len().min(120);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    CloseFrame { code, reason: reason[..cut].into() }
}

/// The close frame that ends the client's session when a partition's ended: its own, or 1011
/// when it ended without one.
pub(crate) fn ended(p: u32, frame: Option<CloseFrame>) -> Message {
    Message::Close(Some(frame.unwrap_or_else(|| close_frame(1011, &format!("the session of partition {p} ended")))))
}

/// Frames waiting for a full partition queue; while any waits, the client's frames are not read.
#[derive(Default)]
pub(crate) struct Stalled(VecDeque<(u32, Message, Tag)>);

impl Stalled {
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Queues `frame` for partition `p` (after anything already waiting for it); `false` when the
    /// partition's task is gone.
    pub(crate) fn send(&mut self, inboxes: &[mpsc::Sender<(Message, Tag)>], p: u32, frame: Message, tag: Tag) -> bool {
        if !self.0.is_empty() {
            self.0.push_back((p, frame, tag));
            return true;
        }
        match inboxes[p as usize].try_send((frame, tag)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full((frame, tag))) => {
                self.0.push_back((p, frame, tag));
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Waits for room for the first waiting frame and queues it; `false` when its partition's
    /// task is gone.
    pub(crate) async fn drain_one(&mut self, inboxes: &[mpsc::Sender<(Message, Tag)>]) -> bool {
        let Some((p, _, _)) = self.0.front() else { return true };
        match inboxes[*p as usize].reserve().await {
            Ok(permit) => {
                let (_, frame, tag) = self.0.pop_front().expect("a waiting frame");
                permit.send((frame, tag));
                true
            }
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Message {
        Message::Text(s.to_string().into())
    }

    fn classify_seen(m: &Message) -> Seen {
        classify(m).0
    }

    #[test]
    fn frames_from_partitions_are_told_apart() {
        assert_eq!(classify_seen(&text(r#"{"result":"ok","messageId":"CAAQAw==","context":"17"}"#)), Seen::Receipt(17));
        assert_eq!(classify_seen(&text(r#"{"result":"send-error:8","errorMsg":"x","context":"3"}"#)), Seen::Receipt(3));
        assert_eq!(classify_seen(&text(r#"{"endOfTopic":true}"#)), Seen::EndOfTopic(true));
        assert_eq!(
            classify(&text(r#"{"key":"k","messageId":"CAAQAw==","payload":"eA=="}"#)),
            (Seen::Delivery, Some("CAAQAw==".to_string()))
        );
        assert_eq!(classify_seen(&text(r#"{"error":"bad","errorCode":3}"#)), Seen::Other);
        assert_eq!(classify_seen(&text(r#"{"type":"skipped","count":4}"#)), Seen::Other);
        assert_eq!(classify_seen(&text("not json")), Seen::Other);
    }

    #[test]
    fn a_producer_ledger_sends_again_what_was_not_answered_in_order() {
        let mut l = Ledger::producer();
        for id in 0..4 {
            l.sent(Tag::Send(id), &text(&format!("m{id}")));
        }
        l.received(Seen::Receipt(0), None);
        l.received(Seen::Receipt(2), None);
        let again: Vec<String> = l
            .replay()
            .into_iter()
            .map(|m| if let Message::Text(t) = m { t.to_string() } else { String::new() })
            .collect();
        assert_eq!(again, ["m1", "m3"]);
    }

    #[test]
    fn a_consumer_ledger_asks_again_and_restores_its_permits() {
        let mut l = Ledger::consumer();
        l.sent(Tag::EndOfTopic, &text(IS_END_OF_TOPIC));
        l.sent(Tag::Permit(10), &permit(10));
        l.sent(Tag::Plain, &text(r#"{"messageId":"x"}"#));
        l.received(Seen::Delivery, Some("a".into()));
        l.received(Seen::Delivery, Some("b".into()));
        assert_eq!(l.last_delivered().as_deref(), Some("b"));
        let again = l.replay();
        assert_eq!(again.len(), 2);
        assert_eq!(again[1], permit(8));
        l.received(Seen::EndOfTopic(false), None);
        assert_eq!(l.replay(), vec![permit(8)]);
    }

    #[test]
    fn moved_sessions_are_reopened_and_lost_ones_only_for_consumers_and_readers_a_few_times() {
        let mut drops = VecDeque::new();
        let moved = End::Closed(Some(close_frame(MOVED, "unloaded")));
        assert!(reopens(&moved, "producer", &mut drops));
        assert!(!reopens(&End::Closed(Some(close_frame(1011, "failed"))), "consumer", &mut drops));
        assert!(!reopens(&End::Closed(None), "consumer", &mut drops), "a close without a code");
        assert!(!reopens(&End::Lost, "producer", &mut drops));
        for kind in ["consumer", "reader", "consumer"] {
            assert!(reopens(&End::Lost, kind, &mut drops), "{kind}");
        }
        assert!(!reopens(&End::Lost, "reader", &mut drops), "a fourth lost connection within the window");
        assert!(reopens(&moved, "reader", &mut drops), "moves are not counted");
        drops.iter_mut().for_each(|t| *t -= DROPS_WINDOW);
        assert!(reopens(&End::Lost, "consumer", &mut drops), "drops older than the window are forgotten");
    }

    #[test]
    fn a_reader_resumes_after_its_last_message_and_a_consumer_where_its_subscription_is() {
        let attach: Attach = Arc::new(|_, _| Box::pin(async { Err(ApiError::bad_request("unused")) }));
        let whole = Whole { base: "persistent://acme/app/t".parse().unwrap(), partitions: 2, authorization: None };
        let target = |kind| Target {
            whole: whole.clone(),
            kind,
            tail: String::new(),
            query: "messageId=earliest&readerName=r".into(),
            headers: HeaderMap::new(),
            attach: attach.clone(),
        };
        let reader = target("reader");
        assert!(reader.resumes());
        assert_eq!(
            reader.path(1, Some("CAAQAw==")),
            "/ws/v2/reader/persistent/acme/app/t-partition-1?readerName=r&messageId=CAAQAw%3D%3D"
        );
        assert_eq!(
            reader.path(0, None),
            "/ws/v2/reader/persistent/acme/app/t-partition-0?messageId=earliest&readerName=r"
        );
        assert!(!target("consumer").resumes());
    }

    #[test]
    fn partition_queries_replace_the_parameters_set_here() {
        assert_eq!(
            with_params("subscriptionType=Shared&consumerName=a&token=x%2By", &[("consumerName", "ws 1".into())]),
            "subscriptionType=Shared&token=x%2By&consumerName=ws%201"
        );
        assert_eq!(with_params("", &[("a", "b".into())]), "a=b");
    }
}
