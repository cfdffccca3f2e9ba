//! `magnetar tokens ...` (flags and printing; the logic is in `magnetar_auth::tokens_cli`) and
//! the `standalone --auth` set-up.

use crate::config::Config;
use anyhow::{Context, bail};
use base64::Engine;
use clap::{Args, Subcommand};
use magnetar_auth::tokens_cli::{self, SigningKey};
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum TokensCommand {
    /// A random HS256 secret key: printed as base64, or written raw to --output.
    CreateSecretKey {
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// A key pair (PEM): the public key for `auth.token_public_key`, the private one to sign.
    CreateKeyPair {
        #[arg(long, default_value = "RS256")]
        algorithm: String,
        #[arg(long)]
        output_private_key: PathBuf,
        #[arg(long)]
        output_public_key: PathBuf,
    },
    /// Mints a token for --subject, signed with --secret-key or --private-key.
    Create {
        #[command(flatten)]
        key: KeyArgs,
        /// The role.
        #[arg(long)]
        subject: String,
        /// Claim that holds the role.
        #[arg(long, default_value = "sub")]
        claim: String,
        /// Lifetime: 3600, 30m, 12h, 7d, 1y. Without it the token never expires.
        #[arg(long)]
        expiry_time: Option<String>,
        /// Adds an `aud` claim.
        #[arg(long)]
        audience: Option<String>,
    },
    /// Prints a token's header and claims without verifying it.
    Show {
        token: Option<String>,
        #[arg(long)]
        token_file: Option<PathBuf>,
    },
    /// Verifies a token as a broker configured with this key would, and prints its role.
    Validate {
        token: Option<String>,
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// HS256 secret key (`data:;base64,...`, `file:...`, `env:VAR`).
        #[arg(long)]
        secret_key: Option<String>,
        /// Public key (PEM/DER; same forms).
        #[arg(long)]
        public_key: Option<String>,
        #[arg(long, default_value = "RS256")]
        algorithm: String,
        #[arg(long, default_value = "sub")]
        claim: String,
        #[arg(long)]
        audience: Option<String>,
    },
}

#[derive(Args)]
pub struct KeyArgs {
    /// HS256 secret key (`data:;base64,...`, `file:...`, `env:VAR` or inline).
    #[arg(long, conflicts_with = "private_key")]
    secret_key: Option<String>,
    /// Private key (PEM/DER; same forms).
    #[arg(long)]
    private_key: Option<String>,
    /// Algorithm of --private-key.
    #[arg(long, default_value = "RS256")]
    algorithm: String,
}

fn read_token(token: Option<String>, file: Option<PathBuf>) -> anyhow::Result<String> {
    match (token, file) {
        (Some(t), None) => Ok(t),
        (None, Some(f)) => Ok(std::fs::read_to_string(&f).with_context(|| format!("cannot read {}", f.display()))?),
        _ => bail!("give the token as an argument or with --token-file"),
    }
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(data)?;
    Ok(())
}

fn err(e: magnetar_auth::AuthError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

pub fn run(cmd: TokensCommand) -> anyhow::Result<()> {
    match cmd {
        TokensCommand::CreateSecretKey { output } => {
            let key = tokens_cli::generate_secret_key();
            match output {
                Some(path) => write_private(&path, &key)?,
                None => println!("{}", base64::engine::general_purpose::STANDARD.encode(&key)),
            }
        }
        TokensCommand::CreateKeyPair { algorithm, output_private_key, output_public_key } => {
            let alg = magnetar_auth::keys::parse_algorithm(&algorithm).map_err(err)?;
            let (private, public) = tokens_cli::generate_key_pair(alg).map_err(err)?;
            write_private(&output_private_key, private.as_bytes())?;
            std::fs::write(&output_public_key, public)
                .with_context(|| format!("cannot write {}", output_public_key.display()))?;
        }
        TokensCommand::Create { key, subject, claim, expiry_time, audience } => {
            let signing = match (&key.secret_key, &key.private_key) {
                (Some(s), None) => SigningKey::Secret(s),
                (None, Some(p)) => SigningKey::Private(p, &key.algorithm),
                _ => bail!("give --secret-key or --private-key"),
            };
            let expiry = expiry_time.map(|e| tokens_cli::parse_duration_secs(&e)).transpose().map_err(err)?;
            let extra: Vec<(String, String)> = audience.into_iter().map(|a| ("aud".to_string(), a)).collect();
            println!("{}", tokens_cli::create_token(signing, &claim, &subject, expiry, &extra).map_err(err)?);
        }
        TokensCommand::Show { token, token_file } => {
            println!("{}", tokens_cli::show_token(&read_token(token, token_file)?).map_err(err)?);
        }
        TokensCommand::Validate { token, token_file, secret_key, public_key, algorithm, claim, audience } => {
            let token = read_token(token, token_file)?;
            let p = tokens_cli::validate_token(
                &token,
                secret_key.as_deref(),
                public_key.as_deref(),
                &algorithm,
                &claim,
                audience.as_deref(),
            )
            .map_err(err)?;
            println!("valid; roles: {}", p.roles.join(", "));
        }
    }
    Ok(())
}

/// `standalone --auth`: a secret key under `data_dir/auth` (created once, kept across
/// restarts), role `admin` as superuser, and a 30-day superuser token to print.
pub fn enable_standalone_auth(cfg: &mut Config) -> anyhow::Result<String> {
    if !cfg.auth.token_public_key.is_empty() {
        bail!("--auth uses a secret key: remove auth.token_public_key from the configuration");
    }
    if cfg.auth.token_secret_key.is_empty() {
        let dir = cfg.data_dir.join("auth");
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join("secret.key");
        if !path.exists() {
            let key = base64::engine::general_purpose::STANDARD.encode(tokens_cli::generate_secret_key());
            write_private(&path, key.as_bytes())?;
        }
        cfg.auth.token_secret_key = magnetar_auth::Secret::new(format!("file:{}", path.display()));
    }
    cfg.auth.enabled = true;
    if !cfg.auth.superuser_roles.iter().any(|r| r == "admin") {
        cfg.auth.superuser_roles.push("admin".into());
    }
    let extra: Vec<(String, String)> =
        cfg.auth.token_audience.iter().map(|a| (cfg.auth.token_audience_claim.clone(), a.clone())).collect();
    let key = SigningKey::Secret(cfg.auth.token_secret_key.expose());
    tokens_cli::create_token(key, &cfg.auth.token_auth_claim, "admin", Some(30 * 86_400), &extra).map_err(err)
}
