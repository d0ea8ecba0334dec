"""``create_order``: supplier choice, pricing, approval levels and the manager chain.

Supplier choice per line (docs/ledger-and-requests.md, Types): the supplier the device names, else the preferred
offer (``part_suppliers.is_preferred``), else the cheapest active one (the seed's "best
supplier" query, pattern 3); offers for the exact variant win over offers for the part as a
whole. The approver of level k is the k-th manager
met walking up the department tree from the location's department; departments without a
(active) manager are skipped, and a manager met twice counts once. Separation of duties: the
order's creator is never one of its approvers, so a manager who orders for their own
department is skipped and the next manager up takes their level (too few left: ``no_approver``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

from cloudwatcher.domain.authorization import location_in_scope
from cloudwatcher.domain.context import HandlerContext
from cloudwatcher.domain.envelope import CreateOrderPayload, OrderLine
from cloudwatcher.domain.errors import RequestError
from cloudwatcher.domain.orders_history import record_order_event
from cloudwatcher.domain.references import PartRef, reject_repeated_lines, resolve_parts
from cloudwatcher.schema.sql import query

LEVEL_LIMITS = (Decimal("1000"), Decimal("10000"))  # <= 1000: one level, <= 10000: two, above: three

OFFERS = query("orders", "offers")
MANAGER_CHAIN = query("orders", "manager_chain")
INSERT_ORDER = query("orders", "insert_order")
INSERT_ITEMS = query("orders", "insert_items")
INSERT_APPROVALS = query("orders", "insert_approvals")


@dataclass(frozen=True)
class Choice:
    supplier_id: UUID
    supplier: str
    unit_price: Decimal
    rule: str


def approval_levels(total: Decimal) -> int:
    if total <= LEVEL_LIMITS[0]:
        return 1
    if total <= LEVEL_LIMITS[1]:
        return 2
    return 3


async def choose_supplier(ctx: HandlerContext, ref: PartRef, line: OrderLine) -> Choice:
    """Pick the line's supplier and record the PartsSpecialist's reasoning."""
    offers = await ctx.connection.fetch(OFFERS, ref.part_id, ref.variant_id)
    active = [row for row in offers if row["is_active"]]
    if any(row["exact"] for row in active):  # offers for the exact variant beat part-level ones
        active = [row for row in active if row["exact"]]
    if line.supplier is not None:
        named = [row for row in active if row["name"] == line.supplier]
        if not named:
            raise RequestError("not_found", f"supplier {line.supplier!r} has no active offer for {ref.label}")
        chosen, rule = named[0], "requested by the device"
    elif not active:
        raise RequestError("not_found", f"no active supplier offers {ref.label}")
    else:
        chosen = active[0]  # the query orders preferred offers first, then by cost
        rule = "preferred offer" if chosen["is_preferred"] else "cheapest active offer"
    await ctx.decide(
        "PartsSpecialist",
        "supplier_selection",
        chosen["name"],
        {
            "part_code": ref.part_code,
            "variant_code": ref.variant_code,
            "quantity": line.quantity,
            "rule": rule,
            "unit_price": chosen["supplier_cost"],
            "candidates": [
                {
                    "supplier": row["name"],
                    "supplier_cost": row["supplier_cost"],
                    "preferred_offer": row["is_preferred"],
                    "preferred_supplier": row["supplier_preferred"],
                    "for_variant": row["exact"],
                    "active": row["is_active"],
                    "lead_time_days": row["lead_time_days"],
                }
                for row in offers
            ],
        },
    )
    return Choice(chosen["supplier_id"], chosen["name"], chosen["supplier_cost"], rule)


async def manager_chain(
    connection: asyncpg.Connection, dept_id: UUID, levels: int, creator_id: UUID
) -> list[tuple[UUID, str]]:
    """The first ``levels`` distinct active managers walking up from ``dept_id``, the creator
    left out (nobody approves their own order); ``no_approver`` if too few are left."""
    chain: list[tuple[UUID, str]] = []
    for row in await connection.fetch(MANAGER_CHAIN, dept_id):
        if row["id"] != creator_id and all(row["id"] != seen for seen, _ in chain):
            chain.append((row["id"], row["email"]))
        if len(chain) == levels:
            return chain
    raise RequestError(
        "no_approver",
        f"the order needs {levels} approval level(s) but only {len(chain)} manager(s) other than its creator"
        " sit above its location",
    )


async def create_order(ctx: HandlerContext, payload: CreateOrderPayload) -> dict[str, Any]:
    connection = ctx.connection
    location = await location_in_scope(connection, ctx.actor, payload.location)
    refs = await resolve_parts(connection, [(line.part_code, line.variant_code) for line in payload.items])
    reject_repeated_lines(refs, "items")
    choices = [await choose_supplier(ctx, ref, line) for ref, line in zip(refs, payload.items, strict=True)]
    total = sum(
        (choice.unit_price * line.quantity for choice, line in zip(choices, payload.items, strict=True)),
        Decimal(0),
    )
    levels = approval_levels(total)
    chain = await manager_chain(connection, location.dept_id, levels, ctx.actor.id)
    order_id: UUID = await connection.fetchval(
        INSERT_ORDER, ctx.request_id, location.id, payload.order_type, total, ctx.actor.id
    )
    await connection.execute(
        INSERT_ITEMS,
        order_id,
        [ref.part_id for ref in refs],
        [ref.variant_id for ref in refs],
        [choice.supplier_id for choice in choices],
        [line.quantity for line in payload.items],
        [choice.unit_price for choice in choices],
    )
    await connection.execute(
        INSERT_APPROVALS, order_id, [approver for approver, _ in chain], list(range(1, levels + 1))
    )
    await record_order_event(
        connection,
        order_id,
        "created",
        f"{payload.order_type} order for {location.name}, total {total}, {levels} approval level(s)",
        ctx.actor.id,
        {
            "request_id": str(ctx.request_id),
            "total": str(total),
            "items": len(refs),
            "approvers": [email for _, email in chain],
        },
    )
    return {
        "order_id": str(order_id),
        "status": "pending-approval",
        "total": total,
        "approvals": [{"level": level, "approver": email} for level, (_, email) in enumerate(chain, start=1)],
    }
