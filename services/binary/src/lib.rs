//! Pulsar's binary protocol served by the broker: the `pulsar://` listener, its connections and
//! what each command does, on top of the broker's publish path and subscription engine (the same
//! ones REST, HTTP pull and WebSocket use) and the same authentication and authorization. The
//! wire format itself (frames, protobuf messages, batches, compression) is `magnetar-protocol`'s.
//!
//! - [`BinaryConfig`]: the `[binary]` configuration section.
//! - [`BinaryListener`]: the bound socket and its `pulsar://` URLs, known before the broker
//!   starts (a broker of a tier registers them with its membership).
//! - [`BinaryServer`]: accepts a bounded number of connections, stops on a token and waits for
//!   its connections to drain.
//! - `connection`: one task per connection; CONNECT, keep-alive, lookups and the dispatch of
//!   every other command. `producer` and `consumer` run the per-producer and per-consumer tasks;
//!   `convert` maps stored records to Pulsar messages and back; `error` maps broker and auth
//!   errors to Pulsar's `ServerError` codes, in one place. `proxy` splices a connection that
//!   names another broker of the tier (CONNECT's `proxy_to_broker_url`) to that broker.

mod connection;
mod consumer;
mod convert;
mod error;
mod lookup;
mod producer;
mod proxy;
mod refresh;
mod schema;
mod tls;

pub use error::BinaryError;

use connection::Transport;
use magnetar_auth::Auth;
use magnetar_broker::{BinaryUrls, Broker, BrokerConfig};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The `[binary]` section: Pulsar's binary protocol listener.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BinaryConfig {
    /// Serve `pulsar://` at all.
    pub enabled: bool,
    /// Address the listener binds (Pulsar's port is 6650).
    pub addr: SocketAddr,
    /// The `pulsar://host:port` URL lookups answer with; empty: derived from the bound address
    /// (with the host of `broker.advertised_address` when bound to all interfaces).
    pub advertised_url: String,
    /// Most connections open at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// SEND frames of one producer accepted and not yet answered with a receipt; beyond it the
    /// connection stops reading (backpressure on the client).
    pub max_pending_sends: usize,
    /// Most messages one consumer is sent ahead of its permits being renewed is what its FLOW
    /// grants; this caps one FLOW's grant.
    pub max_permits: u32,
    /// Seconds before a connection's token expires at which the broker asks the client for a
    /// fresh one (AUTH_CHALLENGE); a connection still on an expired token is closed.
    pub auth_refresh_secs: u64,
    /// Address of the `pulsar+ssl://` listener (Pulsar's port is 6651); unset: no TLS listener.
    pub tls_addr: Option<SocketAddr>,
    /// PEM certificate chain of the TLS listener (Pulsar's `tlsCertificateFilePath`).
    pub tls_cert_file: String,
    /// PEM private key of the TLS listener (Pulsar's `tlsKeyFilePath`).
    pub tls_key_file: String,
    /// The `pulsar+ssl://host:port` URL lookups answer TLS clients with; empty: derived from
    /// the bound address as `advertised_url` is.
    pub advertised_tls_url: String,
    /// PEM certificates of the authorities whose client certificates the TLS listener accepts
    /// (Pulsar's `tlsTrustCertsFilePath`); empty: clients present none. A client with a
    /// certificate they signed may authenticate with Pulsar's `tls` method (role = the
    /// certificate's common name).
    pub tls_trust_certs_file: String,
    /// Refuse TLS clients without a trusted certificate at the handshake (Pulsar's
    /// `tlsRequireTrustedClientCertOnConnect`).
    pub tls_require_trusted_client_cert: bool,
    /// Proxy connections to the other brokers of a tier over their `pulsar+ssl://` listeners
    /// (Pulsar's proxy setting `tlsEnabledWithBroker`) instead of their internal `pulsar://` one.
    pub proxy_tls_enabled: bool,
    /// PEM certificates of the authorities the other brokers' TLS certificates are verified
    /// against when proxying over TLS (Pulsar's `brokerClientTrustCertsFilePath`).
    pub proxy_tls_trust_certs_file: String,
}

impl Default for BinaryConfig {
    fn default() -> Self {
        BinaryConfig {
            enabled: true,
            addr: "127.0.0.1:6650".parse().expect("valid address"),
            advertised_url: String::new(),
            max_connections: 10_000,
            max_pending_sends: 1000,
            max_permits: 10_000,
            auth_refresh_secs: 60,
            tls_addr: None,
            tls_cert_file: String::new(),
            tls_key_file: String::new(),
            advertised_tls_url: String::new(),
            tls_trust_certs_file: String::new(),
            tls_require_trusted_client_cert: false,
            proxy_tls_enabled: false,
            proxy_tls_trust_certs_file: String::new(),
        }
    }
}

impl BinaryConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.max_connections == 0 || self.max_pending_sends == 0 || self.max_permits == 0 {
            return Err(
                "binary.max_connections, binary.max_pending_sends and binary.max_permits must be positive".into()
            );
        }
        if !self.advertised_url.is_empty() && !self.advertised_url.starts_with("pulsar://") {
            return Err(format!("binary.advertised_url `{}` must start with pulsar://", self.advertised_url));
        }
        if !self.advertised_tls_url.is_empty() && !self.advertised_tls_url.starts_with("pulsar+ssl://") {
            return Err(format!(
                "binary.advertised_tls_url `{}` must start with pulsar+ssl://",
                self.advertised_tls_url
            ));
        }
        if self.tls_addr.is_some() && (self.tls_cert_file.is_empty() || self.tls_key_file.is_empty()) {
            return Err("binary.tls_addr needs binary.tls_cert_file and binary.tls_key_file".into());
        }
        if self.tls_require_trusted_client_cert && self.tls_trust_certs_file.is_empty() {
            return Err("binary.tls_require_trusted_client_cert needs binary.tls_trust_certs_file".into());
        }
        if self.proxy_tls_enabled && self.proxy_tls_trust_certs_file.is_empty() {
            return Err("binary.proxy_tls_enabled needs binary.proxy_tls_trust_certs_file".into());
        }
        Ok(())
    }
}

/// What every connection shares.
pub(crate) struct Shared {
    pub broker: Arc<Broker>,
    pub auth: Arc<Auth>,
    pub config: BinaryConfig,
    /// This listener's URLs: lookups of what this broker owns answer `advertised`.
    pub urls: BinaryUrls,
    /// (topic, producer name) of the producers connected to this broker: a second producer with
    /// the same name on the same topic is refused (ProducerBusy), as Pulsar does.
    pub producer_names: Mutex<HashSet<(String, String)>>,
    pub shutdown: CancellationToken,
    pub connections: Arc<tokio::sync::Semaphore>,
    /// With `proxy_tls_enabled`: how proxied connections reach the owners' TLS listeners.
    pub proxy_tls: Option<tokio_rustls::TlsConnector>,
}

/// The bound `pulsar://` socket and the URLs it is reached at, and the `pulsar+ssl://` one when
/// TLS is configured.
pub struct BinaryListener {
    listener: TcpListener,
    urls: BinaryUrls,
    tls: Option<TlsListener>,
    proxy_tls: Option<tokio_rustls::TlsConnector>,
}

struct TlsListener {
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

/// The `pulsar+ssl://` listener's address, when TLS is configured.
fn tls_local_addr(tls: &Option<TlsListener>) -> Option<SocketAddr> {
    tls.as_ref().and_then(|t| t.listener.local_addr().ok())
}

impl BinaryListener {
    /// Binds `config.addr`. The advertised URL is `binary.advertised_url`, else derived from the
    /// bound address (with the host of `broker.advertised_address` when bound to all
    /// interfaces); the internal one, for the other brokers of a tier, is the bound address (the
    /// host of `broker.tier.internal_address`, else of the advertised address, when bound to all
    /// interfaces).
    pub async fn bind(config: &BinaryConfig, broker: &BrokerConfig) -> std::io::Result<BinaryListener> {
        let listener = TcpListener::bind(config.addr).await?;
        let addr = listener.local_addr()?;
        let tls = match config.tls_addr {
            Some(tls_addr) => {
                let acceptor =
                    tls::acceptor(config).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
                let listener = TcpListener::bind(tls_addr).await?;
                let port = listener.local_addr()?.port();
                Some((listener, acceptor, port))
            }
            None => None,
        };
        let host_of = |address: &str| address.rsplit_once(':').map_or("127.0.0.1", |(h, _)| h).to_string();
        let (advertised_host, internal_host) = if addr.ip().is_unspecified() {
            let internal = if broker.tier.internal_address.is_empty() {
                &broker.advertised_address
            } else {
                &broker.tier.internal_address
            };
            (host_of(&broker.advertised_address), host_of(internal))
        } else {
            let ip = match addr {
                SocketAddr::V4(a) => a.ip().to_string(),
                SocketAddr::V6(a) => format!("[{}]", a.ip()),
            };
            (ip.clone(), ip)
        };
        let advertised = if config.advertised_url.is_empty() {
            format!("pulsar://{advertised_host}:{}", addr.port())
        } else {
            config.advertised_url.trim_end_matches('/').to_string()
        };
        let advertised_tls = match &tls {
            None => String::new(),
            Some(_) if !config.advertised_tls_url.is_empty() => config.advertised_tls_url.trim_end_matches('/').into(),
            Some((_, _, port)) => format!("pulsar+ssl://{advertised_host}:{port}"),
        };
        let urls =
            BinaryUrls { internal: format!("pulsar://{internal_host}:{}", addr.port()), advertised, advertised_tls };
        let tls = tls.map(|(listener, acceptor, _)| TlsListener { listener, acceptor });
        let proxy_tls = config
            .proxy_tls_enabled
            .then(|| tls::connector(&config.proxy_tls_trust_certs_file))
            .transpose()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        Ok(BinaryListener { listener, urls, tls, proxy_tls })
    }

    pub fn urls(&self) -> &BinaryUrls {
        &self.urls
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The `pulsar+ssl://` listener's address, when TLS is configured.
    pub fn tls_local_addr(&self) -> Option<SocketAddr> {
        tls_local_addr(&self.tls)
    }
}

/// A listener ready to serve.
pub struct BinaryServer {
    listener: TcpListener,
    tls: Option<TlsListener>,
    shared: Arc<Shared>,
}

impl BinaryServer {
    /// Binds `config.addr` and serves it for `broker` once [`BinaryServer::run`] is called.
    pub async fn bind(
        config: BinaryConfig,
        broker: Arc<Broker>,
        auth: Arc<Auth>,
        shutdown: CancellationToken,
    ) -> std::io::Result<BinaryServer> {
        let listener = BinaryListener::bind(&config, broker.config()).await?;
        Ok(BinaryServer::new(listener, config, broker, auth, shutdown))
    }

    /// Serves a listener bound before the broker started (a broker of a tier registers its
    /// URLs with its membership).
    pub fn new(
        listener: BinaryListener,
        config: BinaryConfig,
        broker: Arc<Broker>,
        auth: Arc<Auth>,
        shutdown: CancellationToken,
    ) -> BinaryServer {
        let connections = Arc::new(tokio::sync::Semaphore::new(config.max_connections));
        let shared = Arc::new(Shared {
            broker,
            auth,
            config,
            urls: listener.urls,
            producer_names: Mutex::new(HashSet::new()),
            shutdown,
            connections,
            proxy_tls: listener.proxy_tls,
        });
        BinaryServer { listener: listener.listener, tls: listener.tls, shared }
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The `pulsar+ssl://` listener's address, when TLS is configured.
    pub fn tls_local_addr(&self) -> Option<SocketAddr> {
        tls_local_addr(&self.tls)
    }

    /// The `pulsar://` URL lookups of what this broker owns answer with.
    pub fn service_url(&self) -> &str {
        &self.shared.urls.advertised
    }

    /// Accepts connections until the shutdown token is cancelled, then waits for the open ones
    /// to end (each closes on the same token once what it accepted is answered).
    pub async fn run(self) {
        let tasks = tokio_util::task::TaskTracker::new();
        let mut next_id: u64 = 0;
        let tls_accept = || async {
            match &self.tls {
                Some(t) => t.listener.accept().await,
                None => std::future::pending().await,
            }
        };
        loop {
            let (accepted, tls) = tokio::select! {
                _ = self.shared.shutdown.cancelled() => break,
                a = self.listener.accept() => (a, false),
                a = tls_accept() => (a, true),
            };
            let (socket, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "pulsar:// accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(permit) = Arc::clone(&self.shared.connections).try_acquire_owned() else {
                self.shared.broker.connection_metrics().refused();
                tracing::warn!(%peer, max = self.shared.config.max_connections, "pulsar:// connection refused: too many connections");
                drop(socket);
                continue;
            };
            if let Err(e) = socket.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
            next_id += 1;
            let shared = Arc::clone(&self.shared);
            let id = next_id;
            let acceptor = self.tls.as_ref().filter(|_| tls).map(|t| t.acceptor.clone());
            tasks.spawn(async move {
                let metrics = shared.broker.connection_metrics().opened();
                match acceptor {
                    None => connection::run(shared, socket, peer, id, Transport::default()).await,
                    Some(acceptor) => match tokio::time::timeout(tls::HANDSHAKE_TIMEOUT, acceptor.accept(socket)).await
                    {
                        Ok(Ok(stream)) => {
                            shared.broker.count_tls_connection();
                            let cert_role = tls::client_role(stream.get_ref().1.peer_certificates());
                            connection::run(shared, stream, peer, id, Transport { tls: true, cert_role }).await
                        }
                        Ok(Err(e)) => tracing::info!(%peer, error = %e, "pulsar+ssl:// handshake failed"),
                        Err(_) => tracing::info!(%peer, "pulsar+ssl:// handshake not done within 10 s"),
                    },
                }
                drop(metrics);
                drop(permit);
            });
        }
        tasks.close();
        tasks.wait().await;
    }
}
