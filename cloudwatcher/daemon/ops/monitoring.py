"""What an admin and systemd see of a running daemon: sd_notify, watchdog, HTTP, metrics, backups.

The daemon's service module creates one :class:`Monitoring` and hands it the few callables
it needs, so the pieces in ``notify``, ``http_api``, ``metrics`` and ``backup`` stay
independent of the daemon's internals.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
from aiohttp import web

from cloudwatcher.config import Settings
from cloudwatcher.daemon.http.app import build_http_app, is_loopback_bind, start_http_server
from cloudwatcher.daemon.ledger.store import retry_failed
from cloudwatcher.daemon.ops import metrics
from cloudwatcher.daemon.ops.stall import Stall
from cloudwatcher.daemon.ops.status import collect_status
from cloudwatcher.daemon.ops.systemd import SystemdNotifier, backlog_status, watchdog_loop
from cloudwatcher.database import backup
from cloudwatcher.schema import queries

log = logging.getLogger(__name__)

STATUS_PUBLISH_SECONDS = 5.0


class Monitoring:
    def __init__(
        self,
        *,
        settings: Settings,
        pool: asyncpg.Pool,
        database_url: str,
        backup_bin_dir: Path | None,
        watcher_running: Callable[[], bool],
        after_retry: Callable[[], None],
        stalled: Callable[[], Stall | None] = lambda: None,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.database_url = database_url
        self.backup_bin_dir = backup_bin_dir
        self.watcher_running = watcher_running
        self.after_retry = after_retry
        self.stalled = stalled
        self._probe: asyncpg.Connection | None = None
        self._probe_lock = asyncio.Lock()
        self.notifier = SystemdNotifier(unset_environment=True)
        self.runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.backups_enabled = settings.scheduled_backups

    # ------------------------------------------------------------------ callables for HTTP
    async def status(self) -> dict[str, Any]:
        return await collect_status(self.pool, self.settings)

    async def health(self) -> tuple[bool, str]:
        """``/healthz``: the watcher runs, the database answers, and no stage is stalled."""
        problem = await self._problem(outage_counts=True)
        return not problem, problem

    async def healthy(self) -> bool:
        """The watchdog's check: like :meth:`health`, except that a database outage alone keeps
        the pings going. The daemon rides an outage out and exits 1 itself once it has lasted
        too long; withholding pings would have systemd kill it after ``WatchdogSec=`` instead."""
        return not await self._problem(outage_counts=False)

    async def _problem(self, *, outage_counts: bool) -> str:
        """What is wrong ('' when nothing); a stall is judged only while the database answers."""
        if not self.watcher_running():
            return "the watcher is not running"
        unreachable = await self._database_unreachable()
        if unreachable:
            return f"database unreachable: {unreachable}" if outage_counts else ""
        stall = self.stalled()
        return "" if stall is None else str(stall)

    async def _database_unreachable(self) -> str:
        """Why ``SELECT 1`` failed ('' when it answered), on a connection of the check's own:
        with every pool connection stuck behind a lock, a pooled probe would time out and a
        stall would pass for an outage, which keeps the watchdog fed."""
        async with self._probe_lock:
            try:
                async with asyncio.timeout(2.0):
                    if self._probe is None or self._probe.is_closed():
                        self._probe = await asyncpg.connect(self.database_url)
                    await self._probe.fetchval(queries.PING)
            except Exception as exc:
                if self._probe is not None:
                    self._probe.terminate()
                    self._probe = None
                return type(exc).__name__
        return ""

    async def retry(self, ref_ids: list[str] | None) -> int:
        count = await retry_failed(self.pool, None if ref_ids is None else [UUID(value) for value in ref_ids])
        self.after_retry()
        return count

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        bind = self.settings.http_bind
        if bind:
            app = build_http_app(
                status=self.status,
                health=self.health,
                retry=self.retry,
                token=self.settings.api_token(),
                require_token_for_reads=not is_loopback_bind(bind),
            )
            self.extend_app(app)
            self.runner = await start_http_server(bind, app)
            log.info("status endpoint on http://%s/ (status, healthz, metrics)", bind)
        self._tasks.append(asyncio.create_task(watchdog_loop(self.notifier, self.healthy), name="watchdog"))
        self._tasks.append(asyncio.create_task(self._publish_loop(), name="status-publisher"))
        if self.backups_enabled:
            self._tasks.append(asyncio.create_task(self._backup_loop(), name="backups"))

    def extend_app(self, app: web.Application) -> None:
        """Hook for more routes (the web dashboard)."""
        from cloudwatcher.daemon.http.dashboard import add_dashboard_routes

        add_dashboard_routes(app, self)

    def ready(self) -> None:
        self.notifier.ready("watching; first reconcile scan started")

    async def stop(self) -> None:
        self.notifier.stopping("finishing in-flight work")
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.runner is not None:
            await self.runner.cleanup()
        if self._probe is not None:
            self._probe.terminate()
            self._probe = None

    # ------------------------------------------------------------------ loops
    async def _publish_loop(self) -> None:
        """Backlog gauges and systemd's STATUS= line from one status snapshot every few seconds."""
        while True:
            try:
                snapshot = await self.status()
                metrics.publish_status(snapshot)
                self.notifier.status(backlog_status(snapshot["targets"]))
                metrics.set_pool(self.pool.get_size() - self.pool.get_idle_size(), self.pool.get_idle_size())
            except Exception as exc:  # the database may be down; the next round tries again
                log.debug("status publish skipped: %s", exc)
            await asyncio.sleep(STATUS_PUBLISH_SECONDS)

    async def _backup_loop(self) -> None:
        """Scheduled backups (see ``Settings.scheduled_backups`` for when they are on)."""
        directory = self.settings.backup_dir
        latest = backup.latest_backup(directory)
        if latest is not None:
            with contextlib.suppress(OSError):
                metrics.set_last_backup(latest.stat().st_mtime)
        while True:
            wait = backup.seconds_until_next_backup(directory, self.settings.backup.interval_hours)
            if wait is None:
                return
            await asyncio.sleep(max(0.0, wait))
            try:
                taken = await asyncio.to_thread(  # it logs where the backup went
                    backup.run_scheduled_backup,
                    self.database_url,
                    directory,
                    self.settings.backup.keep,
                    bin_dir=self.backup_bin_dir,
                )
            except backup.BackupError as exc:
                log.error("scheduled backup failed: %s", exc)
                await asyncio.sleep(600)
            else:
                metrics.set_last_backup(taken.stat().st_mtime)
