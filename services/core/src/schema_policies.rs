//! Pulsar's schema policies: the compatibility strategy a topic's schema registry judges a new
//! version by, and its deprecated namespace-level predecessor (the "auto update" strategy),
//! with Pulsar's wire names.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Pulsar's `SchemaCompatibilityStrategy`: which new schema versions may follow the stored ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SchemaCompatibilityStrategy {
    /// Inherit: the namespace's auto-update strategy if it sets one, else the broker's rule.
    Undefined,
    /// Once a version exists, no other may follow.
    AlwaysIncompatible,
    /// Any schema may follow, of any type.
    AlwaysCompatible,
    /// Readers of the new version read data of the latest one.
    Backward,
    /// Readers of the latest version read data of the new one.
    Forward,
    /// Backward and forward.
    Full,
    /// Backward against every live version.
    BackwardTransitive,
    /// Forward against every live version.
    ForwardTransitive,
    /// Full against every live version.
    FullTransitive,
}

impl SchemaCompatibilityStrategy {
    /// Whether new versions are judged against every live version rather than the latest.
    pub fn is_transitive(self) -> bool {
        matches!(self, Self::BackwardTransitive | Self::ForwardTransitive | Self::FullTransitive)
    }

    /// Readers of the new version must read data written with earlier ones.
    pub fn checks_backward(self) -> bool {
        matches!(self, Self::Backward | Self::BackwardTransitive | Self::Full | Self::FullTransitive)
    }

    /// Readers of earlier versions must read data written with the new one.
    pub fn checks_forward(self) -> bool {
        matches!(self, Self::Forward | Self::ForwardTransitive | Self::Full | Self::FullTransitive)
    }

    /// The wire name (`FULL_TRANSITIVE`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Undefined => "UNDEFINED",
            Self::AlwaysIncompatible => "ALWAYS_INCOMPATIBLE",
            Self::AlwaysCompatible => "ALWAYS_COMPATIBLE",
            Self::Backward => "BACKWARD",
            Self::Forward => "FORWARD",
            Self::Full => "FULL",
            Self::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Self::ForwardTransitive => "FORWARD_TRANSITIVE",
            Self::FullTransitive => "FULL_TRANSITIVE",
        }
    }
}

/// Pulsar's deprecated `SchemaAutoUpdateCompatibilityStrategy`; in force, as in Pulsar, when the
/// compatibility strategy is `UNDEFINED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum SchemaAutoUpdateCompatibilityStrategy {
    AutoUpdateDisabled,
    Backward,
    Forward,
    Full,
    AlwaysCompatible,
    BackwardTransitive,
    ForwardTransitive,
    FullTransitive,
}

impl From<SchemaAutoUpdateCompatibilityStrategy> for SchemaCompatibilityStrategy {
    /// Pulsar's `SchemaCompatibilityStrategy.fromAutoUpdatePolicy`.
    fn from(s: SchemaAutoUpdateCompatibilityStrategy) -> Self {
        use SchemaAutoUpdateCompatibilityStrategy as A;
        match s {
            A::AutoUpdateDisabled => Self::AlwaysIncompatible,
            A::Backward => Self::Backward,
            A::Forward => Self::Forward,
            A::Full => Self::Full,
            A::AlwaysCompatible => Self::AlwaysCompatible,
            A::BackwardTransitive => Self::BackwardTransitive,
            A::ForwardTransitive => Self::ForwardTransitive,
            A::FullTransitive => Self::FullTransitive,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_are_pulsars() {
        let s: SchemaCompatibilityStrategy = serde_json::from_str(r#""BACKWARD_TRANSITIVE""#).unwrap();
        assert_eq!(s, SchemaCompatibilityStrategy::BackwardTransitive);
        assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        let a: SchemaAutoUpdateCompatibilityStrategy = serde_json::from_str(r#""AutoUpdateDisabled""#).unwrap();
        assert_eq!(SchemaCompatibilityStrategy::from(a), SchemaCompatibilityStrategy::AlwaysIncompatible);
    }
}
