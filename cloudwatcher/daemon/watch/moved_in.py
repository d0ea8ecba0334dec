"""Files renamed into place, told apart from files still being written, without the settle wait.

Devices write a file under a dot-temp name and rename it into place when it is complete. The
settle rule (:mod:`cloudwatcher.daemon.watch.settle`) cannot tell such a file from one still
being written: its mtime is fresh, so it waited the whole ``settle_seconds`` (a second by
default) before it was recorded, which made the one-by-one burst of issue #20 wait a second
past its last file and put the settle time under every file's latency.

watchfiles reports a file renamed in as "added", like a file just created, so this module keeps
an inotify instance of its own (made with asyncinotify, read in bulk as in
:mod:`cloudwatcher.daemon.watch.inotify_queue`) that hears ``IN_MOVED_TO``, plus folder creation
to watch new folders. A rename is a hint,
never proof: a writer may rename a file it still holds open and go on writing. So a file renamed
in is taken at once only when the kernel says nobody holds it open for writing, by any name:
``F_SETLEASE`` with ``F_RDLCK`` on a read-only descriptor fails with ``EAGAIN`` while any
descriptor (or writable mapping) of the file is open for writing, and the lease is released
straight away. Everything else falls back to the settle rule: a file open for writing, a lease
the kernel refuses (a file of another user without ``CAP_LEASE``, a filesystem without leases),
anything the gateway refuses. The file is opened through the gateway (no link followed, a
regular file of the size and mtime just seen, a FIFO never blocks), so hostile entries stay
contained exactly as on the settle path.

The lease is held for two system calls. A writer opening the file in between would have the
kernel signal this process (``SIGIO``) and wait for the release: ``SIGIO``'s default action
ends a process, so it is ignored here (nothing else in the daemon uses it), and the lease check
is not attempted at all where that cannot be arranged.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import signal
import threading
from collections.abc import AsyncIterator
from pathlib import Path

from asyncinotify import Mask

from cloudwatcher.daemon.watch.inotify_queue import Folders, new_inotify, read_queued, watch_new_trees, watch_tree
from cloudwatcher.daemon.watch.scanner import Candidate
from cloudwatcher.gateway import ChangedFileError, RefusedPathError, tree_holding

log = logging.getLogger(__name__)

__all__ = ["MovedInWatch", "leases_usable", "no_writer_holds"]

# Renames in, and folders made or moved in (to watch them too); links never followed.
_MASK = Mask.MOVED_TO | Mask.CREATE | Mask.ONLYDIR | Mask.DONT_FOLLOW
_MOST_AT_ONCE = 1000  # events handed on as one batch


_leases_checked: bool | None = None
_leases_lock = threading.Lock()


def leases_usable() -> bool:
    """Whether the lease check may run: ``SIGIO`` ignored (set here once, from the main thread)."""
    global _leases_checked
    with _leases_lock:
        if _leases_checked is None:
            try:
                if signal.getsignal(signal.SIGIO) in (signal.SIG_DFL, None):
                    signal.signal(signal.SIGIO, signal.SIG_IGN)
                _leases_checked = signal.getsignal(signal.SIGIO) == signal.SIG_IGN
            except ValueError:  # not the main thread: cannot be arranged from here
                return False
            if not _leases_checked:
                log.info("SIGIO has a handler; files renamed into place wait for the settle time")
        return _leases_checked


def no_writer_holds(candidate: Candidate) -> bool:
    """True when ``candidate`` is still the file just seen (through the gateway) and no descriptor
    anywhere holds it open for writing; False in every other case, which leaves it to the settle
    rule. Blocking (a few system calls): run it off the event loop."""
    try:
        tree = tree_holding(candidate.absolute_path, candidate.local_path)
        fd, _ = tree.open_file(candidate.local_path, size=candidate.size, mtime_ns=candidate.mtime_ns)
    except (OSError, ChangedFileError, RefusedPathError):
        return False  # gone, changed or refused: the settle path looks again and reports it
    try:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except OSError as exc:
        if exc.errno != errno.EAGAIN:  # EAGAIN: open for writing; others: no lease for us here
            log.debug("no lease on %r (%s): it settles by time", candidate.local_path, exc)
        return False
    else:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
        return True
    finally:
        os.close(fd)


class MovedInWatch:
    """An inotify instance on every folder of the watch root that hears files renamed in."""

    def __init__(self, watch_root: Path) -> None:
        self.watch_root = watch_root
        self._inotify = new_inotify()  # read here with read_queued, not through asyncinotify
        self._folders: Folders = {}

    def close(self) -> None:
        self._inotify.close()

    async def batches(self) -> AsyncIterator[list[Path]]:
        """The paths of files renamed in, a batch at a time (all that arrived together)."""
        await asyncio.to_thread(watch_tree, self._inotify, os.fsencode(self.watch_root), _MASK, self._folders)
        loop = asyncio.get_running_loop()
        readable = asyncio.Event()
        loop.add_reader(self._inotify.fd, readable.set)
        try:
            while True:
                await readable.wait()
                readable.clear()
                # An overflow is the overflow watch's to act on; the settle rule covers what was dropped.
                _, events = read_queued(self._inotify.fd, Mask.MOVED_TO | Mask.ISDIR, _MOST_AT_ONCE)
                if len(events) >= _MOST_AT_ONCE:
                    readable.set()  # more may be queued: read again after this batch
                moved_in: list[Path] = []
                new_folders: list[bytes] = []
                for wd, mask, name in events:
                    folder = self._folders.get(wd)
                    if folder is None or not name:
                        continue
                    if mask & Mask.ISDIR:
                        if mask & (Mask.CREATE | Mask.MOVED_TO):
                            new_folders.append(folder + b"/" + name)
                    elif mask & Mask.MOVED_TO:
                        moved_in.append(Path(os.fsdecode(folder + b"/" + name)))
                if new_folders:
                    await asyncio.to_thread(watch_new_trees, self._inotify, new_folders, _MASK, self._folders)
                if moved_in:
                    yield moved_in
        finally:
            loop.remove_reader(self._inotify.fd)


@contextlib.asynccontextmanager
async def moved_in_watch(watch_root: Path) -> AsyncIterator[MovedInWatch | None]:
    """A :class:`MovedInWatch` of ``watch_root``, or None where it cannot be had (no inotify
    instance left, or the lease check unusable): then every file settles by time."""
    if not leases_usable():
        yield None
        return
    try:
        watch = MovedInWatch(watch_root)
    except OSError as exc:
        log.warning("cannot watch for files renamed into place (%s); they wait for the settle time", exc)
        yield None
        return
    try:
        yield watch
    finally:
        watch.close()
