//! Stored records to Pulsar messages and Pulsar messages to the broker's publish input.
//!
//! A SEND is decompressed and, when it is a batch, split into its messages: every message is
//! stored as its own record, so that WebSocket, HTTP pull and the console read it as they read
//! any other (docs/binary-protocol.md, "Batches"). A record goes out as a single, uncompressed
//! MESSAGE whatever surface produced it, with the producer's name and sequence id when it was
//! stored with them.

use bytes::Bytes;
use magnetar_broker::{PublishMessage, PulledMessage};
use magnetar_core::MessageId;
use magnetar_protocol::proto::{KeyValue, MessageIdData, MessageMetadata};
use magnetar_protocol::{Payload, ProtocolError};
use magnetar_storage::ProducerStamp;

/// The broker's messages for one SEND, in order, with the producer's name and sequence ids
/// (the batch's sequence id counts up from the SEND's unless a message carries its own).
pub fn publish_messages(producer: &str, payload: &Payload, limit: usize) -> Result<Vec<PublishMessage>, ProtocolError> {
    let md = payload.metadata();
    let deliver_at = md.deliver_at_time.filter(|t| *t > 0);
    let base_seq = md.sequence_id as i64;
    if !payload.is_batch() {
        let body = payload.uncompressed(limit)?;
        return Ok(vec![PublishMessage {
            key: md.partition_key.clone(),
            properties: md.properties.iter().map(|kv| (kv.key.clone(), kv.value.clone())).collect(),
            payload: body,
            event_time: md.event_time.filter(|t| *t > 0).map(|t| t as i64),
            deliver_at,
            deliver_after_ms: None,
            producer: Some(ProducerStamp { name: producer.to_string(), sequence_id: base_seq }),
        }]);
    }
    let singles = payload.split_batch(limit)?;
    Ok(singles
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let smm = m.metadata;
            let seq = smm.sequence_id.map_or(base_seq + i as i64, |s| s as i64);
            PublishMessage {
                key: smm.partition_key,
                properties: smm.properties.into_iter().map(|kv| (kv.key, kv.value)).collect(),
                payload: m.payload,
                event_time: smm.event_time.filter(|t| *t > 0).map(|t| t as i64),
                deliver_at,
                deliver_after_ms: None,
                producer: Some(ProducerStamp { name: producer.to_string(), sequence_id: seq }),
            }
        })
        .collect())
}

/// A Magnetar id on the wire (ledger = segment base, entry = position in it).
pub fn id_data(id: &MessageId) -> MessageIdData {
    MessageIdData {
        ledger_id: id.ledger_id as u64,
        entry_id: id.entry_id as u64,
        partition: Some(id.partition_index),
        ..Default::default()
    }
}

/// A client's id as the broker reads it. The batch index is dropped: every stored record is one
/// message (ids of a batch's messages are `entry + index`, see the module header).
pub fn message_id(d: &MessageIdData) -> MessageId {
    let batch = d.batch_index.unwrap_or(-1).max(0) as i64;
    MessageId {
        ledger_id: d.ledger_id as i64,
        entry_id: (d.entry_id as i64).saturating_add(if d.batch_index.is_some() { batch } else { 0 }),
        partition_index: d.partition.unwrap_or(-1),
        batch_index: -1,
    }
}

/// The metadata and payload of a MESSAGE frame for a stored record.
pub fn message_payload(m: &PulledMessage) -> Payload {
    let r = &m.record;
    let (producer_name, sequence_id) = match &r.producer {
        Some(stamp) => (stamp.name.clone(), stamp.sequence_id.max(0) as u64),
        // Produced without a producer name (REST, anonymous WebSocket): the offset is a unique,
        // increasing sequence id.
        None => (String::new(), r.offset),
    };
    let metadata = MessageMetadata {
        producer_name,
        sequence_id,
        publish_time: r.publish_time.max(0) as u64,
        properties: r.properties.iter().map(|(k, v)| KeyValue::new(k.clone(), v.clone())).collect(),
        partition_key: r.key.clone(),
        event_time: r.event_time.filter(|t| *t > 0).map(|t| t as u64),
        ..Default::default()
    };
    Payload::new(metadata, Bytes::clone(&r.payload))
}
