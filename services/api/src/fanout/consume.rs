//! HTTP pull-consume on a whole partitioned topic in a broker tier. A pull asks the partitions
//! for messages, never more in total than the request's `maxMessages` (a message handed out is
//! in flight until acknowledged or its deadline passes: none may be fetched and then dropped), so
//! the count is split over the partitions, asked at once, and the partitions that may hold more
//! are then asked one after the other for what is left. A long poll repeats this in slices of at
//! most `WAIT_SLICE`, answering after the first slice that found messages. Acks and nacks go to
//! the partition named by each message id.

use super::{Call, Whole, all_done, empty, json, segment};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::AuthContext;
use crate::routes::consume::{PullBody, PullResponse, PulledJson, parse_ids};
use axum::http::{Method, StatusCode};
use magnetar_auth::Operation;
use magnetar_broker::{BrokerError, PullRequest};
use magnetar_core::{SubscriptionName, TopicName};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The longest one round of a long poll waits on the partitions: a message arriving on any
/// partition is answered within it.
const WAIT_SLICE: Duration = Duration::from_millis(250);

/// Where the next pull starts, so that one busy partition cannot starve the others.
static NEXT_START: AtomicU32 = AtomicU32::new(0);

/// How many messages to ask each partition for in one round: `max` spread evenly over the
/// partitions from `start` on (those first get one more), none to the partitions past `max`.
pub(crate) fn quotas(partitions: u32, max: usize, start: u32) -> Vec<(u32, usize)> {
    let n = partitions as usize;
    if n == 0 || max == 0 {
        return Vec::new();
    }
    let (each, extra) = (max / n, max % n);
    (0..n)
        .map(|k| ((start as usize + k) % n, each + usize::from(k < extra)))
        .filter(|(_, q)| *q > 0)
        .map(|(p, q)| (p as u32, q))
        .collect()
}

/// What one call of a pull knows of each partition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Seen {
    asked: bool,
    /// It gave fewer messages than asked: it has none left for now.
    short: bool,
    end_of_topic: bool,
}

pub(crate) async fn pull(
    s: &AppState,
    auth: &AuthContext,
    whole: &Whole,
    sub: &SubscriptionName,
    body: &PullBody,
    req: &PullRequest,
) -> ApiResult<PullResponse> {
    auth.check(Operation::Consume, (&whole.base, sub.as_str())).await?;
    let deadline = tokio::time::Instant::now() + req.wait;
    let n = whole.partitions;
    let mut start = NEXT_START.fetch_add(1, Ordering::Relaxed) % n.max(1);
    let mut out: Vec<PulledJson> = Vec::new();
    let mut first_error = None;
    loop {
        let mut seen = vec![Seen::default(); n as usize];
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let wait = left.min(WAIT_SLICE);
        // At once: the count split over the partitions.
        let plan = quotas(n, req.max_messages, start);
        let share = (req.max_bytes / plan.len().max(1)).max(1);
        let asked: Vec<u32> = plan.iter().map(|(p, _)| *p).collect();
        let answers = whole
            .some(asked, |p| {
                let quota = plan.iter().find(|(q, _)| *q == p).map_or(1, |(_, q)| *q);
                pull_partition(s, auth, whole, sub, body, req, p, quota, share, wait)
            })
            .await;
        for ((p, quota), answer) in plan.iter().zip(answers) {
            take(&mut out, &mut seen[*p as usize], *quota, answer, &mut first_error);
        }
        // Then one by one, the partitions that may hold more, for what is left.
        for k in 0..n {
            let p = (start + k) % n;
            let room = req.max_messages.saturating_sub(out.len());
            let bytes: usize = out.iter().map(|m| m.payload.len() * 3 / 4).sum();
            if room == 0 || bytes >= req.max_bytes {
                break;
            }
            if seen[p as usize].asked && seen[p as usize].short {
                continue;
            }
            let answer =
                pull_partition(s, auth, whole, sub, body, req, p, room, req.max_bytes - bytes, Duration::ZERO).await;
            take(&mut out, &mut seen[p as usize], room, answer, &mut first_error);
        }
        let every_end = seen.iter().all(|v| v.asked && v.end_of_topic);
        let nobody_answered = seen.iter().all(|v| !v.asked);
        if nobody_answered && let Some(e) = first_error.take() {
            return Err(e);
        }
        if !out.is_empty() || every_end || tokio::time::Instant::now() >= deadline {
            return Ok(PullResponse { messages: out, end_of_topic: every_end });
        }
        start = (start + 1) % n;
    }
}

/// Adds a partition's answer to the pull's. An error (a partition whose owner is unreachable)
/// leaves that partition unanswered; the pull fails with it only when no partition answered.
fn take(
    out: &mut Vec<PulledJson>,
    seen: &mut Seen,
    asked_for: usize,
    answer: ApiResult<PullResponse>,
    first_error: &mut Option<ApiError>,
) {
    match answer {
        Ok(r) => {
            *seen = Seen { asked: true, short: r.messages.len() < asked_for, end_of_topic: r.end_of_topic };
            out.extend(r.messages);
        }
        Err(e) => {
            if e.status.is_server_error() {
                tracing::warn!(status = %e.status, reason = %e.reason, "a partition could not be pulled from");
            }
            first_error.get_or_insert(e);
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn pull_partition(
    s: &AppState,
    auth: &AuthContext,
    whole: &Whole,
    sub: &SubscriptionName,
    body: &PullBody,
    req: &PullRequest,
    p: u32,
    max_messages: usize,
    max_bytes: usize,
    wait: Duration,
) -> ApiResult<PullResponse> {
    let part = PullBody {
        max_messages: Some(max_messages),
        max_bytes: Some(max_bytes),
        wait_ms: Some(wait.as_millis() as u64),
        ..body.clone()
    };
    let payload =
        serde_json::to_vec(&part).map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let tail = format!("/subscriptions/{}/pull", segment(sub.as_str()));
    let call = Call { method: Method::POST, path: whole.topics_path(p, &tail), body: Some(payload) };
    let local = move |name: TopicName| async move {
        let one = PullRequest { max_messages, max_bytes, wait, ..req.clone() };
        let subscriptions = s.broker.subscriptions();
        let messages = subscriptions.pull(&auth.caller(), &name, sub, &one).await?;
        let end_of_topic = subscriptions.end_of_topic(&name, sub).await?;
        Ok(PullResponse { messages: messages.into_iter().map(PulledJson::from).collect(), end_of_topic })
    };
    whole.on(s, p, call, local, json::<PullResponse>).await
}

/// The ids of each partition, as the client wrote them, by the partition index each id carries;
/// an id naming no partition of the topic is a 400, as without a tier.
pub(crate) fn group_ids(whole: &Whole, texts: &[String]) -> ApiResult<BTreeMap<u32, Vec<String>>> {
    let ids = parse_ids(texts)?;
    let mut groups: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for (id, text) in ids.iter().zip(texts) {
        let p = u32::try_from(id.partition_index).ok().filter(|p| *p < whole.partitions).ok_or_else(|| {
            ApiError::from(BrokerError::ForeignMessageId { id: id.to_text(), topic: whole.base.clone() })
        })?;
        groups.entry(p).or_default().push(text.clone());
    }
    Ok(groups)
}

/// Acknowledges (`nack`: `None`) or redelivers after the delay (`Some`) the messages, each on
/// its partition. Each partition's acknowledgement is durable when this returns; a refusal by one
/// partition does not undo the others' (every one is still safe to send again).
pub(crate) async fn ack(
    s: &AppState,
    auth: &AuthContext,
    whole: &Whole,
    sub: &SubscriptionName,
    texts: &[String],
    nack: Option<Duration>,
) -> ApiResult<()> {
    auth.check(Operation::Consume, (&whole.base, sub.as_str())).await?;
    let groups: Vec<(u32, Vec<String>)> = group_ids(whole, texts)?.into_iter().collect();
    let answers = whole
        .some(0..groups.len() as u32, |g| {
            let (p, texts) = &groups[g as usize];
            let (verb, body) = match nack {
                None => ("ack", serde_json::json!({ "messageIds": texts })),
                Some(d) => {
                    ("nack", serde_json::json!({ "messageIds": texts, "redeliveryDelayMs": d.as_millis() as u64 }))
                }
            };
            let tail = format!("/subscriptions/{}/{verb}", segment(sub.as_str()));
            let call =
                Call { method: Method::POST, path: whole.topics_path(*p, &tail), body: serde_json::to_vec(&body).ok() };
            let local = move |name: TopicName| async move {
                let ids = parse_ids(texts)?;
                let subscriptions = s.broker.subscriptions();
                match nack {
                    None => subscriptions.ack(&auth.caller(), &name, sub, &ids).await?,
                    Some(delay) => subscriptions.nack(&auth.caller(), &name, sub, &ids, delay).await?,
                }
                Ok(())
            };
            whole.on(s, *p, call, local, empty)
        })
        .await;
    all_done(answers, false).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pull_never_asks_for_more_than_its_count() {
        for (n, max) in [(12, 100), (12, 5), (3, 3), (1, 10), (4, 1), (7, 23)] {
            for start in 0..n {
                let q = quotas(n, max, start);
                assert_eq!(q.iter().map(|(_, c)| c).sum::<usize>(), max, "{n} {max} {start}");
                let mut seen: Vec<u32> = q.iter().map(|(p, _)| *p).collect();
                seen.sort();
                seen.dedup();
                assert_eq!(seen.len(), q.len(), "a partition asked twice: {q:?}");
                assert_eq!(q.len(), (n as usize).min(max));
                assert!(q.iter().all(|(p, _)| *p < n));
            }
        }
        // The first partitions from `start` get the remainder; the next pull starts elsewhere.
        assert_eq!(quotas(3, 5, 1), vec![(1, 2), (2, 2), (0, 1)]);
        assert_eq!(quotas(4, 2, 3), vec![(3, 1), (0, 1)]);
        assert!(quotas(0, 5, 0).is_empty());
    }

    #[test]
    fn ids_go_to_the_partition_they_carry() {
        let whole = Whole::for_test("persistent://acme/app/orders", 4);
        let texts: Vec<String> = ["1:2:3", "0:5:0", "1:3:3"].map(String::from).to_vec();
        let groups = group_ids(&whole, &texts).unwrap();
        assert_eq!(groups[&3], vec!["1:2:3".to_string(), "1:3:3".to_string()]);
        assert_eq!(groups[&0], vec!["0:5:0".to_string()]);
        assert_eq!(groups.len(), 2);
        // Not a partition of this topic, or no partition at all.
        for bad in ["1:2:4", "1:2:-1", "1:2"] {
            let e = group_ids(&whole, &[bad.to_string()]).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
        }
        assert_eq!(group_ids(&whole, &["x".to_string()]).unwrap_err().status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn a_partition_answer_counts_as_short_when_it_gave_less_than_asked() {
        let msg = |id: &str| PulledJson {
            message_id: id.into(),
            payload: String::new(),
            key: None,
            key_base64: false,
            ordering_key: None,
            properties: Default::default(),
            publish_time: String::new(),
            event_time: None,
            redelivery_count: 0,
            chunk: None,
            encryption_context: None,
        };
        let (mut out, mut seen, mut err) = (Vec::new(), Seen::default(), None);
        take(&mut out, &mut seen, 2, Ok(PullResponse { messages: vec![msg("0:1:0")], end_of_topic: false }), &mut err);
        assert_eq!(seen, Seen { asked: true, short: true, end_of_topic: false });
        take(&mut out, &mut seen, 1, Ok(PullResponse { messages: vec![msg("0:2:0")], end_of_topic: false }), &mut err);
        assert!(!seen.short, "a full answer may have more behind it");
        let mut other = Seen::default();
        take(&mut out, &mut other, 1, Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "down")), &mut err);
        assert!(!other.asked);
        assert_eq!(out.len(), 2);
        assert_eq!(err.map(|e| e.status), Some(StatusCode::SERVICE_UNAVAILABLE));
    }
}
