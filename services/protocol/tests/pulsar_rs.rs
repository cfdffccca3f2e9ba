//! Cross-check against an independent implementation: pulsar-rs (the `pulsar` crate), whose
//! types are generated from Pulsar's `.proto`. Each message is built the same way with both:
//! the two encodings must be the same bytes, and each side must decode the other's bytes into
//! the values it was built with. Frames go through pulsar-rs's own codec both ways.

use std::fmt::Debug;

use bytes::{Bytes, BytesMut};
use magnetar_protocol::frame::{self, DEFAULT_MAX_FRAME_SIZE};
use magnetar_protocol::proto as ours;
use magnetar_protocol::{Frame, Payload};
use prost_013::Message as _;
use pulsar::proto as theirs;
use tokio_util::codec::{Decoder, Encoder};

/// Same bytes both ways, and each side decodes the other's bytes into equal values.
fn same<O, T>(ours: &O, theirs: &T)
where
    O: prost::Message + Default + PartialEq + Debug,
    T: prost_013::Message + Default + PartialEq + Debug,
{
    let our_bytes = ours.encode_to_vec();
    let their_bytes = theirs.encode_to_vec();
    assert_eq!(our_bytes, their_bytes, "encodings differ\n ours: {ours:?}\ntheirs: {theirs:?}");
    assert_eq!(&O::decode(&their_bytes[..]).unwrap(), ours);
    assert_eq!(&T::decode(&our_bytes[..]).unwrap(), theirs);
}

fn our_id() -> ours::MessageIdData {
    ours::MessageIdData {
        ledger_id: 17,
        entry_id: 4,
        partition: Some(2),
        batch_index: Some(3),
        ack_set: vec![-9, 0x7fff_ffff_ffff],
        batch_size: Some(10),
        first_chunk_message_id: None,
    }
}

fn their_id() -> theirs::MessageIdData {
    theirs::MessageIdData {
        ledger_id: 17,
        entry_id: 4,
        partition: Some(2),
        batch_index: Some(3),
        ack_set: vec![-9, 0x7fff_ffff_ffff],
        batch_size: Some(10),
        first_chunk_message_id: None,
    }
}

fn our_connect() -> ours::CommandConnect {
    ours::CommandConnect {
        client_version: "Pulsar-CPP-v3.7.0".into(),
        auth_method_name: Some("token".into()),
        auth_data: Some(b"eyJhbGciOiJIUzI1NiJ9.e30.sig".to_vec()),
        protocol_version: Some(21),
        proxy_to_broker_url: Some("pulsar://broker-2:6650".into()),
        feature_flags: Some(ours::FeatureFlags {
            supports_auth_refresh: Some(true),
            supports_broker_entry_metadata: Some(true),
            supports_partial_producer: Some(false),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn their_connect() -> theirs::CommandConnect {
    theirs::CommandConnect {
        client_version: "Pulsar-CPP-v3.7.0".into(),
        auth_method_name: Some("token".into()),
        auth_data: Some(b"eyJhbGciOiJIUzI1NiJ9.e30.sig".to_vec()),
        protocol_version: Some(21),
        proxy_to_broker_url: Some("pulsar://broker-2:6650".into()),
        feature_flags: Some(theirs::FeatureFlags {
            supports_auth_refresh: Some(true),
            supports_broker_entry_metadata: Some(true),
            supports_partial_producer: Some(false),
        }),
        ..Default::default()
    }
}

fn our_metadata() -> ours::MessageMetadata {
    ours::MessageMetadata {
        producer_name: "standalone-0-7".into(),
        sequence_id: 41,
        publish_time: 1_700_000_000_123,
        properties: vec![ours::KeyValue::new("k", "v"), ours::KeyValue::new("empty", "")],
        replicated_from: Some("us-east".into()),
        partition_key: Some("order-7".into()),
        replicate_to: vec!["eu-west".into()],
        compression: Some(ours::CompressionType::Zstd as i32),
        uncompressed_size: Some(2048),
        num_messages_in_batch: Some(1),
        event_time: Some(1_699_999_999_000),
        schema_version: Some(vec![0, 0, 0, 0, 0, 0, 0, 3]),
        partition_key_b64_encoded: Some(false),
        ordering_key: Some(vec![1, 2, 3]),
        deliver_at_time: Some(1_700_000_060_000),
        marker_type: Some(0),
        txnid_least_bits: Some(5),
        txnid_most_bits: Some(6),
        highest_sequence_id: Some(43),
        null_value: Some(false),
        uuid: Some("standalone-0-7-41".into()),
        num_chunks_from_msg: Some(3),
        total_chunk_msg_size: Some(12_000_000),
        chunk_id: Some(1),
        null_partition_key: Some(false),
        ..Default::default()
    }
}

fn their_metadata() -> theirs::MessageMetadata {
    theirs::MessageMetadata {
        producer_name: "standalone-0-7".into(),
        sequence_id: 41,
        publish_time: 1_700_000_000_123,
        properties: vec![
            theirs::KeyValue { key: "k".into(), value: "v".into() },
            theirs::KeyValue { key: "empty".into(), value: "".into() },
        ],
        replicated_from: Some("us-east".into()),
        partition_key: Some("order-7".into()),
        replicate_to: vec!["eu-west".into()],
        compression: Some(theirs::CompressionType::Zstd as i32),
        uncompressed_size: Some(2048),
        num_messages_in_batch: Some(1),
        event_time: Some(1_699_999_999_000),
        schema_version: Some(vec![0, 0, 0, 0, 0, 0, 0, 3]),
        partition_key_b64_encoded: Some(false),
        ordering_key: Some(vec![1, 2, 3]),
        deliver_at_time: Some(1_700_000_060_000),
        marker_type: Some(0),
        txnid_least_bits: Some(5),
        txnid_most_bits: Some(6),
        highest_sequence_id: Some(43),
        null_value: Some(false),
        uuid: Some("standalone-0-7-41".into()),
        num_chunks_from_msg: Some(3),
        total_chunk_msg_size: Some(12_000_000),
        chunk_id: Some(1),
        null_partition_key: Some(false),
        ..Default::default()
    }
}

fn our_send() -> ours::CommandSend {
    ours::CommandSend {
        producer_id: 3,
        sequence_id: 41,
        num_messages: Some(3),
        highest_sequence_id: Some(43),
        is_chunk: Some(true),
        ..Default::default()
    }
}

fn their_send() -> theirs::CommandSend {
    theirs::CommandSend {
        producer_id: 3,
        sequence_id: 41,
        num_messages: Some(3),
        highest_sequence_id: Some(43),
        is_chunk: Some(true),
        ..Default::default()
    }
}

fn their_base(r#type: theirs::base_command::Type) -> theirs::BaseCommand {
    theirs::BaseCommand { r#type: r#type as i32, ..Default::default() }
}

#[test]
fn connect_and_connected_match() {
    same(&our_connect(), &their_connect());
    same(
        &ours::BaseCommand::from(our_connect()),
        &theirs::BaseCommand { connect: Some(their_connect()), ..their_base(theirs::base_command::Type::Connect) },
    );
    let connected = ours::CommandConnected {
        server_version: "Magnetar 0.1.0".into(),
        protocol_version: Some(19),
        max_message_size: Some(5 * 1024 * 1024),
        feature_flags: None,
    };
    let their_connected = theirs::CommandConnected {
        server_version: "Magnetar 0.1.0".into(),
        protocol_version: Some(19),
        max_message_size: Some(5 * 1024 * 1024),
    };
    same(&connected, &their_connected);
    same(
        &ours::BaseCommand::from(connected),
        &theirs::BaseCommand { connected: Some(their_connected), ..their_base(theirs::base_command::Type::Connected) },
    );
}

#[test]
fn producer_matches() {
    let producer = ours::CommandProducer {
        topic: "persistent://public/default/orders".into(),
        producer_id: 3,
        request_id: 12,
        producer_name: Some("orders-writer".into()),
        encrypted: Some(false),
        metadata: vec![ours::KeyValue::new("app", "billing")],
        schema: Some(ours::Schema {
            name: "orders".into(),
            schema_data: br#"{"type":"record"}"#.to_vec(),
            r#type: ours::SchemaType::Json as i32,
            properties: vec![ours::KeyValue::new("__alwaysAllowNull", "true")],
        }),
        epoch: Some(2),
        user_provided_producer_name: Some(true),
        producer_access_mode: Some(ours::ProducerAccessMode::Exclusive as i32),
        topic_epoch: Some(9),
        txn_enabled: Some(false),
        initial_subscription_name: Some("audit".into()),
    };
    let theirs = theirs::CommandProducer {
        topic: "persistent://public/default/orders".into(),
        producer_id: 3,
        request_id: 12,
        producer_name: Some("orders-writer".into()),
        encrypted: Some(false),
        metadata: vec![theirs::KeyValue { key: "app".into(), value: "billing".into() }],
        schema: Some(theirs::Schema {
            name: "orders".into(),
            schema_data: br#"{"type":"record"}"#.to_vec(),
            r#type: theirs::schema::Type::Json as i32,
            properties: vec![theirs::KeyValue { key: "__alwaysAllowNull".into(), value: "true".into() }],
        }),
        epoch: Some(2),
        user_provided_producer_name: Some(true),
        producer_access_mode: Some(theirs::ProducerAccessMode::Exclusive as i32),
        topic_epoch: Some(9),
        txn_enabled: Some(false),
        initial_subscription_name: Some("audit".into()),
    };
    same(&producer, &theirs);
    same(
        &ours::BaseCommand::from(producer),
        &theirs::BaseCommand { producer: Some(theirs), ..their_base(theirs::base_command::Type::Producer) },
    );
}

#[test]
fn send_and_message_metadata_match() {
    same(&our_send(), &their_send());
    same(&our_metadata(), &their_metadata());
    let single = ours::SingleMessageMetadata {
        properties: vec![ours::KeyValue::new("a", "b")],
        partition_key: Some("key".into()),
        payload_size: 0,
        compacted_out: Some(false),
        event_time: Some(5),
        ordering_key: Some(vec![9]),
        sequence_id: Some(42),
        null_value: Some(true),
        ..Default::default()
    };
    let their_single = theirs::SingleMessageMetadata {
        properties: vec![theirs::KeyValue { key: "a".into(), value: "b".into() }],
        partition_key: Some("key".into()),
        payload_size: 0,
        compacted_out: Some(false),
        event_time: Some(5),
        ordering_key: Some(vec![9]),
        sequence_id: Some(42),
        null_value: Some(true),
        ..Default::default()
    };
    same(&single, &their_single);
}

#[test]
fn subscribe_with_key_shared_meta_matches() {
    let subscribe = ours::CommandSubscribe {
        topic: "persistent://public/default/orders-partition-0".into(),
        subscription: "billing".into(),
        sub_type: ours::SubType::KeyShared as i32,
        consumer_id: 8,
        request_id: 13,
        consumer_name: Some("c-1".into()),
        priority_level: Some(0),
        durable: Some(false),
        start_message_id: Some(our_id()),
        metadata: vec![ours::KeyValue::new("m", "n")],
        read_compacted: Some(false),
        initial_position: Some(ours::InitialPosition::Earliest as i32),
        replicate_subscription_state: Some(false),
        force_topic_creation: Some(true),
        start_message_rollback_duration_sec: Some(60),
        key_shared_meta: Some(ours::KeySharedMeta {
            key_shared_mode: ours::KeySharedMode::Sticky as i32,
            hash_ranges: vec![ours::IntRange { start: 0, end: 32767 }, ours::IntRange { start: 40000, end: 65535 }],
            allow_out_of_order_delivery: Some(true),
        }),
        subscription_properties: vec![ours::KeyValue::new("team", "b")],
        consumer_epoch: Some(1),
        schema: None,
    };
    let theirs = theirs::CommandSubscribe {
        topic: "persistent://public/default/orders-partition-0".into(),
        subscription: "billing".into(),
        sub_type: theirs::command_subscribe::SubType::KeyShared as i32,
        consumer_id: 8,
        request_id: 13,
        consumer_name: Some("c-1".into()),
        priority_level: Some(0),
        durable: Some(false),
        start_message_id: Some(their_id()),
        metadata: vec![theirs::KeyValue { key: "m".into(), value: "n".into() }],
        read_compacted: Some(false),
        initial_position: Some(theirs::command_subscribe::InitialPosition::Earliest as i32),
        replicate_subscription_state: Some(false),
        force_topic_creation: Some(true),
        start_message_rollback_duration_sec: Some(60),
        key_shared_meta: Some(theirs::KeySharedMeta {
            key_shared_mode: theirs::KeySharedMode::Sticky as i32,
            hash_ranges: vec![theirs::IntRange { start: 0, end: 32767 }, theirs::IntRange { start: 40000, end: 65535 }],
            allow_out_of_order_delivery: Some(true),
        }),
        subscription_properties: vec![theirs::KeyValue { key: "team".into(), value: "b".into() }],
        consumer_epoch: Some(1),
        schema: None,
    };
    same(&subscribe, &theirs);
    same(
        &ours::BaseCommand::from(subscribe),
        &theirs::BaseCommand { subscribe: Some(theirs), ..their_base(theirs::base_command::Type::Subscribe) },
    );
}

#[test]
fn message_and_ack_with_ack_set_match() {
    let message = ours::CommandMessage {
        consumer_id: 8,
        message_id: our_id(),
        redelivery_count: Some(2),
        ack_set: vec![-1, 6],
        consumer_epoch: Some(1),
    };
    let their_message = theirs::CommandMessage {
        consumer_id: 8,
        message_id: their_id(),
        redelivery_count: Some(2),
        ack_set: vec![-1, 6],
        consumer_epoch: Some(1),
    };
    same(&message, &their_message);

    let ack = ours::CommandAck {
        consumer_id: 8,
        ack_type: ours::AckType::Individual as i32,
        message_id: vec![our_id(), ours::MessageIdData { ledger_id: 1, entry_id: 2, ..Default::default() }],
        validation_error: Some(ours::AckValidationError::DecompressionError as i32),
        properties: vec![ours::KeyLongValue { key: "k".into(), value: 3 }],
        request_id: Some(77),
        ..Default::default()
    };
    let their_ack = theirs::CommandAck {
        consumer_id: 8,
        ack_type: theirs::command_ack::AckType::Individual as i32,
        message_id: vec![their_id(), theirs::MessageIdData { ledger_id: 1, entry_id: 2, ..Default::default() }],
        validation_error: Some(theirs::command_ack::ValidationError::DecompressionError as i32),
        properties: vec![theirs::KeyLongValue { key: "k".into(), value: 3 }],
        request_id: Some(77),
        ..Default::default()
    };
    same(&ack, &their_ack);
    same(
        &ours::BaseCommand::from(ack),
        &theirs::BaseCommand { ack: Some(their_ack), ..their_base(theirs::base_command::Type::Ack) },
    );
}

#[test]
fn lookup_response_and_error_match() {
    let lookup = ours::CommandLookupTopicResponse {
        broker_service_url: Some("pulsar://127.0.0.1:6650".into()),
        broker_service_url_tls: None,
        response: Some(ours::LookupResult::Connect as i32),
        request_id: 5,
        authoritative: Some(true),
        error: None,
        message: None,
        proxy_through_service_url: Some(true),
    };
    let their_lookup = theirs::CommandLookupTopicResponse {
        broker_service_url: Some("pulsar://127.0.0.1:6650".into()),
        response: Some(theirs::command_lookup_topic_response::LookupType::Connect as i32),
        request_id: 5,
        authoritative: Some(true),
        proxy_through_service_url: Some(true),
        ..Default::default()
    };
    same(&lookup, &their_lookup);
    same(
        &ours::BaseCommand::from(lookup),
        &theirs::BaseCommand {
            lookup_topic_response: Some(their_lookup),
            ..their_base(theirs::base_command::Type::LookupResponse)
        },
    );

    let error = ours::CommandError {
        request_id: u64::MAX,
        error: ours::ServerError::AuthenticationError as i32,
        message: "invalid token".into(),
    };
    let their_error = theirs::CommandError {
        request_id: u64::MAX,
        error: theirs::ServerError::AuthenticationError as i32,
        message: "invalid token".into(),
    };
    same(&error, &their_error);
    same(
        &ours::BaseCommand::from(error),
        &theirs::BaseCommand { error: Some(their_error), ..their_base(theirs::base_command::Type::Error) },
    );
}

/// Every enum value pulsar-rs knows, we know under the same name (ours may know newer ones).
#[test]
fn enums_agree_on_names_and_numbers() {
    fn agree<O: TryFrom<i32> + Debug, T: TryFrom<i32> + Debug>(what: &str) {
        for value in 0..128 {
            if let Ok(theirs) = T::try_from(value) {
                let ours = O::try_from(value).unwrap_or_else(|_| panic!("{what} {value} ({theirs:?}) missing"));
                assert_eq!(format!("{ours:?}"), format!("{theirs:?}"), "{what} {value}");
            }
        }
    }
    agree::<ours::CommandType, theirs::base_command::Type>("command type");
    agree::<ours::ServerError, theirs::ServerError>("server error");
    agree::<ours::ProtocolVersion, theirs::ProtocolVersion>("protocol version");
    agree::<ours::CompressionType, theirs::CompressionType>("compression");
    agree::<ours::ProducerAccessMode, theirs::ProducerAccessMode>("access mode");
    agree::<ours::SubType, theirs::command_subscribe::SubType>("subscription type");
    agree::<ours::InitialPosition, theirs::command_subscribe::InitialPosition>("initial position");
    agree::<ours::KeySharedMode, theirs::KeySharedMode>("key shared mode");
    agree::<ours::AckType, theirs::command_ack::AckType>("ack type");
    agree::<ours::AckValidationError, theirs::command_ack::ValidationError>("validation error");
    agree::<ours::LookupResult, theirs::command_lookup_topic_response::LookupType>("lookup result");
    agree::<ours::SchemaType, theirs::schema::Type>("schema type");
    agree::<ours::TxnAction, theirs::TxnAction>("txn action");
}

#[test]
fn a_send_frame_from_pulsar_rs_decodes_with_ours() {
    let mut wire = BytesMut::new();
    let message = pulsar::message::Message {
        command: theirs::BaseCommand { send: Some(their_send()), ..their_base(theirs::base_command::Type::Send) },
        payload: Some(pulsar::message::Payload { metadata: their_metadata(), data: b"compressed bytes".to_vec() }),
    };
    pulsar::message::Codec.encode(message, &mut wire).unwrap();

    let frame = frame::decode(&mut wire, DEFAULT_MAX_FRAME_SIZE).unwrap().unwrap();
    assert!(wire.is_empty());
    assert_eq!(*frame.command, ours::BaseCommand::from(our_send()));
    let payload = frame.payload.unwrap();
    assert_eq!(payload.metadata(), &our_metadata());
    assert_eq!(payload.metadata_bytes().as_ref(), their_metadata().encode_to_vec().as_slice());
    assert_eq!(payload.data().as_ref(), b"compressed bytes");
}

#[test]
fn a_message_frame_from_ours_decodes_with_pulsar_rs() {
    let command =
        ours::CommandMessage { consumer_id: 8, message_id: our_id(), redelivery_count: Some(1), ..Default::default() };
    let ours = Frame::with_payload(command, Payload::new(our_metadata(), Bytes::from_static(b"body")));
    let mut wire = BytesMut::new();
    frame::encode(&ours, &mut wire, DEFAULT_MAX_FRAME_SIZE).unwrap();

    let message = pulsar::message::Codec.decode(&mut wire).unwrap().unwrap();
    let their_command = theirs::CommandMessage {
        consumer_id: 8,
        message_id: their_id(),
        redelivery_count: Some(1),
        ..Default::default()
    };
    assert_eq!(message.command.r#type, theirs::base_command::Type::Message as i32);
    assert_eq!(message.command.message, Some(their_command));
    let payload = message.payload.unwrap();
    assert_eq!(payload.metadata, their_metadata());
    assert_eq!(payload.data, b"body");
}

#[test]
fn simple_frames_match_pulsar_rs_byte_for_byte() {
    let mut theirs = BytesMut::new();
    pulsar::message::Codec
        .encode(
            pulsar::message::Message {
                command: theirs::BaseCommand {
                    connect: Some(their_connect()),
                    ..their_base(theirs::base_command::Type::Connect)
                },
                payload: None,
            },
            &mut theirs,
        )
        .unwrap();
    assert_eq!(frame::encode_command(&our_connect().into()), theirs.freeze());
}

mod random {
    //! The same cross-check over random values.

    use proptest::prelude::*;

    use super::*;

    fn key_values() -> impl Strategy<Value = Vec<(String, String)>> {
        proptest::collection::vec((".{0,6}", ".{0,6}"), 0..3)
    }

    type MetadataValues = (
        (String, u64, u64, Vec<(String, String)>, Option<String>, Option<i32>, Option<u32>),
        (Option<i32>, Option<u64>, Option<Vec<u8>>, Option<u64>, Option<String>, Option<i32>, Option<bool>),
    );

    fn metadata_values() -> impl Strategy<Value = MetadataValues> {
        (
            (
                ".{0,12}",
                any::<u64>(),
                any::<u64>(),
                key_values(),
                proptest::option::of(".{0,8}"),
                proptest::option::of(0i32..5),
                proptest::option::of(any::<u32>()),
            ),
            (
                proptest::option::of(any::<i32>()),
                proptest::option::of(any::<u64>()),
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
                proptest::option::of(any::<u64>()),
                proptest::option::of("[a-z0-9-]{0,12}"),
                proptest::option::of(any::<i32>()),
                proptest::option::of(any::<bool>()),
            ),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn random_message_metadata_matches(values in metadata_values()) {
            let (
                (producer_name, sequence_id, publish_time, properties, partition_key, compression, uncompressed_size),
                (num_messages_in_batch, event_time, ordering_key, highest_sequence_id, uuid, chunk_id, null_value),
            ) = values;
            let ours = ours::MessageMetadata {
                producer_name: producer_name.clone(),
                sequence_id,
                publish_time,
                properties: properties.iter().map(|(k, v)| ours::KeyValue::new(k, v)).collect(),
                partition_key: partition_key.clone(),
                compression,
                uncompressed_size,
                num_messages_in_batch,
                event_time,
                ordering_key: ordering_key.clone(),
                highest_sequence_id,
                uuid: uuid.clone(),
                chunk_id,
                null_value,
                ..Default::default()
            };
            let theirs = theirs::MessageMetadata {
                producer_name,
                sequence_id,
                publish_time,
                properties: properties.into_iter().map(|(key, value)| theirs::KeyValue { key, value }).collect(),
                partition_key,
                compression,
                uncompressed_size,
                num_messages_in_batch,
                event_time,
                ordering_key,
                highest_sequence_id,
                uuid,
                chunk_id,
                null_value,
                ..Default::default()
            };
            same(&ours, &theirs);
        }

        #[test]
        fn random_acks_match(
            consumer_id in any::<u64>(),
            cumulative in any::<bool>(),
            ids in proptest::collection::vec(
                (any::<u64>(), any::<u64>(), proptest::option::of(any::<i32>()), proptest::option::of(any::<i32>()),
                 proptest::collection::vec(any::<i64>(), 0..3)),
                0..4,
            ),
            request_id in proptest::option::of(any::<u64>()),
        ) {
            let ack_type = i32::from(cumulative);
            let ours = ours::CommandAck {
                consumer_id,
                ack_type,
                message_id: ids
                    .iter()
                    .map(|(ledger_id, entry_id, partition, batch_index, ack_set)| ours::MessageIdData {
                        ledger_id: *ledger_id,
                        entry_id: *entry_id,
                        partition: *partition,
                        batch_index: *batch_index,
                        ack_set: ack_set.clone(),
                        ..Default::default()
                    })
                    .collect(),
                request_id,
                ..Default::default()
            };
            let theirs = theirs::CommandAck {
                consumer_id,
                ack_type,
                message_id: ids
                    .into_iter()
                    .map(|(ledger_id, entry_id, partition, batch_index, ack_set)| theirs::MessageIdData {
                        ledger_id,
                        entry_id,
                        partition,
                        batch_index,
                        ack_set,
                        ..Default::default()
                    })
                    .collect(),
                request_id,
                ..Default::default()
            };
            same(&ours::BaseCommand::from(ours), &theirs::BaseCommand {
                ack: Some(theirs),
                ..their_base(theirs::base_command::Type::Ack)
            });
        }
    }
}
