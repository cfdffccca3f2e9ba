use bytes::Bytes;

/// The producer that sent a message and the sequence id it gave it (Pulsar's `producer_name` and
/// `sequence_id`): what deduplication keys on, stored with the message so that the state can be
/// rebuilt from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerStamp {
    pub name: String,
    pub sequence_id: i64,
    /// The schema version the producer registered and stamped on the message (Pulsar's
    /// `schema_version`, opaque bytes: eight, big-endian, from Magnetar's registry), so that a
    /// consumer decodes it with the schema it was written with.
    pub schema_version: Option<Box<[u8]>>,
}

impl ProducerStamp {
    /// A stamp without a schema version.
    pub fn new(name: impl Into<String>, sequence_id: i64) -> Self {
        ProducerStamp { name: name.into(), sequence_id, schema_version: None }
    }
}

/// Where a message sat in the batch its producer sent (Pulsar's batch index and batch size). Each
/// message of a batch is still a record of its own with its own offset, so cursors, backlogs and
/// retention count messages; the position lets a binary consumer receive the batch as one frame
/// and every surface give the message the id `ledger:entry:index` its producer was told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchPos {
    pub index: u32,
    pub size: u32,
}

/// One piece of a message its producer split because the whole was larger than the broker's
/// message size limit (Pulsar's chunking, PIP-37). Each chunk is a record of its own, durable as
/// it arrives; the payload is the chunk's slice of the message as the producer sent it (after
/// compression), so a chunk cannot be read on its own: binary consumers reassemble chunks
/// themselves, and the broker joins them for the other surfaces (docs/binary-protocol.md,
/// "Chunked messages").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkPos {
    /// Shared by every chunk of one message.
    pub uuid: String,
    pub index: u32,
    pub count: u32,
    /// Bytes of the whole message as sent: the sum of its chunks' payloads.
    pub total_size: u32,
    /// Pulsar's compression codec of the whole message (0 = none) and its size decompressed.
    pub compression: u8,
    pub uncompressed_size: u32,
}

impl ChunkPos {
    pub fn is_last(&self) -> bool {
        self.index + 1 == self.count
    }
}

/// One data key of an end-to-end encrypted message: the key that encrypted the payload, itself
/// encrypted with the public key `name` (Pulsar's `EncryptionKeys`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptionKey {
    pub name: String,
    pub value: Bytes,
    pub metadata: Vec<(String, String)>,
}

/// What a consumer needs to decrypt an end-to-end encrypted payload the broker cannot read:
/// the data keys, the algorithm and its parameter (the initialization vector), and how the
/// plaintext was compressed before it was encrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encryption {
    pub keys: Vec<EncryptionKey>,
    pub algorithm: String,
    pub param: Bytes,
    /// Pulsar's compression codec of the plaintext (0 = none) and its size decompressed.
    pub compression: u8,
    pub uncompressed_size: u32,
}

/// An end-to-end encrypted message, or batch, stored as its producer sent it (the broker
/// cannot open it). A batch of `n` messages is `n` records so that offsets stay one per
/// message: the first holds the whole encrypted batch (`Head`), the others hold nothing
/// (`Member`, with their batch position), and every surface delivers the batch through its head
/// (docs/binary-protocol.md, "End-to-end encrypted messages").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encrypted {
    Head(Box<Encryption>),
    Member,
}

/// A message as a producer hands it to storage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordInput {
    pub publish_time: i64,
    pub event_time: Option<i64>,
    pub key: Option<String>,
    /// `key` is the base64 text of a binary key (Pulsar's `partition_key_b64_encoded`, set by
    /// `keyBytes` and by KEY_VALUE schemas that keep the key apart): binary consumers get the
    /// flag back to decode it, Key_Shared hashes the decoded bytes.
    pub key_base64: bool,
    /// Pulsar's ordering key: Key_Shared routes by it, before the key.
    pub ordering_key: Option<Bytes>,
    pub properties: Vec<(String, String)>,
    pub payload: Bytes,
    /// Set only when the producer named itself and numbered the message.
    pub producer: Option<ProducerStamp>,
    pub batch: Option<BatchPos>,
    pub chunk: Option<Box<ChunkPos>>,
    pub encrypted: Option<Encrypted>,
}

impl RecordInput {
    /// The record this input becomes at `offset` in the segment at `segment_base`.
    pub fn into_record(self, offset: u64, segment_base: u64) -> Record {
        Record {
            offset,
            segment_base,
            publish_time: self.publish_time,
            event_time: self.event_time,
            key: self.key,
            key_base64: self.key_base64,
            ordering_key: self.ordering_key,
            properties: self.properties,
            payload: self.payload,
            producer: self.producer,
            batch: self.batch,
            chunk: self.chunk,
            encrypted: self.encrypted,
        }
    }
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
    /// See [`RecordInput::key_base64`].
    pub key_base64: bool,
    pub ordering_key: Option<Bytes>,
    pub properties: Vec<(String, String)>,
    pub payload: Bytes,
    pub producer: Option<ProducerStamp>,
    pub batch: Option<BatchPos>,
    pub chunk: Option<Box<ChunkPos>>,
    pub encrypted: Option<Encrypted>,
}

impl Record {
    /// The record as its producer handed it (to store it again elsewhere, at the same offset).
    pub fn into_input(self) -> RecordInput {
        RecordInput {
            publish_time: self.publish_time,
            event_time: self.event_time,
            key: self.key,
            key_base64: self.key_base64,
            ordering_key: self.ordering_key,
            properties: self.properties,
            payload: self.payload,
            producer: self.producer,
            batch: self.batch,
            chunk: self.chunk,
            encrypted: self.encrypted,
        }
    }

    /// The encryption of a record holding an end-to-end encrypted payload (a batch's head or a
    /// message sent alone).
    pub fn encryption(&self) -> Option<&Encryption> {
        match &self.encrypted {
            Some(Encrypted::Head(e)) => Some(e),
            _ => None,
        }
    }

    /// A record of an encrypted batch after its first: empty, delivered through its head.
    pub fn is_encrypted_member(&self) -> bool {
        matches!(self.encrypted, Some(Encrypted::Member))
    }

    /// The message id every surface gives this record. A batched record is `L:E:i` with `E` the
    /// entry of its batch's first message (what the producer's receipt named); should that
    /// entry lie before the record's segment (a batch cut by a segment roll, or a batch whose
    /// first messages deduplication dropped), the id names the record's own entry instead. Both
    /// forms designate the same offset (`MessageId::offset`).
    pub fn message_id(&self, partition_index: i32) -> magnetar_core::MessageId {
        message_id(self.segment_base, self.offset, partition_index, self.batch)
    }
}

/// The id of the message at `offset` in the segment at `segment_base` ([`Record::message_id`]).
pub fn message_id(
    segment_base: u64,
    offset: u64,
    partition_index: i32,
    batch: Option<BatchPos>,
) -> magnetar_core::MessageId {
    match batch {
        Some(b) if offset.checked_sub(u64::from(b.index)).is_some_and(|e| e >= segment_base) => {
            magnetar_core::MessageId::in_batch(segment_base, offset, partition_index, b.index)
        }
        _ => magnetar_core::MessageId::new(segment_base, offset, partition_index),
    }
}
