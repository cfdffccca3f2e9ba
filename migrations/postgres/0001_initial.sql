-- Magnetar metadata schema, PostgreSQL dialect. Keep in step with migrations/sqlite.
-- Times are epoch milliseconds (BIGINT); JSON documents are TEXT, read and written only by the
-- metadata crate. Constraint names are stable: violations are classified by the crate into
-- domain errors (unique -> already exists, foreign key -> parent not found).
-- Children are removed by ON DELETE CASCADE so that a force delete of a tenant, namespace or
-- topic is a single statement inside one transaction.

CREATE TABLE clusters (
    name                   TEXT NOT NULL,
    service_url            TEXT NOT NULL,
    service_url_tls        TEXT,
    broker_service_url     TEXT NOT NULL,
    broker_service_url_tls TEXT,
    peer_cluster_names     TEXT NOT NULL,  -- JSON array of strings
    CONSTRAINT clusters_pkey PRIMARY KEY (name)
);

CREATE TABLE tenants (
    name             TEXT   NOT NULL,
    admin_roles      TEXT   NOT NULL,  -- JSON array of strings
    allowed_clusters TEXT   NOT NULL,  -- JSON array of strings
    created_at       BIGINT NOT NULL,
    CONSTRAINT tenants_pkey PRIMARY KEY (name)
);

CREATE TABLE namespaces (
    tenant     TEXT   NOT NULL,
    name       TEXT   NOT NULL,  -- local name, without the tenant
    policies   TEXT   NOT NULL,  -- JSON: Pulsar's Policies
    version    BIGINT NOT NULL,  -- bumped by every policy update (optimistic concurrency)
    created_at BIGINT NOT NULL,
    CONSTRAINT namespaces_pkey PRIMARY KEY (tenant, name),
    CONSTRAINT namespaces_tenant_fkey FOREIGN KEY (tenant) REFERENCES tenants (name) ON DELETE CASCADE
);

CREATE TABLE topics (
    id         BIGSERIAL NOT NULL,
    tenant     TEXT      NOT NULL,
    namespace  TEXT      NOT NULL,
    domain     TEXT      NOT NULL,  -- persistent | non-persistent
    name       TEXT      NOT NULL,  -- local base name
    partitions BIGINT    NOT NULL,  -- 0 = non-partitioned
    properties TEXT      NOT NULL,  -- JSON object of strings
    policies   TEXT,                -- JSON topic-level policy overrides, NULL when none set
    created_at BIGINT    NOT NULL,
    CONSTRAINT topics_pkey PRIMARY KEY (id),
    CONSTRAINT topics_name_key UNIQUE (tenant, namespace, domain, name),
    CONSTRAINT topics_domain_check CHECK (domain IN ('persistent', 'non-persistent')),
    CONSTRAINT topics_partitions_check CHECK (partitions >= 0),
    CONSTRAINT topics_namespace_fkey FOREIGN KEY (tenant, namespace)
        REFERENCES namespaces (tenant, name) ON DELETE CASCADE
);

-- log_id is the identity of a partition's data for the lifetime of the store: a sequence never
-- hands out a value twice, so a re-created topic never sees a deleted topic's segments.
CREATE TABLE partitions (
    log_id   BIGSERIAL NOT NULL,
    topic_id BIGINT    NOT NULL,
    idx      BIGINT    NOT NULL,  -- -1 for a non-partitioned topic
    owner    TEXT,                -- broker currently owning the partition
    epoch    BIGINT    NOT NULL DEFAULT 0,  -- bumped on every acquisition; fences stale owners
    CONSTRAINT partitions_pkey PRIMARY KEY (log_id),
    CONSTRAINT partitions_topic_idx_key UNIQUE (topic_id, idx),
    CONSTRAINT partitions_topic_fkey FOREIGN KEY (topic_id) REFERENCES topics (id) ON DELETE CASCADE
);

CREATE TABLE subscriptions (
    log_id       BIGINT NOT NULL,
    name         TEXT   NOT NULL,
    mark_delete  BIGINT NOT NULL,
    acked_ranges TEXT   NOT NULL,  -- JSON array of [start, end) pairs above mark_delete
    created_at   BIGINT NOT NULL,
    CONSTRAINT subscriptions_pkey PRIMARY KEY (log_id, name),
    CONSTRAINT subscriptions_partition_fkey FOREIGN KEY (log_id) REFERENCES partitions (log_id) ON DELETE CASCADE
);

CREATE TABLE segments (
    log_id           BIGINT NOT NULL,
    base_offset      BIGINT NOT NULL,
    end_offset       BIGINT NOT NULL,  -- exclusive
    size_bytes       BIGINT NOT NULL,
    min_publish_time BIGINT NOT NULL,
    max_publish_time BIGINT NOT NULL,
    object_key       TEXT   NOT NULL,
    created_at       BIGINT NOT NULL,
    CONSTRAINT segments_pkey PRIMARY KEY (log_id, base_offset),
    CONSTRAINT segments_offsets_check CHECK (end_offset >= base_offset),
    CONSTRAINT segments_partition_fkey FOREIGN KEY (log_id) REFERENCES partitions (log_id) ON DELETE CASCADE
);

CREATE INDEX topics_namespace_idx ON topics (tenant, namespace);

-- Service accounts and tokens arrive in a later migration (0002_...); nothing here depends on them.
