//! Pulsar-compatible message ids.
//!
//! A partition's log is a sequence of offsets grouped into segments; a segment plays the part of a
//! Pulsar ledger. A message id is `(ledgerId, entryId, partition)` with `ledgerId` = the base offset
//! of the segment holding the message and `entryId` = its position inside that segment, so
//! `offset = ledgerId + entryId` and ids order exactly as offsets do. The id never changes when the
//! segment is sealed, offloaded or read back from object storage.
//!
//! A message its producer sent in a batch keeps a record (an offset) of its own, and its id is
//! `(ledgerId, entryId of the batch's first message, batchIndex)`, the id the producer's receipt
//! implies: `offset = ledgerId + entryId + batchIndex`. `L:E+i` (no batch index) designates the
//! same message; the broker reads either.
//!
//! Wire forms: admin JSON `{"ledgerId","entryId","partitionIndex"}`, text `L:E[:P]` (REST produce
//! results, `X-Pulsar-Message-ID`) and base64 of the `MessageIdData` protobuf (WebSocket).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::fmt;

/// A message id in the admin API's JSON form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageId {
    pub ledger_id: i64,
    pub entry_id: i64,
    /// -1 when the topic is not partitioned.
    #[serde(default = "minus_one")]
    #[schema(default = -1)]
    pub partition_index: i32,
    /// -1 when the message was not sent in a batch.
    #[serde(default = "minus_one", skip_serializing_if = "is_negative")]
    #[schema(default = -1)]
    pub batch_index: i32,
}

fn minus_one() -> i32 {
    -1
}

fn is_negative(v: &i32) -> bool {
    *v < 0
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageIdError {
    #[error("invalid message id `{0}`: expected `ledgerId:entryId[:partition]`")]
    Text(String),
    #[error("invalid message id `{0}`: not base64")]
    Base64(String),
    #[error("invalid message id `{0}`: not a MessageIdData protobuf")]
    Protobuf(String),
}

impl MessageId {
    /// Pulsar's `MessageId.earliest`.
    pub const EARLIEST: MessageId = MessageId { ledger_id: -1, entry_id: -1, partition_index: -1, batch_index: -1 };
    /// Pulsar's `MessageId.latest`.
    pub const LATEST: MessageId =
        MessageId { ledger_id: i64::MAX, entry_id: i64::MAX, partition_index: -1, batch_index: -1 };

    pub fn new(segment_base: u64, offset: u64, partition_index: i32) -> Self {
        debug_assert!(offset >= segment_base);
        MessageId {
            ledger_id: segment_base as i64,
            entry_id: (offset - segment_base) as i64,
            partition_index,
            batch_index: -1,
        }
    }

    /// The id of the message at `offset`, number `index` of a batch whose first message is at
    /// `offset - index` (in the same segment).
    pub fn in_batch(segment_base: u64, offset: u64, partition_index: i32, index: u32) -> Self {
        let entry = offset - u64::from(index);
        debug_assert!(entry >= segment_base);
        MessageId { batch_index: index as i32, ..MessageId::new(segment_base, entry, partition_index) }
    }

    pub fn is_earliest(&self) -> bool {
        self.ledger_id < 0 || self.entry_id < 0
    }

    pub fn is_latest(&self) -> bool {
        self.ledger_id == i64::MAX
    }

    /// The log offset this id designates (ids sent by clients may use any split of L and E).
    pub fn offset(&self) -> u64 {
        if self.is_earliest() {
            return 0;
        }
        (self.ledger_id as u64).saturating_add(self.entry_id as u64).saturating_add(self.batch_index.max(0) as u64)
    }

    /// `L:E:P`, the form REST produce returns; `L:E:P:I` for a batched message.
    pub fn to_text(&self) -> String {
        if self.batch_index >= 0 {
            return format!("{}:{}:{}:{}", self.ledger_id, self.entry_id, self.partition_index, self.batch_index);
        }
        format!("{}:{}:{}", self.ledger_id, self.entry_id, self.partition_index)
    }

    pub fn parse_text(s: &str) -> Result<Self, MessageIdError> {
        let err = || MessageIdError::Text(s.into());
        let mut it = s.split(':');
        let ledger_id = it.next().ok_or_else(err)?.parse().map_err(|_| err())?;
        let entry_id = it.next().ok_or_else(err)?.parse().map_err(|_| err())?;
        let partition_index = match it.next() {
            Some(p) => p.parse().map_err(|_| err())?,
            None => -1,
        };
        let batch_index = match it.next() {
            Some(b) => b.parse().map_err(|_| err())?,
            None => -1,
        };
        if it.next().is_some() {
            return Err(err());
        }
        Ok(MessageId { ledger_id, entry_id, partition_index, batch_index })
    }

    /// Base64 of the `MessageIdData` protobuf, as Pulsar's WebSocket API sends ids.
    pub fn to_base64(&self) -> String {
        let mut buf = Vec::with_capacity(24);
        put_varint(&mut buf, 1 << 3);
        put_varint(&mut buf, self.ledger_id as u64);
        put_varint(&mut buf, 2 << 3);
        put_varint(&mut buf, self.entry_id as u64);
        if self.partition_index >= 0 {
            put_varint(&mut buf, 3 << 3);
            put_varint(&mut buf, self.partition_index as u64);
        }
        if self.batch_index >= 0 {
            put_varint(&mut buf, 4 << 3);
            put_varint(&mut buf, self.batch_index as u64);
        }
        STANDARD.encode(buf)
    }

    pub fn from_base64(s: &str) -> Result<Self, MessageIdError> {
        let bytes = STANDARD.decode(s.trim()).map_err(|_| MessageIdError::Base64(s.into()))?;
        Self::from_protobuf(&bytes).ok_or_else(|| MessageIdError::Protobuf(s.into()))
    }

    fn from_protobuf(mut b: &[u8]) -> Option<Self> {
        let mut id = MessageId { ledger_id: -1, entry_id: -1, partition_index: -1, batch_index: -1 };
        let (mut has_ledger, mut has_entry) = (false, false);
        while !b.is_empty() {
            let key = get_varint(&mut b)?;
            let (field, wire) = (key >> 3, key & 7);
            match wire {
                0 => {
                    let v = get_varint(&mut b)?;
                    match field {
                        1 => (id.ledger_id, has_ledger) = (v as i64, true),
                        2 => (id.entry_id, has_entry) = (v as i64, true),
                        3 => id.partition_index = v as i64 as i32,
                        4 => id.batch_index = v as i64 as i32,
                        _ => {}
                    }
                }
                2 => {
                    let len = get_varint(&mut b)? as usize;
                    b = b.get(len..)?;
                }
                1 => b = b.get(8..)?,
                5 => b = b.get(4..)?,
                _ => return None,
            }
        }
        (has_ledger && has_entry).then_some(id)
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn get_varint(b: &mut &[u8]) -> Option<u64> {
    let mut v: u64 = 0;
    for i in 0..10 {
        let (&byte, rest) = b.split_first()?;
        *b = rest;
        v |= ((byte & 0x7f) as u64) << (7 * i);
        if byte < 0x80 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_pulsar_examples() {
        let id = MessageId::from_base64("CAAQAw==").unwrap();
        assert_eq!((id.ledger_id, id.entry_id, id.partition_index), (0, 3, -1));
        let id = MessageId::from_base64("CAMQADAA").unwrap();
        assert_eq!((id.ledger_id, id.entry_id), (3, 0));
        assert_eq!(MessageId::new(0, 3, -1).to_base64(), "CAAQAw==");
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(MessageId::from_base64("!!"), Err(MessageIdError::Base64(_))));
        assert!(matches!(MessageId::from_base64("CAA="), Err(MessageIdError::Protobuf(_))));
        assert!(MessageId::parse_text("1:x").is_err());
        assert!(MessageId::parse_text("1:2:3:4:5").is_err());
    }

    #[test]
    fn negative_partition_decodes() {
        // Java clients may set partition = -1 explicitly: a 10-byte varint.
        let mut buf = vec![];
        for (f, v) in [(1u64, 5u64), (2, 6), (3, (-1i64) as u64)] {
            put_varint(&mut buf, f << 3);
            put_varint(&mut buf, v);
        }
        let id = MessageId::from_base64(&STANDARD.encode(buf)).unwrap();
        assert_eq!((id.ledger_id, id.entry_id, id.partition_index), (5, 6, -1));
    }

    proptest! {
        #[test]
        fn forms_round_trip(base in 0u64..1 << 40, delta in 0u64..1 << 20, p in -1i32..64) {
            let id = MessageId::new(base, base + delta, p);
            prop_assert_eq!(MessageId::from_base64(&id.to_base64()).unwrap(), id);
            prop_assert_eq!(MessageId::parse_text(&id.to_text()).unwrap(), id);
            prop_assert_eq!(id.offset(), base + delta);
        }

        #[test]
        fn batched_forms_round_trip(base in 0u64..1 << 40, delta in 0u64..1 << 20, i in 0u32..1000, p in -1i32..64) {
            let id = MessageId::in_batch(base, base + delta + u64::from(i), p, i);
            prop_assert_eq!((id.entry_id as u64, id.batch_index), (delta, i as i32));
            prop_assert_eq!(MessageId::from_base64(&id.to_base64()).unwrap(), id);
            prop_assert_eq!(MessageId::parse_text(&id.to_text()).unwrap(), id);
            prop_assert_eq!(id.offset(), base + delta + u64::from(i));
        }
    }
}
