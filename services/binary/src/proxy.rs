//! A `pulsar://` connection for another broker of the tier. A LOOKUP of a partition another
//! broker owns answers that broker's internal URL with `proxy_through_service_url`, so the
//! client stays on its service URL and names the owner in CONNECT's `proxy_to_broker_url`. The
//! broker receiving such a CONNECT:
//!
//! - proxies only to a URL a live member of its tier registered (internal or advertised; the
//!   C++ client names it as `host:port`), and connects to that member's internal URL (its
//!   advertised `pulsar+ssl://` URL with `proxy_tls_enabled`, verifying its certificate): never
//!   to an address a client made up;
//! - authenticates the client first (a bad credential costs no connection to the owner), then
//!   replays the client's CONNECT to the owner, which authenticates and authorizes the client
//!   itself, as if asked directly;
//! - then splices the two sockets byte for byte, in both directions, until either side closes
//!   or this broker shuts down. Everything after CONNECT is between the client and the owner:
//!   CONNECTED, keep-alive, and the token refresh (the owner's AUTH_CHALLENGE reaches the client
//!   and its AUTH_RESPONSE the owner, which checks it and closes the connection on an expired or
//!   revoked token; this broker checks the token at CONNECT only).
//!
//! Without a tier `proxy_to_broker_url` is ignored and the connection is served here.

use crate::Shared;
use crate::connection::{Io, TLS_METHOD, TOKEN_METHOD, Transport, authenticate, refusal};
use crate::error::BinaryError;
use futures::SinkExt;
use magnetar_auth::Principal;
use magnetar_broker::BrokerError;
use magnetar_broker::tier::binary_host_port;
use magnetar_protocol::proto::CommandConnect;
use magnetar_protocol::{Frame, PulsarCodec};
use rustls_pki_types::ServerName;
use std::net::SocketAddr;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, FramedParts};

/// The broker a CONNECT asks to be proxied to, when it is not this one and the tier is on.
pub fn target(shared: &Shared, connect: &CommandConnect) -> Option<String> {
    if !shared.broker.tier().enabled() {
        return None;
    }
    let url = binary_host_port(connect.proxy_to_broker_url.as_deref()?);
    let mine = |own: &str| !own.is_empty() && binary_host_port(own) == url;
    if url.is_empty() || mine(&shared.urls.internal) || mine(&shared.urls.advertised) {
        return None;
    }
    Some(url.to_string())
}

/// Serves a connection by splicing it to `target` (see the module docs).
pub async fn run<S: crate::connection::Io>(
    shared: &Shared,
    mut client: Framed<S, PulsarCodec>,
    connect: CommandConnect,
    transport: &Transport,
    target: String,
    peer: SocketAddr,
) {
    let opened = async {
        let principal = authenticate(shared, &connect, transport).await?;
        let connect = vouch_for_certificate(shared, connect, &principal)?;
        Ok::<_, BinaryError>((open(shared, &target).await?, connect))
    };
    let ((upstream, owner), connect) = match opened.await {
        Ok(u) => u,
        Err(e) => {
            tracing::info!(%peer, %target, reason = %e, "pulsar:// proxy refused");
            let _ = client.send(refusal(&e)).await;
            return;
        }
    };
    shared.broker.count_forwarded();
    tracing::debug!(%peer, %target, "pulsar:// connection proxied");
    let FramedParts { io: mut client_io, read_buf, .. } = client.into_parts();
    let mut upstream = upstream;
    // The client's CONNECT, without the proxy request (the owner serves it), then whatever the
    // client sent after it.
    let replay = CommandConnect { proxy_to_broker_url: None, ..connect };
    let mut first = bytes::BytesMut::from(&magnetar_protocol::frame::encode_command(&Frame::new(replay).command)[..]);
    first.extend_from_slice(&read_buf);
    if let Err(e) = upstream.write_all(&first).await {
        tracing::info!(%peer, %target, error = %e, "pulsar:// proxy: the owner closed the connection");
        return;
    }
    tokio::select! {
        r = tokio::io::copy_bidirectional(&mut client_io, &mut upstream) => {
            if let Err(e) = r {
                tracing::debug!(%peer, %target, error = %e, "pulsar:// proxied connection ended");
            }
        }
        _ = shared.shutdown.cancelled() => {
            tracing::debug!(%peer, %target, "pulsar:// proxied connection closed: the broker is shutting down");
        }
        // An owner that froze keeps both connections open, and a quiet client sends nothing
        // that would notice: once the owner's lease is gone it acknowledges nothing anyway, so
        // the client is let go to look its topics up again.
        () = shared.broker.tier().lost(&owner) => {
            tracing::info!(%peer, %target, %owner, "pulsar:// proxied connection closed: the owner lost its membership lease");
        }
    }
}

/// An owner that dies with its host, or whose VM stalls, neither answers nor resets: once the
/// client gives up on it (its keep-alive unanswered) and closes, the splice would wait for the
/// owner's side for ever. The kernel gives up on a connection whose sent bytes stay
/// unacknowledged for `owner_silence_ms` (`TCP_USER_TIMEOUT`), and keep-alive probes find an idle one
/// dead; a live owner's kernel acknowledges at once, however busy the owner is.
fn watch_peer(stream: &TcpStream, tier: &magnetar_broker::tier::TierConfig) {
    let socket = socket2::SockRef::from(stream);
    let (idle, interval) = tier.owner_keepalive();
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(idle)
        .with_interval(interval)
        .with_retries(magnetar_broker::tier::OWNER_KEEPALIVE_PROBES);
    let silence = tier.owner_silence();
    if let Err(e) = socket.set_tcp_keepalive(&keepalive).and_then(|()| socket.set_tcp_user_timeout(Some(silence))) {
        tracing::debug!(error = %e, "cannot set TCP keep-alive on a proxied connection");
    }
}

/// How long the token a broker mints for a certificate-authenticated client it proxies is valid.
/// The owner asks the client for a fresh credential before it expires, which a `tls` client
/// cannot give: its connection is then closed and it reconnects (once a day).
const VOUCHED_TOKEN_SECS: i64 = 24 * 3600;

/// The CONNECT to replay to the owner. A client that authenticated with its certificate
/// (`tls`) did so with this broker, which verified it: the owner, reached in plain TCP or over
/// TLS without a client certificate, sees none, so this broker vouches for the role with a
/// token of its own key (every broker of a tier verifies the same keys). A broker that cannot sign refuses such a client here.
fn vouch_for_certificate(
    shared: &Shared,
    connect: CommandConnect,
    principal: &Principal,
) -> Result<CommandConnect, BinaryError> {
    if connect.auth_method_name.as_deref() != Some(TLS_METHOD) {
        return Ok(connect);
    }
    let Some(authenticator) = shared.auth.authenticator() else { return Ok(connect) };
    let role = principal.role().unwrap_or_default();
    let mut claims = serde_json::Map::new();
    let exp = magnetar_core::now_millis() / 1000 + VOUCHED_TOKEN_SECS;
    claims.insert("exp".into(), exp.into());
    let token = authenticator.sign(role, claims).map_err(|e| {
        BinaryError::Auth(magnetar_auth::AuthError::NotSupported(format!(
            "a client authenticated by its certificate can be proxied to the owner only by a broker that signs \
             tokens: {e}"
        )))
    })?;
    Ok(CommandConnect { auth_method_name: Some(TOKEN_METHOD.into()), auth_data: Some(token.into_bytes()), ..connect })
}

/// Checks the target and connects to it: to its internal `pulsar://` URL, or with
/// `proxy_tls_enabled` to its `pulsar+ssl://` one, verifying its certificate. Returns the
/// connection and the member's broker id.
async fn open(shared: &Shared, target: &str) -> Result<(Box<dyn Io>, String), BinaryError> {
    let tier = shared.broker.tier();
    let not_member = || {
        BinaryError::Broker(BrokerError::NotOwner(format!(
            "{target} is not the pulsar:// listener of a live broker of this tier; look the topic up again"
        )))
    };
    let member = tier.binary_member(target).await?.ok_or_else(not_member)?;
    let id = member.registration.broker_id.clone();
    let url = match shared.proxy_tls {
        // An owner without a TLS listener is refused rather than reached in plain TCP: the
        // operator asked for the brokers' traffic to be encrypted.
        Some(_) if member.registration.binary_advertised_tls_url.is_empty() => {
            return Err(BinaryError::Broker(BrokerError::NotOwner(format!(
                "broker {id} has no pulsar+ssl:// listener and binary.proxy_tls_enabled is set; retry once it has"
            ))));
        }
        Some(_) => &member.registration.binary_advertised_tls_url,
        None => &member.registration.binary_internal_url,
    };
    let addr = Some(binary_host_port(url)).filter(|a| !a.is_empty()).ok_or_else(not_member)?;
    let wait = tier.config().forward_connect_timeout();
    let unreachable = |detail: String| {
        BinaryError::Broker(BrokerError::NotOwner(format!(
            "broker {id} could not be reached at {url}: {detail}; retry"
        )))
    };
    let stream = match tokio::time::timeout(wait, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(unreachable(e.to_string())),
        Err(_) => return Err(unreachable(format!("no connection within {} ms", wait.as_millis()))),
    };
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
    }
    watch_peer(&stream, tier.config());
    let Some(connector) = &shared.proxy_tls else { return Ok((Box::new(stream), id)) };
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h).trim_start_matches('[').trim_end_matches(']');
    let name = ServerName::try_from(host.to_string()).map_err(|e| unreachable(format!("invalid host name: {e}")))?;
    match tokio::time::timeout(wait.max(crate::tls::HANDSHAKE_TIMEOUT), connector.connect(name, stream)).await {
        Ok(Ok(tls)) => Ok((Box::new(tls), id)),
        Ok(Err(e)) => Err(unreachable(format!("TLS handshake failed: {e}"))),
        Err(_) => Err(unreachable("TLS handshake not done in time".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_proxied_connection_gives_up_on_a_silent_peer() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let tier = |ms| magnetar_broker::tier::TierConfig { owner_silence_ms: ms, ..Default::default() };
        watch_peer(&stream, &tier(15_000));
        let socket = socket2::SockRef::from(&stream);
        assert!(socket.keepalive().unwrap());
        assert_eq!(socket.tcp_keepalive_time().unwrap(), Duration::from_secs(5));
        // 2.5 s, in the kernel's whole seconds.
        assert_eq!(socket.tcp_keepalive_interval().unwrap(), Duration::from_secs(2));
        assert_eq!(socket.tcp_user_timeout().unwrap(), Some(Duration::from_secs(15)));
        // A short silence still gets whole-second keep-alive times, which the kernel accepts.
        watch_peer(&stream, &tier(2_000));
        assert_eq!(socket.tcp_keepalive_time().unwrap(), Duration::from_secs(1));
        assert_eq!(socket.tcp_user_timeout().unwrap(), Some(Duration::from_secs(2)));
    }
}
