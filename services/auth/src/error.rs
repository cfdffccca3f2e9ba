/// Conditions of authentication and authorization. Messages never contain a token or a key.
/// `is_unauthenticated` (401), `Forbidden` (403), `Unavailable` (503) and the rest are mapped
/// to HTTP in the API crate's error module.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("authentication required: no token was sent")]
    MissingToken,
    #[error(
        "authentication failed: the tls method needs a client certificate the broker trusts, and none was presented"
    )]
    MissingCertificate,
    #[error("authentication failed: malformed token")]
    Malformed,
    #[error("authentication failed: invalid token signature")]
    InvalidSignature,
    #[error("authentication failed: token algorithm {0} is not accepted")]
    WrongAlgorithm(String),
    #[error("authentication failed: token has expired")]
    Expired,
    #[error("authentication failed: token is not valid yet")]
    NotYetValid,
    #[error("authentication failed: token audience does not match")]
    WrongAudience,
    #[error("authentication failed: token has no role claim {0}")]
    MissingRole(String),
    #[error("authentication failed: token has been revoked")]
    Revoked,
    #[error("authentication failed: token has no {0} claim")]
    MissingClaim(&'static str),
    /// A token of an allowed OpenID issuer signed with a key the issuer does not publish.
    #[error("authentication failed: token issuer {0} publishes no key that verifies it")]
    UnknownSigningKey(String),
    /// Authenticated, but the role may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// A request that cannot be honoured as sent (bad action name, bad expiry...).
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    /// The broker cannot mint tokens (no private or secret key configured), or similar.
    #[error("{0}")]
    NotSupported(String),
    #[error("invalid auth configuration: {0}")]
    Config(String),
    #[error("authorization data unavailable: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl AuthError {
    /// 401: the caller is not (or no longer) authenticated.
    pub fn is_unauthenticated(&self) -> bool {
        matches!(
            self,
            AuthError::MissingToken
                | AuthError::MissingCertificate
                | AuthError::Malformed
                | AuthError::InvalidSignature
                | AuthError::WrongAlgorithm(_)
                | AuthError::Expired
                | AuthError::NotYetValid
                | AuthError::WrongAudience
                | AuthError::MissingRole(_)
                | AuthError::Revoked
                | AuthError::MissingClaim(_)
                | AuthError::UnknownSigningKey(_)
        )
    }
}

impl From<magnetar_metadata::MetadataError> for AuthError {
    fn from(e: magnetar_metadata::MetadataError) -> Self {
        use magnetar_metadata::MetadataError as M;
        match e {
            M::NotFound(what) => AuthError::NotFound(format!("{what} not found")),
            M::AlreadyExists(what) => AuthError::AlreadyExists(format!("{what} already exists")),
            M::Unavailable(m) => AuthError::Unavailable(m),
            other => AuthError::Internal(other.to_string()),
        }
    }
}
