-- The `pulsar+ssl://` URL of each broker's TLS listener for clients; empty when it has none. With
-- `lookup_owner_address`, a lookup from a TLS client names the owner's TLS URL, so that the
-- client connects to the owner directly, as plain clients do.
ALTER TABLE brokers ADD COLUMN binary_advertised_tls_url TEXT NOT NULL DEFAULT '';
