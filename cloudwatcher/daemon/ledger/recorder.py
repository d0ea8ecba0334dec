"""Settled files → sha256 → ledger rows, many files per transaction.

Under a burst the queue fills faster than one transaction completes, so each round takes
everything waiting (up to ``batch_size``): thousands of files cost a few round trips.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from uuid import UUID

from cloudwatcher.daemon.health import CONNECTION_ERRORS, DATA_ERRORS, DatabaseHealth
from cloudwatcher.daemon.ledger.store import ClaimedRow, FileVersion, InTransaction, Ledger
from cloudwatcher.daemon.ops.stall import ProgressClock
from cloudwatcher.daemon.retry import retry_on_outage
from cloudwatcher.daemon.upload.filters import target_takes
from cloudwatcher.daemon.watch.scanner import Candidate
from cloudwatcher.daemon.watch.skips import SKIPS
from cloudwatcher.gateway import ChangedFileError, RefusedPathError, is_valid_utf8, tree_holding

# Re-exported where the upload worker and the tests import them from; defined in cloudwatcher.hashing.
from cloudwatcher.hashing import sha256_of_fd as sha256_of_fd
from cloudwatcher.hashing import sha256_of_path as sha256_of_path
from cloudwatcher.layout import DroppedPath, classify

log = logging.getLogger(__name__)

_CHUNK = 1024 * 1024
_FIRST_BATCH = 250  # files in the first batch after a quiet spell (then 500, 1000, ... batch_size)
# The bytes of files up to KEEP_CONTENT_LIMIT travel with their rows, so that an upload right
# after recording need not read the file again; up to KEEP_CONTENT_BUDGET per hashing thread
# and batch, which bounds the memory this takes (a few MB a batch, freed once uploaded).
KEEP_CONTENT_LIMIT = 8 * 1024
KEEP_CONTENT_BUDGET = 2 * 1024 * 1024


@dataclass(frozen=True)
class TargetSpec:
    name: str
    provider: str
    include: tuple[str, ...]
    exclude: tuple[str, ...]

    def takes(self, local_path: str) -> bool:
        return target_takes(local_path, self.include, self.exclude)


def hash_file(
    candidate: Candidate, keep: bool = False, progressed: Callable[[], None] = lambda: None
) -> tuple[str, bytes | None] | None:
    """Stream the file through sha256: its digest, and its bytes when ``keep`` is asked; None
    when it vanished, changed while being read, or was refused (and reported).

    The file is opened through the gateway (no link at any depth, a regular file of the size
    and mtime the watcher saw, checked before a byte is read). Plain ``os`` calls: under a
    burst most files are a few KB, where a buffered file object costs more than the read.
    """
    digest = hashlib.sha256()
    kept: list[bytes] | None = [] if keep else None
    local_path = candidate.local_path
    try:
        tree = tree_holding(candidate.absolute_path, local_path)
        reader, _ = tree.open_file(local_path, size=candidate.size, mtime_ns=candidate.mtime_ns)
        try:
            read = 0  # up to the size the watcher saw; the fstat below catches a file that grew
            while read < candidate.size and (chunk := os.read(reader, min(_CHUNK, candidate.size - read))):
                digest.update(chunk)
                progressed()  # hashing a huge file is progress, not a stall
                read += len(chunk)
                if kept is not None:
                    kept.append(chunk)
            info = os.fstat(reader)
        finally:
            os.close(reader)
    except (FileNotFoundError, NotADirectoryError, ChangedFileError):
        return None  # gone, or changed since it was seen: the watcher offers it again
    except RefusedPathError as refused:
        SKIPS.refused(refused)
        return None
    except OSError as exc:
        SKIPS.skipped(local_path, "unreadable", str(exc.strerror or exc))
        return None
    if (info.st_size, info.st_mtime_ns) != (candidate.size, candidate.mtime_ns):
        return None  # still changing: the watcher will offer it again
    return digest.hexdigest(), None if kept is None else b"".join(kept)


def _hash_many(
    candidates: Sequence[Candidate], progressed: Callable[[], None] = lambda: None
) -> list[tuple[str, bytes | None] | None]:
    """Hash each file, keeping the bytes of small ones (within a budget) for their upload."""
    budget = KEEP_CONTENT_BUDGET
    results = []
    for candidate in candidates:
        keep = candidate.size <= KEEP_CONTENT_LIMIT and budget >= candidate.size
        if keep:
            budget -= candidate.size
        try:
            results.append(hash_file(candidate, keep, progressed))
        except Exception as exc:  # one file's problem, whatever it is, never the batch's
            SKIPS.skipped(candidate.local_path, "unreadable", repr(exc))
            results.append(None)
    return results


DeviceActivity = Callable[[dict[str, datetime]], InTransaction]


class Handoff(Protocol):
    """The uploaders, taking freshly recorded rows claimed in the recording transaction itself.

    A row inserted ``pending`` and claimed a moment later is written twice before its upload;
    under a burst that claim was a third of the ledger's writes and a round trip the uploads
    waited on. Rows an uploader has no room for (or any while it is behind) stay ``pending``.
    """

    def room(self, target: str) -> int: ...

    def take(self, claimed: dict[str, list[ClaimedRow]], left_pending: set[str]) -> None: ...


class Recorder:
    """Turns settled files into ledger rows, one row per target per version, in big batches.

    Between the watcher and the uploaders so that no file is uploaded before it is durably
    recorded: a daemon killed at any moment finds every recorded file again, and nothing the
    watcher saw is lost while the database is away (files wait here and are recorded after).
    Batching (one transaction for thousands of files) is what keeps a burst of small files from
    making the database the bottleneck; rows an uploader can take at once are claimed in the
    same transaction (``handoff``), saving a write per file.
    """

    def __init__(
        self,
        ledger: Ledger,
        targets: Sequence[TargetSpec],
        health: DatabaseHealth,
        on_recorded: Callable[[list[FileVersion]], None],
        device_activity: DeviceActivity | None = None,
        batch_size: int = 2000,
        handoff: Handoff | None = None,
        instance_id: UUID | None = None,
    ) -> None:
        self.ledger = ledger
        self.targets = targets
        self.health = health
        self.on_recorded = on_recorded
        self.device_activity = device_activity
        self.batch_size = batch_size
        self.handoff = handoff
        self.instance_id = instance_id
        self._waiting: dict[str, Candidate] = {}
        self._wake = asyncio.Event()
        self.idle = asyncio.Event()
        self.idle.set()
        self.progress = ProgressClock("recorder", lambda: len(self._waiting))

    @property
    def targets(self) -> list[TargetSpec]:
        return self._targets

    @targets.setter
    def targets(self, targets: Sequence[TargetSpec]) -> None:
        """The targets files are recorded for (replaced on a reload)."""
        self._targets = list(targets)
        # Without include/exclude globs every target takes every file: no per-file matching.
        self._takes_everything = all(not t.include and not t.exclude for t in self._targets)
        self._all_names = frozenset(t.name for t in self._targets)

    def _taking(self, local_path: str) -> list[TargetSpec]:
        if self._takes_everything:
            return self._targets
        return [t for t in self._targets if t.takes(local_path)]

    def offer(self, candidate: Candidate) -> None:
        if not self._waiting:
            self.progress.mark()  # the stall clock starts when work arrives, not at the last batch
        self._waiting[candidate.local_path] = candidate  # a newer stat of the same path wins
        self.idle.clear()
        self._wake.set()

    async def run(self) -> None:
        """Record what is waiting, batch after batch, until cancelled.

        Two stages overlap: while one batch is written to the ledger, the next is looked up and
        hashed (in threads), so under a burst the disk and the database work at the same time.
        After a quiet spell batches start small and double (up to ``batch_size``): the first
        rows of a burst reach the uploaders quickly, the bulk still goes in big transactions.
        """
        limit = _FIRST_BATCH
        ahead: tuple[list[Candidate], asyncio.Task[list[FileVersion]]] | None = None

        async def record_a_batch() -> list[Candidate]:
            """Take (or use the one prepared ahead), prepare and write one batch; tried again
            with a fresh batch while the database is unreachable."""
            nonlocal ahead, limit
            if ahead is None:
                batch = self._take(limit, busy=set())
                preparing = asyncio.create_task(self._prepare(batch))
            else:
                batch, preparing = ahead
                ahead = None
            try:
                try:
                    versions = await preparing
                    limit = min(self.batch_size, limit * 2)
                    following = self._take(limit, busy={candidate.local_path for candidate in batch})
                    if following:
                        ahead = (following, asyncio.create_task(self._prepare(following)))
                    await self._write(versions)
                except DATA_ERRORS as exc:  # before CONNECTION_ERRORS, which it overlaps
                    await self._drop_ahead(ahead)
                    ahead = None
                    log.warning("the ledger refused a batch of %d file(s) (%s); finding the bad one", len(batch), exc)
                    await self._record_around_bad_files(batch)
            except CONNECTION_ERRORS:
                await self._drop_ahead(ahead)
                ahead = None
                raise
            return batch

        while True:
            if ahead is None and not self._waiting:
                self.idle.set()
                self._wake.clear()
                await self._wake.wait()
                limit = _FIRST_BATCH
            # waiting for the database is not a stall
            batch = await retry_on_outage(record_a_batch, self.health, on_outage=lambda *_: self.progress.mark())
            self.progress.mark()
            for candidate in batch:
                if self._waiting.get(candidate.local_path) is candidate:
                    del self._waiting[candidate.local_path]

    @staticmethod
    async def _drop_ahead(
        ahead: tuple[list[Candidate], asyncio.Task[list[FileVersion]]] | None,
    ) -> None:
        """Cancel the batch being prepared ahead; its files stay waiting and come round again."""
        if ahead is not None:
            ahead[1].cancel()
            await asyncio.gather(ahead[1], return_exceptions=True)

    async def _record_around_bad_files(self, batch: list[Candidate]) -> None:
        """Record ``batch`` in halves, then quarters, ..., until each file PostgreSQL refuses
        (a name it cannot encode, say) stands alone; skip those with a warning.

        A data error is about one file, never about the database: the rest of the batch must
        be recorded, and the bad file must not be retried as if the database were away.
        """
        parts = [batch]
        while parts:
            part = parts.pop()
            try:
                await self._write(await self._prepare(part))
            except DATA_ERRORS as exc:
                if len(part) > 1:
                    middle = len(part) // 2
                    parts.extend((part[middle:], part[:middle]))
                    continue
                log.warning(
                    "skipping %s: the ledger cannot store it (%s)",
                    ascii(part[0].local_path)[1:-1],
                    exc,
                    extra={"path": ascii(part[0].local_path)[1:-1]},
                )

    def _take(self, limit: int, busy: set[str]) -> list[Candidate]:
        """Up to ``limit`` waiting candidates, leaving out paths of the batch being written."""
        taken: list[Candidate] = []
        for path, candidate in self._waiting.items():
            if path not in busy:
                taken.append(candidate)
                if len(taken) >= limit:
                    break
        return taken

    async def _prepare(self, batch: list[Candidate]) -> list[FileVersion]:
        """The versions of ``batch`` the ledger does not hold yet, hashed (known ones reuse theirs)."""
        if not all(is_valid_utf8(candidate.local_path) for candidate in batch):
            # The watcher never hands these over; this is the last gate before the database.
            for candidate in batch:
                if not is_valid_utf8(candidate.local_path):
                    SKIPS.skipped(candidate.local_path, "name", "the name is not valid UTF-8")
            batch = [candidate for candidate in batch if is_valid_utf8(candidate.local_path)]
        known = await self.ledger.known_versions([candidate.local_path for candidate in batch])
        to_hash: list[tuple[Candidate, DroppedPath]] = []
        versions: list[FileVersion] = []
        for candidate in batch:
            dropped = candidate.dropped or classify(candidate.local_path)
            wanted = self._all_names
            if not self._takes_everything:
                wanted = frozenset(t.name for t in self._taking(candidate.local_path))
            if dropped is None or not wanted:
                continue
            same = [
                version
                for version in known.get(candidate.local_path, [])
                if (version.size, version.mtime_ns) == (candidate.size, candidate.mtime_ns)
            ]
            if same and wanted <= same[0].targets:
                continue  # recorded before, for every target that takes it
            if same:
                versions.append(self._version(candidate, dropped, same[0].sha256))
            else:
                to_hash.append((candidate, dropped))
        if to_hash:
            halves = [to_hash[0::2], to_hash[1::2]]  # two hashing threads: this machine has 2 cores
            results = await asyncio.gather(
                *(
                    asyncio.to_thread(_hash_many, [candidate for candidate, _ in half], self.progress.mark)
                    for half in halves
                    if half
                )
            )
            for half, hashed in zip([h for h in halves if h], results, strict=True):
                versions.extend(
                    self._version(candidate, dropped, *digest_and_bytes)
                    for (candidate, dropped), digest_and_bytes in zip(half, hashed, strict=True)
                    if digest_and_bytes is not None
                )
        return versions

    async def _write(self, versions: list[FileVersion]) -> None:
        """One ledger transaction for ``versions``: a row per target that takes each file."""
        if not versions:
            return
        rows = [(t.name, t.provider, version) for version in versions for t in self._taking(version.local_path)]
        in_transaction = None
        if self.device_activity is not None:
            seen: dict[str, datetime] = {}
            now = time.time()
            for version in versions:
                if version.kind == "response":
                    continue  # written by the daemon or a processor: not the device's activity
                # A device's clock may say 1969 or 3000: clamped, so a session is never dated
                # in the future and no mtime can raise here.
                at = datetime.fromtimestamp(min(max(version.mtime_ns / 1e9, 0.0), now), UTC)
                if version.device_id not in seen or seen[version.device_id] < at:
                    seen[version.device_id] = at
            in_transaction = self.device_activity(seen)
        claims = {target.name: self.handoff.room(target.name) for target in self.targets} if self.handoff else {}
        recorded = await self.ledger.record_and_claim(rows, claims, in_transaction, self.instance_id)
        if recorded.new_rows:
            log.info("recorded %d file(s) as %d new ledger row(s)", len(versions), recorded.new_rows)
        if self.handoff is not None:
            self.handoff.take(recorded.claimed, recorded.left_pending)
        self.on_recorded(versions)

    @staticmethod
    def _version(candidate: Candidate, dropped: DroppedPath, sha256: str, content: bytes | None = None) -> FileVersion:
        return FileVersion(
            local_path=candidate.local_path,
            device_id=dropped.device_id,
            kind=dropped.kind,
            sha256=sha256,
            size=candidate.size,
            mtime_ns=candidate.mtime_ns,
            content=content,
        )
