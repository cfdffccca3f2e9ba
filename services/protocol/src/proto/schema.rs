//! Schemas: the schema carried by PRODUCER/SUBSCRIBE and the schema registry commands.

use prost::{Enumeration, Message};

use super::common::{KeyValue, ServerError};

/// `Schema.Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Enumeration)]
#[repr(i32)]
pub enum SchemaType {
    None = 0,
    String = 1,
    Json = 2,
    Protobuf = 3,
    Avro = 4,
    Bool = 5,
    Int8 = 6,
    Int16 = 7,
    Int32 = 8,
    Int64 = 9,
    Float = 10,
    Double = 11,
    Date = 12,
    Time = 13,
    Timestamp = 14,
    KeyValue = 15,
    Instant = 16,
    LocalDate = 17,
    LocalTime = 18,
    LocalDateTime = 19,
    ProtobufNative = 20,
    AutoConsume = 21,
}

#[derive(Clone, PartialEq, Message)]
pub struct Schema {
    #[prost(string, required, tag = "1")]
    pub name: String,
    #[prost(bytes = "vec", required, tag = "3")]
    pub schema_data: Vec<u8>,
    #[prost(enumeration = "SchemaType", required, tag = "4")]
    pub r#type: i32,
    #[prost(message, repeated, tag = "5")]
    pub properties: Vec<KeyValue>,
}

#[derive(Clone, PartialEq, Message)]
pub struct CommandGetSchema {
    #[prost(uint64, required, tag = "1")]
    pub request_id: u64,
    #[prost(string, required, tag = "2")]
    pub topic: String,
    /// Absent: the latest version.
    #[prost(bytes = "vec", optional, tag = "3")]
    pub schema_version: Option<Vec<u8>>,
}

/// Errors of GET_SCHEMA go here (`error_code`), never in a plain ERROR.
#[derive(Clone, PartialEq, Message)]
pub struct CommandGetSchemaResponse {
    #[prost(uint64, required, tag = "1")]
    pub request_id: u64,
    #[prost(enumeration = "ServerError", optional, tag = "2")]
    pub error_code: Option<i32>,
    #[prost(string, optional, tag = "3")]
    pub error_message: Option<String>,
    #[prost(message, optional, tag = "4")]
    pub schema: Option<Schema>,
    #[prost(bytes = "vec", optional, tag = "5")]
    pub schema_version: Option<Vec<u8>>,
}

#[derive(Clone, PartialEq, Message)]
pub struct CommandGetOrCreateSchema {
    #[prost(uint64, required, tag = "1")]
    pub request_id: u64,
    #[prost(string, required, tag = "2")]
    pub topic: String,
    #[prost(message, required, tag = "3")]
    pub schema: Schema,
}

#[derive(Clone, PartialEq, Message)]
pub struct CommandGetOrCreateSchemaResponse {
    #[prost(uint64, required, tag = "1")]
    pub request_id: u64,
    #[prost(enumeration = "ServerError", optional, tag = "2")]
    pub error_code: Option<i32>,
    #[prost(string, optional, tag = "3")]
    pub error_message: Option<String>,
    #[prost(bytes = "vec", optional, tag = "4")]
    pub schema_version: Option<Vec<u8>>,
}
