"""The sha256 of a file, as the ledger records it (lowercase hex): one definition for every reader.

The recorder, the local provider's verification, the upload worker's re-check and ``after_sync``
all compare against ``content_sha256``; computing it in one place keeps them from disagreeing
about what exactly is hashed (a whole file of the daemon's own, or a device file's recorded
bytes plus one, see :func:`sha256_of_fd`).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["CHUNK_BYTES", "sha256_of_fd", "sha256_of_path"]

#: Read size when streaming a file through the hash.
CHUNK_BYTES = 1 << 20


def sha256_of_path(path: Path) -> str:
    """The lowercase hex sha256 of a file, streamed (a file of the daemon's own, not a device's)."""
    with open(path, "rb") as reader:
        return hashlib.file_digest(reader, "sha256").hexdigest()


def sha256_of_fd(fd: int, size: int) -> str:
    """The lowercase hex sha256 of the first ``size`` bytes of an open file and one more, if
    there is one: a file that grew hashes differently, and a device writing to it forever
    cannot keep the reader busy past its recorded size."""
    digest = hashlib.sha256()
    left = size + 1
    while left > 0 and (chunk := os.read(fd, min(CHUNK_BYTES, left))):
        digest.update(chunk)
        left -= len(chunk)
    return digest.hexdigest()
