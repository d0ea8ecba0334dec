"""Device paths the gateway takes: plain, relative, beneath a device folder; and why one is refused.

Every path is checked before the kernel sees it (:func:`check`), and every ``OSError`` from
opening one is turned into the reason it is counted under (:func:`refusal`), so the scanner,
the recorder and the uploaders report a refused file the same way.
"""

from __future__ import annotations

import errno
import os
from typing import Literal

from cloudwatcher.layout import DEVICE_ID_PATTERN

__all__ = [
    "MTIME_NS_RANGE",
    "ChangedFileError",
    "RefusedPathError",
    "SkipReason",
    "check",
    "escaped",
    "is_valid_utf8",
    "refusal",
    "split",
]

#: Why a device path was skipped (the ``reason`` label of ``cloudwatcher_skipped_files_total``).
SkipReason = Literal["name", "symlink", "type", "unreadable", "too_long", "mtime"]

#: Modification times the ledger can hold (nanoseconds in a bigint: 1677 to 2262).
MTIME_NS_RANGE = range(-(2**63), 2**63)


class RefusedPathError(Exception):
    """A device path the gateway will not open, with the reason it is counted under."""

    def __init__(self, reason: SkipReason, local_path: str, why: str) -> None:
        super().__init__(f"{escaped(local_path)}: {why}")
        self.reason: SkipReason = reason
        self.local_path = local_path
        self.why = why


class ChangedFileError(Exception):
    """The file no longer has the recorded size or mtime: not the version that was recorded."""


def escaped(name: str) -> str:
    """A name fit for a log line: bytes that are not UTF-8 shown as ``\\xNN`` escapes."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def is_valid_utf8(name: str) -> bool:
    """False for a name decoded with surrogate escapes (its bytes were not UTF-8)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_known_devices: set[str] = set()  # device ids already checked against the pattern (a few hundred)


def check(local_path: str) -> None:
    """Refuse a path that could climb, is not one, or is not beneath a device folder.

    Runs for every file of a burst, so the usual plain path costs a few substring tests; only
    a path holding ``//``, ``/.`` or NUL is split and looked at component by component.
    """
    device, _, _ = local_path.partition("/")
    if device not in _known_devices:
        if not DEVICE_ID_PATTERN.fullmatch(device):
            raise RefusedPathError("name", local_path, "not beneath a device folder")
        if len(_known_devices) < 100_000:
            _known_devices.add(device)
    if "//" in local_path or "/." in local_path or "\0" in local_path or local_path.endswith("/"):
        for part in local_path.split("/"):
            if part in ("", ".", "..") or "\0" in part:
                raise RefusedPathError("name", local_path, "not a plain relative path")


def split(local_path: str) -> list[str]:
    """The components of a checked device path (see :func:`check`)."""
    check(local_path)
    return local_path.split("/")


def refusal(local_path: str, exc: OSError) -> RefusedPathError | None:
    """The refusal an ``OSError`` from opening ``local_path`` stands for; None: the path is gone."""
    code = exc.errno
    if code in (errno.ENOENT, errno.ENOTDIR):
        return None
    if code in (errno.ELOOP, errno.EXDEV, errno.EMLINK):
        return RefusedPathError("symlink", local_path, "a symbolic link in the path (links are never followed)")
    if code == errno.ENAMETOOLONG:
        return RefusedPathError("too_long", local_path, "path longer than the system allows")
    if code in (errno.ENXIO, errno.ENODEV, errno.EWOULDBLOCK, errno.ETXTBSY):
        return RefusedPathError("type", local_path, "not a regular file")
    return RefusedPathError("unreadable", local_path, exc.strerror or str(exc))
