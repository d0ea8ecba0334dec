"""One row a test knows is there.

asyncpg's ``fetchrow`` answers ``None`` when no row matches, so mypy makes every caller prove the row
exists before indexing it. Tests that select a row they just caused to exist say so once here: a missing
row fails the test with the query that found nothing, instead of a ``TypeError`` on ``None``.
"""

from __future__ import annotations

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Queryable = asyncpg.Connection | asyncpg.Pool | PoolConnectionProxy


async def one_row(db: Queryable, query: str, *args: object) -> asyncpg.Record:
    """The row ``query`` selects; the test fails if there is none."""
    row = await db.fetchrow(query, *args)
    assert row is not None, f"no row for {query!r} {args!r}"
    return row
