//! Token verification with a bounded cache of verified tokens, the revocation set, and token
//! minting with the broker's own key.

use crate::AuthError;
use crate::config::AuthConfig;
use crate::keys::Keys;
use crate::openid::{Found, OpenIdKeys};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use parking_lot::RwLock;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Who a verified token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The roles of the token (one for a string claim, several for an array claim); any of
    /// them may grant an operation. Never empty.
    pub roles: Vec<String>,
    /// Whether one of the roles is a configured superuser role (or authentication is off).
    pub superuser: bool,
    /// `exp` of the token, seconds since the epoch.
    pub expires_at: Option<i64>,
    /// `jti` of the token, used for revocation.
    pub token_id: Option<String>,
}

impl Principal {
    /// The caller when authentication is off: everything is allowed.
    pub fn anonymous_superuser() -> Principal {
        Principal { roles: Vec::new(), superuser: true, expires_at: None, token_id: None }
    }

    /// The first role, for messages and subscription prefixes.
    pub fn role(&self) -> Option<&str> {
        self.roles.first().map(String::as_str)
    }
}

pub(crate) fn now_secs() -> i64 {
    magnetar_core::now_millis() / 1000
}

/// Verifies tokens. Verified tokens are cached by the SHA-256 of the token text (never the
/// text itself) until they expire, so the signature check happens once per token.
pub struct Authenticator {
    keys: Keys,
    role_claim: String,
    audience_claim: String,
    audience: Option<String>,
    skew: i64,
    superusers: Vec<String>,
    max_entries: usize,
    cache: RwLock<HashMap<[u8; 32], Arc<Principal>>>,
    /// Revoked token ids with their expiry (seconds; `None` = never expires).
    revoked: RwLock<HashMap<String, Option<i64>>>,
    revoked_seq: AtomicI64,
    /// OpenID Connect providers whose tokens are accepted, with what they require.
    openid: Option<OpenId>,
}

struct OpenId {
    keys: OpenIdKeys,
    audiences: Vec<String>,
    role_claim: String,
}

/// How a token's claims are judged: the static key's settings or an OpenID provider's.
struct Rules<'a> {
    role_claim: &'a str,
    audience_claim: &'a str,
    /// One of these must be in the audience claim (none: not checked).
    audiences: &'a [String],
    /// `exp` must be present (OpenID tokens always carry it).
    require_exp: bool,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").field("keys", &self.keys).field("role_claim", &self.role_claim).finish()
    }
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn claim_secs(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, AuthError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)).map(Some).ok_or(AuthError::Malformed)
        }
        Some(_) => Err(AuthError::Malformed),
    }
}

/// The `iss` claim of a token, read without verifying it (to pick the keys that verify it).
fn issuer_of(token: &str) -> Option<String> {
    let claims = jsonwebtoken::dangerous::insecure_decode_claims::<Map<String, Value>>(token).ok()?;
    claims.get("iss").and_then(Value::as_str).map(String::from)
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
        Some(Value::Array(a)) => {
            a.iter().filter_map(Value::as_str).filter(|s| !s.is_empty()).map(String::from).collect()
        }
        _ => Vec::new(),
    }
}

impl Authenticator {
    pub fn new(config: &AuthConfig) -> Result<Authenticator, AuthError> {
        config.validate()?;
        Ok(Authenticator {
            keys: Keys::from_config(config)?,
            role_claim: config.token_auth_claim.clone(),
            audience_claim: config.token_audience_claim.clone(),
            audience: config.token_audience.clone().filter(|a| !a.is_empty()),
            skew: i64::try_from(config.allowed_clock_skew_secs).unwrap_or(i64::MAX),
            superusers: config.superuser_roles.clone(),
            max_entries: config.token_cache_max_entries.max(1),
            cache: RwLock::new(HashMap::new()),
            revoked: RwLock::new(HashMap::new()),
            revoked_seq: AtomicI64::new(0),
            openid: OpenIdKeys::new(
                &config.openid_allowed_token_issuers,
                config.openid_require_issuers_use_https,
                std::time::Duration::from_secs(config.openid_keys_refresh_secs),
            )?
            .map(|keys| OpenId {
                keys,
                audiences: config.openid_allowed_audiences.iter().filter(|a| !a.is_empty()).cloned().collect(),
                role_claim: config.openid_role_claim.clone(),
            }),
        })
    }

    /// [`Authenticator::authenticate`], fetching an OpenID provider's keys first when they are
    /// missing or old, and again when the token names a key the provider had not published
    /// (`Unavailable` when the provider cannot be reached and no key held verifies the token).
    pub async fn authenticate_fetching(&self, token: &str) -> Result<Arc<Principal>, AuthError> {
        if let Some(o) = &self.openid
            && !self.cache.read().contains_key(&hash(token.trim()))
            && let Some(issuer) = issuer_of(token.trim()).filter(|i| o.keys.allows(i))
            && o.keys.stale(&issuer)
        {
            // Old keys stay in use when this fails; a token they do not verify fails below.
            let _ = o.keys.refetch(&issuer).await;
        }
        match self.authenticate(token) {
            Err(AuthError::UnknownSigningKey(issuer)) => {
                if let Some(o) = &self.openid {
                    o.keys.refetch(&issuer).await?;
                }
                self.authenticate(token)
            }
            other => other,
        }
    }

    /// Verifies `token` (without any `Bearer ` prefix) and returns its principal.
    pub fn authenticate(&self, token: &str) -> Result<Arc<Principal>, AuthError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::MissingToken);
        }
        let key = hash(token);
        let cached = self.cache.read().get(&key).cloned();
        let principal = match cached {
            Some(p) => p,
            None => {
                let p = Arc::new(self.verify(token)?);
                self.remember(key, Arc::clone(&p));
                p
            }
        };
        if let Some(exp) = principal.expires_at
            && now_secs() > exp.saturating_add(self.skew)
        {
            self.cache.write().remove(&key);
            return Err(AuthError::Expired);
        }
        if self.is_revoked(&principal) {
            return Err(AuthError::Revoked);
        }
        Ok(principal)
    }

    /// Whether the token behind `principal` has been revoked since it was verified.
    pub fn is_revoked(&self, principal: &Principal) -> bool {
        principal.token_id.as_ref().is_some_and(|id| self.revoked.read().contains_key(id))
    }

    fn remember(&self, key: [u8; 32], p: Arc<Principal>) {
        let mut cache = self.cache.write();
        if cache.len() >= self.max_entries {
            let now = now_secs();
            cache.retain(|_, p| p.expires_at.is_none_or(|e| e.saturating_add(self.skew) >= now));
            if cache.len() >= self.max_entries {
                cache.clear();
            }
        }
        cache.insert(key, p);
    }

    /// Signature, algorithm, `exp`, `nbf`, audience and role; no cache. A token of an allowed
    /// OpenID issuer is checked against that issuer's keys, any other against the static key.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        if let Some(o) = &self.openid
            && let Some(issuer) = issuer_of(token).filter(|i| o.keys.allows(i))
        {
            let rules =
                Rules { role_claim: &o.role_claim, audience_claim: "aud", audiences: &o.audiences, require_exp: true };
            return o.keys.with_key(&issuer, header.kid.as_deref(), |found| match found {
                Found::Key(key, algorithms) => self.verify_with(token, &header, key, algorithms, &rules),
                Found::Unknown => Err(AuthError::UnknownSigningKey(issuer.clone())),
            });
        }
        let audiences = self.audience.as_slice();
        let rules =
            Rules { role_claim: &self.role_claim, audience_claim: &self.audience_claim, audiences, require_exp: false };
        self.verify_with(token, &header, &self.keys.decoding, &self.keys.algorithms, &rules)
    }

    fn verify_with(
        &self,
        token: &str,
        header: &Header,
        key: &DecodingKey,
        algorithms: &[Algorithm],
        rules: &Rules<'_>,
    ) -> Result<Principal, AuthError> {
        if !algorithms.contains(&header.alg) {
            return Err(AuthError::WrongAlgorithm(format!("{:?}", header.alg)));
        }
        let mut validation = Validation::new(header.alg);
        validation.algorithms = algorithms.to_vec();
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => AuthError::InvalidSignature,
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => AuthError::WrongAlgorithm(format!("{:?}", header.alg)),
            _ => AuthError::Malformed,
        })?;
        let claims = data.claims;
        let now = now_secs();
        let exp = claim_secs(&claims, "exp")?;
        if exp.is_none() && rules.require_exp {
            return Err(AuthError::MissingClaim("exp"));
        }
        if let Some(exp) = exp
            && now > exp.saturating_add(self.skew)
        {
            return Err(AuthError::Expired);
        }
        if let Some(nbf) = claim_secs(&claims, "nbf")?
            && now.saturating_add(self.skew) < nbf
        {
            return Err(AuthError::NotYetValid);
        }
        if !rules.audiences.is_empty()
            && !strings(claims.get(rules.audience_claim)).iter().any(|a| rules.audiences.contains(a))
        {
            return Err(AuthError::WrongAudience);
        }
        let roles = strings(claims.get(rules.role_claim));
        if roles.is_empty() {
            return Err(AuthError::MissingRole(rules.role_claim.to_string()));
        }
        let superuser = roles.iter().any(|r| self.superusers.contains(r));
        let token_id = claims.get("jti").and_then(Value::as_str).map(String::from);
        Ok(Principal { roles, superuser, expires_at: exp, token_id })
    }

    /// The principal of one role vouched for by something other than a token (a verified
    /// client certificate): a superuser when the role is one.
    pub fn principal_of(&self, role: &str) -> Principal {
        Principal {
            roles: vec![role.to_string()],
            superuser: self.superusers.iter().any(|s| s == role),
            expires_at: None,
            token_id: None,
        }
    }

    /// Signs a token for `role` with the broker's key; `claims` may add `jti`, `exp`...
    pub fn sign(&self, role: &str, mut claims: Map<String, Value>) -> Result<String, AuthError> {
        let (key, alg) = self.keys.signing.as_ref().ok_or_else(|| {
            AuthError::NotSupported(
                "this broker cannot sign tokens: configure auth.token_secret_key or auth.token_private_key".into(),
            )
        })?;
        claims.insert(self.role_claim.clone(), Value::String(role.to_string()));
        if let Some(aud) = &self.audience {
            claims.insert(self.audience_claim.clone(), Value::String(aud.clone()));
        }
        encode(*alg, key, &claims)
    }

    pub fn can_sign(&self) -> bool {
        self.keys.signing.is_some()
    }

    /// Adds revocations read from the metadata store; `seq` is the highest sequence seen.
    pub fn add_revocations(&self, seq: i64, ids: impl IntoIterator<Item = (String, Option<i64>)>) {
        let mut revoked = self.revoked.write();
        revoked.extend(ids);
        let now = now_secs();
        // An expired token is refused for its expiry anyway.
        revoked.retain(|_, exp| exp.is_none_or(|e| e.saturating_add(self.skew) >= now));
        self.revoked_seq.fetch_max(seq, Ordering::SeqCst);
    }

    /// Highest revocation sequence applied so far.
    pub fn revocation_seq(&self) -> i64 {
        self.revoked_seq.load(Ordering::SeqCst)
    }

    /// Records one revocation made by this broker at once (other brokers see it at their next
    /// poll).
    pub fn revoke_local(&self, id: &str, expires_at: Option<i64>) {
        self.revoked.write().insert(id.to_string(), expires_at);
    }
}

/// Encodes `claims` with `key`.
pub fn encode(
    alg: Algorithm,
    key: &jsonwebtoken::EncodingKey,
    claims: &Map<String, Value>,
) -> Result<String, AuthError> {
    let header = Header::new(alg);
    jsonwebtoken::encode(&header, claims, key).map_err(|e| AuthError::Internal(format!("signing a token: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use crate::keys::{encoding_key, generate_key_pair};
    use jsonwebtoken::EncodingKey;
    use serde_json::json;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn hs_config() -> AuthConfig {
        AuthConfig {
            enabled: true,
            token_secret_key: Secret::new(SECRET),
            superuser_roles: vec!["root".into()],
            ..AuthConfig::default()
        }
    }

    fn hs(claims: Value) -> String {
        let Value::Object(m) = claims else { panic!("object") };
        encode(Algorithm::HS256, &EncodingKey::from_secret(SECRET.as_bytes()), &m).unwrap()
    }

    fn auth(c: &AuthConfig) -> Authenticator {
        Authenticator::new(c).unwrap()
    }

    #[test]
    fn a_certificate_role_is_a_superuser_only_when_configured_so() {
        let a = auth(&hs_config());
        let root = a.principal_of("root");
        assert!(root.superuser);
        assert_eq!(root.roles, vec!["root".to_string()]);
        let app = a.principal_of("orders-app");
        assert!(!app.superuser);
        assert_eq!((app.expires_at, app.token_id.as_deref()), (None, None), "nothing to expire or revoke");
        assert!(!a.is_revoked(&app));
    }

    #[test]
    fn hs256_token_gives_role_and_superuser() {
        let a = auth(&hs_config());
        let p = a.authenticate(&hs(json!({"sub": "alice"}))).unwrap();
        assert_eq!((p.roles.clone(), p.superuser), (vec!["alice".to_string()], false));
        assert!(a.authenticate(&hs(json!({"sub": "root"}))).unwrap().superuser);
    }

    #[test]
    fn array_claim_gives_several_roles() {
        let a = auth(&AuthConfig { token_auth_claim: "roles".into(), ..hs_config() });
        let p = a.authenticate(&hs(json!({"sub": "x", "roles": ["a", "root"]}))).unwrap();
        assert_eq!(p.roles, vec!["a", "root"]);
        assert!(p.superuser);
        assert!(matches!(a.authenticate(&hs(json!({"sub": "x"}))), Err(AuthError::MissingRole(c)) if c == "roles"));
    }

    #[test]
    fn exp_and_nbf_are_checked_with_skew() {
        let now = now_secs();
        let a = auth(&hs_config());
        assert!(matches!(a.authenticate(&hs(json!({"sub": "a", "exp": now - 10}))), Err(AuthError::Expired)));
        assert!(matches!(a.authenticate(&hs(json!({"sub": "a", "nbf": now + 100}))), Err(AuthError::NotYetValid)));
        assert!(a.authenticate(&hs(json!({"sub": "a", "exp": now + 100, "nbf": now - 1}))).is_ok());
        let lenient = auth(&AuthConfig { allowed_clock_skew_secs: 60, ..hs_config() });
        assert!(lenient.authenticate(&hs(json!({"sub": "a", "exp": now - 10}))).is_ok());
        assert!(lenient.authenticate(&hs(json!({"sub": "a", "nbf": now + 10}))).is_ok());
    }

    #[test]
    fn cached_token_still_expires() {
        let a = auth(&hs_config());
        let t = hs(json!({"sub": "a", "exp": now_secs() + 1}));
        a.authenticate(&t).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2100));
        assert!(matches!(a.authenticate(&t), Err(AuthError::Expired)));
    }

    #[test]
    fn audience_is_required_when_configured() {
        let a = auth(&AuthConfig { token_audience: Some("magnetar".into()), ..hs_config() });
        assert!(a.authenticate(&hs(json!({"sub": "a", "aud": "magnetar"}))).is_ok());
        assert!(a.authenticate(&hs(json!({"sub": "a", "aud": ["x", "magnetar"]}))).is_ok());
        assert!(matches!(a.authenticate(&hs(json!({"sub": "a", "aud": "other"}))), Err(AuthError::WrongAudience)));
        assert!(matches!(a.authenticate(&hs(json!({"sub": "a"}))), Err(AuthError::WrongAudience)));
        let custom = auth(&AuthConfig {
            token_audience: Some("m".into()),
            token_audience_claim: "audience".into(),
            ..hs_config()
        });
        assert!(custom.authenticate(&hs(json!({"sub": "a", "audience": "m"}))).is_ok());
    }

    #[test]
    fn bad_tokens_are_refused_without_echoing_them() {
        let a = auth(&hs_config());
        let other = EncodingKey::from_secret(b"another-secret-another-secret-xx");
        let forged = encode(Algorithm::HS256, &other, json!({"sub": "root"}).as_object().unwrap()).unwrap();
        let err = a.authenticate(&forged).unwrap_err();
        assert!(matches!(err, AuthError::InvalidSignature));
        assert!(!err.to_string().contains(&forged));
        for junk in ["", "abc", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30"] {
            let err = a.authenticate(junk).unwrap_err();
            assert!(err.is_unauthenticated(), "{junk}: {err}");
        }
    }

    #[test]
    fn revoked_token_is_refused_even_when_cached() {
        let a = auth(&hs_config());
        let t = hs(json!({"sub": "a", "jti": "t-1"}));
        a.authenticate(&t).unwrap();
        a.add_revocations(7, [("t-1".to_string(), None)]);
        assert!(matches!(a.authenticate(&t), Err(AuthError::Revoked)));
        assert_eq!(a.revocation_seq(), 7);
        assert!(a.authenticate(&hs(json!({"sub": "a", "jti": "t-2"}))).is_ok());
    }

    #[test]
    fn cache_is_bounded() {
        let a = auth(&AuthConfig { token_cache_max_entries: 3, ..hs_config() });
        for i in 0..10 {
            a.authenticate(&hs(json!({"sub": format!("r{i}")}))).unwrap();
            assert!(a.cache.read().len() <= 3);
        }
    }

    fn pair_config(alg: &str) -> (AuthConfig, EncodingKey) {
        let algorithm = crate::keys::parse_algorithm(alg).unwrap();
        let (private, public) = generate_key_pair(algorithm).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("public.pem");
        std::fs::write(&path, &public).unwrap();
        let c = AuthConfig {
            enabled: true,
            // The file form, read once at start.
            token_public_key: Secret::new(format!("file://{}", path.display())),
            token_public_alg: alg.into(),
            ..AuthConfig::default()
        };
        let key = encoding_key(algorithm, private.into_bytes(), "test").unwrap();
        let a = Authenticator::new(&c).unwrap();
        drop(a);
        // Keep the key inline for the returned config: the temp dir goes away.
        (AuthConfig { token_public_key: Secret::new(public), ..c }, key)
    }

    #[test]
    fn rs256_and_es256_public_keys_verify() {
        for alg in ["RS256", "ES256"] {
            let (c, key) = pair_config(alg);
            let a = auth(&c);
            let algorithm = crate::keys::parse_algorithm(alg).unwrap();
            let t = encode(algorithm, &key, json!({"sub": "svc"}).as_object().unwrap()).unwrap();
            assert_eq!(a.authenticate(&t).unwrap().roles, vec!["svc"], "{alg}");
            // An HS256 token must not be accepted by a public-key broker (algorithm confusion).
            assert!(matches!(a.authenticate(&hs(json!({"sub": "svc"}))), Err(AuthError::WrongAlgorithm(_))), "{alg}");
        }
    }

    #[test]
    fn invalid_keys_are_config_errors_naming_the_setting() {
        let c = AuthConfig { enabled: true, token_public_key: Secret::new("not a key"), ..AuthConfig::default() };
        let err = Authenticator::new(&c).unwrap_err();
        assert!(err.to_string().contains("auth.token_public_key"), "{err}");
        let short = AuthConfig { token_secret_key: Secret::new("short"), ..hs_config() };
        assert!(Authenticator::new(&short).is_err());
    }

    #[test]
    fn signing_uses_the_role_claim() {
        let a = auth(&AuthConfig { token_auth_claim: "role".into(), ..hs_config() });
        let mut claims = Map::new();
        claims.insert("jti".into(), json!("abc"));
        let t = a.sign("app@acme", claims).unwrap();
        let p = a.authenticate(&t).unwrap();
        assert_eq!((p.roles[0].as_str(), p.token_id.as_deref()), ("app@acme", Some("abc")));
    }
}
