//! REST produce to a whole partitioned topic in a broker tier: each message's partition is chosen
//! here by the broker's rule (`choose_partition`: Murmur3 of the key as Pulsar's REST producer,
//! round robin without a key), each partition gets its messages in one request to
//! `.../partitions/{i}`, and the results go back in the request's order, with ids carrying the
//! partition index. As without a tier: a message over the size limit refuses the whole request
//! before anything is stored, each message has its own result, and when every message failed the
//! request fails with the first one's condition.

use super::{Call, Whole, json};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::AuthContext;
use crate::routes::produce::{ProduceRequest, ProduceResponse, PublishResult, request_schema, to_messages};
use axum::Json;
use axum::http::{Method, StatusCode};
use magnetar_auth::Operation;
use magnetar_broker::{KeyHashing, choose_partition};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Round robin over keyless messages, shared by the topics this broker fans out to: each request
/// spreads its messages over every partition; the next request starts where it ended.
static ROUND_ROBIN: AtomicUsize = AtomicUsize::new(0);

/// The positions (in the request) of the messages of each partition.
pub(crate) fn split(keys: &[Option<&str>], partitions: u32, round_robin: &AtomicUsize) -> BTreeMap<u32, Vec<usize>> {
    let mut groups: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (pos, key) in keys.iter().enumerate() {
        let p = choose_partition(partitions as usize, *key, KeyHashing::Murmur3, || {
            round_robin.fetch_add(1, Ordering::Relaxed)
        });
        groups.entry(p as u32).or_default().push(pos);
    }
    groups
}

pub(crate) async fn publish(
    s: &AppState,
    auth: &AuthContext,
    whole: &Whole,
    req: ProduceRequest,
) -> ApiResult<Json<ProduceResponse>> {
    auth.check(Operation::Produce, &whole.base).await?;
    // Checked as the path without a tier checks them, before anything is sent anywhere (each
    // owner then finds the schema registered here as the same version).
    let schema = request_schema(s, auth, &whole.base, &req).await?;
    let schema_version = schema.as_ref().map_or(req.schema_version.unwrap_or(0), |(_, v)| *v);
    let decoded = to_messages(req.clone(), &schema)?;
    let publisher = s.broker.publisher();
    for (i, m) in decoded.iter().enumerate() {
        publisher.check_size(&whole.base, || format!("message {i}"), m)?;
    }
    let keys: Vec<Option<&str>> = decoded.iter().map(|m| m.key.as_deref()).collect();
    let parts: Vec<(u32, Vec<usize>, ProduceRequest)> = split(&keys, whole.partitions, &ROUND_ROBIN)
        .into_iter()
        .map(|(p, positions)| {
            let part = ProduceRequest {
                producer_name: req.producer_name.clone(),
                schema_version: req.schema_version,
                key_schema: req.key_schema.clone(),
                value_schema: req.value_schema.clone(),
                messages: positions.iter().map(|&pos| req.messages[pos].clone()).collect(),
            };
            (p, positions, part)
        })
        .collect();
    drop(req);
    let answers = whole
        .some(0..parts.len() as u32, |g| {
            let (p, _, part) = &parts[g as usize];
            send_part(s, auth, whole, *p, part)
        })
        .await;
    let groups = parts.into_iter().map(|(_, positions, _)| positions).zip(answers).collect();
    merge(decoded.len(), groups, schema_version).map(Json)
}

/// One partition's part, to `.../partitions/{p}` (or published here when this broker owns it).
async fn send_part(
    s: &AppState,
    auth: &AuthContext,
    whole: &Whole,
    p: u32,
    part: &ProduceRequest,
) -> ApiResult<ProduceResponse> {
    let body = serde_json::to_vec(part).map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let call =
        Call { method: Method::POST, path: whole.base_topics_path(&format!("/partitions/{p}")), body: Some(body) };
    let local = |name| async move { crate::routes::produce::publish(s, auth, &name, part.clone()).await.map(|j| j.0) };
    whole.on(s, p, call, local, json::<ProduceResponse>).await
}

/// `errorCode` of the messages of a part whose owner refused it as a whole: 1 (retriable) when
/// it could not store them now (503), else 2. (A terminated partition answers 503 too, and is
/// reported retriable here: its owner's answer does not tell it apart.)
fn code_of(status: StatusCode) -> i32 {
    if status == StatusCode::SERVICE_UNAVAILABLE { 1 } else { 2 }
}

/// The results of the parts, back at their messages' positions (`groups`: each part's positions
/// and its answer). A part refused as a whole fails each of its messages with its condition;
/// when every message failed, the request fails with the first message's condition.
pub(crate) fn merge(
    total: usize,
    groups: Vec<(Vec<usize>, ApiResult<ProduceResponse>)>,
    schema_version: i64,
) -> ApiResult<ProduceResponse> {
    let mut results: Vec<Option<(PublishResult, Option<ApiError>)>> = (0..total).map(|_| None).collect();
    for (positions, answer) in groups {
        let answer = answer.and_then(|a| {
            if a.message_publish_results.len() == positions.len() {
                Ok(a.message_publish_results)
            } else {
                Err(ApiError::new(StatusCode::BAD_GATEWAY, "a partition's owner answered for other messages than sent"))
            }
        });
        match answer {
            Ok(each) => {
                for (pos, r) in positions.into_iter().zip(each) {
                    results[pos] = Some((PublishResult { schema_version, ..r }, None));
                }
            }
            Err(e) => {
                for pos in positions {
                    let r = PublishResult {
                        message_id: String::new(),
                        error_code: code_of(e.status),
                        error_msg: Some(e.reason.clone()),
                        schema_version,
                    };
                    results[pos] = Some((r, Some(ApiError::new(e.status, e.reason.clone()))));
                }
            }
        }
    }
    let results: Vec<(PublishResult, Option<ApiError>)> = results
        .into_iter()
        .enumerate()
        .map(|(pos, r)| {
            r.ok_or_else(|| {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("message {pos} was sent to no partition"))
            })
        })
        .collect::<ApiResult<_>>()?;
    if results.iter().all(|(r, _)| r.error_code != 0) {
        let (first, condition) =
            results.into_iter().next().ok_or_else(|| ApiError::bad_request("request has no messages"))?;
        return Err(condition.unwrap_or_else(|| {
            let status = if first.error_code == 1 { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::CONFLICT };
            ApiError::new(status, first.error_msg.unwrap_or_default())
        }));
    }
    Ok(ProduceResponse { message_publish_results: results.into_iter().map(|(r, _)| r).collect(), schema_version })
}

#[cfg(test)]
mod tests {
    use super::*;
    use magnetar_core::MessageId;

    fn ok(id: &str) -> PublishResult {
        PublishResult { message_id: id.into(), error_code: 0, error_msg: None, schema_version: 0 }
    }

    fn answer(ids: &[&str]) -> ApiResult<ProduceResponse> {
        Ok(ProduceResponse { message_publish_results: ids.iter().map(|i| ok(i)).collect(), schema_version: 0 })
    }

    #[test]
    fn keys_pick_one_partition_each_and_keyless_messages_go_round() {
        let rr = AtomicUsize::new(0);
        let keys = [Some("user-1"), None, Some("user-1"), None, None, Some("user-2")];
        let groups = split(&keys, 4, &rr);
        let of = |pos: usize| groups.iter().find(|(_, ps)| ps.contains(&pos)).map(|(p, _)| *p).unwrap();
        // The broker's own rule for keys (Pulsar's Murmur3 hash).
        assert_eq!(of(0), magnetar_core::hash::partition_for_key("user-1", 4));
        assert_eq!(of(0), of(2));
        assert_eq!(of(5), magnetar_core::hash::partition_for_key("user-2", 4));
        // Keyless: one partition after the other.
        assert_eq!((of(1), of(3), of(4)), (0, 1, 2));
        // Positions stay in request order within a partition.
        assert!(groups.values().all(|ps| ps.windows(2).all(|w| w[0] < w[1])));
        let keyless = split(&[None; 8], 4, &AtomicUsize::new(0));
        assert_eq!(keyless.len(), 4, "every partition gets keyless messages: {keyless:?}");
        assert!(keyless.values().all(|ps| ps.len() == 2));
    }

    #[test]
    fn results_come_back_in_request_order() {
        let merged =
            merge(4, vec![(vec![1, 3], answer(&["0:1:2", "0:2:2"])), (vec![0, 2], answer(&["0:7:0", "0:8:0"]))], 5)
                .unwrap();
        let ids: Vec<&str> = merged.message_publish_results.iter().map(|r| r.message_id.as_str()).collect();
        assert_eq!(ids, ["0:7:0", "0:1:2", "0:8:0", "0:2:2"]);
        let partitions: Vec<i32> = ids.iter().map(|i| MessageId::parse_text(i).unwrap().partition_index).collect();
        assert_eq!(partitions, [0, 2, 0, 2]);
        assert!(merged.message_publish_results.iter().all(|r| r.schema_version == 5));
        assert_eq!(merged.schema_version, 5);
    }

    #[test]
    fn a_part_refused_as_a_whole_fails_its_messages_only() {
        let refused = Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "backlog quota reached"));
        let merged = merge(3, vec![(vec![0, 2], answer(&["0:0:1", "0:1:1"])), (vec![1], refused)], 0).unwrap();
        let r = &merged.message_publish_results;
        assert_eq!((r[0].error_code, r[1].error_code, r[2].error_code), (0, 1, 0));
        assert_eq!(r[1].error_msg.as_deref(), Some("backlog quota reached"));
        assert_eq!(r[1].message_id, "");
        let forbidden = Err(ApiError::new(StatusCode::NOT_FOUND, "gone"));
        let merged = merge(2, vec![(vec![0], answer(&["0:0:1"])), (vec![1], forbidden)], 0).unwrap();
        assert_eq!(merged.message_publish_results[1].error_code, 2);
    }

    #[test]
    fn when_every_message_failed_the_first_ones_condition_answers() {
        let e = |status, reason: &str| Err(ApiError::new(status, reason));
        let failed = merge(
            3,
            vec![
                (vec![1], e(StatusCode::SERVICE_UNAVAILABLE, "later")),
                (vec![0, 2], e(StatusCode::PRECONDITION_FAILED, "first")),
            ],
            0,
        )
        .unwrap_err();
        assert_eq!((failed.status, failed.reason.as_str()), (StatusCode::PRECONDITION_FAILED, "first"));
    }

    #[test]
    fn an_owner_answering_for_other_messages_fails_them() {
        let merged = merge(3, vec![(vec![0, 1], answer(&["0:0:0"])), (vec![2], answer(&["0:0:1"]))], 0).unwrap();
        let codes: Vec<i32> = merged.message_publish_results.iter().map(|r| r.error_code).collect();
        assert_eq!(codes, [2, 2, 0]);
    }
}
