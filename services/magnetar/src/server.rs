//! Wiring: metadata store, storage, broker and HTTP server, started in that order and stopped
//! in reverse on SIGTERM / Ctrl-C.

use crate::config::Config;
use anyhow::Context;
use axum::serve::ListenerExt;
use magnetar_broker::Broker;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A running broker: its address and a handle to stop it.
pub struct Running {
    pub addr: std::net::SocketAddr,
    /// Where `pulsar://` is served (`None` with `binary.enabled = false`).
    pub binary_addr: Option<std::net::SocketAddr>,
    /// Where `pulsar+ssl://` is served (`None` without `binary.tls_addr`).
    pub binary_tls_addr: Option<std::net::SocketAddr>,
    pub broker: Arc<Broker>,
    pub shutdown: CancellationToken,
    pub done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Starts everything and returns once the HTTP server accepts connections.
pub async fn start(config: Config, standalone: bool) -> anyhow::Result<Running> {
    start_with_clock(config, standalone, magnetar_core::SystemClock::shared()).await
}

/// `start` with the broker's wall clock given (tests move time instead of waiting).
pub async fn start_with_clock(
    config: Config,
    standalone: bool,
    clock: magnetar_core::SharedClock,
) -> anyhow::Result<Running> {
    let started = Instant::now();
    let metadata =
        magnetar_metadata::connect(config.metadata.url.expose()).await.context("cannot open the metadata store")?;
    // One cache of tenants and policies for authorization and the broker's policy enforcement;
    // every change made through this broker invalidates it after it commits.
    let policies = magnetar_metadata::PolicyCache::new(
        Arc::clone(&metadata),
        std::time::Duration::from_millis(config.auth.policy_cache_ms),
    );
    let authorizer = magnetar_auth::Auth::authorizer(Arc::clone(&metadata), Arc::clone(&policies));
    // Keys are read and checked before any socket opens.
    let auth = Arc::new(
        magnetar_auth::Auth::new(config.auth.clone(), Arc::clone(&authorizer)).map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    // Fail fast on an unusable object store configuration; it holds offloaded segments.
    let objects = magnetar_storage::object::build_object_store_paced(&config.object_store)
        .context("invalid object_store configuration")?;

    let registry = prometheus::Registry::new();
    let storage_metrics = magnetar_storage::StorageMetrics::new();
    storage_metrics.register(&registry).context("cannot register storage metrics")?;
    let storage_cfg = config.storage_config();
    tracing::info!(
        setting = ?config.storage.page_cache_window,
        bytes = storage_cfg.page_cache_window_bytes,
        "page cache window of segments being written (0: left to the kernel)"
    );
    tracing::info!(
        setting = ?config.storage.segment_writes,
        direct = storage_cfg.direct_segment_writes,
        "how segments being written take their records (direct: with direct I/O, not through the page cache)"
    );
    let upload_pace = objects.pace;
    let tier = magnetar_storage::ObjectTier::with_unpaced(
        objects.store,
        objects.unpaced,
        config.tier_config(),
        storage_metrics.clone(),
    )
    .context("cannot start the object tier")?;
    let (storage, aux) =
        tokio::task::spawn_blocking(move || magnetar_storage::Storage::open_with_metrics(storage_cfg, storage_metrics))
            .await?
            .context("cannot open the durable log")?;
    storage.attach_tier(tier);
    storage.attach_upload_pace(upload_pace);
    let aux: Vec<(u64, bytes::Bytes)> = aux.into_iter().map(|a| (a.log_id, a.data)).collect();

    let listener = TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("cannot bind http_addr {}", config.http_addr))?;
    let addr = listener.local_addr()?;
    let mut broker_cfg = config.broker.clone();
    if config.http_addr.port() == 0 || broker_cfg.advertised_address == "127.0.0.1:8080" {
        broker_cfg.advertised_address = addr.to_string();
    }
    // Pulsar's binary protocol: bound before the broker starts (a bad address fails the start),
    // so that a broker of a tier registers its URLs with its membership.
    let binary_listener = if config.binary.enabled {
        let listener = magnetar_binary::BinaryListener::bind(&config.binary, &broker_cfg).await.with_context(|| {
            match config.binary.tls_addr {
                Some(tls) => format!("cannot start the binary listeners on {} and {tls}", config.binary.addr),
                None => format!("cannot bind binary.addr {}", config.binary.addr),
            }
        })?;
        Some(listener)
    } else {
        None
    };
    let binary_urls = binary_listener.as_ref().map(|l| l.urls().clone()).unwrap_or_default();
    let deps = magnetar_broker::BrokerDeps {
        metadata,
        policies,
        authorizer,
        storage,
        recovered_ops: aux,
        registry,
        clock,
        binary_urls,
    };
    let broker = Broker::start(broker_cfg, deps).await?;
    if standalone {
        broker.admin().ensure_defaults().await?;
    }

    // Revocations made before this start are refused from the first request on.
    auth.poll_revocations().await.map_err(|e| anyhow::anyhow!("cannot read token revocations: {e}"))?;
    let app = magnetar_api::app_with_auth(Arc::clone(&broker), config.http.clone(), Arc::clone(&auth));
    let shutdown = CancellationToken::new();
    // Served until the same shutdown as HTTP; the broker's shutdown waits for its connections'
    // tasks.
    let binary = match binary_listener {
        Some(listener) => {
            let server = magnetar_binary::BinaryServer::new(
                listener,
                config.binary.clone(),
                Arc::clone(&broker),
                Arc::clone(&auth),
                shutdown.clone(),
            );
            tracing::info!(addr = %server.local_addr()?, url = server.service_url(), "pulsar:// listener ready");
            if let Some(tls) = server.tls_local_addr() {
                tracing::info!(addr = %tls, "pulsar+ssl:// listener ready");
            }
            Some(server)
        }
        None => None,
    };
    let binary_addr = binary.as_ref().map(|s| s.local_addr()).transpose()?;
    let binary_tls_addr = binary.as_ref().and_then(|s| s.tls_local_addr());
    let binary_task = binary.map(|s| tokio::spawn(s.run()));
    tokio::spawn(Arc::clone(&auth).run_revocation_poller(shutdown.clone()));
    let token = shutdown.clone();
    // A shutdown requested through the admin API stops the server as a signal does.
    let (b, requested) = (Arc::clone(&broker), shutdown.clone());
    tokio::spawn(async move {
        tokio::select! {
            _ = b.stop_requested() => {
                b.mark_unready();
                b.drain().await;
                requested.cancel();
            }
            _ = requested.cancelled() => {}
        }
    });
    let b = Arc::clone(&broker);
    let done = tokio::spawn(async move {
        // Without TCP_NODELAY a small frame (a WebSocket ack) written behind another one waits for
        // the peer's delayed ACK, up to 40 ms.
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
        });
        axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
            .with_graceful_shutdown(async move {
                token.cancelled().await;
            })
            .await
            .context("http server failed")?;
        if let Some(t) = binary_task {
            let _ = t.await;
        }
        b.shutdown().await;
        Ok(())
    });
    tracing::info!(%addr, authentication = auth.enabled(), elapsed_ms = started.elapsed().as_millis() as u64, "magnetar ready");
    Ok(Running { addr, binary_addr, binary_tls_addr, broker, shutdown, done })
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// Applies `transparent_huge_pages` to this process (not in [`start`]: a test process that
/// starts brokers in-process keeps its own setting). Memory already backed by huge pages keeps
/// them; everything faulted in from here on is not, but the buffers of direct writes where the
/// kernel allows that exception.
fn set_transparent_huge_pages(setting: crate::config::TransparentHugePages) {
    if setting == crate::config::TransparentHugePages::System {
        tracing::info!("transparent huge pages as the kernel sets them (transparent_huge_pages = \"system\")");
        return;
    }
    match magnetar_storage::pagecache::disable_transparent_huge_pages() {
        Ok(true) => tracing::info!(
            "transparent huge pages off for this process but its direct-write buffers (transparent_huge_pages = \"off\")"
        ),
        Ok(false) => tracing::info!("transparent huge pages off for this process (transparent_huge_pages = \"off\")"),
        Err(e) => tracing::warn!(
            error = %e,
            "cannot turn transparent huge pages off for this process; the kernel's setting applies"
        ),
    }
}

/// Runs until a signal, then stops gracefully: readiness off, stop accepting, drain, flush.
pub async fn run(config: Config, standalone: bool) -> anyhow::Result<()> {
    set_transparent_huge_pages(config.transparent_huge_pages);
    let running = start(config, standalone).await?;
    tokio::select! {
        _ = shutdown_signal() => {}
        _ = running.shutdown.cancelled() => {}
    }
    tracing::info!("shutting down");
    // Readiness goes 503 at once so load balancers stop sending; in a tier the bundles are
    // handed to the other brokers while this one still forwards what reaches it; then
    // connections drain.
    running.broker.mark_unready();
    if !running.shutdown.is_cancelled() {
        running.broker.drain().await;
    }
    running.shutdown.cancel();
    running.done.await??;
    tracing::info!("stopped");
    Ok(())
}
