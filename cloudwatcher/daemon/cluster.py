"""Jobs that must run on one instance at a time across every daemon sharing the database.

A transaction-level advisory lock taken with ``pg_try_advisory_xact_lock``: the instance that
gets it runs the job, the others skip this round. The lock dies with the transaction, so a
killed instance never holds it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

T = TypeVar("T")


def lock_key(job_name: str) -> int:
    """A stable signed 64-bit key per job name."""
    return int.from_bytes(hashlib.sha256(f"cloudwatcher:{job_name}".encode()).digest()[:8], "big", signed=True)


async def run_exclusively(
    pool: asyncpg.Pool, job_name: str, job: Callable[[Any], Awaitable[T]]
) -> tuple[bool, T | None]:
    """Run ``job(connection)`` inside a transaction holding the job's lock; (False, None) if taken."""
    async with pool.acquire() as connection, connection.transaction():
        if not await connection.fetchval("SELECT pg_try_advisory_xact_lock($1)", lock_key(job_name)):
            return False, None
        return True, await job(connection)
