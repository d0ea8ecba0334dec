"""Jobs that must run on one instance at a time across every daemon sharing the database.

A transaction-level advisory lock taken with ``pg_try_advisory_xact_lock``: the instance that
gets it runs the job, the others skip this round. The lock dies with the transaction, so a
killed instance never holds it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from uuid import UUID

import asyncpg

T = TypeVar("T")


def lock_key(job_name: str) -> int:
    """A stable signed 64-bit key per job name."""
    return int.from_bytes(hashlib.sha256(f"cloudwatcher:{job_name}".encode()).digest()[:8], "big", signed=True)


_CLAIM_PERIOD = """
INSERT INTO cluster_job_runs AS runs (name, last_run_at, instance_id) VALUES ($1, now(), $2)
ON CONFLICT (name) DO UPDATE SET last_run_at = now(), instance_id = $2, runs = runs.runs + 1
    WHERE runs.last_run_at <= now() - make_interval(secs => $3)
RETURNING name
"""


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
        if not await connection.fetchval("SELECT pg_try_advisory_xact_lock($1)", lock_key(job_name)):
            return False, None
        if period_seconds is not None:
            due = await connection.fetchval(_CLAIM_PERIOD, job_name, instance_id, period_seconds * 0.9)
            if due is None:
                return False, None
        return True, await job(connection)


_SAME_HOST_INSTANCES = """
SELECT id, pid FROM instances
WHERE host = $1 AND id <> $2 AND stopped_at IS NULL
"""

_RELEASE_CLAIMS_OF = """
UPDATE cloud_file_refs
SET sync_status = 'pending', lease_expires_at = NULL, claimed_by = NULL, updated_at = now()
WHERE sync_status = 'uploading' AND claimed_by = ANY($1::uuid[])
"""


def process_exists(pid: int) -> bool:
    """Whether a process with this pid exists on this host (it may belong to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def release_claims_of_dead_local_instances(pool: asyncpg.Pool, host: str, instance_id: UUID) -> int:
    """At start-up: claims of earlier daemons on this host whose process is gone go back to pending.

    Their leases would expire on their own within ``LEASE_SECONDS``; a restarted daemon need not
    wait for that. Instances on other hosts are left to the lease reaper.
    """
    rows = await pool.fetch(_SAME_HOST_INSTANCES, host, instance_id)
    dead = [row["id"] for row in rows if not process_exists(row["pid"])]
    if not dead:
        return 0
    status = await pool.execute(_RELEASE_CLAIMS_OF, dead)
    return int(status.split()[-1])
