//! Resource names, parsed once at the edge. Rules follow Pulsar's `NamedEntity`: tenant,
//! namespace, subscription and cluster names are made of `[A-Za-z0-9_=:.-]`; topic local names
//! may also not contain `/` and are limited in length so every storage key stays short.

use std::fmt;
use std::str::FromStr;

/// Suffix Pulsar appends to a partitioned topic's name to name one of its partitions.
pub const PARTITION_SUFFIX: &str = "-partition-";
/// Longest tenant, namespace, subscription, cluster or topic name.
pub const MAX_NAME_LEN: usize = 255;
/// The characters `check_entity` allows, as a regular expression (for the OpenAPI description).
pub const NAME_PATTERN: &str = "^[A-Za-z0-9_=:.-]+$";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("{kind} name must not be empty")]
    Empty { kind: &'static str },
    #[error("{kind} name `{name}` is longer than {MAX_NAME_LEN} characters")]
    TooLong { kind: &'static str, name: String },
    #[error("{kind} name `{name}` contains an invalid character (allowed: letters, digits, _ = : . -)")]
    InvalidChar { kind: &'static str, name: String },
    #[error("invalid namespace `{0}`: expected `tenant/namespace`")]
    Namespace(String),
    #[error("invalid topic `{0}`: expected `persistent://tenant/namespace/topic`")]
    Topic(String),
}

fn check_entity(kind: &'static str, name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty { kind });
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong { kind, name: name.into() });
    }
    // Keep in step with NAME_PATTERN.
    let ok = name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '=' | ':' | '.' | '-'));
    if !ok {
        return Err(NameError::InvalidChar { kind, name: name.into() });
    }
    Ok(())
}

macro_rules! entity_name {
    ($ty:ident, $kind:literal) => {
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $ty(String);

        impl $ty {
            pub fn new(name: impl Into<String>) -> Result<Self, NameError> {
                let name = name.into();
                check_entity($kind, &name)?;
                Ok(Self(name))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $ty {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                Self::new(s)
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
    };
}

entity_name!(TenantName, "tenant");
entity_name!(SubscriptionName, "subscription");
entity_name!(ClusterName, "cluster");

/// `tenant/namespace`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NamespaceName {
    tenant: TenantName,
    local: String,
}

impl NamespaceName {
    pub fn new(tenant: TenantName, local: impl Into<String>) -> Result<Self, NameError> {
        let local = local.into();
        check_entity("namespace", &local)?;
        Ok(Self { tenant, local })
    }
    pub fn parse_parts(tenant: &str, namespace: &str) -> Result<Self, NameError> {
        Self::new(TenantName::new(tenant)?, namespace)
    }
    pub fn tenant(&self) -> &TenantName {
        &self.tenant
    }
    pub fn local(&self) -> &str {
        &self.local
    }
}

impl fmt::Display for NamespaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.tenant, self.local)
    }
}

impl FromStr for NamespaceName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        let (t, ns) = s.split_once('/').ok_or_else(|| NameError::Namespace(s.into()))?;
        Self::parse_parts(t, ns)
    }
}

impl serde::Serialize for NamespaceName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Domain {
    Persistent,
    NonPersistent,
}

impl Domain {
    pub fn as_str(self) -> &'static str {
        match self {
            Domain::Persistent => "persistent",
            Domain::NonPersistent => "non-persistent",
        }
    }
}

impl FromStr for Domain {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        match s {
            "persistent" => Ok(Domain::Persistent),
            "non-persistent" => Ok(Domain::NonPersistent),
            other => Err(NameError::Topic(other.into())),
        }
    }
}

/// A topic, or one partition of a partitioned topic (`name-partition-N`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicName {
    domain: Domain,
    namespace: NamespaceName,
    local: String,
}

impl TopicName {
    pub fn new(domain: Domain, namespace: NamespaceName, local: impl Into<String>) -> Result<Self, NameError> {
        let local = local.into();
        check_entity("topic", &local)?;
        Ok(Self { domain, namespace, local })
    }

    /// Parses the path segments of a URL such as `/persistent/{tenant}/{namespace}/{topic}`.
    pub fn from_parts(domain: &str, tenant: &str, namespace: &str, topic: &str) -> Result<Self, NameError> {
        Self::new(domain.parse()?, NamespaceName::parse_parts(tenant, namespace)?, topic)
    }

    pub fn domain(&self) -> Domain {
        self.domain
    }
    pub fn namespace(&self) -> &NamespaceName {
        &self.namespace
    }
    pub fn local(&self) -> &str {
        &self.local
    }

    /// The partition index if this names a partition (`x-partition-3` → 3).
    pub fn partition_index(&self) -> Option<u32> {
        let (_, idx) = self.local.rsplit_once(PARTITION_SUFFIX)?;
        if idx.is_empty() || (idx.len() > 1 && idx.starts_with('0')) {
            return None;
        }
        idx.parse().ok()
    }

    /// The partitioned topic this partition belongs to, or the topic itself.
    pub fn base(&self) -> TopicName {
        match self.partition_index() {
            Some(_) => {
                let (base, _) = self.local.rsplit_once(PARTITION_SUFFIX).expect("checked");
                TopicName { domain: self.domain, namespace: self.namespace.clone(), local: base.into() }
            }
            None => self.clone(),
        }
    }

    /// The name of partition `index` of this (partitioned) topic.
    pub fn partition(&self, index: u32) -> TopicName {
        TopicName {
            domain: self.domain,
            namespace: self.namespace.clone(),
            local: format!("{}{PARTITION_SUFFIX}{index}", self.local),
        }
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}/{}", self.domain.as_str(), self.namespace, self.local)
    }
}

impl FromStr for TopicName {
    type Err = NameError;
    /// Accepts `persistent://t/ns/topic`; a bare `t/ns/topic` defaults to persistent.
    fn from_str(s: &str) -> Result<Self, NameError> {
        let (domain, rest) = match s.split_once("://") {
            Some((d, rest)) => (d.parse::<Domain>().map_err(|_| NameError::Topic(s.into()))?, rest),
            None => (Domain::Persistent, s),
        };
        let mut parts = rest.splitn(3, '/');
        let (Some(t), Some(ns), Some(tp)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NameError::Topic(s.into()));
        };
        Self::new(domain, NamespaceName::parse_parts(t, ns)?, tp)
    }
}

impl serde::Serialize for TopicName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_full_topic_names() {
        let t: TopicName = "persistent://acme/orders/created".parse().unwrap();
        assert_eq!(t.namespace().to_string(), "acme/orders");
        assert_eq!(t.local(), "created");
        assert_eq!(t.to_string(), "persistent://acme/orders/created");
        assert!("persistent://acme/orders".parse::<TopicName>().is_err());
        assert!("kafka://a/b/c".parse::<TopicName>().is_err());
    }

    #[test]
    fn partition_names_round_trip() {
        let t: TopicName = "persistent://a/b/c".parse().unwrap();
        let p = t.partition(3);
        assert_eq!(p.to_string(), "persistent://a/b/c-partition-3");
        assert_eq!(p.partition_index(), Some(3));
        assert_eq!(p.base(), t);
        assert_eq!(t.partition_index(), None);
        let odd: TopicName = "persistent://a/b/c-partition-03".parse().unwrap();
        assert_eq!(odd.partition_index(), None);
    }

    #[test]
    fn rejects_bad_characters() {
        assert!(matches!(TenantName::new("a b"), Err(NameError::InvalidChar { .. })));
        assert!(matches!(TenantName::new(""), Err(NameError::Empty { .. })));
        assert!(NamespaceName::parse_parts("t", "ns/x").is_err());
        assert!(TopicName::from_parts("persistent", "t", "ns", "a/b").is_err());
    }

    proptest! {
        #[test]
        fn valid_names_round_trip(t in "[a-z0-9_=:.-]{1,20}", ns in "[A-Z0-9_.-]{1,20}", tp in "[a-z0-9_-]{1,40}") {
            let name = TopicName::from_parts("persistent", &t, &ns, &tp).unwrap();
            let again: TopicName = name.to_string().parse().unwrap();
            prop_assert_eq!(name, again);
        }
    }
}
