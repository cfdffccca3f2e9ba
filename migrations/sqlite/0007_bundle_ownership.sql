-- Ownership of namespace bundles by the brokers of the tier (issue 11): one row per bundle in
-- use, created free on first need and assigned by the leader. `epoch` is bumped by every change
-- and every transition is conditional on it (and on the state), so a broker acting on a stale
-- view is refused. The owner's session ties the row to one process of the owner: a restarted
-- broker takes its own bundles back under its new session, nobody else takes them silently.
CREATE TABLE bundle_ownership (
    tenant        TEXT   NOT NULL,
    namespace     TEXT   NOT NULL,  -- local name, without the tenant
    bundle        TEXT   NOT NULL,  -- Pulsar's range text, 0x00000000_0x40000000
    state         TEXT   NOT NULL,  -- free, assigning, owned, releasing
    owner         TEXT,             -- broker id (brokers.broker_id), none while free
    owner_session TEXT,
    epoch         BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    CONSTRAINT bundle_ownership_pkey PRIMARY KEY (tenant, namespace, bundle),
    CONSTRAINT bundle_ownership_namespace_fkey FOREIGN KEY (tenant, namespace)
        REFERENCES namespaces (tenant, name) ON DELETE CASCADE
);
