-- name: mark_processed
UPDATE cloud_file_refs SET processed_at = now()
WHERE local_path = $1 AND content_sha256 = $2 AND processed_at IS NULL;

-- name: link_request
UPDATE cloud_file_refs SET request_id = $3
WHERE local_path = $1 AND content_sha256 = $2 AND request_id IS DISTINCT FROM $3;

-- name: link_attachments
-- The newest version of each attachment path (all its targets' rows).
UPDATE cloud_file_refs c SET request_id = $2
FROM (
    SELECT DISTINCT ON (local_path) local_path, content_sha256
    FROM cloud_file_refs
    WHERE local_path = ANY($1::text[]) AND file_type = 'attachment'
    ORDER BY local_path, created_at DESC
) newest
WHERE c.local_path = newest.local_path AND c.content_sha256 = newest.content_sha256
  AND c.request_id IS DISTINCT FROM $2;

-- name: lock_device_links
-- An attachment and its envelope may be recorded in either order, by concurrent transactions.
-- Both sides take this per-device lock before they link, so that whichever commits second sees
-- the other's rows: the envelope's named paths, or the attachment's ledger rows.
SELECT pg_advisory_xact_lock(hashtext('cloudwatcher.attachments'), hashtext(d)) FROM unnest($1::text[]) AS d;

-- name: remember_attachments
INSERT INTO request_attachments (request_id, local_path)
SELECT $2, p FROM unnest($1::text[]) AS p
ON CONFLICT DO NOTHING;

-- name: link_recorded_attachments
-- Recorded attachment versions, linked to the newest request that names their path.
UPDATE cloud_file_refs c SET request_id = named.request_id
FROM (
    SELECT DISTINCT ON (a.local_path) a.local_path, a.request_id
    FROM request_attachments a
    WHERE a.local_path = ANY($1::text[])
    ORDER BY a.local_path, a.created_at DESC
) named, unnest($1::text[], $2::text[]) AS v(local_path, sha256)
WHERE c.local_path = v.local_path AND c.content_sha256 = v.sha256 AND named.local_path = v.local_path
  AND c.file_type = 'attachment' AND c.request_id IS DISTINCT FROM named.request_id;

-- name: link_unlinked_attachments
-- At start-up: versions recorded just before a crash, whose link the linker never wrote.
UPDATE cloud_file_refs c SET request_id = named.request_id
FROM (
    SELECT DISTINCT ON (a.local_path) a.local_path, a.request_id
    FROM request_attachments a
    ORDER BY a.local_path, a.created_at DESC
) named
WHERE c.local_path = named.local_path AND c.file_type = 'attachment' AND c.request_id IS NULL;

-- name: link_response
UPDATE cloud_file_refs SET response_id = $3, processed_at = COALESCE(processed_at, now())
WHERE local_path = $1 AND content_sha256 = $2;
