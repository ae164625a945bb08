-- RoboShop in C: the shipping service's database user (the course's "MySQL" step, docs/DECISIONS.md D9).
-- Idempotent; valid on MariaDB 10.11 and MySQL 8.0/8.4 (no mysql_native_password, no 5.7 GRANT ... IDENTIFIED BY).
-- 'RoboShop@1' is the course's PUBLIC lab password (published in the course material): use it for labs only,
-- and change it (ALTER USER ... IDENTIFIED BY ...; plus DB_PASSWORD for shipping) anywhere else.
-- An existing user keeps its password: CREATE USER IF NOT EXISTS does not touch it.
-- The @'localhost' twin matters on servers that still have an anonymous ''@'localhost' user, which would
-- otherwise win over 'shipping'@'%' for local connections.

CREATE USER IF NOT EXISTS 'shipping'@'%' IDENTIFIED BY 'RoboShop@1';
CREATE USER IF NOT EXISTS 'shipping'@'localhost' IDENTIFIED BY 'RoboShop@1';
GRANT ALL PRIVILEGES ON cities.* TO 'shipping'@'%';
GRANT ALL PRIVILEGES ON cities.* TO 'shipping'@'localhost';
