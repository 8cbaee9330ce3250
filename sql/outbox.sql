-- Outbox delivery (stream.delivery = "outbox"): triggers insert each record into an InnoDB outbox
-- in the writer's own transaction; relays (one EVENT per partition, every second, each continuing
-- through its second) deliver committed rows oldest first, batched into one {"Records": [...]}
-- payload per lambda_sync call up to the payload limit, and delete exactly those rows only after
-- the call succeeded. Rolled-back writes never reach the outbox; a failing Lambda never fails a
-- write. Works on Aurora MySQL 3 (MySQL 8.0) and on the sandbox's MariaDB.
--
-- Partitions: each row's `bucket` (one of 64) is a hash of its table's stream ARN and its key,
-- computed by the database itself from the payload, so whoever inserts a row (a trigger, a
-- backfill) inserts `payload` alone. Relay p of n delivers the buckets b with MOD(b, n) = p, and
-- holds a lock per bucket while it does: a key is only ever in one relay's hands, in id order,
-- even while the number of relays changes. Rows of one key are serialized by the key's row lock,
-- so their ids are in commit order.
CREATE DATABASE IF NOT EXISTS `rds_streams` CHARACTER SET utf8mb4;

CREATE TABLE IF NOT EXISTS `rds_streams`.`outbox`
(
    `id`         BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    `payload`    LONGTEXT CHARACTER SET utf8mb4 NOT NULL,
    `created_at` DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    -- outbox.py adds this column to an outbox created before it (same definition: OUTBOX_BUCKET).
    `bucket`     TINYINT UNSIGNED AS (MOD(CRC32(CONCAT_WS('|',
                     JSON_UNQUOTE(JSON_EXTRACT(`payload`, '$.Records[0].eventSourceARN')),
                     JSON_EXTRACT(`payload`, '$.Records[0].dynamodb.Keys'))), 64)) STORED
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS `rds_streams`.`outbox_dead_letters`
(
    `id`        BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    `payload`   LONGTEXT CHARACTER SET utf8mb4 NOT NULL,
    `error`     TEXT CHARACTER SET utf8mb4 NULL,
    `attempts`  INT NOT NULL,
    `failed_at` DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE = InnoDB;

-- One row: where to deliver, and how. (current_batch .. delivered: kept for outboxes made before
-- partitions; each relay's own state is in outbox_relays.)
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

-- One row per relay (partition): as many relays as rows. Where its delivery stands.
CREATE TABLE IF NOT EXISTS `rds_streams`.`outbox_relays`
(
    `relay`           INT NOT NULL PRIMARY KEY,
    `current_batch`   INT NOT NULL,
    `failures`        INT NOT NULL DEFAULT 0,
    `last_error`      TEXT CHARACTER SET utf8mb4 NULL,
    `last_delivery`   DATETIME(6) NULL,
    `delivered`       BIGINT UNSIGNED NOT NULL DEFAULT 0
) ENGINE = InnoDB;

DROP PROCEDURE IF EXISTS `rds_streams`.`deliver_outbox`;

DELIMITER $$
CREATE PROCEDURE `rds_streams`.`deliver_outbox`(IN p INT, IN linger BOOLEAN)
    SQL SECURITY DEFINER
delivery:
BEGIN
    -- Relay `p`: delivers its partition until the outbox has none of its rows left, or, with `linger`
    -- (the events), for the rest of its second: waiting rows never wait for the next second's run.
    DECLARE v_arn VARCHAR(2048);
    DECLARE v_batch_size, v_max_attempts, v_limit, v_scan, v_failures, v_count, v_partitions, v_bucket INT DEFAULT 0;
    DECLARE v_mask BIGINT UNSIGNED DEFAULT 0;
    DECLARE v_last_id, v_next_id BIGINT UNSIGNED;
    DECLARE v_payload, v_next LONGTEXT CHARACTER SET utf8mb4;
    DECLARE v_failed INT DEFAULT 0;
    DECLARE v_error TEXT CHARACTER SET utf8mb4;
    DECLARE v_started DATETIME(6) DEFAULT SYSDATE(6);
    -- Aurora MySQL 3: a stored program run in another context than its definer's own session (the
    -- event) must activate the definer's roles itself, AWS_LAMBDA_ACCESS for lambda_sync among them.
    -- Only MySQL 8 runs this comment (5.7 has no roles; MariaDB skips MySQL-versioned comments).
    /*!80000 SET ROLE ALL; */

    SELECT COUNT(*) INTO v_partitions FROM `rds_streams`.`outbox_relays`;
    IF p < 0 OR p >= v_partitions THEN
        LEAVE delivery; -- a relay that the current partition count does not have
    END IF;
    -- One run per relay at a time. The next second's run waits for this one to end (it ends within
    -- its second), so no second is lost between runs; a run that hangs costs waiters, never overlap.
    IF GET_LOCK(CONCAT('rds_streams_outbox_relay_', p), IF(linger, 1, 0)) IS NOT TRUE THEN
        LEAVE delivery;
    END IF;
    -- Its buckets, each under a lock: one still held by a relay of an earlier partition count is
    -- left to that relay until it lets go (per-key order across re-partitioning).
    SET v_bucket = p;
    WHILE v_bucket < 64 DO
        IF GET_LOCK(CONCAT('rds_streams_outbox_bucket_', v_bucket), 0) = 1 THEN
            SET v_mask = v_mask | (1 << v_bucket);
        END IF;
        SET v_bucket = v_bucket + v_partitions;
    END WHILE;
    -- The batch's payload is joined from whole records (below): room for the 1 MB payload limit.
    SET SESSION group_concat_max_len = 2097152;
    CREATE TEMPORARY TABLE IF NOT EXISTS `rds_streams_batch` (`id` BIGINT UNSIGNED NOT NULL PRIMARY KEY);

    batches:
    LOOP
        IF TIMESTAMPDIFF(MICROSECOND, v_started, SYSDATE(6)) > 950000 THEN
            LEAVE batches; -- the next run takes over within the second
        END IF;
        SET v_arn = NULL;
        SELECT `function_arn`, `batch_size`, `max_attempts` INTO v_arn, v_batch_size, v_max_attempts
        FROM `rds_streams`.`outbox_state` WHERE `id` = 1;
        SELECT `current_batch`, `failures` INTO v_limit, v_failures FROM `rds_streams`.`outbox_relays` WHERE `relay` = p;
        SET v_scan = LEAST(v_limit, 4000);
        IF v_arn IS NULL OR v_mask = 0 THEN
            LEAVE batches; -- not configured yet, or every bucket is still another relay's
        END IF;

        -- The oldest committed rows of these buckets: at most current_batch, under the payload limit.
        -- Sizes only, never payloads, go through the derived tables (a BLOB there makes them disk
        -- tables); at most 4,000 rows are sized, more than 1 MB of records of 260 bytes or more holds.
        DELETE FROM `rds_streams_batch`;
        INSERT INTO `rds_streams_batch` (`id`)
        SELECT `id` FROM (
            SELECT `id`, ROW_NUMBER() OVER (ORDER BY `id`) AS `nth`,
                   SUM(`size`) OVER (ORDER BY `id`) AS `running`
            FROM (SELECT `id`, LENGTH(`payload`) AS `size` FROM `rds_streams`.`outbox`
                  WHERE (v_mask >> `bucket`) & 1 = 1 ORDER BY `id` LIMIT v_scan) AS `oldest`
        ) AS `sized`
        WHERE `nth` = 1 OR `running` <= 1044480;
        SET v_count = ROW_COUNT();
        IF v_count <= 0 THEN
            IF NOT linger THEN
                LEAVE batches;
            END IF;
            DO SLEEP(0.02);
            ITERATE batches;
        END IF;
        -- Joined in one pass from records the database extracts (each whole, valid JSON), in id order:
        -- merging record by record re-parses the growing payload each time, and MySQL 8's JSON_ARRAYAGG
        -- has no ORDER BY. Nothing but complete JSON values and the array's commas is joined.
        SELECT MAX(`o`.`id`), CONCAT('{"Records":[', GROUP_CONCAT(JSON_EXTRACT(`o`.`payload`, '$.Records[0]')
                                                                ORDER BY `o`.`id` SEPARATOR ','), ']}')
        INTO v_last_id, v_payload
        FROM `rds_streams`.`outbox` AS `o` JOIN `rds_streams_batch` AS `b` ON `b`.`id` = `o`.`id`;

        SET v_failed = 0;
        -- Every row's record is in the payload, or none is sent: only what was sent is deleted.
        IF JSON_LENGTH(v_payload, '$.Records') <=> v_count THEN
            BEGIN
                DECLARE EXIT HANDLER FOR SQLEXCEPTION
                    BEGIN
                        GET DIAGNOSTICS CONDITION 1 v_error = MESSAGE_TEXT;
                        SET v_failed = 1;
                    END;
                SET @rds_streams_outbox_result = lambda_sync(v_arn, v_payload);
            END;
        ELSE
            SET v_failed = 1, v_error = 'rds-streams: the batch payload does not hold every record of the batch';
        END IF;

        IF v_failed = 0 THEN
            -- Exactly the rows sent: a row committed meanwhile with a lower id stays for the next batch.
            DELETE `o` FROM `rds_streams`.`outbox` AS `o` JOIN `rds_streams_batch` AS `b` ON `b`.`id` = `o`.`id`;
            UPDATE `rds_streams`.`outbox_relays`
            SET `failures` = 0, `current_batch` = v_batch_size, `last_delivery` = NOW(6),
                `delivered` = `delivered` + v_count
            WHERE `relay` = p;
        ELSEIF v_failures + 1 < v_max_attempts THEN
            UPDATE `rds_streams`.`outbox_relays` SET `failures` = v_failures + 1, `last_error` = v_error WHERE `relay` = p;
            LEAVE batches; -- try the same batch again next second
        ELSEIF v_count > 1 THEN
            -- A batch that keeps failing is split, until the record that fails is alone.
            UPDATE `rds_streams`.`outbox_relays`
            SET `failures` = 0, `current_batch` = GREATEST(1, v_count DIV 2), `last_error` = v_error
            WHERE `relay` = p;
        ELSE
            -- One record keeps failing alone. Poison, or is Lambda failing for everything? The next
            -- record of these buckets tells: if it goes through, this one is set aside so it cannot
            -- stall the stream; if it fails too, it is an outage and nothing is set aside.
            SET v_next_id = NULL, v_next = NULL;
            SELECT `id`, `payload` INTO v_next_id, v_next
            FROM `rds_streams`.`outbox` WHERE `id` > v_last_id AND (v_mask >> `bucket`) & 1 = 1 ORDER BY `id` LIMIT 1;
            SET v_failed = 0;
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
                UPDATE `rds_streams`.`outbox_relays`
                SET `failures` = 0, `current_batch` = v_batch_size, `last_error` = v_error,
                    `last_delivery` = NOW(6), `delivered` = `delivered` + 1
                WHERE `relay` = p;
            ELSE
                UPDATE `rds_streams`.`outbox_relays`
                SET `failures` = 0, `current_batch` = v_batch_size, `last_error` = v_error
                WHERE `relay` = p;
                LEAVE batches;
            END IF;
        END IF;
    END LOOP batches;
    DROP TEMPORARY TABLE IF EXISTS `rds_streams_batch`;
    SET @rds_streams_released = RELEASE_ALL_LOCKS();
END$$
DELIMITER ;
