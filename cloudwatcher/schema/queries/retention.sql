-- name: pick_batch
SELECT r.id FROM requests r
WHERE r.created_at < now() - make_interval(days => $1)
  AND r.status IN ('completed', 'failed')
  AND NOT EXISTS (
      SELECT 1 FROM cloud_file_refs c
      WHERE (c.request_id = r.id OR c.response_id IN (SELECT s.id FROM responses s WHERE s.request_id = r.id))
        AND NOT (c.sync_status = 'synced' OR (c.sync_status = 'failed' AND c.next_attempt_at IS NULL)))
ORDER BY r.created_at
LIMIT $2
FOR UPDATE OF r SKIP LOCKED;

-- name: summary
INSERT INTO audit_logs (table_name, operation, record_id, change_reason)
VALUES ($1, 'DELETE', NULL, $2);

-- name: shared_columns
-- The columns table $1 shares with its archive $2, in table order.
SELECT a.attname FROM pg_attribute a
WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
  AND a.attname IN (SELECT b.attname FROM pg_attribute b
                    WHERE b.attrelid = to_regclass($2) AND b.attnum > 0 AND NOT b.attisdropped)
ORDER BY a.attnum;

-- name: audit_off
-- No row-level audit in this transaction (the batch writes one summary row a table).
SELECT set_config('cloudwatcher.audit', 'off', true);

-- name: audit_on
SELECT set_config('cloudwatcher.audit', 'on', true);

-- name: drop_gone_ledger_rows
-- Ledger rows of the batch whose files are gone from the watch root (the others stay live).
DELETE FROM cloud_file_refs
WHERE (request_id = ANY($1) OR response_id IN (SELECT id FROM responses WHERE request_id = ANY($1)))
  AND local_state <> 'present';

-- name: drop_requests
-- The batch's requests; the delete cascades to their metadata, responses and decisions.
DELETE FROM requests WHERE id = ANY($1);

-- name: ensure_audit_partitions
-- audit_logs partitions for this year and $1 more (idempotent).
SELECT cloudwatcher_ensure_audit_partitions($1);
