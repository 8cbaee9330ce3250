-- Run once by `mariadbd --bootstrap` after mariadb-install-db, before the server opens any port.
-- root and anonymous accounts anywhere but `localhost` (which with --skip-name-resolve is the unix
-- socket alone) go; `root@localhost` stays for the sandbox itself, reachable only by whoever can
-- enter the private .rds-streams/ folder. Every account left reachable over TCP has a password.
USE mysql;
DELETE FROM global_priv WHERE (User = 'root' AND Host <> 'localhost') OR User = '';
DELETE FROM proxies_priv WHERE Host <> 'localhost';
FLUSH PRIVILEGES;
