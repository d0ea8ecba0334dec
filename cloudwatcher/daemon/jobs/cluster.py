"""Jobs that must run on one instance at a time across every daemon sharing the database.

A transaction-level advisory lock taken with ``pg_try_advisory_xact_lock``: the instance that
gets it runs the job, the others skip this round. The lock dies with the transaction, so a
killed instance never holds it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from uuid import UUID

import asyncpg

from cloudwatcher.daemon.ops.status import STALE_AFTER_SECONDS
from cloudwatcher.schema import queries
from cloudwatcher.schema.sql import query

T = TypeVar("T")


def lock_key(job_name: str) -> int:
    """A stable signed 64-bit key per job name."""
    return int.from_bytes(hashlib.sha256(f"cloudwatcher:{job_name}".encode()).digest()[:8], "big", signed=True)


_CLAIM_PERIOD = query("jobs", "claim_period")


async def run_exclusively(
    pool: asyncpg.Pool,
    job_name: str,
    job: Callable[[Any], Awaitable[T]],
    *,
    period_seconds: float | None = None,
    instance_id: UUID | None = None,
) -> tuple[bool, T | None]:
    """Run ``job(connection)`` inside a transaction holding the job's lock; (False, None) if taken.

    With ``period_seconds``, the job also runs at most once per period across the cluster: an
    instance whose turn comes while another ran it less than 90% of a period ago skips it (the
    margin absorbs scheduling jitter). A job that fails rolls its run record back with it.
    """
    async with pool.acquire() as connection, connection.transaction():
        if not await connection.fetchval(queries.TRY_XACT_LOCK, lock_key(job_name)):
            return False, None
        if period_seconds is not None:
            due = await connection.fetchval(_CLAIM_PERIOD, job_name, instance_id, period_seconds * 0.9)
            if due is None:
                return False, None
        return True, await job(connection)


_RELEASE_CLAIMS_OF_DEAD_INSTANCES = query("claims", "release_claims_of_dead_instances")


async def release_claims_of_dead_instances(pool: asyncpg.Pool, instance_id: UUID) -> int:
    """At start-up: claims of instances whose heartbeat is stale go back to pending.

    The lease reaper frees them anyway once their leases have run out and their holder has
    been silent for a lease's length; this is the same rule, stated by the heartbeat alone, for
    claims whose leases are longer than that.
    A claim freed here and still written back by its old holder changes nothing: every
    write-back is fenced by the claim's token.
    """
    status = await pool.execute(_RELEASE_CLAIMS_OF_DEAD_INSTANCES, instance_id, STALE_AFTER_SECONDS)
    return int(status.split()[-1])
