//! Producing: creating and closing producers, SEND and its receipts.

use prost::Message;

use super::common::{KeyValue, MessageIdData, ProducerAccessMode, ServerError};
use super::schema::Schema;

#[derive(Clone, PartialEq, Message)]
pub struct CommandProducer {
    #[prost(string, required, tag = "1")]
    pub topic: String,
    #[prost(uint64, required, tag = "2")]
    pub producer_id: u64,
    #[prost(uint64, required, tag = "3")]
    pub request_id: u64,
    /// Absent: the broker generates a unique name.
    #[prost(string, optional, tag = "4")]
    pub producer_name: Option<String>,
    #[prost(bool, optional, tag = "5", default = "false")]
    pub encrypted: Option<bool>,
    #[prost(message, repeated, tag = "6")]
    pub metadata: Vec<KeyValue>,
    #[prost(message, optional, tag = "7")]
    pub schema: Option<Schema>,
    /// Incremented by the client on every reconnection of this producer.
    #[prost(uint64, optional, tag = "8", default = "0")]
    pub epoch: Option<u64>,
    #[prost(bool, optional, tag = "9", default = "true")]
    pub user_provided_producer_name: Option<bool>,
    #[prost(enumeration = "ProducerAccessMode", optional, tag = "10", default = "Shared")]
    pub producer_access_mode: Option<i32>,
    #[prost(uint64, optional, tag = "11")]
    pub topic_epoch: Option<u64>,
    #[prost(bool, optional, tag = "12", default = "false")]
    pub txn_enabled: Option<bool>,
    #[prost(string, optional, tag = "13")]
    pub initial_subscription_name: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct CommandProducerSuccess {
    #[prost(uint64, required, tag = "1")]
    pub request_id: u64,
    #[prost(string, required, tag = "2")]
    pub producer_name: String,
    /// The last sequence id stored for this producer name, −1 if none.
    #[prost(int64, optional, tag = "3", default = "-1")]
    pub last_sequence_id: Option<i64>,
    #[prost(bytes = "vec", optional, tag = "4")]
    pub schema_version: Option<Vec<u8>>,
    #[prost(uint64, optional, tag = "5")]
    pub topic_epoch: Option<u64>,
    /// False: the client waits (without timing out) for a later PRODUCER_SUCCESS.
    #[prost(bool, optional, tag = "6", default = "true")]
    pub producer_ready: Option<bool>,
}

/// Followed in the frame by the message's metadata and payload.
#[derive(Clone, PartialEq, Message)]
pub struct CommandSend {
    #[prost(uint64, required, tag = "1")]
    pub producer_id: u64,
    #[prost(uint64, required, tag = "2")]
    pub sequence_id: u64,
    #[prost(int32, optional, tag = "3", default = "1")]
    pub num_messages: Option<i32>,
    #[prost(uint64, optional, tag = "4", default = "0")]
    pub txnid_least_bits: Option<u64>,
    #[prost(uint64, optional, tag = "5", default = "0")]
    pub txnid_most_bits: Option<u64>,
    #[prost(uint64, optional, tag = "6", default = "0")]
    pub highest_sequence_id: Option<u64>,
    #[prost(bool, optional, tag = "7", default = "false")]
    pub is_chunk: Option<bool>,
    #[prost(bool, optional, tag = "8", default = "false")]
    pub marker: Option<bool>,
    #[prost(message, optional, tag = "9")]
    pub message_id: Option<MessageIdData>,
}

#[derive(Clone, PartialEq, Message)]
pub struct CommandSendReceipt {
    #[prost(uint64, required, tag = "1")]
    pub producer_id: u64,
    #[prost(uint64, required, tag = "2")]
    pub sequence_id: u64,
    #[prost(message, optional, tag = "3")]
    pub message_id: Option<MessageIdData>,
    #[prost(uint64, optional, tag = "4", default = "0")]
    pub highest_sequence_id: Option<u64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct CommandSendError {
    #[prost(uint64, required, tag = "1")]
    pub producer_id: u64,
    #[prost(uint64, required, tag = "2")]
    pub sequence_id: u64,
    #[prost(enumeration = "ServerError", required, tag = "3")]
    pub error: i32,
    #[prost(string, required, tag = "4")]
    pub message: String,
}

/// Sent by either side. From the broker it makes the client look up the topic again, unless
/// it names the new owner (Pulsar 3.2+).
#[derive(Clone, PartialEq, Message)]
pub struct CommandCloseProducer {
    #[prost(uint64, required, tag = "1")]
    pub producer_id: u64,
    #[prost(uint64, required, tag = "2")]
    pub request_id: u64,
    #[prost(string, optional, tag = "3")]
    pub assigned_broker_service_url: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub assigned_broker_service_url_tls: Option<String>,
}
