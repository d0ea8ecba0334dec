"""Every ledger query the daemon and the CLI run, by name (procrastinate's queries.sql, in Python).

Batch statements take parallel arrays and ``unnest`` them, so that a burst of thousands of
files costs a handful of round trips instead of one per file.
"""

KNOWN_VERSIONS = """
SELECT local_path, file_size_bytes, file_mtime_ns, content_sha256, array_agg(target) AS targets
FROM cloud_file_refs
WHERE local_path = ANY($1::text[])
GROUP BY local_path, file_size_bytes, file_mtime_ns, content_sha256
"""

RECORD_FILES = """
INSERT INTO cloud_file_refs
    (target, cloud_provider, device_id, local_path, file_type, content_sha256, file_size_bytes, file_mtime_ns)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::bigint[], $8::bigint[])
ON CONFLICT (target, local_path, content_sha256) DO UPDATE
    -- The same content seen again with a new mtime. A failed row gets a fresh start (the file
    -- was written again), and so does a synced row that a newer version has since replaced
    -- remotely (content A, then B, then A again: the remote holds B, so A goes up again).
    SET file_mtime_ns = EXCLUDED.file_mtime_ns,
        sync_status = CASE WHEN cloud_file_refs.sync_status = 'failed' OR (
                               cloud_file_refs.sync_status = 'synced' AND EXISTS (
                                   SELECT 1 FROM cloud_file_refs AS newer
                                   WHERE newer.target = cloud_file_refs.target
                                     AND newer.local_path = cloud_file_refs.local_path
                                     AND newer.created_at > cloud_file_refs.created_at))
                           THEN 'pending' ELSE cloud_file_refs.sync_status END,
        next_attempt_at = NULL,
        created_at = CASE WHEN cloud_file_refs.sync_status = 'synced' THEN now()
                          ELSE cloud_file_refs.created_at END,
        updated_at = now()
    WHERE cloud_file_refs.file_mtime_ns <> EXCLUDED.file_mtime_ns
RETURNING (xmax = 0) AS inserted
"""

CLAIM_PENDING = """
WITH claimable AS (
    SELECT id FROM cloud_file_refs
    WHERE target = $1 AND sync_status = 'pending'
    ORDER BY created_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
UPDATE cloud_file_refs AS r
SET sync_status = 'uploading',
    lease_expires_at = now() + make_interval(secs => $3),
    claimed_by = $4,
    updated_at = now()
FROM claimable
WHERE r.id = claimable.id
RETURNING r.id, r.local_path, r.device_id, r.file_type, r.content_sha256, r.file_size_bytes,
          r.file_mtime_ns, r.attempts, r.upload_session, r.created_at
"""

RENEW_LEASES = """
UPDATE cloud_file_refs
SET lease_expires_at = now() + make_interval(secs => $2)
WHERE id = ANY($1::uuid[]) AND sync_status = 'uploading'
"""

MARK_SYNCED = """
UPDATE cloud_file_refs AS r
SET sync_status = 'synced',
    uploaded_at = now(),
    cloud_path = v.cloud_path,
    remote_id = v.remote_id,
    remote_size = v.remote_size,
    remote_hash = v.remote_hash,
    verification = v.verification,
    attempts = r.attempts + 1,
    last_error = NULL,
    next_attempt_at = NULL,
    lease_expires_at = NULL,
    claimed_by = NULL,
    upload_session = NULL,
    uploaded_by = $7,
    updated_at = now()
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[])
     AS v(id, cloud_path, remote_id, remote_size, remote_hash, verification)
WHERE r.id = v.id AND r.sync_status = 'uploading'
"""

MARK_FAILED = """
UPDATE cloud_file_refs AS r
SET sync_status = 'failed',
    attempts = r.attempts + v.spent,
    last_error = v.error,
    next_attempt_at = v.next_attempt_at,
    lease_expires_at = NULL,
    claimed_by = NULL,
    updated_at = now()
FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::int[]) AS v(id, error, next_attempt_at, spent)
WHERE r.id = v.id AND r.sync_status = 'uploading'
"""

RELEASE_CLAIMS = """
UPDATE cloud_file_refs
SET sync_status = 'pending', lease_expires_at = NULL, claimed_by = NULL, updated_at = now()
WHERE id = ANY($1::uuid[]) AND sync_status = 'uploading'
"""

RELEASE_INSTANCE_CLAIMS = """
UPDATE cloud_file_refs
SET sync_status = 'pending', lease_expires_at = NULL, claimed_by = NULL, updated_at = now()
WHERE claimed_by = $1 AND sync_status = 'uploading'
"""

SAVE_UPLOAD_SESSION = """
UPDATE cloud_file_refs SET upload_session = $2::jsonb, updated_at = now() WHERE id = $1
"""

REQUEUE_DUE = """
UPDATE cloud_file_refs
SET sync_status = 'pending', updated_at = now()
WHERE sync_status = 'failed' AND next_attempt_at <= now()
RETURNING target
"""

REAP_EXPIRED_LEASES = """
UPDATE cloud_file_refs
SET sync_status = 'pending', lease_expires_at = NULL, claimed_by = NULL, updated_at = now()
WHERE sync_status = 'uploading' AND lease_expires_at < now()
RETURNING target
"""

RETRY_ALL = """
UPDATE cloud_file_refs
SET sync_status = 'pending', attempts = 0, next_attempt_at = NULL, updated_at = now()
WHERE sync_status = 'failed'
RETURNING id
"""

RETRY_IDS = """
UPDATE cloud_file_refs
SET sync_status = 'pending', attempts = 0, next_attempt_at = NULL, updated_at = now()
WHERE sync_status = 'failed' AND id = ANY($1::uuid[])
RETURNING id
"""

PENDING_TARGETS = """
SELECT DISTINCT target FROM cloud_file_refs WHERE sync_status = 'pending'
"""

REGISTER_INSTANCE = """
INSERT INTO instances (host, pid, version, watch_root) VALUES ($1, $2, $3, $4) RETURNING id
"""

HEARTBEAT = "UPDATE instances SET last_heartbeat = now() WHERE id = $1"

STOP_INSTANCE = "UPDATE instances SET stopped_at = now(), last_heartbeat = now() WHERE id = $1"

LIST_FILES = """
SELECT id AS ref_id, target, cloud_provider, device_id, local_path, file_type, sync_status,
       content_sha256, file_size_bytes, attempts, last_error, next_attempt_at, cloud_path,
       remote_id, remote_size, remote_hash, verification, request_id, response_id,
       uploaded_at, created_at, updated_at
FROM cloud_file_refs
WHERE ($1::text IS NULL OR sync_status = $1)
  AND ($2::text IS NULL OR device_id = $2)
  AND ($3::text IS NULL OR target = $3)
ORDER BY created_at DESC, local_path, target
LIMIT $4
"""
