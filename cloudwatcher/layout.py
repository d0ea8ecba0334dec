"""The watched folder layout (README.md, Folder layout): which paths are files we take, and as what."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

#: A device's folder name: it becomes part of remote paths and log lines, so it is kept plain.
DEVICE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,49}$")

FileKind = Literal["request", "attachment", "response"]
AREAS = ("requests", "responses")
_IN_PROGRESS_SUFFIXES = (".tmp", ".part", ".partial", ".swp", ".crdownload")


def is_in_progress_name(name: str) -> bool:
    """Names a device (or we) use while a file is still being written."""
    return name.startswith((".", "~")) or name.endswith(_IN_PROGRESS_SUFFIXES)


def is_device_id(name: str) -> bool:
    return DEVICE_ID_PATTERN.fullmatch(name) is not None


@dataclass(slots=True)
class DroppedPath:
    """A path under ``watch_root`` that the daemon takes (one per file of a burst: not frozen,
    which would make building it 4x dearer)."""

    local_path: str  # relative to watch_root, '/'-separated
    device_id: str
    area: str  # "requests" or "responses"
    kind: FileKind


def classify(local_path: str) -> DroppedPath | None:
    """``dev/requests/a/b.json`` → a request; None for anything the daemon must not take."""
    parts = local_path.split("/")
    if len(parts) < 3 or not is_device_id(parts[0]) or parts[1] not in AREAS:
        return None
    for part in parts[2:]:  # a loop, not any(genexpr): this runs for every file of a burst
        if is_in_progress_name(part):
            return None
    if parts[1] == "responses":
        kind: FileKind = "response"
    elif parts[-1].endswith(".json"):
        kind = "request"
    else:
        kind = "attachment"
    return DroppedPath(local_path=local_path, device_id=parts[0], area=parts[1], kind=kind)
