"""Hand recorded request and response files to the domain, one device at a time, in drop order.

Each device has its own queue and worker, so a slow or failing device never holds up another,
and a device's requests are applied in the order their files were dropped (oldest mtime first
within a batch). Everything here is restartable: the domain records what it processed, and
:func:`cloudwatcher.domain.unprocessed_files` finds the rest after a restart or an outage.

The request files at the head of a device's queue are taken as one batch (up to ``BATCH``):
each is applied in turn, in its own transaction and in drop order, and the batch is answered
together (:func:`cloudwatcher.domain.deliver_answers`: the response files made durable by one
shared flush, then their rows marked in one transaction). An envelope that fails fails alone:
it is logged and the rest of the batch is answered as usual.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Iterable
from typing import TypeVar, cast

import asyncpg

from cloudwatcher import domain
from cloudwatcher.daemon.health import CONNECTION_ERRORS, DATA_ERRORS, DatabaseHealth
from cloudwatcher.daemon.ledger.store import FileVersion
from cloudwatcher.daemon.ops import metrics
from cloudwatcher.daemon.ops.stall import ProgressClock
from cloudwatcher.daemon.retry import retry_on_outage

log = logging.getLogger(__name__)
_T = TypeVar("_T")

BATCH = 64  # request files of one device answered together (a burst's queue drains in a few)


class Ingestor:
    def __init__(self, pool: asyncpg.Pool, context: domain.IngestContext, health: DatabaseHealth) -> None:
        self.pool = pool
        self.context = context
        self.health = health
        self._queues: dict[str, deque[domain.DroppedFile]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._queued: set[tuple[str, str]] = set()
        self.progress = ProgressClock("request ingestion", lambda: len(self._queued))  # a lane per device

    def submit_versions(self, versions: Iterable[FileVersion]) -> None:
        """Queue the request and response files among freshly recorded versions."""
        wanted = sorted((v for v in versions if v.kind in ("request", "response")), key=lambda v: v.mtime_ns)
        self.submit(
            domain.DroppedFile(
                device_id=v.device_id,
                local_path=v.local_path,
                absolute_path=self.context.watch_root / v.local_path,
                content_sha256=v.sha256,
                size=v.size,
                kind=v.kind,
            )
            for v in wanted
        )

    def submit(self, files: Iterable[domain.DroppedFile]) -> None:
        for file in files:
            key = (file.local_path, file.content_sha256)
            if key in self._queued:
                continue
            queue = self._queues.setdefault(file.device_id, deque())
            if not queue:
                self.progress.mark(file.device_id)  # this device's stall clock starts now
            self._queued.add(key)
            queue.append(file)
            worker = self._workers.get(file.device_id)
            if worker is None or worker.done():
                self._workers[file.device_id] = asyncio.create_task(
                    self._drain(file.device_id), name=f"ingest:{file.device_id}"
                )

    async def catch_up(self) -> int:
        """Queue every request/response file the ledger holds but the domain has not processed."""
        async with self.pool.acquire() as connection:
            files = await domain.unprocessed_files(cast(asyncpg.Connection, connection), self.context.watch_root)
        if files:
            log.info("catching up on %d unprocessed request/response file(s)", len(files))
        self.submit(files)
        return len(files)

    async def _drain(self, device_id: str) -> None:
        queue = self._queues[device_id]
        while queue:
            batch = _head_batch(queue)
            # The same files again while the database is unreachable, so the device's order is
            # kept (those already applied are recognised and answered with their first response);
            # waiting for the database is not a stall.
            await retry_on_outage(
                functools.partial(self._step, device_id, batch),
                self.health,
                on_outage=lambda *_: self.progress.mark(device_id),
            )
            for file in batch:
                queue.popleft()
                self._queued.discard((file.local_path, file.content_sha256))
            if queue:
                self.progress.mark(device_id)
            else:
                self.progress.done(device_id)

    async def _step(self, device_id: str, batch: list[domain.DroppedFile]) -> None:
        """Apply and answer ``batch``; only an outage (:data:`CONNECTION_ERRORS`) is raised."""
        try:
            if batch[0].kind == "request":
                await self._answer(batch)
            else:
                await self._guarded(batch[0], domain.process_response_file(self.pool, batch[0], self.context))
        except CONNECTION_ERRORS:
            raise
        except Exception:
            # A bug or an unexpected error (writing the answers): log it and move on; the
            # catch-up after the next restart tries these files again.
            log.exception("could not answer %d request(s) of %s", len(batch), device_id, extra={"device": device_id})

    async def _answer(self, batch: list[domain.DroppedFile]) -> None:
        """Apply ``batch``'s requests one by one, then answer them together."""
        applied: list[domain.Applied] = []
        started: list[float] = []
        for file in batch:
            began = time.monotonic()
            result = await self._guarded(file, domain.apply_request_file(self.pool, file, self.context))
            if result is not None:
                applied.append(result)
                started.append(began)
        await domain.deliver_answers(self.pool, applied, self.context)
        answered = time.monotonic()
        for result, began in zip(applied, started, strict=True):
            metrics.observe_ingest_latency(answered - began)
            error = result.document.get("error") or {}
            metrics.record_request(
                str(result.document.get("type")), str(result.document.get("status")), error.get("code")
            )

    @staticmethod
    async def _guarded(file: domain.DroppedFile, work: Awaitable[_T]) -> _T | None:
        """``work`` for one file; its own failure is logged and skipped (None), a lost database is raised."""
        try:
            return await work
        except DATA_ERRORS as exc:
            # This file's content does not fit the database: it fails alone (the device's
            # next request goes ahead); the database itself is fine.
            log.warning(
                "could not process %s: the database refused its data (%s)",
                file.local_path,
                exc,
                extra={"path": file.local_path},
            )
        except CONNECTION_ERRORS:
            raise
        except asyncio.CancelledError:
            raise
        except Exception:
            # A bug or an unexpected database error: log it and move on; the catch-up after
            # the next restart tries this file again.
            log.exception("could not process %s", file.local_path, extra=file.log_fields)
        return None

    async def drained(self) -> None:
        """Return once every queue submitted so far is empty (benchmarks and tests)."""
        while workers := [w for w in self._workers.values() if not w.done()]:
            await asyncio.gather(*workers)

    async def close(self) -> None:
        workers = [w for w in self._workers.values() if not w.done()]
        if workers:
            await asyncio.wait(workers, timeout=5.0)
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)


def _head_batch(queue: deque[domain.DroppedFile]) -> list[domain.DroppedFile]:
    """The request files at the head of ``queue`` (up to ``BATCH``), or its first file alone."""
    if queue[0].kind != "request":
        return [queue[0]]
    batch: list[domain.DroppedFile] = []
    for file in queue:
        if file.kind != "request" or len(batch) == BATCH:
            break
        batch.append(file)
    return batch
