"""A strict Google Drive v3 + OAuth token emulator on 127.0.0.1, for tests through the real SDK.

Strict on purpose (../shared/API-NOTES.md): an emulator that accepts what Drive refuses proves
nothing. It checks service-account JWT grants (RS256 against the key file it generated, iss,
scope, aud, exp), demands a bearer on every API call and chunk PUT, parses only the ``q``
expressions Drive documents, returns only the ``fields`` asked for, enforces 256 KiB chunk
granularity, in-order chunks and the 5 MB multipart limit, hides shared-drive items from calls
without ``supportsAllDrives``, and answers errors in Drive's JSON shape. Faults are injected
through methods on :class:`DriveEmulator`; every request lands in :attr:`DriveEmulator.requests`.

It is one module (over the usual ~400 lines) so that a test imports one thing: wire parsing
helpers first, then the state, the emulator object with its fault API, and the HTTP handler.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

FOLDER_MIME = "application/vnd.google-apps.folder"
DRIVE_SCOPE = "https://www.googleapis.com/auth/drive"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
CHUNK_GRANULARITY = 256 * 1024
MULTIPART_LIMIT = 5 * 1024 * 1024
FILE_FIELDS = {
    "kind",
    "id",
    "name",
    "mimeType",
    "parents",
    "size",
    "md5Checksum",
    "sha1Checksum",
    "sha256Checksum",
    "modifiedTime",
    "createdTime",
    "trashed",
    "driveId",
}
DEFAULT_FILE_FIELDS = "kind,id,name,mimeType"
DEFAULT_LIST_FIELDS = f"kind,nextPageToken,incompleteSearch,files({DEFAULT_FILE_FIELDS})"


class DriveError(Exception):
    """An API error answered in Drive's shape."""

    def __init__(self, status: int, reason: str, message: str, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        domain = "usageLimits" if "Limit" in self.reason or "Quota" in self.reason else "global"
        return {
            "error": {
                "code": self.status,
                "message": self.message,
                "errors": [{"domain": domain, "reason": self.reason, "message": self.message}],
            }
        }


# --- wire parsing -----------------------------------------------------------------------------

_Q_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<op>!=|=)|(?P<word>[A-Za-z]+))")


def parse_q(q: str) -> list[tuple[str, str, str]]:
    """``q`` → ``[(field, op, value)]`` for the clauses the uploader uses, joined by ``and``.

    Anything else is refused the way Drive refuses a bad query (400 invalid, location q).
    """
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(q):
        match = _Q_TOKEN.match(q, position)
        if not match or match.end() == position:
            if q[position:].strip() == "":
                break
            raise DriveError(400, "invalid", "Invalid Value")
        kind = match.lastgroup or ""
        text = match.group(kind)
        if kind == "str":
            text = re.sub(r"\\(.)", r"\1", text[1:-1])
        tokens.append((kind, text))
        position = match.end()
    clauses: list[tuple[str, str, str]] = []
    while tokens:
        head = tokens[:3]
        tokens = tokens[3:]
        kinds = [kind for kind, _ in head]
        if kinds == ["str", "word", "word"] and head[1][1] == "in" and head[2][1] == "parents":
            clauses.append(("parents", "in", head[0][1]))
        elif kinds == ["word", "op", "str"] and head[0][1] in ("name", "mimeType"):
            clauses.append((head[0][1], head[1][1], head[2][1]))
        elif kinds == ["word", "op", "word"] and head[0][1] == "trashed" and head[2][1] in ("true", "false"):
            clauses.append(("trashed", head[1][1], head[2][1]))
        else:
            raise DriveError(400, "invalid", "Invalid Value")
        if tokens:
            if tokens[0] != ("word", "and") or len(tokens) == 1:
                raise DriveError(400, "invalid", "Invalid Value")
            tokens = tokens[1:]
    return clauses


def parse_fields(spec: str) -> dict[str, Any]:
    """``"nextPageToken,files(id,name)"`` → ``{"nextPageToken": None, "files": {"id": None, ...}}``."""
    result: dict[str, Any] = {}
    depth, start = 0, 0
    parts: list[str] = []
    for index, char in enumerate(spec):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(spec[start:index])
            start = index + 1
    parts.append(spec[start:])
    for part in (piece.strip() for piece in parts):
        if not part:
            continue
        if "(" in part:
            if not part.endswith(")"):
                raise DriveError(400, "invalidParameter", f"Invalid field selection {part}")
            name, inner = part.split("(", 1)
            result[name.strip()] = parse_fields(inner[:-1])
        else:
            result[part] = None
    return result


def select_file_fields(resource: dict[str, Any], selection: dict[str, Any] | None) -> dict[str, Any]:
    """Only the fields asked for, as Drive does; unknown field names are a 400."""
    if selection is None or "*" in selection:
        return dict(resource)
    unknown = set(selection) - FILE_FIELDS
    if unknown:
        raise DriveError(400, "invalidParameter", f"Invalid field selection {sorted(unknown)[0]}")
    return {key: value for key, value in resource.items() if key in selection}


def parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, Any], bytes]:
    """A ``multipart/related`` body → (metadata JSON, media bytes)."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.startswith("multipart/related") or not match:
        raise DriveError(400, "badContent", "Multipart upload needs multipart/related with a boundary")
    delimiter = b"--" + match.group(1).encode()
    pieces = body.split(delimiter)
    # [preamble, part1, part2, "--" epilogue]
    if len(pieces) != 4 or not pieces[3].startswith(b"--"):
        raise DriveError(400, "badContent", "Multipart body must hold exactly two parts")
    parts = []
    for piece in pieces[1:3]:
        # The part's headers end at its first blank line; the media may hold either break style,
        # so the earliest one decides, and the part's own style is the one the delimiter took.
        lf, crlf = piece.find(b"\n\n"), piece.find(b"\r\n\r\n")
        if crlf != -1 and (lf == -1 or crlf < lf):
            eol, content = b"\r\n", piece[crlf + 4 :]
        elif lf != -1:
            eol, content = b"\n", piece[lf + 2 :]
        else:
            raise DriveError(400, "badContent", "A multipart part has no header block")
        parts.append(content[: -len(eol)] if content.endswith(eol) else content)
    try:
        metadata = json.loads(parts[0] or b"{}")
    except ValueError as exc:
        raise DriveError(400, "parseError", "Parse Error") from exc
    return metadata, parts[1]


# --- state ------------------------------------------------------------------------------------


@dataclass
class DriveFile:
    id: str
    name: str
    mime_type: str
    parents: list[str]
    drive_id: str | None = None
    content: bytes | None = None
    trashed: bool = False
    created: float = field(default_factory=time.time)
    modified: float = field(default_factory=time.time)

    def resource(self, *, corrupt_md5: bool = False) -> dict[str, Any]:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(self.modified))
        out: dict[str, Any] = {
            "kind": "drive#file",
            "id": self.id,
            "name": self.name,
            "mimeType": self.mime_type,
            "parents": list(self.parents),
            "trashed": self.trashed,
            "modifiedTime": stamp,
            "createdTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(self.created)),
        }
        if self.drive_id:
            out["driveId"] = self.drive_id
        if self.mime_type != FOLDER_MIME:
            data = self.content or b""
            md5 = hashlib.md5(data).hexdigest()
            out["size"] = str(len(data))
            out["md5Checksum"] = "0" * 32 if corrupt_md5 else md5
            out["sha1Checksum"] = hashlib.sha1(data).hexdigest()
            out["sha256Checksum"] = hashlib.sha256(data).hexdigest()
        return out


@dataclass
class UploadSession:
    id: str
    path: str  # the initiating request's path: create (/files) or update (/files/{id})
    query: dict[str, str]
    metadata: dict[str, Any]
    file_id: str | None
    total: int | None
    received: bytearray = field(default_factory=bytearray)
    done_file: str | None = None


@dataclass
class RequestRecord:
    method: str
    path: str
    query: dict[str, str]
    time: float
    content_range: str | None = None
    status: int | None = None


@dataclass
class Fault:
    status: int
    reason: str
    message: str
    count: int
    retry_after: float | None = None
    applies: Callable[[RequestRecord], bool] = lambda record: True


# --- the emulator -----------------------------------------------------------------------------


class DriveEmulator:
    """Drive v3 + token endpoint in a background thread; use as a context manager."""

    def __init__(self, workdir: Path, *, tls: bool = False) -> None:
        self.workdir = workdir
        self._lock = threading.RLock()
        self._ids = (f"emu{n:06d}{secrets.token_hex(4)}" for n in itertools.count())
        self.files: dict[str, DriveFile] = {}
        self.sessions: dict[str, UploadSession] = {}
        self.tokens: dict[str, float] = {}
        self.requests: list[RequestRecord] = []
        self.faults: list[Fault] = []
        self.page_size_cap = 1000
        self._drops = 0
        self._corrupt_md5 = 0
        self.root_folder_id = self._add(DriveFile(next(self._ids), "mirror root", FOLDER_MIME, []))
        self.ca: Any = None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.emulator = self  # type: ignore[attr-defined]
        self._server.handle_error = lambda request, address: None  # type: ignore[method-assign]
        scheme = "http"
        if tls:
            import trustme

            self.ca = trustme.CA()
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.ca.issue_cert("127.0.0.1").configure_cert(context)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self._server.server_address[1]}"
        self.token_uri = f"{self.url}/token"
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.client_email = "uploader@cloudwatcher-test.iam.gserviceaccount.com"
        self.key_id = secrets.token_hex(20)
        self.key_file = workdir / "service-account.json"
        self.key_file.write_text(json.dumps(self._key_json()))
        self._thread = threading.Thread(target=self._server.serve_forever, name="drive-emulator", daemon=True)

    def _key_json(self) -> dict[str, str]:
        pem = self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        return {
            "type": "service_account",
            "project_id": "cloudwatcher-test",
            "private_key_id": self.key_id,
            "private_key": pem,
            "client_email": self.client_email,
            "client_id": "1234567890",
            "token_uri": self.token_uri,
            "auth_uri": f"{self.url}/auth",
        }

    def write_ca_bundle(self, path: Path) -> Path:
        """The test CA as a PEM file (TLS mode only), for ``ca_bundle``."""
        self.ca.cert_pem.write_to_path(str(path))
        return path

    def __enter__(self) -> DriveEmulator:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # --- test-facing helpers --------------------------------------------------------------------

    def _add(self, item: DriveFile) -> str:
        with self._lock:
            self.files[item.id] = item
        return item.id

    def create_shared_drive(self) -> str:
        """A shared drive; like Drive, its id is also the id of its root folder."""
        drive_id = "0A" + secrets.token_hex(8)
        self._add(DriveFile(drive_id, "Shared drive", FOLDER_MIME, [], drive_id=drive_id))
        return drive_id

    def children(self, parent_id: str, name: str | None = None) -> list[DriveFile]:
        with self._lock:
            return [
                item
                for item in self.files.values()
                if parent_id in item.parents and not item.trashed and (name is None or item.name == name)
            ]

    def lookup(self, root_id: str, path: str) -> list[DriveFile]:
        """Every item at ``path`` under ``root_id`` (a list: Drive allows duplicate names)."""
        level = [root_id]
        found: list[DriveFile] = []
        for part in path.split("/"):
            found = [child for parent in level for child in self.children(parent, part)]
            level = [item.id for item in found]
        return found

    def fail_next(
        self,
        status: int,
        reason: str,
        message: str | None = None,
        *,
        count: int = 1,
        retry_after: float | None = None,
        when: Callable[[RequestRecord], bool] | None = None,
    ) -> None:
        """The next ``count`` API requests (matching ``when``) answer this error."""
        with self._lock:
            self.faults.append(
                Fault(status, reason, message or reason, count, retry_after, when or (lambda record: True))
            )

    def rate_limit(self, count: int = 1, retry_after: float | None = None) -> None:
        self.fail_next(403, "userRateLimitExceeded", "User Rate Limit Exceeded", count=count, retry_after=retry_after)

    def storage_quota_exceeded(self) -> None:
        self.fail_next(
            403,
            "storageQuotaExceeded",
            "The user's Drive storage quota has been exceeded.",
            when=lambda record: record.path.startswith("/upload/"),
        )

    def daily_upload_cap(self) -> None:
        self.fail_next(
            403,
            "uploadLimitExceeded",
            "The user has exceeded their daily upload limit.",
            when=lambda record: record.path.startswith("/upload/"),
        )

    def drop_next_chunk(self, count: int = 1) -> None:
        """The next chunk PUT(s) lose their connection halfway; the server keeps what it got,
        rounded down to 256 KiB, as Drive persists partial data."""
        with self._lock:
            self._drops += count

    def corrupt_next_md5(self) -> None:
        """The next completed upload reports an md5 that does not match the bytes."""
        with self._lock:
            self._corrupt_md5 += 1

    def expire_sessions(self) -> None:
        with self._lock:
            self.sessions.clear()

    def expire_tokens(self) -> None:
        with self._lock:
            self.tokens.clear()

    def log(self, method: str | None = None, path_prefix: str = "") -> list[RequestRecord]:
        with self._lock:
            return [
                record
                for record in self.requests
                if (method is None or record.method == method) and record.path.startswith(path_prefix)
            ]

    # --- token endpoint -------------------------------------------------------------------------

    def grant_token(self, form: dict[str, str]) -> dict[str, Any]:
        """Check a jwt-bearer grant; a bad one raises ``_OAuthError`` (400 invalid_grant)."""
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            raise _OAuthError("unsupported_grant_type", "Invalid grant_type")
        try:
            header_b64, claims_b64, signature_b64 = form["assertion"].split(".")
            header = json.loads(_b64decode(header_b64))
            claims = json.loads(_b64decode(claims_b64))
            signature = _b64decode(signature_b64)
        except (KeyError, ValueError) as exc:
            raise _OAuthError("invalid_grant", "Invalid JWT") from exc
        if header.get("alg") != "RS256" or header.get("kid") not in (None, self.key_id):
            raise _OAuthError("invalid_grant", "Invalid JWT header")
        try:
            self._key.public_key().verify(
                signature, f"{header_b64}.{claims_b64}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except Exception as exc:
            raise _OAuthError("invalid_grant", "Invalid JWT Signature.") from exc
        now = time.time()
        if claims.get("iss") != self.client_email:
            raise _OAuthError("invalid_grant", "Invalid issuer")
        # google-auth always addresses Google's token endpoint, whatever token_uri says; Google
        # checks that audience. The emulator also takes its own URI.
        if claims.get("aud") not in (GOOGLE_TOKEN_AUDIENCE, self.token_uri):
            raise _OAuthError("invalid_grant", "Invalid JWT: aud does not match the token endpoint")
        if DRIVE_SCOPE not in str(claims.get("scope", "")).split():
            raise _OAuthError("invalid_scope", "Missing or invalid scope")
        iat, exp = float(claims.get("iat", 0)), float(claims.get("exp", 0))
        if exp < now or iat > now + 300 or exp - iat > 3600:
            raise _OAuthError("invalid_grant", "Invalid JWT: Token must be a short-lived token")
        token = "ya29." + secrets.token_urlsafe(24)
        with self._lock:
            self.tokens[token] = now + 3599
        return {"access_token": token, "token_type": "Bearer", "expires_in": 3599}

    def check_bearer(self, authorization: str | None) -> None:
        if not authorization or not authorization.startswith("Bearer "):
            raise DriveError(401, "required", "Request is missing required authentication credential.")
        with self._lock:
            expiry = self.tokens.get(authorization[len("Bearer ") :])
        if expiry is None or expiry < time.time():
            raise DriveError(401, "authError", "Invalid Credentials")

    def take_fault(self, record: RequestRecord) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.applies(record):
                    fault.count -= 1
                    if fault.count <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def take_drop(self) -> bool:
        with self._lock:
            if self._drops:
                self._drops -= 1
                return True
        return False

    def take_corrupt(self) -> bool:
        with self._lock:
            if self._corrupt_md5:
                self._corrupt_md5 -= 1
                return True
        return False

    def new_id(self) -> str:
        return next(self._ids)


class _OAuthError(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error, self.description = error, description


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- the HTTP side --------------------------------------------------------------------------------

_FILE_PATH = re.compile(r"^/(?P<upload>upload/)?drive/v3/files(?:/(?P<id>[^/]+))?$")
_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_STATUS_QUERY = re.compile(r"^bytes \*/(\d+|\*)$")


class _Handler(BaseHTTPRequestHandler):
    """One request; routes to the Drive methods the uploader uses, strictly."""

    protocol_version = "HTTP/1.1"
    server: Any

    def log_message(self, format: str, *args: Any) -> None:
        return None

    @property
    def emu(self) -> DriveEmulator:
        emulator: DriveEmulator = self.server.emulator
        return emulator

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # --- plumbing -------------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        split = urlsplit(self.path)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        record = RequestRecord(method, split.path, query, time.time(), self.headers.get("Content-Range"))
        with self.emu._lock:
            self.emu.requests.append(record)
        self._body_read = False
        try:
            if split.path == "/token" and method == "POST":
                self._token(record)
                return
            match = _FILE_PATH.match(split.path)
            if not match:
                raise DriveError(404, "notFound", "Not Found")
            self.emu.check_bearer(self.headers.get("Authorization"))
            fault = self.emu.take_fault(record)
            if fault is not None:
                headers = {} if fault.retry_after is None else {"Retry-After": str(int(fault.retry_after))}
                raise DriveError(fault.status, fault.reason, fault.message, headers=headers)
            self._route(method, bool(match.group("upload")), match.group("id"), query, record)
        except DriveError as error:
            self._drain()
            self._send_json(error.status, error.body(), record, error.headers)

    def _length(self) -> int:
        return int(self.headers.get("Content-Length") or 0)

    def _read_body(self) -> bytes:
        if self._body_read:
            return b""
        self._body_read = True
        return self.rfile.read(self._length())

    def _drain(self) -> None:
        remaining = self._length() if not self._body_read else 0
        self._body_read = True
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1 << 20))
            if not chunk:
                break
            remaining -= len(chunk)

    def _send(self, status: int, body: bytes, record: RequestRecord, headers: dict[str, str]) -> None:
        record.status = status
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_json(
        self, status: int, payload: Any, record: RequestRecord, headers: dict[str, str] | None = None
    ) -> None:
        body = json.dumps(payload).encode()
        self._send(status, body, record, {"Content-Type": "application/json; charset=UTF-8", **(headers or {})})

    def _token(self, record: RequestRecord) -> None:
        form = dict(parse_qsl(self._read_body().decode()))
        try:
            self._send_json(200, self.emu.grant_token(form), record)
        except _OAuthError as error:
            self._send_json(400, {"error": error.error, "error_description": error.description}, record)

    # --- Drive semantics ------------------------------------------------------------------------

    def _route(
        self, method: str, upload: bool, file_id: str | None, query: dict[str, str], record: RequestRecord
    ) -> None:
        if upload and "upload_id" in query:
            if method == "PUT":
                self._session_put(query, record)
            elif method == "DELETE":
                self._drain()
                with self.emu._lock:
                    self.emu.sessions.pop(query["upload_id"], None)
                self._send_json(499, DriveError(499, "clientClosedRequest", "Client Closed Request").body(), record)
            else:
                raise DriveError(405, "methodNotAllowed", "Method not allowed on an upload session")
        elif upload and method in ("POST", "PATCH") and (file_id is None) == (method == "POST"):
            self._upload(file_id, query, record)
        elif not upload and method == "GET" and file_id is None:
            self._drain()
            self._list(query, record)
        elif not upload and method == "POST" and file_id is None:
            metadata = self._json_body()
            item = self._commit(None, metadata, None, query)
            self._send_json(200, self._fields(item, query), record)
        elif not upload and method == "GET" and file_id is not None:
            self._drain()
            item = self._visible(file_id, query)
            if query.get("alt") == "media":
                if item.mime_type == FOLDER_MIME:
                    raise DriveError(403, "fileNotDownloadable", "Only files with binary content can be downloaded.")
                self._send(200, item.content or b"", record, {"Content-Type": "application/octet-stream"})
            else:
                self._send_json(200, self._fields(item, query), record)
        elif not upload and method == "DELETE" and file_id is not None:
            self._drain()
            item = self._visible(file_id, query)
            with self.emu._lock:
                self.emu.files.pop(item.id, None)
            self._send(204, b"", record, {})
        else:
            raise DriveError(400, "badRequest", f"{method} is not supported here")

    def _json_body(self) -> dict[str, Any]:
        raw = self._read_body()
        try:
            value = json.loads(raw) if raw.strip() else {}
        except ValueError as exc:
            raise DriveError(400, "parseError", "Parse Error") from exc
        if not isinstance(value, dict):
            raise DriveError(400, "parseError", "Parse Error")
        return value

    def _visible(self, file_id: str, query: dict[str, str]) -> DriveFile:
        """The item, unless it is missing or lies in a shared drive the caller did not opt into."""
        with self.emu._lock:
            item = self.emu.files.get(file_id)
        if item is None or (item.drive_id and query.get("supportsAllDrives") != "true"):
            raise DriveError(404, "notFound", f"File not found: {file_id}.")
        return item

    def _fields(self, item: DriveFile, query: dict[str, str], *, corrupt: bool = False) -> dict[str, Any]:
        selection = parse_fields(query.get("fields") or DEFAULT_FILE_FIELDS)
        return select_file_fields(item.resource(corrupt_md5=corrupt), selection)

    def _list(self, query: dict[str, str], record: RequestRecord) -> None:
        clauses = parse_q(query.get("q", ""))
        drive_id = query.get("driveId")
        corpora = query.get("corpora", "user")
        all_drives = query.get("supportsAllDrives") == "true"
        if drive_id and not (corpora == "drive" and all_drives and query.get("includeItemsFromAllDrives") == "true"):
            raise DriveError(
                403,
                "teamDrivesParameterRequired",
                "driveId needs corpora=drive, includeItemsFromAllDrives and supportsAllDrives.",
            )
        if corpora == "drive" and not drive_id:
            raise DriveError(400, "invalid", "The driveId parameter must be specified for corpora=drive.")
        page_size = int(query.get("pageSize", "100"))
        if not 1 <= page_size <= 1000:
            raise DriveError(400, "invalid", "Invalid Value")
        with self.emu._lock:
            items = sorted(self.emu.files.values(), key=lambda item: (item.created, item.id))
        matches = [item for item in items if item.drive_id == drive_id and _matches(item, clauses)]
        offset = 0
        if "pageToken" in query:
            try:
                token = json.loads(_b64decode(query["pageToken"]))
                assert token["q"] == query.get("q", "") and token["d"] == drive_id
                offset = int(token["o"])
            except Exception as exc:
                raise DriveError(400, "invalid", "Invalid Value") from exc
        size = min(page_size, self.emu.page_size_cap)
        page = matches[offset : offset + size]
        full: dict[str, Any] = {"kind": "drive#fileList", "incompleteSearch": False}
        if offset + size < len(matches):
            state = {"q": query.get("q", ""), "d": drive_id, "o": offset + size}
            full["nextPageToken"] = base64.urlsafe_b64encode(json.dumps(state).encode()).decode()
        selection = parse_fields(query.get("fields") or DEFAULT_LIST_FIELDS)
        unknown = set(selection) - {"kind", "nextPageToken", "incompleteSearch", "files"}
        if unknown:
            raise DriveError(400, "invalidParameter", f"Invalid field selection {sorted(unknown)[0]}")
        out = {key: value for key, value in full.items() if key in selection}
        if "files" in selection:
            out["files"] = [select_file_fields(item.resource(), selection["files"]) for item in page]
        self._send_json(200, out, record)

    def _commit(
        self, file_id: str | None, metadata: dict[str, Any], content: bytes | None, query: dict[str, str]
    ) -> DriveFile:
        """Create a file (or folder) or replace an existing file's content."""
        if file_id is not None:
            item = self._visible(file_id, query)
            with self.emu._lock:
                if content is not None:
                    item.content = content
                item.name = metadata.get("name", item.name)
                item.modified = time.time()
            return item
        parents = metadata.get("parents") or [self.emu.root_folder_id]
        if len(parents) != 1:
            raise DriveError(403, "cannotAddParent", "A file must have exactly one parent.")
        parent = self._visible(parents[0], query)
        if parent.mime_type != FOLDER_MIME:
            raise DriveError(400, "invalid", "The parent is not a folder.")
        mime = metadata.get("mimeType") or "application/octet-stream"
        if mime == FOLDER_MIME and content:
            raise DriveError(400, "invalid", "A folder has no content.")
        item = DriveFile(
            self.emu.new_id(),
            str(metadata.get("name") or "Untitled"),
            mime,
            [parent.id],
            drive_id=parent.drive_id,
            content=None if mime == FOLDER_MIME else (content or b""),
        )
        self.emu._add(item)
        return item

    def _upload(self, file_id: str | None, query: dict[str, str], record: RequestRecord) -> None:
        kind = query.get("uploadType")
        if file_id is not None:
            self._visible(file_id, query)
        if kind == "resumable":
            metadata = self._json_body()
            declared = self.headers.get("X-Upload-Content-Length")
            session = UploadSession(
                secrets.token_urlsafe(16),
                record.path,
                query,
                metadata,
                file_id,
                int(declared) if declared else None,
            )
            with self.emu._lock:
                self.emu.sessions[session.id] = session
            location = f"{self.emu.url}{record.path}?{urlencode({**query, 'upload_id': session.id})}"
            self._send(200, b"", record, {"Location": location})
            return
        if self._length() > MULTIPART_LIMIT and kind == "multipart":
            raise DriveError(413, "uploadTooLarge", "Multipart uploads are limited to 5 MB; use resumable.")
        body = self._read_body()
        if kind == "multipart":
            metadata, content = parse_multipart(self.headers.get("Content-Type", ""), body)
        elif kind == "media":
            metadata, content = {}, body
        else:
            raise DriveError(400, "invalid", "Invalid Value: uploadType")
        item = self._commit(file_id, metadata, content, query)
        self._send_json(200, self._fields(item, query, corrupt=self.emu.take_corrupt()), record)

    def _session_put(self, query: dict[str, str], record: RequestRecord) -> None:
        with self.emu._lock:
            session = self.emu.sessions.get(query["upload_id"])
        if session is None:
            raise DriveError(404, "notFound", "Upload session not found or expired; start a new one.")
        content_range = self.headers.get("Content-Range")
        length = self._length()
        if content_range is None:  # the whole content in one PUT
            content_range = f"bytes 0-{length - 1}/{length}" if length else "bytes */0"
        status = _STATUS_QUERY.match(content_range)
        if status:
            self._drain()
            if length:
                raise DriveError(400, "badContent", "A status query carries no body.")
            if (
                status.group(1) != "*"
                and session.done_file is None
                and len(session.received) == int(status.group(1)) == 0
            ):
                return self._complete(session, record)  # an empty file: the query finishes it
            return self._report(session, record)
        match = _RANGE.match(content_range)
        if not match:
            raise DriveError(400, "badContent", f"Malformed Content-Range: {content_range}")
        start, end, total_text = int(match.group(1)), int(match.group(2)), match.group(3)
        total = None if total_text == "*" else int(total_text)
        if end < start or end - start + 1 != length:
            raise DriveError(400, "badContent", "Content-Range does not match the body length.")
        if total is not None and session.total is not None and total != session.total:
            raise DriveError(400, "badContent", "The total size changed between chunks.")
        if total is not None and end >= total:
            raise DriveError(400, "badContent", "Content-Range lies beyond the total size.")
        if session.done_file is not None or start != len(session.received):
            raise DriveError(
                400,
                "invalid",
                f"Invalid request: the chunk starts at {start}, the next expected byte is {len(session.received)}.",
            )
        last = total is not None and end + 1 == total
        if not last and length % CHUNK_GRANULARITY:
            raise DriveError(400, "invalid", "Chunks except the last must be a multiple of 256 KiB.")
        if self.emu.take_drop():
            half = self.rfile.read(length // 2)
            kept = (len(session.received) + len(half)) // CHUNK_GRANULARITY * CHUNK_GRANULARITY
            session.received += half[: kept - len(session.received)]
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return None
        session.received += self._read_body()
        session.total = total if total is not None else session.total
        if last:
            return self._complete(session, record)
        return self._report(session, record)

    def _report(self, session: UploadSession, record: RequestRecord) -> None:
        if session.done_file is not None:
            item = self._visible(session.done_file, session.query)
            self._send_json(200, self._fields(item, session.query), record)
            return
        headers = {"Range": f"bytes=0-{len(session.received) - 1}"} if session.received else {}
        self._send(308, b"", record, headers)

    def _complete(self, session: UploadSession, record: RequestRecord) -> None:
        item = self._commit(session.file_id, session.metadata, bytes(session.received), session.query)
        session.done_file = item.id
        session.received = bytearray()
        self._send_json(200, self._fields(item, session.query, corrupt=self.emu.take_corrupt()), record)


def _matches(item: DriveFile, clauses: list[tuple[str, str, str]]) -> bool:
    for name, op, value in clauses:
        if name == "parents":
            ok = value in item.parents
        elif name == "trashed":
            ok = (str(item.trashed).lower() == value) == (op == "=")
        else:
            actual = item.name if name == "name" else item.mime_type
            ok = (actual == value) == (op == "=")
        if not ok:
            return False
    return True
