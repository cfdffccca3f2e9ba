//! Byte formats shared by the WAL and the segments.
//!
//! A *frame* is `len: u32 LE | crc: u32 LE | body[len]` where `crc = crc32c(len bytes ++ body)`:
//! the length is covered too, so a flipped length byte is caught like a flipped payload byte,
//! and a zero-filled region (len 0, crc 0) is rejected because no body is empty.
//!
//! A segment record is one frame whose body is a record body:
//! `offset u64 | publish_time i64 | flags u8 | [flags2 u8] | [event_time i64] | [key_len u32 | key]
//!  | [ordering_key_len u32 | ordering_key]
//!  | [producer_len u32 | producer | sequence_id i64] | [batch_index u32 | batch_size u32]
//!  | [uuid_len u32 | uuid | chunk_index u32 | chunk_count u32 | total_size u32
//!     | uncompressed_size u32 | compression u8] | [schema_version_len u32 | schema_version]
//!  | [encrypted: kind u8 (1 head, 2 member) | head: algo_len u32 | algo | param_len u32 | param
//!     | compression u8 | uncompressed_size u32 | n_keys u32 | (name_len u32 | name | value_len u32
//!     | value | n_meta u32 | (k_len u32 | k | v_len u32 | v)*)*]
//!  | n_props u32 | (k_len u32 | k | v_len u32 | v)* | payload_len u32 | payload`
//! (the schema version is the producer stamp's: its flag is set only with the producer's).
//! `flags2` follows when `flags` has its last bit (`FLAG_MORE`) set: its bits say that the key
//! is base64 text (no part of its own) and that an ordering key is present.
//! Optional parts are present when their flag is set; a flag added later leaves older records
//! readable as they are.
//!
//! A WAL frame body starts with a type byte:
//! - `1` data: `log_id u64 | segment_base u64 | count u32 | count segment-record frames`
//!   (the inner frames are copied verbatim into the segment, so a record is encoded once);
//! - `2` aux: `log_id u64 | opaque bytes`;
//! - `3` drop: `log_id u64`;
//! - `4` padding: zeros, to the end of a page (WAL files only, see `wal::next_file`).
//!
//! In a WAL file the checksum of each WAL frame is stored XORed with the file's *salt*
//! ([`wal_salt`] of its sequence number; the records inside a data frame are not salted, they go
//! to segments as they are). WAL files are reused (`wal`: a trimmed file becomes a later one and
//! is overwritten in place), so a reused file still holds its earlier frames after the new ones:
//! under the new salt they fail their checksum like any unwritten space, and replay ends there.
//! Files written before salting (salt 0) are still read: recovery tells them by their first
//! frame, and they are never reused.

use crate::record::{BatchPos, ChunkPos, Encrypted, Encryption, EncryptionKey, ProducerStamp, Record, RecordInput};
use bytes::Bytes;

pub const FRAME_HEADER: usize = 8;
/// Sanity bound on one frame: a length beyond it is corruption, not a reason to allocate.
pub const MAX_FRAME_LEN: usize = 512 << 20;

const FLAG_EVENT_TIME: u8 = 1;
const FLAG_KEY: u8 = 2;
const FLAG_PRODUCER: u8 = 4;
const FLAG_BATCH: u8 = 8;
const FLAG_CHUNK: u8 = 16;
const FLAG_SCHEMA_VERSION: u8 = 32;
const FLAG_ENCRYPTED: u8 = 64;
/// A second flags byte follows (the first has no bit left).
const FLAG_MORE: u8 = 128;
const FLAG2_KEY_BASE64: u8 = 1;
const FLAG2_ORDERING_KEY: u8 = 2;
const ENCRYPTED_HEAD: u8 = 1;
const ENCRYPTED_MEMBER: u8 = 2;
const RECORD_FIXED: usize = 8 + 8 + 1 + 4 + 4;

pub const WAL_DATA: u8 = 1;
pub const WAL_AUX: u8 = 2;
pub const WAL_DROP: u8 = 3;
pub const WAL_PAD: u8 = 4;
pub const WAL_DATA_HEADER: usize = 1 + 8 + 8 + 4;

fn frame_crc(len: u32, body: &[u8]) -> u32 {
    magnetar_core::hash::crc32c_append(magnetar_core::hash::crc32c(&len.to_le_bytes()), body)
}

/// Starts a frame in `buf`; returns the position to pass to [`finish_frame`].
pub fn begin_frame(buf: &mut Vec<u8>) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; FRAME_HEADER]);
    start
}

/// Fills in length and checksum of the frame started at `start`.
pub fn finish_frame(buf: &mut [u8], start: usize) {
    let len = (buf.len() - start - FRAME_HEADER) as u32;
    let crc = frame_crc(len, &buf[start + FRAME_HEADER..]);
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Outcome of looking for a frame at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameParse {
    /// A valid frame: its body is `buf[FRAME_HEADER..total]`.
    Complete {
        total: usize,
    },
    /// The buffer ends inside the frame (`need` bytes in all); at the end of a file: a torn tail.
    Incomplete {
        need: usize,
    },
    Corrupt(String),
}

pub fn parse_frame(buf: &[u8]) -> FrameParse {
    parse_salted_frame(buf, 0)
}

/// The salt of the WAL file with sequence number `seq`: never 0 (unsalted), and different for
/// two sequence numbers a few apart (as a reused file's earlier and later ones are).
pub fn wal_salt(seq: u64) -> u32 {
    match (seq as u32).wrapping_add(0x9e37_79b9) {
        0 => 1,
        s => s,
    }
}

/// The 8-byte header of `frame` (a complete frame) as a WAL file with `salt` stores it.
pub fn salted_header(frame: &[u8], salt: u32) -> [u8; FRAME_HEADER] {
    let mut head: [u8; FRAME_HEADER] = frame[..FRAME_HEADER].try_into().expect("a frame has a header");
    let crc = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes")) ^ salt;
    head[4..8].copy_from_slice(&crc.to_le_bytes());
    head
}

/// [`parse_frame`] for a frame whose stored checksum is XORed with `salt`.
pub fn parse_salted_frame(buf: &[u8], salt: u32) -> FrameParse {
    if buf.len() < FRAME_HEADER {
        return FrameParse::Incomplete { need: FRAME_HEADER };
    }
    let len = u32::from_le_bytes(buf[0..4].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(buf[4..8].try_into().expect("4 bytes")) ^ salt;
    if len == 0 || len as usize > MAX_FRAME_LEN {
        return FrameParse::Corrupt(format!("invalid frame length {len}"));
    }
    let total = FRAME_HEADER + len as usize;
    if buf.len() < total {
        return FrameParse::Incomplete { need: total };
    }
    if frame_crc(len, &buf[FRAME_HEADER..total]) != crc {
        return FrameParse::Corrupt("checksum mismatch".into());
    }
    FrameParse::Complete { total }
}

/// Encoded size of a record's frame (header included).
pub fn record_frame_len(r: &RecordInput) -> usize {
    let mut n = FRAME_HEADER + RECORD_FIXED + r.payload.len();
    if flags2(r) != 0 {
        n += 1;
    }
    if r.event_time.is_some() {
        n += 8;
    }
    if let Some(k) = &r.key {
        n += 4 + k.len();
    }
    if let Some(k) = &r.ordering_key {
        n += 4 + k.len();
    }
    if let Some(p) = &r.producer {
        n += 4 + p.name.len() + 8 + p.schema_version.as_ref().map_or(0, |v| 4 + v.len());
    }
    if r.batch.is_some() {
        n += 8;
    }
    if let Some(c) = &r.chunk {
        n += 4 + c.uuid.len() + 4 * 4 + 1;
    }
    match &r.encrypted {
        Some(Encrypted::Head(e)) => n += encryption_len(e),
        Some(Encrypted::Member) => n += 1,
        None => {}
    }
    for (k, v) in &r.properties {
        n += 8 + k.len() + v.len();
    }
    n
}

/// Appends one segment-record frame for `r` at `offset`.
pub fn encode_record(buf: &mut Vec<u8>, offset: u64, r: &RecordInput) {
    let start = begin_frame(buf);
    buf.extend_from_slice(&offset.to_le_bytes());
    buf.extend_from_slice(&r.publish_time.to_le_bytes());
    let mut flags = 0;
    if r.event_time.is_some() {
        flags |= FLAG_EVENT_TIME;
    }
    if r.key.is_some() {
        flags |= FLAG_KEY;
    }
    if r.producer.is_some() {
        flags |= FLAG_PRODUCER;
    }
    if r.batch.is_some() {
        flags |= FLAG_BATCH;
    }
    if r.chunk.is_some() {
        flags |= FLAG_CHUNK;
    }
    let schema_version = r.producer.as_ref().and_then(|p| p.schema_version.as_deref());
    if schema_version.is_some() {
        flags |= FLAG_SCHEMA_VERSION;
    }
    if r.encrypted.is_some() {
        flags |= FLAG_ENCRYPTED;
    }
    let flags2 = flags2(r);
    if flags2 != 0 {
        flags |= FLAG_MORE;
    }
    buf.push(flags);
    if flags2 != 0 {
        buf.push(flags2);
    }
    if let Some(t) = r.event_time {
        buf.extend_from_slice(&t.to_le_bytes());
    }
    if let Some(k) = &r.key {
        put_bytes(buf, k.as_bytes());
    }
    if let Some(k) = &r.ordering_key {
        put_bytes(buf, k);
    }
    if let Some(p) = &r.producer {
        put_bytes(buf, p.name.as_bytes());
        buf.extend_from_slice(&p.sequence_id.to_le_bytes());
    }
    if let Some(b) = r.batch {
        buf.extend_from_slice(&b.index.to_le_bytes());
        buf.extend_from_slice(&b.size.to_le_bytes());
    }
    if let Some(c) = &r.chunk {
        put_bytes(buf, c.uuid.as_bytes());
        for n in [c.index, c.count, c.total_size, c.uncompressed_size] {
            buf.extend_from_slice(&n.to_le_bytes());
        }
        buf.push(c.compression);
    }
    if let Some(v) = schema_version {
        put_bytes(buf, v);
    }
    match &r.encrypted {
        Some(Encrypted::Head(e)) => put_encryption(buf, e),
        Some(Encrypted::Member) => buf.push(ENCRYPTED_MEMBER),
        None => {}
    }
    buf.extend_from_slice(&(r.properties.len() as u32).to_le_bytes());
    for (k, v) in &r.properties {
        put_bytes(buf, k.as_bytes());
        put_bytes(buf, v.as_bytes());
    }
    put_bytes(buf, &r.payload);
    finish_frame(buf, start);
}

/// The second flags byte of `r`: 0 (and then not written) for a record without its parts.
fn flags2(r: &RecordInput) -> u8 {
    let mut f = 0;
    // The base64 flag means something only with a key: without one it is not kept.
    if r.key_base64 && r.key.is_some() {
        f |= FLAG2_KEY_BASE64;
    }
    if r.ordering_key.is_some() {
        f |= FLAG2_ORDERING_KEY;
    }
    f
}

fn encryption_len(e: &Encryption) -> usize {
    let keys: usize = e
        .keys
        .iter()
        .map(|k| {
            12 + k.name.len() + k.value.len() + k.metadata.iter().map(|(a, b)| 8 + a.len() + b.len()).sum::<usize>()
        })
        .sum();
    1 + 4 + e.algorithm.len() + 4 + e.param.len() + 1 + 4 + 4 + keys
}

fn put_encryption(buf: &mut Vec<u8>, e: &Encryption) {
    buf.push(ENCRYPTED_HEAD);
    put_bytes(buf, e.algorithm.as_bytes());
    put_bytes(buf, &e.param);
    buf.push(e.compression);
    buf.extend_from_slice(&e.uncompressed_size.to_le_bytes());
    buf.extend_from_slice(&(e.keys.len() as u32).to_le_bytes());
    for k in &e.keys {
        put_bytes(buf, k.name.as_bytes());
        put_bytes(buf, &k.value);
        buf.extend_from_slice(&(k.metadata.len() as u32).to_le_bytes());
        for (a, b) in &k.metadata {
            put_bytes(buf, a.as_bytes());
            put_bytes(buf, b.as_bytes());
        }
    }
}

fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    buf.extend_from_slice(&(b.len() as u32).to_le_bytes());
    buf.extend_from_slice(b);
}

/// Cursor over a record body with bounds checks (a valid CRC over garbage must not panic).
struct Cur<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.b.len() - self.pos < n {
            return Err(format!("record body truncated at byte {}", self.pos));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn len_prefixed(&mut self) -> Result<(usize, usize), String> {
        let n = self.u32()? as usize;
        let start = self.pos;
        self.take(n)?;
        Ok((start, n))
    }
    fn string(&mut self) -> Result<String, String> {
        let (s, n) = self.len_prefixed()?;
        String::from_utf8(self.b[s..s + n].to_vec()).map_err(|_| "invalid utf-8 in record".to_string())
    }
    /// `n` claimed items of at least `min` bytes each must fit in what is left: bounds the
    /// allocation a corrupt count could ask for.
    fn count(&mut self, min: usize) -> Result<usize, String> {
        let n = self.u32()? as usize;
        if n > (self.b.len() - self.pos) / min {
            return Err(format!("record claims {n} items"));
        }
        Ok(n)
    }
    fn pairs(&mut self) -> Result<Vec<(String, String)>, String> {
        let n = self.count(8)?;
        (0..n).map(|_| Ok((self.string()?, self.string()?))).collect()
    }
    fn encrypted(&mut self, body: &Bytes) -> Result<Encrypted, String> {
        match self.u8()? {
            ENCRYPTED_MEMBER => Ok(Encrypted::Member),
            ENCRYPTED_HEAD => {
                let algorithm = self.string()?;
                let (s, n) = self.len_prefixed()?;
                let param = body.slice(s..s + n);
                let compression = self.u8()?;
                let uncompressed_size = self.u32()?;
                let n = self.count(12)?;
                let mut keys = Vec::with_capacity(n);
                for _ in 0..n {
                    let name = self.string()?;
                    let (s, len) = self.len_prefixed()?;
                    keys.push(EncryptionKey { name, value: body.slice(s..s + len), metadata: self.pairs()? });
                }
                Ok(Encrypted::Head(Box::new(Encryption { keys, algorithm, param, compression, uncompressed_size })))
            }
            kind => Err(format!("unknown encrypted record kind {kind}")),
        }
    }
}

/// Offset of a record body without decoding the rest.
pub fn record_offset(body: &[u8]) -> Result<u64, String> {
    Cur { b: body, pos: 0 }.u64()
}

/// Publish time of a record body without decoding the rest.
pub fn record_publish_time(body: &[u8]) -> Result<i64, String> {
    let mut c = Cur { b: body, pos: 8 };
    Ok(c.u64()? as i64)
}

/// Decodes a record body; the payload is a zero-copy slice of `body`.
pub fn decode_record(body: &Bytes, segment_base: u64) -> Result<Record, String> {
    let mut c = Cur { b: body, pos: 0 };
    let offset = c.u64()?;
    let publish_time = c.u64()? as i64;
    let flags = c.u8()?;
    let flags2 = if flags & FLAG_MORE != 0 { c.u8()? } else { 0 };
    if flags2 & !(FLAG2_KEY_BASE64 | FLAG2_ORDERING_KEY) != 0 {
        return Err(format!("unknown record flags {flags:#x} {flags2:#x}"));
    }
    if flags & FLAG_MORE != 0 && flags2 == 0 {
        return Err("record has an empty second flags byte".into());
    }
    if flags & FLAG_SCHEMA_VERSION != 0 && flags & FLAG_PRODUCER == 0 {
        return Err("record has a schema version without a producer".into());
    }
    if flags2 & FLAG2_KEY_BASE64 != 0 && flags & FLAG_KEY == 0 {
        return Err("record has a base64 key flag without a key".into());
    }
    let event_time = if flags & FLAG_EVENT_TIME != 0 { Some(c.u64()? as i64) } else { None };
    let key = if flags & FLAG_KEY != 0 { Some(c.string()?) } else { None };
    let ordering_key = if flags2 & FLAG2_ORDERING_KEY != 0 {
        let (s, n) = c.len_prefixed()?;
        Some(body.slice(s..s + n))
    } else {
        None
    };
    let mut producer =
        if flags & FLAG_PRODUCER != 0 { Some(ProducerStamp::new(c.string()?, c.u64()? as i64)) } else { None };
    let batch = if flags & FLAG_BATCH != 0 { Some(BatchPos { index: c.u32()?, size: c.u32()? }) } else { None };
    let chunk = if flags & FLAG_CHUNK != 0 {
        Some(Box::new(ChunkPos {
            uuid: c.string()?,
            index: c.u32()?,
            count: c.u32()?,
            total_size: c.u32()?,
            uncompressed_size: c.u32()?,
            compression: c.u8()?,
        }))
    } else {
        None
    };
    if flags & FLAG_SCHEMA_VERSION != 0
        && let Some(p) = &mut producer
    {
        let (s, n) = c.len_prefixed()?;
        p.schema_version = Some(body[s..s + n].into());
    }
    let encrypted = if flags & FLAG_ENCRYPTED != 0 { Some(c.encrypted(body)?) } else { None };
    // Each property needs at least 8 bytes: the allocation is bounded by what the body holds.
    let properties = c.pairs()?;
    let (ps, pn) = c.len_prefixed()?;
    if c.pos != body.len() {
        return Err("trailing bytes after record payload".into());
    }
    let payload = body.slice(ps..ps + pn);
    Ok(Record {
        offset,
        segment_base,
        publish_time,
        event_time,
        key,
        key_base64: flags2 & FLAG2_KEY_BASE64 != 0,
        ordering_key,
        properties,
        payload,
        producer,
        batch,
        chunk,
        encrypted,
    })
}

/// A data frame ready for the WAL, plus the sizes of its record frames (for the segment index).
pub struct DataFrame {
    /// Shared, not copied, by the WAL, the replicas and the object log.
    pub bytes: bytes::Bytes,
    /// Position in `bytes` where the record frames (the segment bytes) start.
    pub records_at: usize,
    pub record_lens: Vec<u32>,
}

pub fn encode_data_frame(log_id: u64, segment_base: u64, first_offset: u64, records: &[RecordInput]) -> DataFrame {
    let total: usize = records.iter().map(record_frame_len).sum::<usize>() + FRAME_HEADER + WAL_DATA_HEADER;
    let mut buf = Vec::with_capacity(total);
    let start = begin_frame(&mut buf);
    buf.push(WAL_DATA);
    buf.extend_from_slice(&log_id.to_le_bytes());
    buf.extend_from_slice(&segment_base.to_le_bytes());
    buf.extend_from_slice(&(records.len() as u32).to_le_bytes());
    let records_at = buf.len();
    let mut record_lens = Vec::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        let before = buf.len();
        encode_record(&mut buf, first_offset + i as u64, r);
        record_lens.push((buf.len() - before) as u32);
    }
    finish_frame(&mut buf, start);
    DataFrame { bytes: buf.into(), records_at, record_lens }
}

/// Size of the data frame [`encode_data_frame`] would produce.
pub fn data_frame_len(records: &[RecordInput]) -> usize {
    records.iter().map(record_frame_len).sum::<usize>() + FRAME_HEADER + WAL_DATA_HEADER
}

pub fn encode_aux_frame(log_id: u64, data: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(FRAME_HEADER + 9 + data.len());
    let start = begin_frame(&mut buf);
    buf.push(WAL_AUX);
    buf.extend_from_slice(&log_id.to_le_bytes());
    buf.extend_from_slice(data);
    finish_frame(&mut buf, start);
    buf
}

/// A padding frame of `total` bytes (header included; at least `FRAME_HEADER + 1`).
pub fn encode_pad_frame(total: usize) -> Vec<u8> {
    let mut buf = Vec::with_capacity(total);
    let start = begin_frame(&mut buf);
    buf.push(WAL_PAD);
    buf.resize(total, 0);
    finish_frame(&mut buf, start);
    buf
}

pub fn encode_drop_frame(log_id: u64) -> Vec<u8> {
    let mut buf = Vec::with_capacity(FRAME_HEADER + 9);
    let start = begin_frame(&mut buf);
    buf.push(WAL_DROP);
    buf.extend_from_slice(&log_id.to_le_bytes());
    finish_frame(&mut buf, start);
    buf
}

/// A decoded WAL frame body (borrowing the body).
#[derive(Debug, PartialEq, Eq)]
pub enum WalEntry<'a> {
    /// `records` is the concatenation of `count` segment-record frames.
    Data {
        log_id: u64,
        segment_base: u64,
        count: u32,
        records: &'a [u8],
    },
    Aux {
        log_id: u64,
        data: &'a [u8],
    },
    Drop {
        log_id: u64,
    },
    Pad,
}

pub fn decode_wal_body(body: &[u8]) -> Result<WalEntry<'_>, String> {
    let mut c = Cur { b: body, pos: 0 };
    match c.u8()? {
        WAL_DATA => {
            let log_id = c.u64()?;
            let segment_base = c.u64()?;
            let count = c.u32()?;
            Ok(WalEntry::Data { log_id, segment_base, count, records: &body[c.pos..] })
        }
        WAL_AUX => {
            let log_id = c.u64()?;
            Ok(WalEntry::Aux { log_id, data: &body[c.pos..] })
        }
        WAL_DROP => {
            let log_id = c.u64()?;
            if c.pos != body.len() {
                return Err("trailing bytes after drop record".into());
            }
            Ok(WalEntry::Drop { log_id })
        }
        WAL_PAD => Ok(WalEntry::Pad),
        t => Err(format!("unknown wal record type {t}")),
    }
}

/// Splits a run of record frames (a data frame's records) into `(frame start, frame len)`.
pub fn split_records(mut buf: &[u8]) -> Result<Vec<(usize, usize)>, String> {
    let mut out = Vec::new();
    let mut pos = 0;
    while !buf.is_empty() {
        match parse_frame(buf) {
            FrameParse::Complete { total } => {
                out.push((pos, total));
                pos += total;
                buf = &buf[total..];
            }
            FrameParse::Incomplete { .. } => return Err("record frame truncated inside a wal frame".into()),
            FrameParse::Corrupt(e) => return Err(e),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_input() -> impl Strategy<Value = RecordInput> {
        (
            any::<i64>(),
            proptest::option::of(any::<i64>()),
            proptest::option::of(".{0,20}"),
            proptest::collection::vec((".{0,10}", ".{0,10}"), 0..4),
            proptest::collection::vec(any::<u8>(), 0..300),
            proptest::option::of((
                ".{0,20}",
                any::<i64>(),
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..12)),
            )),
            proptest::option::of((any::<u32>(), any::<u32>())),
            proptest::option::of((".{0,36}", any::<[u32; 4]>(), any::<u8>())),
            proptest::option::of(proptest::option::of((
                ".{0,12}",
                proptest::collection::vec(any::<u8>(), 0..16),
                any::<(u8, u32)>(),
                proptest::collection::vec(
                    (
                        ".{0,8}",
                        proptest::collection::vec(any::<u8>(), 0..40),
                        proptest::collection::vec((".{0,6}", ".{0,6}"), 0..3),
                    ),
                    0..3,
                ),
            ))),
            any::<bool>(),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
        )
            .prop_map(
                |(
                    publish_time,
                    event_time,
                    key,
                    properties,
                    payload,
                    producer,
                    batch,
                    chunk,
                    encrypted,
                    key_base64,
                    ordering_key,
                )| RecordInput {
                    publish_time,
                    event_time,
                    key_base64: key_base64 && key.is_some(),
                    key,
                    ordering_key: ordering_key.map(Bytes::from),
                    properties,
                    payload: Bytes::from(payload),
                    producer: producer.map(|(name, sequence_id, version)| ProducerStamp {
                        name,
                        sequence_id,
                        schema_version: version.map(Vec::into_boxed_slice),
                    }),
                    batch: batch.map(|(index, size)| BatchPos { index, size }),
                    chunk: chunk.map(|(uuid, [index, count, total_size, uncompressed_size], compression)| {
                        Box::new(ChunkPos { uuid, index, count, total_size, compression, uncompressed_size })
                    }),
                    encrypted: encrypted.map(|e| match e {
                        None => Encrypted::Member,
                        Some((algorithm, param, (compression, uncompressed_size), keys)) => {
                            Encrypted::Head(Box::new(Encryption {
                                keys: keys
                                    .into_iter()
                                    .map(|(name, value, metadata)| EncryptionKey {
                                        name,
                                        value: value.into(),
                                        metadata,
                                    })
                                    .collect(),
                                algorithm,
                                param: param.into(),
                                compression,
                                uncompressed_size,
                            }))
                        }
                    }),
                },
            )
    }

    fn body_of(frame: &[u8]) -> Bytes {
        Bytes::copy_from_slice(&frame[FRAME_HEADER..])
    }

    proptest! {
        #[test]
        fn record_round_trips(r in arb_input(), offset in any::<u64>(), base in any::<u64>()) {
            let mut buf = Vec::new();
            encode_record(&mut buf, offset, &r);
            prop_assert_eq!(buf.len(), record_frame_len(&r));
            prop_assert_eq!(parse_frame(&buf), FrameParse::Complete { total: buf.len() });
            let rec = decode_record(&body_of(&buf), base).unwrap();
            prop_assert_eq!(rec.offset, offset);
            prop_assert_eq!(rec.segment_base, base);
            prop_assert_eq!(record_publish_time(&buf[FRAME_HEADER..]).unwrap(), r.publish_time);
            prop_assert_eq!(rec.publish_time, r.publish_time);
            prop_assert_eq!(rec.event_time, r.event_time);
            prop_assert_eq!(rec.key, r.key);
            prop_assert_eq!(rec.key_base64, r.key_base64);
            prop_assert_eq!(rec.ordering_key, r.ordering_key);
            prop_assert_eq!(rec.properties, r.properties);
            prop_assert_eq!(rec.payload, r.payload);
            prop_assert_eq!(rec.producer, r.producer);
            prop_assert_eq!(rec.batch, r.batch);
            prop_assert_eq!(rec.chunk, r.chunk);
            prop_assert_eq!(rec.encrypted, r.encrypted);
        }

        #[test]
        fn any_flipped_byte_is_detected(r in arb_input(), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
            let mut buf = Vec::new();
            encode_record(&mut buf, 7, &r);
            let i = pos.index(buf.len());
            buf[i] ^= 1 << bit;
            let complete = matches!(parse_frame(&buf), FrameParse::Complete { .. });
            prop_assert!(!complete);
        }

        #[test]
        fn truncated_frame_is_incomplete(r in arb_input(), cut in any::<prop::sample::Index>()) {
            let mut buf = Vec::new();
            encode_record(&mut buf, 7, &r);
            let n = cut.index(buf.len());
            let incomplete = matches!(parse_frame(&buf[..n]), FrameParse::Incomplete { .. });
            prop_assert!(incomplete);
        }

        #[test]
        fn data_frame_round_trips(rs in proptest::collection::vec(arb_input(), 1..8), log in any::<u64>(), base in any::<u64>(), first in 0u64..1 << 40) {
            let f = encode_data_frame(log, base, first, &rs);
            prop_assert_eq!(f.bytes.len(), data_frame_len(&rs));
            let FrameParse::Complete { total } = parse_frame(&f.bytes) else { panic!("frame") };
            prop_assert_eq!(total, f.bytes.len());
            let WalEntry::Data { log_id, segment_base, count, records } = decode_wal_body(&f.bytes[FRAME_HEADER..]).unwrap() else { panic!("data") };
            prop_assert_eq!((log_id, segment_base, count as usize), (log, base, rs.len()));
            prop_assert_eq!(records, &f.bytes[f.records_at..]);
            let parts = split_records(records).unwrap();
            prop_assert_eq!(parts.iter().map(|p| p.1 as u32).collect::<Vec<_>>(), f.record_lens.clone());
            for (i, (s, n)) in parts.into_iter().enumerate() {
                let rec = decode_record(&body_of(&records[s..s + n]), base).unwrap();
                prop_assert_eq!(rec.offset, first + i as u64);
                prop_assert_eq!(&rec.payload, &rs[i].payload);
            }
        }

        #[test]
        fn aux_and_drop_round_trip(log in any::<u64>(), data in proptest::collection::vec(any::<u8>(), 0..100)) {
            let a = encode_aux_frame(log, &data);
            prop_assert_eq!(decode_wal_body(&a[FRAME_HEADER..]).unwrap(), WalEntry::Aux { log_id: log, data: &data });
            let d = encode_drop_frame(log);
            prop_assert_eq!(decode_wal_body(&d[FRAME_HEADER..]).unwrap(), WalEntry::Drop { log_id: log });
        }

        #[test]
        fn a_schema_version_flag_without_a_producer_is_corrupt(r in arb_input()) {
            let r = RecordInput { producer: None, ..r };
            let mut buf = Vec::new();
            encode_record(&mut buf, 7, &r);
            let mut body = body_of(&buf).to_vec();
            body[16] |= FLAG_SCHEMA_VERSION;
            let err = decode_record(&Bytes::from(body), 0).unwrap_err();
            prop_assert!(err.contains("schema version"), "{}", err);
        }

        #[test]
        fn garbage_never_panics(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_frame(&b);
            let _ = decode_record(&Bytes::from(b.clone()), 0);
            let _ = decode_wal_body(&b);
        }
    }

    #[test]
    fn a_key_base64_flag_without_a_key_is_not_kept() {
        let r = RecordInput { key: None, key_base64: true, payload: Bytes::from_static(b"x"), ..Default::default() };
        let mut buf = Vec::new();
        encode_record(&mut buf, 7, &r);
        assert_eq!(buf.len(), record_frame_len(&r));
        // Without a second flags byte: the record reads as one written before the flag existed.
        assert_eq!(buf[FRAME_HEADER + 16] & FLAG_MORE, 0);
        assert!(!decode_record(&body_of(&buf), 0).unwrap().key_base64);
    }

    #[test]
    fn a_record_without_the_new_parts_is_written_as_before() {
        // A record written before the second flags byte existed: offset, publish time, flags
        // (a key), the key, no properties, the payload.
        let mut body = Vec::new();
        body.extend_from_slice(&9u64.to_le_bytes());
        body.extend_from_slice(&5i64.to_le_bytes());
        body.push(FLAG_KEY);
        put_bytes(&mut body, b"k");
        body.extend_from_slice(&0u32.to_le_bytes());
        put_bytes(&mut body, b"p");
        let old = Bytes::from(body);
        let rec = decode_record(&old, 0).unwrap();
        assert_eq!((rec.key.as_deref(), rec.key_base64, rec.ordering_key.as_ref()), (Some("k"), false, None));
        let mut again = Vec::new();
        encode_record(&mut again, 9, &rec.into_input());
        assert_eq!(&again[FRAME_HEADER..], &old[..]);
    }

    #[test]
    fn zero_filled_region_is_corrupt() {
        assert!(matches!(parse_frame(&[0u8; 64]), FrameParse::Corrupt(_)));
    }
}
