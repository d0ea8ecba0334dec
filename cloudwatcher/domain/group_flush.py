"""Group commit for response files: one ``syncfs`` makes every response written before it durable.

A response file used to cost two fsyncs (the file, then its folder for the rename): 2.3 ms here
per response, paid one device at a time. The local mirror already groups its own files this way
(:mod:`cloudwatcher.providers.local.syncfs`); responses do the same. Callers that arrive while a
flush runs wait for it to end and share the next one, as PostgreSQL's WAL group commit does, so
fifty devices answering at the same moment pay for a couple of flushes, not fifty.

A flush is exact: a caller returns only after a ``syncfs`` that *started* after its call, so
every file it wrote before calling is on disk.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from cloudwatcher.providers.local.syncfs import SYNCFS_AVAILABLE, syncfs


class GroupFlush:
    """Shared by every device of one watch root (it lives in the daemon's ``IngestContext``)."""

    available = SYNCFS_AVAILABLE

    def __init__(self) -> None:
        self._lock: asyncio.Lock | None = None
        self._started = 0  # flushes begun
        self._finished = 0  # flushes that returned (all of them begun after the earlier ones ended)

    @property
    def busy(self) -> bool:
        """A flush is running or waited for: joining it costs less than an fsync of one's own."""
        return self._lock is not None and self._lock.locked()

    @staticmethod
    def filesystem(path: str | Path) -> int:
        """The ``st_dev`` a flush of ``path`` covers (for ``write_response(flushed_with=...)``)."""
        return os.stat(path).st_dev

    async def flush(self, path: str | Path) -> None:
        """Return once a ``syncfs`` of ``path``'s filesystem begun after this call has completed."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        wanted = self._started + 1
        async with self._lock:
            if self._finished >= wanted:
                return  # a flush begun after our call ended while we waited: it covered our files
            self._started += 1
            await asyncio.to_thread(syncfs, path)
            self._finished = self._started
