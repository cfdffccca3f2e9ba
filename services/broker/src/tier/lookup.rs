//! What Pulsar's binary protocol needs of the tier: the owner a LOOKUP names, and whether a URL
//! a client asks to be proxied to belongs to a live member (a broker proxies a binary
//! connection only to a URL a live member registered, never to an address a client made up).

use super::{Route, Tier, key};
use crate::BrokerError;
use crate::error::Result;
use magnetar_core::TopicName;
use magnetar_metadata::{BrokerRecord, BundleState};
use std::time::Duration;

impl Tier {
    /// The broker a lookup of `name` names: `None` for this one, else the live broker owning
    /// its bundle. A bundle nobody owns yet is assigned first, and one being handed over (held
    /// here, or `releasing` on its owner) is waited for until its next owner is known, both
    /// bounded by `assignment_wait_ms`, after which the answer is `NotOwner` (retry).
    pub async fn lookup_owner(&self, name: &TopicName) -> Result<Option<BrokerRecord>> {
        if !self.enabled() {
            return Ok(None);
        }
        let deadline = tokio::time::Instant::now() + Duration::from_millis(self.config.assignment_wait_ms);
        let mut route = self.route(name, false).await?;
        loop {
            let Route::Forward { broker, .. } = route else { return Ok(None) };
            let range = self.bundle_of(name).await?;
            let releasing =
                self.cached(&key(name.namespace(), &range)).is_some_and(|r| r.state == BundleState::Releasing);
            if !releasing && let Some(record) = self.live_broker(&broker).await? {
                return Ok(Some(record));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(BrokerError::NotOwner(format!(
                    "bundle {}/{range} of {name} is moving from broker {broker}; retry",
                    name.namespace()
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            route = self.reroute(name, false).await?;
        }
    }

    /// The live member of the tier whose registered binary URL (internal or advertised) is
    /// `url` (`pulsar://host:port`, or `host:port` as clients name it in CONNECT), re-reading
    /// the membership once when none is known by it.
    pub async fn binary_member(&self, url: &str) -> Result<Option<BrokerRecord>> {
        let wanted = binary_host_port(url);
        if wanted.is_empty() {
            return Ok(None);
        }
        let named = |b: &BrokerRecord| {
            let r = &b.registration;
            b.alive
                && [&r.binary_internal_url, &r.binary_advertised_url]
                    .iter()
                    .any(|u| !u.is_empty() && binary_host_port(u) == wanted)
        };
        let known = self.brokers.read().unwrap_or_else(|e| e.into_inner()).values().find(|b| named(b)).cloned();
        if known.is_some() {
            return Ok(known);
        }
        Ok(self.refresh_brokers().await?.into_values().find(|b| named(b)))
    }

    /// This broker's own registration (its binary URLs among them).
    pub fn registration(&self) -> &magnetar_metadata::BrokerRegistration {
        self.membership.registration()
    }
}

/// `host:port` of a `pulsar://host:port` URL (the form clients name a broker in CONNECT's
/// `proxy_to_broker_url`); a `host:port` as it is.
pub fn binary_host_port(url: &str) -> &str {
    let url = url.trim();
    let url = url.strip_prefix("pulsar://").or_else(|| url.strip_prefix("pulsar+ssl://")).unwrap_or(url);
    url.trim_end_matches('/')
}

#[cfg(test)]
mod tests {
    use super::binary_host_port;

    #[test]
    fn binary_urls_compare_by_host_and_port() {
        assert_eq!(binary_host_port("pulsar://b1.internal:6650"), "b1.internal:6650");
        assert_eq!(binary_host_port("pulsar://b1.internal:6650/"), "b1.internal:6650");
        assert_eq!(binary_host_port("pulsar+ssl://b1:6651"), "b1:6651");
        assert_eq!(binary_host_port("127.0.0.1:6650"), "127.0.0.1:6650");
        assert_eq!(binary_host_port(""), "");
    }
}
