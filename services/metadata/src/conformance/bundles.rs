//! Bundle ownership: rows created free on demand, moved through free → assigning → owned →
//! releasing → free by compare-and-set on epoch and state, with the partitions' epochs bumped
//! when the owner changes.

use super::{assert_err, assert_names, given_namespace, given_topic, namespace};
use crate::{BundleState, BundleTransition, CursorState, MetadataStore};
use std::sync::Arc;

const RANGE: &str = "0x00000000_0x40000000";

fn to(state: BundleState, owner: Option<(&str, &str)>) -> BundleTransition {
    BundleTransition { state, owner: owner.map(|(b, s)| (b.to_string(), s.to_string())) }
}

pub async fn bundle_ownership_moves_by_compare_and_set_on_its_epoch(store: Arc<dyn MetadataStore>) {
    let ns = given_namespace(store.as_ref(), "acme/orders").await;
    assert_eq!(store.get_bundle(&ns, RANGE).await.unwrap(), None);
    let free = store.ensure_bundle(&ns, RANGE).await.expect("ensure");
    assert_eq!((free.state, free.owner.as_deref(), free.epoch), (BundleState::Free, None, 0));
    // Idempotent: a second ensure returns the same row.
    assert_eq!(store.ensure_bundle(&ns, RANGE).await.expect("ensure again"), free);

    let assigning = store
        .transition_bundle(&ns, RANGE, 0, BundleState::Free, &to(BundleState::Assigning, Some(("b1", "s1"))), &[])
        .await
        .expect("assign");
    assert_eq!(assigning.state, BundleState::Assigning);
    assert_eq!((assigning.owner.as_deref(), assigning.owner_session.as_deref()), (Some("b1"), Some("s1")));
    assert_eq!(assigning.epoch, 1);

    // A stale epoch (a second leader that read the free row) is refused and changes nothing.
    let err = assert_err!(
        store
            .transition_bundle(&ns, RANGE, 0, BundleState::Free, &to(BundleState::Assigning, Some(("b2", "s2"))), &[])
            .await,
        Conflict
    );
    assert_names(&err, RANGE);
    // The right epoch in the wrong state is refused too.
    assert_err!(
        store
            .transition_bundle(&ns, RANGE, 1, BundleState::Owned, &to(BundleState::Releasing, Some(("b1", "s1"))), &[])
            .await,
        Conflict
    );
    assert_eq!(store.get_bundle(&ns, RANGE).await.unwrap(), Some(assigning.clone()));

    let owned = store
        .transition_bundle(&ns, RANGE, 1, BundleState::Assigning, &to(BundleState::Owned, Some(("b1", "s1"))), &[])
        .await
        .expect("take");
    assert_eq!((owned.state, owned.epoch), (BundleState::Owned, 2));
    let releasing = store
        .transition_bundle(&ns, RANGE, 2, BundleState::Owned, &to(BundleState::Releasing, Some(("b1", "s1"))), &[])
        .await
        .expect("release");
    let freed = store
        .transition_bundle(&ns, RANGE, releasing.epoch, BundleState::Releasing, &to(BundleState::Free, None), &[])
        .await
        .expect("free");
    assert_eq!((freed.state, freed.owner, freed.owner_session, freed.epoch), (BundleState::Free, None, None, 4));

    let other = given_namespace(store.as_ref(), "acme/billing").await;
    store.ensure_bundle(&other, RANGE).await.expect("ensure other");
    let listed: Vec<String> =
        store.list_bundles().await.unwrap().iter().map(|b| format!("{}/{}", b.namespace, b.bundle)).collect();
    assert_eq!(listed, [format!("acme/billing/{RANGE}"), format!("acme/orders/{RANGE}")]);

    let missing = assert_err!(
        store
            .transition_bundle(&ns, "0x40000000_0x80000000", 0, BundleState::Free, &to(BundleState::Free, None), &[])
            .await,
        NotFound
    );
    assert_names(&missing, "0x40000000_0x80000000");
    assert_err!(store.ensure_bundle(&namespace("acme/missing"), RANGE).await, NotFound);

    // Retired (a split range's row): only free, and only at the epoch the caller saw.
    let busy = store
        .transition_bundle(&other, RANGE, 0, BundleState::Free, &to(BundleState::Assigning, Some(("b1", "s1"))), &[])
        .await
        .expect("assign");
    let refused = assert_err!(store.retire_bundle(&other, RANGE, busy.epoch).await, Conflict);
    assert_names(&refused, RANGE);
    assert_err!(store.retire_bundle(&ns, RANGE, freed.epoch - 1).await, Conflict);
    store.retire_bundle(&ns, RANGE, freed.epoch).await.expect("retire");
    assert!(store.get_bundle(&ns, RANGE).await.unwrap().is_none());
    assert_err!(store.retire_bundle(&ns, RANGE, freed.epoch).await, NotFound);
}

pub async fn a_bundle_changing_owner_fences_its_partitions(store: Arc<dyn MetadataStore>) {
    let ns = given_namespace(store.as_ref(), "acme/orders").await;
    let t = given_topic(store.as_ref(), "persistent://acme/orders/t", 2).await;
    let (p0, p1) = (t.partition_records[0].log_id, t.partition_records[1].log_id);
    store.create_subscription("sub", &[(p0, CursorState::default())]).await.expect("subscription");
    store.ensure_bundle(&ns, RANGE).await.expect("ensure");
    let b = store
        .transition_bundle(&ns, RANGE, 0, BundleState::Free, &to(BundleState::Owned, Some(("b1", "s1"))), &[p0])
        .await
        .expect("own");
    let old = store.acquire_partition(p0, "b1").await.expect("load by b1");
    let untouched = store.acquire_partition(p1, "b1").await.expect("load by b1");

    // The same owner in another state: the partitions keep their epochs.
    let b = store
        .transition_bundle(
            &ns,
            RANGE,
            b.epoch,
            BundleState::Owned,
            &to(BundleState::Releasing, Some(("b1", "s1"))),
            &[p0],
        )
        .await
        .expect("releasing");
    assert_eq!(store.get_partition_owner(p0).await.unwrap(), Some(("b1".to_string(), old)));
    // Another owner: the listed partitions are fenced in the same transaction.
    store
        .transition_bundle(
            &ns,
            RANGE,
            b.epoch,
            BundleState::Releasing,
            &to(BundleState::Owned, Some(("b2", "s2"))),
            &[p0],
        )
        .await
        .expect("moved");
    let (owner, epoch) = store.get_partition_owner(p0).await.unwrap().expect("owned");
    assert_eq!(owner, "b2");
    assert!(epoch > old, "the partition's epoch moved on");
    let cursor = CursorState { mark_delete: 5, acked_ranges: vec![] };
    assert_err!(store.checkpoint_cursors(p0, old, &[("sub".into(), cursor)]).await, Fenced);
    assert_eq!(store.get_partition_owner(p1).await.unwrap(), Some(("b1".to_string(), untouched)));
}

pub async fn bundle_rows_go_with_their_namespace(store: Arc<dyn MetadataStore>) {
    let ns = given_namespace(store.as_ref(), "acme/orders").await;
    store.ensure_bundle(&ns, RANGE).await.expect("ensure");
    store.delete_namespace(&ns, true).await.expect("delete");
    assert!(store.list_bundles().await.unwrap().is_empty());
}
