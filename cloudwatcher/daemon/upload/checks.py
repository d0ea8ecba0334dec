"""Is the device's file still what the ledger recorded? Asked before and after each upload.

A row names one version of a file (size, mtime, sha256). Uploading whatever the path holds now
would put content in the cloud under a hash it does not have, so each upload first checks the
file is that version (a touch without a change is fine: same bytes, new mtime) and afterwards
that it did not change while being read. A changed file fails its row for good; its new content
gets a row of its own when the watcher looks at it again.
"""

from __future__ import annotations

import os
from pathlib import Path

from cloudwatcher.daemon.ledger.recorder import sha256_of_fd
from cloudwatcher.daemon.ledger.store import ClaimedRow
from cloudwatcher.gateway import RefusedPathError, open_regular
from cloudwatcher.providers import FileChangedError, PermanentError


class LocalFileChangedError(FileChangedError):
    """The watched file is not what the ledger recorded: the watcher should look at it again."""


def unchanged_since_recorded(row: ClaimedRow, local_file: Path, watch_root: Path) -> int:
    """The mtime to upload ``local_file`` (``row``'s file) with; blocking (it may hash the file)."""
    try:
        info = os.lstat(local_file)
    except FileNotFoundError as exc:
        raise PermanentError(f"local file no longer exists: {row.local_path}") from exc
    if (info.st_size, info.st_mtime_ns) == (row.size, row.mtime_ns):
        return row.mtime_ns
    # Touched but not changed (same bytes) is no reason to fail: upload with the new mtime.
    if info.st_size != row.size or sha256_of(local_file, row.size, watch_root) != row.sha256:
        raise LocalFileChangedError("file changed since it was recorded; its new content gets its own row")
    return info.st_mtime_ns


def sha256_of(local_file: Path, size: int, watch_root: Path) -> str:
    """The sha256 of a device's file, read through the gateway (never through a link)."""
    try:
        reader = open_regular(local_file, watch_root)
    except RefusedPathError as exc:
        raise PermanentError(f"not read: {exc}") from exc
    try:
        return sha256_of_fd(reader, size)
    finally:
        os.close(reader)


def unchanged_during_upload(row: ClaimedRow, local_file: Path, mtime_ns: int) -> None:
    """Raise if the file's size or mtime moved while it was being uploaded."""
    after = os.lstat(local_file)
    if (after.st_size, after.st_mtime_ns) != (row.size, mtime_ns):
        raise LocalFileChangedError("file changed during upload; its new content gets its own row")
