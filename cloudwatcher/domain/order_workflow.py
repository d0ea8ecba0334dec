"""The life of an order after creation: approve, reject, place, receive, cancel.

Every handler locks the order row first, so two requests on one order (from two devices, or
two daemons) are applied one after the other and the second sees the first's outcome.
State or turn violations are ``conflict``; every change writes one ``order_history`` event.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from cloudwatcher.domain.authorization import require_location_id_in_scope
from cloudwatcher.domain.context import HandlerContext
from cloudwatcher.domain.envelope import OrderDecisionPayload, OrderRefPayload, ReceiveOrderPayload
from cloudwatcher.domain.errors import RequestError
from cloudwatcher.domain.orders_history import record_order_event
from cloudwatcher.domain.references import resolve_parts
from cloudwatcher.schema.sql import query

CANCELLABLE = ("draft", "pending-approval", "approved")
RECEIVABLE = ("approved", "ordered")

LOCK_ORDER = query("orders", "lock_order")
NEXT_APPROVAL = query("orders", "next_approval")
DECIDE_APPROVAL = query("orders", "decide_approval")
SET_STATUS = query("orders", "set_status")
APPROVE_ORDER = query("orders", "approve_order")
CANCEL_OPEN_APPROVALS = query("orders", "cancel_open_approvals")
SET_DELIVERY_DATES = query("orders", "set_delivery_dates")
ORDER_LINES = query("orders", "order_lines")
RECEIVE_LINES = query("orders", "receive_lines")
ADD_STOCK = query("orders", "add_stock")
ALL_RECEIVED = query("orders", "all_received")
PENDING_APPROVALS = query("orders", "pending_approvals")


@dataclass(frozen=True)
class LockedOrder:
    id: UUID
    status: str
    created_by: UUID
    location_id: UUID


async def _lock_order(ctx: HandlerContext, order_id: UUID) -> LockedOrder:
    row = await ctx.connection.fetchrow(LOCK_ORDER, order_id)
    if row is None:
        raise RequestError("not_found", f"no order {order_id}")
    return LockedOrder(row["id"], row["status"], row["created_by"], row["location_id"])


def _require_status(order: LockedOrder, allowed: tuple[str, ...], action: str) -> None:
    if order.status not in allowed:
        raise RequestError("conflict", f"cannot {action} order {order.id} while it is {order.status!r}")


async def _decide(ctx: HandlerContext, payload: OrderDecisionPayload, approve: bool) -> dict[str, Any]:
    """Approve or reject on behalf of the approver whose turn it is (lowest pending level)."""
    connection = ctx.connection
    action = "approve" if approve else "reject"
    order = await _lock_order(ctx, payload.order_id)
    _require_status(order, ("pending-approval",), action)
    turn = await connection.fetchrow(NEXT_APPROVAL, order.id)
    if turn is None:
        raise RequestError("conflict", f"order {order.id} has no pending approval")
    if turn["approver_id"] != ctx.actor.id:
        raise RequestError(
            "conflict",
            f"it is {turn['email']}'s turn to decide level {turn['approval_level']} of order {order.id}, "
            f"not {ctx.actor.email}'s",
        )
    await connection.execute(DECIDE_APPROVAL, turn["id"], "approved" if approve else "rejected", payload.notes)
    level = turn["approval_level"]
    if approve:
        remaining = await connection.fetchval(PENDING_APPROVALS, order.id)
        status = "pending-approval" if remaining else "approved"
        if status == "approved":
            await connection.execute(
                APPROVE_ORDER,
                order.id,
                ctx.actor.id,
            )
        description = f"level {level} approved by {ctx.actor.email}" + ("; order approved" if not remaining else "")
    else:
        status = "cancelled"
        await connection.execute(CANCEL_OPEN_APPROVALS, order.id)
        await connection.execute(SET_STATUS, order.id, status)
        description = f"level {level} rejected by {ctx.actor.email}; order cancelled"
    await record_order_event(
        connection,
        order.id,
        "approved" if approve else "rejected",
        description,
        ctx.actor.id,
        {"level": level, "notes": payload.notes, "status": status, "request_id": str(ctx.request_id)},
    )
    return {"order_id": str(order.id), "status": status}


async def approve_order(ctx: HandlerContext, payload: OrderDecisionPayload) -> dict[str, Any]:
    return await _decide(ctx, payload, approve=True)


async def reject_order(ctx: HandlerContext, payload: OrderDecisionPayload) -> dict[str, Any]:
    return await _decide(ctx, payload, approve=False)


async def place_order(ctx: HandlerContext, payload: OrderRefPayload) -> dict[str, Any]:
    """``approved`` -> ``ordered``; each line's delivery date is today plus its supplier's lead time."""
    order = await _lock_order(ctx, payload.order_id)
    await require_location_id_in_scope(ctx.connection, ctx.actor, order.location_id, f"order {order.id}")
    _require_status(order, ("approved",), "place")
    dates = await ctx.connection.fetch(SET_DELIVERY_DATES, order.id)
    await ctx.connection.execute(SET_STATUS, order.id, "ordered")
    latest = max((row["expected_delivery_date"] for row in dates), default=None)
    await record_order_event(
        ctx.connection,
        order.id,
        "placed",
        f"placed by {ctx.actor.email}" + (f", expected by {latest.isoformat()}" if latest else ""),
        ctx.actor.id,
        {"expected_delivery_date": latest.isoformat() if latest else None, "request_id": str(ctx.request_id)},
    )
    return {"order_id": str(order.id), "status": "ordered"}


async def receive_order(ctx: HandlerContext, payload: ReceiveOrderPayload) -> dict[str, Any]:
    """Book received quantities (never above what is outstanding) and add them to the location's stock."""
    connection = ctx.connection
    order = await _lock_order(ctx, payload.order_id)
    await require_location_id_in_scope(connection, ctx.actor, order.location_id, f"order {order.id}")
    _require_status(order, RECEIVABLE, "receive")
    refs = await resolve_parts(connection, [(item.part_code, item.variant_code) for item in payload.items])
    lines = await connection.fetch(ORDER_LINES, order.id)
    received: dict[tuple[UUID, UUID | None], int] = defaultdict(int)
    labels: dict[tuple[UUID, UUID | None], str] = {}
    for ref, item in zip(refs, payload.items, strict=True):
        received[ref.key] += item.quantity
        labels[ref.key] = ref.label
    line_ids: list[UUID] = []
    line_quantities: list[int] = []
    for key, quantity in received.items():
        matching = [line for line in lines if (line["part_id"], line["variant_id"]) == key]
        if not matching:
            raise RequestError("invalid_request", f"{labels[key]} is not on order {order.id}")
        outstanding = sum(line["quantity_ordered"] - line["quantity_received"] for line in matching)
        if quantity > outstanding:
            raise RequestError(
                "invalid_request", f"{labels[key]}: received {quantity} but only {outstanding} outstanding"
            )
        for line in matching:  # fill lines in order
            share = min(quantity, line["quantity_ordered"] - line["quantity_received"])
            if share > 0:
                line_ids.append(line["id"])
                line_quantities.append(share)
                quantity -= share
    await connection.execute(RECEIVE_LINES, line_ids, line_quantities)
    keys = list(received)
    await connection.execute(
        ADD_STOCK, order.location_id, [k[0] for k in keys], [k[1] for k in keys], [received[k] for k in keys]
    )
    complete = await connection.fetchval(
        ALL_RECEIVED,
        order.id,
    )
    status = "received" if complete else order.status
    if status != order.status:
        await connection.execute(SET_STATUS, order.id, status)
    await record_order_event(
        connection,
        order.id,
        "received",
        f"received by {ctx.actor.email}" + ("; order complete" if complete else "; partial delivery"),
        ctx.actor.id,
        {
            "items": [{"part": labels[k], "quantity": received[k]} for k in keys],
            "complete": bool(complete),
            "request_id": str(ctx.request_id),
        },
    )
    return {"order_id": str(order.id), "status": status}


async def cancel_order(ctx: HandlerContext, payload: OrderRefPayload) -> dict[str, Any]:
    """Its creator or an admin, while nothing has been ordered from a supplier yet."""
    order = await _lock_order(ctx, payload.order_id)
    if order.created_by != ctx.actor.id and not ctx.actor.is_admin:
        raise RequestError("forbidden", f"only the order's creator or an admin may cancel order {order.id}")
    _require_status(order, CANCELLABLE, "cancel")
    await ctx.connection.execute(CANCEL_OPEN_APPROVALS, order.id)
    await ctx.connection.execute(SET_STATUS, order.id, "cancelled")
    await record_order_event(
        ctx.connection,
        order.id,
        "cancelled",
        f"cancelled by {ctx.actor.email} (was {order.status})",
        ctx.actor.id,
        {"previous_status": order.status, "request_id": str(ctx.request_id)},
    )
    return {"order_id": str(order.id), "status": "cancelled"}
