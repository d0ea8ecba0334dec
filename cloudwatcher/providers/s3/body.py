"""Request bodies streamed from disk in bounded blocks, and the hashing of file ranges.

Memory does not grow with the file size: nothing larger than one block is held at a time.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from cloudwatcher.providers.base import FileChangedError
from cloudwatcher.providers.s3.limits import MIB

READ_BLOCK = MIB


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


class FileSlice(io.RawIOBase):
    """A read-only, seekable window ``[start, start + length)`` of a local file.

    It is what botocore streams as a request body: nothing larger than one socket buffer is
    held in memory. It opens its own descriptor and is closed by the worker-thread call that
    made it, so a cancelled upload whose request still runs in the pool never reads from a
    descriptor that was closed (and perhaps reused) under it.
    """

    def __init__(
        self, open_file: Callable[[], int], start: int, length: int, *, stop: threading.Event | None = None
    ) -> None:
        super().__init__()
        self._stop = stop
        self._fd = open_file()  # UploadJob.open_local: through the gateway
        self._start = start
        self._length = length
        self._position = 0
        #: Set when the request is sent (see S3Provider._before_send), so that the bytes are paced
        #: as they go on the wire; botocore's own payload-hashing pass over plain http is not.
        self.meter: Callable[[float], None] | None = None

    def __len__(self) -> int:
        return self._length

    def as_body(self) -> IO[Any]:
        """This slice, typed as the file object botocore's stubs expect for a request body."""
        return cast("IO[Any]", self)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._length}[whence]
        self._position = min(max(0, base + offset), self._length)
        return self._position

    def readinto(self, buffer: Any) -> int:
        if self._stop is not None and self._stop.is_set():
            # The provider is closing: end the request now rather than keep the daemon's
            # shutdown waiting for the rest of a part (the session is resumed on the next start).
            raise OSError("upload interrupted: the provider is closing")
        view = memoryview(buffer).cast("B")
        wanted = min(len(view), self._length - self._position)
        if wanted <= 0:
            return 0
        data = os.pread(self._fd, wanted, self._start + self._position)
        view[: len(data)] = data
        self._position += len(data)
        if self.meter is not None and data:
            self.meter(len(data))
        return len(data)


def hash_range(open_file: Callable[[], int], start: int, length: int, whole: Any = None) -> bytes:
    """SHA-256 of ``length`` bytes at ``start`` of the file ``open_file()`` opens (``UploadJob.open_local``);
    also feeds ``whole`` (the file's running hash).

    A short read means the file shrank since it was recorded.
    """
    digest = hashlib.sha256()
    offset, end = start, start + length
    with os.fdopen(open_file(), "rb", buffering=0) as reader:
        reader.seek(start)
        while offset < end:
            block = reader.read(min(READ_BLOCK, end - offset))
            if not block:
                raise FileChangedError(f"file changed during upload: shorter than the recorded {end} bytes")
            digest.update(block)
            if whole is not None:
                whole.update(block)
            offset += len(block)
    return digest.digest()


@dataclass(frozen=True)
class Fingerprint:
    """What tells us a file was rewritten or replaced while we read it."""

    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> Fingerprint:
        status = path.stat()
        return cls(status.st_ino, status.st_size, status.st_mtime_ns)
