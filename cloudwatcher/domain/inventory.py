"""Inventory requests: ``get_parts``, ``update_inventory``, ``consume_parts``.

Consumption never takes stock below zero, even with several daemons applying requests for
the same location at once: the affected inventory rows are locked (in id order, so two
requests cannot deadlock) before availability is checked, and the CHECK constraint on
``quantity_on_hand`` stays as the last line of defence.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any
from uuid import UUID

from cloudwatcher.domain.authorization import location_in_scope
from cloudwatcher.domain.context import HandlerContext
from cloudwatcher.domain.envelope import ConsumePartsPayload, GetPartsPayload, UpdateInventoryPayload
from cloudwatcher.domain.errors import RequestError
from cloudwatcher.domain.references import reject_repeated_lines, resolve_parts

ZERO_UUID = UUID(int=0)

# The filters a request uses are added to the WHERE clause (still as parameters) rather than
# written as "($n IS NULL OR ...)": PostgreSQL's generic plans cannot see through those, and a
# location has thousands of inventory rows.
GET_PARTS = """
SELECT p.part_code, p.name, p.category, v.variant_code, i.quantity_on_hand, i.quantity_reserved,
       i.quantity_available, i.reorder_point
FROM inventory i
JOIN parts p ON p.id = i.part_id
LEFT JOIN part_variants v ON v.id = i.variant_id
WHERE i.location_id = $1{filters}
ORDER BY p.part_code, v.variant_code NULLS FIRST
"""

UPSERT_COUNTS = """
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
              last_updated_at = now()
"""

LOCK_STOCK = """
SELECT i.id, i.part_id, i.variant_id, i.quantity_available
FROM inventory i
JOIN unnest($2::uuid[], $3::uuid[]) AS k(part_id, variant_id)
  ON i.part_id = k.part_id AND COALESCE(i.variant_id, $4) = k.variant_id
WHERE i.location_id = $1
ORDER BY i.id
FOR UPDATE OF i
"""

TAKE_STOCK = """
UPDATE inventory i
SET quantity_on_hand = i.quantity_on_hand - t.quantity, last_updated_at = now()
FROM unnest($1::uuid[], $2::int[]) AS t(id, quantity)
WHERE i.id = t.id
RETURNING i.part_id, i.quantity_available, i.reorder_point
"""

RECORD_CONSUMPTION = """
INSERT INTO part_consumption
    (part_id, variant_id, location_id, quantity_consumed, consumed_by, request_id, notes)
SELECT c.part_id, c.variant_id, $1, c.quantity, $2, $3, $4
FROM unnest($5::uuid[], $6::uuid[], $7::int[]) WITH ORDINALITY AS c(part_id, variant_id, quantity, ord)
ORDER BY c.ord
"""


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def get_parts(ctx: HandlerContext, payload: GetPartsPayload) -> dict[str, Any]:
    """The location's inventory rows, filtered as asked, sorted by part and variant code."""
    location = await location_in_scope(ctx.connection, ctx.actor, payload.location)
    filters: list[str] = []
    arguments: list[Any] = [location.id]

    def add(condition: str, value: Any) -> None:
        arguments.append(value)
        filters.append(condition.replace("$?", f"${len(arguments)}"))

    if payload.part_codes is not None:
        add("p.part_code = ANY($?::text[])", payload.part_codes)
    if payload.category is not None:
        add("p.category = $?", payload.category)
    if payload.query:
        add("(p.name ILIKE $? OR p.part_code ILIKE $?)", _like_pattern(payload.query))
    if payload.below_reorder_point:
        filters.append("i.needs_reorder")  # quantity_available <= reorder_point, with statistics (0007)
    sql = GET_PARTS.format(filters="".join(f"\n  AND {condition}" for condition in filters))
    rows = await ctx.connection.fetch(sql, *arguments)
    return {"location": location.name, "items": [dict(row) for row in rows]}


async def update_inventory(ctx: HandlerContext, payload: UpdateInventoryPayload) -> dict[str, Any]:
    """Set counted stock; rows that do not exist yet are created."""
    location = await location_in_scope(ctx.connection, ctx.actor, payload.location)
    refs = await resolve_parts(ctx.connection, [(c.part_code, c.variant_code) for c in payload.counts])
    reject_repeated_lines(refs, "counts")
    await ctx.connection.execute(
        UPSERT_COUNTS,
        location.id,
        [ref.part_id for ref in refs],
        [ref.variant_id for ref in refs],
        [c.quantity_on_hand for c in payload.counts],
        [c.reorder_point for c in payload.counts],
        [c.reorder_quantity for c in payload.counts],
    )
    return {"updated": len(refs)}


async def consume_parts(ctx: HandlerContext, payload: ConsumePartsPayload) -> dict[str, Any]:
    """Take stock for every item or for none (``insufficient_stock``); one consumption row per item."""
    connection = ctx.connection
    location = await location_in_scope(connection, ctx.actor, payload.location)
    refs = await resolve_parts(connection, [(item.part_code, item.variant_code) for item in payload.items])
    needed: dict[tuple[UUID, UUID], int] = defaultdict(int)
    labels: dict[tuple[UUID, UUID], str] = {}
    codes: dict[UUID, str] = {}
    for ref, item in zip(refs, payload.items, strict=True):
        key = (ref.part_id, ref.variant_id or ZERO_UUID)
        needed[key] += item.quantity
        labels[key] = ref.label
        codes[ref.part_id] = ref.part_code
    keys = sorted(needed)
    locked = await connection.fetch(LOCK_STOCK, location.id, [k[0] for k in keys], [k[1] for k in keys], ZERO_UUID)
    stock = {(row["part_id"], row["variant_id"] or ZERO_UUID): row for row in locked}
    shortages = []
    for key in keys:
        available = stock[key]["quantity_available"] if key in stock else 0
        if available < needed[key]:
            shortages.append(f"{labels[key]} (needs {needed[key]}, {available} available)")
    if shortages:
        raise RequestError("insufficient_stock", f"not enough stock at {location.name}: " + ", ".join(shortages))
    updated = await connection.fetch(TAKE_STOCK, [stock[key]["id"] for key in keys], [needed[key] for key in keys])
    await connection.execute(
        RECORD_CONSUMPTION,
        location.id,
        ctx.actor.id,
        ctx.request_id,
        payload.notes,
        [ref.part_id for ref in refs],
        [ref.variant_id for ref in refs],
        [item.quantity for item in payload.items],
    )
    low = sorted(
        {
            codes[row["part_id"]]
            for row in updated
            if row["reorder_point"] is not None and row["quantity_available"] <= row["reorder_point"]
        }
    )
    return {"consumed": len(payload.items), "at_or_below_reorder_point": low}
