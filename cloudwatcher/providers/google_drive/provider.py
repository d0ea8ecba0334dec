"""The Google Drive provider's async surface: each call runs in the target's bounded thread pool."""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from cloudwatcher.providers.base import ProviderError, RemoteFile, SaveState, TransientError, UploadJob, UploadResult
from cloudwatcher.providers.google_drive.api import SAVE_STATE_TIMEOUT
from cloudwatcher.providers.google_drive.errors import translate_error
from cloudwatcher.providers.google_drive.upload import DriveUploads

T = TypeVar("T")


class GoogleDriveProvider(DriveUploads):
    """A folder in My Drive or a shared drive as a mirror target. Drive allows any character in
    a name, so ``remote_name`` is the identity, and names are case-sensitive."""

    # --- the async surface ----------------------------------------------------------------------

    def remote_name(self, remote_path: str) -> str:
        return remote_path

    async def upload(self, job: UploadJob, save_state: SaveState) -> UploadResult:
        loop = asyncio.get_running_loop()
        # A retry in this process (the daemon's quick retries reuse the job, and with it the
        # resume_state read when the row was claimed) continues the session saved since.
        key = (job.remote_path, job.sha256, job.size)
        job = dataclasses.replace(job, resume_state=self._live_sessions.get(key, job.resume_state))

        async def persist(state: dict[str, Any] | None) -> None:
            await save_state(state)

        def save(state: dict[str, Any] | None) -> None:
            self._live_sessions.put(key, state)
            # Called from the worker thread: the ledger write runs on the daemon's loop.
            try:
                asyncio.run_coroutine_threadsafe(persist(state), loop).result(timeout=SAVE_STATE_TIMEOUT)
            except (concurrent.futures.TimeoutError, RuntimeError) as exc:
                raise TransientError(f"could not record the upload session: {exc!r}") from exc

        # A cancelled coroutine cannot stop its thread; the flag ends the upload at the next
        # chunk boundary, its session saved for the next attempt to resume.
        cancelled = threading.Event()
        try:
            result = await self._run(self._upload_sync, job, save, cancelled)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        except ProviderError as exc:
            judged = self._upload_cap.judge(exc)
            if judged is exc:
                raise
            raise judged from exc
        self._upload_cap.succeeded()
        return result

    async def stat(self, remote_path: str) -> RemoteFile | None:
        return await self._run(self._stat_sync, remote_path)

    async def read(self, remote_path: str) -> bytes:
        return await self._run(self._read_sync, remote_path)

    async def abandon(self, resume_state: dict[str, Any]) -> None:
        await self._run(self._abandon_sync, resume_state)

    async def remove(self, remote_path: str) -> None:
        """Delete one file (``cloudwatcher check``'s probe); none there is not an error."""
        await self._run(self._remove_sync, remote_path)

    async def flush(self) -> None:
        """Nothing to do: an acknowledged upload is already stored by the service."""
        return None

    async def close(self) -> None:
        self._pacing.close()  # throttled threads wake at once
        await asyncio.to_thread(self._pool.shutdown, True)
        for transport in self._transports:
            transport.close()

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, functools.partial(function, *args))
        except Exception as exc:
            translated = translate_error(exc, self._token_uri())
            if translated is exc:
                raise
            raise translated from exc
