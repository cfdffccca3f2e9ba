//! Tokens from OpenID Connect identity providers (Pulsar's `AuthenticationProviderOpenID`): a
//! token whose `iss` is one of `auth.openid_allowed_token_issuers` is verified with that
//! issuer's published keys, found through its discovery document
//! (`{issuer}/.well-known/openid-configuration`, then its `jwks_uri`). This is what Pulsar's
//! clients' OAuth2 authentication (client credentials against the provider's token endpoint)
//! sends as its `token`.
//!
//! Keys are fetched when first needed and again when a token names a key id the issuer did
//! not publish at the last fetch (providers publish a new key before they sign with it), at most
//! once per [`REFETCH_AFTER`] per issuer so that tokens naming made-up key ids cannot make the
//! broker hammer the provider, and when older than `openid_keys_refresh_secs`. A failed fetch
//! keeps the keys held before.

use crate::error::AuthError;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Shortest time between two fetches of one issuer's keys.
pub const REFETCH_AFTER: Duration = Duration::from_secs(5);
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// One published key: what verifies with it, and the algorithms it may sign with.
struct PublishedKey {
    key: DecodingKey,
    algorithms: Vec<Algorithm>,
}

#[derive(Default)]
struct IssuerKeys {
    by_id: HashMap<String, PublishedKey>,
    /// When the keys were last fetched (successfully or not).
    fetched: Option<Instant>,
    loaded: Option<Instant>,
    /// Why the last fetch failed, if it did.
    failed: Option<String>,
}

/// What a token's issuer and key id find.
pub enum Found<'a> {
    Key(&'a DecodingKey, &'a [Algorithm]),
    /// An allowed issuer that publishes no such key (as of the last fetch).
    Unknown,
}

/// The allowed issuers and their keys.
pub struct OpenIdKeys {
    issuers: HashMap<String, tokio::sync::Mutex<()>>,
    keys: RwLock<HashMap<String, IssuerKeys>>,
    refresh: Duration,
    http: reqwest::Client,
}

impl std::fmt::Debug for OpenIdKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenIdKeys").field("issuers", &self.issuers.keys().collect::<Vec<_>>()).finish()
    }
}

/// An issuer as tokens name it: without a trailing slash (providers differ on it).
fn normalized(issuer: &str) -> &str {
    issuer.trim_end_matches('/')
}

impl OpenIdKeys {
    /// `None` when no issuer is allowed. Issuers must be `https://` URLs unless
    /// `require_https` is off.
    pub fn new(issuers: &[String], require_https: bool, refresh: Duration) -> Result<Option<Self>, AuthError> {
        if issuers.is_empty() {
            return Ok(None);
        }
        for i in issuers {
            let https = i.starts_with("https://");
            if !https && (require_https || !i.starts_with("http://")) {
                return Err(AuthError::Config(format!(
                    "auth.openid_allowed_token_issuers: `{i}` is not an https:// URL{}",
                    if require_https { " (auth.openid_require_issuers_use_https is on)" } else { "" }
                )));
            }
        }
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|e| AuthError::Config(format!("cannot build the OpenID HTTP client: {e}")))?;
        Ok(Some(OpenIdKeys {
            issuers: issuers.iter().map(|i| (normalized(i).to_string(), tokio::sync::Mutex::new(()))).collect(),
            keys: RwLock::new(HashMap::new()),
            refresh,
            http,
        }))
    }

    /// Whether `issuer` is an allowed one.
    pub fn allows(&self, issuer: &str) -> bool {
        self.issuers.contains_key(normalized(issuer))
    }

    /// Runs `f` with the key `kid` of `issuer` (an allowed one: [`OpenIdKeys::allows`]) as last
    /// fetched.
    pub fn with_key<T>(&self, issuer: &str, kid: Option<&str>, f: impl FnOnce(Found<'_>) -> T) -> T {
        let keys = self.keys.read();
        let Some(held) = keys.get(normalized(issuer)) else { return f(Found::Unknown) };
        let key = match kid {
            Some(kid) => held.by_id.get(kid),
            // A token without a key id: the issuer's only key, if it has one.
            None if held.by_id.len() == 1 => held.by_id.values().next(),
            None => None,
        };
        match key {
            Some(k) => f(Found::Key(&k.key, &k.algorithms)),
            None => f(Found::Unknown),
        }
    }

    /// Whether `issuer`'s keys are missing or older than the refresh interval.
    pub fn stale(&self, issuer: &str) -> bool {
        self.keys.read().get(normalized(issuer)).and_then(|k| k.loaded).is_none_or(|t| t.elapsed() >= self.refresh)
    }

    /// Fetches `issuer`'s keys again, unless they were fetched less than [`REFETCH_AFTER`]
    /// ago (then `Ok` with what is held). Concurrent calls for one issuer make one fetch.
    pub async fn refetch(&self, issuer: &str) -> Result<(), AuthError> {
        let issuer = normalized(issuer);
        let Some(lock) = self.issuers.get(issuer) else { return Ok(()) };
        let _one = lock.lock().await;
        if let Some(held) = self.keys.read().get(issuer)
            && held.fetched.is_some_and(|t| t.elapsed() < REFETCH_AFTER)
        {
            return match &held.failed {
                None => Ok(()),
                Some(reason) => Err(unavailable(issuer, reason)),
            };
        }
        let fetched = self.fetch(issuer).await;
        let mut keys = self.keys.write();
        let held = keys.entry(issuer.to_string()).or_default();
        held.fetched = Some(Instant::now());
        match fetched {
            Ok(by_id) => {
                tracing::info!(issuer, keys = by_id.len(), "fetched the OpenID provider's signing keys");
                held.by_id = by_id;
                held.loaded = held.fetched;
                held.failed = None;
                Ok(())
            }
            Err(reason) => {
                tracing::warn!(issuer, %reason, "cannot fetch the OpenID provider's signing keys");
                let e = unavailable(issuer, &reason);
                held.failed = Some(reason);
                Err(e)
            }
        }
    }

    async fn fetch(&self, issuer: &str) -> Result<HashMap<String, PublishedKey>, String> {
        let discovery = format!("{issuer}/.well-known/openid-configuration");
        let doc: serde_json::Value = self.get_json(&discovery).await?;
        // The provider must call itself what tokens call it (OpenID Connect Discovery §4.3).
        let named = doc.get("issuer").and_then(|v| v.as_str()).map(normalized);
        if named != Some(issuer) {
            return Err(format!("its discovery document names issuer {named:?}"));
        }
        let jwks_uri = doc.get("jwks_uri").and_then(|v| v.as_str()).ok_or("its discovery document has no jwks_uri")?;
        if issuer.starts_with("https://") && !jwks_uri.starts_with("https://") {
            return Err(format!("its jwks_uri {jwks_uri} is not https"));
        }
        let set: JwkSet = serde_json::from_value(self.get_json(jwks_uri).await?)
            .map_err(|e| format!("{jwks_uri} is not a JSON Web Key Set: {e}"))?;
        Ok(published_keys(&set))
    }

    async fn get_json(&self, url: &str) -> Result<serde_json::Value, String> {
        let resp = self.http.get(url).send().await.map_err(|e| format!("GET {url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("GET {url}: {}", resp.status()));
        }
        resp.json().await.map_err(|e| format!("GET {url}: not JSON: {e}"))
    }
}

fn unavailable(issuer: &str, reason: &str) -> AuthError {
    AuthError::Unavailable(format!("the signing keys of token issuer {issuer} cannot be fetched: {reason}"))
}

/// The signing keys of a key set by key id ("" for one without), each with the algorithms it
/// may verify: the one it names, else those of its type. Symmetric keys are left out (a
/// provider's secret is not a public key), and so are keys for encryption only.
fn published_keys(set: &JwkSet) -> HashMap<String, PublishedKey> {
    use jsonwebtoken::jwk::PublicKeyUse;
    let mut out = HashMap::new();
    for jwk in &set.keys {
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        let family: Vec<Algorithm> = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => vec![
                Algorithm::RS256,
                Algorithm::RS384,
                Algorithm::RS512,
                Algorithm::PS256,
                Algorithm::PS384,
                Algorithm::PS512,
            ],
            AlgorithmParameters::EllipticCurve(_) => vec![Algorithm::ES256, Algorithm::ES384],
            AlgorithmParameters::OctetKeyPair(_) => vec![Algorithm::EdDSA],
            _ => continue,
        };
        let algorithms = match jwk.common.key_algorithm.map(|a| a.to_string().parse::<Algorithm>()) {
            Some(Ok(alg)) if family.contains(&alg) => vec![alg],
            Some(_) => continue,
            None => family,
        };
        let Ok(key) = DecodingKey::from_jwk(jwk) else { continue };
        out.insert(jwk.common.key_id.clone().unwrap_or_default(), PublishedKey { key, algorithms });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers_must_be_https_unless_allowed_otherwise() {
        let err = OpenIdKeys::new(&["http://idp".into()], true, Duration::from_secs(60)).unwrap_err();
        assert!(err.to_string().contains("http://idp"), "{err}");
        assert!(
            OpenIdKeys::new(&["http://idp/".into()], false, Duration::from_secs(60))
                .unwrap()
                .unwrap()
                .allows("http://idp")
        );
        assert!(OpenIdKeys::new(&["ftp://idp".into()], false, Duration::from_secs(60)).is_err());
        assert!(OpenIdKeys::new(&[], true, Duration::from_secs(60)).unwrap().is_none());
    }

    #[test]
    fn a_key_set_gives_its_signing_keys_with_their_algorithms() {
        let set: JwkSet = serde_json::from_value(serde_json::json!({"keys": [
            {"kty": "RSA", "kid": "r", "alg": "RS256", "use": "sig", "n": "sXch", "e": "AQAB"},
            {"kty": "RSA", "kid": "any", "n": "sXch", "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": "sXch", "e": "AQAB"},
            {"kty": "oct", "kid": "secret", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "mislabelled", "alg": "ES256", "n": "sXch", "e": "AQAB"},
        ]}))
        .unwrap();
        let keys = published_keys(&set);
        let mut ids: Vec<&str> = keys.keys().map(String::as_str).collect();
        ids.sort_unstable();
        assert_eq!(ids, ["any", "r"]);
        assert_eq!(keys["r"].algorithms, [Algorithm::RS256]);
        assert!(keys["any"].algorithms.contains(&Algorithm::PS512));
    }
}
