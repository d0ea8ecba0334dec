-- name: remote_name_of
SELECT remote_path FROM remote_names WHERE target = $1 AND local_path = $2;

-- name: case_variants
-- Local paths of the target that differ from $2 only by case, oldest first (named first).
-- Asked for case-insensitive providers only; $3 is the target's provider tag, a parameter so that
-- no provider is named here (a plan made for the case-insensitive provider's tag uses 0009's index).
SELECT local_path FROM cloud_file_refs
WHERE target = $1 AND lower(local_path) = lower($2) AND cloud_provider = $3
GROUP BY local_path
ORDER BY min(created_at), local_path;

-- name: claim_remote_name
INSERT INTO remote_names (target, local_path, remote_path, collision_key)
VALUES ($1, $2, $3, $4)
ON CONFLICT DO NOTHING
RETURNING remote_path;
