//! Transaction commands. Magnetar has no transaction coordinator: the broker decodes these only
//! to refuse them (NotAllowed) with the right request id, hence every field is here but no
//! behaviour is implied.

use prost::{Enumeration, Message};

use super::common::ServerError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Enumeration)]
#[repr(i32)]
pub enum TxnAction {
    Commit = 0,
    Abort = 1,
}

/// A topic's subscription taking part in a transaction.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct Subscription {
    #[prost(string, required, tag = "1")]
    pub topic: String,
    #[prost(string, required, tag = "2")]
    pub subscription: String,
}

#[derive(Clone, Copy, PartialEq, Eq, Message)]
pub struct CommandTcClientConnectRequest {
    #[prost(uint64, required, tag = "1")]
    pub request_id: u64,
    #[prost(uint64, required, tag = "2", default = "0")]
    pub tc_id: u64,
}

#[derive(Clone, PartialEq, Message)]
pub struct CommandTcClientConnectResponse {
    #[prost(uint64, required, tag = "1")]
    pub request_id: u64,
    #[prost(enumeration = "ServerError", optional, tag = "2")]
    pub error: Option<i32>,
    #[prost(string, optional, tag = "3")]
    pub message: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, Message)]
pub struct CommandNewTxn {
    #[prost(uint64, required, tag = "1")]
    pub request_id: u64,
    #[prost(uint64, optional, tag = "2", default = "0")]
    pub txn_ttl_seconds: Option<u64>,
    #[prost(uint64, optional, tag = "3", default = "0")]
    pub tc_id: Option<u64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct CommandAddPartitionToTxn {
    #[prost(uint64, required, tag = "1")]
    pub request_id: u64,
    #[prost(uint64, optional, tag = "2", default = "0")]
    pub txnid_least_bits: Option<u64>,
    #[prost(uint64, optional, tag = "3", default = "0")]
    pub txnid_most_bits: Option<u64>,
    #[prost(string, repeated, tag = "4")]
    pub partitions: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct CommandAddSubscriptionToTxn {
    #[prost(uint64, required, tag = "1")]
    pub request_id: u64,
    #[prost(uint64, optional, tag = "2", default = "0")]
    pub txnid_least_bits: Option<u64>,
    #[prost(uint64, optional, tag = "3", default = "0")]
    pub txnid_most_bits: Option<u64>,
    #[prost(message, repeated, tag = "4")]
    pub subscription: Vec<Subscription>,
}

#[derive(Clone, Copy, PartialEq, Eq, Message)]
pub struct CommandEndTxn {
    #[prost(uint64, required, tag = "1")]
    pub request_id: u64,
    #[prost(uint64, optional, tag = "2", default = "0")]
    pub txnid_least_bits: Option<u64>,
    #[prost(uint64, optional, tag = "3", default = "0")]
    pub txnid_most_bits: Option<u64>,
    #[prost(enumeration = "TxnAction", optional, tag = "4")]
    pub txn_action: Option<i32>,
}

#[derive(Clone, PartialEq, Message)]
pub struct CommandEndTxnOnPartition {
    #[prost(uint64, required, tag = "1")]
    pub request_id: u64,
    #[prost(uint64, optional, tag = "2", default = "0")]
    pub txnid_least_bits: Option<u64>,
    #[prost(uint64, optional, tag = "3", default = "0")]
    pub txnid_most_bits: Option<u64>,
    #[prost(string, optional, tag = "4")]
    pub topic: Option<String>,
    #[prost(enumeration = "TxnAction", optional, tag = "5")]
    pub txn_action: Option<i32>,
    #[prost(uint64, optional, tag = "6")]
    pub txnid_least_bits_of_low_watermark: Option<u64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct CommandEndTxnOnSubscription {
    #[prost(uint64, required, tag = "1")]
    pub request_id: u64,
    #[prost(uint64, optional, tag = "2", default = "0")]
    pub txnid_least_bits: Option<u64>,
    #[prost(uint64, optional, tag = "3", default = "0")]
    pub txnid_most_bits: Option<u64>,
    #[prost(message, optional, tag = "4")]
    pub subscription: Option<Subscription>,
    #[prost(enumeration = "TxnAction", optional, tag = "5")]
    pub txn_action: Option<i32>,
    #[prost(uint64, optional, tag = "6")]
    pub txnid_least_bits_of_low_watermark: Option<u64>,
}

/// The five transaction responses share one shape: request id, transaction id, error, message.
macro_rules! txn_response {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Message)]
        pub struct $name {
            #[prost(uint64, required, tag = "1")]
            pub request_id: u64,
            #[prost(uint64, optional, tag = "2", default = "0")]
            pub txnid_least_bits: Option<u64>,
            #[prost(uint64, optional, tag = "3", default = "0")]
            pub txnid_most_bits: Option<u64>,
            #[prost(enumeration = "ServerError", optional, tag = "4")]
            pub error: Option<i32>,
            #[prost(string, optional, tag = "5")]
            pub message: Option<String>,
        }
    };
}

txn_response!(CommandNewTxnResponse);
txn_response!(CommandAddPartitionToTxnResponse);
txn_response!(CommandAddSubscriptionToTxnResponse);
txn_response!(CommandEndTxnResponse);
txn_response!(CommandEndTxnOnPartitionResponse);
txn_response!(CommandEndTxnOnSubscriptionResponse);
