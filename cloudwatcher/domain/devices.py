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

# Sessions whose silence already exceeds the idle limit at the time of the new file are
# closed first, so the new file opens a fresh session even if the closing job has not run yet.
CLOSE_STALE_FOR_SEEN = """
UPDATE device_connections dc
SET disconnected_at = dc.last_seen_at,
    session_duration_seconds = greatest(0, extract(epoch FROM dc.last_seen_at - dc.connected_at))::integer
FROM unnest($1::text[], $2::timestamptz[]) AS s(device_id, seen_at)
WHERE dc.device_id = s.device_id AND dc.disconnected_at IS NULL
  AND s.seen_at - dc.last_seen_at > make_interval(secs => $3)
"""

# One statement per batch: open a session where none is open, else move last_seen_at forward.
# The user of an opened session is the user of the device's latest request, when known.
TOUCH_SESSIONS = """
INSERT INTO device_connections (device_id, user_id, connection_type, connected_at, last_seen_at)
SELECT s.device_id,
       (SELECT r.created_by FROM requests r
        WHERE r.device_id = s.device_id AND r.created_by IS NOT NULL
        ORDER BY r.created_at DESC LIMIT 1),
       'file-drop', s.seen_at, s.seen_at
FROM unnest($1::text[], $2::timestamptz[]) AS s(device_id, seen_at)
ORDER BY s.device_id
ON CONFLICT (device_id) WHERE disconnected_at IS NULL
DO UPDATE SET last_seen_at = greatest(device_connections.last_seen_at, EXCLUDED.last_seen_at)
"""

CLOSE_IDLE = """
UPDATE device_connections
SET disconnected_at = last_seen_at,
    session_duration_seconds = greatest(0, extract(epoch FROM last_seen_at - connected_at))::integer
WHERE disconnected_at IS NULL AND last_seen_at < now() - make_interval(secs => $1)
"""


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
