-- The article's example table (flights.routes). DESIGN.md: the database name comes from
-- [database].name, so this file only creates tables inside it.
CREATE TABLE IF NOT EXISTS `routes`
(
    `airportFrom`                varchar(10) NOT NULL,
    `airportTo`                  varchar(20) NOT NULL,
    `connectingAirport`          varchar(10),
    `newRoute`                   bit DEFAULT 0,
    `seasonalRoute`              bit DEFAULT 0,
    `operator`                   varchar(10) NOT NULL,
    `group`                      varchar(10) NOT NULL,
    `tags`                       TEXT,
    `similarArrivalAirportCodes` TEXT,
    `carrierCode`                varchar(10) NOT NULL,
    PRIMARY KEY (`airportFrom`, `airportTo`),
    INDEX (`airportFrom`),
    INDEX (`airportTo`)
) ENGINE = InnoDB
  DEFAULT CHARSET = latin1;
