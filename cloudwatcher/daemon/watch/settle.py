"""Decide when a file is finished: its size and mtime unchanged for ``settle_seconds``.

A file whose mtime is already older than ``settle_seconds`` when it is noticed has settled
(the common case: devices rename finished files into place, and files found by a scan).
A far-future or pre-1970 mtime only changes how long a file is watched, never raises.
Otherwise we watch it ourselves: our own observation of "unchanged for settle_seconds" also
covers devices whose clocks disagree with ours.

A file renamed into place that no writer holds open is finished without waiting
(:mod:`cloudwatcher.daemon.watch.moved_in`); the settler is told (:meth:`Settler.handed`), so
that the watchfiles event for the same file a moment later does not start a wait of its own.
"""

from __future__ import annotations

import heapq
import os
import stat
import time
from dataclasses import dataclass

from cloudwatcher.daemon.watch.scanner import Candidate
from cloudwatcher.daemon.watch.skips import SKIPS
from cloudwatcher.gateway import MTIME_NS_RANGE, SkipReason


@dataclass
class _Watched:
    candidate: Candidate
    unchanged_since: float  # monotonic time of the first observation with this size/mtime


class Settler:
    def __init__(self, settle_seconds: float) -> None:
        self.settle_seconds = settle_seconds
        self._watched: dict[str, _Watched] = {}
        self._due: list[tuple[float, str]] = []
        # Files handed over without waiting: path -> (size, mtime_ns, monotonic time to forget
        # it), oldest first. Kept for settle_seconds (at least a second): long enough for the
        # watchfiles event of the same rename, short enough to stay small under a burst.
        self._handed: dict[str, tuple[int, int, float]] = {}

    def __len__(self) -> int:
        return len(self._watched)

    def offer(self, candidate: Candidate) -> Candidate | None:
        """Return the candidate when it has settled now; otherwise keep watching it."""
        handed = self._handed.get(candidate.local_path)
        if handed is not None:
            if handed[:2] == (candidate.size, candidate.mtime_ns) and handed[2] > time.monotonic():
                return None  # this very version was handed over already
            del self._handed[candidate.local_path]
        age = time.time() - candidate.mtime_ns / 1e9
        if age >= self.settle_seconds:
            self._watched.pop(candidate.local_path, None)
            return candidate
        now = time.monotonic()
        known = self._watched.get(candidate.local_path)
        if known and (known.candidate.size, known.candidate.mtime_ns) == (candidate.size, candidate.mtime_ns):
            return None
        self._watched[candidate.local_path] = _Watched(candidate, now)
        wait = min(self.settle_seconds - age, self.settle_seconds)
        heapq.heappush(self._due, (now + max(wait, 0.0), candidate.local_path))
        return None

    def handed(self, candidate: Candidate) -> None:
        """``candidate`` was found finished and handed over without waiting: stop watching it,
        and take offers of the same version during the next moments as already handed."""
        self._watched.pop(candidate.local_path, None)
        now = time.monotonic()
        while self._handed:  # forget the expired ones, oldest first
            oldest = next(iter(self._handed))
            if self._handed[oldest][2] > now:
                break
            del self._handed[oldest]
        self._handed.pop(candidate.local_path, None)  # re-inserted last: the order stays oldest first
        self._handed[candidate.local_path] = (
            candidate.size,
            candidate.mtime_ns,
            now + max(self.settle_seconds, 1.0),
        )

    def next_due_in(self) -> float | None:
        """Seconds until the next watched file should be looked at again."""
        if not self._due:
            return None
        return max(0.0, self._due[0][0] - time.monotonic())

    def collect_due(self) -> list[Candidate]:
        """Re-stat every file whose time has come; return those that have settled."""
        now = time.monotonic()
        settled: list[Candidate] = []
        while self._due and self._due[0][0] <= now:
            _, path = heapq.heappop(self._due)
            watched = self._watched.get(path)
            if watched is None:
                continue
            old = watched.candidate
            try:
                info = os.lstat(old.absolute_path)
            except (FileNotFoundError, NotADirectoryError):
                del self._watched[path]  # gone, or a folder of its path replaced by a file
                continue
            except OSError as exc:  # e.g. a folder of its path made unreadable: this file's problem only
                del self._watched[path]
                SKIPS.skipped(path, "unreadable", str(exc.strerror or exc))
                continue
            if info.st_mtime_ns not in MTIME_NS_RANGE:
                del self._watched[path]
                SKIPS.skipped(path, "mtime", "its modification time is beyond what the ledger can record")
                continue
            if not stat.S_ISREG(info.st_mode):
                del self._watched[path]
                if not stat.S_ISDIR(info.st_mode):
                    reason: SkipReason = "symlink" if stat.S_ISLNK(info.st_mode) else "type"
                    SKIPS.skipped(path, reason, "no longer a regular file")
                continue
            if (info.st_size, info.st_mtime_ns) != (old.size, old.mtime_ns):
                fresh = Candidate(old.local_path, old.absolute_path, info.st_size, info.st_mtime_ns, old.dropped)
                self._watched[path] = _Watched(fresh, now)
                heapq.heappush(self._due, (now + self.settle_seconds, path))
                continue
            mtime_age = time.time() - old.mtime_ns / 1e9
            if mtime_age >= self.settle_seconds or now - watched.unchanged_since >= self.settle_seconds:
                del self._watched[path]
                settled.append(old)
            else:
                wait = min(self.settle_seconds - mtime_age, self.settle_seconds - (now - watched.unchanged_since))
                heapq.heappush(self._due, (now + max(wait, 0.01), path))
        return settled
