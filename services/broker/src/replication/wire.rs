//! The body of a replica append (owner → peer): the batch's ranges, the trims the owner has for
//! the peer (logs uploaded below an offset, which the peer may drop), then the log object as
//! the writer built it (`MAGIC` + WAL data frames). Integers big-endian.
//!
//! `[u32 n][n × (u64 log_id, u64 start, u64 end, i64 epoch)][u32 t][t × (u64 log_id, u64 below)][object]`

use bytes::{Buf, BufMut, Bytes, BytesMut};
use magnetar_storage::ObjectRange;

#[derive(Debug)]
pub(crate) struct AppendBody {
    pub ranges: Vec<ObjectRange>,
    pub trims: Vec<(u64, u64)>,
    pub object: Bytes,
}

/// The body up to its object: sent ahead of the object as it is, not copied behind this.
pub(crate) fn encode_head(ranges: &[ObjectRange], trims: &[(u64, u64)]) -> Bytes {
    let mut b = BytesMut::with_capacity(8 + ranges.len() * 32 + trims.len() * 16);
    b.put_u32(ranges.len() as u32);
    for r in ranges {
        b.put_u64(r.log_id);
        b.put_u64(r.start);
        b.put_u64(r.end);
        b.put_i64(r.epoch);
    }
    b.put_u32(trims.len() as u32);
    for (log_id, below) in trims {
        b.put_u64(*log_id);
        b.put_u64(*below);
    }
    b.freeze()
}

/// The whole body in one buffer: `head` then `object`.
pub(crate) fn join(head: &[u8], object: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(head.len() + object.len());
    b.extend_from_slice(head);
    b.extend_from_slice(object);
    b.freeze()
}

pub(crate) fn decode(mut body: Bytes) -> Result<AppendBody, String> {
    let count = |body: &mut Bytes, each: usize, what: &str| -> Result<usize, String> {
        if body.remaining() < 4 {
            return Err(format!("replica append truncated before its {what}"));
        }
        let n = body.get_u32() as usize;
        if body.remaining() < n.saturating_mul(each) {
            return Err(format!("replica append announces {n} {what} but is shorter"));
        }
        Ok(n)
    };
    let n = count(&mut body, 32, "ranges")?;
    let ranges = (0..n)
        .map(|_| ObjectRange {
            log_id: body.get_u64(),
            start: body.get_u64(),
            end: body.get_u64(),
            epoch: body.get_i64(),
        })
        .collect();
    let t = count(&mut body, 16, "trims")?;
    let trims = (0..t).map(|_| (body.get_u64(), body.get_u64())).collect();
    Ok(AppendBody { ranges, trims, object: body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let ranges = vec![ObjectRange { log_id: 7, start: 10, end: 12, epoch: 3 }];
        let body = join(&encode_head(&ranges, &[(7, 5)]), b"MGLOGOB1xyz");
        let d = decode(body.clone()).unwrap();
        assert_eq!(d.ranges, ranges);
        assert_eq!(d.trims, vec![(7, 5)]);
        assert_eq!(&d.object[..], b"MGLOGOB1xyz");
        assert!(decode(body.slice(..20)).unwrap_err().contains("shorter"));
        assert!(decode(Bytes::from_static(b"\0\0")).unwrap_err().contains("truncated"));
    }
}
