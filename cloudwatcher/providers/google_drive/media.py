"""The local file handed to the library chunk by chunk, hashed as it is sent."""

from __future__ import annotations

import hashlib
import mimetypes
import os

from googleapiclient.http import MediaUpload

from cloudwatcher.providers.base import FileChangedError, PermanentError, UploadJob
from cloudwatcher.providers.pacing import TokenBucket


class HashingMedia(MediaUpload):
    """Hands the library the local file chunk by chunk (memory stays flat) and hashes exactly the
    bytes sent, so the md5 Drive reports is compared with what went over the wire."""

    def __init__(self, job: UploadJob, chunk_size: int, resumable: bool, bandwidth: TokenBucket) -> None:
        super().__init__()
        try:
            self._file = os.fdopen(job.open_local(), "rb")
        except FileNotFoundError as exc:
            raise PermanentError(f"local file vanished: {job.local_file}") from exc
        self._size = job.size
        self._chunk_size = chunk_size
        self._resumable = resumable
        self._mimetype = mimetypes.guess_type(job.remote_path)[0] or "application/octet-stream"
        self._bandwidth = bandwidth
        self._md5 = hashlib.md5()
        self._sha256 = hashlib.sha256()
        self._hashed = 0
        self._recorded_sha256 = job.sha256

    def chunksize(self) -> int:
        return self._chunk_size

    def mimetype(self) -> str:
        return self._mimetype

    def size(self) -> int:
        return self._size

    def resumable(self) -> bool:
        return self._resumable

    def has_stream(self) -> bool:
        return False

    def getbytes(self, begin: int, length: int) -> bytes:
        self._hash_up_to(begin)  # resuming from a server-reported offset: hash what it holds
        self._file.seek(begin)
        data: bytes = self._file.read(length)
        if len(data) != min(length, self._size - begin):
            raise FileChangedError(f"file changed during upload: it ended before byte {self._size}")
        if begin + len(data) > self._hashed:
            self._update(data[self._hashed - begin :])
        if begin + len(data) >= self._size and self._sha256.hexdigest() != self._recorded_sha256:
            # Drive stores the file when its last chunk arrives: a file swapped or rewritten
            # since it was recorded must fail here, before that chunk is handed over.
            raise FileChangedError("file changed since it was recorded (sha256 differs); last chunk not sent")
        self._bandwidth.acquire(len(data))
        return data

    def _update(self, data: bytes) -> None:
        self._md5.update(data)
        self._sha256.update(data)
        self._hashed += len(data)

    def _hash_up_to(self, offset: int) -> None:
        self._file.seek(self._hashed)
        while self._hashed < offset:
            block = self._file.read(min(1 << 20, offset - self._hashed))
            if not block:
                raise FileChangedError("file changed during upload: it is shorter than recorded")
            self._update(block)

    def digests(self) -> tuple[str, str]:
        """(md5, sha256) of the whole file as sent; growth after the recorded size is a change."""
        self._hash_up_to(self._size)
        self._file.seek(self._size)
        if self._file.read(1):
            raise FileChangedError("file changed during upload: it grew past its recorded size")
        return self._md5.hexdigest(), self._sha256.hexdigest()

    def close(self) -> None:
        self._file.close()
