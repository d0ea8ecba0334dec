"""All ledger (``cloud_file_refs``) access of the daemon, in batches.

The database does the hard part (procrastinate's lesson): claims are one statement with
``FOR UPDATE SKIP LOCKED`` and a lease, results are written back in bulk, and any process may
die at any moment without losing a row.
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

from cloudwatcher.daemon.layout import FileKind
from cloudwatcher.schema import queries

_DEADLOCK_RETRIES = 5
_MARK_SPLIT = 1000  # more rows than this are marked synced by two statements at once
LEASE_SECONDS = 30.0  # a dead worker's claim is free again within this (plus the reaper's interval)

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


@dataclass
class Recorded:
    """What one recording transaction did."""

    new_rows: int = 0
    claimed: dict[str, list[ClaimedRow]] = field(default_factory=dict)  # target → rows born claimed
    left_pending: set[str] = field(default_factory=set)  # targets with rows (new or revived) to claim


@dataclass(slots=True)
class SyncedRow:
    id: UUID
    cloud_path: str
    remote_id: str | None
    remote_size: int | None
    remote_hash: str | None
    verification: str


@dataclass(frozen=True)
class FailedRow:
    id: UUID
    error: str
    next_attempt_at: datetime | None
    spent_attempt: bool = True  # False for a quota park, which must not spend attempts
    announce: bool = True  # a give-up (no next attempt) is announced as a file.gave_up event


class Ledger:
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
        for attempt in range(1, _DEADLOCK_RETRIES + 1):
            try:
                async with self.pool.acquire() as connection, connection.transaction():
                    result = await connection.fetch(queries.RECORD_FILES, *arguments) if keyed else []
                    if in_transaction is not None:
                        await in_transaction(connection)
                break
            except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
                if attempt == _DEADLOCK_RETRIES:
                    raise
                await asyncio.sleep(0.05 * attempt)
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
                v.local_path,
                v.device_id,
                v.kind,
                v.sha256,
                v.size,
                v.mtime_ns,
                noticed_at=noticed_at,
                content=v.content,
            )
            recorded.claimed.setdefault(row["target"], []).append(born)
        return recorded

    async def claim(self, target: str, limit: int, lease_seconds: float, instance_id: UUID | None) -> list[ClaimedRow]:
        rows = await self.pool.fetch(queries.CLAIM_PENDING, target, limit, lease_seconds, instance_id, self.source_root)
        return [
            ClaimedRow(
                id=row["id"],
                local_path=row["local_path"],
                device_id=row["device_id"],
                kind=row["file_type"],
                sha256=row["content_sha256"],
                size=row["file_size_bytes"],
                mtime_ns=row["file_mtime_ns"],
                attempts=row["attempts"],
                upload_session=json.loads(row["upload_session"]) if row["upload_session"] else None,
                noticed_at=row["noticed_at"],
            )
            for row in rows
        ]

    async def renew_leases(self, ids: Sequence[UUID], lease_seconds: float) -> None:
        if ids:
            await self.pool.execute(queries.RENEW_LEASES, list(ids), lease_seconds)

    async def mark_synced(self, rows: Sequence[SyncedRow], instance_id: UUID | None, split: bool = True) -> None:
        """Mark ``rows`` synced; a big batch as two statements at once when ``split`` (at the end
        of a burst it would otherwise be one long statement on one core, with the uploads done
        and waiting; while uploads still run, one statement leaves them the other core)."""
        if not rows:
            return
        halves = [rows] if len(rows) <= _MARK_SPLIT or not split else [rows[: len(rows) // 2], rows[len(rows) // 2 :]]
        await asyncio.gather(
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
                )
                for half in halves
            )
        )

    async def mark_failed(self, rows: Sequence[FailedRow]) -> None:
        if not rows:
            return
        await self.pool.execute(
            queries.MARK_FAILED,
            [row.id for row in rows],
            [row.error for row in rows],
            [row.next_attempt_at for row in rows],
            [1 if row.spent_attempt else 0 for row in rows],
            [row.announce for row in rows],
        )

    async def release(self, ids: Sequence[UUID]) -> None:
        if ids:
            await self.pool.execute(queries.RELEASE_CLAIMS, list(ids))

    async def save_upload_session(self, ref_id: UUID, state: dict[str, Any] | None) -> None:
        await self.pool.execute(queries.SAVE_UPLOAD_SESSION, ref_id, None if state is None else json.dumps(state))

    async def requeue_due(self) -> set[str]:
        return {row["target"] for row in await self.pool.fetch(queries.REQUEUE_DUE)}

    async def reap_expired_leases(self) -> set[str]:
        return {row["target"] for row in await self.pool.fetch(queries.REAP_EXPIRED_LEASES)}

    async def pending_targets(self) -> set[str]:
        return {row["target"] for row in await self.pool.fetch(queries.PENDING_TARGETS)}


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
