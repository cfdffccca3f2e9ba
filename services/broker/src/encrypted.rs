//! End-to-end encrypted batches in the subscription engine's hand-outs.
//!
//! An encrypted batch of `n` messages is stored as `n` records: its head holds the whole
//! encrypted batch, the `n - 1` members hold nothing but their place (offsets stay one per
//! message, so cursors, backlogs and retention count messages). Every surface delivers the
//! batch through its head: a binary consumer gets the batch as its producer sent it, the other
//! surfaces get it as one message. A member therefore never goes out on its own: handed out
//! without its head, or to a consumer that takes the batch as one message, it is acknowledged
//! on the spot. That loses nothing as long as the head is unacknowledged, since the head is
//! what carries the batch; and the head is acknowledged only for the whole batch (a binary
//! consumer acknowledges an encrypted batch as a whole: `magnetar-binary`'s `SentBatches`).

use crate::publish::PublishMessage;
use crate::subscription::Delivery;
use magnetar_storage::{BatchPos, Encrypted, Record};
use std::collections::HashSet;

/// Splits a hand-out into what goes to the consumer and the offsets of encrypted members to
/// acknowledge at once. With `with_heads` (a consumer that receives batches as sent), members
/// handed out together with their head go along with it; otherwise every member is settled.
pub(crate) fn split_members(got: Vec<Delivery>, with_heads: bool) -> (Vec<Delivery>, Vec<u64>) {
    if !got.iter().any(|d| d.record.is_encrypted_member()) {
        return (got, Vec::new());
    }
    let heads: HashSet<u64> = got.iter().filter(|d| d.record.encryption().is_some()).map(|d| d.record.offset).collect();
    let mut settled = Vec::new();
    let kept = got
        .into_iter()
        .filter(|d| {
            if !d.record.is_encrypted_member() {
                return true;
            }
            let head = d.record.batch.map_or(d.record.offset, |b| d.record.offset - u64::from(b.index));
            let keep = with_heads && heads.contains(&head);
            if !keep {
                settled.push(d.record.offset);
            }
            keep
        })
        .collect();
    (kept, settled)
}

/// The messages that store `r` again elsewhere (a dead-letter topic): an encrypted batch's
/// head comes with its members, so the copy is the batch its producer sent.
pub(crate) fn copies(r: &Record, mut message: PublishMessage) -> Vec<PublishMessage> {
    if r.encryption().is_none() {
        return vec![message];
    }
    message.encrypted = r.encrypted.clone();
    message.producer = r.producer.clone();
    message.batch = r.batch;
    let Some(BatchPos { size, .. }) = r.batch else { return vec![message] };
    let members = (1..size).map(|index| PublishMessage {
        key: message.key.clone(),
        key_base64: message.key_base64,
        ordering_key: message.ordering_key.clone(),
        producer: message.producer.clone(),
        batch: Some(BatchPos { index, size }),
        encrypted: Some(Encrypted::Member),
        ..PublishMessage::default()
    });
    std::iter::once(message.clone()).chain(members).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use magnetar_storage::Encryption;

    fn delivery(offset: u64, encrypted: Option<Encrypted>, index: u32) -> Delivery {
        Delivery {
            record: Record { offset, encrypted, batch: Some(BatchPos { index, size: 3 }), ..Record::default() },
            partition_index: -1,
            redelivery_count: 0,
        }
    }

    fn head(offset: u64) -> Delivery {
        let e = Encryption {
            keys: vec![],
            algorithm: String::new(),
            param: Default::default(),
            compression: 0,
            uncompressed_size: 0,
        };
        delivery(offset, Some(Encrypted::Head(Box::new(e))), 0)
    }

    fn offsets(ds: &[Delivery]) -> Vec<u64> {
        ds.iter().map(|d| d.record.offset).collect()
    }

    #[test]
    fn members_go_with_their_head_to_batch_consumers_only() {
        let got = vec![head(10), delivery(11, Some(Encrypted::Member), 1), delivery(12, Some(Encrypted::Member), 2)];
        let (kept, settled) = split_members(got.clone(), true);
        assert_eq!((offsets(&kept), settled), (vec![10, 11, 12], vec![]));
        let (kept, settled) = split_members(got, false);
        assert_eq!((offsets(&kept), settled), (vec![10], vec![11, 12]));
    }

    #[test]
    fn members_without_their_head_are_settled_and_other_records_pass() {
        let got = vec![
            delivery(21, Some(Encrypted::Member), 1),
            delivery(22, Some(Encrypted::Member), 2),
            delivery(23, None, 0),
            head(30),
            delivery(31, Some(Encrypted::Member), 1),
        ];
        let (kept, settled) = split_members(got, true);
        assert_eq!((offsets(&kept), settled), (vec![23, 30, 31], vec![21, 22]));
    }

    #[test]
    fn a_dead_letter_copy_of_an_encrypted_batch_keeps_its_members() {
        let h = head(10).record;
        let copies = copies(&h, PublishMessage { key: Some("k".into()), ..PublishMessage::default() });
        assert_eq!(copies.len(), 3);
        assert!(copies[0].encrypted.as_ref().is_some_and(|e| matches!(e, Encrypted::Head(_))));
        assert!(copies[1..].iter().all(|m| m.encrypted == Some(Encrypted::Member) && m.key.as_deref() == Some("k")));
        assert_eq!(copies[2].batch, Some(BatchPos { index: 2, size: 3 }));
        let plain = copies_of_plain();
        assert_eq!(plain.len(), 1);
        assert!(plain[0].encrypted.is_none());
    }

    fn copies_of_plain() -> Vec<PublishMessage> {
        copies(&delivery(5, None, 0).record, PublishMessage::default())
    }
}
