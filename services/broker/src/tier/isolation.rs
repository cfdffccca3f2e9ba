//! Namespace isolation policies in placement: which live brokers may own a bundle.
//!
//! As Pulsar places: a namespace matched by a policy of the cluster goes to the policy's primary
//! brokers, and also to its secondary ones when fewer than `min_limit` primaries are alive
//! (`min_available`, the only failover policy Pulsar has); with none of them alive the bundle
//! waits (stays free) rather than land on a broker the operator excluded. Any other namespace
//! goes to the shared brokers, those no policy names; when every broker is named by some policy
//! it goes to any broker, so that an isolation policy never makes an unrelated namespace
//! unavailable. Patterns match the whole broker id or advertised address, and the whole
//! `tenant/namespace`, as Pulsar's regular expressions match whole names.

use magnetar_metadata::NamespaceIsolationData;
use regex::Regex;

/// One live broker as placement sees it.
pub(crate) struct Candidate<'a> {
    pub id: &'a str,
    pub advertised: &'a str,
}

fn full(pattern: &str) -> Option<Regex> {
    // Patterns were validated when stored; one that no longer compiles matches nothing.
    Regex::new(&format!("^(?:{pattern})$")).ok()
}

fn any_matches(patterns: &[String], name: &str) -> bool {
    patterns.iter().filter_map(|p| full(p)).any(|r| r.is_match(name))
}

fn names(patterns: &[String], c: &Candidate) -> bool {
    any_matches(patterns, c.id) || any_matches(patterns, c.advertised)
}

/// The ids of the `live` brokers that may own a bundle of `namespace` (see the module docs).
pub(crate) fn eligible<'a>(
    policies: &[NamespaceIsolationData],
    namespace: &str,
    live: &[Candidate<'a>],
) -> Vec<&'a str> {
    let ids = |keep: &dyn Fn(&Candidate) -> bool| live.iter().filter(|c| keep(c)).map(|c| c.id).collect::<Vec<_>>();
    if let Some(p) = policies.iter().find(|p| any_matches(&p.namespaces, namespace)) {
        let primary = ids(&|c| names(&p.primary, c));
        let min_limit: usize =
            p.auto_failover_policy.parameters.get("min_limit").and_then(|v| v.parse().ok()).unwrap_or(1);
        if primary.len() >= min_limit.max(1) {
            return primary;
        }
        let mut both = primary;
        both.extend(ids(&|c| names(&p.secondary, c) && !names(&p.primary, c)));
        return both;
    }
    let shared = ids(&|c| !policies.iter().any(|p| names(&p.primary, c) || names(&p.secondary, c)));
    if shared.is_empty() { ids(&|_| true) } else { shared }
}

#[cfg(test)]
mod tests {
    use super::*;
    use magnetar_metadata::AutoFailoverPolicyData;
    use std::collections::BTreeMap;

    fn policy(namespaces: &str, primary: &str, secondary: &str, min_limit: u32) -> NamespaceIsolationData {
        NamespaceIsolationData {
            namespaces: vec![namespaces.into()],
            primary: vec![primary.into()],
            secondary: if secondary.is_empty() { vec![] } else { vec![secondary.into()] },
            auto_failover_policy: AutoFailoverPolicyData {
                policy_type: "min_available".into(),
                parameters: BTreeMap::from([
                    ("min_limit".into(), min_limit.to_string()),
                    ("usage_threshold".into(), "80".into()),
                ]),
            },
        }
    }

    fn live<'a>(ids: &[&'a str]) -> Vec<Candidate<'a>> {
        ids.iter().map(|id| Candidate { id, advertised: "127.0.0.1:1" }).collect()
    }

    #[test]
    fn a_pinned_namespace_goes_to_its_primaries_and_others_to_the_shared_brokers() {
        let policies = [policy("acme/.*", "b1|b2", "b3", 1)];
        let brokers = live(&["b1", "b2", "b3", "b4"]);
        assert_eq!(eligible(&policies, "acme/orders", &brokers), ["b1", "b2"]);
        assert_eq!(eligible(&policies, "other/ns", &brokers), ["b4"], "b1-b3 are named by a policy");
        // Whole names only: `acme/.*` does not match `xacme/ns`, `b1` does not match `b10`.
        assert_eq!(eligible(&policies, "xacme/ns", &live(&["b10", "b4"])), ["b10", "b4"]);
    }

    #[test]
    fn secondaries_join_when_too_few_primaries_are_alive_and_nothing_else_ever_does() {
        let policies = [policy("acme/.*", "b1|b2", "b3", 2)];
        assert_eq!(eligible(&policies, "acme/orders", &live(&["b1", "b3", "b4"])), ["b1", "b3"]);
        assert!(eligible(&policies, "acme/orders", &live(&["b4"])).is_empty(), "the bundle waits");
        // Every broker named by a policy: other namespaces may use any of them.
        assert_eq!(eligible(&policies, "other/ns", &live(&["b1", "b3"])), ["b1", "b3"]);
    }
}
