"""Device files the daemon skipped: one warning per path, a metric, and a count per device.

A skipped file (a name that is not UTF-8, a symbolic link in its path, a FIFO, a path beyond
the system's limits, an entry that cannot be read) stays where the device put it; this is how
it is reported. The same file is found again by every reconcile scan, so each path is warned
about and counted once per daemon run. ``cloudwatcher status`` works without a daemon, so the
count per device goes to the database (``device_skipped_files``) in one statement every few
seconds, never one per file. The scanner calls :meth:`SkipTally.skipped` from worker threads.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter

import asyncpg

from cloudwatcher.daemon.ops import metrics
from cloudwatcher.gateway import RefusedPathError, SkipReason, escaped
from cloudwatcher.layout import is_device_id
from cloudwatcher.schema import queries

log = logging.getLogger(__name__)

_REMEMBERED_PATHS = 100_000  # paths warned about; past this the set starts again (memory stays bounded)


class SkipTally:
    """Skipped paths seen this run, and the per-device counts not yet written to the database."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._unsaved: Counter[str] = Counter()
        self._lock = threading.Lock()

    def skipped(self, local_path: str, reason: SkipReason, why: str) -> None:
        """Report ``local_path`` (relative to the watch root) as skipped for ``reason``."""
        with self._lock:
            if local_path in self._seen:
                return
            if len(self._seen) >= _REMEMBERED_PATHS:
                self._seen.clear()
            self._seen.add(local_path)
            device = local_path.split("/", 1)[0]
            if is_device_id(device):
                self._unsaved[device] += 1
        metrics.record_skipped_file(reason)
        log.warning("skipping %s: %s (the file stays where the device put it)", escaped(local_path), why)

    def refused(self, error: RefusedPathError) -> None:
        """Report a path the gateway refused."""
        self.skipped(error.local_path, error.reason, error.why)

    def take_unsaved(self) -> dict[str, int]:
        """The counts per device since the last call (the caller writes them, or hands them back)."""
        with self._lock:
            unsaved, self._unsaved = dict(self._unsaved), Counter()
        return unsaved

    def give_back(self, counts: dict[str, int]) -> None:
        """Counts that could not be written: kept for the next flush."""
        with self._lock:
            self._unsaved.update(counts)

    async def save(self, pool: asyncpg.Pool) -> None:
        """Add the counts gathered since the last save to ``device_skipped_files``."""
        counts = self.take_unsaved()
        if not counts:
            return
        try:
            await pool.execute(queries.ADD_SKIPPED_FILES, list(counts), list(counts.values()))
        except BaseException:
            self.give_back(counts)
            raise


#: The daemon's one tally (like :mod:`~cloudwatcher.daemon.ops.metrics`, one per process).
SKIPS = SkipTally()
