-- name: table_exists
-- Does table $1 exist (read-only commands on a database an older version migrated)?
SELECT to_regclass($1) IS NOT NULL;

-- name: lock
-- One migrator at a time: a session-level advisory lock, held across the migrations' transactions.
SELECT pg_advisory_lock($1);

-- name: unlock
SELECT pg_advisory_unlock($1);

-- name: create_migrations_table
-- What ran: one row per migration applied.
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

-- name: applied
SELECT version FROM schema_migrations;

-- name: record
INSERT INTO schema_migrations (version, name) VALUES ($1, $2);

-- name: newest
SELECT max(version) FROM schema_migrations;
