"""Walk the watch root (never following symbolic links) and report the files the daemon takes."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cloudwatcher.daemon.layout import AREAS, DroppedPath, classify, is_device_id, is_in_progress_name

log = logging.getLogger(__name__)


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


def stat_candidate(watch_root: Path, absolute: Path, warn: WarnOnce) -> Candidate | None:
    """The candidate for one path, or None when it is not a regular file we take."""
    try:
        relative = absolute.relative_to(watch_root).as_posix()
    except ValueError:
        return None
    dropped = classify(relative)
    if dropped is None:
        return None
    try:
        info = os.lstat(absolute)
    except (FileNotFoundError, NotADirectoryError):
        return None  # vanished before it was recorded: skipped quietly
    if stat.S_ISLNK(info.st_mode):
        warn(relative, "ignoring symbolic link %s (links are never followed)", relative)
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return Candidate(relative, str(absolute), info.st_size, info.st_mtime_ns, dropped)


class TreeScanner:
    """Full reconcile scans of ``watch_root`` or of one folder inside it."""

    def __init__(self, watch_root: Path, warn: WarnOnce) -> None:
        self.watch_root = watch_root
        self._prefix = os.path.join(watch_root, "")  # "<root>/": what every walked path starts with
        self.warn = warn
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
                yield from self._scan_device(start)
        elif parts[1] in AREAS and is_device_id(parts[0]):
            yield from self._walk(start)

    def _scan_root(self) -> Iterator[Candidate]:
        try:
            entries = list(os.scandir(self.watch_root))
        except FileNotFoundError:
            return
        for entry in entries:
            if entry.is_symlink():
                self.warn(entry.name, "ignoring symbolic link %s under the watch root", entry.name)
            elif not entry.is_dir(follow_symlinks=False) or not is_device_id(entry.name):
                self.warn(
                    entry.name,
                    "ignoring %s: not a device folder (device ids match ^[A-Za-z0-9][A-Za-z0-9._-]{0,49}$)",
                    entry.name,
                )
            else:
                yield from self._scan_device(Path(entry.path))

    def _scan_device(self, device_dir: Path) -> Iterator[Candidate]:
        try:
            entries = list(os.scandir(device_dir))
        except (FileNotFoundError, NotADirectoryError):
            return
        for entry in entries:
            key = f"{device_dir.name}/{entry.name}"
            if entry.name in AREAS and entry.is_dir(follow_symlinks=False):
                yield from self._walk(Path(entry.path))
            elif not is_in_progress_name(entry.name):
                self.warn(key, "ignoring %s: only requests/ and responses/ are taken", key)

    def _relative(self, walked: str) -> str:
        """``<root>/dev/requests/a.txt`` → ``dev/requests/a.txt`` (string work: this runs per file)."""
        if walked.startswith(self._prefix):
            return walked[len(self._prefix) :]
        return Path(walked).relative_to(self.watch_root).as_posix()

    def _walk(self, folder: Path) -> Iterator[Candidate]:
        self.folders_seen += 1
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            return
        except PermissionError:
            log.warning("cannot read folder %s (permission denied)", folder)
            return
        for entry in entries:
            if is_in_progress_name(entry.name):
                continue
            if entry.is_symlink():
                relative = self._relative(entry.path)
                self.warn(relative, "ignoring symbolic link %s (links are never followed)", relative)
            elif entry.is_dir(follow_symlinks=False):
                yield from self._walk(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                try:
                    info = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                relative = self._relative(entry.path)
                dropped = classify(relative)
                if dropped is not None:
                    yield Candidate(relative, entry.path, info.st_size, info.st_mtime_ns, dropped)
