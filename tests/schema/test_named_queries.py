"""Every named query in ``cloudwatcher/schema/queries/*.sql`` is used, unique, and prepares on the schema.

"Used": some module binds it to a constant (``NAME = query("area", "name")``) and that constant
is read somewhere in the package (a private ``_NAME`` in its own module). "Prepares": PostgreSQL
parses and plans it against the migrated database (``connection.prepare``), so a renamed column
or a typo fails here rather than in production.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from cloudwatcher.database.embedded import APP_ROLE, DATABASE_NAME
from cloudwatcher.schema.sql import NamedQuery, all_queries, parse

PACKAGE = Path(__file__).resolve().parents[2] / "cloudwatcher"

# Statements with str.format placeholders: the values the program fills in.
TEMPLATE_VALUES = {
    ("status", "devices"): {"skipped": "device_skipped_files"},
    ("inventory", "get_parts"): {"filters": ""},
    ("database", "create_app_role"): {"app_role": APP_ROLE},
    ("database", "hand_over_objects"): {"app_role": APP_ROLE},
    ("database", "database_owner"): {"database": DATABASE_NAME},
    ("database", "create_database"): {"database": DATABASE_NAME, "app_role": APP_ROLE},
    ("database", "hand_over_database"): {"database": DATABASE_NAME, "app_role": APP_ROLE},
}

# Statements PostgreSQL will not prepare, and why.
NOT_PREPARABLE: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Binding:
    module: str
    constant: str
    area: str
    name: str


def _modules() -> dict[str, ast.Module]:
    return {str(path.relative_to(PACKAGE)): ast.parse(path.read_text()) for path in sorted(PACKAGE.rglob("*.py"))}


def _bindings(modules: dict[str, ast.Module]) -> list[Binding]:
    """Every ``CONSTANT = query("area", "name")`` (the call possibly followed by ``.format(...)``)."""
    found = []
    for module, tree in modules.items():
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
                continue
            call = node.value
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "format":
                call = call.func.value
            if (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Name)
                and call.func.id == "query"
                and all(isinstance(arg, ast.Constant) for arg in call.args)
            ):
                area, name = (arg.value for arg in call.args)  # type: ignore[attr-defined]
                found.append(Binding(module, node.targets[0].id, area, name))
    return found


def _reads(tree: ast.AST) -> Counter[str]:
    """Names read (not assigned) in ``tree``: plain names and attribute names (``queries.X``)."""
    reads: Counter[str] = Counter()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            reads[node.id] += 1
        elif isinstance(node, ast.Attribute):
            reads[node.attr] += 1
        elif isinstance(node, ast.ImportFrom):
            reads.update(alias.name for alias in node.names)
    return reads


def test_every_named_query_is_bound_to_a_constant_that_is_used() -> None:
    modules = _modules()
    bindings = _bindings(modules)
    defined = {(named.area, named.name) for named in all_queries()}
    bound = {(binding.area, binding.name) for binding in bindings}
    assert sorted(bound - defined) == [], "query() names a query no .sql file defines"
    assert sorted(defined - bound) == [], "queries no module binds to a constant (dead SQL: delete them)"
    everywhere: Counter[str] = Counter()
    per_module = {module: _reads(tree) for module, tree in modules.items()}
    for reads in per_module.values():
        everywhere.update(reads)
    unused = [
        f"{binding.module}: {binding.constant}"
        for binding in bindings
        if not (per_module[binding.module] if binding.constant.startswith("_") else everywhere)[binding.constant]
    ]
    assert unused == [], "constants bound to a query but never read"


def test_no_statement_is_written_twice() -> None:
    def shape(sql: str) -> str:
        return " ".join(re.sub(r"--[^\n]*", "", sql).split()).lower()

    by_text: dict[str, list[str]] = {}
    for named in all_queries():
        by_text.setdefault(shape(named.sql), []).append(f"{named.area}.{named.name}")
    assert [names for names in by_text.values() if len(names) > 1] == []


def test_parse_reads_name_description_and_statement() -> None:
    parsed = parse(
        "x", "-- name: one\n-- What it does.\n-- More.\nSELECT 1\n  -- inside\n  + 1;\n\n-- name: two\nSELECT 2;\n"
    )
    assert parsed["one"] == NamedQuery("x", "one", "What it does. More.", "SELECT 1\n  -- inside\n  + 1")
    assert parsed["two"].sql == "SELECT 2"
    with pytest.raises(ValueError, match="defined twice"):
        parse("x", "-- name: one\nSELECT 1;\n-- name: one\nSELECT 2;\n")
    with pytest.raises(ValueError, match="no statement"):
        parse("x", "-- name: one\n-- only words\n")
    with pytest.raises(ValueError, match="before the first"):
        parse("x", "SELECT 0;\n-- name: one\nSELECT 1;\n")


def _sql(named: NamedQuery) -> str:
    values = TEMPLATE_VALUES.get((named.area, named.name))
    return named.sql.format(**values) if values else named.sql


async def test_every_named_query_prepares_on_the_migrated_schema(db: asyncpg.Connection) -> None:
    failures = []
    for named in all_queries():
        key = (named.area, named.name)
        try:
            await db.prepare(_sql(named))
        except asyncpg.PostgresError as error:
            if key not in NOT_PREPARABLE:
                failures.append(f"{named.area}.sql {named.name}: {type(error).__name__}: {error}")
        else:
            assert key not in NOT_PREPARABLE, f"{key} prepares now: take it off NOT_PREPARABLE"
    assert failures == []


def test_templates_are_the_only_queries_with_placeholders() -> None:
    with_braces = {(n.area, n.name) for n in all_queries() if re.search(r"\{[a-z_]+\}", n.sql)}
    assert with_braces == set(TEMPLATE_VALUES)
