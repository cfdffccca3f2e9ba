//! Batch payloads: `num_messages_in_batch` × (`u32 size | SingleMessageMetadata | payload`),
//! the uncompressed body of a payload whose metadata carries `num_messages_in_batch`.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::Message;

use crate::error::ProtocolError;
use crate::proto::SingleMessageMetadata;

/// One message of a batch.
#[derive(Clone, Debug, PartialEq)]
pub struct SingleMessage {
    pub metadata: SingleMessageMetadata,
    pub payload: Bytes,
}

impl SingleMessage {
    /// A message with only the metadata `payload_size` needs.
    pub fn new(payload: impl Into<Bytes>) -> Self {
        let payload = payload.into();
        let metadata = SingleMessageMetadata { payload_size: payload.len() as i32, ..Default::default() };
        Self { metadata, payload }
    }
}

/// Splits an uncompressed batch body into its `count` messages. Slices share `body`'s memory.
pub fn split(mut body: Bytes, count: i32) -> Result<Vec<SingleMessage>, ProtocolError> {
    let count = usize::try_from(count).map_err(|_| ProtocolError::InvalidBatch(format!("{count} messages")))?;
    // Each message takes at least its 4-byte size field: bounds the allocation below.
    if count > body.len() / 4 {
        return Err(ProtocolError::InvalidBatch(format!("{count} messages cannot fit in {} bytes", body.len())));
    }
    let mut messages = Vec::with_capacity(count);
    for index in 0..count {
        if body.len() < 4 {
            return Err(ProtocolError::InvalidBatch(format!("message {index} of {count}: no metadata size")));
        }
        let metadata_size = body.get_u32() as usize;
        if metadata_size > body.len() {
            return Err(ProtocolError::InvalidBatch(format!(
                "message {index} of {count}: metadata of {metadata_size} bytes, {} left",
                body.len()
            )));
        }
        let metadata = SingleMessageMetadata::decode(body.split_to(metadata_size))
            .map_err(ProtocolError::protobuf("SingleMessageMetadata"))?;
        let payload_size = usize::try_from(metadata.payload_size).map_err(|_| {
            ProtocolError::InvalidBatch(format!("message {index} of {count}: payload size {}", metadata.payload_size))
        })?;
        if payload_size > body.len() {
            return Err(ProtocolError::InvalidBatch(format!(
                "message {index} of {count}: payload of {payload_size} bytes, {} left",
                body.len()
            )));
        }
        let payload = body.split_to(payload_size);
        messages.push(SingleMessage { metadata, payload });
    }
    if !body.is_empty() {
        return Err(ProtocolError::InvalidBatch(format!("{} bytes after the last of {count} messages", body.len())));
    }
    Ok(messages)
}

/// Builds a batch body from `messages`; each `payload_size` is set from its payload.
pub fn build(messages: &[SingleMessage]) -> Result<Bytes, ProtocolError> {
    // Payloads dominate; the metadata grows the buffer when it needs to.
    let mut body = BytesMut::with_capacity(messages.iter().map(|m| m.payload.len() + 16).sum());
    for message in messages {
        let payload_size = i32::try_from(message.payload.len())
            .map_err(|_| ProtocolError::InvalidBatch(format!("a payload of {} bytes", message.payload.len())))?;
        // Metadata whose payload size is already right (the broker's batches) is not copied.
        let fixed;
        let metadata = if message.metadata.payload_size == payload_size {
            &message.metadata
        } else {
            fixed = SingleMessageMetadata { payload_size, ..message.metadata.clone() };
            &fixed
        };
        let len = metadata.encoded_len();
        body.reserve(4 + len + message.payload.len());
        body.put_u32(len as u32);
        metadata.encode_raw(&mut body);
        body.put_slice(&message.payload);
    }
    Ok(body.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::KeyValue;

    fn messages() -> Vec<SingleMessage> {
        let mut keyed = SingleMessage::new(&b"second"[..]);
        keyed.metadata.partition_key = Some("key-1".into());
        keyed.metadata.properties.push(KeyValue::new("a", "b"));
        keyed.metadata.sequence_id = Some(11);
        vec![SingleMessage::new(&b"first"[..]), keyed, SingleMessage::new(Bytes::new())]
    }

    #[test]
    fn build_then_split_returns_the_messages() {
        let messages = messages();
        let body = build(&messages).unwrap();
        assert_eq!(split(body, 3).unwrap(), messages);
    }

    #[test]
    fn build_sets_payload_size_from_the_payload() {
        let mut message = SingleMessage::new(&b"abc"[..]);
        message.metadata.payload_size = 999;
        let split = split(build(&[message]).unwrap(), 1).unwrap();
        assert_eq!(split[0].metadata.payload_size, 3);
    }

    #[test]
    fn a_count_that_cannot_fit_is_refused_before_allocating() {
        let body = build(&messages()).unwrap();
        assert!(matches!(split(body.clone(), i32::MAX), Err(ProtocolError::InvalidBatch(_))));
        assert!(matches!(split(body, -1), Err(ProtocolError::InvalidBatch(_))));
    }

    #[test]
    fn fewer_messages_than_announced_is_an_error() {
        let body = build(&messages()[..2]).unwrap();
        assert!(matches!(split(body, 3), Err(ProtocolError::InvalidBatch(_))));
    }

    #[test]
    fn bytes_after_the_last_message_are_an_error() {
        let body = build(&messages()).unwrap();
        assert!(matches!(split(body, 2), Err(ProtocolError::InvalidBatch(_))));
    }

    #[test]
    fn a_payload_size_past_the_end_is_an_error() {
        let mut body = BytesMut::from(&build(&[SingleMessage::new(&b"abc"[..])]).unwrap()[..]);
        body.truncate(body.len() - 1);
        assert!(matches!(split(body.freeze(), 1), Err(ProtocolError::InvalidBatch(_))));
    }
}
