//! Property tests of the codec: frames cut anywhere decode the same, corruption is caught,
//! every compression codec and batch layout round-trips, and hostile bytes never panic.

use bytes::{Bytes, BytesMut};
use magnetar_protocol::batch;
use magnetar_protocol::frame::{self, DEFAULT_MAX_FRAME_SIZE};
use magnetar_protocol::proto::{
    BaseCommand, CommandAck, CommandFlow, CommandMessage, CommandSend, CompressionType, KeyValue, MessageIdData,
    MessageMetadata, SingleMessageMetadata,
};
use magnetar_protocol::{Frame, Payload, ProtocolError, PulsarCodec, SingleMessage, compression};
use proptest::prelude::*;
use tokio_util::codec::Decoder;

fn codec() -> impl Strategy<Value = CompressionType> {
    prop_oneof![
        Just(CompressionType::None),
        Just(CompressionType::Lz4),
        Just(CompressionType::Zlib),
        Just(CompressionType::Zstd),
        Just(CompressionType::Snappy),
    ]
}

fn message_id() -> impl Strategy<Value = MessageIdData> {
    (any::<u64>(), any::<u64>(), proptest::option::of(-1i32..64), proptest::collection::vec(any::<i64>(), 0..3))
        .prop_map(|(ledger_id, entry_id, batch_index, ack_set)| MessageIdData {
            ledger_id,
            entry_id,
            batch_index,
            ack_set,
            ..Default::default()
        })
}

fn metadata() -> impl Strategy<Value = MessageMetadata> {
    (
        "[a-z0-9-]{0,20}",
        any::<u64>(),
        any::<u64>(),
        proptest::option::of("[a-z]{1,8}"),
        proptest::collection::vec(("[a-z]{1,5}", "[a-z]{0,5}"), 0..3),
        proptest::option::of(1i32..100),
    )
        .prop_map(
            |(producer_name, sequence_id, publish_time, partition_key, properties, num_messages_in_batch)| {
                MessageMetadata {
                    producer_name,
                    sequence_id,
                    publish_time,
                    partition_key,
                    properties: properties.into_iter().map(|(k, v)| KeyValue::new(k, v)).collect(),
                    num_messages_in_batch,
                    ..Default::default()
                }
            },
        )
}

fn command() -> impl Strategy<Value = BaseCommand> {
    prop_oneof![
        (any::<u64>(), any::<u32>()).prop_map(|(consumer_id, message_permits)| CommandFlow {
            consumer_id,
            message_permits
        }
        .into()),
        (any::<u64>(), proptest::collection::vec(message_id(), 0..4), proptest::option::of(any::<u64>())).prop_map(
            |(consumer_id, message_id, request_id)| CommandAck {
                consumer_id,
                message_id,
                request_id,
                ..Default::default()
            }
            .into()
        ),
    ]
}

fn payload_frame() -> impl Strategy<Value = Frame> {
    (
        any::<u64>(),
        any::<u64>(),
        message_id(),
        metadata(),
        proptest::collection::vec(any::<u8>(), 0..300),
        any::<bool>(),
    )
        .prop_map(|(producer_id, sequence_id, id, metadata, data, is_send)| {
            let payload = Payload::new(metadata, Bytes::from(data));
            if is_send {
                Frame::with_payload(CommandSend { producer_id, sequence_id, ..Default::default() }, payload)
            } else {
                Frame::with_payload(
                    CommandMessage { consumer_id: producer_id, message_id: id, ..Default::default() },
                    payload,
                )
            }
        })
}

fn any_frame() -> impl Strategy<Value = Frame> {
    prop_oneof![command().prop_map(|command| Frame { command: Box::new(command), payload: None }), payload_frame()]
}

fn encode(frames: &[Frame]) -> Vec<u8> {
    let mut bytes = BytesMut::new();
    for frame in frames {
        frame::encode(frame, &mut bytes, DEFAULT_MAX_FRAME_SIZE).unwrap();
    }
    bytes.to_vec()
}

/// Feeds `wire` to a codec in the given pieces, collecting every frame decoded.
fn decode_in_pieces(wire: &[u8], cuts: &[usize]) -> Vec<Frame> {
    let mut codec = PulsarCodec::new();
    let mut buffer = BytesMut::new();
    let mut frames = Vec::new();
    let mut start = 0;
    for &end in cuts.iter().chain(std::iter::once(&wire.len())) {
        buffer.extend_from_slice(&wire[start..end]);
        start = end;
        while let Some(item) = codec.decode(&mut buffer).unwrap() {
            frames.push(item.unwrap());
        }
    }
    assert!(buffer.is_empty(), "bytes left over");
    frames
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_frame_split_at_any_byte_decodes_the_same(frame in any_frame()) {
        let wire = encode(std::slice::from_ref(&frame));
        for cut in 0..=wire.len() {
            prop_assert_eq!(decode_in_pieces(&wire, &[cut]), vec![frame.clone()]);
        }
    }

    #[test]
    fn frames_in_arbitrary_pieces_decode_in_order(
        frames in proptest::collection::vec(any_frame(), 1..6),
        cuts in proptest::collection::vec(any::<proptest::sample::Index>(), 0..12),
    ) {
        let wire = encode(&frames);
        let mut cuts: Vec<usize> = cuts.iter().map(|index| index.index(wire.len() + 1)).collect();
        cuts.sort_unstable();
        prop_assert_eq!(decode_in_pieces(&wire, &cuts), frames);
    }

    #[test]
    fn a_frame_fed_byte_by_byte_decodes_the_same(frame in payload_frame()) {
        let wire = encode(std::slice::from_ref(&frame));
        let cuts: Vec<usize> = (1..wire.len()).collect();
        prop_assert_eq!(decode_in_pieces(&wire, &cuts), vec![frame]);
    }

    #[test]
    fn any_flipped_bit_after_the_magic_number_is_a_checksum_mismatch(
        frame in payload_frame(),
        position in any::<proptest::sample::Index>(),
        bit in 0u8..8,
    ) {
        let mut wire = encode(std::slice::from_ref(&frame));
        let command_size = u32::from_be_bytes(wire[4..8].try_into().unwrap()) as usize;
        // The checksum field and everything it covers.
        let checked_from = 8 + command_size + 2;
        let at = checked_from + position.index(wire.len() - checked_from);
        wire[at] ^= 1 << bit;
        let mut src = BytesMut::from(&wire[..]);
        match frame::decode(&mut src, DEFAULT_MAX_FRAME_SIZE) {
            Err(ProtocolError::ChecksumMismatch(mismatch)) => prop_assert_eq!(mismatch.command, *frame.command),
            other => prop_assert!(false, "expected a checksum mismatch, got {:?}", other),
        }
        prop_assert!(src.is_empty(), "the corrupt frame is consumed whole");
    }

    #[test]
    fn every_codec_round_trips(codec in codec(), data in proptest::collection::vec(any::<u8>(), 0..4096), repeat in 1usize..4) {
        let data = data.repeat(repeat);
        let compressed = compression::compress(codec, &data).unwrap();
        prop_assert_eq!(compression::decompress(codec, &compressed, data.len(), data.len()).unwrap(), data);
    }

    #[test]
    fn batches_build_and_split_back(
        messages in proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 0..200), proptest::option::of("[a-z]{1,8}"), proptest::option::of(any::<u64>())),
            0..20,
        ),
        codec in codec(),
        metadata in metadata(),
    ) {
        let messages: Vec<SingleMessage> = messages
            .into_iter()
            .map(|(payload, partition_key, sequence_id)| SingleMessage {
                metadata: SingleMessageMetadata {
                    payload_size: payload.len() as i32,
                    partition_key,
                    sequence_id,
                    ..Default::default()
                },
                payload: Bytes::from(payload),
            })
            .collect();
        let body = batch::build(&messages).unwrap();
        prop_assert_eq!(&batch::split(body, messages.len() as i32).unwrap(), &messages);

        let payload = Payload::batch(metadata, codec, &messages).unwrap();
        prop_assert_eq!(payload.num_messages(), messages.len() as i32);
        prop_assert_eq!(payload.split_batch(DEFAULT_MAX_FRAME_SIZE).unwrap(), messages);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut src = BytesMut::from(&bytes[..]);
        let mut codec = PulsarCodec::with_max_frame_size(1024);
        // Whatever the outcome, decoding returns.
        while let Ok(Some(_)) = codec.decode(&mut src) {}
        let _ = batch::split(Bytes::from(bytes.clone()), 3);
        let _ = Payload::parse(Bytes::from(bytes.clone()));
        for codec in [CompressionType::Lz4, CompressionType::Zlib, CompressionType::Zstd, CompressionType::Snappy] {
            let _ = compression::decompress(codec, &bytes, 4096, 4096);
        }
    }

    #[test]
    fn arbitrary_bytes_with_a_valid_frame_header_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut wire = BytesMut::new();
        wire.extend_from_slice(&(body.len() as u32).to_be_bytes());
        wire.extend_from_slice(&body);
        let _ = frame::decode(&mut wire, DEFAULT_MAX_FRAME_SIZE);
    }
}
