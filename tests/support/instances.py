"""Daemon instances registered straight in the database, with a heartbeat as old as a test needs.

Instances are told apart by their per-boot id only; every one registered here has the same host
name and pid, as a cloned VM or container would, so a test cannot pass by telling them apart
any other way.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg


async def an_instance(pool: asyncpg.Pool, *, heartbeat_age_seconds: float = 0.0) -> UUID:
    """Register an instance whose last heartbeat is ``heartbeat_age_seconds`` old."""
    instance_id: UUID = await pool.fetchval(
        "INSERT INTO instances (host, pid, version, watch_root, last_heartbeat)"
        " VALUES ('clone', 4242, 'test', '/inbox', now() - make_interval(secs => $1)) RETURNING id",
        heartbeat_age_seconds,
    )
    return instance_id
