-- name: try_xact_lock
-- Take advisory lock $1 until the transaction ends, if no one holds it (true when taken).
SELECT pg_try_advisory_xact_lock($1);

-- name: xact_lock
-- Wait for advisory lock $1, held until the transaction ends.
SELECT pg_advisory_xact_lock($1);
