"""Commands that read or re-queue the ledger: ``status``, ``files``, ``retry``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import asyncpg
import typer
from rich.table import Table

from cloudwatcher.cli.common import ConfigOption, JsonOption, console, fail, print_json, settings_from
from cloudwatcher.cli.database import with_database
from cloudwatcher.cli.secrets import without_capabilities

if TYPE_CHECKING:  # the daemon's modules load only when a command needs them
    from cloudwatcher.daemon.ops.status import StatusSnapshot

__all__ = ["files", "retry", "status", "status_view"]

FILE_STATUSES = ("pending", "uploading", "synced", "failed")


def status(
    config: ConfigOption = None,
    as_json: JsonOption = False,
    watch: Annotated[float | None, typer.Option("--watch", help="Refresh every SECONDS until Ctrl-C.", min=0.5)] = None,
) -> None:
    """Sync status per target, request counts, devices, recent failures, instances."""
    from cloudwatcher.daemon.ops.status import collect_status

    settings = settings_from(config)
    snapshot = with_database(settings, lambda connection: collect_status(connection, settings), read_only=True)
    if as_json:
        print_json(snapshot)
        return
    if watch is None:
        sys.stdout.write(status_view(snapshot))
        return
    import time

    from rich.live import Live
    from rich.text import Text  # plain text: paths and errors may hold "[...]", never markup

    with Live(Text(status_view(snapshot)), console=console, screen=False, auto_refresh=False) as live:
        try:
            while True:
                time.sleep(watch)
                snapshot = with_database(
                    settings, lambda connection: collect_status(connection, settings), read_only=True
                )
                live.update(Text(status_view(snapshot)), refresh=True)
        except KeyboardInterrupt:
            pass


def status_view(snapshot: StatusSnapshot) -> str:
    """The snapshot for people, as wide as the terminal (``$COLUMNS``; 80 when unknown)."""
    import shutil

    from cloudwatcher.cli.status_text import render_status

    return render_status(snapshot, width=shutil.get_terminal_size((80, 24)).columns)


def files(
    config: ConfigOption = None,
    status_filter: Annotated[str | None, typer.Option("--status", help="pending, uploading, synced or failed")] = None,
    device: Annotated[str | None, typer.Option("--device")] = None,
    target: Annotated[str | None, typer.Option("--target")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 50,
    as_json: JsonOption = False,
) -> None:
    """Ledger rows, newest first."""
    from cloudwatcher.schema import queries

    if status_filter is not None and status_filter not in FILE_STATUSES:
        fail(f"--status: must be pending, uploading, synced or failed, not {status_filter!r}", 2)
    settings = settings_from(config)

    async def fetch(connection: asyncpg.Connection) -> list[dict[str, Any]]:
        rows = await connection.fetch(queries.LIST_FILES, status_filter, device, target, limit)
        listed = [{key: str(value) if isinstance(value, UUID) else value for key, value in row.items()} for row in rows]
        for row in listed:
            row["upload_session"] = without_capabilities(row.get("upload_session"))
        return listed

    rows = with_database(settings, fetch, read_only=True)
    if as_json:
        print_json(rows)
        return
    table = Table()
    for column in ("ref id", "target", "path", "status", "attempts", "cloud path / error"):
        table.add_column(column)
    for row in rows:
        detail = row["last_error"] if row["sync_status"] == "failed" else (row["cloud_path"] or "")
        table.add_row(
            row["ref_id"],
            row["target"],
            row["local_path"],
            row["sync_status"],
            str(row["attempts"]),
            detail or "",
        )
    console.print(table)


def retry(
    ref_ids: Annotated[list[str] | None, typer.Argument(help="ledger row ids (ref_id)")] = None,
    all_failed: Annotated[bool, typer.Option("--all", help="Re-queue every failed row.")] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Re-queue failed uploads now, including ones that gave up."""
    from cloudwatcher.daemon.ledger.store import retry_failed

    if all_failed == bool(ref_ids):
        fail("give either --all or one or more REF_IDs", 2)
    ids: list[UUID] | None = None
    if ref_ids:
        try:
            ids = [UUID(value) for value in ref_ids]
        except ValueError:
            fail("REF_ID must be a ledger row id (a UUID, as shown by `cloudwatcher files`)", 2)
    settings = settings_from(config)
    count = with_database(settings, lambda connection: retry_failed(connection, ids))
    if as_json:
        print_json({"requeued": count})
    else:
        console.print(f"re-queued {count} failed upload(s)")
