"""The state behind the Graph emulator: drives, driveItems and upload sessions.

Kept free of HTTP so the rules (SharePoint's name rules, case-insensitive lookup, in-order
fragments) read as plain code; :mod:`tests.support.emulators.graph` maps requests onto it. Every
refusal is a :class:`GraphError` carrying the status and error code the real service uses.
"""

from __future__ import annotations

import itertools
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cloudwatcher.providers.sharepoint.quickxorhash import quickxorhash

FRAGMENT_UNIT = 320 * 1024
MAX_FRAGMENT = 60 * 1024 * 1024
SIMPLE_UPLOAD_LIMIT = 250 * 1024 * 1024
MAX_PATH = 400

_FORBIDDEN_CHARS = set('"*:<>?/\\|')
_RESERVED = {"con", "prn", "aux", "nul", ".lock", "desktop.ini"} | {
    f"{device}{digit}" for device in ("com", "lpt") for digit in range(10)
}


class GraphError(Exception):
    """A refusal in Graph's shape: ``{"error": {"code", "message", "innerError"}}``."""

    def __init__(self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "innerError": {"date": iso(time.time()), "request-id": str(uuid.uuid4())},
            }
        }


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def validate_name(name: str) -> None:
    """Refuse what SharePoint Online refuses (400 invalidRequest), as docs/providers.md (Names) lists it."""
    problem = None
    if not name:
        problem = "empty name"
    elif _FORBIDDEN_CHARS & set(name):
        problem = "forbidden character"
    elif name != name.strip(" "):
        problem = "leading or trailing space"
    elif name.endswith("."):
        problem = "trailing period"
    elif name.lower() in _RESERVED:
        problem = "reserved name"
    elif name.startswith("~$"):
        problem = "name starting with ~$"
    elif "_vti_" in name.lower():
        problem = "name containing _vti_"
    if problem:
        raise GraphError(400, "invalidRequest", f"The provided name is not valid ({problem}): {name!r}")


@dataclass
class Item:
    id: str
    name: str
    parent_id: str | None
    is_folder: bool
    content: bytes = b""
    created: float = field(default_factory=time.time)
    modified: float = field(default_factory=time.time)
    version: int = 1


@dataclass
class UploadSession:
    id: str
    drive_id: str
    parent_id: str
    name: str
    expires: float
    received: bytearray = field(default_factory=bytearray)
    total: int | None = None


class Drive:
    """One document library: items by id, children looked up case-insensitively."""

    def __init__(self, drive_id: str) -> None:
        self.id = drive_id
        self.root = Item(id=f"{drive_id}-root", name="root", parent_id=None, is_folder=True)
        self.items: dict[str, Item] = {self.root.id: self.root}
        self._ids = itertools.count(1)

    def item(self, item_id: str) -> Item:
        found = self.items.get(item_id)
        if found is None:
            raise GraphError(404, "itemNotFound", f"Item does not exist: {item_id}")
        return found

    def child(self, parent: Item, name: str) -> Item | None:
        wanted = name.casefold()
        for item in self.items.values():
            if item.parent_id == parent.id and item.name.casefold() == wanted:
                return item
        return None

    def children(self, parent: Item) -> list[Item]:
        return [item for item in self.items.values() if item.parent_id == parent.id]

    def walk(self, start: Item, segments: list[str]) -> Item:
        """The item at ``segments`` below ``start``; 404 itemNotFound when any part is missing."""
        current = start
        for segment in segments:
            found = self.child(current, segment) if current.is_folder else None
            if found is None:
                raise GraphError(404, "itemNotFound", "The resource could not be found.")
            current = found
        return current

    def path_of(self, item: Item) -> str:
        parts: list[str] = []
        while item.parent_id is not None:
            parts.append(item.name)
            item = self.items[item.parent_id]
        return "/" + "/".join(reversed(parts))

    def _new_id(self) -> str:
        return f"01{next(self._ids):06d}{uuid.uuid4().hex[:12].upper()}"

    def create_folder(self, parent: Item, name: str, conflict: str) -> Item:
        validate_name(name)
        self._check_length(parent, name)
        existing = self.child(parent, name)
        if existing is not None:
            if conflict == "fail":
                raise GraphError(409, "nameAlreadyExists", "The specified item name already exists.")
            if conflict == "replace" and existing.is_folder:
                return existing
            name = self._free_name(parent, name)
        folder = Item(id=self._new_id(), name=name, parent_id=parent.id, is_folder=True)
        self.items[folder.id] = folder
        return folder

    def ensure_folders(self, start: Item, segments: list[str]) -> Item:
        """Parents created implicitly, as an upload by path does."""
        current = start
        for segment in segments:
            found = self.child(current, segment)
            if found is None:
                found = self.create_folder(current, segment, "fail")
            elif not found.is_folder:
                raise GraphError(409, "nameAlreadyExists", f"A file named {segment!r} is in the way.")
            current = found
        return current

    def put_file(self, parent: Item, name: str, content: bytes) -> tuple[Item, bool]:
        """Create or replace ``name`` under ``parent``; returns (item, created)."""
        validate_name(name)
        self._check_length(parent, name)
        existing = self.child(parent, name)
        if existing is not None:
            if existing.is_folder:
                raise GraphError(409, "nameAlreadyExists", "A folder with that name exists.")
            existing.content = bytes(content)
            existing.modified = time.time()
            existing.version += 1
            return existing, False
        item = Item(id=self._new_id(), name=name, parent_id=parent.id, is_folder=False, content=bytes(content))
        self.items[item.id] = item
        return item, True

    def delete(self, item: Item) -> None:
        for child in self.children(item):
            self.delete(child)
        self.items.pop(item.id, None)

    def _check_length(self, parent: Item, name: str) -> None:
        full = f"{self.path_of(parent).rstrip('/')}/{name}"
        if len(full) > MAX_PATH:
            raise GraphError(400, "invalidRequest", f"The path is longer than {MAX_PATH} characters.")

    def _free_name(self, parent: Item, name: str) -> str:
        stem, dot, extension = name.partition(".")
        for number in itertools.count(1):
            candidate = f"{stem} {number}{dot}{extension}"
            if self.child(parent, candidate) is None:
                return candidate
        raise AssertionError("unreachable")

    def item_json(self, item: Item, *, wrong_hash: bool = False, hashes: bool = True) -> dict[str, Any]:
        """A driveItem as SharePoint returns it (only quickXorHash among the hashes).

        ``hashes=False`` leaves ``file.hashes`` out, as SharePoint sometimes does right after
        an upload, before it has computed them.
        """
        parent_path = self.path_of(self.items[item.parent_id]) if item.parent_id else None
        body: dict[str, Any] = {
            "id": item.id,
            "name": item.name,
            "createdDateTime": iso(item.created),
            "lastModifiedDateTime": iso(item.modified),
            "eTag": f'"{{{item.id}}},{item.version}"',
            "cTag": f'"c:{{{item.id}}},{item.version}"',
            "size": len(item.content),
            "parentReference": {
                "driveType": "documentLibrary",
                "driveId": self.id,
                "id": item.parent_id,
                "path": f"/drives/{self.id}/root:{'' if parent_path == '/' else parent_path}",
            },
        }
        if item.is_folder:
            body["folder"] = {"childCount": len(self.children(item))}
        else:
            body["file"] = {"mimeType": "application/octet-stream"}
            if hashes:
                digest = quickxorhash(item.content + b"\x00" if wrong_hash else item.content)
                body["file"]["hashes"] = {"quickXorHash": digest}
        return body


_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


def check_fragment(
    session: UploadSession, content_range: str | None, content_length: str | None
) -> tuple[int, int, int]:
    """Enforce every fragment rule of docs/providers.md on one fragment; returns (start, end, total)."""
    match = _CONTENT_RANGE.fullmatch(content_range or "")
    if match is None:
        raise GraphError(400, "invalidRequest", "Content-Range 'bytes start-end/total' is required.")
    start, end, total = (int(part) for part in match.groups())
    length = end - start + 1
    if end < start or end >= total:
        raise GraphError(400, "invalidRequest", f"Invalid Content-Range: {content_range}")
    if content_length is None or not content_length.isdigit() or int(content_length) != length:
        raise GraphError(400, "invalidRequest", "Content-Length must equal the Content-Range length.")
    if session.total is not None and total != session.total:
        raise GraphError(400, "invalidRequest", f"Declared total {total} differs from the session's {session.total}.")
    if start != len(session.received):
        raise GraphError(
            416,
            "invalidRange",
            f"The uploaded fragment overlaps or skips data; next expected byte is {len(session.received)}.",
        )
    if end != total - 1 and length % FRAGMENT_UNIT:
        raise GraphError(400, "invalidRequest", f"Fragment of {length} bytes is not a multiple of 320 KiB (327680).")
    if length > MAX_FRAGMENT:
        raise GraphError(413, "requestTooLarge", "Fragments may be at most 60 MiB.")
    return start, end, total
