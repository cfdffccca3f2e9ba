//! One `pulsar://` connection: the CONNECT handshake (token authentication), keep-alive, the
//! connection's producers and consumers, and the dispatch of every command. Frames go out
//! through one writer task fed by a bounded queue, so a client that stops reading slows its own
//! connection down and nothing else. A frame that cannot be decoded (bad size, invalid protobuf,
//! a required field missing) or a command this broker does not know closes the connection with
//! the reason logged; a checksum mismatch on a SEND is answered with ChecksumError and the
//! connection goes on, as Pulsar does.

use crate::Shared;
use crate::consumer::ConsumerHandle;
use crate::error::BinaryError;
use crate::lookup::{self};
use crate::producer::ProducerHandle;
use crate::refresh::{Check, Credential};
use futures::{SinkExt, StreamExt};
use magnetar_auth::Principal;
use magnetar_broker::{Caller, StartPosition};
use magnetar_protocol::proto::*;
use magnetar_protocol::{Frame, PulsarCodec};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_util::codec::Framed;

mod consume;
mod produce;
mod schemas;

/// Frames queued for the writer before the connection itself waits.
const OUTBOX: usize = 1024;
/// Pulsar's keep-alive interval; a connection silent for two of them is closed.
const PING_EVERY: Duration = Duration::from_secs(30);
/// How long a new connection may take to send CONNECT.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Room for the command and headers around the largest message (Pulsar's frame padding).
const FRAME_PADDING: usize = 10 * 1024;
/// The newest protocol version this broker speaks.
const PROTOCOL_VERSION: i32 = ProtocolVersion::V21 as i32;

/// A connection's byte stream: a TCP socket, or TLS over one.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

type Stream<S> = futures::stream::SplitStream<Framed<S, PulsarCodec>>;

/// What the transport tells about a connection.
#[derive(Debug, Clone, Default)]
pub(crate) struct Transport {
    /// It came in on the `pulsar+ssl://` listener (lookups then answer with TLS URLs).
    pub tls: bool,
    /// The role of the client certificate the TLS handshake verified (see `tls::client_role`).
    pub cert_role: Option<String>,
}

/// Serves one connection.
pub async fn run<S: Io>(shared: Arc<Shared>, socket: S, peer: SocketAddr, id: u64, transport: Transport) {
    let max_frame = shared.broker.config().max_message_bytes + FRAME_PADDING;
    let mut framed = Framed::new(socket, PulsarCodec::with_max_frame_size(max_frame));
    let Some(connect) = first_connect(&shared, &mut framed, peer).await else { return };
    if let Some(target) = crate::proxy::target(&shared, &connect) {
        crate::proxy::run(&shared, framed, connect, &transport, target, peer).await;
        return;
    }
    // A CONNECT naming this broker came through another broker's proxy.
    let direct = connect.proxy_to_broker_url.as_deref().is_none_or(str::is_empty);
    let (sink, mut stream) = framed.split();
    let (out, writer) = spawn_writer(sink);
    let client_version = connect.client_version.clone();
    if let Some((principal, refreshable, version)) = handshake(&shared, connect, &transport, &out, peer).await {
        let mut conn = Connection {
            client_version,
            shared: Arc::clone(&shared),
            caller: Caller::new(Arc::clone(&principal)),
            credential: Credential::new(principal, refreshable, shared.config.auth_refresh_secs),
            version,
            out: out.clone(),
            producers: HashMap::new(),
            consumers: HashMap::new(),
            peer,
            id,
            named: 0,
            reader_seeks: HashMap::new(),
            tls: transport.tls,
            direct,
        };
        conn.serve(&mut stream).await;
        conn.close_all().await;
    }
    drop(out);
    let _ = writer.await;
}

/// Owns the sending half: writes queued frames, flushing once per burst.
fn spawn_writer<S: Io>(
    mut sink: futures::stream::SplitSink<Framed<S, PulsarCodec>, Frame>,
) -> (mpsc::Sender<Frame>, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<Frame>(OUTBOX);
    let task = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if let Err(e) = sink.feed(frame).await {
                tracing::debug!(error = %e, "pulsar:// write failed");
                return;
            }
            while let Ok(frame) = rx.try_recv() {
                if sink.feed(frame).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    });
    (tx, task)
}

/// Waits for CONNECT. `None`: the connection ends (the reason is logged).
async fn first_connect<S: Io>(
    shared: &Shared,
    framed: &mut Framed<S, PulsarCodec>,
    peer: SocketAddr,
) -> Option<CommandConnect> {
    let first = tokio::select! {
        _ = shared.shutdown.cancelled() => return None,
        f = tokio::time::timeout(CONNECT_TIMEOUT, framed.next()) => f,
    };
    let frame = match first {
        Ok(Some(Ok(Ok(frame)))) => frame,
        Ok(Some(Ok(Err(mismatch)))) => {
            tracing::info!(%peer, reason = %mismatch, "closing pulsar:// connection before CONNECT");
            return None;
        }
        Ok(Some(Err(e))) => {
            tracing::info!(%peer, reason = %e, "closing pulsar:// connection: malformed frame before CONNECT");
            return None;
        }
        Ok(None) => return None,
        Err(_) => {
            tracing::info!(%peer, "closing pulsar:// connection: no CONNECT within 30 s");
            return None;
        }
    };
    let is_connect = frame.command.command_type() == Ok(CommandType::Connect);
    let connect = frame.command.connect.filter(|_| is_connect);
    if connect.is_none() {
        tracing::info!(%peer, command = frame.command.r#type, "closing pulsar:// connection: a command before CONNECT");
    }
    connect
}

/// The auth method of a client that authenticates with its TLS certificate.
pub(crate) const TLS_METHOD: &str = "tls";
/// The auth method of a client that authenticates with a token.
pub(crate) const TOKEN_METHOD: &str = "token";

/// The principal of a CONNECT's credential: a token (`token`), or the client certificate the
/// TLS handshake verified (`tls`).
pub(crate) async fn authenticate(
    shared: &Shared,
    connect: &CommandConnect,
    transport: &Transport,
) -> Result<Arc<Principal>, BinaryError> {
    let token = match connect.auth_method_name.as_deref() {
        Some(TLS_METHOD) => return Ok(shared.auth.authenticate_certificate(transport.cert_role.as_deref())?),
        Some(TOKEN_METHOD) => connect.auth_data.as_deref().and_then(|d| std::str::from_utf8(d).ok()).map(str::trim),
        _ => None,
    };
    Ok(shared.auth.authenticate(token).await?)
}

/// The answer to a CONNECT that is refused: ERROR with request id -1, as Pulsar answers a failed
/// CONNECT; the connection closes after it.
pub(crate) fn refusal(e: &BinaryError) -> Frame {
    Frame::new(CommandError { request_id: u64::MAX, error: e.code() as i32, message: e.message() })
}

/// Authenticates the CONNECT and answers CONNECTED. Returns the principal, whether the client
/// supports auth refresh, and the protocol version agreed. `None`: the connection ends (the
/// reason is logged and, for a bad credential, sent as ERROR).
async fn handshake(
    shared: &Shared,
    connect: CommandConnect,
    transport: &Transport,
    out: &mpsc::Sender<Frame>,
    peer: SocketAddr,
) -> Option<(Arc<Principal>, bool, i32)> {
    let principal = match authenticate(shared, &connect, transport).await {
        Ok(p) => p,
        Err(e) => {
            tracing::info!(%peer, reason = %e, "pulsar:// authentication failed");
            let _ = out.send(refusal(&e)).await;
            return None;
        }
    };
    let version = connect.protocol_version.unwrap_or(0).clamp(0, PROTOCOL_VERSION);
    let max_message = i32::try_from(shared.broker.config().max_message_bytes).unwrap_or(i32::MAX);
    let connected = CommandConnected {
        server_version: format!("Magnetar {}", env!("CARGO_PKG_VERSION")),
        protocol_version: Some(version),
        max_message_size: Some(max_message),
        feature_flags: None,
    };
    out.send(Frame::new(connected)).await.ok()?;
    tracing::debug!(%peer, client = %connect.client_version, version, "pulsar:// connection established");
    let refreshable = connect.feature_flags.as_ref().and_then(|f| f.supports_auth_refresh).unwrap_or(false);
    Some((principal, refreshable, version))
}

struct Connection {
    shared: Arc<Shared>,
    credential: Credential,
    /// The protocol version agreed in CONNECTED.
    version: i32,
    /// The client library and version CONNECT announced (shown in its consumers' stats).
    client_version: String,
    caller: Caller,
    out: mpsc::Sender<Frame>,
    producers: HashMap<u64, ProducerHandle>,
    consumers: HashMap<u64, ConsumerHandle>,
    peer: SocketAddr,
    id: u64,
    /// Producers named by this broker so far on this connection.
    named: u64,
    /// Where a reader that seeked resumes, by (topic, subscription) as it subscribes again.
    /// Pulsar keeps a non-durable cursor across the reset; the client's resubscription names
    /// the position before the seek (or earliest), so this broker's answer must win. Clients
    /// resubscribe on the same pooled connection.
    reader_seeks: HashMap<(String, String), StartPosition>,
    /// Came in on the `pulsar+ssl://` listener.
    tls: bool,
    /// The client connected here itself, not through another broker's proxy (see
    /// `producer::Route::direct`).
    direct: bool,
}

/// Whether the connection goes on after a command.
enum Next {
    Continue,
    Close(String),
}

impl Connection {
    async fn serve<S: Io>(&mut self, stream: &mut Stream<S>) {
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        let mut check = tokio::time::interval(Duration::from_secs(1));
        let mut last_seen = tokio::time::Instant::now();
        let shutdown = self.shared.shutdown.clone();
        let reason = loop {
            tokio::select! {
                _ = shutdown.cancelled() => break "the broker is shutting down".to_string(),
                f = stream.next() => match f {
                    None => return,
                    Some(Err(e)) => break format!("malformed frame: {e}"),
                    Some(Ok(Err(mismatch))) => {
                        last_seen = tokio::time::Instant::now();
                        match mismatch.command.send.as_ref() {
                            Some(send) => {
                                let error = CommandSendError {
                                    producer_id: send.producer_id,
                                    sequence_id: send.sequence_id,
                                    error: ServerError::ChecksumError as i32,
                                    message: mismatch.to_string(),
                                };
                                if self.out.send(Frame::new(error)).await.is_err() {
                                    return;
                                }
                            }
                            None => break mismatch.to_string(),
                        }
                    }
                    Some(Ok(Ok(frame))) => {
                        last_seen = tokio::time::Instant::now();
                        if let Next::Close(reason) = self.handle(frame).await {
                            break reason;
                        }
                    }
                },
                _ = ping.tick() => {
                    if last_seen.elapsed() > 2 * PING_EVERY {
                        break "no frame from the client for two keep-alive intervals".to_string();
                    }
                    if self.out.send(Frame::new(CommandPing {})).await.is_err() {
                        return;
                    }
                }
                _ = check.tick() => match self.credential.check(&self.shared.auth, self.version) {
                    Check::Valid => {}
                    Check::Challenge(challenge) => {
                        if self.out.send(Frame::new(challenge)).await.is_err() {
                            return;
                        }
                    }
                    Check::Close(reason) => break reason.to_string(),
                }
            }
        };
        tracing::info!(peer = %self.peer, connection = self.id, %reason, "closing pulsar:// connection");
    }

    async fn send(&self, frame: Frame) -> Next {
        match self.out.send(frame).await {
            Ok(()) => Next::Continue,
            Err(_) => Next::Close("writer gone".into()),
        }
    }

    async fn error(&self, request_id: u64, e: BinaryError) -> Next {
        self.send(Frame::new(CommandError { request_id, error: e.code() as i32, message: e.message() })).await
    }

    async fn handle(&mut self, frame: Frame) -> Next {
        let Frame { command, payload } = frame;
        if let Some(txn) = command.txn_request() {
            return self.refuse_txn(txn).await;
        }
        let kind = match command.command_type() {
            Ok(k) => k,
            Err(raw) => return Next::Close(format!("unknown command type {raw}")),
        };
        let shared = Arc::clone(&self.shared);
        match (kind, *command) {
            (CommandType::Ping, _) => self.send(Frame::new(CommandPong {})).await,
            (CommandType::Pong, _) => Next::Continue,
            (CommandType::Connect, _) => Next::Close("a second CONNECT".into()),
            (CommandType::PartitionedMetadata, BaseCommand { partition_metadata: Some(c), .. }) => {
                self.send(lookup::partitioned_metadata(&shared, &self.credential.principal, c).await).await
            }
            (CommandType::Lookup, BaseCommand { lookup_topic: Some(c), .. }) => {
                self.send(lookup::lookup(&shared, &self.credential.principal, c, self.tls).await).await
            }
            (CommandType::GetTopicsOfNamespace, BaseCommand { get_topics_of_namespace: Some(c), .. }) => {
                self.send(lookup::topics_of_namespace(&shared, &self.credential.principal, c).await).await
            }
            (CommandType::Producer, BaseCommand { producer: Some(c), .. }) => self.create_producer(c).await,
            (CommandType::Send, BaseCommand { send: Some(c), .. }) => self.on_send(c, payload).await,
            (CommandType::CloseProducer, BaseCommand { close_producer: Some(c), .. }) => {
                self.close_producer(c.producer_id).await;
                self.send(Frame::new(CommandSuccess { request_id: c.request_id, schema: None })).await
            }
            (CommandType::Subscribe, BaseCommand { subscribe: Some(c), .. }) => self.subscribe(c).await,
            (CommandType::Flow, BaseCommand { flow: Some(c), .. }) => {
                if let Some(h) = self.consumers.get(&c.consumer_id) {
                    h.grant(c.message_permits, u64::from(self.shared.config.max_permits));
                }
                Next::Continue
            }
            (CommandType::Ack, BaseCommand { ack: Some(c), .. }) => self.ack(c).await,
            (
                CommandType::RedeliverUnacknowledgedMessages,
                BaseCommand { redeliver_unacknowledged_messages: Some(c), .. },
            ) => {
                if let Some(h) = self.consumers.get(&c.consumer_id) {
                    if c.message_ids.is_empty() {
                        h.session.redeliver_unacked();
                    } else {
                        for id in &c.message_ids {
                            let named = h.batches.named(id, false);
                            let _ = h.session.nack_offsets(&named.id, &named.offsets, Duration::ZERO);
                        }
                    }
                    h.wake.notify_one();
                }
                Next::Continue
            }
            (CommandType::CloseConsumer, BaseCommand { close_consumer: Some(c), .. }) => {
                if let Some(h) = self.consumers.remove(&c.consumer_id) {
                    h.close().await;
                }
                self.send(Frame::new(CommandSuccess { request_id: c.request_id, schema: None })).await
            }
            (CommandType::Unsubscribe, BaseCommand { unsubscribe: Some(c), .. }) => self.unsubscribe(c).await,
            (CommandType::GetLastMessageId, BaseCommand { get_last_message_id: Some(c), .. }) => {
                self.last_message_id(c).await
            }
            (CommandType::Seek, BaseCommand { seek: Some(c), .. }) => self.seek(c).await,
            (CommandType::GetSchema, BaseCommand { get_schema: Some(c), .. }) => self.get_schema(c).await,
            (CommandType::GetOrCreateSchema, BaseCommand { get_or_create_schema: Some(c), .. }) => {
                self.get_or_create_schema(c).await
            }
            (CommandType::ConsumerStats, BaseCommand { consumer_stats: Some(c), .. }) => {
                let unacked = self.consumers.get(&c.consumer_id).map(|h| h.session.unacked());
                self.send(Frame::new(CommandConsumerStatsResponse {
                    request_id: c.request_id,
                    error_code: unacked.is_none().then_some(ServerError::ConsumerNotFound as i32),
                    unacked_messages: unacked,
                    ..Default::default()
                }))
                .await
            }
            (CommandType::AuthResponse, BaseCommand { auth_response: Some(r), .. }) => {
                match self.credential.respond(&self.shared.auth, &r).await {
                    Ok(()) => {
                        // Commands from now on act with the fresh token (same roles).
                        self.caller = Caller::new(Arc::clone(&self.credential.principal));
                        tracing::debug!(peer = %self.peer, connection = self.id, "pulsar:// credential refreshed");
                        Next::Continue
                    }
                    Err(reason) => Next::Close(reason),
                }
            }
            (other, _) => Next::Close(format!("unexpected command {other:?} from a client")),
        }
    }

    async fn refuse_txn(&self, txn: TxnRequest) -> Next {
        let (request_id, error, message) = (
            txn.request_id,
            Some(ServerError::NotAllowedError as i32),
            Some("transactions are not supported".to_string()),
        );
        let frame = match txn.command_type {
            CommandType::NewTxn => {
                Frame::new(CommandNewTxnResponse { request_id, error, message, ..Default::default() })
            }
            CommandType::AddPartitionToTxn => {
                Frame::new(CommandAddPartitionToTxnResponse { request_id, error, message, ..Default::default() })
            }
            CommandType::AddSubscriptionToTxn => {
                Frame::new(CommandAddSubscriptionToTxnResponse { request_id, error, message, ..Default::default() })
            }
            CommandType::EndTxn => {
                Frame::new(CommandEndTxnResponse { request_id, error, message, ..Default::default() })
            }
            CommandType::EndTxnOnPartition => {
                Frame::new(CommandEndTxnOnPartitionResponse { request_id, error, message, ..Default::default() })
            }
            CommandType::EndTxnOnSubscription => {
                Frame::new(CommandEndTxnOnSubscriptionResponse { request_id, error, message, ..Default::default() })
            }
            _ => Frame::new(CommandTcClientConnectResponse { request_id, error, message }),
        };
        self.send(frame).await
    }

    /// In a tier, producers and consumers are served only by the owner of their partition's
    /// bundle (lookups send clients there, directly or through a proxying broker, and so does a
    /// handover's CLOSE_PRODUCER / CLOSE_CONSUMER). A bundle assigned to this broker is taken
    /// here; one moving is waited for; one owned elsewhere is refused as retriable
    /// (ServiceNotReady): the client looks the topic up again.
    async fn owned_here(&self, topic: &magnetar_core::TopicName) -> Result<(), BinaryError> {
        match self.shared.broker.tier().session_owner(topic).await {
            Ok(None) | Err(magnetar_broker::BrokerError::NotFound(_)) => Ok(()),
            Ok(Some(owner)) => Err(BinaryError::Broker(magnetar_broker::BrokerError::NotOwner(format!(
                "{topic} is served by broker {}; look it up again",
                owner.registration.broker_id
            )))),
            Err(e) => Err(e.into()),
        }
    }

    /// The connection ends: producers answer what they accepted, consumers make their acks
    /// durable and detach.
    async fn close_all(&mut self) {
        let ids: Vec<u64> = self.producers.keys().copied().collect();
        for id in ids {
            self.close_producer(id).await;
        }
        for (_, h) in self.consumers.drain() {
            h.close().await;
        }
    }
}
