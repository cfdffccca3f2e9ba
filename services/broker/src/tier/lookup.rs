//! What Pulsar's binary protocol needs of the tier: the owner a LOOKUP names, and whether a URL
//! a client asks to be proxied to belongs to a live member (a broker proxies a binary
//! connection only to a URL a live member registered, never to an address a client made up).

use super::{Route, Tier, key};
use crate::BrokerError;
use crate::error::Result;
use magnetar_core::TopicName;
use magnetar_metadata::{BrokerRecord, BrokerRegistration, BundleState};
use std::time::Duration;

/// Where a client closed by a handover is told to reconnect (PIP-307's
/// `assignedBrokerServiceUrl` and `assignedBrokerServiceUrlTls`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redirect {
    pub url: Option<String>,
    pub url_tls: Option<String>,
}

impl Tier {
    /// The next owner's client URLs, for a binary producer or consumer being closed because its
    /// bundle went to `to` (counted when it names one): only when lookups name owners' own
    /// addresses (`lookup_owner_address`, clients reach every broker). Otherwise clients reach
    /// brokers through their service URL and an owner's address may be unreachable for them:
    /// nothing is named, and the client looks the topic up again (one round trip more).
    pub fn redirect_on_close(&self, to: &BrokerRegistration) -> Redirect {
        if !self.config.lookup_owner_address {
            return Redirect::default();
        }
        let some = |url: &str| Some(url.to_string()).filter(|u| !u.is_empty());
        let redirect = Redirect { url: some(&to.binary_advertised_url), url_tls: some(&to.binary_advertised_tls_url) };
        if redirect != Redirect::default() {
            self.metrics.handover_redirects.inc();
        }
        redirect
    }

    /// The broker a lookup of `name` names: `None` for this one, else the live broker owning
    /// its bundle. A bundle nobody owns yet is assigned first, and one being handed over (held
    /// here, or `releasing` on its owner) is waited for until its next owner is known, both
    /// bounded by `assignment_wait_ms`, after which the answer is `NotOwner` (retry).
    pub async fn lookup_owner(&self, name: &TopicName) -> Result<Option<BrokerRecord>> {
        self.settled_owner(name, false).await
    }

    /// `lookup_owner` for a producer or consumer that connected to this broker: a cached row
    /// naming another owner is read again first. A client closed by a handover is sent to the
    /// next owner (PIP-307) before the bundle is assigned to it, and finds it `releasing` there.
    pub async fn session_owner(&self, name: &TopicName) -> Result<Option<BrokerRecord>> {
        self.settled_owner(name, true).await
    }

    async fn settled_owner(&self, name: &TopicName, recheck: bool) -> Result<Option<BrokerRecord>> {
        if !self.enabled() {
            return Ok(None);
        }
        let deadline = tokio::time::Instant::now() + Duration::from_millis(self.config.assignment_wait_ms);
        let mut route = self.route(name, false).await?;
        if recheck && matches!(route, Route::Forward { .. }) {
            route = self.reroute(name, false).await?;
        }
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
