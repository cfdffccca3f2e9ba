//! `BaseCommand`, the envelope of every frame: a type plus exactly one command message whose
//! field number equals the type's value.

use prost::{Enumeration, Message};

use super::connection::*;
use super::consumer::*;
use super::lookup::*;
use super::producer::*;
use super::schema::*;
use super::txn::*;
use crate::error::ProtocolError;

/// `BaseCommand.Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Enumeration)]
#[repr(i32)]
pub enum CommandType {
    Connect = 2,
    Connected = 3,
    Subscribe = 4,
    Producer = 5,
    Send = 6,
    SendReceipt = 7,
    SendError = 8,
    Message = 9,
    Ack = 10,
    Flow = 11,
    Unsubscribe = 12,
    Success = 13,
    Error = 14,
    CloseProducer = 15,
    CloseConsumer = 16,
    ProducerSuccess = 17,
    Ping = 18,
    Pong = 19,
    RedeliverUnacknowledgedMessages = 20,
    PartitionedMetadata = 21,
    PartitionedMetadataResponse = 22,
    Lookup = 23,
    LookupResponse = 24,
    ConsumerStats = 25,
    ConsumerStatsResponse = 26,
    ReachedEndOfTopic = 27,
    Seek = 28,
    GetLastMessageId = 29,
    GetLastMessageIdResponse = 30,
    ActiveConsumerChange = 31,
    GetTopicsOfNamespace = 32,
    GetTopicsOfNamespaceResponse = 33,
    GetSchema = 34,
    GetSchemaResponse = 35,
    AuthChallenge = 36,
    AuthResponse = 37,
    AckResponse = 38,
    GetOrCreateSchema = 39,
    GetOrCreateSchemaResponse = 40,
    NewTxn = 50,
    NewTxnResponse = 51,
    AddPartitionToTxn = 52,
    AddPartitionToTxnResponse = 53,
    AddSubscriptionToTxn = 54,
    AddSubscriptionToTxnResponse = 55,
    EndTxn = 56,
    EndTxnResponse = 57,
    EndTxnOnPartition = 58,
    EndTxnOnPartitionResponse = 59,
    EndTxnOnSubscription = 60,
    EndTxnOnSubscriptionResponse = 61,
    TcClientConnectRequest = 62,
    TcClientConnectResponse = 63,
    WatchTopicList = 64,
    WatchTopicListSuccess = 65,
    WatchTopicUpdate = 66,
    WatchTopicListClose = 67,
    TopicMigrated = 68,
}

#[derive(Clone, PartialEq, Message)]
pub struct BaseCommand {
    #[prost(enumeration = "CommandType", required, tag = "1")]
    pub r#type: i32,
    #[prost(message, optional, tag = "2")]
    pub connect: Option<CommandConnect>,
    #[prost(message, optional, tag = "3")]
    pub connected: Option<CommandConnected>,
    #[prost(message, optional, tag = "4")]
    pub subscribe: Option<CommandSubscribe>,
    #[prost(message, optional, tag = "5")]
    pub producer: Option<CommandProducer>,
    #[prost(message, optional, tag = "6")]
    pub send: Option<CommandSend>,
    #[prost(message, optional, tag = "7")]
    pub send_receipt: Option<CommandSendReceipt>,
    #[prost(message, optional, tag = "8")]
    pub send_error: Option<CommandSendError>,
    #[prost(message, optional, tag = "9")]
    pub message: Option<CommandMessage>,
    #[prost(message, optional, tag = "10")]
    pub ack: Option<CommandAck>,
    #[prost(message, optional, tag = "11")]
    pub flow: Option<CommandFlow>,
    #[prost(message, optional, tag = "12")]
    pub unsubscribe: Option<CommandUnsubscribe>,
    #[prost(message, optional, tag = "13")]
    pub success: Option<CommandSuccess>,
    #[prost(message, optional, tag = "14")]
    pub error: Option<CommandError>,
    #[prost(message, optional, tag = "15")]
    pub close_producer: Option<CommandCloseProducer>,
    #[prost(message, optional, tag = "16")]
    pub close_consumer: Option<CommandCloseConsumer>,
    #[prost(message, optional, tag = "17")]
    pub producer_success: Option<CommandProducerSuccess>,
    #[prost(message, optional, tag = "18")]
    pub ping: Option<CommandPing>,
    #[prost(message, optional, tag = "19")]
    pub pong: Option<CommandPong>,
    #[prost(message, optional, tag = "20")]
    pub redeliver_unacknowledged_messages: Option<CommandRedeliverUnacknowledgedMessages>,
    #[prost(message, optional, tag = "21")]
    pub partition_metadata: Option<CommandPartitionedTopicMetadata>,
    #[prost(message, optional, tag = "22")]
    pub partition_metadata_response: Option<CommandPartitionedTopicMetadataResponse>,
    #[prost(message, optional, tag = "23")]
    pub lookup_topic: Option<CommandLookupTopic>,
    #[prost(message, optional, tag = "24")]
    pub lookup_topic_response: Option<CommandLookupTopicResponse>,
    #[prost(message, optional, tag = "25")]
    pub consumer_stats: Option<CommandConsumerStats>,
    #[prost(message, optional, tag = "26")]
    pub consumer_stats_response: Option<CommandConsumerStatsResponse>,
    #[prost(message, optional, tag = "27")]
    pub reached_end_of_topic: Option<CommandReachedEndOfTopic>,
    #[prost(message, optional, tag = "28")]
    pub seek: Option<CommandSeek>,
    #[prost(message, optional, tag = "29")]
    pub get_last_message_id: Option<CommandGetLastMessageId>,
    #[prost(message, optional, tag = "30")]
    pub get_last_message_id_response: Option<CommandGetLastMessageIdResponse>,
    #[prost(message, optional, tag = "31")]
    pub active_consumer_change: Option<CommandActiveConsumerChange>,
    #[prost(message, optional, tag = "32")]
    pub get_topics_of_namespace: Option<CommandGetTopicsOfNamespace>,
    #[prost(message, optional, tag = "33")]
    pub get_topics_of_namespace_response: Option<CommandGetTopicsOfNamespaceResponse>,
    #[prost(message, optional, tag = "34")]
    pub get_schema: Option<CommandGetSchema>,
    #[prost(message, optional, tag = "35")]
    pub get_schema_response: Option<CommandGetSchemaResponse>,
    #[prost(message, optional, tag = "36")]
    pub auth_challenge: Option<CommandAuthChallenge>,
    #[prost(message, optional, tag = "37")]
    pub auth_response: Option<CommandAuthResponse>,
    #[prost(message, optional, tag = "38")]
    pub ack_response: Option<CommandAckResponse>,
    #[prost(message, optional, tag = "39")]
    pub get_or_create_schema: Option<CommandGetOrCreateSchema>,
    #[prost(message, optional, tag = "40")]
    pub get_or_create_schema_response: Option<CommandGetOrCreateSchemaResponse>,
    #[prost(message, optional, tag = "50")]
    pub new_txn: Option<CommandNewTxn>,
    #[prost(message, optional, tag = "51")]
    pub new_txn_response: Option<CommandNewTxnResponse>,
    #[prost(message, optional, tag = "52")]
    pub add_partition_to_txn: Option<CommandAddPartitionToTxn>,
    #[prost(message, optional, tag = "53")]
    pub add_partition_to_txn_response: Option<CommandAddPartitionToTxnResponse>,
    #[prost(message, optional, tag = "54")]
    pub add_subscription_to_txn: Option<CommandAddSubscriptionToTxn>,
    #[prost(message, optional, tag = "55")]
    pub add_subscription_to_txn_response: Option<CommandAddSubscriptionToTxnResponse>,
    #[prost(message, optional, tag = "56")]
    pub end_txn: Option<CommandEndTxn>,
    #[prost(message, optional, tag = "57")]
    pub end_txn_response: Option<CommandEndTxnResponse>,
    #[prost(message, optional, tag = "58")]
    pub end_txn_on_partition: Option<CommandEndTxnOnPartition>,
    #[prost(message, optional, tag = "59")]
    pub end_txn_on_partition_response: Option<CommandEndTxnOnPartitionResponse>,
    #[prost(message, optional, tag = "60")]
    pub end_txn_on_subscription: Option<CommandEndTxnOnSubscription>,
    #[prost(message, optional, tag = "61")]
    pub end_txn_on_subscription_response: Option<CommandEndTxnOnSubscriptionResponse>,
    #[prost(message, optional, tag = "62")]
    pub tc_client_connect_request: Option<CommandTcClientConnectRequest>,
    #[prost(message, optional, tag = "63")]
    pub tc_client_connect_response: Option<CommandTcClientConnectResponse>,
    #[prost(message, optional, tag = "64")]
    pub watch_topic_list: Option<CommandWatchTopicList>,
    #[prost(message, optional, tag = "65")]
    pub watch_topic_list_success: Option<CommandWatchTopicListSuccess>,
    #[prost(message, optional, tag = "66")]
    pub watch_topic_update: Option<CommandWatchTopicUpdate>,
    #[prost(message, optional, tag = "67")]
    pub watch_topic_list_close: Option<CommandWatchTopicListClose>,
    #[prost(message, optional, tag = "68")]
    pub topic_migrated: Option<CommandTopicMigrated>,
}

/// One line per command: its type, its field in `BaseCommand`, its message. Generates the
/// `From<Command...> for BaseCommand` conversions and the presence check of `validate`.
macro_rules! commands {
    ($($variant:ident => $field:ident: $message:ident,)*) => {
        $(
            impl From<$message> for BaseCommand {
                fn from(command: $message) -> Self {
                    BaseCommand {
                        r#type: CommandType::$variant as i32,
                        $field: Some(command),
                        ..Default::default()
                    }
                }
            }
        )*

        impl BaseCommand {
            /// Whether the message the type names is present (prost does not enforce proto2's
            /// `required`; this is the check every dispatch relies on).
            fn has_command_of(&self, command_type: CommandType) -> bool {
                match command_type {
                    $(CommandType::$variant => self.$field.is_some(),)*
                }
            }

            /// The field name of a type's command, for error messages.
            fn field_name(command_type: CommandType) -> &'static str {
                match command_type {
                    $(CommandType::$variant => stringify!($field),)*
                }
            }
        }
    };
}

commands! {
    Connect => connect: CommandConnect,
    Connected => connected: CommandConnected,
    Subscribe => subscribe: CommandSubscribe,
    Producer => producer: CommandProducer,
    Send => send: CommandSend,
    SendReceipt => send_receipt: CommandSendReceipt,
    SendError => send_error: CommandSendError,
    Message => message: CommandMessage,
    Ack => ack: CommandAck,
    Flow => flow: CommandFlow,
    Unsubscribe => unsubscribe: CommandUnsubscribe,
    Success => success: CommandSuccess,
    Error => error: CommandError,
    CloseProducer => close_producer: CommandCloseProducer,
    CloseConsumer => close_consumer: CommandCloseConsumer,
    ProducerSuccess => producer_success: CommandProducerSuccess,
    Ping => ping: CommandPing,
    Pong => pong: CommandPong,
    RedeliverUnacknowledgedMessages => redeliver_unacknowledged_messages: CommandRedeliverUnacknowledgedMessages,
    PartitionedMetadata => partition_metadata: CommandPartitionedTopicMetadata,
    PartitionedMetadataResponse => partition_metadata_response: CommandPartitionedTopicMetadataResponse,
    Lookup => lookup_topic: CommandLookupTopic,
    LookupResponse => lookup_topic_response: CommandLookupTopicResponse,
    ConsumerStats => consumer_stats: CommandConsumerStats,
    ConsumerStatsResponse => consumer_stats_response: CommandConsumerStatsResponse,
    ReachedEndOfTopic => reached_end_of_topic: CommandReachedEndOfTopic,
    Seek => seek: CommandSeek,
    GetLastMessageId => get_last_message_id: CommandGetLastMessageId,
    GetLastMessageIdResponse => get_last_message_id_response: CommandGetLastMessageIdResponse,
    ActiveConsumerChange => active_consumer_change: CommandActiveConsumerChange,
    GetTopicsOfNamespace => get_topics_of_namespace: CommandGetTopicsOfNamespace,
    GetTopicsOfNamespaceResponse => get_topics_of_namespace_response: CommandGetTopicsOfNamespaceResponse,
    GetSchema => get_schema: CommandGetSchema,
    GetSchemaResponse => get_schema_response: CommandGetSchemaResponse,
    AuthChallenge => auth_challenge: CommandAuthChallenge,
    AuthResponse => auth_response: CommandAuthResponse,
    AckResponse => ack_response: CommandAckResponse,
    GetOrCreateSchema => get_or_create_schema: CommandGetOrCreateSchema,
    GetOrCreateSchemaResponse => get_or_create_schema_response: CommandGetOrCreateSchemaResponse,
    NewTxn => new_txn: CommandNewTxn,
    NewTxnResponse => new_txn_response: CommandNewTxnResponse,
    AddPartitionToTxn => add_partition_to_txn: CommandAddPartitionToTxn,
    AddPartitionToTxnResponse => add_partition_to_txn_response: CommandAddPartitionToTxnResponse,
    AddSubscriptionToTxn => add_subscription_to_txn: CommandAddSubscriptionToTxn,
    AddSubscriptionToTxnResponse => add_subscription_to_txn_response: CommandAddSubscriptionToTxnResponse,
    EndTxn => end_txn: CommandEndTxn,
    EndTxnResponse => end_txn_response: CommandEndTxnResponse,
    EndTxnOnPartition => end_txn_on_partition: CommandEndTxnOnPartition,
    EndTxnOnPartitionResponse => end_txn_on_partition_response: CommandEndTxnOnPartitionResponse,
    EndTxnOnSubscription => end_txn_on_subscription: CommandEndTxnOnSubscription,
    EndTxnOnSubscriptionResponse => end_txn_on_subscription_response: CommandEndTxnOnSubscriptionResponse,
    TcClientConnectRequest => tc_client_connect_request: CommandTcClientConnectRequest,
    TcClientConnectResponse => tc_client_connect_response: CommandTcClientConnectResponse,
    WatchTopicList => watch_topic_list: CommandWatchTopicList,
    WatchTopicListSuccess => watch_topic_list_success: CommandWatchTopicListSuccess,
    WatchTopicUpdate => watch_topic_update: CommandWatchTopicUpdate,
    WatchTopicListClose => watch_topic_list_close: CommandWatchTopicListClose,
    TopicMigrated => topic_migrated: CommandTopicMigrated,
}

/// A transaction request the broker refuses: which one, and the request id to answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxnRequest {
    pub command_type: CommandType,
    pub request_id: u64,
}

impl BaseCommand {
    /// The command's type, or the raw value of a type this crate does not know (a newer
    /// protocol); the caller decides whether to ignore it or close.
    pub fn command_type(&self) -> Result<CommandType, i32> {
        CommandType::try_from(self.r#type).map_err(|_| self.r#type)
    }

    /// Checks that the command its type names is present. A command of an unknown type passes:
    /// there is nothing to check it against.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        match self.command_type() {
            Ok(command_type) if !self.has_command_of(command_type) => {
                Err(ProtocolError::MissingField(format!("BaseCommand.{}", Self::field_name(command_type))))
            }
            _ => Ok(()),
        }
    }

    /// For the transaction coordinator's requests (which Magnetar refuses): the request id to
    /// answer with the matching `*_RESPONSE`. None for every other command.
    pub fn txn_request(&self) -> Option<TxnRequest> {
        let command_type = self.command_type().ok()?;
        let request_id = match command_type {
            CommandType::NewTxn => self.new_txn.as_ref()?.request_id,
            CommandType::AddPartitionToTxn => self.add_partition_to_txn.as_ref()?.request_id,
            CommandType::AddSubscriptionToTxn => self.add_subscription_to_txn.as_ref()?.request_id,
            CommandType::EndTxn => self.end_txn.as_ref()?.request_id,
            CommandType::EndTxnOnPartition => self.end_txn_on_partition.as_ref()?.request_id,
            CommandType::EndTxnOnSubscription => self.end_txn_on_subscription.as_ref()?.request_id,
            CommandType::TcClientConnectRequest => self.tc_client_connect_request.as_ref()?.request_id,
            _ => return None,
        };
        Some(TxnRequest { command_type, request_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{CommandFlow, CommandNewTxn, CommandPing};

    #[test]
    fn ping_encodes_as_the_specification_bytes() {
        // type = 18 (field 1, varint), ping = empty message (field 18, length-delimited).
        let bytes = BaseCommand::from(CommandPing {}).encode_to_vec();
        assert_eq!(bytes, [0x08, 0x12, 0x92, 0x01, 0x00]);
    }

    #[test]
    fn required_fields_are_encoded_even_when_zero() {
        let bytes = CommandFlow { consumer_id: 0, message_permits: 0 }.encode_to_vec();
        assert_eq!(bytes, [0x08, 0x00, 0x10, 0x00]);
    }

    #[test]
    fn close_producer_carries_the_new_owner_in_fields_3_and_4() {
        let close = crate::proto::CommandCloseProducer {
            producer_id: 1,
            request_id: 2,
            assigned_broker_service_url: Some("pulsar://b:6650".into()),
            assigned_broker_service_url_tls: None,
        };
        let mut expected = vec![0x08, 0x01, 0x10, 0x02, 0x1a, 0x0f];
        expected.extend_from_slice(b"pulsar://b:6650");
        assert_eq!(close.encode_to_vec(), expected);
    }

    #[test]
    fn topic_migrated_is_type_and_field_68() {
        let migrated = crate::proto::CommandTopicMigrated { resource_id: 5, resource_type: 1, ..Default::default() };
        let bytes = BaseCommand::from(migrated).encode_to_vec();
        // type = 68; field 68 length-delimited (key 546 = a2 04), 4 bytes: resource_id 5, resource_type 1.
        assert_eq!(bytes, [0x08, 0x44, 0xa2, 0x04, 0x04, 0x08, 0x05, 0x10, 0x01]);
    }

    #[test]
    fn unknown_fields_from_a_newer_protocol_are_skipped() {
        let mut bytes = BaseCommand::from(CommandPing {}).encode_to_vec();
        // Field 100, varint 1.
        bytes.extend_from_slice(&[0xa0, 0x06, 0x01]);
        let command = BaseCommand::decode(&bytes[..]).unwrap();
        assert_eq!(command, BaseCommand::from(CommandPing {}));
    }

    #[test]
    fn from_sets_type_and_command() {
        let command = BaseCommand::from(CommandFlow { consumer_id: 7, message_permits: 1000 });
        assert_eq!(command.command_type(), Ok(CommandType::Flow));
        assert_eq!(command.flow.unwrap().message_permits, 1000);
    }

    #[test]
    fn validate_refuses_a_type_without_its_command() {
        let command = BaseCommand { r#type: CommandType::Send as i32, ..Default::default() };
        let error = command.validate().unwrap_err();
        assert!(matches!(&error, ProtocolError::MissingField(field) if field == "BaseCommand.send"), "{error}");
    }

    #[test]
    fn a_command_without_a_type_is_refused() {
        // An absent `type` decodes as the enum's first value (CONNECT), whose message is absent.
        let command = BaseCommand::decode(&[][..]).unwrap();
        assert!(matches!(command.validate(), Err(ProtocolError::MissingField(_))));
    }

    #[test]
    fn validate_lets_unknown_types_through() {
        let command = BaseCommand { r#type: 99, ..Default::default() };
        assert_eq!(command.command_type(), Err(99));
        command.validate().unwrap();
    }

    #[test]
    fn txn_requests_expose_their_request_id() {
        let command = BaseCommand::from(CommandNewTxn { request_id: 42, ..Default::default() });
        assert_eq!(command.txn_request(), Some(TxnRequest { command_type: CommandType::NewTxn, request_id: 42 }));
        assert_eq!(BaseCommand::from(CommandPing {}).txn_request(), None);
    }

    #[test]
    fn optional_fields_report_pulsar_defaults_when_absent() {
        let subscribe = CommandSubscribe::default();
        assert!(subscribe.durable());
        assert!(subscribe.force_topic_creation());
        assert_eq!(subscribe.initial_position(), InitialPosition::Latest);
        let success = CommandProducerSuccess::default();
        assert_eq!(success.last_sequence_id(), -1);
        assert!(success.producer_ready());
        let id = crate::proto::MessageIdData::default();
        assert_eq!((id.partition(), id.batch_index()), (-1, -1));
        let metadata = crate::proto::MessageMetadata::default();
        assert_eq!(metadata.num_messages_in_batch(), 1);
        assert_eq!(metadata.compression(), crate::proto::CompressionType::None);
    }
}
