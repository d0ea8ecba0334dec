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
-- (see cloudwatcher/domain/ingest.py, DEVICE_LOCK)
SELECT pg_advisory_xact_lock(hashtextextended('cloudwatcher.device:' || $1, 0));

-- name: insert_request
-- The acting user ($8) is set for the audit triggers by the insert itself: its row comes from
-- the set_config, and AFTER triggers fire once the statement's rows exist.
INSERT INTO requests (id, device_id, request_type, status, payload_hash, created_by, local_path, device_request_id)
SELECT $1, $2, $3, 'processing', $4, $5, $6, $7
FROM (SELECT set_config('cloudwatcher.user_id', $8, true)) AS acting
ON CONFLICT DO NOTHING
RETURNING created_at;

-- name: insert_metadata
-- (see cloudwatcher/domain/ingest.py, INSERT_METADATA)
INSERT INTO request_metadata (request_id, key, value)
SELECT $1, m.key, m.value FROM unnest($2::text[], $3::text[]) AS m(key, value);

-- name: finish_request
-- (see cloudwatcher/domain/ingest.py, FINISH_REQUEST)
UPDATE requests SET status = $2, error_code = $3, processed_by = $4, processed_at = now(), updated_at = now()
WHERE id = $1;

-- name: response_ready
UPDATE responses SET status = 'ready', updated_at = now() WHERE id = $1 AND status = 'processing';

-- name: attach_session_user
-- (see cloudwatcher/domain/ingest.py, ATTACH_SESSION_USER)
UPDATE device_connections SET user_id = $2
WHERE device_id = $1 AND disconnected_at IS NULL AND user_id IS DISTINCT FROM $2;

-- name: set_acting_user
SELECT set_config('cloudwatcher.user_id', $1, true);

-- name: insert_response_metadata
INSERT INTO response_metadata (response_id, key, value)
SELECT $1, m.key, m.value FROM unnest($2::text[], $3::text[]) AS m(key, value)
ON CONFLICT (response_id, key) DO UPDATE SET value = EXCLUDED.value;

-- name: earlier_or_taken
-- One row: an earlier request of the same device that this file repeats (the same bytes, or
-- the same request_id; coalesce(device_request_id, id) is the id the device sent, see migration
-- 0011), live or else archived (id is NULL: none), and whether the request id is already taken
-- (by another device: live or archived). The archive is read only when no live request matches.
SELECT e.*,
       EXISTS (SELECT 1 FROM requests WHERE id = $3) OR EXISTS (SELECT 1 FROM requests_archive WHERE id = $3)
           AS id_taken
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (
    (SELECT r.id, r.status, s.id AS response_id, s.status AS response_status, s.content::text AS content,
            s.local_path AS response_path, false AS archived
     FROM requests r LEFT JOIN responses s ON s.request_id = r.id
     WHERE r.device_id = $1 AND (r.payload_hash = $2 OR coalesce(r.device_request_id, r.id) = $3)
     ORDER BY (r.payload_hash = $2) DESC
     LIMIT 1)
    UNION ALL
    (SELECT r.id, r.status, s.id, s.status, s.content::text, s.local_path, true
     FROM requests_archive r LEFT JOIN responses_archive s ON s.request_id = r.id
     WHERE r.device_id = $1 AND (r.payload_hash = $2 OR coalesce(r.device_request_id, r.id) = $3)
     ORDER BY (r.payload_hash = $2) DESC
     LIMIT 1)
    LIMIT 1
) AS e ON true;

-- name: record_answer
-- Everything that records an answer, in one round trip: the envelope's ledger link, the
-- device session's user, the request's final status, the response row and its metadata.
WITH linked AS (
    UPDATE cloud_file_refs SET request_id = $1
    WHERE local_path = $2 AND content_sha256 = $3 AND request_id IS DISTINCT FROM $1
), session AS (
    UPDATE device_connections SET user_id = $5
    WHERE $5::uuid IS NOT NULL AND device_id = $4 AND disconnected_at IS NULL AND user_id IS DISTINCT FROM $5
), finished AS (
    UPDATE requests SET status = $6, error_code = $7, processed_by = $8, processed_at = now(), updated_at = now()
    WHERE id = $1
), response AS (
    INSERT INTO responses (request_id, status, content, local_path) VALUES ($1, 'processing', $9::jsonb, $10)
    RETURNING id
), metadata AS (
    INSERT INTO response_metadata (response_id, key, value)
    SELECT response.id, m.key, m.value FROM response, unnest($11::text[], $12::text[]) AS m(key, value)
)
SELECT id FROM response;

-- name: settle_answers
-- The response rows this batch owns become 'ready', and every file of the batch is processed.
WITH ready AS (
    UPDATE responses SET status = 'ready', updated_at = now()
    WHERE id = ANY($1::uuid[]) AND status = 'processing'
)
UPDATE cloud_file_refs c SET processed_at = now()
FROM unnest($2::text[], $3::text[]) AS f(local_path, content_sha256)
WHERE c.local_path = f.local_path AND c.content_sha256 = f.content_sha256 AND c.processed_at IS NULL;

-- name: async_commit
-- Losing this transaction in a crash is harmless: it need not wait for a WAL flush.
SET LOCAL synchronous_commit = off;
