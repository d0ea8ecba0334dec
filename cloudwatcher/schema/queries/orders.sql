-- name: offers
-- Pattern 3 of the seed, widened to the part-level offers a variant falls back to.
SELECT s.id AS supplier_id, s.name, s.is_active, s.is_preferred AS supplier_preferred,
       ps.supplier_cost, ps.is_preferred, ps.variant_id IS NOT NULL AS exact,
       COALESCE(ps.lead_time_days, s.lead_time_days) AS lead_time_days
FROM part_suppliers ps
JOIN suppliers s ON s.id = ps.supplier_id
WHERE ps.part_id = $1 AND (ps.variant_id = $2 OR ps.variant_id IS NULL)
ORDER BY (ps.variant_id IS NULL), ps.is_preferred DESC, ps.supplier_cost, s.name;

-- name: manager_chain
WITH RECURSIVE up AS (
    SELECT id, parent_id, manager_id, 0 AS depth FROM departments WHERE id = $1
    UNION ALL
    SELECT d.id, d.parent_id, d.manager_id, up.depth + 1
    FROM departments d JOIN up ON d.id = up.parent_id
    WHERE up.depth < 64
)
SELECT up.depth, u.id, u.email
FROM up JOIN users u ON u.id = up.manager_id
WHERE u.is_active
ORDER BY up.depth;

-- name: insert_order
INSERT INTO orders (request_id, location_id, order_type, status, total, created_by)
VALUES ($1, $2, $3, 'pending-approval', $4, $5)
RETURNING id;

-- name: insert_items
INSERT INTO order_items (order_id, part_id, variant_id, supplier_id, quantity_ordered, unit_price)
SELECT $1, i.part_id, i.variant_id, i.supplier_id, i.quantity, i.unit_price
FROM unnest($2::uuid[], $3::uuid[], $4::uuid[], $5::int[], $6::numeric[])
     WITH ORDINALITY AS i(part_id, variant_id, supplier_id, quantity, unit_price, ord)
ORDER BY i.ord;

-- name: insert_approvals
INSERT INTO order_approvals (order_id, approver_id, approval_level, status)
SELECT $1, a.approver_id, a.level, 'pending'
FROM unnest($2::uuid[], $3::int[]) AS a(approver_id, level);

-- name: lock_order
SELECT id, status, created_by, location_id FROM orders WHERE id = $1 FOR UPDATE;

-- name: next_approval
SELECT a.id, a.approval_level, a.approver_id, u.email
FROM order_approvals a JOIN users u ON u.id = a.approver_id
WHERE a.order_id = $1 AND a.status = 'pending'
ORDER BY a.approval_level
LIMIT 1;

-- name: decide_approval
UPDATE order_approvals SET status = $2, notes = $3, decision_at = now() WHERE id = $1;

-- name: set_status
UPDATE orders SET status = $2, updated_at = now() WHERE id = $1;

-- name: approve_order
UPDATE orders SET status = 'approved', approved_by = $2, approved_at = now(), updated_at = now()
WHERE id = $1;

-- name: cancel_open_approvals
UPDATE order_approvals SET status = 'cancelled', decision_at = now()
WHERE order_id = $1 AND status = 'pending';

-- name: set_delivery_dates
UPDATE order_items oi
SET expected_delivery_date = current_date + COALESCE(
        (SELECT ps.lead_time_days FROM part_suppliers ps
         WHERE ps.part_id = oi.part_id AND ps.supplier_id = oi.supplier_id
           AND ps.variant_id IS NOT DISTINCT FROM oi.variant_id),
        s.lead_time_days, 0)
FROM suppliers s
WHERE oi.order_id = $1 AND s.id = oi.supplier_id
RETURNING oi.expected_delivery_date;

-- name: order_lines
SELECT id, part_id, variant_id, quantity_ordered, quantity_received
FROM order_items WHERE order_id = $1 ORDER BY created_at, id FOR UPDATE;

-- name: receive_lines
UPDATE order_items oi SET quantity_received = oi.quantity_received + r.quantity
FROM unnest($1::uuid[], $2::int[]) AS r(id, quantity)
WHERE oi.id = r.id;

-- name: add_stock
INSERT INTO inventory (part_id, variant_id, location_id, quantity_on_hand, last_updated_at)
SELECT r.part_id, r.variant_id, $1, r.quantity, now()
FROM unnest($2::uuid[], $3::uuid[], $4::int[]) AS r(part_id, variant_id, quantity)
ON CONFLICT (part_id, COALESCE(variant_id, '00000000-0000-0000-0000-000000000000'::uuid), location_id)
DO UPDATE SET quantity_on_hand = inventory.quantity_on_hand + EXCLUDED.quantity_on_hand,
              last_updated_at = now();

-- name: event
INSERT INTO order_history (order_id, event_type, event_description, user_id, metadata)
VALUES ($1, $2, $3, $4, $5::jsonb);

-- name: all_received
SELECT bool_and(quantity_received >= quantity_ordered) FROM order_items WHERE order_id = $1;

-- name: pending_approvals
SELECT count(*) FROM order_approvals WHERE order_id = $1 AND status = 'pending';
