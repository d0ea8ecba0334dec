"""The RequestRouter: which handler applies a request type, and which permission it needs.

Every request also needs ``requests.create``. Types without a built-in handler are kept
``pending`` for an external processor (docs/ledger-and-requests.md, Types). The router records its choice in
``agent_decisions`` so that "why was this request handled like that" has an answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from cloudwatcher.domain import inventory, order_creation, order_workflow
from cloudwatcher.domain.context import HandlerContext
from cloudwatcher.domain.envelope import Envelope

BASE_PERMISSION = "requests.create"

Handler = Callable[[HandlerContext, Any], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Route:
    permission: str
    handler: Handler
    name: str


ROUTES: dict[str, Route] = {
    "get_parts": Route("inventory.read", inventory.get_parts, "inventory.get_parts"),
    "update_inventory": Route("inventory.write", inventory.update_inventory, "inventory.update_inventory"),
    "consume_parts": Route("inventory.write", inventory.consume_parts, "inventory.consume_parts"),
    "create_order": Route("orders.create", order_creation.create_order, "orders.create_order"),
    "approve_order": Route("orders.approve", order_workflow.approve_order, "orders.approve_order"),
    "reject_order": Route("orders.approve", order_workflow.reject_order, "orders.reject_order"),
    "place_order": Route("orders.approve", order_workflow.place_order, "orders.place_order"),
    "receive_order": Route("orders.receive", order_workflow.receive_order, "orders.receive_order"),
    "cancel_order": Route("orders.create", order_workflow.cancel_order, "orders.cancel_order"),
}


async def route_request(ctx: HandlerContext, envelope: Envelope) -> dict[str, Any] | None:
    """Authorise and apply; ``None`` means "pending for an external processor"."""
    ctx.actor.require(BASE_PERMISSION)
    route = ROUTES.get(envelope.request_type)
    if route is None:
        await ctx.decide(
            "RequestRouter",
            "routing",
            "external-processor",
            {
                "type": envelope.request_type,
                "reason": "no built-in handler; left pending for an external processor",
            },
        )
        return None
    ctx.actor.require(route.permission)
    await ctx.decide(
        "RequestRouter",
        "routing",
        route.name,
        {"type": envelope.request_type, "handler": route.name, "permission": route.permission},
    )
    return await route.handler(ctx, envelope.payload)
