-- verify's canary: a table of ours in the bookkeeping schema, streamed by the same generated
-- triggers as the user's tables, so the stream can be proved without touching user data.
CREATE DATABASE IF NOT EXISTS `rds_streams` CHARACTER SET utf8mb4;

CREATE TABLE IF NOT EXISTS `rds_streams`.`canary`
(
    `id`         VARCHAR(64)    NOT NULL PRIMARY KEY,
    `note`       VARCHAR(200)   NOT NULL,
    `amount`     DECIMAL(12, 2) NULL,
    `active`     BIT(1)         NOT NULL DEFAULT b'1',
    `changed_at` DATETIME(6)    NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE = InnoDB
  DEFAULT CHARSET = utf8mb4;
