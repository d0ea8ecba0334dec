-- name: variant_id
SELECT id FROM part_variants WHERE part_id = $1 AND variant_code = $2;

-- name: change_reason
-- The reason the audit rows of this transaction give.
SELECT set_config('cloudwatcher.change_reason', $1, true);
