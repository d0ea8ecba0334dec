"""Commands that run the daemon or prepare its database: ``run``, ``migrate``, ``db-url``, ``check``."""

from __future__ import annotations

import asyncio
import sys

import asyncpg
import typer

from cloudwatcher.cli.common import ConfigOption, console, fail, settings_from
from cloudwatcher.cli.database import database_url_for, resolve_and_track, with_database
from cloudwatcher.cli.secrets import secrets_of
from cloudwatcher.config import ConfigError, Settings, load_settings
from cloudwatcher.database import EmbeddedPostgresError
from cloudwatcher.schema import apply_migrations

__all__ = ["check", "db_url", "migrate", "run"]


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
