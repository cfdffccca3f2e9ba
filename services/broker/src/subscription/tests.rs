use super::state::State;
use super::*;
use crate::testkit;
use magnetar_core::{ManualClock, SystemClock};
use std::collections::HashMap;

fn durable(name: &str) -> SubscriptionId {
    SubscriptionId::Durable(SubscriptionName::new(name).unwrap())
}

fn sub_on(log: &Arc<PartitionLog>, limits: SubscriptionLimits, clock: SharedClock) -> Arc<Subscription> {
    Arc::new(Subscription::new(durable("s"), -1, Arc::clone(log), &CursorState::default(), limits, clock))
}

#[test]
fn offsets_compress_to_ranges() {
    assert_eq!(cursor::to_ranges(&[1, 2, 3, 7, 9, 10]), vec![(1, 4), (7, 8), (9, 11)]);
    assert!(cursor::to_ranges(&[]).is_empty());
}

#[test]
fn ring_gives_every_slot_an_owner_and_spreads_them() {
    let mut st = State::default();
    for id in 1..=3 {
        st.consumers.insert(
            id,
            ConsumerInfo {
                id,
                name: format!("c{id}"),
                priority: 0,
                address: String::new(),
                connected_since: 0,
                ..ConsumerInfo::default()
            },
        );
    }
    st.rebuild_ring();
    let mut counts = HashMap::new();
    for slot in 0..=u16::MAX {
        *counts.entry(st.slot_owner(slot).unwrap()).or_insert(0u32) += 1;
    }
    assert_eq!(counts.len(), 3);
    assert!(counts.values().all(|&n| n > 65_536 / 10), "{counts:?}");
}

#[tokio::test]
async fn an_ack_past_the_log_end_is_refused_and_acknowledges_nothing() {
    let kit = testkit::Storage::open();
    let log = kit.log_with(1, 3).await;
    let sub = sub_on(&log, SubscriptionLimits::default(), SystemClock::shared());
    assert_eq!(sub.ack(&[1, 3]), Err(BeyondEnd { offset: 3, end: 3 }));
    assert_eq!(sub.ack(&[7]), Err(BeyondEnd { offset: 7, end: 3 }));
    assert!(sub.cursor().acked_ranges.is_empty() && sub.cursor().mark_delete == 0, "nothing was acknowledged");
    assert!(matches!(sub.ack_cumulative(5), Err(cursor::CumulativeError::BeyondEnd(_))));
    // Offset 3, once published, is delivered: the refused ack did not skip it.
    kit.append(&log, 1).await;
    let got = sub.take(None, 10, 1 << 20, None).await.unwrap();
    assert_eq!(got.iter().map(|d| d.record.offset).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    assert!(sub.ack(&[3]).unwrap().is_some());
}

#[tokio::test]
async fn the_persisted_cursor_keeps_at_most_the_configured_ranges() {
    let kit = testkit::Storage::open();
    let log = kit.log_with(1, 100).await;
    let limits = SubscriptionLimits { max_ranges_to_persist: 5, ..SubscriptionLimits::default() };
    let sub = sub_on(&log, limits, SystemClock::shared());
    // Every other message: 50 ranges.
    let odd: Vec<u64> = (0..100).filter(|o| o % 2 == 1).collect();
    sub.ack(&odd).unwrap();
    assert_eq!(sub.cursor().acked_ranges.len(), 50, "memory keeps every range");
    let persisted = sub.take_dirty_cursor().unwrap();
    assert_eq!(persisted.acked_ranges, vec![(1, 2), (3, 4), (5, 6), (7, 8), (9, 10)], "the lowest ranges");
    // The whole cursor still travels as one op when it is carried forward.
    let CursorOp::Ack { ranges, .. } = sub.cursor_as_op().unwrap() else { panic!("an ack") };
    assert_eq!(ranges.len(), 50);
}

#[tokio::test(start_paused = true)]
async fn the_delayed_index_is_capped_and_reading_pauses_until_it_drains() {
    let kit = testkit::Storage::open();
    let clock = ManualClock::new(1_000_000);
    let log = kit.storage.log(1).unwrap();
    // Ten messages due in 60 s, then two without delay.
    let due = 1_000_000 + 60_000;
    let mut inputs: Vec<_> = (0..10).map(|i| testkit::delayed_input(i, due)).collect();
    inputs.extend((10..12).map(testkit::input));
    log.append(inputs).await.unwrap();
    let limits = SubscriptionLimits { max_delayed: 4, ..SubscriptionLimits::default() };
    let sub = sub_on(&log, limits, clock.clone());
    assert!(sub.take(None, 100, 1 << 20, None).await.unwrap().is_empty());
    let snap = sub.snapshot();
    assert_eq!(snap.delayed, 4, "at most max_delayed are held");
    assert_eq!(snap.read_pos, 4, "reading stopped at the cap; the rest stays in the log");
    clock.advance_millis(60_001);
    let mut got: Vec<u64> = Vec::new();
    for _ in 0..10 {
        got.extend(sub.take(None, 100, 1 << 20, None).await.unwrap().iter().map(|d| d.record.offset));
    }
    got.sort_unstable();
    assert_eq!(got, (0..12).collect::<Vec<_>>(), "every message is delivered once due, none lost");
}

#[tokio::test]
async fn a_failed_read_hands_claimed_messages_back() {
    let kit = testkit::Storage::with_object_tier();
    let log = kit.log_with(1, 20).await;
    let sub = sub_on(&log, SubscriptionLimits::default(), SystemClock::shared());
    let first = sub.take(None, 1, 1 << 20, None).await.unwrap();
    assert_eq!(first[0].record.offset, 0);
    // Negatively acknowledged with no delay: available again for redelivery.
    sub.nack(&[0], Duration::ZERO);
    kit.offload_everything(&log).await;
    let objects = kit.break_object_store();
    assert!(sub.take(None, 1, 1 << 20, None).await.is_err(), "the object store is down");
    assert_eq!(sub.snapshot().unacked, 0, "nothing stays in flight after the failed read");
    kit.repair_object_store(objects);
    let again = sub.take(None, 1, 1 << 20, None).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].record.offset, again[0].redelivery_count), (0, 1), "redelivered once the store is back");
}

fn offsets_of(got: &[Delivery]) -> Vec<u64> {
    got.iter().map(|d| d.record.offset).collect()
}

fn with_ahead(ahead: &Arc<ReadAhead>) -> Taking {
    Taking { whole_batches: false, ahead: Some(Arc::clone(ahead)) }
}

/// A subscription on a log of `n` records, a consumer's read-ahead window, and what the
/// consumer's first take of 10 got.
async fn reading_ahead(n: u64) -> (testkit::Storage, Arc<PartitionLog>, Arc<Subscription>, Arc<ReadAhead>, Vec<u64>) {
    let kit = testkit::Storage::open();
    let log = kit.log_with(1, n).await;
    let sub = sub_on(&log, SubscriptionLimits::default(), SystemClock::shared());
    let ahead = Arc::new(ReadAhead::default());
    let first = offsets_of(&sub.take_with(Some(1), 10, 1 << 20, None, with_ahead(&ahead)).await.unwrap());
    assert_eq!(first, (0..10).collect::<Vec<_>>());
    (kit, log, sub, ahead, first)
}

#[tokio::test]
async fn a_take_after_reading_ahead_gets_the_window_then_the_log_past_it() {
    let (kit, log, sub, ahead, _) = reading_ahead(30).await;
    sub.read_ahead_blocking(&ahead);
    assert!(ahead.holds(10), "the next window was read");
    // Published after the window was read: the take goes on in the log where the window ends.
    kit.append(&log, 5).await;
    sub.ack(&[12]).unwrap();
    let next = sub.take_with(Some(1), 100, 1 << 20, None, with_ahead(&ahead)).await.unwrap();
    let expected: Vec<u64> = (10..35).filter(|&o| o != 12).collect();
    assert_eq!(offsets_of(&next), expected, "in order, once each, without what was acknowledged meanwhile");
}

#[tokio::test]
async fn a_window_read_ahead_is_not_served_after_the_read_position_moved_back() {
    let (_kit, _log, sub, ahead, first) = reading_ahead(20).await;
    sub.ack(&first).unwrap();
    sub.read_ahead_blocking(&ahead);
    assert!(ahead.holds(10));
    // A seek back to 5: redelivered from there, not from the window at 10.
    sub.reset(5);
    let again = sub.take_with(Some(1), 100, 1 << 20, None, with_ahead(&ahead)).await.unwrap();
    assert_eq!(offsets_of(&again), (5..20).collect::<Vec<_>>());
}

#[tokio::test]
async fn another_consumers_take_skips_the_window_forward_and_nothing_is_delivered_twice() {
    let (_kit, _log, sub, ahead, mut seen) = reading_ahead(40).await;
    sub.read_ahead_blocking(&ahead);
    // A taker without the window (another Shared consumer, an HTTP pull) takes 10..25.
    seen.extend(offsets_of(&sub.take(Some(2), 15, 1 << 20, None).await.unwrap()));
    seen.extend(offsets_of(&sub.take_with(Some(1), 100, 1 << 20, None, with_ahead(&ahead)).await.unwrap()));
    assert_eq!(seen, (0..40).collect::<Vec<_>>());
}

#[test]
fn key_shared_hashes_the_sticky_key_as_pulsar_takes_it() {
    use magnetar_core::hash::key_slot;
    use magnetar_storage::Record;
    let rec = |key: Option<&str>, key_base64: bool, ordering: Option<&'static [u8]>| Record {
        key: key.map(str::to_string),
        key_base64,
        ordering_key: ordering.map(bytes::Bytes::from_static),
        ..Record::default()
    };
    // The ordering key first, whatever the key.
    assert_eq!(state::slot_of(&rec(Some("k"), false, Some(b"ord"))), key_slot(b"ord"));
    // A binary key's bytes, not its base64 text ("AP8=" is 0x00 0xff).
    assert_eq!(state::slot_of(&rec(Some("AP8="), true, None)), key_slot(&[0, 255]));
    assert_ne!(state::slot_of(&rec(Some("AP8="), true, None)), key_slot(b"AP8="));
    // A text key as it is; a flagged key that is not base64 after all, as text.
    assert_eq!(state::slot_of(&rec(Some("AP8="), false, None)), key_slot(b"AP8="));
    assert_eq!(state::slot_of(&rec(Some("not base64!"), true, None)), key_slot(b"not base64!"));
    // No key at all: Pulsar's NONE_KEY.
    assert_eq!(state::slot_of(&rec(None, false, None)), key_slot(b"NONE_KEY"));
}
