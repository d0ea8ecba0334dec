"""The gateway's descriptors: the watch root held open, device files and folders opened beneath it.

See :mod:`cloudwatcher.gateway` for why every device path goes through here. Paths are checked
by :mod:`cloudwatcher.gateway.paths`; with ``openat2`` (:mod:`cloudwatcher.gateway.openat2`)
one system call resolves a whole path, else :meth:`DeviceTree._walk_open` walks it by hand.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

from cloudwatcher.gateway import openat2
from cloudwatcher.gateway.paths import ChangedFileError, RefusedPathError, check, escaped, refusal, split

__all__ = ["DeviceTree", "device_tree", "open_regular", "read_at_most", "tree_holding"]

_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class DeviceTree:
    """The watch root, held open; every device path is resolved beneath its descriptor.

    Thread-safe: the descriptor is opened once (lazily) and only read afterwards, and every
    other descriptor is private to the call that opened it.
    """

    def __init__(self, watch_root: Path | str) -> None:
        self.watch_root = str(watch_root)
        self._fd: int | None = None
        self._lock = threading.Lock()

    @property
    def root_fd(self) -> int:
        if self._fd is None:
            with self._lock:
                if self._fd is None:
                    self._fd = os.open(self.watch_root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        return self._fd

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    # ------------------------------------------------------------------ opening
    def _open(self, local_path: str, flags: int) -> int:
        """Open ``local_path`` with ``flags``, no link followed at any depth (``OSError`` as is)."""
        try:
            return self._resolve(local_path, flags)
        except FileNotFoundError:
            if not self._reopen_if_replaced():
                raise
            return self._resolve(local_path, flags)

    def _reopen_if_replaced(self) -> bool:
        """True when the watch root was removed and made again since it was opened (then the
        new one is held). Checked only after a "not found", so it costs nothing per file.

        The old descriptor is left open, not closed: another thread may be resolving a path
        beneath it this very moment, and a closed number can be reused by any later open.
        """
        with self._lock:
            if self._fd is None:
                return False
            try:
                now = os.stat(self.watch_root)
            except OSError:
                return False
            held = os.fstat(self._fd)
            if (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino):
                return False
            self._fd = os.open(self.watch_root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            return True

    def _resolve(self, local_path: str, flags: int) -> int:
        if openat2.HAS_OPENAT2:
            check(local_path)
            return openat2.openat2(self.root_fd, os.fsencode(local_path), flags)
        return self._walk_open(split(local_path), flags)

    def _walk_open(self, parts: list[str], flags: int) -> int:
        """The fallback: one ``openat`` per folder, each refusing a link (``O_NOFOLLOW``)."""
        folder = self.root_fd
        try:
            for part in parts[:-1]:
                inner = _open_subfolder(folder, part)
                if folder != self.root_fd:
                    os.close(folder)
                folder = inner
            if flags & os.O_DIRECTORY:
                return _open_subfolder(folder, parts[-1])
            return os.open(parts[-1], flags | os.O_NOFOLLOW, dir_fd=folder)
        finally:
            if folder != self.root_fd:
                os.close(folder)

    def open_folder(self, local_path: str) -> int:
        """A descriptor of the folder ``local_path`` (for ``os.scandir`` and ``*at`` calls).

        Raises :class:`RefusedPathError`, or ``FileNotFoundError`` when it is gone.
        """
        try:
            # Not O_NOFOLLOW with openat2: with O_DIRECTORY it turns a link into ENOTDIR (as for
            # a file), where RESOLVE_NO_SYMLINKS alone answers ELOOP.
            return self._open(local_path, _FOLDER_FLAGS & ~os.O_NOFOLLOW if openat2.HAS_OPENAT2 else _FOLDER_FLAGS)
        except OSError as exc:
            raise refusal(local_path, exc) or FileNotFoundError(exc.errno, exc.strerror, local_path) from exc

    def open_file(
        self, local_path: str, *, size: int | None = None, mtime_ns: int | None = None
    ) -> tuple[int, os.stat_result]:
        """A read descriptor of the regular file ``local_path`` and its ``fstat``.

        With ``size``/``mtime_ns`` (what was recorded), a file that no longer matches raises
        :class:`ChangedFileError`. Raises :class:`RefusedPathError` for a link anywhere in the
        path or anything but a regular file, ``FileNotFoundError`` when it is gone.
        """
        try:
            fd = self._open(local_path, _READ_FLAGS)
        except OSError as exc:
            raise refusal(local_path, exc) or FileNotFoundError(exc.errno, exc.strerror, local_path) from exc
        return fd, _checked(fd, local_path, size, mtime_ns)

    def read_file(self, local_path: str, limit: int) -> bytes:
        """Up to ``limit`` bytes of the regular file ``local_path`` (errors as :meth:`open_file`)."""
        fd, _ = self.open_file(local_path)
        try:
            return read_at_most(fd, limit)
        finally:
            os.close(fd)

    # ------------------------------------------------------------------ writing responses
    def write_response(
        self,
        local_path: str,
        data: bytes,
        *,
        unchanged: Callable[[bytes], bool] | None = None,
        flushed_with: int | None = None,
    ) -> bool:
        """Write ``data`` at ``local_path`` (``<device>/responses/...``) through the device's real
        ``responses/`` folder: a temp file, fsynced, renamed into place with ``renameat``.

        ``flushed_with`` is the filesystem (``st_dev``) the caller flushes with one ``syncfs``
        after a batch: a response whose folder is on it skips its two fsyncs; one elsewhere (a
        device folder mounted from another filesystem) is still fsynced here.

        Folders missing below ``responses/`` are made. Returns False without writing when the
        file exists and ``unchanged(its bytes)`` says it already holds the response. Raises
        :class:`RefusedPathError` when ``responses/`` (or a folder in it) is a link or not a
        folder, or the response path holds something other than a regular file.
        """
        parts = split(local_path)
        if len(parts) < 3 or parts[1] != "responses":
            raise RefusedPathError("name", local_path, "not a response path")
        folder = self._response_folder(local_path, parts)
        try:
            name = parts[-1]
            try:
                existing = os.stat(name, dir_fd=folder, follow_symlinks=False)
            except FileNotFoundError:
                existing = None
            if existing is not None:
                if stat.S_ISLNK(existing.st_mode):
                    raise RefusedPathError("symlink", local_path, "a symbolic link is where the response goes")
                if not stat.S_ISREG(existing.st_mode):
                    raise RefusedPathError("type", local_path, "something other than a regular file is there")
                if unchanged is not None and unchanged(self._read_in(folder, name, len(data) + 1)):
                    return False
            fsync = flushed_with is None or os.fstat(folder).st_dev != flushed_with
            _write_renamed(folder, name, data, fsync=fsync)
            return True
        finally:
            os.close(folder)

    def _response_folder(self, local_path: str, parts: list[str]) -> int:
        """The descriptor of the folder the response goes in, made where missing, no link followed."""
        folder = self.open_folder(parts[0])
        try:
            for part in parts[1:-1]:
                try:
                    inner = _open_subfolder(folder, part)
                except FileNotFoundError:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o755, dir_fd=folder)
                    inner = _open_subfolder(folder, part)
                os.close(folder)
                folder = inner
        except OSError as exc:
            os.close(folder)
            if exc.errno == errno.ENOTDIR:
                raise RefusedPathError("type", local_path, "a folder of the response path is not a folder") from exc
            raise refusal(local_path, exc) or exc from exc
        return folder

    @staticmethod
    def _read_in(folder: int, name: str, limit: int) -> bytes:
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=folder)
        except OSError:
            return b""
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return b""
            return read_at_most(fd, limit)
        finally:
            os.close(fd)


def _open_subfolder(folder: int, part: str) -> int:
    """``openat(folder, part, O_DIRECTORY | O_NOFOLLOW)``; a link raises ``ELOOP``.

    The kernel answers ``ENOTDIR`` for a link opened this way, the same as for a file: the
    ``fstatat`` that tells them apart runs only on that error path.
    """
    try:
        return os.open(part, _FOLDER_FLAGS, dir_fd=folder)
    except NotADirectoryError:
        if stat.S_ISLNK(os.stat(part, dir_fd=folder, follow_symlinks=False).st_mode):
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), part) from None
        raise


def _write_renamed(folder: int, name: str, data: bytes, *, fsync: bool = True) -> None:
    """Temp dot-file in ``folder``, fsync, ``renameat`` over ``name``, fsync the folder
    (without ``fsync`` the caller makes the rename durable later, with ``syncfs``)."""
    temporary = f".{name}.{uuid.uuid4().hex[:12]}.tmp"
    try:
        fd = os.open(temporary, _TEMP_FLAGS, 0o644, dir_fd=folder)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temporary, name, src_dir_fd=folder, dst_dir_fd=folder)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=folder)
        raise
    if fsync:
        os.fsync(folder)


def read_at_most(fd: int, limit: int) -> bytes:
    """Up to ``limit`` bytes from ``fd`` (fewer at its end)."""
    pieces: list[bytes] = []
    left = limit
    while left > 0 and (piece := os.read(fd, min(left, 1 << 20))):
        pieces.append(piece)
        left -= len(piece)
    return b"".join(pieces)


_trees: dict[str, DeviceTree] = {}
_trees_lock = threading.Lock()


def device_tree(watch_root: Path | str) -> DeviceTree:
    """The shared :class:`DeviceTree` of ``watch_root`` (one open descriptor per watch root)."""
    key = str(watch_root)
    tree = _trees.get(key)
    if tree is None:
        with _trees_lock:
            tree = _trees.setdefault(key, DeviceTree(key))
    return tree


def tree_holding(absolute_path: Path | str, local_path: str) -> DeviceTree:
    """The tree of the watch root that ``absolute_path`` (``<watch_root>/<local_path>``) lies in."""
    text = str(absolute_path)
    if not text.endswith("/" + local_path):
        raise RefusedPathError("name", local_path, "not beneath the watch root")
    return device_tree(text[: len(text) - len(local_path) - 1] or "/")


def open_regular(
    path: Path | str,
    watch_root: Path | str | None,
    *,
    size: int | None = None,
    mtime_ns: int | None = None,
) -> int:
    """A read descriptor of ``path``, checked with ``fstat`` before a byte is read.

    With a ``watch_root`` (the daemon always has one) ``path`` must lie beneath it and is opened
    through :class:`DeviceTree`. Without one (a provider used on its own) only the last
    component is kept from being a link. Errors as :meth:`DeviceTree.open_file`.
    """
    if watch_root is not None:
        root = str(watch_root)
        text = str(path)
        if not text.startswith(root.rstrip("/") + "/"):
            raise RefusedPathError("name", text, "not beneath the watch root")
        fd, _ = device_tree(root).open_file(text[len(root.rstrip("/")) + 1 :], size=size, mtime_ns=mtime_ns)
        return fd
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError as exc:
        raise refusal(str(path), exc) or FileNotFoundError(exc.errno, exc.strerror, str(path)) from exc
    _checked(fd, str(path), size, mtime_ns)
    return fd


def _checked(fd: int, local_path: str, size: int | None, mtime_ns: int | None) -> os.stat_result:
    """``fstat(fd)``: a regular file of the recorded size and mtime (where given), else ``fd`` is
    closed and :class:`RefusedPathError` or :class:`ChangedFileError` raised."""
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise RefusedPathError("type", local_path, "not a regular file")
        if (size is not None and info.st_size != size) or (mtime_ns is not None and info.st_mtime_ns != mtime_ns):
            raise ChangedFileError(f"{escaped(local_path)} changed since it was recorded")
    except BaseException:
        os.close(fd)
        raise
    return info
