"""Local (or mounted) storage: a temp file beside the destination, made durable, verified, renamed."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import threading
from pathlib import Path
from typing import Any

from cloudwatcher.hashing import sha256_of_path
from cloudwatcher.providers.base import (
    FileChangedError,
    PermanentError,
    RemoteFile,
    SaveState,
    TransientError,
    UploadJob,
    UploadResult,
)
from cloudwatcher.providers.local.config import LocalTarget
from cloudwatcher.providers.local.syncfs import SYNCFS_AVAILABLE, syncfs
from cloudwatcher.providers.pacing import TargetPacing

_CHUNK = 1024 * 1024
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
_DEVICE_CACHE_LIMIT = 10_000  # destination folders whose filesystem is remembered


def _create(temp: str, folder: str) -> int:
    """Open ``temp`` (in ``folder``) for writing, making the folder only when it is missing.

    Trying the file first costs one system call for a folder that exists (the common case under
    a burst: many files per folder), where ``mkdir(exist_ok=True)`` first would cost two.
    """
    try:
        return os.open(temp, _CREATE, 0o644)
    except (FileNotFoundError, NotADirectoryError):
        # Missing folders are made; a file where a folder belongs fails here, and the error
        # names that path rather than the temp file's.
        _make_folders(folder)
        return os.open(temp, _CREATE, 0o644)


def _make_folders(folder: str) -> None:
    """``os.makedirs(folder, exist_ok=True)`` without its recursion: a device's folders nested
    1,100 deep overflowed the stack there (one call per missing level)."""
    missing: list[str] = []
    while not os.path.isdir(folder):
        missing.append(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(path)


def _copy_and_hash(job: UploadJob, temp: str, folder: str, *, fsync: bool) -> str:
    """Copy the recorded ``job.size`` bytes of ``job.local_file`` to ``temp`` (fsync'd only when
    asked); return the sha256 of the bytes written.

    The hash is taken of the bytes as they are written, so what lands is what was verified.
    Plain ``os`` calls rather than file objects: for the small files that make up a burst, the
    buffered-I/O objects cost more than the copy. Reading stops at the recorded size (no extra
    read to meet the end of the file): a file that grew since is caught by the caller's check of
    its size and mtime after the upload, one that shrank by the short read here.
    """
    digest = hashlib.sha256()
    expected_size = job.size
    reader = job.open_local()
    try:
        writer = _create(temp, folder)
        try:
            written = 0
            while written < expected_size and (chunk := os.read(reader, min(_CHUNK, expected_size - written))):
                digest.update(chunk)
                _write_all(writer, chunk)
                written += len(chunk)
            if fsync:
                os.fsync(writer)
        finally:
            os.close(writer)
    finally:
        os.close(reader)
    if written != expected_size:
        raise FileChangedError(f"file changed during upload: {written} bytes read, {expected_size} recorded")
    return digest.hexdigest()


def _write_all(writer: int, data: bytes) -> None:
    """``os.write`` until all of ``data`` is written (a write may take only part of it)."""
    view = memoryview(data)
    while view:
        view = view[os.write(writer, view) :]


def _fsync_folder(folder: str) -> None:
    """Make a rename into ``folder`` durable (the fallback where syncfs is not available)."""
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _write(temp: str, folder: str, content: bytes, *, fsync: bool) -> None:
    """Write ``content`` to ``temp`` (fsync'd only when asked)."""
    writer = _create(temp, folder)
    try:
        _write_all(writer, content)
        if fsync:
            os.fsync(writer)
    finally:
        os.close(writer)


class LocalProvider:
    """A folder as a mirror target. Names are kept as they are (POSIX allows them)."""

    case_insensitive = False
    renames_paths = False

    def __init__(self, config: LocalTarget, *, concurrency: int = 4) -> None:
        self.name = config.name
        self.root = config.root.expanduser()
        self._root = str(self.root)
        self._root_prefix = os.path.join(self._root, "")  # with its trailing slash
        # Filesystems written since the last flush (device → a folder on it): one syncfs each per
        # batch of rows instead of an fsync per file (group_sync.py).
        self._unsynced: dict[int, str] = {}
        self._unsynced_lock = threading.Lock()  # uploads note their filesystem from worker threads
        self._flushing = asyncio.Lock()
        self._devices: dict[str, int] = {}  # destination folder → its filesystem (st_dev)
        self._pid = os.getpid()  # in temp names: two daemons sharing a mirror never collide
        # ``bandwidth_limit`` caps the bytes written to the mirror (a mounted share on a slow
        # link); ``requests_per_second`` has no requests to count here.
        self._bandwidth = TargetPacing.for_target(config).bandwidth

    def remote_name(self, remote_path: str) -> str:
        return remote_path

    def _destination(self, remote_path: str) -> Path:
        return Path(self._destination_str(remote_path))

    def _destination_str(self, remote_path: str) -> str:
        """The destination as a string: the upload path builds names with string operations,
        which cost a fraction of pathlib's for the small files of a burst."""
        if "//" not in remote_path and "/." not in "/" + remote_path and not remote_path.endswith("/"):
            return self._root_prefix + remote_path  # the usual plain path: nothing to normalise
        parts = [part for part in remote_path.split("/") if part]
        if "." in parts or ".." in parts:
            raise PermanentError(f"refusing a path that leaves the mirror root: {remote_path}")
        return os.path.join(self._root, *parts)

    async def upload(self, job: UploadJob, save_state: SaveState) -> UploadResult:
        """Temp file beside the destination, verified, renamed; :meth:`flush` makes it durable."""
        return await asyncio.to_thread(self.upload_blocking, job)

    def upload_blocking(self, job: UploadJob) -> UploadResult:
        """:meth:`upload` in the calling thread (the daemon batches small files this way)."""
        destination = self._destination_str(job.remote_path)
        folder, _, name = destination.rpartition("/")
        temp = f"{folder}/.{name}.cloudwatcher-{self._pid}.tmp"
        if self._bandwidth.limited:
            # The whole file is paid for before it is written: the bucket lets a caller go into
            # debt and sleep it off, so the target's average rate holds whatever the file size.
            self._bandwidth.acquire(job.size)
        try:
            try:
                if job.content is not None:
                    # The very bytes the recorder hashed into job.sha256: hashing them again
                    # would prove nothing, and the file need not be read a second time.
                    _write(temp, folder, job.content, fsync=not SYNCFS_AVAILABLE)
                    digest = job.sha256
                else:
                    digest = _copy_and_hash(job, temp, folder, fsync=not SYNCFS_AVAILABLE)
                    if digest != job.sha256:
                        raise FileChangedError("file changed since it was recorded (sha256 differs)")
                os.replace(temp, destination)
                if not SYNCFS_AVAILABLE:
                    _fsync_folder(folder)  # the rename itself is durable only once its folder is
                else:
                    device = self._devices.get(folder)
                    if device is None:
                        if len(self._devices) >= _DEVICE_CACHE_LIMIT:  # dated folders never end
                            self._devices.clear()
                        device = self._devices[folder] = os.stat(folder).st_dev
                    with self._unsynced_lock:
                        self._unsynced.setdefault(device, folder)  # made durable by flush()
            except BaseException:
                with contextlib.suppress(OSError):  # the original error is the one worth reporting
                    os.unlink(temp)
                raise
        except FileNotFoundError as exc:
            if not job.local_file.exists():
                raise PermanentError(f"local file no longer exists: {job.local_file}") from exc
            raise TransientError(f"cannot write {destination}: {exc.strerror}") from exc
        except PermissionError as exc:
            raise TransientError(f"permission denied: {exc.filename}") from exc
        except OSError as exc:
            raise TransientError(f"{exc.strerror or exc} ({exc.filename or destination})") from exc
        return UploadResult(
            cloud_path=destination,
            remote_id=None,
            remote_size=job.size,
            remote_hash=f"sha256:{digest}",
            verification="hash",
        )

    async def stat(self, remote_path: str) -> RemoteFile | None:
        destination = self._destination(remote_path)
        try:
            size = destination.stat().st_size
        except FileNotFoundError:
            return None
        digest = await asyncio.to_thread(sha256_of_path, destination)
        return RemoteFile(cloud_path=str(destination), remote_id=None, size=size, hashes={"sha256": digest})

    async def read(self, remote_path: str) -> bytes:
        return await asyncio.to_thread(self._destination(remote_path).read_bytes)

    async def flush(self) -> None:
        # One flush at a time: a file written before another flush took its filesystems is
        # durable only once that flush's syncfs returns, so a later flush (which may find
        # nothing left to sync) must not report its files durable any sooner.
        async with self._flushing:
            with self._unsynced_lock:
                unsynced, self._unsynced = self._unsynced, {}
            try:
                for folder in unsynced.values():
                    await asyncio.to_thread(syncfs, folder)
            except OSError as exc:
                with self._unsynced_lock:
                    self._unsynced.update(unsynced)
                raise TransientError(f"cannot make the mirror durable: {exc.strerror or exc}") from exc

    async def abandon(self, resume_state: dict[str, Any]) -> None:
        return None

    async def remove(self, remote_path: str) -> None:
        """Remove one file (``cloudwatcher check``'s probe); none there is not an error."""

        def unlink() -> None:
            with contextlib.suppress(FileNotFoundError):
                self._destination(remote_path).unlink()

        try:
            await asyncio.to_thread(unlink)
        except OSError as exc:
            raise TransientError(f"cannot remove {remote_path}: {exc.strerror or exc}") from exc

    async def free_bytes(self) -> int | None:
        """Free space on the mirror's filesystem (its nearest existing folder), for this user."""

        def free() -> int:
            folder = self.root
            while not folder.exists() and folder != folder.parent:
                folder = folder.parent
            return shutil.disk_usage(folder).free

        return await asyncio.to_thread(free)

    async def close(self) -> None:
        self._bandwidth.close()  # a throttled batch thread wakes at once
