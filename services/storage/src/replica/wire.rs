//! What a peer returns to a recovering owner, and the owner's merge of several peers' answers.

use super::*;

/// The wire form of recovered frames: repeated `[i64 epoch][u64 start][u64 end][u32 len][frame]`,
/// big endian.
pub fn encode_frames(frames: &[StoredFrame]) -> Bytes {
    let mut buf = BytesMut::with_capacity(frames.iter().map(|f| WIRE_HEADER + f.frame.len()).sum());
    for f in frames {
        buf.put_i64(f.epoch);
        buf.put_u64(f.start);
        buf.put_u64(f.end);
        buf.put_u32(f.frame.len() as u32);
        buf.put_slice(&f.frame);
    }
    buf.freeze()
}

/// Reads [`encode_frames`]' form back, checking every length, every frame's checksum and that each
/// frame holds the offsets it is labelled with.
pub fn decode_frames(body: Bytes) -> Result<Vec<StoredFrame>> {
    let bad = |pos: usize, detail: String| corrupt("recovered replica frames", pos, detail);
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        let h = body.get(pos..pos + WIRE_HEADER).ok_or_else(|| bad(pos, "truncated frame header".into()))?;
        let epoch = i64::from_be_bytes(h[0..8].try_into().expect("8 bytes"));
        let start = u64::from_be_bytes(h[8..16].try_into().expect("8 bytes"));
        let end = u64::from_be_bytes(h[16..24].try_into().expect("8 bytes"));
        let len = u32::from_be_bytes(h[24..28].try_into().expect("4 bytes")) as usize;
        let at = pos + WIRE_HEADER;
        let frame = body.get(at..at + len).ok_or_else(|| bad(pos, format!("frame of {len} bytes truncated")))?;
        if frame_len(frame).map_err(|e| bad(at, e))? != len {
            return Err(bad(at, "frame length disagrees with its header".into()));
        }
        let (_, s, e) = frame_span(frame).map_err(|e| bad(at, e))?;
        if (s, e) != (start, end) {
            return Err(bad(at, format!("frame holds {s}..{e}, labelled {start}..{end}")));
        }
        out.push(StoredFrame { epoch, start, end, frame: body.slice(at..at + len) });
        pos = at + len;
    }
    Ok(out)
}

/// The recovering owner's merge of the frames several peers returned: the records from `next` on,
/// one per offset, contiguous.
///
/// At each offset the covering frame of the highest epoch wins, among those whose epoch is at
/// least the one used for the previous offset; the merge stops at the first offset no such frame
/// covers. A lower epoch's records after a higher epoch's are never used: an owner of the newer
/// epoch recovered every acknowledged record of the older ones before it wrote. Copies of one
/// frame from several peers are fine.
pub fn merge_recovered(next: u64, frames: Vec<StoredFrame>) -> Result<Vec<Record>> {
    let mut decoded: HashMap<usize, Vec<Record>> = HashMap::new();
    let mut log: Option<u64> = None;
    let mut out = Vec::new();
    let (mut offset, mut min_epoch) = (next, i64::MIN);
    loop {
        let covering = |f: &&StoredFrame| f.start <= offset && offset < f.end && f.epoch >= min_epoch;
        let Some((i, best)) = frames.iter().enumerate().filter(|(_, f)| covering(f)).max_by_key(|(_, f)| f.epoch)
        else {
            break;
        };
        // The winner keeps winning until its end or until a frame of a newer epoch starts.
        let run_end = frames
            .iter()
            .filter(|f| f.epoch > best.epoch && f.start > offset && f.start < best.end)
            .map(|f| f.start)
            .min()
            .unwrap_or(best.end);
        if let std::collections::hash_map::Entry::Vacant(v) = decoded.entry(i) {
            let (log_id, records) = decode_data_frame(&best.frame)?;
            if *log.get_or_insert(log_id) != log_id {
                return Err(corrupt("recovered replica frames", 0, format!("frames of logs {log:?} and {log_id}")));
            }
            v.insert(records);
        }
        let records = &decoded[&i];
        for o in offset..run_end {
            let r = records.get((o - best.start) as usize).filter(|r| r.offset == o).ok_or_else(|| {
                corrupt("recovered replica frames", 0, format!("frame {}..{} lacks offset {o}", best.start, best.end))
            })?;
            out.push(r.clone());
        }
        offset = run_end;
        min_epoch = best.epoch;
    }
    Ok(out)
}

/// A WAL data frame of `records` at offsets from `first_offset` (for tests of the replica path).
#[doc(hidden)]
pub fn encode_test_frame(log_id: u64, first_offset: u64, records: &[RecordInput]) -> Bytes {
    codec::encode_data_frame(log_id, first_offset, first_offset, records).bytes
}
