//! Frames: `u32 totalSize | u32 commandSize | BaseCommand`, and for SEND and MESSAGE
//! `[u16 0x0e02 | u32 size | BrokerEntryMetadata] | u16 0x0e01 | u32 CRC32C | u32 metadataSize |
//! MessageMetadata | payload`. Big-endian; `totalSize` excludes itself; the checksum covers
//! everything after it.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::Message;

use crate::error::{ChecksumMismatch, ProtocolError};
use crate::payload::Payload;
use crate::proto::{BaseCommand, BrokerEntryMetadata};

/// Precedes the CRC32C of a payload.
pub const MAGIC_CHECKSUM: u16 = 0x0e01;
/// Precedes broker entry metadata, which a broker may put in front of the checksum.
pub const MAGIC_BROKER_ENTRY_METADATA: u16 = 0x0e02;
/// Pulsar's default `maxMessageSize`, the largest message a client may send.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 5 * 1024 * 1024;
/// Room for the command and headers on top of a message of the maximum size (Pulsar's
/// `MESSAGE_SIZE_FRAME_PADDING`).
pub const FRAME_PADDING: usize = 10 * 1024;
/// The default limit on a whole frame, size field included.
pub const DEFAULT_MAX_FRAME_SIZE: usize = DEFAULT_MAX_MESSAGE_SIZE + FRAME_PADDING;

/// One decoded frame: the command and, for SEND and MESSAGE, the payload after the checksum.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    /// Boxed: `BaseCommand` holds every command type inline (about 5 KB), and frames move
    /// through queues and tasks; a move should cost a pointer, not the struct.
    pub command: Box<BaseCommand>,
    pub payload: Option<Payload>,
}

impl Frame {
    pub fn new(command: impl Into<BaseCommand>) -> Self {
        Self { command: Box::new(command.into()), payload: None }
    }

    pub fn with_payload(command: impl Into<BaseCommand>, payload: Payload) -> Self {
        Self { command: Box::new(command.into()), payload: Some(payload) }
    }

    /// Bytes this frame takes on the wire, size field included.
    pub fn encoded_len(&self) -> usize {
        let payload = self.payload.as_ref().map_or(0, |p| 2 + 4 + p.encoded_len());
        4 + 4 + self.command.encoded_len() + payload
    }
}

/// Takes one frame off the front of `src` if it holds a whole one. `Ok(None)`: more bytes are
/// needed (and room for them is reserved). A frame above `max_frame_size` is refused as soon as
/// its size field is read. On a checksum mismatch the frame is consumed.
pub fn decode(src: &mut BytesMut, max_frame_size: usize) -> Result<Option<Frame>, ProtocolError> {
    if src.len() < 4 {
        return Ok(None);
    }
    let total_size = u32::from_be_bytes([src[0], src[1], src[2], src[3]]) as usize;
    let frame_size = total_size + 4;
    if frame_size > max_frame_size {
        return Err(ProtocolError::FrameTooLarge { size: frame_size, limit: max_frame_size });
    }
    if src.len() < frame_size {
        src.reserve(frame_size - src.len());
        return Ok(None);
    }
    let mut frame = src.split_to(frame_size).freeze();
    frame.advance(4);
    parse_body(frame).map(Some)
}

/// Parses a frame without its leading size field.
pub fn parse_body(mut body: Bytes) -> Result<Frame, ProtocolError> {
    let command_size = read_u32(&mut body, "command size")? as usize;
    let command_bytes = take(&mut body, command_size, "command")?;
    let command = BaseCommand::decode(command_bytes).map_err(ProtocolError::protobuf("BaseCommand"))?;
    command.validate()?;
    if body.is_empty() {
        return Ok(Frame { command: Box::new(command), payload: None });
    }

    let mut magic = read_u16(&mut body, "magic number")?;
    let mut broker_entry_metadata = None;
    if magic == MAGIC_BROKER_ENTRY_METADATA {
        let size = read_u32(&mut body, "broker entry metadata size")? as usize;
        let bytes = take(&mut body, size, "broker entry metadata")?;
        let entry = BrokerEntryMetadata::decode(bytes).map_err(ProtocolError::protobuf("BrokerEntryMetadata"))?;
        broker_entry_metadata = Some(entry);
        magic = read_u16(&mut body, "magic number")?;
    }
    if magic != MAGIC_CHECKSUM {
        return Err(ProtocolError::BadMagic { found: magic });
    }
    let expected = read_u32(&mut body, "checksum")?;
    let computed = magnetar_core::hash::crc32c(&body);
    if computed != expected {
        return Err(ProtocolError::ChecksumMismatch(Box::new(ChecksumMismatch { command, expected, computed })));
    }
    let payload = Payload::parse(body)?.with_broker_entry_metadata(broker_entry_metadata);
    Ok(Frame { command: Box::new(command), payload: Some(payload) })
}

/// Appends a frame to `dst`, refusing one above `max_frame_size` (size field included).
pub fn encode(frame: &Frame, dst: &mut BytesMut, max_frame_size: usize) -> Result<(), ProtocolError> {
    let frame_size = frame.encoded_len();
    if frame_size > max_frame_size || frame_size > u32::MAX as usize {
        return Err(ProtocolError::FrameTooLarge { size: frame_size, limit: max_frame_size });
    }
    dst.reserve(frame_size);
    dst.put_u32((frame_size - 4) as u32);
    dst.put_u32(frame.command.encoded_len() as u32);
    frame.command.encode(dst).expect("room was reserved");
    if let Some(payload) = &frame.payload {
        dst.put_u16(MAGIC_CHECKSUM);
        dst.put_u32(payload.checksum());
        payload.write_to(dst);
    }
    Ok(())
}

/// A command without payload as a complete frame.
pub fn encode_command(command: &BaseCommand) -> Bytes {
    let mut dst = BytesMut::new();
    let frame_size = 8 + command.encoded_len();
    dst.reserve(frame_size);
    dst.put_u32((frame_size - 4) as u32);
    dst.put_u32(command.encoded_len() as u32);
    command.encode(&mut dst).expect("room was reserved");
    dst.freeze()
}

/// A SEND or MESSAGE command with its payload as a complete frame (no size limit applied).
pub fn encode_payload_command(command: &BaseCommand, payload: &Payload) -> Bytes {
    let frame = Frame { command: Box::new(command.clone()), payload: Some(payload.clone()) };
    let mut dst = BytesMut::new();
    encode(&frame, &mut dst, u32::MAX as usize).expect("no limit below u32::MAX");
    dst.freeze()
}

fn read_u16(body: &mut Bytes, what: &'static str) -> Result<u16, ProtocolError> {
    if body.len() < 2 {
        return Err(ProtocolError::Truncated { what, needed: 2, available: body.len() });
    }
    Ok(body.get_u16())
}

fn read_u32(body: &mut Bytes, what: &'static str) -> Result<u32, ProtocolError> {
    if body.len() < 4 {
        return Err(ProtocolError::Truncated { what, needed: 4, available: body.len() });
    }
    Ok(body.get_u32())
}

fn take(body: &mut Bytes, size: usize, what: &'static str) -> Result<Bytes, ProtocolError> {
    if size > body.len() {
        return Err(ProtocolError::Truncated { what, needed: size, available: body.len() });
    }
    Ok(body.split_to(size))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{CommandPing, CommandSend, MessageMetadata};

    fn send_frame() -> Frame {
        let metadata = MessageMetadata {
            producer_name: "standalone-0-1".into(),
            sequence_id: 3,
            publish_time: 1_700_000_000_000,
            ..Default::default()
        };
        let send = CommandSend { producer_id: 1, sequence_id: 3, num_messages: Some(1), ..Default::default() };
        Frame::with_payload(send, Payload::new(metadata, Bytes::from_static(b"hello")))
    }

    fn encoded(frame: &Frame) -> BytesMut {
        let mut bytes = BytesMut::new();
        encode(frame, &mut bytes, DEFAULT_MAX_FRAME_SIZE).unwrap();
        bytes
    }

    #[test]
    fn ping_frame_matches_the_specification_bytes() {
        let bytes = encode_command(&CommandPing {}.into());
        assert_eq!(bytes.as_ref(), [0, 0, 0, 9, 0, 0, 0, 5, 0x08, 0x12, 0x92, 0x01, 0x00]);
        let mut src = BytesMut::from(bytes.as_ref());
        let frame = decode(&mut src, DEFAULT_MAX_FRAME_SIZE).unwrap().unwrap();
        assert_eq!(frame, Frame::new(CommandPing {}));
        assert!(src.is_empty());
    }

    #[test]
    fn a_send_frame_round_trips_with_its_checksum() {
        let frame = send_frame();
        let mut bytes = encoded(&frame);
        assert_eq!(bytes.len(), frame.encoded_len());
        let command_size = u32::from_be_bytes(bytes[4..8].try_into().unwrap()) as usize;
        let magic_at = 8 + command_size;
        assert_eq!(bytes[magic_at..magic_at + 2], [0x0e, 0x01]);
        let checksum = u32::from_be_bytes(bytes[magic_at + 2..magic_at + 6].try_into().unwrap());
        assert_eq!(checksum, magnetar_core::hash::crc32c(&bytes[magic_at + 6..]));
        assert_eq!(decode(&mut bytes, DEFAULT_MAX_FRAME_SIZE).unwrap(), Some(frame));
    }

    #[test]
    fn encode_payload_command_matches_encode() {
        let frame = send_frame();
        let bytes = encode_payload_command(&frame.command, frame.payload.as_ref().unwrap());
        assert_eq!(bytes, encoded(&frame).freeze());
    }

    #[test]
    fn a_partial_frame_waits_for_more_bytes() {
        let bytes = encoded(&send_frame());
        let mut src = BytesMut::from(&bytes[..bytes.len() - 1]);
        assert_eq!(decode(&mut src, DEFAULT_MAX_FRAME_SIZE).unwrap(), None);
        assert_eq!(src.len(), bytes.len() - 1, "nothing consumed");
    }

    #[test]
    fn a_corrupt_payload_is_a_checksum_mismatch_and_the_next_frame_still_decodes() {
        let frame = send_frame();
        let mut src = encoded(&frame);
        let last = src.len() - 1;
        src[last] ^= 0x01;
        src.extend_from_slice(&encode_command(&CommandPing {}.into()));
        match decode(&mut src, DEFAULT_MAX_FRAME_SIZE) {
            Err(ProtocolError::ChecksumMismatch(mismatch)) => {
                assert_eq!(mismatch.command, *frame.command);
                assert_ne!(mismatch.expected, mismatch.computed);
            }
            other => panic!("expected a checksum mismatch, got {other:?}"),
        }
        assert_eq!(decode(&mut src, DEFAULT_MAX_FRAME_SIZE).unwrap(), Some(Frame::new(CommandPing {})));
    }

    #[test]
    fn a_frame_above_the_limit_is_refused_from_its_size_field() {
        let mut src = BytesMut::from(&[0x00, 0x60, 0x00, 0x00][..]);
        let error = decode(&mut src, DEFAULT_MAX_FRAME_SIZE).unwrap_err();
        assert!(matches!(error, ProtocolError::FrameTooLarge { size: 0x0060_0004, limit: DEFAULT_MAX_FRAME_SIZE }));
    }

    #[test]
    fn encode_refuses_a_frame_above_the_limit() {
        let frame = send_frame();
        let error = encode(&frame, &mut BytesMut::new(), frame.encoded_len() - 1).unwrap_err();
        assert!(matches!(error, ProtocolError::FrameTooLarge { .. }));
    }

    #[test]
    fn a_command_size_past_the_frame_is_truncated() {
        let mut src = BytesMut::new();
        src.put_u32(8);
        src.put_u32(100);
        src.put_u32(0);
        assert!(matches!(decode(&mut src, DEFAULT_MAX_FRAME_SIZE), Err(ProtocolError::Truncated { .. })));
    }

    #[test]
    fn a_wrong_magic_number_is_refused() {
        let mut src = encoded(&send_frame());
        let command_size = u32::from_be_bytes(src[4..8].try_into().unwrap()) as usize;
        src[8 + command_size + 1] = 0x07;
        assert!(matches!(decode(&mut src, DEFAULT_MAX_FRAME_SIZE), Err(ProtocolError::BadMagic { found: 0x0e07 })));
    }

    #[test]
    fn garbage_in_the_command_is_invalid_protobuf() {
        let mut src = BytesMut::new();
        src.put_u32(6);
        src.put_u32(2);
        src.put_slice(&[0xff, 0xff]);
        assert!(matches!(decode(&mut src, DEFAULT_MAX_FRAME_SIZE), Err(ProtocolError::InvalidProtobuf { .. })));
    }

    #[test]
    fn a_command_without_its_message_is_a_missing_field() {
        let command = BaseCommand { r#type: crate::proto::CommandType::Send as i32, ..Default::default() };
        let mut src = BytesMut::from(encode_command(&command).as_ref());
        assert!(matches!(decode(&mut src, DEFAULT_MAX_FRAME_SIZE), Err(ProtocolError::MissingField(_))));
    }

    #[test]
    fn broker_entry_metadata_before_the_checksum_is_accepted() {
        let frame = send_frame();
        let payload = frame.payload.as_ref().unwrap();
        let entry = BrokerEntryMetadata { broker_timestamp: Some(1_700_000_000_123), index: Some(41) };
        let command = frame.command.encode_to_vec();
        let mut rest = BytesMut::new();
        rest.put_u16(MAGIC_BROKER_ENTRY_METADATA);
        rest.put_u32(entry.encoded_len() as u32);
        entry.encode(&mut rest).unwrap();
        rest.put_u16(MAGIC_CHECKSUM);
        rest.put_u32(payload.checksum());
        payload.write_to(&mut rest);
        let mut src = BytesMut::new();
        src.put_u32((4 + command.len() + rest.len()) as u32);
        src.put_u32(command.len() as u32);
        src.put_slice(&command);
        src.put_slice(&rest);

        let decoded = decode(&mut src, DEFAULT_MAX_FRAME_SIZE).unwrap().unwrap();
        let decoded_payload = decoded.payload.unwrap();
        assert_eq!(decoded_payload.broker_entry_metadata(), Some(&entry));
        assert_eq!(decoded_payload.metadata(), payload.metadata());
        assert_eq!(decoded_payload.data(), payload.data());
    }
}
