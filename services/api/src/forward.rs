//! Routing inside the broker tier: the one place where a request for a topic this broker does
//! not own is sent on to the owner (DESIGN §6). Any broker accepts any request; the topic is read
//! from the path (admin topic operations, REST produce, HTTP pull-consume, WebSocket sessions),
//! `Tier::route` says where its bundle is served, and a request for another broker is forwarded
//! once, over kept-alive connections, to the owner's internal address, with its headers
//! (`Authorization` among them, unchanged: the owner authenticates and authorizes the caller as
//! if it had been asked directly) and its body streamed. The answer goes back as it came; the
//! client never learns an internal address.
//!
//! A forwarded request carries `x-magnetar-forwarded-by`; a broker that does not own the bundle
//! either answers 503 with a reason instead of forwarding again, so a stale view can never make a
//! loop. The header grants nothing: a client that sets it only loses the forwarding.
//!
//! A path naming a whole partitioned topic by its base name is not forwarded: the broker that
//! received it serves it, fanning it out to the owners of the partitions (`fanout/`).

use crate::AppState;
use crate::error::{ApiError, NOT_OWNER};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use magnetar_broker::BrokerError;
use magnetar_broker::tier::Route;
use magnetar_core::bundles::BundleRange;
use magnetar_core::{NamespaceName, TopicName};
use std::future::Future;

/// Marks a request forwarded by another broker of the tier (its value: that broker's id).
pub const FORWARDED_BY: HeaderName = HeaderName::from_static("x-magnetar-forwarded-by");
/// The cluster of the broker that forwarded a request. An address outlives the broker that had
/// it (a pod's IP is given to the next pod, a test's port to the next test): a broker of
/// another cluster found there refuses the request instead of serving it, so a message is
/// never acknowledged by a cluster its producer did not ask.
pub const FORWARDED_FOR_CLUSTER: HeaderName = HeaderName::from_static("x-magnetar-cluster");

/// The headers that mark a request this broker forwards.
pub fn forwarding_headers(s: &AppState) -> [(HeaderName, header::HeaderValue); 2] {
    let value = |v: &str| header::HeaderValue::from_str(v).unwrap_or_else(|_| header::HeaderValue::from_static(""));
    [(FORWARDED_BY, value(s.broker.broker_id())), (FORWARDED_FOR_CLUSTER, value(s.broker.cluster()))]
}

/// A forwarded request from a broker of another cluster: refused as a stale route (the
/// forwarding broker routes it again where its own cluster serves the topic).
fn foreign_forward(s: &AppState, headers: &axum::http::HeaderMap) -> Option<Response> {
    let theirs = headers.get(&FORWARDED_FOR_CLUSTER)?.to_str().unwrap_or("");
    if theirs == s.broker.cluster() {
        return None;
    }
    let by = headers.get(&FORWARDED_BY).and_then(|v| v.to_str().ok()).unwrap_or("?");
    let mut answer = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "broker {by} of cluster {theirs:?} forwarded this request to a broker of cluster {:?}: its view of \
             the tier is stale (an address now used by another cluster); retry",
            s.broker.cluster()
        ),
    );
    answer.not_owner = true;
    Some(answer.into_response())
}

/// The HTTP client brokers forward with: one pool of kept-alive connections per owner.
///
/// An owner that died with its host, or whose VM stalled, never answers nor resets: the kernel
/// gives up on a connection whose sent bytes stay unacknowledged for `owner_silence_ms`
/// (`TCP_USER_TIMEOUT`), and keep-alive probes find an idle pooled connection to it dead, so a
/// forwarded request fails (and is answered 503) instead of waiting for the host. A live
/// owner's kernel acknowledges at once however long the request takes to serve, so this
/// bounds nothing legitimate. (A stopped process on a live host is answered by its kernel: its
/// requests wait until it resumes, and it then refuses them, fenced.)
pub fn client(tier: &magnetar_broker::tier::TierConfig) -> reqwest::Client {
    let (idle, interval) = tier.owner_keepalive();
    reqwest::Client::builder()
        .connect_timeout(tier.forward_connect_timeout())
        .tcp_nodelay(true)
        .tcp_keepalive(idle)
        .tcp_keepalive_interval(interval)
        .tcp_keepalive_retries(magnetar_broker::tier::OWNER_KEEPALIVE_PROBES)
        .tcp_user_timeout(tier.owner_silence())
        // Forwarded answers (redirects included) go back to the client as they are.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("the forwarding client builds with a static configuration")
}

/// An error with the errors that caused it (a client's "error sending request" says why only
/// in its sources).
pub(crate) fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// The middleware: serves here, forwards, or answers why neither is possible.
///
/// A request whose bundle moves while it is being served (the owner answered `NOT_OWNER`:
/// nothing was done) is served again where the bundle is now, until `assignment_wait_ms` has
/// passed: clients see a short delay, not an error. Its body is kept for that (bounded by
/// `max_request_bytes`, as the handlers bound it). WebSocket sessions are routed once; a move
/// closes them with 1012 and the client reconnects.
pub async fn route(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let tier = s.broker.tier();
    if !tier.enabled() {
        return next.run(req).await;
    }
    let target = match (topic_of_path(req.uri().path()), split_of_path(req.uri().path())) {
        (Some(name), _) => Target::Topic(name),
        // A bundle that does not exist: the handler answers that.
        (None, Some((ns, range))) if tier.is_current(&ns, &range).await.unwrap_or(false) => Target::Bundle(ns, range),
        _ => return next.run(req).await,
    };
    let forwarded = req.headers().contains_key(&FORWARDED_BY);
    if let Some(refused) = forwarded.then(|| foreign_forward(&s, req.headers())).flatten() {
        return refused;
    }
    let Target::Topic(name) = target else {
        return route_buffered(&s, req, next, forwarded, target).await;
    };
    // A whole partitioned topic is served here, fanned out to its partitions' owners.
    if let Some(whole) = crate::fanout::whole_topic(&s, &name, req.headers()).await {
        let mut req = req;
        req.extensions_mut().insert(whole);
        return next.run(req).await;
    }
    if req.headers().contains_key(header::UPGRADE) {
        return match tier.route(&name, forwarded).await {
            Ok(Route::Local) | Err(BrokerError::NotFound(_)) => next.run(req).await,
            Ok(Route::Forward { broker, address }) => crate::forward_ws::splice(&s, req, &broker, &address).await,
            Err(e) => ApiError::from(e).into_response(),
        };
    }
    route_buffered(&s, req, next, forwarded, Target::Topic(name)).await
}

/// What a routed request acts on: a topic (or partition), or a bundle (its split, which only
/// the bundle's owner may do).
enum Target {
    Topic(TopicName),
    Bundle(NamespaceName, BundleRange),
}

/// Serves or forwards a request with its body kept, routing it again while the owner answers
/// that the bundle moved (see `route`).
async fn route_buffered(s: &AppState, req: Request, next: Next, forwarded: bool, target: Target) -> Response {
    let tier = s.broker.tier();
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, s.http.max_request_bytes).await {
        Ok(b) => b,
        Err(e) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body unreadable or larger than {} bytes: {e}", s.http.max_request_bytes),
            )
            .into_response();
        }
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(tier.config().assignment_wait_ms);
    let mut again = false;
    loop {
        let route = match (&target, again) {
            (Target::Topic(name), false) => tier.route(name, forwarded).await,
            (Target::Topic(name), true) => tier.reroute(name, forwarded).await,
            (Target::Bundle(ns, range), false) => tier.route_bundle(ns, range, forwarded).await,
            (Target::Bundle(ns, range), true) => tier.reroute_bundle(ns, range, forwarded).await,
        };
        let request = || Request::from_parts(parts.clone(), Body::from(body.clone()));
        let response = match route {
            Ok(Route::Local) => next.clone().run(request()).await,
            Ok(Route::Forward { broker, address }) => forward(s, request(), &broker, &address).await,
            // A missing namespace (or an invalid one): the handler answers as it always does.
            Err(BrokerError::NotFound(_)) => return next.run(request()).await,
            Err(e) => ApiError::from(e).into_response(),
        };
        // A forwarded request goes back to the broker that forwarded it, which tries again.
        let moved = response.headers().contains_key(&NOT_OWNER);
        if !moved || forwarded || tokio::time::Instant::now() >= deadline {
            return response;
        }
        if !again {
            tier.metrics().held_requests.inc();
        }
        again = true;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn forward(s: &AppState, req: Request, broker: &str, address: &str) -> Response {
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let url = format!("http://{address}{path}");
    let (parts, body) = req.into_parts();
    let mut out = s.forwarder.request(parts.method, url);
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) && name != header::HOST {
            out = out.header(name, value);
        }
    }
    for (name, value) in forwarding_headers(s) {
        out = out.header(name, value);
    }
    s.broker.count_forwarded();
    let sent = out.body(reqwest::Body::wrap_stream(body.into_data_stream())).send();
    match from_owner(s, broker, sent).await {
        Ok(answer) => {
            let mut response = Response::builder().status(answer.status());
            for (name, value) in answer.headers() {
                if !hop_by_hop(name) {
                    response = response.header(name, value);
                }
            }
            let body = until_gone(answer.bytes_stream(), owner_gone(s, broker));
            response.body(Body::from_stream(body)).unwrap_or_else(|e| {
                tracing::error!(error = %e, "cannot build the forwarded answer");
                StatusCode::BAD_GATEWAY.into_response()
            })
        }
        Err(NoAnswer::OwnerLost) => owner_lost(broker).into_response(),
        Err(NoAnswer::Failed(e)) => {
            tracing::warn!(error = %e, %broker, "forwarding to the owner failed");
            // Nothing reached the owner when the connection failed: it may have just stopped
            // (a handover or a drain), so the request is routed again.
            let mut answer = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("broker {broker}, which serves this topic, could not be reached; retry"),
            );
            answer.not_owner = e.is_connect();
            answer.into_response()
        }
    }
}

/// Why a request sent to a partition's owner brought no answer.
pub(crate) enum NoAnswer {
    Failed(reqwest::Error),
    /// The owner lost its membership lease first (`Tier::lost`).
    OwnerLost,
}

/// `work` (a request sent to the owner `broker`, with the reading of its body for callers that
/// read it whole), given up once the owner loses its lease before it is done: an owner that
/// froze (a stalled VM) keeps its connections open, and the request would wait until it woke.
pub(crate) async fn from_owner<T>(
    s: &AppState,
    broker: &str,
    work: impl std::future::Future<Output = reqwest::Result<T>>,
) -> Result<T, NoAnswer> {
    tokio::select! {
        done = work => done.map_err(NoAnswer::Failed),
        () = s.broker.tier().lost(broker) => {
            tracing::warn!(%broker, "a partition's owner lost its lease before answering a forwarded request");
            Err(NoAnswer::OwnerLost)
        }
    }
}

/// Resolves once the owner `broker` has lost its membership lease (`Tier::lost`); owns what it
/// needs, for connections and streams that outlive the request that opened them.
pub(crate) fn owner_gone(s: &AppState, broker: &str) -> impl Future<Output = ()> + Send + 'static {
    let (owner, id) = (std::sync::Arc::clone(&s.broker), broker.to_string());
    async move { owner.tier().lost(&id).await }
}

/// An owner's answer body, passed on as it comes, and cut with an error once `gone` resolves
/// first (the owner froze after sending the answer's head): the client then sees the answer
/// aborted, never a shortened body that would pass for a whole one.
fn until_gone<E: std::error::Error + Send + Sync + 'static>(
    body: impl Stream<Item = Result<Bytes, E>> + Send + 'static,
    gone: impl Future<Output = ()> + Send + 'static,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let state = Some((Box::pin(body), Box::pin(gone)));
    futures::stream::unfold(state, |state| async move {
        let (mut body, mut gone) = state?;
        tokio::select! {
            biased;
            item = body.next() => item.map(|item| (item.map_err(std::io::Error::other), Some((body, gone)))),
            () = &mut gone => {
                tracing::warn!("a partition's owner lost its lease while sending a forwarded answer: the answer is cut");
                Some((Err(std::io::Error::other("the owner lost its lease before its answer was whole")), None))
            }
        }
    })
}

/// The answer to a request whose owner lost its lease before answering (`NoAnswer::OwnerLost`).
/// Not routed again: the owner may have done part of it before it froze.
pub(crate) fn owner_lost(broker: &str) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "broker {broker}, which serves this topic, stopped answering and lost its membership lease: it \
             acknowledges nothing now, and whether it did part of this request is unknown; retry once its \
             partitions are served again"
        ),
    )
}

/// Headers of one connection, not of the request (RFC 9110 §7.6.1).
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

/// The bundle a split path names (`/admin/v2/namespaces/{tenant}/{namespace}/{bundle}/split`).
fn split_of_path(path: &str) -> Option<(NamespaceName, BundleRange)> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let ["admin", "v2", "namespaces", tenant, namespace, bundle, "split"] = segments.as_slice() else { return None };
    let ns = format!("{tenant}/{namespace}").parse().ok()?;
    Some((ns, BundleRange::parse(bundle).ok()?))
}

/// The topic (or partition) a path names, for the routes that act on one: admin topic
/// operations (`/admin/v2/{domain}/{tenant}/{namespace}/{topic}/...`), REST produce and
/// pull-consume (`/topics/{domain}/...`, with `/partitions/{n}` naming a partition) and WebSocket
/// sessions (`/ws/v2/{kind}/{domain}/...`). `None` for every other path, and for a name that does
/// not parse (the handler answers that).
pub fn topic_of_path(path: &str) -> Option<TopicName> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (domain, rest) = match segments.as_slice() {
        ["admin", "v2", domain @ ("persistent" | "non-persistent"), rest @ ..] => (*domain, rest),
        ["topics", domain @ ("persistent" | "non-persistent"), rest @ ..] => (*domain, rest),
        ["ws", "v2", "producer" | "consumer" | "reader", domain @ ("persistent" | "non-persistent"), rest @ ..] => {
            (*domain, rest)
        }
        _ => return None,
    };
    let [tenant, namespace, topic, tail @ ..] = rest else { return None };
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8().ok().map(|c| c.into_owned());
    let name = TopicName::from_parts(domain, &decode(tenant)?, &decode(namespace)?, &decode(topic)?).ok()?;
    if segments[0] == "topics"
        && let ["partitions", n, ..] = tail
        && name.partition_index().is_none()
    {
        return n.parse::<u32>().ok().map(|n| name.partition(n));
    }
    Some(name)
}

#[cfg(test)]
mod tests {
    use super::{topic_of_path, until_gone};
    use bytes::Bytes;
    use futures::StreamExt;

    type Chunk = Result<Bytes, std::io::Error>;

    /// An owner that froze after the head and first chunk of its answer: the rest never comes.
    #[tokio::test]
    async fn an_answer_cut_by_its_owners_lost_lease_ends_in_an_error() {
        let body = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"{\"par"))])
            .chain(futures::stream::pending::<Chunk>());
        let (lost, gone) = tokio::sync::oneshot::channel::<()>();
        let mut out = Box::pin(until_gone(body, async move {
            let _ = gone.await;
        }));
        assert_eq!(out.next().await.unwrap().unwrap(), Bytes::from_static(b"{\"par"));
        lost.send(()).unwrap();
        let cut =
            tokio::time::timeout(std::time::Duration::from_secs(5), out.next()).await.expect("the body still waits");
        assert!(cut.expect("an error, not a clean end").is_err());
        assert!(out.next().await.is_none());
    }

    #[tokio::test]
    async fn an_answer_from_a_live_owner_passes_whole() {
        let chunks = [Bytes::from_static(b"a"), Bytes::from_static(b"b")];
        let body = futures::stream::iter(chunks.clone().map(Ok::<_, std::io::Error>));
        let out: Vec<Bytes> = until_gone(body, futures::future::pending()).map(Result::unwrap).collect().await;
        assert_eq!(out, chunks);
    }

    fn named(path: &str) -> Option<String> {
        topic_of_path(path).map(|t| t.to_string())
    }

    #[test]
    fn paths_that_act_on_a_topic_name_it() {
        assert_eq!(named("/admin/v2/persistent/t/ns/x/stats").as_deref(), Some("persistent://t/ns/x"));
        assert_eq!(
            named("/admin/v2/persistent/t/ns/x-partition-3").as_deref(),
            Some("persistent://t/ns/x-partition-3")
        );
        assert_eq!(named("/topics/persistent/t/ns/x").as_deref(), Some("persistent://t/ns/x"));
        assert_eq!(named("/topics/persistent/t/ns/x/partitions/2").as_deref(), Some("persistent://t/ns/x-partition-2"));
        assert_eq!(
            named("/topics/persistent/t/ns/x-partition-1/subscriptions/s/pull").as_deref(),
            Some("persistent://t/ns/x-partition-1")
        );
        assert_eq!(named("/ws/v2/consumer/persistent/t/ns/x/sub").as_deref(), Some("persistent://t/ns/x"));
        assert_eq!(named("/admin/v2/persistent/t/ns/a%2Db").as_deref(), Some("persistent://t/ns/a-b"));
    }

    #[test]
    fn other_paths_name_none() {
        for path in [
            "/admin/v2/persistent/t/ns",
            "/admin/v2/namespaces/t/ns",
            "/lookup/v2/topic/persistent/t/ns/x",
            "/admin/v2/schemas/t/ns/x/schema",
            "/metrics",
            "/",
        ] {
            assert_eq!(named(path), None, "{path}");
        }
    }
}
