-- Service accounts (Magnetar's self-service identities) and their tokens, PostgreSQL dialect.
-- Keep in step with migrations/sqlite. A token's secret is never stored: only its id (the JWT
-- `jti`). Deleting a token row, directly or through a cascade from its account or tenant,
-- records the id in revoked_tokens (trigger below), which every broker polls by `seq`.

CREATE TABLE service_accounts (
    tenant      TEXT   NOT NULL,
    name        TEXT   NOT NULL,
    description TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    CONSTRAINT service_accounts_pkey PRIMARY KEY (tenant, name),
    CONSTRAINT service_accounts_tenant_fkey FOREIGN KEY (tenant) REFERENCES tenants (name) ON DELETE CASCADE
);

CREATE TABLE service_account_tokens (
    id         TEXT   NOT NULL,  -- the token's jti
    tenant     TEXT   NOT NULL,
    account    TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,           -- epoch ms, NULL = never
    CONSTRAINT service_account_tokens_pkey PRIMARY KEY (id),
    CONSTRAINT service_account_tokens_account_fkey FOREIGN KEY (tenant, account)
        REFERENCES service_accounts (tenant, name) ON DELETE CASCADE
);

CREATE INDEX service_account_tokens_account_idx ON service_account_tokens (tenant, account);

CREATE TABLE revoked_tokens (
    seq        BIGSERIAL NOT NULL,
    token_id   TEXT      NOT NULL,
    expires_at BIGINT,              -- epoch ms, NULL = never; the row is useless after it
    revoked_at BIGINT    NOT NULL,
    CONSTRAINT revoked_tokens_pkey PRIMARY KEY (seq),
    CONSTRAINT revoked_tokens_token_key UNIQUE (token_id)
);

CREATE FUNCTION record_token_revocation() RETURNS trigger AS $$
BEGIN
    INSERT INTO revoked_tokens (token_id, expires_at, revoked_at)
    VALUES (OLD.id, OLD.expires_at, (extract(epoch FROM clock_timestamp()) * 1000)::bigint)
    ON CONFLICT (token_id) DO NOTHING;
    RETURN OLD;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER service_account_tokens_revoke AFTER DELETE ON service_account_tokens
    FOR EACH ROW EXECUTE FUNCTION record_token_revocation();
