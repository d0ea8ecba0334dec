"""The ``cloudwatcher`` command (CONTRACT.md section 2).

Exit codes: 0 success; 2 bad configuration or usage (one line naming the key); 1 anything else.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar
from uuid import UUID

import asyncpg
import typer
from rich.console import Console, Group
from rich.markup import escape
from rich.table import Table

from cloudwatcher import __version__
from cloudwatcher.config import ConfigError, Settings, load_settings
from cloudwatcher.database import EmbeddedPostgresError, resolve_database_url
from cloudwatcher.schema import apply_migrations

app = typer.Typer(
    help="Watch drop folders, keep a PostgreSQL ledger, mirror every file to its targets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
T = TypeVar("T")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="TOML configuration file (else $CLOUDWATCHER_CONFIG, else "
        "/etc/cloudwatcher/cloudwatcher.toml when it exists).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


class CommandError(Exception):
    """A failure with a message for the user; exit 1."""


def fail(message: str, code: int) -> None:
    sys.stderr.write(f"cloudwatcher: {message}\n")
    raise typer.Exit(code)


def settings_from(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except ConfigError as exc:
        fail(str(exc), 2)
        raise  # unreachable; fail() raised


def secrets_of(settings: Settings) -> list[str | None]:
    """Every configured secret, so that no log line ever shows one."""
    found: list[str | None] = [settings.api_token()]
    for target in settings.target_list:
        secret = getattr(target, "client_secret", None)
        if secret is not None:
            found.append(secret.get_secret_value())
    return found


def database_url_for(settings: Settings) -> str:
    try:
        url, _ = resolve_database_url(settings)
    except EmbeddedPostgresError as exc:
        fail(str(exc), 2)
        raise
    return url


def with_database(settings: Settings, action: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Run ``action`` on a migrated database connection; connection errors exit 1 with a message."""
    url = database_url_for(settings)

    async def run() -> T:
        connection = await asyncpg.connect(url, timeout=30)
        try:
            await apply_migrations(connection)
            return await action(connection)
        finally:
            await connection.close()

    try:
        return asyncio.run(run())
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        fail(f"database error: {exc}", 1)
        raise


def _json_default(value: Any) -> Any:
    """Timestamps as ISO 8601 (like /status); anything else (UUIDs, decimals) as its text."""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=_json_default) + "\n")


# ---------------------------------------------------------------------------- commands
@app.command()
def run(config: ConfigOption = None) -> None:
    """Run the daemon in the foreground (what systemd starts). Applies migrations first."""
    from cloudwatcher.daemon.logs import configure_logging
    from cloudwatcher.daemon.service import run_daemon

    settings = settings_from(config)
    configure_logging(settings.log_format, secrets=secrets_of(settings))
    try:
        code = run_daemon(settings, settings.database_url or None, reload_settings=lambda: load_settings(config))
    except (EmbeddedPostgresError, ConfigError) as exc:
        fail(str(exc), 2)
    raise typer.Exit(code)


@app.command()
def migrate(config: ConfigOption = None) -> None:
    """Create or upgrade the schema; safe to run any number of times."""
    settings = settings_from(config)
    url = database_url_for(settings)

    async def go() -> int:
        connection = await asyncpg.connect(url, timeout=30)
        try:
            return len(await apply_migrations(connection))
        finally:
            await connection.close()

    try:
        applied = asyncio.run(go())
    except (OSError, asyncpg.PostgresError) as exc:
        fail(f"database error: {exc}", 1)
    console.print(f"schema up to date ({applied} migration(s) applied now)")


@app.command("db-url")
def db_url(config: ConfigOption = None) -> None:
    """Print the PostgreSQL URL in use (starting the embedded server if needed)."""
    settings = settings_from(config)
    sys.stdout.write(database_url_for(settings) + "\n")


@app.command()
def status(
    config: ConfigOption = None,
    as_json: JsonOption = False,
    watch: Annotated[float | None, typer.Option("--watch", help="Refresh every SECONDS until Ctrl-C.", min=0.5)] = None,
) -> None:
    """Sync status per target, request counts, devices, recent failures, instances."""
    from cloudwatcher.daemon.status import collect_status

    settings = settings_from(config)
    snapshot = with_database(settings, lambda connection: collect_status(connection, settings))
    if as_json:
        print_json(snapshot)
        return
    if watch is None:
        console.print(status_view(snapshot))
        return
    import time

    from rich.live import Live

    with Live(status_view(snapshot), console=console, screen=False, auto_refresh=False) as live:
        try:
            while True:
                time.sleep(watch)
                snapshot = with_database(settings, lambda connection: collect_status(connection, settings))
                live.update(status_view(snapshot), refresh=True)
        except KeyboardInterrupt:
            pass


def status_view(snapshot: dict[str, Any]) -> Group:
    """The status snapshot as Rich tables: targets, requests, devices, failures, instances."""
    parts: list[Any] = []
    table = Table(title="Targets")
    for column in (
        "target",
        "provider",
        "pending",
        "uploading",
        "synced",
        "failed",
        "gave up",
        "oldest pending",
        "last synced",
    ):
        table.add_column(column)
    for t in snapshot["targets"]:
        age = t["oldest_pending_age_seconds"]
        failed = f"[red]{t['failed']}[/red]" if t["failed"] else "0"
        table.add_row(
            t["name"],
            t["provider"] or "",
            str(t["pending"]),
            str(t["uploading"]),
            str(t["synced"]),
            failed,
            str(t["gave_up"]),
            "" if age is None else f"{age:.0f} s",
            t["last_synced_at"] or "",
        )
    parts.append(table)
    r = snapshot["requests"]
    parts.append(
        f"Requests: {r['pending']} pending, {r['processing']} processing, {r['completed']} completed, "
        f"{r['failed']} failed"
    )
    if snapshot["devices"]:
        devices = Table(title="Devices")
        for column in ("device", "online", "last seen", "files", "skipped"):
            devices.add_column(column)
        for d in snapshot["devices"]:
            devices.add_row(
                escape(d["device_id"]),
                "[green]online[/green]" if d["online"] else "offline",
                d["last_seen_at"] or "",
                str(d["files"]),
                str(d.get("skipped", 0)),
            )
        parts.append(devices)
    if snapshot["recent_failures"]:
        failures = Table(title="Recent failures")
        for column in ("ref id", "target", "path", "attempts", "error", "next attempt"):
            failures.add_column(column)
        for f in snapshot["recent_failures"]:
            failures.add_row(
                f["ref_id"],
                f["target"],
                escape(f["local_path"]),
                str(f["attempts"]),
                escape(f["last_error"] or ""),
                f["next_attempt_at"] or "gave up",
            )
        parts.append(failures)
    if snapshot.get("instances"):
        instances = Table(title="Instances")
        for column in ("id", "host", "pid", "version", "started", "last heartbeat", "stale"):
            instances.add_column(column)
        for i in snapshot["instances"]:
            instances.add_row(
                i["id"],
                i["host"],
                str(i["pid"]),
                i["version"],
                i["started_at"] or "",
                i["last_heartbeat"] or "",
                "[yellow]stale[/yellow]" if i["stale"] else "",
            )
        parts.append(instances)
    return Group(*parts)


@app.command()
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

    if status_filter is not None and status_filter not in ("pending", "uploading", "synced", "failed"):
        fail(f"--status: must be pending, uploading, synced or failed, not {status_filter!r}", 2)
    settings = settings_from(config)

    async def fetch(connection: asyncpg.Connection) -> list[dict[str, Any]]:
        rows = await connection.fetch(queries.LIST_FILES, status_filter, device, target, limit)
        return [{key: (str(value) if isinstance(value, UUID) else value) for key, value in row.items()} for row in rows]

    rows = with_database(settings, fetch)
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


@app.command()
def retry(
    ref_ids: Annotated[list[str] | None, typer.Argument(help="ledger row ids (ref_id)")] = None,
    all_failed: Annotated[bool, typer.Option("--all", help="Re-queue every failed row.")] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Re-queue failed uploads now, including ones that gave up."""
    from cloudwatcher.daemon.ledger import retry_failed

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


@app.command()
def load(
    file: Annotated[Path, typer.Argument(help="JSON (or YAML) reference data: roles, departments, users, ...")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Load reference data (idempotent upsert on natural keys); a data error loads nothing."""
    from cloudwatcher.domain import CatalogError, load_catalog_file

    settings = settings_from(config)
    if not file.is_file():
        fail(f"{file}: no such file", 1)
    try:
        counts = with_database(settings, lambda connection: load_catalog_file(connection, file))
    except CatalogError as exc:
        fail(f"{file}: {exc}", 1)
    if as_json:
        print_json(counts)
    else:
        console.print("loaded " + ", ".join(f"{n} {section}" for section, n in counts.items()))


def embedded_bin_dir(settings: Settings) -> Path | None:
    """The embedded server's own client tools (pg_dump/pg_restore that match it), if in use."""
    if settings.database_url:
        return None
    from cloudwatcher.database.resolve import embedded_server

    return embedded_server(settings).bin_dir


@app.command()
def backup(
    file: Annotated[Path, typer.Argument(help="where to write the pg_dump (custom format)")],
    config: ConfigOption = None,
) -> None:
    """A consistent pg_dump of the database in use, safe while the daemon runs."""
    from cloudwatcher.daemon.backup import BackupError, backup_database

    settings = settings_from(config)
    url = database_url_for(settings)
    try:
        backup_database(url, file, bin_dir=embedded_bin_dir(settings))
    except BackupError as exc:
        fail(str(exc), 1)
    console.print(f"backup written to {file}")


@app.command()
def restore(
    file: Annotated[Path, typer.Argument(help="a backup written by `cloudwatcher backup`")],
    config: ConfigOption = None,
) -> None:
    """Restore a backup into an empty database; refuses a database that already has tables."""
    from cloudwatcher.daemon.backup import BackupError, restore_database

    settings = settings_from(config)
    if not file.is_file():
        fail(f"{file}: no such file", 1)
    url = database_url_for(settings)  # no migrations first: the database must stay empty
    try:
        restore_database(url, file, bin_dir=embedded_bin_dir(settings))
    except BackupError as exc:
        fail(str(exc), 1)
    console.print(f"restored {file}")


@app.callback(invoke_without_command=True)
def main_callback(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        sys.stdout.write(f"cloudwatcher {__version__}\n")
        raise typer.Exit(0)


def main() -> None:
    app()
