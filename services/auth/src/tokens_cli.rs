//! Logic of `magnetar tokens` (in the spirit of Pulsar's `pulsar tokens`): key generation,
//! minting, showing and validating tokens. The binary only parses flags and prints.

use crate::AuthError;
use crate::config::{AuthConfig, Secret, read_key_value, read_secret_key};
use crate::keys::{encoding_key, parse_algorithm};
use crate::token::{Authenticator, Principal, encode, now_secs};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Map, Value};

pub use crate::keys::{generate_key_pair, generate_secret_key};

/// `30`, `30s`, `15m`, `12h`, `7d`, `1y` → seconds.
pub fn parse_duration_secs(s: &str) -> Result<u64, AuthError> {
    let s = s.trim();
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 =
        digits.parse().map_err(|_| AuthError::BadRequest(format!("invalid duration `{s}` (e.g. 3600, 1h, 7d)")))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "y" => 365 * 86_400,
        _ => return Err(AuthError::BadRequest(format!("invalid duration unit in `{s}` (s, m, h, d, w, y)"))),
    };
    n.checked_mul(mult).ok_or_else(|| AuthError::BadRequest(format!("duration `{s}` is too large")))
}

/// Where the signing key of `create` comes from.
pub enum SigningKey<'a> {
    /// HS256 secret, in any of Pulsar's key forms.
    Secret(&'a str),
    /// PEM/DER private key and its algorithm.
    Private(&'a str, &'a str),
}

fn signing_key(key: SigningKey<'_>) -> Result<(EncodingKey, Algorithm), AuthError> {
    match key {
        SigningKey::Secret(v) => Ok((EncodingKey::from_secret(&read_secret_key(v, "--secret-key")?), Algorithm::HS256)),
        SigningKey::Private(v, alg) => {
            let alg = parse_algorithm(alg)?;
            Ok((encoding_key(alg, read_key_value(v, "--private-key")?, "--private-key")?, alg))
        }
    }
}

/// Mints a token for `subject` in `claim` (usually `sub`), expiring after `expires_in_secs`
/// when given, with extra string claims.
pub fn create_token(
    key: SigningKey<'_>,
    claim: &str,
    subject: &str,
    expires_in_secs: Option<u64>,
    extra: &[(String, String)],
) -> Result<String, AuthError> {
    let (key, alg) = signing_key(key)?;
    let mut claims = Map::new();
    claims.insert(claim.to_string(), Value::String(subject.to_string()));
    if let Some(secs) = expires_in_secs {
        claims.insert("exp".into(), Value::from(now_secs() + i64::try_from(secs).unwrap_or(i64::MAX / 4)));
    }
    for (k, v) in extra {
        claims.insert(k.clone(), Value::String(v.clone()));
    }
    encode(alg, &key, &claims)
}

/// Header and claims of a token, without verifying it.
pub fn show_token(token: &str) -> Result<String, AuthError> {
    let token = token.trim().trim_start_matches("Bearer ").trim();
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(AuthError::Malformed);
    };
    let decode = |s: &str| -> Result<Value, AuthError> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).map_err(|_| AuthError::Malformed)?;
        serde_json::from_slice(&bytes).map_err(|_| AuthError::Malformed)
    };
    let header = decode(h)?;
    let claims = decode(c)?;
    Ok(format!(
        "{}\n{}",
        serde_json::to_string_pretty(&header).unwrap_or_default(),
        serde_json::to_string_pretty(&claims).unwrap_or_default()
    ))
}

/// Verifies a token as a broker with this key would (signature, `exp`, `nbf`, audience).
pub fn validate_token(
    token: &str,
    secret_key: Option<&str>,
    public_key: Option<&str>,
    public_alg: &str,
    claim: &str,
    audience: Option<&str>,
) -> Result<Principal, AuthError> {
    let config = AuthConfig {
        enabled: true,
        token_secret_key: Secret::new(secret_key.unwrap_or_default()),
        token_public_key: Secret::new(public_key.unwrap_or_default()),
        token_public_alg: public_alg.to_string(),
        token_auth_claim: claim.to_string(),
        token_audience: audience.map(String::from),
        ..AuthConfig::default()
    };
    Authenticator::new(&config)?.verify(token.trim().trim_start_matches("Bearer ").trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_secs("30").unwrap(), 30);
        assert_eq!(parse_duration_secs("15m").unwrap(), 900);
        assert_eq!(parse_duration_secs("2h").unwrap(), 7200);
        assert_eq!(parse_duration_secs("1d").unwrap(), 86_400);
        assert!(parse_duration_secs("1x").is_err());
        assert!(parse_duration_secs("h").is_err());
    }

    #[test]
    fn create_show_validate_round_trip() {
        let secret =
            format!("data:;base64,{}", base64::engine::general_purpose::STANDARD.encode(generate_secret_key()));
        let token = create_token(SigningKey::Secret(&secret), "sub", "admin", Some(60), &[]).unwrap();
        let shown = show_token(&token).unwrap();
        assert!(shown.contains("\"sub\": \"admin\"") && shown.contains("HS256"), "{shown}");
        let p = validate_token(&token, Some(&secret), None, "RS256", "sub", None).unwrap();
        assert_eq!(p.roles, vec!["admin"]);
        let other = format!("data:;base64,{}", base64::engine::general_purpose::STANDARD.encode(generate_secret_key()));
        assert!(matches!(
            validate_token(&token, Some(&other), None, "RS256", "sub", None),
            Err(AuthError::InvalidSignature)
        ));
    }
}
