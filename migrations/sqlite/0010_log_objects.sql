-- Object-store durability (sqlite dialect; keep in step with migrations/postgres): the index
-- of log objects. A broker gathers the records of its object-store partitions for a window into
-- one object in the bucket, then commits one row per partition range the object holds, each
-- conditional on the partition's epoch, so that a fenced owner's object never becomes part of
-- the log; only then are the records acknowledged. A broker taking a partition over reads the
-- ranges past its uploaded segments. The owner trims the rows of ranges that uploaded segments
-- hold; an object is deleted from the bucket once no row references it, which the index on
-- object_key answers. Rows go with their partition.
CREATE TABLE log_objects (
    log_id       BIGINT NOT NULL,
    start_offset BIGINT NOT NULL,
    end_offset   BIGINT NOT NULL,  -- exclusive
    object_key   TEXT   NOT NULL,
    epoch        BIGINT NOT NULL,  -- the owner's epoch the range was committed under
    committed_at BIGINT NOT NULL,
    CONSTRAINT log_objects_pkey PRIMARY KEY (log_id, start_offset),
    CONSTRAINT log_objects_offsets_check CHECK (start_offset >= 0 AND end_offset > start_offset),
    CONSTRAINT log_objects_partition_fkey FOREIGN KEY (log_id) REFERENCES partitions (log_id) ON DELETE CASCADE
);

CREATE INDEX log_objects_object_key_idx ON log_objects (object_key);
