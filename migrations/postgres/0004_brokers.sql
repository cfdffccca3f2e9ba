-- Membership of the broker tier: one row per broker, renewed every couple of seconds (never one
-- lease row per partition). Times are milliseconds since the epoch on the database's clock, so
-- that every broker judges a lease by the same clock. No index beyond the key: the renewals
-- update lease and load in place.
CREATE TABLE brokers (
    broker_id TEXT PRIMARY KEY,
    -- Random per process start: a restarted broker is a new session of the same broker.
    session_id TEXT NOT NULL,
    cluster TEXT NOT NULL,
    internal_address TEXT NOT NULL,
    advertised_address TEXT NOT NULL,
    version TEXT NOT NULL,
    state TEXT NOT NULL,
    load_json TEXT NOT NULL,
    registered_at_ms BIGINT NOT NULL,
    lease_expires_at_ms BIGINT NOT NULL
);
