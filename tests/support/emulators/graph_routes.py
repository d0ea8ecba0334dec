"""Request handling of the Graph emulator: token endpoint, Graph API, upload URLs.

Paths are matched on the raw (still percent-encoded) path, because Graph's path addressing
(``root:/a/b:/content``) uses ``:`` as syntax while names arrive percent-encoded.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from aiohttp import web

from tests.support.emulators.graph_assertion import JWT_BEARER_ASSERTION, AssertionRefused
from tests.support.emulators.graph_store import (
    SIMPLE_UPLOAD_LIMIT,
    GraphError,
    Item,
    UploadSession,
    check_fragment,
    iso,
    validate_name,
)

if TYPE_CHECKING:
    from tests.support.emulators.graph import GraphEmulator

_TOKEN = re.compile(r"^/(?P<tenant>[^/]+)/oauth2/v2\.0/token$")
_SITE_DRIVE = re.compile(r"^/v1\.0/sites/(?P<site>[^/]+)/drive$")
_DRIVE = re.compile(r"^/v1\.0/drives/(?P<drive>[^/]+)$")
_ITEM = re.compile(
    r"^/v1\.0/drives/(?P<drive>[^/]+)/(?:root|items/(?P<item>[^/:]+))"
    r"(?::(?P<path>/[^:]*))?:?(?P<action>/children|/content|/createUploadSession)?$"
)
#: Set on a request whose connection the emulator closed on purpose (logged as status 0).
DROPPED = web.RequestKey("dropped", bool)
_DOWNLOAD = re.compile(r"^/download/(?P<token>[A-Za-z0-9_-]+)$")
_UPLOAD = re.compile(r"^/upload/(?P<session>[0-9a-f]+)$")


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers)


class GraphRoutes:
    """Maps requests onto the emulator's store; every refusal answers in Graph's error shape."""

    def __init__(self, emulator: GraphEmulator) -> None:
        self.emulator = emulator
        self.drive = emulator.drive
        self.downloads: dict[str, str] = {}  # pre-authenticated download ticket → item id

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.rel_url.raw_path
        try:
            if match := _TOKEN.match(path):
                return await self._token(request, match["tenant"])
            if match := _UPLOAD.match(path):
                return await self._upload(request, match["session"])
            if match := _DOWNLOAD.match(path):
                return self._download(request, match["token"])
            self._authenticate(request)
            if fault := self.emulator.take_fault("graph"):
                raise fault
            if match := _SITE_DRIVE.match(path):
                if unquote(match["site"]) != self.emulator.site_id or request.method != "GET":
                    raise GraphError(404, "itemNotFound", "Requested site could not be found")
                return _json(200, self._drive_json())
            if match := _DRIVE.match(path):
                self._check_drive(match["drive"])
                return _json(200, self._drive_json())
            if match := _ITEM.match(path):
                self._check_drive(match["drive"])
                return await self._item(request, match["item"], match["path"], match["action"])
            raise GraphError(400, "invalidRequest", f"Invalid request: unsupported path {path}")
        except GraphError as error:
            return _json(error.status, error.body(), error.headers)

    # ----------------------------------------------------------------------------- auth

    async def _token(self, request: web.Request, tenant: str) -> web.Response:
        if request.method != "POST":
            return _json(405, {"error": "invalid_request", "error_description": "POST only"})
        form = await request.post()
        if tenant != self.emulator.tenant_id:
            return _json(
                400,
                {
                    "error": "invalid_request",
                    "error_description": f"AADSTS90002: Tenant '{tenant}' not found.",
                },
            )
        if form.get("grant_type") != "client_credentials":
            return _json(400, {"error": "unsupported_grant_type", "error_description": "AADSTS70003"})
        if form.get("client_id") != self.emulator.client_id:
            return _json(
                400,
                {"error": "unauthorized_client", "error_description": "AADSTS700016: unknown application"},
            )
        if "client_assertion" in form or "client_assertion_type" in form:
            if form.get("client_assertion_type") != JWT_BEARER_ASSERTION or "client_secret" in form:
                return _json(400, {"error": "invalid_request", "error_description": "AADSTS50027: bad assertion type"})
            try:
                self.emulator.accept_assertion(
                    str(form.get("client_assertion", "")), f"{self.emulator.authority_url}/{tenant}/oauth2/v2.0/token"
                )
            except AssertionRefused as refused:
                return _json(401, {"error": "invalid_client", "error_description": str(refused)})
        elif form.get("client_secret") != self.emulator.client_secret:
            return _json(
                401,
                {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided.",
                },
            )
        if not str(form.get("scope", "")).endswith("/.default"):
            return _json(
                400,
                {"error": "invalid_scope", "error_description": "AADSTS1002012: scope must end in /.default"},
            )
        token, lifetime = self.emulator.issue_token()
        return _json(
            200,
            {
                "token_type": "Bearer",
                "expires_in": lifetime,
                "ext_expires_in": lifetime,
                "access_token": token,
            },
        )

    def _authenticate(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme != "Bearer" or not self.emulator.token_valid(token):
            raise GraphError(
                401,
                "InvalidAuthenticationToken",
                "Access token is empty." if not header else "Access token has expired or is not yet valid.",
            )

    # ----------------------------------------------------------------------------- drives and items

    def _check_drive(self, drive_id: str) -> None:
        if unquote(drive_id) != self.drive.id:
            raise GraphError(404, "itemNotFound", "The drive does not exist.")

    def _drive_json(self) -> dict[str, Any]:
        return {"id": self.drive.id, "driveType": "documentLibrary", "name": "Documents"}

    def _anchor(self, item_id: str | None) -> Item:
        return self.drive.root if item_id is None else self.drive.item(unquote(item_id))

    async def _item(
        self, request: web.Request, item_id: str | None, raw_path: str | None, action: str | None
    ) -> web.StreamResponse:
        anchor = self._anchor(item_id)
        segments = [unquote(part) for part in (raw_path or "").split("/") if part]
        method = request.method
        if action == "/content" and method == "PUT":
            return await self._simple_upload(request, anchor, segments)
        if action == "/createUploadSession" and method == "POST":
            return await self._create_session(request, anchor, segments)
        target = self.drive.walk(anchor, segments)
        if action is None and method == "GET":
            return _json(200, self.drive.item_json(target))
        if action is None and method == "DELETE":
            self.drive.delete(target)
            return web.Response(status=204)
        if action == "/content" and method == "GET":
            if target.is_folder:
                raise GraphError(400, "invalidRequest", "A folder has no content.")
            # As Graph does: a 302 to a short-lived, pre-authenticated URL on the SharePoint host.
            ticket = secrets.token_urlsafe(16)
            self.downloads[ticket] = target.id
            return web.Response(status=302, headers={"Location": f"{self.emulator.download_base}/{ticket}"})
        if action == "/children" and method == "GET":
            return _json(200, {"value": [self.drive.item_json(child) for child in self.drive.children(target)]})
        if action == "/children" and method == "POST":
            return await self._create_folder(request, target)
        raise GraphError(405, "invalidRequest", f"{method} is not supported here")

    async def _json_body(self, request: web.Request) -> dict[str, Any]:
        if not request.content_type.startswith("application/json"):
            raise GraphError(400, "invalidRequest", "A JSON body is required.")
        try:
            body = json.loads(await request.read())
        except ValueError as exc:
            raise GraphError(400, "invalidRequest", f"Malformed JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise GraphError(400, "invalidRequest", "The body must be a JSON object.")
        return body

    async def _create_folder(self, request: web.Request, parent: Item) -> web.Response:
        body = await self._json_body(request)
        if not parent.is_folder:
            raise GraphError(400, "invalidRequest", "The parent is not a folder.")
        if not isinstance(body.get("name"), str) or not isinstance(body.get("folder"), dict):
            raise GraphError(400, "invalidRequest", "A folder needs 'name' and 'folder': {}.")
        conflict = body.get("@microsoft.graph.conflictBehavior", "fail")
        if conflict not in ("fail", "replace", "rename"):
            raise GraphError(400, "invalidRequest", f"Unknown conflictBehavior {conflict!r}")
        folder = self.drive.create_folder(parent, body["name"], conflict)
        return _json(201, self.drive.item_json(folder))

    def _split_parent(self, anchor: Item, segments: list[str], *, implicit_parents: bool) -> tuple[Item, str]:
        if not segments:
            raise GraphError(400, "invalidRequest", "A file name is required.")
        *folders, name = segments
        if implicit_parents:
            return self.drive.ensure_folders(anchor, folders), name
        return self.drive.walk(anchor, folders), name

    async def _simple_upload(self, request: web.Request, anchor: Item, segments: list[str]) -> web.Response:
        if request.content_length is None:
            raise GraphError(411, "invalidRequest", "Content-Length is required.")
        if request.content_length > SIMPLE_UPLOAD_LIMIT:
            raise GraphError(413, "requestTooLarge", "Use an upload session for files over 250 MB.")
        parent, name = self._split_parent(anchor, segments, implicit_parents=True)
        content = await request.read()
        if len(content) != request.content_length:
            raise GraphError(400, "invalidRequest", "The body is shorter than Content-Length.")
        item, created = self.drive.put_file(parent, name, self.emulator.stored_content(name, content))
        return _json(201 if created else 200, self._uploaded_json(item))

    async def _create_session(self, request: web.Request, anchor: Item, segments: list[str]) -> web.Response:
        body = await self._json_body(request) if request.can_read_body else {}
        item = body.get("item", {}) if isinstance(body.get("item", {}), dict) else {}
        if item.get("@microsoft.graph.conflictBehavior", "replace") not in ("fail", "replace", "rename"):
            raise GraphError(400, "invalidRequest", "Unknown conflictBehavior")
        parent, name = self._split_parent(anchor, segments, implicit_parents=True)
        validate_name(name)
        existing = self.drive.child(parent, name)
        if existing is not None and item.get("@microsoft.graph.conflictBehavior") == "fail":
            raise GraphError(409, "nameAlreadyExists", "The specified item name already exists.")
        session = self.emulator.new_session(parent.id, name)
        return _json(
            200,
            {
                "uploadUrl": f"{self.emulator.upload_base}/{session.id}",
                "expirationDateTime": iso(session.expires),
                "nextExpectedRanges": ["0-"],
            },
        )

    def _download(self, request: web.Request, ticket: str) -> web.Response:
        if "Authorization" in request.headers:
            raise GraphError(401, "unauthenticated", "Download URLs are pre-authenticated; send no Authorization.")
        item_id = self.downloads.pop(ticket, None)
        if item_id is None or request.method != "GET":
            raise GraphError(404, "itemNotFound", "The download URL is unknown or was used already.")
        item = self.drive.item(item_id)
        return web.Response(status=200, body=item.content, content_type="application/octet-stream")

    # ----------------------------------------------------------------------------- upload URLs

    def _session(self, session_id: str) -> UploadSession:
        session = self.emulator.sessions.get(session_id)
        if session is None or session.expires < time.time():
            self.emulator.sessions.pop(session_id, None)
            raise GraphError(404, "itemNotFound", "The upload session was not found or has expired.")
        return session

    def _ranges(self, session: UploadSession) -> list[str]:
        start = len(session.received)
        if self.emulator.closed_ranges and session.total is not None:
            return [f"{start}-{session.total - 1}"]
        return [f"{start}-"]

    async def _upload(self, request: web.Request, session_id: str) -> web.StreamResponse:
        if "Authorization" in request.headers:
            raise GraphError(
                401,
                "unauthenticated",
                "The uploadUrl is pre-authenticated; requests to it must not carry an Authorization header.",
            )
        if fault := self.emulator.take_fault("upload"):
            raise fault
        session = self._session(session_id)
        if request.method == "GET":
            return _json(200, {"expirationDateTime": iso(session.expires), "nextExpectedRanges": self._ranges(session)})
        if request.method == "DELETE":
            self.emulator.sessions.pop(session.id, None)
            return web.Response(status=204)
        if request.method != "PUT":
            raise GraphError(405, "invalidRequest", "Upload URLs take GET, PUT and DELETE.")
        start, end, total = check_fragment(
            session, request.headers.get("Content-Range"), request.headers.get("Content-Length")
        )
        drop = self.emulator.take_drop()
        if drop is False:
            await request.content.read(min(4096, end - start + 1))
            return self._drop(request)
        fragment = await request.read()
        if len(fragment) != end - start + 1:
            raise GraphError(400, "invalidRequest", "The body does not match Content-Range.")
        session.total = total
        session.received += fragment
        answer = self._answer_fragment(session)
        return self._drop(request) if drop else answer

    def _answer_fragment(self, session: UploadSession) -> web.Response:
        """202 with the next range, or (all bytes in) the committed driveItem."""
        if len(session.received) < (session.total or 0):
            return _json(202, {"expirationDateTime": iso(session.expires), "nextExpectedRanges": self._ranges(session)})
        self.emulator.sessions.pop(session.id, None)
        parent = self.drive.item(session.parent_id)
        content = self.emulator.stored_content(session.name, bytes(session.received))
        item, created = self.drive.put_file(parent, session.name, content)
        return _json(201 if created else 200, self._uploaded_json(item))

    def _uploaded_json(self, item: Item) -> dict[str, Any]:
        """The driveItem an upload answers with, faults (wrong or missing hash) applied."""
        wrong = self.emulator.take_wrong_hash()
        return self.drive.item_json(item, wrong_hash=wrong, hashes=self.emulator.report_hashes)

    def _drop(self, request: web.Request) -> web.StreamResponse:
        """Close the connection without an answer, as a reset mid-fragment looks to a client."""
        request[DROPPED] = True
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=500)  # never reaches the client: the connection is gone
