//! Membership of the broker tier: this broker's row in the metadata store, with a lease on the
//! store's clock renewed every `renew_interval_ms`, and the self-fence that keeps it from
//! acknowledging once its lease may have lapsed.
//!
//! The fence is computed on this broker's monotonic clock from the moment a renewal was *sent*:
//! the store sets the expiry from its own clock when the request arrives, which is later, so
//! `sent + lease - margin` is reached here before the store can consider the lease expired and
//! let another broker take over. The margin covers the two clocks running at slightly different
//! rates. A broker whose renewals fail keeps its last deadline and fences itself when it passes;
//! a renewal answered "lapsed" fences it at once, for good (a new process must join again).

use crate::error::Result;
use magnetar_metadata::{BrokerLoad, BrokerRecord, BrokerRegistration, BrokerState, MetadataStore};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// `[broker.membership]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MembershipConfig {
    /// How long a lease lasts without renewal (milliseconds).
    pub lease_ms: u64,
    /// How often the lease is renewed (milliseconds); a few renewals fit in one lease.
    pub renew_interval_ms: u64,
    /// How long before its lease ends, by its own clock, a broker stops acknowledging.
    pub fence_margin_ms: u64,
}

impl Default for MembershipConfig {
    fn default() -> Self {
        MembershipConfig { lease_ms: 10_000, renew_interval_ms: 2_000, fence_margin_ms: 1_000 }
    }
}

impl MembershipConfig {
    /// The time between a renewal's sending and the self-fence.
    fn fence_after(&self) -> Duration {
        Duration::from_millis(self.lease_ms.saturating_sub(self.fence_margin_ms))
    }

    pub fn renew_interval(&self) -> Duration {
        Duration::from_millis(self.renew_interval_ms.max(1))
    }

    /// A configuration in which renewals cannot keep a lease alive is refused at start.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.fence_margin_ms >= self.lease_ms {
            return Err(format!(
                "broker.membership.fence_margin_ms ({}) must be less than lease_ms ({})",
                self.fence_margin_ms, self.lease_ms
            ));
        }
        if self.renew_interval_ms >= self.lease_ms - self.fence_margin_ms {
            return Err(format!(
                "broker.membership.renew_interval_ms ({}) must be less than lease_ms - fence_margin_ms ({})",
                self.renew_interval_ms,
                self.lease_ms - self.fence_margin_ms
            ));
        }
        Ok(())
    }
}

pub struct Membership {
    metadata: Arc<dyn MetadataStore>,
    registration: BrokerRegistration,
    config: MembershipConfig,
    origin: Instant,
    /// Nanoseconds after `origin` from which this broker must not acknowledge.
    fence_at_ns: AtomicU64,
    /// The store answered that the lease lapsed or was taken: fenced for good.
    lost: AtomicBool,
    draining: AtomicBool,
    /// Joined without knowing a previous process (`replaces` was `None`): a first start, or a
    /// data directory that lost what the previous process kept (a replaced volume).
    blank: bool,
}

impl Membership {
    /// Registers this broker (fails when another live process holds the same broker id).
    /// `replaces` is the session of this broker's previous process when it is known to be dead
    /// (its data directory, which it held locked, is now ours): its row is taken over at once
    /// instead of waiting out its lease.
    pub async fn join(
        metadata: Arc<dyn MetadataStore>,
        registration: BrokerRegistration,
        config: MembershipConfig,
        replaces: Option<&str>,
    ) -> Result<Arc<Membership>> {
        let origin = Instant::now();
        metadata.register_broker(&registration, config.lease_ms, replaces).await?;
        let membership = Membership {
            metadata,
            registration,
            origin,
            fence_at_ns: AtomicU64::new(0),
            lost: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            blank: replaces.is_none(),
            config,
        };
        membership.extend_from(origin);
        Ok(Arc::new(membership))
    }

    pub fn registration(&self) -> &BrokerRegistration {
        &self.registration
    }

    /// Whether this process started without the session of a previous one in its data
    /// directory: what a previous process of this broker kept on disk is not here.
    pub fn started_blank(&self) -> bool {
        self.blank
    }

    fn extend_from(&self, sent: Instant) {
        let at = (sent + self.config.fence_after()).saturating_duration_since(self.origin).as_nanos() as u64;
        self.fence_at_ns.fetch_max(at, Ordering::AcqRel);
    }

    /// Whether this broker may acknowledge now: its lease is certainly unexpired.
    pub fn may_acknowledge(&self) -> bool {
        !self.lost.load(Ordering::Acquire)
            && (Instant::now().saturating_duration_since(self.origin).as_nanos() as u64)
                < self.fence_at_ns.load(Ordering::Acquire)
    }

    /// Time left before the self-fence (zero when fenced).
    pub fn time_to_fence(&self) -> Duration {
        if self.lost.load(Ordering::Acquire) {
            return Duration::ZERO;
        }
        let at = self.origin + Duration::from_nanos(self.fence_at_ns.load(Ordering::Acquire));
        at.saturating_duration_since(Instant::now())
    }

    /// From now on the broker reports itself draining (shutdown has begun).
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// One renewal with the broker's current load. Returns whether the lease is held.
    pub async fn renew(&self, load: &BrokerLoad) -> bool {
        if self.lost.load(Ordering::Acquire) {
            return false;
        }
        let state = if self.draining.load(Ordering::Acquire) { BrokerState::Draining } else { BrokerState::Active };
        let sent = Instant::now();
        let r = &self.registration;
        match self.metadata.renew_broker_lease(&r.broker_id, &r.session_id, self.config.lease_ms, state, load).await {
            Ok(Some(_)) => {
                self.extend_from(sent);
                true
            }
            Ok(None) => {
                self.lost.store(true, Ordering::Release);
                tracing::error!(
                    broker = %r.broker_id,
                    "the broker's lease lapsed or was taken over: it acknowledges nothing more (restart it to rejoin)"
                );
                false
            }
            Err(e) => {
                let left = self.time_to_fence();
                tracing::warn!(error = %e, fence_in_ms = left.as_millis() as u64, "lease renewal failed");
                !left.is_zero()
            }
        }
    }

    /// Every broker of this broker's cluster as the store sees them now.
    pub async fn brokers(&self) -> Result<Vec<BrokerRecord>> {
        Ok(self.metadata.list_brokers(&self.registration.cluster).await?)
    }

    /// Leaves the tier (end of a graceful shutdown); a failure only delays the others seeing it
    /// gone until the lease expires.
    pub async fn leave(&self) {
        let r = &self.registration;
        if let Err(e) = self.metadata.deregister_broker(&r.broker_id, &r.session_id).await {
            tracing::warn!(error = %e, "could not deregister the broker; its lease will expire instead");
        }
    }
}

/// A random session id: a restarted process is a new session of the same broker.
pub fn new_session_id() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests;
