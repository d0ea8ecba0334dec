"""One upload try of one row through an async provider, with its quick retries and checks.

The row's lease is checked before every try (a quick retry is an upload too), the file is
checked against the ledger before and after (:mod:`.checks`), and the provider's resumable
session is saved as it goes, so that the next attempt resumes rather than restarts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cloudwatcher.daemon.health import CONNECTION_ERRORS
from cloudwatcher.daemon.ledger.store import ClaimedRow
from cloudwatcher.daemon.retry import LedgerUnavailableError, quick_retrying
from cloudwatcher.daemon.upload.checks import unchanged_during_upload, unchanged_since_recorded
from cloudwatcher.daemon.upload.outcomes import Outcomes
from cloudwatcher.daemon.upload.remote_names import RemoteNames
from cloudwatcher.providers import Provider, UploadJob, UploadResult


class ClaimUnsureError(Exception):
    """The row's lease may have run out (the process stalled, or renewals failed) before its
    upload could start: another instance may hold it now, so it is not uploaded but given back.
    Not a TransientError: never retried in place."""


def upload_while_held(upload: Callable[[UploadJob], UploadResult], row: ClaimedRow, job: UploadJob) -> UploadResult:
    """One blocking try, started only while the row's lease is surely this instance's."""
    if not row.lease_surely_held():
        raise ClaimUnsureError
    return upload(job)


class Attempts:
    """Uploads single rows of one target (the batches of small files have their own path)."""

    def __init__(self, *, provider: Provider, watch_root: Path, names: RemoteNames, outcomes: Outcomes) -> None:
        self.provider = provider
        self.watch_root = watch_root
        self.names = names
        self.outcomes = outcomes

    async def remote_path(self, local_path: str) -> str:
        """Where ``local_path`` goes on the target; decided once, in the ledger."""
        try:
            return await self.names.remote_path(local_path)
        except CONNECTION_ERRORS as exc:
            raise LedgerUnavailableError(f"remote name not decided, database unreachable: {exc}") from exc

    async def remote_paths(self, rows: list[ClaimedRow]) -> list[str | Exception]:
        """Each row's remote path, or the error that kept it from being decided."""
        if self.names.identical:  # no coroutine per row when there is nothing to decide
            return [row.local_path for row in rows]
        remote_paths: list[str | Exception] = []
        for row in rows:
            try:
                remote_paths.append(await self.remote_path(row.local_path))
            except LedgerUnavailableError as exc:
                remote_paths.append(exc)
        return remote_paths

    async def one(self, row: ClaimedRow) -> UploadResult:
        """Upload ``row``'s file; raises what made it fail."""
        local_file = self.watch_root / row.local_path
        mtime_ns = await asyncio.to_thread(unchanged_since_recorded, row, local_file, self.watch_root)
        job = UploadJob(
            local_file=local_file,
            remote_path=await self.remote_path(row.local_path),
            size=row.size,
            sha256=row.sha256,
            mtime_ns=mtime_ns,
            resume_state=row.upload_session,
            watch_root=self.watch_root,
        )

        async def save_state(state: dict[str, Any] | None) -> None:
            await self.outcomes.save_session(row, state)

        result: UploadResult | None = None
        async for attempt in quick_retrying():
            with attempt:
                if not row.lease_surely_held():  # checked before every try: a retry is an upload too
                    raise ClaimUnsureError
                result = await self.provider.upload(job, save_state)
        assert result is not None
        unchanged_during_upload(row, local_file, mtime_ns)
        return result
