"""Cluster-wide jobs against the real test PostgreSQL: one instance at a time, once per period.

Several daemons share one database; ``run_exclusively`` is what keeps a nightly job from running
on all of them. Each test plays two instances with two calls on the same database.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from cloudwatcher.daemon.jobs.cluster import lock_key, run_exclusively
from tests.support.instances import an_instance
from tests.support.rows import one_row

HOUR = 3600.0


def test_each_job_name_has_its_own_stable_signed_64_bit_key() -> None:
    names = ["retention", "retry-requeue", "audit-partitions", "notifications"]
    keys = [lock_key(name) for name in names]
    assert keys == [lock_key(name) for name in names]  # the same in every process, unlike hash()
    assert len(set(keys)) == len(names)
    assert all(-(2**63) <= key < 2**63 for key in keys)


async def test_the_job_runs_in_a_transaction_holding_its_lock(pool: asyncpg.Pool) -> None:
    async def job(connection: Any) -> tuple[bool, int]:
        held = await connection.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid()"
        )
        return connection.is_in_transaction(), held

    assert await run_exclusively(pool, "nightly", job) == (True, (True, 1))


async def test_a_job_whose_lock_is_held_is_skipped_not_waited_for(pool: asyncpg.Pool) -> None:
    started, release = asyncio.Event(), asyncio.Event()
    ran: list[str] = []

    async def holder(connection: Any) -> str:
        started.set()
        await release.wait()
        return "first"

    async def other(connection: Any) -> None:
        ran.append("other")

    first = asyncio.create_task(run_exclusively(pool, "nightly", holder))
    await started.wait()
    try:
        assert await run_exclusively(pool, "nightly", other) == (False, None)
        assert ran == []
        assert await run_exclusively(pool, "hourly", other) == (True, None)  # another job's lock is free
        assert ran == ["other"]
    finally:
        release.set()
    assert await first == (True, "first")
    # The lock ended with the first job's transaction.
    assert await run_exclusively(pool, "nightly", other) == (True, None)


async def test_a_periodic_job_runs_once_per_period_whichever_instance_asks(pool: asyncpg.Pool) -> None:
    one, two = await an_instance(pool), await an_instance(pool)
    runs: list[str] = []

    def job_of(instance: str) -> Any:
        async def job(connection: Any) -> str:
            runs.append(instance)
            return instance

        return job

    assert await run_exclusively(pool, "retention", job_of("one"), period_seconds=HOUR, instance_id=one) == (
        True,
        "one",
    )
    # The other instance's turn comes a moment later: already done for this period.
    assert await run_exclusively(pool, "retention", job_of("two"), period_seconds=HOUR, instance_id=two) == (
        False,
        None,
    )
    # Most of a period later, but less than the 90% margin: still skipped.
    await pool.execute("UPDATE cluster_job_runs SET last_run_at = now() - interval '3000 seconds'")
    assert await run_exclusively(pool, "retention", job_of("two"), period_seconds=HOUR, instance_id=two) == (
        False,
        None,
    )
    # 90% of a period later it runs again, on whichever instance asks first.
    await pool.execute("UPDATE cluster_job_runs SET last_run_at = now() - interval '3240 seconds'")
    assert await run_exclusively(pool, "retention", job_of("two"), period_seconds=HOUR, instance_id=two) == (
        True,
        "two",
    )
    assert runs == ["one", "two"]
    record = await one_row(pool, "SELECT runs, instance_id FROM cluster_job_runs WHERE name = 'retention'")
    assert (record["runs"], record["instance_id"]) == (2, two)


async def test_a_failed_periodic_job_leaves_no_run_behind_and_runs_again_next_turn(pool: asyncpg.Pool) -> None:
    async def failing(connection: Any) -> None:
        await connection.execute("INSERT INTO cluster_job_runs (name, last_run_at) VALUES ('side-effect', now())")
        raise RuntimeError("the job failed")

    async def succeeding(connection: Any) -> str:
        return "done"

    with pytest.raises(RuntimeError, match="the job failed"):
        await run_exclusively(pool, "retention", failing, period_seconds=HOUR)
    assert await pool.fetchval("SELECT count(*) FROM cluster_job_runs") == 0  # its writes went with it
    assert await run_exclusively(pool, "retention", succeeding, period_seconds=HOUR) == (True, "done")
