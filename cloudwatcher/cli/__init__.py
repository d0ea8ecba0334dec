"""The ``cloudwatcher`` command (docs/configuration.md, Commands).

Exit codes: 0 success; 2 bad configuration or usage (one line naming the key); 1 anything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit
from uuid import UUID

import asyncpg
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cloudwatcher import __version__
from cloudwatcher.config import ConfigError, GoogleDriveTarget, Settings, SharePointTarget, load_settings
from cloudwatcher.database import EmbeddedPostgresError, resolve_database_url
from cloudwatcher.database.embedded import EmbeddedPostgres
from cloudwatcher.schema import apply_migrations, schema_problem

app = typer.Typer(
    help="Watch drop folders, keep a PostgreSQL ledger, mirror every file to its targets.",
    no_args_is_help=True,
    # --install-completion / --show-completion: Typer's shell completion (bash, zsh, fish, PowerShell).
    add_completion=True,
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


class SchemaMismatch(Exception):
    """The schema is not the one this program knows; a read-only command says so and exits 1."""


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
    """Every configured secret, so that no log line ever shows one.

    Secrets read from ``*_file`` keys count as much as inline ones, and so does a webhook URL's
    path and query: chat and incident webhooks carry their credential there.
    """
    found: list[str | None] = [settings.api_token()]
    for target in settings.target_list:
        if isinstance(target, SharePointTarget) and target.client_certificate_file is None:
            with contextlib.suppress(OSError):  # unreadable since it was checked: the target fails on its own
                found.append(target.secret())
        elif isinstance(target, GoogleDriveTarget) and target.oauth_client_file is not None:
            from cloudwatcher.providers.google_drive.signin import user_secrets

            found.extend(user_secrets(target))
    if settings.notify.webhook_url:
        webhook = urlsplit(settings.notify.webhook_url)
        found.extend([webhook.path.rstrip("/") if webhook.path.strip("/") else None, webhook.query or None])
    return found


def without_capabilities(session: str | None) -> str | None:
    """An upload session with its URLs masked: a Graph ``uploadUrl`` or a Drive resumable URI is
    a bearer capability (anyone holding it can write the file), so it never leaves the ledger."""
    if session is None:
        return None
    from cloudwatcher.logs import REDACTED

    def mask(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: mask(item) for key, item in value.items()}
        if isinstance(value, list):
            return [mask(item) for item in value]
        if isinstance(value, str) and "://" in value:
            return REDACTED
        return value

    try:
        return json.dumps(mask(json.loads(session)))
    except ValueError:
        return REDACTED


# Embedded servers this command uses (each holds its shared "in use" lock while referenced
# here), and those of them it had to start: stopped again on exit unless another process uses them.
_servers_in_use: list[EmbeddedPostgres] = []
_started_servers: list[EmbeddedPostgres] = []


def database_url_for(settings: Settings, *, keep_running: bool = False) -> str:
    """The URL of the database in use. ``keep_running``: an embedded server this command had to
    start stays up afterwards (``db-url``, whose URL is for later use); otherwise it is stopped
    when the command ends, unless a daemon is using it by then."""
    try:
        return resolve_and_track(settings, keep_running=keep_running)
    except EmbeddedPostgresError as exc:
        fail(str(exc), 2)
        raise


def resolve_and_track(settings: Settings, *, keep_running: bool = False) -> str:
    """:func:`database_url_for` without the exit: raises :class:`EmbeddedPostgresError`."""
    url, server = resolve_database_url(settings)
    if server is not None and not keep_running:
        _servers_in_use.append(server)
        if server.started_here:
            _started_servers.append(server)
    return url


def stop_servers_started_here() -> None:
    """Stop the embedded servers this command started, each unless another process uses it."""
    while _servers_in_use:
        _servers_in_use.pop().release()
    while _started_servers:
        _started_servers.pop().stop_if_unused()


def with_database(
    settings: Settings, action: Callable[[asyncpg.Connection], Awaitable[T]], *, read_only: bool = False
) -> T:
    """Run ``action`` on a connection to a current schema; connection errors exit 1 with a message.

    ``read_only`` commands never change the schema: on a database that is not migrated, or was
    migrated by a newer version, they say so and exit 1. The others migrate first.
    """
    url = database_url_for(settings)

    async def run() -> T:
        connection = await asyncpg.connect(url, timeout=30)
        try:
            if read_only:
                problem = await schema_problem(connection)
                if problem is not None:
                    raise SchemaMismatch(problem)
            else:
                await apply_migrations(connection)
            return await action(connection)
        finally:
            await connection.close()

    try:
        return asyncio.run(run())
    except SchemaMismatch as exc:
        fail(str(exc), 1)
        raise
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
    from cloudwatcher.daemon.service import run_daemon
    from cloudwatcher.logs import LOG_LEVELS, configure_logging, register_secret

    settings = settings_from(config)
    configure_logging(settings.log_format, LOG_LEVELS[settings.log_level], secrets=secrets_of(settings))

    def reload_settings() -> Settings:
        """SIGHUP: the new configuration's secrets are masked before any line can show them."""
        reloaded = load_settings(config)
        for secret in secrets_of(reloaded):
            register_secret(secret)
        return reloaded

    try:
        code = run_daemon(settings, settings.database_url or None, reload_settings=reload_settings)
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
    """Print the PostgreSQL URL in use (starting the embedded server if needed, and leaving it up).

    Read-only: on a database that is not migrated (or migrated by a newer version) it still
    prints the URL, says what is wrong on stderr and exits 1.
    """
    settings = settings_from(config)
    url = database_url_for(settings, keep_running=True)
    sys.stdout.write(url + "\n")
    with_database(settings, schema_is_current, read_only=True)


async def schema_is_current(connection: asyncpg.Connection) -> None:
    """Nothing to do: ``with_database(..., read_only=True)`` has checked the schema by now."""


@app.command()
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


def status_view(snapshot: dict[str, Any]) -> str:
    """The snapshot for people, as wide as the terminal (``$COLUMNS``; 80 when unknown)."""
    import shutil

    from cloudwatcher.cli.status_text import render_status

    return render_status(snapshot, width=shutil.get_terminal_size((80, 24)).columns)


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


@app.command()
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


@app.command()
def check(config: ConfigOption = None) -> None:
    """Check the configuration, the database, each target (a probe written and removed), the watch
    root and its inotify limit, and free disk space; one line each. Exit 0 when all pass, else 1.

    Never changes the schema.
    """
    from cloudwatcher.cli.checks import run_checks
    from cloudwatcher.config.loading import config_file_to_use

    settings = settings_from(config)
    source = config_file_to_use(config)
    results = asyncio.run(
        run_checks(settings, str(source) if source else "defaults and environment", lambda: resolve_and_track(settings))
    )
    for result in results:
        sys.stdout.write(result.line() + "\n")
    failed = [result for result in results if not result.ok]
    if failed:
        fail("failed: " + "; ".join(f"{result.name}: {result.detail}" for result in failed), 1)


TargetArgument = Annotated[str, typer.Argument(help="a target's name, as in the configuration")]


def configured_target(settings: Settings, name: str) -> str:
    """``name`` when the configuration has such a target; else exit 2 naming it."""
    names = [target.name for target in settings.target_list]
    if name not in names:
        fail(f"unknown target {name!r}; configured targets: {', '.join(names)}", 2)
    return name


@app.command()
def pause(target: TargetArgument, config: ConfigOption = None) -> None:
    """Stop uploads to TARGET, for every daemon on the database and across restarts; files are still recorded."""
    from cloudwatcher.daemon.upload.pauses import pause_target, who_is_pausing

    settings = settings_from(config)
    name = configured_target(settings, target)
    if with_database(settings, lambda connection: pause_target(connection, name, who_is_pausing())):
        console.print(f"paused uploads to {escape(name)}; `cloudwatcher resume {escape(name)}` restarts them")
    else:
        console.print(f"{escape(name)} was already paused")


@app.command()
def resume(target: TargetArgument, config: ConfigOption = None) -> None:
    """Restart uploads to TARGET after `cloudwatcher pause`."""
    from cloudwatcher.daemon.upload.pauses import resume_target

    settings = settings_from(config)
    name = configured_target(settings, target)
    if with_database(settings, lambda connection: resume_target(connection, name)):
        console.print(f"resumed uploads to {escape(name)}")
    else:
        console.print(f"{escape(name)} was not paused")


class SignInProvider(StrEnum):
    """Providers whose sign-in needs a person's consent (only Drive so far)."""

    google_drive = "google-drive"


@app.command()
def authorize(
    provider: Annotated[SignInProvider, typer.Argument(help="the provider: google-drive")],
    target: TargetArgument,
    config: ConfigOption = None,
) -> None:
    """Sign TARGET in as a user: prints a consent URL, reads the code, stores the refresh token in token_file."""
    from cloudwatcher.providers.base import ProviderError
    from cloudwatcher.providers.google_drive.authorize import AuthorizeError
    from cloudwatcher.providers.google_drive.authorize import authorize as authorize_drive

    settings = settings_from(config)
    name = configured_target(settings, target)
    chosen = next(t for t in settings.target_list if t.name == name)
    if not isinstance(chosen, GoogleDriveTarget):
        fail(f"target {name!r} is a {chosen.provider} target, not {provider.value}", 2)
        return
    if chosen.oauth_client_file is None:
        fail(f"target {name!r} signs in with a service account, which needs no authorization", 2)
    try:
        written = authorize_drive(chosen, show=lambda text: print(text, flush=True), read_code=sys.stdin.readline)
    except (AuthorizeError, ProviderError) as exc:
        fail(str(exc), 1)
    else:
        # Plain output: rich would wrap a long path, and scripts read it.
        sys.stdout.write(f"signed in; the refresh token is in {written} (readable by its owner only)\n")


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
    from cloudwatcher.database.backup import BackupError, backup_database

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
    from cloudwatcher.database.backup import BackupError, restore_database

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
    try:
        app()
    finally:
        stop_servers_started_here()
