//! Authorization, Pulsar's model: superuser roles from configuration, each tenant's
//! `adminRoles`, and namespace/topic grants (`auth_policies.namespace_auth`,
//! `destination_auth`) of `produce` and `consume`. Every operation of every surface is an
//! `Operation`; `rule` says what it needs, in one table, and `Authorizer::check` decides
//! (superuser → tenant admin → namespace grant → topic grant).
//!
//! Denials never depend on whether the resource exists: a role without access to a tenant gets
//! the same 403 for existing and missing namespaces and topics.

use crate::AuthError;
use crate::token::Principal;
use magnetar_core::{NamespaceName, Policies, TenantName, TopicName};
use magnetar_metadata::{Freshness, MetadataStore, PolicyCache, TenantInfo};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Pulsar's `AuthAction` names, as stored in grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Produce,
    Consume,
    Functions,
    Sources,
    Sinks,
    Packages,
}

impl Action {
    pub fn parse(s: &str) -> Result<Action, AuthError> {
        Ok(match s {
            "produce" => Action::Produce,
            "consume" => Action::Consume,
            "functions" => Action::Functions,
            "sources" => Action::Sources,
            "sinks" => Action::Sinks,
            "packages" => Action::Packages,
            other => {
                return Err(AuthError::BadRequest(format!(
                    "unknown action `{other}` (produce, consume, functions, sources, sinks, packages)"
                )));
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Produce => "produce",
            Action::Consume => "consume",
            Action::Functions => "functions",
            Action::Sources => "sources",
            Action::Sinks => "sinks",
            Action::Packages => "packages",
        }
    }

    /// Parses a grant body (`["produce","consume"]`) into sorted, deduplicated action names.
    pub fn parse_list(actions: &[String]) -> Result<Vec<String>, AuthError> {
        Ok(Action::names(actions.iter().map(|a| Action::parse(a)).collect::<Result<Vec<_>, _>>()?))
    }

    /// Sorted, deduplicated action names, as grants store them.
    pub fn names(mut actions: Vec<Action>) -> Vec<String> {
        actions.sort();
        actions.dedup();
        actions.into_iter().map(|a| a.as_str().to_string()).collect()
    }
}

/// Every operation of every surface. New endpoints add a variant and a line in `rule`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    // Discovery: clusters, brokers, health (no tenant data).
    ListClusters,
    GetCluster,
    ListBrokers,
    BrokerHealth,
    LeaderBroker,
    Metrics,
    CreateCluster,
    UpdateCluster,
    DeleteCluster,
    /// Broker settings and internals (configuration names and values, owned namespaces).
    GetBrokerConfiguration,
    /// Dynamic settings and on-demand broker checks.
    UpdateBrokerConfiguration,
    /// Stopping a broker process (Pulsar's `brokers/shutdown`).
    ShutdownBroker,
    // Tenants.
    ListTenants,
    GetTenant,
    CreateTenant,
    UpdateTenant,
    DeleteTenant,
    // Namespaces.
    ListNamespaces,
    CreateNamespace,
    DeleteNamespace,
    GetNamespacePolicies,
    SetNamespacePolicy,
    ListNamespaceTopics,
    GetPermissions,
    GrantPermission,
    RevokePermission,
    SetSubscriptionAuthMode,
    /// Clear backlogs or unsubscribe across a namespace.
    ClearBacklog,
    UnloadNamespace,
    // Topics.
    ListTopics,
    LookupTopic,
    CreateTopic,
    DeleteTopic,
    UpdatePartitions,
    GetPartitions,
    GetTopicStats,
    GetInternalStats,
    GetLastMessageId,
    GetTopicPolicy,
    SetTopicPolicy,
    TerminateTopic,
    UnloadTopic,
    CompactTopic,
    OffloadTopic,
    GetOffloadStatus,
    TruncateTopic,
    TrimTopic,
    GetTopicProperties,
    UpdateTopicProperties,
    GetSchema,
    UpdateSchema,
    DeleteSchema,
    // Subscriptions.
    ListSubscriptions,
    CreateSubscription,
    DeleteSubscription,
    SkipMessages,
    ResetCursor,
    PeekMessages,
    ExpireMessages,
    GetBacklogSize,
    AnalyzeBacklog,
    GetSubscriptionProperties,
    UpdateSubscriptionProperties,
    // Data plane.
    Produce,
    Consume,
    Read,
    // Service accounts.
    ListServiceAccounts,
    CreateServiceAccount,
    GetServiceAccount,
    DeleteServiceAccount,
    CreateServiceAccountToken,
    ListServiceAccountTokens,
    RevokeServiceAccountToken,
}

/// What an operation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Any authenticated role.
    Authenticated,
    Superuser,
    TenantAdmin,
    Produce,
    Consume,
    /// Lookup, stats, metadata: produce or consume.
    ProduceOrConsume,
}

/// The single table of who may do what.
pub fn rule(op: Operation) -> Rule {
    use Operation::*;
    match op {
        ListClusters | GetCluster | ListBrokers | BrokerHealth | LeaderBroker => Rule::Authenticated,
        // Listings are filtered to what the caller may see (see `Authorizer::can_see_*`).
        ListTenants | ListNamespaces | ListNamespaceTopics | ListTopics => Rule::Authenticated,
        Metrics | CreateTenant | UpdateTenant | DeleteTenant => Rule::Superuser,
        CreateCluster
        | UpdateCluster
        | DeleteCluster
        | GetBrokerConfiguration
        | UpdateBrokerConfiguration
        | ShutdownBroker
        | UnloadNamespace => Rule::Superuser,
        GetTenant
        | CreateNamespace
        | DeleteNamespace
        | GetNamespacePolicies
        | SetNamespacePolicy
        | GetPermissions
        | GrantPermission
        | RevokePermission
        | SetSubscriptionAuthMode
        | ClearBacklog => Rule::TenantAdmin,
        CreateTopic
        | DeleteTopic
        | UpdatePartitions
        | GetTopicPolicy
        | SetTopicPolicy
        | TerminateTopic
        | UnloadTopic
        | CompactTopic
        | OffloadTopic
        | GetOffloadStatus
        | TruncateTopic
        | TrimTopic
        | UpdateTopicProperties
        | DeleteSchema => Rule::TenantAdmin,
        ListServiceAccounts
        | CreateServiceAccount
        | GetServiceAccount
        | DeleteServiceAccount
        | CreateServiceAccountToken
        | ListServiceAccountTokens
        | RevokeServiceAccountToken => Rule::TenantAdmin,
        LookupTopic | GetPartitions | GetTopicStats | GetInternalStats | GetLastMessageId | GetTopicProperties
        | GetSchema => Rule::ProduceOrConsume,
        ListSubscriptions
        | CreateSubscription
        | DeleteSubscription
        | SkipMessages
        | ResetCursor
        | PeekMessages
        | ExpireMessages
        | GetBacklogSize
        | AnalyzeBacklog
        | GetSubscriptionProperties
        | UpdateSubscriptionProperties
        | Consume
        | Read => Rule::Consume,
        Produce | UpdateSchema => Rule::Produce,
    }
}

/// Operations on the hot path read tenant and namespace data through a short-lived cache;
/// administration reads it fresh.
fn is_data_plane(op: Operation) -> bool {
    matches!(op, Operation::Produce | Operation::Consume | Operation::Read | Operation::LookupTopic)
}

/// What an operation applies to.
#[derive(Debug, Clone, Copy)]
pub enum Resource<'a> {
    Cluster,
    Tenant(&'a TenantName),
    Namespace(&'a NamespaceName),
    Topic(&'a TopicName),
    Subscription(&'a TopicName, &'a str),
}

impl<'a> Resource<'a> {
    fn tenant(&self) -> Option<&'a TenantName> {
        match *self {
            Resource::Cluster => None,
            Resource::Tenant(t) => Some(t),
            Resource::Namespace(n) => Some(n.tenant()),
            Resource::Topic(t) | Resource::Subscription(t, _) => Some(t.namespace().tenant()),
        }
    }
    fn namespace(&self) -> Option<&'a NamespaceName> {
        match *self {
            Resource::Namespace(n) => Some(n),
            Resource::Topic(t) | Resource::Subscription(t, _) => Some(t.namespace()),
            _ => None,
        }
    }
    fn topic(&self) -> Option<&'a TopicName> {
        match *self {
            Resource::Topic(t) | Resource::Subscription(t, _) => Some(t),
            _ => None,
        }
    }
    fn describe(&self) -> String {
        match self {
            Resource::Cluster => "the cluster".into(),
            Resource::Tenant(t) => format!("tenant {t}"),
            Resource::Namespace(n) => format!("namespace {n}"),
            Resource::Topic(t) => format!("topic {t}"),
            Resource::Subscription(t, s) => format!("subscription {s} of topic {t}"),
        }
    }
}

impl<'a> From<&'a TenantName> for Resource<'a> {
    fn from(t: &'a TenantName) -> Self {
        Resource::Tenant(t)
    }
}
impl<'a> From<&'a NamespaceName> for Resource<'a> {
    fn from(n: &'a NamespaceName) -> Self {
        Resource::Namespace(n)
    }
}
impl<'a> From<&'a TopicName> for Resource<'a> {
    fn from(t: &'a TopicName) -> Self {
        Resource::Topic(t)
    }
}
impl<'a> From<(&'a TopicName, &'a str)> for Resource<'a> {
    fn from((t, s): (&'a TopicName, &'a str)) -> Self {
        Resource::Subscription(t, s)
    }
}
impl<'a> From<(&'a TopicName, &'a String)> for Resource<'a> {
    fn from((t, s): (&'a TopicName, &'a String)) -> Self {
        Resource::Subscription(t, s.as_str())
    }
}

/// The grant key of a topic in `destination_auth`: the full name of its base topic (grants on a
/// partitioned topic cover its partitions).
pub fn topic_grant_key(topic: &TopicName) -> String {
    topic.base().to_string()
}

/// Decides operations for principals; reads tenants and namespace policies through the shared
/// [`PolicyCache`] (the broker's writes invalidate it after they commit).
pub struct Authorizer {
    store: Arc<dyn MetadataStore>,
    policies: Arc<PolicyCache>,
}

/// How much of a namespace a principal may see.
pub enum Visibility {
    /// Everything (superuser, tenant admin, namespace-wide grant).
    All,
    /// Only these topics (grant keys, base topic names).
    Topics(Vec<String>),
    Nothing,
}

fn forbidden(p: &Principal, op: Operation, res: &Resource<'_>) -> AuthError {
    match rule(op) {
        Rule::Superuser => AuthError::Forbidden("this operation requires super-user access".into()),
        _ => AuthError::Forbidden(format!(
            "role {} is not authorized to {op:?} on {}",
            p.role().unwrap_or("(none)"),
            res.describe()
        )),
    }
}

fn has_action(grants: Option<&Vec<String>>, wanted: &[Action]) -> bool {
    grants.is_some_and(|g| g.iter().any(|a| wanted.iter().any(|w| w.as_str() == a)))
}

impl Authorizer {
    pub fn new(store: Arc<dyn MetadataStore>, policies: Arc<PolicyCache>) -> Authorizer {
        Authorizer { store, policies }
    }

    pub fn store(&self) -> &Arc<dyn MetadataStore> {
        &self.store
    }

    /// Allows the operation or returns `Forbidden` (or `Unavailable` when the metadata store
    /// cannot be read).
    pub async fn check(&self, p: &Principal, op: Operation, res: Resource<'_>) -> Result<(), AuthError> {
        if p.superuser {
            return Ok(());
        }
        let needed = rule(op);
        let cached = is_data_plane(op);
        let allowed = match needed {
            Rule::Authenticated => true,
            Rule::Superuser => false,
            Rule::TenantAdmin => match res.tenant() {
                Some(t) => self.is_tenant_admin(p, t, cached).await?,
                None => false,
            },
            Rule::Produce => self.has_grant(p, &res, &[Action::Produce], cached).await?,
            Rule::Consume => {
                self.has_grant(p, &res, &[Action::Consume], cached).await?
                    && self.subscription_allowed(p, &res, cached).await?
            }
            Rule::ProduceOrConsume => self.has_grant(p, &res, &[Action::Produce, Action::Consume], cached).await?,
        };
        if allowed { Ok(()) } else { Err(forbidden(p, op, &res)) }
    }

    fn freshness(cached: bool) -> Freshness {
        if cached { Freshness::Cached } else { Freshness::Fresh }
    }

    async fn tenant_info(&self, t: &TenantName, cached: bool) -> Result<Option<TenantInfo>, AuthError> {
        Ok(self.policies.tenant(t, Self::freshness(cached)).await?)
    }

    async fn policies(&self, n: &NamespaceName, cached: bool) -> Result<Option<Policies>, AuthError> {
        Ok(self.policies.policies(n, Self::freshness(cached)).await?)
    }

    async fn is_tenant_admin(&self, p: &Principal, t: &TenantName, cached: bool) -> Result<bool, AuthError> {
        if p.superuser {
            return Ok(true);
        }
        Ok(self.tenant_info(t, cached).await?.is_some_and(|i| i.admin_roles.iter().any(|r| p.roles.contains(r))))
    }

    async fn has_grant(
        &self,
        p: &Principal,
        res: &Resource<'_>,
        wanted: &[Action],
        cached: bool,
    ) -> Result<bool, AuthError> {
        let (Some(t), Some(n)) = (res.tenant(), res.namespace()) else { return Ok(false) };
        if self.is_tenant_admin(p, t, cached).await? {
            return Ok(true);
        }
        let Some(policies) = self.policies(n, cached).await? else { return Ok(false) };
        Ok(grants_allow(&policies, p, res.topic(), wanted))
    }

    /// Pulsar's subscription checks: `subscription_auth_roles` and `Prefix` mode.
    async fn subscription_allowed(&self, p: &Principal, res: &Resource<'_>, cached: bool) -> Result<bool, AuthError> {
        let Resource::Subscription(topic, sub) = *res else { return Ok(true) };
        if self.is_tenant_admin(p, topic.namespace().tenant(), cached).await? {
            return Ok(true);
        }
        let Some(policies) = self.policies(topic.namespace(), cached).await? else { return Ok(false) };
        if let Some(roles) = policies.auth_policies.subscription_auth_roles.get(sub)
            && !roles.is_empty()
            && !roles.iter().any(|r| p.roles.contains(r))
        {
            return Ok(false);
        }
        if policies.subscription_auth_mode.eq_ignore_ascii_case("Prefix") {
            return Ok(p.roles.iter().any(|r| sub.starts_with(r.as_str())));
        }
        Ok(true)
    }

    /// Whether `tenant` appears in the caller's tenant list.
    pub async fn can_see_tenant(&self, p: &Principal, t: &TenantName) -> Result<bool, AuthError> {
        self.is_tenant_admin(p, t, false).await
    }

    /// How much of namespace `n` the caller may see.
    pub async fn namespace_visibility(&self, p: &Principal, n: &NamespaceName) -> Result<Visibility, AuthError> {
        if self.is_tenant_admin(p, n.tenant(), false).await? {
            return Ok(Visibility::All);
        }
        let Some(policies) = self.policies(n, false).await? else { return Ok(Visibility::Nothing) };
        let any = [Action::Produce, Action::Consume];
        if p.roles.iter().any(|r| has_action(policies.auth_policies.namespace_auth.get(r), &any)) {
            return Ok(Visibility::All);
        }
        let topics: Vec<String> = policies
            .auth_policies
            .destination_auth
            .iter()
            .filter(|(_, roles)| p.roles.iter().any(|r| has_action(roles.get(r), &any)))
            .map(|(t, _)| t.clone())
            .collect();
        Ok(if topics.is_empty() { Visibility::Nothing } else { Visibility::Topics(topics) })
    }
}

/// Namespace-wide and topic grants of any of the principal's roles.
pub fn grants_allow(policies: &Policies, p: &Principal, topic: Option<&TopicName>, wanted: &[Action]) -> bool {
    let auth = &policies.auth_policies;
    if p.roles.iter().any(|r| has_action(auth.namespace_auth.get(r), wanted)) {
        return true;
    }
    let Some(topic) = topic else { return false };
    let key = topic_grant_key(topic);
    auth.destination_auth
        .get(&key)
        .is_some_and(|roles: &BTreeMap<String, Vec<String>>| p.roles.iter().any(|r| has_action(roles.get(r), wanted)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: &str) -> Principal {
        Principal { roles: vec![role.into()], superuser: false, expires_at: None, token_id: None }
    }

    #[test]
    fn action_names_are_pulsars() {
        assert_eq!(
            Action::parse_list(&["consume".into(), "produce".into(), "consume".into(), "packages".into()]).unwrap(),
            vec!["produce", "consume", "packages"]
        );
        assert!(Action::parse_list(&["write".into()]).is_err());
    }

    #[test]
    fn namespace_and_topic_grants() {
        let mut p = Policies::default();
        p.auth_policies.namespace_auth.insert("ns-producer".into(), vec!["produce".into()]);
        let topic: TopicName = "persistent://a/ns/t".parse().unwrap();
        let other: TopicName = "persistent://a/ns/u".parse().unwrap();
        p.auth_policies
            .destination_auth
            .insert(topic_grant_key(&topic), BTreeMap::from([("t-consumer".to_string(), vec!["consume".to_string()])]));
        assert!(grants_allow(&p, &principal("ns-producer"), Some(&other), &[Action::Produce]));
        assert!(!grants_allow(&p, &principal("ns-producer"), Some(&other), &[Action::Consume]));
        assert!(grants_allow(&p, &principal("t-consumer"), Some(&topic), &[Action::Consume]));
        assert!(grants_allow(&p, &principal("t-consumer"), Some(&topic.partition(3)), &[Action::Consume]));
        assert!(!grants_allow(&p, &principal("t-consumer"), Some(&other), &[Action::Consume]));
        assert!(!grants_allow(&p, &principal("nobody"), Some(&topic), &[Action::Produce, Action::Consume]));
        // Several roles: any may grant.
        let multi = Principal { roles: vec!["nobody".into(), "ns-producer".into()], ..principal("x") };
        assert!(grants_allow(&p, &multi, Some(&topic), &[Action::Produce]));
    }

    #[test]
    fn rules_follow_pulsar() {
        assert_eq!(rule(Operation::CreateTenant), Rule::Superuser);
        assert_eq!(rule(Operation::CreateTopic), Rule::TenantAdmin);
        assert_eq!(rule(Operation::GrantPermission), Rule::TenantAdmin);
        assert_eq!(rule(Operation::ResetCursor), Rule::Consume);
        assert_eq!(rule(Operation::PeekMessages), Rule::Consume);
        assert_eq!(rule(Operation::GetTopicStats), Rule::ProduceOrConsume);
        assert_eq!(rule(Operation::Produce), Rule::Produce);
    }
}
