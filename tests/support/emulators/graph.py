"""A strict Microsoft Graph + Azure AD token emulator on 127.0.0.1, over HTTPS.

Why strict: an emulator that accepts what the real service refuses proves nothing, so every
rule of ``docs/providers.md`` (Microsoft Graph) is enforced with the real error
shape: bearer tokens on every Graph call, none on the pre-authenticated ``uploadUrl``,
fragments in order, multiples of 320 KiB, one declared total, 416 on a wrong start. The token
endpoint's client-credentials grant takes the client secret or a certificate's client assertion,
checked as :mod:`tests.support.emulators.graph_assertion` describes against :attr:`GraphEmulator.certificate`.

The server is aiohttp in its own event loop on a background thread, so sync and async tests
share it. TLS uses a ``trustme`` CA made at start-up; :attr:`GraphEmulator.ca_pem` is the file
a target's ``ca_bundle`` points at. Graph answers on ``127.0.0.1`` and upload URLs on
``localhost`` (the same server): as with the real service, the upload host differs from the
API host, so an SDK that limits bearer tokens to Graph hosts sends none there.

Faults are injected through small methods (:meth:`fail_next`, :meth:`drop_next_fragment`,
:meth:`expire_sessions`, :meth:`report_wrong_hash`, :meth:`revoke_tokens`,
:meth:`rewrite_on_upload`); every request is
appended to :attr:`log`.
"""

from __future__ import annotations

import asyncio
import secrets
import ssl
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import unquote

import trustme
from aiohttp import web

from tests.support.emulators.graph_assertion import AppCertificate, verify_client_assertion
from tests.support.emulators.graph_routes import DROPPED, GraphRoutes
from tests.support.emulators.graph_store import Drive, GraphError, UploadSession

Where = Literal["graph", "upload", "any"]


@dataclass(frozen=True)
class LoggedRequest:
    """One request as the emulator saw it (tests read these to prove what went over the wire)."""

    method: str
    host: str
    path: str  # percent-decoded
    status: int  # 0 when the emulator dropped the connection
    at: float
    authorization: bool
    content_range: str | None


@dataclass
class _Fault:
    status: int
    code: str
    remaining: int
    where: Where
    retry_after: int | None = None
    skip: int = 0


class GraphEmulator:
    """The emulator; use as a context manager or call :meth:`start` / :meth:`stop`."""

    tenant_id = "72f988bf-86f1-41af-91ab-2d7cd011db47"
    client_id = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    drive_id = "b!cloudwatcher-test-drive"
    site_id = "contoso.sharepoint.com,8bfb5166-7dd4-4b2a-9f1c-03b1a8e4a0c1,a6c7b3b4-4f61-4c37-9d52-ffb1e3b1ad3e"

    def __init__(self, workdir: Path, *, token_lifetime: int = 3599, closed_ranges: bool = False) -> None:
        self.client_secret = "emulator-secret-" + secrets.token_hex(8)
        #: The certificate registered on the app (certificate sign-in); its PEM holds the private key.
        self.certificate = AppCertificate.generate()
        self.certificate_pem = self.certificate.write(workdir / "graph-app-certificate.pem")
        #: Claims of every client assertion accepted, in order.
        self.assertions: list[dict[str, Any]] = []
        self.token_lifetime = token_lifetime
        #: Answer intermediate fragments with SharePoint's "N-M" ranges instead of "N-".
        self.closed_ranges = closed_ranges
        #: Whether upload answers carry ``file.hashes`` (False: as SharePoint before it hashed).
        self.report_hashes = True
        self.drive = Drive(self.drive_id)
        self.sessions: dict[str, UploadSession] = {}
        self.tokens: dict[str, float] = {}  # access token → expiry (epoch seconds)
        self.log: list[LoggedRequest] = []
        self.token_requests = 0
        self._faults: list[_Fault] = []
        self._drop_fragments: list[bool] = []  # one entry per planned drop: commit first?
        self._wrong_hashes = 0
        #: File extensions (lower case, with the dot) the library rewrites on upload, as
        #: SharePoint does with Office documents, PDF and HTML: see :meth:`rewrite_on_upload`.
        self.rewrite_suffixes: set[str] = set()
        self.rewrite_in_place = False
        self.rewrites = 0
        self._lock = threading.Lock()
        self._ca = trustme.CA()
        self.ca_pem = workdir / "graph-emulator-ca.pem"
        self._ca.cert_pem.write_to_path(str(self.ca_pem))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ----------------------------------------------------------------------------- lifecycle

    @property
    def authority_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def graph_url(self) -> str:
        return f"https://127.0.0.1:{self.port}/v1.0"

    @property
    def upload_base(self) -> str:
        return f"https://localhost:{self.port}/upload"

    @property
    def download_base(self) -> str:
        return f"https://localhost:{self.port}/download"

    def start(self) -> GraphEmulator:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._serve())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="graph-emulator", daemon=True)
        self._thread.start()
        if not ready.wait(30):
            raise RuntimeError("graph emulator did not start")
        return self

    async def _serve(self) -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        app = web.Application(client_max_size=128 * 1024 * 1024, middlewares=[self._middleware])
        app.router.add_route("*", "/{tail:.*}", GraphRoutes(self).dispatch)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()
        self._loop = None

    def __enter__(self) -> GraphEmulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ----------------------------------------------------------------------------- fault API

    def fail_next(
        self,
        status: int,
        code: str,
        *,
        count: int = 1,
        retry_after: int | None = None,
        where: Where = "graph",
        skip: int = 0,
    ) -> None:
        """The next ``count`` matching requests (token requests never match) get this error.

        ``skip`` lets that many matching requests through first (e.g. fail the third fragment).
        """
        with self._lock:
            self._faults.append(_Fault(status, code, count, where, retry_after, skip))

    def drop_next_fragment(self, *, after_commit: bool = False) -> None:
        """Close the connection during the next fragment PUT, with no answer.

        ``after_commit`` keeps the fragment (the answer is what got lost), otherwise the
        fragment is discarded half-read; either way the client must ask the session (GET).
        """
        with self._lock:
            self._drop_fragments.append(after_commit)

    def expire_sessions(self) -> None:
        """Every open upload session expires now (GET/PUT answer 404 itemNotFound)."""
        with self._lock:
            for session in self.sessions.values():
                session.expires = time.time() - 1

    def report_wrong_hash(self, count: int = 1) -> None:
        """The next ``count`` completed uploads report a quickXorHash that does not match."""
        with self._lock:
            self._wrong_hashes += count

    def rewrite_on_upload(self, *suffixes: str, keep_size: bool = False) -> None:
        """Uploads of these file types are stored rewritten: different bytes (so a different size
        and quickXorHash) than were sent, and different again on every upload. ``keep_size``
        rewrites them in place, as a library touching an image's metadata field may."""
        with self._lock:
            self.rewrite_suffixes.update(suffix.lower() for suffix in suffixes)
            self.rewrite_in_place = keep_size

    def revoke_tokens(self) -> None:
        """Every issued access token stops working (401 InvalidAuthenticationToken)."""
        with self._lock:
            self.tokens.clear()

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._drop_fragments.clear()
            self._wrong_hashes = 0

    # ----------------------------------------------------------------------------- inspection

    def file_bytes(self, path: str) -> bytes | None:
        """The content stored at ``path`` (from the drive root), or None."""
        try:
            item = self.drive.walk(self.drive.root, [part for part in path.split("/") if part])
        except GraphError:
            return None
        return None if item.is_folder else item.content

    def requests(self, method: str | None = None, host: str | None = None) -> list[LoggedRequest]:
        return [
            entry
            for entry in list(self.log)
            if (method is None or entry.method == method) and (host is None or entry.host == host)
        ]

    # ----------------------------------------------------------------------------- internals used by routes

    def accept_assertion(self, assertion: str, token_url: str) -> None:
        """Check a client assertion against the registered certificate; raises ``AssertionRefused``."""
        claims = verify_client_assertion(
            assertion, registered=[self.certificate], client_id=self.client_id, token_url=token_url
        )
        with self._lock:
            self.assertions.append(claims)

    def issue_token(self) -> tuple[str, int]:
        token = "eyJ0eXAiOiJKV1QifQ." + secrets.token_urlsafe(32)
        with self._lock:
            self.tokens[token] = time.time() + self.token_lifetime
            self.token_requests += 1
        return token, self.token_lifetime

    def token_valid(self, token: str) -> bool:
        with self._lock:
            expiry = self.tokens.get(token)
        return expiry is not None and expiry > time.time()

    def take_fault(self, where: Literal["graph", "upload"]) -> GraphError | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and fault.where in (where, "any"):
                    if fault.skip > 0:
                        fault.skip -= 1
                        return None
                    fault.remaining -= 1
                    headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
                    message = f"Injected fault: {fault.code}"
                    return GraphError(fault.status, fault.code, message, headers=headers)
        return None

    def take_drop(self) -> bool | None:
        with self._lock:
            return self._drop_fragments.pop(0) if self._drop_fragments else None

    def take_wrong_hash(self) -> bool:
        with self._lock:
            if self._wrong_hashes > 0:
                self._wrong_hashes -= 1
                return True
        return False

    def stored_content(self, name: str, content: bytes) -> bytes:
        """What the library keeps of an upload named ``name`` (rewritten when its type is chosen)."""
        suffix = name[name.rfind(".") :].lower() if "." in name else ""
        with self._lock:
            if suffix not in self.rewrite_suffixes:
                return content
            self.rewrites += 1
            in_place = self.rewrite_in_place
        stamp = f"\n<!-- rewritten by the library: {uuid.uuid4()} -->\n".encode()
        if in_place:
            cut = max(0, len(content) - len(stamp))
            return content[:cut] + stamp[: len(content) - cut]
        return content + stamp

    def new_session(self, parent_id: str, name: str) -> UploadSession:
        session = UploadSession(
            id=uuid.uuid4().hex,
            drive_id=self.drive.id,
            parent_id=parent_id,
            name=name,
            expires=time.time() + 900,
        )
        self.sessions[session.id] = session
        return session

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        status = 0
        try:
            response = await handler(request)
            status = 0 if request.get(DROPPED) else response.status
            return response
        finally:
            self.log.append(
                LoggedRequest(
                    method=request.method,
                    host=request.host.rsplit(":", 1)[0],
                    path=unquote(request.rel_url.raw_path),
                    status=status,
                    at=time.time(),
                    authorization="Authorization" in request.headers,
                    content_range=request.headers.get("Content-Range"),
                )
            )
