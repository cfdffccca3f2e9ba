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
pub mod openid;
pub mod operation_names;
pub mod token;
pub mod tokens_cli;

pub use authorize::{Action, Authorizer, Operation, Resource, Rule, Visibility};
pub use config::{AuthConfig, Secret};
pub use error::AuthError;
pub use token::{Authenticator, Principal};

use magnetar_metadata::{MetadataStore, PolicyCache};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Everything the API layer needs: whether auth is on, the authenticator and the authorizer.
pub struct Auth {
    pub config: AuthConfig,
    authenticator: Option<Authenticator>,
    pub authorizer: Arc<Authorizer>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").field("enabled", &self.enabled()).finish()
    }
}

impl Auth {
    /// Loads keys (when enabled) and fails on any configuration problem. `authorizer` is shared
    /// with the broker, which authorizes the writes it makes on a client's behalf.
    pub fn new(config: AuthConfig, authorizer: Arc<Authorizer>) -> Result<Auth, AuthError> {
        config.validate()?;
        let authenticator = if config.enabled { Some(Authenticator::new(&config)?) } else { None };
        Ok(Auth { config, authenticator, authorizer })
    }

    /// Authentication off: every caller is a superuser.
    pub fn disabled(authorizer: Arc<Authorizer>) -> Auth {
        Auth::new(AuthConfig::default(), authorizer).expect("the default auth configuration is valid")
    }

    /// The authorizer over `store`, reading tenants and policies through `policies`.
    pub fn authorizer(store: Arc<dyn MetadataStore>, policies: Arc<PolicyCache>) -> Arc<Authorizer> {
        Arc::new(Authorizer::new(store, policies))
    }

    pub fn enabled(&self) -> bool {
        self.authenticator.is_some()
    }

    pub fn authenticator(&self) -> Option<&Authenticator> {
        self.authenticator.as_ref()
    }

    /// The principal for a request: with auth off, a superuser; with auth on, the verified
    /// token's (`MissingToken` when there is none).
    /// An OpenID provider's token may need its keys fetched first
    /// (`Authenticator::authenticate_fetching`).
    pub async fn authenticate(&self, token: Option<&str>) -> Result<Arc<Principal>, AuthError> {
        match &self.authenticator {
            None => Ok(Arc::new(Principal::anonymous_superuser())),
            Some(a) => a.authenticate_fetching(token.ok_or(AuthError::MissingToken)?).await,
        }
    }

    /// The principal of a client certificate the transport verified, named by `role` (its
    /// subject's common name, as Pulsar's TLS authentication provider reads it): with auth off,
    /// a superuser; with auth on, that role (`MissingCertificate` when none was presented).
    /// Nothing expires or is revoked: the certificate was checked once, at the handshake.
    pub fn authenticate_certificate(&self, role: Option<&str>) -> Result<Arc<Principal>, AuthError> {
        match &self.authenticator {
            None => Ok(Arc::new(Principal::anonymous_superuser())),
            Some(a) => Ok(Arc::new(a.principal_of(role.ok_or(AuthError::MissingCertificate)?))),
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

    /// Deletes the revocation rows of tokens that expired more than the clock skew plus
    /// `REVOCATION_PRUNE_GRACE` ago (every broker refuses them for their expiry by then), so
    /// the table holds only revocations that still matter. Rows of tokens without expiry stay.
    /// Returns how many rows were deleted.
    pub async fn prune_revocations(&self) -> Result<u64, AuthError> {
        if !self.enabled() {
            return Ok(0);
        }
        let skew_ms = i64::try_from(self.config.allowed_clock_skew_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let grace_ms = REVOCATION_PRUNE_GRACE.as_millis() as i64;
        let cutoff = magnetar_core::now_millis().saturating_sub(skew_ms).saturating_sub(grace_ms);
        Ok(self.authorizer.store().prune_revoked_tokens(cutoff).await?)
    }

    /// Polls revocations every `revocation_poll_interval_ms` until `stop` is cancelled, and
    /// prunes revocations of expired tokens at the first poll and every `REVOCATION_PRUNE_EVERY`.
    pub async fn run_revocation_poller(self: Arc<Self>, stop: CancellationToken) {
        if !self.enabled() {
            return;
        }
        let period = Duration::from_millis(self.config.revocation_poll_interval_ms.max(1));
        let mut last_prune: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(period) => {}
            }
            if let Err(e) = self.poll_revocations().await {
                tracing::warn!(error = %e, "cannot read token revocations");
            }
            if last_prune.is_none_or(|at| at.elapsed() >= REVOCATION_PRUNE_EVERY) {
                last_prune = Some(tokio::time::Instant::now());
                match self.prune_revocations().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(rows = n, "pruned revocations of expired tokens"),
                    Err(e) => tracing::warn!(error = %e, "cannot prune token revocations"),
                }
            }
        }
    }
}

const REVOCATION_WINDOW: i64 = 256;
/// How often each broker deletes revocation rows of expired tokens (every broker does; the
/// delete is idempotent).
const REVOCATION_PRUNE_EVERY: Duration = Duration::from_secs(600);
/// How long after its expiry (plus the clock skew) a revoked token's row is kept: a margin for
/// brokers whose clocks run behind, which still accept the token until their clock says it
/// expired.
pub const REVOCATION_PRUNE_GRACE: Duration = Duration::from_secs(3600);

#[cfg(test)]
mod tests {
    use super::*;
    use magnetar_metadata::{ServiceAccount, ServiceAccountToken, TenantInfo};

    #[tokio::test]
    async fn pruning_drops_revocations_of_long_expired_tokens_only() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("metadata.db").display());
        let store = magnetar_metadata::connect(&url).await.unwrap();
        let config = AuthConfig {
            enabled: true,
            token_secret_key: Secret::new("prune-test-secret-0123456789abcdef"),
            allowed_clock_skew_secs: 60,
            ..AuthConfig::default()
        };
        let policies = PolicyCache::new(Arc::clone(&store), Duration::from_secs(1));
        let authorizer = Auth::authorizer(Arc::clone(&store), policies);
        let auth = Auth::new(config, Arc::clone(&authorizer)).unwrap();
        let tenant = magnetar_core::TenantName::new("acme").unwrap();
        store.create_tenant(&tenant, &TenantInfo::default()).await.unwrap();
        let account =
            ServiceAccount { tenant: tenant.clone(), name: "app".into(), description: String::new(), created_at: 0 };
        store.create_service_account(&account).await.unwrap();
        let now = magnetar_core::now_millis();
        let grace = REVOCATION_PRUNE_GRACE.as_millis() as i64;
        let tokens = [
            ("long-expired", Some(now - grace - 120_000)),
            // Expired, but within skew + grace: a broker with a slow clock may still accept it.
            ("recently-expired", Some(now - grace + 30_000)),
            ("live", Some(now + 3_600_000)),
            ("forever", None),
        ];
        for (id, expires_at) in tokens {
            let t = ServiceAccountToken {
                id: id.into(),
                tenant: tenant.clone(),
                account: "app".into(),
                created_at: now,
                expires_at,
            };
            store.create_service_account_token(&t).await.unwrap();
            store.revoke_service_account_token(&tenant, "app", id).await.unwrap();
        }
        assert_eq!(auth.prune_revocations().await.unwrap(), 1);
        assert_eq!(auth.prune_revocations().await.unwrap(), 0);
        let left: Vec<_> = store.list_revoked_tokens(0, 100).await.unwrap().into_iter().map(|r| r.token_id).collect();
        assert_eq!(left, vec!["recently-expired", "live", "forever"]);
        // Polling after a prune still applies what is left.
        assert_eq!(auth.poll_revocations().await.unwrap(), 3);
        // With authentication off nothing is pruned.
        assert_eq!(Auth::disabled(authorizer).prune_revocations().await.unwrap(), 0);
    }
}
