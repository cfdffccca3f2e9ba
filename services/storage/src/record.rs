use bytes::Bytes;

/// The producer that sent a message and the sequence id it gave it (Pulsar's `producer_name` and
/// `sequence_id`): what deduplication keys on, stored with the message so that the state can be
/// rebuilt from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerStamp {
    pub name: String,
    pub sequence_id: i64,
}

/// A message as a producer hands it to storage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordInput {
    pub publish_time: i64,
    pub event_time: Option<i64>,
    pub key: Option<String>,
    pub properties: Vec<(String, String)>,
    pub payload: Bytes,
    /// Set only when the producer named itself and numbered the message.
    pub producer: Option<ProducerStamp>,
}

/// A stored message. `segment_base` is the base offset of the segment holding it (the Pulsar
/// "ledger id" of its message id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    pub offset: u64,
    pub segment_base: u64,
    pub publish_time: i64,
    pub event_time: Option<i64>,
    pub key: Option<String>,
    pub properties: Vec<(String, String)>,
    pub payload: Bytes,
    pub producer: Option<ProducerStamp>,
}
