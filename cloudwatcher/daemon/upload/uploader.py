"""Per-target upload workers: claim pending rows, upload, verify, write results back in bulk."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from cloudwatcher.config.settings import RetrySettings
from cloudwatcher.daemon.health import CONNECTION_ERRORS, DatabaseHealth
from cloudwatcher.daemon.ledger.recorder import sha256_of_fd
from cloudwatcher.daemon.ledger.store import LEASE_SECONDS, ClaimedRow, FailedRow, Ledger, SyncedRow
from cloudwatcher.daemon.ops import metrics
from cloudwatcher.daemon.retry import next_attempt_at, server_retry_after
from cloudwatcher.daemon.upload.failure_reasons import failure_reason
from cloudwatcher.daemon.upload.remote_names import RemoteNames
from cloudwatcher.daemon.upload.target_state import TargetStateTracker
from cloudwatcher.gateway import RefusedPathError, open_regular
from cloudwatcher.providers import (
    BlockingUploads,
    DailyCapError,
    FileChangedError,
    PermanentError,
    Provider,
    QuotaExceededError,
    TransientError,
    UploadJob,
    UploadResult,
)

log = logging.getLogger(__name__)

_QUICK_RETRY_MAX_WAIT = 2.0  # in-attempt retries only for short waits; longer ones go to the schedule
# Files up to this size go through a blocking provider in batches (BlockingUploads); a batch
# holds one upload slot, so bigger files get slots of their own and never queue behind a batch.
BATCH_FILE_LIMIT = 256 * 1024
_BATCH_LIMIT = 64  # rows per batch: enough to amortise the hand-off, small enough to keep latency
# Batches running at once (each in its own thread, within upload_concurrency). Copying small files
# is Python work between system calls, so threads queue on the GIL: in the burst benchmark one
# thread was as fast as two and four were 20% slower. Two still overlap the round trips of a
# network mount (NFS, SMB), where each create and rename waits on the server.
_BATCH_LANES = 2
_FLUSH_INTERVAL = 0.04  # results are written back at least this often (one group commit each)
_FLUSH_PAUSE = 0.01  # and never more often than this
_FLUSHES_AT_ONCE = 2  # write-backs in progress at a time (see _flush_loop)
# Claimed rows held at once by a target with a blocking provider: enough to take a burst's
# fresh rows as they are recorded (each claimed later instead costs another ledger write).
_BLOCKING_IN_FLIGHT = 8192
# Recorded bytes (ClaimedRow.content) held by rows in flight, beyond which fresh rows are left
# pending (and uploaded from their files) rather than taken as they are recorded.
_HELD_CONTENT_LIMIT = 16 * 1024 * 1024


class _LedgerUnavailableError(TransientError):
    """The database could not be asked before the upload (the remote name); nothing was sent."""


class _LocalFileChangedError(FileChangedError):
    """The watched file is not what the ledger recorded: the watcher should look at it again."""


class _ClaimUnsureError(Exception):
    """The row's lease may have run out (the process stalled, or renewals failed) before its
    upload could start: another instance may hold it now, so it is not uploaded but given back.
    Not a TransientError: never retried in place."""


def _upload_while_held(upload: Callable[[UploadJob], UploadResult], row: ClaimedRow, job: UploadJob) -> UploadResult:
    """One blocking try, started only while the row's lease is surely this instance's."""
    if not row.lease_surely_held():
        raise _ClaimUnsureError
    return upload(job)


def _worth_a_quick_retry(error: BaseException) -> bool:
    return (
        isinstance(error, TransientError)
        and not isinstance(error, DailyCapError)
        and (error.retry_after or 0.0) <= _QUICK_RETRY_MAX_WAIT
    )


_QUICK_BACKOFF = wait_exponential(multiplier=0.2, max=_QUICK_RETRY_MAX_WAIT)


def _quick_retry_wait(retry_state: RetryCallState) -> float:
    """The short backoff, but never less than the server's ``Retry-After``.

    A throttled request repeated sooner is throttled again (Graph counts it against the
    client), so the hint is a floor, as in the scheduled retries (``retry.next_attempt_at``).
    """
    error = retry_state.outcome.exception() if retry_state.outcome is not None else None
    return max(_QUICK_BACKOFF(retry_state), server_retry_after(error))


# tenacity's policy for in-attempt retries. The blocking path makes one plain try first and hands
# a transient failure to this same policy (so it may try once more than the async path).
_QUICK_RETRIES: dict[str, Any] = {
    "stop": stop_after_attempt(3),
    "wait": _quick_retry_wait,
    "retry": retry_if_exception(_worth_a_quick_retry),
    "reraise": True,
}


class TargetUploader:
    """Keeps up to ``max_in_flight`` claimed rows of one target moving through ``concurrency`` slots."""

    def __init__(
        self,
        *,
        name: str,
        provider: Provider,
        provider_tag: str,
        ledger: Ledger,
        health: DatabaseHealth,
        retry: RetrySettings,
        watch_root: Path,
        concurrency: int,
        instance_id: UUID | None,
        on_changed_file: Callable[[str], None] = lambda path: None,
        # (row, result or None, failure reason or None, seconds the attempt took)
        on_result: Callable[[ClaimedRow, UploadResult | None, str | None, float], None] = lambda *_: None,
    ) -> None:
        self.name = name
        self.provider = provider
        self.ledger = ledger
        self.health = health
        self.retry = retry
        self.watch_root = watch_root
        self.concurrency = concurrency
        self.instance_id = instance_id
        self.on_changed_file = on_changed_file
        self.on_result = on_result
        self._blocking = provider if isinstance(provider, BlockingUploads) else None
        # Claimed rows held at once. Small files through a blocking provider go by the thousand
        # a second, so a deep queue keeps its batches fed between claims; one task per row
        # (the other providers) needs no more than a few rounds of its slots.
        self.max_in_flight = _BLOCKING_IN_FLIGHT if self._blocking is not None else max(32, concurrency * 64)
        self.wake = asyncio.Event()
        self._stopping: asyncio.Event | None = None
        # True once a claim has found no more pending rows than it asked for, and until rows may
        # be pending again (wake): only then do freshly recorded rows come straight here.
        self._caught_up = False
        self._held_content = 0  # bytes of ClaimedRow.content in flight
        self._slots = asyncio.Semaphore(concurrency)
        self._in_flight: dict[UUID, asyncio.Task[None]] = {}
        self._claims: dict[UUID, ClaimedRow] = {}  # the rows in flight, with their claim tokens
        self._synced: list[SyncedRow] = []
        self._failed: list[FailedRow] = []
        self._room = asyncio.Event()
        self._drained = asyncio.Event()  # set when the last upload in flight finishes
        self._sessions: dict[UUID, dict[str, Any] | None] = {}  # latest saved session per row in flight
        # Each batched row's own attempt time (a batch's rows go up one after another in a thread).
        self._attempt_seconds: dict[UUID, float] = {}
        self.names = RemoteNames(ledger.pool, name, provider, provider_tag)
        # Versions of one file go up one after another, oldest first: a superseded upload still
        # in flight must never land after (and over) the newer content.
        self._path_locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}  # lock, tasks using it
        self._batch_lanes = min(_BATCH_LANES, concurrency)
        self._batch_slots = asyncio.Semaphore(self._batch_lanes)
        self.state = TargetStateTracker(ledger.pool, name)
        # `cloudwatcher pause`: claims skip a paused target at once; rows claimed before the pause
        # and still queued here (not started) are given back. Looked up with the lease renewal
        # (every few seconds), and cleared by any claim that returns rows.
        self._paused = False
        self._started: set[UUID] = set()  # rows in flight whose upload has begun

    # ------------------------------------------------------------------ main loops
    async def run(self, stopping: asyncio.Event) -> None:
        """Claim, upload and write back until ``stopping``; then finish or give back what is claimed.

        The flush and lease-renewal loops never end on their own: if one fails, this fails too
        (and the daemon stops, for systemd to restart it) rather than leaving a target whose
        results are never written while its leases are renewed forever.
        """
        self._stopping = stopping
        claimer = asyncio.create_task(self._claim_loop(stopping))
        flusher = asyncio.create_task(self._flush_loop(stopping))
        renewer = asyncio.create_task(self._renew_loop(stopping))
        try:
            done, _ = await asyncio.wait({claimer, flusher, renewer}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            claimer.cancel()
            renewer.cancel()
            await asyncio.gather(claimer, renewer, return_exceptions=True)
            await self._drain()
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)
            await self._flush(final=True)

    async def _claim_loop(self, stopping: asyncio.Event) -> None:
        delay = 0.5
        while not stopping.is_set():
            room = self.max_in_flight - len(self._in_flight)
            if room < max(1, self.max_in_flight // 4):
                self._room.clear()
                await _wait_any(stopping, self._room, seconds=1.0)
                continue
            self.wake.clear()
            try:
                rows = await self.ledger.claim(self.name, room, LEASE_SECONDS, self.instance_id)
            except CONNECTION_ERRORS as exc:
                self.health.failed(exc)
                await _wait_any(stopping, seconds=delay)
                delay = min(delay * 2, 10.0)
                continue
            self.health.succeeded()
            delay = 0.5
            if rows:
                self._paused = False  # the claim skips paused targets: this one is not (any more)
            if len(rows) < room and not self.wake.is_set():
                self._caught_up = True
            if not rows:
                await _wait_any(stopping, self.wake, seconds=5.0)
                continue
            self._start(rows)

    # ------------------------------------------------------------------ rows claimed as recorded
    def notify_pending(self) -> None:
        """Rows may be pending for this target (recorded, re-queued, released): claim them."""
        self._caught_up = False
        self.wake.set()

    def handoff_room(self) -> int:
        """How many freshly recorded rows this uploader takes claimed from the recording itself.

        Zero while it is behind (older pending rows go first), stopping, or seeing the target
        fail: those rows are recorded ``pending`` and claimed in turn.
        """
        if not self._caught_up or self._stopping is None or self._stopping.is_set() or self.state.troubled:
            return 0
        if self._paused:
            return 0
        if self._held_content >= _HELD_CONTENT_LIMIT:
            return 0
        return max(0, self.max_in_flight - len(self._in_flight))

    def accept(self, rows: list[ClaimedRow]) -> None:
        """Upload rows that were claimed for this uploader as they were recorded.

        Should the uploader have stopped meanwhile, their leases run out and they are claimed
        again (the daemon's exit also hands its claims back).
        """
        if self._stopping is not None and not self._stopping.is_set():
            self._start(rows)

    def _start(self, rows: list[ClaimedRow]) -> None:
        """A task per row; for a blocking provider, small files go in batches of rows instead.

        A batch takes only paths no other upload holds (its locks are taken before anything else
        can ask for them), so batches never wait on each other and versions stay in order.
        """
        singles: list[ClaimedRow] = []
        batchable: list[ClaimedRow] = []
        for row in rows:  # oldest first; each path's lock is registered before any task runs
            if row.content is not None:
                self._held_content += len(row.content)
            fits = self._blocking is not None and row.size <= BATCH_FILE_LIMIT and row.upload_session is None
            (batchable if fits and row.local_path not in self._path_locks else singles).append(row)
            self._use_path_lock(row.local_path)
            self._claims[row.id] = row
        size = min(_BATCH_LIMIT, -(-len(batchable) // self._batch_lanes)) if batchable else 1
        for start in range(0, len(batchable), size):
            batch = batchable[start : start + size]
            task = asyncio.create_task(self._upload_batch(batch))
            for row in batch:
                self._in_flight[row.id] = task
        for row in singles:
            self._in_flight[row.id] = asyncio.create_task(self._upload(row))

    async def _drain(self, deadline: float = 8.0) -> None:
        """On shutdown: let in-flight uploads finish up to ``deadline``, then give their claims back."""
        if not self._in_flight:
            return
        tasks = list(self._in_flight.values())
        _, still_running = await asyncio.wait(tasks, timeout=deadline)
        abandoned = {
            row_id: self._claims[row_id].claim_token
            for row_id, task in self._in_flight.items()
            if task in still_running
        }
        for task in still_running:
            task.cancel()
        await asyncio.gather(*still_running, return_exceptions=True)
        if abandoned:
            log.info("target %s: giving back %d unfinished claim(s)", self.name, len(abandoned))
            with contextlib.suppress(*CONNECTION_ERRORS):
                self._claims_lost(await self.ledger.release(abandoned, self.instance_id), "given back")

    async def _give_back_queued(self) -> None:
        """The target is paused: rows claimed before, still waiting for a slot, go back to pending.

        Uploads under way finish. Nothing awaits between picking the queued tasks and cancelling
        them, so none of them can have begun uploading (as :meth:`_drain` does on shutdown).
        """
        queued = {row_id: task for row_id, task in self._in_flight.items() if row_id not in self._started}
        if not queued:
            return
        claims = {row_id: self._claims[row_id].claim_token for row_id in queued if row_id in self._claims}
        tasks = set(queued.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        log.info("target %s is paused: gave back %d queued upload(s)", self.name, len(queued))
        self._claims_lost(await self.ledger.release(claims, self.instance_id), "given back")

    async def _flush_loop(self, stopping: asyncio.Event) -> None:
        """Write results back every 40 ms, or 10 ms after the last upload in flight finished:
        at the end of a burst nothing is gained by waiting for more.

        Up to two write-backs run at once, so the rows that finish while one is being marked
        need not queue behind it (with the uploader alone, that wait was most of the time from
        the last upload to the last row marked). A write-back that fails unexpectedly fails this
        loop, as a sequential one did.
        """
        running: set[asyncio.Task[None]] = set()
        try:
            while True:
                self._drained.clear()
                if self._in_flight or not (self._synced or self._failed):
                    await _wait_any(self._drained, seconds=_FLUSH_INTERVAL)
                await asyncio.sleep(_FLUSH_PAUSE)
                if len(running) >= _FLUSHES_AT_ONCE:
                    await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in [task for task in running if task.done()]:
                    running.discard(task)
                    task.result()
                if self._synced or self._failed:
                    running.add(asyncio.create_task(self._flush()))
        finally:
            await asyncio.gather(*running, return_exceptions=True)

    async def _flush(self, final: bool = False) -> None:
        synced, failed = self._synced, self._failed
        if not synced and not failed:
            return
        self._synced, self._failed = [], []
        if synced:
            try:
                await self.provider.flush()  # durable before the ledger says synced (group commit)
            except Exception as exc:
                error = f"upload not made durable: {exc}"
                retry_at = datetime.now(UTC) + timedelta(seconds=self.retry.initial_delay_seconds)
                failed = failed + [FailedRow(row.id, row.claim_token, error, retry_at) for row in synced]
                synced = []
        for attempt in range(100 if final else 1):
            try:
                lost = await self.ledger.mark_synced(synced, self.instance_id, split=not self._in_flight)
                synced = []
                self._claims_lost(lost, "written back as synced")
                self._claims_lost(await self.ledger.mark_failed(failed, self.instance_id), "written back as failed")
                self.health.succeeded()
                return
            except CONNECTION_ERRORS as exc:
                self.health.failed(exc)
                if final:
                    await asyncio.sleep(min(0.5 * 2**attempt, 5.0))
            except asyncpg.TransactionRollbackError as exc:
                # A deadlock with another writer of the same rows (the ingestor linking a request,
                # another daemon recording a shared root): PostgreSQL asks for a retry.
                log.info("target %s: writing results back will be retried: %s", self.name, exc)
                if final:
                    await asyncio.sleep(0.05 * (attempt + 1))
        # not written yet: keep them for the next round (their leases are renewed meanwhile)
        self._synced = synced + self._synced
        self._failed = failed + self._failed

    async def _renew_loop(self, stopping: asyncio.Event) -> None:
        """Renew the leases of every claim held (in flight, or waiting to be written back).

        Renewal is fenced like every write-back: a claim another instance has taken meanwhile
        stays lost, and its row keeps its old ``lease_until``, so its upload, if not begun, is
        never started (it is counted lost then, or when its result is written back).
        """
        while True:
            await asyncio.sleep(LEASE_SECONDS / 3)
            claims = {row_id: row.claim_token for row_id, row in self._claims.items()}
            claims.update((row.id, row.claim_token) for row in self._synced)
            claims.update((row.id, row.claim_token) for row in self._failed)
            with contextlib.suppress(*CONNECTION_ERRORS, asyncpg.TransactionRollbackError):
                # missed once: renewed next time (and uploads wait for it once the margin is reached)
                held, until = await self.ledger.renew_leases(claims, LEASE_SECONDS, self.instance_id)
                for row_id in held:
                    row = self._claims.get(row_id)
                    if row is not None:
                        row.lease_until = until

            with contextlib.suppress(*CONNECTION_ERRORS):
                self._paused = await self.ledger.target_paused(self.name)
                if self._paused:
                    await self._give_back_queued()

    def _claims_lost(self, count: int, what: str) -> None:
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

    async def _give_back(self, rows: list[ClaimedRow]) -> None:
        """Rows whose lease may have lapsed before their upload began: released if still this
        instance's (then claimed afresh, by whichever instance comes first), counted if lost."""
        claims = {row.id: row.claim_token for row in rows}
        try:
            lost = await self.ledger.release(claims, self.instance_id)
        except CONNECTION_ERRORS as exc:  # their leases run out, and the reaper frees them
            self.health.failed(exc)
            return
        self._claims_lost(lost, "uploaded")
        if lost < len(claims):
            self.notify_pending()

    # ------------------------------------------------------------------ one row
    async def _upload(self, row: ClaimedRow) -> None:
        started = time.monotonic()
        lock = self._path_locks[row.local_path][0]  # registered by _start
        try:
            async with lock, self._slots:  # versions of one file go up one at a time, in order
                self._started.add(row.id)
                result = await self._attempt(row)
            self._upload_succeeded(row, result, started)
            await self._note_target_state(self.state.succeeded())
        except asyncio.CancelledError:
            raise
        except _ClaimUnsureError:
            await self._give_back([row])
        except Exception as exc:  # every failure lands in the ledger with its reason
            await self._upload_failed(row, exc, started)
        finally:
            self._done_with(row)

    async def _attempt(self, row: ClaimedRow) -> UploadResult:
        local_file = self.watch_root / row.local_path
        mtime_ns = await asyncio.to_thread(self._unchanged_since_recorded, row, local_file)
        job = UploadJob(
            local_file=local_file,
            remote_path=await self._remote_path(row.local_path),
            size=row.size,
            sha256=row.sha256,
            mtime_ns=mtime_ns,
            resume_state=row.upload_session,
            watch_root=self.watch_root,
        )

        async def save_state(state: dict[str, Any] | None) -> None:
            self._sessions[row.id] = state
            with contextlib.suppress(*CONNECTION_ERRORS):
                await self.ledger.save_upload_session(row.id, row.claim_token, self.instance_id, state)

        result: UploadResult | None = None
        async for attempt in AsyncRetrying(**_QUICK_RETRIES):
            with attempt:
                if not row.lease_surely_held():  # checked before every try: a retry is an upload too
                    raise _ClaimUnsureError
                result = await self.provider.upload(job, save_state)
        assert result is not None
        self._unchanged_during_upload(row, local_file, mtime_ns)
        return result

    # ------------------------------------------------------------------ a batch of small files
    async def _upload_batch(self, rows: list[ClaimedRow]) -> None:
        """Small files through a blocking provider, one after another in one worker thread."""
        started = time.monotonic()
        held: list[asyncio.Lock] = []
        try:
            for row in rows:  # all free (see _start): this takes them without waiting
                lock = self._path_locks[row.local_path][0]
                await lock.acquire()
                held.append(lock)
            async with self._batch_slots, self._slots:
                self._started.update(row.id for row in rows)
                remote_paths: list[str | Exception] = []
                if self.names.identical:  # no coroutine per row when there is nothing to decide
                    remote_paths.extend(row.local_path for row in rows)
                else:
                    for row in rows:
                        try:
                            remote_paths.append(await self._remote_path(row.local_path))
                        except _LedgerUnavailableError as exc:
                            remote_paths.append(exc)
                outcomes = await asyncio.to_thread(self._attempt_blocking_many, rows, remote_paths)
            succeeded = False  # since the target state last heard of it (once per run of successes)
            unsure = [row for row, done in zip(rows, outcomes, strict=True) if isinstance(done, _ClaimUnsureError)]
            if unsure:
                await self._give_back(unsure)
            for row, outcome in zip(rows, outcomes, strict=True):
                if isinstance(outcome, _ClaimUnsureError):
                    continue
                if isinstance(outcome, UploadResult):
                    self._upload_succeeded(row, outcome, started)
                    succeeded = True
                    continue
                if succeeded:
                    await self._note_target_state(self.state.succeeded())
                    succeeded = False
                await self._upload_failed(row, outcome, started)
            if succeeded:
                await self._note_target_state(self.state.succeeded())
        finally:
            for lock in held:
                lock.release()
            for row in rows:
                self._done_with(row)

    def _attempt_blocking_many(
        self, rows: list[ClaimedRow], remote_paths: list[str | Exception]
    ) -> list[UploadResult | Exception]:
        """Runs in a worker thread: each row's outcome, its result or its error."""
        assert self._blocking is not None
        upload = self._blocking.upload_blocking
        quick_retries = Retrying(**_QUICK_RETRIES)  # one per batch: it is reused row after row
        # Once a row has failed with a transient error despite its quick retries, the target is
        # likely in trouble (a full or read-only mirror): the rest of the batch gets one try each
        # rather than seconds of back-off each, and the schedule retries what fails.
        in_trouble = False
        outcomes: list[UploadResult | Exception] = []
        for row, remote_path in zip(rows, remote_paths, strict=True):
            if isinstance(remote_path, Exception):
                outcomes.append(remote_path)
                continue
            began = time.monotonic()
            try:
                local_file = self.watch_root / row.local_path
                # With the recorded bytes in hand the file is looked at once, after the upload.
                recorded = row.content is not None
                mtime_ns = row.mtime_ns if recorded else self._unchanged_since_recorded(row, local_file)
                job = UploadJob(
                    local_file,
                    remote_path,
                    row.size,
                    row.sha256,
                    mtime_ns,
                    content=row.content,
                    watch_root=self.watch_root,
                )
                try:
                    result = _upload_while_held(upload, row, job)
                except Exception as exc:  # tenacity only from here: its set-up per call showed in profiles
                    if in_trouble or not _worth_a_quick_retry(exc):
                        raise
                    # tenacity makes its first call at once: the server's hint is waited out here.
                    time.sleep(server_retry_after(exc))
                    result = quick_retries(_upload_while_held, upload, row, job)
                if recorded:
                    self._unchanged_since_recorded(row, local_file)  # still there, and still those bytes
                else:
                    self._unchanged_during_upload(row, local_file, mtime_ns)
                outcomes.append(result)
            except Exception as exc:
                in_trouble = in_trouble or isinstance(exc, TransientError)
                outcomes.append(exc)
            self._attempt_seconds[row.id] = time.monotonic() - began
        return outcomes

    # ------------------------------------------------------------------ shared by both paths
    def _unchanged_since_recorded(self, row: ClaimedRow, local_file: Path) -> int:
        """The mtime to upload ``local_file`` (``row``'s file) with; blocking (it may hash the file)."""
        try:
            info = os.lstat(local_file)
        except FileNotFoundError as exc:
            raise PermanentError(f"local file no longer exists: {row.local_path}") from exc
        if (info.st_size, info.st_mtime_ns) == (row.size, row.mtime_ns):
            return row.mtime_ns
        # Touched but not changed (same bytes) is no reason to fail: upload with the new mtime.
        if info.st_size != row.size or self._sha256_of(local_file, row.size) != row.sha256:
            raise _LocalFileChangedError("file changed since it was recorded; its new content gets its own row")
        return info.st_mtime_ns

    def _sha256_of(self, local_file: Path, size: int) -> str:
        """The sha256 of a device's file, read through the gateway (never through a link)."""
        try:
            reader = open_regular(local_file, self.watch_root)
        except RefusedPathError as exc:
            raise PermanentError(f"not read: {exc}") from exc
        try:
            return sha256_of_fd(reader, size)
        finally:
            os.close(reader)

    @staticmethod
    def _unchanged_during_upload(row: ClaimedRow, local_file: Path, mtime_ns: int) -> None:
        after = os.lstat(local_file)
        if (after.st_size, after.st_mtime_ns) != (row.size, mtime_ns):
            raise _LocalFileChangedError("file changed during upload; its new content gets its own row")

    def _use_path_lock(self, local_path: str) -> None:
        """Register one more user of the lock that keeps versions of one file apart (until
        :meth:`_done_with`); the uploads take it from ``_path_locks``."""
        entry = self._path_locks.get(local_path)
        if entry is None:  # not setdefault: that would build a lock for every row, used or not
            entry = self._path_locks[local_path] = (asyncio.Lock(), [0])
        entry[1][0] += 1

    def _done_with(self, row: ClaimedRow) -> None:
        if row.content is not None:
            self._held_content -= len(row.content)
        users = self._path_locks[row.local_path][1]
        users[0] -= 1
        if not users[0]:
            del self._path_locks[row.local_path]
        self._sessions.pop(row.id, None)
        self._in_flight.pop(row.id, None)
        self._claims.pop(row.id, None)
        self._started.discard(row.id)
        self._room.set()
        if not self._in_flight:
            self._drained.set()

    def _upload_succeeded(self, row: ClaimedRow, result: UploadResult, started: float) -> None:
        self._synced.append(
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
        seconds = self._attempt_seconds.pop(row.id, time.monotonic() - started)
        self.on_result(row, result, None, seconds)
        log.debug("synced %s to %s in %.3f s", row.local_path, self.name, seconds)

    async def _upload_failed(self, row: ClaimedRow, exc: Exception, started: float) -> None:
        if isinstance(exc, _LocalFileChangedError):
            self.on_changed_file(row.local_path)
        failure = self._failure(row, exc)
        if failure.next_attempt_at is None:
            await self._abandon_session(row)
        self._failed.append(failure)
        seconds = self._attempt_seconds.pop(row.id, time.monotonic() - started)
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

    async def _remote_path(self, local_path: str) -> str:
        try:
            return await self.names.remote_path(local_path)
        except CONNECTION_ERRORS as exc:
            raise _LedgerUnavailableError(f"remote name not decided, database unreachable: {exc}") from exc

    async def _abandon_session(self, row: ClaimedRow) -> None:
        """A row that gave up must not leave a resumable session (or S3 parts) behind."""
        state = self._sessions.pop(row.id, row.upload_session)
        if not state:
            return
        try:
            await self.provider.abandon(state)
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
        elif isinstance(error, TransientError) and not isinstance(error, _LedgerUnavailableError):
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

    def _failure(self, row: ClaimedRow, error: Exception) -> FailedRow:
        now = datetime.now(UTC)
        message = str(error) or type(error).__name__
        if isinstance(error, _LedgerUnavailableError):  # not the upload's fault: spend nothing
            return FailedRow(row.id, row.claim_token, message, now + timedelta(seconds=5), spent_attempt=False)
        if isinstance(error, DailyCapError):
            parked = now.timestamp() + (error.retry_after or 3600.0)
            return FailedRow(row.id, row.claim_token, message, datetime.fromtimestamp(parked, UTC), spent_attempt=False)
        if isinstance(error, PermanentError):
            # A file that changed is not a give-up worth announcing: its new content has a row.
            return FailedRow(row.id, row.claim_token, message, None, announce=not isinstance(error, FileChangedError))
        retry_after = error.retry_after if isinstance(error, TransientError) else None
        if not isinstance(error, TransientError):
            message = f"{type(error).__name__}: {message}"
        attempts = row.attempts + 1
        return FailedRow(
            row.id, row.claim_token, message, next_attempt_at(self.retry, attempts, now, retry_after=retry_after)
        )


async def _wait_any(*events: asyncio.Event, seconds: float) -> None:
    """Return when any event is set or ``timeout`` passes."""
    waiters = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
