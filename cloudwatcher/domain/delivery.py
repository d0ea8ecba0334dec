"""``mark_delivered_responses``: a response is delivered once its file is synced everywhere."""

from __future__ import annotations

import asyncpg

from cloudwatcher.schema.sql import query

MARK_DELIVERED = query("requests", "mark_delivered")


async def mark_delivered_responses(connection: asyncpg.Connection) -> int:
    """Returns how many responses became ``delivered``."""
    status = await connection.execute(MARK_DELIVERED)
    return int(status.split()[-1])
