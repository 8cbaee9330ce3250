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

DELIMITER $$

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

-- Queue one call, for lambda_sync and mysql.lambda_async (lambda_async has these steps inline).
-- SQL SECURITY INVOKER, so CURRENT_USER() is the user Aurora checks: inside a trigger, its DEFINER.
-- The role is looked up once per session and caller, as Aurora activates roles at login: a
-- REVOKE reaches the sessions opened after it.
CREATE OR REPLACE FUNCTION `rds_streams_sandbox`.`invoke_lambda`(
    call_type VARCHAR(20) CHARACTER SET utf8mb4, call_arn VARCHAR(2048) CHARACTER SET utf8mb4,
    call_payload LONGTEXT CHARACTER SET utf8mb4
) RETURNS BIGINT UNSIGNED
    NOT DETERMINISTIC MODIFIES SQL DATA SQL SECURITY INVOKER
BEGIN
    IF NOT (@rds_streams_sandbox_lambda_access <=> CURRENT_USER()) THEN
        IF NOT `rds_streams_sandbox`.`has_lambda_access`(CURRENT_USER()) THEN
            SIGNAL SQLSTATE '42000' SET MYSQL_ERRNO = 1227,
                MESSAGE_TEXT = 'Access denied; you need (at least one of) the Invoke Lambda privilege(s) for this operation';
        END IF;
        SET @rds_streams_sandbox_lambda_access = CURRENT_USER();
    END IF;
    IF call_type = 'Event' AND LENGTH(call_payload) > 1048576 THEN
        SIGNAL SQLSTATE 'HY000' SET MYSQL_ERRNO = 1873,
            MESSAGE_TEXT = 'Lambda API returned error: Request must be smaller than 1048576 bytes for the InvokeAsync operation';
    END IF;
    INSERT INTO `rds_streams_sandbox`.`lambda_calls` (`invocation_type`, `function_arn`, `payload`, `caller`, `called_at`)
        VALUES (call_type, call_arn, call_payload, CURRENT_USER(), SYSDATE(6));
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
GRANT EXECUTE ON PROCEDURE `mysql`.`lambda_async` TO PUBLIC;
GRANT INSERT ON `rds_streams_sandbox`.`lambda_calls` TO PUBLIC;
