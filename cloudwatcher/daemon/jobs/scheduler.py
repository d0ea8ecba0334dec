"""The daemon's scheduled jobs: which ones, how often, and whether one instance runs each.

APScheduler 3 runs them on the daemon's event loop. Cluster-wide jobs (retry re-queue,
delivery marking, session closing, retention, partitions, notifications) run once per period
across every daemon sharing the database (:func:`~cloudwatcher.daemon.jobs.cluster.run_exclusively`);
the heartbeat, the reconcile scan, the after-sync policy, the status publisher (backlog
gauges and systemd's ``STATUS=`` line) and the scheduled backups are per instance.

Scheduled backups are one-off jobs, each scheduling the next when it is done: the next one is
due ``backup.interval_hours`` after the newest backup in the folder
(:func:`~cloudwatcher.database.backup.seconds_until_next_backup`), so a restart neither repeats
nor skips one, and a failed backup is tried again after ``BACKUP_RETRY_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from uuid import UUID

import asyncpg
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from cloudwatcher import domain
from cloudwatcher.config import LocalTarget, Settings
from cloudwatcher.daemon.health import CONNECTION_ERRORS, DATA_ERRORS, DatabaseHealth
from cloudwatcher.daemon.jobs.after_sync import apply_after_sync
from cloudwatcher.daemon.jobs.cluster import run_exclusively
from cloudwatcher.daemon.jobs.temp_cleanup import remove_stale_temp_files
from cloudwatcher.daemon.jobs.webhooks import deliver_notifications, prune_notifications
from cloudwatcher.daemon.ledger.store import LEASE_SECONDS, Ledger
from cloudwatcher.daemon.ops import metrics
from cloudwatcher.daemon.ops.status import collect_status
from cloudwatcher.daemon.ops.systemd import SystemdNotifier, backlog_status
from cloudwatcher.daemon.watch.skips import SKIPS
from cloudwatcher.database import backup
from cloudwatcher.schema import queries

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10.0
SKIPPED_SAVE_SECONDS = 2.0  # how often the per-device counts of skipped files reach the database
STATUS_PUBLISH_SECONDS = 5.0
BACKUP_RETRY_SECONDS = 600.0
ClusterJob = Callable[[Any], Awaitable[Any]]


class DaemonJobs:
    """The daemon's periodic work on one APScheduler; ``notifier`` gets the ``STATUS=`` line,
    ``database_url`` and ``backup_bin_dir`` (the embedded server's own ``pg_dump``) the backups."""

    def __init__(
        self,
        *,
        settings: Settings,
        pool: asyncpg.Pool,
        health: DatabaseHealth,
        ledger: Ledger,
        instance_id: UUID | None,
        wake: Callable[[set[str]], None],
        full_scan: Callable[[], Awaitable[int]],
        notifier: SystemdNotifier,
        database_url: str,
        backup_bin_dir: Path | None,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.health = health
        self.ledger = ledger
        self.instance_id = instance_id
        self.wake = wake
        self.full_scan = full_scan
        self.notifier = notifier
        self.database_url = database_url
        self.backup_bin_dir = backup_bin_dir
        self.scheduler = AsyncIOScheduler()

    async def startup_housekeeping(self) -> None:
        """Remove a killed run's temporary files, close sessions it left open, ensure audit partitions."""
        await self._remove_stale_temp_files()
        async with self.pool.acquire() as connection:
            await domain.close_idle_device_sessions(
                cast(asyncpg.Connection, connection), self.settings.device_idle_seconds
            )
        await run_exclusively(self.pool, "audit-partitions", domain.ensure_audit_partitions)

    def start(self) -> None:
        settings = self.settings
        every = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}

        def add(job: Callable[[], Awaitable[Any]], seconds: float, name: str) -> None:
            self.scheduler.add_job(job, "interval", seconds=seconds, id=name, **every)

        add(self._guarded("retry-requeue", self._requeue), settings.retry.interval_seconds, "retry-requeue")
        add(self._guarded("heartbeat", self._heartbeat), HEARTBEAT_SECONDS, "heartbeat")
        add(self._reconcile, settings.scan_interval_seconds, "reconcile-scan")
        add(self._guarded("skipped-files", lambda: SKIPS.save(self.pool)), SKIPPED_SAVE_SECONDS, "skipped-files")
        idle = settings.device_idle_seconds
        cluster_jobs: list[tuple[str, float, ClusterJob]] = [
            ("response-delivery", 2.0, domain.mark_delivered_responses),
            (
                "device-sessions",
                max(1.0, min(60.0, idle / 4)),
                lambda connection: domain.close_idle_device_sessions(connection, idle),
            ),
            (
                "retention",
                3600.0,
                lambda connection: domain.archive_old_requests(connection, settings.request_retention_days),
            ),
            ("audit-partitions", 86400.0, domain.ensure_audit_partitions),
            # Always, even without a webhook: it also expires events that were never sent.
            ("notification-prune", 86400.0, prune_notifications),
        ]
        webhook = settings.notify.webhook_url
        if webhook:
            cluster_jobs.append(("notifications", 2.0, lambda connection: deliver_notifications(connection, webhook)))
        for name, seconds, job in cluster_jobs:
            add(self._guarded(name, self._once_per_period(name, seconds, job)), seconds, name)
        if settings.after_sync != "keep":
            # Per instance, not cluster-wide: each daemon handles the files of its own watch root.
            seconds = min(settings.scan_interval_seconds, max(1.0, settings.after_sync_min_age_seconds))
            add(self._guarded("after-sync", self._after_sync), seconds, "after-sync")
        # The first snapshot at once: the gauges and STATUS= line are right from the start.
        self.scheduler.add_job(
            self._publish_status,
            "interval",
            seconds=STATUS_PUBLISH_SECONDS,
            id="status-publisher",
            next_run_time=datetime.now(UTC),
            **every,
        )
        if settings.scheduled_backups:
            latest = backup.latest_backup(settings.backup_dir)
            if latest is not None:
                with contextlib.suppress(OSError):
                    metrics.set_last_backup(latest.stat().st_mtime)
            self._schedule_backup(backup.seconds_until_next_backup(settings.backup_dir, settings.backup.interval_hours))
        self.scheduler.start()

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    # ------------------------------------------------------------------ the jobs
    def _guarded(self, name: str, job: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[None]]:
        """Run ``job`` reporting database reachability; any other error is logged, never raised."""

        async def run() -> None:
            try:
                await job()
                self.health.succeeded()
            except DATA_ERRORS:  # a bad row, not an outage (DATA_ERRORS overlaps CONNECTION_ERRORS)
                log.exception("scheduled job %s failed", name)
            except CONNECTION_ERRORS as exc:
                self.health.failed(exc)
            except Exception:
                log.exception("scheduled job %s failed", name)

        return run

    def _once_per_period(self, name: str, seconds: float, job: ClusterJob) -> Callable[[], Awaitable[Any]]:
        async def run() -> None:
            await run_exclusively(self.pool, name, job, period_seconds=seconds, instance_id=self.instance_id)

        return run

    async def _requeue(self) -> None:
        """Re-queue due failures and expired leases (cluster-wide), then wake the local workers."""

        async def requeue(connection: asyncpg.Connection) -> set[str]:
            due = {row["target"] for row in await connection.fetch(queries.REQUEUE_DUE)}
            reaped = await connection.fetch(queries.REAP_EXPIRED_LEASES, LEASE_SECONDS)
            return due | {row["target"] for row in reaped}

        await run_exclusively(
            self.pool,
            "retry-requeue",
            requeue,
            period_seconds=self.settings.retry.interval_seconds,
            instance_id=self.instance_id,
        )
        self.wake(await self.ledger.pending_targets())

    async def _reconcile(self) -> None:
        """The periodic reconcile: abandoned temporary files first, then every file offered again."""
        await self._remove_stale_temp_files()
        await self.full_scan()

    async def _remove_stale_temp_files(self) -> None:
        """Housekeeping only: whatever goes wrong is logged, never a reason to stop or skip the scan."""
        settings = self.settings
        try:
            await asyncio.to_thread(
                remove_stale_temp_files,
                watch_root=settings.watch_path,
                state_dir=settings.state_dir,
                mirror_roots=[target.root for target in settings.target_list if isinstance(target, LocalTarget)],
            )
        except Exception:
            log.exception("could not clean up temporary files")

    async def _heartbeat(self) -> None:
        await self.pool.execute(queries.HEARTBEAT, self.instance_id)

    async def _after_sync(self) -> None:
        moved = await apply_after_sync(self.pool, self.settings)
        if moved:
            log.info("after_sync (%s): %d file(s) handled", self.settings.after_sync, moved)

    async def _publish_status(self) -> None:
        """Backlog gauges and systemd's ``STATUS=`` line from one status snapshot."""
        try:
            snapshot = await collect_status(self.pool, self.settings)
            metrics.publish_status(snapshot)
            self.notifier.status(backlog_status(snapshot["targets"]))
            metrics.set_pool(self.pool.get_size() - self.pool.get_idle_size(), self.pool.get_idle_size())
        except Exception as exc:  # the database may be down; the next round tries again
            log.debug("status publish skipped: %s", exc)

    def _schedule_backup(self, seconds: float | None) -> None:
        """The next scheduled backup in ``seconds`` (None: scheduled backups are off)."""
        if seconds is None:
            return
        self.scheduler.add_job(
            self._backup,
            "date",
            run_date=datetime.now(UTC) + timedelta(seconds=max(0.0, seconds)),
            id="backup",
            replace_existing=True,
            misfire_grace_time=None,
        )

    async def _backup(self) -> None:
        """One scheduled backup (see ``Settings.scheduled_backups`` for when they are on)."""
        settings = self.settings
        try:
            taken = await asyncio.to_thread(  # it logs where the backup went
                backup.run_scheduled_backup,
                self.database_url,
                settings.backup_dir,
                settings.backup.keep,
                bin_dir=self.backup_bin_dir,
            )
        except backup.BackupError as exc:
            log.error("scheduled backup failed: %s", exc)
            self._schedule_backup(BACKUP_RETRY_SECONDS)
            return
        metrics.set_last_backup(taken.stat().st_mtime)
        self._schedule_backup(backup.seconds_until_next_backup(settings.backup_dir, settings.backup.interval_hours))
