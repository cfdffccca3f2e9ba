//! Namespace bundles, as far as Magnetar has them: one per namespace, the whole hash range
//! `0x00000000_0xffffffff`. Pulsar's bundle operations act on that bundle's topics, which are
//! the namespace's; a bundle that is not the full range is unknown (`NotFound`).

use crate::error::Entity;
use crate::topics::Topics;
use crate::{BrokerError, Result, Subscriptions};
use magnetar_core::{NamespaceName, SubscriptionName, TopicName};

/// The one bundle of every namespace.
pub const FULL_BUNDLE: &str = "0x00000000_0xffffffff";

/// `NotFound` unless `bundle` names the namespace's one bundle.
pub fn check_bundle(ns: &NamespaceName, bundle: &str) -> Result<()> {
    if bundle == FULL_BUNDLE {
        Ok(())
    } else {
        Err(BrokerError::NotFound(Entity::Message(format!(
            "bundle {bundle} of namespace {ns} (its one bundle is {FULL_BUNDLE})"
        ))))
    }
}

impl Topics {
    /// Pulsar's `topicHashPositions`: the position of each topic in the bundle's hash range
    /// (`magnetar_core::hash::bundle_hash`), keyed by full name. `names` are full names or names
    /// local to `ns`; none: every topic of the namespace, partitions one by one. Names of
    /// another namespace are left out, as Pulsar leaves out topics outside the bundle.
    pub async fn topic_hash_positions(
        &self,
        ns: &NamespaceName,
        bundle: &str,
        names: &[String],
    ) -> Result<std::collections::BTreeMap<String, u64>> {
        check_bundle(ns, bundle)?;
        let full: Vec<String> = if names.is_empty() {
            self.list(ns).await?
        } else {
            if self.ctx().metadata.get_namespace(ns).await?.is_none() {
                return Err(BrokerError::NotFound(Entity::Namespace(ns.clone())));
            }
            let mut out = Vec::with_capacity(names.len());
            for n in names {
                let name: TopicName = if n.contains("://") {
                    n.parse().map_err(BrokerError::InvalidName)?
                } else {
                    format!("persistent://{ns}/{n}").parse().map_err(BrokerError::InvalidName)?
                };
                if name.namespace() == ns {
                    out.push(name.to_string());
                }
            }
            out
        };
        Ok(full.into_iter().map(|t| (t.clone(), u64::from(magnetar_core::hash::bundle_hash(&t)))).collect())
    }

    /// Unloads every loaded topic of the namespace (Pulsar's namespace unload): consumers are
    /// detached and reconnect, topics load again on their next use. `NotFound` for a missing
    /// namespace.
    pub async fn unload_namespace(&self, ns: &NamespaceName) -> Result<usize> {
        if self.ctx().metadata.get_namespace(ns).await?.is_none() {
            return Err(BrokerError::NotFound(Entity::Namespace(ns.clone())));
        }
        let loaded: Vec<TopicName> = self
            .registry()
            .loaded_topics()
            .iter()
            .filter(|t| t.record.name.namespace() == ns)
            .map(|t| t.record.name.clone())
            .collect();
        for name in &loaded {
            self.registry().unload(name).await;
        }
        Ok(loaded.len())
    }
}

impl Subscriptions {
    /// Clears the backlog of every subscription (or of `sub` only) on every topic of the
    /// namespace.
    pub async fn clear_namespace_backlog(
        &self,
        topics: &Topics,
        ns: &NamespaceName,
        sub: Option<&SubscriptionName>,
    ) -> Result<()> {
        for topic in topics.list(ns).await? {
            let name: TopicName = topic.parse()?;
            for existing in self.list(&name).await? {
                if sub.is_none_or(|s| s.as_str() == existing) {
                    self.skip_all(&name, &SubscriptionName::new(existing)?).await?;
                }
            }
        }
        Ok(())
    }

    /// Deletes subscription `sub` from every topic of the namespace that has it.
    pub async fn unsubscribe_namespace(
        &self,
        topics: &Topics,
        ns: &NamespaceName,
        sub: &SubscriptionName,
    ) -> Result<()> {
        for topic in topics.list(ns).await? {
            let name: TopicName = topic.parse()?;
            if self.list(&name).await?.iter().any(|n| n == sub.as_str()) {
                self.delete(&name, sub, false).await?;
            }
        }
        Ok(())
    }
}
