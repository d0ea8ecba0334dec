"""Walk the watch root (never following symbolic links) and report the files the daemon takes.

Every device folder is opened through the gateway (:mod:`cloudwatcher.gateway`), one
descriptor per folder, and listed with ``os.scandir`` on that descriptor: a folder swapped for
a link between two steps of the walk is refused, never walked. The walk keeps a stack, not the
call stack, so folders nested thousands deep cost memory, not a ``RecursionError``. Whatever
one entry raises is that entry's problem: it is reported (:mod:`cloudwatcher.daemon.watch.skips`)
and the walk goes on.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cloudwatcher.daemon.watch.skips import SKIPS
from cloudwatcher.gateway import MTIME_NS_RANGE, RefusedPathError, device_tree, escaped, is_valid_utf8
from cloudwatcher.layout import AREAS, DroppedPath, classify, is_device_id, is_in_progress_name

log = logging.getLogger(__name__)

#: The longest local path taken, in characters. A target stores its root or prefix plus this
#: path in the ledger's ``cloud_path`` (at most 2,000 characters), so a longer one could be
#: recorded but never marked synced; longer paths (folders nested hundreds deep) are skipped,
#: and the walk does not go below a folder whose path is already this long.
MAX_LOCAL_PATH = 1024
_MTIME_OUT_OF_RANGE = "its modification time is beyond the years 1677-2262 the ledger can record"


@dataclass(slots=True)
class Candidate:
    """A regular file seen under the watch root, with the stat that saw it.

    Built for every file of a burst, so it is cheap to build: the absolute path stays the string
    the walk produced (a ``Path`` costs a parse here and a format at each system call), the
    classification the scanner already made travels along, and the dataclass is not frozen
    (a frozen one's ``__init__`` sets each field through ``object.__setattr__``, 4x slower).
    """

    local_path: str
    absolute_path: str
    size: int
    mtime_ns: int
    dropped: DroppedPath | None = None  # classify(local_path), when the finder has it at hand


class WarnOnce:
    """Warn about each ignored entry once per daemon lifetime, not once per scan."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def __call__(self, key: str, message: str, *args: object) -> None:
        if key not in self._seen:
            self._seen.add(key)
            log.warning(message, *args)


def _first_too_long(relative: str) -> str:
    """The shortest leading part of ``relative`` (whole names) that is longer than ``MAX_LOCAL_PATH``."""
    end = relative.find("/", MAX_LOCAL_PATH + 1)
    return relative if end == -1 else relative[:end]


def stat_candidate(watch_root: Path, absolute: Path, warn: WarnOnce) -> Candidate | None:
    """The candidate for one path, or None when it is not a regular file we take.

    A plain ``lstat``: it reads no byte, and the gateway refuses a path with a link in it when
    the recorder opens the file to hash it.
    """
    try:
        relative = absolute.relative_to(watch_root).as_posix()
    except ValueError:
        return None
    dropped = classify(relative)
    if dropped is None:
        return None
    if not is_valid_utf8(relative):
        SKIPS.skipped(relative, "name", "the name is not valid UTF-8")
        return None
    if len(relative) > MAX_LOCAL_PATH:
        # Reported at the first folder (or file) past the limit, as the walk reports it: a device
        # nesting folders ever deeper sends an event per level, and all of them are one skip.
        SKIPS.skipped(_first_too_long(relative), "too_long", f"the path is longer than {MAX_LOCAL_PATH} characters")
        return None
    try:
        info = os.lstat(absolute)
    except (FileNotFoundError, NotADirectoryError):
        return None  # vanished before it was recorded: skipped quietly
    except OSError as exc:
        SKIPS.skipped(relative, "too_long" if exc.errno == errno.ENAMETOOLONG else "unreadable", str(exc.strerror))
        return None
    if stat.S_ISLNK(info.st_mode):
        SKIPS.skipped(relative, "symlink", "a symbolic link (links are never followed)")
        return None
    if not stat.S_ISREG(info.st_mode):
        if not stat.S_ISDIR(info.st_mode):
            SKIPS.skipped(relative, "type", "not a regular file")
        return None
    if info.st_mtime_ns not in MTIME_NS_RANGE:
        SKIPS.skipped(relative, "mtime", _MTIME_OUT_OF_RANGE)
        return None
    return Candidate(relative, str(absolute), info.st_size, info.st_mtime_ns, dropped)


class TreeScanner:
    """Full reconcile scans of ``watch_root`` or of one folder inside it."""

    def __init__(self, watch_root: Path, warn: WarnOnce) -> None:
        self.watch_root = watch_root
        self._prefix = os.path.join(watch_root, "")  # "<root>/": what every walked path starts with
        self.warn = warn
        self.tree = device_tree(watch_root)
        self.folders_seen = 0

    def scan(self, folder: Path | None = None) -> Iterator[Candidate]:
        start = folder or self.watch_root
        try:
            relative = start.relative_to(self.watch_root).as_posix()
        except ValueError:
            return
        parts = [] if relative == "." else relative.split("/")
        if len(parts) == 0:
            yield from self._scan_root()
        elif len(parts) == 1:
            if is_device_id(parts[0]):
                yield from self._scan_device(parts[0])
        elif parts[1] in AREAS and is_device_id(parts[0]):
            yield from self._walk(relative)

    def _scan_root(self) -> Iterator[Candidate]:
        try:
            entries = list(os.scandir(self.watch_root))
        except FileNotFoundError:
            return
        for entry in entries:
            if entry.is_symlink():
                self.warn(entry.name, "ignoring symbolic link %s under the watch root", escaped(entry.name))
            elif not entry.is_dir(follow_symlinks=False) or not is_device_id(entry.name):
                self.warn(
                    entry.name,
                    "ignoring %s: not a device folder (device ids match ^[A-Za-z0-9][A-Za-z0-9._-]{0,49}$)",
                    escaped(entry.name),
                )
            else:
                yield from self._scan_device(entry.name)

    def _scan_device(self, device_id: str) -> Iterator[Candidate]:
        areas: list[str] = []
        for entry in self._entries(device_id):
            key = f"{device_id}/{entry.name}"
            try:
                if entry.name in AREAS and entry.is_dir(follow_symlinks=False):
                    areas.append(key)
                elif entry.name in AREAS and entry.is_symlink():
                    SKIPS.skipped(key, "symlink", "a symbolic link (links are never followed)")
                elif not is_in_progress_name(entry.name):
                    self.warn(key, "ignoring %s: only requests/ and responses/ are taken", escaped(key))
            except OSError as exc:
                SKIPS.skipped(key, "unreadable", str(exc.strerror or exc))
        for area in areas:
            yield from self._walk(area)

    def _entries(self, folder: str) -> Iterator[os.DirEntry[str]]:
        """The entries of ``folder`` (relative), listed through the gateway; nothing, reported,
        when it is refused or cannot be listed.

        The folder's descriptor stays open only while the entries are looked at (a ``DirEntry``
        of a descriptor scan stats through that descriptor), so a deep tree holds one at a time.
        """
        try:
            fd = self.tree.open_folder(folder)
        except FileNotFoundError:
            return
        except RefusedPathError as refused:
            SKIPS.refused(refused)
            return
        try:
            with os.scandir(fd) as listing:
                yield from listing
        except OSError as exc:
            SKIPS.skipped(folder, "unreadable", f"cannot list the folder: {exc.strerror or exc}")
        finally:
            os.close(fd)

    def _walk(self, start: str) -> Iterator[Candidate]:
        """Every file beneath the folder ``start`` (relative to the watch root), depth first."""
        pending = [start]
        while pending:
            folder = pending.pop()
            self.folders_seen += 1
            yield from self._files_of(folder, pending)

    def _files_of(self, folder: str, pending: list[str]) -> list[Candidate]:
        """The files directly in ``folder``; its subfolders are added to ``pending``."""
        found: list[Candidate] = []
        for entry in self._entries(folder):
            candidate = self._look_at_entry(folder, entry, pending)
            if candidate is not None:
                found.append(candidate)
        return found

    def _look_at_entry(self, folder: str, entry: os.DirEntry[str], pending: list[str]) -> Candidate | None:
        """One entry of a walked folder: a file we take, a folder to walk, or something reported."""
        name = entry.name
        if is_in_progress_name(name):
            return None
        relative = f"{folder}/{name}"
        try:
            if not is_valid_utf8(name):
                SKIPS.skipped(relative, "name", "the name is not valid UTF-8")
            elif entry.is_symlink():
                SKIPS.skipped(relative, "symlink", "a symbolic link (links are never followed)")
            elif len(relative) > MAX_LOCAL_PATH:
                # A walk may start below the limit's folder (a watch event for a deeper folder):
                # the skip is still the first folder past the limit, counted once.
                SKIPS.skipped(
                    _first_too_long(relative), "too_long", f"the path is longer than {MAX_LOCAL_PATH} characters"
                )
            elif entry.is_dir(follow_symlinks=False):
                pending.append(relative)
            elif entry.is_file(follow_symlinks=False):
                info = entry.stat(follow_symlinks=False)
                dropped = classify(relative)
                if dropped is not None and info.st_mtime_ns not in MTIME_NS_RANGE:
                    SKIPS.skipped(relative, "mtime", _MTIME_OUT_OF_RANGE)
                elif dropped is not None:
                    return Candidate(relative, self._prefix + relative, info.st_size, info.st_mtime_ns, dropped)
            else:
                SKIPS.skipped(relative, "type", "not a regular file (FIFOs, sockets and devices are never read)")
        except (FileNotFoundError, NotADirectoryError):
            return None  # gone since the folder was listed
        except OSError as exc:
            SKIPS.skipped(relative, "unreadable", str(exc.strerror or exc))
        return None
