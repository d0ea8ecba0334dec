"""Notice when the kernel's inotify queue overflowed, and rescan the watch root within seconds.

When more events arrive than ``fs.inotify.max_queued_events`` lets an inotify instance hold,
the kernel drops them and queues one ``IN_Q_OVERFLOW`` instead. watchfiles sees that event
but does not pass it on, so a burst of thousands of files could wait for the next periodic
reconcile scan (minutes).

This module keeps an inotify instance of its own (through asyncinotify) on the same folders
with the same event mask as watchfiles' (that of the ``notify`` crate it uses), so it receives
the same events. It does not act on them; it reads its queue only every
:data:`DRAIN_SECONDS`, while watchfiles reads continuously, so its queue is always at least as
full as watchfiles' and overflows whenever that one can. On ``IN_Q_OVERFLOW`` it asks for a
full rescan of the watch root (one at a time; overflows during a rescan ask for one more). An
overflow of this queue alone costs one needless rescan; one missed here is still caught by the
periodic scan.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from asyncinotify import Mask

from cloudwatcher.daemon.watch.inotify_queue import (
    Folders,
    folders_below,
    new_inotify,
    read_queued,
    watch_new_trees,
    watch_tree,
)

log = logging.getLogger(__name__)

__all__ = ["DRAIN_SECONDS", "OverflowWatch", "folders_below", "overflow_rescans"]

#: How often the queue is read: the bound on how late an overflow is noticed.
DRAIN_SECONDS = 0.5

# The mask watchfiles' notify crate gives every watch, so both queues fill alike.
WATCHFILES_MASK = (
    Mask.ATTRIB
    | Mask.CREATE
    | Mask.DELETE
    | Mask.CLOSE_WRITE
    | Mask.MODIFY
    | Mask.MOVED_FROM
    | Mask.MOVED_TO
    | Mask.DELETE_SELF
    | Mask.MOVE_SELF
)
# A symbolic link is never followed into (a device could point it anywhere).
_WATCH_MASK = WATCHFILES_MASK | Mask.ONLYDIR | Mask.DONT_FOLLOW


class OverflowWatch:
    """The inotify instance that exists only to see ``IN_Q_OVERFLOW``."""

    def __init__(self, watch_root: Path, rescan: Callable[[], Awaitable[object]]) -> None:
        self.watch_root = watch_root
        self.rescan = rescan
        self.overflows = 0
        self._inotify = new_inotify()
        self._folders: Folders = {}
        self._rescan_wanted = asyncio.Event()

    def close(self) -> None:
        self._inotify.close()

    def watch_tree(self, top: bytes) -> int:
        """Watch ``top`` and the folders below it (blocking: run it in a thread); how many."""
        return watch_tree(self._inotify, top, _WATCH_MASK, self._folders)

    def drain(self) -> tuple[bool, list[bytes]]:
        """Read everything queued: whether it overflowed, and the new folders to watch.

        In bulk (:func:`~cloudwatcher.daemon.watch.inotify_queue.read_queued`): this queue holds
        every event of a burst, and only overflows and new folders are of interest."""
        overflowed, events = read_queued(self._inotify.fd, Mask.ISDIR)
        new_folders = [
            self._folders[wd] + b"/" + name
            for wd, mask, name in events
            if mask & (Mask.CREATE | Mask.MOVED_TO) and name and wd in self._folders
        ]
        return overflowed, new_folders

    async def run(self) -> None:
        """Watch the tree, then drain every :data:`DRAIN_SECONDS` until cancelled."""
        rescans = asyncio.create_task(self._rescan_loop(), name="overflow-rescans")
        try:
            await self._watch_and_drain()
        except Exception:  # the daemon goes on without it: the periodic scan still finds every file
            log.exception("the inotify overflow watch stopped")
        finally:
            rescans.cancel()
            await asyncio.gather(rescans, return_exceptions=True)

    async def _watch_and_drain(self) -> None:
        """Watch the tree, then drain the queue every :data:`DRAIN_SECONDS`."""
        await asyncio.to_thread(self.watch_tree, os.fsencode(self.watch_root))
        while True:
            await asyncio.sleep(DRAIN_SECONDS)
            overflowed, new_folders = self.drain()
            if overflowed:
                self.overflows += 1
                log.warning(
                    "the inotify event queue overflowed (fs.inotify.max_queued_events); "
                    "rescanning the watch root so that no file waits for the periodic scan"
                )
                self._rescan_wanted.set()
                # Folders made while events were being dropped raised none that reached us.
                new_folders = [os.fsencode(self.watch_root)]
            if new_folders:
                await asyncio.to_thread(self._watch_trees, new_folders)

    def _watch_trees(self, folders: list[bytes]) -> None:
        """Watch each of ``folders`` that is still a real folder, and what is below it."""
        watch_new_trees(self._inotify, folders, _WATCH_MASK, self._folders)

    async def _rescan_loop(self) -> None:
        while True:
            await self._rescan_wanted.wait()
            self._rescan_wanted.clear()
            try:
                await self.rescan()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("rescan after an inotify overflow failed; the periodic scan will catch up")


@contextlib.asynccontextmanager
async def overflow_rescans(watch_root: Path, rescan: Callable[[], Awaitable[object]]) -> AsyncIterator[None]:
    """Run an :class:`OverflowWatch` on ``watch_root`` while the body runs (inotify only).

    Without one (no inotify, or no instance left under ``fs.inotify.max_user_instances``) the
    daemon still works: it warns, and the periodic reconcile scan finds what events missed.
    """
    try:
        watch = OverflowWatch(watch_root, rescan)
    except OSError as exc:
        log.warning("cannot watch for inotify queue overflows (%s); the periodic scan covers them", exc)
        yield
        return
    task = asyncio.create_task(watch.run(), name="overflow-watch")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        watch.close()
