"""``cloudwatcher/schema/schema.sql`` is exactly what the migrations produce (``make schema`` rewrites it)."""

from __future__ import annotations

import difflib

from cloudwatcher.schema.dump import SCHEMA_FILE, dump_schema, normalise
from tests.conftest import PgTestServer


def test_migrations_produce_schema_sql(pg_server: PgTestServer, database_url: str) -> None:
    bin_dir = pg_server.embedded.bin_dir if pg_server.embedded is not None else None
    dumped = dump_schema(database_url, bin_dir)
    recorded = SCHEMA_FILE.read_text(encoding="utf-8")
    diff = "".join(difflib.unified_diff(recorded.splitlines(True), dumped.splitlines(True), "schema.sql", "migrated"))
    assert dumped == recorded, f"schema.sql differs from the migrations; run `make schema`:\n{diff[:4000]}"


def test_normalise_drops_what_varies_between_runs() -> None:
    dump = (
        "--\n-- PostgreSQL database dump\n--\n\\restrict abc123\nSET statement_timeout = 0;\n"
        "SELECT pg_catalog.set_config('search_path', '', false);\n\n\n\nCREATE TABLE public.t (\n"
        "    -- kept: indented, inside a definition\n    id integer\n);\n\\unrestrict abc123\n"
    )
    assert (
        normalise(dump) == "CREATE TABLE public.t (\n    -- kept: indented, inside a definition\n    id integer\n);\n"
    )
