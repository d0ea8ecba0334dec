"""The Drive emulator's wire formats: limits, the error shape, ``q`` and ``fields`` parsing, multipart bodies."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

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


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


def b64decode_padded(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
