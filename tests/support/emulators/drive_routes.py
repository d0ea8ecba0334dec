"""The Drive emulator's HTTP side: one handler per request, routing to the Drive methods the uploader uses."""

from __future__ import annotations

import base64
import json
import re
import secrets
import socket
import time
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from tests.support.emulators.drive_store import DriveFile, RequestRecord, UploadSession
from tests.support.emulators.drive_wire import (
    CHUNK_GRANULARITY,
    DEFAULT_FILE_FIELDS,
    DEFAULT_LIST_FIELDS,
    FOLDER_MIME,
    MULTIPART_LIMIT,
    DriveError,
    OAuthError,
    b64decode_padded,
    parse_fields,
    parse_multipart,
    parse_q,
    select_file_fields,
)

if TYPE_CHECKING:
    from tests.support.emulators.drive import DriveEmulator

_FILE_PATH = re.compile(r"^/(?P<upload>upload/)?drive/v3/files(?:/(?P<id>[^/]+))?$")
_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_STATUS_QUERY = re.compile(r"^bytes \*/(\d+|\*)$")


class DriveHandler(BaseHTTPRequestHandler):
    """One request; routes to the Drive methods the uploader uses, strictly."""

    protocol_version = "HTTP/1.1"
    #: Headers and body go out in separate writes; with Nagle on, the body waits for the
    #: client's delayed ACK (40 ms on Linux) and every request looked that slow.
    disable_nagle_algorithm = True
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
        except OAuthError as error:
            self._send_json(error.status, {"error": error.error, "error_description": error.description}, record)

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
                token = json.loads(b64decode_padded(query["pageToken"]))
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
