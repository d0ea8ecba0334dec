"""The web dashboard at ``/`` (docs/operations.md, Status): a static page shell plus JSON endpoints.

The shell (``/`` and ``/static/*``) holds no data and no token, so it is public even when
reads need the token; the page's script asks for the token in a field labelled Token, keeps it
in ``sessionStorage`` at most, and sends it as a bearer header to the JSON endpoints below
and to ``POST /api/retry``. Those endpoints sit behind the app's guard, which requires the
token whenever ``http_token`` is set, on any bind address (envelopes and audit rows are not
for every local account). Every value is rendered by the script with ``textContent`` and the
shell is served with a strict Content-Security-Policy, so a file name a device chose
(``<script>...``) is only ever text. With no token configured (loopback only), the JSON
endpoints answer only requests that address the server by IP address or ``localhost`` (no
DNS rebinding onto the token-less loopback reads).

Endpoints (all ``GET``, JSON):

- ``/api/dashboard/overview``: targets with counts and a red/amber/green light, instances
- ``/api/dashboard/throughput``: uploads per minute and target over the last hour
- ``/api/dashboard/devices``
- ``/api/dashboard/files?device=&path=&status=&target=&limit=``, ``/api/dashboard/files/{ref_id}``
- ``/api/dashboard/failures``: failed rows grouped by target and error, with their ids
- ``/api/dashboard/requests?type=&status=&device=``, ``/api/dashboard/requests/{request_id}``
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any, Protocol

import asyncpg
from aiohttp import web

from cloudwatcher.config import Settings
from cloudwatcher.daemon.http.app import json_response, mark_public
from cloudwatcher.daemon.http.dashboard import details, queries
from cloudwatcher.daemon.ops.status import StatusSnapshot

__all__ = ["DashboardSource", "add_dashboard_routes"]


class DashboardSource(Protocol):
    """What the dashboard reads: the configuration, the daemon's pool and its status snapshot
    (the daemon's :class:`~cloudwatcher.daemon.http.server.HttpServer`, or a test's stand-in)."""

    settings: Settings
    pool: asyncpg.Pool

    async def status(self) -> StatusSnapshot: ...


_CONTENT_TYPES = {
    ".html": "text/html",
    ".css": "text/css",
    ".js": "text/javascript",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}

# The shell loads only its own script and style; no inline script could run even if some
# text ever reached the page as markup.
_SHELL_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

#: Parameterless pages aggregate over the ledger; every open tab polls them, so one answer
#: is shared for this long (well inside the 5 s in which pages must reflect changes).
SHARED_ANSWER_SECONDS = 1.5

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _load_assets() -> dict[str, tuple[bytes, str]]:
    """Every file of the package's ``web`` folder, read once: name → (bytes, content type)."""
    folder = resources.files("cloudwatcher.daemon.http").joinpath("web")
    assets: dict[str, tuple[bytes, str]] = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in _CONTENT_TYPES:
            assets[entry.name] = (entry.read_bytes(), _CONTENT_TYPES[suffix])
    return assets


def _param(request: web.Request, name: str) -> str | None:
    value = request.query.get(name, "").strip()
    return value[:500] or None


def _limit(request: web.Request, default: int, maximum: int) -> int:
    try:
        return max(1, min(maximum, int(request.query.get("limit", default))))
    except ValueError:
        return default


def _id(request: web.Request, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info[name])
    except ValueError:
        raise web.HTTPNotFound(reason=f"{name} is not a UUID") from None


def _shared(fetch: Callable[[], Awaitable[dict[str, Any]]]) -> Handler:
    """A handler answering ``fetch()``, computed at most once per SHARED_ANSWER_SECONDS."""
    cached: dict[str, Any] = {"at": -SHARED_ANSWER_SECONDS, "body": None}
    lock = asyncio.Lock()

    async def handler(request: web.Request) -> web.StreamResponse:
        async with lock:
            if time.monotonic() - cached["at"] >= SHARED_ANSWER_SECONDS:
                cached["body"] = await fetch()
                cached["at"] = time.monotonic()
            return json_response(cached["body"])

    return handler


def add_dashboard_routes(app: web.Application, source: DashboardSource) -> None:
    """Add the dashboard's shell, assets and JSON endpoints to the daemon's HTTP app."""
    assets = _load_assets()
    settings = source.settings

    async def shell(request: web.Request) -> web.Response:
        body, content_type = assets["index.html"]
        return web.Response(body=body, content_type=content_type, charset="utf-8", headers=_SHELL_HEADERS)

    async def asset(request: web.Request) -> web.Response:
        found = assets.get(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound(reason="no such asset")
        body, content_type = found
        charset = "utf-8" if content_type.startswith("text/") else None
        return web.Response(body=body, content_type=content_type, charset=charset, headers=_SHELL_HEADERS)

    async def overview_body() -> dict[str, Any]:
        status = await source.status()
        async with source.pool.acquire() as conn:
            return await queries.overview(conn, status)

    async def throughput_body() -> dict[str, Any]:
        async with source.pool.acquire() as conn:
            return await queries.throughput(conn, settings)

    async def devices_body() -> dict[str, Any]:
        async with source.pool.acquire() as conn:
            return await queries.devices(conn)

    overview = _shared(overview_body)
    throughput = _shared(throughput_body)
    devices = _shared(devices_body)

    async def files(request: web.Request) -> web.Response:
        try:
            async with source.pool.acquire() as conn:
                found = await queries.files(
                    conn,
                    device=_param(request, "device"),
                    path=_param(request, "path"),
                    status=_param(request, "status"),
                    target=_param(request, "target"),
                    limit=_limit(request, 200, 1000),
                )
        except ValueError as exc:
            return json_response({"error": str(exc)}, status=400)
        found["targets"] = [t.name for t in settings.target_list]
        return json_response(found)

    async def file_detail(request: web.Request) -> web.Response:
        async with source.pool.acquire() as conn:
            found = await details.file_detail(conn, _id(request, "ref_id"))
        if found is None:
            return json_response({"error": "no ledger row has this id"}, status=404)
        return json_response(found)

    async def failures(request: web.Request) -> web.Response:
        async with source.pool.acquire() as conn:
            return json_response(await queries.failures(conn))

    async def requests(request: web.Request) -> web.Response:
        try:
            async with source.pool.acquire() as conn:
                found = await queries.requests(
                    conn,
                    request_type=_param(request, "type"),
                    status=_param(request, "status"),
                    device=_param(request, "device"),
                    limit=_limit(request, 100, 1000),
                )
        except ValueError as exc:
            return json_response({"error": str(exc)}, status=400)
        return json_response(found)

    async def request_detail(request: web.Request) -> web.Response:
        async with source.pool.acquire() as conn:
            found = await details.request_detail(conn, settings, _id(request, "request_id"))
        if found is None:
            return json_response({"error": "no request has this id"}, status=404)
        return json_response(found)

    mark_public(app, "/", "/static/*")
    app.router.add_get("/", shell)
    app.router.add_get("/static/{name}", asset)
    routes: dict[str, Handler] = {
        "overview": overview,
        "throughput": throughput,
        "devices": devices,
        "files": files,
        "files/{ref_id}": file_detail,
        "failures": failures,
        "requests": requests,
        "requests/{request_id}": request_detail,
    }
    for path, handler in routes.items():
        app.router.add_get(f"/api/dashboard/{path}", handler)
