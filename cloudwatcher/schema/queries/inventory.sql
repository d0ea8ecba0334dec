-- name: get_parts
-- The filters a request uses are added to the WHERE clause (still as parameters) rather than
-- written as "($n IS NULL OR ...)": PostgreSQL's generic plans cannot see through those, and a
-- location has thousands of inventory rows.
SELECT p.part_code, p.name, p.category, v.variant_code, i.quantity_on_hand, i.quantity_reserved,
       i.quantity_available, i.reorder_point
FROM inventory i
JOIN parts p ON p.id = i.part_id
LEFT JOIN part_variants v ON v.id = i.variant_id
WHERE i.location_id = $1{filters}
ORDER BY p.part_code, v.variant_code NULLS FIRST;

-- name: upsert_counts
INSERT INTO inventory (part_id, variant_id, location_id, quantity_on_hand, reorder_point, reorder_quantity,
                       last_counted_at, last_updated_at)
SELECT c.part_id, c.variant_id, $1, c.on_hand, c.reorder_point, c.reorder_quantity, now(), now()
FROM unnest($2::uuid[], $3::uuid[], $4::int[], $5::int[], $6::int[])
     AS c(part_id, variant_id, on_hand, reorder_point, reorder_quantity)
ON CONFLICT (part_id, COALESCE(variant_id, '00000000-0000-0000-0000-000000000000'::uuid), location_id)
DO UPDATE SET quantity_on_hand = EXCLUDED.quantity_on_hand,
              reorder_point = COALESCE(EXCLUDED.reorder_point, inventory.reorder_point),
              reorder_quantity = COALESCE(EXCLUDED.reorder_quantity, inventory.reorder_quantity),
              last_counted_at = now(),
              last_updated_at = now();

-- name: lock_stock
SELECT i.id, i.part_id, i.variant_id, i.quantity_available
FROM inventory i
JOIN unnest($2::uuid[], $3::uuid[]) AS k(part_id, variant_id)
  ON i.part_id = k.part_id AND COALESCE(i.variant_id, $4) = k.variant_id
WHERE i.location_id = $1
ORDER BY i.id
FOR UPDATE OF i;

-- name: take_stock
UPDATE inventory i
SET quantity_on_hand = i.quantity_on_hand - t.quantity, last_updated_at = now()
FROM unnest($1::uuid[], $2::int[]) AS t(id, quantity)
WHERE i.id = t.id
RETURNING i.part_id, i.quantity_available, i.reorder_point;

-- name: record_consumption
INSERT INTO part_consumption
    (part_id, variant_id, location_id, quantity_consumed, consumed_by, request_id, notes)
SELECT c.part_id, c.variant_id, $1, c.quantity, $2, $3, $4
FROM unnest($5::uuid[], $6::uuid[], $7::int[]) WITH ORDINALITY AS c(part_id, variant_id, quantity, ord)
ORDER BY c.ord;

-- name: resolve_parts
SELECT i.ord, i.part_code, i.variant_code, p.id AS part_id, p.name, p.is_active, v.id AS variant_id
FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS i(part_code, variant_code, ord)
LEFT JOIN parts p ON p.part_code = i.part_code
LEFT JOIN part_variants v ON v.part_id = p.id AND v.variant_code = i.variant_code
ORDER BY i.ord;
