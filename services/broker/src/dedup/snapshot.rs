//! Deduplication snapshots: a fold of the partition's log (the previous snapshot plus the stamped
//! messages after it), saved in the metadata store under the partition's epoch. The loop that
//! takes them is a pure decision (`due`) plus a thin pass over the loaded partitions.

use super::DedupConfig;
use crate::context::Context;
use crate::partition::Partition;
use crate::registry::TopicRegistry;
use magnetar_metadata::{DedupSnapshot, ProducerSequence};
use magnetar_storage::StorageError;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Records read per step of a fold.
const FOLD_BATCH: usize = 2_000;

/// Which producers a snapshot keeps.
pub(crate) struct Rules {
    now_ms: i64,
    /// Producers whose last message is older (ms since the epoch) are forgotten.
    inactive_before: i64,
    max_producers: usize,
}

impl Rules {
    pub(crate) fn of(config: &DedupConfig, now_ms: i64) -> Rules {
        let inactivity_ms = config.producer_inactivity_minutes.saturating_mul(60_000).min(i64::MAX as u64) as i64;
        Rules { now_ms, inactive_before: now_ms.saturating_sub(inactivity_ms), max_producers: config.max_producers }
    }

    /// Drops inactive producers, then the least recently active beyond the cap.
    pub(crate) fn apply(&self, producers: &mut BTreeMap<String, ProducerSequence>) {
        producers.retain(|_, s| s.last_publish_time >= self.inactive_before);
        if producers.len() > self.max_producers {
            let mut times: Vec<i64> = producers.values().map(|s| s.last_publish_time).collect();
            times.sort_unstable_by(|a, b| b.cmp(a));
            let cutoff = times[self.max_producers - 1];
            producers.retain(|_, s| s.last_publish_time >= cutoff);
            // Ties at the cutoff: keep the first names, deterministically.
            while producers.len() > self.max_producers {
                let last = producers.iter().rev().find(|(_, s)| s.last_publish_time == cutoff).map(|(k, _)| k.clone());
                match last {
                    Some(k) => producers.remove(&k),
                    None => break,
                };
            }
        }
    }
}

/// `base` advanced over the partition's records from its position to the log's end now. A
/// position already trimmed away by retention starts at the log's start (what was trimmed can
/// no longer be resent into the log's past anyway).
pub(crate) async fn fold(p: &Partition, base: DedupSnapshot, rules: &Rules) -> crate::Result<DedupSnapshot> {
    let end = p.log.end_offset();
    let mut producers = base.producers;
    let mut at = base.position.max(p.log.start_offset());
    while at < end {
        let log = Arc::clone(&p.log);
        let read = tokio::task::spawn_blocking(move || log.read(at, FOLD_BATCH, 16 << 20))
            .await
            .map_err(|e| crate::BrokerError::Internal(format!("deduplication fold: {e}")))?;
        let records = match read {
            Ok(r) => r,
            Err(StorageError::OffsetTrimmed { earliest, .. }) => {
                at = earliest;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let Some(last) = records.last() else { break };
        let next = last.offset + 1;
        // A chunk before its message's last one does not make the message stored.
        for r in records.into_iter().filter(|r| r.offset < end && r.chunk.as_ref().is_none_or(|c| c.is_last())) {
            if let Some(stamp) = r.producer {
                let entry = producers
                    .entry(stamp.name)
                    .or_insert(ProducerSequence { sequence_id: -1, last_publish_time: r.publish_time });
                entry.sequence_id = entry.sequence_id.max(stamp.sequence_id);
                entry.last_publish_time = entry.last_publish_time.max(r.publish_time);
            }
        }
        at = next;
    }
    rules.apply(&mut producers);
    Ok(DedupSnapshot { position: end.max(base.position), producers, taken_at: rules.now_ms })
}

/// Whether a partition's snapshot is due: after `entries_interval` stamped messages, or after
/// `interval_ms` when any arrived since the last one.
pub(crate) fn due(since: u64, last_ms: i64, now_ms: i64, entries_interval: u64, interval_ms: i64) -> bool {
    since >= entries_interval || (since > 0 && now_ms.saturating_sub(last_ms) >= interval_ms)
}

/// One pass over the loaded partitions: snapshots where due, and tracking stopped (its snapshot
/// removed) where deduplication was turned off.
pub(crate) async fn take_snapshots(ctx: &Context, registry: &TopicRegistry) {
    let config = &ctx.config.deduplication;
    for p in registry.loaded_partitions() {
        if !p.policy.deduplication_enabled() {
            if p.dedup.turn_off().await
                && let Err(e) = ctx.metadata.delete_dedup_snapshot(p.log_id, p.epoch).await
            {
                tracing::warn!(topic = %p.name, error = %e, "deduplication snapshot not removed");
            }
            continue;
        }
        let since = p.dedup.since_snapshot.load(Ordering::Relaxed);
        let last_ms = p.dedup.last_snapshot_ms.load(Ordering::Relaxed);
        let interval_ms = i64::from(p.policy.deduplication_snapshot_interval_seconds()) * 1000;
        if !due(since, last_ms, ctx.now_ms(), config.entries_interval, interval_ms) {
            continue;
        }
        if let Err(e) = snapshot_partition(ctx, &p, since).await {
            ctx.metrics.checkpoint_failures.inc();
            tracing::warn!(topic = %p.name, error = %e.cause(), "deduplication snapshot failed; retried on the next pass");
        }
    }
}

/// Snapshots one partition's producer sequences now when deduplication tracks them (a
/// handover: the next owner starts from the snapshot instead of folding the whole log).
pub(crate) async fn snapshot_now(ctx: &Context, p: &Partition) -> crate::Result<()> {
    if !p.policy.deduplication_enabled() {
        return Ok(());
    }
    let since = p.dedup.since_snapshot.load(Ordering::Relaxed);
    if since == 0 {
        return Ok(());
    }
    snapshot_partition(ctx, p, since).await
}

async fn snapshot_partition(ctx: &Context, p: &Partition, since: u64) -> crate::Result<()> {
    let base = p.dedup.last.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let base = match base {
        Some(b) => b,
        None => ctx.metadata.get_dedup_snapshot(p.log_id).await?.unwrap_or_default(),
    };
    let rules = Rules::of(&ctx.config.deduplication, ctx.now_ms());
    let snap = fold(p, base, &rules).await?;
    ctx.metadata.save_dedup_snapshot(p.log_id, p.epoch, &snap).await.inspect_err(|e| ctx.note_fenced(e))?;
    p.dedup.since_snapshot.fetch_sub(since, Ordering::Relaxed);
    p.dedup.last_snapshot_ms.store(ctx.now_ms(), Ordering::Relaxed);
    p.dedup.retain(&rules).await;
    *p.dedup.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(snap);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(sequence_id: i64, last_publish_time: i64) -> ProducerSequence {
        ProducerSequence { sequence_id, last_publish_time }
    }

    #[test]
    fn a_snapshot_is_due_after_the_entries_interval_or_the_time_interval() {
        assert!(!due(0, 0, 1_000_000, 1000, 120_000), "nothing new: never due");
        assert!(due(1000, 999_999, 1_000_000, 1000, 120_000));
        assert!(!due(10, 990_000, 1_000_000, 1000, 120_000));
        assert!(due(10, 880_000, 1_000_000, 1000, 120_000));
    }

    #[test]
    fn inactive_producers_and_those_beyond_the_cap_are_forgotten() {
        let rules = Rules { now_ms: 1000, inactive_before: 100, max_producers: 2 };
        let mut p: BTreeMap<String, ProducerSequence> =
            [("old", seq(1, 50)), ("a", seq(2, 300)), ("b", seq(3, 200)), ("c", seq(4, 400))]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
        rules.apply(&mut p);
        assert_eq!(p.keys().cloned().collect::<Vec<_>>(), vec!["a".to_string(), "c".to_string()]);
    }

    #[test]
    fn ties_at_the_cap_keep_exactly_the_cap() {
        let rules = Rules { now_ms: 1000, inactive_before: 0, max_producers: 2 };
        let mut p: BTreeMap<String, ProducerSequence> =
            ["x", "y", "z"].into_iter().map(|k| (k.to_string(), seq(1, 10))).collect();
        rules.apply(&mut p);
        assert_eq!(p.len(), 2);
    }
}
