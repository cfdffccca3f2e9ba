//! Admin operations on every partition of a whole partitioned topic in a broker tier: create,
//! delete, clear, reset and expire a subscription, list subscriptions, unload, terminate, and
//! delete the topic. The handler has authorized the caller on the base name; each partition's
//! owner authorizes again. As without a tier, an operation on a subscription succeeds when it did
//! on the partitions that have the subscription (404 when none has it), and every other operation
//! needs every partition.

use super::{Call, Whole, all_done, empty, json, segment};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::routes::subscriptions::PositionBody;
use axum::http::{Method, StatusCode};
use magnetar_broker::{BrokerError, Entity, StartPosition};
use magnetar_core::{MessageId, SubscriptionName, TopicName};
use std::collections::BTreeMap;

fn body_of(value: &impl serde::Serialize) -> ApiResult<Option<Vec<u8>>> {
    serde_json::to_vec(value).map(Some).map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

fn sub_tail(sub: &SubscriptionName, rest: &str) -> String {
    format!("/subscription/{}{rest}", segment(sub.as_str()))
}

/// The partitions a position designates: its own when the id names one, else every partition
/// (as a reset or expiry by id on a whole topic does without a tier).
fn partitions_of_id(whole: &Whole, id: &MessageId) -> ApiResult<Vec<u32>> {
    if id.partition_index < 0 {
        return Ok((0..whole.partitions).collect());
    }
    let p = id.partition_index as u32;
    if p >= whole.partitions {
        return Err(BrokerError::ForeignMessageId { id: id.to_text(), topic: whole.base.clone() }.into());
    }
    Ok(vec![p])
}

pub(crate) async fn create_subscription(
    s: &AppState,
    whole: &Whole,
    sub: &SubscriptionName,
    body: Option<PositionBody>,
) -> ApiResult<()> {
    let start = body.as_ref().map(|b| StartPosition::from_message_id(&b.id())).unwrap_or(StartPosition::Latest);
    let payload = match &body {
        Some(b) => body_of(b)?,
        None => None,
    };
    let answers = whole
        .each(|i| {
            let call =
                Call { method: Method::PUT, path: whole.admin_path(i, &sub_tail(sub, "")), body: payload.clone() };
            let local =
                move |name: TopicName| async move { Ok(s.broker.subscriptions().create(&name, sub, start).await?) };
            whole.on(s, i, call, local, empty)
        })
        .await;
    all_done(answers, false).map(drop)
}

pub(crate) async fn delete_subscription(
    s: &AppState,
    whole: &Whole,
    sub: &SubscriptionName,
    force: bool,
) -> ApiResult<()> {
    if !force && super::stats::in_use(s, whole, Some(sub)).await? {
        return Err(BrokerError::InUse(Entity::Subscription { topic: whole.base.clone(), name: sub.clone() }).into());
    }
    let answers = whole
        .each(|i| {
            let tail = sub_tail(sub, &format!("?force={force}"));
            let call = Call { method: Method::DELETE, path: whole.admin_path(i, &tail), body: None };
            let local =
                move |name: TopicName| async move { Ok(s.broker.subscriptions().delete(&name, sub, force).await?) };
            whole.on(s, i, call, local, empty)
        })
        .await;
    all_done(answers, true).map(drop)
}

pub(crate) async fn skip_all(s: &AppState, whole: &Whole, sub: &SubscriptionName) -> ApiResult<()> {
    let answers = whole
        .each(|i| {
            let call =
                Call { method: Method::POST, path: whole.admin_path(i, &sub_tail(sub, "/skip_all")), body: None };
            let local = move |name: TopicName| async move {
                s.broker.subscriptions().skip_all(&name, sub).await?;
                Ok(())
            };
            whole.on(s, i, call, local, empty)
        })
        .await;
    all_done(answers, true).map(drop)
}

pub(crate) async fn reset_to_time(s: &AppState, whole: &Whole, sub: &SubscriptionName, time_ms: i64) -> ApiResult<()> {
    let answers = whole
        .each(|i| {
            let tail = sub_tail(sub, &format!("/resetcursor/{time_ms}"));
            let call = Call { method: Method::POST, path: whole.admin_path(i, &tail), body: None };
            let local = move |name: TopicName| async move {
                s.broker.subscriptions().reset_to_time(&name, sub, time_ms).await?;
                Ok(())
            };
            whole.on(s, i, call, local, empty)
        })
        .await;
    all_done(answers, true).map(drop)
}

pub(crate) async fn reset_to_id(
    s: &AppState,
    whole: &Whole,
    sub: &SubscriptionName,
    body: &PositionBody,
) -> ApiResult<()> {
    let id = body.id();
    let payload = body_of(body)?;
    let answers = whole
        .some(partitions_of_id(whole, &id)?, |i| {
            let tail = sub_tail(sub, "/resetcursor");
            let call = Call { method: Method::POST, path: whole.admin_path(i, &tail), body: payload.clone() };
            let local = move |name: TopicName| async move {
                s.broker.subscriptions().reset_to_id(&name, sub, &id, body.is_excluded).await?;
                Ok(())
            };
            whole.on(s, i, call, local, empty)
        })
        .await;
    all_done(answers, true).map(drop)
}

/// Pulsar's expireMessages by age, on one subscription or (`None`) on all.
pub(crate) async fn expire(s: &AppState, whole: &Whole, sub: Option<&SubscriptionName>, seconds: i64) -> ApiResult<()> {
    let answers = whole
        .each(|i| {
            let tail = match sub {
                Some(sub) => sub_tail(sub, &format!("/expireMessages/{seconds}")),
                None => format!("/all_subscription/expireMessages/{seconds}"),
            };
            let call = Call { method: Method::POST, path: whole.admin_path(i, &tail), body: None };
            let local = move |name: TopicName| async move {
                s.broker.subscriptions().expire(&name, sub, seconds).await?;
                Ok(())
            };
            whole.on(s, i, call, local, empty)
        })
        .await;
    all_done(answers, sub.is_some()).map(drop)
}

pub(crate) async fn expire_to_id(
    s: &AppState,
    whole: &Whole,
    sub: &SubscriptionName,
    body: &PositionBody,
) -> ApiResult<()> {
    let id = body.id();
    let payload = body_of(body)?;
    let answers = whole
        .some(partitions_of_id(whole, &id)?, |i| {
            let call = Call {
                method: Method::POST,
                path: whole.admin_path(i, &sub_tail(sub, "/expireMessages")),
                body: payload.clone(),
            };
            let local = move |name: TopicName| async move {
                s.broker.subscriptions().expire_to_id(&name, sub, &id, body.is_excluded).await?;
                Ok(())
            };
            whole.on(s, i, call, local, empty)
        })
        .await;
    all_done(answers, true).map(drop)
}

/// The subscriptions of every partition, each name once, sorted.
pub(crate) async fn list_subscriptions(s: &AppState, whole: &Whole) -> ApiResult<Vec<String>> {
    let answers = whole
        .each(|i| {
            let call = Call { method: Method::GET, path: whole.admin_path(i, "/subscriptions"), body: None };
            let local = move |name: TopicName| async move { Ok(s.broker.subscriptions().list(&name).await?) };
            whole.on(s, i, call, local, json::<Vec<String>>)
        })
        .await;
    let mut names: Vec<String> = all_done(answers, false)?.into_iter().flatten().collect();
    names.sort();
    names.dedup();
    Ok(names)
}

pub(crate) async fn unload(s: &AppState, whole: &Whole) -> ApiResult<()> {
    let answers = whole.each(|i| unload_partition(s, whole, i)).await;
    all_done(answers, false).map(drop)
}

async fn unload_partition(s: &AppState, whole: &Whole, i: u32) -> ApiResult<()> {
    let call = Call { method: Method::PUT, path: whole.admin_path(i, "/unload"), body: None };
    let local = move |name: TopicName| async move { Ok(s.broker.topics().unload(&name).await?) };
    whole.on(s, i, call, local, empty).await
}

/// Terminates every partition; the id of each one's last message, by partition index.
pub(crate) async fn terminate(s: &AppState, whole: &Whole) -> ApiResult<BTreeMap<i32, MessageId>> {
    let answers = whole
        .each(|i| {
            let call = Call { method: Method::POST, path: whole.admin_path(i, "/terminate"), body: None };
            let local = move |name: TopicName| async move { Ok(s.broker.topics().terminate(&name).await?) };
            whole.on(s, i, call, local, json::<MessageId>)
        })
        .await;
    Ok(all_done(answers, false)?.into_iter().enumerate().map(|(i, id)| (i as i32, id)).collect())
}

/// Deletes the topic. Without `force`, refused while a partition has consumers or messages in
/// flight (asked of every owner first). The metadata goes here, with this broker's partitions;
/// then the owners of the others are asked to unload theirs, which drops a partition whose topic
/// is gone together with its local data. An owner that cannot be reached keeps its copy until it
/// restarts (its orphan logs are collected then) — the topic is deleted all the same.
pub(crate) async fn delete_topic(s: &AppState, whole: &Whole, force: bool) -> ApiResult<()> {
    if !force && super::stats::in_use(s, whole, None).await? {
        return Err(BrokerError::InUse(Entity::PartitionedTopic(whole.base.clone())).into());
    }
    let places = whole.each(|i| whole.place(s, i)).await;
    s.broker.topics().delete(&whole.base, force, true).await?;
    let remote: Vec<u32> =
        (0..whole.partitions).filter(|&i| matches!(places[i as usize], Ok(super::Place::Remote { .. }))).collect();
    let answers = whole.some(remote.iter().copied(), |i| unload_partition(s, whole, i)).await;
    for (i, answer) in remote.into_iter().zip(answers) {
        match answer {
            Ok(()) => {}
            // Never loaded there: nothing to drop.
            Err(e) if e.status == StatusCode::NOT_FOUND => {}
            Err(e) => tracing::warn!(topic = %whole.base, partition = i, reason = %e.reason,
                "the owner of a deleted partition did not drop it; it does at its next start"),
        }
    }
    Ok(())
}
