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
from cloudwatcher.schema.sql import query

ZERO_UUID = UUID(int=0)

GET_PARTS = query("inventory", "get_parts")
UPSERT_COUNTS = query("inventory", "upsert_counts")
LOCK_STOCK = query("inventory", "lock_stock")
TAKE_STOCK = query("inventory", "take_stock")
RECORD_CONSUMPTION = query("inventory", "record_consumption")


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
