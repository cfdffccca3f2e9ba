//! Topic statistics in Pulsar's JSON shapes: `TopicStats`, `PartitionedTopicStats` and
//! `PersistentTopicInternalStats` (camelCase field names as Pulsar's admin API returns them).
//! Topic stats are read back too: a broker tier merges a partitioned topic's from the owners of
//! its partitions.

use crate::partition::Partition;
use magnetar_core::MessageId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionStats {
    pub msg_rate_out: f64,
    pub msg_throughput_out: f64,
    pub bytes_out_counter: u64,
    pub msg_out_counter: u64,
    pub msg_rate_redeliver: f64,
    pub message_ack_rate: f64,
    pub msg_backlog: u64,
    /// Bytes of the backlog, estimated from the partition's average stored message size.
    pub backlog_size: u64,
    pub msg_backlog_no_delayed: u64,
    pub blocked_subscription_on_unacked_msgs: bool,
    pub msg_delayed: u64,
    pub unacked_messages: u64,
    #[serde(rename = "type")]
    pub kind: String,
    pub msg_rate_expired: f64,
    pub total_msg_expired: u64,
    pub last_expire_timestamp: i64,
    pub last_consumed_timestamp: i64,
    pub last_acked_timestamp: i64,
    pub consumers: Vec<ConsumerStats>,
    /// Pulsar's subscription properties (PIP-105).
    #[serde(default)]
    pub subscription_properties: BTreeMap<String, String>,
    pub is_durable: bool,
    pub is_replicated: bool,
}

/// Pulsar's `ConsumerStats` of one connected consumer.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerStats {
    pub consumer_name: String,
    /// Broker-assigned id of the consumer (Pulsar's `consumer_id` metric label).
    #[serde(skip)]
    pub consumer_id: u64,
    pub address: String,
    pub connected_since: String,
    pub priority_level: i32,
    pub msg_rate_out: f64,
    pub msg_throughput_out: f64,
    pub message_ack_rate: f64,
    pub msg_out_counter: u64,
    pub bytes_out_counter: u64,
    pub unacked_messages: u64,
    /// Binary protocol consumers: the permits their FLOW commands granted and not yet used.
    /// HTTP pullers and WebSocket consumers are served as they ask (no permits): 0.
    pub available_permits: i64,
    pub blocked_consumer_on_unacked_msgs: bool,
    /// The consumer's properties (binary protocol consumers' `properties`).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// The client library and version of a binary protocol consumer's connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_version: Option<String>,
    /// Sticky Key_Shared: the key hash ranges the consumer claims, as Pulsar writes them
    /// (`[0, 32767]`); absent for AutoSplit consumers, whose ring spreads the slots one by one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_hash_ranges: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopicStats {
    pub msg_rate_in: f64,
    pub msg_throughput_in: f64,
    pub msg_rate_out: f64,
    pub msg_throughput_out: f64,
    pub bytes_in_counter: u64,
    pub msg_in_counter: u64,
    pub bytes_out_counter: u64,
    pub msg_out_counter: u64,
    pub average_msg_size: f64,
    pub storage_size: u64,
    pub backlog_size: u64,
    pub offloaded_storage_size: u64,
    pub publishers: Vec<serde_json::Value>,
    pub waiting_publishers: u64,
    pub subscriptions: BTreeMap<String, SubscriptionStats>,
    pub replication: BTreeMap<String, serde_json::Value>,
    pub deduplication_status: String,
    /// Magnetar: the durability the partition is served with (`local`, `object-store`; `mixed`
    /// in a topic's totals while its partitions differ, during a change of mode).
    #[serde(default)]
    pub durability: String,
    /// Magnetar: brokers each record is written to before it is acknowledged (the write quorum
    /// of replicated durability; 1 for `local` and `object-store`, whose second copy is the
    /// bucket's). In a topic's totals the lowest of its partitions' (0: not reported).
    #[serde(default)]
    pub write_quorum: u32,
    /// Magnetar: the ack quorum in force (replicated durability: a record is acknowledged once
    /// `min(ackQuorum, writeQuorum - 1)` peers hold it; 1 otherwise); in totals the lowest.
    #[serde(default)]
    pub ack_quorum: u32,
    /// Magnetar: the brokers holding copies of the partition's records besides its owner
    /// (replicated durability; while its stream moves off a dead peer, the peers before the
    /// move too, until they have been sent the tail); absent otherwise and in a topic's totals.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replica_peers: Vec<String>,
    /// Pulsar's `CompactionStats` of the topic's last compactions since it was loaded.
    pub compaction: crate::compaction::CompactionStats,
    /// Magnetar: the limit and life policies in force for the topic and the level each comes
    /// from (topic, namespace or broker); absent in a partition's entry of partitioned stats.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied_policies: Option<crate::policies::resolve::EffectivePolicies>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartitionedTopicStats {
    #[serde(flatten)]
    pub total: TopicStats,
    pub metadata: PartitionedMetadata,
    pub partitions: BTreeMap<String, TopicStats>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PartitionedMetadata {
    pub partitions: u32,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LedgerInfo {
    pub ledger_id: u64,
    pub entries: u64,
    pub size: u64,
    pub offloaded: bool,
    pub under_replicated: bool,
    pub timestamp: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CursorStats {
    pub mark_delete_position: String,
    pub read_position: String,
    pub waiting_read_op: bool,
    pub pending_read_ops: u32,
    pub messages_consumed_counter: u64,
    pub cursor_ledger: i64,
    pub cursor_ledger_last_entry: i64,
    pub individually_deleted_messages: String,
    pub last_ledger_switch_timestamp: String,
    pub state: String,
    pub number_of_entries_since_first_not_acked_message: u64,
    pub total_non_contiguous_deleted_messages_range: u64,
    pub properties: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InternalStats {
    pub entries_added_counter: u64,
    pub number_of_entries: u64,
    pub total_size: u64,
    pub current_ledger_entries: u64,
    pub current_ledger_size: u64,
    pub last_ledger_created_timestamp: String,
    pub waiting_cursors_count: u32,
    pub pending_add_entries_count: u32,
    pub last_confirmed_entry: String,
    pub state: String,
    pub ledgers: Vec<LedgerInfo>,
    pub cursors: BTreeMap<String, CursorStats>,
}

/// The message id of `offset` in a partition: its segment's base offset is the ledger id.
pub fn message_id_at(p: &Partition, offset: u64) -> MessageId {
    MessageId::new(p.log.segment_base_of(offset), offset, p.index)
}

/// `L:E` of an offset, Pulsar's position text.
fn position(p: &Partition, offset: Option<u64>) -> String {
    match offset {
        Some(o) => {
            let id = message_id_at(p, o);
            format!("{}:{}", id.ledger_id, id.entry_id)
        }
        None => "-1:-1".into(),
    }
}

pub fn partition_stats(p: &Partition) -> TopicStats {
    use std::sync::atomic::Ordering;
    let rates = p.rates();
    let msg_in = p.counters.msg_in.load(Ordering::Relaxed);
    let bytes_in = p.counters.bytes_in.load(Ordering::Relaxed);
    let replicas = p.replicas();
    let mut stats = TopicStats {
        write_quorum: replicas.as_ref().map_or(1, |r| r.write_quorum),
        ack_quorum: replicas.as_ref().map_or(1, |r| r.ack_quorum),
        // While a stream moves off a dead peer both sets hold part of what was acknowledged.
        replica_peers: replicas
            .map(|r| {
                let mut all = r.peers;
                all.extend(r.previous_peers.into_iter().filter(|p| !all.contains(p)).collect::<Vec<_>>());
                all
            })
            .unwrap_or_default(),
        msg_rate_in: rates.msg_in,
        msg_throughput_in: rates.bytes_in,
        msg_rate_out: rates.msg_out,
        msg_throughput_out: rates.bytes_out,
        bytes_in_counter: bytes_in,
        msg_in_counter: msg_in,
        bytes_out_counter: p.counters.bytes_out.load(Ordering::Relaxed),
        msg_out_counter: p.counters.msg_out.load(Ordering::Relaxed),
        average_msg_size: if msg_in > 0 { bytes_in as f64 / msg_in as f64 } else { 0.0 },
        // Every segment once, whichever tiers hold it; the object store's part separately.
        storage_size: p.log.storage_bytes(),
        offloaded_storage_size: p.log.offloaded_bytes(),
        deduplication_status: if p.policy.deduplication_enabled() { "Enabled" } else { "Disabled" }.into(),
        durability: if p.log.object_store_epoch().is_some() {
            "object-store"
        } else if p.log.replicated_epoch().is_some() {
            "replicated"
        } else {
            "local"
        }
        .into(),
        compaction: p.compaction.stats(),
        ..TopicStats::default()
    };
    (stats.publishers, stats.waiting_publishers) = p.access.publishers();
    let entries = p.log.end_offset().saturating_sub(p.log.start_offset()).max(1);
    let avg_stored = stats.storage_size / entries;
    for s in p.all_subscriptions() {
        let snap = s.snapshot();
        let rates = s.rates();
        let backlog_size = snap.backlog * avg_stored;
        stats.backlog_size = stats.backlog_size.max(backlog_size);
        stats.subscriptions.insert(
            s.name(),
            SubscriptionStats {
                msg_rate_out: rates.msg_out,
                msg_throughput_out: rates.bytes_out,
                msg_rate_redeliver: rates.redelivered,
                msg_rate_expired: rates.expired,
                message_ack_rate: rates.acked,
                bytes_out_counter: snap.bytes_out,
                msg_out_counter: snap.msg_out,
                msg_backlog: snap.backlog,
                backlog_size,
                unacked_messages: snap.unacked,
                kind: snap.kind.map(|k| k.as_str()).unwrap_or("Shared").into(),
                msg_delayed: snap.delayed,
                msg_backlog_no_delayed: snap.backlog.saturating_sub(snap.delayed),
                is_durable: s.is_durable(),
                consumers: snap
                    .consumers
                    .iter()
                    .map(|c| consumer_stats(c, s.consumer_rates(c.id), snap.key_ranges.get(&c.id)))
                    .collect(),
                subscription_properties: s.properties(),
                total_msg_expired: snap.msg_expired,
                last_expire_timestamp: snap.last_expired,
                last_consumed_timestamp: snap.last_consumed,
                last_acked_timestamp: snap.last_acked,
                ..SubscriptionStats::default()
            },
        );
    }
    stats
}

fn consumer_stats(
    c: &crate::subscription::ConsumerInfo,
    rates: crate::subscription::ConsumerRates,
    key_ranges: Option<&Vec<(u16, u16)>>,
) -> ConsumerStats {
    ConsumerStats {
        consumer_name: c.name.clone(),
        consumer_id: c.id,
        address: c.address.clone(),
        connected_since: magnetar_core::time::format_rfc3339(c.connected_since),
        priority_level: c.priority,
        msg_rate_out: rates.msg_out,
        msg_throughput_out: rates.bytes_out,
        message_ack_rate: rates.acked,
        msg_out_counter: c.msg_out,
        bytes_out_counter: c.bytes_out,
        unacked_messages: c.unacked,
        available_permits: c.permits.as_ref().map_or(0, |p| p.load(std::sync::atomic::Ordering::Relaxed).max(0)),
        blocked_consumer_on_unacked_msgs: false,
        metadata: c.metadata.iter().cloned().collect(),
        client_version: Some(c.client_version.clone()).filter(|v| !v.is_empty()),
        key_hash_ranges: key_ranges.into_iter().flatten().map(|(a, b)| format!("[{a}, {b}]")).collect(),
    }
}

/// Sums partition stats into the topic's totals.
pub fn aggregate<'a>(parts: impl Iterator<Item = &'a TopicStats>) -> TopicStats {
    let mut t = TopicStats { deduplication_status: "Disabled".into(), ..TopicStats::default() };
    for s in parts {
        t.msg_rate_in += s.msg_rate_in;
        t.msg_throughput_in += s.msg_throughput_in;
        t.msg_rate_out += s.msg_rate_out;
        t.msg_throughput_out += s.msg_throughput_out;
        t.bytes_in_counter += s.bytes_in_counter;
        t.msg_in_counter += s.msg_in_counter;
        t.bytes_out_counter += s.bytes_out_counter;
        t.msg_out_counter += s.msg_out_counter;
        t.storage_size += s.storage_size;
        t.backlog_size += s.backlog_size;
        t.offloaded_storage_size += s.offloaded_storage_size;
        if s.deduplication_status == "Enabled" {
            t.deduplication_status = s.deduplication_status.clone();
        }
        if t.durability.is_empty() {
            t.durability = s.durability.clone();
        } else if t.durability != s.durability {
            t.durability = "mixed".into();
        }
        // The weakest guarantee among the partitions (0: one that did not say).
        let lowest = |total: u32, one: u32| {
            if total == 0 {
                one
            } else if one == 0 {
                total
            } else {
                total.min(one)
            }
        };
        t.write_quorum = lowest(t.write_quorum, s.write_quorum);
        t.ack_quorum = lowest(t.ack_quorum, s.ack_quorum);
        t.compaction.merge(&s.compaction);
        t.publishers.extend(s.publishers.iter().cloned());
        t.waiting_publishers += s.waiting_publishers;
        for (name, sub) in &s.subscriptions {
            let e = t.subscriptions.entry(name.clone()).or_insert_with(|| SubscriptionStats {
                kind: sub.kind.clone(),
                is_durable: true,
                // Every partition's subscription has the same properties.
                subscription_properties: sub.subscription_properties.clone(),
                ..SubscriptionStats::default()
            });
            e.msg_rate_out += sub.msg_rate_out;
            e.msg_rate_redeliver += sub.msg_rate_redeliver;
            e.msg_rate_expired += sub.msg_rate_expired;
            e.message_ack_rate += sub.message_ack_rate;
            e.total_msg_expired += sub.total_msg_expired;
            e.last_expire_timestamp = e.last_expire_timestamp.max(sub.last_expire_timestamp);
            e.backlog_size += sub.backlog_size;
            e.msg_delayed += sub.msg_delayed;
            e.consumers.extend(sub.consumers.iter().cloned());
            e.msg_throughput_out += sub.msg_throughput_out;
            e.bytes_out_counter += sub.bytes_out_counter;
            e.msg_out_counter += sub.msg_out_counter;
            e.msg_backlog += sub.msg_backlog;
            e.msg_backlog_no_delayed += sub.msg_backlog_no_delayed;
            e.unacked_messages += sub.unacked_messages;
            e.last_consumed_timestamp = e.last_consumed_timestamp.max(sub.last_consumed_timestamp);
            e.last_acked_timestamp = e.last_acked_timestamp.max(sub.last_acked_timestamp);
        }
    }
    t.average_msg_size = if t.msg_in_counter > 0 { t.bytes_in_counter as f64 / t.msg_in_counter as f64 } else { 0.0 };
    t
}

pub fn internal_stats(p: &Partition) -> InternalStats {
    let segments = p.log.segments();
    let start = p.log.start_offset();
    let end = p.log.end_offset();
    let active = segments.last();
    let ledgers = segments
        .iter()
        .map(|s| LedgerInfo {
            ledger_id: s.base_offset,
            entries: s.end_offset - s.base_offset,
            size: s.size_bytes,
            offloaded: s.offloaded,
            under_replicated: false,
            timestamp: s.created_at_ms,
        })
        .collect();
    let mut cursors = BTreeMap::new();
    for s in p.all_subscriptions() {
        let snap = s.snapshot();
        let ranges: Vec<String> = snap
            .acked_ranges
            .iter()
            .map(|&(a, b)| format!("({}..{}]", position(p, Some(a.saturating_sub(1))), position(p, Some(b - 1))))
            .collect();
        cursors.insert(
            s.name(),
            CursorStats {
                mark_delete_position: position(p, snap.mark_delete.checked_sub(1)),
                read_position: position(p, Some(snap.read_pos)),
                waiting_read_op: false,
                pending_read_ops: 0,
                messages_consumed_counter: snap.msg_out,
                cursor_ledger: -1,
                cursor_ledger_last_entry: -1,
                individually_deleted_messages: format!("[{}]", ranges.join(", ")),
                last_ledger_switch_timestamp: String::new(),
                state: "Open".into(),
                number_of_entries_since_first_not_acked_message: snap.read_pos.saturating_sub(snap.mark_delete),
                total_non_contiguous_deleted_messages_range: snap.acked_ranges.len() as u64,
                properties: BTreeMap::new(),
            },
        );
    }
    // Pulsar shows deduplication's snapshot as the cursor `pulsar.dedup`: its position, and the
    // producers' sequence ids as properties.
    if let Some(snap) = p.dedup.last_snapshot() {
        let at = position(p, snap.position.checked_sub(1));
        cursors.insert(
            "pulsar.dedup".into(),
            CursorStats {
                mark_delete_position: at.clone(),
                read_position: at,
                waiting_read_op: false,
                pending_read_ops: 0,
                messages_consumed_counter: 0,
                cursor_ledger: -1,
                cursor_ledger_last_entry: -1,
                individually_deleted_messages: "[]".into(),
                last_ledger_switch_timestamp: magnetar_core::time::format_rfc3339(snap.taken_at),
                state: "Open".into(),
                number_of_entries_since_first_not_acked_message: end.saturating_sub(snap.position),
                total_non_contiguous_deleted_messages_range: 0,
                properties: snap.producers.iter().map(|(k, v)| (k.clone(), v.sequence_id)).collect(),
            },
        );
    }
    InternalStats {
        entries_added_counter: end,
        number_of_entries: end - start.min(end),
        total_size: p.log.storage_bytes(),
        current_ledger_entries: active.map(|s| s.end_offset - s.base_offset).unwrap_or(0),
        current_ledger_size: active.map(|s| s.size_bytes).unwrap_or(0),
        last_ledger_created_timestamp: active
            .map(|s| magnetar_core::time::format_rfc3339(s.created_at_ms))
            .unwrap_or_default(),
        waiting_cursors_count: 0,
        pending_add_entries_count: 0,
        last_confirmed_entry: position(p, end.checked_sub(1)),
        state: if p.log.terminated_at().is_some() { "Terminated" } else { "LedgerOpened" }.into(),
        ledgers,
        cursors,
    }
}
