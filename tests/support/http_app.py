"""The daemon's HTTP app started on its own, around stand-ins for the daemon's callables.

The app tests and the dashboard tests both need the app listening on a real port; one function
builds it the way the daemon does, so neither copies the wiring.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol

from aiohttp import web

from cloudwatcher.daemon.http.app import build_http_app, start_http_server
from cloudwatcher.daemon.http.dashboard import add_dashboard_routes
from cloudwatcher.daemon.ops.status import StatusSnapshot


class Monitored(Protocol):
    """What the app asks of the daemon."""

    def status(self) -> Awaitable[StatusSnapshot]: ...

    def health(self) -> Awaitable[tuple[bool, str]]: ...

    def retry(self, ref_ids: list[str] | None) -> Awaitable[int]: ...


async def start_app(
    daemon: Monitored,
    *,
    token: str | None,
    reads_need_token: bool,
    bind: str = "127.0.0.1:0",
    dashboard: bool = False,
) -> web.AppRunner:
    """The app listening on ``bind``; with ``dashboard``, the dashboard's routes as well."""
    app = build_http_app(
        status=daemon.status,
        health=daemon.health,
        retry=daemon.retry,
        token=token,
        require_token_for_reads=reads_need_token,
    )
    if dashboard:
        add_dashboard_routes(app, daemon)  # type: ignore[arg-type]  # the dashboard reads only these three
    return await start_http_server(bind, app)
