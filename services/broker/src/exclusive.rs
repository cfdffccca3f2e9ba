//! Pulsar's producer access modes (PIP-68), per partition: `Shared` producers write side by
//! side; an `Exclusive` producer is the partition's only one, and is refused if others are
//! attached; `WaitForExclusive` queues until it can be; `ExclusiveWithFencing` closes every
//! other producer and takes the partition. Each exclusive producer raises the partition's
//! *topic epoch*; a producer that comes back with an older epoch (it was fenced out while it
//! was away) is refused, so an old leader never writes after its successor.
//!
//! The state lives with the loaded partition: a broker restart or a bundle move starts it
//! afresh, and the producers' reconnections (with their epochs) rebuild it.

use crate::{BrokerError, Result};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

/// How a producer shares its partition (Pulsar's `ProducerAccessMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccessMode {
    #[default]
    Shared,
    Exclusive,
    WaitForExclusive,
    ExclusiveWithFencing,
}

impl AccessMode {
    /// Pulsar's name of the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessMode::Shared => "Shared",
            AccessMode::Exclusive => "Exclusive",
            AccessMode::WaitForExclusive => "WaitForExclusive",
            AccessMode::ExclusiveWithFencing => "ExclusiveWithFencing",
        }
    }
}

/// Who a producer is, as topic stats list it (Pulsar's `publishers`).
#[derive(Debug, Clone, Default)]
pub struct ProducerLabel {
    pub name: String,
    /// The client's address, where the surface knows it.
    pub address: String,
    /// Epoch milliseconds.
    pub connected_since: i64,
}

/// One partition's producers, as far as access modes are concerned.
#[derive(Default)]
pub(crate) struct ProducerAccess(Arc<Mutex<State>>);

#[derive(Default)]
struct State {
    next_id: u64,
    /// Attached producers (waiting ones not included): their fence, cancelled when an
    /// `ExclusiveWithFencing` producer takes the partition, and who they are.
    attached: BTreeMap<u64, Attached>,
    /// The attached exclusive producer: its id and name.
    exclusive: Option<(u64, String)>,
    /// `WaitForExclusive` producers in arrival order, told their epoch when their turn comes.
    waiting: VecDeque<Waiting>,
    epoch: Option<u64>,
}

struct Attached {
    fence: CancellationToken,
    mode: AccessMode,
    label: ProducerLabel,
}

struct Waiting {
    id: u64,
    epoch: Option<u64>,
    turn: oneshot::Sender<Result<u64>>,
    /// What it is once attached (its mode is `WaitForExclusive`).
    attached: Attached,
}

/// A producer's place on a partition, released when dropped (the next waiting producer then
/// gets its turn).
pub struct AccessGuard {
    state: Arc<Mutex<State>>,
    id: u64,
    fence: CancellationToken,
}

/// The outcome of [`ProducerAccess::admit`].
pub(crate) enum Admission {
    /// Attached; the topic epoch when it is exclusive.
    Ready(AccessGuard, Option<u64>),
    /// Queued (`WaitForExclusive`): the receiver gets the epoch when its turn comes, or the
    /// error that ended its wait.
    Queued(AccessGuard, oneshot::Receiver<Result<u64>>),
}

impl ProducerAccess {
    /// Admits a producer named `name` in `mode`; `epoch` is the topic epoch a reconnecting
    /// producer was given before. Refusals are Pulsar's: `ProducerBusy` for a shared producer
    /// while an exclusive one holds the partition, `ProducerFenced` for an exclusive one that
    /// cannot have it.
    pub(crate) fn admit(&self, mode: AccessMode, label: &ProducerLabel, epoch: Option<u64>) -> Result<Admission> {
        let name = label.name.as_str();
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let id = s.next_id;
        s.next_id += 1;
        let fence = CancellationToken::new();
        // Made only on the way out with it: a guard dropped here would lock the state again.
        let guard = || AccessGuard { state: Arc::clone(&self.0), id, fence: fence.clone() };
        if let (Some(mine), Some(now), false) = (epoch, s.epoch, mode == AccessMode::Shared)
            && mine < now
        {
            // Fenced out while away: it could never have the topic again (Pulsar queues a
            // waiting one and fences it only when its turn comes, its sends timing out meanwhile).
            return Err(BrokerError::ProducerFenced(format!(
                "topic epoch {mine} is behind the topic's {now}: another exclusive producer came since"
            )));
        }
        let held = s
            .exclusive
            .as_ref()
            .map(|(_, n)| n.clone())
            .or_else(|| s.waiting.front().map(|w| w.attached.label.name.clone()));
        let attached = Attached { fence: fence.clone(), mode, label: label.clone() };
        match mode {
            AccessMode::Shared => {
                if let Some(holder) = held {
                    return Err(BrokerError::ProducerBusy(format!(
                        "the topic has an exclusive producer ({holder}): a shared producer cannot attach"
                    )));
                }
                let guard = guard();
                s.attached.insert(id, attached);
                return Ok(Admission::Ready(guard, None));
            }
            AccessMode::Exclusive => {
                if let Some(holder) = held {
                    return Err(BrokerError::ProducerFenced(format!("the topic has an exclusive producer ({holder})")));
                }
                if !s.attached.is_empty() {
                    return Err(BrokerError::ProducerFenced(format!(
                        "the topic has {} shared producer(s): an exclusive producer cannot attach",
                        s.attached.len()
                    )));
                }
            }
            AccessMode::WaitForExclusive => {
                if held.is_some() || !s.attached.is_empty() {
                    let (turn, rx) = oneshot::channel();
                    let guard = guard();
                    s.waiting.push_back(Waiting { id, epoch, turn, attached });
                    return Ok(Admission::Queued(guard, rx));
                }
            }
            AccessMode::ExclusiveWithFencing => {
                for (_, a) in std::mem::take(&mut s.attached) {
                    a.fence.cancel();
                }
                for w in std::mem::take(&mut s.waiting) {
                    w.attached.fence.cancel();
                    let _ = w.turn.send(Err(fenced_by(name)));
                }
                s.exclusive = None;
            }
        }
        let epoch = s.take_exclusive(id, name, epoch)?;
        let guard = guard();
        s.attached.insert(id, attached);
        Ok(Admission::Ready(guard, Some(epoch)))
    }
}

fn fenced_by(name: &str) -> BrokerError {
    BrokerError::ProducerFenced(format!("fenced out by exclusive producer {name}"))
}

impl State {
    /// Makes producer `id` the exclusive one: the topic epoch moves on (or to the producer's
    /// own, when it reconnects with one that is not behind).
    fn take_exclusive(&mut self, id: u64, name: &str, epoch: Option<u64>) -> Result<u64> {
        let next = match (epoch, self.epoch) {
            (Some(mine), Some(now)) if mine < now => {
                return Err(BrokerError::ProducerFenced(format!(
                    "topic epoch {mine} is behind the topic's {now}: another exclusive producer came since"
                )));
            }
            (Some(mine), _) => mine,
            (None, now) => now.map_or(0, |e| e + 1),
        };
        self.epoch = Some(next);
        self.exclusive = Some((id, name.to_string()));
        Ok(next)
    }

    /// Gives the turn to the first waiting producer that can take it, once no producer is
    /// attached (Pulsar promotes only when an exclusive producer leaves; here shared producers
    /// leaving let a waiting one in too).
    fn promote(&mut self) {
        while self.attached.is_empty()
            && let Some(w) = self.waiting.pop_front()
        {
            match self.take_exclusive(w.id, &w.attached.label.name, w.epoch) {
                Ok(epoch) => {
                    if w.turn.send(Ok(epoch)).is_ok() {
                        self.attached.insert(w.id, w.attached);
                    } else {
                        // It stopped waiting meanwhile.
                        self.exclusive = None;
                    }
                }
                Err(e) => {
                    let _ = w.turn.send(Err(e));
                }
            }
        }
    }
}

impl ProducerAccess {
    /// The attached producers as topic stats list them (Pulsar's `PublisherStats`, without
    /// per-producer rates), and how many wait for exclusive access.
    pub(crate) fn publishers(&self) -> (Vec<serde_json::Value>, u64) {
        let s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let list = s
            .attached
            .iter()
            .map(|(id, a)| {
                serde_json::json!({
                    "producerId": id,
                    "producerName": a.label.name,
                    "accessMode": a.mode.as_str(),
                    "address": a.label.address,
                    "connectedSince": magnetar_core::time::format_rfc3339(a.label.connected_since),
                })
            })
            .collect();
        (list, s.waiting.len() as u64)
    }
}

impl AccessGuard {
    /// Cancelled when an `ExclusiveWithFencing` producer fenced this one out: its session closes.
    pub fn fence(&self) -> CancellationToken {
        self.fence.clone()
    }
}

impl Drop for AccessGuard {
    fn drop(&mut self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.waiting.retain(|w| w.id != self.id);
        if s.attached.remove(&self.id).is_some() {
            if s.exclusive.as_ref().is_some_and(|(id, _)| *id == self.id) {
                s.exclusive = None;
            }
            s.promote();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(name: &str) -> ProducerLabel {
        ProducerLabel { name: name.into(), ..ProducerLabel::default() }
    }

    fn ready(a: Result<Admission>) -> (AccessGuard, Option<u64>) {
        match a {
            Ok(Admission::Ready(g, e)) => (g, e),
            Ok(Admission::Queued(..)) => panic!("queued"),
            Err(e) => panic!("refused: {e}"),
        }
    }

    fn refused(a: Result<Admission>) -> BrokerError {
        match a {
            Err(e) => e,
            Ok(_) => panic!("admitted"),
        }
    }

    #[test]
    fn an_exclusive_producer_is_alone_and_raises_the_epoch() {
        let access = ProducerAccess::default();
        let (first, e0) = ready(access.admit(AccessMode::Exclusive, &label("a"), None));
        assert_eq!(e0, Some(0));
        assert!(matches!(refused(access.admit(AccessMode::Shared, &label("s"), None)), BrokerError::ProducerBusy(_)));
        assert!(matches!(
            refused(access.admit(AccessMode::Exclusive, &label("b"), None)),
            BrokerError::ProducerFenced(_)
        ));
        drop(first);
        let (_second, e1) = ready(access.admit(AccessMode::Exclusive, &label("b"), None));
        assert_eq!(e1, Some(1));
        // A producer fenced out before, coming back with epoch 0, stays out.
        let access2 = ProducerAccess::default();
        let (_g, _) = ready(access2.admit(AccessMode::Exclusive, &label("x"), Some(5)));
        drop(_g);
        assert!(matches!(
            refused(access2.admit(AccessMode::Exclusive, &label("old"), Some(4))),
            BrokerError::ProducerFenced(_)
        ));
    }

    #[test]
    fn shared_producers_keep_an_exclusive_one_out() {
        let access = ProducerAccess::default();
        let (s1, e) = ready(access.admit(AccessMode::Shared, &label("s1"), None));
        assert_eq!(e, None);
        let (_s2, _) = ready(access.admit(AccessMode::Shared, &label("s2"), None));
        assert!(matches!(
            refused(access.admit(AccessMode::Exclusive, &label("x"), None)),
            BrokerError::ProducerFenced(_)
        ));
        drop(s1);
        assert!(matches!(
            refused(access.admit(AccessMode::Exclusive, &label("x"), None)),
            BrokerError::ProducerFenced(_)
        ));
    }

    #[tokio::test]
    async fn waiting_producers_take_their_turn_in_order() {
        let access = ProducerAccess::default();
        let (holder, _) = ready(access.admit(AccessMode::Exclusive, &label("a"), None));
        let Ok(Admission::Queued(b, mut b_turn)) = access.admit(AccessMode::WaitForExclusive, &label("b"), None) else {
            panic!("b queues")
        };
        let Ok(Admission::Queued(_c, mut c_turn)) = access.admit(AccessMode::WaitForExclusive, &label("c"), None)
        else {
            panic!("c queues")
        };
        assert!(b_turn.try_recv().is_err() && c_turn.try_recv().is_err());
        drop(holder);
        assert_eq!(b_turn.await.unwrap().unwrap(), 1);
        assert!(c_turn.try_recv().is_err(), "c still waits");
        drop(b);
        assert_eq!(c_turn.await.unwrap().unwrap(), 2);
    }

    #[tokio::test]
    async fn fencing_closes_the_others_and_fails_the_waiting() {
        let access = ProducerAccess::default();
        let (old, _) = ready(access.admit(AccessMode::Exclusive, &label("old"), None));
        let Ok(Admission::Queued(_w, turn)) = access.admit(AccessMode::WaitForExclusive, &label("w"), None) else {
            panic!("queues")
        };
        let (_new, epoch) = ready(access.admit(AccessMode::ExclusiveWithFencing, &label("new"), None));
        assert_eq!(epoch, Some(1));
        let (listed, waiting) = access.publishers();
        assert_eq!((listed.len(), waiting), (1, 0), "only the fencing producer is left: {listed:?}");
        assert_eq!(
            (listed[0]["producerName"].as_str(), listed[0]["accessMode"].as_str()),
            (Some("new"), Some("ExclusiveWithFencing"))
        );
        old.fence().cancelled().await;
        assert!(matches!(turn.await.unwrap(), Err(BrokerError::ProducerFenced(_))));
        // The fenced producer letting go changes nothing for the new one.
        drop(old);
        assert!(matches!(refused(access.admit(AccessMode::Shared, &label("s"), None)), BrokerError::ProducerBusy(_)));
        // And coming back with its old epoch it is refused, whatever its mode.
        assert!(matches!(
            refused(access.admit(AccessMode::Exclusive, &label("old"), Some(0))),
            BrokerError::ProducerFenced(_)
        ));
        let again = access.admit(AccessMode::WaitForExclusive, &label("old"), Some(0));
        assert!(matches!(refused(again), BrokerError::ProducerFenced(_)));
    }
}
