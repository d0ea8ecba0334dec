"""Webhook notifications (``notify.webhook_url``), delivered from the ``notification_events`` outbox.

Events are written in the same transaction as what they report (a row giving up, a target
turning failing, full or recovering), so none is lost and none is invented; uploads never
wait on the receiver. :func:`deliver_notifications` POSTs the due ones as
``application/json``::

    {"id": "<uuid>", "event": "file.gave_up", "at": "<ISO 8601>", "target": "library",
     "local_path": "truck-1/requests/a.txt", "ref_id": "<uuid>", "reason": "..."}

Any 2xx counts as delivered; anything else (or no answer) is retried with exponential backoff
until the event is a day old, then it is marked expired. Delivery is at least once: a daemon
killed after the POST and before its commit sends the event again, with the same ``id``, so
receivers deduplicate on it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg
from asyncpg.pool import PoolConnectionProxy

from cloudwatcher import __version__
from cloudwatcher.daemon.retry import webhook_delay
from cloudwatcher.schema import queries

__all__ = ["MAX_AGE_SECONDS", "deliver_notifications", "event_body", "prune_notifications"]

log = logging.getLogger(__name__)

MAX_AGE_SECONDS = 86400.0  # retried for up to a day
BATCH_SIZE = 20
TIMEOUT_SECONDS = 10.0

Connection = asyncpg.Connection | PoolConnectionProxy


def event_body(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    """The JSON object a receiver gets for one outbox row (optional keys only when known)."""
    created: datetime = row["created_at"]
    body: dict[str, Any] = {
        "id": str(row["id"]),
        "event": row["event"],
        "at": created.astimezone(UTC).isoformat(),
        "target": row["target"],
    }
    if row["local_path"] is not None:
        body["local_path"] = row["local_path"]
    if row["ref_id"] is not None:
        body["ref_id"] = str(row["ref_id"])
    if row["reason"] is not None:
        body["reason"] = row["reason"]
    return body


async def deliver_notifications(
    connection: Connection,
    webhook_url: str,
    *,
    session: aiohttp.ClientSession | None = None,
    limit: int = BATCH_SIZE,
    request_timeout: float = TIMEOUT_SECONDS,
    retry_base_seconds: float = 2.0,
) -> int:
    """POST the due events in the order they happened; return how many were delivered.

    Meant as a cluster-wide scheduled job (one instance at a time); the events it handles are
    also locked (``FOR UPDATE SKIP LOCKED``), so two callers never send one event together.
    After the first failure the rest of the batch waits for the next round, so a receiver that
    is down costs one timeout per round, and events keep their order as far as possible.
    """
    async with connection.transaction():
        await connection.execute(queries.EXPIRE_NOTIFICATIONS, MAX_AGE_SECONDS)
        rows = await connection.fetch(queries.DUE_NOTIFICATIONS, limit)
        if not rows:
            return 0
        own_session = session is None
        client = session or aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=request_timeout),
            headers={"User-Agent": f"cloudwatcher/{__version__}"},
        )
        delivered: list[Any] = []
        failed: tuple[Any, str, float] | None = None
        try:
            for row in rows:
                error = await _post(client, webhook_url, event_body(row))
                if error is None:
                    delivered.append(row["id"])
                    continue
                failed = (row["id"], error, webhook_delay(row["attempts"] + 1, retry_base_seconds))
                log.info("webhook: event %s (%s) not delivered: %s", row["id"], row["event"], error)
                break
        finally:
            if own_session:
                await client.close()
        if delivered:
            await connection.execute(queries.NOTIFICATION_DELIVERED, delivered)
        if failed is not None:
            await connection.execute(queries.NOTIFICATION_FAILED, [failed[0]], [failed[1]], [failed[2]])
        return len(delivered)


async def _post(client: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> str | None:
    """None when the receiver answered 2xx, else what went wrong."""
    try:
        async with client.post(url, json=body) as response:
            if 200 <= response.status < 300:
                return None
            return f"HTTP {response.status}"
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"[:500]


async def prune_notifications(connection: Connection, keep_days: int = 30) -> int:
    """Expire events older than a day that were never delivered (also when no webhook is set),
    and forget delivered and expired events older than ``keep_days`` (a daily job)."""
    await connection.execute(queries.EXPIRE_NOTIFICATIONS, MAX_AGE_SECONDS)
    status = await connection.execute(queries.PRUNE_NOTIFICATIONS, keep_days)
    return int(status.split()[-1])
