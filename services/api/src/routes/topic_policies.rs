//! `/admin/v2/persistent/{t}/{ns}/{topic}/<policy>`: topic-level overrides of the namespace's
//! limit and life policies, with Pulsar's `applied=true` answering the value in force (topic,
//! else namespace, else broker), and `/appliedPolicies` (Magnetar) listing every value in force
//! with the level it comes from.

use crate::AppState;
use crate::error::{
    ApiResult, BadRequest, Forbidden, NotFound, PayloadTooLarge, PreconditionFailed, Unauthorized, Unavailable,
};
use crate::extract::{AuthContext, JsonBody, Query, TopicParam};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use magnetar_auth::Operation;
use magnetar_broker::EffectivePolicies;
use magnetar_core::{
    AutoSubscriptionCreationOverride, DelayedDeliveryPolicies, DispatchRate, InactiveTopicPolicies, PublishRate,
    RetentionPolicies, SubscribeRate, SubscriptionTypeName,
};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_topic_max_producers, set_topic_max_producers, remove_topic_max_producers))
        .routes(routes!(get_topic_max_consumers, set_topic_max_consumers, remove_topic_max_consumers))
        .routes(routes!(
            get_topic_max_consumers_per_subscription,
            set_topic_max_consumers_per_subscription,
            remove_topic_max_consumers_per_subscription
        ))
        .routes(routes!(get_topic_max_subscriptions, set_topic_max_subscriptions, remove_topic_max_subscriptions))
        .routes(routes!(
            get_topic_max_unacked_on_consumer,
            set_topic_max_unacked_on_consumer,
            remove_topic_max_unacked_on_consumer
        ))
        .routes(routes!(
            get_topic_max_unacked_on_subscription,
            set_topic_max_unacked_on_subscription,
            remove_topic_max_unacked_on_subscription
        ))
        .routes(routes!(get_topic_publish_rate, set_topic_publish_rate, remove_topic_publish_rate))
        .routes(routes!(get_topic_dispatch_rate, set_topic_dispatch_rate, remove_topic_dispatch_rate))
        .routes(routes!(
            get_topic_subscription_dispatch_rate,
            set_topic_subscription_dispatch_rate,
            remove_topic_subscription_dispatch_rate
        ))
        .routes(routes!(get_topic_subscribe_rate, set_topic_subscribe_rate, remove_topic_subscribe_rate))
        .routes(routes!(
            get_topic_inactive_topic_policies,
            set_topic_inactive_topic_policies,
            remove_topic_inactive_topic_policies
        ))
        .routes(routes!(get_topic_delayed_delivery, set_topic_delayed_delivery, remove_topic_delayed_delivery))
        .routes(routes!(get_topic_subscription_types, set_topic_subscription_types, remove_topic_subscription_types))
        .routes(routes!(
            get_topic_auto_subscription_creation,
            set_topic_auto_subscription_creation,
            remove_topic_auto_subscription_creation
        ))
        .routes(routes!(get_topic_retention, set_topic_retention, remove_topic_retention))
        .routes(routes!(get_topic_message_ttl, set_topic_message_ttl, remove_topic_message_ttl))
        .routes(routes!(get_topic_max_message_size, set_topic_max_message_size, remove_topic_max_message_size))
        .routes(routes!(get_applied_policies))
}

/// `?applied=`: the value in force instead of the topic's own.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AppliedQuery {
    /// Answer the value in force: the topic's own, else its namespace's, else the broker's.
    #[serde(default)]
    pub(crate) applied: bool,
    /// Pulsar's global (geo-replicated) topic policies; accepted, ignored (there is one cluster).
    #[serde(default, rename = "isGlobal")]
    #[allow(dead_code)]
    is_global: bool,
}

topic_policy!(
    get_topic_max_producers,
    set_topic_max_producers,
    remove_topic_max_producers,
    "/admin/v2/persistent/{tenant}/{namespace}/{topic}/maxProducers",
    i32,
    get = "Get the most producers of a topic",
    set = "Set the most producers of a topic (0: no limit; the next WebSocket producer is refused with 409)",
    remove = "Remove the most producers of a topic",
    own = |t| t.max_producer_per_topic,
    applied = |e| e.max_producers_per_topic.value,
    write = |t, v| t.max_producer_per_topic = Some(v),
    clear = |t| t.max_producer_per_topic = None,
);

topic_policy!(
    get_topic_max_consumers,
    set_topic_max_consumers,
    remove_topic_max_consumers,
    "/admin/v2/persistent/{tenant}/{namespace}/{topic}/maxConsumers",
    i32,
    get = "Get the most consumers of a topic",
    set = "Set the most consumers of a topic (0: no limit; the next consumer or reader is refused with 409)",
    remove = "Remove the most consumers of a topic",
    own = |t| t.max_consumer_per_topic,
    applied = |e| e.max_consumers_per_topic.value,
    write = |t, v| t.max_consumer_per_topic = Some(v),
    clear = |t| t.max_consumer_per_topic = None,
);

topic_policy!(
    get_topic_max_consumers_per_subscription,
    set_topic_max_consumers_per_subscription,
    remove_topic_max_consumers_per_subscription,
    "/admin/v2/persistent/{tenant}/{namespace}/{topic}/maxConsumersPerSubscription",
    i32,
    get = "Get the most consumers per subscription of a topic",
    set = "Set the most consumers per subscription of a topic (0: no limit; the next one is refused with 409)",
    remove = "Remove the most consumers per subscription of a topic",
    own = |t| t.max_consumers_per_subscription,
    applied = |e| e.max_consumers_per_subscription.value,
    write = |t, v| t.max_consumers_per_subscription = Some(v),
    clear = |t| t.max_consumers_per_subscription = None,
);

topic_policy!(
    get_topic_max_subscriptions,
    set_topic_max_subscriptions,
    remove_topic_max_subscriptions,
    "/admin/v2/persistent/{tenant}/{namespace}/{topic}/maxSubscriptionsPerTopic",
    i32,
    get = "Get the most subscriptions of a topic",
    set = "Set the most subscriptions of a topic (0: no limit; creating one more is refused with 412)",
    remove = "Remove the most subscriptions of a topic",
    own = |t| t.max_subscriptions_per_topic,
    applied = |e| e.max_subscriptions_per_topic.value,
    write = |t, v| t.max_subscriptions_per_topic = Some(v),
    clear = |t| t.max_subscriptions_per_topic = None,
);

topic_policy!(
    get_topic_max_unacked_on_consumer,
    set_topic_max_unacked_on_consumer,
    remove_topic_max_unacked_on_consumer,
    "/admin/v2/persistent/{tenant}/{namespace}/{topic}/maxUnackedMessagesOnConsumer",
    i32,
    get = "Get the most unacknowledged messages per consumer of a topic",
    set = "Set the most unacknowledged messages per consumer of a topic (0: no limit)",
    remove = "Remove the most unacknowledged messages per consumer of a topic",
    own = |t| t.max_unacked_messages_on_consumer,
    applied = |e| e.max_unacked_messages_per_consumer.value,
    write = |t, v| t.max_unacked_messages_on_consumer = Some(v),
    clear = |t| t.max_unacked_messages_on_consumer = None,
);

topic_policy!(
    get_topic_max_unacked_on_subscription,
    set_topic_max_unacked_on_subscription,
    remove_topic_max_unacked_on_subscription,
    "/admin/v2/persistent/{tenant}/{namespace}/{topic}/maxUnackedMessagesOnSubscription",
    i32,
    get = "Get the most unacknowledged messages per subscription of a topic",
    set = "Set the most unacknowledged messages per subscription of a topic (0: the broker's bound)",
    remove = "Remove the most unacknowledged messages per subscription of a topic",
    own = |t| t.max_unacked_messages_on_subscription,
    applied = |e| e.max_unacked_messages_per_subscription.value,
    write = |t, v| t.max_unacked_messages_on_subscription = Some(v),
    clear = |t| t.max_unacked_messages_on_subscription = None,
);

topic_policy!(
    get_topic_publish_rate,
    set_topic_publish_rate,
    remove_topic_publish_rate,
    "/admin/v2/persistent/{tenant}/{namespace}/{topic}/publishRate",
    PublishRate,
    get = "Get the publish rate of a topic",
    set = "Set the publish rate of a topic (each partition; over it producers are throttled, not failed)",
    remove = "Remove the publish rate of a topic",
    own = |t| t.publish_rate,
    applied = |e| e.publish_rate.value,
    write = |t, v| t.publish_rate = Some(v),
    clear = |t| t.publish_rate = None,
);

topic_policy!(
    get_topic_dispatch_rate,
    set_topic_dispatch_rate,
    remove_topic_dispatch_rate,
    "/admin/v2/persistent/{tenant}/{namespace}/{topic}/dispatchRate",
    DispatchRate,
    get = "Get the dispatch rate of a topic",
    set = "Set the dispatch rate of a topic (each partition, shared by its subscriptions)",
    remove = "Remove the dispatch rate of a topic",
    own = |t| t.dispatch_rate,
    applied = |e| e.dispatch_rate.value,
    write = |t, v| t.dispatch_rate = Some(v),
    clear = |t| t.dispatch_rate = None,
);

topic_policy!(
    get_topic_subscription_dispatch_rate,
    set_topic_subscription_dispatch_rate,
    remove_topic_subscription_dispatch_rate,
    "/admin/v2/persistent/{tenant}/{namespace}/{topic}/subscriptionDispatchRate",
    DispatchRate,
    get = "Get the dispatch rate of each subscription of a topic",
    set = "Set the dispatch rate of each subscription of a topic",
    remove = "Remove the subscription dispatch rate of a topic",
    own = |t| t.subscription_dispatch_rate,
    applied = |e| e.subscription_dispatch_rate.value,
    write = |t, v| t.subscription_dispatch_rate = Some(v),
    clear = |t| t.subscription_dispatch_rate = None,
);

topic_policy!(
    get_topic_subscribe_rate,
    set_topic_subscribe_rate,
    remove_topic_subscribe_rate,
    "/admin/v2/persistent/{tenant}/{namespace}/{topic}/subscribeRate",
    SubscribeRate,
    get = "Get the subscribe rate per consumer of a topic",
    set = "Set the subscribe rate per consumer of a topic (over it a subscribe is refused with 429)",
    remove = "Remove the subscribe rate of a topic",
    own = |t| t.subscribe_rate,
    applied = |e| e.subscribe_rate.value,
    write = |t, v| t.subscribe_rate = Some(v),
    clear = |t| t.subscribe_rate = None,
);

topic_policy!(
    get_topic_inactive_topic_policies,
    set_topic_inactive_topic_policies,
    remove_topic_inactive_topic_policies,
    "/admin/v2/persistent/{tenant}/{namespace}/{topic}/inactiveTopicPolicies",
    InactiveTopicPolicies,
    get = "Get the inactive topic policies of a topic",
    set = "Set the inactive topic policies of a topic",
    remove = "Remove the inactive topic policies of a topic",
    own = |t| t.inactive_topic_policies,
    applied = |e| e.inactive_topic_policies.value,
    write = |t, v| t.inactive_topic_policies = Some(v),
    clear = |t| t.inactive_topic_policies = None,
);

topic_policy!(
    get_topic_delayed_delivery,
    set_topic_delayed_delivery,
    remove_topic_delayed_delivery,
    "/admin/v2/persistent/{tenant}/{namespace}/{topic}/delayedDelivery",
    DelayedDeliveryPolicies,
    get = "Get the delayed delivery policy of a topic",
    set = "Set the delayed delivery policy of a topic",
    remove = "Remove the delayed delivery policy of a topic",
    own = |t| t.delayed_delivery(),
    applied = |e| e.delayed_delivery.value,
    write = |t, v| t.set_delayed_delivery(Some(v)),
    clear = |t| t.set_delayed_delivery(None),
);

topic_policy!(
    get_topic_subscription_types,
    set_topic_subscription_types,
    remove_topic_subscription_types,
    "/admin/v2/persistent/{tenant}/{namespace}/{topic}/subscriptionTypesEnabled",
    Vec<SubscriptionTypeName>,
    get = "Get the subscription types enabled on a topic (empty: inherited)",
    set = "Set the subscription types enabled on a topic",
    remove = "Remove the subscription types enabled on a topic",
    own = |t| Some(t.subscription_types_enabled),
    applied = |e| e.subscription_types_enabled.value,
    write = |t, v| t.subscription_types_enabled = {
        let mut v = v;
        v.sort();
        v.dedup();
        v
    },
    clear = |t| t.subscription_types_enabled.clear(),
);

topic_policy!(
    get_topic_auto_subscription_creation,
    set_topic_auto_subscription_creation,
    remove_topic_auto_subscription_creation,
    "/admin/v2/persistent/{tenant}/{namespace}/{topic}/autoSubscriptionCreation",
    AutoSubscriptionCreationOverride,
    get = "Get the automatic subscription creation override of a topic",
    set = "Set the automatic subscription creation override of a topic",
    remove = "Remove the automatic subscription creation override of a topic",
    own = |t| t.auto_subscription_creation_override,
    applied = |e| e.auto_subscription_creation.value,
    write = |t, v| t.auto_subscription_creation_override = Some(v),
    clear = |t| t.auto_subscription_creation_override = None,
);

topic_policy!(
    get_topic_retention,
    set_topic_retention,
    remove_topic_retention,
    "/admin/v2/persistent/{tenant}/{namespace}/{topic}/retention",
    RetentionPolicies,
    get = "Get the retention of a topic",
    set = "Set the retention of a topic (-1: infinite, 0: none; acknowledged messages past it are deleted)",
    remove = "Remove the retention of a topic",
    own = |t| t.retention_policies,
    applied = |e| e.retention_policies.value,
    write = |t, v| t.retention_policies = Some(v),
    clear = |t| t.retention_policies = None,
);

topic_policy!(
    get_topic_max_message_size,
    set_topic_max_message_size,
    remove_topic_max_message_size,
    "/admin/v2/persistent/{tenant}/{namespace}/{topic}/maxMessageSize",
    i32,
    get = "Get the largest message of a topic",
    set = "Set the largest message of a topic in bytes (0: the broker's; at most the broker's, else 412)",
    remove = "Remove the largest message of a topic",
    own = |t| t.max_message_size,
    applied = |e| e.max_message_size.value,
    write = |t, v| t.max_message_size = Some(v),
    clear = |t| t.max_message_size = None,
);

/// `?messageTTL=`: Pulsar sets a topic's TTL by a query parameter, not a body.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessageTtlQuery {
    /// Seconds, 0 or more (0: messages do not expire).
    #[serde(rename = "messageTTL")]
    message_ttl: i32,
}

/// Get the message TTL of a topic
///
/// Seconds, `null` when the topic sets none; with `applied=true` the TTL in force (topic, else
/// namespace, else 0: none).
#[utoipa::path(get, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/messageTTL",
    tag = "persistent topic", params(TopicParam, AppliedQuery),
    responses((status = 200, description = "seconds, or null", body = Option<i32>),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn get_topic_message_ttl(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
    Query(q): Query<AppliedQuery>,
) -> ApiResult<Json<Option<i32>>> {
    auth.check(Operation::GetTopicPolicy, &topic).await?;
    if q.applied {
        return Ok(Json(Some(s.broker.topic_policies().effective(&topic).await?.message_ttl_in_seconds.value)));
    }
    Ok(Json(s.broker.topic_policies().get(&topic).await?.message_ttl_in_seconds))
}

/// Set the message TTL of a topic
///
/// `?messageTTL=` seconds, 0 or more (412 otherwise): unacknowledged messages older than this
/// expire.
#[utoipa::path(post, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/messageTTL",
    tag = "persistent topic", params(TopicParam, MessageTtlQuery),
    responses((status = 204, description = "set"),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn set_topic_message_ttl(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
    Query(q): Query<MessageTtlQuery>,
) -> ApiResult<StatusCode> {
    super::change_topic_policies(&s, &auth, &topic, |t| {
        t.message_ttl_in_seconds = Some(q.message_ttl);
        Ok(())
    })
    .await
}

/// Remove the message TTL of a topic
#[utoipa::path(delete, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/messageTTL",
    tag = "persistent topic", params(TopicParam),
    responses((status = 204, description = "removed: the namespace's value applies"),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn remove_topic_message_ttl(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
) -> ApiResult<StatusCode> {
    super::change_topic_policies(&s, &auth, &topic, |t| {
        t.message_ttl_in_seconds = None;
        Ok(())
    })
    .await
}

/// Every policy in force on a topic (Magnetar)
///
/// Each value with the level it comes from: `topic`, `namespace` or `broker`.
#[utoipa::path(get, path = "/admin/v2/persistent/{tenant}/{namespace}/{topic}/appliedPolicies",
    tag = "persistent topic", params(TopicParam),
    responses((status = 200, description = "values in force and their levels", body = EffectivePolicies),
        BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
async fn get_applied_policies(
    State(s): State<AppState>,
    auth: AuthContext,
    TopicParam(topic): TopicParam,
) -> ApiResult<Json<EffectivePolicies>> {
    auth.check(Operation::GetTopicPolicy, &topic).await?;
    Ok(Json(s.broker.topic_policies().effective(&topic).await?))
}
