//! Command line of the `magnetar` binary: `standalone` and `broker` run the server; `perf`
//! measures it; `openapi` prints the HTTP API's description.

use crate::config::{Config, LogFormat};
use crate::{perf, server};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "magnetar", version, about = "Multi-tenant, Pulsar-compatible messaging in one binary")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Zero-setup single node: SQLite metadata and local object store under --data-dir.
    Standalone {
        #[arg(long, default_value = "data")]
        data_dir: PathBuf,
        /// HTTP address (default 127.0.0.1:8080).
        #[arg(long)]
        http_addr: Option<std::net::SocketAddr>,
        /// Optional TOML file with overrides.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Log as JSON lines instead of text.
        #[arg(long)]
        log_json: bool,
        /// Turn authentication on with a secret key kept under --data-dir and print a superuser
        /// token (role `admin`).
        #[arg(long)]
        auth: bool,
    },
    /// Cluster broker: PostgreSQL metadata and S3-compatible object store from --config.
    Broker {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        log_json: bool,
        /// Run without authentication (same as `auth.allow_insecure = true`).
        #[arg(long)]
        insecure: bool,
    },
    /// Keys and tokens, in the spirit of `pulsar tokens`.
    #[command(subcommand)]
    Tokens(crate::tokens::TokensCommand),
    /// Load generators in the spirit of pulsar-perf.
    #[command(subcommand)]
    Perf(perf::PerfCommand),
    /// Print the OpenAPI 3.1 description of the HTTP API (what a broker serves at
    /// /openapi.json), to generate clients from.
    Openapi,
}

fn init_logging(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MAGNETAR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// Entry point of the binary (also used by the test harness's broker binary).
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Standalone { data_dir, http_addr, config, log_json, auth } => {
            let mut cfg = Config::load(Config::standalone(&data_dir), config.as_deref())?;
            if let Some(addr) = http_addr {
                cfg.http_addr = addr;
            }
            if log_json {
                cfg.log.format = LogFormat::Json;
            }
            if auth {
                let token = crate::tokens::enable_standalone_auth(&mut cfg)?;
                println!("Authentication is on. Superuser token (role `admin`), valid 30 days:\n{token}");
            }
            init_logging(cfg.log.format, &cfg.log.level);
            let authentication = if cfg.auth.enabled { "on" } else { "off" };
            tracing::info!(data_dir = %cfg.data_dir.display(), authentication, "starting magnetar standalone");
            if !cfg.auth.enabled {
                tracing::warn!("authentication is off: every caller is a superuser (start with --auth to turn it on)");
            }
            server::run(cfg, true).await
        }
        Command::Broker { config, log_json, insecure } => {
            let base = Config::cluster(std::path::Path::new("data"));
            let mut cfg = Config::load(base, Some(&config))?;
            if !cfg.metadata.url.expose().starts_with("postgres") {
                anyhow::bail!(
                    "magnetar broker needs PostgreSQL metadata: set metadata.url = \"postgres://...\" in {} (use `magnetar standalone` for SQLite)",
                    config.display()
                );
            }
            if !(cfg.auth.enabled || insecure || cfg.auth.allow_insecure) {
                anyhow::bail!(
                    "magnetar broker refuses to run without authentication: configure [auth] in {} \
                     (see docs/security.md), or pass --insecure / set auth.allow_insecure = true",
                    config.display()
                );
            }
            if log_json {
                cfg.log.format = LogFormat::Json;
            }
            init_logging(cfg.log.format, &cfg.log.level);
            let authentication = if cfg.auth.enabled { "on" } else { "off" };
            tracing::info!(authentication, "starting magnetar broker");
            server::run(cfg, false).await
        }
        Command::Perf(cmd) => perf::run(cmd).await,
        Command::Tokens(cmd) => crate::tokens::run(cmd),
        Command::Openapi => {
            println!("{}", magnetar_api::openapi_json());
            Ok(())
        }
    }
}
