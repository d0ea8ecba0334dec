-- name: unprocessed
-- One entry per file version (a file has one ledger row per target), oldest first, so that a
-- device's requests are replayed in the order they were dropped.
SELECT device_id, local_path, content_sha256, file_size_bytes, file_type, min(created_at) AS first_seen
FROM cloud_file_refs
WHERE processed_at IS NULL AND file_type IN ('request', 'response')
GROUP BY device_id, local_path, content_sha256, file_size_bytes, file_type
ORDER BY first_seen, local_path;

-- name: decision
INSERT INTO agent_decisions
    (request_id, agent_name, decision_type, decision_value, reasoning, confidence_score)
VALUES ($1, $2, $3, $4, $5::jsonb, $6);

-- name: mark_delivered
-- Every ledger row linked to the response (all targets, the duplicates' copies included)
-- must be 'synced'; a response with no linked row yet is not delivered.
UPDATE responses s SET status = 'delivered', delivered_at = now(), updated_at = now()
WHERE s.status = 'ready'
  AND EXISTS (SELECT 1 FROM cloud_file_refs c WHERE c.response_id = s.id)
  AND NOT EXISTS (SELECT 1 FROM cloud_file_refs c WHERE c.response_id = s.id AND c.sync_status <> 'synced');

-- name: device_lock
SELECT pg_advisory_xact_lock(hashtextextended('cloudwatcher.device:' || $1, 0));

-- name: earlier_request
-- An earlier request of the same device that this file repeats: the same bytes, or the same
-- request_id (coalesce(device_request_id, id) is the id the device sent; see migration 0011).
-- A live request before an archived one, and of each, one with the same bytes first.
SELECT id, status, response_id, response_status, content, response_path, archived
FROM (
    SELECT r.id, r.status, s.id AS response_id, s.status AS response_status, s.content::text AS content,
           s.local_path AS response_path, false AS archived, r.payload_hash = $2 AS same_bytes
    FROM requests r LEFT JOIN responses s ON s.request_id = r.id
    WHERE r.device_id = $1 AND (r.payload_hash = $2 OR coalesce(r.device_request_id, r.id) = $3)
    UNION ALL
    SELECT a.id, a.status, b.id, b.status, b.content::text, b.local_path, true, a.payload_hash = $2
    FROM requests_archive a LEFT JOIN responses_archive b ON b.request_id = a.id
    WHERE a.device_id = $1 AND (a.payload_hash = $2 OR coalesce(a.device_request_id, a.id) = $3)
) AS earlier
ORDER BY archived, same_bytes DESC
LIMIT 1;

-- name: id_taken
-- Whether a request id is already another device's (live or archived).
SELECT EXISTS (SELECT 1 FROM requests WHERE id = $1) OR EXISTS (SELECT 1 FROM requests_archive WHERE id = $1);

-- name: insert_request
INSERT INTO requests (id, device_id, request_type, status, payload_hash, created_by, local_path, device_request_id)
VALUES ($1, $2, $3, 'processing', $4, $5, $6, $7)
ON CONFLICT DO NOTHING
RETURNING created_at;

-- name: insert_metadata
INSERT INTO request_metadata (request_id, key, value)
SELECT $1, m.key, m.value FROM unnest($2::text[], $3::text[]) AS m(key, value);

-- name: finish_request
UPDATE requests SET status = $2, error_code = $3, processed_by = $4, processed_at = now(), updated_at = now()
WHERE id = $1;

-- name: insert_response
INSERT INTO responses (request_id, status, content, local_path) VALUES ($1, 'processing', $2::jsonb, $3)
RETURNING id;

-- name: response_ready
UPDATE responses SET status = 'ready', updated_at = now() WHERE id = $1 AND status = 'processing';

-- name: attach_session_user
UPDATE device_connections SET user_id = $2
WHERE device_id = $1 AND disconnected_at IS NULL AND user_id IS DISTINCT FROM $2;

-- name: set_acting_user
SELECT set_config('cloudwatcher.user_id', $1, true);

-- name: insert_response_metadata
INSERT INTO response_metadata (response_id, key, value)
SELECT $1, m.key, m.value FROM unnest($2::text[], $3::text[]) AS m(key, value)
ON CONFLICT (response_id, key) DO UPDATE SET value = EXCLUDED.value;

-- name: async_commit
-- Losing this transaction in a crash is harmless: it need not wait for a WAL flush.
SET LOCAL synchronous_commit = off;
