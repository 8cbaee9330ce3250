-- rds-streams' own bookkeeping inside the database it manages: what `up` has applied, so that a
-- later `up` never runs the schema file's (possibly destructive) DDL a second time.
CREATE DATABASE IF NOT EXISTS `rds_streams` CHARACTER SET utf8mb4;

-- One row per managed database: the schema file last applied to it. `statements_done` advances
-- after each statement, so an apply interrupted by a dropped connection resumes where it stopped;
-- `applied_at` stays NULL until every statement has run.
CREATE TABLE IF NOT EXISTS `rds_streams`.`schema_applied`
(
    `database_name`    VARCHAR(64)  NOT NULL,
    `file_name`        VARCHAR(255) NOT NULL,
    `checksum`         CHAR(64)     NOT NULL,  -- SHA-256 of the file's bytes, hex
    `statements_total` INT          NOT NULL,
    `statements_done`  INT          NOT NULL,
    `started_at`       DATETIME(6)  NOT NULL,  -- UTC
    `applied_at`       DATETIME(6)  NULL,      -- UTC; NULL while an apply is unfinished
    PRIMARY KEY (`database_name`)
) ENGINE = InnoDB
  DEFAULT CHARSET = utf8mb4;
