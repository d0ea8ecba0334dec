"""In-process state shared by a target's worker threads: path locks, live sessions, folder ids."""

from __future__ import annotations

import collections
import contextlib
import threading
from collections.abc import Iterator
from typing import Any


class PathLocks:
    """One lock per path while someone holds or waits for it (dropped after, so the map does not
    grow with every file ever uploaded)."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[threading.Lock, int]] = {}
        self._guard = threading.Lock()

    @contextlib.contextmanager
    def hold(self, path: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(path, (threading.Lock(), 0))
            self._locks[path] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[path]
                if users == 1:
                    del self._locks[path]
                else:
                    self._locks[path] = (lock, users - 1)


class LiveSessions:
    """The latest session state saved per (remote path, sha256, size) in this process, bounded."""

    LIMIT = 1000

    def __init__(self) -> None:
        self._states: collections.OrderedDict[tuple[str, str, int], dict[str, Any]] = collections.OrderedDict()
        self._guard = threading.Lock()

    def get(self, key: tuple[str, str, int], default: dict[str, Any] | None) -> dict[str, Any] | None:
        with self._guard:
            return self._states.get(key, default)

    def put(self, key: tuple[str, str, int], state: dict[str, Any] | None) -> None:
        with self._guard:
            self._states.pop(key, None)
            if state is not None:
                self._states[key] = state
                while len(self._states) > self.LIMIT:
                    self._states.popitem(last=False)


class FolderCache:
    """Folder ids by path; the root folder is ``root_id``."""

    def __init__(self, root_id: str) -> None:
        self.root_id = root_id
        self._ids: dict[str, str] = {}
        self._guard = threading.Lock()

    def get(self, path: str) -> str | None:
        with self._guard:
            return self._ids.get(path)

    def put(self, path: str, folder_id: str) -> None:
        with self._guard:
            self._ids[path] = folder_id

    def forget(self) -> bool:
        """Drop every cached id; True when there was one (a stale id may explain a 404)."""
        with self._guard:
            had = bool(self._ids)
            self._ids.clear()
            return had
