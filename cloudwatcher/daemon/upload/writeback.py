"""Write upload results back to the ledger in bulk, fenced by each row's claim.

Results are buffered and written every few milliseconds as one group commit, not one
transaction per file: under a burst that is what keeps the ledger from being the bottleneck.
Every write carries the row's claim token, so a row another instance took after this one's
lease ran out keeps the other instance's result; such lost claims are counted and logged here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from uuid import UUID

import asyncpg

from cloudwatcher.daemon.health import CONNECTION_ERRORS
from cloudwatcher.daemon.ledger.store import FailedRow, SyncedRow
from cloudwatcher.daemon.ops import metrics
from cloudwatcher.daemon.retry import (
    FINAL_WRITE_BACK_ATTEMPTS,
    WRITE_BACK_ERRORS,
    not_durable_retry_at,
    wait_for_event,
    write_back_retrying,
)
from cloudwatcher.daemon.upload.context import UploadContext

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.04  # results are written back at least this often (one group commit each)
_FLUSH_PAUSE = 0.01  # and never more often than this
_FLUSHES_AT_ONCE = 2  # write-backs in progress at a time (see WriteBack.run)


class WriteBack:
    """The results of one target's uploads waiting to be written, and their writing."""

    def __init__(self, context: UploadContext, uploads_in_flight: Callable[[], bool]) -> None:
        self.context = context
        self.name = context.name
        self.ledger = context.ledger
        self.health = context.health
        self.instance_id = context.instance_id
        self.uploads_in_flight = uploads_in_flight  # while any are, big write-backs are not split
        self.synced: list[SyncedRow] = []
        self.failed: list[FailedRow] = []

    def claims(self) -> Iterator[tuple[UUID, UUID]]:
        """(row id, claim token) of every result not written yet: their leases are renewed too."""
        yield from ((row.id, row.claim_token) for row in self.synced)
        yield from ((row.id, row.claim_token) for row in self.failed)

    async def run(self, drained: asyncio.Event) -> None:
        """Write results back every 40 ms, or 10 ms after the last upload in flight finished
        (``drained``): at the end of a burst nothing is gained by waiting for more.

        Up to two write-backs run at once, so the rows that finish while one is being marked
        need not queue behind it (with the uploader alone, that wait was most of the time from
        the last upload to the last row marked). A write-back that fails unexpectedly fails this
        loop, as a sequential one did. Never ends on its own.
        """
        running: set[asyncio.Task[None]] = set()
        try:
            while True:
                drained.clear()
                if self.uploads_in_flight() or not (self.synced or self.failed):
                    await wait_for_event(drained, FLUSH_INTERVAL)
                await asyncio.sleep(_FLUSH_PAUSE)
                if len(running) >= _FLUSHES_AT_ONCE:
                    await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in [task for task in running if task.done()]:
                    running.discard(task)
                    task.result()
                if self.synced or self.failed:
                    running.add(asyncio.create_task(self.flush()))
        finally:
            await asyncio.gather(*running, return_exceptions=True)

    async def flush(self, *, final: bool = False) -> None:
        """Write what is buffered; what cannot be written now stays for the next round (or, with
        ``final``, is tried for a while, as nothing comes after it)."""
        synced, failed = self.synced, self.failed
        if not synced and not failed:
            return
        self.synced, self.failed = [], []
        if synced:
            try:
                await self.context.provider.flush()  # durable before the ledger says synced (group commit)
            except Exception as exc:
                error = f"upload not made durable: {exc}"
                retry_at = not_durable_retry_at(self.context.retry, datetime.now(UTC))
                failed = failed + [FailedRow(row.id, row.claim_token, error, retry_at) for row in synced]
                synced = []
        try:
            async for attempt in write_back_retrying(attempts=FINAL_WRITE_BACK_ATTEMPTS if final else 1):
                with attempt:
                    try:
                        split = not self.uploads_in_flight()
                        lost = await self.ledger.mark_synced(synced, self.instance_id, split=split)
                        synced = []
                        self.claims_lost(lost, "written back as synced")
                        self.claims_lost(
                            await self.ledger.mark_failed(failed, self.instance_id), "written back as failed"
                        )
                    except CONNECTION_ERRORS as exc:
                        self.health.failed(exc)
                        raise
                    except asyncpg.TransactionRollbackError as exc:
                        # A deadlock with another writer of the same rows (the ingestor linking a
                        # request, another daemon recording a shared root): PostgreSQL asks for a retry.
                        log.info("target %s: writing results back will be retried: %s", self.name, exc)
                        raise
            self.health.succeeded()
            return
        except WRITE_BACK_ERRORS:
            pass
        # not written yet: keep them for the next round (their leases are renewed meanwhile)
        self.synced = synced + self.synced
        self.failed = failed + self.failed

    def claims_lost(self, count: int, what: str) -> None:
        """Count and log claims found lost (their rows keep the result of the instance that took them)."""
        if count:
            metrics.record_claims_lost(self.name, count)
            log.warning(
                "target %s: %d claim(s) lost to another instance after their lease ran out; "
                "not %s (the other instance's result stands)",
                self.name,
                count,
                what,
                extra={"target": self.name},
            )

    async def release(self, claims: dict[UUID, UUID], what: str) -> int | None:
        """Give claimed rows back (pending again); how many were lost already, None when the
        database is unreachable (their leases run out, and the reaper frees them)."""
        try:
            lost = await self.ledger.release(claims, self.instance_id)
        except CONNECTION_ERRORS as exc:
            self.health.failed(exc)
            return None
        self.claims_lost(lost, what)
        return lost
