//! Pulsar's binary protocol served by the broker: the `pulsar://` listener, its connections and
//! what each command does, on top of the broker's publish path and subscription engine (the same
//! ones REST, HTTP pull and WebSocket use) and the same authentication and authorization. The
//! wire format itself (frames, protobuf messages, batches, compression) is `magnetar-protocol`'s.
//!
//! - [`BinaryConfig`]: the `[binary]` configuration section.
//! - [`BinaryServer`]: binds, accepts a bounded number of connections, stops on a token and
//!   waits for its connections to drain.
//! - `connection`: one task per connection; CONNECT, keep-alive, lookups and the dispatch of
//!   every other command. `producer` and `consumer` run the per-producer and per-consumer tasks;
//!   `convert` maps stored records to Pulsar messages and back; `error` maps broker and auth
//!   errors to Pulsar's `ServerError` codes, in one place.

mod connection;
mod consumer;
mod convert;
mod error;
mod lookup;
mod producer;
mod refresh;

pub use error::BinaryError;

use magnetar_auth::Auth;
use magnetar_broker::Broker;
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
        Ok(())
    }
}

/// What every connection shares.
pub(crate) struct Shared {
    pub broker: Arc<Broker>,
    pub auth: Arc<Auth>,
    pub config: BinaryConfig,
    /// The URL lookups answer with.
    pub service_url: String,
    /// (topic, producer name) of the producers connected to this broker: a second producer with
    /// the same name on the same topic is refused (ProducerBusy), as Pulsar does.
    pub producer_names: Mutex<HashSet<(String, String)>>,
    pub shutdown: CancellationToken,
    pub connections: Arc<tokio::sync::Semaphore>,
}

/// A bound listener.
pub struct BinaryServer {
    listener: TcpListener,
    shared: Arc<Shared>,
}

impl BinaryServer {
    /// Binds `config.addr`; the listener serves once [`BinaryServer::run`] is called.
    pub async fn bind(
        config: BinaryConfig,
        broker: Arc<Broker>,
        auth: Arc<Auth>,
        shutdown: CancellationToken,
    ) -> std::io::Result<BinaryServer> {
        let listener = TcpListener::bind(config.addr).await?;
        let addr = listener.local_addr()?;
        let service_url = if !config.advertised_url.is_empty() {
            config.advertised_url.clone()
        } else if addr.ip().is_unspecified() {
            let host = broker.config().advertised_address.rsplit_once(':').map_or("127.0.0.1", |(h, _)| h).to_string();
            format!("pulsar://{host}:{}", addr.port())
        } else {
            format!("pulsar://{addr}")
        };
        let connections = Arc::new(tokio::sync::Semaphore::new(config.max_connections));
        let shared = Arc::new(Shared {
            broker,
            auth,
            config,
            service_url,
            producer_names: Mutex::new(HashSet::new()),
            shutdown,
            connections,
        });
        Ok(BinaryServer { listener, shared })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The `pulsar://` URL lookups answer with.
    pub fn service_url(&self) -> &str {
        &self.shared.service_url
    }

    /// Accepts connections until the shutdown token is cancelled, then waits for the open ones
    /// to end (each closes on the same token once what it accepted is answered).
    pub async fn run(self) {
        let tasks = tokio_util::task::TaskTracker::new();
        let mut next_id: u64 = 0;
        loop {
            let accepted = tokio::select! {
                _ = self.shared.shutdown.cancelled() => break,
                a = self.listener.accept() => a,
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
            tasks.spawn(async move {
                let metrics = shared.broker.connection_metrics().opened();
                connection::run(shared, socket, peer, id).await;
                drop(metrics);
                drop(permit);
            });
        }
        tasks.close();
        tasks.wait().await;
    }
}
