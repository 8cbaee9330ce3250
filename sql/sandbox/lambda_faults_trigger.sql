-- Enforces the fault switch (lambda_faults): a call (lambda_async's or lambda_sync's) matching a
-- fault is refused before it is queued, with Aurora's ERROR 1873 text. It exists only while faults do, so a call costs nothing
-- extra otherwise; aurora_emulation.py adds and drops it with the faults.

DELIMITER $$

CREATE OR REPLACE TRIGGER `rds_streams_sandbox`.`lambda_calls_fault_switch`
    BEFORE INSERT ON `rds_streams_sandbox`.`lambda_calls` FOR EACH ROW
BEGIN
    DECLARE failure VARCHAR(1100) CHARACTER SET utf8mb4;
    SET failure = (
        SELECT CONCAT('Lambda API returned error: ', f.`reason`) FROM `rds_streams_sandbox`.`lambda_faults` f
        WHERE (f.`function_arn` IS NULL OR f.`function_arn` = NEW.`function_arn`)
          AND (f.`payload_contains` IS NULL OR LOCATE(f.`payload_contains`, NEW.`payload`) > 0)
        ORDER BY f.`id` LIMIT 1);
    IF failure IS NOT NULL THEN
        SIGNAL SQLSTATE 'HY000' SET MYSQL_ERRNO = 1873, MESSAGE_TEXT = failure;
    END IF;
END$$

-- lambda_sync's calls, likewise.
CREATE OR REPLACE TRIGGER `rds_streams_sandbox`.`lambda_sync_calls_fault_switch`
    BEFORE INSERT ON `rds_streams_sandbox`.`lambda_sync_calls` FOR EACH ROW
BEGIN
    DECLARE failure VARCHAR(1100) CHARACTER SET utf8mb4;
    SET failure = (
        SELECT CONCAT('Lambda API returned error: ', f.`reason`) FROM `rds_streams_sandbox`.`lambda_faults` f
        WHERE (f.`function_arn` IS NULL OR f.`function_arn` = NEW.`function_arn`)
          AND (f.`payload_contains` IS NULL OR LOCATE(f.`payload_contains`, NEW.`payload`) > 0)
        ORDER BY f.`id` LIMIT 1);
    IF failure IS NOT NULL THEN
        SIGNAL SQLSTATE 'HY000' SET MYSQL_ERRNO = 1873, MESSAGE_TEXT = failure;
    END IF;
END$$

DELIMITER ;
