"""Link attachments recorded after their envelope to the request that names them.

The envelope's ingestion links the attachments the ledger already holds; a photo that settles
later (or a later version of it) is linked here, right after the recorder commits its rows.
One loop per daemon drains what the recorder hands over, in batches, and waits out database
outages like every other component.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import cast

import asyncpg

from cloudwatcher import domain
from cloudwatcher.daemon.health import CONNECTION_ERRORS, DatabaseHealth
from cloudwatcher.daemon.ledger.store import FileVersion

log = logging.getLogger(__name__)

BATCH_SIZE = 1000


class AttachmentLinker:
    def __init__(self, pool: asyncpg.Pool, health: DatabaseHealth) -> None:
        self.pool = pool
        self.health = health
        # (device_id, local_path, sha256); a dict keeps drop order and drops repeats.
        self._waiting: dict[tuple[str, str, str], None] = {}
        self._wake = asyncio.Event()

    def offer(self, versions: Iterable[FileVersion]) -> None:
        """The recorder committed these versions; attachments among them may have a request waiting."""
        for version in versions:
            if version.kind == "attachment":
                self._waiting[(version.device_id, version.local_path, version.sha256)] = None
        if self._waiting:
            self._wake.set()

    async def catch_up(self) -> None:
        """Link what a daemon killed between recording and linking left unlinked."""
        async with self.pool.acquire() as connection:
            await domain.link_unlinked_attachments(cast(asyncpg.Connection, connection))

    async def run(self) -> None:
        delay = 0.5
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._waiting:
                batch = list(self._waiting)[:BATCH_SIZE]
                try:
                    async with self.pool.acquire() as connection:
                        await domain.link_recorded_attachments(cast(asyncpg.Connection, connection), batch)
                except CONNECTION_ERRORS as exc:
                    self.health.failed(exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 10.0)
                    continue
                except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError) as exc:
                    log.info("linking attachments will be retried: %s", exc)
                    await asyncio.sleep(0.05)
                    continue
                self.health.succeeded()
                delay = 0.5
                for key in batch:
                    self._waiting.pop(key, None)
