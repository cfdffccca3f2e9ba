//! Whole partitioned topics in a broker tier (DESIGN §6). A tier loads partitions one by one, each
//! on the owner of its bundle; a request naming a partitioned topic by its base name (REST
//! produce, pull-consume, admin operations on every partition, WebSocket sessions) is served by
//! the broker that received it: it sends each partition its part, calling itself for the
//! partitions it owns and the owners of the others over the forwarding client (a WebSocket
//! session keeps one session per partition, `ws.rs`), and merges the answers as Pulsar does.
//!
//! A call to an owner names the partition (`.../{topic}-partition-{i}/...`), carries the
//! client's `Authorization` header unchanged (the owner authenticates and authorizes the caller
//! again) and `x-magnetar-forwarded-by`, so the owner serves it or answers 503, never forwards it
//! again. The receiving broker authorizes the operation on the base name first, so a caller that
//! may not do it learns it before anything is sent.
//!
//! The routing middleware (`forward.rs`) decides: with the tier on, a path naming the base name of
//! a partitioned topic is served here, and the handler finds a [`Whole`] in the request's
//! extensions; without it (tier off, a partition, or a non-partitioned topic) handlers do what
//! they always did.

pub(crate) mod admin;
pub(crate) mod consume;
pub(crate) mod produce;
pub(crate) mod stats;
pub(crate) mod ws;
pub(crate) mod ws_consumer;
pub(crate) mod ws_producer;

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use bytes::Bytes;
use futures::StreamExt;
use magnetar_broker::tier::Route;
use magnetar_core::TopicName;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use std::future::Future;

/// Most partitions one request works on at once (the others wait their turn): a topic of many
/// partitions does not open as many connections, nor hold as many answers in memory.
const MAX_IN_FLIGHT: usize = 16;

/// A request naming a whole partitioned topic, in a broker tier: its base name, its number of
/// partitions, and the client's `Authorization` header to pass on to the owners.
#[derive(Clone)]
pub struct Whole {
    pub base: TopicName,
    pub partitions: u32,
    authorization: Option<HeaderValue>,
}

/// Never the credential.
impl std::fmt::Debug for Whole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Whole").field("base", &self.base).field("partitions", &self.partitions).finish()
    }
}

/// The `Whole` a request for `name` designates: the tier is on, `name` is a base name, and its
/// topic exists with partitions. `None` otherwise, and when the metadata cannot be read (the
/// handler, running as without a tier, answers that).
pub async fn whole_topic(s: &AppState, name: &TopicName, headers: &HeaderMap) -> Option<Whole> {
    if !s.broker.tier().enabled() || name.partition_index().is_some() {
        return None;
    }
    let record = s.broker.topics().record(name).await.ok()??;
    (record.partitions > 0).then(|| Whole {
        base: name.clone(),
        partitions: record.partitions,
        authorization: headers.get(header::AUTHORIZATION).cloned(),
    })
}

/// Where a partition is served.
pub(crate) enum Place {
    Local,
    Remote { broker: String, address: String },
}

impl Place {
    fn of(route: Route) -> Place {
        match route {
            Route::Local => Place::Local,
            Route::Forward { broker, address } => Place::Remote { broker, address },
        }
    }
}

/// A request to an owner: the method, the path from `/` (query included), a JSON body.
#[derive(Clone)]
pub(crate) struct Call {
    pub method: Method,
    pub path: String,
    pub body: Option<Vec<u8>>,
}

/// Path segments are encoded as URL path segments (names may hold `%`, `:` or `=`).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

pub(crate) fn segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

fn path_of(root: &str, p: &TopicName, tail: &str) -> String {
    let ns = p.namespace();
    format!(
        "{root}/{}/{}/{}/{}{tail}",
        p.domain().as_str(),
        segment(ns.tenant().as_str()),
        segment(ns.local()),
        segment(p.local())
    )
}

impl Whole {
    #[cfg(test)]
    pub(crate) fn for_test(base: &str, partitions: u32) -> Whole {
        Whole { base: base.parse().expect("a topic name"), partitions, authorization: None }
    }

    pub fn partition(&self, i: u32) -> TopicName {
        self.base.partition(i)
    }

    /// `/admin/v2/persistent/{tenant}/{namespace}/{topic}-partition-{i}` + `tail`.
    pub(crate) fn admin_path(&self, i: u32, tail: &str) -> String {
        self.path("/admin/v2", i, tail)
    }

    /// `/topics/persistent/{tenant}/{namespace}/{topic}-partition-{i}` + `tail`.
    pub(crate) fn topics_path(&self, i: u32, tail: &str) -> String {
        self.path("/topics", i, tail)
    }

    /// `/topics/persistent/{tenant}/{namespace}/{topic}` (the base name) + `tail`.
    pub(crate) fn base_topics_path(&self, tail: &str) -> String {
        path_of("/topics", &self.base, tail)
    }

    fn path(&self, root: &str, i: u32, tail: &str) -> String {
        path_of(root, &self.partition(i), tail)
    }

    pub(crate) async fn place(&self, s: &AppState, i: u32) -> ApiResult<Place> {
        Ok(Place::of(s.broker.tier().route(&self.partition(i), false).await?))
    }

    /// `place` from a fresh read of the partition's bundle row (it moved).
    pub(crate) async fn replace(&self, s: &AppState, i: u32) -> ApiResult<Place> {
        Ok(Place::of(s.broker.tier().reroute(&self.partition(i), false).await?))
    }

    /// Partition `i`'s answer: `local` when this broker owns it, else `call` sent to its owner,
    /// whose successful body `parse` reads. The owner's error comes back as it answered it.
    ///
    /// As for a request naming one partition (`forward::route_buffered`): when the partition's
    /// bundle moved meanwhile (its supposed owner, or this broker, answers that it does not own
    /// it: nothing was done), the call goes again where the bundle is now, until
    /// `assignment_wait_ms` has passed.
    pub(crate) async fn on<T, L, Fut>(
        &self,
        s: &AppState,
        i: u32,
        call: Call,
        local: L,
        parse: impl Fn(&[u8]) -> ApiResult<T>,
    ) -> ApiResult<T>
    where
        L: Fn(TopicName) -> Fut,
        Fut: Future<Output = ApiResult<T>>,
    {
        let wait = std::time::Duration::from_millis(s.broker.tier().config().assignment_wait_ms);
        let deadline = tokio::time::Instant::now() + wait;
        let mut moved = false;
        loop {
            let place = if moved { self.replace(s, i).await? } else { self.place(s, i).await? };
            let answer = match place {
                Place::Local => local(self.partition(i)).await,
                Place::Remote { broker, address } => {
                    self.send(s, &broker, &address, call.clone()).await.and_then(|body| parse(&body))
                }
            };
            match answer {
                Err(e) if e.not_owner && tokio::time::Instant::now() < deadline => {
                    moved = true;
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                other => return other,
            }
        }
    }

    /// Sends `call` to the owner `broker` at `address`; its body when it answered 2xx.
    async fn send(&self, s: &AppState, broker: &str, address: &str, call: Call) -> ApiResult<Bytes> {
        let mut out = s.forwarder.request(call.method, format!("http://{address}{}", call.path));
        for (name, value) in crate::forward::forwarding_headers(s) {
            out = out.header(name, value);
        }
        if let Some(a) = &self.authorization {
            out = out.header(header::AUTHORIZATION, a);
        }
        if let Some(body) = call.body {
            out = out.header(header::CONTENT_TYPE, "application/json").body(body);
        }
        s.broker.count_forwarded();
        let unreachable = |e: &reqwest::Error| {
            let error = crate::forward::with_causes(e);
            tracing::warn!(%error, %broker, topic = %self.base, "a partition's owner could not be reached");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("broker {broker}, which serves a partition of {}, could not be reached; retry", self.base),
            )
        };
        let answered = async {
            let answer = out.send().await?;
            let (status, moved) = (answer.status(), answer.headers().contains_key(&crate::error::NOT_OWNER));
            Ok((status, moved, answer.bytes().await?))
        };
        let (status, moved, body) = match crate::forward::from_owner(s, broker, answered).await {
            Ok(answer) => answer,
            Err(crate::forward::NoAnswer::Failed(e)) => return Err(unreachable(&e)),
            Err(crate::forward::NoAnswer::OwnerLost) => return Err(crate::forward::owner_lost(broker)),
        };
        if status.is_success() {
            return Ok(body);
        }
        let mut e = owner_error(status, &body, broker);
        e.not_owner = moved;
        Err(e)
    }

    /// `f(i)` for every partition, at most `MAX_IN_FLIGHT` at once; the answers in partition order.
    pub(crate) async fn each<T, F, Fut>(&self, f: F) -> Vec<T>
    where
        F: Fn(u32) -> Fut,
        Fut: Future<Output = T>,
    {
        self.some(0..self.partitions, f).await
    }

    /// `f(i)` for the partitions `indexes`, as `each`.
    pub(crate) async fn some<T, F, Fut>(&self, indexes: impl IntoIterator<Item = u32>, f: F) -> Vec<T>
    where
        F: Fn(u32) -> Fut,
        Fut: Future<Output = T>,
    {
        futures::stream::iter(indexes).map(f).buffered(MAX_IN_FLIGHT).collect().await
    }
}

/// An owner's error answer as this broker's: its status and its reason (a body that is not
/// Pulsar's error body is named by its status).
fn owner_error(status: StatusCode, body: &[u8], broker: &str) -> ApiError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => ApiError::new(status, e.reason),
        Err(_) => ApiError::new(status, format!("broker {broker} answered {status}")),
    }
}

/// Reads an owner's JSON answer; one this broker cannot read is a 502.
pub(crate) fn json<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| {
        tracing::warn!(error = %e, "a partition owner's answer is not what this broker expects");
        ApiError::new(StatusCode::BAD_GATEWAY, "a partition's owner answered in a form this broker cannot read")
    })
}

/// An owner's answer without a body (204).
pub(crate) fn empty(_: &[u8]) -> ApiResult<()> {
    Ok(())
}

/// The outcome of an operation done on every partition: success when every partition succeeded,
/// else the first failure in partition order. `missing_ok`: partitions answering 404 are skipped
/// as long as one partition succeeded (a subscription missing on some partitions, as Pulsar
/// tolerates), and all 404 is a 404.
pub(crate) fn all_done<T>(answers: Vec<ApiResult<T>>, missing_ok: bool) -> ApiResult<Vec<T>> {
    let mut done = Vec::with_capacity(answers.len());
    let mut missing = None;
    for a in answers {
        match a {
            Ok(v) => done.push(v),
            Err(e) if missing_ok && e.status == StatusCode::NOT_FOUND => {
                missing.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    }
    match missing {
        Some(e) if done.is_empty() => Err(e),
        _ => Ok(done),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_paths_name_the_partition_with_encoded_segments() {
        let w = Whole::for_test("persistent://acme/app/orders", 3);
        assert_eq!(w.admin_path(2, "/stats"), "/admin/v2/persistent/acme/app/orders-partition-2/stats");
        assert_eq!(w.topics_path(0, ""), "/topics/persistent/acme/app/orders-partition-0");
        assert_eq!(segment("a b:c%d"), "a%20b%3Ac%25d");
    }

    #[test]
    fn every_partition_must_succeed_unless_missing_is_tolerated() {
        let nf = || ApiError::new(StatusCode::NOT_FOUND, "missing");
        let busy = || ApiError::new(StatusCode::PRECONDITION_FAILED, "busy");
        assert_eq!(all_done(vec![Ok(1), Ok(2)], false).unwrap(), vec![1, 2]);
        assert_eq!(all_done(vec![Ok(1), Err(nf())], false).unwrap_err().status, StatusCode::NOT_FOUND);
        assert_eq!(all_done(vec![Ok(1), Err(nf())], true).unwrap(), vec![1]);
        assert_eq!(all_done::<i32>(vec![Err(nf()), Err(nf())], true).unwrap_err().status, StatusCode::NOT_FOUND);
        let first = all_done(vec![Err(nf()), Err(busy()), Ok(3)], true).unwrap_err();
        assert_eq!(first.status, StatusCode::PRECONDITION_FAILED);
    }
}
