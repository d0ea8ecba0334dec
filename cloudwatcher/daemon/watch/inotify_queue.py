"""Read an inotify instance's queue in bulk, decoding only the events the caller asks for.

asyncinotify builds a ``Path``, a ``Mask`` and an ``Event`` object for every event it reads.
Under the one-by-one burst of issue #20 each file raises five or six events (created, written,
closed, renamed from and to), and in a py-spy profile building those objects on the event loop
for the overflow watch alone took a quarter of the daemon's busy samples. Here one ``read``
takes whatever is queued, the fixed headers are walked with :mod:`struct`, and a name is sliced
only for the events wanted. asyncinotify still creates the instance and adds the watches; the
watch descriptor of each folder is kept by the caller (:func:`watch_tree`), so that an event's
folder is known without asyncinotify's bookkeeping.
"""

from __future__ import annotations

import logging
import os
import stat
import struct
from collections.abc import Iterator

from asyncinotify import Inotify, Mask

log = logging.getLogger(__name__)

__all__ = ["Folders", "folders_below", "new_inotify", "read_queued", "watch_new_trees", "watch_tree"]

#: Watch descriptor -> the folder it watches (bytes: names need not be UTF-8).
Folders = dict[int, bytes]

_HEADER = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len (then the name)
_READ_SIZE = 64 * 1024


def new_inotify() -> Inotify:
    """An inotify instance whose descriptor never blocks a read (asyncinotify 4.4's ``NONBLOCK``
    flag is ``O_CLOEXEC`` by mistake, so it is set here)."""
    inotify = Inotify()
    os.set_blocking(inotify.fd, False)
    return inotify


def read_queued(fd: int, wanted: Mask, limit: int = 1_000_000) -> tuple[bool, list[tuple[int, int, bytes]]]:
    """What is queued on the non-blocking inotify descriptor ``fd``: whether the queue overflowed,
    and (watch descriptor, mask, name) of each event with a bit of ``wanted`` (at least ``limit``
    of them stops the reading; the rest stays queued)."""
    overflowed = False
    found: list[tuple[int, int, bytes]] = []
    overflow = int(Mask.Q_OVERFLOW)
    bits = int(wanted)
    while len(found) < limit:
        try:
            buffer = os.read(fd, _READ_SIZE)
        except BlockingIOError:
            break
        offset, end = 0, len(buffer)
        while offset < end:
            wd, mask, _, length = _HEADER.unpack_from(buffer, offset)
            offset += _HEADER.size
            if mask & overflow:
                overflowed = True
            elif mask & bits:
                found.append((wd, mask, buffer[offset : offset + length].rstrip(b"\0")))
            offset += length
    return overflowed, found


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


def watch_tree(inotify: Inotify, top: bytes, mask: Mask, folders: Folders) -> int:
    """Add a watch with ``mask`` on ``top`` and every real folder below it, noting each in
    ``folders`` (blocking: run it in a thread); how many."""
    count = 0
    for folder in folders_below(top):
        try:
            folders[inotify.add_watch(folder, mask).wd] = folder
            count += 1
        except OSError as exc:
            # Gone, not a folder any more, or out of watches (the watcher warns about those).
            log.debug("no inotify watch on %r: %s", folder, exc)
    return count


def watch_new_trees(inotify: Inotify, new: list[bytes], mask: Mask, folders: Folders) -> None:
    """Watch each of ``new`` that is still a real folder, and what is below it (blocking)."""
    for folder in new:
        if is_real_folder(folder):
            watch_tree(inotify, folder, mask, folders)


def is_real_folder(path: bytes) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False
