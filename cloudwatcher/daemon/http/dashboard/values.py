"""Database values in the dashboard's JSON: timestamps as UTC ISO text, UUIDs and decimals as text/numbers."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from cloudwatcher.daemon.http.app import json_value

#: What the dashboard's queries run on: a connection, or one borrowed from the daemon's pool.
Connection = asyncpg.Connection | PoolConnectionProxy


def plain(value: Any) -> Any:
    """One database value as a JSON value (the HTTP API's one conversion rule)."""
    return json_value(value)


def plain_row(record: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    return {key: plain(value) for key, value in record.items()}


def json_or_text(text: str | None) -> Any:
    """A jsonb column fetched as text, parsed back into JSON (None stays None)."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text
