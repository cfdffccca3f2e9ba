use bytes::Bytes;

/// A message as a producer hands it to storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordInput {
    pub publish_time: i64,
    pub event_time: Option<i64>,
    pub key: Option<String>,
    pub properties: Vec<(String, String)>,
    pub payload: Bytes,
}

/// A stored message. `segment_base` is the base offset of the segment holding it (the Pulsar
/// "ledger id" of its message id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub offset: u64,
    pub segment_base: u64,
    pub publish_time: i64,
    pub event_time: Option<i64>,
    pub key: Option<String>,
    pub properties: Vec<(String, String)>,
    pub payload: Bytes,
}
