"""Database values in the dashboard's JSON: timestamps as UTC ISO text, UUIDs and decimals as text/numbers."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

#: What the dashboard's queries run on: a connection, or one borrowed from the daemon's pool.
Connection = asyncpg.Connection | PoolConnectionProxy


def plain(value: Any) -> Any:
    """One database value as a JSON value."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


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
