//! Cluster administration: create, update and delete clusters, and a cluster's failure domains
//! and namespace isolation policies. These are stored and validated as Pulsar does; no broker
//! tier places namespaces by them yet (a Magnetar broker serves every namespace it is asked
//! for), so they are configuration for tools and for the placement that will honour them.

use crate::admin::Admin;
use crate::error::Entity;
use crate::{BrokerError, Result};
use magnetar_metadata::{ClusterData, FailureDomain, MetadataError, NamespaceIsolationData};
use std::collections::BTreeMap;

/// Pulsar's cluster and domain names: the characters of its other names (412 otherwise, as
/// Pulsar's invalid names).
fn validate_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= magnetar_core::names::MAX_NAME_LEN
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_=:.-".contains(c));
    if ok { Ok(()) } else { Err(BrokerError::InvalidPolicy(format!("invalid {what} name {name:?}"))) }
}

/// Pulsar's checks of a `NamespaceIsolationData`: namespaces and primary brokers given, every
/// entry a valid regular expression, and the only failover policy Pulsar has, `min_available`,
/// with its integer parameters.
pub fn validate_isolation_policy(p: &NamespaceIsolationData) -> Result<()> {
    let bad = |m: String| Err(BrokerError::InvalidPolicy(m));
    if p.namespaces.is_empty() {
        return bad("namespaces must list at least one namespace pattern".into());
    }
    if p.primary.is_empty() {
        return bad("primary must list at least one broker pattern".into());
    }
    for pattern in p.namespaces.iter().chain(&p.primary).chain(&p.secondary) {
        if let Err(e) = regex::Regex::new(pattern) {
            return bad(format!("invalid regular expression {pattern:?}: {e}"));
        }
    }
    let failover = &p.auto_failover_policy;
    if !failover.policy_type.eq_ignore_ascii_case("min_available") {
        return bad(format!("auto_failover_policy.policy_type {:?} must be min_available", failover.policy_type));
    }
    for key in ["min_limit", "usage_threshold"] {
        match failover.parameters.get(key).map(|v| v.parse::<u32>()) {
            Some(Ok(_)) => {}
            _ => return bad(format!("auto_failover_policy.parameters.{key} must be a non-negative integer")),
        }
    }
    Ok(())
}

/// A cluster's own name stays on its data, whatever the body says.
fn named(name: &str, mut data: ClusterData) -> ClusterData {
    data.name = name.to_string();
    data
}

/// The store names what it did not find (the cluster or the child); the cluster itself maps
/// to `Entity::Cluster`.
fn cluster_error(name: &str, e: MetadataError) -> BrokerError {
    match e {
        MetadataError::NotFound(what) if what == format!("cluster {name}") => {
            BrokerError::NotFound(Entity::Cluster(name.to_string()))
        }
        MetadataError::AlreadyExists(_) => BrokerError::AlreadyExists(Entity::Cluster(name.to_string())),
        // A broker in two domains is the caller's conflict, not a concurrent change.
        MetadataError::Conflict(m) => BrokerError::InvalidPolicy(m),
        e => e.into(),
    }
}

impl Admin {
    pub async fn create_cluster(&self, name: &str, data: ClusterData) -> Result<()> {
        validate_name("cluster", name)?;
        self.ctx().metadata.create_cluster(&named(name, data)).await.map_err(|e| cluster_error(name, e))
    }

    pub async fn update_cluster(&self, name: &str, data: ClusterData) -> Result<()> {
        self.ctx().metadata.update_cluster(&named(name, data)).await.map_err(|e| cluster_error(name, e))
    }

    /// Refuses to delete the cluster this broker serves, or one a tenant may use.
    pub async fn delete_cluster(&self, name: &str) -> Result<()> {
        if name == self.cluster() {
            return Err(BrokerError::InUse(Entity::Cluster(name.to_string())));
        }
        for tenant in self.list_tenants().await? {
            if self.get_tenant(&tenant).await?.allowed_clusters.iter().any(|c| c == name) {
                return Err(BrokerError::InUse(Entity::Cluster(name.to_string())));
            }
        }
        self.ctx().metadata.delete_cluster(name).await.map_err(|e| cluster_error(name, e))
    }

    /// Pulsar's peer clusters of `name` (replication peers; Magnetar does not replicate, the
    /// list is kept for tools). Every peer must be a known cluster.
    pub async fn set_peer_clusters(&self, name: &str, peers: Vec<String>) -> Result<()> {
        let known = self.list_clusters().await?;
        if let Some(p) = peers.iter().find(|p| !known.contains(p) || *p == name) {
            return Err(BrokerError::InvalidPolicy(format!("peer cluster {p} is unknown or the cluster itself")));
        }
        let mut data = self.get_cluster(name).await?;
        data.peer_cluster_names = peers;
        self.update_cluster(name, data).await
    }

    pub async fn set_failure_domain(&self, cluster: &str, name: &str, domain: &FailureDomain) -> Result<()> {
        validate_name("failure domain", name)?;
        self.ctx().metadata.set_failure_domain(cluster, name, domain).await.map_err(|e| cluster_error(cluster, e))
    }

    pub async fn list_failure_domains(&self, cluster: &str) -> Result<BTreeMap<String, FailureDomain>> {
        self.ctx().metadata.list_failure_domains(cluster).await.map_err(|e| cluster_error(cluster, e))
    }

    pub async fn get_failure_domain(&self, cluster: &str, name: &str) -> Result<FailureDomain> {
        self.list_failure_domains(cluster).await?.remove(name).ok_or_else(|| {
            BrokerError::NotFound(Entity::Message(format!("failure domain {name} of cluster {cluster}")))
        })
    }

    pub async fn delete_failure_domain(&self, cluster: &str, name: &str) -> Result<()> {
        self.ctx().metadata.delete_failure_domain(cluster, name).await.map_err(|e| cluster_error(cluster, e))
    }

    pub async fn set_isolation_policy(&self, cluster: &str, name: &str, policy: &NamespaceIsolationData) -> Result<()> {
        validate_name("namespace isolation policy", name)?;
        validate_isolation_policy(policy)?;
        self.ctx().metadata.set_isolation_policy(cluster, name, policy).await.map_err(|e| cluster_error(cluster, e))
    }

    pub async fn list_isolation_policies(&self, cluster: &str) -> Result<BTreeMap<String, NamespaceIsolationData>> {
        self.ctx().metadata.list_isolation_policies(cluster).await.map_err(|e| cluster_error(cluster, e))
    }

    pub async fn get_isolation_policy(&self, cluster: &str, name: &str) -> Result<NamespaceIsolationData> {
        self.list_isolation_policies(cluster).await?.remove(name).ok_or_else(|| {
            BrokerError::NotFound(Entity::Message(format!("namespace isolation policy {name} of cluster {cluster}")))
        })
    }

    pub async fn delete_isolation_policy(&self, cluster: &str, name: &str) -> Result<()> {
        self.ctx().metadata.delete_isolation_policy(cluster, name).await.map_err(|e| cluster_error(cluster, e))
    }
}

/// Pulsar's `BrokerNamespaceIsolationData`: which isolation policy places namespaces on a
/// broker, and as primary or secondary.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BrokerIsolation {
    pub broker_name: String,
    /// Absent when no policy names the broker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_name: Option<String>,
    pub is_primary: bool,
    /// The policy's namespace patterns.
    pub namespace_regex: Vec<String>,
}

/// The policy (first by name) whose primary, else secondary, brokers match `broker`.
pub fn broker_isolation(policies: &BTreeMap<String, NamespaceIsolationData>, broker: &str) -> BrokerIsolation {
    // Pulsar matches the whole broker name; stored patterns were checked when set.
    let matches = |patterns: &[String]| {
        patterns.iter().any(|p| regex::Regex::new(&format!("^(?:{p})$")).is_ok_and(|r| r.is_match(broker)))
    };
    let found = policies
        .iter()
        .find_map(|(n, p)| matches(&p.primary).then_some((n, p, true)))
        .or_else(|| policies.iter().find_map(|(n, p)| matches(&p.secondary).then_some((n, p, false))));
    match found {
        Some((name, p, primary)) => BrokerIsolation {
            broker_name: broker.to_string(),
            policy_name: Some(name.clone()),
            is_primary: primary,
            namespace_regex: p.namespaces.clone(),
        },
        None => BrokerIsolation {
            broker_name: broker.to_string(),
            policy_name: None,
            is_primary: false,
            namespace_regex: Vec::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use magnetar_metadata::AutoFailoverPolicyData;

    fn policy() -> NamespaceIsolationData {
        NamespaceIsolationData {
            namespaces: vec!["acme/.*".into()],
            primary: vec!["broker-[0-9]+:8080".into()],
            secondary: vec![],
            auto_failover_policy: AutoFailoverPolicyData {
                policy_type: "min_available".into(),
                parameters: [("min_limit", "1"), ("usage_threshold", "80")]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            },
        }
    }

    #[test]
    fn isolation_policies_are_validated_as_pulsar_does() {
        assert!(validate_isolation_policy(&policy()).is_ok());
        let mut p = policy();
        p.namespaces.clear();
        assert!(validate_isolation_policy(&p).is_err());
        let mut p = policy();
        p.primary = vec!["broker-[".into()];
        assert!(validate_isolation_policy(&p).is_err(), "a bad regular expression");
        let mut p = policy();
        p.auto_failover_policy.policy_type = "fastest".into();
        assert!(validate_isolation_policy(&p).is_err());
        let mut p = policy();
        p.auto_failover_policy.parameters.remove("min_limit");
        assert!(validate_isolation_policy(&p).is_err());
    }

    #[test]
    fn a_broker_is_placed_by_the_first_policy_naming_it_primary_then_secondary() {
        let mut policies = BTreeMap::new();
        let mut b = policy();
        b.primary = vec!["other:8080".into()];
        b.secondary = vec!["broker-1:8080".into()];
        policies.insert("a-secondary".to_string(), b);
        policies.insert("b-primary".to_string(), policy());
        let got = broker_isolation(&policies, "broker-1:8080");
        assert_eq!((got.policy_name.as_deref(), got.is_primary), (Some("b-primary"), true));
        let got = broker_isolation(&policies, "broker-1:80801");
        assert_eq!(got.policy_name, None, "patterns match whole names");
        policies.remove("b-primary");
        let got = broker_isolation(&policies, "broker-1:8080");
        assert_eq!((got.policy_name.as_deref(), got.is_primary), (Some("a-secondary"), false));
    }

    #[test]
    fn cluster_names_use_pulsar_characters() {
        assert!(validate_name("cluster", "us-west.1").is_ok());
        assert!(validate_name("cluster", "").is_err());
        assert!(validate_name("cluster", "a/b").is_err());
    }
}
