//! Who asks. Every data-plane operation carries the caller, and the broker authorizes each write
//! it makes on the caller's behalf — publishes, topic auto-creation, subscriptions created by
//! subscribing or pulling, reader cursors, dead-letter publishes — itself, with the same
//! `Authorizer` as the API, so no surface can forget a check.

use magnetar_auth::Principal;
use std::sync::Arc;

#[derive(Clone)]
pub struct Caller {
    principal: Arc<Principal>,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("role", &self.principal.role())
            .field("superuser", &self.principal.superuser)
            .finish()
    }
}

impl Caller {
    pub fn new(principal: Arc<Principal>) -> Caller {
        Caller { principal }
    }

    /// The broker itself, and every caller while authentication is off.
    pub fn superuser() -> Caller {
        Caller { principal: Arc::new(Principal::anonymous_superuser()) }
    }

    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    pub fn role(&self) -> Option<&str> {
        self.principal.role()
    }
}
