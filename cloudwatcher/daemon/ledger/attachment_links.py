"""Link attachments recorded after their envelope to the request that names them.

The envelope's ingestion links the attachments the ledger already holds; a photo that settles
later (or a later version of it) is linked here, right after the recorder commits its rows.
One loop per daemon drains what the recorder hands over, in batches, and waits out database
outages like every other component.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Iterable
from typing import cast

import asyncpg

from cloudwatcher import domain
from cloudwatcher.daemon.health import DatabaseHealth
from cloudwatcher.daemon.ledger.store import FileVersion
from cloudwatcher.daemon.retry import DEADLOCK_ERRORS, deadlock_retrying, retry_on_outage

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

    async def _link(self, batch: list[tuple[str, str, str]]) -> None:
        """Link one batch, retried as long as it is a deadlock's victim (another writer of the
        same requests)."""
        async for attempt in deadlock_retrying(attempts=None):
            with attempt:
                try:
                    async with self.pool.acquire() as connection:
                        await domain.link_recorded_attachments(cast(asyncpg.Connection, connection), batch)
                except DEADLOCK_ERRORS as exc:
                    log.info("linking attachments will be retried: %s", exc)
                    raise

    async def catch_up(self) -> None:
        """Link what a daemon killed between recording and linking left unlinked."""
        async with self.pool.acquire() as connection:
            await domain.link_unlinked_attachments(cast(asyncpg.Connection, connection))

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._waiting:
                batch = list(self._waiting)[:BATCH_SIZE]
                await retry_on_outage(functools.partial(self._link, batch), self.health)
                for key in batch:
                    self._waiting.pop(key, None)
