"""An inotify queue overflow during a burst triggers a rescan of the watch root within seconds,
instead of leaving the dropped events' files to the periodic scan."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cloudwatcher.daemon.watch.overflow import folders_below
from tests.support.daemon_process import DaemonProcess

pytestmark = pytest.mark.slow
Daemon = Callable[..., DaemonProcess]
MAX_QUEUED_EVENTS = Path("/proc/sys/fs/inotify/max_queued_events")


def inotify_watches(pid: int) -> list[int]:
    """How many folders each of the process's inotify instances watches (from /proc fdinfo)."""
    watches = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd) == "anon_inode:inotify":
                info = Path(f"/proc/{pid}/fdinfo/{fd.name}").read_text()
                watches.append(sum(line.startswith("inotify wd:") for line in info.splitlines()))
        except OSError:
            continue
    return watches


@pytest.fixture
def small_inotify_queue() -> Iterator[Callable[[], None]]:
    """Shrink the kernel's per-instance event queue; the returned callable restores it.

    The limit is read when an inotify instance is created, so the test restores it as soon as
    the daemon's instances exist: other processes on the machine are affected only meanwhile.
    """
    original = MAX_QUEUED_EVENTS.read_text()
    MAX_QUEUED_EVENTS.write_text("32\n")

    def restore() -> None:
        MAX_QUEUED_EVENTS.write_text(original)

    try:
        yield restore
    finally:
        restore()


async def test_a_burst_that_overflows_the_inotify_queue_is_rescanned_long_before_the_periodic_scan(
    daemon: Daemon, small_inotify_queue: Callable[[], None]
) -> None:
    d = daemon(scan_interval_seconds=3600)
    folder = d.watch_root / "truck-n101" / "requests"
    folder.parent.mkdir(parents=True)
    d.start()
    assert d.process is not None
    pid = d.process.pid

    async def all_instances_made() -> bool:
        return len(inotify_watches(pid)) >= 3  # watchfiles', the overflow watch's and the moved-in watch's

    await d.wait_for(all_instances_made, 60, "the daemon's inotify instances")
    small_inotify_queue()
    await d.wait_started()
    folder.mkdir()  # made while the daemon runs: the overflow watch must follow it too

    async def all_folders_watched() -> bool:
        return all(count >= 3 for count in inotify_watches(pid))  # the root, the device, requests/

    await d.wait_for(all_folders_watched, 60, "watches on every folder")
    stamp = time.time() - 5
    for index in range(600):
        path = folder / f"burst-{index:04}.txt"
        path.write_bytes(b"x" * index)
        os.utime(path, (stamp, stamp))

    await d.wait_synced(600, timeout=120)  # the periodic scan is an hour away
    assert "inotify event queue overflowed" in d.log()
    assert d.stop() == 0


def make_chain(top: Path, depth: int) -> None:
    """``top/d/d/.../d``, ``depth`` folders deep, made through folder descriptors (the full path
    soon exceeds PATH_MAX)."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            next_fd = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = next_fd
    finally:
        os.close(fd)


def remove_chain(top: Path) -> None:
    """Undo :func:`make_chain` without recursion (shutil.rmtree and pytest's clean-up recurse)."""
    fds = [os.open(top, os.O_RDONLY | os.O_DIRECTORY)]
    while True:
        try:
            fds.append(os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fds[-1]))
        except FileNotFoundError:
            break
    os.close(fds.pop())
    while fds:
        fd = fds.pop()
        os.rmdir("d", dir_fd=fd)
        os.close(fd)


def test_the_overflow_watch_walks_hostile_trees_without_following_links_or_recursing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    deep = root / "truck-1"
    deep.mkdir(parents=True)
    outside = tmp_path / "outside"
    (outside / "secret").mkdir(parents=True)
    (deep / "link").symlink_to(outside)
    os.mkdir(os.fsencode(deep) + b"/bad-\xff-name")
    os.mkfifo(deep / "fifo")
    make_chain(deep, 1500)  # deeper than Python's recursion limit, and than PATH_MAX allows by name
    try:
        found = list(folders_below(os.fsencode(root)))
    finally:
        remove_chain(deep)

    assert os.fsencode(deep) + b"/bad-\xff-name" in found
    assert not any(b"outside" in folder or folder.endswith(b"/link") for folder in found)
    assert not any(folder.endswith(b"/fifo") for folder in found)
    assert len(found) > 100  # the walk went deep until names grew too long to use, then carried on
