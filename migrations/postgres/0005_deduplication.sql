-- Message deduplication: per partition, the highest sequence id stored for each producer name,
-- as of `position` (every record below that offset is reflected). A broker loading the
-- partition starts from this snapshot and replays the records from `position` on, so the
-- replay is bounded by the snapshot interval. One row per partition, replaced in place; written
-- only by the partition's owner (epoch-checked like cursor checkpoints).
CREATE TABLE dedup_snapshots (
    log_id    BIGINT NOT NULL,
    position  BIGINT NOT NULL,
    producers TEXT   NOT NULL,  -- JSON object: producer name -> highest sequence id
    taken_at  BIGINT NOT NULL,
    CONSTRAINT dedup_snapshots_pkey PRIMARY KEY (log_id),
    CONSTRAINT dedup_snapshots_partition_fkey FOREIGN KEY (log_id) REFERENCES partitions (log_id) ON DELETE CASCADE
);
