//! Operation names as text (the variant names, e.g. `CreateTopic`), for callers that ask the
//! authorizer about operations by name: the console's `POST /admin/v2/auth/allowed`.

use crate::AuthError;
use crate::authorize::Operation;

/// Every operation, in declaration order. A new variant of [`Operation`] must be added here too
/// (the test below fails until it is: it checks the names round-trip and the count).
pub const ALL_OPERATIONS: [Operation; 73] = [
    Operation::ListClusters,
    Operation::GetCluster,
    Operation::ListBrokers,
    Operation::BrokerHealth,
    Operation::LeaderBroker,
    Operation::Metrics,
    Operation::CreateCluster,
    Operation::UpdateCluster,
    Operation::DeleteCluster,
    Operation::GetBrokerConfiguration,
    Operation::UpdateBrokerConfiguration,
    Operation::ShutdownBroker,
    Operation::ListTenants,
    Operation::GetTenant,
    Operation::CreateTenant,
    Operation::UpdateTenant,
    Operation::DeleteTenant,
    Operation::ListNamespaces,
    Operation::CreateNamespace,
    Operation::DeleteNamespace,
    Operation::GetNamespacePolicies,
    Operation::SetNamespacePolicy,
    Operation::ListNamespaceTopics,
    Operation::GetPermissions,
    Operation::GrantPermission,
    Operation::RevokePermission,
    Operation::SetSubscriptionAuthMode,
    Operation::ClearBacklog,
    Operation::UnloadNamespace,
    Operation::ListTopics,
    Operation::LookupTopic,
    Operation::CreateTopic,
    Operation::DeleteTopic,
    Operation::UpdatePartitions,
    Operation::GetPartitions,
    Operation::GetTopicStats,
    Operation::GetInternalStats,
    Operation::GetLastMessageId,
    Operation::GetTopicPolicy,
    Operation::SetTopicPolicy,
    Operation::TerminateTopic,
    Operation::UnloadTopic,
    Operation::CompactTopic,
    Operation::OffloadTopic,
    Operation::GetOffloadStatus,
    Operation::TruncateTopic,
    Operation::TrimTopic,
    Operation::GetTopicProperties,
    Operation::UpdateTopicProperties,
    Operation::GetSchema,
    Operation::UpdateSchema,
    Operation::DeleteSchema,
    Operation::ListSubscriptions,
    Operation::CreateSubscription,
    Operation::DeleteSubscription,
    Operation::SkipMessages,
    Operation::ResetCursor,
    Operation::PeekMessages,
    Operation::ExpireMessages,
    Operation::GetBacklogSize,
    Operation::AnalyzeBacklog,
    Operation::GetSubscriptionProperties,
    Operation::UpdateSubscriptionProperties,
    Operation::Produce,
    Operation::Consume,
    Operation::Read,
    Operation::ListServiceAccounts,
    Operation::CreateServiceAccount,
    Operation::GetServiceAccount,
    Operation::DeleteServiceAccount,
    Operation::CreateServiceAccountToken,
    Operation::ListServiceAccountTokens,
    Operation::RevokeServiceAccountToken,
];

impl Operation {
    /// The variant name, e.g. `CreateTopic`.
    pub fn as_str(self) -> String {
        format!("{self:?}")
    }
}

impl std::str::FromStr for Operation {
    type Err = AuthError;

    fn from_str(s: &str) -> Result<Operation, AuthError> {
        ALL_OPERATIONS
            .iter()
            .copied()
            .find(|op| op.as_str() == s)
            .ok_or_else(|| AuthError::BadRequest(format!("unknown operation `{s}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for op in ALL_OPERATIONS {
            assert_eq!(op.as_str().parse::<Operation>().unwrap(), op);
        }
        assert_eq!("CreateTopic".parse::<Operation>().unwrap(), Operation::CreateTopic);
        assert!("createTopic".parse::<Operation>().is_err());
    }

    #[test]
    fn every_variant_is_listed() {
        let src = include_str!("authorize.rs");
        let body = &src[src.find("pub enum Operation {").expect("enum")..];
        let body = &body[..body.find("\n}\n").expect("end")];
        let declared = body
            .lines()
            .map(str::trim)
            .filter(|l| l.ends_with(',') && l.chars().next().is_some_and(|c| c.is_ascii_uppercase()))
            .count();
        assert_eq!(declared, ALL_OPERATIONS.len(), "a new Operation variant is missing from ALL_OPERATIONS");
    }
}
