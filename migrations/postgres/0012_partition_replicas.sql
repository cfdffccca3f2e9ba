-- Replicated durability (postgres dialect; keep in step with the other dialect): the replica set the
-- partition's owner last loaded it with (JSON: owner, peers, write and ack quorum) and the epoch
-- of that load. The next owner reads it to find the brokers holding copies of the tail, fences
-- the partition on them and recovers what they hold before serving (docs/durability.md).
ALTER TABLE partitions ADD COLUMN replicas TEXT;
ALTER TABLE partitions ADD COLUMN replicas_epoch BIGINT;
