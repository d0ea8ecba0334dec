"""Retention (the seed's "keep 90 days, then archive") and yearly audit partitions.

``archive_old_requests`` moves finished requests older than the window, with their
metadata, responses, response metadata and agent decisions, into the ``*_archive`` tables,
in batches of bounded transactions. Ledger rows linked to them are copied into
``cloud_file_refs_archive``; the live ledger row is removed only when its file is no longer
in the watch root (archived, deleted or missing): removing the row of a file still present
would make the daemon's reconcile scan record and upload it again. Requests whose files are
still being uploaded, and requests still pending, are not archived yet.

Row-level audit is switched off for these transactions (the rows are moved, not lost); one
summary audit row per table records each batch instead.
"""

from __future__ import annotations

import asyncpg

from cloudwatcher.schema.sql import query

BATCH_SIZE = 2000

_ARCHIVED_TABLES = (
    "cloud_file_refs",
    "response_metadata",
    "responses",
    "request_metadata",
    "agent_decisions",
    "requests",
)

PICK_BATCH = query("retention", "pick_batch")

# Per table: which live rows belong to the batch ($1 = request ids).
_BELONGS = {
    "cloud_file_refs": ("request_id = ANY($1) OR response_id IN (SELECT id FROM responses WHERE request_id = ANY($1))"),
    "response_metadata": "response_id IN (SELECT id FROM responses WHERE request_id = ANY($1))",
    "responses": "request_id = ANY($1)",
    "request_metadata": "request_id = ANY($1)",
    "agent_decisions": "request_id = ANY($1)",
    "requests": "id = ANY($1)",
}

SUMMARY = query("retention", "summary")
_SHARED_COLUMNS = query("retention", "shared_columns")
_AUDIT_OFF = query("retention", "audit_off")
_AUDIT_ON = query("retention", "audit_on")
_DROP_GONE_LEDGER_ROWS = query("retention", "drop_gone_ledger_rows")
_DROP_REQUESTS = query("retention", "drop_requests")
_ENSURE_AUDIT_PARTITIONS = query("retention", "ensure_audit_partitions")


async def _shared_columns(connection: asyncpg.Connection, table: str) -> str:
    """Columns of ``table`` that its archive also has (robust to later migrations adding columns)."""
    names = await connection.fetch(
        _SHARED_COLUMNS,
        table,
        f"{table}_archive",
    )
    return ", ".join(f'"{row["attname"]}"' for row in names)


async def archive_old_requests(connection: asyncpg.Connection, older_than_days: int) -> int:
    """Move finished requests older than ``older_than_days`` to the archive; returns how many."""
    columns = {table: await _shared_columns(connection, table) for table in _ARCHIVED_TABLES}
    total = 0
    while True:
        async with connection.transaction():
            await connection.execute(_AUDIT_OFF)
            ids = [row["id"] for row in await connection.fetch(PICK_BATCH, older_than_days, BATCH_SIZE)]
            if not ids:
                return total
            moved: dict[str, int] = {}
            for table in _ARCHIVED_TABLES:
                cols = columns[table]
                status = await connection.execute(
                    f"INSERT INTO {table}_archive ({cols}) SELECT {cols} FROM {table} "
                    f"WHERE {_BELONGS[table]} ON CONFLICT (id) DO NOTHING",
                    ids,
                )
                moved[table] = int(status.split()[-1])
            # Ledger rows of files still in the watch root stay live (see module docstring).
            await connection.execute(
                _DROP_GONE_LEDGER_ROWS,
                ids,
            )
            await connection.execute(_DROP_REQUESTS, ids)  # cascades to the rest
            await connection.execute(_AUDIT_ON)
            for table, count in moved.items():
                if count:
                    await connection.execute(
                        SUMMARY,
                        table,
                        f"retention: moved {count} row(s) older than {older_than_days} days to {table}_archive",
                    )
            total += len(ids)


async def ensure_audit_partitions(connection: asyncpg.Connection, years_ahead: int = 1) -> None:
    """Create ``audit_logs`` partitions for this year and ``years_ahead`` more (idempotent)."""
    await connection.execute(_ENSURE_AUDIT_PARTITIONS, years_ahead)
