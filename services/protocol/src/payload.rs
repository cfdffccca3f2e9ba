//! The part of a SEND or MESSAGE frame after the checksum: `u32 metadataSize | MessageMetadata |
//! payload`.
//!
//! A received payload keeps the producer's metadata bytes exactly as they arrived and writes
//! them back unchanged: re-encoding could add or drop fields (clients tell a batch from a single
//! message by whether `num_messages_in_batch` is present at all, even as 1).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::Message;

use crate::batch::{self, SingleMessage};
use crate::compression;
use crate::error::ProtocolError;
use crate::proto::{BrokerEntryMetadata, CompressionType, MessageMetadata};

#[derive(Clone, Debug, PartialEq)]
pub struct Payload {
    metadata: MessageMetadata,
    metadata_bytes: Bytes,
    data: Bytes,
    broker_entry_metadata: Option<BrokerEntryMetadata>,
}

impl Payload {
    /// A payload from decoded metadata (encoded once, here) and the payload bytes as they go on
    /// the wire (already compressed if `metadata.compression` says so).
    pub fn new(metadata: MessageMetadata, data: Bytes) -> Self {
        let metadata_bytes = Bytes::from(metadata.encode_to_vec());
        Self { metadata, metadata_bytes, data, broker_entry_metadata: None }
    }

    /// A payload compressed with `codec`: sets `compression` and `uncompressed_size` in the
    /// metadata. `uncompressed` is the message body, or a batch built by [`batch::build`].
    pub fn compressed(
        mut metadata: MessageMetadata,
        codec: CompressionType,
        uncompressed: &[u8],
    ) -> Result<Self, ProtocolError> {
        let size = u32::try_from(uncompressed.len())
            .map_err(|_| ProtocolError::UncompressedTooLarge { size: uncompressed.len(), limit: u32::MAX as usize })?;
        if codec == CompressionType::None {
            metadata.compression = None;
            metadata.uncompressed_size = None;
        } else {
            metadata.compression = Some(codec as i32);
            metadata.uncompressed_size = Some(size);
        }
        let data = compression::compress(codec, uncompressed)?;
        Ok(Self::new(metadata, Bytes::from(data)))
    }

    /// A batch of `messages` compressed with `codec`; sets `num_messages_in_batch`.
    pub fn batch(
        mut metadata: MessageMetadata,
        codec: CompressionType,
        messages: &[SingleMessage],
    ) -> Result<Self, ProtocolError> {
        let count = i32::try_from(messages.len())
            .map_err(|_| ProtocolError::InvalidBatch(format!("{} messages do not fit a batch", messages.len())))?;
        metadata.num_messages_in_batch = Some(count);
        let body = batch::build(messages)?;
        if codec == CompressionType::None {
            // Uncompressed: the body goes out as built, not copied.
            metadata.compression = None;
            metadata.uncompressed_size = None;
            return Ok(Self::new(metadata, body));
        }
        Self::compressed(metadata, codec, &body)
    }

    /// Parses `u32 metadataSize | MessageMetadata | payload`, keeping the metadata's bytes.
    pub fn parse(mut bytes: Bytes) -> Result<Self, ProtocolError> {
        if bytes.len() < 4 {
            return Err(ProtocolError::Truncated { what: "metadata size", needed: 4, available: bytes.len() });
        }
        let metadata_size = bytes.get_u32() as usize;
        if metadata_size > bytes.len() {
            return Err(ProtocolError::Truncated {
                what: "message metadata",
                needed: metadata_size,
                available: bytes.len(),
            });
        }
        let metadata_bytes = bytes.split_to(metadata_size);
        let metadata =
            MessageMetadata::decode(metadata_bytes.clone()).map_err(ProtocolError::protobuf("MessageMetadata"))?;
        Ok(Self { metadata, metadata_bytes, data: bytes, broker_entry_metadata: None })
    }

    pub(crate) fn with_broker_entry_metadata(mut self, entry: Option<BrokerEntryMetadata>) -> Self {
        self.broker_entry_metadata = entry;
        self
    }

    pub fn metadata(&self) -> &MessageMetadata {
        &self.metadata
    }

    /// The metadata exactly as received (or as encoded by [`Payload::new`]).
    pub fn metadata_bytes(&self) -> &Bytes {
        &self.metadata_bytes
    }

    /// The payload bytes as on the wire (compressed if the metadata says so).
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// Broker entry metadata that preceded the checksum (magic 0x0e02), if any.
    pub fn broker_entry_metadata(&self) -> Option<&BrokerEntryMetadata> {
        self.broker_entry_metadata.as_ref()
    }

    /// A batch is a payload whose metadata carries `num_messages_in_batch`, even as 1.
    pub fn is_batch(&self) -> bool {
        self.metadata.num_messages_in_batch.is_some()
    }

    /// Messages in this payload: the batch size, or 1. What a FLOW permit counts.
    pub fn num_messages(&self) -> i32 {
        self.metadata.num_messages_in_batch.unwrap_or(1)
    }

    /// The codec named in the metadata; an unknown one is an error.
    pub fn compression(&self) -> Result<CompressionType, ProtocolError> {
        let raw = self.metadata.compression.unwrap_or(CompressionType::None as i32);
        CompressionType::try_from(raw).map_err(|_| ProtocolError::UnknownCompression(raw))
    }

    /// The payload decompressed, refusing an `uncompressed_size` above `limit`.
    pub fn uncompressed(&self, limit: usize) -> Result<Bytes, ProtocolError> {
        match self.compression()? {
            CompressionType::None => Ok(self.data.clone()),
            codec => {
                let size = self.metadata.uncompressed_size() as usize;
                compression::decompress(codec, &self.data, size, limit).map(Bytes::from)
            }
        }
    }

    /// The single messages of a batch payload (decompressed first, under `limit`).
    pub fn split_batch(&self, limit: usize) -> Result<Vec<SingleMessage>, ProtocolError> {
        let Some(count) = self.metadata.num_messages_in_batch else {
            return Err(ProtocolError::InvalidBatch("the metadata has no num_messages_in_batch".to_string()));
        };
        batch::split(self.uncompressed(limit)?, count)
    }

    /// Bytes of `u32 metadataSize | metadata | payload`.
    pub fn encoded_len(&self) -> usize {
        4 + self.metadata_bytes.len() + self.data.len()
    }

    /// Writes `u32 metadataSize | metadata | payload`.
    pub fn write_to(&self, dst: &mut BytesMut) {
        dst.reserve(self.encoded_len());
        dst.put_u32(self.metadata_bytes.len() as u32);
        dst.put_slice(&self.metadata_bytes);
        dst.put_slice(&self.data);
    }

    /// CRC32C of what [`Payload::write_to`] writes: the checksum field of the frame.
    pub fn checksum(&self) -> u32 {
        let crc = magnetar_core::hash::crc32c(&(self.metadata_bytes.len() as u32).to_be_bytes());
        let crc = magnetar_core::hash::crc32c_append(crc, &self.metadata_bytes);
        magnetar_core::hash::crc32c_append(crc, &self.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::SingleMessage;

    fn metadata() -> MessageMetadata {
        MessageMetadata {
            producer_name: "producer-1".into(),
            sequence_id: 5,
            publish_time: 1_700_000_000_000,
            ..Default::default()
        }
    }

    fn section(metadata_bytes: &[u8], data: &[u8]) -> Bytes {
        let mut bytes = BytesMut::new();
        bytes.put_u32(metadata_bytes.len() as u32);
        bytes.put_slice(metadata_bytes);
        bytes.put_slice(data);
        bytes.freeze()
    }

    #[test]
    fn parse_keeps_the_metadata_bytes_as_received() {
        let batch_of_one = MessageMetadata { num_messages_in_batch: Some(1), ..metadata() };
        let mut metadata_bytes = batch_of_one.encode_to_vec();
        // A field this crate does not know (tag 31, varint 5): must survive untouched.
        metadata_bytes.extend_from_slice(&[0xf8, 0x01, 0x05]);
        let received = section(&metadata_bytes, b"body");

        let payload = Payload::parse(received.clone()).unwrap();
        assert!(payload.is_batch());
        assert_eq!(payload.num_messages(), 1);
        assert_eq!(payload.metadata().producer_name, "producer-1");
        assert_eq!(payload.metadata_bytes().as_ref(), metadata_bytes.as_slice());
        assert_eq!(payload.data().as_ref(), b"body");

        let mut written = BytesMut::new();
        payload.write_to(&mut written);
        assert_eq!(written.freeze(), received);
        assert_eq!(payload.checksum(), magnetar_core::hash::crc32c(&received));
    }

    #[test]
    fn a_single_message_is_not_a_batch() {
        let payload = Payload::new(metadata(), Bytes::from_static(b"x"));
        assert!(!payload.is_batch());
        assert_eq!(payload.num_messages(), 1);
        assert!(matches!(payload.split_batch(1 << 20), Err(ProtocolError::InvalidBatch(_))));
    }

    #[test]
    fn metadata_size_past_the_end_is_truncated() {
        let mut bytes = BytesMut::new();
        bytes.put_u32(100);
        bytes.put_slice(b"short");
        assert!(matches!(Payload::parse(bytes.freeze()), Err(ProtocolError::Truncated { .. })));
    }

    #[test]
    fn compressed_batches_split_back_into_their_messages() {
        let messages = vec![SingleMessage::new(&b"one"[..]), SingleMessage::new(vec![7u8; 5000])];
        for codec in [
            CompressionType::None,
            CompressionType::Lz4,
            CompressionType::Zlib,
            CompressionType::Zstd,
            CompressionType::Snappy,
        ] {
            let payload = Payload::batch(metadata(), codec, &messages).unwrap();
            let received = Payload::parse(section(payload.metadata_bytes(), payload.data())).unwrap();
            assert_eq!(received.compression().unwrap(), codec);
            assert_eq!(received.num_messages(), 2);
            assert_eq!(received.split_batch(1 << 20).unwrap(), messages, "{codec:?}");
        }
    }

    #[test]
    fn an_uncompressed_size_above_the_limit_is_refused() {
        let payload = Payload::compressed(metadata(), CompressionType::Zstd, &[0u8; 10_000]).unwrap();
        assert!(matches!(payload.uncompressed(9_999), Err(ProtocolError::UncompressedTooLarge { .. })));
        assert_eq!(payload.uncompressed(10_000).unwrap().len(), 10_000);
    }

    #[test]
    fn an_unknown_codec_is_an_error() {
        let payload = Payload::new(MessageMetadata { compression: Some(9), ..metadata() }, Bytes::new());
        assert!(matches!(payload.uncompressed(100), Err(ProtocolError::UnknownCompression(9))));
    }
}
