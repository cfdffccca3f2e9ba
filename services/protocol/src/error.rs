//! What can go wrong reading or writing Pulsar's wire format.

use std::fmt;

use crate::proto::{BaseCommand, CompressionType};

#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The frame announces more bytes than the limit: Pulsar closes the connection.
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge { size: usize, limit: usize },
    /// A size field inside a complete frame points past its end.
    #[error("truncated {what}: needs {needed} bytes, {available} left in the frame")]
    Truncated { what: &'static str, needed: usize, available: usize },
    #[error("bad magic number 0x{found:04x} before the payload checksum, expected 0x0e01")]
    BadMagic { found: u16 },
    /// The payload does not match its CRC32C. The frame was consumed whole, so the stream is
    /// still in step: Pulsar answers SEND_ERROR ChecksumError and keeps the connection.
    #[error("{0}")]
    ChecksumMismatch(Box<ChecksumMismatch>),
    #[error("invalid protobuf in {what}: {source}")]
    InvalidProtobuf {
        what: &'static str,
        #[source]
        source: prost::DecodeError,
    },
    #[error("missing required field {0}")]
    MissingField(String),
    #[error("unknown compression codec {0}")]
    UnknownCompression(i32),
    /// A hostile or corrupt `uncompressed_size`: refused before anything is allocated.
    #[error("uncompressed size of {size} bytes exceeds the limit of {limit} bytes")]
    UncompressedTooLarge { size: usize, limit: usize },
    #[error("{codec:?} payload does not decompress: {reason}")]
    Decompression { codec: CompressionType, reason: String },
    #[error("{codec:?} compression failed: {reason}")]
    Compression { codec: CompressionType, reason: String },
    #[error("invalid batch: {0}")]
    InvalidBatch(String),
    /// Only from the I/O beneath a `tokio_util` codec.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// A payload frame whose checksum did not match, with its decoded command so that the broker
/// can answer the right producer and sequence id.
#[derive(Debug, Clone, PartialEq)]
pub struct ChecksumMismatch {
    pub command: BaseCommand,
    /// The checksum the frame carries.
    pub expected: u32,
    /// The checksum of the bytes received.
    pub computed: u32,
}

impl fmt::Display for ChecksumMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let command_type = match self.command.command_type() {
            Ok(command_type) => format!("{command_type:?}"),
            Err(raw) => format!("type {raw}"),
        };
        write!(
            f,
            "checksum mismatch in a {command_type} frame: carries 0x{:08x}, payload has 0x{:08x}",
            self.expected, self.computed
        )
    }
}

impl ProtocolError {
    /// True when the connection can go on after this error (the frame was consumed whole and
    /// the peer can be answered); false when Pulsar would close the connection.
    pub fn is_recoverable(&self) -> bool {
        matches!(self, ProtocolError::ChecksumMismatch(_))
    }

    pub(crate) fn protobuf(what: &'static str) -> impl FnOnce(prost::DecodeError) -> ProtocolError {
        move |source| ProtocolError::InvalidProtobuf { what, source }
    }
}
