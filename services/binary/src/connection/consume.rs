//! A connection's consumers: SUBSCRIBE, acknowledgements, UNSUBSCRIBE, the last message id
//! and SEEK.

use super::{Connection, Next};
use crate::consumer;
use crate::convert;
use crate::error::BinaryError;
use crate::lookup::topic_name;
use crate::schema;
use magnetar_broker::{ConsumerShown, StartPosition, SubType, SubscribeOptions};
use magnetar_core::SubscriptionName;
use magnetar_protocol::Frame;
use magnetar_protocol::proto::*;
use std::sync::Arc;

/// A Sticky Key_Shared consumer's hash ranges (SUBSCRIBE's `key_shared_meta`); `None` for
/// auto-split. Ranges outside 0..=65535 are refused here, overlaps by the subscription.
fn sticky_ranges(meta: Option<&KeySharedMeta>) -> Result<Option<Vec<(u16, u16)>>, BinaryError> {
    let Some(meta) = meta.filter(|m| m.key_shared_mode == KeySharedMode::Sticky as i32) else {
        return Ok(None);
    };
    let slot = |v: i32| {
        u16::try_from(v).map_err(|_| BinaryError::NotAllowed(format!("hash range bound {v} is outside 0..=65535")))
    };
    meta.hash_ranges.iter().map(|r| Ok((slot(r.start)?, slot(r.end)?))).collect::<Result<_, _>>().map(Some)
}

impl Connection {
    /// The answer to a command naming a consumer this connection does not have.
    async fn no_consumer(&self, request_id: u64, consumer_id: u64) -> Next {
        self.error(request_id, BinaryError::UnknownConsumer(format!("consumer {consumer_id} not found"))).await
    }

    pub(super) async fn subscribe(&mut self, c: CommandSubscribe) -> Next {
        let request_id = c.request_id;
        if self.consumers.get(&c.consumer_id).is_some_and(|h| h.task.is_finished()) {
            // Closed by the broker (unloaded, its partition moved): the client subscribes again.
            if let Some(h) = self.consumers.remove(&c.consumer_id) {
                h.close().await;
            }
        }
        if self.consumers.contains_key(&c.consumer_id) {
            return self.send(Frame::new(CommandSuccess { request_id, schema: None })).await;
        }
        // FLOWs grant these; the consumer's stats show what is left.
        let permits = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let result = async {
            let topic = topic_name(&c.topic)?;
            self.owned_here(&topic).await?;
            let durable = c.durable.unwrap_or(true);
            if let Some(p) = c.schema.as_ref().map(schema::payload_of).transpose()?.flatten() {
                let sub = durable.then_some(c.subscription.as_str());
                self.shared.broker.topics().check_consumer_schema(&self.caller, &topic, sub, &p).await?;
            }
            let start = c.start_message_id.as_ref().map(|id| {
                // Earliest (-1:-1 as u64) and latest (i64::MAX) keep their meaning; any other id is
                // where delivery starts (inclusive, as Pulsar's broker; clients skip it when asked).
                let id = convert::start_id(id);
                StartPosition::from_message_id(&id)
            });
            let initial = match c.initial_position.and_then(|p| InitialPosition::try_from(p).ok()) {
                Some(InitialPosition::Earliest) => StartPosition::Earliest,
                _ => StartPosition::Latest,
            };
            let shown = ConsumerShown {
                metadata: c.metadata.iter().map(|kv| (kv.key.clone(), kv.value.clone())).collect(),
                client_version: self.client_version.clone(),
                permits: Some(Arc::clone(&permits)),
            };
            if !durable {
                let sought = self.reader_seeks.remove(&(topic.to_string(), c.subscription.clone()));
                let start = sought.or(start);
                let name = c.consumer_name.clone().unwrap_or_else(|| c.subscription.clone());
                let compacted = c.read_compacted.unwrap_or(false);
                let session = self
                    .shared
                    .broker
                    .subscriptions()
                    .create_reader(&self.caller, &topic, start.unwrap_or(initial), &name, compacted, shown)
                    .await?;
                return Ok((session, None));
            }
            let sub: SubscriptionName = c
                .subscription
                .parse()
                .map_err(|_| BinaryError::NotAllowed(format!("invalid subscription name `{}`", c.subscription)))?;
            let sub_type = match proto_sub_type(c.sub_type) {
                Some(t) => t,
                None => return Err(BinaryError::NotAllowed(format!("unknown subscription type {}", c.sub_type))),
            };
            let opts = SubscribeOptions {
                sticky_ranges: sticky_ranges(c.key_shared_meta.as_ref())?,
                sub_type,
                consumer_name: c.consumer_name.clone().unwrap_or_default(),
                priority: c.priority_level.unwrap_or(0),
                initial_position: initial,
                address: self.peer.to_string(),
                ack_timeout: None,
                dead_letter: None,
                read_compacted: c.read_compacted.unwrap_or(false),
                shown,
                properties: c.subscription_properties.iter().map(|kv| (kv.key.clone(), kv.value.clone())).collect(),
            };
            let session = self.shared.broker.subscriptions().subscribe(&self.caller, &topic, &sub, opts).await?;
            Ok::<_, BinaryError>((session, Some(sub)))
        }
        .await;
        match result {
            Ok((session, sub)) => {
                let mut handle = consumer::spawn(
                    &self.shared.broker,
                    c.consumer_id,
                    session,
                    sub,
                    self.out.clone(),
                    self.direct,
                    permits,
                );
                handle.subscription_name = c.subscription.clone();
                self.consumers.insert(c.consumer_id, handle);
                self.send(Frame::new(CommandSuccess { request_id, schema: None })).await
            }
            Err(e) => self.error(request_id, e).await,
        }
    }

    pub(super) async fn ack(&mut self, c: CommandAck) -> Next {
        let Some(h) = self.consumers.get(&c.consumer_id) else {
            return Next::Continue;
        };
        let mut failure = None;
        let cumulative = c.ack_type == AckType::Cumulative as i32;
        for id in &c.message_id {
            let named = h.batches.named(id, cumulative);
            let mut r = Ok(());
            if let Some(through) = named.through {
                r = h.session.ack_cumulative_offset(&named.id, through).await;
            }
            if r.is_ok() && !named.offsets.is_empty() {
                r = h.session.ack_streamed_offsets(&named.id, &named.offsets).await;
            }
            if let Err(e) = r {
                tracing::debug!(consumer = c.consumer_id, error = %e, "pulsar:// ack refused");
                failure = Some(BinaryError::from(e));
            }
        }
        match c.request_id {
            Some(request_id) => {
                self.send(Frame::new(CommandAckResponse {
                    consumer_id: c.consumer_id,
                    request_id: Some(request_id),
                    error: failure.as_ref().map(|e| e.code() as i32),
                    message: failure.as_ref().map(BinaryError::message),
                    ..Default::default()
                }))
                .await
            }
            None => Next::Continue,
        }
    }

    pub(super) async fn unsubscribe(&mut self, c: CommandUnsubscribe) -> Next {
        let Some(h) = self.consumers.remove(&c.consumer_id) else {
            return self.no_consumer(c.request_id, c.consumer_id).await;
        };
        let session = Arc::clone(&h.session);
        h.close().await;
        match session.unsubscribe().await {
            Ok(()) => self.send(Frame::new(CommandSuccess { request_id: c.request_id, schema: None })).await,
            Err(e) => self.error(c.request_id, e.into()).await,
        }
    }

    pub(super) async fn last_message_id(&mut self, c: CommandGetLastMessageId) -> Next {
        let Some(h) = self.consumers.get(&c.consumer_id) else {
            return self.no_consumer(c.request_id, c.consumer_id).await;
        };
        let topic = h.session.topic.clone();
        let mark_delete = h.session.mark_delete_id().map(|id| convert::id_data(&id));
        match self.shared.broker.topics().last_message_id(&topic).await {
            Ok(id) => {
                self.send(Frame::new(CommandGetLastMessageIdResponse {
                    last_message_id: convert::id_data(&id),
                    request_id: c.request_id,
                    consumer_mark_delete_position: mark_delete,
                }))
                .await
            }
            Err(e) => self.error(c.request_id, e.into()).await,
        }
    }

    /// Resets the subscription (or, for a reader, where it resubscribes), closes the consumer
    /// and answers SUCCESS, as Pulsar does: the client reconnects and receives from the new
    /// position.
    pub(super) async fn seek(&mut self, c: CommandSeek) -> Next {
        let Some(h) = self.consumers.get(&c.consumer_id) else {
            return self.no_consumer(c.request_id, c.consumer_id).await;
        };
        let topic = h.session.topic.clone();
        let subs = self.shared.broker.subscriptions();
        let no_target = || magnetar_broker::BrokerError::InvalidArgument("seek needs a message id or a time".into());
        let result = match (h.subscription.clone(), &c.message_id, c.message_publish_time) {
            (Some(sub), Some(id), _) => subs.reset_to_id(&topic, &sub, &convert::start_id(id), false).await.map(drop),
            (Some(sub), None, Some(t)) => subs.reset_to_time(&topic, &sub, t as i64).await.map(drop),
            // A reader: its session goes and the next SUBSCRIBE of the same reader starts there
            // (at the id itself, as for a subscription; the client skips it).
            (None, Some(id), _) => {
                self.reader_seeks.insert(
                    (topic.to_string(), h.subscription_name.clone()),
                    StartPosition::from_message_id(&convert::start_id(id)),
                );
                Ok(())
            }
            (None, None, Some(t)) => match subs.position_for_time(&self.caller, &topic, t as i64).await {
                Ok(start) => {
                    self.reader_seeks.insert((topic.to_string(), h.subscription_name.clone()), start);
                    Ok(())
                }
                Err(e) => Err(e),
            },
            (_, None, None) => Err(no_target()),
        };
        match result {
            Ok(()) => {
                // CLOSE_CONSUMER before SUCCESS, in Pulsar's order: the C++ client that sees its
                // consumer closed while the seek is pending resubscribes from the sought
                // position; the other order makes a reader resubscribe after what it had read.
                if let Some(h) = self.consumers.remove(&c.consumer_id) {
                    h.close().await;
                }
                let close = CommandCloseConsumer { consumer_id: c.consumer_id, request_id: 0, ..Default::default() };
                if let Next::Close(r) = self.send(Frame::new(close)).await {
                    return Next::Close(r);
                }
                self.send(Frame::new(CommandSuccess { request_id: c.request_id, schema: None })).await
            }
            Err(e) => self.error(c.request_id, e.into()).await,
        }
    }
}

fn proto_sub_type(raw: i32) -> Option<SubType> {
    Some(match magnetar_protocol::proto::SubType::try_from(raw).ok()? {
        magnetar_protocol::proto::SubType::Exclusive => SubType::Exclusive,
        magnetar_protocol::proto::SubType::Shared => SubType::Shared,
        magnetar_protocol::proto::SubType::Failover => SubType::Failover,
        magnetar_protocol::proto::SubType::KeyShared => SubType::KeyShared,
    })
}
