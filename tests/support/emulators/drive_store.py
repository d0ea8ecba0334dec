"""What the Drive emulator holds: files and folders, upload sessions, the request log, planned faults."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.support.emulators.drive_wire import FOLDER_MIME


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
