//! The connection handshake, authentication, keep-alive and the generic SUCCESS/ERROR replies.

use prost::Message;

use super::common::{AuthMethod, ServerError};
use super::schema::Schema;

#[derive(Clone, PartialEq, Message)]
pub struct CommandConnect {
    #[prost(string, required, tag = "1")]
    pub client_version: String,
    /// Deprecated in favour of `auth_method_name`.
    #[prost(enumeration = "AuthMethod", optional, tag = "2")]
    pub auth_method: Option<i32>,
    #[prost(string, optional, tag = "5")]
    pub auth_method_name: Option<String>,
    #[prost(bytes = "vec", optional, tag = "3")]
    pub auth_data: Option<Vec<u8>>,
    #[prost(int32, optional, tag = "4", default = "0")]
    pub protocol_version: Option<i32>,
    /// Honoured by a proxy only: the broker the client wants to reach through it.
    #[prost(string, optional, tag = "6")]
    pub proxy_to_broker_url: Option<String>,
    #[prost(string, optional, tag = "7")]
    pub original_principal: Option<String>,
    #[prost(string, optional, tag = "8")]
    pub original_auth_data: Option<String>,
    #[prost(string, optional, tag = "9")]
    pub original_auth_method: Option<String>,
    #[prost(message, optional, tag = "10")]
    pub feature_flags: Option<FeatureFlags>,
}

/// Capabilities announced in CONNECT (by the client) and CONNECTED (by the broker).
#[derive(Clone, Copy, PartialEq, Eq, Message)]
pub struct FeatureFlags {
    #[prost(bool, optional, tag = "1", default = "false")]
    pub supports_auth_refresh: Option<bool>,
    #[prost(bool, optional, tag = "2", default = "false")]
    pub supports_broker_entry_metadata: Option<bool>,
    #[prost(bool, optional, tag = "3", default = "false")]
    pub supports_partial_producer: Option<bool>,
    #[prost(bool, optional, tag = "4", default = "false")]
    pub supports_topic_watchers: Option<bool>,
    #[prost(bool, optional, tag = "5", default = "false")]
    pub supports_get_partitioned_metadata_without_auto_creation: Option<bool>,
}

#[derive(Clone, PartialEq, Message)]
pub struct CommandConnected {
    #[prost(string, required, tag = "1")]
    pub server_version: String,
    #[prost(int32, optional, tag = "2", default = "0")]
    pub protocol_version: Option<i32>,
    /// The largest message the broker accepts; clients size their batches and chunks by it.
    #[prost(int32, optional, tag = "3")]
    pub max_message_size: Option<i32>,
    #[prost(message, optional, tag = "4")]
    pub feature_flags: Option<FeatureFlags>,
}

/// Authentication data of a challenge or response (`"PulsarAuthRefresh"` asks for a new token).
#[derive(Clone, PartialEq, Message)]
pub struct AuthData {
    #[prost(string, optional, tag = "1")]
    pub auth_method_name: Option<String>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub auth_data: Option<Vec<u8>>,
}

#[derive(Clone, PartialEq, Message)]
pub struct CommandAuthChallenge {
    #[prost(string, optional, tag = "1")]
    pub server_version: Option<String>,
    #[prost(message, optional, tag = "2")]
    pub challenge: Option<AuthData>,
    #[prost(int32, optional, tag = "3", default = "0")]
    pub protocol_version: Option<i32>,
}

#[derive(Clone, PartialEq, Message)]
pub struct CommandAuthResponse {
    #[prost(string, optional, tag = "1")]
    pub client_version: Option<String>,
    #[prost(message, optional, tag = "2")]
    pub response: Option<AuthData>,
    #[prost(int32, optional, tag = "3", default = "0")]
    pub protocol_version: Option<i32>,
}

#[derive(Clone, Copy, PartialEq, Eq, Message)]
pub struct CommandPing {}

#[derive(Clone, Copy, PartialEq, Eq, Message)]
pub struct CommandPong {}

#[derive(Clone, PartialEq, Message)]
pub struct CommandSuccess {
    #[prost(uint64, required, tag = "1")]
    pub request_id: u64,
    #[prost(message, optional, tag = "2")]
    pub schema: Option<Schema>,
}

#[derive(Clone, PartialEq, Message)]
pub struct CommandError {
    #[prost(uint64, required, tag = "1")]
    pub request_id: u64,
    #[prost(enumeration = "ServerError", required, tag = "2")]
    pub error: i32,
    #[prost(string, required, tag = "3")]
    pub message: String,
}
