-- RoboShop in C: the ratings service's database, table and user (docs/DECISIONS.md D9, D13).
-- Idempotent; valid on MariaDB 10.11 and MySQL 8.0/8.4. No rows are seeded.
-- 'iloveit' is the reference's PUBLIC lab password (hard-coded in the reference ratings service): labs only.
-- An existing user keeps its password: CREATE USER IF NOT EXISTS does not touch it.

CREATE DATABASE IF NOT EXISTS ratings CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS ratings.ratings (
  sku VARCHAR(80) NOT NULL,
  avg_rating DECIMAL(3,2) NOT NULL,
  rating_count INT NOT NULL,
  PRIMARY KEY (sku)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE USER IF NOT EXISTS 'ratings'@'%' IDENTIFIED BY 'iloveit';
CREATE USER IF NOT EXISTS 'ratings'@'localhost' IDENTIFIED BY 'iloveit';
GRANT ALL PRIVILEGES ON ratings.* TO 'ratings'@'%';
GRANT ALL PRIVILEGES ON ratings.* TO 'ratings'@'localhost';
