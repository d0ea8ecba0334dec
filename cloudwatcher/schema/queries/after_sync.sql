-- name: lock_rows
SELECT content_sha256, sync_status, verification, created_at, file_size_bytes, file_mtime_ns
FROM cloud_file_refs
WHERE local_path = $1 AND local_state = 'present'
ORDER BY created_at DESC
FOR UPDATE;

-- name: after_sync_candidates
-- Files whose newest version is synced on every target that has a row for it, whose last upload
-- is older than the minimum age, and whose request (if any) is answered. The caller still
-- checks the configured targets, the file on disk, and locks the rows before touching it.
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
LIMIT $3;

-- name: note_file_moved
UPDATE cloud_file_refs
SET local_state = CASE WHEN content_sha256 = $2 THEN $3 ELSE 'missing' END,
    archived_path = CASE WHEN content_sha256 = $2 THEN $4 ELSE archived_path END,
    updated_at = now()
WHERE local_path = $1 AND local_state = 'present';
