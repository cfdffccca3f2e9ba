//! Namespace bundles: the hash ranges a namespace's topics fall into (`magnetar_core::bundles`),
//! kept in the namespace's policies, cut into `default_namespace_bundles` when the namespace is
//! created and split on request. Pulsar's bundle operations act on the topics of one bundle:
//! those whose partition names hash into its range. A range that is not one of the namespace's
//! bundles is unknown (`NotFound`). The broker tier will own and move bundles (DESIGN.md §6).

use crate::error::Entity;
use crate::partition::Partition;
use crate::topics::Topics;
use crate::{BrokerError, Result, Subscriptions};
use magnetar_core::bundles::{BundleRange, Bundles, middle, topic_count_middle};
use magnetar_core::hash::bundle_hash;
use magnetar_core::{NamespaceName, SubscriptionName, TopicName};
use std::collections::BTreeMap;
use std::sync::Arc;

/// How `split` chooses where to cut (Pulsar's `splitAlgorithmName`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SplitAlgorithm {
    /// The middle of the range (Pulsar's default).
    RangeEquallyDivide,
    /// Between the two middle topics of the bundle, so each half holds as many topics.
    TopicCountEquallyDivide,
    /// At the given positions.
    SpecifiedPositions(Vec<u32>),
}

impl SplitAlgorithm {
    /// Pulsar's names; `flow_or_qps_equally_divide` needs load history Magnetar does not keep.
    pub fn parse(name: Option<&str>, positions: Vec<u32>) -> Result<SplitAlgorithm> {
        match name.unwrap_or("range_equally_divide") {
            "range_equally_divide" => Ok(SplitAlgorithm::RangeEquallyDivide),
            "topic_count_equally_divide" => Ok(SplitAlgorithm::TopicCountEquallyDivide),
            "specified_positions_divide" => Ok(SplitAlgorithm::SpecifiedPositions(positions)),
            other => Err(BrokerError::InvalidArgument(format!(
                "unsupported split algorithm `{other}`: use range_equally_divide, topic_count_equally_divide or specified_positions_divide"
            ))),
        }
    }
}

/// Whether the full name `topic` (a partition or a non-partitioned topic) is in `range`.
pub fn in_bundle(range: &BundleRange, topic: &str) -> bool {
    range.contains(bundle_hash(topic))
}

fn invalid(ns: &NamespaceName, e: String) -> BrokerError {
    BrokerError::Internal(format!("stored bundles of namespace {ns} are invalid: {e}"))
}

impl Topics {
    /// The namespace's bundles. `NotFound` for a missing namespace.
    pub async fn bundles(&self, ns: &NamespaceName) -> Result<Bundles> {
        let record = self
            .ctx()
            .metadata
            .get_namespace(ns)
            .await?
            .ok_or_else(|| BrokerError::NotFound(Entity::Namespace(ns.clone())))?;
        Bundles::from_data(&record.policies.bundles).map_err(|e| invalid(ns, e))
    }

    /// `bundle` parsed and checked to be one of the namespace's bundles: 400 for a malformed
    /// range, 404 for one the namespace does not have.
    pub async fn bundle(&self, ns: &NamespaceName, bundle: &str) -> Result<BundleRange> {
        let range = BundleRange::parse(bundle).map_err(BrokerError::InvalidArgument)?;
        if !self.bundles(ns).await?.has(&range) {
            return Err(BrokerError::NotFound(Entity::Message(format!("bundle {bundle} of namespace {ns}"))));
        }
        Ok(range)
    }

    /// The bundle `name` (a topic or one of its partitions) falls into.
    pub async fn bundle_of(&self, name: &TopicName) -> Result<BundleRange> {
        Ok(self.bundles(name.namespace()).await?.find(bundle_hash(&name.to_string())))
    }

    /// The bundles this broker serves a loaded partition of, as `tenant/namespace/range`.
    pub async fn owned_bundles(&self) -> Result<std::collections::BTreeSet<String>> {
        let tier = &self.ctx().tier;
        if tier.enabled() {
            return Ok(tier.owned_by(&self.ctx().broker_id).await?.into_iter().collect());
        }
        Ok(self.loaded_by_bundle().await?.into_keys().collect())
    }

    /// The loaded partitions by the bundle they fall into, `tenant/namespace/range` (those of a
    /// namespace deleted meanwhile are left out).
    pub(crate) async fn loaded_by_bundle(&self) -> Result<BTreeMap<String, Vec<Arc<Partition>>>> {
        let mut by_bundle: BTreeMap<String, Vec<Arc<Partition>>> = BTreeMap::new();
        for p in self.registry().loaded_partitions() {
            let range = match self.ctx().tier.bundle_of(&p.name).await {
                Ok(r) => r,
                Err(BrokerError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            by_bundle.entry(format!("{}/{range}", p.name.namespace())).or_default().push(p);
        }
        Ok(by_bundle)
    }

    /// The full names of the namespace's topics (partitions one by one) in `range`.
    pub async fn topics_in_bundle(&self, ns: &NamespaceName, range: &BundleRange) -> Result<Vec<String>> {
        Ok(self.list(ns).await?.into_iter().filter(|t| in_bundle(range, t)).collect())
    }

    /// Pulsar's `topicHashPositions`: the position of each topic in the bundle's hash range
    /// (`magnetar_core::hash::bundle_hash`), keyed by full name. `names` are full names or names
    /// local to `ns`; none: every topic of the bundle, partitions one by one. Names of another
    /// namespace or outside the bundle are left out, as Pulsar leaves them out.
    pub async fn topic_hash_positions(
        &self,
        ns: &NamespaceName,
        bundle: &str,
        names: &[String],
    ) -> Result<BTreeMap<String, u64>> {
        let range = self.bundle(ns, bundle).await?;
        let full: Vec<String> = if names.is_empty() {
            self.topics_in_bundle(ns, &range).await?
        } else {
            let mut out = Vec::with_capacity(names.len());
            for n in names {
                let name: TopicName = if n.contains("://") {
                    n.parse().map_err(BrokerError::InvalidName)?
                } else {
                    format!("persistent://{ns}/{n}").parse().map_err(BrokerError::InvalidName)?
                };
                if name.namespace() == ns && in_bundle(&range, &name.to_string()) {
                    out.push(name.to_string());
                }
            }
            out
        };
        Ok(full.into_iter().map(|t| (t.clone(), u64::from(bundle_hash(&t)))).collect())
    }

    /// Unloads every loaded topic of the namespace (Pulsar's namespace unload), or with `range`
    /// those with a partition in that bundle: consumers are detached and reconnect, topics load
    /// again on their next use. `NotFound` for a missing namespace.
    pub async fn unload_namespace(&self, ns: &NamespaceName, range: Option<&BundleRange>) -> Result<usize> {
        if self.ctx().metadata.get_namespace(ns).await?.is_none() {
            return Err(BrokerError::NotFound(Entity::Namespace(ns.clone())));
        }
        let loaded: Vec<TopicName> = self
            .registry()
            .loaded_topics()
            .iter()
            .filter(|t| t.record.name.namespace() == ns)
            .filter(|t| range.is_none_or(|r| t.partitions.iter().any(|p| in_bundle(r, &p.name.to_string()))))
            .map(|t| t.record.name.clone())
            .collect();
        for name in &loaded {
            self.registry().unload(name).await;
        }
        Ok(loaded.len())
    }

    /// Cuts `bundle` in two (or more, at specified positions), as Pulsar's bundle split; with
    /// `unload`, the topics of the old bundle are unloaded. Returns the new bundles.
    pub async fn split_bundle(
        &self,
        admin: &crate::Admin,
        ns: &NamespaceName,
        bundle: &str,
        algorithm: SplitAlgorithm,
        unload: bool,
    ) -> Result<Vec<BundleRange>> {
        let range = self.bundle(ns, bundle).await?;
        let at = match algorithm {
            SplitAlgorithm::RangeEquallyDivide => middle(&range).into_iter().collect(),
            SplitAlgorithm::TopicCountEquallyDivide => {
                let hashes: Vec<u32> =
                    self.topics_in_bundle(ns, &range).await?.iter().map(|t| bundle_hash(t)).collect();
                topic_count_middle(&range, &hashes).into_iter().collect()
            }
            SplitAlgorithm::SpecifiedPositions(p) => p,
        };
        if at.is_empty() {
            return Err(BrokerError::InvalidPolicy(format!("bundle {range} cannot be split: no position inside it")));
        }
        let mut split = Vec::new();
        admin
            .update_policies(ns, |p| {
                let bundles = Bundles::from_data(&p.bundles).map_err(|e| invalid(ns, e))?;
                // A concurrent split of the same bundle: it is gone now.
                if !bundles.has(&range) {
                    return Err(BrokerError::NotFound(Entity::Message(format!("bundle {range} of namespace {ns}"))));
                }
                let next = bundles.split(&range, &at).map_err(BrokerError::InvalidPolicy)?;
                split = next.ranges().filter(|r| r.lower >= range.lower && r.upper <= range.upper).collect();
                p.bundles = next.to_data();
                Ok(())
            })
            .await?;
        if unload {
            self.unload_namespace(ns, Some(&range)).await?;
        }
        Ok(split)
    }

    /// Deletes the topics of one bundle (Pulsar's bundle delete; the range stays). Without
    /// `force`, a bundle with topics is refused (409), as Pulsar refuses a non-empty bundle.
    pub async fn delete_bundle(&self, ns: &NamespaceName, bundle: &str, force: bool) -> Result<usize> {
        let range = self.bundle(ns, bundle).await?;
        // (base name, partitioned): a partitioned topic with a partition in the bundle goes whole.
        let mut bases: Vec<(TopicName, bool)> = Vec::new();
        for t in self.topics_in_bundle(ns, &range).await? {
            let name = t.parse::<TopicName>()?;
            let entry = (name.base(), name.partition_index().is_some());
            if !bases.contains(&entry) {
                bases.push(entry);
            }
        }
        if bases.is_empty() {
            return Ok(0);
        }
        if !force {
            return Err(BrokerError::NotEmpty(Entity::Message(format!(
                "bundle {range} of namespace {ns}: it holds {} topics (delete them, or use force=true)",
                bases.len()
            ))));
        }
        for (base, partitioned) in &bases {
            match self.delete(base, true, *partitioned).await {
                Ok(()) | Err(BrokerError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(bases.len())
    }
}

impl Subscriptions {
    /// Clears the backlog of every subscription (or of `sub` only) on every topic of the
    /// namespace, or of one bundle of it.
    pub async fn clear_namespace_backlog(
        &self,
        topics: &Topics,
        ns: &NamespaceName,
        range: Option<&BundleRange>,
        sub: Option<&SubscriptionName>,
    ) -> Result<()> {
        for topic in topics.list(ns).await?.into_iter().filter(|t| range.is_none_or(|r| in_bundle(r, t))) {
            let name: TopicName = topic.parse()?;
            for existing in self.list(&name).await? {
                if sub.is_none_or(|s| s.as_str() == existing) {
                    self.skip_all(&name, &SubscriptionName::new(existing)?).await?;
                }
            }
        }
        Ok(())
    }

    /// Deletes subscription `sub` from every topic of the namespace (or of one bundle of it)
    /// that has it.
    pub async fn unsubscribe_namespace(
        &self,
        topics: &Topics,
        ns: &NamespaceName,
        range: Option<&BundleRange>,
        sub: &SubscriptionName,
    ) -> Result<()> {
        for topic in topics.list(ns).await?.into_iter().filter(|t| range.is_none_or(|r| in_bundle(r, t))) {
            let name: TopicName = topic.parse()?;
            if self.list(&name).await?.iter().any(|n| n == sub.as_str()) {
                self.delete(&name, sub, false).await?;
            }
        }
        Ok(())
    }
}
