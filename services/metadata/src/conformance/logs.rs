//! Conformance: partition ownership, subscriptions and cursors, the segment index.

use super::catalog::segment;
use super::{assert_err, assert_names, given_namespace, given_topic};
use crate::{CursorCheckpoint, CursorState, MetadataError, MetadataStore};
use magnetar_core::now_millis;
use std::collections::HashSet;
use std::sync::Arc;

const MISSING_LOG_ID: i64 = 987_654_321;

fn cursor(mark_delete: u64, acked_ranges: &[(u64, u64)]) -> CursorState {
    CursorState { mark_delete, acked_ranges: acked_ranges.to_vec() }
}

pub async fn acquire_partition_bumps_epoch_and_sets_owner(store: Arc<dyn MetadataStore>) {
    given_namespace(store.as_ref(), "acme/orders").await;
    let t = given_topic(store.as_ref(), "persistent://acme/orders/t", 0).await;
    let log_id = t.partition_records[0].log_id;
    assert_eq!(store.get_partition_owner(log_id).await.unwrap(), None, "a new partition has no owner");

    let e1 = store.acquire_partition(log_id, "broker-1").await.unwrap();
    assert_eq!(store.get_partition_owner(log_id).await.unwrap(), Some(("broker-1".to_string(), e1)));
    let e2 = store.acquire_partition(log_id, "broker-2").await.unwrap();
    assert!(e2 > e1, "epochs strictly increase");
    assert_eq!(store.get_partition_owner(log_id).await.unwrap(), Some(("broker-2".to_string(), e2)));
    // Re-acquiring by the same broker (a restart) also fences its previous incarnation.
    let e3 = store.acquire_partition(log_id, "broker-2").await.unwrap();
    assert!(e3 > e2);

    let err = assert_err!(store.acquire_partition(MISSING_LOG_ID, "broker-1").await, NotFound);
    assert_names(&err, &format!("partition {MISSING_LOG_ID}"));
    assert_err!(store.get_partition_owner(MISSING_LOG_ID).await, NotFound);
}

pub async fn concurrent_acquisitions_get_distinct_epochs(store: Arc<dyn MetadataStore>) {
    given_namespace(store.as_ref(), "acme/orders").await;
    let t = given_topic(store.as_ref(), "persistent://acme/orders/t", 0).await;
    let log_id = t.partition_records[0].log_id;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.acquire_partition(log_id, &format!("broker-{i}")).await })
        })
        .collect();
    let mut epochs = HashSet::new();
    for task in tasks {
        let epoch = task.await.expect("task").expect("acquire");
        assert!(epochs.insert(epoch), "epoch {epoch} handed out twice");
    }
    let (_, last) = store.get_partition_owner(log_id).await.unwrap().unwrap();
    assert_eq!(Some(&last), epochs.iter().max());
}

pub async fn subscription_create_list_delete(store: Arc<dyn MetadataStore>) {
    given_namespace(store.as_ref(), "acme/orders").await;
    let t = given_topic(store.as_ref(), "persistent://acme/orders/t", 2).await;
    let (p0, p1) = (t.partition_records[0].log_id, t.partition_records[1].log_id);
    assert_eq!(store.list_subscriptions(p0).await.unwrap(), vec![]);

    let before = now_millis();
    store.create_subscription("beta", &[(p0, cursor(5, &[(7, 9)])), (p1, cursor(0, &[]))]).await.unwrap();
    store.create_subscription("alpha", &[(p0, cursor(0, &[]))]).await.unwrap();
    let subs = store.list_subscriptions(p0).await.unwrap();
    assert_eq!(subs.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), vec!["alpha", "beta"]);
    assert_eq!(subs[1].log_id, p0);
    assert_eq!(subs[1].cursor, cursor(5, &[(7, 9)]));
    assert!(subs[1].created_at >= before);
    assert_eq!(store.list_subscriptions(p1).await.unwrap().len(), 1);

    let err = assert_err!(store.create_subscription("alpha", &[(p0, cursor(0, &[]))]).await, AlreadyExists);
    assert_names(&err, "subscription alpha");

    store.delete_subscription("beta", &[p0, p1]).await.unwrap();
    assert_eq!(store.list_subscriptions(p1).await.unwrap(), vec![]);
    // Deleting where it exists on only some partitions succeeds.
    store.delete_subscription("alpha", &[p0, p1]).await.unwrap();
    assert_eq!(store.list_subscriptions(p0).await.unwrap(), vec![]);
    let err = assert_err!(store.delete_subscription("alpha", &[p0, p1]).await, NotFound);
    assert_names(&err, "subscription alpha");
    assert_err!(store.list_subscriptions(MISSING_LOG_ID).await, NotFound);
}

pub async fn create_subscription_over_partitions_is_all_or_none(store: Arc<dyn MetadataStore>) {
    given_namespace(store.as_ref(), "acme/orders").await;
    let t = given_topic(store.as_ref(), "persistent://acme/orders/t", 3).await;
    let logs: Vec<i64> = t.partition_records.iter().map(|p| p.log_id).collect();
    // Exists on the last partition only: creating on all three must not leave the first two.
    store.create_subscription("sub", &[(logs[2], cursor(4, &[]))]).await.unwrap();
    let all: Vec<(i64, CursorState)> = logs.iter().map(|l| (*l, CursorState::default())).collect();
    assert_err!(store.create_subscription("sub", &all).await, AlreadyExists);
    assert_eq!(store.list_subscriptions(logs[0]).await.unwrap(), vec![]);
    assert_eq!(store.list_subscriptions(logs[1]).await.unwrap(), vec![]);
    assert_eq!(store.list_subscriptions(logs[2]).await.unwrap()[0].cursor, cursor(4, &[]));

    // A missing partition fails the whole call with NotFound naming it.
    let with_missing = vec![(logs[0], CursorState::default()), (MISSING_LOG_ID, CursorState::default())];
    let err = assert_err!(store.create_subscription("other", &with_missing).await, NotFound);
    assert_names(&err, &format!("partition {MISSING_LOG_ID}"));
    assert_eq!(store.list_subscriptions(logs[0]).await.unwrap(), vec![]);
}

pub async fn checkpoint_cursors_persists_and_is_fenced(store: Arc<dyn MetadataStore>) {
    given_namespace(store.as_ref(), "acme/orders").await;
    let t = given_topic(store.as_ref(), "persistent://acme/orders/t", 0).await;
    let log_id = t.partition_records[0].log_id;
    store.create_subscription("a", &[(log_id, CursorState::default())]).await.unwrap();
    store.create_subscription("b", &[(log_id, CursorState::default())]).await.unwrap();
    let old = store.acquire_partition(log_id, "broker-1").await.unwrap();

    let checkpoint = vec![
        ("a".to_string(), cursor(10, &[(12, 15), (20, 21)])),
        ("b".to_string(), cursor(3, &[])),
        // Deleted meanwhile (or never existed): ignored, not recreated.
        ("gone".to_string(), cursor(99, &[])),
    ];
    store.checkpoint_cursors(log_id, old, &checkpoint).await.unwrap();
    let subs = store.list_subscriptions(log_id).await.unwrap();
    assert_eq!(subs.len(), 2);
    assert_eq!(subs[0].cursor, checkpoint[0].1);
    assert_eq!(subs[1].cursor, checkpoint[1].1);

    let new = store.acquire_partition(log_id, "broker-2").await.unwrap();
    let stale = vec![("a".to_string(), cursor(50, &[]))];
    let err = store.checkpoint_cursors(log_id, old, &stale).await.unwrap_err();
    assert!(matches!(err, MetadataError::Fenced { log_id: l, epoch } if l == log_id && epoch == old), "{err:?}");
    assert_eq!(store.list_subscriptions(log_id).await.unwrap()[0].cursor, checkpoint[0].1);

    store.checkpoint_cursors(log_id, new, &stale).await.unwrap();
    assert_eq!(store.list_subscriptions(log_id).await.unwrap()[0].cursor, cursor(50, &[]));

    let err = assert_err!(store.checkpoint_cursors(MISSING_LOG_ID, new, &stale).await, NotFound);
    assert_names(&err, &format!("partition {MISSING_LOG_ID}"));
}

pub async fn a_checkpoint_round_commits_many_partitions_and_skips_the_fenced_ones(store: Arc<dyn MetadataStore>) {
    given_namespace(store.as_ref(), "acme/orders").await;
    let t = given_topic(store.as_ref(), "persistent://acme/orders/t", 3).await;
    let logs: Vec<i64> = t.partition_records.iter().map(|p| p.log_id).collect();
    let mut epochs = Vec::new();
    for log in &logs {
        store.create_subscription("s", &[(*log, CursorState::default())]).await.unwrap();
        epochs.push(store.acquire_partition(*log, "broker-1").await.unwrap());
    }
    // Partition 1 moved to another broker since: its write is refused, the others commit.
    store.acquire_partition(logs[1], "broker-2").await.unwrap();
    let mut batch: Vec<CursorCheckpoint> = logs
        .iter()
        .zip(&epochs)
        .enumerate()
        .map(|(i, (log, epoch))| CursorCheckpoint {
            log_id: *log,
            epoch: *epoch,
            cursors: vec![("s".to_string(), cursor(10 + i as u64, &[]))],
        })
        .collect();
    batch.push(CursorCheckpoint { log_id: MISSING_LOG_ID, epoch: 1, cursors: vec![("s".into(), cursor(1, &[]))] });
    let refused = store.checkpoint_cursors_many(&batch).await.unwrap();
    let refused: Vec<(i64, bool)> =
        refused.iter().map(|(l, e)| (*l, matches!(e, MetadataError::Fenced { .. }))).collect();
    assert_eq!(refused, [(logs[1], true), (MISSING_LOG_ID, false)]);
    assert_eq!(store.list_subscriptions(logs[0]).await.unwrap()[0].cursor, cursor(10, &[]));
    assert_eq!(store.list_subscriptions(logs[1]).await.unwrap()[0].cursor, CursorState::default());
    assert_eq!(store.list_subscriptions(logs[2]).await.unwrap()[0].cursor, cursor(12, &[]));
    assert!(store.checkpoint_cursors_many(&[]).await.unwrap().is_empty());
}

pub async fn segment_commit_list_delete(store: Arc<dyn MetadataStore>) {
    given_namespace(store.as_ref(), "acme/orders").await;
    let t = given_topic(store.as_ref(), "persistent://acme/orders/t", 2).await;
    let (log_id, other) = (t.partition_records[0].log_id, t.partition_records[1].log_id);
    let epoch = store.acquire_partition(log_id, "broker-1").await.unwrap();
    assert_eq!(store.list_segments(log_id).await.unwrap(), vec![]);

    let (s0, s1, s2) = (segment(log_id, 0, 100), segment(log_id, 100, 250), segment(log_id, 250, 300));
    // Committed out of order, listed by base offset.
    for s in [&s2, &s0, &s1] {
        store.commit_segment(epoch, s).await.unwrap();
    }
    assert_eq!(store.list_segments(log_id).await.unwrap(), vec![s0.clone(), s1.clone(), s2.clone()]);
    assert_eq!(store.list_segments(other).await.unwrap(), vec![]);

    let duplicate = segment(log_id, 100, 120);
    let err = assert_err!(store.commit_segment(epoch, &duplicate).await, AlreadyExists);
    assert_names(&err, "segment 100");
    assert_eq!(store.list_segments(log_id).await.unwrap()[1], s1);

    // Unknown base offsets are ignored.
    store.delete_segments(log_id, epoch, &[0, 250, 12345]).await.unwrap();
    assert_eq!(store.list_segments(log_id).await.unwrap(), vec![s1]);
    assert_err!(store.list_segments(MISSING_LOG_ID).await, NotFound);
}

pub async fn segment_writes_are_fenced(store: Arc<dyn MetadataStore>) {
    given_namespace(store.as_ref(), "acme/orders").await;
    let t = given_topic(store.as_ref(), "persistent://acme/orders/t", 0).await;
    let log_id = t.partition_records[0].log_id;
    let old = store.acquire_partition(log_id, "broker-1").await.unwrap();
    store.commit_segment(old, &segment(log_id, 0, 10)).await.unwrap();
    let new = store.acquire_partition(log_id, "broker-2").await.unwrap();

    assert_err!(store.commit_segment(old, &segment(log_id, 10, 20)).await, Fenced);
    assert_err!(store.delete_segments(log_id, old, &[0]).await, Fenced);
    assert_eq!(store.list_segments(log_id).await.unwrap(), vec![segment(log_id, 0, 10)]);

    store.commit_segment(new, &segment(log_id, 10, 20)).await.unwrap();
    store.delete_segments(log_id, new, &[0]).await.unwrap();
    assert_eq!(store.list_segments(log_id).await.unwrap(), vec![segment(log_id, 10, 20)]);

    let err = assert_err!(store.commit_segment(new, &segment(MISSING_LOG_ID, 0, 1)).await, NotFound);
    assert_names(&err, &format!("partition {MISSING_LOG_ID}"));
    assert_err!(store.delete_segments(MISSING_LOG_ID, new, &[0]).await, NotFound);
}

pub async fn dedup_snapshots_are_replaced_fenced_and_go_with_their_topic(store: Arc<dyn MetadataStore>) {
    given_namespace(store.as_ref(), "acme/orders").await;
    let t = given_topic(store.as_ref(), "persistent://acme/orders/t", 2).await;
    let (log_id, other) = (t.partition_records[0].log_id, t.partition_records[1].log_id);
    let old = store.acquire_partition(log_id, "broker-1").await.unwrap();
    assert_eq!(store.get_dedup_snapshot(log_id).await.unwrap(), None);

    let snap = |position: u64, producers: &[(&str, i64)]| crate::DedupSnapshot {
        position,
        producers: producers
            .iter()
            .map(|(p, s)| {
                (p.to_string(), crate::ProducerSequence { sequence_id: *s, last_publish_time: 1_700_000 + s })
            })
            .collect(),
        taken_at: 1_700_000_000_000,
    };
    store.save_dedup_snapshot(log_id, old, &snap(10, &[("p1", 4), ("p2", 9)])).await.unwrap();
    store.save_dedup_snapshot(log_id, old, &snap(25, &[("p1", 7)])).await.unwrap();
    assert_eq!(store.get_dedup_snapshot(log_id).await.unwrap(), Some(snap(25, &[("p1", 7)])));
    assert_eq!(store.get_dedup_snapshot(other).await.unwrap(), None, "snapshots are per partition");

    // A stale owner neither replaces nor removes the snapshot.
    let new = store.acquire_partition(log_id, "broker-2").await.unwrap();
    let err = store.save_dedup_snapshot(log_id, old, &snap(30, &[])).await.unwrap_err();
    assert!(matches!(err, MetadataError::Fenced { .. }), "{err:?}");
    let err = store.delete_dedup_snapshot(log_id, old).await.unwrap_err();
    assert!(matches!(err, MetadataError::Fenced { .. }), "{err:?}");
    assert_eq!(store.get_dedup_snapshot(log_id).await.unwrap(), Some(snap(25, &[("p1", 7)])));

    store.delete_dedup_snapshot(log_id, new).await.unwrap();
    store.delete_dedup_snapshot(log_id, new).await.unwrap();
    assert_eq!(store.get_dedup_snapshot(log_id).await.unwrap(), None);

    store.save_dedup_snapshot(log_id, new, &snap(40, &[("p3", 1)])).await.unwrap();
    store.delete_topic(&t.name).await.unwrap();
    let err = assert_err!(store.get_dedup_snapshot(log_id).await, NotFound);
    assert_names(&err, &format!("partition {log_id}"));
}

fn view(log_id: i64, horizon: i64, key: &str) -> crate::CompactedViewRecord {
    crate::CompactedViewRecord {
        log_id,
        horizon,
        object_key: key.to_string(),
        messages: horizon / 2,
        size_bytes: horizon * 10,
        created_at: 1_700_000_000_000 + horizon,
    }
}

pub async fn compacted_view_commits_replace_atomically_and_are_fenced(store: Arc<dyn MetadataStore>) {
    given_namespace(store.as_ref(), "acme/orders").await;
    let t = given_topic(store.as_ref(), "persistent://acme/orders/t", 0).await;
    let log_id = t.partition_records[0].log_id;
    assert_eq!(store.get_compacted_view(log_id).await.unwrap(), None, "no view before the first compaction");
    let old = store.acquire_partition(log_id, "broker-1").await.unwrap();

    let first = view(log_id, 10, "k/compacted-10.cv");
    assert_eq!(store.commit_compacted_view(old, &first, None).await.unwrap(), None);
    assert_eq!(store.get_compacted_view(log_id).await.unwrap(), Some(first.clone()));

    // A commit that did not start from the view in force is refused and changes nothing.
    let err = assert_err!(store.commit_compacted_view(old, &view(log_id, 20, "k/x.cv"), None).await, Conflict);
    assert!(err.to_string().contains(&format!("partition {log_id}")), "{err}");
    assert_err!(store.commit_compacted_view(old, &view(log_id, 20, "k/x.cv"), Some(5)).await, Conflict);
    assert_eq!(store.get_compacted_view(log_id).await.unwrap(), Some(first.clone()));

    // The next view replaces it and hands back the one replaced (its object is the caller's to delete).
    let second = view(log_id, 20, "k/compacted-20.cv");
    assert_eq!(store.commit_compacted_view(old, &second, Some(10)).await.unwrap(), Some(first));
    assert_eq!(store.get_compacted_view(log_id).await.unwrap(), Some(second.clone()));

    // A broker that lost the partition cannot commit.
    let new = store.acquire_partition(log_id, "broker-2").await.unwrap();
    assert_err!(store.commit_compacted_view(old, &view(log_id, 30, "k/y.cv"), Some(20)).await, Fenced);
    assert_eq!(store.get_compacted_view(log_id).await.unwrap(), Some(second));
    store.commit_compacted_view(new, &view(log_id, 30, "k/compacted-30.cv"), Some(20)).await.unwrap();

    let err = assert_err!(store.get_compacted_view(MISSING_LOG_ID).await, NotFound);
    assert_names(&err, &format!("partition {MISSING_LOG_ID}"));
    assert_err!(store.commit_compacted_view(new, &view(MISSING_LOG_ID, 1, "k/z.cv"), None).await, NotFound);
}

pub async fn deleting_a_topic_removes_its_compacted_views(store: Arc<dyn MetadataStore>) {
    given_namespace(store.as_ref(), "acme/orders").await;
    let t = given_topic(store.as_ref(), "persistent://acme/orders/t", 2).await;
    let other = given_topic(store.as_ref(), "persistent://acme/orders/other", 0).await;
    for p in t.partition_records.iter().chain(&other.partition_records) {
        let epoch = store.acquire_partition(p.log_id, "broker-1").await.unwrap();
        store.commit_compacted_view(epoch, &view(p.log_id, 4, "k/v.cv"), None).await.unwrap();
    }
    store.delete_topic(&t.name).await.unwrap();
    for p in &t.partition_records {
        assert_err!(store.get_compacted_view(p.log_id).await, NotFound);
    }
    let kept = other.partition_records[0].log_id;
    assert_eq!(store.get_compacted_view(kept).await.unwrap().map(|v| v.horizon), Some(4), "other topics keep theirs");
}
