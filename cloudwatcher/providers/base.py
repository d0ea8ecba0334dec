"""The one interface every storage backend implements (rclone's fs.Fs, in small).

The daemon imports only this module and :mod:`cloudwatcher.providers.registry`; it never knows
which backend it talks to. Providers raise :class:`TransientError` for what may succeed on a
later attempt and :class:`PermanentError` for what cannot; the daemon owns the retry policy.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from cloudwatcher.gateway import ChangedFileError, RefusedPathError, open_regular

Verification = Literal["hash", "transport", "server-modified"]


def parse_retry_after(value: str | None) -> float | None:
    """A ``Retry-After`` header in seconds: delta-seconds or an HTTP date (RFC 9110), else None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class ProviderError(Exception):
    """Base of every error a provider raises; ``str(error)`` is what lands in ``last_error``.

    ``reason``, when a provider knows it, is the failure metric's label (``rate_limited``,
    ``server_error``, ``network``, ``auth``, ``quota``, ``changed``, ``server_modified``,
    ``too_long``, ``other``); otherwise the daemon works it out from the class and message.
    """

    reason: str | None = None


class TransientError(ProviderError):
    """May succeed later: timeouts, resets, 429, 5xx. ``retry_after`` is the server's hint."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(ProviderError):
    """Cannot succeed by retrying: a forbidden name, 403, a file over a provider limit."""


class QuotaExceededError(PermanentError):
    """The target's storage is full; the target is shown as full until space is freed."""


class DailyCapError(TransientError):
    """A daily upload cap: park the target until ``retry_after`` without spending attempts."""


class FileChangedError(PermanentError):
    """The local file changed while it was being uploaded; its new content gets its own row."""


@dataclass(slots=True)
class UploadJob:  # not frozen: built per file (see ledger.FileVersion)
    """One file to place at one remote path, as the ledger recorded it."""

    local_file: Path
    remote_path: str  # "<device>/<requests|responses>/<relative path>", '/'-separated
    size: int
    sha256: str  # lowercase hex, as recorded in the ledger
    mtime_ns: int
    resume_state: dict[str, Any] | None = None  # the session saved by an earlier attempt
    # The recorded bytes themselves, when the daemon still holds them (small files uploaded
    # right after recording): a provider may send these instead of reading ``local_file``.
    content: bytes | None = field(default=None, repr=False)
    #: The watch root ``local_file`` lies beneath (the daemon always sets it): the file is then
    #: opened through the gateway, never through a link a device swapped into its path.
    watch_root: Path | None = None

    def open_local(self) -> int:
        """A read descriptor of ``local_file``, a regular file still of the recorded size and mtime.

        Providers read the file only through this (see :mod:`cloudwatcher.gateway`).
        ``FileNotFoundError`` when it is gone; :class:`FileChangedError` when it changed since
        it was recorded; :class:`PermanentError` when the gateway refuses the path.
        """
        try:
            # The mtime is the daemon's record; a provider used on its own (no watch root) gets
            # jobs whose mtime says nothing, and checks the size alone.
            mtime_ns = self.mtime_ns if self.watch_root is not None else None
            return open_regular(self.local_file, self.watch_root, size=self.size, mtime_ns=mtime_ns)
        except ChangedFileError as exc:
            raise FileChangedError("file changed since it was recorded (size or mtime differs)") from exc
        except RefusedPathError as exc:
            raise PermanentError(f"not read: {exc}") from exc


SaveState = Callable[[dict[str, Any] | None], Awaitable[None]]


@dataclass(slots=True)
class UploadResult:  # not frozen: built per file (see ledger.FileVersion)
    """What the provider reports about the copy it now holds."""

    cloud_path: str  # the full remote path actually used, after any renaming rule
    remote_id: str | None
    remote_size: int | None
    remote_hash: str | None  # "algorithm:value" in the provider's own encoding
    verification: Verification


@dataclass(frozen=True)
class RemoteFile:
    """A remote object as :meth:`Provider.stat` sees it."""

    cloud_path: str
    remote_id: str | None
    size: int
    hashes: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class Provider(Protocol):
    """A storage backend. Every method is a coroutine; blocking SDKs run in a thread pool."""

    name: str
    #: Whether two names that differ only by case are the same remote file (SharePoint).
    case_insensitive: bool
    #: Whether :meth:`remote_name` changes some paths (a renaming rule can merge two names).
    #: A case-sensitive provider that renames nothing cannot see two local paths collide.
    renames_paths: bool

    def remote_name(self, remote_path: str) -> str:
        """The path this provider stores ``remote_path`` under (its renaming rule applied)."""
        ...

    async def upload(self, job: UploadJob, save_state: SaveState) -> UploadResult:
        """Place the file's bytes at ``job.remote_path``, replacing any file there, and verify.

        Large uploads call ``save_state`` with their resumable session so that a restarted
        daemon can pass it back in ``job.resume_state``; ``save_state(None)`` clears it.
        """
        ...

    async def stat(self, remote_path: str) -> RemoteFile | None:
        """The remote file at ``remote_path``, or None when there is none."""
        ...

    async def read(self, remote_path: str) -> bytes:
        """The remote file's bytes (for verification tools and tests; small files only)."""
        ...

    async def flush(self) -> None:
        """Make every upload that has returned so far durable (group commit).

        The daemon calls it before it marks a batch of rows synced. Cloud providers have nothing
        to do (an acknowledged upload is stored); the local provider syncs its filesystem once
        for the whole batch instead of once per file.
        """
        ...

    async def abandon(self, resume_state: dict[str, Any]) -> None:
        """Cancel a saved upload session that will not be resumed (no orphaned parts)."""
        ...

    async def close(self) -> None:
        """Release connections and thread pools."""
        ...


@runtime_checkable
class BlockingUploads(Protocol):
    """Optional: a provider whose upload is plain blocking file I/O (a local or mounted folder).

    For small files such an upload is a handful of system calls, and the cost that remains is the
    event loop's: a task, a thread hand-off and a wake-up per file. The daemon therefore runs many
    of these uploads one after another in one worker thread (one hand-off per batch); each batch
    holds one of the target's ``upload_concurrency`` slots. Network providers do not offer it:
    their time is spent waiting on the network, where one task per file is the right shape.
    """

    def upload_blocking(self, job: UploadJob) -> UploadResult:
        """:meth:`Provider.upload` without the event loop (no resumable session to save)."""
        ...


@runtime_checkable
class RemovesObjects(Protocol):
    """Optional: a provider that can remove an object it stored.

    The daemon never deletes remote files; ``cloudwatcher check`` uses this to take away the
    probe object it wrote to prove a target writable.
    """

    async def remove(self, remote_path: str) -> None:
        """Remove the object at ``remote_path``; nothing there already is not an error."""
        ...


@runtime_checkable
class ReportsFreeSpace(Protocol):
    """Optional: a provider whose storage tells how much room is left (``cloudwatcher check``)."""

    async def free_bytes(self) -> int | None:
        """Bytes the target can still take, or None when the service does not say."""
        ...
