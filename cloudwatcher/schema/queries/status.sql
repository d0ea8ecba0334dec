-- name: targets
-- Counts come from an index-only scan of (target, sync_status); the rest from small partial
-- indexes (migration 0004), so the snapshot stays cheap on a ledger of millions of rows.
WITH counts AS (
    SELECT target, sync_status, count(*) AS n FROM cloud_file_refs GROUP BY target, sync_status
), names AS (
    SELECT DISTINCT target FROM counts
)
SELECT names.target,
       (SELECT cloud_provider FROM cloud_file_refs c WHERE c.target = names.target LIMIT 1) AS provider,
       coalesce((SELECT n FROM counts WHERE counts.target = names.target AND sync_status = 'pending'), 0) AS pending,
       coalesce((SELECT n FROM counts WHERE counts.target = names.target AND sync_status = 'uploading'), 0)
           AS uploading,
       coalesce((SELECT n FROM counts WHERE counts.target = names.target AND sync_status = 'synced'), 0) AS synced,
       coalesce((SELECT n FROM counts WHERE counts.target = names.target AND sync_status = 'failed'), 0) AS failed,
       (SELECT count(*) FROM cloud_file_refs c
        WHERE c.target = names.target AND c.sync_status = 'failed' AND c.next_attempt_at IS NULL) AS gave_up,
       extract(epoch FROM now() - (SELECT min(created_at) FROM cloud_file_refs c
                                   WHERE c.target = names.target AND c.sync_status IN ('pending', 'uploading')))
           AS oldest_pending_age_seconds,
       (SELECT max(uploaded_at) FROM cloud_file_refs c WHERE c.target = names.target AND c.uploaded_at IS NOT NULL)
           AS last_synced_at
FROM names;

-- name: requests
SELECT status, count(*) AS n FROM requests GROUP BY status;

-- name: devices
WITH files AS (
    SELECT device_id, count(DISTINCT local_path) AS files, max(created_at) AS last_file
    FROM cloud_file_refs GROUP BY device_id
), sessions AS (
    SELECT DISTINCT ON (device_id) device_id, last_seen_at, disconnected_at IS NULL AS open
    FROM device_connections ORDER BY device_id, connected_at DESC
)
SELECT coalesce(f.device_id, s.device_id, k.device_id) AS device_id,
       coalesce(s.open, false) AS online,
       greatest(s.last_seen_at, f.last_file) AS last_seen_at,
       coalesce(f.files, 0) AS files,
       coalesce(k.skipped, 0) AS skipped
FROM files f FULL OUTER JOIN sessions s ON s.device_id = f.device_id
FULL OUTER JOIN {skipped} k ON k.device_id = coalesce(f.device_id, s.device_id)
ORDER BY 1;

-- name: failures
SELECT id AS ref_id, target, local_path, attempts, last_error, next_attempt_at
FROM cloud_file_refs
WHERE sync_status = 'failed'
ORDER BY updated_at DESC
LIMIT $1;

-- name: instances
-- Every instance that has not stopped cleanly is listed (running, or stale: killed, or cut off),
-- however many there are; of those that stopped cleanly (one row per start, so a host that
-- restarts daily gathers hundreds) only the newest few, and the others are counted, never
-- dropped silently.
SELECT id, host, pid, version, started_at, last_heartbeat, stopped_at IS NOT NULL AS stopped,
       last_heartbeat < now() - make_interval(secs => $1) AS stale
FROM (
    SELECT *, row_number() OVER (PARTITION BY stopped_at IS NOT NULL ORDER BY started_at DESC) AS nth
    FROM instances
) AS numbered
WHERE stopped_at IS NULL OR nth <= $2
ORDER BY started_at DESC;

-- name: stopped_instances
SELECT count(*) FROM instances WHERE stopped_at IS NOT NULL;
