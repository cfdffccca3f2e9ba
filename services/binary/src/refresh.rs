//! The credential of one connection and Pulsar's refresh of expiring tokens: some time before
//! the token expires (`binary.auth_refresh_secs`) the broker sends AUTH_CHALLENGE (data
//! `PulsarAuthRefresh`) to a client that announced `supports_auth_refresh`; the client answers
//! AUTH_RESPONSE with a token that must be valid and carry the same roles. A connection whose
//! token expires without a refresh, or whose token is revoked, is closed.

use magnetar_auth::{Auth, Principal};
use magnetar_protocol::proto::{AuthData, CommandAuthChallenge, CommandAuthResponse};
use std::sync::Arc;

/// What the periodic check decided.
pub enum Check {
    Valid,
    /// Send this challenge (at most one unanswered at a time).
    Challenge(CommandAuthChallenge),
    Close(&'static str),
}

pub struct Credential {
    pub principal: Arc<Principal>,
    /// The client announced `supports_auth_refresh` in CONNECT.
    refreshable: bool,
    /// A challenge went out and no answer came yet.
    challenged: bool,
    /// Seconds before expiry at which the client is challenged.
    lead_secs: i64,
}

impl Credential {
    pub fn new(principal: Arc<Principal>, refreshable: bool, lead_secs: u64) -> Self {
        Credential { principal, refreshable, challenged: false, lead_secs: lead_secs.min(i64::MAX as u64) as i64 }
    }

    /// Run every second.
    pub fn check(&mut self, auth: &Auth, protocol_version: i32) -> Check {
        if auth.is_revoked(&self.principal) {
            return Check::Close("token revoked");
        }
        let Some(exp) = self.principal.expires_at else { return Check::Valid };
        let now = magnetar_core::now_millis() / 1000;
        if now > exp {
            return Check::Close(if self.challenged {
                "token expired: the client did not answer the refresh challenge with a fresh token"
            } else {
                "token expired"
            });
        }
        if !self.refreshable || self.challenged || exp - now > self.lead_secs {
            return Check::Valid;
        }
        self.challenged = true;
        Check::Challenge(CommandAuthChallenge {
            server_version: Some(format!("Magnetar {}", env!("CARGO_PKG_VERSION"))),
            challenge: Some(AuthData {
                auth_method_name: Some(crate::connection::TOKEN_METHOD.into()),
                auth_data: Some(b"PulsarAuthRefresh".to_vec()),
            }),
            protocol_version: Some(protocol_version),
        })
    }

    /// An AUTH_RESPONSE: the new token replaces the old one when it is valid and carries the same
    /// roles (the connection's producers and consumers were authorized for those); `Err` closes
    /// the connection with the reason. A fresh token that still expires within the lead is
    /// challenged again at the next check.
    pub async fn respond(&mut self, auth: &Auth, response: &CommandAuthResponse) -> Result<(), String> {
        let data = response.response.as_ref().and_then(|r| r.auth_data.as_deref());
        let token = data.and_then(|d| std::str::from_utf8(d).ok()).map(str::trim);
        let fresh = auth.authenticate(token).await.map_err(|e| format!("auth refresh refused: {e}"))?;
        if fresh.roles != self.principal.roles {
            return Err(format!("auth refresh with other roles ({:?} for {:?})", fresh.roles, self.principal.roles));
        }
        self.principal = fresh;
        self.challenged = false;
        Ok(())
    }
}
