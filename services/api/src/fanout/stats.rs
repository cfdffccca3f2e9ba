//! Stats of a whole partitioned topic in a broker tier: each partition's `TopicStats` from its
//! owner, summed as Pulsar's `PartitionedTopicStats` sums them (the broker's `aggregate`: rates,
//! counters, sizes and backlogs added, subscriptions merged by name) with the policies in force
//! of the topic, and each partition's own stats by name when asked for.

use super::{Call, Whole, all_done, json};
use crate::AppState;
use crate::error::ApiResult;
use axum::http::Method;
use magnetar_broker::stats::{PartitionedMetadata, PartitionedTopicStats, TopicStats, aggregate};
use magnetar_core::{SubscriptionName, TopicName};
use std::collections::BTreeMap;

/// Partition `i`'s stats, from this broker or its owner.
async fn partition_stats(s: &AppState, whole: &Whole, i: u32) -> ApiResult<TopicStats> {
    let call = Call { method: Method::GET, path: whole.admin_path(i, "/stats"), body: None };
    let local = move |name: TopicName| async move { Ok(s.broker.topics().stats(&name).await?) };
    whole.on(s, i, call, local, json::<TopicStats>).await
}

/// Every partition's stats, by partition name; every partition must answer.
async fn every_partition(s: &AppState, whole: &Whole) -> ApiResult<Vec<(TopicName, TopicStats)>> {
    let answers = whole.each(|i| partition_stats(s, whole, i)).await;
    let each = all_done(answers, false)?;
    Ok(each.into_iter().enumerate().map(|(i, st)| (whole.partition(i as u32), st)).collect())
}

/// The totals and, with `per_partition`, each partition's stats (without the policies in force,
/// which the totals carry once: every partition of a topic has the same).
pub(crate) fn merge(partitions: u32, each: Vec<(TopicName, TopicStats)>, per_partition: bool) -> PartitionedTopicStats {
    let applied = each.iter().find_map(|(_, st)| st.applied_policies.clone());
    let each: BTreeMap<String, TopicStats> = each
        .into_iter()
        .map(|(name, mut st)| {
            st.applied_policies = None;
            (name.to_string(), st)
        })
        .collect();
    let mut total = aggregate(each.values());
    total.applied_policies = applied;
    PartitionedTopicStats {
        total,
        metadata: PartitionedMetadata { partitions },
        partitions: if per_partition { each } else { BTreeMap::new() },
    }
}

pub(crate) async fn partitioned_stats(
    s: &AppState,
    whole: &Whole,
    per_partition: bool,
) -> ApiResult<PartitionedTopicStats> {
    Ok(merge(whole.partitions, every_partition(s, whole).await?, per_partition))
}

/// `GET .../stats` of a whole partitioned topic: the totals, as without a tier.
pub(crate) async fn stats(s: &AppState, whole: &Whole) -> ApiResult<TopicStats> {
    Ok(merge(whole.partitions, every_partition(s, whole).await?, false).total)
}

/// Whether a partition has consumers attached or messages in flight, on `sub` or on any
/// subscription: what refuses a delete without `force`.
pub(crate) async fn in_use(s: &AppState, whole: &Whole, sub: Option<&SubscriptionName>) -> ApiResult<bool> {
    Ok(busy(&every_partition(s, whole).await?, sub))
}

fn busy(each: &[(TopicName, TopicStats)], sub: Option<&SubscriptionName>) -> bool {
    each.iter().flat_map(|(_, st)| st.subscriptions.iter()).any(|(name, ss)| {
        sub.is_none_or(|sub| sub.as_str() == name) && (!ss.consumers.is_empty() || ss.unacked_messages > 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use magnetar_broker::stats::SubscriptionStats;

    fn partition(i: u32, msg_in: u64, backlog: u64, unacked: u64) -> (TopicName, TopicStats) {
        let sub = SubscriptionStats {
            msg_backlog: backlog,
            msg_out_counter: msg_in - backlog,
            unacked_messages: unacked,
            kind: "Shared".into(),
            ..SubscriptionStats::default()
        };
        let st = TopicStats {
            msg_in_counter: msg_in,
            bytes_in_counter: msg_in * 10,
            msg_rate_in: 1.5,
            storage_size: 100,
            subscriptions: [("sub".to_string(), sub)].into(),
            ..TopicStats::default()
        };
        let name: TopicName = "persistent://acme/app/orders".parse().unwrap();
        (name.partition(i), st)
    }

    #[test]
    fn totals_are_sums_over_the_partitions() {
        let each = vec![partition(0, 10, 4, 0), partition(1, 5, 0, 0), partition(2, 7, 7, 0)];
        let merged = merge(3, each, true);
        assert_eq!(merged.metadata.partitions, 3);
        assert_eq!(merged.total.msg_in_counter, 22);
        assert_eq!(merged.total.bytes_in_counter, 220);
        assert_eq!(merged.total.storage_size, 300);
        assert!((merged.total.msg_rate_in - 4.5).abs() < 1e-9);
        assert!((merged.total.average_msg_size - 10.0).abs() < 1e-9);
        let sub = &merged.total.subscriptions["sub"];
        assert_eq!((sub.msg_backlog, sub.msg_out_counter), (11, 11));
        assert_eq!(
            merged.partitions.keys().cloned().collect::<Vec<_>>(),
            [
                "persistent://acme/app/orders-partition-0",
                "persistent://acme/app/orders-partition-1",
                "persistent://acme/app/orders-partition-2"
            ]
        );
        assert_eq!(merged.partitions["persistent://acme/app/orders-partition-2"].msg_in_counter, 7);
        // The same totals without the partitions' own.
        let bare = merge(3, vec![partition(0, 10, 4, 0), partition(1, 5, 0, 0)], false);
        assert!(bare.partitions.is_empty());
        assert_eq!(bare.total.msg_in_counter, 15);
    }

    #[test]
    fn owners_answers_read_back_as_they_were_written() {
        let (name, st) = partition(0, 3, 1, 0);
        let wire = serde_json::to_vec(&st).unwrap();
        let back: TopicStats = serde_json::from_slice(&wire).unwrap();
        let merged = merge(1, vec![(name, back)], true);
        assert_eq!(merged.total.msg_in_counter, 3);
        assert_eq!(merged.total.subscriptions["sub"].msg_backlog, 1);
    }

    #[test]
    fn consumers_or_messages_in_flight_make_a_subscription_busy() {
        let sub: SubscriptionName = SubscriptionName::new("sub").unwrap();
        let other: SubscriptionName = SubscriptionName::new("other").unwrap();
        assert!(!busy(&[partition(0, 3, 3, 0)], Some(&sub)));
        assert!(busy(&[partition(0, 3, 3, 0), partition(1, 3, 0, 2)], Some(&sub)));
        assert!(busy(&[partition(1, 3, 0, 2)], None));
        assert!(!busy(&[partition(1, 3, 0, 2)], Some(&other)));
    }
}
