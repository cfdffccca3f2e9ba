//! Message deduplication (Pulsar's `deduplicationEnabled`): a message whose producer name and
//! sequence id were already stored on the partition is not stored again, so a producer that
//! resends after a timeout, a reconnect or a failover creates no duplicate.
//!
//! Per partition, per producer name: the highest sequence id queued for the log (`pushed`) and
//! the highest one made durable (`persisted`). A message at or below `persisted` is a duplicate:
//! it is answered as stored with Pulsar's id `-1:-1`. One between the two is still in flight:
//! it is refused as retriable (Pulsar's "unknown" status), because whether the first copy will
//! be stored is not known yet. A failed write resets `pushed` to `persisted`, so the retry of a
//! failed message is stored.
//!
//! The producer name and sequence id are stored with each message; the state is rebuilt from
//! the log when it is needed (`rebuild`): from the partition's last snapshot in the metadata
//! store, plus the messages after it. Snapshots (`snapshot`) are folds of the log, not copies
//! of the live maps, so no message can be missing from one; they are taken every
//! `entries_interval` messages or `snapshotIntervalSeconds`, whichever comes first, so a rebuild
//! replays a bounded stretch of the log.

mod snapshot;

use crate::BrokerError;
use crate::context::Context;
use crate::partition::Partition;
use magnetar_core::MessageId;
use magnetar_metadata::{DedupSnapshot, ProducerSequence};
use magnetar_storage::{ChunkPos, ProducerStamp, RecordInput};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

pub(crate) use snapshot::{fold, snapshot_now, take_snapshots};

/// Broker settings of deduplication (`[broker.deduplication]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DedupConfig {
    /// Pulsar's `brokerDeduplicationEnabled`: the default of namespaces and topics that do not
    /// set `deduplicationEnabled`.
    pub enabled: bool,
    /// Pulsar's `brokerDeduplicationEntriesInterval`: a snapshot after this many messages.
    pub entries_interval: u64,
    /// Pulsar's `brokerDeduplicationSnapshotIntervalSeconds`: the default of
    /// `deduplicationSnapshotInterval`, a snapshot at least this often while messages arrive.
    pub snapshot_interval_seconds: i32,
    /// Pulsar's `brokerDeduplicationMaxNumberOfProducers`: producers remembered per partition
    /// (beyond it, those that published least recently are forgotten).
    pub max_producers: usize,
    /// Pulsar's `brokerDeduplicationProducerInactivityTimeoutMinutes`: a producer that has not
    /// published for this long is forgotten.
    pub producer_inactivity_minutes: u64,
}

impl Default for DedupConfig {
    fn default() -> Self {
        DedupConfig {
            enabled: false,
            entries_interval: 1000,
            snapshot_interval_seconds: 120,
            max_producers: 10_000,
            producer_inactivity_minutes: 360,
        }
    }
}

impl DedupConfig {
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.entries_interval == 0 {
            return Err("broker.deduplication.entries_interval must be at least 1".into());
        }
        if self.snapshot_interval_seconds < 0 {
            return Err("broker.deduplication.snapshot_interval_seconds must not be negative".into());
        }
        if self.max_producers == 0 {
            return Err("broker.deduplication.max_producers must be at least 1".into());
        }
        Ok(())
    }
}

/// What deduplication decided for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Store it.
    Store,
    /// Already stored: answer Pulsar's duplicate id, store nothing.
    Duplicate,
    /// An earlier copy is still in flight: refuse it as retriable.
    InFlight,
}

/// The id Pulsar answers for a message dropped as a duplicate.
pub(crate) fn duplicate_id(partition_index: i32) -> MessageId {
    MessageId { ledger_id: -1, entry_id: -1, partition_index, batch_index: -1 }
}

/// The live maps of one partition (see the module's header).
#[derive(Debug, Default)]
struct Tracker {
    pushed: HashMap<String, i64>,
    persisted: HashMap<String, ProducerSequence>,
}

#[derive(Debug)]
enum Phase {
    /// Not tracking: deduplication is off, or on but not needed yet since the partition loaded.
    Off,
    Ready(Tracker),
}

/// Deduplication state of one loaded partition.
pub(crate) struct PartitionDedup {
    /// Held across the enqueue of messages it admitted, so their order in the log is the order
    /// of their checks.
    phase: tokio::sync::Mutex<Phase>,
    /// Stamped messages stored since the last snapshot.
    since_snapshot: AtomicU64,
    /// When the last snapshot was taken (ms since the epoch; 0: never since load).
    last_snapshot_ms: AtomicI64,
    /// The last snapshot saved or read (the base of the next fold).
    last: std::sync::Mutex<Option<DedupSnapshot>>,
}

impl Default for PartitionDedup {
    fn default() -> Self {
        PartitionDedup {
            phase: tokio::sync::Mutex::new(Phase::Off),
            since_snapshot: AtomicU64::new(0),
            last_snapshot_ms: AtomicI64::new(0),
            last: std::sync::Mutex::new(None),
        }
    }
}

/// The decisions for a batch of one partition, holding the partition's deduplication lock until
/// the admitted messages are queued (dropped after `log.enqueue`).
pub(crate) struct Admission<'a> {
    _guard: Option<tokio::sync::MutexGuard<'a, Phase>>,
    pub verdicts: Vec<Verdict>,
}

impl Admission<'_> {
    /// Whether deduplication tracks this batch (its stored stamps must be settled).
    pub(crate) fn tracking(&self) -> bool {
        self._guard.is_some()
    }
}

impl PartitionDedup {
    /// Decides for each message of a batch bound for `p` (in order) and marks the stored ones as
    /// pushed. Messages without a stamp, and every message while deduplication is off, are
    /// stored. Rebuilds the state first when it is needed and not there yet.
    pub(crate) async fn admit<'a>(
        &'a self,
        ctx: &Context,
        p: &Partition,
        records: &[RecordInput],
    ) -> crate::Result<Admission<'a>> {
        let stamped = records.iter().any(|r| r.producer.is_some());
        if !stamped || !p.policy.deduplication_enabled() {
            return Ok(Admission { _guard: None, verdicts: vec![Verdict::Store; records.len()] });
        }
        let mut guard = self.phase.lock().await;
        if matches!(*guard, Phase::Off) {
            *guard = Phase::Ready(self.rebuild(ctx, p).await?);
        }
        let Phase::Ready(tracker) = &mut *guard else { unreachable!("rebuilt above") };
        let verdicts = records.iter().map(|r| tracker.check(r.producer.as_ref(), r.chunk.as_deref())).collect();
        Ok(Admission { _guard: Some(guard), verdicts })
    }

    /// The last sequence id stored for producer `name` on `p` (Pulsar's `last_sequence_id` in
    /// PRODUCER_SUCCESS), `None` when deduplication is off or the producer is unknown.
    pub(crate) async fn last_sequence_of(
        &self,
        ctx: &Context,
        p: &Partition,
        name: &str,
    ) -> crate::Result<Option<i64>> {
        if !p.policy.deduplication_enabled() {
            return Ok(None);
        }
        let mut guard = self.phase.lock().await;
        if matches!(*guard, Phase::Off) {
            *guard = Phase::Ready(self.rebuild(ctx, p).await?);
        }
        let Phase::Ready(tracker) = &*guard else { unreachable!("rebuilt above") };
        Ok(tracker.persisted.get(name).map(|s| s.sequence_id))
    }

    /// After the stored messages of a batch were made durable (`ok`) or failed.
    pub(crate) async fn settle(&self, stamps: &[(ProducerStamp, i64)], ok: bool) {
        if stamps.is_empty() {
            return;
        }
        let mut guard = self.phase.lock().await;
        let Phase::Ready(tracker) = &mut *guard else { return };
        for (stamp, publish_time) in stamps {
            if ok {
                tracker.persist(stamp, *publish_time);
            } else {
                tracker.forget_pushed(&stamp.name);
            }
        }
        if ok {
            self.since_snapshot.fetch_add(stamps.len() as u64, Ordering::Relaxed);
        }
    }

    /// Builds the tracker from the partition's snapshot and the log after it. Without a
    /// snapshot (deduplication newly enabled), tracking starts from the log's end, as Pulsar's
    /// does, and an empty snapshot marks that point for the next rebuild.
    async fn rebuild(&self, ctx: &Context, p: &Partition) -> crate::Result<Tracker> {
        let saved = ctx.metadata.get_dedup_snapshot(p.log_id).await?;
        let base = match saved {
            Some(s) => s,
            None => {
                let s = DedupSnapshot {
                    position: p.log.end_offset(),
                    producers: Default::default(),
                    taken_at: ctx.now_ms(),
                };
                ctx.metadata.save_dedup_snapshot(p.log_id, p.epoch, &s).await?;
                s
            }
        };
        let rules = snapshot::Rules::of(&ctx.config.deduplication, ctx.now_ms());
        let folded = fold(p, base, &rules).await?;
        let tracker = Tracker {
            pushed: folded.producers.iter().map(|(k, v)| (k.clone(), v.sequence_id)).collect(),
            persisted: folded.producers.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        };
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(folded);
        self.last_snapshot_ms.store(ctx.now_ms(), Ordering::Relaxed);
        tracing::info!(topic = %p.name, producers = tracker.persisted.len(), "deduplication state rebuilt");
        Ok(tracker)
    }

    /// The snapshot in force (the last one taken or read), while tracking.
    pub(crate) fn last_snapshot(&self) -> Option<DedupSnapshot> {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stops tracking (deduplication turned off): the next enable rebuilds.
    pub(crate) async fn turn_off(&self) -> bool {
        let mut guard = self.phase.lock().await;
        let was_on = matches!(*guard, Phase::Ready(_));
        *guard = Phase::Off;
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.since_snapshot.store(0, Ordering::Relaxed);
        was_on
    }

    /// Forgets, in the live maps, the producers the snapshot rules forget (inactive, or beyond
    /// the cap), so that memory stays bounded as it does in the snapshots.
    async fn retain(&self, rules: &snapshot::Rules) {
        let mut guard = self.phase.lock().await;
        if let Phase::Ready(t) = &mut *guard {
            let before: HashMap<String, ProducerSequence> = std::mem::take(&mut t.persisted);
            let mut kept: std::collections::BTreeMap<String, ProducerSequence> =
                before.iter().map(|(k, v)| (k.clone(), *v)).collect();
            rules.apply(&mut kept);
            t.persisted = kept.into_iter().collect();
            // A forgotten producer's pushed entry goes too, unless it has messages in flight.
            let persisted = &t.persisted;
            t.pushed.retain(|name, seq| {
                persisted.contains_key(name) || before.get(name).is_none_or(|old| *seq > old.sequence_id)
            });
        }
    }
}

impl Tracker {
    /// Every chunk of a chunked message carries the message's sequence id, and only its last
    /// chunk makes the message stored: a chunk of a message already stored is a duplicate, an
    /// earlier chunk of one not yet stored is stored and changes nothing (a producer resending
    /// after a reconnect may store one twice; consumers skip a chunk they already have).
    fn check(&mut self, stamp: Option<&ProducerStamp>, chunk: Option<&ChunkPos>) -> Verdict {
        let Some(stamp) = stamp else { return Verdict::Store };
        let persisted = self.persisted.get(&stamp.name).map_or(-1, |s| s.sequence_id);
        if stamp.sequence_id <= persisted {
            return Verdict::Duplicate;
        }
        if chunk.is_some_and(|c| !c.is_last()) {
            return Verdict::Store;
        }
        let pushed = self.pushed.get(&stamp.name).copied().unwrap_or(-1);
        if stamp.sequence_id <= pushed {
            return Verdict::InFlight;
        }
        self.pushed.insert(stamp.name.clone(), stamp.sequence_id);
        Verdict::Store
    }

    fn persist(&mut self, stamp: &ProducerStamp, publish_time: i64) {
        let entry = self
            .persisted
            .entry(stamp.name.clone())
            .or_insert(ProducerSequence { sequence_id: -1, last_publish_time: publish_time });
        entry.sequence_id = entry.sequence_id.max(stamp.sequence_id);
        entry.last_publish_time = entry.last_publish_time.max(publish_time);
    }

    /// A write failed: what was pushed after the last durable message may be sent again.
    fn forget_pushed(&mut self, producer: &str) {
        match self.persisted.get(producer) {
            Some(s) => self.pushed.insert(producer.to_string(), s.sequence_id),
            None => self.pushed.remove(producer),
        };
    }
}

/// A message's outcome when deduplication did not let it through.
pub(crate) fn outcome_of(verdict: &Verdict, p: &Partition, stamp: Option<&ProducerStamp>) -> crate::Result<MessageId> {
    match (verdict, stamp) {
        (Verdict::Duplicate, _) => Ok(duplicate_id(p.index)),
        (Verdict::InFlight, Some(s)) => Err(BrokerError::SequenceInFlight {
            topic: p.name.clone(),
            producer: s.name.clone(),
            sequence_id: s.sequence_id,
        }),
        _ => Err(BrokerError::Internal("deduplication verdict without a stamp".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(name: &str, seq: i64) -> ProducerStamp {
        ProducerStamp::new(name, seq)
    }

    #[test]
    fn a_sequence_id_at_or_below_the_stored_one_is_a_duplicate() {
        let mut t = Tracker::default();
        assert_eq!(t.check(Some(&stamp("p", 0)), None), Verdict::Store);
        assert_eq!(t.check(Some(&stamp("p", 1)), None), Verdict::Store);
        t.persist(&stamp("p", 0), 10);
        t.persist(&stamp("p", 1), 10);
        assert_eq!(t.check(Some(&stamp("p", 1)), None), Verdict::Duplicate);
        assert_eq!(t.check(Some(&stamp("p", 0)), None), Verdict::Duplicate);
        assert_eq!(t.check(Some(&stamp("q", 1)), None), Verdict::Store, "producers are independent");
        assert_eq!(t.check(None, None), Verdict::Store, "unstamped messages are always stored");
    }

    #[test]
    fn a_resend_while_the_first_copy_is_in_flight_is_refused_as_retriable() {
        let mut t = Tracker::default();
        assert_eq!(t.check(Some(&stamp("p", 5)), None), Verdict::Store);
        assert_eq!(t.check(Some(&stamp("p", 5)), None), Verdict::InFlight);
        assert_eq!(t.check(Some(&stamp("p", 3)), None), Verdict::InFlight, "below pushed, above persisted");
    }

    #[test]
    fn after_a_failed_write_the_same_sequence_id_is_stored() {
        let mut t = Tracker::default();
        assert_eq!(t.check(Some(&stamp("p", 1)), None), Verdict::Store);
        t.persist(&stamp("p", 1), 10);
        assert_eq!(t.check(Some(&stamp("p", 2)), None), Verdict::Store);
        t.forget_pushed("p");
        assert_eq!(t.check(Some(&stamp("p", 2)), None), Verdict::Store);
        assert_eq!(t.check(Some(&stamp("p", 1)), None), Verdict::Duplicate);
        let mut fresh = Tracker::default();
        assert_eq!(fresh.check(Some(&stamp("n", 0)), None), Verdict::Store);
        fresh.forget_pushed("n");
        assert_eq!(fresh.check(Some(&stamp("n", 0)), None), Verdict::Store);
    }

    #[test]
    fn only_the_last_chunk_of_a_message_stores_it() {
        let chunk = |index| ChunkPos {
            uuid: "u".into(),
            index,
            count: 3,
            total_size: 30,
            compression: 0,
            uncompressed_size: 30,
        };
        let mut t = Tracker::default();
        for i in 0..3 {
            assert_eq!(t.check(Some(&stamp("p", 7)), Some(&chunk(i))), Verdict::Store, "chunk {i}");
        }
        assert_eq!(t.check(Some(&stamp("p", 7)), Some(&chunk(2))), Verdict::InFlight, "the last chunk again");
        t.forget_pushed("p");
        // A resend after a reconnect, before the last chunk was stored: stored again.
        assert_eq!(t.check(Some(&stamp("p", 7)), Some(&chunk(1))), Verdict::Store);
        assert_eq!(t.check(Some(&stamp("p", 7)), Some(&chunk(2))), Verdict::Store);
        t.persist(&stamp("p", 7), 10);
        for i in 0..3 {
            assert_eq!(t.check(Some(&stamp("p", 7)), Some(&chunk(i))), Verdict::Duplicate, "resent chunk {i}");
        }
        assert_eq!(t.check(Some(&stamp("p", 8)), None), Verdict::Store);
    }
}
