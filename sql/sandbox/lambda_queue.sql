-- The sandbox's stand-in for Aurora MySQL's Lambda integration (DESIGN.md, "The local sandbox").
-- Installed once per server, as root, by orchestrator/sandbox/aurora_emulation.py; safe to re-run.
--
-- Aurora calls Lambda at statement time, before commit: a rolled-back write has still "called"
-- Lambda. So calls land in a MyISAM table, whose rows survive ROLLBACK (InnoDB's would not).
-- A call runs once per changed row inside the user's write, so its usual path touches no table
-- but the queue: the role check is remembered per session, and the fault check only exists while
-- a fault is injected (bench/bench_triggers.py measures the difference).

CREATE DATABASE IF NOT EXISTS `rds_streams_sandbox` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;

-- Aurora's privilege for lambda_async/lambda_sync (v3); the sandbox uses it for v2's
-- INVOKE LAMBDA as well, since MariaDB has no custom privileges.
CREATE ROLE IF NOT EXISTS `AWS_LAMBDA_ACCESS`;

-- Every emulated call, oldest first. The Lambda runner drains it (fetch_calls / delete_calls).
CREATE TABLE IF NOT EXISTS `rds_streams_sandbox`.`lambda_calls` (
    `id`              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    `invocation_type` ENUM ('Event', 'RequestResponse') NOT NULL,
    `function_arn`    VARCHAR(2048) NOT NULL,
    `payload`         LONGTEXT NOT NULL,
    `caller`          VARCHAR(400) NOT NULL,
    `called_at`       DATETIME(6) NOT NULL
) ENGINE = MyISAM;

-- The fault switch: while a row matches a call, the call fails as Aurora's does when Lambda fails
-- (ERROR 1873). NULL in a filter column matches every call. Change it with inject_fault() and
-- clear_faults(), which also add and remove the trigger that enforces it (lambda_faults_trigger.sql).
CREATE TABLE IF NOT EXISTS `rds_streams_sandbox`.`lambda_faults` (
    `id`               INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    `function_arn`     VARCHAR(2048) NULL,
    `payload_contains` VARCHAR(1024) NULL,
    `reason`           VARCHAR(1024) NOT NULL DEFAULT 'Network Connection. Unable to connect to endpoint'
) ENGINE = MyISAM;

-- The latency model and lambda_sync's patience, one row, read on every call so a change applies at
-- once (no reinstall): `lambda_ms` is the round trip each lambda_async/lambda_sync call costs its
-- caller (Aurora's is about 35 ms; 0, the default, keeps tests fast); `sync_wait_s` is how long
-- lambda_sync waits for the runner's answer before failing as a timeout (the runner itself enforces
-- the function's configured Timeout, so this only fires when no runner answers at all).
CREATE TABLE IF NOT EXISTS `rds_streams_sandbox`.`lambda_settings` (
    `id`          TINYINT UNSIGNED NOT NULL PRIMARY KEY,
    `lambda_ms`   INT UNSIGNED NOT NULL DEFAULT 0,
    `sync_wait_s` INT UNSIGNED NOT NULL DEFAULT 120
) ENGINE = MyISAM;
INSERT IGNORE INTO `rds_streams_sandbox`.`lambda_settings` (`id`) VALUES (1);

-- lambda_sync's calls. They cannot share lambda_calls: a stored function's tables stay locked for the
-- whole calling statement, and a MyISAM row inserted inside it stays invisible to other sessions until
-- that statement ends, so the runner would never see the call lambda_sync waits on. An InnoDB row is
-- visible at once to a READ UNCOMMITTED reader (the runner), and no table lock blocks it. The caller
-- deletes its own row once answered; a failed call's statement rolls its row back.
CREATE TABLE IF NOT EXISTS `rds_streams_sandbox`.`lambda_sync_calls` (
    `id`           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    `function_arn` VARCHAR(2048) NOT NULL,
    `payload`      LONGTEXT NOT NULL,
    -- A READ UNCOMMITTED reader can catch a long payload half written (InnoDB writes its pages after
    -- the row): the runner takes a call only once the payload it read has this checksum.
    `payload_crc`  INT UNSIGNED NOT NULL,
    `caller`       VARCHAR(400) NOT NULL,
    `called_at`    DATETIME(6) NOT NULL
) ENGINE = InnoDB;

DELIMITER $$

-- The emulated network round trip of one call (the latency model); a no-op while lambda_ms is 0.
CREATE OR REPLACE PROCEDURE `rds_streams_sandbox`.`lambda_round_trip`()
    READS SQL DATA SQL SECURITY DEFINER
BEGIN
    DECLARE round_trip_ms INT UNSIGNED DEFAULT
        (SELECT `lambda_ms` FROM `rds_streams_sandbox`.`lambda_settings` WHERE `id` = 1);
    IF round_trip_ms > 0 THEN
        DO SLEEP(round_trip_ms / 1000);
    END IF;
END$$

-- lambda_sync's wait for the runner's answer. For the same reason as above, the answer cannot come
-- through a table's rows: the runner answers through what a running statement does see at once.
-- Success: it holds the user lock `rds_streams_sandbox_ok_<call id>`, having first created the empty
-- table `lambda_result_<call id>` whose comment is the function's response (its return value as JSON,
-- what Aurora's lambda_sync returns), when that fits a comment's 2,048 characters. Failure (the function raised or ran past
-- its Timeout, Lambda's FunctionError "Unhandled"): it creates the empty table `lambda_error_<call
-- id>` whose comment is the function's error document, read from information_schema (built afresh
-- on every read). Either way the call fails as Aurora's does, with ERROR 1873, when nobody answers
-- within sync_wait_s. SQL SECURITY DEFINER: callers need no rights on the sandbox's tables.
CREATE OR REPLACE FUNCTION `rds_streams_sandbox`.`await_lambda_result`(waited_call_id BIGINT UNSIGNED)
    RETURNS LONGTEXT CHARACTER SET utf8mb4
    NOT DETERMINISTIC MODIFIES SQL DATA SQL SECURITY DEFINER
BEGIN
    DECLARE failure_document VARCHAR(2048) CHARACTER SET utf8mb4;
    DECLARE failure VARCHAR(512) CHARACTER SET utf8mb4;
    DECLARE ok_lock VARCHAR(64) CHARACTER SET utf8mb4 DEFAULT CONCAT('rds_streams_sandbox_ok_', waited_call_id);
    DECLARE error_table VARCHAR(64) CHARACTER SET utf8mb4 DEFAULT CONCAT('lambda_error_', waited_call_id);
    DECLARE result_table VARCHAR(64) CHARACTER SET utf8mb4 DEFAULT CONCAT('lambda_result_', waited_call_id);
    DECLARE response VARCHAR(2048) CHARACTER SET utf8mb4;
    -- SYSDATE, not NOW: NOW() stands still for the whole statement.
    DECLARE give_up_at DATETIME(6) DEFAULT SYSDATE(6) + INTERVAL
        (SELECT `sync_wait_s` FROM `rds_streams_sandbox`.`lambda_settings` WHERE `id` = 1) SECOND;
    waiting:
    LOOP
        IF IS_USED_LOCK(ok_lock) IS NOT NULL THEN
            LEAVE waiting;
        END IF;
        BEGIN
            -- 1684: the runner is creating that very table; it is readable on the next turn.
            DECLARE CONTINUE HANDLER FOR 1684 SET failure_document = NULL;
            SET failure_document = (SELECT `TABLE_COMMENT` FROM `information_schema`.`TABLES`
                                    WHERE `TABLE_SCHEMA` = 'rds_streams_sandbox' AND `TABLE_NAME` = error_table);
        END;
        IF failure_document IS NOT NULL THEN
            SET failure = LEFT(CONCAT('Lambda API returned error: Unhandled. ', failure_document), 512);
            SIGNAL SQLSTATE 'HY000' SET MYSQL_ERRNO = 1873, MESSAGE_TEXT = failure;
        END IF;
        IF SYSDATE(6) > give_up_at THEN
            SIGNAL SQLSTATE 'HY000' SET MYSQL_ERRNO = 1873,
                MESSAGE_TEXT = 'Lambda API returned error: Network Connection. No response from the function';
        END IF;
        DO SLEEP(0.002);
    END LOOP waiting;
    DELETE FROM `rds_streams_sandbox`.`lambda_sync_calls` WHERE `id` = waited_call_id;
    SET response = (SELECT `TABLE_COMMENT` FROM `information_schema`.`TABLES`
                    WHERE `TABLE_SCHEMA` = 'rds_streams_sandbox' AND `TABLE_NAME` = result_table);
    -- The function's response; one too long for the way back: what a successful Invoke reports.
    RETURN COALESCE(response, JSON_OBJECT('StatusCode', 200, 'ExecutedVersion', '$LATEST'));
END$$

-- Whether AWS_LAMBDA_ACCESS is active for `caller` (user@host), as Aurora MySQL 3 decides it. In the
-- session's own context (caller is the logged-in user) every granted role counts, as the cluster's
-- activate_all_roles_on_login=1 makes them active. In a definer context (a trigger, event or DEFINER
-- routine of another account) only the definer's DEFAULT role counts, directly or through roles
-- granted to it: granted but not default fails with Aurora's 1227. MariaDB does not activate a
-- definer's roles inside triggers at all, so the check is made here. SQL SECURITY DEFINER: callers
-- may not read mysql.roles_mapping themselves.
CREATE OR REPLACE FUNCTION `rds_streams_sandbox`.`has_lambda_access`(caller VARCHAR(400) CHARACTER SET utf8mb4)
    RETURNS BOOLEAN
    NOT DETERMINISTIC READS SQL DATA SQL SECURITY DEFINER
BEGIN
    -- A user name may contain '@'; a host may not.
    DECLARE caller_host VARCHAR(255) CHARACTER SET utf8mb4 DEFAULT SUBSTRING_INDEX(caller, '@', -1);
    DECLARE caller_user VARCHAR(400) CHARACTER SET utf8mb4 DEFAULT LEFT(caller, CHAR_LENGTH(caller) - CHAR_LENGTH(caller_host) - 1);
    DECLARE session_account VARCHAR(400) CHARACTER SET utf8mb4 DEFAULT SESSION_USER();
    DECLARE own_context BOOLEAN DEFAULT LEFT(session_account,
        CHAR_LENGTH(session_account) - CHAR_LENGTH(SUBSTRING_INDEX(session_account, '@', -1)) - 1) = caller_user;
    DECLARE default_role VARCHAR(128) CHARACTER SET utf8mb4 DEFAULT
        (SELECT `default_role` FROM `mysql`.`user` WHERE `User` = caller_user AND `Host` = caller_host);
    RETURN EXISTS (
        WITH RECURSIVE `active` (`role`) AS (
            SELECT `Role` FROM `mysql`.`roles_mapping`
            WHERE `User` = caller_user AND `Host` = caller_host AND (own_context OR `Role` = default_role)
            UNION
            SELECT `m`.`Role` FROM `mysql`.`roles_mapping` AS `m` JOIN `active` AS `a` ON `m`.`User` = `a`.`role` AND `m`.`Host` = ''
        )
        SELECT 1 FROM `active` WHERE `role` = 'AWS_LAMBDA_ACCESS');
END$$

-- Aurora's privilege check for one call. SQL SECURITY INVOKER, so CURRENT_USER() is the user Aurora
-- checks: inside a trigger, its DEFINER. The role is looked up once per session and caller, as
-- Aurora activates roles at login: a REVOKE reaches the sessions opened after it.
CREATE OR REPLACE PROCEDURE `rds_streams_sandbox`.`require_lambda_access`()
    READS SQL DATA SQL SECURITY INVOKER
BEGIN
    IF NOT (@rds_streams_sandbox_lambda_access <=> CURRENT_USER()) THEN
        IF NOT `rds_streams_sandbox`.`has_lambda_access`(CURRENT_USER()) THEN
            SIGNAL SQLSTATE '42000' SET MYSQL_ERRNO = 1227,
                MESSAGE_TEXT = 'Access denied; you need (at least one of) the Invoke Lambda privilege(s) for this operation';
        END IF;
        SET @rds_streams_sandbox_lambda_access = CURRENT_USER();
    END IF;
END$$

-- Queue one asynchronous call, for mysql.lambda_async (lambda_async has these steps inline).
CREATE OR REPLACE FUNCTION `rds_streams_sandbox`.`invoke_lambda`(
    call_type VARCHAR(20) CHARACTER SET utf8mb4, call_arn VARCHAR(2048) CHARACTER SET utf8mb4,
    call_payload LONGTEXT CHARACTER SET utf8mb4
) RETURNS BIGINT UNSIGNED
    NOT DETERMINISTIC MODIFIES SQL DATA SQL SECURITY INVOKER
BEGIN
    CALL `rds_streams_sandbox`.`require_lambda_access`();
    IF call_type = 'Event' AND LENGTH(call_payload) > 1048576 THEN
        SIGNAL SQLSTATE 'HY000' SET MYSQL_ERRNO = 1873,
            MESSAGE_TEXT = 'Lambda API returned error: Request must be smaller than 1048576 bytes for the InvokeAsync operation';
    END IF;
    INSERT INTO `rds_streams_sandbox`.`lambda_calls` (`invocation_type`, `function_arn`, `payload`, `caller`, `called_at`)
        VALUES (call_type, call_arn, call_payload, CURRENT_USER(), SYSDATE(6));
    CALL `rds_streams_sandbox`.`lambda_round_trip`();
    RETURN LAST_INSERT_ID();
END$$

-- Queue one lambda_sync call. Its own function, never touching lambda_calls: every table a function
-- names is locked for the whole calling statement, and lambda_sync's statement lasts until the
-- runner answers, which it could not while lambda_calls were locked.
CREATE OR REPLACE FUNCTION `rds_streams_sandbox`.`invoke_lambda_sync`(
    call_arn VARCHAR(2048) CHARACTER SET utf8mb4, call_payload LONGTEXT CHARACTER SET utf8mb4
) RETURNS BIGINT UNSIGNED
    NOT DETERMINISTIC MODIFIES SQL DATA SQL SECURITY INVOKER
BEGIN
    CALL `rds_streams_sandbox`.`require_lambda_access`();
    INSERT INTO `rds_streams_sandbox`.`lambda_sync_calls` (`function_arn`, `payload`, `payload_crc`, `caller`, `called_at`)
        VALUES (call_arn, call_payload, CRC32(call_payload), CURRENT_USER(), SYSDATE(6));
    CALL `rds_streams_sandbox`.`lambda_round_trip`();
    RETURN LAST_INSERT_ID();
END$$

-- Aurora MySQL 2's procedure (v2 dialect): CALL mysql.lambda_async(arn, payload).
CREATE OR REPLACE PROCEDURE `mysql`.`lambda_async`(
    lambda_function_ARN VARCHAR(2048) CHARACTER SET utf8mb4, lambda_function_input LONGTEXT CHARACTER SET utf8mb4
)
    MODIFIES SQL DATA SQL SECURITY INVOKER
BEGIN
    -- Not DO: MariaDB's DO drops the error a stored function SIGNALs.
    DECLARE call_id BIGINT UNSIGNED DEFAULT
        `rds_streams_sandbox`.`invoke_lambda`('Event', lambda_function_ARN, lambda_function_input);
END$$

DELIMITER ;

-- On Aurora these need no grant but the Lambda privilege, which invoke_lambda checks itself.
GRANT EXECUTE ON FUNCTION `rds_streams_sandbox`.`has_lambda_access` TO PUBLIC;
GRANT EXECUTE ON FUNCTION `rds_streams_sandbox`.`invoke_lambda` TO PUBLIC;
GRANT EXECUTE ON FUNCTION `rds_streams_sandbox`.`invoke_lambda_sync` TO PUBLIC;
GRANT EXECUTE ON PROCEDURE `rds_streams_sandbox`.`require_lambda_access` TO PUBLIC;
GRANT EXECUTE ON PROCEDURE `mysql`.`lambda_async` TO PUBLIC;
GRANT EXECUTE ON PROCEDURE `rds_streams_sandbox`.`lambda_round_trip` TO PUBLIC;
GRANT EXECUTE ON FUNCTION `rds_streams_sandbox`.`await_lambda_result` TO PUBLIC;
GRANT INSERT ON `rds_streams_sandbox`.`lambda_calls` TO PUBLIC;
GRANT INSERT ON `rds_streams_sandbox`.`lambda_sync_calls` TO PUBLIC;
GRANT SELECT ON `rds_streams_sandbox`.`lambda_settings` TO PUBLIC;
