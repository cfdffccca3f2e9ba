//! Pulsar's binary wire format, and nothing else: no sockets, no broker logic.
//!
//! - [`proto`]: the protocol buffer messages (proto2, written by hand from Pulsar's
//!   specification), from `BaseCommand` down to `MessageMetadata`.
//! - [`frame`] and [`PulsarCodec`]: the frame layout (size fields, command, magic number,
//!   CRC32C, metadata, payload) with a frame-size limit, as functions and as a `tokio_util`
//!   codec.
//! - [`Payload`]: a SEND/MESSAGE payload with the producer's metadata bytes kept as received.
//! - [`compression`] and [`batch`]: the payload codecs (LZ4, zlib, zstd, snappy) and batch
//!   payloads, bounded against hostile sizes.
//!
//! Errors are [`ProtocolError`]; a checksum mismatch stays distinguishable because Pulsar
//! answers it without closing the connection.

pub mod batch;
pub mod codec;
pub mod compression;
pub mod error;
pub mod frame;
pub mod payload;
pub mod proto;

pub use batch::SingleMessage;
pub use codec::PulsarCodec;
pub use error::{ChecksumMismatch, ProtocolError};
pub use frame::{DEFAULT_MAX_FRAME_SIZE, DEFAULT_MAX_MESSAGE_SIZE, Frame};
pub use payload::Payload;
