//! Policies enforced on loaded partitions: message TTL expiry and backlog quotas (Pulsar's three
//! policies: hold, exception, eviction), each the topic's own, else its namespace's. Decisions are pure functions over
//! snapshots; the periodic pass applies them.

use crate::context::Context;
use crate::partition::Partition;
use crate::registry::TopicRegistry;
use crate::{BrokerError, Result};
use magnetar_core::{BacklogQuota, BacklogQuotaPolicy};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// What a partition's backlog quota check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QuotaState {
    #[default]
    Ok,
    /// Over quota with `producer_request_hold`: publishes wait.
    Hold,
    /// Over quota with `producer_exception`: publishes fail.
    Reject,
}

/// How long a publish waits on a partition held by its backlog quota before it fails.
const HOLD_LIMIT: Duration = Duration::from_secs(30);

/// The quota (of either type) a partition's backlog exceeds, if any.
pub fn exceeded_quota(
    quotas: &BTreeMap<String, BacklogQuota>,
    backlog_bytes: u64,
    oldest_unacked_age_s: Option<i64>,
) -> Option<&BacklogQuota> {
    if let Some(q) = quotas.get("destination_storage")
        && q.limit_size >= 0
        && backlog_bytes > q.limit_size as u64
    {
        return Some(q);
    }
    if let Some(q) = quotas.get("message_age")
        && q.limit_time >= 0
        && oldest_unacked_age_s.is_some_and(|age| age > i64::from(q.limit_time))
    {
        return Some(q);
    }
    None
}

/// Refuses or holds a publish while the partition is over its backlog quota.
pub(crate) async fn admit_publish(p: &Partition) -> Result<()> {
    let deadline = tokio::time::Instant::now() + HOLD_LIMIT;
    loop {
        match p.quota() {
            QuotaState::Ok => return Ok(()),
            QuotaState::Reject => {
                return Err(BrokerError::BacklogQuotaExceeded { topic: p.name.clone(), held: false });
            }
            QuotaState::Hold if tokio::time::Instant::now() >= deadline => {
                return Err(BrokerError::BacklogQuotaExceeded { topic: p.name.clone(), held: true });
            }
            QuotaState::Hold => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

pub(crate) struct Enforcement {
    ctx: Arc<Context>,
    registry: Arc<TopicRegistry>,
}

impl Enforcement {
    pub fn new(ctx: Arc<Context>, registry: Arc<TopicRegistry>) -> Self {
        Enforcement { ctx, registry }
    }

    /// One pass of TTL expiry and backlog quota enforcement over the loaded topics.
    pub async fn run_once(&self) {
        for topic in self.registry.loaded_topics() {
            let Ok(e) = crate::policies::current(&self.ctx, &topic).await else { continue };
            // 0: messages do not expire.
            let ttl = e.message_ttl_in_seconds.value;
            if ttl > 0 {
                let before = self.ctx.now_ms() - i64::from(ttl) * 1000;
                for p in &topic.partitions {
                    for s in p.subscriptions() {
                        if let Some((op, _)) = s.expire_before(before)
                            && let Err(e) = self.ctx.persist_op(p, &op).await
                        {
                            tracing::warn!(topic = %p.name, error = %e, "message TTL expiry failed");
                        }
                    }
                }
            }
            for p in &topic.partitions {
                self.check_quota(p, &e.backlog_quota_map.value).await;
            }
        }
    }

    /// Backlog quota enforcement alone over the loaded topics, now (Pulsar's on-demand
    /// `backlog-quota-check`; the periodic pass does the same every second).
    pub async fn check_quotas(&self) {
        for topic in self.registry.loaded_topics() {
            let Ok(e) = crate::policies::current(&self.ctx, &topic).await else { continue };
            for p in &topic.partitions {
                self.check_quota(p, &e.backlog_quota_map.value).await;
            }
        }
    }

    async fn check_quota(&self, p: &Arc<Partition>, quotas: &BTreeMap<String, BacklogQuota>) {
        if quotas.is_empty() {
            p.set_quota(QuotaState::Ok);
            return;
        }
        loop {
            let (bytes, age) = match backlog_of(Arc::clone(p)).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(topic = %p.name, error = %e, "backlog quota check failed");
                    return;
                }
            };
            let Some(q) = exceeded_quota(quotas, bytes, age) else {
                p.set_quota(QuotaState::Ok);
                return;
            };
            match q.policy {
                BacklogQuotaPolicy::ProducerException => return p.set_quota(QuotaState::Reject),
                BacklogQuotaPolicy::ConsumerBacklogEviction => {
                    // Evict the oldest unacknowledged messages of the slowest subscription.
                    let Some(slowest) = p.subscriptions().into_iter().min_by_key(|s| s.cursor().mark_delete) else {
                        return p.set_quota(QuotaState::Ok);
                    };
                    let n = (slowest.snapshot().backlog / 10).max(1);
                    match slowest.skip(n) {
                        Some((op, _)) => {
                            if let Err(e) = self.ctx.persist_op(p, &op).await {
                                tracing::warn!(topic = %p.name, error = %e, "backlog eviction failed");
                                return;
                            }
                        }
                        None => return p.set_quota(QuotaState::Ok),
                    }
                }
                BacklogQuotaPolicy::ProducerRequestHold => return p.set_quota(QuotaState::Hold),
            }
        }
    }
}

/// Backlog in bytes (of the slowest durable subscription, estimated from the average stored
/// message size) and the age in seconds of its oldest unacknowledged message. Reads a record:
/// off the runtime.
async fn backlog_of(p: Arc<Partition>) -> Result<(u64, Option<i64>)> {
    tokio::task::spawn_blocking(move || {
        let subs = p.subscriptions();
        let Some(slowest) = subs.iter().min_by_key(|s| s.cursor().mark_delete) else { return (0, None) };
        let snap = slowest.snapshot();
        let entries = p.log.end_offset().saturating_sub(p.log.start_offset()).max(1);
        let bytes = snap.backlog * (p.log.size_bytes() / entries);
        let age = (snap.backlog > 0)
            .then(|| {
                let first = slowest.nth_unacked(1)?;
                let rec = p.log.read(first, 1, usize::MAX).ok()?.into_iter().next()?;
                Some((p.now_ms() - rec.publish_time) / 1000)
            })
            .flatten();
        (bytes, age)
    })
    .await
    .map_err(BrokerError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_quota(kind: &str, size: i64, time: i32) -> BTreeMap<String, BacklogQuota> {
        let mut p = BTreeMap::new();
        p.insert(
            kind.into(),
            BacklogQuota { limit_size: size, limit_time: time, policy: BacklogQuotaPolicy::ProducerException },
        );
        p
    }

    #[test]
    fn size_quota_trips_only_above_the_limit() {
        let p = with_quota("destination_storage", 1000, -1);
        assert!(exceeded_quota(&p, 1000, None).is_none());
        assert!(exceeded_quota(&p, 1001, None).is_some());
    }

    #[test]
    fn age_quota_uses_the_oldest_unacked_message() {
        let p = with_quota("message_age", -1, 60);
        assert!(exceeded_quota(&p, u64::MAX, Some(59)).is_none());
        assert!(exceeded_quota(&p, 0, Some(61)).is_some());
        assert!(exceeded_quota(&p, 0, None).is_none());
    }
}
