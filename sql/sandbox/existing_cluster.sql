-- A team's database as the sandbox's pre-existing cluster holds it before rds-streams attaches: its
-- own tables and rows, its own users, a trigger, a view and a procedure of its own. Run inside the
-- cluster's database ([database] name); `down` after an attach must leave every one of these as it was.
CREATE TABLE IF NOT EXISTS `customers`
(
    `id`    INT          NOT NULL AUTO_INCREMENT,
    `email` VARCHAR(200) NOT NULL,
    `tier`  ENUM ('free', 'pro') NOT NULL DEFAULT 'free',
    PRIMARY KEY (`id`),
    UNIQUE KEY (`email`)
) ENGINE = InnoDB
  DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS `orders`
(
    `id`          BIGINT        NOT NULL AUTO_INCREMENT,
    `customer_id` INT           NOT NULL,
    `total`       DECIMAL(10, 2) NOT NULL,
    `note`        VARCHAR(100)  NULL,
    `placed_at`   DATETIME(3)   NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (`id`),
    CONSTRAINT `orders_customer` FOREIGN KEY (`customer_id`) REFERENCES `customers` (`id`)
) ENGINE = InnoDB
  DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS `order_audit`
(
    `id`       BIGINT      NOT NULL AUTO_INCREMENT,
    `order_id` BIGINT      NOT NULL,
    `seen_at`  DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (`id`)
) ENGINE = InnoDB
  DEFAULT CHARSET = utf8mb4;

INSERT IGNORE INTO `customers` (`id`, `email`, `tier`)
VALUES (1, 'ada@example.com', 'pro'), (2, 'grace@example.com', 'free'), (3, 'linus@example.com', 'free');

INSERT IGNORE INTO `orders` (`id`, `customer_id`, `total`, `note`, `placed_at`)
VALUES (1, 1, 12.50, 'first', '2026-11-30 10:00:00.000'), (2, 2, 99.99, NULL, '2026-12-01 11:30:00.000'),
       (3, 1, 0.10, 'tiny', '2026-12-02 08:15:00.000');

-- The team's own trigger on the table that will be streamed: ours are added beside it, never touch it.
DROP TRIGGER IF EXISTS `orders_audit`;
CREATE TRIGGER `orders_audit`
    AFTER INSERT
    ON `orders`
    FOR EACH ROW INSERT INTO `order_audit` (`order_id`) VALUES (NEW.`id`);

CREATE OR REPLACE VIEW `big_orders` AS
SELECT `id`, `customer_id`, `total` FROM `orders` WHERE `total` >= 50;

DROP PROCEDURE IF EXISTS `order_count`;
DELIMITER $$
CREATE PROCEDURE `order_count`(OUT `n` BIGINT)
BEGIN
    SELECT COUNT(*) INTO `n` FROM `orders`;
END $$
DELIMITER ;
