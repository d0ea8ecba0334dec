"""The daemon's scheduled jobs, each run by hand: which jobs a configuration gets, what a job does
when it runs, and that a job's failure is reported, never raised into the scheduler.

The scheduler itself is APScheduler's; these tests take each job's function from it and await it
once, so nothing depends on how long anything takes.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from cloudwatcher.config import LocalTarget, Settings
from cloudwatcher.config.settings import NotifySettings
from cloudwatcher.daemon.health import DatabaseHealth
from cloudwatcher.daemon.jobs.scheduler import DaemonJobs
from cloudwatcher.daemon.ledger.store import FileVersion, Ledger
from cloudwatcher.daemon.ops.systemd import SystemdNotifier
from tests.support.instances import an_instance

EVERY_CONFIGURATION = {
    "retry-requeue",
    "heartbeat",
    "reconcile-scan",
    "skipped-files",
    "response-delivery",
    "device-sessions",
    "retention",
    "audit-partitions",
    "notification-prune",
    "status-publisher",
}


def expected(jobs: DaemonJobs, *extra: str) -> set[str]:
    """Every configuration's jobs, the ``extra`` ones, and the backup when backups are scheduled."""
    backup = {"backup"} if jobs.settings.scheduled_backups else set()
    return EVERY_CONFIGURATION | set(extra) | backup


class Calls:
    """What the jobs asked of the rest of the daemon: targets woken, full scans started."""

    def __init__(self) -> None:
        self.woken: list[set[str]] = []
        self.scans = 0

    def wake(self, targets: set[str]) -> None:
        self.woken.append(targets)

    async def full_scan(self) -> int:
        self.scans += 1
        return 0


def settings_for(tmp_path: Path, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "state_dir": tmp_path / "state",
        "watch_root": tmp_path / "inbox",
        "targets": [LocalTarget(name="a", provider="local", root=tmp_path / "mirror")],
    }
    return Settings(**values, **extra)


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
def make_jobs(pool: asyncpg.Pool, tmp_path: Path, calls: Calls) -> Iterator[Callable[..., DaemonJobs]]:
    """Started job sets for a configuration; each is shut down after the test."""
    started: list[DaemonJobs] = []

    def make(*, on: asyncpg.Pool = pool, instance_id: Any = None, **extra: Any) -> DaemonJobs:
        jobs = DaemonJobs(
            settings=settings_for(tmp_path, **extra),
            pool=on,
            health=DatabaseHealth(),
            ledger=Ledger(on),
            instance_id=instance_id,
            wake=calls.wake,
            full_scan=calls.full_scan,
            notifier=SystemdNotifier(None),
            database_url="postgresql://unused",
            backup_bin_dir=None,
        )
        jobs.start()
        started.append(jobs)
        return jobs

    yield make
    for jobs in started:
        jobs.shutdown()


async def run(jobs: DaemonJobs, name: str) -> None:
    """Run the scheduled job ``name`` once, as the scheduler would."""
    job = jobs.scheduler.get_job(name)
    assert job is not None, f"no job {name}"
    await job.func()


def job_names(jobs: DaemonJobs) -> set[str]:
    return {job.id for job in jobs.scheduler.get_jobs()}


async def test_every_configuration_gets_the_housekeeping_jobs(make_jobs: Callable[..., DaemonJobs]) -> None:
    jobs = make_jobs()
    assert job_names(jobs) == expected(jobs)


async def test_a_webhook_adds_notification_delivery(make_jobs: Callable[..., DaemonJobs]) -> None:
    jobs = make_jobs(notify=NotifySettings(webhook_url="https://hooks.example.com/x"))
    assert job_names(jobs) == expected(jobs, "notifications")


@pytest.mark.parametrize("policy", ["archive", "delete"])
async def test_an_after_sync_policy_adds_its_job(make_jobs: Callable[..., DaemonJobs], policy: str) -> None:
    jobs = make_jobs(after_sync=policy)
    assert job_names(jobs) == expected(jobs, "after-sync")


async def test_the_requeue_job_puts_due_failures_back_and_wakes_their_targets(
    make_jobs: Callable[..., DaemonJobs], pool: asyncpg.Pool, calls: Calls
) -> None:
    version = FileVersion("dev/requests/f.txt", "dev", "attachment", hashlib.sha256(b"f").hexdigest(), 1, 1)
    await Ledger(pool).record([("a", "local", version)])
    await pool.execute(
        "UPDATE cloud_file_refs SET sync_status = 'failed', next_attempt_at = now() - interval '1 second'"
    )
    jobs = make_jobs()
    await run(jobs, "retry-requeue")
    assert await pool.fetchval("SELECT sync_status FROM cloud_file_refs") == "pending"
    assert calls.woken == [{"a"}]
    assert jobs.health.healthy


async def test_the_reconcile_job_scans_everything(make_jobs: Callable[..., DaemonJobs], calls: Calls) -> None:
    await run(make_jobs(), "reconcile-scan")
    assert calls.scans == 1


async def test_the_heartbeat_job_refreshes_this_instances_heartbeat(
    make_jobs: Callable[..., DaemonJobs], pool: asyncpg.Pool
) -> None:
    instance = await an_instance(pool, heartbeat_age_seconds=600)
    await run(make_jobs(instance_id=instance), "heartbeat")
    age = await pool.fetchval(
        "SELECT extract(epoch FROM now() - last_heartbeat) FROM instances WHERE id = $1", instance
    )
    assert age < 600


async def test_a_cluster_job_run_twice_in_its_period_runs_once(
    make_jobs: Callable[..., DaemonJobs], pool: asyncpg.Pool
) -> None:
    jobs = make_jobs()
    await run(jobs, "retention")
    await run(jobs, "retention")
    assert await pool.fetchval("SELECT runs FROM cluster_job_runs WHERE name = 'retention'") == 1


@pytest.fixture
async def closed_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool that is closed before the test uses it: every query fails as in an outage."""
    closed = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    assert closed is not None
    await closed.close()
    yield closed


async def test_an_unreachable_database_is_reported_to_health_not_raised(
    make_jobs: Callable[..., DaemonJobs], closed_pool: asyncpg.Pool
) -> None:
    jobs = make_jobs(on=closed_pool)
    await run(jobs, "heartbeat")
    assert not jobs.health.healthy and jobs.health.last_error


async def test_a_bad_value_is_logged_not_raised_and_is_no_outage(
    make_jobs: Callable[..., DaemonJobs], caplog: pytest.LogCaptureFixture
) -> None:
    jobs = make_jobs(instance_id="not-a-uuid")  # the heartbeat's query refuses it: a data error
    with caplog.at_level(logging.ERROR, logger="cloudwatcher.daemon.jobs.scheduler"):
        await run(jobs, "heartbeat")
    assert jobs.health.healthy
    assert "scheduled job heartbeat failed" in caplog.text
