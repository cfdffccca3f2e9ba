//! A `tokio_util` codec over [`frame`](crate::frame) for `Framed` connections.

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
        frame::encode(&Frame { command: item, payload: None }, dst, self.max_frame_size)
    }
}
