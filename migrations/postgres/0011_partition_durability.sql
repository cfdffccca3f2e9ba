-- Local durability (postgres dialect; keep in step with migrations/sqlite): the epoch under which
-- the partition's owner loaded it with local durability, NULL if never. Its unuploaded tail then
-- lives on that broker's disk only, so while this equals the partition's epoch the partition must
-- not be failed over automatically when its owner dies. A later epoch lifts the mark until its
-- own owner marks it in turn (an epoch never loaded, or loaded with object-store durability,
-- holds nothing on any single broker's disk).
ALTER TABLE partitions ADD COLUMN local_epoch BIGINT;
