-- name: instances
SELECT id, host, pid, version, watch_root, started_at, last_heartbeat, stopped_at,
       extract(epoch FROM coalesce(stopped_at, now()) - started_at) AS uptime_seconds,
       extract(epoch FROM now() - last_heartbeat) AS heartbeat_age_seconds,
       stopped_at IS NULL AND last_heartbeat < now() - make_interval(secs => $1) AS stale
FROM instances
ORDER BY stopped_at IS NOT NULL, started_at DESC
LIMIT 50;

-- name: throughput
SELECT target, date_trunc('minute', uploaded_at) AS minute, count(*) AS n
FROM cloud_file_refs
WHERE uploaded_at >= date_trunc('minute', now()) - make_interval(mins => $1 - 1)
GROUP BY 1, 2;

-- name: devices
-- Only today's ledger rows are counted (the index on created_at finds them): a whole-ledger
-- count per device would scan every row on every poll. Every device that ever dropped a file
-- has a device_connections row, so the list is complete.
WITH day AS (
    SELECT date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS start
), files AS (
    SELECT device_id, count(DISTINCT (local_path, content_sha256)) AS files_today, max(created_at) AS last_file
    FROM cloud_file_refs WHERE created_at >= (SELECT start FROM day) GROUP BY device_id
), reqs AS (
    SELECT device_id, count(*) AS requests_today
    FROM requests WHERE created_at >= (SELECT start FROM day) GROUP BY device_id
), sessions AS (
    SELECT DISTINCT ON (device_id) device_id, connected_at, last_seen_at, disconnected_at
    FROM device_connections ORDER BY device_id, connected_at DESC
), ids AS (
    SELECT device_id FROM files UNION SELECT device_id FROM sessions UNION SELECT device_id FROM reqs
    UNION SELECT device_id FROM device_skipped_files
)
SELECT ids.device_id,
       s.device_id IS NOT NULL AND s.disconnected_at IS NULL AS online,
       greatest(s.last_seen_at, f.last_file) AS last_seen_at,
       coalesce(f.files_today, 0) AS files_today,
       coalesce(r.requests_today, 0) AS requests_today,
       CASE WHEN s.device_id IS NOT NULL AND s.disconnected_at IS NULL
            THEN extract(epoch FROM now() - s.connected_at) END AS open_session_seconds,
       s.connected_at AS session_started_at,
       coalesce(k.skipped, 0) AS skipped
FROM ids
LEFT JOIN device_skipped_files k ON k.device_id = ids.device_id
LEFT JOIN files f ON f.device_id = ids.device_id
LEFT JOIN reqs r ON r.device_id = ids.device_id
LEFT JOIN sessions s ON s.device_id = ids.device_id
ORDER BY ids.device_id;

-- name: files
SELECT id AS ref_id, target, cloud_provider AS provider, device_id, local_path, file_type, sync_status,
       sync_status = 'failed' AND next_attempt_at IS NULL AS gave_up,
       file_size_bytes, attempts, last_error, next_attempt_at, created_at, updated_at, uploaded_at
FROM cloud_file_refs
WHERE ($1::text IS NULL OR device_id = $1)
  AND ($2::text IS NULL OR strpos(lower(local_path), lower($2)) > 0)
  AND ($3::text IS NULL OR sync_status = $3
       OR ($3 = 'gave_up' AND sync_status = 'failed' AND next_attempt_at IS NULL))
  AND ($4::text IS NULL OR target = $4)
ORDER BY created_at DESC, local_path, target
LIMIT $5;

-- name: request_summary
SELECT request_type, status, count(*) AS n
FROM requests
WHERE created_at >= now() - interval '24 hours'
GROUP BY 1, 2
ORDER BY 1, 2;

-- name: requests
SELECT r.id AS request_id, r.device_id, r.request_type, r.status, r.error_code, r.local_path,
       r.created_at, r.processed_at, u.email AS user_email, s.status AS response_status
FROM requests r
LEFT JOIN users u ON u.id = r.created_by
LEFT JOIN responses s ON s.request_id = r.id
WHERE ($1::text IS NULL OR r.request_type = $1)
  AND ($2::text IS NULL OR r.status = $2)
  AND ($3::text IS NULL OR r.device_id = $3)
ORDER BY r.created_at DESC, r.id
LIMIT $4;

-- name: this_minute
-- The start of the server's current minute (the throughput chart's last column).
SELECT date_trunc('minute', now());

-- name: failure_groups
-- Failed rows grouped by target and kind of error, each group with up to $1 of its ids (newest first).
-- Errors are grouped with their quoted parts, absolute paths and long numbers blanked out, so
-- "Not a directory: '/x/a.txt'" and "... '/x/b.txt'" (or "(/x/a)" and "(/x/b)") are one group.
WITH failed_with_kind AS (
    SELECT *, regexp_replace(regexp_replace(regexp_replace(coalesce(last_error, 'no error recorded'),
                  '''[^'']*''|"[^"]*"', '…', 'g'),
                  '(^|[\s(=:])/(\S*[^\s),;])?', '\1…', 'g'),
                  '[0-9]{3,}', '#', 'g') AS error_kind
    FROM cloud_file_refs WHERE sync_status = 'failed'
)
SELECT target, error_kind,
       count(*) AS failed,
       count(*) FILTER (WHERE next_attempt_at IS NULL) AS gave_up,
       max(updated_at) AS latest,
       (array_agg(id ORDER BY updated_at DESC, id))[1:$1] AS ref_ids
FROM failed_with_kind
GROUP BY 1, 2
ORDER BY count(*) DESC, target, error_kind
LIMIT 200;

-- name: failure_rows
-- The newest $1 rows of each group failure_groups lists.
WITH failed_with_kind AS (
    SELECT *, regexp_replace(regexp_replace(regexp_replace(coalesce(last_error, 'no error recorded'),
                  '''[^'']*''|"[^"]*"', '…', 'g'),
                  '(^|[\s(=:])/(\S*[^\s),;])?', '\1…', 'g'),
                  '[0-9]{3,}', '#', 'g') AS error_kind
    FROM cloud_file_refs WHERE sync_status = 'failed'
)
SELECT * FROM (
    SELECT id AS ref_id, target, error_kind, device_id, local_path, attempts, last_error,
           next_attempt_at, next_attempt_at IS NULL AS gave_up, updated_at,
           row_number() OVER (PARTITION BY target, error_kind ORDER BY updated_at DESC, id) AS position
    FROM failed_with_kind
) ranked
WHERE position <= $1
ORDER BY target, error_kind, position;
