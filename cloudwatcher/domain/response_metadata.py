"""``response_metadata``: key/value attributes of a response, as ``request_metadata`` is of a request.

The seed design gives responses the same flexible key/value table as requests, for filtering
and analytics ("which answers came from an agent", "which daemon version wrote it"). Every
response gets ``source`` (``daemon`` for the daemon's own answers, ``processor`` for an external
processor's), ``status`` and, where they apply, ``error_code``, ``agent``, ``daemon_version`` and
``instance_id``; a processor may add its own keys in the answer's ``metadata`` object.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from uuid import UUID

import asyncpg

from cloudwatcher.schema.sql import query

INSERT_RESPONSE_METADATA = query("requests", "insert_response_metadata")


def metadata_text(value: str | int | float | bool | None) -> str:
    """A metadata value as stored: text as it is, anything else as its JSON (as request_metadata does)."""
    return value if isinstance(value, str) else json.dumps(value)


def describe_answer(document: Mapping[str, Any]) -> dict[str, str]:
    """The keys every response carries, taken from the response document itself."""
    described = {"status": str(document.get("status"))}
    error = document.get("error")
    if isinstance(error, Mapping) and error.get("code") is not None:
        described["error_code"] = str(error["code"])
    return described


async def write_response_metadata(
    connection: asyncpg.Connection, response_id: UUID, metadata: Mapping[str, str]
) -> None:
    if metadata:
        await connection.execute(INSERT_RESPONSE_METADATA, response_id, list(metadata), list(metadata.values()))
