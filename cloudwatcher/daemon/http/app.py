"""The daemon's HTTP surface on ``http_bind`` (docs/operations.md, docs/security.md): status, health,
Prometheus metrics and the retry action.

The application is built from plain callables, so it knows nothing about the ledger and can
be tested without a daemon; the web dashboard adds its routes at ``/`` to the same app and can
reuse :func:`is_authorized`.

Security rules, and why:

- With ``http_token`` set, every endpoint needs ``Authorization: Bearer <http_token>``
  (compared in constant time) on any bind address, loopback included: any local account can
  reach a loopback port, and the dashboard's data holds device envelopes and audit rows.
  The exceptions hold no such data: ``/healthz`` and ``/metrics`` (probes and Prometheus
  scrapes carry no token) and the dashboard's static shell (:func:`mark_public`).
- Without a token, actions (any method but ``GET``/``HEAD``, such as ``POST /api/retry``)
  are refused with 401: no credentials could be right. Reads are refused too when
  ``require_token_for_reads`` (the daemon sets it when ``http_bind`` is not loopback), and
  otherwise answer only requests that address the server by IP address or ``localhost``
  (see :func:`addressed_by_ip_or_localhost`).
- ``POST`` bodies must be ``application/json``. A browser cannot send that cross-origin
  without a CORS preflight, which this server never grants, so a web page a user visits
  cannot trigger actions (and the bearer token is never sent automatically anyway).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from cloudwatcher.config.bind import BindError, is_loopback_bind, parse_bind
from cloudwatcher.daemon.ops import metrics
from cloudwatcher.daemon.ops.status import StatusSnapshot
from cloudwatcher.jsonvalue import json_default

log = logging.getLogger(__name__)

__all__ = [
    "MAX_REF_IDS",
    "BindError",
    "bound_port",
    "build_http_app",
    "is_authorized",
    "is_loopback_bind",
    "mark_public",
    "parse_bind",
    "start_http_server",
]

#: A retry request naming more ref ids than this is refused (use ``{"all": true}``).
MAX_REF_IDS = 10_000

StatusCallback = Callable[[], Awaitable[StatusSnapshot]]
HealthCallback = Callable[[], Awaitable[tuple[bool, str]]]
RetryCallback = Callable[[list[str] | None], Awaitable[int]]


@dataclass
class _Auth:
    token: bytes | None
    require_token_for_reads: bool
    # Exact paths, or prefixes written "/static/*", served without a token even when one is set.
    public: set[str] = field(default_factory=lambda: {"/healthz", "/metrics"})

    def is_public(self, path: str) -> bool:
        return path in self.public or any(p.endswith("*") and path.startswith(p[:-1]) for p in self.public)


_AUTH_KEY = web.AppKey("cloudwatcher_auth", _Auth)


def json_response(body: object, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON answer that is never cached (status data changes every second)."""
    return web.Response(
        text=json.dumps(body, default=json_default),
        status=status,
        content_type="application/json",
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def _error(status: int, message: str, *, headers: dict[str, str] | None = None) -> web.Response:
    return json_response({"error": message}, status=status, headers=headers)


def _bearer(request: web.Request) -> bytes | None:
    header = request.headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    return credentials.strip().encode()


def is_authorized(request: web.Request) -> bool:
    """True when the request carries the configured bearer token (constant-time compare)."""
    auth = request.app[_AUTH_KEY]
    presented = _bearer(request)
    if auth.token is None or presented is None:
        return False
    return hmac.compare_digest(presented, auth.token)


_UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Bearer realm="cloudwatcher"'}
_NO_TOKEN_MESSAGE = (
    "no http_token is configured on this daemon; set http_token (or http_token_file) "
    "in the configuration to allow this over HTTP"
)


_READ_METHODS = frozenset({"GET", "HEAD"})


@web.middleware
async def _guard(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """The token rules of the module docstring; JSON errors instead of aiohttp's HTML pages."""
    auth = request.app[_AUTH_KEY]
    if not auth.is_public(request.path):
        if auth.token is not None:
            if not is_authorized(request):
                return _error(401, "missing or wrong bearer token", headers=_UNAUTHORIZED_HEADERS)
        elif auth.require_token_for_reads or request.method not in _READ_METHODS:
            return _error(401, _NO_TOKEN_MESSAGE, headers=_UNAUTHORIZED_HEADERS)
        elif not addressed_by_ip_or_localhost(request):
            return _error(403, "address this daemon by IP address or localhost")
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error(exc.status, exc.reason)
    except Exception:
        log.exception("HTTP %s %s failed", request.method, request.path)
        return _error(500, "internal error; see the daemon's log")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


def addressed_by_ip_or_localhost(request: web.Request) -> bool:
    """True when the client addressed this server by an IP address or ``localhost``.

    On loopback the data needs no token, so a web page whose own domain name was re-pointed at
    127.0.0.1 (DNS rebinding) could read it as same-origin. Such a request names that domain in
    its Host header; admins reach the daemon by address, ``localhost`` or an SSH tunnel to them.
    """
    host = (request.host or "").strip().lower()
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host
    else:
        host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def mark_public(app: web.Application, *paths: str) -> None:
    """Serve ``paths`` without a token even when one is set (before the server starts).

    For the dashboard's page shell and static assets (``"/"``, ``"/static/*"``: a trailing
    ``*`` marks a prefix), which hold no data: a browser cannot send a bearer header when it
    navigates, so the page itself must load; the data it fetches and actions need the token.
    """
    app[_AUTH_KEY].public.update(paths)


def build_http_app(
    *,
    status: StatusCallback,
    health: HealthCallback,
    retry: RetryCallback,
    token: str | None,
    require_token_for_reads: bool,
) -> web.Application:
    """The aiohttp application: ``GET /status``, ``GET /healthz``, ``GET /metrics``, ``POST /api/retry``.

    ``retry(None)`` means "every failed row"; ``retry([ref_id, ...])`` those rows (canonical
    UUID strings). It returns how many rows it re-queued. ``/`` is left free for the dashboard.
    """
    app = web.Application(middlewares=[_guard], client_max_size=1024 * 1024)
    app[_AUTH_KEY] = _Auth(token=token.encode() if token else None, require_token_for_reads=require_token_for_reads)

    async def get_status(request: web.Request) -> web.Response:
        return json_response(await status())

    async def get_healthz(request: web.Request) -> web.Response:
        try:
            ok, reason = await health()
        except Exception as exc:
            # The reason is served without a token: name the failure, keep its details in the log.
            log.warning("health check raised: %r", exc)
            ok, reason = False, f"health check failed ({type(exc).__name__}); see the daemon's log"
        if ok:
            return json_response({"ok": True})
        return json_response({"ok": False, "reason": reason or "unhealthy"}, status=503)

    async def get_metrics(request: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), headers={"Content-Type": metrics.CONTENT_TYPE})

    async def post_retry(request: web.Request) -> web.Response:
        # The guard has checked the token: actions never pass it without one.
        if request.content_type != "application/json":
            return _error(415, "the body must be JSON (Content-Type: application/json)")
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return _error(400, "the body is not valid JSON")
        ref_ids, problem = _parse_retry_body(body)
        if problem:
            return _error(400, problem)
        requeued = await retry(ref_ids)
        log.info(
            "re-queued %d upload(s) on request from %s (%s)",
            requeued,
            request.remote,
            "all" if ref_ids is None else f"{len(ref_ids)} ref id(s)",
        )
        return json_response({"requeued": requeued})

    app.router.add_get("/status", get_status)
    app.router.add_get("/healthz", get_healthz)
    app.router.add_get("/metrics", get_metrics)
    app.router.add_post("/api/retry", post_retry)
    return app


def _parse_retry_body(body: object) -> tuple[list[str] | None, str]:
    """``{"all": true}`` → (None, ""); ``{"ref_ids": [uuid, ...]}`` → (ids, ""); else (None, problem)."""
    usage = 'expected {"ref_ids": ["<uuid>", ...]} or {"all": true}'
    if not isinstance(body, dict):
        return None, usage
    unknown = set(body) - {"ref_ids", "all"}
    if unknown:
        return None, f"unknown key(s) {', '.join(sorted(unknown))}; {usage}"
    if "all" in body and "ref_ids" in body:
        return None, f"give either ref_ids or all, not both; {usage}"
    if "all" in body:
        if body["all"] is not True:
            return None, usage
        return None, ""
    ref_ids = body.get("ref_ids")
    if not isinstance(ref_ids, list) or not ref_ids:
        return None, usage
    if len(ref_ids) > MAX_REF_IDS:
        return None, f'at most {MAX_REF_IDS} ref_ids per request; use {{"all": true}}'
    canonical: list[str] = []
    for ref_id in ref_ids:
        try:
            if not isinstance(ref_id, str):
                raise ValueError(ref_id)
            canonical.append(str(uuid.UUID(ref_id)))
        except ValueError:
            return None, f"ref_ids must be UUID strings; {str(ref_id)[:60]!r} is not"
    return list(dict.fromkeys(canonical)), ""


async def start_http_server(bind: str, app: web.Application) -> web.AppRunner:
    """Serve ``app`` on ``bind`` (``HOST:PORT``; port 0 picks a free one, see :func:`bound_port`).

    Stop it with ``await runner.cleanup()``. Access logging is off: Prometheus scrapes would
    flood the journal; actions log themselves.
    """
    host, port = parse_bind(bind)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, shutdown_timeout=5.0)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    log.info("HTTP status endpoint on %s", ", ".join(_format_address(a) for a in runner.addresses))
    return runner


def bound_port(runner: web.AppRunner) -> int:
    """The TCP port the server actually listens on (useful after binding port 0)."""
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    raise RuntimeError("the HTTP server is not listening on a TCP port")


def _format_address(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host = str(address[0])
        return f"[{host}]:{address[1]}" if ":" in host else f"{host}:{address[1]}"
    return str(address)
