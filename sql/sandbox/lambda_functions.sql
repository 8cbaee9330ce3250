-- Aurora MySQL 3's native lambda_async/lambda_sync, emulated as stored functions in one streamed
-- schema: the current database when this runs. An unqualified call inside a trigger resolves in
-- the trigger's own schema, so the generated triggers run unchanged on Aurora and here.
-- Needs lambda_queue.sql first. SQL SECURITY INVOKER keeps CURRENT_USER() the trigger's DEFINER
-- for invoke_lambda's privilege check. Parameters say utf8mb4: the schema's charset may be latin1.

DELIMITER $$

-- The same steps as rds_streams_sandbox.invoke_lambda, written out rather than called: it runs
-- once per changed row, and a nested stored-function call costs about 4 us a row (bench/).
-- The usual path is one test (role already checked this session, payload small enough), one local
-- SET and the INSERT. The INSERT reads the arguments from user variables: a statement naming a
-- routine parameter gets its value copied, escaped, into the statement's logged text on every
-- call (MariaDB does so even with the binary log off), a second copy of the whole payload.
CREATE OR REPLACE FUNCTION `lambda_async`(
    function_arn VARCHAR(2048) CHARACTER SET utf8mb4, payload LONGTEXT CHARACTER SET utf8mb4
)
    RETURNS BIGINT UNSIGNED
    NOT DETERMINISTIC MODIFIES SQL DATA SQL SECURITY INVOKER
BEGIN
    DECLARE handed_over INT;
    -- The checks below, skipped together while neither can fail.
    IF NOT (@rds_streams_sandbox_lambda_access <=> CURRENT_USER()) OR LENGTH(payload) > 1048576 THEN
        IF NOT (@rds_streams_sandbox_lambda_access <=> CURRENT_USER()) THEN
            IF NOT `rds_streams_sandbox`.`has_lambda_access`(CURRENT_USER()) THEN
                SIGNAL SQLSTATE '42000' SET MYSQL_ERRNO = 1227,
                    MESSAGE_TEXT = 'Access denied; you need (at least one of) the Invoke Lambda privilege(s) for this operation';
            END IF;
            SET @rds_streams_sandbox_lambda_access = CURRENT_USER();
        END IF;
        IF LENGTH(payload) > 1048576 THEN
            SIGNAL SQLSTATE 'HY000' SET MYSQL_ERRNO = 1873,
                MESSAGE_TEXT = 'Lambda API returned error: Request must be smaller than 1048576 bytes for the InvokeAsync operation';
        END IF;
    END IF;
    -- A local SET is not logged: the assignments inside it copy the arguments once, unescaped.
    SET handed_over = ISNULL(@rds_streams_sandbox_arn := function_arn) + ISNULL(@rds_streams_sandbox_payload := payload);
    INSERT INTO `rds_streams_sandbox`.`lambda_calls` (`invocation_type`, `function_arn`, `payload`, `caller`, `called_at`)
        VALUES ('Event', @rds_streams_sandbox_arn, @rds_streams_sandbox_payload, CURRENT_USER(), SYSDATE(6));
    -- The latency model: Aurora's call costs its round trip inside the writer's statement. Tested
    -- here first so a call costs one primary-key read, not a nested routine call, while it is off.
    IF (SELECT `lambda_ms` FROM `rds_streams_sandbox`.`lambda_settings` WHERE `id` = 1) > 0 THEN
        CALL `rds_streams_sandbox`.`lambda_round_trip`();
    END IF;
    -- Aurora's lambda_async returns NULL; clearing the variable frees the session's copy.
    RETURN (@rds_streams_sandbox_payload := NULL);
END$$

-- Waits for the runner to run the function, as Aurora's does: a function that raises or times out
-- fails the call with ERROR 1873 carrying its error document (await_lambda_result).
CREATE OR REPLACE FUNCTION `lambda_sync`(
    function_arn VARCHAR(2048) CHARACTER SET utf8mb4, payload LONGTEXT CHARACTER SET utf8mb4
)
    RETURNS LONGTEXT CHARACTER SET utf8mb4
    NOT DETERMINISTIC MODIFIES SQL DATA SQL SECURITY INVOKER
BEGIN
    DECLARE call_id BIGINT UNSIGNED DEFAULT `rds_streams_sandbox`.`invoke_lambda_sync`(function_arn, payload);
    RETURN `rds_streams_sandbox`.`await_lambda_result`(call_id);
END$$

DELIMITER ;

EXECUTE IMMEDIATE CONCAT('GRANT EXECUTE ON FUNCTION `', REPLACE(DATABASE(), '`', '``'), '`.`lambda_async` TO PUBLIC');
EXECUTE IMMEDIATE CONCAT('GRANT EXECUTE ON FUNCTION `', REPLACE(DATABASE(), '`', '``'), '`.`lambda_sync` TO PUBLIC');
