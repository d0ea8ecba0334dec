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
import stat
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

from asyncinotify import Event, Inotify, Mask

log = logging.getLogger(__name__)

__all__ = ["DRAIN_SECONDS", "OverflowWatch", "folders_below", "overflow_rescans", "watch_new_trees", "watch_tree"]

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


def folders_below(root: bytes) -> Iterator[bytes]:
    """``root`` and every real folder beneath it, as bytes paths (names need not be UTF-8).

    A loop with an explicit stack, not recursion: a device may nest folders thousands deep.
    Folders that vanish or cannot be read are passed over; links are not followed.
    """
    stack = [root]
    while stack:
        folder = stack.pop()
        yield folder
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                    except OSError:
                        continue
        except OSError:
            continue


def watch_tree(inotify: Inotify, top: bytes, mask: Mask) -> int:
    """Add a watch with ``mask`` on ``top`` and every real folder below it (blocking); how many."""
    count = 0
    for folder in folders_below(top):
        try:
            inotify.add_watch(folder, mask)
            count += 1
        except OSError as exc:
            # Gone, not a folder any more, or out of watches (the watcher warns about those).
            log.debug("no inotify watch on %r: %s", folder, exc)
    return count


def watch_new_trees(inotify: Inotify, folders: list[bytes], mask: Mask) -> None:
    """Watch each of ``folders`` that is still a real folder, and what is below it (blocking)."""
    for folder in folders:
        if is_real_folder(folder):
            watch_tree(inotify, folder, mask)


class OverflowWatch:
    """The inotify instance that exists only to see ``IN_Q_OVERFLOW``."""

    def __init__(self, watch_root: Path, rescan: Callable[[], Awaitable[object]]) -> None:
        self.watch_root = watch_root
        self.rescan = rescan
        self.overflows = 0
        self._inotify = Inotify(sync_timeout=0, cache_size=1024)
        self._rescan_wanted = asyncio.Event()

    def close(self) -> None:
        self._inotify.close()

    def watch_tree(self, top: bytes) -> int:
        """Watch ``top`` and the folders below it (blocking: run it in a thread); how many."""
        return watch_tree(self._inotify, top, _WATCH_MASK)

    def drain(self) -> tuple[bool, list[bytes]]:
        """Read everything queued: whether it overflowed, and the new folders to watch."""
        overflowed = False
        new_folders: list[bytes] = []
        while True:
            try:
                event: Event | None = self._inotify.sync_get()
            except BlockingIOError:
                event = None
            if event is None:
                return overflowed, new_folders
            if Mask.Q_OVERFLOW in event.mask:
                overflowed = True
            elif Mask.ISDIR in event.mask and event.mask & (Mask.CREATE | Mask.MOVED_TO) and event.path is not None:
                new_folders.append(os.fsencode(event.path))

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
        watch_new_trees(self._inotify, folders, _WATCH_MASK)

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


def is_real_folder(path: bytes) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


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
