"""The current full schema as one file, ``schema.sql``: what the migrations add up to.

Migrations say how a database got here; reviewers and the query tests want to see where
"here" is. ``schema.sql`` is ``pg_dump --schema-only`` of a freshly migrated database,
normalised so that it is stable: no comments, ``SET`` lines, ownership or privileges, and no
yearly ``audit_logs_yNNNN`` partitions (migration 0002 makes them for the current year, so
they change with the calendar). A test checks that the migrations produce exactly this file.

Regenerate it after adding a migration (one command, needs no running server)::

    make schema            # or: .venv/bin/python -m cloudwatcher.schema.dump

It starts a throwaway embedded PostgreSQL, migrates an empty database, dumps it with the
``pg_dump`` beside the server binaries, and rewrites ``cloudwatcher/schema/schema.sql``.
``--database-url URL`` dumps an existing (migrated) database instead; ``--check`` only compares.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import asyncpg

from cloudwatcher.database.embedded import EmbeddedPostgres, find_postgres_bin
from cloudwatcher.schema.migrator import apply_migrations

SCHEMA_FILE = Path(__file__).with_name("schema.sql")

# The partitions of the current year and the next (see the module docstring).
_EXCLUDED_TABLES = "audit_logs_y[0-9]*"
_DROPPED_LINE = re.compile(r"^(--|SET |SELECT pg_catalog\.set_config\(|\\restrict |\\unrestrict )")


def normalise(dump: str) -> str:
    """``pg_dump`` output without the lines that vary between runs and servers."""
    kept = [line.rstrip() for line in dump.splitlines() if not _DROPPED_LINE.match(line)]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(kept))
    return text.strip() + "\n"


def dump_schema(database_url: str, bin_dir: Path | None = None) -> str:
    """The normalised schema of the database at ``database_url``."""
    pg_dump = (bin_dir or find_postgres_bin()) / "pg_dump"
    result = subprocess.run(
        [str(pg_dump), "--schema-only", "--no-owner", "--no-privileges", "--no-comments",
         "--exclude-table", _EXCLUDED_TABLES, "--dbname", database_url],
        capture_output=True, text=True, check=False, cwd="/",
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"pg_dump failed: {result.stderr.strip()}")
    return normalise(result.stdout)


async def _migrate(database_url: str) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        await apply_migrations(connection)
    finally:
        await connection.close()


def dump_fresh_schema() -> str:
    """Migrate an empty database on a throwaway embedded server and dump it."""
    base = Path(tempfile.mkdtemp(prefix="cloudwatcher-schema-"))
    base.chmod(0o755)  # the server's user must reach it when this runs as root
    server = EmbeddedPostgres(base / "postgres", extra_settings={"fsync": "off"})
    try:
        server.ensure_running()
        asyncio.run(_migrate(server.url()))
        return dump_schema(server.url())
    finally:
        if server.is_running():
            server.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cloudwatcher.schema.dump", description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="dump this migrated database instead of a throwaway one")
    parser.add_argument("--check", action="store_true", help="only compare with schema.sql; exit 1 when it differs")
    args = parser.parse_args(argv)
    schema = dump_schema(args.database_url) if args.database_url else dump_fresh_schema()
    if args.check:
        same = SCHEMA_FILE.is_file() and SCHEMA_FILE.read_text(encoding="utf-8") == schema
        print(f"{SCHEMA_FILE}: {'up to date' if same else 'differs from the migrations; run `make schema`'}")
        return 0 if same else 1
    SCHEMA_FILE.write_text(schema, encoding="utf-8")
    print(f"wrote {SCHEMA_FILE} ({len(schema.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
