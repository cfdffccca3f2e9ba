//! The `[auth]` configuration section and Pulsar's key-value forms (`data:;base64,...`,
//! `file:///path`, `file:path`, `env:VAR` or the value inline).

use crate::AuthError;
use base64::Engine;
use serde::{Deserialize, Serialize};

pub use magnetar_core::Secret;

/// Authentication and authorization settings; every key is documented in
/// docs/configuration.md (`[auth]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Require a valid token on every API call and enforce permissions.
    pub enabled: bool,
    /// Lets `magnetar broker` run with `enabled = false` (otherwise it refuses to start).
    pub allow_insecure: bool,
    /// Roles allowed to do everything (Pulsar's `superUserRoles`).
    pub superuser_roles: Vec<String>,
    /// HS256 secret (Pulsar's `tokenSecretKey`): raw bytes through `data:;base64,`, `file:` or
    /// `env:` (base64 text is decoded), or inline text.
    pub token_secret_key: Secret,
    /// RS256/ES256 public key in PEM (Pulsar's `tokenPublicKey`).
    pub token_public_key: Secret,
    /// Algorithm of `token_public_key` (Pulsar's `tokenPublicAlg`): RS256 (default) or ES256.
    pub token_public_alg: String,
    /// Private key matching `token_public_key`, used to sign service-account tokens. Without it
    /// (and without a secret key) the broker cannot mint tokens.
    pub token_private_key: Secret,
    /// Claim holding the role (Pulsar's `tokenAuthClaim`); a JSON array means several roles.
    pub token_auth_claim: String,
    /// Claim holding the audience (Pulsar's `tokenAudienceClaim`).
    pub token_audience_claim: String,
    /// When set, tokens must name this audience (Pulsar's `tokenAudience`).
    pub token_audience: Option<String>,
    /// Tolerated clock difference for `exp` and `nbf` (Pulsar's `tokenAllowedClockSkewSeconds`).
    pub allowed_clock_skew_secs: u64,
    /// Most verified tokens kept in memory (keyed by a hash of the token).
    pub token_cache_max_entries: usize,
    /// How often revocations are read from the metadata store.
    pub revocation_poll_interval_ms: u64,
    /// How long tenant admin roles and namespace grants are cached for produce and consume.
    pub policy_cache_ms: u64,
    /// Require a superuser token for `/metrics` (it names every tenant's topics).
    pub authenticate_metrics: bool,
    /// Longest lifetime a tenant admin may give a service-account token.
    pub service_account_token_max_secs: u64,
    /// OpenID Connect providers whose tokens are accepted (Pulsar's `openIDAllowedTokenIssuers`):
    /// a token whose `iss` is one of them is verified with the keys the provider publishes
    /// (`{issuer}/.well-known/openid-configuration`, then its `jwks_uri`), in addition to the
    /// static key above. What Pulsar clients' OAuth2 authentication sends.
    pub openid_allowed_token_issuers: Vec<String>,
    /// Audiences a provider's token must name one of (Pulsar's `openIDAllowedAudiences`);
    /// required with issuers.
    pub openid_allowed_audiences: Vec<String>,
    /// Refuse issuers that are not `https://` URLs (Pulsar's `openIDRequireIssuersUseHttps`).
    pub openid_require_issuers_use_https: bool,
    /// Claim holding a provider token's role (Pulsar's `openIDRoleClaim`).
    pub openid_role_claim: String,
    /// Providers' keys are fetched again when older than this (and whenever a token names a key
    /// the provider did not publish at the last fetch, at most every 5 s).
    pub openid_keys_refresh_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            enabled: false,
            allow_insecure: false,
            superuser_roles: Vec::new(),
            token_secret_key: Secret::default(),
            token_public_key: Secret::default(),
            token_public_alg: "RS256".into(),
            token_private_key: Secret::default(),
            token_auth_claim: "sub".into(),
            token_audience_claim: "aud".into(),
            token_audience: None,
            allowed_clock_skew_secs: 0,
            token_cache_max_entries: 100_000,
            revocation_poll_interval_ms: 1000,
            policy_cache_ms: 1000,
            authenticate_metrics: true,
            service_account_token_max_secs: 366 * 24 * 3600,
            openid_allowed_token_issuers: Vec::new(),
            openid_allowed_audiences: Vec::new(),
            openid_require_issuers_use_https: true,
            openid_role_claim: "sub".into(),
            openid_keys_refresh_secs: 3600,
        }
    }
}

impl AuthConfig {
    /// Checks what can be checked without reading keys (keys are loaded by `Auth::new`).
    pub fn validate(&self) -> Result<(), AuthError> {
        if !self.enabled {
            return Ok(());
        }
        let secret = !self.token_secret_key.is_empty();
        let public = !self.token_public_key.is_empty();
        if secret == public {
            return Err(AuthError::Config(
                "auth.enabled needs exactly one of auth.token_secret_key and auth.token_public_key".into(),
            ));
        }
        if self.token_auth_claim.is_empty() {
            return Err(AuthError::Config("auth.token_auth_claim must not be empty".into()));
        }
        if self.token_cache_max_entries == 0 {
            return Err(AuthError::Config("auth.token_cache_max_entries must be at least 1".into()));
        }
        if self.revocation_poll_interval_ms == 0 {
            return Err(AuthError::Config("auth.revocation_poll_interval_ms must be at least 1".into()));
        }
        if !self.openid_allowed_token_issuers.is_empty() {
            if self.openid_allowed_audiences.iter().all(|a| a.is_empty()) {
                return Err(AuthError::Config(
                    "auth.openid_allowed_token_issuers needs auth.openid_allowed_audiences (the audiences this \
                     cluster's tokens are issued for)"
                        .into(),
                ));
            }
            if self.openid_role_claim.is_empty() {
                return Err(AuthError::Config("auth.openid_role_claim must not be empty".into()));
            }
            if self.openid_keys_refresh_secs == 0 {
                return Err(AuthError::Config("auth.openid_keys_refresh_secs must be at least 1".into()));
            }
        }
        Ok(())
    }
}

/// Reads a key value in one of Pulsar's forms; `what` names the setting in errors (the value
/// itself is never included).
pub fn read_key_value(value: &str, what: &str) -> Result<Vec<u8>, AuthError> {
    let value = value.trim();
    if let Some(rest) = value.strip_prefix("data:") {
        // `data:;base64,XXXX` (Pulsar) or `data:base64,XXXX`.
        let (meta, data) =
            rest.split_once(',').ok_or_else(|| AuthError::Config(format!("{what}: malformed data: URL")))?;
        if meta.ends_with("base64") {
            return base64::engine::general_purpose::STANDARD
                .decode(data.trim())
                .map_err(|_| AuthError::Config(format!("{what}: data: URL is not valid base64")));
        }
        return Ok(data.as_bytes().to_vec());
    }
    if let Some(rest) = value.strip_prefix("file:") {
        let path = rest.strip_prefix("//").unwrap_or(rest);
        return std::fs::read(path).map_err(|e| AuthError::Config(format!("{what}: cannot read file {path}: {e}")));
    }
    if let Some(var) = value.strip_prefix("env:") {
        return std::env::var(var)
            .map(String::into_bytes)
            .map_err(|_| AuthError::Config(format!("{what}: environment variable {var} is not set")));
    }
    if value.is_empty() {
        return Err(AuthError::Config(format!("{what} is empty")));
    }
    Ok(value.as_bytes().to_vec())
}

/// A secret key's bytes: what `read_key_value` gives, except that text that is valid base64
/// (as `magnetar tokens create-secret-key --base64` and Pulsar's `--base64` print) is decoded
/// when it comes from a file or the environment.
pub fn read_secret_key(value: &str, what: &str) -> Result<Vec<u8>, AuthError> {
    let bytes = read_key_value(value, what)?;
    let trimmed = value.trim();
    if (trimmed.starts_with("file:") || trimmed.starts_with("env:"))
        && let Ok(text) = std::str::from_utf8(&bytes)
        && text.trim().len() >= 32
        && let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(text.trim())
    {
        return Ok(decoded);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_url_is_decoded() {
        assert_eq!(read_key_value("data:;base64,aGVsbG8=", "k").unwrap(), b"hello");
        assert_eq!(read_key_value("data:base64,aGVsbG8=", "k").unwrap(), b"hello");
    }

    #[test]
    fn file_forms_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(read_key_value(&format!("file://{}", p.display()), "k").unwrap(), b"abc");
        assert_eq!(read_key_value(&format!("file:{}", p.display()), "k").unwrap(), b"abc");
        let err = read_key_value("file:///does/not/exist", "auth.token_secret_key").unwrap_err();
        assert!(err.to_string().contains("auth.token_secret_key"), "{err}");
    }

    #[test]
    fn env_form_is_read_and_missing_var_named() {
        // SAFETY-free: a variable name unique to this test.
        let err = read_key_value("env:MAGNETAR_AUTH_TEST_SURELY_UNSET", "k").unwrap_err();
        assert!(err.to_string().contains("MAGNETAR_AUTH_TEST_SURELY_UNSET"));
        let path = std::env::var("PATH").unwrap();
        assert_eq!(read_key_value("env:PATH", "k").unwrap(), path.as_bytes());
    }

    #[test]
    fn base64_secret_in_file_is_decoded() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        let raw = [7u8; 32];
        std::fs::write(&p, base64::engine::general_purpose::STANDARD.encode(raw)).unwrap();
        assert_eq!(read_secret_key(&format!("file:{}", p.display()), "k").unwrap(), raw);
        // Inline text is the secret itself.
        assert_eq!(read_secret_key("plain-secret", "k").unwrap(), b"plain-secret");
    }

    #[test]
    fn secret_does_not_print() {
        let c = AuthConfig { token_secret_key: Secret::new("hunter2"), ..AuthConfig::default() };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn openid_issuers_need_audiences() {
        let mut c = AuthConfig {
            enabled: true,
            token_secret_key: Secret::new("x"),
            openid_allowed_token_issuers: vec!["https://idp".into()],
            ..AuthConfig::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("auth.openid_allowed_audiences"));
        c.openid_allowed_audiences = vec!["magnetar".into()];
        assert!(c.validate().is_ok());
        c.openid_keys_refresh_secs = 0;
        assert!(c.validate().unwrap_err().to_string().contains("openid_keys_refresh_secs"));
    }

    #[test]
    fn enabled_needs_exactly_one_key() {
        let mut c = AuthConfig { enabled: true, ..AuthConfig::default() };
        assert!(c.validate().is_err());
        c.token_secret_key = Secret::new("x");
        assert!(c.validate().is_ok());
        c.token_public_key = Secret::new("y");
        assert!(c.validate().is_err());
    }
}
