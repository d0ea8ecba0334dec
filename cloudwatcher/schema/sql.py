"""Named SQL statements, read from ``queries/<area>.sql`` (procrastinate's ``queries.sql`` layout).

SQL lives in ``.sql`` files, where editors, linters and reviewers see it as SQL, and where a
test can prepare every statement against the migrated schema. Each file holds blocks::

    -- name: claim_pending
    -- Claim up to $2 pending rows of one target for this instance.
    WITH claimable AS (...)
    UPDATE ...;

The comment lines right after the name describe the statement; the rest, up to the next
``-- name:`` line, is the statement (its final ``;`` dropped). Modules keep their constants
(``CLAIM_PENDING = query("claims", "claim_pending")``), so callers, mypy and grep see the same
names as before. Files are read once per process, from the installed package (they ship in the wheel).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

_NAME_LINE = re.compile(r"^-- name: ([a-z][a-z0-9_]*)[ \t]*$", re.MULTILINE)


@dataclass(frozen=True)
class NamedQuery:
    area: str
    name: str
    description: str
    sql: str


def parse(area: str, text: str) -> dict[str, NamedQuery]:
    """The blocks of one file by name; a name given twice, or a block without SQL, is an error."""
    found: dict[str, NamedQuery] = {}
    heads = list(_NAME_LINE.finditer(text))
    if heads and text[: heads[0].start()].strip():
        raise ValueError(f"{area}.sql: text before the first '-- name:' line")
    for head, following in zip(heads, [*heads[1:], None], strict=True):
        name = head.group(1)
        body = text[head.end() : following.start() if following else len(text)].strip().splitlines()
        description = []
        while body and body[0].startswith("--"):
            description.append(body.pop(0).removeprefix("--").strip())
        sql = "\n".join(body).strip().removesuffix(";").rstrip()
        if not sql:
            raise ValueError(f"{area}.sql: query {name!r} has no statement")
        if name in found:
            raise ValueError(f"{area}.sql: query {name!r} is defined twice")
        found[name] = NamedQuery(area, name, " ".join(description), sql)
    return found


@cache
def area_queries(area: str) -> dict[str, NamedQuery]:
    """Every query of ``queries/<area>.sql``, read and parsed once."""
    text = (resources.files("cloudwatcher.schema") / "queries" / f"{area}.sql").read_text(encoding="utf-8")
    return parse(area, text)


def areas() -> list[str]:
    """The names of the shipped query files (without ``.sql``), sorted."""
    folder = resources.files("cloudwatcher.schema") / "queries"
    return sorted(entry.name.removesuffix(".sql") for entry in folder.iterdir() if entry.name.endswith(".sql"))


def all_queries() -> list[NamedQuery]:
    """Every named query of every file (for the tests that check them all)."""
    return [named for area in areas() for named in area_queries(area).values()]


def query(area: str, name: str) -> str:
    """The SQL of query ``name`` in ``queries/<area>.sql``; a missing one fails at import time."""
    try:
        return area_queries(area)[name].sql
    except KeyError:
        raise KeyError(f"no query {name!r} in cloudwatcher/schema/queries/{area}.sql") from None
