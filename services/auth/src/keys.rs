//! Keys: the verification key and accepted algorithms from configuration, the optional signing
//! key for service-account tokens, and key generation for `magnetar tokens`.

use crate::AuthError;
use crate::config::{AuthConfig, read_key_value, read_secret_key};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

/// How tokens are verified (and, when a private or secret key is known, signed).
pub struct Keys {
    pub(crate) decoding: DecodingKey,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) signing: Option<(EncodingKey, Algorithm)>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").field("algorithms", &self.algorithms).field("can_sign", &self.signing.is_some()).finish()
    }
}

pub fn parse_algorithm(name: &str) -> Result<Algorithm, AuthError> {
    match name.to_ascii_uppercase().as_str() {
        "HS256" => Ok(Algorithm::HS256),
        "HS384" => Ok(Algorithm::HS384),
        "HS512" => Ok(Algorithm::HS512),
        "RS256" => Ok(Algorithm::RS256),
        "RS384" => Ok(Algorithm::RS384),
        "RS512" => Ok(Algorithm::RS512),
        "ES256" => Ok(Algorithm::ES256),
        "ES384" => Ok(Algorithm::ES384),
        other => Err(AuthError::Config(format!("unsupported token algorithm {other} (HS256, RS256 or ES256)"))),
    }
}

/// Key material in PEM; DER (as Pulsar's `tokens create-key-pair` writes) is wrapped in PEM.
fn to_pem(bytes: Vec<u8>, label: &str) -> Vec<u8> {
    if bytes.windows(10).any(|w| w == b"-----BEGIN") {
        return bytes;
    }
    let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out.into_bytes()
}

/// A verification key for `alg` from PEM/DER bytes.
pub fn decoding_key(alg: Algorithm, bytes: Vec<u8>, what: &str) -> Result<DecodingKey, AuthError> {
    let pem = to_pem(bytes, "PUBLIC KEY");
    let key = match alg {
        Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 => DecodingKey::from_rsa_pem(&pem),
        Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(&pem),
        _ => return Err(AuthError::Config(format!("{what}: {alg:?} is not a public-key algorithm"))),
    };
    key.map_err(|_| AuthError::Config(format!("{what} is not a valid {alg:?} public key")))
}

/// A signing key for `alg` from PEM/DER bytes.
pub fn encoding_key(alg: Algorithm, bytes: Vec<u8>, what: &str) -> Result<EncodingKey, AuthError> {
    let pem = to_pem(bytes, "PRIVATE KEY");
    let key = match alg {
        Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 => EncodingKey::from_rsa_pem(&pem),
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(&pem),
        _ => return Err(AuthError::Config(format!("{what}: {alg:?} is not a public-key algorithm"))),
    };
    key.map_err(|_| AuthError::Config(format!("{what} is not a valid {alg:?} private key")))
}

impl Keys {
    pub fn from_config(c: &AuthConfig) -> Result<Keys, AuthError> {
        if !c.token_secret_key.is_empty() {
            let secret = read_secret_key(c.token_secret_key.expose(), "auth.token_secret_key")?;
            if secret.len() < 32 {
                return Err(AuthError::Config("auth.token_secret_key must be at least 32 bytes".into()));
            }
            return Ok(Keys {
                decoding: DecodingKey::from_secret(&secret),
                algorithms: vec![Algorithm::HS256, Algorithm::HS384, Algorithm::HS512],
                signing: Some((EncodingKey::from_secret(&secret), Algorithm::HS256)),
            });
        }
        if c.token_public_key.is_empty() {
            return Err(AuthError::Config("no auth.token_secret_key or auth.token_public_key".into()));
        }
        let alg = parse_algorithm(&c.token_public_alg)?;
        let public = read_key_value(c.token_public_key.expose(), "auth.token_public_key")?;
        let decoding = decoding_key(alg, public, "auth.token_public_key")?;
        let signing = if c.token_private_key.is_empty() {
            None
        } else {
            let private = read_key_value(c.token_private_key.expose(), "auth.token_private_key")?;
            Some((encoding_key(alg, private, "auth.token_private_key")?, alg))
        };
        Ok(Keys { decoding, algorithms: vec![alg], signing })
    }
}

/// A fresh random HS256 secret (32 bytes).
pub fn generate_secret_key() -> Vec<u8> {
    use rand::RngCore;
    let mut key = vec![0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    key
}

/// A fresh key pair as `(private PKCS#8 PEM, public SPKI PEM)`.
pub fn generate_key_pair(alg: Algorithm) -> Result<(String, String), AuthError> {
    match alg {
        Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 => {
            use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
            let private = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)
                .map_err(|e| AuthError::Internal(format!("generating an RSA key: {e}")))?;
            let public = rsa::RsaPublicKey::from(&private);
            let private_pem = private
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|e| AuthError::Internal(format!("encoding an RSA key: {e}")))?;
            let public_pem = public
                .to_public_key_pem(LineEnding::LF)
                .map_err(|e| AuthError::Internal(format!("encoding an RSA key: {e}")))?;
            Ok((private_pem.to_string(), public_pem))
        }
        Algorithm::ES256 => {
            use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
            let private = p256::SecretKey::random(&mut rand::rngs::OsRng);
            let private_pem = private
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|e| AuthError::Internal(format!("encoding an EC key: {e}")))?;
            let public_pem = private
                .public_key()
                .to_public_key_pem(LineEnding::LF)
                .map_err(|e| AuthError::Internal(format!("encoding an EC key: {e}")))?;
            Ok((private_pem.to_string(), public_pem))
        }
        other => Err(AuthError::Config(format!("cannot generate a key pair for {other:?} (RS256 or ES256)"))),
    }
}
