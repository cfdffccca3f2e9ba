//! One task per consumer: delivers MESSAGE frames against the permits its FLOW commands granted
//! (one permit per message, a batch counting its messages), waiting on the subscription engine
//! when there is nothing to send and on a FLOW when permits run out.
//!
//! A batch delivered whole goes out as one frame under its entry's id, and the client
//! acknowledges it with that id alone (unless it acknowledges batch indexes): [`SentBatches`]
//! remembers its size so that such an ack covers all its messages.

use crate::convert;
use magnetar_broker::ConsumerSession;
use magnetar_protocol::Frame;
use magnetar_protocol::proto::{CommandActiveConsumerChange, CommandCloseConsumer, CommandMessage, MessageIdData};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

/// Most messages taken from the engine in one go (a batch is not cut at it): what the engine
/// reads ahead for a consumer, so that one window serves one take.
const TAKE: u64 = magnetar_broker::subscription::AHEAD_RECORDS as u64;
/// Most batches remembered per consumer; the oldest is forgotten first (its ack then covers its
/// first message only, and the rest is redelivered: at least once, never lost).
const MAX_SENT_BATCHES: usize = 100_000;

/// An entry as the client names it: partition, ledger, entry.
pub type EntryKey = (i32, u64, u64);

/// A batch sent whole: its size, and whether it is end-to-end encrypted (then acknowledged as a
/// whole only: its first record carries all of it, see `magnetar_broker`'s encrypted batches).
#[derive(Clone, Copy)]
struct Sent {
    size: u32,
    sealed: bool,
}

/// The batches a consumer received as one frame and has not acknowledged, with their sizes.
#[derive(Default)]
pub struct SentBatches(Mutex<BTreeMap<EntryKey, Sent>>);

impl SentBatches {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<EntryKey, Sent>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sent(&self, key: EntryKey, size: u32, sealed: bool) {
        let mut map = self.map();
        map.insert(key, Sent { size, sealed });
        if map.len() > MAX_SENT_BATCHES {
            map.pop_first();
        }
    }

    /// The entry's messages now go out one by one: an ack of its id means its first message.
    fn split(&self, key: EntryKey) {
        self.map().remove(&key);
    }

    /// The size of the batch sent whole under `key`, if one was.
    fn size(&self, key: EntryKey) -> Option<u32> {
        self.map().get(&key).map(|s| s.size)
    }

    fn sealed(&self, key: EntryKey) -> bool {
        self.map().get(&key).is_some_and(|s| s.sealed)
    }

    /// The messages an ack (`cumulative` or not) or a redelivery request names by `d`: a batch
    /// sent whole and named by its entry alone, all its messages; with an `ack_set` (batch-index
    /// acks), the indexes whose bits are clear; otherwise the one message `d` designates. Part
    /// of an encrypted batch names nothing (cumulatively: the entries before it): the batch is
    /// acknowledged when all of it is.
    pub fn named(&self, d: &MessageIdData, cumulative: bool) -> Named {
        let id = convert::message_id(d);
        let entry = magnetar_core::MessageId { batch_index: -1, ..id }.offset();
        let key = key_of(d);
        let before = || cumulative.then(|| entry.checked_sub(1)).flatten();
        if !d.ack_set.is_empty() {
            let words = &d.ack_set;
            // The bits past the batch's end are clear too: without its size (a batch this
            // consumer was not sent whole, or forgotten) nothing is acknowledged rather than
            // the messages after the batch.
            let size = self.size(key).or(d.batch_size.and_then(|s| u32::try_from(s).ok())).unwrap_or(0);
            let size = size.min(64 * words.len() as u32);
            let clear = |i: u32| (words[(i / 64) as usize] as u64) & (1 << (i % 64)) == 0;
            let mut offsets: Vec<u64> = (0..size).filter(|&i| clear(i)).map(|i| entry + u64::from(i)).collect();
            if size > 0 && offsets.len() == size as usize {
                self.acked(key, cumulative);
            } else if self.sealed(key) {
                offsets.clear();
            }
            // A cumulative ack with an ack set covers the entries before this one, and the
            // indexes it clears in this one.
            return Named { id, offsets, through: before() };
        }
        if id.batch_index >= 0 && self.sealed(key) {
            let last = self.size(key).is_some_and(|n| id.batch_index as u32 + 1 >= n);
            if !(cumulative && last) {
                return Named { id, offsets: Vec::new(), through: before() };
            }
        }
        let whole = self.size(key).filter(|_| id.batch_index < 0 || self.sealed(key));
        if let Some(n) = whole {
            self.acked(key, cumulative);
            let last = entry + u64::from(n.max(1)) - 1;
            return match cumulative {
                true => Named { id, offsets: Vec::new(), through: Some(last) },
                false => Named { id, offsets: (entry..=last).collect(), through: None },
            };
        }
        match cumulative {
            true => Named { id, offsets: Vec::new(), through: Some(id.offset()) },
            false => Named { id, offsets: vec![id.offset()], through: None },
        }
    }

    /// The batch under `key` is acknowledged (or, `cumulative`, everything up to it).
    fn acked(&self, key: EntryKey, cumulative: bool) {
        let mut map = self.map();
        if cumulative {
            let rest = map.split_off(&(key.0, key.1, key.2.saturating_add(1)));
            map.retain(|k, _| k.0 != key.0);
            map.extend(rest);
        } else {
            map.remove(&key);
        }
    }
}

/// A consumer as its connection holds it.
pub struct ConsumerHandle {
    pub session: Arc<ConsumerSession>,
    /// Negative after a batch overdrew them: the next FLOWs repay that first, as in Pulsar.
    pub permits: Arc<AtomicI64>,
    pub batches: Arc<SentBatches>,
    pub wake: Arc<Notify>,
    pub stop: CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
    /// The subscription's name; `None` for a reader.
    pub subscription: Option<magnetar_core::SubscriptionName>,
    /// The subscription name the client gave (a reader's `reader-…` too).
    pub subscription_name: String,
}

/// What an ack of one id covers, as offsets of the partition its broker id names.
pub struct Named {
    pub id: magnetar_core::MessageId,
    /// Messages acknowledged one by one.
    pub offsets: Vec<u64>,
    /// For a cumulative ack: the last offset acknowledged with everything before it.
    pub through: Option<u64>,
}

impl ConsumerHandle {
    /// Adds permits (FLOW), at most `cap` outstanding.
    pub fn grant(&self, n: u32, cap: u64) {
        let cap = i64::try_from(cap).unwrap_or(i64::MAX);
        let _ = self.permits.fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| Some((p + i64::from(n)).min(cap)));
        self.wake.notify_one();
    }

    /// Ends delivery, waits for the task, and detaches the session (acks already received are
    /// made durable first).
    pub async fn close(self) {
        self.stop.cancel();
        let _ = self.task.await;
        self.session.flush_acks().await;
        self.session.close();
    }
}

/// Starts delivering to a consumer; `permits` is the counter its FLOWs grant (shared with its
/// stats, see `SubscribeOptions::shown`).
pub fn spawn(
    broker: &magnetar_broker::Broker,
    consumer_id: u64,
    mut session: ConsumerSession,
    subscription: Option<magnetar_core::SubscriptionName>,
    out: mpsc::Sender<Frame>,
    direct: bool,
    permits: Arc<AtomicI64>,
) -> ConsumerHandle {
    // Batches go out as one frame each: the engine hands their messages over together; chunks
    // go out as they are (the client joins them).
    session.deliver_whole_batches();
    let session = Arc::new(session);
    let batches = Arc::new(SentBatches::default());
    let wake = Arc::new(Notify::new());
    let stop = CancellationToken::new();
    let task = broker.spawn(deliver(
        consumer_id,
        Arc::clone(&session),
        Delivery { permits: Arc::clone(&permits), batches: Arc::clone(&batches), wake: Arc::clone(&wake) },
        stop.clone(),
        out,
        direct.then(|| Arc::clone(broker.tier())),
    ));
    ConsumerHandle { session, permits, batches, wake, stop, task, subscription, subscription_name: String::new() }
}

/// What the delivery task shares with the connection.
struct Delivery {
    permits: Arc<AtomicI64>,
    batches: Arc<SentBatches>,
    wake: Arc<Notify>,
}

/// The frames for `messages`: whole batches as one frame each, any other message on its own.
fn frames(consumer_id: u64, messages: &[magnetar_broker::PulledMessage], batches: &SentBatches) -> Vec<Frame> {
    let mut out = Vec::with_capacity(messages.len());
    let mut i = 0;
    while i < messages.len() {
        let rest = &messages[i..];
        if rest[0].record.is_encrypted_member() {
            // Goes with its head, which was framed before it.
            i += 1;
            continue;
        }
        if let Some((id, payload)) = convert::encrypted_payload(&rest[0]) {
            if let Some(b) = rest[0].record.batch {
                batches.sent(key_of(&id), b.size, true);
            }
            out.push(Frame::with_payload(
                CommandMessage {
                    consumer_id,
                    message_id: id,
                    redelivery_count: Some(rest[0].redelivery_count),
                    ..Default::default()
                },
                payload,
            ));
            i += 1;
            continue;
        }
        let n = convert::whole_batch(rest);
        let batch = match (n > 0).then(|| convert::batch_payload(&rest[..n])) {
            Some(Ok(built)) => Some(built),
            Some(Err(e)) => {
                tracing::warn!(consumer_id, error = %e, "a batch could not be framed; its messages go one by one");
                None
            }
            None => None,
        };
        let (taken, message_id, payload) = match batch {
            Some((id, payload)) => {
                batches.sent(key_of(&id), n as u32, false);
                (n, id, payload)
            }
            None => {
                let m = &rest[0];
                if m.record.batch.is_some() {
                    batches.split(key_of(&convert::entry_id_data(&m.id)));
                }
                let (id, payload) = convert::message_payload(m);
                (1, id, payload)
            }
        };
        let redelivery_count = rest[..taken].iter().map(|m| m.redelivery_count).max();
        out.push(Frame::with_payload(
            CommandMessage { consumer_id, message_id, redelivery_count, ..Default::default() },
            payload,
        ));
        i += taken;
    }
    out
}

/// The entry a MESSAGE frame or an ack names.
pub fn key_of(id: &magnetar_protocol::proto::MessageIdData) -> EntryKey {
    (id.partition.unwrap_or(-1), id.ledger_id, id.entry_id)
}

async fn deliver(
    consumer_id: u64,
    session: Arc<ConsumerSession>,
    shared: Delivery,
    stop: CancellationToken,
    out: mpsc::Sender<Frame>,
    redirects: Option<Arc<magnetar_broker::tier::Tier>>,
) {
    let Delivery { permits, batches, wake } = shared;
    // Failover: tell the consumer whether it is active at once and at every change (Pulsar
    // sends ACTIVE_CONSUMER_CHANGE to Failover consumers only).
    let mut members = session.watch_members();
    let mut told: Option<bool> = None;
    // The next window, read while the client works towards its next FLOW.
    let mut reading_ahead: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        if let Some(active) = session.failover_active().filter(|a| told != Some(*a)) {
            told = Some(active);
            let change = CommandActiveConsumerChange { consumer_id, is_active: Some(active) };
            if out.send(Frame::new(change)).await.is_err() {
                return;
            }
        }
        let tokens = session.wait_tokens();
        let available = u64::try_from(permits.load(Ordering::Acquire)).unwrap_or(0);
        let room = session.max_unacked().saturating_sub(session.unacked());
        let window = available.min(room).min(TAKE);
        let mut sent = 0;
        if window > 0 {
            if let Some(read) = reading_ahead.take() {
                let _ = read.await;
            }
            match session.receive(window as usize).await {
                Ok(messages) => {
                    for frame in frames(consumer_id, &messages, &batches) {
                        if out.send(frame).await.is_err() {
                            return;
                        }
                    }
                    sent = messages.len() as u64;
                    // A batch overdraws the permits (it goes whole): the debt is repaid by the
                    // next FLOWs, so the client never holds much more than its receiver queue.
                    let left = permits.fetch_sub(sent as i64, Ordering::AcqRel) - sent as i64;
                    // Out of permits with a full window sent: more is probably waiting.
                    if left <= 0 && sent >= window {
                        reading_ahead = Some(session.read_ahead());
                    }
                }
                Err(e) => tracing::warn!(consumer_id, error = %e, "delivery to a pulsar:// consumer failed"),
            }
        }
        if sent > 0 {
            continue;
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = session.closed() => {
                // Unloaded or deleted: the client resubscribes where a handover sent the
                // partition (PIP-307), or else where a new lookup finds it.
                let to = redirects.zip(session.moved_to()).map(|(t, r)| t.redirect_on_close(r)).unwrap_or_default();
                let close = CommandCloseConsumer {
                    consumer_id,
                    request_id: 0,
                    assigned_broker_service_url: to.url,
                    assigned_broker_service_url_tls: to.url_tls,
                };
                let _ = out.send(Frame::new(close)).await;
                return;
            }
            _ = wake.notified() => {}
            _ = magnetar_broker::members_changed(&mut members), if told.is_some() => {}
            _ = session.changed(tokens), if available > 0 => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(entry: u64, batch_index: Option<i32>, ack_set: Vec<i64>) -> MessageIdData {
        MessageIdData {
            ledger_id: 100,
            entry_id: entry,
            partition: Some(-1),
            batch_index,
            ack_set,
            ..Default::default()
        }
    }

    #[test]
    fn an_entry_ack_of_a_batch_sent_whole_covers_all_its_messages_once() {
        let b = SentBatches::default();
        b.sent((-1, 100, 10), 4, false);
        let n = b.named(&id(10, None, vec![]), false);
        assert_eq!((n.offsets, n.through), (vec![110, 111, 112, 113], None));
        // Forgotten once acknowledged: the same id again names its first message only.
        assert_eq!(b.named(&id(10, None, vec![]), false).offsets, vec![110]);
    }

    #[test]
    fn a_cumulative_entry_ack_goes_through_the_batch_and_forgets_the_ones_before() {
        let b = SentBatches::default();
        b.sent((-1, 100, 0), 3, false);
        b.sent((-1, 100, 10), 4, false);
        b.sent((-1, 100, 20), 2, false);
        let n = b.named(&id(10, None, vec![]), true);
        assert_eq!((n.offsets.len(), n.through), (0, Some(113)));
        assert_eq!(b.size((-1, 100, 0)), None);
        assert_eq!(b.size((-1, 100, 20)), Some(2));
    }

    #[test]
    fn an_ack_set_acknowledges_the_clear_bits_within_the_batch_only() {
        let b = SentBatches::default();
        b.sent((-1, 100, 10), 5, false);
        // Bits set = still unacknowledged: 0b10110 leaves 0 and 3 acknowledged; bits 5.. are
        // clear too but past the batch.
        let n = b.named(&id(10, None, vec![0b10110]), false);
        assert_eq!((n.offsets, n.through), (vec![110, 113], None));
        assert_eq!(b.size((-1, 100, 10)), Some(5), "not all acknowledged: remembered");
        let n = b.named(&id(10, None, vec![0b10110]), true);
        assert_eq!(n.through, Some(109), "cumulatively, the entries before it too");
        // A batch of unknown size: nothing rather than the messages after it.
        assert!(b.named(&id(30, None, vec![0]), false).offsets.is_empty());
    }

    #[test]
    fn an_encrypted_batch_is_acknowledged_as_a_whole_only() {
        let b = SentBatches::default();
        b.sent((-1, 100, 10), 3, true);
        // Part of it by ack set or by batch index: nothing (cumulatively, the entries before).
        let n = b.named(&id(10, None, vec![0b110]), false);
        assert!(n.offsets.is_empty() && n.through.is_none());
        assert_eq!(b.named(&id(10, None, vec![0b110]), true).through, Some(109));
        assert!(b.named(&id(10, Some(1), vec![]), false).offsets.is_empty());
        let n = b.named(&id(10, Some(1), vec![]), true);
        assert_eq!((n.offsets.len(), n.through), (0, Some(109)));
        // All of it: by the entry, by an ack set clearing every bit, cumulatively by its last.
        assert_eq!(b.named(&id(10, None, vec![0]), false).offsets, vec![110, 111, 112]);
        b.sent((-1, 100, 10), 3, true);
        assert_eq!(b.named(&id(10, Some(2), vec![]), true).through, Some(112));
        b.sent((-1, 100, 10), 3, true);
        assert_eq!(b.named(&id(10, None, vec![]), false).offsets, vec![110, 111, 112]);
    }

    #[test]
    fn ids_with_a_batch_index_or_of_single_messages_name_one_message() {
        let b = SentBatches::default();
        b.sent((-1, 100, 10), 4, false);
        assert_eq!(b.named(&id(10, Some(2), vec![]), false).offsets, vec![112]);
        assert_eq!(b.named(&id(40, None, vec![]), false).offsets, vec![140]);
        assert_eq!(b.named(&id(40, None, vec![]), true).through, Some(140));
        b.split((-1, 100, 10));
        assert_eq!(b.named(&id(10, None, vec![]), false).offsets, vec![110], "sent one by one after a split");
    }
}
