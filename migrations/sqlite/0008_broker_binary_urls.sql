-- The `pulsar://` URLs of each broker's binary-protocol listener: the one the other brokers of the
-- tier reach it at (binary connections are proxied there) and the one clients may be given. Empty
-- when the broker serves no binary protocol. Lookups answer with them; a broker proxies a
-- connection only to a URL a live member registered here.
ALTER TABLE brokers ADD COLUMN binary_internal_url TEXT NOT NULL DEFAULT '';
ALTER TABLE brokers ADD COLUMN binary_advertised_url TEXT NOT NULL DEFAULT '';
