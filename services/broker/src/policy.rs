//! Namespace policies in force on the hot path: a short-lived cache of each namespace's
//! `Policies`, message TTL expiry and backlog quotas (Pulsar's three policies).
//!
//! Decisions are pure functions over snapshots; the periodic loop applies them.

use crate::partition::Partition;
use crate::{Broker, BrokerError, Result};
use magnetar_core::{BacklogQuota, NamespaceName, Policies};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a cached namespace policy is trusted before it is read again (changes made through
/// this broker invalidate it at once; other brokers' changes are seen within this delay).
const POLICY_TTL: Duration = Duration::from_secs(2);

#[derive(Default)]
pub(crate) struct PolicyCache {
    entries: Mutex<HashMap<NamespaceName, (Policies, Instant)>>,
}

impl PolicyCache {
    pub fn invalidate(&self, ns: &NamespaceName) {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).remove(ns);
    }
}

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

/// The quota (of either type) a partition's backlog exceeds, if any.
pub fn exceeded_quota(
    policies: &Policies,
    backlog_bytes: u64,
    oldest_unacked_age_s: Option<i64>,
) -> Option<&BacklogQuota> {
    if let Some(q) = policies.backlog_quota_map.get("destination_storage")
        && q.limit_size >= 0
        && backlog_bytes > q.limit_size as u64
    {
        return Some(q);
    }
    if let Some(q) = policies.backlog_quota_map.get("message_age")
        && q.limit_time >= 0
        && oldest_unacked_age_s.is_some_and(|age| age > i64::from(q.limit_time))
    {
        return Some(q);
    }
    None
}

impl Broker {
    /// Policies of a namespace through the cache.
    pub async fn cached_policies(&self, ns: &NamespaceName) -> Result<Policies> {
        if let Some((p, at)) = self.policy_cache.entries.lock().unwrap_or_else(|e| e.into_inner()).get(ns)
            && at.elapsed() < POLICY_TTL
        {
            return Ok(p.clone());
        }
        let p = self.get_policies(ns).await?;
        self.policy_cache
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(ns.clone(), (p.clone(), Instant::now()));
        Ok(p)
    }

    /// Acknowledges messages older than `seconds` on a subscription (Pulsar's expireMessages).
    pub async fn expire_messages(
        &self,
        name: &magnetar_core::TopicName,
        sub: Option<&str>,
        seconds: i64,
    ) -> Result<u64> {
        let (_, parts) = self.partitions_of(name).await?;
        let before = magnetar_core::now_millis() - seconds.max(0) * 1000;
        let mut expired = 0;
        let mut found = sub.is_none();
        for p in &parts {
            for s in p.subscriptions() {
                if sub.is_some_and(|n| n != s.name()) {
                    continue;
                }
                found = true;
                if let Some((op, n)) = s.expire_before(before) {
                    expired += n;
                    if s.is_durable() {
                        self.persist_op(p, &op).await?;
                    }
                }
            }
        }
        if !found {
            return Err(BrokerError::NotFound(format!("subscription {}", sub.unwrap_or_default())));
        }
        Ok(expired)
    }

    /// One pass of TTL expiry and backlog quota enforcement over the loaded topics.
    pub async fn enforce_policies(&self) {
        for topic in self.loaded_topics() {
            let ns = topic.record.name.namespace().clone();
            let Ok(policies) = self.cached_policies(&ns).await else { continue };
            if let Some(ttl) = policies.message_ttl_in_seconds.filter(|&t| t > 0) {
                let before = magnetar_core::now_millis() - i64::from(ttl) * 1000;
                for p in &topic.partitions {
                    for s in p.subscriptions() {
                        if let Some((op, _)) = s.expire_before(before)
                            && s.is_durable()
                            && let Err(e) = self.persist_op(p, &op).await
                        {
                            tracing::warn!(topic = %p.name, error = %e, "message TTL expiry failed");
                        }
                    }
                }
            }
            for p in &topic.partitions {
                self.check_quota(p, &policies).await;
            }
        }
    }

    async fn check_quota(&self, p: &Partition, policies: &Policies) {
        if policies.backlog_quota_map.is_empty() {
            p.set_quota(QuotaState::Ok);
            return;
        }
        loop {
            let (bytes, age) = backlog_of(p);
            let Some(q) = exceeded_quota(policies, bytes, age) else {
                p.set_quota(QuotaState::Ok);
                return;
            };
            match q.policy.as_str() {
                "producer_exception" => return p.set_quota(QuotaState::Reject),
                "consumer_backlog_eviction" => {
                    // Evict the oldest unacknowledged messages of the slowest subscription.
                    let Some(slowest) =
                        p.subscriptions().into_iter().filter(|s| s.is_durable()).min_by_key(|s| s.cursor().mark_delete)
                    else {
                        return p.set_quota(QuotaState::Ok);
                    };
                    let n = (slowest.snapshot().backlog / 10).max(1);
                    match slowest.skip(n) {
                        Some(op) => {
                            if let Err(e) = self.persist_op(p, &op).await {
                                tracing::warn!(topic = %p.name, error = %e, "backlog eviction failed");
                                return;
                            }
                        }
                        None => return p.set_quota(QuotaState::Ok),
                    }
                }
                _ => return p.set_quota(QuotaState::Hold),
            }
        }
    }

    /// Refuses or holds a publish while the partition is over its backlog quota.
    pub(crate) async fn admit_publish(&self, p: &Partition) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match p.quota() {
                QuotaState::Ok => return Ok(()),
                QuotaState::Reject => {
                    return Err(BrokerError::Unavailable(format!("backlog quota exceeded on topic {}", p.name)));
                }
                QuotaState::Hold if Instant::now() >= deadline => {
                    return Err(BrokerError::Unavailable(format!(
                        "backlog quota exceeded on topic {}: publish held for 30 s",
                        p.name
                    )));
                }
                QuotaState::Hold => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}

/// Backlog in bytes (of the slowest durable subscription, estimated from the average stored
/// message size) and the age in seconds of its oldest unacknowledged message.
fn backlog_of(p: &Partition) -> (u64, Option<i64>) {
    let subs: Vec<_> = p.subscriptions().into_iter().filter(|s| s.is_durable()).collect();
    let Some(slowest) = subs.iter().min_by_key(|s| s.cursor().mark_delete) else { return (0, None) };
    let snap = slowest.snapshot();
    let entries = p.log.end_offset().saturating_sub(p.log.start_offset()).max(1);
    let bytes = snap.backlog * (p.log.size_bytes() / entries);
    let age = (snap.backlog > 0)
        .then(|| {
            let first = slowest.nth_unacked(1)?;
            let rec = p.log.read(first, 1, usize::MAX).ok()?.into_iter().next()?;
            Some((magnetar_core::now_millis() - rec.publish_time) / 1000)
        })
        .flatten();
    (bytes, age)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_quota(kind: &str, size: i64, time: i32) -> Policies {
        let mut p = Policies::default();
        p.backlog_quota_map.insert(
            kind.into(),
            BacklogQuota { limit_size: size, limit_time: time, policy: "producer_exception".into() },
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
