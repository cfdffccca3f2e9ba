-- Topic termination, subscription properties, cluster failure domains, namespace isolation
-- policies and topic schemas, SQLite dialect. Keep in step with migrations/postgres.

-- Where a terminated partition ends for good (the offset its next record would have had);
-- NULL while the partition accepts messages.
ALTER TABLE partitions ADD COLUMN terminated_end BIGINT;

-- Pulsar's subscription properties: a JSON object of strings.
ALTER TABLE subscriptions ADD COLUMN properties TEXT NOT NULL DEFAULT '{}';

-- A cluster's failure domains: named groups of brokers (a broker is in at most one domain of a
-- cluster; the metadata crate checks it).
CREATE TABLE failure_domains (
    cluster TEXT NOT NULL,
    name    TEXT NOT NULL,
    brokers TEXT NOT NULL,  -- JSON array of broker addresses (host:port)
    CONSTRAINT failure_domains_pkey PRIMARY KEY (cluster, name),
    CONSTRAINT failure_domains_cluster_fkey FOREIGN KEY (cluster) REFERENCES clusters (name) ON DELETE CASCADE
);

-- A cluster's namespace isolation policies (Pulsar's NamespaceIsolationData as JSON): which
-- brokers serve which namespaces.
CREATE TABLE namespace_isolation_policies (
    cluster TEXT NOT NULL,
    name    TEXT NOT NULL,
    policy  TEXT NOT NULL,  -- JSON: namespaces, primary, secondary, auto_failover_policy
    CONSTRAINT namespace_isolation_policies_pkey PRIMARY KEY (cluster, name),
    CONSTRAINT namespace_isolation_policies_cluster_fkey FOREIGN KEY (cluster)
        REFERENCES clusters (name) ON DELETE CASCADE
);

-- Schema versions of a topic (the base topic: partitions share it). A row with a NULL schema
-- marks a deletion: versions keep counting after it, as Pulsar's do.
CREATE TABLE topic_schemas (
    topic_id   BIGINT NOT NULL,
    version    BIGINT NOT NULL,
    schema     TEXT,            -- JSON: Pulsar's SchemaInfo (type, schema, properties); NULL = deleted
    created_at BIGINT NOT NULL,
    CONSTRAINT topic_schemas_pkey PRIMARY KEY (topic_id, version),
    CONSTRAINT topic_schemas_topic_fkey FOREIGN KEY (topic_id) REFERENCES topics (id) ON DELETE CASCADE
);
