//! A `tokio_util` codec over [`frame`] for `Framed` connections.

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use crate::error::{ChecksumMismatch, ProtocolError};
use crate::frame::{self, DEFAULT_MAX_FRAME_SIZE, Frame};
use crate::proto::BaseCommand;

/// Decodes and encodes frames, refusing any above the frame limit (both ways).
///
/// A checksum mismatch is an item, not an error: `Framed` ends the stream after the first
/// error, while Pulsar answers SEND_ERROR ChecksumError and keeps reading. Errors are fatal
/// to the connection.
#[derive(Clone, Copy, Debug)]
pub struct PulsarCodec {
    max_frame_size: usize,
}

impl PulsarCodec {
    /// A codec with Pulsar's default frame limit (5 MB message + 10 KB for headers).
    pub fn new() -> Self {
        Self { max_frame_size: DEFAULT_MAX_FRAME_SIZE }
    }

    /// A codec refusing frames above `max_frame_size` bytes, size field included.
    pub fn with_max_frame_size(max_frame_size: usize) -> Self {
        Self { max_frame_size }
    }

    pub fn max_frame_size(&self) -> usize {
        self.max_frame_size
    }
}

impl Default for PulsarCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder for PulsarCodec {
    type Item = Result<Frame, ChecksumMismatch>;
    type Error = ProtocolError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        match frame::decode(src, self.max_frame_size) {
            Ok(frame) => Ok(frame.map(Ok)),
            Err(ProtocolError::ChecksumMismatch(mismatch)) => Ok(Some(Err(*mismatch))),
            Err(error) => Err(error),
        }
    }
}

impl Encoder<Frame> for PulsarCodec {
    type Error = ProtocolError;

    fn encode(&mut self, item: Frame, dst: &mut BytesMut) -> Result<(), Self::Error> {
        frame::encode(&item, dst, self.max_frame_size)
    }
}

impl Encoder<&Frame> for PulsarCodec {
    type Error = ProtocolError;

    fn encode(&mut self, item: &Frame, dst: &mut BytesMut) -> Result<(), Self::Error> {
        frame::encode(item, dst, self.max_frame_size)
    }
}

impl Encoder<BaseCommand> for PulsarCodec {
    type Error = ProtocolError;

    fn encode(&mut self, item: BaseCommand, dst: &mut BytesMut) -> Result<(), Self::Error> {
        frame::encode(&Frame { command: Box::new(item), payload: None }, dst, self.max_frame_size)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use futures::StreamExt;
    use tokio_util::codec::FramedRead;

    use super::*;
    use crate::payload::Payload;
    use crate::proto::{CommandPing, CommandPong, CommandSend, MessageMetadata};

    #[tokio::test]
    async fn a_checksum_mismatch_does_not_end_the_stream() {
        let metadata =
            MessageMetadata { producer_name: "p".into(), sequence_id: 9, publish_time: 1, ..Default::default() };
        let send = Frame::with_payload(
            CommandSend { producer_id: 4, sequence_id: 9, ..Default::default() },
            Payload::new(metadata, Bytes::from_static(b"payload")),
        );
        let mut codec = PulsarCodec::new();
        let mut wire = BytesMut::new();
        codec.encode(Frame::new(CommandPing {}), &mut wire).unwrap();
        codec.encode(&send, &mut wire).unwrap();
        let last = wire.len() - 1;
        wire[last] ^= 0xff;
        codec.encode(BaseCommand::from(CommandPong {}), &mut wire).unwrap();

        let wire = wire.freeze();
        let items: Vec<_> = FramedRead::new(&wire[..], codec).collect().await;
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].as_ref().unwrap().as_ref().unwrap(), &Frame::new(CommandPing {}));
        let mismatch = items[1].as_ref().unwrap().as_ref().unwrap_err();
        assert_eq!(mismatch.command.send.as_ref().unwrap().sequence_id, 9);
        assert_eq!(items[2].as_ref().unwrap().as_ref().unwrap(), &Frame::new(CommandPong {}));
    }

    #[tokio::test]
    async fn an_oversized_frame_ends_the_stream_with_an_error() {
        let codec = PulsarCodec::with_max_frame_size(64);
        let mut wire = BytesMut::new();
        PulsarCodec::new().encode(Frame::new(CommandPing {}), &mut wire).unwrap();
        wire.extend_from_slice(&[0, 0, 1, 0]);
        let items: Vec<_> = FramedRead::new(&wire[..], codec).collect().await;
        assert_eq!(items.len(), 2);
        assert!(items[0].is_ok());
        assert!(matches!(items[1], Err(ProtocolError::FrameTooLarge { size: 260, limit: 64 })));
    }
}
