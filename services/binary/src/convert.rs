//! Stored records to Pulsar messages and Pulsar messages to the broker's publish input.
//!
//! A SEND is decompressed and, when it is a batch, split into its messages: every message is
//! stored as its own record with its place in the batch, so that WebSocket, HTTP pull and the
//! console read it as they read any other, under the id `L:E:i` its producer was told
//! (docs/binary-protocol.md, "Batches"). A batch whose messages are delivered together goes
//! out as one uncompressed batch MESSAGE; any other record goes out as a single MESSAGE under the
//! id `L:E+i` (Pulsar's clients give a non-batch MESSAGE no batch index), with the producer's
//! name and sequence id when it was stored with them.

use bytes::Bytes;
use magnetar_broker::{PublishMessage, PulledMessage};
use magnetar_core::MessageId;
use magnetar_protocol::batch::SingleMessage;
use magnetar_protocol::proto::{
    CompressionType, EncryptionKeys, KeyValue, MessageIdData, MessageMetadata, SingleMessageMetadata,
};
use magnetar_protocol::{Payload, ProtocolError};
use magnetar_storage::{BatchPos, ChunkPos, Encrypted, Encryption, EncryptionKey, ProducerStamp};

/// The broker's messages for one SEND, in order, with the producer's name and sequence ids
/// (the batch's sequence id counts up from the SEND's unless a message carries its own).
pub fn publish_messages(producer: &str, payload: &Payload, limit: usize) -> Result<Vec<PublishMessage>, ProtocolError> {
    let md = payload.metadata();
    let deliver_at = md.deliver_at_time.filter(|t| *t > 0);
    let base_seq = md.sequence_id as i64;
    if !payload.is_batch() {
        return Ok(vec![single(producer, md, payload.uncompressed(limit)?)]);
    }
    let singles = payload.split_batch(limit)?;
    let size = singles.len() as u32;
    Ok(singles
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let smm = m.metadata;
            let seq = smm.sequence_id.map_or(base_seq + i as i64, |s| s as i64);
            PublishMessage {
                key_base64: smm.partition_key_b64_encoded == Some(true) && smm.partition_key.is_some(),
                key: smm.partition_key,
                ordering_key: smm.ordering_key.map(Bytes::from),
                properties: smm.properties.into_iter().map(|kv| (kv.key, kv.value)).collect(),
                payload: m.payload,
                event_time: smm.event_time.filter(|t| *t > 0).map(|t| t as i64),
                deliver_at,
                deliver_after_ms: None,
                producer: Some(stamp(producer, seq, md)),
                batch: Some(BatchPos { index: i as u32, size }),
                chunk: None,
                encrypted: None,
            }
        })
        .collect())
}

/// Largest encrypted batch taken: its members are records of their own, so a claimed size is
/// bounded like any batch a frame could hold (Pulsar's clients default to 1,000 messages).
const MAX_ENCRYPTED_BATCH: i32 = 100_000;

/// The broker's messages for an end-to-end encrypted SEND, which the broker cannot open: the
/// first holds the payload as sent (compressed, then encrypted) with what decrypts it; a batch
/// of `n` adds `n - 1` empty members so that every message has its offset and id `L:E:i`
/// (docs/binary-protocol.md, "End-to-end encrypted messages"). The key, properties and event
/// time are the SEND's metadata's (Pulsar does not encrypt them; in a batch, each message's own
/// are inside the encrypted payload). Refused with a reason when the batch size is not
/// plausible.
pub fn encrypted_messages(producer: &str, payload: &Payload) -> Result<Vec<PublishMessage>, String> {
    let md = payload.metadata();
    let size = match md.num_messages_in_batch {
        None => None,
        Some(n) if (1..=MAX_ENCRYPTED_BATCH).contains(&n) => Some(n as u32),
        Some(n) => return Err(format!("an encrypted batch of {n} messages: batches hold 1 to {MAX_ENCRYPTED_BATCH}")),
    };
    let mut head = single(producer, md, Bytes::clone(payload.data()));
    head.batch = size.map(|size| BatchPos { index: 0, size });
    head.encrypted = Some(encryption_of(payload)?);
    let members = (1..size.unwrap_or(1)).map(|index| PublishMessage {
        key: head.key.clone(),
        key_base64: head.key_base64,
        ordering_key: head.ordering_key.clone(),
        deliver_at: head.deliver_at,
        producer: Some(stamp(producer, md.sequence_id as i64 + i64::from(index), md)),
        batch: Some(BatchPos { index, size: size.unwrap_or(1) }),
        encrypted: Some(Encrypted::Member),
        ..PublishMessage::default()
    });
    Ok(std::iter::once(head.clone()).chain(members).collect())
}

/// What decrypts an encrypted SEND's payload, from its metadata.
fn encryption_of(payload: &Payload) -> Result<Encrypted, String> {
    let md = payload.metadata();
    let compression = payload.compression().map_err(|e| e.to_string())?;
    Ok(Encrypted::Head(Box::new(Encryption {
        keys: md
            .encryption_keys
            .iter()
            .map(|k| EncryptionKey {
                name: k.key.clone(),
                value: Bytes::copy_from_slice(&k.value),
                metadata: k.metadata.iter().map(|kv| (kv.key.clone(), kv.value.clone())).collect(),
            })
            .collect(),
        algorithm: md.encryption_algo.clone().unwrap_or_default(),
        param: md.encryption_param.clone().map(Bytes::from).unwrap_or_default(),
        compression: compression as i32 as u8,
        uncompressed_size: md.uncompressed_size(),
    })))
}

/// One chunk of an end-to-end encrypted chunked message: each chunk is encrypted on its own by
/// its producer, so it is stored as a chunk (`chunk_message`) holding what decrypts it.
pub fn encrypted_chunk(producer: &str, payload: &Payload, max_whole: usize) -> Result<PublishMessage, String> {
    let mut m = chunk_message(producer, payload, max_whole)?;
    m.encrypted = Some(encryption_of(payload)?);
    Ok(m)
}

/// A message sent on its own (not in a batch) with its metadata, holding `body`.
fn single(producer: &str, md: &MessageMetadata, body: Bytes) -> PublishMessage {
    PublishMessage {
        key: md.partition_key.clone(),
        key_base64: md.partition_key_b64_encoded == Some(true) && md.partition_key.is_some(),
        ordering_key: md.ordering_key.clone().map(Bytes::from),
        properties: md.properties.iter().map(|kv| (kv.key.clone(), kv.value.clone())).collect(),
        payload: body,
        event_time: md.event_time.filter(|t| *t > 0).map(|t| t as i64),
        deliver_at: md.deliver_at_time.filter(|t| *t > 0),
        deliver_after_ms: None,
        producer: Some(stamp(producer, md.sequence_id as i64, md)),
        batch: None,
        chunk: None,
        encrypted: None,
    }
}

/// The producer's stamp on a message of a SEND: its name, the message's sequence id and the
/// schema version the SEND carries (every message of a batch was written with it).
fn stamp(producer: &str, sequence_id: i64, md: &MessageMetadata) -> ProducerStamp {
    ProducerStamp {
        name: producer.to_string(),
        sequence_id,
        schema_version: md.schema_version.as_deref().filter(|v| !v.is_empty()).map(Into::into),
    }
}

/// A Magnetar id on the wire (ledger = segment base, entry = position in it), with its batch
/// index when it has one.
pub fn id_data(id: &MessageId) -> MessageIdData {
    MessageIdData {
        ledger_id: id.ledger_id as u64,
        entry_id: id.entry_id as u64,
        partition: Some(id.partition_index),
        batch_index: (id.batch_index >= 0).then_some(id.batch_index),
        ..Default::default()
    }
}

/// The id of an entry (a batch's or a single message's) without a batch index: what a SEND
/// receipt and a MESSAGE frame carry.
pub fn entry_id_data(id: &MessageId) -> MessageIdData {
    MessageIdData { batch_index: None, ..id_data(id) }
}

/// A client's id as the broker reads it (`offset()` adds the batch index).
pub fn message_id(d: &MessageIdData) -> MessageId {
    MessageId {
        ledger_id: d.ledger_id as i64,
        entry_id: d.entry_id as i64,
        partition_index: d.partition.unwrap_or(-1),
        batch_index: d.batch_index.filter(|i| *i >= 0).unwrap_or(-1),
    }
}

/// Where a reader starts or a seek goes for a client's id: a batched message's id names its
/// batch's entry, as in Pulsar, so that the batch is delivered whole and the client drops the
/// messages before the one it named (it does so by batch index).
pub fn start_id(d: &MessageIdData) -> MessageId {
    MessageId { batch_index: -1, ..message_id(d) }
}

/// The producer name and sequence id a record goes out with.
/// The schema version the record's producer stamped on it, as the wire carries it.
fn schema_version_of(r: &magnetar_storage::Record) -> Option<Vec<u8>> {
    r.producer.as_ref().and_then(|p| p.schema_version.as_deref()).map(<[u8]>::to_vec)
}

fn producer_of(r: &magnetar_storage::Record) -> (String, u64) {
    match &r.producer {
        Some(stamp) => (stamp.name.clone(), stamp.sequence_id.max(0) as u64),
        // Produced without a producer name (REST, anonymous WebSocket): the offset is a unique,
        // increasing sequence id.
        None => (String::new(), r.offset),
    }
}

/// Pulsar's `partition_key_b64_encoded` for a record: set only when its key is a binary key's
/// base64 text (the clients read an absent flag as false).
fn key_base64_of(r: &magnetar_storage::Record) -> Option<bool> {
    r.key_base64.then_some(true)
}

fn properties_of(r: &magnetar_storage::Record) -> Vec<KeyValue> {
    r.properties.iter().map(|(k, v)| KeyValue::new(k.clone(), v.clone())).collect()
}

/// The metadata and payload of a MESSAGE frame for a stored record on its own. Its id is the
/// record's own entry (`L:E+i` for a batched record), never a batch index.
pub fn message_payload(m: &PulledMessage) -> (MessageIdData, Payload) {
    let r = &m.record;
    let (producer_name, sequence_id) = producer_of(r);
    let metadata = MessageMetadata {
        producer_name,
        sequence_id,
        publish_time: r.publish_time.max(0) as u64,
        properties: properties_of(r),
        partition_key: r.key.clone(),
        partition_key_b64_encoded: key_base64_of(r),
        ordering_key: r.ordering_key.as_ref().map(|k| k.to_vec()),
        event_time: r.event_time.filter(|t| *t > 0).map(|t| t as u64),
        schema_version: schema_version_of(r),
        ..Default::default()
    };
    // A chunk goes out as it came in: the client joins the chunks and decompresses the whole.
    let metadata = match &r.chunk {
        Some(c) => MessageMetadata {
            uuid: Some(c.uuid.clone()),
            chunk_id: Some(c.index as i32),
            num_chunks_from_msg: Some(c.count as i32),
            total_chunk_msg_size: Some(c.total_size as i32),
            compression: Some(i32::from(c.compression)),
            uncompressed_size: Some(c.uncompressed_size),
            ..metadata
        },
        None => metadata,
    };
    let id = MessageId::new(r.segment_base, r.offset, m.id.partition_index);
    (entry_id_data(&id), Payload::new(metadata, Bytes::clone(&r.payload)))
}

/// The MESSAGE frame's id and payload for an end-to-end encrypted record (an encrypted batch's
/// head, or an encrypted message sent alone), exactly as its producer sent it, with what
/// decrypts it; `None` for any other record. The id is the entry's: the client numbers the
/// batch's messages itself.
pub fn encrypted_payload(m: &PulledMessage) -> Option<(MessageIdData, Payload)> {
    let r = &m.record;
    let e = r.encryption()?;
    let (id, plain) = message_payload(m);
    let metadata = MessageMetadata {
        encryption_keys: e
            .keys
            .iter()
            .map(|k| EncryptionKeys {
                key: k.name.clone(),
                value: k.value.to_vec(),
                metadata: k.metadata.iter().map(|(a, b)| KeyValue::new(a.clone(), b.clone())).collect(),
            })
            .collect(),
        encryption_algo: Some(e.algorithm.clone()).filter(|a| !a.is_empty()),
        encryption_param: Some(e.param.to_vec()),
        compression: Some(i32::from(e.compression)).filter(|c| *c != 0),
        uncompressed_size: Some(e.uncompressed_size),
        num_messages_in_batch: r.batch.map(|b| b.size as i32),
        ..plain.metadata().clone()
    };
    Some((id, Payload::new(metadata, Bytes::clone(&r.payload))))
}

/// The broker's message for one chunk of a chunked message (a SEND whose metadata has
/// `num_chunks_from_msg` > 1): its payload as sent (a slice of the possibly compressed whole),
/// its chunk metadata, and the producer's stamp (every chunk carries the message's sequence id).
/// Refused with a reason when the chunk metadata is inconsistent or the whole message would be
/// larger than `max_whole` bytes.
pub fn chunk_message(producer: &str, payload: &Payload, max_whole: usize) -> Result<PublishMessage, String> {
    let md = payload.metadata();
    if payload.is_batch() {
        return Err("a chunk cannot be a batch: send chunked messages with batching off".into());
    }
    let count = md.num_chunks_from_msg.unwrap_or(1);
    let index = md.chunk_id.unwrap_or(-1);
    let uuid = md.uuid.clone().filter(|u| !u.is_empty()).ok_or("a chunk without a uuid")?;
    if !(0..count).contains(&index) {
        return Err(format!("chunk id {index} is not within the message's {count} chunks"));
    }
    let total = md.total_chunk_msg_size.unwrap_or(-1);
    let compression = payload.compression().map_err(|e| e.to_string())?;
    let whole = if compression == CompressionType::None { total as i64 } else { i64::from(md.uncompressed_size()) };
    if total <= 0 || whole > max_whole as i64 || total as usize > max_whole {
        return Err(format!(
            "a chunked message of {} bytes: the broker takes chunked messages of 1 to {max_whole} bytes",
            whole.max(i64::from(total))
        ));
    }
    let mut m = single(producer, md, Bytes::clone(payload.data()));
    m.chunk = Some(Box::new(ChunkPos {
        uuid,
        index: index as u32,
        count: count as u32,
        total_size: total as u32,
        compression: compression as i32 as u8,
        uncompressed_size: md.uncompressed_size(),
    }));
    Ok(m)
}

/// How many of `ms` (from the start) form a whole batch as its producer sent it: every message
/// of one batch, in order. 0 when they do not.
pub fn whole_batch(ms: &[PulledMessage]) -> usize {
    let Some(first) = ms.first() else { return 0 };
    let Some(BatchPos { index: 0, size }) = first.record.batch else { return 0 };
    let n = size as usize;
    let whole = first.id.batch_index == 0
        && ms.len() >= n
        && ms[..n].iter().enumerate().all(|(i, m)| {
            m.record.batch == Some(BatchPos { index: i as u32, size })
                && m.record.offset == first.record.offset + i as u64
                && m.record.segment_base == first.record.segment_base
                && m.id.partition_index == first.id.partition_index
        });
    if whole { n } else { 0 }
}

/// One MESSAGE payload holding a whole batch (`ms`, as [`whole_batch`] found it), under its
/// entry's id: the client numbers the messages 0.. as its producer did.
pub fn batch_payload(ms: &[PulledMessage]) -> Result<(MessageIdData, Payload), ProtocolError> {
    let first = &ms[0].record;
    let (producer_name, sequence_id) = producer_of(first);
    let metadata = MessageMetadata {
        producer_name,
        sequence_id,
        publish_time: first.publish_time.max(0) as u64,
        schema_version: schema_version_of(first),
        ..Default::default()
    };
    let singles: Vec<SingleMessage> = ms
        .iter()
        .map(|m| {
            let r = &m.record;
            SingleMessage {
                metadata: SingleMessageMetadata {
                    properties: properties_of(r),
                    partition_key: r.key.clone(),
                    partition_key_b64_encoded: key_base64_of(r),
                    ordering_key: r.ordering_key.as_ref().map(|k| k.to_vec()),
                    payload_size: r.payload.len() as i32,
                    event_time: r.event_time.filter(|t| *t > 0).map(|t| t as u64),
                    sequence_id: r.producer.as_ref().map(|p| p.sequence_id.max(0) as u64),
                    ..Default::default()
                },
                payload: Bytes::clone(&r.payload),
            }
        })
        .collect();
    let payload = Payload::batch(metadata, CompressionType::None, &singles)?;
    Ok((entry_id_data(&ms[0].id), payload))
}
