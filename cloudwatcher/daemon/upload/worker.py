"""Per-target upload workers: claim pending rows, upload them, have the results written back.

Data flow of one target: :meth:`TargetUploader.run` claims rows (leased, fenced by a token),
starts a task per row (:mod:`.attempt`) or per batch of small files (:mod:`.batches`), hands each
outcome to :mod:`.outcomes`, and :mod:`.writeback` writes the results in bulk. This module keeps
the rows in flight: how many, in which order per file, their leases, and giving them back.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from uuid import UUID

import asyncpg

from cloudwatcher.config.settings import RetrySettings
from cloudwatcher.daemon.health import CONNECTION_ERRORS, DatabaseHealth
from cloudwatcher.daemon.ledger.store import LEASE_SECONDS, ClaimedRow, Ledger
from cloudwatcher.daemon.retry import StoppedError, retry_on_outage
from cloudwatcher.daemon.upload.attempt import Attempts, ClaimUnsureError
from cloudwatcher.daemon.upload.batches import BATCH_LANES, batch_size, fits_a_batch, upload_many
from cloudwatcher.daemon.upload.context import UploadContext
from cloudwatcher.daemon.upload.outcomes import Outcomes, ResultHook
from cloudwatcher.daemon.upload.remote_names import RemoteNames
from cloudwatcher.daemon.upload.target_state import TargetStateTracker
from cloudwatcher.daemon.upload.writeback import WriteBack
from cloudwatcher.providers import BlockingUploads, Provider, UploadResult

log = logging.getLogger(__name__)

# Claimed rows held at once by a target with a blocking provider: enough to take a burst's
# fresh rows as they are recorded (each claimed later instead costs another ledger write).
_BLOCKING_IN_FLIGHT = 8192
# Recorded bytes (ClaimedRow.content) held by rows in flight, beyond which fresh rows are left
# pending (and uploaded from their files) rather than taken as they are recorded.
_HELD_CONTENT_LIMIT = 16 * 1024 * 1024


class TargetUploader:
    """Keeps up to ``max_in_flight`` claimed rows of one target moving through ``concurrency`` slots.

    One per configured target, so that a slow or failing cloud never holds up the others. Rows
    come two ways: claimed from the ledger by :meth:`run`, or claimed by the recording itself
    and handed over (:meth:`accept`) while this uploader is caught up, which saves a ledger
    write per file under a burst. Any row may also be claimed by another instance once its
    lease lapses, so nothing is uploaded unless its lease is surely still held.
    """

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
        on_result: ResultHook = lambda *_: None,
    ) -> None:
        self.context = UploadContext(name, provider, ledger, health, retry, instance_id)
        self.name, self.ledger, self.health, self.instance_id = name, ledger, health, instance_id
        self.watch_root = watch_root
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
        self._room = asyncio.Event()
        self._drained = asyncio.Event()  # set when the last upload in flight finishes
        self.names = RemoteNames(ledger.pool, name, provider, provider_tag)
        # Versions of one file go up one after another, oldest first: a superseded upload still
        # in flight must never land after (and over) the newer content.
        self._path_locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}  # lock, tasks using it
        self._batch_lanes = min(BATCH_LANES, concurrency)
        self._batch_slots = asyncio.Semaphore(self._batch_lanes)
        self.state = TargetStateTracker(ledger.pool, name)
        self.write_back = WriteBack(self.context, uploads_in_flight=lambda: bool(self._in_flight))
        self.outcomes = Outcomes(self.context, self.write_back, self.state, on_changed_file, on_result)
        self.attempts = Attempts(provider=provider, watch_root=watch_root, names=self.names, outcomes=self.outcomes)
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
        flusher = asyncio.create_task(self.write_back.run(self._drained))
        renewer = asyncio.create_task(self._renew_loop())
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
            await self.write_back.flush(final=True)

    async def _claim_loop(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            room = self.max_in_flight - len(self._in_flight)
            if room < max(1, self.max_in_flight // 4):
                self._room.clear()
                await _wait_any(stopping, self._room, seconds=1.0)
                continue
            self.wake.clear()
            try:
                rows = await retry_on_outage(
                    functools.partial(self.ledger.claim, self.name, room, LEASE_SECONDS, self.instance_id),
                    self.health,
                    stopping=stopping,
                )
            except StoppedError:
                return
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
            fits = self._blocking is not None and fits_a_batch(row)
            (batchable if fits and row.local_path not in self._path_locks else singles).append(row)
            self._use_path_lock(row.local_path)
            self._claims[row.id] = row
        size = batch_size(len(batchable), self._batch_lanes)
        for start in range(0, len(batchable), size):
            batch = batchable[start : start + size]
            task = asyncio.create_task(self._upload_batch(batch))
            for row in batch:
                self._in_flight[row.id] = task
        for row in singles:
            self._in_flight[row.id] = asyncio.create_task(self._upload(row))

    # ------------------------------------------------------------------ giving claims back
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
                self.write_back.claims_lost(await self.ledger.release(abandoned, self.instance_id), "given back")

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
        self.write_back.claims_lost(await self.ledger.release(claims, self.instance_id), "given back")

    async def _give_back(self, rows: list[ClaimedRow]) -> None:
        """Rows whose lease may have lapsed before their upload began: released if still this
        instance's (then claimed afresh, by whichever instance comes first), counted if lost."""
        lost = await self.write_back.release({row.id: row.claim_token for row in rows}, "uploaded")
        if lost is not None and lost < len(rows):
            self.notify_pending()

    async def _renew_loop(self) -> None:
        """Renew the leases of every claim held (in flight, or waiting to be written back).

        Renewal is fenced like every write-back: a claim another instance has taken meanwhile
        stays lost, and its row keeps its old ``lease_until``, so its upload, if not begun, is
        never started (it is counted lost then, or when its result is written back).
        """
        while True:
            await asyncio.sleep(LEASE_SECONDS / 3)
            claims = {row_id: row.claim_token for row_id, row in self._claims.items()}
            claims.update(self.write_back.claims())
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

    # ------------------------------------------------------------------ uploads
    async def _upload(self, row: ClaimedRow) -> None:
        started = time.monotonic()
        lock = self._path_locks[row.local_path][0]  # registered by _start
        try:
            async with lock, self._slots:  # versions of one file go up one at a time, in order
                self._started.add(row.id)
                result = await self.attempts.one(row)
            self.outcomes.succeeded(row, result, started)
            await self.outcomes.target_succeeded()
        except asyncio.CancelledError:
            raise
        except ClaimUnsureError:
            await self._give_back([row])
        except Exception as exc:  # every failure lands in the ledger with its reason
            await self.outcomes.failed(row, exc, started)
        finally:
            self._done_with(row)

    async def _upload_batch(self, rows: list[ClaimedRow]) -> None:
        """Small files through a blocking provider, one after another in one worker thread."""
        assert self._blocking is not None
        started = time.monotonic()
        held: list[asyncio.Lock] = []
        try:
            for row in rows:  # all free (see _start): this takes them without waiting
                lock = self._path_locks[row.local_path][0]
                await lock.acquire()
                held.append(lock)
            async with self._batch_slots, self._slots:
                self._started.update(row.id for row in rows)
                remote_paths = await self.attempts.remote_paths(rows)
                outcomes = await asyncio.to_thread(
                    upload_many,
                    self._blocking.upload_blocking,
                    rows,
                    remote_paths,
                    self.watch_root,
                    self.outcomes.attempt_seconds,
                )
            succeeded = False  # since the target state last heard of it (once per run of successes)
            unsure = [row for row, done in zip(rows, outcomes, strict=True) if isinstance(done, ClaimUnsureError)]
            if unsure:
                await self._give_back(unsure)
            for row, outcome in zip(rows, outcomes, strict=True):
                if isinstance(outcome, ClaimUnsureError):
                    continue
                if isinstance(outcome, UploadResult):
                    self.outcomes.succeeded(row, outcome, started)
                    succeeded = True
                    continue
                if succeeded:
                    await self.outcomes.target_succeeded()
                    succeeded = False
                await self.outcomes.failed(row, outcome, started)
            if succeeded:
                await self.outcomes.target_succeeded()
        finally:
            for lock in held:
                lock.release()
            for row in rows:
                self._done_with(row)

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
        self.outcomes.forget(row)
        self._in_flight.pop(row.id, None)
        self._claims.pop(row.id, None)
        self._started.discard(row.id)
        self._room.set()
        if not self._in_flight:
            self._drained.set()


async def _wait_any(*events: asyncio.Event, seconds: float) -> None:
    """Return when any event is set or ``seconds`` pass."""
    waiters = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
