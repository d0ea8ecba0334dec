"""Device sessions (``device_connections``, docs/ledger-and-requests.md) driven by file activity.

A device's first file opens a session (``connection_type = 'file-drop'``); later files move
``last_seen_at``; ``device_idle_seconds`` of silence closes it with ``disconnected_at`` = the
time of its last file. The partial unique index ``uq_device_connections_open`` guarantees one
open session per device, so two daemons recording the same device's files cannot open two.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import asyncpg

from cloudwatcher.schema.sql import query

CLOSE_STALE_FOR_SEEN = query("devices", "close_stale_for_seen")
TOUCH_SESSIONS = query("devices", "touch_sessions")
CLOSE_IDLE = query("devices", "close_idle")


async def note_device_activity(
    connection: asyncpg.Connection, seen: Mapping[str, datetime], idle_seconds: float | None = None
) -> None:
    """Record a batch of device activity (device id -> time of its latest file).

    Pass ``idle_seconds`` (``device_idle_seconds``) so that a file arriving after a long
    silence opens a new session even before the scheduled closing job has run.
    """
    if not seen:
        return
    devices = sorted(seen)
    times = [seen[device] for device in devices]
    if idle_seconds is not None:
        await connection.execute(CLOSE_STALE_FOR_SEEN, devices, times, float(idle_seconds))
    await connection.execute(TOUCH_SESSIONS, devices, times)


async def close_idle_device_sessions(connection: asyncpg.Connection, idle_seconds: float) -> int:
    """Close sessions silent for ``idle_seconds``; returns how many. Also run it at start-up."""
    status = await connection.execute(CLOSE_IDLE, float(idle_seconds))
    return int(status.split()[-1])
