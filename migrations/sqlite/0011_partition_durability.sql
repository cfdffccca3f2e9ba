-- Object-store durability (sqlite dialect; keep in step with migrations/postgres): the epoch under
-- which the partition's owner serves it with object-store durability, NULL when it does not.
-- Such a partition's acknowledged records are all in committed log objects, so when its owner
-- dies the tier's leader may hand it to another broker without waiting for the dead one, but
-- only while this equals the partition's epoch: an owner that loaded it in local durability
-- (a later epoch, not marked) keeps the tail on its own disk, and that must not be taken over.
ALTER TABLE partitions ADD COLUMN durability_epoch BIGINT;
