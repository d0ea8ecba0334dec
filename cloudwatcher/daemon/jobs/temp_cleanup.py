"""Remove the daemon's own temporary files that a killed daemon (``kill -9``) left behind.

Every file the daemon writes goes to a dot-named temporary file first and is renamed into
place; a daemon killed between the two leaves the temporary file forever. Three kinds exist:

- mirror copies (local targets): ``.<name>.cloudwatcher-<pid>.tmp`` beside the destination;
- response files: ``.<name>.<12 hex digits>.tmp`` in a device's ``responses/`` folder;
- archive copies across filesystems: ``.<name>.cloudwatcher-archive.tmp`` under ``<state_dir>/archive``.

Only these names are touched, and only where the daemon writes them. A temporary file is
removed once it cannot belong to an upload or write still in progress: one named with a pid
when that process no longer exists on this host and the file is older than
:data:`DEAD_PID_GRACE_SECONDS`, any of them when older than :data:`STALE_SECONDS` (another host
sharing the folder, or a pid that was reused). Symbolic links are never followed; every error
costs only the entry it concerns.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = ["DEAD_PID_GRACE_SECONDS", "STALE_SECONDS", "remove_stale_temp_files"]

log = logging.getLogger(__name__)

#: A temporary file of a process that no longer exists is left this long (clock skew, NFS).
DEAD_PID_GRACE_SECONDS = 600.0
#: Any of the daemon's temporary files older than this is abandoned: no single write takes a day.
STALE_SECONDS = 86400.0
#: Response and archive temporaries carry no pid; a response is written in well under a second.
UNNAMED_STALE_SECONDS = 3600.0

_PID_LIMIT = 2**22  # Linux's highest possible pid_max
_MIRROR_TEMP = re.compile(r"\..+\.cloudwatcher-(\d+)\.tmp")
_RESPONSE_TEMP = re.compile(r"\..+\.[0-9a-f]{12}\.tmp")
_ARCHIVE_TEMP = re.compile(r"\..+\.cloudwatcher-archive\.tmp")


def process_exists(pid: int) -> bool:
    """Whether a process with this pid exists on this host (it may belong to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temp_files(
    *, watch_root: Path, state_dir: Path, mirror_roots: Iterable[Path], now: float | None = None
) -> int:
    """Remove abandoned temporary files of the daemon; returns how many were removed. Blocking."""
    current = time.time() if now is None else now
    removed = 0
    for root in mirror_roots:
        removed += _sweep(_files_under(root), _MIRROR_TEMP, current)
    removed += _sweep(_response_files(watch_root), _RESPONSE_TEMP, current)
    removed += _sweep(_files_under(state_dir / "archive"), _ARCHIVE_TEMP, current)
    if removed:
        log.info("removed %d temporary file(s) left by an interrupted daemon", removed)
    return removed


def _sweep(entries: Iterator[os.DirEntry[str]], pattern: re.Pattern[str], now: float) -> int:
    removed = 0
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None:
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(info.st_mode) or not _abandoned(match, now - info.st_mtime, pattern):
                continue
            os.unlink(entry.path)
            removed += 1
        except OSError as exc:  # vanished, or not ours to remove: leave it
            log.debug("could not remove temporary file %s: %s", entry.path, exc)
    return removed


def _abandoned(match: re.Match[str], age: float, pattern: re.Pattern[str]) -> bool:
    if age > STALE_SECONDS:
        return True
    if pattern is _MIRROR_TEMP:
        return age > DEAD_PID_GRACE_SECONDS and not _pid_alive(match.group(1))
    return age > UNNAMED_STALE_SECONDS


def _pid_alive(digits: str) -> bool:
    """Whether the pid in a temporary file's name is a running process (a number no pid can be is not)."""
    pid = int(digits)
    if not 0 < pid <= _PID_LIMIT:
        return False
    return process_exists(pid)


def _response_files(watch_root: Path) -> Iterator[os.DirEntry[str]]:
    """Files under each ``<watch_root>/<device>/responses/``, the only place responses are written."""
    for device in _entries(watch_root):
        if not _is_real_folder(device):
            continue
        for area in _entries(Path(device.path)):
            if area.name == "responses" and _is_real_folder(area):  # a linked responses/ is not entered
                yield from _files_under(Path(area.path))


def _is_real_folder(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _files_under(root: Path) -> Iterator[os.DirEntry[str]]:
    """Every regular-looking entry below ``root``, never through a symbolic link."""
    folders = [root]
    while folders:
        for entry in _entries(folders.pop()):
            try:
                if entry.is_dir(follow_symlinks=False):
                    folders.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    yield entry
            except OSError:
                continue


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as listing:
            return list(listing)
    except OSError:  # missing, not a folder, or unreadable: nothing of ours to clean there
        return []
