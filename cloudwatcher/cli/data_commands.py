"""Commands that move data in and out of the database: ``load``, ``backup``, ``restore``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cloudwatcher.cli.common import ConfigOption, JsonOption, console, fail, print_json, settings_from
from cloudwatcher.cli.database import database_url_for, embedded_bin_dir, with_database

__all__ = ["backup", "load", "restore"]


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
