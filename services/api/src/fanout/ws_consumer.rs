//! A WebSocket consumer or reader on a whole partitioned topic in a broker tier: one session per
//! partition (each with the client's subscription, type, name and options), their messages merged
//! into the client's session as they come. The client's frames go where they belong: an ack or
//! nack to the partition its message id names (an id of no partition of the topic is answered
//! with an error, as the single broker answers it), `isEndOfTopic` to every partition (the answer
//! is true once every partition's is), `unsubscribe` to every partition (the session ends once
//! every partition's has).
//!
//! Flow control: in push mode each partition's session keeps at most `receiverQueueSize`
//! messages unacknowledged, and a client that reads slowly makes the partitions' connections
//! wait. In pull mode the partitions' sessions run in pull mode too: each is given permits up to
//! the client's outstanding permits (at most `receiverQueueSize`); messages that come beyond the
//! client's permits are held (bounded by the permits given out) until it grants more, as Pulsar's
//! own WebSocket service holds what its partitioned consumer prefetched.

use super::ws::{
    Attach, Handshake, IS_END_OF_TOPIC, Ledger, Runner, Seen, Session, Stalled, Tag, Target, Up, ended, open_all,
    permit, start, with_params,
};
use super::{Whole, segment};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::AuthContext;
use crate::routes::ws::{Socket, await_close_answer, must_end, run_tracked, session_permit, text};
use crate::routes::ws_consumer::{
    ConsumerCommand, Flow, ReaderOptions, Sampler, error_reply, run_session, start_after,
};
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures::StreamExt;
use futures::future::BoxFuture;
use magnetar_auth::Operation;
use magnetar_broker::{BrokerError, SubscribeOptions};
use magnetar_core::{MessageId, SubscriptionName};
use serde_json::json;
use std::collections::VecDeque;
use std::sync::Arc;

/// A consumer's or a reader's session, as its handshake asked for it.
pub(crate) enum Plan {
    Consumer { sub: SubscriptionName, opts: Box<SubscribeOptions>, flow: Flow },
    Reader { options: ReaderOptions, per_second: Option<u32> },
}

pub(crate) async fn open(
    s: &AppState,
    auth: AuthContext,
    handshake: Handshake,
    plan: Plan,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let Handshake { whole, headers, query } = handshake;
    let n = whole.partitions;
    let (kind, tail, query, attach, flow) = match plan {
        Plan::Consumer { sub, opts, flow } => {
            // Refused on the base name before any partition's session is opened.
            auth.check(Operation::Consume, (&whole.base, sub.as_str())).await?;
            // Every partition's session with the same consumer name and dead-letter topic (named
            // after the base name, as the single broker names it).
            let mut set = vec![("consumerName", opts.consumer_name.clone())];
            if let Some(dlq) = &opts.dead_letter {
                set.push(("deadLetterTopic", dlq.topic.to_string()));
            }
            let query = with_params(&query, &set);
            let tail = format!("/{}", segment(sub.as_str()));
            let attach: Attach = {
                let (s, auth, flow) = (s.clone(), auth.clone(), flow.clone());
                Arc::new(move |partition, _| {
                    let (s, auth, sub, opts, flow) = (s.clone(), auth.clone(), sub.clone(), opts.clone(), flow.clone());
                    Box::pin(async move {
                        let session =
                            s.broker.subscriptions().subscribe(&auth.caller(), &partition, &sub, *opts).await?;
                        let broker = Arc::clone(&s.broker);
                        let run: Runner = Box::new(move |socket| -> BoxFuture<'static, ()> {
                            Box::pin(run_session(broker, socket, session, flow, auth))
                        });
                        Ok(run)
                    })
                })
            };
            ("consumer", tail, query, attach, flow)
        }
        Plan::Reader { options, per_second } => {
            auth.check(Operation::Read, &whole.base).await?;
            magnetar_broker::whole_topic_reader_start(&whole.base, options.start)?;
            // A sampled reader: the client's rate shared by the partitions.
            let per_partition = per_second.map(|r| r.div_ceil(n.max(1)).max(1));
            let query = match per_partition {
                Some(r) => with_params(&query, &[("maxMessagesPerSecond", r.to_string())]),
                None => query,
            };
            let ReaderOptions { start, name, compacted, mut flow } = options;
            flow.sample = per_partition.map(Sampler::new);
            let attach: Attach = {
                let (s, auth, flow) = (s.clone(), auth.clone(), flow.clone());
                Arc::new(move |partition, resume: Option<String>| {
                    let (s, auth, name, flow) = (s.clone(), auth.clone(), name.clone(), flow.clone());
                    Box::pin(async move {
                        let start = match resume {
                            Some(id) => start_after(&id)?,
                            None => start,
                        };
                        let session = s
                            .broker
                            .subscriptions()
                            .create_reader(&auth.caller(), &partition, start, &name, compacted, Default::default())
                            .await?;
                        let broker = Arc::clone(&s.broker);
                        let run: Runner = Box::new(move |socket| -> BoxFuture<'static, ()> {
                            Box::pin(run_session(broker, socket, session, flow, auth))
                        });
                        Ok(run)
                    })
                })
            };
            ("reader", String::new(), query, attach, flow)
        }
    };
    let target = Arc::new(Target { whole, kind, tail, query, headers, attach });
    let links = open_all(s, &target).await?;
    let permit = session_permit(s)?;
    let (s, broker) = (s.clone(), Arc::clone(&s.broker));
    let window = Window { pull_mode: flow.pull_mode, queue: flow.queue };
    Ok(ws.on_upgrade(move |socket| run_tracked(broker, permit, run(s, target, links, auth, window, socket))))
}

#[derive(Clone, Copy)]
struct Window {
    pull_mode: bool,
    /// The most permits one partition is given at once.
    queue: u64,
}

/// `isEndOfTopic` questions sent to every partition, answered once every partition answered.
struct EndOfTopic {
    partitions: u32,
    /// The number of the first question in `asked`.
    first: u64,
    /// Per question: partitions that answered, and whether each said true.
    asked: VecDeque<(u32, bool)>,
    /// Per partition: the number of the question its next answer is for.
    next: Vec<u64>,
}

impl EndOfTopic {
    fn new(partitions: u32) -> EndOfTopic {
        EndOfTopic { partitions, first: 0, asked: VecDeque::new(), next: vec![0; partitions as usize] }
    }

    fn ask(&mut self) {
        self.asked.push_back((0, true));
    }

    fn answer(&mut self, p: u32, end: bool) {
        let Some(q) = self.next.get_mut(p as usize) else { return };
        let i = q.saturating_sub(self.first) as usize;
        *q += 1;
        if let Some((answers, all)) = self.asked.get_mut(i) {
            *answers += 1;
            *all &= end;
        }
    }

    /// The next question's answer, once every partition gave its own.
    fn next_ready(&mut self) -> Option<bool> {
        let (answers, all) = *self.asked.front()?;
        if answers < self.partitions {
            return None;
        }
        self.asked.pop_front();
        self.first += 1;
        Some(all)
    }
}

/// Pull mode: the client's permits, the partitions', and what came beyond the client's.
struct Permits {
    client: u64,
    given: Vec<u64>,
    held: VecDeque<Message>,
}

impl Permits {
    /// The permits to give each partition so that it holds `min(client's, queue)`.
    fn top_up(&mut self, queue: u64) -> Vec<(u32, u64)> {
        let target = self.client.min(queue);
        let mut out = Vec::new();
        for (p, given) in (0u32..).zip(self.given.iter_mut()) {
            if *given < target {
                out.push((p, target - *given));
                *given = target;
            }
        }
        out
    }
}

/// The session: partitions' messages to the client, the client's frames to the partitions.
async fn run(
    s: AppState,
    target: Arc<Target>,
    links: Vec<Socket>,
    auth: AuthContext,
    window: Window,
    socket: WebSocket,
) {
    let broker = Arc::clone(&s.broker);
    let whole = target.whole.clone();
    let n = whole.partitions;
    let Session { mut events, inboxes, mut stream, out, writer } = start(&s, &target, links, Ledger::consumer, socket);
    let end = must_end(auth, &broker);
    tokio::pin!(end);
    let mut stalled = Stalled::default();
    let mut end_of_topic = EndOfTopic::new(n);
    let mut permits = Permits { client: 0, given: vec![0; n as usize], held: VecDeque::new() };
    // Partitions whose session ended after the client unsubscribed.
    let mut unsubscribing = false;
    let mut unsubscribed = 0u32;
    'session: loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(Up::Frame(p, m, Seen::Delivery)) => {
                    if window.pull_mode {
                        if let Some(given) = permits.given.get_mut(p as usize) {
                            *given = given.saturating_sub(1);
                        }
                        if permits.client == 0 {
                            permits.held.push_back(m);
                            continue;
                        }
                        permits.client -= 1;
                    }
                    if out.send(m).await.is_err() {
                        break;
                    }
                }
                Some(Up::Frame(p, _, Seen::EndOfTopic(end))) => {
                    end_of_topic.answer(p, end);
                    while let Some(all) = end_of_topic.next_ready() {
                        if out.send(text(&json!({ "endOfTopic": all }))).await.is_err() {
                            break 'session;
                        }
                    }
                }
                Some(Up::Frame(_, m, _)) => {
                    if out.send(m).await.is_err() {
                        break;
                    }
                }
                Some(Up::Ended(p, frame)) => {
                    let normal = frame.as_ref().is_none_or(|f| f.code == 1000 || f.code == 1005);
                    if unsubscribing && normal {
                        unsubscribed += 1;
                        if unsubscribed == n {
                            break;
                        }
                        continue;
                    }
                    let _ = out.send(ended(p, frame)).await;
                    break;
                }
                None => break,
            },
            frame = stream.next(), if stalled.is_empty() => match frame {
                None | Some(Message::Close(_)) => break,
                Some(Message::Text(raw)) => {
                    let command = match serde_json::from_str::<ConsumerCommand>(raw.as_str()) {
                        Ok(c) => c,
                        Err(e) => {
                            if out.send(error_reply(3, format!("invalid JSON frame: {e}"))).await.is_err() {
                                break;
                            }
                            continue;
                        }
                    };
                    let mut sends: Vec<(u32, Message, Tag)> = Vec::new();
                    let mut reply = None;
                    match command.kind.as_deref() {
                        None | Some("ack") | Some("negativeAcknowledge") => match partition_of(&whole, &command) {
                            Ok(p) => sends.push((p, Message::Text(raw), Tag::Plain)),
                            Err(e) => reply = Some(error_reply(3, e)),
                        },
                        Some("permit") => {
                            permits.client = permits.client.saturating_add(command.permit_messages.unwrap_or(0));
                            while permits.client > 0 && let Some(m) = permits.held.pop_front() {
                                permits.client -= 1;
                                if out.send(m).await.is_err() {
                                    break 'session;
                                }
                            }
                            if window.pull_mode {
                                for (p, k) in permits.top_up(window.queue) {
                                    sends.push((p, permit(k), Tag::Permit(k)));
                                }
                            }
                        }
                        Some("isEndOfTopic") => {
                            end_of_topic.ask();
                            for p in 0..n {
                                sends.push((p, Message::Text(Utf8Bytes::from_static(IS_END_OF_TOPIC)), Tag::EndOfTopic));
                            }
                        }
                        Some("unsubscribe") => {
                            unsubscribing = true;
                            for p in 0..n {
                                sends.push((p, Message::Text(raw.clone()), Tag::Plain));
                            }
                        }
                        Some(other) => reply = Some(error_reply(3, format!("unknown frame type `{other}`"))),
                    }
                    if let Some(r) = reply
                        && out.send(r).await.is_err()
                    {
                        break;
                    }
                    for (p, frame, tag) in sends {
                        if !stalled.send(&inboxes, p, frame, tag) {
                            break 'session;
                        }
                    }
                }
                Some(_) => {}
            },
            sent = stalled.drain_one(&inboxes), if !stalled.is_empty() => {
                if !sent {
                    break;
                }
            }
            close = &mut end => {
                let _ = out.send(close).await;
                break;
            }
        }
    }
    drop(inboxes);
    drop(out);
    let _ = writer.await;
    await_close_answer(&broker, stream).await;
}

/// The partition an ack or nack goes to: the one its message id names.
fn partition_of(whole: &Whole, command: &ConsumerCommand) -> Result<u32, String> {
    let raw = command.message_id.as_deref().ok_or("messageId is missing")?;
    let id = MessageId::from_base64(raw).map_err(|e| e.to_string())?;
    u32::try_from(id.partition_index).ok().filter(|p| *p < whole.partitions).ok_or_else(|| {
        ApiError::from(BrokerError::ForeignMessageId { id: id.to_text(), topic: whole.base.clone() }).reason
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_of_topic_is_true_once_every_partition_says_so() {
        let mut e = EndOfTopic::new(3);
        e.ask();
        e.ask();
        e.answer(0, true);
        e.answer(1, true);
        assert_eq!(e.next_ready(), None);
        e.answer(0, true);
        e.answer(2, true);
        assert_eq!(e.next_ready(), Some(true));
        assert_eq!(e.next_ready(), None);
        e.answer(1, false);
        e.answer(2, true);
        assert_eq!(e.next_ready(), Some(false));
    }

    #[test]
    fn partitions_are_given_permits_up_to_the_clients_within_the_queue() {
        let mut p = Permits { client: 0, given: vec![0; 3], held: VecDeque::new() };
        assert!(p.top_up(100).is_empty());
        p.client = 5;
        assert_eq!(p.top_up(100), vec![(0, 5), (1, 5), (2, 5)]);
        p.given[1] = 2;
        p.client = 4;
        assert_eq!(p.top_up(100), vec![(1, 2)]);
        p.client = 1000;
        assert_eq!(p.top_up(10), vec![(0, 5), (1, 6), (2, 5)]);
    }

    #[test]
    fn acks_go_to_the_partition_their_id_names() {
        let whole = Whole::for_test("persistent://acme/app/orders", 4);
        let cmd =
            |id: MessageId| ConsumerCommand { kind: None, message_id: Some(id.to_base64()), permit_messages: None };
        assert_eq!(partition_of(&whole, &cmd(MessageId::new(0, 5, 3))), Ok(3));
        assert!(partition_of(&whole, &cmd(MessageId::new(0, 5, 4))).is_err());
        assert!(partition_of(&whole, &cmd(MessageId::new(0, 5, -1))).is_err());
        let missing = ConsumerCommand { kind: None, message_id: None, permit_messages: None };
        assert!(partition_of(&whole, &missing).is_err());
    }
}
