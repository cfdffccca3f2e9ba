//! A connection's producers: CREATE_PRODUCER (names, the last sequence id, deduplication),
//! SEND, and closing them.

use super::{Connection, FRAME_PADDING, Next};
use crate::convert;
use crate::error::BinaryError;
use crate::lookup::topic_name;
use crate::producer::{self, ProducerHandle, SendItem};
use crate::schema;
use magnetar_broker::{AccessMode, ProducerLabel};
use magnetar_protocol::Frame;
use magnetar_protocol::proto::*;

/// The broker's access mode for PRODUCER's `producer_access_mode` (Shared when absent).
fn access_mode(raw: Option<i32>) -> AccessMode {
    match raw.and_then(|m| ProducerAccessMode::try_from(m).ok()) {
        Some(ProducerAccessMode::Exclusive) => AccessMode::Exclusive,
        Some(ProducerAccessMode::WaitForExclusive) => AccessMode::WaitForExclusive,
        Some(ProducerAccessMode::ExclusiveWithFencing) => AccessMode::ExclusiveWithFencing,
        _ => AccessMode::Shared,
    }
}

impl Connection {
    pub(super) async fn create_producer(&mut self, c: CommandProducer) -> Next {
        let request_id = c.request_id;
        if self.producers.get(&c.producer_id).is_some_and(|p| p.tx.is_closed()) {
            // Closed by the broker (its partition moved): the client creates it again.
            self.close_producer(c.producer_id).await;
        }
        if self.producers.contains_key(&c.producer_id) {
            // The client retries a PRODUCER it got no answer to: the same producer, answered again.
            let p = &self.producers[&c.producer_id];
            return self
                .send(Frame::new(CommandProducerSuccess {
                    request_id,
                    producer_name: p.key.1.clone(),
                    last_sequence_id: Some(-1),
                    schema_version: p.schema_version.clone(),
                    producer_ready: Some(true),
                    ..Default::default()
                }))
                .await;
        }
        let result = async {
            let topic = topic_name(&c.topic)?;
            self.owned_here(&topic).await?;
            let name = match c.producer_name.clone().filter(|n| !n.is_empty()) {
                Some(n) => n,
                None => {
                    self.named += 1;
                    format!("{}-{}-{}", self.shared.broker.cluster(), self.id, self.named)
                }
            };
            let mode = access_mode(c.producer_access_mode);
            let label = ProducerLabel {
                name: name.clone(),
                address: self.peer.to_string(),
                connected_since: magnetar_core::now_millis(),
            };
            let mut slots = self
                .shared
                .broker
                .publisher()
                .attach_producer_as(&self.caller, &topic, mode, &label, c.topic_epoch)
                .await?;
            self.shared.broker.topics().check_producer_encryption(&topic, c.encrypted == Some(true))?;
            let has_schema = c.schema.as_ref().is_some_and(|s| s.r#type != SchemaType::None as i32);
            self.shared.broker.topics().check_schemaless_producer(&topic, has_schema).await?;
            // Registered before the producer takes its name: a refused schema leaves nothing behind.
            let schema_version = match c.schema.as_ref().map(schema::payload_of).transpose()?.flatten() {
                Some(p) => {
                    Some(schema::version_bytes(self.shared.broker.topics().add_client_schema(&topic, &p).await?))
                }
                None => None,
            };
            let key = (topic.to_string(), name.clone());
            if !self.shared.producer_names.lock().unwrap_or_else(|e| e.into_inner()).insert(key.clone()) {
                return Err(BinaryError::ProducerBusy(format!(
                    "producer with name '{name}' is already connected to topic {topic}"
                )));
            }
            let last = match self.shared.broker.publisher().last_sequence_id(&topic, &name).await {
                Ok(last) => last,
                Err(e) => {
                    self.shared.producer_names.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
                    return Err(e.into());
                }
            };
            let answer = CommandProducerSuccess {
                request_id,
                producer_name: name,
                last_sequence_id: Some(last),
                schema_version: schema_version.clone(),
                topic_epoch: slots.epoch(),
                producer_ready: Some(!slots.queued()),
            };
            // A queued WaitForExclusive producer is told so, and ready when its turn comes, by its
            // own task (so that the two answers cannot cross).
            let waiting =
                slots.queued().then(|| producer::Waiting { answer: answer.clone(), turn: Box::pin(slots.turn()) });
            let answer = waiting.is_none().then_some(answer);
            let route = producer::Route {
                caller: self.caller.clone(),
                topic,
                producer_id: c.producer_id,
                key: key.clone(),
                direct: self.direct,
            };
            let signals =
                producer::Signals { detach: slots.detach_on_unload(), fenced: Box::pin(slots.fenced()), waiting };
            let (tx, task) = producer::spawn(&self.shared, route, signals, self.out.clone());
            self.producers.insert(c.producer_id, ProducerHandle { tx, task, key, schema_version, _slots: slots });
            Ok::<_, BinaryError>(answer)
        }
        .await;
        match result {
            Ok(Some(answer)) => self.send(Frame::new(answer)).await,
            Ok(None) => Next::Continue,
            Err(e) => self.error(request_id, e).await,
        }
    }

    pub(super) async fn on_send(&mut self, c: CommandSend, payload: Option<magnetar_protocol::Payload>) -> Next {
        let Some(p) = self.producers.get(&c.producer_id) else {
            return Next::Close(format!("SEND for unknown producer {}", c.producer_id));
        };
        let limit = self.shared.broker.config().max_message_bytes + FRAME_PADDING;
        let messages = match &payload {
            None => Err((ServerError::NotAllowedError, "SEND without a payload".to_string())),
            Some(_) if c.txnid_most_bits.unwrap_or(0) != 0 || c.txnid_least_bits.unwrap_or(0) != 0 => {
                Err((ServerError::NotAllowedError, "transactions are not supported".to_string()))
            }
            // Stored as sent, the broker cannot open it (docs/binary-protocol.md, "End-to-end
            // encrypted messages"); each chunk of an encrypted chunked message on its own.
            Some(payload) if !payload.metadata().encryption_keys.is_empty() => {
                let max_whole = self.shared.broker.config().max_chunked_message_bytes;
                if payload.metadata().num_chunks_from_msg.is_some_and(|n| n > 1) {
                    convert::encrypted_chunk(&p.key.1, payload, max_whole).map(|m| vec![m])
                } else {
                    convert::encrypted_messages(&p.key.1, payload)
                }
                .map_err(|reason| (ServerError::NotAllowedError, reason))
            }
            // A chunk of a message larger than the broker's message size limit: stored as a
            // record of its own, with its chunk metadata (docs/binary-protocol.md, "Chunked
            // messages").
            Some(payload) if payload.metadata().num_chunks_from_msg.is_some_and(|n| n > 1) => {
                convert::chunk_message(&p.key.1, payload, self.shared.broker.config().max_chunked_message_bytes)
                    .map(|m| vec![m])
                    .map_err(|reason| {
                        tracing::warn!(producer = c.producer_id, %reason, "a chunk was refused");
                        (ServerError::NotAllowedError, reason)
                    })
            }
            Some(payload) => convert::publish_messages(&p.key.1, payload, limit)
                .map_err(|e| (ServerError::UnknownError, format!("invalid message: {e}"))),
        };
        let highest = c.highest_sequence_id.unwrap_or(0).max(c.sequence_id);
        let item = SendItem { sequence_id: c.sequence_id, highest_sequence_id: highest, messages };
        // Waits when the producer has `max_pending_sends` unanswered: backpressure on the client.
        // A producer the broker closed (its partition moved) takes nothing more: the SEND is
        // dropped unanswered and the client sends it again once it has created the producer
        // where the partition is now.
        if p.tx.send(item).await.is_err() {
            tracing::debug!(
                producer = c.producer_id,
                sequence_id = c.sequence_id,
                "SEND for a closed producer dropped"
            );
        }
        Next::Continue
    }

    /// Ends a producer once it has answered what it accepted (its task frees its name).
    pub(super) async fn close_producer(&mut self, producer_id: u64) {
        if let Some(p) = self.producers.remove(&producer_id) {
            drop(p.tx);
            let _ = p.task.await;
        }
    }
}
