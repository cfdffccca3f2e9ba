//! Retention: which whole segments of a partition may be deleted. Pulsar's semantics: only
//! messages every subscription has acknowledged are subject to retention (unacknowledged ones
//! form the backlog and stay); of those, a segment goes when it is older than the retention
//! time or the partition is over the retention size. -1 = infinite, 0 = none. The active
//! segment is never deleted.

use crate::Result;
use crate::context::Context;
use crate::controllers::offload::Offloader;
use crate::partition::Partition;
use crate::registry::TopicRegistry;
use magnetar_core::RetentionPolicies;
use magnetar_storage::SegmentInfo;
use std::sync::Arc;

/// Pure decision: the offset below which whole segments can be deleted, if any.
pub fn deletable_before(
    segments: &[SegmentInfo],
    consumed_up_to: u64,
    retention: &RetentionPolicies,
    now_ms: i64,
) -> Option<u64> {
    let time = retention.retention_time_in_minutes;
    let size = retention.retention_size_in_mb;
    if time < 0 && size < 0 {
        return None;
    }
    let mut remaining: u64 = segments.iter().map(|s| s.size_bytes).sum();
    let mut delete_before = None;
    for s in segments.iter().filter(|s| s.sealed) {
        if s.end_offset > consumed_up_to {
            break;
        }
        let expired = time >= 0 && now_ms.saturating_sub(s.last_publish_time) >= i64::from(time) * 60_000;
        let over_size = size >= 0 && remaining > (size as u64) * 1024 * 1024;
        if !(expired || over_size) {
            break;
        }
        remaining -= s.size_bytes;
        delete_before = Some(s.end_offset);
    }
    delete_before
}

/// Applies the retention in force to every loaded partition.
pub(crate) struct Retention {
    ctx: Arc<Context>,
    registry: Arc<TopicRegistry>,
    offloader: Arc<Offloader>,
}

impl Retention {
    pub fn new(ctx: Arc<Context>, registry: Arc<TopicRegistry>, offloader: Arc<Offloader>) -> Self {
        Retention { ctx, registry, offloader }
    }

    /// One retention pass over every loaded partition: the topic's retention, else its
    /// namespace's, else the broker's.
    pub async fn run_once(&self) {
        let now = self.ctx.now_ms();
        for topic in self.registry.loaded_topics() {
            let retention = match crate::policies::current(&self.ctx, &topic).await {
                Ok(e) => e.retention_policies.value,
                Err(e) => {
                    tracing::debug!(topic = %topic.name(), error = %e, "skipping retention");
                    continue;
                }
            };
            for p in &topic.partitions {
                match trim_partition(&self.offloader, p, &retention, now).await {
                    Ok(0) => {}
                    Ok(freed) => tracing::debug!(topic = %p.name, freed, "retention deleted segments"),
                    Err(e) => tracing::warn!(topic = %p.name, error = %e, "retention failed"),
                }
            }
        }
    }
}

/// Deletes the segments of one partition that `retention` lets go (the retention pass, and
/// Pulsar's `trim` on demand); returns the bytes freed.
pub(crate) async fn trim_partition(
    offloader: &Offloader,
    p: &Partition,
    retention: &RetentionPolicies,
    now_ms: i64,
) -> Result<u64> {
    // Readers do not hold data back; durable subscriptions do.
    let consumed = p.subscriptions().iter().map(|s| s.cursor().mark_delete).min().unwrap_or_else(|| p.log.end_offset());
    match deletable_before(&p.log.segments(), consumed, retention, now_ms) {
        Some(before) => offloader.delete_segments_all_tiers(p, before).await,
        None => Ok(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(base: u64, end: u64, size: u64, last: i64, sealed: bool) -> SegmentInfo {
        SegmentInfo {
            base_offset: base,
            end_offset: end,
            size_bytes: size,
            first_publish_time: last,
            last_publish_time: last,
            created_at_ms: last,
            sealed,
            local: true,
            offloaded: false,
            offloaded_at_ms: 0,
        }
    }

    fn policy(time: i32, size: i64) -> RetentionPolicies {
        RetentionPolicies { retention_time_in_minutes: time, retention_size_in_mb: size }
    }

    #[test]
    fn unconsumed_segments_are_kept() {
        let segs = [seg(0, 10, 100, 0, true), seg(10, 20, 100, 0, true), seg(20, 25, 50, 0, false)];
        assert_eq!(deletable_before(&segs, 15, &policy(0, 0), 1_000_000), Some(10));
        assert_eq!(deletable_before(&segs, 5, &policy(0, 0), 1_000_000), None);
    }

    #[test]
    fn active_segment_never_deleted() {
        let segs = [seg(0, 10, 100, 0, true), seg(10, 20, 100, 0, false)];
        assert_eq!(deletable_before(&segs, 20, &policy(0, 0), 1_000_000), Some(10));
    }

    #[test]
    fn infinite_retention_keeps_everything() {
        let segs = [seg(0, 10, 100, 0, true), seg(10, 20, 100, 0, false)];
        assert_eq!(deletable_before(&segs, 20, &policy(-1, -1), i64::MAX / 2), None);
    }

    #[test]
    fn time_retention_waits_for_age() {
        let segs = [seg(0, 10, 100, 0, true), seg(10, 20, 100, 120_000, true), seg(20, 21, 1, 0, false)];
        // 1 minute retention, now = 2.5 minutes: first segment (age 2.5m) goes, second (0.5m) stays.
        assert_eq!(deletable_before(&segs, 21, &policy(1, -1), 150_000), Some(10));
    }

    #[test]
    fn size_retention_trims_oldest_until_under_limit() {
        let mb = 1024 * 1024;
        let segs = [seg(0, 10, mb, 0, true), seg(10, 20, mb, 0, true), seg(20, 30, mb, 0, false)];
        // 2 MB kept at most: 3 MB stored → the oldest goes.
        assert_eq!(deletable_before(&segs, 30, &policy(-1, 2), 0), Some(10));
    }
}
