"""The one way in to a device's files: resolved beneath the watch root, never through a link.

A device controls its own folder, so any name in it may become a symbolic link (at any depth,
at any moment, even between the event and the read), a FIFO, a socket or a device node. Every
read of a device path and every write of a response therefore goes through this module, which
works from file descriptors, never from a path the kernel resolves on its own:

* ``openat2(2)`` with ``RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`` (Linux 5.6+) resolves a whole
  relative path beneath the open watch root in one system call and refuses a link anywhere in
  it (``ELOOP``);
* where the kernel has no ``openat2`` (older kernels, seccomp filters answering ``ENOSYS``),
  one ``openat`` per component with ``O_NOFOLLOW | O_DIRECTORY`` makes the same walk by hand;
* a file is opened ``O_NOFOLLOW | O_NONBLOCK`` (opening a FIFO never blocks) and ``fstat``
  must show a regular file, of the recorded size and mtime where there is one, before a byte
  of it is read.

The watch root itself is the administrator's, and trusted; everything below it is not. Paths
are ``/``-separated and relative to the watch root, starting with a device id; ``..``, ``.``
and empty components are refused outright, so "beneath the watch root" with no link followed
is also "beneath ``<watch_root>/<device_id>/``".

The package: :mod:`~cloudwatcher.gateway.paths` (which paths are taken, why one is refused),
:mod:`~cloudwatcher.gateway.openat2` (the system call, through ctypes: Python has no binding)
and :mod:`~cloudwatcher.gateway.tree` (the descriptors). Import from here.
"""

from cloudwatcher.gateway.openat2 import HAS_OPENAT2
from cloudwatcher.gateway.paths import (
    MTIME_NS_RANGE,
    ChangedFileError,
    RefusedPathError,
    SkipReason,
    escaped,
    is_valid_utf8,
)
from cloudwatcher.gateway.tree import DeviceTree, device_tree, open_regular, read_at_most, tree_holding

__all__ = [
    "HAS_OPENAT2",
    "MTIME_NS_RANGE",
    "ChangedFileError",
    "DeviceTree",
    "RefusedPathError",
    "SkipReason",
    "device_tree",
    "escaped",
    "is_valid_utf8",
    "open_regular",
    "read_at_most",
    "tree_holding",
]
