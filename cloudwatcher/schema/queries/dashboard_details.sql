-- name: request
SELECT r.id AS request_id, r.device_id, r.request_type, r.status, r.error_code, r.payload_hash,
       r.local_path, r.created_at, r.updated_at, r.processed_at, u.email AS user_email,
       i.host AS processed_by_host
FROM requests r
LEFT JOIN users u ON u.id = r.created_by
LEFT JOIN instances i ON i.id = r.processed_by
WHERE r.id = $1;

-- name: request_for_path
SELECT id FROM requests WHERE local_path = $1 ORDER BY created_at DESC LIMIT 1;

-- name: response
SELECT id AS response_id, request_id, status, content::text AS content, ai_processed, local_path,
       delivered_at, created_at, updated_at
FROM responses WHERE request_id = $1;

-- name: response_by_id
SELECT request_id FROM responses WHERE id = $1;

-- name: metadata
SELECT key, value FROM request_metadata WHERE request_id = $1 ORDER BY key;

-- name: orders
SELECT o.id AS order_id, o.order_type, o.status, o.total, o.created_at, o.approved_at, o.request_id,
       l.name AS location, u.email AS created_by
FROM orders o
LEFT JOIN locations l ON l.id = o.location_id
LEFT JOIN users u ON u.id = o.created_by
WHERE o.request_id = $1 OR o.id = ANY($2::uuid[])
ORDER BY o.created_at;

-- name: order_history
SELECT h.order_id, h.event_type, h.event_description, u.email AS user_email, h.metadata::text AS metadata,
       h.created_at
FROM order_history h LEFT JOIN users u ON u.id = h.user_id
WHERE h.order_id = ANY($1::uuid[])
ORDER BY h.created_at, h.id
LIMIT 500;

-- name: audit
-- The request's own transaction (every row it wrote carries the transaction's now(), which is
-- also requests.created_at), plus later changes to the request, its response and its orders.
SELECT a.id AS audit_id, a.table_name, a.operation, a.record_id, u.email AS user_email,
       a.old_values::text AS old_values, a.new_values::text AS new_values, a.change_reason, a.created_at
FROM audit_logs a LEFT JOIN users u ON u.id = a.user_id
WHERE a.created_at = $1
   OR (a.table_name, a.record_id) IN (SELECT * FROM unnest($2::text[], $3::text[]))
ORDER BY a.created_at, a.table_name, a.record_id
LIMIT 500;

-- name: ledger_rows
-- Ledger rows for a detail page: every version of the file of ref $1 on every target (a changed
-- file gets new rows; old ones stay as history), or the rows of request $2's files and of its
-- response $3's. Each caller passes NULL for what it does not ask.
SELECT id AS ref_id, target, cloud_provider AS provider, device_id, local_path, file_type, sync_status,
       sync_status = 'failed' AND next_attempt_at IS NULL AS gave_up, cloud_path, remote_id, remote_size,
       remote_hash, verification, content_sha256, file_size_bytes, attempts, last_error, next_attempt_at,
       request_id, response_id, local_state, archived_path, created_at, updated_at, uploaded_at
FROM cloud_file_refs
WHERE local_path = (SELECT local_path FROM cloud_file_refs WHERE id = $1)
   OR request_id = $2 OR response_id = $3
ORDER BY file_type DESC, local_path, created_at DESC, target
LIMIT 500;
