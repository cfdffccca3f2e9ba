//! Topic discovery: partitioned-topic metadata, lookup, namespace listing, topic-list watchers and
//! topic migration.

use prost::{Enumeration, Message};

use super::common::ServerError;

#[derive(Clone, PartialEq, Message)]
pub struct CommandPartitionedTopicMetadata {
    #[prost(string, required, tag = "1")]
    pub topic: String,
    #[prost(uint64, required, tag = "2")]
    pub request_id: u64,
    #[prost(string, optional, tag = "3")]
    pub original_principal: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub original_auth_data: Option<String>,
    #[prost(string, optional, tag = "5")]
    pub original_auth_method: Option<String>,
    /// False asks the broker to report a missing topic instead of auto-creating it.
    #[prost(bool, optional, tag = "6", default = "true")]
    pub metadata_auto_creation_enabled: Option<bool>,
}

/// `CommandPartitionedTopicMetadataResponse.LookupType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Enumeration)]
#[repr(i32)]
pub enum PartitionedTopicMetadataResult {
    Success = 0,
    Failed = 1,
}

#[derive(Clone, PartialEq, Message)]
pub struct CommandPartitionedTopicMetadataResponse {
    /// 0 for a non-partitioned topic; absent on failure.
    #[prost(uint32, optional, tag = "1")]
    pub partitions: Option<u32>,
    #[prost(uint64, required, tag = "2")]
    pub request_id: u64,
    #[prost(enumeration = "PartitionedTopicMetadataResult", optional, tag = "3")]
    pub response: Option<i32>,
    #[prost(enumeration = "ServerError", optional, tag = "4")]
    pub error: Option<i32>,
    #[prost(string, optional, tag = "5")]
    pub message: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct CommandLookupTopic {
    #[prost(string, required, tag = "1")]
    pub topic: String,
    #[prost(uint64, required, tag = "2")]
    pub request_id: u64,
    #[prost(bool, optional, tag = "3", default = "false")]
    pub authoritative: Option<bool>,
    #[prost(string, optional, tag = "4")]
    pub original_principal: Option<String>,
    #[prost(string, optional, tag = "5")]
    pub original_auth_data: Option<String>,
    #[prost(string, optional, tag = "6")]
    pub original_auth_method: Option<String>,
    #[prost(string, optional, tag = "7")]
    pub advertised_listener_name: Option<String>,
}

/// `CommandLookupTopicResponse.LookupType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Enumeration)]
#[repr(i32)]
pub enum LookupResult {
    /// Ask again at `brokerServiceUrl`.
    Redirect = 0,
    /// Connect to `brokerServiceUrl`: it owns the topic.
    Connect = 1,
    Failed = 2,
}

#[derive(Clone, PartialEq, Message)]
pub struct CommandLookupTopicResponse {
    #[prost(string, optional, tag = "1")]
    pub broker_service_url: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub broker_service_url_tls: Option<String>,
    #[prost(enumeration = "LookupResult", optional, tag = "3")]
    pub response: Option<i32>,
    #[prost(uint64, required, tag = "4")]
    pub request_id: u64,
    #[prost(bool, optional, tag = "5", default = "false")]
    pub authoritative: Option<bool>,
    #[prost(enumeration = "ServerError", optional, tag = "6")]
    pub error: Option<i32>,
    #[prost(string, optional, tag = "7")]
    pub message: Option<String>,
    /// True keeps the client on its service URL (it then names the broker in CONNECT's
    /// `proxy_to_broker_url`).
    #[prost(bool, optional, tag = "8", default = "false")]
    pub proxy_through_service_url: Option<bool>,
}

/// `CommandGetTopicsOfNamespace.Mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Enumeration)]
#[repr(i32)]
pub enum TopicListMode {
    Persistent = 0,
    NonPersistent = 1,
    All = 2,
}

#[derive(Clone, PartialEq, Message)]
pub struct CommandGetTopicsOfNamespace {
    #[prost(uint64, required, tag = "1")]
    pub request_id: u64,
    #[prost(string, required, tag = "2")]
    pub namespace: String,
    #[prost(enumeration = "TopicListMode", optional, tag = "3", default = "Persistent")]
    pub mode: Option<i32>,
    #[prost(string, optional, tag = "4")]
    pub topics_pattern: Option<String>,
    #[prost(string, optional, tag = "5")]
    pub topics_hash: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct CommandGetTopicsOfNamespaceResponse {
    #[prost(uint64, required, tag = "1")]
    pub request_id: u64,
    #[prost(string, repeated, tag = "2")]
    pub topics: Vec<String>,
    /// True when the list was filtered by the client's `topics_pattern`.
    #[prost(bool, optional, tag = "3", default = "false")]
    pub filtered: Option<bool>,
    #[prost(string, optional, tag = "4")]
    pub topics_hash: Option<String>,
    /// False: `topics` is empty and the matching list has not changed since `topics_hash`.
    #[prost(bool, optional, tag = "5", default = "true")]
    pub changed: Option<bool>,
}

#[derive(Clone, PartialEq, Message)]
pub struct CommandWatchTopicList {
    #[prost(uint64, required, tag = "1")]
    pub request_id: u64,
    #[prost(uint64, required, tag = "2")]
    pub watcher_id: u64,
    #[prost(string, required, tag = "3")]
    pub namespace: String,
    #[prost(string, required, tag = "4")]
    pub topics_pattern: String,
    #[prost(string, optional, tag = "5")]
    pub topics_hash: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct CommandWatchTopicListSuccess {
    #[prost(uint64, required, tag = "1")]
    pub request_id: u64,
    #[prost(uint64, required, tag = "2")]
    pub watcher_id: u64,
    #[prost(string, repeated, tag = "3")]
    pub topic: Vec<String>,
    #[prost(string, required, tag = "4")]
    pub topics_hash: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct CommandWatchTopicUpdate {
    #[prost(uint64, required, tag = "1")]
    pub watcher_id: u64,
    #[prost(string, repeated, tag = "2")]
    pub new_topics: Vec<String>,
    #[prost(string, repeated, tag = "3")]
    pub deleted_topics: Vec<String>,
    #[prost(string, required, tag = "4")]
    pub topics_hash: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct CommandWatchTopicListClose {
    #[prost(uint64, required, tag = "1")]
    pub request_id: u64,
    #[prost(uint64, required, tag = "2")]
    pub watcher_id: u64,
}

/// `CommandTopicMigrated.ResourceType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Enumeration)]
#[repr(i32)]
pub enum MigratedResourceType {
    Producer = 0,
    Consumer = 1,
}

#[derive(Clone, PartialEq, Message)]
pub struct CommandTopicMigrated {
    #[prost(uint64, required, tag = "1")]
    pub resource_id: u64,
    #[prost(enumeration = "MigratedResourceType", required, tag = "2")]
    pub resource_type: i32,
    #[prost(string, optional, tag = "3")]
    pub broker_service_url: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub broker_service_url_tls: Option<String>,
}
