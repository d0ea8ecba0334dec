"""Database values as JSON: the one conversion rule of everything the program prints or serves.

``status --json``, ``files --json``, ``GET /status`` and the dashboard's JSON all show values
read from PostgreSQL. They used to convert them each in their own way (one printed a decimal
as text, another as a number; one left timestamps in the session's zone); a script reading two
of them saw two shapes of the same column. Timestamps are ISO 8601 in UTC when they carry a
zone, UUIDs are text, decimals numbers, intervals seconds.

The device-facing response documents (``cloudwatcher.domain.responses``) keep their own rule on
purpose: their format is a contract with the devices (an integral decimal is written as an
integer there), not a view of the database.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

__all__ = ["iso_utc", "json_default", "json_value"]


def iso_utc(value: datetime | None) -> str | None:
    """A zoned timestamp as UTC ISO 8601 text; None stays None."""
    return value.astimezone(UTC).isoformat() if value is not None else None


def json_value(value: Any) -> Any:
    """A database value as JSON: timestamps as ISO 8601 (UTC when zoned), UUIDs and decimals
    as strings and floats, intervals as seconds, collections element by element."""
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
    if isinstance(value, list | tuple | set | frozenset):
        return [json_value(item) for item in value]
    return value


def json_default(value: object) -> object:
    """``json.dumps(..., default=json_default)``: the database types above, else a TypeError."""
    converted = json_value(value)
    if converted is value:
        raise TypeError(f"{type(value).__name__} is not JSON serialisable")
    return converted
