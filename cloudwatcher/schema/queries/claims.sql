-- name: claim_pending
WITH claimable AS (
    SELECT id FROM cloud_file_refs
    WHERE target = $1 AND sync_status = 'pending'
      -- Only files this instance can read: recorded from its own watch root (or before roots were kept).
      AND (source_root IS NULL OR $5::text IS NULL OR source_root = $5::text)
      -- A target parked by a daily upload cap hands out nothing until the cap can have reset.
      AND NOT EXISTS (SELECT 1 FROM target_states s WHERE s.target = $1 AND s.state = 'parked' AND s.until > now())
      -- Nor does a target an operator paused (`cloudwatcher pause`).
      AND NOT EXISTS (SELECT 1 FROM target_pauses p WHERE p.target = $1)
    ORDER BY created_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
UPDATE cloud_file_refs AS r
SET sync_status = 'uploading',
    lease_expires_at = now() + make_interval(secs => $3),
    claimed_by = $4,
    claim_token = gen_random_uuid(),
    updated_at = now()
FROM claimable
WHERE r.id = claimable.id
RETURNING r.id, r.claim_token, r.local_path, r.device_id, r.file_type, r.content_sha256, r.file_size_bytes,
          r.file_mtime_ns, r.attempts, r.upload_session, extract(epoch FROM r.created_at)::float8 AS noticed_at;

-- name: renew_leases
-- The ids of the rows whose claim is still held (and now renewed); the others were lost.
UPDATE cloud_file_refs AS r
SET lease_expires_at = now() + make_interval(secs => $3)
FROM unnest($1::uuid[], $2::uuid[]) AS v(id, claim_token)
WHERE r.id = v.id AND r.sync_status = 'uploading'
  AND r.claimed_by IS NOT DISTINCT FROM $4::uuid AND r.claim_token = v.claim_token
RETURNING r.id;

-- name: mark_synced
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
    claim_token = NULL,
    upload_session = NULL,
    uploaded_by = $7,
    updated_at = now()
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $8::uuid[])
     AS v(id, cloud_path, remote_id, remote_size, remote_hash, verification, claim_token)
WHERE r.id = v.id AND r.sync_status = 'uploading'
  AND r.claimed_by IS NOT DISTINCT FROM $7::uuid AND r.claim_token = v.claim_token;

-- name: mark_failed
WITH failed AS (
    UPDATE cloud_file_refs AS r
    SET sync_status = 'failed',
        attempts = r.attempts + v.spent,
        last_error = v.error,
        next_attempt_at = v.next_attempt_at,
        lease_expires_at = NULL,
        claimed_by = NULL,
        claim_token = NULL,
        updated_at = now()
    FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::int[], $5::bool[], $6::uuid[])
         AS v(id, error, next_attempt_at, spent, announce, claim_token)
    WHERE r.id = v.id AND r.sync_status = 'uploading'
      AND r.claimed_by IS NOT DISTINCT FROM $7::uuid AND r.claim_token = v.claim_token
    RETURNING r.id, r.target, r.local_path, r.last_error, r.next_attempt_at, v.announce
), announced AS (
    -- A row that gave up is announced (notify.webhook_url) in the same transaction: never lost,
    -- never sent for a failure that did not happen (nor for a claim that was lost).
    INSERT INTO notification_events (event, target, local_path, ref_id, reason)
    SELECT 'file.gave_up', target, local_path, id, last_error FROM failed
    WHERE next_attempt_at IS NULL AND announce
)
SELECT count(*) FROM failed;

-- name: release_claims
UPDATE cloud_file_refs AS r
SET sync_status = 'pending', lease_expires_at = NULL, claimed_by = NULL, claim_token = NULL, updated_at = now()
FROM unnest($1::uuid[], $2::uuid[]) AS v(id, claim_token)
WHERE r.id = v.id AND r.sync_status = 'uploading'
  AND r.claimed_by IS NOT DISTINCT FROM $3::uuid AND r.claim_token = v.claim_token;

-- name: release_instance_claims
-- On a clean stop: every claim this instance still holds (by its id, which no other instance has).
UPDATE cloud_file_refs
SET sync_status = 'pending', lease_expires_at = NULL, claimed_by = NULL, claim_token = NULL, updated_at = now()
WHERE claimed_by = $1 AND sync_status = 'uploading';

-- name: save_upload_session
UPDATE cloud_file_refs SET upload_session = $2::jsonb, updated_at = now()
WHERE id = $1 AND sync_status = 'uploading' AND claimed_by IS NOT DISTINCT FROM $4::uuid AND claim_token = $3;

-- name: requeue_due
UPDATE cloud_file_refs
SET sync_status = 'pending', updated_at = now()
WHERE sync_status = 'failed' AND next_attempt_at <= now()
RETURNING target;

-- name: reap_expired_leases
-- An expired lease is taken back only from an instance that has gone silent for as long as a
-- lease ($1 seconds; it heartbeats every 10 s) or has stopped, or from no known instance: a live
-- instance's claims are never released by another, however late its renewals.
UPDATE cloud_file_refs AS r
SET sync_status = 'pending', lease_expires_at = NULL, claimed_by = NULL, claim_token = NULL, updated_at = now()
WHERE r.sync_status = 'uploading' AND r.lease_expires_at < now()
  AND NOT EXISTS (
      SELECT 1 FROM instances AS i
      WHERE i.id = r.claimed_by AND i.stopped_at IS NULL
        AND i.last_heartbeat > now() - make_interval(secs => $1))
RETURNING r.target;

-- name: retry_all
UPDATE cloud_file_refs
SET sync_status = 'pending', attempts = 0, next_attempt_at = NULL, updated_at = now()
WHERE sync_status = 'failed'
RETURNING id, target;

-- name: retry_ids
UPDATE cloud_file_refs
SET sync_status = 'pending', attempts = 0, next_attempt_at = NULL, updated_at = now()
WHERE sync_status = 'failed' AND id = ANY($1::uuid[])
RETURNING id, target;

-- name: release_claims_of_dead_instances
-- Instances are told apart by their per-boot id (a new ``instances`` row each start), never
-- by host name or process id: a cloned VM or a container has the same host name, and a
-- process id means nothing outside its own namespace. So a live instance's claims are never
-- released here, however alike the two instances look; only a heartbeat as old as the one
-- ``status`` calls stale says "dead".
UPDATE cloud_file_refs
SET sync_status = 'pending', lease_expires_at = NULL, claimed_by = NULL, claim_token = NULL, updated_at = now()
WHERE sync_status = 'uploading' AND claimed_by IN (
    SELECT id FROM instances
    WHERE id <> $1 AND last_heartbeat < now() - make_interval(secs => $2));
