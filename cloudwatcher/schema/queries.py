"""Every ledger query the daemon and the CLI run, by name (procrastinate's queries.sql, in Python).

Batch statements take parallel arrays and ``unnest`` them, so that a burst of thousands of
files costs a handful of round trips instead of one per file.

Claim fencing: every claim sets ``claimed_by`` (the instance's per-boot id) and a fresh random
``claim_token``; every write-back of a claim (renewal, synced, failed, release, upload session)
carries both and changes only rows that still hold them. A worker whose lease was reaped while
it stalled, and whose row another instance has claimed since, thus changes nothing; the
statements report how many rows they changed, so the caller can count the claims it lost.
"""

KNOWN_VERSIONS = """
SELECT local_path, file_size_bytes, file_mtime_ns, content_sha256, array_agg(target) AS targets
FROM cloud_file_refs
-- A version after_sync archived or deleted is not known: the same bytes dropped again are recorded again.
WHERE local_path = ANY($1::text[]) AND local_state = 'present'
GROUP BY local_path, file_size_bytes, file_mtime_ns, content_sha256
"""

RECORD_FILES = """
INSERT INTO cloud_file_refs
    (target, cloud_provider, device_id, local_path, file_type, content_sha256, file_size_bytes, file_mtime_ns,
     source_root, sync_status, lease_expires_at, claimed_by, claim_token)
SELECT f.target, f.provider, f.device_id, f.local_path, f.kind, f.sha256, f.size, f.mtime_ns, $9::text,
       -- A row this daemon's uploader takes at once is born claimed (one write fewer than
       -- inserting it pending and claiming it a moment later); the others wait for a claim.
       CASE WHEN f.take THEN 'uploading' ELSE 'pending' END,
       CASE WHEN f.take THEN now() + make_interval(secs => $11) END,
       CASE WHEN f.take THEN $12::uuid END,
       CASE WHEN f.take THEN gen_random_uuid() END
FROM (
    SELECT files.*,
           -- As in CLAIM_PENDING: a target parked by a daily upload cap, or paused, takes nothing.
           files.claim AND files.target NOT IN (
               SELECT s.target FROM target_states AS s WHERE s.state = 'parked' AND s.until > now()
               UNION ALL SELECT p.target FROM target_pauses AS p) AS take
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[],
                $10::bool[])
         AS files(target, provider, device_id, local_path, kind, sha256, size, mtime_ns, claim)
) AS f
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
        -- Dropped again after after_sync archived or deleted it: the file is here again, and
        -- after_sync handles it again (identical bytes, even with the same mtime).
        local_state = 'present',
        archived_path = NULL,
        updated_at = now()
    WHERE cloud_file_refs.file_mtime_ns <> EXCLUDED.file_mtime_ns OR cloud_file_refs.local_state <> 'present'
-- Only new rows can have been born claimed; an updated row keeps (or regains) its own status.
RETURNING (xmax = 0) AS inserted, target, local_path,
          CASE WHEN xmax = 0 AND sync_status = 'uploading' THEN id END AS claimed_id,
          CASE WHEN xmax = 0 AND sync_status = 'uploading' THEN claim_token END AS claim_token
"""

CLAIM_PENDING = """
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
          r.file_mtime_ns, r.attempts, r.upload_session, extract(epoch FROM r.created_at)::float8 AS noticed_at
"""

# The ids of the rows whose claim is still held (and now renewed); the others were lost.
RENEW_LEASES = """
UPDATE cloud_file_refs AS r
SET lease_expires_at = now() + make_interval(secs => $3)
FROM unnest($1::uuid[], $2::uuid[]) AS v(id, claim_token)
WHERE r.id = v.id AND r.sync_status = 'uploading'
  AND r.claimed_by IS NOT DISTINCT FROM $4::uuid AND r.claim_token = v.claim_token
RETURNING r.id
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
    claim_token = NULL,
    upload_session = NULL,
    uploaded_by = $7,
    updated_at = now()
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $8::uuid[])
     AS v(id, cloud_path, remote_id, remote_size, remote_hash, verification, claim_token)
WHERE r.id = v.id AND r.sync_status = 'uploading'
  AND r.claimed_by IS NOT DISTINCT FROM $7::uuid AND r.claim_token = v.claim_token
"""

MARK_FAILED = """
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
SELECT count(*) FROM failed
"""

RELEASE_CLAIMS = """
UPDATE cloud_file_refs AS r
SET sync_status = 'pending', lease_expires_at = NULL, claimed_by = NULL, claim_token = NULL, updated_at = now()
FROM unnest($1::uuid[], $2::uuid[]) AS v(id, claim_token)
WHERE r.id = v.id AND r.sync_status = 'uploading'
  AND r.claimed_by IS NOT DISTINCT FROM $3::uuid AND r.claim_token = v.claim_token
"""

# On a clean stop: every claim this instance still holds (by its id, which no other instance has).
RELEASE_INSTANCE_CLAIMS = """
UPDATE cloud_file_refs
SET sync_status = 'pending', lease_expires_at = NULL, claimed_by = NULL, claim_token = NULL, updated_at = now()
WHERE claimed_by = $1 AND sync_status = 'uploading'
"""

SAVE_UPLOAD_SESSION = """
UPDATE cloud_file_refs SET upload_session = $2::jsonb, updated_at = now()
WHERE id = $1 AND sync_status = 'uploading' AND claimed_by IS NOT DISTINCT FROM $4::uuid AND claim_token = $3
"""

REQUEUE_DUE = """
UPDATE cloud_file_refs
SET sync_status = 'pending', updated_at = now()
WHERE sync_status = 'failed' AND next_attempt_at <= now()
RETURNING target
"""

# An expired lease is taken back only from an instance that has gone silent for as long as a
# lease ($1 seconds; it heartbeats every 10 s) or has stopped, or from no known instance: a live
# instance's claims are never released by another, however late its renewals.
REAP_EXPIRED_LEASES = """
UPDATE cloud_file_refs AS r
SET sync_status = 'pending', lease_expires_at = NULL, claimed_by = NULL, claim_token = NULL, updated_at = now()
WHERE r.sync_status = 'uploading' AND r.lease_expires_at < now()
  AND NOT EXISTS (
      SELECT 1 FROM instances AS i
      WHERE i.id = r.claimed_by AND i.stopped_at IS NULL
        AND i.last_heartbeat > now() - make_interval(secs => $1))
RETURNING r.target
"""

RETRY_ALL = """
UPDATE cloud_file_refs
SET sync_status = 'pending', attempts = 0, next_attempt_at = NULL, updated_at = now()
WHERE sync_status = 'failed'
RETURNING id, target
"""

RETRY_IDS = """
UPDATE cloud_file_refs
SET sync_status = 'pending', attempts = 0, next_attempt_at = NULL, updated_at = now()
WHERE sync_status = 'failed' AND id = ANY($1::uuid[])
RETURNING id, target
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
-- Every ledger column under its own name (docs/ledger-and-requests.md), plus ref_id for `retry`.
SELECT id AS ref_id, cloud_file_refs.*
FROM cloud_file_refs
WHERE ($1::text IS NULL OR sync_status = $1)
  AND ($2::text IS NULL OR device_id = $2)
  AND ($3::text IS NULL OR target = $3)
ORDER BY created_at DESC, local_path, target
LIMIT $4
"""

# ---------------------------------------------------------------- remote names (daemon/naming.py)

REMOTE_NAME_OF = "SELECT remote_path FROM remote_names WHERE target = $1 AND local_path = $2"

# Local paths of the target that differ from $2 only by case, oldest first (named first).
# Asked for case-insensitive providers only; $3 is the target's provider tag (its rows'
# cloud_provider), given as a parameter so that no provider is named here. The partial index
# of 0009 covers the one case-insensitive provider's rows, and a plan made for its tag uses it.
CASE_VARIANTS = """
SELECT local_path FROM cloud_file_refs
WHERE target = $1 AND lower(local_path) = lower($2) AND cloud_provider = $3
GROUP BY local_path
ORDER BY min(created_at), local_path
"""

CLAIM_REMOTE_NAME = """
INSERT INTO remote_names (target, local_path, remote_path, collision_key)
VALUES ($1, $2, $3, $4)
ON CONFLICT DO NOTHING
RETURNING remote_path
"""

# ---------------------------------------------------------------- target states (daemon/target_state.py)

TARGET_STATES = """
SELECT target,
       CASE WHEN state = 'parked' AND until <= now() THEN 'ok' ELSE state END AS state,
       reason, until, since
FROM target_states
"""

ENSURE_TARGET_STATE = "INSERT INTO target_states (target, state) VALUES ($1, 'ok') ON CONFLICT DO NOTHING"

TARGET_STATE_FOR_UPDATE = "SELECT state, reason, until FROM target_states WHERE target = $1 FOR UPDATE"

SET_TARGET_STATE = """
INSERT INTO target_states (target, state, reason, until)
VALUES ($1, $2, $3, $4)
ON CONFLICT (target) DO UPDATE
    SET state = EXCLUDED.state,
        reason = EXCLUDED.reason,
        until = EXCLUDED.until,
        since = CASE WHEN target_states.state = EXCLUDED.state THEN target_states.since ELSE now() END,
        updated_at = now()
"""

# `cloudwatcher retry` resumes a full target: 'ok' with a reason means "resumed, not yet
# confirmed"; its next successful upload clears the reason and announces the recovery.
RESUME_FULL_TARGETS = """
UPDATE target_states
SET state = 'ok', reason = 'resumed by retry after: ' || coalesce(reason, 'storage quota exceeded'),
    until = NULL, since = now(), updated_at = now()
WHERE state = 'full' AND ($1::text[] IS NULL OR target = ANY($1::text[]))
"""

# ---------------------------------------------------------------- pauses (daemon/pauses.py)

PAUSE_TARGET = """
INSERT INTO target_pauses (target, paused_by) VALUES ($1, $2)
ON CONFLICT (target) DO NOTHING
RETURNING paused_at
"""

RESUME_TARGET = "DELETE FROM target_pauses WHERE target = $1 RETURNING paused_at"

TARGET_PAUSES = "SELECT target, paused_at, paused_by FROM target_pauses"

TARGET_PAUSED = "SELECT EXISTS (SELECT 1 FROM target_pauses WHERE target = $1)"

NOTIFY_EVENT = """
INSERT INTO notification_events (event, target, local_path, ref_id, reason) VALUES ($1, $2, $3, $4, $5)
"""

# ---------------------------------------------------------------- notifications (daemon/notifications.py)

EXPIRE_NOTIFICATIONS = """
UPDATE notification_events SET status = 'expired'
WHERE status = 'pending' AND created_at < now() - make_interval(secs => $1)
"""

DUE_NOTIFICATIONS = """
SELECT id, event, target, local_path, ref_id, reason, created_at, attempts
FROM notification_events
WHERE status = 'pending' AND next_attempt_at <= now()
ORDER BY created_at
LIMIT $1
FOR UPDATE SKIP LOCKED
"""

NOTIFICATION_DELIVERED = """
UPDATE notification_events
SET status = 'delivered', delivered_at = now(), attempts = attempts + 1, last_error = NULL
WHERE id = ANY($1::uuid[])
"""

NOTIFICATION_FAILED = """
UPDATE notification_events AS e
SET attempts = e.attempts + 1, last_error = v.error,
    next_attempt_at = now() + make_interval(secs => v.delay)
FROM unnest($1::uuid[], $2::text[], $3::float8[]) AS v(id, error, delay)
WHERE e.id = v.id
"""

PRUNE_NOTIFICATIONS = """
DELETE FROM notification_events
WHERE status <> 'pending' AND created_at < now() - make_interval(days => $1)
"""

# ---------------------------------------------------------------- after-sync policy (daemon/after_sync.py)

# Files whose newest version is synced on every target that has a row for it, whose last upload
# is older than the minimum age, and whose request (if any) is answered. The caller still
# checks the configured targets, the file on disk, and locks the rows before touching it.
AFTER_SYNC_CANDIDATES = """
WITH newest AS (
    SELECT DISTINCT ON (local_path) local_path, content_sha256, device_id, file_type,
           file_size_bytes, file_mtime_ns
    FROM cloud_file_refs
    WHERE local_state = 'present' AND device_id = ANY($2::text[])
    ORDER BY local_path, created_at DESC
)
SELECT n.local_path, n.content_sha256, n.device_id, n.file_type, n.file_size_bytes, n.file_mtime_ns,
       array_agg(c.target) AS targets
FROM newest n
JOIN cloud_file_refs c ON c.local_path = n.local_path AND c.content_sha256 = n.content_sha256
GROUP BY n.local_path, n.content_sha256, n.device_id, n.file_type, n.file_size_bytes, n.file_mtime_ns
HAVING bool_and(c.sync_status = 'synced' AND c.verification IS NOT NULL)
   AND max(c.uploaded_at) < now() - make_interval(secs => $1)
   AND bool_and(
       CASE
           WHEN c.file_type = 'request' THEN c.processed_at IS NOT NULL AND c.request_id IS NOT NULL
               AND EXISTS (SELECT 1 FROM requests q WHERE q.id = c.request_id
                           AND (q.status IN ('completed', 'failed')
                                OR EXISTS (SELECT 1 FROM responses s WHERE s.request_id = q.id)))
           WHEN c.file_type = 'response' THEN c.processed_at IS NOT NULL
           ELSE c.request_id IS NULL
               OR EXISTS (SELECT 1 FROM requests q WHERE q.id = c.request_id
                          AND (q.status IN ('completed', 'failed')
                               OR EXISTS (SELECT 1 FROM responses s WHERE s.request_id = q.id)))
       END)
ORDER BY max(c.uploaded_at)
LIMIT $3
"""

LOCK_FILE_ROWS = """
SELECT id, content_sha256, sync_status, local_state FROM cloud_file_refs
WHERE local_path = $1 AND local_state = 'present'
FOR UPDATE SKIP LOCKED
"""

NOTE_FILE_MOVED = """
UPDATE cloud_file_refs
SET local_state = CASE WHEN content_sha256 = $2 THEN $3 ELSE 'missing' END,
    archived_path = CASE WHEN content_sha256 = $2 THEN $4 ELSE archived_path END,
    updated_at = now()
WHERE local_path = $1 AND local_state = 'present'
"""

# Skipped device files (daemon/skips.py): counts per device, added in one statement per flush.
ADD_SKIPPED_FILES = """
INSERT INTO device_skipped_files AS d (device_id, skipped)
SELECT * FROM unnest($1::text[], $2::bigint[])
ON CONFLICT (device_id) DO UPDATE SET skipped = d.skipped + excluded.skipped, last_skipped_at = now()
"""
