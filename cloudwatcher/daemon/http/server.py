"""The daemon's HTTP server on ``http_bind``: its routes wired to the daemon, started and stopped.

:mod:`cloudwatcher.daemon.http.app` builds an application from plain callables so that it can
be tested without a daemon; this module supplies those callables from the running daemon (the
status snapshot, the health check, the retry action) and adds the dashboard. It is the
dashboard's :class:`~cloudwatcher.daemon.http.dashboard.DashboardSource`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from uuid import UUID

import asyncpg
from aiohttp import web

from cloudwatcher.config import Settings
from cloudwatcher.daemon.http.app import build_http_app, is_loopback_bind, start_http_server
from cloudwatcher.daemon.http.dashboard import add_dashboard_routes
from cloudwatcher.daemon.ledger.store import retry_failed
from cloudwatcher.daemon.ops.status import StatusSnapshot, collect_status

log = logging.getLogger(__name__)

__all__ = ["HttpServer"]


class HttpServer:
    """``GET /status``, ``/healthz``, ``/metrics``, ``POST /api/retry`` and the dashboard at ``/``.

    ``health`` is the daemon's liveness check; ``after_retry`` runs once failed rows were
    re-queued (the daemon wakes its uploaders). :meth:`start` does nothing when ``http_bind``
    is empty.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        pool: asyncpg.Pool,
        health: Callable[[], Awaitable[tuple[bool, str]]],
        after_retry: Callable[[], None],
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.health = health
        self.after_retry = after_retry
        self.runner: web.AppRunner | None = None

    async def status(self) -> StatusSnapshot:
        return await collect_status(self.pool, self.settings)

    async def retry(self, ref_ids: list[str] | None) -> int:
        count = await retry_failed(self.pool, None if ref_ids is None else [UUID(value) for value in ref_ids])
        self.after_retry()
        return count

    async def start(self) -> None:
        bind = self.settings.http_bind
        if not bind:
            return
        app = build_http_app(
            status=self.status,
            health=self.health,
            retry=self.retry,
            token=self.settings.api_token(),
            require_token_for_reads=not is_loopback_bind(bind),
        )
        add_dashboard_routes(app, self)
        self.runner = await start_http_server(bind, app)
        log.info("status endpoint on http://%s/ (status, healthz, metrics)", bind)

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
