"""What follows one row's upload attempt: its result buffered for the write-back, the hooks
(metrics, the watcher), the target's state, and on giving up the resumable session dropped.

Both upload paths (a task per row, batches in a thread) end here, so a result is handled the
same way whichever path produced it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from cloudwatcher.daemon.health import CONNECTION_ERRORS
from cloudwatcher.daemon.ledger.store import ClaimedRow, FailedRow, SyncedRow
from cloudwatcher.daemon.retry import LedgerUnavailableError, after_failure
from cloudwatcher.daemon.upload.checks import LocalFileChangedError
from cloudwatcher.daemon.upload.context import UploadContext
from cloudwatcher.daemon.upload.failure_reasons import failure_reason
from cloudwatcher.daemon.upload.target_state import TargetStateTracker
from cloudwatcher.daemon.upload.writeback import WriteBack
from cloudwatcher.providers import DailyCapError, QuotaExceededError, TransientError, UploadResult

log = logging.getLogger(__name__)

# (row, result or None, failure reason or None, seconds the attempt took)
ResultHook = Callable[[ClaimedRow, UploadResult | None, str | None, float], None]


class Outcomes:
    """Handles the outcome of each attempt of one target's rows."""

    def __init__(
        self,
        context: UploadContext,
        write_back: WriteBack,
        state: TargetStateTracker,
        on_changed_file: Callable[[str], None],
        on_result: ResultHook,
    ) -> None:
        self.context = context
        self.name = context.name
        self.ledger = context.ledger
        self.instance_id = context.instance_id
        self.write_back = write_back
        self.state = state
        self.on_changed_file = on_changed_file
        self.on_result = on_result
        self.sessions: dict[UUID, dict[str, Any] | None] = {}  # latest saved session per row in flight
        # Each batched row's own attempt time (a batch's rows go up one after another in a thread).
        self.attempt_seconds: dict[UUID, float] = {}

    async def save_session(self, row: ClaimedRow, state: dict[str, Any] | None) -> None:
        """A provider's resumable session, kept so that the next attempt resumes it."""
        self.sessions[row.id] = state
        with contextlib.suppress(*CONNECTION_ERRORS):
            await self.ledger.save_upload_session(row.id, row.claim_token, self.instance_id, state)

    def forget(self, row: ClaimedRow) -> None:
        """The row is no longer in flight."""
        self.sessions.pop(row.id, None)

    def succeeded(self, row: ClaimedRow, result: UploadResult, started: float) -> None:
        self.write_back.synced.append(
            SyncedRow(
                row.id,
                row.claim_token,
                result.cloud_path,
                result.remote_id,
                result.remote_size,
                result.remote_hash,
                result.verification,
            )
        )
        seconds = self.attempt_seconds.pop(row.id, time.monotonic() - started)
        self.on_result(row, result, None, seconds)
        log.debug("synced %s to %s in %.3f s", row.local_path, self.name, seconds)

    async def target_succeeded(self) -> None:
        """Tell the target's state an upload went through (once per run of successes suffices)."""
        await self._note_target_state(self.state.succeeded())

    async def failed(self, row: ClaimedRow, exc: Exception, started: float) -> None:
        if isinstance(exc, LocalFileChangedError):
            self.on_changed_file(row.local_path)
        failure = self.failure(row, exc)
        if failure.next_attempt_at is None:
            await self._abandon_session(row)
        self.write_back.failed.append(failure)
        seconds = self.attempt_seconds.pop(row.id, time.monotonic() - started)
        self.on_result(row, None, failure_reason(exc), seconds)
        await self._note_failure_for_target(exc, failure)
        level = logging.WARNING if failure.next_attempt_at is None else logging.INFO
        log.log(
            level,
            "upload of %s to %s failed: %s",
            row.local_path,
            self.name,
            failure.error,
            extra={"path": row.local_path, "target": self.name, "ref_id": str(row.id)},
        )

    def failure(self, row: ClaimedRow, error: Exception) -> FailedRow:
        """The row as written back ``failed``, with its next attempt (see :func:`after_failure`)."""
        after = after_failure(self.context.retry, error, row.attempts, datetime.now(UTC))
        return FailedRow(
            row.id, row.claim_token, after.error, after.at, spent_attempt=after.spent_attempt, announce=after.announce
        )

    async def _abandon_session(self, row: ClaimedRow) -> None:
        """A row that gave up must not leave a resumable session (or S3 parts) behind."""
        state = self.sessions.pop(row.id, row.upload_session)
        if not state:
            return
        try:
            await self.context.provider.abandon(state)
        except Exception as exc:  # best effort: the provider's own expiry cleans up the rest
            log.info("could not cancel the upload session of %s: %s", row.local_path, exc)
        with contextlib.suppress(*CONNECTION_ERRORS):
            await self.ledger.save_upload_session(row.id, row.claim_token, self.instance_id, None)

    async def _note_failure_for_target(self, error: Exception, failure: FailedRow) -> None:
        """A daily cap parks the target, a full quota marks it full, other trouble may make it failing."""
        if isinstance(error, DailyCapError) and failure.next_attempt_at is not None:
            log.warning("target %s parked until %s: %s", self.name, failure.next_attempt_at.isoformat(), error)
            await self._note_target_state(self.state.park(failure.next_attempt_at, failure.error))
        elif isinstance(error, QuotaExceededError):
            await self._note_target_state(self.state.full(failure.error))
        elif isinstance(error, TransientError) and not isinstance(error, LedgerUnavailableError):
            # Only the provider's own trouble counts: a file's problem or our database's does not.
            await self._note_target_state(self.state.failed(failure.error))

    async def _note_target_state(self, change: Awaitable[None]) -> None:
        """Target-state bookkeeping never fails an upload; a lost write is redone on the next change."""
        try:
            await change
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.info("target %s: could not record its state: %s", self.name, exc)
