-- name: known_versions
SELECT local_path, file_size_bytes, file_mtime_ns, content_sha256, array_agg(target) AS targets
FROM cloud_file_refs
-- A version after_sync archived or deleted is not known: the same bytes dropped again are recorded again.
WHERE local_path = ANY($1::text[]) AND local_state = 'present'
GROUP BY local_path, file_size_bytes, file_mtime_ns, content_sha256;

-- name: record_files
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
          CASE WHEN xmax = 0 AND sync_status = 'uploading' THEN claim_token END AS claim_token;

-- name: pending_targets
SELECT DISTINCT target FROM cloud_file_refs WHERE sync_status = 'pending';

-- name: list_files
-- Every ledger column under its own name (docs/ledger-and-requests.md), plus ref_id for `retry`.
SELECT id AS ref_id, cloud_file_refs.*
FROM cloud_file_refs
WHERE ($1::text IS NULL OR sync_status = $1)
  AND ($2::text IS NULL OR device_id = $2)
  AND ($3::text IS NULL OR target = $3)
ORDER BY created_at DESC, local_path, target
LIMIT $4;

-- name: add_skipped_files
-- Skipped device files (daemon/skips.py): counts per device, added in one statement per flush.
INSERT INTO device_skipped_files AS d (device_id, skipped)
SELECT * FROM unnest($1::text[], $2::bigint[])
ON CONFLICT (device_id) DO UPDATE SET skipped = d.skipped + excluded.skipped, last_skipped_at = now();
