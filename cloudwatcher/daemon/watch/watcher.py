"""Notice finished files: watch events as hints, plus full reconcile scans.

Events (inotify through watchfiles, or stat polling on network filesystems) only say "look
here"; the scanner decides what a path is. A folder event triggers a scan of that folder,
because files moved in with their folder raise no events of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import stat
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

import watchfiles

from cloudwatcher.daemon.ops import metrics
from cloudwatcher.daemon.watch.moved_in import MovedInWatch, moved_in_watch, no_writer_holds
from cloudwatcher.daemon.watch.overflow import overflow_rescans
from cloudwatcher.daemon.watch.scanner import Candidate, TreeScanner, WarnOnce, stat_candidate
from cloudwatcher.daemon.watch.settle import Settler
from cloudwatcher.gateway import escaped
from cloudwatcher.layout import is_device_id

log = logging.getLogger(__name__)

_Found = TypeVar("_Found")

_WALK_CHUNK = 250  # files a walking thread hands to the event loop at a time

NETWORK_FILESYSTEMS = {
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "9p",
    "ceph",
    "glusterfs",
    "afs",
    "davfs",
    "sshfs",
    "lustre",
    "gpfs",
    "beegfs",
    "virtiofs",
}


def filesystem_type(path: Path) -> str:
    """The type of the filesystem holding ``path``, from the mount table ('' when unknown)."""
    best, fstype = "", ""
    try:
        with open("/proc/self/mounts", encoding="utf-8") as mounts:
            for line in mounts:
                fields = line.split()
                if len(fields) < 3:
                    continue
                mount_point = fields[1].replace("\\040", " ")
                inside = str(path) == mount_point or str(path).startswith(mount_point.rstrip("/") + "/")
                if inside and len(mount_point) >= len(best):
                    best, fstype = mount_point, fields[2]
    except OSError:
        return ""
    return fstype


def should_poll(watch_mode: str, watch_root: Path) -> bool:
    if watch_mode != "auto":
        return watch_mode == "poll"
    fstype = filesystem_type(watch_root.resolve())
    return fstype in NETWORK_FILESYSTEMS or fstype.startswith("fuse")


def check_inotify_limit(folders: int) -> None:
    """Say what to raise when the tree needs more inotify watches than the kernel allows."""
    try:
        limit = int(Path("/proc/sys/fs/inotify/max_user_watches").read_text())
    except (OSError, ValueError):
        return
    watches = folders * 3  # each folder is watched thrice: by watchfiles, the overflow and the moved-in watch
    if watches > limit * 0.8:
        wanted = max(watches * 2, 524288)
        log.warning(
            "the watch root has %d folders but fs.inotify.max_user_watches is %d; events may be missed "
            "(periodic scans still find every file). Raise it: sysctl -w fs.inotify.max_user_watches=%d",
            folders,
            limit,
            wanted,
        )


@contextlib.contextmanager
def scan_progress() -> Iterator[Callable[[int], None]]:
    """A live counter on a terminal (Rich); nothing under systemd, where the log lines suffice."""
    if not sys.stderr.isatty():
        yield lambda count: None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(), TextColumn("reconcile scan: {task.completed:,} files"), TimeElapsedColumn(), transient=True
    ) as bar:
        task = bar.add_task("scan", total=None)
        yield lambda count: bar.update(task, completed=count)


def _is_undecodable_name(error: BaseException) -> bool:
    """watchfiles' "Unable to decode path" (its Rust side cannot make a ``str`` of a name that
    is not UTF-8), as raised or wrapped in the exception group of its task group."""
    if isinstance(error, BaseExceptionGroup):
        return any(_is_undecodable_name(inner) for inner in error.exceptions)
    return "Unable to decode path" in str(error)


class FolderWatcher:
    def __init__(
        self,
        *,
        watch_root: Path,
        settle_seconds: float,
        poll: bool,
        poll_interval_seconds: float,
        sink: Callable[[Candidate], None],
    ) -> None:
        self.watch_root = watch_root
        self.poll = poll
        self.poll_interval_seconds = poll_interval_seconds
        self.sink = sink
        self.warn = WarnOnce()
        self.settler = Settler(settle_seconds)
        self.scanner = TreeScanner(watch_root, self.warn)
        self._settle_wake = asyncio.Event()
        self.running = False

    def offer(self, candidate: Candidate) -> None:
        settled = self.settler.offer(candidate)
        if settled is not None:
            self.sink(settled)
        else:
            self._settle_wake.set()

    def recheck(self, local_path: str) -> None:
        """Look at a path again (an uploader saw it change)."""
        candidate = stat_candidate(self.watch_root, self.watch_root / local_path, self.warn)
        if candidate is not None:
            self.offer(candidate)

    async def full_scan(self) -> int:
        """Offer every file under the watch root; log progress on long scans."""
        started = time.monotonic()
        count, last_report = 0, started
        self.scanner.folders_seen = 0
        with scan_progress() as progress:

            def found(chunk: int) -> None:
                nonlocal count, last_report
                count += chunk
                progress(count)
                if time.monotonic() - last_report > 5:
                    last_report = time.monotonic()
                    log.info("reconcile scan: %d files so far (%.0f files/s)", count, count / (last_report - started))

            await self._walk_in_thread(self.scanner.scan, self.offer, found)
        log.info(
            "reconcile scan: %d files in %d folders in %.2f s",
            count,
            self.scanner.folders_seen,
            time.monotonic() - started,
        )
        if not self.poll:
            check_inotify_limit(self.scanner.folders_seen)
        return count

    async def _walk_in_thread(
        self,
        walk: Callable[[], Iterable[_Found]],
        take: Callable[[_Found], None],
        found: Callable[[int], None] = lambda count: None,
    ) -> None:
        """Run ``walk`` in a worker thread, offering what it finds in chunks as it goes.

        Neither side waits for the other: under a burst the event loop is busy recording and
        uploading, and a walk that waited for the loop between folders took most of a second to
        deliver 10,000 files, which kept the recorder short of work. Every chunk is offered
        before this returns (the loop runs callbacks in the order they were scheduled).
        """
        loop = asyncio.get_running_loop()

        def offer_all(chunk: list[_Found]) -> None:
            for item in chunk:
                take(item)
            found(len(chunk))

        def run() -> None:
            chunk: list[_Found] = []
            for candidate in walk():
                chunk.append(candidate)
                if len(chunk) >= _WALK_CHUNK:
                    loop.call_soon_threadsafe(offer_all, chunk)
                    chunk = []
            if chunk:
                loop.call_soon_threadsafe(offer_all, chunk)

        await asyncio.to_thread(run)

    async def watch(self, stopping: asyncio.Event) -> None:
        self.watch_root.mkdir(parents=True, exist_ok=True)
        mode = f"polling every {self.poll_interval_seconds:g} s" if self.poll else "inotify events"
        log.info("watching %s (%s)", self.watch_root, mode)
        self.running = True
        try:
            if self.poll:
                await self._poll(stopping)
            else:
                async with overflow_rescans(self.watch_root, self.full_scan), moved_in_watch(self.watch_root) as moved:
                    renames = None if moved is None else asyncio.create_task(self._follow_renames(moved))
                    try:
                        await self._follow_events(stopping)
                    finally:
                        if renames is not None:
                            renames.cancel()
                            await asyncio.gather(renames, return_exceptions=True)
        finally:
            self.running = False

    async def _follow_renames(self, moved: MovedInWatch) -> None:
        """Take files renamed into place at once when no writer holds them (see
        :mod:`cloudwatcher.daemon.watch.moved_in`); the others go through the settle rule.

        watchfiles reports the same files as added a moment later: the settler knows them as
        handed over already, so they are not recorded twice."""
        try:
            async for paths in moved.batches():
                await self._walk_in_thread(functools.partial(self._finished_among, paths), self._take_renamed)
        except Exception:  # the daemon goes on without it: every file still settles by time
            log.exception("the watch for files renamed into place stopped")

    def _finished_among(self, paths: list[Path]) -> Iterator[tuple[Candidate, bool]]:
        """Each renamed-in path that is a file we take, and whether it is finished now (a worker thread)."""
        for path in paths:
            try:
                candidate = stat_candidate(self.watch_root, path, self.warn)
                if candidate is not None:
                    yield candidate, no_writer_holds(candidate)
            except Exception as exc:
                log.warning("cannot look at %s: %r (the reconcile scan will)", escaped(str(path)), exc)

    def _take_renamed(self, found: tuple[Candidate, bool]) -> None:
        candidate, finished = found
        if finished:
            metrics.record_watcher_event("renamed_in")
            self.settler.handed(candidate)
            self.sink(candidate)
        else:
            self.offer(candidate)

    async def _follow_events(self, stopping: asyncio.Event) -> None:
        """inotify through watchfiles; every event is a hint to look at a path (or a folder).

        watchfiles fails a whole batch of events when one path in it is not valid UTF-8. The
        batch is lost, so the watch is started again and the tree rescanned: the scan reports
        the bad name (and skips it) and finds every other file the batch held.
        """
        while True:
            try:
                await self._follow_event_batches(stopping)
                return
            except Exception as exc:
                if not _is_undecodable_name(exc):
                    raise
                log.warning("a file name that is not UTF-8 cost a batch of watch events; rescanning the watch root")
                metrics.record_watcher_event("rescan")
                await self.full_scan()

    async def _follow_event_batches(self, stopping: asyncio.Event) -> None:
        async for changes in watchfiles.awatch(
            self.watch_root,
            watch_filter=None,
            stop_event=stopping,
            debounce=200,
            step=20,
            recursive=True,
            ignore_permission_denied=True,
            yield_on_timeout=False,
        ):
            paths: list[Path] = []
            for change, raw_path in changes:
                metrics.record_watcher_event(change.name)
                if change != watchfiles.Change.deleted:
                    paths.append(Path(raw_path))
            if paths:  # not only deletions
                await self._walk_in_thread(functools.partial(self._look_at, paths), self.offer)

    async def _poll(self, stopping: asyncio.Event) -> None:
        """Stat polling for NFS/CIFS/FUSE, where events from other hosts never arrive.

        Our own walk rather than watchfiles' ``force_polling``: its poller compares mtimes in
        whole seconds, so a file rewritten within the second it was first seen goes unnoticed.
        Here size and nanosecond mtime are compared, and only what changed is offered.
        """
        seen: dict[str, tuple[int, int]] = {}
        while not stopping.is_set():
            current = await asyncio.to_thread(lambda: list(self.scanner.scan()))
            fresh: dict[str, tuple[int, int]] = {}
            for candidate in current:
                stamp = (candidate.size, candidate.mtime_ns)
                fresh[candidate.local_path] = stamp
                if seen.get(candidate.local_path) != stamp:
                    metrics.record_watcher_event("poll")
                    self.offer(candidate)
            seen = fresh
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=self.poll_interval_seconds)

    def _look_at(self, paths: list[Path]) -> Iterator[Candidate]:
        """The files the changed ``paths`` hold: a file itself, every file of a folder (one moved
        into place with thousands of files raises a single event). Runs in a worker thread.

        Whatever one path raises is logged and that path is left for the next reconcile scan;
        the other paths of the batch are still looked at."""
        for path in paths:
            try:
                yield from self._look_at_one(path)
            except Exception as exc:
                log.warning("cannot look at %s: %r (the reconcile scan will)", escaped(str(path)), exc)

    def _look_at_one(self, path: Path) -> Iterator[Candidate]:
        try:
            is_dir = stat.S_ISDIR(os.lstat(path).st_mode)  # a link to a folder is not one
        except OSError:
            return
        if not is_dir:
            found = stat_candidate(self.watch_root, path, self.warn)
            if found is not None:
                yield found
        elif path.parent == self.watch_root and not is_device_id(path.name):
            self.warn(path.name, "ignoring %s: not a device folder", escaped(path.name))
        else:
            yield from self.scanner.scan(path)

    async def settle_loop(self) -> None:
        while True:
            due_in = self.settler.next_due_in()
            self._settle_wake.clear()
            if due_in is None:
                await self._settle_wake.wait()
                continue
            if due_in > 0:
                try:
                    await asyncio.wait_for(self._settle_wake.wait(), timeout=due_in)
                    continue
                except TimeoutError:
                    pass
            for candidate in self.settler.collect_due():
                self.sink(candidate)
