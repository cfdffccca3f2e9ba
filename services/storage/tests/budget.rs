//! The local disk budget: with an object tier attached, appends fail with `Unavailable` exactly
//! while the local segments not yet in the object store hold more than
//! `local_disk_budget_bytes`, whatever freed them (upload, retention, a deleted log).

mod common;

use common::{config, input, settle};
use magnetar_storage::object::{LocalConfig, ObjectStoreConfig, build_object_store};
use magnetar_storage::{ObjectTier, PartitionLog, Storage, StorageConfig, StorageError, StorageMetrics, TierConfig};
use std::sync::Arc;

const BUDGET: u64 = 16 << 10;

fn budget_config(dir: &std::path::Path) -> StorageConfig {
    StorageConfig { local_disk_budget_bytes: BUDGET, ..config(dir) }
}

/// A storage with a tier over a local directory attached, so the budget applies.
fn open_with_tier(dir: &std::path::Path) -> (Arc<Storage>, Arc<ObjectTier>) {
    let metrics = StorageMetrics::new();
    let (s, _) = Storage::open_with_metrics(budget_config(dir), metrics.clone()).unwrap();
    let store = build_object_store(&ObjectStoreConfig::Local(LocalConfig { root: dir.join("objects") })).unwrap();
    let t = ObjectTier::new(store, TierConfig::default(), metrics).unwrap();
    s.attach_tier(t.clone());
    (s, t)
}

/// Local bytes waiting for upload, from what the logs say of their segments.
fn pending(logs: &[&Arc<PartitionLog>]) -> u64 {
    logs.iter().flat_map(|l| l.segments()).filter(|s| s.local && !s.offloaded).map(|s| s.size_bytes).sum()
}

fn is_budget_refusal(e: &StorageError) -> bool {
    matches!(e, StorageError::Unavailable(m) if m.contains("budget"))
}

/// Appends one record at a time until the budget refuses one; returns the next record number.
async fn fill(log: &Arc<PartitionLog>, mut i: u64) -> u64 {
    loop {
        match log.append(vec![input(i)]).await {
            Ok(_) => i += 1,
            Err(e) => {
                assert!(is_budget_refusal(&e), "{e}");
                return i;
            }
        }
        settle(log).await;
        assert!(i < 10_000, "the budget never applied");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_frees_the_disk_budget_and_appends_resume() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _t) = open_with_tier(dir.path());
    let log = s.log(1).unwrap();
    let i = fill(&log, 0).await;
    assert!(pending(&[&log]) > BUDGET);
    // Retention deletes every sealed segment (never uploaded: it may, e.g. a TTL policy).
    let l = log.clone();
    let end = log.end_offset();
    let freed = tokio::task::spawn_blocking(move || l.delete_segments_before(end)).await.unwrap().unwrap();
    assert!(freed.freed_local > 0);
    assert!(pending(&[&log]) <= BUDGET);
    log.append(vec![input(i)]).await.expect("room again after retention");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_log_frees_its_share_of_the_disk_budget() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _t) = open_with_tier(dir.path());
    let full = s.log(1).unwrap();
    fill(&full, 0).await;
    let other = s.log(2).unwrap();
    let e = other.append(vec![input(0)]).await.unwrap_err();
    assert!(is_budget_refusal(&e), "the budget is shared by every log: {e}");
    s.delete_log(1).await.unwrap();
    other.append(vec![input(0)]).await.expect("room again after the full log was deleted");
    s.shutdown().await;
}

/// Two logs filling the budget while segments are uploaded and deleted: every append is
/// accepted while the pending bytes are within the budget and refused once they exceed it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_are_refused_exactly_when_pending_bytes_exceed_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let (s, t) = open_with_tier(dir.path());
    let logs = [s.log(1).unwrap(), s.log(2).unwrap()];
    let next = [0u64, 0];
    let mut next = next;
    let (mut accepted, mut refused, mut frees) = (0, 0, 0);
    for round in 0..600u64 {
        let which = (round % 2) as usize;
        let log = &logs[which];
        let before = pending(&[&logs[0], &logs[1]]);
        match log.append(vec![input(next[which])]).await {
            Ok(_) => {
                assert!(before <= BUDGET, "accepted with {before} bytes pending, over the budget of {BUDGET}");
                next[which] += 1;
                accepted += 1;
            }
            Err(e) => {
                assert!(is_budget_refusal(&e), "{e}");
                assert!(before > BUDGET, "refused with {before} bytes pending, within the budget of {BUDGET}");
                refused += 1;
                // Make room, alternately by an upload (log 1) and by retention (log 2).
                frees += 1;
                if frees % 2 == 1 {
                    for seg in logs[0].segments().into_iter().filter(|s| s.sealed && !s.offloaded) {
                        let key = format!("budget/1/{:020}.seg", seg.base_offset);
                        let remote = t.upload(&logs[0], seg.base_offset, &key).await.unwrap();
                        logs[0].mark_offloaded(remote);
                    }
                } else {
                    let l = logs[1].clone();
                    let end = l.end_offset();
                    tokio::task::spawn_blocking(move || l.delete_segments_before(end)).await.unwrap().unwrap();
                }
            }
        }
        settle(log).await;
    }
    assert!(refused >= 2 && accepted > 300, "accepted {accepted}, refused {refused}");
    s.shutdown().await;
}
