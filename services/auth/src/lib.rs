//! Authentication and authorization: JWT verification (HS256 secret or RS256/ES256 public key,
//! Pulsar's key forms and claims), Pulsar's permission model in one `Authorizer`, Magnetar's
//! self-service service accounts with broker-signed, revocable tokens, and the logic of the
//! `magnetar tokens` command. Nothing here knows HTTP: the API crate extracts tokens and maps
//! `AuthError` to status codes.

pub mod accounts;
pub mod authorize;
pub mod config;
mod error;
pub mod keys;
pub mod token;
pub mod tokens_cli;

pub use authorize::{Action, Authorizer, Operation, Resource, Rule, Visibility};
pub use config::{AuthConfig, Secret};
pub use error::AuthError;
pub use token::{Authenticator, Principal};

use magnetar_metadata::MetadataStore;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Everything the API layer needs: whether auth is on, the authenticator and the authorizer.
pub struct Auth {
    pub config: AuthConfig,
    authenticator: Option<Authenticator>,
    pub authorizer: Authorizer,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").field("enabled", &self.enabled()).finish()
    }
}

impl Auth {
    /// Loads keys (when enabled) and fails on any configuration problem.
    pub fn new(config: AuthConfig, store: Arc<dyn MetadataStore>) -> Result<Auth, AuthError> {
        config.validate()?;
        let authenticator = if config.enabled { Some(Authenticator::new(&config)?) } else { None };
        let authorizer = Authorizer::new(store, Duration::from_millis(config.policy_cache_ms));
        Ok(Auth { config, authenticator, authorizer })
    }

    /// Authentication off: every caller is a superuser.
    pub fn disabled(store: Arc<dyn MetadataStore>) -> Auth {
        Auth::new(AuthConfig::default(), store).expect("the default auth configuration is valid")
    }

    pub fn enabled(&self) -> bool {
        self.authenticator.is_some()
    }

    pub fn authenticator(&self) -> Option<&Authenticator> {
        self.authenticator.as_ref()
    }

    /// The principal for a request: with auth off, a superuser; with auth on, the verified
    /// token's (`MissingToken` when there is none).
    pub fn authenticate(&self, token: Option<&str>) -> Result<Arc<Principal>, AuthError> {
        match &self.authenticator {
            None => Ok(Arc::new(Principal::anonymous_superuser())),
            Some(a) => a.authenticate(token.ok_or(AuthError::MissingToken)?),
        }
    }

    /// Whether the principal's token was revoked after it was verified (open WebSocket
    /// sessions poll this).
    pub fn is_revoked(&self, p: &Principal) -> bool {
        self.authenticator.as_ref().is_some_and(|a| a.is_revoked(p))
    }

    pub async fn check(&self, p: &Principal, op: Operation, res: Resource<'_>) -> Result<(), AuthError> {
        self.authorizer.check(p, op, res).await
    }

    /// Reads new revocations from the metadata store once.
    pub async fn poll_revocations(&self) -> Result<usize, AuthError> {
        let Some(a) = &self.authenticator else { return Ok(0) };
        // Re-read a window below the last sequence: PostgreSQL sequence values can commit out of
        // order, so a row with a lower `seq` may appear after a higher one was seen.
        let mut after = (a.revocation_seq() - REVOCATION_WINDOW).max(0);
        let mut total = 0;
        loop {
            let page = self.authorizer.store().list_revoked_tokens(after, 1000).await?;
            let Some(last) = page.last().map(|r| r.seq) else { break };
            total += page.len();
            a.add_revocations(last, page.into_iter().map(|r| (r.token_id, r.expires_at.map(|ms| ms / 1000))));
            after = last;
        }
        Ok(total)
    }

    /// Polls revocations every `revocation_poll_interval_ms` until `stop` is cancelled.
    pub async fn run_revocation_poller(self: Arc<Self>, stop: CancellationToken) {
        if !self.enabled() {
            return;
        }
        let period = Duration::from_millis(self.config.revocation_poll_interval_ms.max(1));
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(period) => {}
            }
            if let Err(e) = self.poll_revocations().await {
                tracing::warn!(error = %e, "cannot read token revocations");
            }
        }
    }
}

const REVOCATION_WINDOW: i64 = 256;
