"""Backups of the ledger database with PostgreSQL's own tools (``cloudwatcher backup/restore``
and the scheduled backups of the embedded default).

Why pg_dump: it reads the whole database in one repeatable-read snapshot, so a backup taken
while the daemon records and uploads is consistent without stopping anything. The custom
format is compressed and restorable selectively. pg_dump must be at least as new as the
server (an older one refuses), so :func:`find_client_tool` prefers the client tools that
ship with the embedded server and otherwise takes the newest it can find.

Files are written atomically (temporary name in the same folder, fsync, rename) and readable
by their owner only: a backup holds every row, including user e-mail addresses.

The functions block (they wait for pg_dump); the daemon runs them with ``asyncio.to_thread``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from cloudwatcher.database.embedded import EmbeddedPostgresError, find_postgres_bin
from cloudwatcher.schema.sql import query

log = logging.getLogger(__name__)

__all__ = [
    "BACKUP_GLOB",
    "BackupError",
    "backup_database",
    "find_client_tool",
    "latest_backup",
    "restore_database",
    "run_scheduled_backup",
    "seconds_until_next_backup",
]

#: Names of the scheduled backups in ``backup.dir`` (only these are ever pruned).
BACKUP_GLOB = "cloudwatcher-*.dump"
_PARTIAL_PREFIX = ".partial-"
_ARCHIVE_MAGIC = b"PGDMP"
_STALE_PARTIAL_SECONDS = 24 * 3600


class BackupError(Exception):
    """A backup or restore could not be done; the message says why and what to do."""


# ---------------------------------------------------------------------------- client tools
@functools.lru_cache(maxsize=32)
def _major_version(tool: Path) -> int:
    """The major version a PostgreSQL client tool reports (``pg_dump (PostgreSQL) 16.2`` → 16)."""
    try:
        result = subprocess.run([str(tool), "--version"], capture_output=True, text=True, check=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return -1
    match = re.search(r"\)\s*(\d+)", result.stdout)
    return int(match.group(1)) if match else -1


def _candidate_bin_dirs() -> list[Path]:
    dirs: list[Path] = []
    with contextlib.suppress(EmbeddedPostgresError):
        dirs.append(find_postgres_bin())
    on_path = shutil.which("pg_dump")
    if on_path:
        dirs.append(Path(on_path).resolve().parent)
    dirs.extend(path.parent for path in sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_dump")))
    return list(dict.fromkeys(dirs))


def find_client_tool(name: str, bin_dir: Path | None = None) -> Path:
    """The PostgreSQL client program ``name`` (``pg_dump``, ``pg_restore``, ``psql``).

    From ``bin_dir`` when given; otherwise the newest major version among the embedded
    server's bundled tools, ``$PATH`` and ``/usr/lib/postgresql/*/bin`` (a newer pg_dump
    reads older servers; an older one refuses newer servers).
    """
    if bin_dir is not None:
        tool = bin_dir / name
        if not tool.is_file():
            raise BackupError(f"{name} not found in {bin_dir}")
        return tool
    found = [directory / name for directory in _candidate_bin_dirs() if (directory / name).is_file()]
    if not found:
        raise BackupError(
            f"{name} not found: install the PostgreSQL client tools matching your server "
            "(e.g. apt install postgresql-client-16)"
        )
    return max(found, key=_major_version)


# ---------------------------------------------------------------------------- connections
def _split_password(database_url: str) -> tuple[str, dict[str, str]]:
    """The URL without its password, and the environment that carries the password instead.

    A password on a command line is visible to every user through ``ps``; libpq reads
    ``PGPASSWORD`` from the environment, which is private to the process.
    """
    parts = urlsplit(database_url)
    if parts.scheme not in ("postgresql", "postgres"):
        return database_url, {}  # a key=value conninfo string: passed on untouched
    env: dict[str, str] = {}
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostinfo = netloc.rpartition("@")
        user, colon, password = userinfo.partition(":")
        if colon:
            env["PGPASSWORD"] = unquote(password)
            netloc = f"{user}@{hostinfo}"
    query = parse_qsl(parts.query, keep_blank_values=True)
    kept = []
    for key, value in query:
        if key == "password":
            env["PGPASSWORD"] = value
        else:
            kept.append((key, value))
    url = urlunsplit(parts._replace(netloc=netloc, query=urlencode(kept, safe="/")))
    return url, env


def _environment(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    env.setdefault("PGCONNECT_TIMEOUT", "15")
    env["LC_MESSAGES"] = "C"  # error texts we match on stay English
    env.pop("NOTIFY_SOCKET", None)
    return env


def _run(args: list[str], env: dict[str, str], what: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(args, env=env, capture_output=True, text=True, check=True, cwd="/")
    except FileNotFoundError as exc:
        raise BackupError(f"{what}: {exc.filename} not found") from exc
    except subprocess.CalledProcessError as exc:
        detail = exc.stderr.strip() or exc.stdout.strip() or f"exit status {exc.returncode}"
        if "server version mismatch" in detail:
            detail += (
                f"\n{Path(args[0]).name} must be at least as new as the server: install the newer "
                "PostgreSQL client tools (or point bin_dir at them)"
            )
        raise BackupError(f"{what} failed: {detail}") from exc


# ---------------------------------------------------------------------------- backup
def backup_database(database_url: str, file: Path, *, bin_dir: Path | None = None) -> None:
    """Write a consistent ``pg_dump --format=custom`` of the database to ``file``, atomically.

    Safe while the daemon runs. ``bin_dir``: the embedded server's tools
    (``find_postgres_bin()``) when the server is the embedded one; default: the newest found.
    """
    pg_dump = find_client_tool("pg_dump", bin_dir)
    url, secret_env = _split_password(database_url)
    file = file.absolute()
    if file.is_dir():
        raise BackupError(f"{file} is a folder; give a file name for the backup")
    if not file.parent.is_dir():
        raise BackupError(f"folder {file.parent} does not exist")
    partial = file.with_name(f"{_PARTIAL_PREFIX}{os.getpid()}-{file.name}")
    # Create it owner-only before pg_dump writes into it (pg_dump keeps an existing mode).
    partial.unlink(missing_ok=True)
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        _run(
            [
                str(pg_dump),
                "--format=custom",
                "--no-password",
                "--lock-wait-timeout=60000",
                "--file",
                str(partial),
                "--dbname",
                url,
            ],
            _environment(secret_env),
            "pg_dump",
        )
        with partial.open("rb") as handle:
            if handle.read(len(_ARCHIVE_MAGIC)) != _ARCHIVE_MAGIC:
                raise BackupError(f"pg_dump wrote no archive to {partial}")
            os.fsync(handle.fileno())
        os.replace(partial, file)
        _fsync_dir(file.parent)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    log.info("database backed up to %s (%d bytes)", file, file.stat().st_size, extra={"path": str(file)})


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable (the folder entry is data too)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------- restore
_EMPTINESS_QUERY = query("database", "emptiness_query")
_ANALYZE = query("database", "analyze")


def restore_database(database_url: str, file: Path, *, bin_dir: Path | None = None) -> None:
    """Restore a :func:`backup_database` file into an empty database.

    Refuses (:class:`BackupError`) when the first schema on the user's ``search_path``
    already holds tables: restoring over live data would mix two histories. The restore runs
    in one transaction, so a failure leaves the database as empty as it was.
    """
    file = file.absolute()
    try:
        with file.open("rb") as handle:
            magic = handle.read(len(_ARCHIVE_MAGIC))
    except OSError as exc:
        raise BackupError(f"cannot read {file}: {exc.strerror}") from exc
    if magic != _ARCHIVE_MAGIC:
        raise BackupError(f"{file} is not a pg_dump custom-format archive (as written by cloudwatcher backup)")
    pg_restore = find_client_tool("pg_restore", bin_dir)
    psql = find_client_tool("psql", bin_dir or pg_restore.parent)
    url, secret_env = _split_password(database_url)
    env = _environment(secret_env)

    checked = _run(
        [str(psql), "--no-psqlrc", "--no-password", "--tuples-only", "--no-align", "--field-separator=|",
         "--set=ON_ERROR_STOP=1", "--dbname", url, "--command", _EMPTINESS_QUERY],
        env,
        "checking the target database",
    )  # fmt: skip
    schema, _, count = checked.stdout.strip().partition("|")
    if int(count or 0) > 0:
        raise BackupError(
            f"refusing to restore: the target database is not empty (schema {schema!r} holds {count} "
            "tables or other relations). Restore into a new, empty database (createdb), or a fresh "
            "state_dir for the embedded server"
        )
    _run(
        [str(pg_restore), "--no-owner", "--exit-on-error", "--single-transaction", "--no-password",
         "--dbname", url, str(file)],
        env,
        "pg_restore",
    )  # fmt: skip
    # Planner statistics are not part of a dump; without them the first queries crawl.
    _run(
        [str(psql), "--no-psqlrc", "--no-password", "--quiet", "--set=ON_ERROR_STOP=1", "--dbname", url,
         "--command", _ANALYZE],
        env,
        "ANALYZE after restore",
    )  # fmt: skip
    log.info("database restored from %s", file, extra={"path": str(file)})


# ---------------------------------------------------------------------------- scheduled backups
def _backup_name(moment: datetime) -> str:
    return f"cloudwatcher-{moment.astimezone(UTC):%Y%m%dT%H%M%S.%f}Z.dump"


def latest_backup(backup_dir: Path) -> Path | None:
    """The newest scheduled backup in ``backup_dir`` (names sort by time), None if none."""
    backups = sorted(backup_dir.glob(BACKUP_GLOB)) if backup_dir.is_dir() else []
    return backups[-1] if backups else None


def seconds_until_next_backup(backup_dir: Path, interval_hours: float, *, now: float | None = None) -> float | None:
    """When the next scheduled backup is due, so a restart neither repeats nor skips one.

    None when scheduled backups are off (``interval_hours == 0``); 0 when one is due now.
    """
    if interval_hours <= 0:
        return None
    latest = latest_backup(backup_dir)
    if latest is None:
        return 0.0
    current = time.time() if now is None else now
    age = current - latest.stat().st_mtime
    return max(0.0, interval_hours * 3600 - age)


def run_scheduled_backup(
    database_url: str,
    backup_dir: Path,
    keep: int,
    *,
    bin_dir: Path | None = None,
) -> Path:
    """Take a timestamped backup in ``backup_dir`` and delete the oldest beyond ``keep``.

    Returns the new file. Old backups are pruned only after the new one is safely in place.
    """
    if keep < 1:
        raise BackupError("backup.keep must be at least 1")
    backup_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    _remove_stale_partials(backup_dir)
    moment = datetime.now(UTC)
    target = backup_dir / _backup_name(moment)
    while target.exists():  # two backups within one microsecond: keep both
        moment += timedelta(microseconds=1)
        target = backup_dir / _backup_name(moment)
    backup_database(database_url, target, bin_dir=bin_dir)
    backups = sorted(backup_dir.glob(BACKUP_GLOB))
    for old in backups[: max(0, len(backups) - keep)]:
        log.info("removing old backup %s (backup.keep = %d)", old, keep, extra={"path": str(old)})
        old.unlink(missing_ok=True)
    return target


def _remove_stale_partials(backup_dir: Path) -> None:
    """Temporary files left by a backup that was killed midway."""
    cutoff = time.time() - _STALE_PARTIAL_SECONDS
    for partial in backup_dir.glob(f"{_PARTIAL_PREFIX}*"):
        with contextlib.suppress(OSError):
            if partial.stat().st_mtime < cutoff:
                partial.unlink()
