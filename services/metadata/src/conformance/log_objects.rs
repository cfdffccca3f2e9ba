//! Conformance: the index of log objects and the partitions' local-durability marks.

use super::{assert_err, assert_names, given_namespace, given_topic};
use crate::{LogObjectRange, LogObjectRecord, MetadataError, MetadataStore, ReplicaSet};
use std::sync::Arc;

const MISSING_LOG_ID: i64 = 987_654_321;

fn range(log_id: i64, start_offset: i64, end_offset: i64, epoch: i64) -> LogObjectRange {
    LogObjectRange { log_id, start_offset, end_offset, epoch }
}

/// Commits one log object (the store commits them in groups).
async fn commit_one(
    store: &dyn MetadataStore,
    key: &str,
    committed_at: i64,
    ranges: &[LogObjectRange],
) -> crate::Result<Vec<(i64, MetadataError)>> {
    let objects = [(key.to_string(), ranges.to_vec())];
    Ok(store.commit_log_objects(committed_at, &objects).await?.pop().unwrap_or_default())
}

fn record(log_id: i64, start_offset: i64, end_offset: i64, key: &str, committed_at: i64) -> LogObjectRecord {
    LogObjectRecord { log_id, start_offset, end_offset, object_key: key.to_string(), committed_at }
}

/// The refused ranges as (log id, error kind), sorted by log id: the order is not part of the
/// contract.
fn kinds(refused: &[(i64, MetadataError)]) -> Vec<(i64, &'static str)> {
    let mut kinds: Vec<(i64, &'static str)> = refused
        .iter()
        .map(|(log_id, e)| {
            let kind = match e {
                MetadataError::Fenced { .. } => "fenced",
                MetadataError::NotFound(_) => "not found",
                MetadataError::Conflict(_) => "conflict",
                other => panic!("unexpected error for partition {log_id}: {other:?}"),
            };
            (*log_id, kind)
        })
        .collect();
    kinds.sort();
    kinds
}

pub async fn log_object_ranges_commit_and_list_in_offset_order(store: Arc<dyn MetadataStore>) {
    given_namespace(store.as_ref(), "acme/orders").await;
    let t = given_topic(store.as_ref(), "persistent://acme/orders/t", 2).await;
    let (p0, p1) = (t.partition_records[0].log_id, t.partition_records[1].log_id);
    let (e0, e1) = (
        store.acquire_partition(p0, "broker-1").await.unwrap(),
        store.acquire_partition(p1, "broker-1").await.unwrap(),
    );
    assert_eq!(store.list_log_objects(p0, 0).await.unwrap(), vec![]);

    // The later object committed first: listing is by offset, not by commit.
    let refused = commit_one(store.as_ref(), "logs/b1/s1/2", 2_000, &[range(p0, 10, 12, e0)]).await.unwrap();
    assert!(refused.is_empty(), "{refused:?}");
    let refused =
        commit_one(store.as_ref(), "logs/b1/s1/1", 1_000, &[range(p1, 0, 5, e1), range(p0, 0, 10, e0)]).await.unwrap();
    assert!(refused.is_empty(), "{refused:?}");

    let first = record(p0, 0, 10, "logs/b1/s1/1", 1_000);
    let second = record(p0, 10, 12, "logs/b1/s1/2", 2_000);
    assert_eq!(store.list_log_objects(p0, 0).await.unwrap(), vec![first.clone(), second.clone()]);
    assert_eq!(store.list_log_objects(p0, 9).await.unwrap(), vec![first, second.clone()]);
    // A range ending at or before `from_offset` is not listed.
    assert_eq!(store.list_log_objects(p0, 10).await.unwrap(), vec![second.clone()]);
    assert_eq!(store.list_log_objects(p0, 11).await.unwrap(), vec![second]);
    assert_eq!(store.list_log_objects(p0, 12).await.unwrap(), vec![]);
    assert_eq!(store.list_log_objects(p1, 0).await.unwrap(), vec![record(p1, 0, 5, "logs/b1/s1/1", 1_000)]);

    let err = assert_err!(store.list_log_objects(MISSING_LOG_ID, 0).await, NotFound);
    assert_names(&err, &format!("partition {MISSING_LOG_ID}"));
}

pub async fn a_log_object_commit_leaves_out_fenced_and_unknown_partitions(store: Arc<dyn MetadataStore>) {
    given_namespace(store.as_ref(), "acme/orders").await;
    let t = given_topic(store.as_ref(), "persistent://acme/orders/t", 2).await;
    let (p0, p1) = (t.partition_records[0].log_id, t.partition_records[1].log_id);
    let old = store.acquire_partition(p0, "broker-1").await.unwrap();
    let e1 = store.acquire_partition(p1, "broker-1").await.unwrap();
    let new = store.acquire_partition(p0, "broker-2").await.unwrap();

    let ranges = [range(p0, 0, 10, old), range(p1, 0, 7, e1), range(MISSING_LOG_ID, 0, 3, 1)];
    let refused = commit_one(store.as_ref(), "k/1", 1_000, &ranges).await.unwrap();
    assert_eq!(kinds(&refused), [(p0, "fenced"), (MISSING_LOG_ID, "not found")]);
    let fenced = refused.iter().find(|(l, _)| *l == p0).map(|(_, e)| e);
    assert!(
        matches!(fenced, Some(MetadataError::Fenced { log_id, epoch }) if *log_id == p0 && *epoch == old),
        "{fenced:?}"
    );
    let missing = refused.iter().find(|(l, _)| *l == MISSING_LOG_ID).map(|(_, e)| e.to_string());
    assert!(missing.is_some_and(|m| m.contains(&format!("partition {MISSING_LOG_ID}"))), "{refused:?}");

    // The zombie's range is not part of the log; the other partition's range is.
    assert_eq!(store.list_log_objects(p0, 0).await.unwrap(), vec![]);
    assert_eq!(store.list_log_objects(p1, 0).await.unwrap(), vec![record(p1, 0, 7, "k/1", 1_000)]);

    // The new owner commits the same offsets.
    assert!(commit_one(store.as_ref(), "k/2", 2_000, &[range(p0, 0, 10, new)]).await.unwrap().is_empty());
    assert_eq!(store.list_log_objects(p0, 0).await.unwrap(), vec![record(p0, 0, 10, "k/2", 2_000)]);

    // A malformed range fails the whole call: nothing of it is committed.
    let err = assert_err!(
        commit_one(store.as_ref(), "k/3", 3_000, &[range(p1, 7, 9, e1), range(p1, 9, 9, e1)]).await,
        Conflict
    );
    assert_names(&err, &format!("partition {p1}"));
    assert_err!(commit_one(store.as_ref(), "k/3", 3_000, &[range(p1, -1, 9, e1)]).await, Conflict);
    assert_eq!(store.list_log_objects(p1, 0).await.unwrap(), vec![record(p1, 0, 7, "k/1", 1_000)]);
    assert!(commit_one(store.as_ref(), "k/4", 4_000, &[]).await.unwrap().is_empty());
}

pub async fn a_log_object_commit_retry_is_accepted_and_another_key_conflicts(store: Arc<dyn MetadataStore>) {
    given_namespace(store.as_ref(), "acme/orders").await;
    let t = given_topic(store.as_ref(), "persistent://acme/orders/t", 0).await;
    let log_id = t.partition_records[0].log_id;
    let epoch = store.acquire_partition(log_id, "broker-1").await.unwrap();

    assert!(commit_one(store.as_ref(), "k/1", 1_000, &[range(log_id, 0, 10, epoch)]).await.unwrap().is_empty());
    // The answer was lost and the broker retries: accepted, still one row.
    let refused = commit_one(store.as_ref(), "k/1", 1_500, &[range(log_id, 0, 10, epoch)]).await.unwrap();
    assert!(refused.is_empty(), "{refused:?}");
    assert_eq!(store.list_log_objects(log_id, 0).await.unwrap(), vec![record(log_id, 0, 10, "k/1", 1_000)]);

    // The same start under another key is a conflict; the object's other range commits.
    let refused =
        commit_one(store.as_ref(), "k/2", 2_000, &[range(log_id, 0, 10, epoch), range(log_id, 10, 20, epoch)])
            .await
            .unwrap();
    assert_eq!(kinds(&refused), [(log_id, "conflict")]);
    assert_names(&refused[0].1, "k/1");
    assert_names(&refused[0].1, &format!("partition {log_id}"));
    // So is the same key with another end: the object cannot hold both.
    let refused = commit_one(store.as_ref(), "k/1", 3_000, &[range(log_id, 0, 8, epoch)]).await.unwrap();
    assert_eq!(kinds(&refused), [(log_id, "conflict")]);

    assert_eq!(
        store.list_log_objects(log_id, 0).await.unwrap(),
        vec![record(log_id, 0, 10, "k/1", 1_000), record(log_id, 10, 20, "k/2", 2_000)]
    );
}

pub async fn trimming_log_objects_is_fenced_and_frees_an_object_once_unreferenced(store: Arc<dyn MetadataStore>) {
    given_namespace(store.as_ref(), "acme/orders").await;
    let t = given_topic(store.as_ref(), "persistent://acme/orders/t", 2).await;
    let (p0, p1) = (t.partition_records[0].log_id, t.partition_records[1].log_id);
    let old = store.acquire_partition(p0, "broker-1").await.unwrap();
    let e1 = store.acquire_partition(p1, "broker-1").await.unwrap();
    for (key, ranges) in [
        ("k/1", vec![range(p0, 0, 10, old), range(p1, 0, 5, e1)]),
        ("k/2", vec![range(p0, 10, 20, old), range(p1, 5, 8, e1)]),
        ("k/3", vec![range(p0, 20, 30, old)]),
    ] {
        assert!(commit_one(store.as_ref(), key, 1_000, &ranges).await.unwrap().is_empty());
    }

    // Only ranges ending at or before `below` go; k/1 is still referenced by partition 1.
    assert_eq!(store.trim_log_objects(p0, old, 15).await.unwrap(), Vec::<String>::new());
    assert_eq!(
        store.list_log_objects(p0, 0).await.unwrap(),
        vec![record(p0, 10, 20, "k/2", 1_000), record(p0, 20, 30, "k/3", 1_000)]
    );
    assert_eq!(store.trim_log_objects(p0, old, 20).await.unwrap(), Vec::<String>::new());
    // Partition 1 dropped the last references to k/1 and k/2.
    assert_eq!(store.trim_log_objects(p1, e1, 8).await.unwrap(), ["k/1", "k/2"]);
    assert_eq!(store.list_log_objects(p1, 0).await.unwrap(), vec![]);

    // A broker that lost the partition trims nothing.
    let new = store.acquire_partition(p0, "broker-2").await.unwrap();
    let err = store.trim_log_objects(p0, old, 30).await.unwrap_err();
    assert!(matches!(err, MetadataError::Fenced { log_id, epoch } if log_id == p0 && epoch == old), "{err:?}");
    assert_eq!(store.list_log_objects(p0, 0).await.unwrap(), vec![record(p0, 20, 30, "k/3", 1_000)]);

    assert_eq!(store.trim_log_objects(p0, new, 30).await.unwrap(), ["k/3"]);
    assert_eq!(store.trim_log_objects(p0, new, 30).await.unwrap(), Vec::<String>::new(), "a key is returned once");
    assert_eq!(store.list_log_objects(p0, 0).await.unwrap(), vec![]);
    let err = assert_err!(store.trim_log_objects(MISSING_LOG_ID, new, 30).await, NotFound);
    assert_names(&err, &format!("partition {MISSING_LOG_ID}"));
}

pub async fn concurrent_trims_free_a_shared_object_exactly_once(store: Arc<dyn MetadataStore>) {
    given_namespace(store.as_ref(), "acme/orders").await;
    let t = given_topic(store.as_ref(), "persistent://acme/orders/t", 8).await;
    let mut owned = Vec::new();
    for p in &t.partition_records {
        owned.push((p.log_id, store.acquire_partition(p.log_id, "broker-1").await.unwrap()));
    }
    // Every partition drops its range of the shared object at the same time: whatever the
    // interleaving, exactly one trim must see the object unreferenced, or it leaks (none) or is
    // deleted twice (more).
    for round in 0..5_i64 {
        let key = format!("k/{round}");
        let (start, end) = (round * 10, round * 10 + 10);
        let ranges: Vec<LogObjectRange> = owned.iter().map(|(l, e)| range(*l, start, end, *e)).collect();
        assert!(commit_one(store.as_ref(), &key, 1_000, &ranges).await.unwrap().is_empty());
        let trims: Vec<_> = owned
            .iter()
            .map(|&(log_id, epoch)| {
                let store = store.clone();
                tokio::spawn(async move { store.trim_log_objects(log_id, epoch, end).await })
            })
            .collect();
        let mut freed = Vec::new();
        for trim in trims {
            freed.extend(trim.await.expect("task").expect("trim"));
        }
        assert_eq!(freed, [key], "round {round}");
    }
}

pub async fn deleting_a_topic_removes_its_log_object_ranges(store: Arc<dyn MetadataStore>) {
    given_namespace(store.as_ref(), "acme/orders").await;
    let t = given_topic(store.as_ref(), "persistent://acme/orders/t", 2).await;
    let other = given_topic(store.as_ref(), "persistent://acme/orders/other", 0).await;
    let mut ranges = Vec::new();
    for p in t.partition_records.iter().chain(&other.partition_records) {
        let epoch = store.acquire_partition(p.log_id, "broker-1").await.unwrap();
        ranges.push(range(p.log_id, 0, 4, epoch));
    }
    assert!(commit_one(store.as_ref(), "k/shared", 1_000, &ranges).await.unwrap().is_empty());

    store.delete_topic(&t.name).await.unwrap();
    for p in &t.partition_records {
        assert_err!(store.list_log_objects(p.log_id, 0).await, NotFound);
    }
    let kept = other.partition_records[0].log_id;
    assert_eq!(store.list_log_objects(kept, 0).await.unwrap(), vec![record(kept, 0, 4, "k/shared", 1_000)]);
    // The deleted topic's rows went with it: the other topic's range was the last reference.
    let epoch = store.get_partition_owner(kept).await.unwrap().expect("owned").1;
    assert_eq!(store.trim_log_objects(kept, epoch, 4).await.unwrap(), ["k/shared"]);
}

pub async fn several_log_objects_commit_in_one_call_each_with_its_refusals(store: Arc<dyn MetadataStore>) {
    given_namespace(store.as_ref(), "acme/orders").await;
    let t = given_topic(store.as_ref(), "persistent://acme/orders/t", 2).await;
    let (p, q) = (t.partition_records[0].log_id, t.partition_records[1].log_id);
    let ep = store.acquire_partition(p, "b").await.unwrap();
    let stale = store.acquire_partition(q, "b").await.unwrap();
    store.acquire_partition(q, "other").await.unwrap();
    let objects = vec![
        ("k/1".to_string(), vec![range(p, 0, 4, ep), range(q, 0, 2, stale)]),
        ("k/2".to_string(), vec![range(p, 4, 6, ep), range(MISSING_LOG_ID, 0, 1, 1)]),
    ];
    let answers = store.commit_log_objects(1_000, &objects).await.unwrap();
    assert_eq!(answers.len(), 2);
    assert!(matches!(answers[0].as_slice(), [(id, MetadataError::Fenced { .. })] if *id == q), "{answers:?}");
    assert!(
        matches!(answers[1].as_slice(), [(id, MetadataError::NotFound(_))] if *id == MISSING_LOG_ID),
        "{answers:?}"
    );
    assert_eq!(
        store.list_log_objects(p, 0).await.unwrap(),
        vec![record(p, 0, 4, "k/1", 1_000), record(p, 4, 6, "k/2", 1_000)]
    );
    assert!(store.list_log_objects(q, 0).await.unwrap().is_empty());
    // Retried as a whole (an answer lost): accepted, nothing doubled.
    let again = store.commit_log_objects(2_000, &objects[..1]).await.unwrap();
    assert!(matches!(again[0].as_slice(), [(id, MetadataError::Fenced { .. })] if *id == q), "{again:?}");
    assert_eq!(store.list_log_objects(p, 0).await.unwrap().len(), 2);
    // One bad range fails the call, nothing of it committed.
    let bad = vec![("k/3".to_string(), vec![range(p, 6, 8, ep)]), ("k/4".to_string(), vec![range(p, 8, 8, ep)])];
    assert_err!(store.commit_log_objects(3_000, &bad).await, Conflict);
    assert_eq!(store.list_log_objects(p, 0).await.unwrap().len(), 2);
}

pub async fn an_object_is_referenced_until_its_last_range_goes(store: Arc<dyn MetadataStore>) {
    given_namespace(store.as_ref(), "acme/orders").await;
    let t = given_topic(store.as_ref(), "persistent://acme/orders/t", 0).await;
    let other = given_topic(store.as_ref(), "persistent://acme/orders/other", 0).await;
    let (p, q) = (t.partition_records[0].log_id, other.partition_records[0].log_id);
    let (ep, eq) = (store.acquire_partition(p, "b").await.unwrap(), store.acquire_partition(q, "b").await.unwrap());
    let shared = [range(p, 0, 4, ep), range(q, 0, 4, eq)];
    assert!(commit_one(store.as_ref(), "k/shared", 1_000, &shared).await.unwrap().is_empty());
    assert!(commit_one(store.as_ref(), "k/only-t", 1_000, &[range(p, 4, 6, ep)]).await.unwrap().is_empty());
    let asked: Vec<String> = ["k/only-t", "k/never", "k/shared", "k/shared"].map(String::from).to_vec();
    assert_eq!(store.referenced_log_objects(&asked).await.unwrap(), ["k/only-t", "k/shared"]);
    assert!(store.referenced_log_objects(&[]).await.unwrap().is_empty());

    // The deleted topic's ranges go with it: its own object is garbage, the shared one is not.
    store.delete_topic(&t.name).await.unwrap();
    assert_eq!(store.referenced_log_objects(&asked).await.unwrap(), ["k/shared"]);
    // Many keys at once (more than one statement's worth).
    let many: Vec<String> = (0..1_200).map(|i| format!("k/{i:04}")).chain(["k/shared".to_string()]).collect();
    assert_eq!(store.referenced_log_objects(&many).await.unwrap(), ["k/shared"]);
}

pub async fn a_partition_marked_local_under_its_epoch_may_not_fail_over(store: Arc<dyn MetadataStore>) {
    given_namespace(store.as_ref(), "acme/orders").await;
    let t = given_topic(store.as_ref(), "persistent://acme/orders/t", 2).await;
    let (p0, p1) = (t.partition_records[0].log_id, t.partition_records[1].log_id);
    // Never owned, then owned but never marked (its owner never loaded it locally): nothing of it
    // lives on a single broker's disk only.
    assert!(store.may_fail_over(p0).await.unwrap());
    let epoch = store.acquire_partition(p0, "broker-1").await.unwrap();
    assert!(store.may_fail_over(p0).await.unwrap());

    store.mark_local_durability(p0, epoch).await.unwrap();
    assert!(!store.may_fail_over(p0).await.unwrap());
    store.mark_local_durability(p0, epoch).await.unwrap();
    assert!(!store.may_fail_over(p0).await.unwrap(), "marking twice is harmless");
    assert!(store.may_fail_over(p1).await.unwrap(), "the mark is the partition's own");
    assert_eq!(store.get_partition_owner(p0).await.unwrap(), Some(("broker-1".to_string(), epoch)), "the owner stays");
}

pub async fn a_new_epoch_lifts_the_local_mark(store: Arc<dyn MetadataStore>) {
    given_namespace(store.as_ref(), "acme/orders").await;
    let t = given_topic(store.as_ref(), "persistent://acme/orders/t", 0).await;
    let log_id = t.partition_records[0].log_id;
    let first = store.acquire_partition(log_id, "broker-1").await.unwrap();
    store.mark_local_durability(log_id, first).await.unwrap();
    assert!(!store.may_fail_over(log_id).await.unwrap());

    // A transition to another owner bumps the epoch without the new owner loading the partition:
    // nothing was written under the new epoch, so the previous owner's mark does not carry over.
    let second = store.acquire_partition(log_id, "broker-2").await.unwrap();
    assert!(store.may_fail_over(log_id).await.unwrap());
    // Once the new owner loads it locally in turn, it blocks again...
    store.mark_local_durability(log_id, second).await.unwrap();
    assert!(!store.may_fail_over(log_id).await.unwrap());
    // ...until the next epoch, even when the same broker reacquires it.
    store.acquire_partition(log_id, "broker-2").await.unwrap();
    assert!(store.may_fail_over(log_id).await.unwrap());
}

pub async fn a_stale_owner_cannot_mark_local_durability(store: Arc<dyn MetadataStore>) {
    given_namespace(store.as_ref(), "acme/orders").await;
    let t = given_topic(store.as_ref(), "persistent://acme/orders/t", 0).await;
    let log_id = t.partition_records[0].log_id;
    let old = store.acquire_partition(log_id, "broker-1").await.unwrap();
    let new = store.acquire_partition(log_id, "broker-2").await.unwrap();

    // The zombie cannot pin the partition to its own disk under the current owner's epoch...
    let err = store.mark_local_durability(log_id, old).await.unwrap_err();
    assert!(matches!(err, MetadataError::Fenced { log_id: l, epoch } if l == log_id && epoch == old), "{err:?}");
    assert!(store.may_fail_over(log_id).await.unwrap());
    // ...nor can an epoch not handed out yet.
    assert_err!(store.mark_local_durability(log_id, new + 1).await, Fenced);
    assert!(store.may_fail_over(log_id).await.unwrap());
    assert_eq!(
        store.get_partition_owner(log_id).await.unwrap(),
        Some(("broker-2".to_string(), new)),
        "nothing changes"
    );

    // A refused mark does not disturb the current owner's.
    store.mark_local_durability(log_id, new).await.unwrap();
    assert_err!(store.mark_local_durability(log_id, old).await, Fenced);
    assert!(!store.may_fail_over(log_id).await.unwrap());
}

pub async fn local_durability_of_an_unknown_partition_is_not_found(store: Arc<dyn MetadataStore>) {
    let err = assert_err!(store.mark_local_durability(MISSING_LOG_ID, 1).await, NotFound);
    assert_names(&err, &format!("partition {MISSING_LOG_ID}"));
    let err = assert_err!(store.may_fail_over(MISSING_LOG_ID).await, NotFound);
    assert_names(&err, &format!("partition {MISSING_LOG_ID}"));

    // Nor does a deleted partition answer.
    given_namespace(store.as_ref(), "acme/orders").await;
    let t = given_topic(store.as_ref(), "persistent://acme/orders/t", 0).await;
    let log_id = t.partition_records[0].log_id;
    let epoch = store.acquire_partition(log_id, "broker-1").await.unwrap();
    store.mark_local_durability(log_id, epoch).await.unwrap();
    store.delete_topic(&t.name).await.unwrap();
    assert_err!(store.may_fail_over(log_id).await, NotFound);
    assert_err!(store.mark_local_durability(log_id, epoch).await, NotFound);
}

pub async fn a_replica_set_is_recorded_under_its_owners_epoch(store: Arc<dyn MetadataStore>) {
    given_namespace(store.as_ref(), "acme/orders").await;
    let t = given_topic(store.as_ref(), "persistent://acme/orders/t", 0).await;
    let log_id = t.partition_records[0].log_id;
    assert_eq!(store.partition_replicas(log_id).await.unwrap(), None, "none before a replicated load");
    let old = store.acquire_partition(log_id, "broker-1").await.unwrap();
    let set = ReplicaSet {
        owner: "broker-1".into(),
        peers: vec!["broker-2".into()],
        write_quorum: 2,
        ack_quorum: 2,
        previous_peers: vec![],
    };
    store.set_partition_replicas(log_id, old, Some(&set)).await.unwrap();
    assert_eq!(store.partition_replicas(log_id).await.unwrap(), Some((old, set.clone())));

    // The next owner reads the previous set (to recover from it) until it records its own.
    let new = store.acquire_partition(log_id, "broker-2").await.unwrap();
    assert_eq!(store.partition_replicas(log_id).await.unwrap(), Some((old, set.clone())), "kept across epochs");
    let zombie = ReplicaSet {
        owner: "broker-1".into(),
        peers: vec!["broker-3".into()],
        write_quorum: 2,
        ack_quorum: 2,
        previous_peers: vec![],
    };
    assert_err!(store.set_partition_replicas(log_id, old, Some(&zombie)).await, Fenced);
    let mine = ReplicaSet {
        owner: "broker-2".into(),
        peers: vec!["broker-3".into()],
        write_quorum: 2,
        ack_quorum: 2,
        previous_peers: vec![],
    };
    store.set_partition_replicas(log_id, new, Some(&mine)).await.unwrap();
    assert_eq!(store.partition_replicas(log_id).await.unwrap(), Some((new, mine)));
    // A load in another mode after recovering clears it: nothing to recover from replicas then.
    store.set_partition_replicas(log_id, new, None).await.unwrap();
    assert_eq!(store.partition_replicas(log_id).await.unwrap(), None);
    assert_err!(store.partition_replicas(MISSING_LOG_ID).await, NotFound);
    assert_err!(store.set_partition_replicas(MISSING_LOG_ID, 1, Some(&set)).await, NotFound);
}
