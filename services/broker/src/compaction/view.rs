//! The compacted view of a partition and the pure compaction step.
//!
//! A view covers the partition's messages below its `horizon`: for every key, the latest
//! message; a key whose latest message has an empty payload (a tombstone) is left out, and so
//! are messages without a key unless `retain_null_key` (Pulsar's `topicCompactionRetainNullKey`,
//! off by default since Pulsar 3.2). Retained messages keep their offsets, hence their message
//! ids. A new compaction folds the messages after the previous horizon into the previous view,
//! so each run reads only what is new.
//!
//! Object format (`.cv`): magic `MGCV0001`, horizon (u64 LE), record count (u64 LE), then per
//! record `len (u32 LE) | crc32c of body (u32 LE) | body`; body = offset, segment base (u64 LE),
//! publish time (i64 LE), event time (flag u8 + i64 LE), key (flags u8: 1 a key, 2 base64 text,
//! 4 an ordering key follows; + u32 LE length + bytes [+ u32 LE length + ordering key]),
//! property count (u32 LE) then (u32 length + bytes) × 2 each, payload (u32 LE length + bytes).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use magnetar_storage::Record;
use std::collections::HashMap;

const MAGIC: &[u8; 8] = b"MGCV0001";
const KEY_BASE64: u8 = 2;
const KEY_ORDERING: u8 = 4;

/// A partition's compacted view, records in offset order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactedView {
    horizon: u64,
    records: Vec<Record>,
}

impl CompactedView {
    /// Exclusive: the view covers every message below this offset.
    pub fn horizon(&self) -> u64 {
        self.horizon
    }

    pub fn records(&self) -> &[Record] {
        &self.records
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Payload bytes the view holds.
    pub fn payload_bytes(&self) -> u64 {
        self.records.iter().map(|r| r.payload.len() as u64).sum()
    }

    /// Up to `max` records at or after `from` (and at least one whatever `max_bytes`), and
    /// whether they are the last of the view (a reader then goes on at the horizon).
    pub fn read_from(&self, from: u64, max: usize, max_bytes: usize) -> (Vec<Record>, bool) {
        let start = self.records.partition_point(|r| r.offset < from);
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for r in &self.records[start..] {
            if out.len() >= max || (!out.is_empty() && bytes + r.payload.len() > max_bytes) {
                return (out, false);
            }
            bytes += r.payload.len();
            out.push(r.clone());
        }
        (out, true)
    }

    /// The record at `offset`, if the view retains it.
    pub fn get(&self, offset: u64) -> Option<&Record> {
        self.records.binary_search_by_key(&offset, |r| r.offset).ok().map(|i| &self.records[i])
    }

    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(24 + self.records.iter().map(|r| 64 + r.payload.len()).sum::<usize>());
        buf.put_slice(MAGIC);
        buf.put_u64_le(self.horizon);
        buf.put_u64_le(self.records.len() as u64);
        let mut body = Vec::new();
        for r in &self.records {
            body.clear();
            encode_record(&mut body, r);
            buf.put_u32_le(body.len() as u32);
            buf.put_u32_le(magnetar_core::hash::crc32c(&body));
            buf.put_slice(&body);
        }
        buf.freeze()
    }

    pub fn decode(mut data: Bytes) -> Result<CompactedView, String> {
        if data.len() < 24 || &data[..8] != MAGIC {
            return Err("not a compacted view object".into());
        }
        data.advance(8);
        let horizon = data.get_u64_le();
        let count = data.get_u64_le();
        let mut records = Vec::with_capacity(count.min(1 << 20) as usize);
        for i in 0..count {
            if data.len() < 8 {
                return Err(format!("compacted view truncated at record {i}"));
            }
            let len = data.get_u32_le() as usize;
            let crc = data.get_u32_le();
            if data.len() < len {
                return Err(format!("compacted view truncated in record {i}"));
            }
            let body = data.split_to(len);
            if magnetar_core::hash::crc32c(&body) != crc {
                return Err(format!("checksum mismatch in record {i} of the compacted view"));
            }
            records.push(decode_record(body).ok_or_else(|| format!("malformed record {i} of the compacted view"))?);
        }
        if !records.windows(2).all(|w| w[0].offset < w[1].offset) || records.last().is_some_and(|r| r.offset >= horizon)
        {
            return Err("compacted view records out of order".into());
        }
        Ok(CompactedView { horizon, records })
    }
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.put_u32_le(s.len() as u32);
    buf.put_slice(s.as_bytes());
}

fn encode_record(buf: &mut Vec<u8>, r: &Record) {
    buf.put_u64_le(r.offset);
    buf.put_u64_le(r.segment_base);
    buf.put_i64_le(r.publish_time);
    buf.put_u8(u8::from(r.event_time.is_some()));
    buf.put_i64_le(r.event_time.unwrap_or(0));
    // Views written before the key's base64 flag and the ordering key know 0 and 1 only.
    let key_flags = u8::from(r.key.is_some())
        | if r.key_base64 { KEY_BASE64 } else { 0 }
        | if r.ordering_key.is_some() { KEY_ORDERING } else { 0 };
    buf.put_u8(key_flags);
    put_str(buf, r.key.as_deref().unwrap_or(""));
    if let Some(k) = &r.ordering_key {
        buf.put_u32_le(k.len() as u32);
        buf.put_slice(k);
    }
    buf.put_u32_le(r.properties.len() as u32);
    for (k, v) in &r.properties {
        put_str(buf, k);
        put_str(buf, v);
    }
    buf.put_u32_le(r.payload.len() as u32);
    buf.put_slice(&r.payload);
    // The producer's name and sequence id travel with the message (binary consumers see them),
    // and its schema version when it has one (2; views written before know 0 and 1 only).
    let version = r.producer.as_ref().and_then(|p| p.schema_version.as_deref());
    buf.put_u8(if version.is_some() { 2 } else { u8::from(r.producer.is_some()) });
    if let Some(p) = &r.producer {
        put_str(buf, &p.name);
        buf.put_i64_le(p.sequence_id);
    }
    if let Some(v) = version {
        buf.put_u32_le(v.len() as u32);
        buf.put_slice(v);
    }
    // Its batch position (so its id keeps the batch index); absent in views written before.
    if let Some(b) = r.batch {
        buf.put_u32_le(b.index);
        buf.put_u32_le(b.size);
    }
}

fn take_bytes(body: &mut Bytes) -> Option<Bytes> {
    if body.len() < 4 {
        return None;
    }
    let len = body.get_u32_le() as usize;
    (body.len() >= len).then(|| body.split_to(len))
}

fn take_str(body: &mut Bytes) -> Option<String> {
    String::from_utf8(take_bytes(body)?.to_vec()).ok()
}

fn decode_record(mut body: Bytes) -> Option<Record> {
    if body.len() < 8 * 3 + 9 + 1 {
        return None;
    }
    let offset = body.get_u64_le();
    let segment_base = body.get_u64_le();
    let publish_time = body.get_i64_le();
    let has_event = body.get_u8() == 1;
    let event = body.get_i64_le();
    let key_flags = body.get_u8();
    if key_flags & !(1 | KEY_BASE64 | KEY_ORDERING) != 0 {
        return None;
    }
    let has_key = key_flags & 1 != 0;
    let key = take_str(&mut body)?;
    let ordering_key = if key_flags & KEY_ORDERING != 0 { Some(take_bytes(&mut body)?) } else { None };
    if body.len() < 4 {
        return None;
    }
    let n = body.get_u32_le() as usize;
    let mut properties = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        properties.push((take_str(&mut body)?, take_str(&mut body)?));
    }
    let payload = take_bytes(&mut body)?;
    let producer = match body.len() {
        0 => return None,
        _ => match body.get_u8() {
            0 => None,
            kind @ (1 | 2) => {
                let name = take_str(&mut body)?;
                if body.len() < 8 {
                    return None;
                }
                let mut stamp = magnetar_storage::ProducerStamp::new(name, body.get_i64_le());
                if kind == 2 {
                    stamp.schema_version = Some(take_bytes(&mut body)?.to_vec().into_boxed_slice());
                }
                Some(stamp)
            }
            _ => return None,
        },
    };
    let batch = match body.len() {
        0 => None,
        8 => Some(magnetar_storage::BatchPos { index: body.get_u32_le(), size: body.get_u32_le() }),
        _ => return None,
    };
    Some(Record {
        offset,
        segment_base,
        publish_time,
        event_time: has_event.then_some(event),
        key: has_key.then_some(key),
        key_base64: has_key && key_flags & KEY_BASE64 != 0,
        ordering_key,
        properties,
        payload,
        producer,
        batch,
        chunk: None,
        encrypted: None,
    })
}

/// One compaction run: the previous view, then every message from its horizon on, in offset
/// order; [`Compaction::finish`] gives the new view.
pub struct Compaction {
    /// Latest message of each key (tombstones included until the end: a later message of the
    /// key may come back).
    latest: HashMap<String, Record>,
    /// Messages without a key, when they are retained.
    unkeyed: Vec<Record>,
    retain_null_key: bool,
    /// Messages looked at (the previous view's and the new ones).
    seen: u64,
    next: u64,
}

impl Compaction {
    pub fn new(previous: &CompactedView, retain_null_key: bool) -> Compaction {
        let mut c = Compaction {
            latest: HashMap::with_capacity(previous.len()),
            unkeyed: Vec::new(),
            retain_null_key,
            seen: 0,
            next: 0,
        };
        for r in &previous.records {
            c.push(r.clone());
        }
        c.next = previous.horizon;
        c
    }

    /// The offset from which messages are to be pushed next.
    pub fn next_offset(&self) -> u64 {
        self.next
    }

    /// Folds in the next message (offsets increase).
    pub fn push(&mut self, r: Record) {
        self.seen += 1;
        self.next = self.next.max(r.offset + 1);
        // A chunk is a piece of a message, not a value: keeping the latest chunk of a key would
        // give compacted readers a fragment. Chunked messages stay out of the view (the key
        // keeps its previous value there; docs/binary-protocol.md, "Chunked messages").
        // An encrypted message is the same kind of thing: the broker cannot tell a tombstone,
        // and an encrypted batch's key is not each message's. Compacted readers do not get it.
        if r.chunk.is_some() || r.encrypted.is_some() {
            return;
        }
        match &r.key {
            Some(k) => {
                self.latest.insert(k.clone(), r);
            }
            None if self.retain_null_key => self.unkeyed.push(r),
            None => {}
        }
    }

    /// The view of every message below `horizon`, and how many messages looked at it leaves
    /// out (Pulsar's `lastCompactionRemovedEventCount`).
    pub fn finish(self, horizon: u64) -> (CompactedView, u64) {
        let mut records: Vec<Record> =
            self.latest.into_values().filter(|r| !r.payload.is_empty()).chain(self.unkeyed).collect();
        records.sort_unstable_by_key(|r| r.offset);
        let removed = self.seen - records.len() as u64;
        (CompactedView { horizon: horizon.max(self.next), records }, removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn rec(offset: u64, key: Option<&str>, payload: &str) -> Record {
        Record {
            offset,
            segment_base: offset / 10 * 10,
            publish_time: 1_000 + offset as i64,
            event_time: offset.is_multiple_of(2).then_some(offset as i64),
            key: key.map(str::to_string),
            // Every fourth key is a binary key's base64 text, every seventh message has an
            // ordering key: the view's format keeps both.
            key_base64: key.is_some() && offset.is_multiple_of(4),
            ordering_key: offset.is_multiple_of(7).then(|| Bytes::from(vec![0, offset as u8, 255])),
            properties: vec![("p".into(), format!("v{offset}"))],
            payload: Bytes::from(payload.to_string()),
            // Every third message names its producer, so the view's format carries both kinds.
            producer: offset.is_multiple_of(3).then(|| magnetar_storage::ProducerStamp {
                name: format!("p{}", offset % 2),
                sequence_id: offset as i64,
                // Every sixth has a schema version too.
                schema_version: offset.is_multiple_of(2).then(|| offset.to_be_bytes().into()),
            }),
            // Every fifth was sent in a batch, so the view keeps batch positions too.
            batch: offset.is_multiple_of(5).then_some(magnetar_storage::BatchPos { index: 0, size: 2 }),
            chunk: None,
            encrypted: None,
        }
    }

    fn compact(previous: &CompactedView, msgs: Vec<Record>, horizon: u64, retain: bool) -> (CompactedView, u64) {
        let mut c = Compaction::new(previous, retain);
        msgs.into_iter().for_each(|m| c.push(m));
        c.finish(horizon)
    }

    #[test]
    fn latest_per_key_is_kept_and_tombstones_remove_their_key() {
        let msgs = vec![
            rec(0, Some("a"), "a1"),
            rec(1, Some("b"), "b1"),
            rec(2, Some("a"), "a2"),
            rec(3, Some("c"), "c1"),
            rec(4, Some("b"), ""),
            rec(5, None, "no key"),
        ];
        let (v, removed) = compact(&CompactedView::default(), msgs, 6, false);
        let kept: Vec<(u64, &str)> = v.records().iter().map(|r| (r.offset, r.key.as_deref().unwrap())).collect();
        assert_eq!(kept, vec![(2, "a"), (3, "c")]);
        assert_eq!((v.horizon(), removed), (6, 4));
        let (v, _) = compact(&CompactedView::default(), vec![rec(0, None, "x"), rec(1, Some("a"), "y")], 2, true);
        assert_eq!(v.len(), 2, "retained without a key when asked to");
    }

    #[test]
    fn a_compaction_builds_on_the_previous_view() {
        let (first, _) =
            compact(&CompactedView::default(), vec![rec(0, Some("a"), "1"), rec(1, Some("b"), "1")], 2, false);
        let (second, removed) = compact(&first, vec![rec(2, Some("a"), "2"), rec(3, Some("c"), "")], 4, false);
        let kept: Vec<u64> = second.records().iter().map(|r| r.offset).collect();
        assert_eq!(kept, vec![1, 2]);
        assert_eq!(removed, 2, "a's first value and c's tombstone");
        assert_eq!(second.horizon(), 4);
    }

    #[test]
    fn reading_from_an_offset_says_when_the_view_is_exhausted() {
        let (v, _) = compact(
            &CompactedView::default(),
            (0..10).map(|i| rec(i, Some(&format!("k{i}")), "xx")).collect(),
            12,
            false,
        );
        let (got, last) = v.read_from(3, 4, usize::MAX);
        assert_eq!((got.first().map(|r| r.offset), got.len(), last), (Some(3), 4, false));
        let (got, last) = v.read_from(8, 10, usize::MAX);
        assert_eq!((got.len(), last), (2, true));
        let (got, last) = v.read_from(11, 10, usize::MAX);
        assert!(got.is_empty() && last);
        assert_eq!(v.read_from(0, 10, 3).0.len(), 1, "at least one record whatever the byte budget");
        assert_eq!(v.get(4).map(|r| r.offset), Some(4));
    }

    #[test]
    fn a_damaged_object_is_refused() {
        let (v, _) = compact(&CompactedView::default(), vec![rec(0, Some("a"), "value")], 1, false);
        let mut bytes = v.encode().to_vec();
        assert_eq!(CompactedView::decode(Bytes::from(bytes.clone())).unwrap(), v);
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        assert!(CompactedView::decode(Bytes::from(bytes.clone())).unwrap_err().contains("checksum"));
        assert!(CompactedView::decode(Bytes::from(bytes[..30].to_vec())).is_err());
        assert!(CompactedView::decode(Bytes::from_static(b"garbage")).is_err());
    }

    fn message() -> impl Strategy<Value = (Option<u8>, Option<u8>)> {
        // (key among a few, payload: None = tombstone)
        (prop::option::weighted(0.9, 0u8..6), prop::option::weighted(0.8, any::<u8>()))
    }

    proptest! {
        /// The view after any sequence of compactions equals "latest message of each key,
        /// tombstoned keys removed" of everything below the last horizon, ids unchanged, and
        /// survives an encode/decode round trip.
        #[test]
        fn compacted_view_is_latest_per_key_without_tombstones(
            msgs in prop::collection::vec(message(), 0..120),
            cuts in prop::collection::vec(0usize..120, 0..4),
            retain in any::<bool>(),
        ) {
            let records: Vec<Record> = msgs
                .iter()
                .enumerate()
                .map(|(i, (k, p))| {
                    let key = k.map(|k| format!("k{k}"));
                    let payload = p.map(|b| vec![b; 3]).unwrap_or_default();
                    Record { payload: Bytes::from(payload), ..rec(i as u64, key.as_deref(), "") }
                })
                .collect();
            let mut horizons: Vec<usize> = cuts.into_iter().map(|c| c.min(records.len())).collect();
            horizons.push(records.len());
            horizons.sort_unstable();
            let mut view = CompactedView::default();
            for h in horizons {
                let from = view.horizon() as usize;
                let (next, _) = compact(&view, records[from..h].to_vec(), h as u64, retain);
                view = CompactedView::decode(next.encode()).unwrap();
                prop_assert_eq!(&view, &next);
            }
            let mut expected: BTreeMap<String, &Record> = BTreeMap::new();
            let mut unkeyed = Vec::new();
            for r in &records {
                match &r.key {
                    Some(k) => { expected.insert(k.clone(), r); }
                    None if retain => unkeyed.push(r.clone()),
                    None => {}
                }
            }
            let mut want: Vec<Record> =
                expected.into_values().filter(|r| !r.payload.is_empty()).cloned().chain(unkeyed).collect();
            want.sort_by_key(|r| r.offset);
            prop_assert_eq!(view.records(), &want[..]);
            prop_assert_eq!(view.horizon(), records.len() as u64);
        }
    }
}
