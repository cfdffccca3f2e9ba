//! Namespace and topic policies in force: the precedence rule (`resolve`), the lock-free token
//! buckets of the rate limits (`limiter`), the state a loaded topic keeps (`runtime`), the
//! administration of topic-level policies (`admin`) and the enforcement points the publish and
//! subscribe paths call (`enforce`).

pub mod admin;
pub(crate) mod enforce;
pub mod limiter;
pub mod resolve;
pub mod runtime;

use crate::Result;
use crate::context::Context;
use crate::registry::{Topic, TopicRegistry};
use magnetar_core::{NamespaceName, Policies};
use resolve::EffectivePolicies;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Recomputes a loaded topic's policies in force from its own and its namespace's `ns`.
pub(crate) fn apply(ctx: &Context, topic: &Topic, ns: &Policies) {
    let e = EffectivePolicies::resolve(&topic.policy.own(), ns, &ctx.config);
    for p in &topic.partitions {
        let r = p.rates();
        p.policy.apply(&e, r.msg_in, r.bytes_in);
    }
    topic.policy.set_effective(e);
}

/// The policies in force for a loaded topic now: its own and its namespace's (through the policy
/// cache), resolved afresh. The background controllers (retention, TTL, backlog quotas,
/// offload) read this rather than the topic's last refresh.
pub(crate) async fn current(ctx: &Context, topic: &Topic) -> Result<EffectivePolicies> {
    let ns = ctx.cached_policies(topic.name().namespace()).await?;
    Ok(EffectivePolicies::resolve(&topic.policy.own(), &ns, &ctx.config))
}

/// Recomputes a loaded topic's policies with its namespace's through the policy cache.
pub(crate) async fn refresh_topic(ctx: &Context, topic: &Topic) -> Result<()> {
    let ns = ctx.cached_policies(topic.name().namespace()).await?;
    apply(ctx, topic, &ns);
    Ok(())
}

/// After a namespace's policies changed through this broker: its loaded topics apply them now.
pub(crate) async fn refresh_namespace(ctx: &Context, registry: &TopicRegistry, ns: &NamespaceName) {
    let topics: Vec<Arc<Topic>> = registry.loaded_topics().into_iter().filter(|t| t.name().namespace() == ns).collect();
    if topics.is_empty() {
        return;
    }
    match ctx.cached_policies(ns).await {
        Ok(p) => topics.iter().for_each(|t| apply(ctx, t, &p)),
        Err(e) => tracing::debug!(namespace = %ns, error = %e, "policies not refreshed"),
    }
}

/// One pass over every loaded topic (the periodic refresh): namespace policies through the
/// cache, so changes made through other brokers apply within the cache's TTL. With
/// `reload_own`, topic-level policies are read again from the store too (one query per
/// namespace).
pub(crate) async fn refresh_all(ctx: &Context, registry: &TopicRegistry, reload_own: bool) {
    let mut by_ns: BTreeMap<NamespaceName, Vec<Arc<Topic>>> = BTreeMap::new();
    for t in registry.loaded_topics() {
        by_ns.entry(t.name().namespace().clone()).or_default().push(t);
    }
    for (ns, topics) in by_ns {
        if reload_own && let Ok(records) = ctx.metadata.list_topics(&ns).await {
            for t in &topics {
                if let Some(r) = records.iter().find(|r| &r.name == t.name()) {
                    t.policy.set_own(runtime::parse_topic_policies(&r.name, r.policies.as_ref()));
                }
            }
        }
        match ctx.cached_policies(&ns).await {
            Ok(p) => topics.iter().for_each(|t| apply(ctx, t, &p)),
            Err(e) => tracing::debug!(namespace = %ns, error = %e, "policies not refreshed"),
        }
    }
}
