//! The state of one subscription and the dispatch rules over it: which consumer may be handed
//! which message (Exclusive, Shared, Failover's active consumer, Key_Shared's hash ring), and
//! the bookkeeping of messages in flight.

use super::{ConsumerId, ConsumerInfo, SubType};
use crate::ranges::AckSet;
use magnetar_core::hash::key_slot;
use magnetar_storage::Record;
use std::collections::{BTreeMap, HashMap};
use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
pub(super) struct InFlight {
    pub(super) deadline: Option<Instant>,
    pub(super) consumer: Option<ConsumerId>,
    pub(super) slot: u16,
}

#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) acks: AckSet,
    /// Next offset never read for delivery yet.
    pub(super) read_pos: u64,
    pub(super) in_flight: BTreeMap<u64, InFlight>,
    /// Messages ready to be (re)delivered, with their key slot.
    pub(super) available: BTreeMap<u64, u16>,
    /// Delayed messages: (deliver at ms, offset) → key slot.
    pub(super) delayed: BTreeMap<(i64, u64), u16>,
    pub(super) redelivery_counts: HashMap<u64, u32>,
    pub(super) kind: Option<SubType>,
    pub(super) consumers: BTreeMap<ConsumerId, ConsumerInfo>,
    /// Key_Shared: slot → (consumer holding in-flight messages of that slot, how many).
    pub(super) slot_holders: HashMap<u16, (ConsumerId, u32)>,
    /// Key_Shared hash ring: (point, consumer), sorted.
    pub(super) ring: Vec<(u32, ConsumerId)>,
    pub(super) dirty: bool,
    pub(super) msg_out: u64,
    pub(super) bytes_out: u64,
    pub(super) msg_redelivered: u64,
    pub(super) msg_expired: u64,
    pub(super) msg_acked: u64,
    pub(super) last_expired: i64,
    pub(super) last_consumed: i64,
    pub(super) last_acked: i64,
}

impl State {
    pub(super) fn add_in_flight(&mut self, off: u64, f: InFlight) {
        if let Some(c) = f.consumer {
            if let Some(info) = self.consumers.get_mut(&c) {
                info.unacked += 1;
            }
            if self.kind == Some(SubType::KeyShared) {
                let e = self.slot_holders.entry(f.slot).or_insert((c, 0));
                e.1 += 1;
            }
        }
        if let Some(old) = self.in_flight.insert(off, f) {
            self.forget_holder(&old);
        }
    }

    pub(super) fn remove_in_flight(&mut self, off: u64) -> Option<InFlight> {
        let f = self.in_flight.remove(&off)?;
        self.forget_holder(&f);
        Some(f)
    }

    /// Takes an acknowledged message out of flight, crediting the consumer it was delivered to.
    pub(super) fn acked_in_flight(&mut self, off: u64) {
        if let Some(c) = self.remove_in_flight(off).and_then(|f| f.consumer)
            && let Some(info) = self.consumers.get_mut(&c)
        {
            info.acked += 1;
        }
    }

    pub(super) fn forget_holder(&mut self, f: &InFlight) {
        if let Some(c) = f.consumer {
            if let Some(info) = self.consumers.get_mut(&c) {
                info.unacked = info.unacked.saturating_sub(1);
            }
            if let Some(e) = self.slot_holders.get_mut(&f.slot) {
                e.1 = e.1.saturating_sub(1);
                if e.1 == 0 {
                    self.slot_holders.remove(&f.slot);
                }
            }
        }
    }

    /// The Failover active consumer for partition `index`: consumers sorted by priority, then
    /// name; partition i goes to consumer i mod n (Pulsar's assignment).
    pub(super) fn active(&self, index: i32) -> Option<ConsumerId> {
        let mut list: Vec<&ConsumerInfo> = self.consumers.values().collect();
        if list.is_empty() {
            return None;
        }
        list.sort_by(|a, b| (a.priority, &a.name, a.id).cmp(&(b.priority, &b.name, b.id)));
        Some(list[index.max(0) as usize % list.len()].id)
    }

    pub(super) fn slot_owner(&self, slot: u16) -> Option<ConsumerId> {
        // Sticky consumers (all of them are, or none): the one whose ranges hold the slot; a
        // slot nobody claims waits, as in Pulsar.
        if self.consumers.values().next().is_some_and(|c| c.sticky.is_some()) {
            let claims = |c: &&ConsumerInfo| c.sticky.iter().flatten().any(|&(a, b)| (a..=b).contains(&slot));
            return self.consumers.values().find(claims).map(|c| c.id);
        }
        if self.ring.is_empty() {
            return None;
        }
        let point = spread(slot as u64);
        let i = self.ring.partition_point(|(p, _)| *p < point);
        Some(self.ring[i % self.ring.len()].1)
    }

    /// The key hash slots each Sticky Key_Shared consumer claims, as inclusive ranges (Pulsar's
    /// `keyHashRanges` in consumer stats). Empty otherwise: AutoSplit consumers share a ring that
    /// spreads the slots one by one, so their shares are thousands of short ranges, not worth
    /// listing.
    pub(super) fn key_ranges(&self) -> BTreeMap<ConsumerId, Vec<(u16, u16)>> {
        if self.kind != Some(SubType::KeyShared) {
            return BTreeMap::new();
        }
        self.consumers.values().filter_map(|c| Some((c.id, c.sticky.clone()?))).collect()
    }

    pub(super) fn rebuild_ring(&mut self) {
        self.ring = self
            .consumers
            .values()
            .flat_map(|c| (0..64u64).map(move |v| (spread(c.id.wrapping_mul(1_000_003).wrapping_add(v)), c.id)))
            .collect();
        self.ring.sort_unstable();
    }

    /// May `consumer` (None = an HTTP puller) be handed a message of `slot` now?
    pub(super) fn eligible(&self, consumer: Option<ConsumerId>, slot: u16, index: i32) -> bool {
        let Some(c) = consumer else { return true };
        match self.kind {
            None | Some(SubType::Shared) | Some(SubType::Exclusive) => true,
            Some(SubType::Failover) => self.active(index) == Some(c),
            Some(SubType::KeyShared) => {
                // A slot with messages in flight to another consumer waits for them, so one key is
                // never processed by two consumers at once (and its order holds).
                self.slot_owner(slot) == Some(c) && self.slot_holders.get(&slot).is_none_or(|(h, _)| *h == c)
            }
        }
    }

    /// Returns messages in flight to consumers that may no longer have them (after a Failover
    /// switch or a consumer leaving) to the available set.
    pub(super) fn release(&mut self, keep: impl Fn(&State, ConsumerId) -> bool) {
        let moved: Vec<u64> = self
            .in_flight
            .iter()
            .filter(|(_, f)| f.consumer.is_some_and(|c| !keep(self, c)))
            .map(|(&o, _)| o)
            .collect();
        for off in moved {
            if let Some(f) = self.remove_in_flight(off) {
                self.available.insert(off, f.slot);
            }
        }
    }
}

/// Why a Key_Shared consumer cannot join.
pub(super) enum StickyConflict {
    /// Sticky among auto-split consumers, or the other way round.
    Mode(String),
    /// Its ranges are empty, inverted or overlap ones already claimed.
    Range(String),
}

impl State {
    /// Checks a Key_Shared consumer against those attached: one mode for all, and sticky
    /// ranges that are well formed and claimed once (Pulsar's "range conflict").
    pub(super) fn check_sticky(&self, new: &ConsumerInfo) -> Result<(), StickyConflict> {
        if let Some(first) = self.consumers.values().next()
            && first.sticky.is_some() != new.sticky.is_some()
        {
            let mode = |sticky: bool| if sticky { "Sticky" } else { "AutoSplit" };
            return Err(StickyConflict::Mode(format!(
                "its Key_Shared consumers are {}; a {} consumer cannot join",
                mode(first.sticky.is_some()),
                mode(new.sticky.is_some())
            )));
        }
        let Some(ranges) = &new.sticky else { return Ok(()) };
        if ranges.is_empty() {
            return Err(StickyConflict::Range("a Sticky consumer claims no hash range".into()));
        }
        for (i, &(a, b)) in ranges.iter().enumerate() {
            if a > b {
                return Err(StickyConflict::Range(format!("hash range {a}..{b} is inverted")));
            }
            let mine = ranges[..i].iter().map(|r| (r, new.name.as_str()));
            let theirs =
                self.consumers.values().flat_map(|c| c.sticky.iter().flatten().map(move |r| (r, c.name.as_str())));
            if let Some(((c, d), who)) = mine.chain(theirs).find(|((c, d), _)| a <= *d && *c <= b) {
                return Err(StickyConflict::Range(format!(
                    "hash range {a}..{b} overlaps {c}..{d} of consumer '{who}'"
                )));
            }
        }
        Ok(())
    }
}

/// A cheap integer mix so ring points spread evenly.
pub(super) fn spread(x: u64) -> u32 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) as u32
}

/// The hash slot Key_Shared routes a message by, from its sticky key as Pulsar's brokers take
/// it: the ordering key when it has one, else its key (a binary key's bytes, not their base64
/// text), else the bytes `NONE_KEY` (so that Sticky consumers' claimed ranges hold the same
/// messages as on Pulsar).
pub(super) fn slot_of(rec: &Record) -> u16 {
    use base64::Engine;
    if let Some(k) = &rec.ordering_key {
        return key_slot(k);
    }
    match &rec.key {
        Some(k) if rec.key_base64 => match base64::engine::general_purpose::STANDARD.decode(k) {
            Ok(bytes) => key_slot(&bytes),
            // Not base64 after all: its text is its identity.
            Err(_) => key_slot(k.as_bytes()),
        },
        Some(k) => key_slot(k.as_bytes()),
        None => key_slot(b"NONE_KEY"),
    }
}

pub(super) fn deliver_at(rec: &Record) -> Option<i64> {
    rec.properties.iter().find(|(k, _)| k == super::DELIVER_AT_PROPERTY).and_then(|(_, v)| v.parse().ok())
}
