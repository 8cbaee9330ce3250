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

-- One row per migration run against a managed database (`[database] migrations`, or the single
-- `schema` file as version 1). `statement_checksums` grows by one SHA-256 after each statement
-- commits, so a migration that failed part way resumes after the fix at its first statement not
-- yet run, and refuses if one that ran was changed; `applied_at` stays NULL until the last one ran.
CREATE TABLE IF NOT EXISTS `rds_streams`.`migrations`
(
    `database_name`       VARCHAR(64)  NOT NULL,
    `version`             VARCHAR(50)  NOT NULL,  -- "3" for V3__x.sql, "1.2" for V1_2__x.sql
    `description`         VARCHAR(200) NOT NULL,
    `file_name`           VARCHAR(255) NOT NULL,
    `checksum`            CHAR(64)     NOT NULL,  -- SHA-256 of the file's bytes, hex
    `statements_total`    INT          NOT NULL,
    `statement_checksums` JSON         NULL,      -- SHA-256 of each statement run so far; NULL: adopted, unknown
    `started_at`          DATETIME(6)  NOT NULL,  -- UTC
    `applied_at`          DATETIME(6)  NULL,      -- UTC; NULL while a migration is unfinished
    PRIMARY KEY (`database_name`, `version`)
) ENGINE = InnoDB
  DEFAULT CHARSET = utf8mb4;

-- The triggers rds-streams created, so a trigger we did not create is never dropped or replaced,
-- whatever its name. A row is written before its trigger is created (a crash in between leaves a
-- row without a trigger, pruned by the next `up`, never a trigger of ours without a row).
CREATE TABLE IF NOT EXISTS `rds_streams`.`triggers`
(
    `schema_name`  VARCHAR(64) NOT NULL,
    `trigger_name` VARCHAR(64) NOT NULL,
    `table_name`   VARCHAR(64) NOT NULL,  -- the table it was created on; the trigger follows a rename
    `created_at`   DATETIME(6) NOT NULL,  -- UTC
    PRIMARY KEY (`schema_name`, `trigger_name`)
) ENGINE = InnoDB
  DEFAULT CHARSET = utf8mb4;
