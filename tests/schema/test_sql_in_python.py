"""SQL lives in ``cloudwatcher/schema/queries/*.sql``: Python strings hold only what cannot be static.

A string literal (f-strings included) that starts like a statement counts as SQL. The few left
are built at run time from names the code chooses (tables and columns a generic loader walks,
columns read from the catalog); each module that may hold some is listed with how many and why,
so a new statement written in Python fails here.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "cloudwatcher"

_STATEMENT = re.compile(
    r"^\s*\(?\s*(SELECT|INSERT|UPDATE|DELETE|WITH|CREATE|ALTER|DROP|TRUNCATE|LOCK|DO|SET|SHOW|ANALYZE|VACUUM|"
    r"COPY|GRANT|REVOKE|EXPLAIN|CALL|LISTEN|NOTIFY|BEGIN|COMMIT|ROLLBACK)\b\s+\S"
)
_PROSE = re.compile(r"^[A-Z]+( [a-z]+)+$")  # "ANALYZE after restore": a label, not a statement

# Module -> (how many SQL literals it may hold, why they cannot be static). At most ten in all.
ALLOWED: dict[str, tuple[int, str]] = {
    "domain/catalog.py": (
        7,
        "the reference-data loader upserts and links rows of whichever table and key columns a "
        "catalog section names (select, insert, update; select, insert, delete links; lookup)",
    ),
    "domain/retention.py": (1, "the archive copy lists the columns a table shares with its archive, read at run time"),
    "daemon/ops/status.py": (1, "a stand-in for device_skipped_files on a database not yet migrated to 0010"),
}


def sql_literals(source: str) -> list[tuple[int, str]]:
    """(line, text) of every string literal in ``source`` that reads as an SQL statement."""
    tree = ast.parse(source)
    in_fstring = {id(value) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for value in node.values}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in in_fstring:
            text = node.value
        elif isinstance(node, ast.JoinedStr):
            text = "".join(str(v.value) if isinstance(v, ast.Constant) else "{}" for v in node.values)
        else:
            continue
        if _STATEMENT.match(text) and not _PROSE.match(text.strip()):
            found.append((node.lineno, " ".join(text.split())))
    return found


def test_sql_literals_left_in_python_are_the_allowed_dynamic_ones() -> None:
    counts = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        found = sql_literals(path.read_text())
        if found:
            counts[str(path.relative_to(PACKAGE))] = found
    unexpected = {module: found for module, found in counts.items() if len(found) > ALLOWED.get(module, (0, ""))[0]}
    assert unexpected == {}, "SQL in Python strings: move it to cloudwatcher/schema/queries/<area>.sql"
    assert sum(len(found) for found in counts.values()) <= 10


def test_the_allow_list_is_tight() -> None:
    assert sum(allowed for allowed, _ in ALLOWED.values()) <= 10
    for module, (allowed, _) in ALLOWED.items():
        assert len(sql_literals((PACKAGE / module).read_text())) == allowed, f"{module}: lower its allowance"


def test_the_scan_finds_statements_and_skips_prose() -> None:
    source = (
        'A = "SELECT 1"\nB = f"DELETE FROM {t} WHERE id = $1"\nC = "(SELECT NULL::text WHERE false)"\n'
        'D = "DELETE"\nE = "ANALYZE after restore"\nF = "Select a target"\n'
        'G = """\n  WITH x AS (SELECT 1) SELECT * FROM x"""\n'
    )
    assert [line for line, _ in sql_literals(source)] == [1, 2, 3, 7]
