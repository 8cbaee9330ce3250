-- Outbox delivery (stream.delivery = "outbox"): triggers insert each record into an InnoDB outbox
-- in the writer's own transaction; an EVENT delivers committed rows every second, oldest first,
-- batched into one {"Records": [...]} payload per lambda_sync call, and deletes exactly those rows
-- only after the call succeeded. Rolled-back writes never reach the outbox; a failing Lambda never
-- fails a write. Works on Aurora MySQL 3 (MySQL 8.0) and on the sandbox's MariaDB.
CREATE DATABASE IF NOT EXISTS `rds_streams` CHARACTER SET utf8mb4;

CREATE TABLE IF NOT EXISTS `rds_streams`.`outbox`
(
    `id`         BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    `payload`    LONGTEXT CHARACTER SET utf8mb4 NOT NULL,
    `created_at` DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS `rds_streams`.`outbox_dead_letters`
(
    `id`        BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    `payload`   LONGTEXT CHARACTER SET utf8mb4 NOT NULL,
    `error`     TEXT CHARACTER SET utf8mb4 NULL,
    `attempts`  INT NOT NULL,
    `failed_at` DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE = InnoDB;

-- One row: where to deliver, how, and where the delivery stands.
CREATE TABLE IF NOT EXISTS `rds_streams`.`outbox_state`
(
    `id`              TINYINT NOT NULL PRIMARY KEY,
    `function_arn`    VARCHAR(2048) NOT NULL,
    `batch_size`      INT NOT NULL,
    `max_attempts`    INT NOT NULL,
    `current_batch`   INT NOT NULL,
    `failures`        INT NOT NULL DEFAULT 0,
    `last_error`      TEXT CHARACTER SET utf8mb4 NULL,
    `last_delivery`   DATETIME(6) NULL,
    `delivered`       BIGINT UNSIGNED NOT NULL DEFAULT 0
) ENGINE = InnoDB;

DROP PROCEDURE IF EXISTS `rds_streams`.`deliver_outbox`;

DELIMITER $$
CREATE PROCEDURE `rds_streams`.`deliver_outbox`()
    SQL SECURITY DEFINER
delivery:
BEGIN
    DECLARE v_arn VARCHAR(2048);
    DECLARE v_batch_size, v_max_attempts, v_limit, v_failures, v_count INT DEFAULT 0;
    DECLARE v_id, v_last_id, v_next_id BIGINT UNSIGNED;
    DECLARE v_row, v_payload, v_next LONGTEXT CHARACTER SET utf8mb4;
    DECLARE v_total BIGINT DEFAULT 0;
    DECLARE v_done, v_failed INT DEFAULT 0;
    DECLARE v_error TEXT CHARACTER SET utf8mb4;
    DECLARE v_started DATETIME(6) DEFAULT NOW(6);
    DECLARE oldest CURSOR FOR SELECT `id`, `payload` FROM `rds_streams`.`outbox` ORDER BY `id` LIMIT v_limit;
    DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_done = 1;
    -- Aurora MySQL 3: a stored program run in another context than its definer's own session (the
    -- event) must activate the definer's roles itself, AWS_LAMBDA_ACCESS for lambda_sync among them.
    -- Only MySQL 8 runs this comment (5.7 has no roles; MariaDB skips MySQL-versioned comments).
    /*!80000 SET ROLE ALL; */

    -- Runs never overlap: a run still busy when the next second comes makes that one a no-op.
    IF GET_LOCK('rds_streams_outbox', 0) IS NULL OR IS_USED_LOCK('rds_streams_outbox') <> CONNECTION_ID() THEN
        LEAVE delivery;
    END IF;
    CREATE TEMPORARY TABLE IF NOT EXISTS `rds_streams_batch` (`id` BIGINT UNSIGNED NOT NULL PRIMARY KEY);

    batches:
    LOOP
        SELECT `function_arn`, `batch_size`, `max_attempts`, `current_batch`, `failures`
        INTO v_arn, v_batch_size, v_max_attempts, v_limit, v_failures
        FROM `rds_streams`.`outbox_state` WHERE `id` = 1;
        IF v_done = 1 AND v_arn IS NULL THEN
            LEAVE batches; -- not configured yet
        END IF;

        -- The oldest committed rows, at most current_batch of them and under the payload limit.
        DELETE FROM `rds_streams_batch`;
        SET v_payload = NULL, v_count = 0, v_total = 0, v_done = 0;
        OPEN oldest;
        rows_loop:
        LOOP
            FETCH oldest INTO v_id, v_row;
            IF v_done = 1 THEN
                LEAVE rows_loop;
            END IF;
            IF v_count > 0 AND v_total + LENGTH(v_row) > 1044480 THEN
                LEAVE rows_loop;
            END IF;
            SET v_payload = IF(v_payload IS NULL, v_row, JSON_MERGE_PRESERVE(v_payload, v_row));
            SET v_total = v_total + LENGTH(v_row), v_count = v_count + 1, v_last_id = v_id;
            INSERT INTO `rds_streams_batch` (`id`) VALUES (v_id);
        END LOOP rows_loop;
        CLOSE oldest;
        SET v_done = 0;
        IF v_count = 0 THEN
            LEAVE batches;
        END IF;

        SET v_failed = 0;
        BEGIN
            DECLARE EXIT HANDLER FOR SQLEXCEPTION
                BEGIN
                    GET DIAGNOSTICS CONDITION 1 v_error = MESSAGE_TEXT;
                    SET v_failed = 1;
                END;
            SET @rds_streams_outbox_result = lambda_sync(v_arn, v_payload);
        END;

        IF v_failed = 0 THEN
            -- Exactly the rows sent: a row committed meanwhile with a lower id stays for the next batch.
            DELETE `o` FROM `rds_streams`.`outbox` AS `o` JOIN `rds_streams_batch` AS `b` ON `b`.`id` = `o`.`id`;
            UPDATE `rds_streams`.`outbox_state`
            SET `failures` = 0, `current_batch` = `batch_size`, `last_delivery` = NOW(6),
                `delivered` = `delivered` + v_count
            WHERE `id` = 1;
        ELSEIF v_failures + 1 < v_max_attempts THEN
            UPDATE `rds_streams`.`outbox_state` SET `failures` = v_failures + 1, `last_error` = v_error WHERE `id` = 1;
            LEAVE batches; -- try the same batch again next second
        ELSEIF v_count > 1 THEN
            -- A batch that keeps failing is split, until the record that fails is alone.
            UPDATE `rds_streams`.`outbox_state`
            SET `failures` = 0, `current_batch` = GREATEST(1, v_count DIV 2), `last_error` = v_error
            WHERE `id` = 1;
        ELSE
            -- One record keeps failing alone. Poison, or is Lambda failing for everything? The next
            -- record tells: if it goes through, this one is set aside so it cannot stall the stream;
            -- if it fails too, it is an outage and nothing is set aside.
            SET v_next_id = NULL;
            SELECT `id`, `payload` INTO v_next_id, v_next
            FROM `rds_streams`.`outbox` WHERE `id` > v_last_id ORDER BY `id` LIMIT 1;
            SET v_done = 0, v_failed = 0;
            IF v_next_id IS NOT NULL THEN
                BEGIN
                    DECLARE EXIT HANDLER FOR SQLEXCEPTION SET v_failed = 1;
                    SET @rds_streams_outbox_result = lambda_sync(v_arn, v_next);
                END;
            END IF;
            IF v_next_id IS NOT NULL AND v_failed = 0 THEN
                DELETE FROM `rds_streams`.`outbox` WHERE `id` = v_next_id;
                INSERT INTO `rds_streams`.`outbox_dead_letters` (`id`, `payload`, `error`, `attempts`)
                SELECT `id`, `payload`, v_error, v_max_attempts FROM `rds_streams`.`outbox` WHERE `id` = v_last_id;
                DELETE FROM `rds_streams`.`outbox` WHERE `id` = v_last_id;
                UPDATE `rds_streams`.`outbox_state`
                SET `failures` = 0, `current_batch` = `batch_size`, `last_error` = v_error,
                    `last_delivery` = NOW(6), `delivered` = `delivered` + 1
                WHERE `id` = 1;
            ELSE
                UPDATE `rds_streams`.`outbox_state`
                SET `failures` = 0, `current_batch` = `batch_size`, `last_error` = v_error
                WHERE `id` = 1;
                LEAVE batches;
            END IF;
        END IF;

        IF TIMESTAMPDIFF(MICROSECOND, v_started, NOW(6)) > 900000 THEN
            LEAVE batches; -- the next run comes within a second
        END IF;
    END LOOP batches;
    DROP TEMPORARY TABLE IF EXISTS `rds_streams_batch`;
    SET @rds_streams_released = RELEASE_LOCK('rds_streams_outbox');
END$$
DELIMITER ;

CREATE EVENT IF NOT EXISTS `rds_streams`.`deliver_outbox`
    ON SCHEDULE EVERY 1 SECOND
    ON COMPLETION PRESERVE
    ENABLE
    COMMENT 'rds-streams: deliver committed outbox rows to the consumer Lambda'
    DO CALL `rds_streams`.`deliver_outbox`();
