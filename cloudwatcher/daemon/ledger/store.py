"""All ledger (``cloud_file_refs``) access of the daemon, in batches.

The database does the hard part (procrastinate's lesson): claims are one statement with
``FOR UPDATE SKIP LOCKED`` and a lease, results are written back in bulk, and any process may
die at any moment without losing a row.

Every claim carries a token (see :mod:`cloudwatcher.schema.queries`): the write-backs below
take it with each row and change only rows whose claim is still this instance's. Each returns
how many of its rows had lost their claim (another instance took them after the lease ran
out), for the caller to count and log; such a row keeps the other instance's result.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from cloudwatcher.daemon.retry import deadlock_retrying
from cloudwatcher.layout import FileKind
from cloudwatcher.schema import queries

_MARK_SPLIT = 1000  # more rows than this are marked synced by two statements at once
LEASE_SECONDS = 30.0  # a dead worker's claim is free again within this (plus the reaper's interval)
# A claim is acted on only while this much of its lease is surely left, by this process's clock
# (counted from before the statement that took or renewed it): slack for the clocks' rates.
LEASE_MARGIN_SECONDS = 2.0

# A pool connection proxy or a plain connection: both run queries the same way.
# (The per-file records below are plain slotted dataclasses, not frozen ones: a frozen
# dataclass sets each field through object.__setattr__, which made building them 4x dearer,
# and a burst builds several per file.)
InTransaction = Callable[[Any], Awaitable[None]]


@dataclass(slots=True)
class FileVersion:
    """One settled, hashed local file, ready to be recorded."""

    local_path: str
    device_id: str
    kind: FileKind
    sha256: str
    size: int
    mtime_ns: int
    # The bytes that were hashed, for a small file (recorder.KEEP_CONTENT_LIMIT), else None.
    content: bytes | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class KnownVersion:
    size: int
    mtime_ns: int
    sha256: str
    targets: frozenset[str]


@dataclass(slots=True)
class ClaimedRow:
    id: UUID
    claim_token: UUID  # this claim's fencing token: every write-back of the row carries it
    local_path: str
    device_id: str
    kind: str
    sha256: str
    size: int
    mtime_ns: int
    attempts: int = 0
    upload_session: dict[str, Any] | None = None
    # When the daemon noticed the file (the row's creation, Unix time), for drop-to-synced.
    noticed_at: float | None = None
    # The recorded bytes, for a small file claimed as it was recorded; None: read the file.
    content: bytes | None = field(default=None, compare=False, repr=False)
    # time.monotonic() before which the lease is surely still held (see LEASE_MARGIN_SECONDS);
    # an upload must not start later unless a renewal has moved it on.
    lease_until: float = 0.0

    def lease_surely_held(self) -> bool:
        return time.monotonic() < self.lease_until


def lease_until(sent_at: float, lease_seconds: float) -> float:
    """The ``lease_until`` of a lease taken or renewed by a statement sent at ``sent_at``."""
    return sent_at + lease_seconds - LEASE_MARGIN_SECONDS


@dataclass
class Recorded:
    """What one recording transaction did."""

    new_rows: int = 0
    claimed: dict[str, list[ClaimedRow]] = field(default_factory=dict)  # target → rows born claimed
    left_pending: set[str] = field(default_factory=set)  # targets with rows (new or revived) to claim


@dataclass(slots=True)
class SyncedRow:
    id: UUID
    claim_token: UUID
    cloud_path: str
    remote_id: str | None
    remote_size: int | None
    remote_hash: str | None
    verification: str


@dataclass(frozen=True)
class FailedRow:
    id: UUID
    claim_token: UUID
    error: str
    next_attempt_at: datetime | None
    spent_attempt: bool = True  # False for a quota park, which must not spend attempts
    announce: bool = True  # a give-up (no next attempt) is announced as a file.gave_up event


class Ledger:
    """The daemon's only access to ``cloud_file_refs``, the durable record of what goes where.

    One place, so that every write carries the claim fencing and every statement works on a
    batch: the ledger is shared by all instances of a cluster, survives any crash, and is what
    an operator reads to know whether a file reached each cloud.
    """

    def __init__(self, pool: asyncpg.Pool, source_root: str | None = None) -> None:
        self.pool = pool
        #: The watch root this daemon records from; it claims only rows recorded from it.
        self.source_root = source_root

    async def known_versions(self, paths: Sequence[str]) -> dict[str, list[KnownVersion]]:
        rows = await self.pool.fetch(queries.KNOWN_VERSIONS, list(paths))
        known: dict[str, list[KnownVersion]] = {}
        for row in rows:
            known.setdefault(row["local_path"], []).append(
                KnownVersion(
                    row["file_size_bytes"],
                    row["file_mtime_ns"],
                    row["content_sha256"],
                    frozenset(row["targets"]),
                )
            )
        return known

    async def record(
        self,
        rows: Iterable[tuple[str, str, FileVersion]],
        in_transaction: InTransaction | None = None,
    ) -> int:
        """Insert ``(target, provider, file)`` rows (``pending``) in one transaction; return how many are new."""
        return (await self.record_and_claim(rows, {}, in_transaction)).new_rows

    async def record_and_claim(
        self,
        rows: Iterable[tuple[str, str, FileVersion]],
        claims: Mapping[str, int],
        in_transaction: InTransaction | None = None,
        instance_id: UUID | None = None,
    ) -> Recorded:
        """Insert ``(target, provider, file)`` rows in one transaction, the first ``claims[target]``
        new rows of each target already claimed (``uploading``, leased to ``instance_id``).

        Rows go in key order, so that daemons recording overlapping batches of a shared root
        take their row locks in the same order; a deadlock that happens anyway (with other
        statements) is retried a few times, as the database advises.
        """
        wanted = dict(claims)
        by_key: dict[tuple[str, str], FileVersion] = {}
        # Key columns first, so that plain tuple order (compared in C) is the key order.
        keyed = []
        for name, provider_name, file in rows:
            claim = wanted.get(name, 0) > 0
            if claim:
                wanted[name] -= 1
                by_key[(name, file.local_path)] = file
            key = (name, file.local_path, file.sha256)
            keyed.append((*key, provider_name, file.device_id, file.kind, file.size, file.mtime_ns, claim))
        keyed.sort()
        by_column: list[list[Any]] = [list(column) for column in zip(*keyed, strict=True)] or [[]] * 9
        target, local_path, sha256, provider, device_id, kind, size, mtime_ns, take = by_column
        columns = [target, provider, device_id, local_path, kind, sha256, size, mtime_ns]  # RECORD_FILES' order
        arguments = (*columns, self.source_root, take, LEASE_SECONDS, instance_id)
        sent_at = time.monotonic()
        async for attempt in deadlock_retrying():
            with attempt:
                async with self.pool.acquire() as connection, connection.transaction():
                    result = await connection.fetch(queries.RECORD_FILES, *arguments) if keyed else []
                    if in_transaction is not None:
                        await in_transaction(connection)
        recorded = Recorded()
        noticed_at = time.time()
        for row in result:
            recorded.new_rows += row["inserted"]
            claimed_id = row["claimed_id"]
            if claimed_id is None:
                recorded.left_pending.add(row["target"])
                continue
            v = by_key[(row["target"], row["local_path"])]
            born = ClaimedRow(
                claimed_id,
                row["claim_token"],
                v.local_path,
                v.device_id,
                v.kind,
                v.sha256,
                v.size,
                v.mtime_ns,
                noticed_at=noticed_at,
                content=v.content,
                lease_until=lease_until(sent_at, LEASE_SECONDS),
            )
            recorded.claimed.setdefault(row["target"], []).append(born)
        return recorded

    async def claim(self, target: str, limit: int, lease_seconds: float, instance_id: UUID | None) -> list[ClaimedRow]:
        sent_at = time.monotonic()
        rows = await self.pool.fetch(queries.CLAIM_PENDING, target, limit, lease_seconds, instance_id, self.source_root)
        held_until = lease_until(sent_at, lease_seconds)
        return [
            ClaimedRow(
                id=row["id"],
                claim_token=row["claim_token"],
                local_path=row["local_path"],
                device_id=row["device_id"],
                kind=row["file_type"],
                sha256=row["content_sha256"],
                size=row["file_size_bytes"],
                mtime_ns=row["file_mtime_ns"],
                attempts=row["attempts"],
                upload_session=json.loads(row["upload_session"]) if row["upload_session"] else None,
                lease_until=held_until,
                noticed_at=row["noticed_at"],
            )
            for row in rows
        ]

    async def renew_leases(
        self, claims: Mapping[UUID, UUID], lease_seconds: float, instance_id: UUID | None
    ) -> tuple[set[UUID], float]:
        """Renew the leases of ``claims`` (row id → claim token) that this instance still holds.

        Returns the ids still held, and the ``lease_until`` they now have; the other claims
        were lost (another instance took them after their lease ran out).
        """
        sent_at = time.monotonic()
        if not claims:
            return set(), lease_until(sent_at, lease_seconds)
        rows = await self.pool.fetch(
            queries.RENEW_LEASES, list(claims), list(claims.values()), lease_seconds, instance_id
        )
        return {row["id"] for row in rows}, lease_until(sent_at, lease_seconds)

    async def mark_synced(self, rows: Sequence[SyncedRow], instance_id: UUID | None, split: bool = True) -> int:
        """Mark ``rows`` synced; a big batch as two statements at once when ``split`` (at the end
        of a burst it would otherwise be one long statement on one core, with the uploads done
        and waiting; while uploads still run, one statement leaves them the other core).

        Returns how many rows were not marked because their claim was lost.
        """
        if not rows:
            return 0
        halves = [rows] if len(rows) <= _MARK_SPLIT or not split else [rows[: len(rows) // 2], rows[len(rows) // 2 :]]
        statuses = await asyncio.gather(
            *(
                self.pool.execute(
                    queries.MARK_SYNCED,
                    [row.id for row in half],
                    [row.cloud_path for row in half],
                    [row.remote_id for row in half],
                    [row.remote_size for row in half],
                    [row.remote_hash for row in half],
                    [row.verification for row in half],
                    instance_id,
                    [row.claim_token for row in half],
                )
                for half in halves
            )
        )
        return len(rows) - sum(_changed(status) for status in statuses)

    async def mark_failed(self, rows: Sequence[FailedRow], instance_id: UUID | None) -> int:
        """Mark ``rows`` failed; returns how many were not marked because their claim was lost."""
        if not rows:
            return 0
        marked = await self.pool.fetchval(
            queries.MARK_FAILED,
            [row.id for row in rows],
            [row.error for row in rows],
            [row.next_attempt_at for row in rows],
            [1 if row.spent_attempt else 0 for row in rows],
            [row.announce for row in rows],
            [row.claim_token for row in rows],
            instance_id,
        )
        return len(rows) - int(marked)

    async def release(self, claims: Mapping[UUID, UUID], instance_id: UUID | None) -> int:
        """Give ``claims`` (row id → claim token) back (pending); returns how many had been lost."""
        if not claims:
            return 0
        status = await self.pool.execute(queries.RELEASE_CLAIMS, list(claims), list(claims.values()), instance_id)
        return len(claims) - _changed(status)

    async def save_upload_session(
        self, ref_id: UUID, claim_token: UUID, instance_id: UUID | None, state: dict[str, Any] | None
    ) -> bool:
        """Keep a resumable upload's state with its row; False if the claim was lost (nothing saved)."""
        status = await self.pool.execute(
            queries.SAVE_UPLOAD_SESSION, ref_id, None if state is None else json.dumps(state), claim_token, instance_id
        )
        return _changed(status) == 1

    async def target_paused(self, target: str) -> bool:
        """Whether ``cloudwatcher pause`` holds ``target`` (claims skip it already; see uploader)."""
        return bool(await self.pool.fetchval(queries.TARGET_PAUSED, target))

    async def requeue_due(self) -> set[str]:
        return {row["target"] for row in await self.pool.fetch(queries.REQUEUE_DUE)}

    async def reap_expired_leases(self) -> set[str]:
        return {row["target"] for row in await self.pool.fetch(queries.REAP_EXPIRED_LEASES, LEASE_SECONDS)}

    async def pending_targets(self) -> set[str]:
        return {row["target"] for row in await self.pool.fetch(queries.PENDING_TARGETS)}


def _changed(status: str) -> int:
    """Rows changed, from a command status such as ``UPDATE 12``."""
    return int(status.rsplit(" ", 1)[-1])


async def retry_failed(connection: asyncpg.Connection | asyncpg.Pool, ref_ids: Sequence[UUID] | None) -> int:
    """Re-queue failed rows now (all of them when ``ref_ids`` is None), including gave-up ones.

    A target marked full (storage quota) is resumed too: all of them with ``--all``, else the
    targets of the given rows. If space is still missing, the next upload marks it full again.
    """
    if ref_ids is None:
        rows = await connection.fetch(queries.RETRY_ALL)
        await connection.execute(queries.RESUME_FULL_TARGETS, None)
    else:
        rows = await connection.fetch(queries.RETRY_IDS, list(ref_ids))
        targets = sorted({row["target"] for row in rows})
        if targets:
            await connection.execute(queries.RESUME_FULL_TARGETS, targets)
    return len(rows)
