//! The metadata carried in front of every message payload: the producer's `MessageMetadata`,
//! the per-message `SingleMessageMetadata` inside a batch, and the broker's own entry metadata.

use prost::Message;

use super::common::{CompressionType, EncryptionKeys, KeyValue};

#[derive(Clone, PartialEq, Message)]
pub struct MessageMetadata {
    #[prost(string, required, tag = "1")]
    pub producer_name: String,
    #[prost(uint64, required, tag = "2")]
    pub sequence_id: u64,
    /// Milliseconds since the Unix epoch, set by the producer.
    #[prost(uint64, required, tag = "3")]
    pub publish_time: u64,
    #[prost(message, repeated, tag = "4")]
    pub properties: Vec<KeyValue>,
    /// Set on a geo-replicated message: the source cluster.
    #[prost(string, optional, tag = "5")]
    pub replicated_from: Option<String>,
    #[prost(string, optional, tag = "6")]
    pub partition_key: Option<String>,
    #[prost(string, repeated, tag = "7")]
    pub replicate_to: Vec<String>,
    #[prost(enumeration = "CompressionType", optional, tag = "8", default = "None")]
    pub compression: Option<i32>,
    #[prost(uint32, optional, tag = "9", default = "0")]
    pub uncompressed_size: Option<u32>,
    /// Present (even as 1) only on batches: clients tell a batch from a single message by it.
    #[prost(int32, optional, tag = "11", default = "1")]
    pub num_messages_in_batch: Option<i32>,
    #[prost(uint64, optional, tag = "12", default = "0")]
    pub event_time: Option<u64>,
    #[prost(message, repeated, tag = "13")]
    pub encryption_keys: Vec<EncryptionKeys>,
    #[prost(string, optional, tag = "14")]
    pub encryption_algo: Option<String>,
    #[prost(bytes = "vec", optional, tag = "15")]
    pub encryption_param: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "16")]
    pub schema_version: Option<Vec<u8>>,
    #[prost(bool, optional, tag = "17", default = "false")]
    pub partition_key_b64_encoded: Option<bool>,
    /// Overrides the key for Key_Shared dispatch.
    #[prost(bytes = "vec", optional, tag = "18")]
    pub ordering_key: Option<Vec<u8>>,
    /// Delayed delivery: not before this time (ms since the epoch).
    #[prost(int64, optional, tag = "19")]
    pub deliver_at_time: Option<i64>,
    /// Set on internal marker messages (replicated subscriptions, transactions).
    #[prost(int32, optional, tag = "20")]
    pub marker_type: Option<i32>,
    #[prost(uint64, optional, tag = "22")]
    pub txnid_least_bits: Option<u64>,
    #[prost(uint64, optional, tag = "23")]
    pub txnid_most_bits: Option<u64>,
    /// The last sequence id in a batch with external sequence ids.
    #[prost(uint64, optional, tag = "24", default = "0")]
    pub highest_sequence_id: Option<u64>,
    #[prost(bool, optional, tag = "25", default = "false")]
    pub null_value: Option<bool>,
    /// Chunking: the id shared by every chunk of one message.
    #[prost(string, optional, tag = "26")]
    pub uuid: Option<String>,
    #[prost(int32, optional, tag = "27")]
    pub num_chunks_from_msg: Option<i32>,
    #[prost(int32, optional, tag = "28")]
    pub total_chunk_msg_size: Option<i32>,
    #[prost(int32, optional, tag = "29")]
    pub chunk_id: Option<i32>,
    #[prost(bool, optional, tag = "30", default = "false")]
    pub null_partition_key: Option<bool>,
}

/// The header of one message inside a batch payload.
#[derive(Clone, PartialEq, Message)]
pub struct SingleMessageMetadata {
    #[prost(message, repeated, tag = "1")]
    pub properties: Vec<KeyValue>,
    #[prost(string, optional, tag = "2")]
    pub partition_key: Option<String>,
    #[prost(int32, required, tag = "3")]
    pub payload_size: i32,
    #[prost(bool, optional, tag = "4", default = "false")]
    pub compacted_out: Option<bool>,
    #[prost(uint64, optional, tag = "5", default = "0")]
    pub event_time: Option<u64>,
    #[prost(bool, optional, tag = "6", default = "false")]
    pub partition_key_b64_encoded: Option<bool>,
    #[prost(bytes = "vec", optional, tag = "7")]
    pub ordering_key: Option<Vec<u8>>,
    #[prost(uint64, optional, tag = "8")]
    pub sequence_id: Option<u64>,
    #[prost(bool, optional, tag = "9", default = "false")]
    pub null_value: Option<bool>,
    #[prost(bool, optional, tag = "10", default = "false")]
    pub null_partition_key: Option<bool>,
}

/// Metadata a broker may prepend to a stored entry (magic 0x0e02).
#[derive(Clone, Copy, PartialEq, Eq, Message)]
pub struct BrokerEntryMetadata {
    #[prost(uint64, optional, tag = "1")]
    pub broker_timestamp: Option<u64>,
    #[prost(uint64, optional, tag = "2")]
    pub index: Option<u64>,
}
