"""Is the daemon alive and useful? The one check behind ``/healthz`` and the systemd watchdog.

Alive means: the watcher runs, the database answers ``SELECT 1``, and no stage of the pipeline
is stalled (:mod:`cloudwatcher.daemon.ops.stall`). The two readers differ in one point only: a
database outage fails ``/healthz`` (a load balancer should look elsewhere) but keeps the
watchdog fed, because the daemon rides an outage out and exits 1 by itself once it has lasted
too long; withholding pings would have systemd kill it after ``WatchdogSec=`` instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg

from cloudwatcher.daemon.ops.stall import Stall
from cloudwatcher.schema import queries

__all__ = ["Liveness"]

PROBE_TIMEOUT_SECONDS = 2.0


class Liveness:
    """The health check, with a database connection of its own (see :meth:`_database_unreachable`)."""

    def __init__(
        self,
        database_url: str,
        *,
        watcher_running: Callable[[], bool],
        stalled: Callable[[], Stall | None] = lambda: None,
    ) -> None:
        self.database_url = database_url
        self.watcher_running = watcher_running
        self.stalled = stalled
        self._probe: asyncpg.Connection | None = None
        self._probe_lock = asyncio.Lock()

    async def health(self) -> tuple[bool, str]:
        """``/healthz``: the watcher runs, the database answers, and no stage is stalled."""
        problem = await self._problem(outage_counts=True)
        return not problem, problem

    async def healthy(self) -> bool:
        """The watchdog's check: like :meth:`health`, except that a database outage alone keeps
        the pings going (see the module docstring)."""
        return not await self._problem(outage_counts=False)

    def close(self) -> None:
        """Drop the probe connection (the daemon is stopping)."""
        if self._probe is not None:
            self._probe.terminate()
            self._probe = None

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
                async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
                    if self._probe is None or self._probe.is_closed():
                        self._probe = await asyncpg.connect(self.database_url)
                    await self._probe.fetchval(queries.PING)
            except Exception as exc:
                self.close()
                return type(exc).__name__
        return ""
