"""What the daemon hands to the domain: a dropped file as recorded in the ledger."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from uuid import UUID

from cloudwatcher.domain.device_binding import DeviceBinding
from cloudwatcher.domain.group_flush import GroupFlush

FileKind = Literal["request", "attachment", "response"]


@dataclass(frozen=True)
class DroppedFile:
    """One version of a file under the watch root, identified like its ledger rows."""

    device_id: str
    local_path: str  # relative to watch_root, '/'-separated, e.g. "truck-001/requests/2026/a.json"
    absolute_path: Path
    content_sha256: str  # lowercase hex sha256 of the bytes, as recorded in the ledger
    size: int
    kind: FileKind

    @property
    def log_fields(self) -> dict[str, str]:
        """The ``extra=`` of a log line about this file: JSON lines carry ``device`` and ``path``."""
        return {"device": self.device_id, "path": self.local_path}


@dataclass(frozen=True)
class IngestContext:
    """Daemon settings the domain needs while ingesting."""

    watch_root: Path
    instance_id: UUID | None  # instances.id of this daemon, stored in requests.processed_by
    max_request_bytes: int
    binding: DeviceBinding = field(default_factory=DeviceBinding)  # the device_binding setting
    flush: GroupFlush = field(default_factory=GroupFlush)  # response files' shared syncfs (group_flush.py)


def sibling_path(local_path: str, folder: Literal["requests", "responses"]) -> str:
    """``<device>/requests/x.json`` <-> ``<device>/responses/x.json`` (same relative path)."""
    device, _, rest = local_path.partition("/")
    _, _, relative = rest.partition("/")
    return f"{device}/{folder}/{relative}"


def relative_in_folder(local_path: str) -> str:
    """The path below ``<device>/requests/`` (or ``responses/``)."""
    return local_path.split("/", 2)[2] if local_path.count("/") >= 2 else local_path
