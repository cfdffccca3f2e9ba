//! `/admin/v2/namespaces/{t}/{ns}/...`: the namespace policies that limit a topic's clients —
//! producers, consumers, subscriptions, topics and unacknowledged messages, and the publish,
//! dispatch, subscription-dispatch and subscribe rates. Pulsar's paths and bare bodies; each is
//! enforced by the broker for every topic of the namespace that does not override it
//! (topic → namespace → broker setting).

use crate::AppState;
use crate::error::{
    ApiResult, BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, PreconditionFailed, Unauthorized,
    Unavailable,
};
use crate::extract::{AuthContext, JsonBody, NamespaceParam};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use magnetar_auth::Operation;
use magnetar_core::{DispatchRate, PublishRate, SubscribeRate};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_max_producers, set_max_producers, remove_max_producers))
        .routes(routes!(get_max_consumers, set_max_consumers, remove_max_consumers))
        .routes(routes!(
            get_max_consumers_per_subscription,
            set_max_consumers_per_subscription,
            remove_max_consumers_per_subscription
        ))
        .routes(routes!(get_max_subscriptions, set_max_subscriptions, remove_max_subscriptions))
        .routes(routes!(get_max_topics, set_max_topics, remove_max_topics))
        .routes(routes!(get_max_unacked_per_consumer, set_max_unacked_per_consumer, remove_max_unacked_per_consumer))
        .routes(routes!(
            get_max_unacked_per_subscription,
            set_max_unacked_per_subscription,
            remove_max_unacked_per_subscription
        ))
        .routes(routes!(get_publish_rate, set_publish_rate, remove_publish_rate))
        .routes(routes!(get_dispatch_rate, set_dispatch_rate, remove_dispatch_rate))
        .routes(routes!(
            get_subscription_dispatch_rate,
            set_subscription_dispatch_rate,
            remove_subscription_dispatch_rate
        ))
        .routes(routes!(get_subscribe_rate, set_subscribe_rate, remove_subscribe_rate))
}

namespace_policy!(
    get_max_producers,
    set_max_producers,
    remove_max_producers,
    "/admin/v2/namespaces/{tenant}/{namespace}/maxProducersPerTopic",
    i32,
    get = "Get the most producers per topic of a namespace",
    set = "Set the most producers per topic of a namespace (0: no limit; WebSocket producer sessions count, per partition; the next one is refused with 409)",
    remove = "Remove the most producers per topic of a namespace",
    read = |p, _c| p.max_producers_per_topic,
    write = |p, _c, v| p.max_producers_per_topic = Some(v),
    clear = |p, _c| p.max_producers_per_topic = None,
);

namespace_policy!(
    get_max_consumers,
    set_max_consumers,
    remove_max_consumers,
    "/admin/v2/namespaces/{tenant}/{namespace}/maxConsumersPerTopic",
    i32,
    get = "Get the most consumers per topic of a namespace",
    set = "Set the most consumers per topic of a namespace (0: no limit; WebSocket consumers and readers count, per partition; the next one is refused with 409)",
    remove = "Remove the most consumers per topic of a namespace",
    read = |p, _c| p.max_consumers_per_topic,
    write = |p, _c, v| p.max_consumers_per_topic = Some(v),
    clear = |p, _c| p.max_consumers_per_topic = None,
);

namespace_policy!(
    get_max_consumers_per_subscription,
    set_max_consumers_per_subscription,
    remove_max_consumers_per_subscription,
    "/admin/v2/namespaces/{tenant}/{namespace}/maxConsumersPerSubscription",
    i32,
    get = "Get the most consumers per subscription of a namespace",
    set = "Set the most consumers per subscription of a namespace (0: no limit; the next one is refused with 409)",
    remove = "Remove the most consumers per subscription of a namespace",
    read = |p, _c| p.max_consumers_per_subscription,
    write = |p, _c, v| p.max_consumers_per_subscription = Some(v),
    clear = |p, _c| p.max_consumers_per_subscription = None,
);

namespace_policy!(
    get_max_subscriptions,
    set_max_subscriptions,
    remove_max_subscriptions,
    "/admin/v2/namespaces/{tenant}/{namespace}/maxSubscriptionsPerTopic",
    i32,
    get = "Get the most subscriptions per topic of a namespace",
    set = "Set the most subscriptions per topic of a namespace (0: no limit; creating one more is refused with 412)",
    remove = "Remove the most subscriptions per topic of a namespace",
    read = |p, _c| p.max_subscriptions_per_topic,
    write = |p, _c, v| p.max_subscriptions_per_topic = Some(v),
    clear = |p, _c| p.max_subscriptions_per_topic = None,
);

namespace_policy!(
    get_max_topics,
    set_max_topics,
    remove_max_topics,
    "/admin/v2/namespaces/{tenant}/{namespace}/maxTopicsPerNamespace",
    i32,
    get = "Get the most topics of a namespace",
    set = "Set the most topics of a namespace (0: no limit; partitions count one each; creating more is refused with 412)",
    remove = "Remove the most topics of a namespace",
    read = |p, _c| p.max_topics_per_namespace,
    write = |p, _c, v| p.max_topics_per_namespace = Some(v),
    clear = |p, _c| p.max_topics_per_namespace = None,
);

namespace_policy!(
    get_max_unacked_per_consumer,
    set_max_unacked_per_consumer,
    remove_max_unacked_per_consumer,
    "/admin/v2/namespaces/{tenant}/{namespace}/maxUnackedMessagesPerConsumer",
    i32,
    get = "Get the most unacknowledged messages per consumer of a namespace",
    set = "Set the most unacknowledged messages per consumer of a namespace (0: no limit; a consumer at it gets nothing more until it acknowledges)",
    remove = "Remove the most unacknowledged messages per consumer of a namespace",
    read = |p, _c| p.max_unacked_messages_per_consumer,
    write = |p, _c, v| p.max_unacked_messages_per_consumer = Some(v),
    clear = |p, _c| p.max_unacked_messages_per_consumer = None,
);

namespace_policy!(
    get_max_unacked_per_subscription,
    set_max_unacked_per_subscription,
    remove_max_unacked_per_subscription,
    "/admin/v2/namespaces/{tenant}/{namespace}/maxUnackedMessagesPerSubscription",
    i32,
    get = "Get the most unacknowledged messages per subscription of a namespace",
    set = "Set the most unacknowledged messages per subscription of a namespace (0: the broker's bound; a subscription at it delivers nothing more until acknowledged)",
    remove = "Remove the most unacknowledged messages per subscription of a namespace",
    read = |p, _c| p.max_unacked_messages_per_subscription,
    write = |p, _c, v| p.max_unacked_messages_per_subscription = Some(v),
    clear = |p, _c| p.max_unacked_messages_per_subscription = None,
);

namespace_policy!(
    get_publish_rate,
    set_publish_rate,
    remove_publish_rate,
    "/admin/v2/namespaces/{tenant}/{namespace}/publishRate",
    PublishRate,
    get = "Get the publish rate of each topic of a namespace",
    set = "Set the publish rate of each topic of a namespace (each partition; over it producers are throttled, not failed)",
    remove = "Remove the publish rate of a namespace",
    read = |p, c| p.publish_max_message_rate.get(c).copied(),
    write = |p, c, v| p.publish_max_message_rate.insert(c.clone(), v),
    clear = |p, c| p.publish_max_message_rate.remove(&c),
);

namespace_policy!(
    get_dispatch_rate,
    set_dispatch_rate,
    remove_dispatch_rate,
    "/admin/v2/namespaces/{tenant}/{namespace}/dispatchRate",
    DispatchRate,
    get = "Get the dispatch rate of each topic of a namespace",
    set = "Set the dispatch rate of each topic of a namespace (each partition, shared by its subscriptions; deliveries are paced)",
    remove = "Remove the dispatch rate of a namespace",
    read = |p, c| p.topic_dispatch_rate.get(c).copied(),
    write = |p, c, v| p.topic_dispatch_rate.insert(c.clone(), v),
    clear = |p, c| p.topic_dispatch_rate.remove(&c),
);

namespace_policy!(
    get_subscription_dispatch_rate,
    set_subscription_dispatch_rate,
    remove_subscription_dispatch_rate,
    "/admin/v2/namespaces/{tenant}/{namespace}/subscriptionDispatchRate",
    DispatchRate,
    get = "Get the dispatch rate of each subscription of a namespace",
    set = "Set the dispatch rate of each subscription of a namespace (deliveries are paced)",
    remove = "Remove the subscription dispatch rate of a namespace",
    read = |p, c| p.subscription_dispatch_rate.get(c).copied(),
    write = |p, c, v| p.subscription_dispatch_rate.insert(c.clone(), v),
    clear = |p, c| p.subscription_dispatch_rate.remove(&c),
);

namespace_policy!(
    get_subscribe_rate,
    set_subscribe_rate,
    remove_subscribe_rate,
    "/admin/v2/namespaces/{tenant}/{namespace}/subscribeRate",
    SubscribeRate,
    get = "Get the subscribe rate per consumer of a namespace",
    set = "Set the subscribe rate per consumer of a namespace (a consumer, by host and name, subscribing more often on a topic is refused with 429)",
    remove = "Remove the subscribe rate of a namespace",
    read = |p, c| p.cluster_subscribe_rate.get(c).copied(),
    write = |p, c, v| p.cluster_subscribe_rate.insert(c.clone(), v),
    clear = |p, c| p.cluster_subscribe_rate.remove(&c),
);
