//! The life policies of loaded topics: Pulsar's inactive-topic deletion (`inactiveTopicPolicies`)
//! and subscription expiration (`subscriptionExpirationTimeMinutes`). Pure decisions over a
//! snapshot of a topic (`topic_is_inactive`, `subscription_expired`); the periodic passes apply
//! them through the same delete operations the admin API uses, so a topic or subscription in use
//! is never removed.
//!
//! As in Pulsar, only topics loaded on this broker are considered, and the inactivity clock
//! starts again when a topic is loaded (after a restart a topic gets its full time again).

use crate::policies::resolve::EffectivePolicies;
use crate::registry::Topic;
use crate::subscriptions::Subscriptions;
use crate::topics::Topics;
use crate::{BrokerError, Result};
use magnetar_core::{InactiveTopicDeleteMode, SubscriptionName};
use std::sync::Arc;

/// What the inactive-topic decision looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicActivity {
    /// Producer and consumer sessions attached to any partition.
    pub sessions: u32,
    /// Durable subscriptions (on the partition that has most).
    pub subscriptions: usize,
    /// Messages not yet acknowledged over every subscription.
    pub backlog: u64,
    /// Wall-clock ms of the last publish, attach, detach, delivery or acknowledgement.
    pub last_active_ms: i64,
}

/// Whether a topic is to be deleted now under its inactive-topic policy.
pub fn topic_is_inactive(e: &EffectivePolicies, a: &TopicActivity, now_ms: i64) -> bool {
    let p = &e.inactive_topic_policies.value;
    if !p.delete_while_inactive || a.sessions > 0 {
        return false;
    }
    let idle_for_ms = now_ms.saturating_sub(a.last_active_ms);
    if idle_for_ms < i64::from(p.max_inactive_duration_seconds.max(0)) * 1000 {
        return false;
    }
    match p.inactive_topic_delete_mode {
        InactiveTopicDeleteMode::DeleteWhenNoSubscriptions => a.subscriptions == 0,
        InactiveTopicDeleteMode::DeleteWhenSubscriptionsCaughtUp => a.backlog == 0,
    }
}

/// Whether a subscription without consumers, last used at `last_active_ms`, has expired.
pub fn subscription_expired(e: &EffectivePolicies, consumers: usize, last_active_ms: i64, now_ms: i64) -> bool {
    let minutes = e.subscription_expiration_time_minutes.value;
    minutes > 0 && consumers == 0 && now_ms.saturating_sub(last_active_ms) >= i64::from(minutes) * 60_000
}

fn activity(topic: &Topic) -> TopicActivity {
    let mut a = TopicActivity { sessions: 0, subscriptions: 0, backlog: 0, last_active_ms: 0 };
    for p in &topic.partitions {
        a.sessions += p.policy.producers() + p.policy.consumers();
        a.last_active_ms = a.last_active_ms.max(p.policy.last_active_ms.load(std::sync::atomic::Ordering::Relaxed));
        let subs = p.subscriptions();
        a.subscriptions = a.subscriptions.max(subs.len());
        for s in p.all_subscriptions() {
            a.backlog += s.snapshot().backlog;
            a.last_active_ms = a.last_active_ms.max(s.last_active_ms());
        }
    }
    a
}

/// One pass of inactive-topic deletion over the loaded topics; returns how many were deleted.
pub(crate) async fn delete_inactive_topics(topics: &Topics, loaded: Vec<Arc<Topic>>, now_ms: i64) -> usize {
    let mut deleted = 0;
    for topic in loaded {
        if !topic_is_inactive(&topic.policy.effective(), &activity(&topic), now_ms) {
            continue;
        }
        let partitioned = topic.record.partitions > 0;
        // Not forced: a consumer that attached since the snapshot keeps the topic.
        match topics.delete(topic.name(), false, partitioned).await {
            Ok(()) => {
                tracing::info!(topic = %topic.name(), "inactive topic deleted (inactiveTopicPolicies)");
                deleted += 1;
            }
            Err(BrokerError::NotFound(_) | BrokerError::InUse(_)) => {}
            Err(e) => tracing::warn!(topic = %topic.name(), error = %e, "inactive topic not deleted"),
        }
    }
    deleted
}

/// One pass of subscription expiration over the loaded topics; returns how many were removed.
pub(crate) async fn expire_subscriptions(subs: &Subscriptions, loaded: Vec<Arc<Topic>>, now_ms: i64) -> usize {
    let mut removed = 0;
    for topic in loaded {
        let e = topic.policy.effective();
        if e.subscription_expiration_time_minutes.value <= 0 {
            continue;
        }
        // A subscription counts as used if it is used on any partition.
        let mut expired: std::collections::BTreeMap<String, bool> = Default::default();
        for p in &topic.partitions {
            for s in p.subscriptions() {
                let ok = subscription_expired(&e, s.consumer_count(), s.last_active_ms(), now_ms);
                *expired.entry(s.name()).or_insert(true) &= ok;
            }
        }
        for name in expired.into_iter().filter_map(|(n, ok)| ok.then_some(n)) {
            if let Err(e) = remove(subs, &topic, &name).await {
                tracing::warn!(topic = %topic.name(), subscription = name, error = %e, "expired subscription not removed");
                continue;
            }
            tracing::info!(topic = %topic.name(), subscription = name, "expired subscription removed");
            removed += 1;
        }
    }
    removed
}

async fn remove(subs: &Subscriptions, topic: &Topic, name: &str) -> Result<()> {
    let sub = SubscriptionName::new(name.to_string()).map_err(BrokerError::InvalidName)?;
    match subs.delete(topic.name(), &sub, false).await {
        Ok(()) | Err(BrokerError::NotFound(_) | BrokerError::InUse(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;
    use magnetar_core::{InactiveTopicPolicies, Policies, TopicPolicies};

    fn policies(mode: InactiveTopicDeleteMode, secs: i32, expire_minutes: i32) -> EffectivePolicies {
        let ns = Policies {
            inactive_topic_policies: Some(InactiveTopicPolicies {
                inactive_topic_delete_mode: mode,
                max_inactive_duration_seconds: secs,
                delete_while_inactive: true,
            }),
            subscription_expiration_time_minutes: Some(expire_minutes),
            ..Policies::default()
        };
        EffectivePolicies::resolve(&TopicPolicies::default(), &ns, &BrokerConfig::default())
    }

    const IDLE: TopicActivity = TopicActivity { sessions: 0, subscriptions: 0, backlog: 0, last_active_ms: 0 };

    #[test]
    fn a_topic_is_deleted_only_after_its_time_without_sessions() {
        let e = policies(InactiveTopicDeleteMode::DeleteWhenNoSubscriptions, 60, 0);
        assert!(!topic_is_inactive(&e, &IDLE, 59_999), "before its time");
        assert!(topic_is_inactive(&e, &IDLE, 60_000));
        assert!(!topic_is_inactive(&e, &TopicActivity { sessions: 1, ..IDLE }, 600_000), "a session keeps it");
        assert!(
            !topic_is_inactive(&e, &TopicActivity { subscriptions: 1, ..IDLE }, 600_000),
            "a subscription keeps it"
        );
    }

    #[test]
    fn caught_up_mode_deletes_topics_whose_subscriptions_have_no_backlog() {
        let e = policies(InactiveTopicDeleteMode::DeleteWhenSubscriptionsCaughtUp, 1, 0);
        assert!(topic_is_inactive(&e, &TopicActivity { subscriptions: 2, ..IDLE }, 1_000));
        assert!(!topic_is_inactive(&e, &TopicActivity { subscriptions: 2, backlog: 1, ..IDLE }, 1_000));
    }

    #[test]
    fn nothing_is_deleted_without_delete_while_inactive() {
        let e = EffectivePolicies::resolve(&TopicPolicies::default(), &Policies::default(), &BrokerConfig::default());
        assert!(!topic_is_inactive(&e, &IDLE, i64::MAX));
        assert!(!subscription_expired(&e, 0, 0, i64::MAX), "0 minutes: subscriptions never expire");
    }

    #[test]
    fn a_subscription_expires_without_consumers_after_its_minutes() {
        let e = policies(InactiveTopicDeleteMode::DeleteWhenNoSubscriptions, 0, 2);
        assert!(!subscription_expired(&e, 0, 0, 119_999));
        assert!(subscription_expired(&e, 0, 0, 120_000));
        assert!(!subscription_expired(&e, 1, 0, 600_000), "a connected consumer keeps it");
    }
}
