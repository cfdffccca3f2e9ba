-- Topic compaction (sqlite dialect; keep in step with migrations/postgres): each
-- partition's compacted view (Pulsar's compacted ledger), an object in the object store holding,
-- for every key, the latest message below `horizon`. One row per partition: committing a new
-- view replaces the row in one transaction, so readers see the old view or the new one, never a
-- mix. The row goes with its partition; the broker deletes the object.
CREATE TABLE compacted_views (
    log_id     BIGINT NOT NULL,
    horizon    BIGINT NOT NULL,  -- exclusive: the view covers every message below this offset
    object_key TEXT   NOT NULL,
    messages   BIGINT NOT NULL,  -- messages the view holds
    size_bytes BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    CONSTRAINT compacted_views_pkey PRIMARY KEY (log_id),
    CONSTRAINT compacted_views_horizon_check CHECK (horizon >= 0),
    CONSTRAINT compacted_views_partition_fkey FOREIGN KEY (log_id) REFERENCES partitions (log_id) ON DELETE CASCADE
);
