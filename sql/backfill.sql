-- Backfill bookkeeping (`rds-streams backfill`, `[[stream.tables]] backfill = true`): one row per
-- table, its latest backfill. The row advances in the same transaction that emits a chunk, so a
-- killed or cancelled backfill resumes at the first chunk not committed (outbox delivery: never a
-- duplicate; direct delivery: at most the chunk that was running again). `finished_at` stays NULL
-- until the last chunk committed.
CREATE DATABASE IF NOT EXISTS `rds_streams` CHARACTER SET utf8mb4;

CREATE TABLE IF NOT EXISTS `rds_streams`.`backfills`
(
    `schema_name` VARCHAR(64)  NOT NULL,
    `table_name`  VARCHAR(64)  NOT NULL,
    `run_id`      CHAR(32)     NOT NULL,  -- this backfill's id, in its records' rdsStreamsSnapshot
    `row_filter`  TEXT CHARACTER SET utf8mb4 NULL,  -- --where; NULL: every row
    `last_key`    TEXT CHARACTER SET utf8mb4 NULL,  -- JSON: the last primary key emitted; NULL: none yet
    `chunks_done` INT          NOT NULL DEFAULT 0,
    `rows_done`   BIGINT       NOT NULL DEFAULT 0,
    `rows_total`  BIGINT       NOT NULL,  -- counted when it started: progress and time left
    `started_at`  DATETIME(6)  NOT NULL,  -- UTC
    `updated_at`  DATETIME(6)  NOT NULL,  -- UTC
    `finished_at` DATETIME(6)  NULL,      -- UTC; NULL while unfinished
    PRIMARY KEY (`schema_name`, `table_name`)
) ENGINE = InnoDB
  DEFAULT CHARSET = utf8mb4;
