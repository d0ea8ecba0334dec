"""``order_history``: one event for every change to an order, its items or its approvals."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from cloudwatcher.domain.responses import to_json
from cloudwatcher.schema.sql import query

_EVENT = query("orders", "event")


async def record_order_event(
    connection: asyncpg.Connection,
    order_id: UUID,
    event_type: str,
    description: str,
    user_id: UUID | None,
    metadata: dict[str, Any],
) -> None:
    await connection.execute(_EVENT, order_id, event_type, description, user_id, to_json(metadata))
