"""``cloudwatcher run``: wire watcher → recorder → ledger → uploaders, and keep them alive.

Every piece of state that matters lives in the ledger, so start-up is the same whether the
last run ended cleanly or was killed: migrate, register, scan, and pick up whatever is pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import uvloop

from cloudwatcher import __version__, domain
from cloudwatcher.config import ConfigError, Settings
from cloudwatcher.daemon.health import CONNECTION_ERRORS, DatabaseHealth
from cloudwatcher.daemon.http.server import HttpServer
from cloudwatcher.daemon.ingest import Ingestor
from cloudwatcher.daemon.jobs.cluster import release_claims_of_dead_instances
from cloudwatcher.daemon.jobs.scheduler import DaemonJobs
from cloudwatcher.daemon.ledger.attachment_links import AttachmentLinker
from cloudwatcher.daemon.ledger.recorder import Recorder
from cloudwatcher.daemon.ledger.store import ClaimedRow, FileVersion, InTransaction, Ledger
from cloudwatcher.daemon.ops import metrics
from cloudwatcher.daemon.ops.liveness import Liveness
from cloudwatcher.daemon.ops.stall import StallDetector
from cloudwatcher.daemon.ops.systemd import SystemdNotifier, Watchdog
from cloudwatcher.daemon.retry import retry_on_outage
from cloudwatcher.daemon.upload.targets import TargetSet, target_specs
from cloudwatcher.daemon.watch.skips import SKIPS
from cloudwatcher.daemon.watch.watcher import FolderWatcher, should_poll
from cloudwatcher.database.embedded import EmbeddedPostgres
from cloudwatcher.database.resolve import embedded_server
from cloudwatcher.providers import UploadResult
from cloudwatcher.schema import apply_migrations, queries

log = logging.getLogger(__name__)

STARTUP_DATABASE_WAIT_SECONDS = 300.0


class DatabaseUnavailableError(Exception):
    """The database could not be reached for longer than the daemon is willing to wait."""


async def connect_pool(url: str, *, wait_seconds: float, max_size: int) -> asyncpg.Pool:
    """Create the pool, retrying with backoff while the database is unreachable."""

    async def create() -> asyncpg.Pool:
        pool = await asyncpg.create_pool(url, min_size=1, max_size=max_size, command_timeout=60)
        assert pool is not None
        return pool

    waited = [0.0]

    def waiting(exc: BaseException, delay: float) -> None:
        log.warning("database not reachable yet (%s); retrying in %.1f s", exc, delay)
        waited[0] += delay

    try:
        return await retry_on_outage(create, None, on_outage=waiting, give_up_after=wait_seconds)
    except CONNECTION_ERRORS as exc:
        raise DatabaseUnavailableError(f"database unreachable for {waited[0]:.0f} s: {exc}") from exc


class Daemon:
    """One running daemon: owns the pool, every component and task, and the order they stop in.

    The components know nothing of each other; this class connects them with callables (the
    recorder's hand-off to the uploaders, the scheduler's wake-ups, the HTTP server's retry), so
    each is built and tested alone, and start-up, reload, outages and shutdown live in one place.
    """

    def __init__(
        self,
        settings: Settings,
        database_url: str,
        embedded: EmbeddedPostgres | None = None,
        reload_settings: Callable[[], Settings] | None = None,
    ) -> None:
        self.settings = settings
        self.reload_settings = reload_settings
        self.database_url = database_url
        self.embedded = embedded
        self.notifier: SystemdNotifier | None = None
        self.liveness: Liveness | None = None
        self.http: HttpServer | None = None
        self.watchdog: Watchdog | None = None
        self.health = DatabaseHealth()
        self.stopping = asyncio.Event()
        self.exit_code = 0
        self.instance_id: UUID | None = None
        self.pool: asyncpg.Pool | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self.on_recorded_hooks: list[Callable[[list[FileVersion]], None]] = []

    # ------------------------------------------------------------------ lifecycle
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop, sig.name)
        loop.add_signal_handler(signal.SIGHUP, self._request_reload)
        try:
            await self._start()
            await self.stopping.wait()
        except DatabaseUnavailableError as exc:
            log.error("%s; exiting so that the service manager restarts the daemon", exc)
            self.exit_code = 1
        finally:
            await self._shutdown()
        return self.exit_code

    def _request_reload(self) -> None:
        if self.stopping.is_set() or not hasattr(self, "targets"):
            return
        self._spawn(self._reload(), "reload")

    async def _reload(self) -> None:
        """SIGHUP: re-read the configuration and apply its targets; other keys need a restart."""
        notifier = self.notifier
        if notifier is not None:
            notifier.reloading()
        try:
            if self.reload_settings is None:
                log.warning("reload requested, but this daemon was not started from a configuration it can re-read")
                return
            try:
                new = self.reload_settings()
                added, removed, rebuilt = await self.targets.apply(new.target_list)
            except ConfigError as exc:
                log.error("reload refused, keeping the running configuration: %s", exc)
                return
            self.settings.targets = new.targets
            self.recorder.targets = target_specs(new.target_list)
            changed = sorted(
                key
                for key in Settings.model_fields
                if key != "targets" and getattr(new, key) != getattr(self.settings, key)
            )
            if changed:
                log.warning("reloaded targets only; restart to apply: %s", ", ".join(changed))
            log.info(
                "configuration reloaded: targets added %s, removed %s, rebuilt %s",
                added or "none",
                removed or "none",
                rebuilt or "none",
            )
            if added or rebuilt:
                self._spawn(self.watcher.full_scan(), "rescan-after-reload")  # rows for the new targets
        finally:
            if notifier is not None:
                notifier.ready("configuration reloaded")

    def request_stop(self, reason: str = "request") -> None:
        if not self.stopping.is_set():
            log.info("stopping (%s): finishing in-flight work", reason)
            self.stopping.set()

    async def _start(self) -> None:
        settings = self.settings
        pool_size = 4 + 2 * len(settings.target_list)
        self.pool = await connect_pool(
            self.database_url, wait_seconds=STARTUP_DATABASE_WAIT_SECONDS, max_size=pool_size
        )
        async with self.pool.acquire() as connection:
            applied = await apply_migrations(connection)
            if applied:
                log.info("applied %d migration(s)", len(applied))
            self.instance_id = await connection.fetchval(
                queries.REGISTER_INSTANCE,
                socket.gethostname(),
                os.getpid(),
                __version__,
                str(settings.watch_path),
            )
        log.info("cloudwatcher %s started as instance %s", __version__, self.instance_id)
        released = await release_claims_of_dead_instances(self.pool, self.instance_id)
        if released:
            log.info("took back %d upload claim(s) left by instances whose heartbeat is stale", released)
        ledger = Ledger(self.pool, str(settings.watch_path))
        self.ledger = ledger

        self.ingestor = Ingestor(
            self.pool,
            domain.IngestContext(
                settings.watch_path,
                self.instance_id,
                settings.max_request_bytes,
                domain.DeviceBinding(settings.device_binding),
            ),
            self.health,
        )
        self.on_recorded_hooks.append(self.ingestor.submit_versions)
        self.attachment_linker = AttachmentLinker(self.pool, self.health)
        self.on_recorded_hooks.append(self.attachment_linker.offer)

        def device_activity(seen: dict[str, datetime]) -> InTransaction:
            return lambda connection: domain.note_device_activity(connection, seen, settings.device_idle_seconds)

        self.targets = TargetSet(
            settings=settings,
            ledger=ledger,
            health=self.health,
            instance_id=self.instance_id,
            on_changed_file=lambda path: self.watcher.recheck(path),
            on_result=self._upload_finished,
            spawn=self._spawn,
        )
        self.recorder = Recorder(
            ledger,
            target_specs(settings.target_list),
            self.health,
            self._on_recorded,
            device_activity,
            handoff=self.targets,
            instance_id=self.instance_id,
        )
        self.watcher = FolderWatcher(
            watch_root=settings.watch_path,
            settle_seconds=settings.settle_seconds,
            poll=should_poll(settings.watch_mode, settings.watch_path),
            poll_interval_seconds=settings.poll_interval_seconds,
            sink=self.recorder.offer,
        )
        self.targets.start(settings.target_list)
        self._spawn(self.recorder.run(), "recorder")
        self._spawn(self.attachment_linker.run(), "attachment-linker")
        self._spawn(self.watcher.settle_loop(), "settler")
        self._spawn(self.watcher.watch(self.stopping), "watcher")
        self._spawn(self._supervise(), "supervisor")
        self.notifier = SystemdNotifier(unset_environment=True)
        self.jobs = DaemonJobs(
            settings=settings,
            pool=self.pool,
            health=self.health,
            ledger=ledger,
            instance_id=self.instance_id,
            wake=self._wake,
            full_scan=self.watcher.full_scan,
            notifier=self.notifier,
            database_url=self.database_url,
            backup_bin_dir=self.embedded.bin_dir if self.embedded is not None else None,
        )
        await self.jobs.startup_housekeeping()
        self.jobs.start()
        self.liveness = Liveness(
            self.database_url,
            watcher_running=lambda: self.watcher.running,
            stalled=StallDetector([self.recorder.progress, self.ingestor.progress]).stalled,
        )
        self.http = HttpServer(
            settings=settings, pool=self.pool, health=self.liveness.health, after_retry=lambda: self.targets.wake()
        )
        await self.http.start()
        self.watchdog = Watchdog(self.notifier, self.liveness.healthy)
        self.watchdog.start()
        self._spawn(self.watcher.full_scan(), "startup-scan")
        self._spawn(self._through_outages(self.ingestor.catch_up), "catch-up")
        self._spawn(self._through_outages(self.attachment_linker.catch_up), "attachment-catch-up")
        self.notifier.ready("watching; first reconcile scan started")
        self.health.on_recovered.append(self._after_outage)
        # Everything made so far lives as long as the daemon: keep it out of the collector's
        # full passes, which under a burst (tens of thousands of short-lived objects) otherwise
        # walked it all again and stalled every thread for tens of milliseconds at a time.
        gc.freeze()

    def _spawn(self, coroutine: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coroutine)
        task.set_name(name)
        task.add_done_callback(self._task_done)
        self._tasks.append(task)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled() or self.stopping.is_set():
            return
        error = task.exception()
        if error is not None:
            log.error("component %s failed: %r; stopping", task.get_name(), error, exc_info=error)
            self.exit_code = 1
            self.request_stop(f"{task.get_name()} failed")

    async def _through_outages(self, action: Callable[[], Awaitable[Any]]) -> None:
        """Run a one-shot database task until it completes, waiting out outages like every loop does.

        Without this, a connection that died under the start-up catch-up failed the task, and a
        failed task stops the daemon: a database restart at start-up became an exit 1.
        """
        await retry_on_outage(action, self.health)

    def _after_outage(self) -> None:
        """Once the database is back: catch up on unprocessed requests and rescan the tree."""
        if not self.stopping.is_set():
            self._spawn(self._through_outages(self.ingestor.catch_up), "catch-up")
            self._spawn(self.watcher.full_scan(), "rescan-after-outage")

    async def _supervise(self) -> None:
        """Exit 1 on a database outage longer than the bound, so that systemd restarts us."""
        while True:
            await asyncio.sleep(1.0)
            if self.health.outage_too_long:
                log.error(
                    "database unreachable for over %.0f s (%s); exiting",
                    self.health.max_outage_seconds,
                    self.health.last_error,
                )
                self.exit_code = 1
                self.request_stop("database outage")
                return

    async def _shutdown(self) -> None:
        self.stopping.set()
        if self.watchdog is not None:
            await self.watchdog.stop()  # STOPPING=1, then no more pings
        if self.http is not None:
            await self.http.stop()
        if self.liveness is not None:
            self.liveness.close()
        if hasattr(self, "jobs"):
            self.jobs.shutdown()
        if hasattr(self, "targets"):
            await self.targets.stop_all()
        if hasattr(self, "ingestor"):
            await self.ingestor.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if hasattr(self, "targets"):
            await self.targets.close()
        if self.pool is not None:
            with contextlib.suppress(*CONNECTION_ERRORS, asyncpg.PostgresError):
                await SKIPS.save(self.pool)  # the last few seconds of skipped-file counts
            if self.instance_id is not None:
                with contextlib.suppress(*CONNECTION_ERRORS, asyncpg.PostgresError):
                    await self.pool.execute(queries.RELEASE_INSTANCE_CLAIMS, self.instance_id)
                    await self.pool.execute(queries.STOP_INSTANCE, self.instance_id)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.pool.close(), timeout=5)
        log.info("stopped")

    # ------------------------------------------------------------------ reactions
    def _on_recorded(self, versions: list[FileVersion]) -> None:
        # The uploaders heard from the recorder already (TargetSet.take: claimed rows, wake-ups).
        for hook in self.on_recorded_hooks:
            hook(versions)

    @staticmethod
    def _upload_finished(
        target: str, provider: str
    ) -> Callable[[ClaimedRow, UploadResult | None, str | None, float], None]:
        """Count each finished attempt in the metrics (drop-to-synced from when the daemon noticed the file)."""

        def record(row: ClaimedRow, result: UploadResult | None, reason: str | None, seconds: float) -> None:
            if result is not None:
                noticed = None if row.noticed_at is None else max(0.0, time.time() - row.noticed_at)
                metrics.record_upload(target, provider, "synced", row.size, seconds, drop_to_synced_seconds=noticed)
            else:
                metrics.record_upload(target, provider, "failed", row.size, seconds, reason=reason)

        return record

    def _wake(self, targets: set[str]) -> None:
        self.targets.wake(targets)


def run_daemon(
    settings: Settings, database_url: str | None, reload_settings: Callable[[], Settings] | None = None
) -> int:
    """Run until SIGTERM/SIGINT (SIGHUP reloads the targets); return the process exit code."""
    server = None
    if database_url is None:
        server = embedded_server(settings)
        database_url = server.ensure_running()
    try:
        # uvloop (libuv, by asyncpg's authors): under a burst the event loop turns over thousands
        # of callbacks a second (worker-thread results, database replies), and the standard
        # loop's own Python code was a fifth of the daemon's main-thread time.
        return uvloop.run(Daemon(settings, database_url, server, reload_settings).run())
    finally:
        if server is not None and server.started_here:
            server.stop()
