//! Messages and enums shared by several commands: message ids, key/value pairs, server errors,
//! protocol versions and the compression codecs.

use prost::{Enumeration, Message};

/// The position of a message: ledger and entry, plus the index inside a batch when the entry is
/// a batch. Pulsar's "earliest" is `u64::MAX`/`u64::MAX` (−1/−1 as signed), "latest" is
/// `i64::MAX`/`i64::MAX`.
#[derive(Clone, PartialEq, Message)]
pub struct MessageIdData {
    #[prost(uint64, required, tag = "1")]
    pub ledger_id: u64,
    #[prost(uint64, required, tag = "2")]
    pub entry_id: u64,
    #[prost(int32, optional, tag = "3", default = "-1")]
    pub partition: Option<i32>,
    #[prost(int32, optional, tag = "4", default = "-1")]
    pub batch_index: Option<i32>,
    /// Bit set of the batch indexes still unacknowledged (batch-index acknowledgement).
    #[prost(int64, repeated, packed = "false", tag = "5")]
    pub ack_set: Vec<i64>,
    #[prost(int32, optional, tag = "6")]
    pub batch_size: Option<i32>,
    /// For a chunked message: the id of its first chunk.
    #[prost(message, optional, boxed, tag = "7")]
    pub first_chunk_message_id: Option<Box<MessageIdData>>,
}

#[derive(Clone, PartialEq, Eq, Hash, Message)]
pub struct KeyValue {
    #[prost(string, required, tag = "1")]
    pub key: String,
    #[prost(string, required, tag = "2")]
    pub value: String,
}

impl KeyValue {
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self { key: key.into(), value: value.into() }
    }
}

#[derive(Clone, PartialEq, Eq, Hash, Message)]
pub struct KeyLongValue {
    #[prost(string, required, tag = "1")]
    pub key: String,
    #[prost(uint64, required, tag = "2")]
    pub value: u64,
}

/// An inclusive range of key hashes (Key_Shared sticky ranges).
#[derive(Clone, PartialEq, Eq, Hash, Message)]
pub struct IntRange {
    #[prost(int32, required, tag = "1")]
    pub start: i32,
    #[prost(int32, required, tag = "2")]
    pub end: i32,
}

/// An encrypted data key carried in a message's metadata (end-to-end encryption).
#[derive(Clone, PartialEq, Message)]
pub struct EncryptionKeys {
    #[prost(string, required, tag = "1")]
    pub key: String,
    #[prost(bytes = "vec", required, tag = "2")]
    pub value: Vec<u8>,
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<KeyValue>,
}

/// Payload compression codec named in `MessageMetadata.compression`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Enumeration)]
#[repr(i32)]
pub enum CompressionType {
    None = 0,
    Lz4 = 1,
    Zlib = 2,
    Zstd = 3,
    Snappy = 4,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Enumeration)]
#[repr(i32)]
pub enum ProducerAccessMode {
    Shared = 0,
    Exclusive = 1,
    WaitForExclusive = 2,
    ExclusiveWithFencing = 3,
}

/// Error codes carried by ERROR, SEND_ERROR and the `error` fields of responses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Enumeration)]
#[repr(i32)]
pub enum ServerError {
    UnknownError = 0,
    MetadataError = 1,
    PersistenceError = 2,
    AuthenticationError = 3,
    AuthorizationError = 4,
    ConsumerBusy = 5,
    /// The client retries with a fresh lookup.
    ServiceNotReady = 6,
    ProducerBlockedQuotaExceededError = 7,
    ProducerBlockedQuotaExceededException = 8,
    /// The only SEND_ERROR after which clients keep the connection.
    ChecksumError = 9,
    UnsupportedVersionError = 10,
    TopicNotFound = 11,
    SubscriptionNotFound = 12,
    ConsumerNotFound = 13,
    TooManyRequests = 14,
    TopicTerminatedError = 15,
    ProducerBusy = 16,
    InvalidTopicName = 17,
    IncompatibleSchema = 18,
    ConsumerAssignError = 19,
    TransactionCoordinatorNotFound = 20,
    InvalidTxnStatus = 21,
    NotAllowedError = 22,
    TransactionConflict = 23,
    TransactionNotFound = 24,
    ProducerFenced = 25,
}

/// Deprecated authentication method enum of CONNECT (`auth_method_name` replaced it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Enumeration)]
#[repr(i32)]
pub enum AuthMethod {
    None = 0,
    YcaV1 = 1,
    Athens = 2,
}

/// Protocol versions; each adds commands or fields. The broker answers CONNECTED with
/// min(client's, ours).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Enumeration)]
#[repr(i32)]
pub enum ProtocolVersion {
    V0 = 0,
    V1 = 1,
    V2 = 2,
    V3 = 3,
    V4 = 4,
    V5 = 5,
    V6 = 6,
    V7 = 7,
    V8 = 8,
    V9 = 9,
    V10 = 10,
    V11 = 11,
    V12 = 12,
    V13 = 13,
    /// AUTH_CHALLENGE/AUTH_RESPONSE, Key_Shared.
    V14 = 14,
    /// GET_OR_CREATE_SCHEMA.
    V15 = 15,
    /// Broker entry metadata.
    V16 = 16,
    /// ACK receipts (ACK_RESPONSE).
    V17 = 17,
    V18 = 18,
    /// TC_CLIENT_CONNECT.
    V19 = 19,
    /// TOPIC_MIGRATED.
    V20 = 20,
    V21 = 21,
}
