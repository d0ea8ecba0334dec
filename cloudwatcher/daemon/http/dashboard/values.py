"""Database rows in the dashboard's JSON, by the program's one rule (:mod:`cloudwatcher.jsonvalue`)."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from cloudwatcher.jsonvalue import json_value

#: What the dashboard's queries run on: a connection, or one borrowed from the daemon's pool.
Connection = asyncpg.Connection | PoolConnectionProxy


def plain_row(record: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    """One row with every value as JSON (:func:`cloudwatcher.jsonvalue.json_value`)."""
    return {key: json_value(value) for key, value in record.items()}


def json_or_text(text: str | None) -> Any:
    """A jsonb column fetched as text, parsed back into JSON (None stays None)."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text
