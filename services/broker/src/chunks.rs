//! Joining chunked messages for consumers that receive whole messages (WebSocket consumers and
//! readers; binary consumers join chunks themselves).
//!
//! A producer with chunking on splits a message larger than the broker's message size limit
//! into chunks, each stored as a record of its own (`ChunkPos`). A session holds the chunks it
//! is given until the last one arrives, then delivers one message under the last chunk's id and
//! remembers which offsets it covers, so that acknowledging or redelivering that id covers every
//! chunk. Chunks of one message reach one consumer only on Exclusive and Failover subscriptions
//! and readers, as in Pulsar; the join is not used on Shared ones.
//!
//! What cannot be joined is never acknowledged by the joiner on a guess: a chunk without its
//! message's earlier chunks is given back for redelivery (they may still come, redelivered),
//! except after [`ORPHAN_REDELIVERIES`] rounds, when it is taken for an orphan (its message's
//! start was acknowledged or never stored) and dropped.

use crate::subscriptions::PulledMessage;
use magnetar_storage::{ChunkPos, Record};
use std::collections::HashMap;

/// Messages one session joins at a time (Pulsar's consumer default `maxPendingChunkedMessage`);
/// the oldest beyond it is given back for redelivery.
const MAX_PARTIAL: usize = 10;
/// Redeliveries after which a chunk whose message's start never arrives is dropped.
pub(crate) const ORPHAN_REDELIVERIES: u32 = 5;

/// What the session does with what the joiner gives back.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Whole messages to deliver.
    pub whole: Vec<PulledMessage>,
    /// Offsets to redeliver later, by the session's partition index.
    pub redeliver: Vec<(usize, Vec<u64>)>,
    /// Offsets that can never be delivered (acknowledged by a consumer, skipped by a reader).
    pub drop: Vec<(usize, Vec<u64>)>,
}

struct Partial {
    chunks: Vec<PulledMessage>,
    /// Order of arrival, to find the oldest.
    started: u64,
}

pub(crate) struct Joiner {
    /// By (partition, producer, uuid).
    partial: HashMap<(usize, String, String), Partial>,
    /// Joined messages delivered and not acknowledged: (partition, last chunk's offset) → the
    /// offsets of all its chunks.
    delivered: HashMap<(usize, u64), Vec<u64>>,
    limit: usize,
    clock: u64,
}

fn chunk_of(m: &PulledMessage) -> &ChunkPos {
    m.record.chunk.as_ref().expect("only chunks are offered")
}

impl Joiner {
    pub fn new(limit: usize) -> Joiner {
        Joiner { partial: HashMap::new(), delivered: HashMap::new(), limit, clock: 0 }
    }

    /// Takes one chunk delivered from partition `sub`.
    pub fn offer(&mut self, sub: usize, m: PulledMessage, out: &mut Outcome) {
        let c = chunk_of(&m).clone();
        let producer = m.record.producer.as_ref().map(|p| p.name.clone()).unwrap_or_default();
        let key = (sub, producer, c.uuid.clone());
        let expected = self.partial.get(&key).map_or(0, |p| p.chunks.len() as u32);
        if c.index < expected {
            // Already held (a redelivery of a chunk whose ack timed out, or a chunk a producer
            // sent again after a reconnect): the held one stands for it.
            if !self.partial[&key].chunks.iter().any(|h| h.record.offset == m.record.offset) {
                out.drop.push((sub, vec![m.record.offset]));
            }
            return;
        }
        if c.index > expected {
            if m.redelivery_count >= ORPHAN_REDELIVERIES {
                tracing::warn!(offset = m.record.offset, uuid = %c.uuid, chunk = c.index, "dropping a chunk whose message's earlier chunks never came");
                out.drop.push((sub, vec![m.record.offset]));
            } else {
                out.redeliver.push((sub, vec![m.record.offset]));
            }
            return;
        }
        if c.index == 0 {
            if self.partial.len() >= MAX_PARTIAL {
                self.give_back_oldest(out);
            }
            self.clock += 1;
            self.partial.insert(key.clone(), Partial { chunks: Vec::new(), started: self.clock });
        }
        let partial = self.partial.get_mut(&key).expect("started above or before");
        partial.chunks.push(m);
        if !c.is_last() {
            return;
        }
        let chunks = self.partial.remove(&key).expect("present").chunks;
        let offsets: Vec<u64> = chunks.iter().map(|m| m.record.offset).collect();
        match join(&chunks, self.limit) {
            Ok(record) => {
                let last = chunks.last().expect("at least the last chunk");
                self.delivered.insert((sub, last.record.offset), offsets);
                out.whole.push(PulledMessage { id: last.id, record, redelivery_count: last.redelivery_count });
            }
            Err(reason) => {
                tracing::warn!(uuid = %c.uuid, %reason, "a chunked message cannot be joined; it is dropped");
                out.drop.push((sub, offsets));
            }
        }
    }

    fn give_back_oldest(&mut self, out: &mut Outcome) {
        let Some(key) = self.partial.iter().min_by_key(|(_, p)| p.started).map(|(k, _)| k.clone()) else { return };
        let p = self.partial.remove(&key).expect("found above");
        out.redeliver.push((key.0, p.chunks.iter().map(|m| m.record.offset).collect()));
    }

    /// The offsets a delivered message's id covers on partition `sub`: all its chunks for a
    /// joined message (forgotten then: the caller acknowledges or redelivers them), else itself.
    pub fn covered(&mut self, sub: usize, offset: u64) -> Vec<u64> {
        self.delivered.remove(&(sub, offset)).unwrap_or_else(|| vec![offset])
    }

    /// A cumulative acknowledgement through `offset` on `sub` covers every chunk below it.
    pub fn acked_through(&mut self, sub: usize, offset: u64) {
        self.delivered.retain(|(s, last), _| *s != sub || *last > offset);
        self.partial.retain(|(s, _, _), p| *s != sub || p.chunks.iter().any(|m| m.record.offset > offset));
    }

    /// Everything unacknowledged is redelivered: nothing held stays valid.
    pub fn reset(&mut self) {
        self.partial.clear();
        self.delivered.clear();
    }
}

/// One record holding the whole message: the chunks' payloads in order, decompressed, under the
/// last chunk's offset (its id) with the first chunk's key, properties and times.
fn join(chunks: &[PulledMessage], limit: usize) -> Result<Record, String> {
    let first = &chunks[0].record;
    let c = chunk_of(&chunks[0]);
    let size: usize = chunks.iter().map(|m| m.record.payload.len()).sum();
    if size != c.total_size as usize {
        return Err(format!("its chunks hold {size} bytes, the producer announced {}", c.total_size));
    }
    if size > limit {
        return Err(format!("{size} bytes exceed max_chunked_message_bytes = {limit}"));
    }
    let mut whole = Vec::with_capacity(size);
    for m in chunks {
        whole.extend_from_slice(&m.record.payload);
    }
    let codec = magnetar_protocol::proto::CompressionType::try_from(i32::from(c.compression))
        .map_err(|_| format!("unknown compression codec {}", c.compression))?;
    let payload = magnetar_protocol::compression::decompress(codec, &whole, c.uncompressed_size as usize, limit)
        .map_err(|e| e.to_string())?;
    let last = &chunks[chunks.len() - 1].record;
    Ok(Record {
        offset: last.offset,
        segment_base: last.segment_base,
        payload: payload.into(),
        chunk: None,
        batch: None,
        ..first.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use magnetar_core::MessageId;
    use magnetar_storage::ProducerStamp;

    fn chunk(offset: u64, uuid: &str, index: u32, count: u32, body: &str, redelivery_count: u32) -> PulledMessage {
        let record = Record {
            offset,
            payload: bytes::Bytes::from(body.to_string()),
            producer: Some(ProducerStamp::new("p", 1)),
            chunk: Some(Box::new(ChunkPos {
                uuid: uuid.into(),
                index,
                count,
                total_size: 6,
                compression: 0,
                uncompressed_size: 6,
            })),
            ..Record::default()
        };
        PulledMessage { id: MessageId::new(0, offset, -1), record, redelivery_count }
    }

    #[test]
    fn chunks_join_into_one_message_under_the_last_chunks_id() {
        let mut j = Joiner::new(100);
        let mut out = Outcome::default();
        j.offer(0, chunk(3, "a", 0, 3, "ab", 0), &mut out);
        j.offer(0, chunk(5, "a", 1, 3, "cd", 0), &mut out);
        assert!(out.whole.is_empty());
        j.offer(0, chunk(6, "a", 2, 3, "ef", 0), &mut out);
        assert_eq!(out.whole.len(), 1);
        assert_eq!(&out.whole[0].record.payload[..], b"abcdef");
        assert_eq!(out.whole[0].id.offset(), 6);
        assert_eq!(j.covered(0, 6), vec![3, 5, 6]);
        assert_eq!(j.covered(0, 6), vec![6], "forgotten once acknowledged");
        assert_eq!(j.covered(0, 9), vec![9], "a plain message covers itself");
    }

    #[test]
    fn interleaved_messages_join_apart_and_a_chunk_held_twice_is_not_dropped() {
        let mut j = Joiner::new(100);
        let mut out = Outcome::default();
        j.offer(0, chunk(1, "a", 0, 2, "abc", 0), &mut out);
        j.offer(0, chunk(2, "b", 0, 2, "123", 0), &mut out);
        j.offer(0, chunk(1, "a", 0, 2, "abc", 1), &mut out);
        j.offer(0, chunk(3, "b", 1, 2, "456", 0), &mut out);
        j.offer(0, chunk(4, "a", 1, 2, "def", 0), &mut out);
        let bodies: Vec<_> = out.whole.iter().map(|m| m.record.payload.clone()).collect();
        assert_eq!(bodies, vec![&b"123456"[..], &b"abcdef"[..]]);
        assert!(out.drop.is_empty() && out.redeliver.is_empty(), "{out:?}");
        // A copy of a chunk at another offset (sent again by its producer) is dropped.
        j.offer(0, chunk(5, "c", 0, 2, "abc", 0), &mut out);
        j.offer(0, chunk(6, "c", 0, 2, "abc", 0), &mut out);
        assert_eq!(out.drop, vec![(0, vec![6])]);
    }

    #[test]
    fn a_chunk_without_its_start_is_redelivered_then_dropped_as_an_orphan() {
        let mut j = Joiner::new(100);
        let mut out = Outcome::default();
        j.offer(0, chunk(7, "a", 1, 2, "def", 0), &mut out);
        assert_eq!(out.redeliver, vec![(0, vec![7])]);
        j.offer(0, chunk(7, "a", 1, 2, "def", ORPHAN_REDELIVERIES), &mut out);
        assert_eq!(out.drop, vec![(0, vec![7])]);
    }

    #[test]
    fn a_message_whose_chunks_do_not_add_up_is_dropped_and_too_many_partial_ones_are_given_back() {
        let mut j = Joiner::new(100);
        let mut out = Outcome::default();
        j.offer(0, chunk(1, "a", 0, 2, "ab", 0), &mut out);
        j.offer(0, chunk(2, "a", 1, 2, "c", 0), &mut out);
        assert_eq!(out.drop, vec![(0, vec![1, 2])]);
        let mut out = Outcome::default();
        for i in 0..=MAX_PARTIAL as u64 {
            j.offer(0, chunk(10 + i, &format!("u{i}"), 0, 2, "abc", 0), &mut out);
        }
        assert_eq!(out.redeliver, vec![(0, vec![10])], "the oldest is given back");
        let mut small = Joiner::new(4);
        let mut out = Outcome::default();
        small.offer(0, chunk(1, "a", 0, 2, "abc", 0), &mut out);
        small.offer(0, chunk(2, "a", 1, 2, "def", 0), &mut out);
        assert_eq!(out.drop, vec![(0, vec![1, 2])], "larger than the limit");
    }
}
