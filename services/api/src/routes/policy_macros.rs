//! The GET / POST / DELETE triplets of one policy, at the namespace level
//! (`/admin/v2/namespaces/{t}/{ns}/<policy>`) and at the topic level
//! (`/admin/v2/persistent/{t}/{ns}/{topic}/<policy>`, with Pulsar's `applied` parameter), written
//! once: each policy names its path, its body type and how it is read and written.

/// Three handlers for a policy held in the namespace's `Policies`: GET answers the namespace's
/// own value (`null` when it sets none), POST sets it (204; 412 for a value Pulsar refuses),
/// DELETE removes it (204). `read`, `write` and `clear` see the policies and this cluster's name
/// (rates are keyed by cluster).
/// POST sets the policy, as for most of Pulsar's; `set_method = put,` first for those Pulsar sets
/// with PUT.
macro_rules! namespace_policy {
    (
        $get:ident, $set:ident, $remove:ident, $path:literal, $ty:ty,
        get = $get_doc:literal, set = $set_doc:literal, remove = $remove_doc:literal,
        read = |$p:ident, $c:ident| $read:expr,
        write = |$pw:ident, $cw:ident, $v:ident| $write:expr,
        clear = |$pc:ident, $cc:ident| $clear:expr $(,)?
    ) => {
        namespace_policy!(
            set_method = post, $get, $set, $remove, $path, $ty,
            get = $get_doc, set = $set_doc, remove = $remove_doc,
            read = |$p, $c| $read,
            write = |$pw, $cw, $v| $write,
            clear = |$pc, $cc| $clear,
        );
    };
    (
        set_method = $method:ident, $get:ident, $set:ident, $remove:ident, $path:literal, $ty:ty,
        get = $get_doc:literal, set = $set_doc:literal, remove = $remove_doc:literal,
        read = |$p:ident, $c:ident| $read:expr,
        write = |$pw:ident, $cw:ident, $v:ident| $write:expr,
        clear = |$pc:ident, $cc:ident| $clear:expr $(,)?
    ) => {
        #[doc = $get_doc]
        #[utoipa::path(get, path = $path, tag = "namespaces", params(NamespaceParam),
            responses((status = 200, description = "the namespace's own value, or null when it sets none", body = Option<$ty>),
                BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
        async fn $get(
            State(s): State<AppState>,
            auth: AuthContext,
            NamespaceParam(name): NamespaceParam,
        ) -> ApiResult<Json<Option<$ty>>> {
            auth.check(Operation::GetNamespacePolicies, &name).await?;
            let $p = s.broker.admin().get_policies(&name).await?;
            let $c = s.broker.cluster();
            Ok(Json($read))
        }

        #[doc = $set_doc]
        #[utoipa::path($method, path = $path, tag = "namespaces", params(NamespaceParam), request_body = $ty,
            responses((status = 204, description = "set"),
                BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, PayloadTooLarge, Unavailable))]
        async fn $set(
            State(s): State<AppState>,
            auth: AuthContext,
            NamespaceParam(name): NamespaceParam,
            JsonBody(value): JsonBody<$ty>,
        ) -> ApiResult<StatusCode> {
            let $cw = s.broker.cluster().to_string();
            super::change_namespace_policies(&s, &auth, &name, |$pw| {
                let $v = value.clone();
                $write;
                Ok(())
            })
            .await
        }

        #[doc = $remove_doc]
        #[utoipa::path(delete, path = $path, tag = "namespaces", params(NamespaceParam),
            responses((status = 204, description = "removed: the broker's setting applies"),
                BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, Unavailable))]
        async fn $remove(
            State(s): State<AppState>,
            auth: AuthContext,
            NamespaceParam(name): NamespaceParam,
        ) -> ApiResult<StatusCode> {
            let $cc = s.broker.cluster().to_string();
            super::change_namespace_policies(&s, &auth, &name, |$pc| {
                $clear;
                Ok(())
            })
            .await
        }
    };
}

/// Three handlers for a topic-level policy held in the topic's `TopicPolicies`: GET answers the
/// topic's own value (`null` when it sets none) or, with `applied=true`, the value in force
/// (topic, else namespace, else broker); POST sets it, DELETE removes it (204). A partition's
/// name designates its topic's policies.
macro_rules! topic_policy {
    (
        $get:ident, $set:ident, $remove:ident, $path:literal, $ty:ty,
        get = $get_doc:literal, set = $set_doc:literal, remove = $remove_doc:literal,
        own = |$t:ident| $own:expr,
        applied = |$e:ident| $applied:expr,
        write = |$tw:ident, $v:ident| $write:expr,
        clear = |$tc:ident| $clear:expr $(,)?
    ) => {
        #[doc = $get_doc]
        #[utoipa::path(get, path = $path, tag = "persistent topic", params(TopicParam, AppliedQuery),
            responses((status = 200, description = "the topic's own value (null when it sets none), or with `applied=true` the value in force", body = Option<$ty>),
                BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
        async fn $get(
            State(s): State<AppState>,
            auth: AuthContext,
            TopicParam(topic): TopicParam,
            Query(q): Query<AppliedQuery>,
        ) -> ApiResult<Json<Option<$ty>>> {
            auth.check(Operation::GetTopicPolicy, &topic).await?;
            if q.applied {
                let $e = s.broker.topic_policies().effective(&topic).await?;
                return Ok(Json(Some($applied)));
            }
            let $t = s.broker.topic_policies().get(&topic).await?;
            Ok(Json($own))
        }

        #[doc = $set_doc]
        #[utoipa::path(post, path = $path, tag = "persistent topic", params(TopicParam), request_body = $ty,
            responses((status = 204, description = "set"),
                BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, PayloadTooLarge, Unavailable))]
        async fn $set(
            State(s): State<AppState>,
            auth: AuthContext,
            TopicParam(topic): TopicParam,
            JsonBody(value): JsonBody<$ty>,
        ) -> ApiResult<StatusCode> {
            super::change_topic_policies(&s, &auth, &topic, |$tw| {
                let $v = value;
                $write;
                Ok(())
            })
            .await
        }

        #[doc = $remove_doc]
        #[utoipa::path(delete, path = $path, tag = "persistent topic", params(TopicParam),
            responses((status = 204, description = "removed: the namespace's value applies"),
                BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unavailable))]
        async fn $remove(
            State(s): State<AppState>,
            auth: AuthContext,
            TopicParam(topic): TopicParam,
        ) -> ApiResult<StatusCode> {
            super::change_topic_policies(&s, &auth, &topic, |$tc| {
                $clear;
                Ok(())
            })
            .await
        }
    };
}
