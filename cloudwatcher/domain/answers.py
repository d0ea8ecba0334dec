"""Answering applied requests: their response files made durable together, their rows marked once.

A request's transaction commits first; its answer is written afterwards (see
:mod:`cloudwatcher.domain.ingest`). The daemon applies a device's queued requests one after
another, each in its own transaction and in drop order, and answers them here as one batch:

1. every response file is written and renamed into place without an fsync of its own (a
   response folder on another filesystem than the watch root is still fsynced file by file);
2. one ``syncfs`` of the watch root's filesystem, shared with every device answering at the
   same moment (:class:`~cloudwatcher.domain.group_flush.GroupFlush`), makes all of them durable;
3. only then one transaction marks the response rows ``ready`` and the ledger rows processed.

Durability stays exact: no row is ``ready`` before its file is on disk. A crash before step 3
leaves the rows ``processing`` and the files unprocessed, and the catch-up answers them again
(idempotently). A lone response with no flush under way is fsynced on its own instead: two
fsyncs cost less than a ``syncfs`` when there is nothing to share it with.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast
from uuid import UUID

import asyncpg

from cloudwatcher.domain.files import DroppedFile, IngestContext, sibling_path
from cloudwatcher.domain.responses import write_response_file
from cloudwatcher.schema.sql import query

SETTLE_ANSWERS = query("requests", "settle_answers")
ASYNC_COMMIT = query("requests", "async_commit")


@dataclass(frozen=True)
class Applied:
    """A request whose transaction committed, with the response document to write for it."""

    file: DroppedFile
    document: dict[str, Any]
    response_id: UUID | None  # set when this file owns the row that should become 'ready'


def _write_all(ctx: IngestContext, batch: Sequence[Applied], flushed_with: int | None) -> bool:
    """Write the batch's response files; True when one of them waits for the flush."""
    waiting = False
    for applied in batch:
        path = sibling_path(applied.file.local_path, "responses")
        waiting |= write_response_file(ctx.watch_root, path, applied.document, flushed_with=flushed_with)
    return waiting and flushed_with is not None


async def deliver_answers(pool: asyncpg.Pool, batch: Sequence[Applied], ctx: IngestContext) -> None:
    """Write, flush and settle ``batch`` (see the module docstring); safe to repeat."""
    if not batch:
        return
    flush = ctx.flush
    grouped = flush.available and (len(batch) > 1 or flush.busy)
    flushed_with = flush.filesystem(ctx.watch_root) if grouped else None
    if await asyncio.to_thread(_write_all, ctx, batch, flushed_with):
        await flush.flush(ctx.watch_root)
    async with pool.acquire() as proxy:
        connection = cast(asyncpg.Connection, proxy)
        async with connection.transaction():
            # Losing these marks in a crash only means the (idempotent) answers are written again
            # after the restart, so the commit need not wait for a WAL flush.
            await connection.execute(ASYNC_COMMIT)
            await connection.execute(
                SETTLE_ANSWERS,
                [a.response_id for a in batch if a.response_id is not None],
                [a.file.local_path for a in batch],
                [a.file.content_sha256 for a in batch],
            )
