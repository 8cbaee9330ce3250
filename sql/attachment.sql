-- What `up` changed on a cluster it attached to and does not own ([database] cluster), with the value
-- each setting had before, so `down` reverses exactly that and nothing else. A row is written before
-- its change is made (a crash in between leaves a row whose reversal finds nothing to undo), and is
-- never overwritten by a later `up`: the previous value is the one from before our first change.
CREATE DATABASE IF NOT EXISTS `rds_streams` CHARACTER SET utf8mb4;

CREATE TABLE IF NOT EXISTS `rds_streams`.`cluster_changes`
(
    `seq`            INT          NOT NULL AUTO_INCREMENT,  -- `down` reverses in descending order
    `change_key`     VARCHAR(255) NOT NULL,
    `kind`           VARCHAR(32)  NOT NULL,  -- associate-role | set-parameter | copy-group | switch-group | definer-grants
    `target`         VARCHAR(255) NOT NULL,  -- the cluster, parameter group or account changed
    `name`           VARCHAR(255) NOT NULL,  -- the role ARN, parameter or group name
    `had_value`      BOOLEAN      NOT NULL,  -- FALSE: the parameter was unset, the role not associated
    `previous_value` TEXT         NULL,
    `applied_value`  TEXT         NULL,
    `recorded_at`    DATETIME(6)  NOT NULL,  -- UTC
    PRIMARY KEY (`seq`),
    UNIQUE KEY `change_key` (`change_key`)
) ENGINE = InnoDB
  DEFAULT CHARSET = utf8mb4;
