//! Reading a topic's messages from a position without a subscription (the console's message
//! browser): nothing is created, no cursor moves. Bounded: at most `limit` messages and about
//! [`MAX_PAGE_BYTES`] of payload per call; log reads run on the blocking pool (they may touch the
//! disk or the object store). A partitioned topic read as a whole is read from every partition
//! and merged by (publish time, partition, offset); the page's `next` position holds every
//! partition's next offset.

use crate::error::Entity;
use crate::partition::Partition;
use crate::topics::Topics;
use crate::{BrokerError, Result};
use magnetar_core::{MessageId, TopicName};
use magnetar_storage::Record;
use std::sync::Arc;

/// Most payload bytes one page carries (at least one message is always returned).
pub const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;
/// Most messages one page carries.
pub const MAX_PAGE_MESSAGES: usize = 500;
/// Largest N of `latest-N`.
pub const MAX_LATEST_N: u64 = 10_000;

/// Where a browse starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrowseFrom {
    Earliest,
    /// The last N messages (across partitions, by publish time).
    LatestMinus(u64),
    /// At this message (inclusive). An id naming a partition reads that partition only.
    Id(MessageId),
    /// The first message published at or after this time (epoch ms), in every partition.
    Time(i64),
    /// A `next` position of an earlier page: (partition index, next offset) pairs.
    Offsets(Vec<(i32, u64)>),
}

impl BrowseFrom {
    /// Parses `earliest`, `latest`, `latest-N`, `L:E[:P]`, `time:<ms>` or a `next` token
    /// (`o:P=OFFSET,...`).
    pub fn parse(s: &str) -> Result<BrowseFrom> {
        let s = s.trim();
        let bad = || {
            BrokerError::InvalidArgument(format!(
                "invalid position `{s}`: expected earliest, latest-N, ledgerId:entryId[:partition], time:<epoch ms> or a next token"
            ))
        };
        if s == "earliest" {
            return Ok(BrowseFrom::Earliest);
        }
        if s == "latest" {
            return Ok(BrowseFrom::LatestMinus(0));
        }
        if let Some(n) = s.strip_prefix("latest-") {
            let n: u64 = n.parse().map_err(|_| bad())?;
            if n > MAX_LATEST_N {
                return Err(BrokerError::InvalidArgument(format!("latest-{n}: N may be at most {MAX_LATEST_N}")));
            }
            return Ok(BrowseFrom::LatestMinus(n));
        }
        if let Some(t) = s.strip_prefix("time:") {
            return t.parse().map(BrowseFrom::Time).map_err(|_| bad());
        }
        if let Some(list) = s.strip_prefix("o:") {
            let mut out = Vec::new();
            for pair in list.split(',').filter(|p| !p.is_empty()) {
                let (p, o) = pair.split_once('=').ok_or_else(bad)?;
                out.push((p.parse().map_err(|_| bad())?, o.parse().map_err(|_| bad())?));
            }
            return Ok(BrowseFrom::Offsets(out));
        }
        MessageId::parse_text(s).map(BrowseFrom::Id).map_err(|_| bad())
    }
}

/// One browsed message.
#[derive(Debug, Clone)]
pub struct BrowsedMessage {
    pub id: MessageId,
    pub record: Record,
}

/// A page of messages and where the next page starts (`None`: nothing more was stored when
/// the page was read).
#[derive(Debug, Clone)]
pub struct BrowsePage {
    pub messages: Vec<BrowsedMessage>,
    pub next: Option<String>,
}

fn next_token(offsets: &[(i32, u64)]) -> String {
    let pairs: Vec<String> = offsets.iter().map(|(p, o)| format!("{p}={o}")).collect();
    format!("o:{}", pairs.join(","))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| BrokerError::Internal(format!("read task failed: {e}")))?
}

/// Reads up to `max` records from `from` (clamped to the log's retained range).
fn read_from(p: &Partition, from: u64, max: usize, max_bytes: usize) -> Result<Vec<Record>> {
    let from = from.max(p.log.start_offset());
    if from >= p.log.end_offset() || max == 0 {
        return Ok(Vec::new());
    }
    Ok(p.log.read(from, max, max_bytes)?)
}

fn sort_key(m: &BrowsedMessage) -> (i64, i32, u64) {
    (m.record.publish_time, m.id.partition_index, m.record.offset)
}

impl Topics {
    /// A page of `name`'s messages from `from` (see the module documentation). `partition`
    /// restricts a partitioned topic to one partition.
    pub async fn browse(
        &self,
        name: &TopicName,
        from: &BrowseFrom,
        limit: usize,
        partition: Option<i32>,
    ) -> Result<BrowsePage> {
        let limit = limit.clamp(1, MAX_PAGE_MESSAGES);
        let (topic, parts) = self.registry().partitions_of(name).await?;
        // An id of a partition reads that partition only.
        let partition = match (partition, from) {
            (Some(p), _) => Some(p),
            (None, BrowseFrom::Id(id)) if topic.is_partitioned() && id.partition_index >= 0 => Some(id.partition_index),
            _ => None,
        };
        let parts: Vec<Arc<Partition>> = match partition {
            None => parts,
            Some(i) => {
                let p = topic
                    .partition_by_index(i)
                    .filter(|p| p.index == i || (!topic.is_partitioned() && i < 0))
                    .ok_or_else(|| match u32::try_from(i) {
                        Ok(index) => BrokerError::NotFound(Entity::Partition { topic: name.clone(), index }),
                        Err(_) => BrokerError::NotFound(Entity::Topic(name.clone())),
                    })?;
                if parts.iter().all(|x| !Arc::ptr_eq(x, p)) {
                    return Err(BrokerError::InvalidArgument(format!("partition {i} is not part of {name}")));
                }
                vec![Arc::clone(p)]
            }
        };
        let starts = self.start_offsets(&parts, from).await?;
        let per_part_bytes = (MAX_PAGE_BYTES / parts.len().max(1)).max(256 * 1024);
        let mut reads = Vec::with_capacity(parts.len());
        for (p, start) in parts.iter().zip(&starts) {
            let (p, start) = (Arc::clone(p), *start);
            reads.push(blocking(move || {
                let recs = read_from(&p, start, limit, per_part_bytes)?;
                Ok(recs
                    .into_iter()
                    .map(|r| BrowsedMessage { id: r.message_id(p.index), record: r })
                    .collect::<Vec<_>>())
            }));
        }
        let mut all: Vec<BrowsedMessage> = futures::future::try_join_all(reads).await?.into_iter().flatten().collect();
        all.sort_by_key(sort_key);
        let mut bytes = 0usize;
        let mut taken = Vec::new();
        for m in all {
            if taken.len() >= limit || (!taken.is_empty() && bytes + m.record.payload.len() > MAX_PAGE_BYTES) {
                break;
            }
            bytes += m.record.payload.len();
            taken.push(m);
        }
        // Each partition's next offset: after its last message on this page, else where it started.
        let mut next: Vec<(i32, u64)> = Vec::with_capacity(parts.len());
        let mut more = false;
        for (p, start) in parts.iter().zip(&starts) {
            let after = taken
                .iter()
                .filter(|m| m.id.partition_index == p.index)
                .map(|m| m.record.offset + 1)
                .max()
                .unwrap_or(*start);
            let after = after.max(p.log.start_offset());
            more |= after < p.log.end_offset();
            next.push((p.index, after));
        }
        // An encrypted batch shows as one message, its head (the members hold nothing); they
        // still count above, so that the next page starts after them.
        taken.retain(|m| !m.record.is_encrypted_member());
        Ok(BrowsePage { messages: taken, next: more.then(|| next_token(&next)) })
    }

    /// Where each partition starts reading for `from`.
    async fn start_offsets(&self, parts: &[Arc<Partition>], from: &BrowseFrom) -> Result<Vec<u64>> {
        match from {
            BrowseFrom::Earliest => Ok(parts.iter().map(|p| p.log.start_offset()).collect()),
            BrowseFrom::Id(id) => Ok(parts.iter().map(|_| id.offset()).collect()),
            BrowseFrom::Offsets(list) => Ok(parts
                .iter()
                .map(|p| {
                    list.iter().find(|(i, _)| *i == p.index).map(|(_, o)| *o).unwrap_or_else(|| p.log.end_offset())
                })
                .collect()),
            BrowseFrom::Time(t) => {
                let mut out = Vec::with_capacity(parts.len());
                for p in parts {
                    let (p, t) = (Arc::clone(p), *t);
                    out.push(blocking(move || Ok(p.log.offset_for_publish_time(t))).await?);
                }
                Ok(out)
            }
            BrowseFrom::LatestMinus(n) => {
                let n = *n;
                let naive: Vec<u64> =
                    parts.iter().map(|p| p.log.end_offset().saturating_sub(n).max(p.log.start_offset())).collect();
                if parts.len() <= 1 || n == 0 {
                    return Ok(naive);
                }
                // The last n across partitions: read each partition's last n, keep the n latest
                // by publish time, start every partition at its first kept message.
                let per_part_bytes = (MAX_PAGE_BYTES / parts.len()).max(256 * 1024);
                let mut tails: Vec<(i64, i32, u64)> = Vec::new();
                for (p, start) in parts.iter().zip(&naive) {
                    let (p2, start) = (Arc::clone(p), *start);
                    let recs = blocking(move || read_from(&p2, start, n as usize, per_part_bytes)).await?;
                    tails.extend(recs.iter().map(|r| (r.publish_time, p.index, r.offset)));
                }
                tails.sort_unstable();
                let kept = &tails[tails.len().saturating_sub(n as usize)..];
                Ok(parts
                    .iter()
                    .zip(&naive)
                    .map(|(p, fallback)| {
                        kept.iter()
                            .filter(|(_, i, _)| *i == p.index)
                            .map(|(_, _, o)| *o)
                            .min()
                            .unwrap_or_else(|| if kept.is_empty() { *fallback } else { p.log.end_offset() })
                    })
                    .collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_parse() {
        assert_eq!(BrowseFrom::parse("earliest").unwrap(), BrowseFrom::Earliest);
        assert_eq!(BrowseFrom::parse("latest-20").unwrap(), BrowseFrom::LatestMinus(20));
        assert_eq!(BrowseFrom::parse("time:1700000000000").unwrap(), BrowseFrom::Time(1_700_000_000_000));
        assert_eq!(BrowseFrom::parse("o:0=5,1=7").unwrap(), BrowseFrom::Offsets(vec![(0, 5), (1, 7)]));
        assert_eq!(
            BrowseFrom::parse("3:4:1").unwrap(),
            BrowseFrom::Id(MessageId { ledger_id: 3, entry_id: 4, partition_index: 1, batch_index: -1 })
        );
        assert!(BrowseFrom::parse("latest-x").is_err());
        assert!(BrowseFrom::parse("latest-10001").is_err());
        assert!(BrowseFrom::parse("yesterday").is_err());
        assert_eq!(next_token(&[(0, 5), (1, 7)]), "o:0=5,1=7");
    }
}
